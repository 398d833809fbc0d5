"""Cookies and CSRF against a sibling host (the attacker's review, item 7).

Every lender console and customer account is ``<label>.<base domain>``: unless the base domains are on the Public
Suffix List, all those hosts are one site, so a sibling host can plant a cookie (``Domain=<base domain>``) that the
browser then sends to every other host ("cookie tossing"), and its forms' POSTs carry our SameSite=Lax cookies.

- Over https every cookie is ``__Host-<name>``: Secure, ``Path=/``, no Domain; a sibling cannot set one, and a
  cookie of the plain name (which it can) is never read. Over plain http (``make run``, the test client) the names
  stay plain: Python's cookie jar (requests, the e2e tests) never sends a Secure cookie over http.
- A form whose page was reached with a secret (the signed-in customer's session, a portal link, an email
  confirmation link) carries a token derived from that secret with the server's key, not a cookie's copy.
- A form the browser says came from another origin (``Sec-Fetch-Site: same-site``/``cross-site``) is refused.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib import bootstrap
from tests.integration.console_helpers import PASSWORD as STAFF_PASSWORD
from tests.integration.console_helpers import Browser, sign_up
from tests.integration.helpers import call, drain
from tests.integration.test_join import PASSWORD, confirmation_links, invite, settings

FORM = "application/x-www-form-urlencoded"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PLANTED = "p" * 43  # what a sibling host plants with Domain=<base domain>, and puts in its forged form


def set_cookies(response: Any) -> list[str]:
    raw = {k.lower(): v for k, v in response.headers.items()}.get("set-cookie") or []
    return [raw] if isinstance(raw, str) else list(raw)


def cookie_pair(response: Any, name: str) -> str:
    [line] = [c for c in set_cookies(response) if c.startswith(f"{name}=")]
    return line.split(";", 1)[0]


def form_token(response: Any) -> str:
    found = TOKEN.search(html.unescape(response.body.decode()))
    assert found, response.body[:500]
    return found.group(1)


def post(client: Any, path: str, fields: dict[str, str], cookie: str = "", **headers: str) -> Any:
    all_headers = {"Content-Type": FORM, **headers}
    if cookie:
        all_headers["Cookie"] = cookie
    return client.http.post(path, headers=all_headers, body=urlencode(fields))


def signed_in_customer(client: Any, key: str, host: str | None = None) -> tuple[str, str]:
    """A customer who joined (no confirmation) and signed in: (invitation id, its session cookie pair)."""
    settings(client, key, require_email_confirmation=False)
    inv = invite(client, key, send=False, first_name="Jane")
    joining = client.http.get("/t/acme/join")
    csrf_pair = cookie_pair(joining, cookie_name("csrf"))
    data = {"email": "jane@smallbiz.com", "business_name": "B", "password": PASSWORD, "account_subdomain": "janes"}
    joined = post(client, "/t/acme/join", {**data, "csrf_token": form_token(joining)}, csrf_pair)
    assert joined.status_code == 303, joined.body
    login_path, host_headers = ("/login", {"Host": host}) if host else ("/a/janes/login", {})
    login = client.http.get(login_path, headers=host_headers)
    fields = {"username": "admin", "password": PASSWORD, "csrf_token": form_token(login)}
    signed = post(client, login_path, fields, cookie_pair(login, cookie_name("csrf")), **host_headers)
    assert signed.status_code == 303, signed.body
    return inv["invitation_id"], cookie_pair(signed, cookie_name("session"))


def cookie_name(name: str) -> str:
    return f"__Host-{name}" if bootstrap.services().settings.public_base_url.scheme == "https" else name


def phone(client: Any, key: str, inv_id: str) -> str | None:
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    return inv["phone"]


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


@pytest.fixture
def https(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages served over https, on the lenders' and accounts' own hosts (as in production)."""
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://app.myonboarding.com")
    monkeypatch.setenv("HOST_BASED_LINKS", "true")
    bootstrap.reset()


