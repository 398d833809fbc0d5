"""The customer portal end to end on the local stack: the sandbox fails Plaid, Finicity links,
the data step fetches Finicity's data (summary figures worked by hand, CRM webhook), a document is uploaded
straight to S3, the portal is submitted, then the lender disconnects (the provider connection is revoked)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import RunningStack
from tests.integration.feedback_helpers import Receiver

pytestmark = pytest.mark.e2e

WAIT_S = 30.0


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def provider_link(stack: RunningStack, token: str, provider: str) -> str:
    """Poll the portal's status (as the page does) until ``provider``'s link is offered."""

    def offered() -> str | None:
        state = requests.get(f"{stack.api}/portal/{token}/status", timeout=10).json()
        attempt = state.get("bank_link") or {}
        if attempt.get("current_provider") == provider and attempt.get("link_url"):
            return str(attempt["link_url"])
        return None

    return str(wait_for(offered, f"the {provider} link"))


def complete(stack: RunningStack, link_url: str, outcome: str) -> None:
    page_id = link_url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    response = requests.post(
        f"{stack.sandbox}/sandbox/sessions/{page_id}/complete", json={"outcome": outcome}, timeout=20
    )
    assert response.status_code == 200, response.text
    assert response.json()["webhook_status"] == 200, response.json()


@pytest.fixture
def crm() -> Iterator[Receiver]:
    """The lender's CRM: receives and verifies the webhooks."""
    with Receiver() as receiver:
        yield receiver


def test_invitation_to_submitted_portal(stack: RunningStack, crm: Receiver) -> None:
    api = stack.api
    auth = {"Authorization": f"Bearer {stack.sign_up('Portal Lending')}"}
    secret = requests.post(f"{api}/v1/tenant/webhook-secrets", json={}, headers=auth, timeout=10)
    assert secret.status_code == 201, secret.text
    crm.secret = secret.json()["secret"]
    patched = requests.patch(f"{api}/v1/tenant/settings", json={"webhook_url": crm.url}, headers=auth, timeout=10)
    assert patched.status_code == 200, patched.text
    created = requests.post(
        f"{api}/v1/invitations",
        json={"email": "owner@bakery.com", "owner": "Olivia", "first_name": "Sam", "send": False},
        headers=auth,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    inv_id = created.json()["invitation_id"]
    link = requests.get(f"{api}/v1/invitations/{inv_id}/portal-link", headers=auth, timeout=10)
    token = link.json()["url"].rsplit("/", 1)[-1]

    page = requests.get(f"{api}/portal/{token}", timeout=10)
    assert page.status_code == 200 and "Sam" in page.text

    started = requests.post(f"{api}/portal/{token}/bank-link", json={}, timeout=10)
    assert started.status_code == 200, started.text
    assert started.json()["execution_name"] == f"{inv_id}-1"

    complete(stack, provider_link(stack, token, "plaid"), "institution_not_supported")
    complete(stack, provider_link(stack, token, "finicity"), "success")

    def linked() -> dict[str, Any] | None:
        body = requests.get(f"{api}/v1/invitations/{inv_id}/bank-links", headers=auth, timeout=10).json()
        attempt = body["attempts"][-1]
        return attempt if attempt["state"] == "linked" else None

    attempt = wait_for(linked, "the attempt to be linked")
    assert attempt["linked_provider"] == "finicity"
    assert [(d["provider"], d["outcome"], d["reason"]) for d in attempt["decisions"]] == [
        ("plaid", "failed", "institution_not_supported"),
        ("finicity", "linked", None),
    ]
    assert (
        requests.get(f"{api}/v1/invitations/{inv_id}", headers=auth, timeout=10).json()["portal_status"]
        == "bank_linked"
    )

    # The data step after the link: Finicity's sandbox data, normalised and summarised (figures worked out
    # by hand in devstack/sandbox_data.py for the default 90 days).
    def data_ready() -> dict[str, Any] | None:
        body = requests.get(f"{api}/v1/invitations/{inv_id}/financial-data", headers=auth, timeout=10).json()
        assert body["status"] in ("pending", "ready"), body
        return body if body["status"] == "ready" else None

    data = wait_for(data_ready, "the financial data")
    assert (data["provider"], data["transaction_count"]) == ("finicity", 213)
    assert [a["mask"] for a in data["accounts"]] == ["0001", "0002", "0003"]
    summary = data["summary"]
    assert (summary["average_daily_balance"], summary["lowest_balance"]) == ("9220.00", "2400.00")
    assert (summary["days_negative"], summary["nsf_count"]) == (18, 6)

    def data_event() -> list[dict[str, Any]]:
        bodies = [(r["verified"], json.loads(r["body"])) for r in crm.requests]
        return [b for ok, b in bodies if ok and b["type"] == "invitation.financial_data_ready"]

    (event,) = wait_for(data_event, "the CRM to receive invitation.financial_data_ready")
    assert (event["data"]["invitation_id"], event["data"]["transactions"]) == (inv_id, 213)
    exported = requests.get(f"{api}/v1/invitations/{inv_id}/financial-data.csv", headers=auth, timeout=10)
    assert exported.status_code == 200 and len(exported.text.strip().splitlines()) == 214

    upload = requests.post(
        f"{api}/portal/{token}/documents",
        json={"filename": "march.pdf", "content_type": "application/pdf", "size": 12},
        timeout=10,
    ).json()
    sent = requests.post(
        upload["url"],
        data=upload["fields"],
        files={"file": ("march.pdf", b"%PDF-1.7 e2e", "application/pdf")},
        timeout=10,
    )
    assert sent.status_code in (200, 201, 204), sent.text
    done = requests.post(f"{api}/portal/{token}/documents/{upload['document_id']}/complete", json={}, timeout=10)
    assert done.status_code == 200 and done.json()["state"] == "uploaded", done.text

    submitted = requests.post(f"{api}/portal/{token}/submit", json={}, timeout=10)
    assert submitted.status_code == 200, submitted.text

    docs = requests.get(f"{api}/v1/invitations/{inv_id}/documents", headers=auth, timeout=10).json()["items"]
    assert [d["filename"] for d in docs] == ["march.pdf"]
    assert requests.get(docs[0]["download_url"], timeout=10).content == b"%PDF-1.7 e2e"
    history = requests.get(f"{api}/v1/invitations/{inv_id}/history", headers=auth, timeout=10).json()["items"]
    decisions = [
        (e["details"]["provider"], e["details"]["outcome"]) for e in history if e["type"] == "bank_link_decision"
    ]
    assert decisions == [("plaid", "failed"), ("finicity", "linked")]
    assert "portal_submitted" in [e["type"] for e in history]
    # Forward-only status: documents came after the link (the portal-events consumer may already say completed).
    status = requests.get(f"{api}/v1/invitations/{inv_id}", headers=auth, timeout=10).json()["portal_status"]
    assert status in ("documents_uploaded", "completed")

    # Disconnect: the provider's connection is revoked (Finicity deletes the customer) and the data is gone.
    gone = requests.post(f"{api}/v1/customers/{inv_id}/disconnect", headers=auth, timeout=20)
    assert gone.status_code == 200, gone.text
    assert (gone.json()["connections_revoked"], gone.json()["revoke_failed"]) == (1, [])
    connections = requests.get(f"{stack.sandbox}/sandbox/connections", timeout=10).json()
    assert [c["removed"] for c in connections["finicity_customers"]] == [True]
    after = requests.get(f"{api}/v1/invitations/{inv_id}/financial-data", headers=auth, timeout=10).json()
    assert after["status"] == "none"
