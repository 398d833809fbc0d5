""" "Send me a fresh link" from a link that was replaced by a newer send (issue 11, item 4).

A replaced link's lookup stays as a tombstone for a month, so the request finds its invitation and a
new link really goes out; the page says a link is on its way only when one was queued.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.config import SEND_QUEUE
from chalicelib.domain.invitation import utcnow
from tests.integration.helpers import call, drain, sent_emails

CSRF = "c" * 43
PORTAL_LINK = re.compile(r"http://testserver/portal/([A-Za-z0-9_-]{43})")
SENT = "A new link is on its way"


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def emailed_tokens() -> list[str]:
    """The portal token of each email sent, oldest first."""
    return list(dict.fromkeys(t for e in sent_emails() for t in PORTAL_LINK.findall(e.body)))


def ask_fresh_link(client: Any, token: str, email: str) -> Any:
    fields = {"email": email, "token": token, "csrf_token": CSRF}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrf={CSRF}"}
    return client.http.post("/portal/fresh-link", headers=headers, body=urlencode(fields))


def later(monkeypatch: pytest.MonkeyPatch, minutes: int) -> None:
    """Move the invitations' clock past the resend cooldown."""
    moment = utcnow() + timedelta(minutes=minutes)
    monkeypatch.setattr("chalicelib.services.invitations.utcnow", lambda: moment)


def test_a_replaced_link_gets_a_fresh_one(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    status, inv = call(client, "POST", "/v1/invitations", key, {"email": "jo@smallbiz.com", "owner": "O"})
    assert status == 201, inv
    drain(SEND_QUEUE)
    later(monkeypatch, 2)
    status, resent = call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    assert resent["results"][0]["outcome"] == "queued", resent
    drain(SEND_QUEUE)
    first, second = emailed_tokens()

    # The customer opens the first email: its link was replaced by the second.
    replaced = client.http.get(f"/portal/{first}")
    assert replaced.status_code == 404 and b"fresh link" in replaced.body

    later(monkeypatch, 4)
    answer = ask_fresh_link(client, first, "Jo@SmallBiz.com")
    assert answer.status_code == 200 and SENT in answer.body.decode()
    drain(SEND_QUEUE)
    tokens = emailed_tokens()
    assert len(tokens) == 3 and tokens[:2] == [first, second]
    assert client.http.get(f"/portal/{tokens[2]}").status_code == 200
    assert client.http.get(f"/portal/{second}").status_code == 404
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    reasons = [e["details"].get("reason") for e in history["items"] if e["type"] == "send_requested"]
    assert reasons == [None, "invitation", "fresh_link"]


def test_the_page_says_a_link_is_coming_only_when_one_was_queued(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, inv = call(client, "POST", "/v1/invitations", key, {"email": "jo@smallbiz.com", "owner": "O"})
    assert status == 201, inv
    drain(SEND_QUEUE)
    later(monkeypatch, 2)
    call(client, "POST", "/v1/invitations/resend", key, {"ids": [inv["invitation_id"]]})
    drain(SEND_QUEUE)
    first, _ = emailed_tokens()

    # Within the resend cooldown nothing can go out, and the page does not pretend otherwise.
    refused = ask_fresh_link(client, first, "jo@smallbiz.com")
    assert refused.status_code == 200 and SENT not in refused.body.decode()
    assert "could not send" in refused.body.decode()
    # A wrong address and an unknown link get that same answer: nothing about the invitation leaks.
    later(monkeypatch, 4)
    wrong = ask_fresh_link(client, first, "someone@else.com")
    unknown = ask_fresh_link(client, "x" * 43, "jo@smallbiz.com")
    assert wrong.body == unknown.body == refused.body
    drain(SEND_QUEUE)
    assert len(emailed_tokens()) == 2
