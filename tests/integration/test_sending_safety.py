"""Sending safety with the production wiring (bootstrap's send worker and feedback consumer on moto):
a new lender cannot phish strangers, quotas defer instead of dropping, a bounce storm pauses the lender,
SMS waits for the morning in the recipient's zone, an operator can suspend a lender."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.config import SEND_QUEUE, SES_FEEDBACK_QUEUE
from chalicelib.domain.sending import BOUNCE_PAUSE_RATE
from chalicelib.domain.sms import time_zones
from chalicelib.services.delivery import SendMessage
from tests.integration.feedback_helpers import enqueue, notification, sns_envelope
from tests.integration.helpers import call, drain, sent_emails, sent_sms


@pytest.fixture
def strict(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Production's defaults: verification required, quiet hours kept."""
    monkeypatch.setenv("LENDER_VERIFICATION_REQUIRED", "true")
    monkeypatch.setenv("SMS_QUIET_HOURS", "true")
    bootstrap.reset()


VERIFY_LINK = re.compile(r"http://testserver(/verify/ten_[A-Z0-9]+/[A-Za-z0-9_-]{43})")


def comms(client: Any, key: str, inv_id: str) -> list[dict[str, Any]]:
    status, page = call(client, "GET", f"/v1/communications?invitation_id={inv_id}", key)
    assert status == 200, page
    return list(page["items"])


def create(client: Any, key: str, **fields: Any) -> str:
    body = {"email": f"c{uuid.uuid4().hex[:8]}@smallbiz.com", "owner": "Olivia", **fields}
    status, inv = call(client, "POST", "/v1/invitations", key, body)
    assert status == 201, inv
    return str(inv["invitation_id"])


def emails_to(address: str) -> int:
    return sum(1 for m in sent_emails() if address in str(m.destinations))


def sms_to(phone: str) -> int:
    return sum(1 for _, message in sent_sms() if message[0] == phone)


def delayed_sends() -> int:
    sqs = boto3.client("sqs")
    url = bootstrap.services().settings.send_queue_url
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"])