# --- the attacks ------------------------------------------------------------------------------------------------
def test_a_planted_csrf_cookie_cannot_forge_a_signed_in_customers_form(client: Any, key: str) -> None:
    """Over http a sibling can plant ``csrf``: the session's forms still need the session's own token."""
    inv_id, session = signed_in_customer(client, key)
    forged = post(
        client, "/portal/contact", {"phone": "514 555 0666", "csrf_token": PLANTED}, f"{session}; csrf={PLANTED}"
    )
    assert forged.status_code == 403
    as_json = client.http.post(
        "/portal/contact",
        headers={"Content-Type": "application/json", "Cookie": f"{session}; csrf={PLANTED}", "X-CSRF-Token": PLANTED},
        body=json.dumps({"phone": "514 555 0666"}),
    )
    assert as_json.status_code == 403
    assert phone(client, key, inv_id) is None

    page = client.http.get("/portal", headers={"Cookie": session})
    token = form_token(page)
    assert not set_cookies(page)  # no CSRF cookie: the token comes from the session
    ok = post(client, "/portal/contact", {"phone": "514 555 0199", "csrf_token": token}, session)
    assert ok.status_code == 303, ok.body
    assert phone(client, key, inv_id) == "+15145550199"
    # A JSON client reads the session's token from the status answer and sends it back.
    status = client.http.get("/portal/status", headers={"Cookie": session})
    assert status.status_code == 200 and {k.lower(): v for k, v in status.headers.items()}["x-csrf-token"] == token
    sent = client.http.post(
        "/portal/contact",
        headers={"Content-Type": "application/json", "Cookie": session, "X-CSRF-Token": token},
        body=json.dumps({"phone": "514 555 0100"}),
    )
    assert sent.status_code == 200, sent.body
    # Another session's token is no good: a token belongs to one session.
    other = post(client, "/portal/contact", {"phone": "514 555 0666", "csrf_token": "0" * 64}, session)
    assert other.status_code == 403


def test_link_forms_carry_a_token_bound_to_the_link(client: Any, key: str) -> None:
    """A portal link's and a confirmation link's forms: a planted cookie with the same value is not enough."""
    invite(client, key, send=False)
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    [inv] = call(client, "GET", "/v1/invitations", key)[1]["items"]
    token = s.invitations.portal_link(tenant, inv["invitation_id"]).url.rsplit("/", 1)[-1]
    planted = {"phone": "514 555 0666", "csrf_token": PLANTED}
    assert post(client, f"/portal/{token}/contact", planted, f"csrf={PLANTED}").status_code == 403
    page = client.http.get(f"/portal/{token}")
    good = {"phone": "514 555 0199", "csrf_token": form_token(page)}
    assert post(client, f"/portal/{token}/contact", good).status_code == 303

    settings(client, key, require_email_confirmation=True)
    joining = client.http.get("/t/acme/join")
    data = {"email": "jane@smallbiz.com", "business_name": "B", "password": PASSWORD, "account_subdomain": "janes"}
    fields = {**data, "csrf_token": form_token(joining)}
    assert post(client, "/t/acme/join", fields, cookie_pair(joining, "csrf")).status_code == 303
    drain("onboarding-send")
    [link] = confirmation_links()
    path = link.removeprefix("http://testserver")
    refused = post(client, path, {"password": PASSWORD, "csrf_token": PLANTED}, f"csrf={PLANTED}")
    assert refused.status_code == 403
    shown = client.http.get(path)
    assert post(client, path, {"password": PASSWORD, "csrf_token": form_token(shown)}).status_code == 303


