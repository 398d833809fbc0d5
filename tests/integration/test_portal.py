"""The customer portal: page, contact details, documents (presigned S3 POST), submit, fresh link."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import requests

from chalicelib import bootstrap
from chalicelib.domain.invitation import utcnow
from tests.integration.helpers import call
from tests.integration.test_join import bound_token

FORM = "application/x-www-form-urlencoded"
CSRF = "c" * 43


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def invitation(client: Any, key: str, **fields: Any) -> tuple[str, str]:
    body = {"email": "jo@smallbiz.com", "owner": "O", "send": False, "first_name": "Jo", **fields}
    status, inv = call(client, "POST", "/v1/invitations", key, body)
    assert status == 201, inv
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    return inv["invitation_id"], s.invitations.portal_link(tenant, inv["invitation_id"]).url.rsplit("/", 1)[-1]


def post_form(client: Any, path: str, fields: dict[str, str], csrf: str | None = CSRF) -> Any:
    """A form of the portal link's page (its token, bound to the link) or the fresh-link form (double-submit)."""
    headers = {"Content-Type": FORM}
    bound = bound_token(path)
    if csrf and bound is not None:
        fields = {**fields, "csrf_token": bound}
    elif csrf:
        headers["Cookie"] = f"csrf={csrf}"
        fields = {**fields, "csrf_token": csrf}
    return client.http.post(path, headers=headers, body=urlencode(fields))


def hdr(response: Any, name: str) -> str:
    return str({k.lower(): v for k, v in response.headers.items()}.get(name.lower(), ""))


def history(client: Any, key: str, inv_id: str) -> list[dict[str, Any]]:
    _, page = call(client, "GET", f"/v1/invitations/{inv_id}/history", key)
    return list(page["items"])


def queue_bodies(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_portal_page_is_branded_localised_and_marks_opened(client: Any, key: str) -> None:
    inv_id, token = invitation(client, key, locale="fr")
    response = client.http.get(f"/portal/{token}")
    assert response.status_code == 200
    page = response.body.decode()
    assert 'lang="fr"' in page and "Lier votre compte bancaire" in page and "Acme Lending" in page
    assert 'name="viewport"' in page
    # The forms' token is bound to the link (no CSRF cookie: a sibling host could plant one).
    assert not hdr(response, "set-cookie") and f'value="{bound_token(f"/portal/{token}/contact")}"' in page
    assert 'action="/portal/' + token + '/bank-link"' in page
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert inv["portal_status"] == "opened"
    status, state = call(client, "GET", f"/portal/{token}/status")
    assert status == 200 and state["portal_status"] == "opened" and state["can_submit"] is False


def test_contact_details_need_csrf_and_are_validated(client: Any, key: str) -> None:
    inv_id, token = invitation(client, key)
    assert post_form(client, f"/portal/{token}/contact", {"phone": "514 555 0199"}, csrf=None).status_code == 403
    bad = post_form(client, f"/portal/{token}/contact", {"phone": "12"})
    assert bad.status_code == 400 and b"phone" in bad.body
    ok = post_form(client, f"/portal/{token}/contact", {"first_name": "Joanne", "phone": "514 555 0199"})
    assert ok.status_code == 303 and hdr(ok, "location").startswith(f"/portal/{token}")
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert (inv["first_name"], inv["phone"]) == ("Joanne", "+15145550199")
    confirmed = [e for e in history(client, key, inv_id) if e["type"] == "contact_confirmed"]
    assert confirmed[0]["details"]["changed"] == ["first_name", "phone"]


def test_document_upload_then_submit(client: Any, key: str, aws: dict[str, str]) -> None:
    inv_id, token = invitation(client, key)
    status, err = call(
        client,
        "POST",
        f"/portal/{token}/documents",
        body={"filename": "x.exe", "content_type": "application/x", "size": 3},
    )
    assert status == 400 and "content_type" in err["error"]["fields"]
    status, err = call(
        client,
        "POST",
        f"/portal/{token}/documents",
        body={"filename": "a.pdf", "content_type": "application/pdf", "size": 26 * 2**20},
    )
    assert status == 400 and "size" in err["error"]["fields"]
    status, err = call(client, "POST", f"/portal/{token}/submit", body={})
    assert status == 409

    status, upload = call(
        client,
        "POST",
        f"/portal/{token}/documents",
        body={"filename": "../Relevé mars.pdf", "content_type": "application/pdf", "size": 9},
    )
    assert status == 200, upload
    tenant_id = bootstrap.services().tenants.authenticate(f"Bearer {key}").tenant_id
    assert (
        upload["fields"]["key"] == f"tenants/{tenant_id}/invitations/{inv_id}/{upload['document_id']}/Releve_mars.pdf"
    )
    assert upload["fields"]["Content-Type"] == "application/pdf"
    complete = f"/portal/{token}/documents/{upload['document_id']}/complete"
    assert call(client, "POST", complete, body={})[0] == 409  # nothing uploaded yet

    posted = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("a.pdf", b"%PDF-1.7\n", "application/pdf")}, timeout=5
    )
    assert posted.status_code in (200, 201, 204), posted.text
    status, doc = call(client, "POST", complete, body={})
    assert status == 200 and doc["state"] == "uploaded" and doc["size"] == 9
    assert call(client, "POST", complete, body={})[0] == 200  # idempotent
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert inv["portal_status"] == "documents_uploaded"

    status, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert status == 200 and len(docs["items"]) == 1
    assert requests.get(docs["items"][0]["download_url"], timeout=5).content == b"%PDF-1.7\n"

    status, first = call(client, "POST", f"/portal/{token}/submit", body={})
    assert status == 200, first
    status, second = call(client, "POST", f"/portal/{token}/submit", body={})
    assert second["event_id"] == first["event_id"]
    bodies = queue_bodies(aws["PORTAL_EVENTS_QUEUE_URL"])
    assert [(b["type"], b["event_id"], b["invitation_id"], b["tenant_id"]) for b in bodies] == [
        ("portal_completed", first["event_id"], inv_id, tenant_id)
    ]
    assert [e["type"] for e in history(client, key, inv_id)].count("portal_submitted") == 1
    assert b'data-submitted="true"' in client.http.get(f"/portal/{token}").body

    # Disconnect removes documents (objects and records) and bank-link data.
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    result = bootstrap.bank_links().disconnect(tenant, s.invitations.get(tenant, inv_id))
    assert (result.documents, result.objects) == (1, 1)
    assert call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)[1]["items"] == []


