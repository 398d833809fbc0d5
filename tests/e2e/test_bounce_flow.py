"""A hard bounce end to end on the local stack: SES mailbox simulator -> SNS -> SQS -> feedback worker
-> suppression, SMS fallback, lender notification and a signed webhook to the lender's CRM."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import requests

from tests.e2e.conftest import RunningStack
from tests.integration.feedback_helpers import Receiver
from tests.stack import phone_for

pytestmark = pytest.mark.e2e

T = TypeVar("T")
WAIT_S = 30


def eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll until ``probe`` returns something truthy (the pipeline is asynchronous)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"never happened: {what}")


def test_bounce_to_simulator_suppresses_falls_back_notifies_and_signs_a_webhook(stack: RunningStack) -> None:
    api = stack.api
    auth = {"Authorization": f"Bearer {stack.sign_up('Bounce Lending')}"}
    secret = requests.post(f"{api}/v1/tenant/webhook-secrets", json={}, headers=auth, timeout=10)
    assert secret.status_code == 201, secret.text
    phone = phone_for(f"{random.randint(1000, 9897):x}")

    with Receiver(secret=secret.json()["secret"]) as crm:
        patched = requests.patch(f"{api}/v1/tenant/settings", json={"webhook_url": crm.url}, headers=auth, timeout=10)
        assert patched.status_code == 200, patched.text
        created = requests.post(
            f"{api}/v1/invitations",
            json={"email": "bounce@simulator.amazonses.com", "owner": "Olivia", "phone": phone},
            headers=auth,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        invitation_id = created.json()["invitation_id"]

        def invitation() -> dict[str, Any]:
            return dict(requests.get(f"{api}/v1/invitations/{invitation_id}", headers=auth, timeout=10).json())

        eventually(lambda: invitation()["delivery_status"] == "bounced", "the invitation is bounced")
        sms = eventually(
            lambda: [
                s
                for s in requests.get(f"{api}/dev/outbox.json", timeout=10).json()["sms"]
                if s["phone_number"] == phone
            ],
            "the SMS fallback reached the outbox",
        )
        page = eventually(
            lambda: (
                (p := requests.get(f"{api}/v1/notifications", headers=auth, timeout=10).json())["unread_count"] and p
            ),
            "an unread notification",
        )
        received = eventually(lambda: crm.requests, "a webhook reached the CRM")

    assert len(sms) == 1 and sms[0]["links"], sms
    assert invitation()["delivery_status"] == "bounced"
    history = requests.get(f"{api}/v1/invitations/{invitation_id}/history", headers=auth, timeout=10).json()
    assert "fallback_sms_sent" in [e["type"] for e in history["items"]]
    assert [(n["type"], n["read"]) for n in page["items"]] == [("bounce", False)]
    assert received[0]["verified"] is True
    event = json.loads(received[0]["body"])
    assert event["type"] == "invitation.bounced"
    assert event["data"]["invitation_id"] == invitation_id
    assert set(event) == {"id", "type", "created_at", "data"}
    # Suppressed (the integration tests show a resend refused with the reason).
    assert page["items"][0]["data"]["address_suppressed"] is True
    log = requests.get(f"{api}/v1/communications?invitation_id={invitation_id}", headers=auth, timeout=10).json()
    assert {c["channel"]: c["status"] for c in log["items"]} == {"email": "bounced", "sms": "sent"}
    deliveries = requests.get(f"{api}/v1/webhook-deliveries", headers=auth, timeout=10).json()
    assert deliveries["items"][0]["ok"] is True and deliveries["items"][0]["status_code"] == 200
