"""The sender name goes into every email's From header. A name with a line break, or one that looks like an email
address, is refused when it is saved (400 naming the field); one saved before that rule (or any send that can never
succeed) ends as a failed send with its reason, never stuck at ``queued`` on its way to the dead-letter queue."""

from __future__ import annotations

import email
import email.header
import json
from typing import Any

import boto3
import pytest

from chalicelib.config import SEND_QUEUE
from tests.integration.helpers import call, drain, sent_emails

BAD_NAMES = [
    ("Acme\r\nBcc: everyone@example.com", "control characters"),
    ("Acme\nLending", "control characters"),
    ("Acme\tLending", "control characters"),
    ("Acme\u2028Lending", "control characters"),
    ('Acme" <ceo@acme-lending.com>', "plain name"),
    ("ceo@acme-lending.com", "plain name"),
    ("Acme <Lending>", "plain name"),
]


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_a_sender_name_that_cannot_be_a_header_is_refused_at_save(
    client: Any, key: str, name: str, reason: str
) -> None:
    status, body = call(client, "PATCH", "/v1/tenant/settings", key, {"sender_name": name})
    assert status == 400, body
    assert reason in body["error"]["fields"]["sender_name"]
    _, settings = call(client, "GET", "/v1/tenant/settings", key)
    assert settings["sender_name"] is None


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES[:2] + BAD_NAMES[4:5])
def test_the_branding_display_name_and_the_lender_name_follow_the_same_rule(
    client: Any, key: str, name: str, reason: str
) -> None:
    status, body = call(client, "PATCH", "/v1/tenant/settings", key, {"branding": {"display_name": name}})
    assert status == 400 and reason in body["error"]["fields"]["branding.display_name"], body
    status, body = call(
        client, "POST", "/v1/tenants", None, {"name": name, "subdomain": "other-lender", "admin_email": "a@b.example"}
    )
    assert status == 400 and reason in body["error"]["fields"]["name"], body


def test_a_name_with_accents_commas_and_quotes_is_sent_encoded(client: Any, key: str) -> None:
    name = 'Crédit Zoë, "Prêts" inc.'
    status, body = call(client, "PATCH", "/v1/tenant/settings", key, {"sender_name": name})
    assert status == 200, body
    call(client, "POST", "/v1/invitations", key, {"email": "jane@smallbiz.com", "owner": "Olivia Officer"})
    assert drain(SEND_QUEUE) == 1
    (sent,) = sent_emails()
    # SES v2 takes a non-ASCII display name only as an RFC 2047 encoded word.
    assert sent.source.isascii()
    display, address = email.utils.parseaddr(sent.source)
    assert str(email.header.make_header(email.header.decode_header(display))) == f"{name} via MyOnboarding"
    assert address == "invitations@myonboarding.com"


def test_a_stored_bad_sender_name_fails_the_send_with_its_reason(
    client: Any, lender: dict[str, Any], aws: dict[str, str]
) -> None:
    # Saved before the rule existed: written straight into the table.
    boto3.client("dynamodb").update_item(
        TableName=aws["TABLE_NAME"],
        Key={"PK": {"S": f"TENANT#{lender['tenant']['tenant_id']}"}, "SK": {"S": "TENANT"}},
        UpdateExpression="SET #s.#n = :v",
        ExpressionAttributeNames={"#s": "settings", "#n": "sender_name"},
        ExpressionAttributeValues={":v": {"S": "Acme\r\nBcc: everyone@example.com"}},
    )
    key = lender["api_key"]
    _, inv = call(client, "POST", "/v1/invitations", key, {"email": "jane@smallbiz.com", "owner": "Olivia Officer"})

    assert drain(SEND_QUEUE) == 1  # handled on the first receive: no retries, nothing for the dead-letter queue
    assert sent_emails() == []
    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert current["delivery_status"] == "failed"
    _, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    (comm,) = log["items"]
    assert comm["status"] == "refused"
    assert "sender_name" in comm["detail"]
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    assert history["items"][-1]["type"] == "send_failed"
    assert "sender_name" in json.dumps(history["items"][-1]["details"])


class BrokenMailer:
    """An email service whose client breaks in a way nobody classified (neither refused nor unavailable)."""

    def send(self, email: Any) -> str:
        raise RuntimeError("a bug in the email adapter")


def test_a_send_that_keeps_failing_unexpectedly_ends_failed_not_queued(
    client: Any, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import bootstrap

    monkeypatch.setattr(bootstrap.delivery(), "mailer", BrokenMailer())
    key = lender["api_key"]
    _, inv = call(client, "POST", "/v1/invitations", key, {"email": "jane@smallbiz.com", "owner": "Olivia Officer"})

    drain(SEND_QUEUE)  # five receives, then the dead-letter queue

    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert current["delivery_status"] == "failed"
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    assert history["items"][-1]["type"] == "send_failed"
    assert history["items"][-1]["details"]["reasons"] == {"error": "an unexpected error (see the logs)"}
