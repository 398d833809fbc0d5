"""A retried send never moves a message's outcome back (issue 11, item 13).

An invitation by email and SMS: the email goes out, the SMS fails transiently, SES reports the email
bounced, then SQS retries the send. The retry replays the email's recorded result; before, it also
rewrote the communication record, so "bounced" became "sent" again.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.config import SES_FEEDBACK_QUEUE
from chalicelib.errors import UpstreamError
from chalicelib.services.delivery import SendMessage
from tests.integration.feedback_helpers import PHONE, enqueue, notification, sns_envelope
from tests.integration.helpers import Fault, call, drain, sent_sms


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def log(client: Any, key: str, invitation_id: str) -> dict[str, dict[str, Any]]:
    status, page = call(client, "GET", f"/v1/communications?invitation_id={invitation_id}", key)
    assert status == 200, page
    return {c["channel"]: c for c in page["items"]}


def test_a_retried_send_keeps_the_bounce(client: Any, key: str) -> None:
    body = {"email": "jo@smallbiz.com", "owner": "O", "phone": PHONE, "channel": "both"}
    status, inv = call(client, "POST", "/v1/invitations", key, body)
    assert status == 201, inv
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    send_id = next(e["details"]["send_id"] for e in history["items"] if e["type"] == "send_requested")
    message = SendMessage(tenant_id=inv["tenant_id"], invitation_id=inv["invitation_id"], send_id=send_id)

    delivery = bootstrap.delivery()
    with Fault(aws.client("sns"), "Publish", "InternalFailure", times=5), pytest.raises(UpstreamError):
        delivery.process(message, receive_count=1)
    email = log(client, key, inv["invitation_id"])["email"]
    assert email["status"] == "sent"

    bounce = notification("ses_bounce_event.json", email["provider_message_id"], "jo@smallbiz.com")
    enqueue(SES_FEEDBACK_QUEUE, [sns_envelope(bounce)])
    drain(SES_FEEDBACK_QUEUE)
    assert log(client, key, inv["invitation_id"])["email"]["status"] == "bounced"

    assert delivery.process(message, receive_count=2) == "sent"  # SQS retries the send: the SMS goes out
    after = log(client, key, inv["invitation_id"])
    assert (after["email"]["status"], after["sms"]["status"]) == ("bounced", "sent")
    assert sum(1 for _, sms in sent_sms() if sms[0] == PHONE) == 1
    _, bounced = call(client, "GET", "/v1/communications?outcome=bounced", key)
    assert [c["channel"] for c in bounced["items"]] == ["email"]  # the outcome index was not moved back
    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert current["delivery_status"] == "bounced"
