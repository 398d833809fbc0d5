"""Customers who joined: removal revokes access and deletes data; disconnect keeps the record."""

from __future__ import annotations

from typing import Any

from tests.integration.helpers import call
from tests.integration.test_join import invite, join, session_cookie, settings, sign_in


def joined_customer(client: Any, key: str) -> tuple[dict[str, Any], str]:
    settings(client, key, require_email_confirmation=False)
    inv = invite(client, key, send=False)
    assert join(client).status_code in (200, 201, 303)
    signed_in = sign_in(client, "janes-bakery", "admin")
    assert signed_in.status_code == 303
    return inv, session_cookie(signed_in)


def test_remove_joined_customer_revokes_access(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    inv, cookie = joined_customer(client, key)
    assert client.http.get("/portal", headers={"Cookie": cookie}).status_code == 200

    status, removed = call(client, "DELETE", f"/v1/customers/{inv['invitation_id']}", key)
    assert status == 200, removed
    assert removed["invitation"]["status"] == "INACTIVE"
    assert removed["invitation"]["account_subdomain"] is None
    # access is gone: the session, the password and the account name
    assert client.http.get("/portal", headers={"Cookie": cookie}).status_code != 200
    assert sign_in(client, "janes-bakery", "admin").status_code != 303
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    assert history["items"][-1]["type"] == "customer_removed"
    # the email can be invited again, and removing twice is harmless
    assert call(client, "POST", "/v1/invitations", key, {"email": "jane@smallbiz.com", "owner": "O"})[0] == 201
    status, again = call(client, "DELETE", f"/v1/customers/{inv['invitation_id']}", key)
    assert status == 200 and again["invitation"]["status"] == "INACTIVE"


def test_pending_customer_is_removed_through_the_invitation(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    inv = invite(client, key, send=False)
    status, payload = call(client, "DELETE", f"/v1/customers/{inv['invitation_id']}", key)
    assert status == 409
    assert "/v1/invitations/" in payload["error"]["message"]


def test_disconnect_keeps_the_customer(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    inv, cookie = joined_customer(client, key)
    status, result = call(client, "POST", f"/v1/customers/{inv['invitation_id']}/disconnect", key)
    assert status == 200, result
    assert set(result) >= {"bank_link_items", "provider_sessions", "documents", "objects", "connections_revoked"}
    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert current["status"] == "JOINED"
    assert client.http.get("/portal", headers={"Cookie": cookie}).status_code == 200
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    assert "financial_data_disconnected" in [e["type"] for e in history["items"]]


def test_another_lenders_customer_is_404(client: Any, lender: dict[str, Any]) -> None:
    inv, _ = joined_customer(client, lender["api_key"])
    status, other = call(
        client,
        "POST",
        "/v1/tenants",
        None,
        {"name": "Other Bank", "subdomain": "other-bank", "admin_email": "ops@other-bank.com"},
    )
    assert status == 201
    for method, path in (
        ("DELETE", f"/v1/customers/{inv['invitation_id']}"),
        ("POST", f"/v1/customers/{inv['invitation_id']}/disconnect"),
    ):
        assert call(client, method, path, other["api_key"])[0] == 404
    _, current = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", lender["api_key"])
    assert current["status"] == "JOINED"
