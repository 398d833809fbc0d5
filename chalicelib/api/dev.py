"""Routes for local runs only: the outbox of emails and text messages the embedded AWS "sent".

app.py registers this blueprint only on local stages (``config.local_stage()``), so it never exists in AWS.
A developer follows an invitation end to end by clicking the link here instead of in an inbox.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from chalice import Blueprint, Response

from chalicelib.adapters.outbox import Outbox, OutboxReader
from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import services
from chalicelib.errors import UpstreamError
from chalicelib.web import page

bp = Blueprint(__name__)


@cache
def outbox_reader() -> OutboxReader:
    """One reader per process: it remembers when it first saw each message (moto keeps no send time)."""
    endpoint_url = services().settings.endpoint_url
    if endpoint_url is None:
        raise UpstreamError("no embedded AWS is configured (AWS_ENDPOINT_URL is not set)")
    return OutboxReader(endpoint_url)


def read_outbox() -> Outbox:
    outbox = outbox_reader().read()
    # Newest first: the message a developer just triggered is the one they want.
    return Outbox(emails=outbox.emails[::-1], sms=outbox.sms[::-1])


@endpoint(bp, "/dev/outbox", "GET", summary="Sent emails and SMS (local only)", auth=False, document=False)
def outbox_page(**_: Any) -> Response:
    return page("dev_outbox.html", outbox=read_outbox())


@endpoint(bp, "/dev/outbox.json", "GET", summary="Sent emails and SMS as JSON (local only)", auth=False, document=False)
def outbox_json(**_: Any) -> Outbox:
    return read_outbox()