def test_a_new_lender_reaches_only_its_own_address_until_verified(
    strict: None, client: Any, lender: dict[str, Any]
) -> None:
    key, tenant_id = lender["api_key"], lender["tenant"]["tenant_id"]
    admin = lender["tenant"]["admin_email"]
    status, me = call(client, "GET", "/v1/tenant", key)
    assert me["sending"]["verified_at"] is None
    # The phishing attempt: a lookalike sender name and invitations to strangers.
    status, _ = call(client, "PATCH", "/v1/tenant/settings", key, {"sender_name": "PayPal Security"})
    strangers = [create(client, key, email=f"victim{i}@example.org") for i in range(3)]
    own = create(client, key, email=admin)
    drain(SEND_QUEUE)

    assert emails_to(admin) == 2  # the verification link, and the lender's own test invitation
    assert all(emails_to(f"victim{i}@example.org") == 0 for i in range(3))
    for inv_id in strangers:
        (comm,) = comms(client, key, inv_id)
        assert comm["status"] == "deferred" and "not confirmed" in comm["detail"]
    assert comms(client, key, own)[0]["status"] == "sent"
    # Deferred, not dropped: each waits in the queue and is looked at again.
    assert delayed_sends() == 3

    # The admin follows the emailed link: a page with a button (mail scanners open links, people press).
    (path,) = {m for e in sent_emails() if admin in str(e.destinations) for m in VERIFY_LINK.findall(e.body)}
    page = client.http.get(path)
    assert page.status_code == 200 and b"Confirm my email" in page.body
    _, me = call(client, "GET", "/v1/tenant", key)
    assert me["sending"]["verified_at"] is None  # opening the page confirms nothing
    done = client.http.post(path, headers={"Content-Type": "application/x-www-form-urlencoded"}, body="")
    assert done.status_code == 200 and b"Email confirmed" in done.body
    again = client.http.post(path, headers={"Content-Type": "application/x-www-form-urlencoded"}, body="")
    assert again.status_code == 200  # already confirmed: said so, nothing changes
    _, me = call(client, "GET", "/v1/tenant", key)
    assert me["sending"]["verified_at"] is not None
    forged = client.http.post(path[:-4] + "AAAA", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code in (200, 410)
    delivery = bootstrap.delivery()
    for inv_id in strangers:  # the deferred copies coming back
        send_id = comms(client, key, inv_id)[0]["send_id"]
        assert (
            delivery.process(SendMessage(tenant_id=tenant_id, invitation_id=inv_id, send_id=send_id, defer_round=1))
            == "sent"
        )
        assert delivery.process(SendMessage(tenant_id=tenant_id, invitation_id=inv_id, send_id=send_id)) == "duplicate"
    assert all(emails_to(f"victim{i}@example.org") == 1 for i in range(3))
    sent = [m for m in sent_emails() if "victim0@example.org" in str(m.destinations)]
    assert "via" in str(sent[0].source)  # the platform's honest "Lender via platform" display name
    assert [e["action"] for e in bootstrap.sending().audit_log(tenant_id)] == ["verified"]


def test_the_201st_email_of_the_first_day_waits_and_says_why(strict: None, client: Any, lender: dict[str, Any]) -> None:
    key, tenant_id = lender["api_key"], lender["tenant"]["tenant_id"]
    bootstrap.sending().verified(tenant_id)
    today = datetime.now(UTC).date()
    bootstrap.sending().repo.count(tenant_id, "email_sent", today, 199)  # 199 already out today
    first, second = create(client, key), create(client, key)
    drain(SEND_QUEUE)
    assert comms(client, key, first)[0]["status"] == "sent"  # the 200th
    (held,) = comms(client, key, second)
    assert held["status"] == "deferred"
    assert "quota of 200" in held["detail"] and (today + timedelta(days=1)).isoformat() in held["detail"]
    status, inv = call(client, "GET", f"/v1/invitations/{second}", key)
    assert inv["delivery_status"] == "held"  # still on its way (not failed), and it says it waits


def test_a_bounce_storm_pauses_the_lender(strict: None, client: Any, lender: dict[str, Any]) -> None:
    key, tenant_id = lender["api_key"], lender["tenant"]["tenant_id"]
    service = bootstrap.sending()
    service.verified(tenant_id)
    invitations = [create(client, key) for _ in range(3)]
    drain(SEND_QUEUE)
    service.repo.count(tenant_id, "email_sent", datetime.now(UTC).date(), 37)  # 40 sent in all today
    for n, inv_id in enumerate(invitations, start=1):
        (comm,) = comms(client, key, inv_id)
        _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
        body = sns_envelope(notification("ses_bounce_event.json", comm["provider_message_id"], inv["email"]))
        enqueue(SES_FEEDBACK_QUEUE, [body, body])  # each delivered twice: counted once
        drain(SES_FEEDBACK_QUEUE)
        _, me = call(client, "GET", "/v1/tenant", key)
        paused = me["sending"]["paused_at"] is not None
        assert paused == (n / 40 > BOUNCE_PAUSE_RATE), (n, me["sending"])
    assert "bounce rate 7.5%" in me["sending"]["paused_reason"]
    _, page = call(client, "GET", "/v1/notifications?type=sending_paused", key)
    assert len(page["items"]) == 1
    # Nothing more leaves until an operator looks.
    later = create(client, key)
    drain(SEND_QUEUE)
    assert comms(client, key, later)[0]["status"] == "deferred"
    assert [e["action"] for e in service.audit_log(tenant_id)] == ["verified", "paused"]


def zone_number(quiet: bool) -> str:
    """A mobile number whose zone is (or is not) in quiet hours right now."""
    candidates = ["+15145550123", "+14155550123", "+33612345678", "+819012345678", "+61412345678", "+18085550123"]
    for number in candidates:
        (zone,) = time_zones(number)[:1]
        hour = datetime.now(ZoneInfo(zone)).hour
        if (hour >= 21 or hour < 8) == quiet and hour not in (7, 20):  # away from the edges
            return number
    raise AssertionError("no candidate zone fits")


def test_an_sms_at_night_waits_for_eight_in_the_recipients_zone(
    strict: None, client: Any, lender: dict[str, Any]
) -> None:
    key, tenant_id = lender["api_key"], lender["tenant"]["tenant_id"]
    bootstrap.sending().verified(tenant_id)
    night, day = zone_number(quiet=True), zone_number(quiet=False)
    asleep = create(client, key, phone=night, channel="sms")
    awake = create(client, key, phone=day, channel="sms")
    drain(SEND_QUEUE)
    assert sms_to(night) == 0 and sms_to(day) == 1
    (held,) = comms(client, key, asleep)
    assert held["status"] == "deferred" and "21:00 and 08:00" in held["detail"]
    until = datetime.fromisoformat(held["detail"].rsplit("until ", 1)[1].rstrip(")"))
    assert until.astimezone(ZoneInfo(time_zones(night)[0])).hour == 8
    assert comms(client, key, awake)[0]["status"] == "sent"


def test_an_operator_suspension_stops_everything_and_is_audited(
    strict: None, client: Any, lender: dict[str, Any]
) -> None:
    from chalicelib.cli import main

    key, tenant_id = lender["api_key"], lender["tenant"]["tenant_id"]
    bootstrap.sending().verified(tenant_id)
    assert main(["suspend", tenant_id, "--reason", "phishing report #123"]) == 0
    held = create(client, key)
    drain(SEND_QUEUE)
    assert comms(client, key, held)[0]["status"] == "deferred"
    _, me = call(client, "GET", "/v1/tenant", key)
    assert me["sending"]["suspended_reason"] == "phishing report #123"
    assert main(["resume", tenant_id]) == 0
    log = bootstrap.sending().audit_log(tenant_id)
    assert [(e["action"], e["actor"]) for e in log] == [
        ("verified", "lender"),
        ("suspended", "operator"),
        ("resumed", "operator"),
    ]


def test_a_verification_link_is_single_use_and_a_new_one_replaces_it(
    strict: None, client: Any, lender: dict[str, Any]
) -> None:
    key, admin = lender["api_key"], lender["tenant"]["admin_email"]
    drain(SEND_QUEUE)
    (first,) = {m for e in sent_emails() if admin in str(e.destinations) for m in VERIFY_LINK.findall(e.body)}
    status, started = call(client, "POST", "/v1/tenant/verification", key)
    assert (status, started["sent_to"]) == (202, admin)
    drain(SEND_QUEUE)
    links = {m for e in sent_emails() if admin in str(e.destinations) for m in VERIFY_LINK.findall(e.body)}
    (second,) = links - {first}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.http.post(first, headers=form).status_code == 410  # replaced
    assert client.http.post(second, headers=form).status_code == 200
    status, body = call(client, "POST", "/v1/tenant/verification", key)
    assert status == 409, body
