from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.config import SEND_QUEUE
from tests.integration.helpers import call, drain, sent_emails, sent_sms


def invite(client: Any, key: str, **fields: Any) -> tuple[int, Any]:
    body = {"email": "jane@smallbiz.com", "owner": "Olivia Officer", **fields}
    return call(client, "POST", "/v1/invitations", key, body)


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def test_create_normalises_and_defaults(client: Any, key: str) -> None:
    status, inv = invite(client, key, email=" Jane@SmallBiz.com ", phone="(514) 555-0199", first_name="Jane")
    assert status == 201, inv
    assert inv["email"] == "jane@smallbiz.com"
    assert inv["phone"] == "+15145550199"
    assert inv["status"] == "PENDING"
    assert inv["delivery_status"] == "queued"
    assert inv["portal_status"] == "not_started"
    assert inv["banking_integration"] == "waterfall"
    assert inv["channel"] == "email"
    assert inv["locale"] == "en"
    assert "link_nonce" not in inv


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"owner": "O"}, {"email"}),
        ({"email": "jane@smallbiz.com"}, {"owner"}),
        ({"email": "not-an-email", "owner": "O"}, {"email"}),
        ({"email": "jane@smallbiz.com", "owner": "O", "phone": "12"}, {"phone"}),
        ({"email": "jane@smallbiz.com", "owner": "O", "channel": "sms"}, {"body"}),
        ({"email": "jane@smallbiz.com", "owner": "O", "banking_integration": "yodlee"}, {"banking_integration"}),
        ({"email": "jane@smallbiz.com", "owner": "O", "surprise": 1}, {"surprise"}),
    ],
)
def test_create_validation_names_fields(client: Any, key: str, body: dict[str, Any], fields: set[str]) -> None:
    status, payload = call(client, "POST", "/v1/invitations", key, body)
    assert status == 400
    assert set(payload["error"]["fields"]) == fields
    if fields == {"body"}:
        assert "phone is required" in payload["error"]["fields"]["body"]


def test_duplicate_open_invitation_is_409_naming_it(client: Any, key: str) -> None:
    _, first = invite(client, key)
    status, payload = invite(client, key, email="JANE@smallbiz.com")
    assert status == 409
    assert first["invitation_id"] in payload["error"]["message"]
    status, second = invite(client, key, business_legal_name="Jane's Bakery Inc.")
    assert status == 201
    status, _ = invite(client, key, business_legal_name="janes bakery inc")
    assert status == 409


def test_idempotency_key_replays_and_refuses_other_body(client: Any, key: str) -> None:
    body = {"email": "idem@smallbiz.com", "owner": "O"}
    s1, a = call(client, "POST", "/v1/invitations", key, body, **{"Idempotency-Key": "k-1"})
    s2, b = call(client, "POST", "/v1/invitations", key, body, **{"Idempotency-Key": "k-1"})
    assert (s1, s2) == (201, 201)
    assert a["invitation_id"] == b["invitation_id"]
    s3, c = call(client, "POST", "/v1/invitations", key, {**body, "owner": "Other"}, **{"Idempotency-Key": "k-1"})
    assert s3 == 422
    assert c["error"]["code"] == "idempotency_key_reused"
    _, page = call(client, "GET", "/v1/invitations", key)
    assert len(page["items"]) == 1


def test_list_filters_newest_first_and_cursor(client: Any, key: str) -> None:
    ids = []
    for i in range(5):
        _, inv = invite(client, key, email=f"c{i}@smallbiz.com", owner="Ann" if i % 2 else "Bob", send=False)
        ids.append(inv["invitation_id"])
    _, page = call(client, "GET", "/v1/invitations?limit=2", key)
    assert [i["invitation_id"] for i in page["items"]] == ids[::-1][:2]
    seen = [i["invitation_id"] for i in page["items"]]
    while page["next_cursor"]:
        _, page = call(client, "GET", f"/v1/invitations?limit=2&cursor={page['next_cursor']}", key)
        seen += [i["invitation_id"] for i in page["items"]]
    assert seen == ids[::-1]
    _, anns = call(client, "GET", "/v1/invitations?owner=ann", key)
    assert {i["invitation_id"] for i in anns["items"]} == {ids[1], ids[3]}
    _, pending = call(client, "GET", "/v1/invitations?status=PENDING&delivery_status=not_sent", key)
    assert len(pending["items"]) == 5
    _, by_email = call(client, "GET", "/v1/invitations?email=C3@smallbiz.com", key)
    assert [i["invitation_id"] for i in by_email["items"]] == [ids[3]]
    status, bad = call(client, "GET", "/v1/invitations?status=WHATEVER", key)
    assert status == 400 and "status" in bad["error"]["fields"]
    status, bad = call(client, "GET", "/v1/invitations?cursor=garbage", key)
    assert status == 400 and "cursor" in bad["error"]["fields"]


