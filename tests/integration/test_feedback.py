"""SES feedback, SMS opt-outs and portal completions on the embedded AWS, through the real queues."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.config import PORTAL_EVENTS_QUEUE, SEND_QUEUE, SES_FEEDBACK_QUEUE, WEBHOOK_QUEUE
from chalicelib.domain.ses_events import parse_feedback
from chalicelib.services.invitations import InvitationService
from devstack.poller import sqs_sources
from tests.integration.feedback_helpers import (
    PHONE,
    context,
    enqueue,
    history_types,
    lambda_batch,
    notification,
    sent_invitation,
    sns_envelope,
)
from tests.integration.helpers import call, drain, sent_emails, sent_sms


@pytest.fixture(autouse=True)
def _immediate_retries(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSIENT_BOUNCE_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("INVITATION_RESEND_COOLDOWN_SECONDS", "0")
    bootstrap.reset()


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def handler(queue: str) -> Any:
    from app import app

    return next(h for cfg, h in sqs_sources(app) if cfg.queue == queue)


def get(client: Any, key: str, invitation_id: str) -> dict[str, Any]:
    status, inv = call(client, "GET", f"/v1/invitations/{invitation_id}", key)
    assert status == 200, inv
    return dict(inv)


def notifications(client: Any, key: str) -> dict[str, Any]:
    status, page = call(client, "GET", "/v1/notifications", key)
    assert status == 200, page
    return dict(page)


def sms_to(phone: str) -> int:
    return sum(1 for _, message in sent_sms() if message[0] == phone)


def emails_to(address: str) -> int:
    return sum(1 for m in sent_emails() if address in str(m.destinations))


def test_hard_bounce_suppresses_falls_back_to_sms_once_and_notifies(client: Any, key: str) -> None:
    inv, message_id = sent_invitation(client, key, phone=PHONE)
    body = sns_envelope(notification("ses_bounce_event.json", message_id, inv["email"], feedback_id="fb-hard"))

    enqueue(SES_FEEDBACK_QUEUE, [body, body, body])
    drain(SES_FEEDBACK_QUEUE)
    drain(SEND_QUEUE)

    after = get(client, key, inv["invitation_id"])
    assert after["delivery_status"] == "bounced"
    assert sms_to(PHONE) == 1
    types = Counter(history_types(client, key, inv["invitation_id"]))
    assert types["bounced"] == 1
    assert types["fallback_sms_sent"] == 1
    _, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    statuses = {c["channel"]: c["status"] for c in log["items"]}
    assert statuses == {"email": "bounced", "sms": "sent"}
    page = notifications(client, key)
    assert page["unread_count"] == 1
    assert [(n["type"], n["data"]["sms_fallback"]) for n in page["items"]] == [("bounce", True)]
    # The address is suppressed: a resend by email is refused with the reason.
    status, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert result["results"][0]["outcome"] == "refused"
    assert "suppressed after a hard bounce" in result["results"][0]["reason"]


def test_each_message_type_three_times_shuffled_has_one_effect(client: Any, key: str) -> None:
    hard, hard_id = sent_invitation(client, key, phone=PHONE)
    soft, soft_id = sent_invitation(client, key)
    complained, complained_id = sent_invitation(client, key)
    delivered, delivered_id = sent_invitation(client, key)
    payloads = [
        notification("ses_bounce_notification.json", hard_id, hard["email"], feedback_id="fb-h"),
        notification("ses_bounce_event.json", soft_id, soft["email"], feedback_id="fb-s", bounce_type="Transient"),
        notification("ses_complaint_notification.json", complained_id, complained["email"], feedback_id="fb-c"),
        notification("ses_delivery_event.json", delivered_id, delivered["email"]),
    ]
    # Three deliveries of each: the same SNS message redelivered, and SES publishing it again.
    bodies = [sns_envelope(p, sns_message_id=f"sns-{i}") for i, p in enumerate(payloads)] * 2
    bodies += [json.dumps(p) for p in payloads]  # raw message delivery
    random.Random(7).shuffle(bodies)

    enqueue(SES_FEEDBACK_QUEUE, bodies)
    drain(SES_FEEDBACK_QUEUE)
    drain(SEND_QUEUE)

    assert get(client, key, hard["invitation_id"])["delivery_status"] == "bounced"
    assert get(client, key, complained["invitation_id"])["delivery_status"] == "complained"
    assert get(client, key, delivered["invitation_id"])["delivery_status"] == "delivered"
    assert get(client, key, soft["invitation_id"])["delivery_status"] == "sent"  # its retry went out
    assert Counter(history_types(client, key, hard["invitation_id"]))["bounced"] == 1
    assert Counter(history_types(client, key, complained["invitation_id"]))["complained"] == 1
    assert Counter(history_types(client, key, delivered["invitation_id"]))["delivered"] == 1
    soft_history = Counter(history_types(client, key, soft["invitation_id"]))
    assert (soft_history["soft_bounced"], soft_history["retry_scheduled"]) == (1, 1)
    assert emails_to(soft["email"]) == 2  # the original and one retry
    assert sms_to(PHONE) == 1
    kinds = Counter(n["type"] for n in notifications(client, key)["items"])
    assert kinds == Counter({"bounce": 1, "complaint": 1})
    s = bootstrap.services()
    tenant_id = hard["tenant_id"]
    assert s.invitation_repo.suppressed(tenant_id, hard["email"])["reason"] == "hard bounce"
    assert s.invitation_repo.suppressed(tenant_id, complained["email"])["reason"] == "complaint"
    assert s.invitation_repo.suppressed(tenant_id, soft["email"]) is None


def test_transient_bounces_are_retried_three_times_then_failed(client: Any, key: str) -> None:
    inv, message_id = sent_invitation(client, key)
    for attempt in range(4):
        body = sns_envelope(notification("ses_bounce_event.json", message_id, inv["email"], bounce_type="Transient"))
        enqueue(SES_FEEDBACK_QUEUE, [body])
        drain(SES_FEEDBACK_QUEUE)
        drain(SEND_QUEUE)
        _, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
        message_id = [c for c in log["items"] if c["channel"] == "email"][-1]["provider_message_id"]
        assert len([c for c in log["items"] if c["channel"] == "email"]) == min(attempt + 2, 4)

    assert emails_to(inv["email"]) == 4  # the original and three retries, no more
    after = get(client, key, inv["invitation_id"])
    assert after["delivery_status"] == "failed"
    assert Counter(history_types(client, key, inv["invitation_id"]))["retries_exhausted"] == 1
    page = notifications(client, key)
    assert [(n["type"], n["data"]["bounce_type"]) for n in page["items"]] == [("bounce", "Transient")]


def test_delivery_after_bounce_does_not_undo_it(client: Any, key: str) -> None:
    inv, message_id = sent_invitation(client, key)
    enqueue(SES_FEEDBACK_QUEUE, [sns_envelope(notification("ses_bounce_event.json", message_id, inv["email"]))])
    enqueue(SES_FEEDBACK_QUEUE, [sns_envelope(notification("ses_delivery_event.json", message_id, inv["email"]))])
    drain(SES_FEEDBACK_QUEUE)
    assert get(client, key, inv["invitation_id"])["delivery_status"] == "bounced"


def test_unknown_ses_message_id_is_acknowledged_and_logged(
    client: Any, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = sns_envelope(notification("ses_bounce_event.json", "0000-not-ours-000000", "someone@example.com"))
    event, _ = lambda_batch([body], SES_FEEDBACK_QUEUE)

    with caplog.at_level("INFO"):
        result = handler(SES_FEEDBACK_QUEUE)(event, context("ses_feedback_worker"))

    assert result == {"batchItemFailures": []}
    logged = [r for r in caplog.records if r.getMessage() == "SES feedback for an unknown message id acknowledged"]
    assert [getattr(r, "ses_message_id", None) for r in logged] == ["0000-not-ours-000000"]
    assert all("someone@example.com" not in str(r.__dict__) for r in caplog.records)  # no personal data


@pytest.mark.parametrize("queue", [SES_FEEDBACK_QUEUE, PORTAL_EVENTS_QUEUE, WEBHOOK_QUEUE])
def test_a_poison_record_at_each_position_is_reported_alone(client: Any, key: str, queue: str) -> None:
    good = {
        SES_FEEDBACK_QUEUE: sns_envelope(notification("ses_delivery_event.json", "not-ours", "x@example.com")),
        PORTAL_EVENTS_QUEUE: json.dumps(
            {"type": "portal_completed", "event_id": "e", "tenant_id": "t_missing", "invitation_id": "inv_x"}
        ),
        WEBHOOK_QUEUE: json.dumps({"type": "webhook", "tenant_id": "t_missing", "event_id": "evt_x"}),
    }[queue]
    run = handler(queue)
    for position in range(10):
        bodies = [good] * 10
        bodies[position] = '{"this is": "not a message"'
        event, ids = lambda_batch(bodies, queue)

        result = run(event, context("worker"))

        assert result == {"batchItemFailures": [{"itemIdentifier": ids[position]}]}


def test_poison_messages_reach_the_dlq_after_max_receive_count(client: Any) -> None:
    import boto3

    enqueue(SES_FEEDBACK_QUEUE, ["definitely not SES"])
    for _ in range(8):
        drain(SES_FEEDBACK_QUEUE, rounds=1)
    sqs = boto3.client("sqs")
    dlq = sqs.get_queue_url(QueueName=f"{SES_FEEDBACK_QUEUE}-dlq")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in messages] == ["definitely not SES"]


class CrashAfterWrite(InvitationService):
    """The process dies right after the DynamoDB write, before (or just after) the SQS send."""

    def __init__(self, base: InvitationService, enqueue_first: bool) -> None:
        super().__init__(base.repo, base.queue, base.settings, link_key=base.link_key)
        self.enqueue_first = enqueue_first

    def enqueue_send(self, inv: Any, send_id: str, delay_seconds: int = 0) -> None:
        if self.enqueue_first:
            super().enqueue_send(inv, send_id, delay_seconds)
        raise RuntimeError("the Lambda ran out of time")


@pytest.mark.parametrize("enqueue_first", [False, True])
def test_crash_between_write_and_send_then_redelivery_sends_one_sms(client: Any, key: str, enqueue_first: bool) -> None:
    from chalicelib.adapters.dynamo.notifications import EventMarkers
    from chalicelib.services.feedback import FeedbackService

    inv, message_id = sent_invitation(client, key, phone=PHONE)
    body = sns_envelope(notification("ses_bounce_event.json", message_id, inv["email"], feedback_id="fb-crash"))
    s = bootstrap.services()
    crashing = FeedbackService(
        repo=s.invitation_repo,
        markers=EventMarkers(s.table),
        tenants=s.tenant_repo,
        invitations=CrashAfterWrite(s.invitations, enqueue_first),
        notifications=bootstrap.notifications(),
        settings=s.settings,
    )
    with pytest.raises(RuntimeError):
        crashing.handle_ses(parse_feedback(body))
    assert "fallback_sms_sent" in history_types(client, key, inv["invitation_id"])

    enqueue(SES_FEEDBACK_QUEUE, [body])  # SQS redelivers the record that crashed
    drain(SES_FEEDBACK_QUEUE)
    drain(SEND_QUEUE)

    assert sms_to(PHONE) == 1
    assert Counter(history_types(client, key, inv["invitation_id"]))["fallback_sms_sent"] == 1
    assert notifications(client, key)["unread_count"] == 1


def test_opted_out_number_is_marked_never_retried_and_notified(client: Any, key: str) -> None:
    from tests.integration.feedback_helpers import invite

    opted_out = "+15145550199"  # moto: numbers ending in 99 opted out
    inv = invite(client, key, phone=opted_out, channel="sms")
    drain(SEND_QUEUE)

    assert get(client, key, inv["invitation_id"])["delivery_status"] == "opted_out"
    assert sms_to(opted_out) == 0
    page = notifications(client, key)
    assert [n["type"] for n in page["items"]] == ["opt_out"]
    status, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert result["results"][0]["outcome"] == "refused"
    assert "opted out of SMS" in result["results"][0]["reason"]
    # Switching the invitation to email works: only the number is blocked.
    status, edited = call(
        client, "PATCH", f"/v1/invitations/{inv['invitation_id']}", key, {"channel": "email", "send": True}
    )
    assert status == 200, edited


def test_portal_completion_three_times_shuffled_has_one_effect(client: Any, key: str) -> None:
    from tests.integration.feedback_helpers import invite

    first = invite(client, key)
    second = invite(client, key)
    bodies = []
    for inv in (first, second):
        bodies += [
            json.dumps(
                {
                    "type": "portal_completed",
                    "event_id": f"pe-{inv['invitation_id']}",
                    "tenant_id": inv["tenant_id"],
                    "invitation_id": inv["invitation_id"],
                    "at": "2026-01-05T10:00:00Z",
                }
            )
        ] * 3
    random.Random(3).shuffle(bodies)

    enqueue(PORTAL_EVENTS_QUEUE, bodies)
    drain(PORTAL_EVENTS_QUEUE)

    for inv in (first, second):
        assert get(client, key, inv["invitation_id"])["portal_status"] == "completed"
        assert Counter(history_types(client, key, inv["invitation_id"]))["portal_completed"] == 1
    page = notifications(client, key)
    assert sorted(n["invitation_id"] for n in page["items"] if n["type"] == "completion") == sorted(
        [first["invitation_id"], second["invitation_id"]]
    )
    assert page["unread_count"] == 2


def test_portal_event_for_another_lenders_invitation_changes_nothing(client: Any, key: str) -> None:
    from tests.integration.feedback_helpers import invite

    inv = invite(client, key)
    body = {
        "type": "portal_completed",
        "event_id": str(uuid.uuid4()),
        "tenant_id": "ten_someone_else",
        "invitation_id": inv["invitation_id"],
    }
    enqueue(PORTAL_EVENTS_QUEUE, [json.dumps(body)])
    drain(PORTAL_EVENTS_QUEUE)
    assert get(client, key, inv["invitation_id"])["portal_status"] == "not_started"
