"""The SES notification models against the documented examples (tests/events/ses_*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.domain.ses_events import BounceType, NotAnSesNotification, parse_feedback
from chalicelib.services.feedback import COMPLAINT, DELIVERY, HARD_BOUNCE, SOFT_BOUNCE, classify

EVENTS = Path(__file__).resolve().parents[1] / "events"


def fixture(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("name", "kind", "outcome"),
    [
        ("ses_bounce_notification.json", "Bounce", HARD_BOUNCE),
        ("ses_bounce_no_dsn_notification.json", "Bounce", HARD_BOUNCE),
        ("ses_complaint_notification.json", "Complaint", COMPLAINT),
        ("ses_delivery_notification.json", "Delivery", DELIVERY),
        ("ses_bounce_event.json", "Bounce", HARD_BOUNCE),
        ("ses_complaint_event.json", "Complaint", COMPLAINT),
        ("ses_delivery_event.json", "Delivery", DELIVERY),
        ("ses_send_event.json", "Send", None),
    ],
)
def test_documented_examples_parse_raw(name: str, kind: str, outcome: str | None) -> None:
    raw = fixture(name)
    message = parse_feedback(json.dumps(raw))

    assert message.sns_message_id is None
    assert message.notification is not None
    assert message.notification.kind == kind
    assert message.notification.mail.message_id == raw["mail"]["messageId"]
    assert classify(message.notification) == outcome


def test_both_spellings_of_the_type_are_accepted() -> None:
    identity = parse_feedback(json.dumps(fixture("ses_bounce_notification.json"))).notification
    published = parse_feedback(json.dumps(fixture("ses_bounce_event.json"))).notification
    assert identity is not None and published is not None
    assert identity.notification_type == "Bounce" and identity.event_type is None
    assert published.event_type == "Bounce" and published.notification_type is None
    assert identity.kind == published.kind == "Bounce"


def test_sns_envelope_is_unwrapped() -> None:
    envelope = fixture("ses_sns_envelope_bounce.json")
    message = parse_feedback(json.dumps(envelope))

    assert message.sns_message_id == envelope["MessageId"]
    n = message.notification
    assert n is not None
    assert n.bounce is not None
    assert n.bounce.bounce_type is BounceType.PERMANENT
    assert n.bounce.bounced_recipients[0].email_address == "jane@example.com"
    assert n.bounce.bounced_recipients[0].diagnostic_code == "smtp; 550 5.1.1 <jane@example.com>... User"
    assert n.recipients == ["jane@example.com"]


def test_event_ids_come_from_ses_and_are_stable() -> None:
    bounce = parse_feedback(json.dumps(fixture("ses_bounce_notification.json"))).notification
    complaint = parse_feedback(json.dumps(fixture("ses_complaint_notification.json"))).notification
    delivery = parse_feedback(json.dumps(fixture("ses_delivery_notification.json"))).notification
    assert bounce is not None and complaint is not None and delivery is not None
    assert bounce.event_id == "bounce:00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000"
    assert complaint.event_id == "complaint:000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
    assert delivery.event_id == "delivery:0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"
    wrapped = parse_feedback(json.dumps(fixture("ses_sns_envelope_bounce.json"))).notification
    assert wrapped is not None and wrapped.event_id == bounce.event_id


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_other_bounce_types_are_soft(bounce_type: str) -> None:
    raw = fixture("ses_bounce_event.json")
    raw["bounce"]["bounceType"] = bounce_type
    n = parse_feedback(json.dumps(raw)).notification
    assert n is not None
    assert classify(n) == SOFT_BOUNCE


def test_unknown_fields_are_ignored() -> None:
    raw = fixture("ses_delivery_event.json")
    raw["somethingNew"] = {"x": 1}
    raw["delivery"]["alsoNew"] = True
    n = parse_feedback(json.dumps(raw)).notification
    assert n is not None and n.delivery is not None
    assert n.delivery.recipients == ["recipient@example.com"]


def test_subscription_confirmation_has_no_notification() -> None:
    body = {"Type": "SubscriptionConfirmation", "MessageId": "m-1", "Message": "You have chosen to subscribe"}
    message = parse_feedback(json.dumps(body))
    assert message.notification is None
    assert message.sns_type == "SubscriptionConfirmation"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"mail": {"messageId": "x"}}),
        json.dumps({"notificationType": "Bounce", "mail": {"messageId": "x"}}),
        json.dumps(
            {
                "notificationType": "Bounce",
                "bounce": {"bounceType": "Sideways", "feedbackId": "f"},
                "mail": {"messageId": "x"},
            }
        ),
        json.dumps({"Type": "Notification", "MessageId": "m", "Message": "not json"}),
        json.dumps({"notificationType": "Delivery"}),
    ],
)
def test_bodies_that_are_not_ses_notifications_are_refused(body: str) -> None:
    with pytest.raises(NotAnSesNotification):
        parse_feedback(body)