def test_a_form_posted_from_a_sibling_host_is_refused(client: Any, key: str) -> None:
    """Signing the victim in to the attacker's account (login CSRF) from another lender's host: the browser says
    ``Sec-Fetch-Site: same-site``, and even a valid token pair does not help."""
    signed_in_customer(client, key)
    login = client.http.get("/a/janes/login")
    fields = {"username": "admin", "password": PASSWORD, "csrf_token": form_token(login)}
    pair = cookie_pair(login, "csrf")
    sibling = {"Sec-Fetch-Site": "same-site", "Origin": "https://mallory.myonboarding.com"}
    assert post(client, "/a/janes/login", fields, pair, **sibling).status_code == 403
    assert post(client, "/a/janes/login", fields, pair, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert post(client, "/a/janes/login", fields, pair, **{"Sec-Fetch-Site": "same-origin"}).status_code == 303
    assert post(client, "/a/janes/login", fields, pair).status_code == 303  # an older browser sends no Sec-Fetch-Site

    _, details = sign_up(client)
    browser = Browser(client)
    shown = browser.get("/console/login")
    console = {"lender": details["subdomain"], "email": details["admin_email"], "password": STAFF_PASSWORD}
    forged = browser.client.http.post(
        "/console/login",
        headers={**browser._headers({"Content-Type": FORM}), "Sec-Fetch-Site": "same-site"},
        body=urlencode({**console, "csrf_token": shown.csrf()}),
    )
    assert forged.status_code == 400 and "console_session" not in str(forged.headers)


def test_over_https_a_sibling_planted_cookie_is_never_read(client: Any, key: str, https: None) -> None:
    """A sibling can plant ``csrf`` and ``session`` but not ``__Host-`` cookies; the plain names are ignored."""
    inv_id, session = signed_in_customer(client, key, host="janes.myonboarding.com")
    assert session.startswith("__Host-session=")
    host = {"Host": "janes.myonboarding.com"}
    plain_session = session.removeprefix("__Host-")
    assert client.http.get("/portal", headers={**host, "Cookie": plain_session}).status_code == 401
    assert client.http.get("/portal", headers={**host, "Cookie": session}).status_code == 200
    fields = {"username": "admin", "password": PASSWORD, "csrf_token": PLANTED}
    assert post(client, "/login", fields, f"csrf={PLANTED}", **host).status_code == 403
    # The planted cookie comes first (a longer Path) and is not a valid cookie at all: the real ones still count.
    junk = 'junk=a"b; bad name=1'
    assert client.http.get("/portal", headers={**host, "Cookie": f"{junk}; {session}"}).status_code == 200


# --- the cookies ------------------------------------------------------------------------------------------------
def test_over_https_every_cookie_is_host_prefixed(client: Any, https: None) -> None:
    lines: list[str] = []
    signup = client.http.get("/signup")
    lines += set_cookies(signup)
    browser, details = sign_up(client)
    lender_host = f"{details['subdomain']}.myonboarding.com"
    status, _ = call(client, "PATCH", "/v1/tenant/settings", details["api_key"], {"require_email_confirmation": True})
    assert status == 200
    invite(client, details["api_key"], send=False)

    joining = client.http.get("/join", headers={"Host": lender_host})
    lines += set_cookies(joining)
    data = {"email": "jane@smallbiz.com", "business_name": "B", "password": PASSWORD, "account_subdomain": "janes"}
    fields = {**data, "csrf_token": form_token(joining)}
    joined = post(client, "/join", fields, cookie_pair(joining, "__Host-csrf"), Host=lender_host)
    assert joined.status_code == 303, joined.body
    lines += set_cookies(joined)
    email = cookie_pair(joined, "__Host-join_email")
    check = client.http.get("/join/check-email", headers={"Host": lender_host, "Cookie": email})
    assert "jane@smallbiz.com" in html.unescape(check.body.decode())
    # The address is the lender's to show: another lender's check-email page does not show it.
    _, other = sign_up(client)
    elsewhere = client.http.get(
        "/join/check-email", headers={"Host": f"{other['subdomain']}.myonboarding.com", "Cookie": email}
    )
    assert "jane@smallbiz.com" not in html.unescape(elsewhere.body.decode())

    console = Browser(client)
    shown = console.get("/console/login")
    lines += set_cookies(client.http.get("/console/login"))
    form = {"lender": details["subdomain"], "email": details["admin_email"], "password": STAFF_PASSWORD}
    signed = client.http.post(
        "/console/login",
        headers={**console._headers({"Content-Type": FORM})},
        body=urlencode({**form, "csrf_token": shown.csrf()}),
    )
    assert signed.status_code == 303, signed.body
    lines += set_cookies(signed)
    names = {line.split("=", 1)[0] for line in lines}
    assert {"__Host-csrf", "__Host-join_email", "__Host-console_session", "__Host-console_lender"} <= names
    for line in lines:
        attributes = [part.strip() for part in line.split(";")]
        assert attributes[0].startswith("__Host-"), line
        assert "Secure" in attributes and "Path=/" in attributes and "HttpOnly" in attributes, line
        assert not [a for a in attributes if a.lower().startswith("domain=")], line


def test_over_http_cookie_names_are_plain(client: Any, key: str) -> None:
    page = client.http.get("/t/acme/join")
    [line] = set_cookies(page)
    assert line.startswith("csrf=") and "Secure" not in line and "Path=/" in line
    _, session = signed_in_customer(client, key)
    assert session.startswith("session=")
    assert client.http.get("/portal", headers={"Cookie": f"__Host-{session}"}).status_code == 401


def test_over_https_every_answer_asks_for_https_only(client: Any, https: None) -> None:
    """Secure ``__Host-`` cookies keep a network attacker from planting cookies, not from serving an http look-alike
    of a lender's sign-in page to someone who typed its host: HSTS makes the browser go to https by itself."""
    for path in ("/console/login", "/signup", "/openapi.json", "/console/invitations"):
        answer = client.http.get(path, headers={"Host": "acme.myonboarding.com"})
        hsts = {k.lower(): v for k, v in answer.headers.items()}.get("strict-transport-security", "")
        assert hsts.startswith("max-age=31536000") and "includeSubDomains" in hsts, (path, answer.headers)


def test_over_http_no_answer_asks_for_https(client: Any) -> None:
    answer = client.http.get("/console/login")
    assert "strict-transport-security" not in {k.lower() for k in answer.headers}


def test_the_api_takes_its_key_and_no_csrf_and_never_a_session_cookie(client: Any) -> None:
    """Bearer-key API clients need no CSRF token, whatever Sec-Fetch-Site says (a browser page of the lender's own
    calling the API says cross-site); that holds because the API never takes a console session cookie instead."""
    browser, details = sign_up(client)
    cookie = browser._headers()["Cookie"]
    assert "console_session=" in cookie
    body = {"email": "jane@smallbiz.com", "owner": "Olivia Officer", "send": False}
    status, created = call(
        client, "POST", "/v1/invitations", details["api_key"], body, **{"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 201, created
    for forged in ({"Cookie": cookie}, {"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}):
        status, refused = call(client, "POST", "/v1/invitations", None, {**body, "email": "joe@smallbiz.com"}, **forged)
        assert status == 401, refused
    status, listed = call(client, "GET", "/v1/invitations", details["api_key"])
    assert [i["email"] for i in listed["items"]] == ["jane@smallbiz.com"]


def test_the_portal_status_answers_are_never_stored(client: Any, key: str) -> None:
    """The signed-in status carries the session's CSRF token (and, like the link's, the customer's progress): no
    cache may keep it and hand it to the next caller of the same URL (it varies by cookie, which a cache ignores)."""
    _, session = signed_in_customer(client, key)
    signed_in = client.http.get("/portal/status", headers={"Cookie": session})
    assert signed_in.status_code == 200
    assert {k.lower(): v for k, v in signed_in.headers.items()}.get("cache-control") == "no-store"
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    inv = invite(client, key, send=False, email="joe@smallbiz.com")
    token = s.invitations.portal_link(tenant, inv["invitation_id"]).url.rsplit("/", 1)[-1]
    by_link = client.http.get(f"/portal/{token}/status")
    assert by_link.status_code == 200
    assert {k.lower(): v for k, v in by_link.headers.items()}.get("cache-control") == "no-store"