def test_send_worker_sends_email_once_and_records_everything(client: Any, key: str) -> None:
    _, inv = invite(client, key, first_name="Jane", phone="+15145550123", channel="both")
    assert drain(SEND_QUEUE) == 1
    emails = sent_emails()
    assert len(emails) == 1
    assert emails[0].destinations["ToAddresses"] == ["jane@smallbiz.com"]
    links = re.findall(r"http://testserver/portal/[A-Za-z0-9_-]+", emails[0].body)
    assert links
    sms = sent_sms()
    assert len(sms) == 1 and links[0] in sms[0][1][1]

    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert current["delivery_status"] == "sent"
    _, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    channels = {c["channel"]: c for c in log["items"]}
    assert set(channels) == {"email", "sms"}
    assert channels["email"]["recipient"] == "j***@smallbiz.com"
    assert channels["email"]["provider_message_id"]
    assert channels["sms"]["recipient"] == "***23"
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    assert [e["type"] for e in history["items"]] == ["created", "send_requested", "sent"]

    page = client.http.get(links[0].replace("http://testserver", ""))
    assert page.status_code == 200
    _, opened = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert opened["portal_status"] == "opened"


def test_opted_out_number_is_marked_and_not_sent(client: Any, key: str) -> None:
    # moto's SNS reports every number ending in 99 as opted out.
    _, inv = invite(client, key, phone="+15145550199", channel="sms")
    drain(SEND_QUEUE)
    assert sent_sms() == []
    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert current["delivery_status"] == "opted_out"
    _, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    assert [c["status"] for c in log["items"]] == ["opted_out"]


def test_redelivered_sends_never_send_twice(client: Any, key: str, aws: dict[str, str]) -> None:
    """Every send-queue message delivered three times, shuffled: exactly one email per send."""
    import random

    import boto3

    sqs = boto3.client("sqs")
    for i in range(4):
        invite(client, key, email=f"r{i}@smallbiz.com")
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=aws["SEND_QUEUE_URL"], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        messages += got
        for m in got:
            sqs.delete_message(QueueUrl=aws["SEND_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"])
    assert len(messages) == 4
    copies = [m["Body"] for m in messages] * 3
    random.Random(7).shuffle(copies)
    for body in copies:
        sqs.send_message(QueueUrl=aws["SEND_QUEUE_URL"], MessageBody=body)
    drain(SEND_QUEUE)
    recipients = sorted(e.destinations["ToAddresses"][0] for e in sent_emails())
    assert recipients == [f"r{i}@smallbiz.com" for i in range(4)]