def test_browser_upload_form_posts_to_s3(client: Any, key: str) -> None:
    _, token = invitation(client, key)
    response = post_form(client, f"/portal/{token}/documents", {"content_type": "text/csv", "filename": ""})
    assert response.status_code == 200
    page = response.body.decode()
    assert 'enctype="multipart/form-data"' in page and 'name="policy"' in page
    action = re.search(r'id="s3-upload"|action="([^"]+)" enctype', page)
    assert action is not None
    assert "success_action_redirect" in page
    # The page may post to the bucket: its CSP names the bucket's origin.
    assert "form-action 'self' http" in hdr(response, "content-security-policy")


def test_invalid_link_offers_a_fresh_link_and_reveals_nothing(
    client: Any, key: str, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inv_id, token = invitation(client, key)
    later = utcnow() + timedelta(days=30)
    monkeypatch.setattr("chalicelib.services.invitations.utcnow", lambda: later)
    page = client.http.get(f"/portal/{token}")
    assert page.status_code == 404 and b"fresh link" in page.body and token.encode() in page.body
    unknown = client.http.get("/portal/" + "x" * 43)
    assert unknown.status_code == 404

    answers = []
    for email, tok in (("someone@else.com", token), ("jo@smallbiz.com", "y" * 43), ("JO@smallbiz.com", token)):
        response = post_form(client, "/portal/fresh-link", {"email": email, "token": tok})
        assert response.status_code == 200
        answers.append(response.body)
    # A wrong address and an unknown link get the same answer; the link went out for the right one.
    assert answers[0] == answers[1] and b"could not send" in answers[0]
    assert b"A new link is on its way" in answers[2]
    sends = [e for e in history(client, key, inv_id) if e["type"] == "send_requested"]
    assert [e["details"]["reason"] for e in sends] == ["fresh_link"]
    assert (
        post_form(client, "/portal/fresh-link", {"email": "jo@smallbiz.com", "token": token}, csrf=None).status_code
        == 403
    )
