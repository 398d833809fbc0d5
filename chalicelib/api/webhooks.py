"""Routes: bank-link partner webhooks. Thin: verify, record, close the waiting provider step.

A bad signature is a 401 and changes nothing. Duplicates, late deliveries and unknown sessions
answer 200 (partners retry anything else for 24 hours); only our own outage answers 503.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import bootstrap
from chalicelib.api.routing import endpoint
from chalicelib.domain.model import Model
from chalicelib.domain.tenant import Provider

bp = Blueprint(__name__)


class WebhookAnswer(Model):
    received: bool = True
    outcome: str


def _receive(provider: Provider, request: Any) -> WebhookAnswer:
    body = request.raw_body or b""
    outcome = bootstrap.bank_links().receive_webhook(provider, request.headers, body)
    return WebhookAnswer(outcome=outcome)


_ERRORS = (400, 401, 503)


@endpoint(
    bp,
    "/webhooks/plaid",
    "POST",
    summary="Plaid Link webhook (Plaid-Verification JWT)",
    auth=False,
    response=WebhookAnswer,
    errors=_ERRORS,
    tags=("webhooks",),
)
def plaid_webhook(request: Any, **_: Any) -> WebhookAnswer:
    return _receive(Provider.PLAID, request)


@endpoint(
    bp,
    "/webhooks/finicity",
    "POST",
    summary="Finicity Connect webhook (HMAC-SHA256)",
    auth=False,
    response=WebhookAnswer,
    errors=_ERRORS,
    tags=("webhooks",),
)
def finicity_webhook(request: Any, **_: Any) -> WebhookAnswer:
    return _receive(Provider.FINICITY, request)


@endpoint(
    bp,
    "/webhooks/mx",
    "POST",
    summary="MX Connect webhook (basic auth)",
    auth=False,
    response=WebhookAnswer,
    errors=_ERRORS,
    tags=("webhooks",),
)
def mx_webhook(request: Any, **_: Any) -> WebhookAnswer:
    return _receive(Provider.MX, request)