def test_resend_rotates_link_cooldown_and_outcomes(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, inv = invite(client, key)
    drain(SEND_QUEUE)
    old_link = re.findall(r"/portal/[A-Za-z0-9_-]+", sent_emails()[0].body)[0]
    assert client.http.get(old_link).status_code == 200

    status, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert status == 429
    assert result["results"][0]["outcome"] == "rate_limited"
    assert result["results"][0]["retry_after"] > 0

    from chalicelib.domain import invitation as domain

    real_now = domain.utcnow
    monkeypatch.setattr("chalicelib.services.invitations.utcnow", lambda: real_now() + timedelta(seconds=61))
    status, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"], "inv_missing"]})
    assert status == 200
    assert [r["outcome"] for r in result["results"]] == ["queued", "not_found"]
    drain(SEND_QUEUE)
    assert len(sent_emails()) == 2
    new_link = re.findall(r"/portal/[A-Za-z0-9_-]+", sent_emails()[1].body)[0]
    assert new_link != old_link
    assert client.http.get(old_link).status_code == 404
    assert client.http.get(new_link).status_code == 200


def test_send_limit_is_refused(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVITATION_MAX_SENDS", "1")
    monkeypatch.setenv("INVITATION_RESEND_COOLDOWN_SECONDS", "0")
    from chalicelib import bootstrap

    bootstrap.reset()
    _, inv = invite(client, key)
    _, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert result["results"][0]["outcome"] == "refused"
    assert "already sent 1 times" in result["results"][0]["reason"]


def test_edit_only_while_pending_with_send(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVITATION_RESEND_COOLDOWN_SECONDS", "0")
    from chalicelib import bootstrap

    bootstrap.reset()
    _, inv = invite(client, key, send=False)
    status, edited = call(
        client,
        "PATCH",
        f"/v1/invitations/{inv['invitation_id']}",
        key,
        {"email": "new@smallbiz.com", "first_name": "Janet", "send": True},
    )
    assert status == 200, edited
    assert edited["email"] == "new@smallbiz.com" and edited["version"] == 2
    drain(SEND_QUEUE)
    assert sent_emails()[0].destinations["ToAddresses"] == ["new@smallbiz.com"]
    # the old email is free again, the new one is taken
    assert invite(client, key)[0] == 201
    assert invite(client, key, email="new@smallbiz.com")[0] == 409
    status, stale = call(
        client, "PATCH", f"/v1/invitations/{inv['invitation_id']}", key, {"owner": "X", "expected_version": 1}
    )
    assert status == 409 and stale["error"]["code"] == "concurrent_modification"
    status, bad = call(client, "PATCH", f"/v1/invitations/{inv['invitation_id']}", key, {"phone": "nope"})
    assert status == 400 and "phone" in bad["error"]["fields"]


def _force_status(aws: dict[str, str], tenant_id: str, invitation_id: str, status: str) -> None:
    import boto3

    boto3.client("dynamodb").update_item(
        TableName=aws["TABLE_NAME"],
        Key={"PK": {"S": f"TENANT#{tenant_id}"}, "SK": {"S": f"INV#{invitation_id}"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


def test_joined_invitation_cannot_be_edited_deleted_or_resent(
    client: Any, lender: dict[str, Any], aws: dict[str, str]
) -> None:
    key = lender["api_key"]
    _, inv = invite(client, key, send=False)
    _force_status(aws, lender["tenant"]["tenant_id"], inv["invitation_id"], "JOINED")
    status, payload = call(client, "PATCH", f"/v1/invitations/{inv['invitation_id']}", key, {"owner": "X"})
    assert status == 409 and "only PENDING invitations can be edited" in payload["error"]["message"]
    status, payload = call(client, "DELETE", f"/v1/invitations/{inv['invitation_id']}", key)
    assert status == 409 and "/v1/customers/" in payload["error"]["message"]
    _, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert result["results"][0]["outcome"] == "refused"


def test_delete_pending_invitation(client: Any, key: str) -> None:
    _, inv = invite(client, key)
    link = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/portal-link", key)[1]["url"]
    status, _ = call(client, "DELETE", f"/v1/invitations/{inv['invitation_id']}", key)
    assert status == 204
    assert call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)[0] == 404
    assert client.http.get(link.replace("http://testserver", "")).status_code == 404
    assert drain(SEND_QUEUE) == 1  # the queued send is acknowledged, not sent
    assert sent_emails() == []
    assert invite(client, key)[0] == 201


def test_portal_link_is_current_and_rotated_when_expired(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, inv = invite(client, key, send=False)
    status, link = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/portal-link", key)
    assert status == 200
    assert link["url"].startswith("http://testserver/portal/")
    assert call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/portal-link", key)[1]["url"] == link["url"]
    later = datetime.now(UTC) + timedelta(days=15)
    monkeypatch.setattr("chalicelib.services.invitations.utcnow", lambda: later)
    rotated = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/portal-link", key)[1]
    assert rotated["url"] != link["url"]
    assert datetime.fromisoformat(rotated["expires_at"]) > later


def test_suppressed_address_is_refused_with_reason(
    client: Any, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.bootstrap import services

    key = lender["api_key"]
    _, inv = invite(client, key, send=False)
    services().invitation_repo.suppress(
        lender["tenant"]["tenant_id"], "jane@smallbiz.com", "hard bounce", datetime.now(UTC)
    )
    _, result = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert result["results"][0]["outcome"] == "refused"
    assert "suppressed after a hard bounce" in result["results"][0]["reason"]


def test_not_found_and_other_ids(client: Any, key: str) -> None:
    assert call(client, "GET", "/v1/invitations/inv_nope", key)[0] == 404
    assert call(client, "GET", "/v1/invitations/whatever", key)[0] == 404
    assert call(client, "GET", "/v1/invitations/inv_nope/history", key)[0] == 404


def test_openapi_covers_every_v1_route(client: Any) -> None:
    import json

    from app import app

    doc = json.loads(client.http.get("/openapi.json").body)
    assert doc["openapi"].startswith("3.1")
    for path, route in app.routes.items():
        if path.startswith("/v1"):
            for method in route:
                assert method.lower() in doc["paths"][path], (path, method)
    create = doc["paths"]["/v1/invitations"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert {"400", "401", "409", "422"} <= set(create["responses"])


@pytest.mark.parametrize("phone", ["+1 900 555 0123", "+1 800 555 0123"])
def test_premium_rate_and_toll_free_numbers_are_refused_naming_phone(
    client: Any, lender: dict[str, Any], phone: str
) -> None:
    status, body = call(
        client,
        "POST",
        "/v1/invitations",
        lender["api_key"],
        {"email": "jo@smallbiz.com", "owner": "O", "phone": phone, "channel": "sms"},
    )
    assert status == 400, body
    assert list(body["error"]["fields"]) == ["phone"]
    assert "only a mobile number" in body["error"]["fields"]["phone"]
