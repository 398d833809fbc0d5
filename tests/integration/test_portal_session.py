"""The portal used by a signed-in customer (join page session): every action at ``/portal/<action>``,
found by the session cookie, with CSRF, no token in any URL, and sign-out."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
import requests

from chalicelib import bootstrap
from tests.integration.helpers import call
from tests.integration.test_join import (
    CSRF,
    PASSWORD,
    bound_token,
    invite,
    join,
    post_form,
    session_cookie,
    settings,
    sign_in,
)
from tests.integration.test_portal import hdr, history, queue_bodies
from tests.integration.test_waterfall import bank_links, open_slot, world  # noqa: F401  (world: the fake providers)

ACCOUNT = "janes-bakery"
TOKEN_SEGMENT = re.compile(r"/portal/[A-Za-z0-9_-]{32,}")


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


@pytest.fixture
def signed_in(client: Any, key: str) -> tuple[str, str]:
    """A customer who joined (no email confirmation) and signed in: (invitation id, session cookie)."""
    settings(client, key, require_email_confirmation=False)
    inv = invite(client, key, send=False, first_name="Jane")
    assert join(client, sub=ACCOUNT).status_code == 303
    response = sign_in(client, ACCOUNT, "admin")
    assert response.status_code == 303, response.body
    return inv["invitation_id"], session_cookie(response)


def session_json(client: Any, method: str, path: str, cookie: str, body: Any = None, csrf: bool = True) -> Any:
    headers = {"Content-Type": "application/json", "Cookie": f"{cookie}; csrf={CSRF}"}
    if csrf:
        headers["X-CSRF-Token"] = bound_token("/portal/status", cookie) or ""
    response = getattr(client.http, method)(path, headers=headers, body=json.dumps(body) if body is not None else b"")
    return response.status_code, json.loads(response.body or b"null")


def portal_page(client: Any, cookie: str) -> str:
    response = client.http.get("/portal", headers={"Cookie": cookie})
    assert response.status_code == 200, response.body
    return html.unescape(response.body.decode())


def targets(page: str) -> list[str]:
    return re.findall(r'(?:action|href)="([^"]+)"', page)


def test_the_signed_in_page_posts_to_session_routes_and_carries_no_token(
    client: Any, key: str, signed_in: tuple[str, str]
) -> None:
    inv_id, cookie = signed_in
    page = portal_page(client, cookie)
    forms = re.findall(r'<form method="post" action="([^"]+)"', page)
    assert forms == [
        "/portal/sign-out",
        "/portal/contact#contact",
        "/portal/bank-link",
        "/portal/documents",
        "/portal/submit",
    ]
    assert not [t for t in targets(page) if TOKEN_SEGMENT.search(t)]
    assert 'name="csrf_token"' in page and "Sign out" in page

    changed = post_form(client, "/portal/contact", {"first_name": "Janet", "phone": "514 555 0199"}, cookie=cookie)
    assert changed.status_code == 303 and hdr(changed, "location") == "/portal?confirmed=1#contact"
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert (inv["first_name"], inv["phone"], inv["portal_status"]) == ("Janet", "+15145550199", "opened")
    bad = post_form(client, "/portal/contact", {"phone": "12"}, cookie=cookie)
    assert bad.status_code == 400 and b"phone" in bad.body and b"/portal/sign-out" in bad.body

    status, state = session_json(client, "get", "/portal/status", cookie)
    assert status == 200 and state["invitation_id"] == inv_id

    # The invitation link's page is the same portal, bound to its token, with no sign-out.
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    token = s.invitations.portal_link(tenant, inv_id).url.rsplit("/", 1)[-1]
    by_token = client.http.get(f"/portal/{token}").body.decode()
    assert f'action="/portal/{token}/contact#contact"' in by_token and "/portal/sign-out" not in by_token


@pytest.mark.usefixtures("world")
def test_start_a_bank_link_by_session(client: Any, key: str, signed_in: tuple[str, str]) -> None:
    inv_id, cookie = signed_in
    started = post_form(client, "/portal/bank-link", {}, cookie=cookie)
    assert started.status_code == 303 and hdr(started, "location") == "/portal#bank"
    attempt = bank_links(client, key, inv_id)["attempts"][-1]
    assert attempt["execution_name"] == f"{inv_id}-1"

    # A JSON client with the session sends the CSRF token in a header; the attempt is the same one.
    assert session_json(client, "post", "/portal/bank-link", cookie, {}, csrf=False)[0] == 403
    status, again = session_json(client, "post", "/portal/bank-link", cookie, {})
    assert status == 200 and (again["attempt"], again["execution_name"]) == (1, f"{inv_id}-1")

    session_id = open_slot(client, key, inv_id, "plaid")
    page = portal_page(client, cookie)
    link = re.search(r'id="provider-link" href="([^"]+)"', page)
    assert link and link.group(1) == f"https://plaid.test/{session_id}"
    assert 'http-equiv="refresh"' in page  # waiting for the provider: the page refreshes itself
    assert not [t for t in targets(page) if TOKEN_SEGMENT.search(t)]


def test_upload_a_document_and_submit_by_session(
    client: Any, key: str, aws: dict[str, str], signed_in: tuple[str, str]
) -> None:
    inv_id, cookie = signed_in
    assert post_form(client, "/portal/submit", {}, cookie=cookie).status_code == 409  # nothing to submit yet

    form = post_form(
        client, "/portal/documents", {"content_type": "application/pdf", "filename": "march.pdf"}, cookie=cookie
    )
    assert form.status_code == 200, form.body
    page = html.unescape(form.body.decode())
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    s3_url = re.search(r'<form method="post" action="([^"]+)" enctype="multipart/form-data"', page)
    assert s3_url is not None
    redirect = fields.pop("success_action_redirect")
    document_id = re.fullmatch(r"http://testserver/portal/documents/(doc_\w+)/complete", redirect)
    assert document_id is not None, redirect  # S3 sends the browser back to the session route: no token
    assert f'action="/portal/documents/{document_id.group(1)}/complete"' in page
    fields.pop("csrf_token")
    fields["success_action_redirect"] = redirect

    posted = requests.post(
        s3_url.group(1),
        data=fields,
        files={"file": ("march.pdf", b"%PDF-1.7\n", "application/pdf")},
        timeout=5,
        allow_redirects=False,
    )
    assert posted.status_code in (200, 201, 204, 303), posted.text
    # Where S3 redirects the browser (a top-level GET: the SameSite=Lax session cookie comes along).
    back = client.http.get(f"/portal/documents/{document_id.group(1)}/complete", headers={"Cookie": cookie})
    assert back.status_code == 303 and hdr(back, "location") == "/portal#documents"
    _, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert [(d["filename"], d["state"]) for d in docs["items"]] == [("march.pdf", "uploaded")]

    submitted = post_form(client, "/portal/submit", {}, cookie=cookie)
    assert submitted.status_code == 303 and hdr(submitted, "location") == "/portal#submit"
    assert 'data-submitted="true"' in portal_page(client, cookie)
    status, again = session_json(client, "post", "/portal/submit", cookie, {})
    assert status == 200
    bodies = queue_bodies(aws["PORTAL_EVENTS_QUEUE_URL"])
    assert [(b["type"], b["invitation_id"], b["event_id"]) for b in bodies] == [
        ("portal_completed", inv_id, again["event_id"])
    ]
    assert [e["type"] for e in history(client, key, inv_id)].count("portal_submitted") == 1


def test_sign_out_ends_the_session(client: Any, key: str, signed_in: tuple[str, str]) -> None:
    _, cookie = signed_in
    refused = post_form(client, "/portal/sign-out", {}, csrf=False, cookie=cookie)
    assert refused.status_code == 403
    portal_page(client, cookie)  # still signed in

    out = post_form(client, "/portal/sign-out", {}, cookie=cookie)
    assert out.status_code == 303
    assert hdr(out, "location") == f"http://testserver/a/{ACCOUNT}/login"
    cleared = hdr(out, "set-cookie")
    assert cleared.startswith("session=;") and "Max-Age=0" in cleared and "HttpOnly" in cleared

    gone = client.http.get("/portal", headers={"Cookie": cookie})
    assert gone.status_code == 401 and b"You are signed out" in gone.body
    assert post_form(client, "/portal/submit", {}, cookie=cookie).status_code == 401
    assert post_form(client, "/portal/documents", {"content_type": "text/csv"}, cookie=cookie).status_code == 401
    assert session_json(client, "get", "/portal/status", cookie)[0] == 401
    assert session_json(client, "post", "/portal/bank-link", cookie, {})[0] == 401
    again = post_form(client, "/portal/sign-out", {}, cookie=cookie)  # signing out twice is harmless
    assert again.status_code == 200 and "Max-Age=0" in hdr(again, "set-cookie")
    assert sign_in(client, ACCOUNT, "admin").status_code == 303  # and signing in works again


def test_session_actions_refuse_forged_sessions_and_missing_csrf(
    client: Any, key: str, signed_in: tuple[str, str]
) -> None:
    inv_id, cookie = signed_in
    no_csrf = post_form(client, "/portal/contact", {"first_name": "Mallory"}, csrf=False, cookie=cookie)
    assert no_csrf.status_code == 403
    wrong = client.http.post(
        "/portal/contact",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"{cookie}; csrf={CSRF}"},
        body="first_name=Mallory&csrf_token=" + "d" * 43,
    )
    assert wrong.status_code == 403
    assert post_form(client, "/portal/submit", {}, csrf=False, cookie=cookie).status_code == 403
    assert session_json(client, "post", "/portal/contact", cookie, {"first_name": "Mallory"}, csrf=False)[0] == 403
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert inv["first_name"] == "Jane"

    for forged in ("", "session=forged", "session=" + "x" * 43):
        assert post_form(client, "/portal/contact", {"first_name": "Mallory"}, cookie=forged).status_code == 401
    # Literal paths are never read as a token: no session here means 401, not the invalid-link page.
    status, body = call(client, "GET", "/portal/status")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert call(client, "POST", "/portal/submit", body={})[0] == 401
    assert client.http.get("/portal/" + "x" * 43).status_code == 404  # a token-shaped segment is a token


def test_signed_in_at_the_account_host_uploads_come_back_to_that_host(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False)
    assert join(client, sub=ACCOUNT).status_code == 303
    host = f"{ACCOUNT}.myonboarding.com"
    signed = post_form(client, "/login", {"username": "admin", "password": PASSWORD}, host=host)
    assert signed.status_code == 303 and hdr(signed, "location") == f"https://{host}/portal"
    cookie = session_cookie(signed)

    form = post_form(client, "/portal/documents", {"content_type": "text/csv"}, cookie=cookie, host=host)
    assert form.status_code == 200, form.body
    redirect = re.search(r'name="success_action_redirect" value="([^"]+)"', form.body.decode())
    assert redirect and re.fullmatch(rf"https://{host}/portal/documents/doc_\w+/complete", redirect.group(1))
    # Any other Host gets the API's base URL, never a host built from the header.
    other = post_form(client, "/portal/documents", {"content_type": "text/csv"}, cookie=cookie, host="evil.example")
    redirect = re.search(r'name="success_action_redirect" value="([^"]+)"', other.body.decode())
    assert redirect and redirect.group(1).startswith("http://testserver/portal/documents/")
