"""One invitation lifecycle (issue 11, items 2, 3 and 10).

PENDING (invited, has not joined) -> JOINED (signed up with a password, or submitted the portal
through the emailed link: ``joined_via``) -> INACTIVE (removed); ``portal_status`` shows progress.
A customer who submitted something is removed as a customer (record and history kept), never deleted.
A password join retires the emailed portal link: the lender's "copy link" gives the new one.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from chalicelib.config import PORTAL_EVENTS_QUEUE, SEND_QUEUE
from tests.integration.helpers import call, drain
from tests.integration.test_join import confirm, confirmation_links, join, settings, sign_in


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def invite(client: Any, key: str) -> str:
    body = {"email": "jane@smallbiz.com", "owner": "Olivia", "send": False, "first_name": "Jane"}
    status, inv = call(client, "POST", "/v1/invitations", key, body)
    assert status == 201, inv
    return str(inv["invitation_id"])


def portal_token(client: Any, key: str, inv_id: str) -> str:
    """The link the lender copies (and the emails carry): ``/portal/<token>``."""
    status, link = call(client, "GET", f"/v1/invitations/{inv_id}/portal-link", key)
    assert status == 200, link
    return str(link["url"]).rsplit("/", 1)[-1]


def upload_and_submit(client: Any, token: str) -> None:
    status, upload = call(
        client,
        "POST",
        f"/portal/{token}/documents",
        body={"filename": "march.pdf", "content_type": "application/pdf", "size": 9},
    )
    assert status == 200, upload
    posted = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("a.pdf", b"%PDF-1.7\n", "application/pdf")}, timeout=5
    )
    assert posted.status_code in (200, 201, 204), posted.text
    assert call(client, "POST", f"/portal/{token}/documents/{upload['document_id']}/complete", body={})[0] == 200
    status, submitted = call(client, "POST", f"/portal/{token}/submit", body={})
    assert status == 200, submitted


def get(client: Any, key: str, inv_id: str) -> dict[str, Any]:
    status, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert status == 200, inv
    return dict(inv)


def history(client: Any, key: str, inv_id: str) -> list[dict[str, Any]]:
    _, page = call(client, "GET", f"/v1/invitations/{inv_id}/history", key)
    return list(page["items"])


# --- item 2: statuses that mean what they say ------------------------------------------------------
def test_submitting_the_portal_through_the_emailed_link_joins(client: Any, key: str) -> None:
    inv_id = invite(client, key)
    token = portal_token(client, key, inv_id)
    assert client.http.get(f"/portal/{token}").status_code == 200
    opened = get(client, key, inv_id)
    assert (opened["status"], opened["portal_status"], opened["joined_via"]) == ("PENDING", "opened", None)

    upload_and_submit(client, token)
    joined = get(client, key, inv_id)
    assert (joined["status"], joined["joined_via"]) == ("JOINED", "portal")
    assert joined["joined_at"] is not None
    assert [e["details"] for e in history(client, key, inv_id) if e["type"] == "joined"] == [{"via": "portal"}]
    _, listed = call(client, "GET", "/v1/invitations?status=JOINED", key)
    assert [i["invitation_id"] for i in listed["items"]] == [inv_id]
    assert call(client, "GET", "/v1/invitations?status=PENDING", key)[1]["items"] == []

    drain(PORTAL_EVENTS_QUEUE)
    assert get(client, key, inv_id)["portal_status"] == "completed"
    # Without a password, the emailed link stays the customer's way back to their portal.
    assert client.http.get(f"/portal/{token}").status_code == 200


def test_a_password_join_is_joined_via_sign_up(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    inv_id = invite(client, key)
    assert join(client).status_code == 303
    joined = get(client, key, inv_id)
    assert (joined["status"], joined["joined_via"], joined["portal_status"]) == ("JOINED", "sign_up", "not_started")


def test_a_customer_who_submitted_by_link_can_still_create_an_account(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    inv_id = invite(client, key)
    upload_and_submit(client, portal_token(client, key, inv_id))
    assert join(client).status_code == 303
    after = get(client, key, inv_id)
    assert (after["status"], after["joined_via"], after["account_subdomain"]) == ("JOINED", "sign_up", "janes-bakery")
    assert sign_in(client, "janes-bakery", "admin").status_code == 303
    # ... once: a second sign-up for the same invitation is refused.
    again = join(client, sub="janes-bakery-two")
    assert again.status_code == 409 and "An account already exists" in again.body.decode()


def test_the_lifecycle_is_documented_in_the_openapi_schema(client: Any) -> None:
    schema = call(client, "GET", "/openapi.json")[1]
    invitation = schema["components"]["schemas"]["Invitation"]["properties"]
    status_text = str(invitation["status"]) + str(schema["components"]["schemas"].get("Status", ""))
    for word in ("PENDING", "JOINED", "INACTIVE", "portal_status"):
        assert word in status_text
    assert "portal" in str(invitation["joined_via"]) and "sign_up" in str(invitation["joined_via"])


# --- item 3: nothing submitted is deleted without a trace --------------------------------------------
def test_a_submitted_application_cannot_be_deleted_only_removed(client: Any, key: str) -> None:
    inv_id = invite(client, key)
    upload_and_submit(client, portal_token(client, key, inv_id))

    status, refused = call(client, "DELETE", f"/v1/invitations/{inv_id}", key)
    assert status == 409, refused
    assert refused["error"]["code"] == "conflict"
    assert f"DELETE /v1/customers/{inv_id}" in refused["error"]["message"]
    # Nothing went: the invitation, its history and its documents.
    assert get(client, key, inv_id)["status"] == "JOINED"
    assert "portal_submitted" in [e["type"] for e in history(client, key, inv_id)]
    assert len(call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)[1]["items"]) == 1

    status, removed = call(client, "DELETE", f"/v1/customers/{inv_id}", key)
    assert status == 200, removed
    assert removed["invitation"]["status"] == "INACTIVE" and removed["financial_data"]["documents"] == 1
    kept = [e["type"] for e in history(client, key, inv_id)]
    assert "portal_submitted" in kept and kept[-1] == "customer_removed"


def test_an_untouched_invitation_is_still_deleted(client: Any, key: str) -> None:
    inv_id = invite(client, key)
    assert call(client, "DELETE", f"/v1/invitations/{inv_id}", key)[0] == 204
    assert call(client, "GET", f"/v1/invitations/{inv_id}", key)[0] == 404


# --- item 10: a password join retires the emailed link ---------------------------------------------
def test_joining_with_a_password_rotates_the_emailed_link(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    inv_id = invite(client, key)
    emailed = portal_token(client, key, inv_id)
    assert client.http.get(f"/portal/{emailed}").status_code == 200

    assert join(client).status_code == 303
    assert client.http.get(f"/portal/{emailed}").status_code == 404
    copied = portal_token(client, key, inv_id)
    assert copied != emailed
    assert client.http.get(f"/portal/{copied}").status_code == 200
    rotated = [e for e in history(client, key, inv_id) if e["type"] == "link_rotated"]
    assert [e["details"] for e in rotated] == [{"reason": "joined"}]


def test_confirming_the_email_rotates_the_emailed_link(client: Any, key: str) -> None:
    inv_id = invite(client, key)
    emailed = portal_token(client, key, inv_id)
    assert join(client).status_code == 303
    # Until the email is confirmed the customer has not joined: the link still works.
    assert client.http.get(f"/portal/{emailed}").status_code == 200
    drain(SEND_QUEUE)
    [link] = confirmation_links()
    assert confirm(client, link).status_code == 303
    assert client.http.get(f"/portal/{emailed}").status_code == 404
    copied = portal_token(client, key, inv_id)
    assert copied != emailed and client.http.get(f"/portal/{copied}").status_code == 200
