"""Routes: bank-link partner webhooks. Thin: verify, record, close the waiting provider step.

One route serves every provider of the registry (chalicelib/domain/providers.py): ``POST /webhooks/<key>``
dispatches to that provider's verifier. The OpenAPI document lists one path per registered provider.
A bad signature is a 401 and changes nothing. Duplicates, late deliveries and unknown sessions
answer 200 (partners retry anything else for 24 hours); only our own outage answers 503.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalice import Blueprint

from chalicelib import bootstrap
from chalicelib.api.routing import RouteSpec, endpoint
from chalicelib.domain.model import Model
from chalicelib.domain.providers import PROVIDERS, Provider
from chalicelib.errors import NotFound

bp = Blueprint(__name__)


class WebhookAnswer(Model):
    received: bool = True
    outcome: str


def _per_provider(spec: RouteSpec) -> list[RouteSpec]:
    return [
        replace(
            spec,
            path=f"/webhooks/{info.key}",
            summary=info.webhook_summary,
            operation_id=f"{info.key}_webhook",
            documented_as=None,
        )
        for info in PROVIDERS.values()
    ]


@endpoint(
    bp,
    "/webhooks/{provider}",
    "POST",
    summary="A bank-link partner's webhook",
    auth=False,
    response=WebhookAnswer,
    errors=(400, 401, 503),
    tags=("webhooks",),
    documented_as=_per_provider,
)
def provider_webhook(request: Any, provider: str, **_: Any) -> WebhookAnswer:
    if provider not in PROVIDERS:
        raise NotFound("no such webhook")
    body = request.raw_body or b""
    outcome = bootstrap.bank_links().receive_webhook(Provider(provider), request.headers, body)
    return WebhookAnswer(outcome=outcome)
