"""Messages held while the lender's admin email was unconfirmed (walk-through #10): confirming releases them at
once, oldest first, not at the 15-minute retry; a held message that is no longer wanted says so in the log
(replaced by a newer one, or not needed once the customer joined), and the invitation's delivery status says
what really happened. Nothing goes twice: the delayed copies that come back later are duplicates."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.config import SEND_QUEUE
from chalicelib.services.delivery import SendMessage
from tests.integration.console_helpers import sign_up
from tests.integration.helpers import call, drain, sent_emails
from tests.integration.test_join import join, settings
from tests.integration.test_sending_safety import VERIFY_LINK, comms, create


@pytest.fixture
def strict(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENDER_VERIFICATION_REQUIRED", "true")
    monkeypatch.setenv("INVITATION_RESEND_COOLDOWN_SECONDS", "0")
    bootstrap.reset()


def _recipients(addresses: set[str]) -> list[str]:
    """Who among ``addresses`` got an email, in the order the emails went."""
    return [d for m in sent_emails() for d in m.destinations["ToAddresses"] if d in addresses]


def test_confirming_the_admin_email_releases_held_messages_at_once_oldest_first(strict: None, client: Any) -> None:
    browser, lender = sign_up(client, subdomain="acme")
    key, admin = lender["api_key"], lender["admin_email"]
    session = bootstrap.staff().session(browser.cookies["console_session"])
    assert session is not None
    tenant_id = session.tenant.tenant_id
    settings(client, key, require_email_confirmation=False)
    first = create(client, key, email="first@example.org")
    replaced = create(client, key, email="second@example.org")
    joined = create(client, key, email="jane@smallbiz.com")
    last = create(client, key, email="last@example.org")
    drain(SEND_QUEUE)
    for inv_id in (first, replaced, joined, last):
        (comm,) = comms(client, key, inv_id)
        assert comm["status"] == "deferred", comm
    old_send = comms(client, key, replaced)[0]["send_id"]
    # Held as well: the lender sends the second one again, and Jane joins before anything went.
    status, resent = call(client, "POST", "/v1/invitations/resend", key, {"ids": [replaced]})
    assert status == 200 and resent["results"][0]["outcome"] == "queued", resent
    assert join(client).status_code in (200, 201, 303)
    drain(SEND_QUEUE)
    addresses = {"first@example.org", "second@example.org", "jane@smallbiz.com", "last@example.org"}
    assert _recipients(addresses) == []

    (path,) = {m for e in sent_emails() if admin in str(e.destinations) for m in VERIFY_LINK.findall(e.body)}
    done = client.http.post(path, headers={"Content-Type": "application/x-www-form-urlencoded"}, body="")
    assert done.status_code == 200
    drain(SEND_QUEUE)  # no waiting for the 15-minute retry

    # Oldest first: the second customer's message is the resend, made after the last customer was invited.
    assert _recipients(addresses) == ["first@example.org", "last@example.org", "second@example.org"]
    for inv_id in (first, last):
        (comm,) = comms(client, key, inv_id)
        assert comm["status"] == "sent", comm
    by_send = {c["send_id"]: c for c in comms(client, key, replaced)}
    assert by_send[old_send]["status"] == "replaced", by_send
    assert {c["status"] for s, c in by_send.items() if s != old_send} == {"sent"}
    (jane,) = comms(client, key, joined)
    assert jane["status"] == "not_needed" and "joined" in jane["detail"], jane
    _, current = call(client, "GET", f"/v1/invitations/{joined}", key)
    assert current["status"] == "JOINED" and current["delivery_status"] == "not_sent", current
    _, current = call(client, "GET", f"/v1/invitations/{first}", key)
    assert current["delivery_status"] == "sent"

    # The delayed copies of the first deferral come back 15 minutes later: nothing goes twice.
    delivery = bootstrap.delivery()
    for inv_id in (first, replaced, joined, last):
        for comm in comms(client, key, inv_id):
            again = SendMessage(tenant_id=tenant_id, invitation_id=inv_id, send_id=comm["send_id"], defer_round=1)
            assert delivery.process(again) == "duplicate"
    drain(SEND_QUEUE)
    assert sorted(_recipients(addresses)) == ["first@example.org", "last@example.org", "second@example.org"]

    # The console says it in words: no JOINED row left "queued", the log names what became of each.
    listing = browser.get("/console/invitations?tab=all").text
    assert "queued" not in listing.lower()
    log = browser.get("/console/communications").text
    assert "replaced" in log and "not needed" in log and "deferred" not in log


def test_a_held_message_shows_held_until_it_goes(strict: None, client: Any) -> None:
    """Walk-through #10/#20: the list's Delivery column agrees with the communication log. A message held for
    the unconfirmed admin email is "held" (not "queued"), and "sent" once confirming releases it."""
    browser, lender = sign_up(client, subdomain="acme")
    key, admin = lender["api_key"], lender["admin_email"]
    waiting = create(client, key, email="waiting@example.org")
    drain(SEND_QUEUE)
    (comm,) = comms(client, key, waiting)
    assert comm["status"] == "deferred", comm
    _, current = call(client, "GET", f"/v1/invitations/{waiting}", key)
    assert current["delivery_status"] == "held", current
    _, held = call(client, "GET", "/v1/invitations?delivery_status=held", key)
    assert [i["invitation_id"] for i in held["items"]] == [waiting]
    listing = browser.get("/console/invitations?tab=all").text
    assert ">held<" in listing and ">queued<" not in listing
    assert ">held<" in browser.get(f"/console/invitations/{waiting}").text

    (path,) = {m for e in sent_emails() if admin in str(e.destinations) for m in VERIFY_LINK.findall(e.body)}
    done = client.http.post(path, headers={"Content-Type": "application/x-www-form-urlencoded"}, body="")
    assert done.status_code == 200
    drain(SEND_QUEUE)
    _, current = call(client, "GET", f"/v1/invitations/{waiting}", key)
    assert current["delivery_status"] == "sent", current
