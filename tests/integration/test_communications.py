"""The lender-wide communication log: GET /v1/communications without invitation_id.

Messages really go through the send worker and SES feedback really changes their outcome, so the
listing is read back from the items production writes (and the key guard checks every query).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.config import SEND_QUEUE, SES_FEEDBACK_QUEUE
from tests.integration.feedback_helpers import PHONE, enqueue, invite, notification, sent_invitation, sns_envelope
from tests.integration.helpers import call, drain


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def log(client: Any, key: str, query: str = "") -> dict[str, Any]:
    status, body = call(client, "GET", f"/v1/communications{query}", key)
    assert status == 200, body
    return dict(body)


def every_page(client: Any, key: str, query: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    sep = "&" if query else "?"
    for _ in range(50):
        page = log(client, key, f"{query}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("the listing never ended")


@pytest.fixture
def sent(client: Any, key: str) -> dict[str, Any]:
    """Four invitations sent: email, email (bounced hard), both (email + SMS), email (complained)."""
    plain = invite(client, key)
    both = invite(client, key, phone=PHONE, channel="both")
    drain(SEND_QUEUE)
    bounced, bounced_msg = sent_invitation(client, key)
    complained, complained_msg = sent_invitation(client, key)
    enqueue(
        SES_FEEDBACK_QUEUE,
        [
            sns_envelope(notification("ses_bounce_event.json", bounced_msg, bounced["email"])),
            sns_envelope(notification("ses_complaint_event.json", complained_msg, complained["email"])),
        ],
    )
    drain(SES_FEEDBACK_QUEUE)
    return {"plain": plain, "both": both, "bounced": bounced, "complained": complained}


def test_lists_every_message_of_the_lender_newest_first_across_pages(
    client: Any, key: str, sent: dict[str, Any]
) -> None:
    items = every_page(client, key, "", limit=2)

    assert len(items) == 5  # four emails and one SMS
    assert len({c["communication_id"] for c in items}) == 5
    stamps = [(c["created_at"], c["communication_id"]) for c in items]
    assert stamps == sorted(stamps, reverse=True)
    assert {c["invitation_id"] for c in items} == {i["invitation_id"] for i in sent.values()}
    assert all("@" not in c["recipient"] or "*" in c["recipient"] for c in items)  # masked


def test_filters_by_channel_and_by_outcome_with_the_feedback_type(client: Any, key: str, sent: dict[str, Any]) -> None:
    sms = log(client, key, "?channel=sms")["items"]
    assert [(c["invitation_id"], c["channel"]) for c in sms] == [(sent["both"]["invitation_id"], "sms")]

    bounced = log(client, key, "?outcome=bounced")["items"]
    assert [c["invitation_id"] for c in bounced] == [sent["bounced"]["invitation_id"]]
    assert bounced[0]["detail"].startswith("Permanent/")  # the bounce type is shown

    complained = log(client, key, "?outcome=complained&channel=email")["items"]
    assert [c["invitation_id"] for c in complained] == [sent["complained"]["invitation_id"]]
    assert complained[0]["detail"]  # the complaint's feedback type

    # The feedback moved the message out of "sent": it is listed once, under its new outcome.
    still_sent = {c["invitation_id"] for c in every_page(client, key, "?outcome=sent", limit=10)}
    assert sent["bounced"]["invitation_id"] not in still_sent
    assert sent["plain"]["invitation_id"] in still_sent
    assert log(client, key, "?outcome=complained&channel=sms")["items"] == []


def test_filters_by_date_range(client: Any, key: str, sent: dict[str, Any]) -> None:
    today = datetime.now(UTC).date()
    assert len(log(client, key, f"?since={today}&until={today}")["items"]) == 5
    assert log(client, key, f"?until={today - timedelta(days=1)}")["items"] == []
    assert log(client, key, f"?since={today + timedelta(days=1)}")["items"] == []
    status, body = call(client, "GET", f"/v1/communications?since={today}&until={today - timedelta(days=1)}", key)
    assert status == 400, body


def test_one_invitations_log_keeps_its_shape_and_takes_the_filters(client: Any, key: str, sent: dict[str, Any]) -> None:
    inv = sent["both"]["invitation_id"]
    both = log(client, key, f"?invitation_id={inv}")
    assert sorted(c["channel"] for c in both["items"]) == ["email", "sms"]
    assert both["next_cursor"] is None
    assert [c["channel"] for c in log(client, key, f"?invitation_id={inv}&channel=sms")["items"]] == ["sms"]


def test_a_cursor_of_one_listing_is_refused_by_another(client: Any, key: str, sent: dict[str, Any]) -> None:
    cursor = log(client, key, "?limit=1")["next_cursor"]
    assert cursor
    status, body = call(client, "GET", f"/v1/communications?channel=email&cursor={cursor}", key)
    assert status == 400, body
    assert "cursor" in body["error"]["fields"]


def test_another_lender_sees_none_of_it(client: Any, key: str, sent: dict[str, Any]) -> None:
    status, other = call(
        client,
        "POST",
        "/v1/tenants",
        None,
        {"name": "Other Bank", "subdomain": "otherbank", "admin_email": "ops@otherbank.com"},
    )
    assert status == 201, other
    assert log(client, other["api_key"])["items"] == []
    assert log(client, other["api_key"], "?outcome=bounced")["items"] == []
    cursor = log(client, key, "?limit=1")["next_cursor"]
    status, body = call(client, "GET", f"/v1/communications?cursor={cursor}", other["api_key"])
    assert status == 400, body
