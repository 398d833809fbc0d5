"""The hosted join page, email confirmation, customer sign-in and abuse limits (moto in-process)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.config import SEND_QUEUE
from chalicelib.domain.invitation import utcnow
from tests.integration.helpers import call, drain, sent_emails

CSRF = "c" * 43
PASSWORD = "correct horse battery"
CONFIRM_LINK = re.compile(r"http://testserver/t/acme/join/confirm/[A-Za-z0-9_-]{43}")


def bound_token(path: str, cookie: str = "") -> str | None:
    """The CSRF token the page of ``path``'s form carries when it is bound to a secret, derived as the page derives
    it (chalicelib.api.forms.bound_csrf): the link's (``.../join/confirm/{token}``, ``/portal/{token}/...``) or the
    session's (``/portal/<action>``). None for a form shown before sign-in, which uses the double-submit cookie."""
    from chalicelib.api.forms import bound_csrf
    from chalicelib.api.join import CONFIRM_CSRF
    from chalicelib.api.portal import LINK_CSRF, SESSION_CSRF

    parts = path.split("?", 1)[0].split("/")
    if "confirm" in parts and "join" in parts:
        return bound_csrf(CONFIRM_CSRF, parts[-1])
    if len(parts) < 3 or parts[1] != "portal" or parts[2] == "fresh-link":
        return None
    if len(parts[2]) >= 32:
        return bound_csrf(LINK_CSRF, parts[2])
    session = dict(p.strip().split("=", 1) for p in cookie.split(";") if "=" in p).get("session", "")
    return bound_csrf(SESSION_CSRF, session)


def post_form(
    client: Any, path: str, data: dict[str, str], *, csrf: bool = True, cookie: str = "", host: str | None = None
) -> Any:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    jar = [cookie] if cookie else []
    bound = bound_token(path, cookie)
    if csrf and bound is not None:
        data = {**data, "csrf_token": bound}
    elif csrf:
        data = {**data, "csrf_token": CSRF}
        jar.append(f"csrf={CSRF}")
    if jar:
        headers["Cookie"] = "; ".join(jar)
    if host:
        headers["Host"] = host
    return client.http.post(path, headers=headers, body=urlencode(data))


def text(response: Any) -> str:
    return html.unescape(response.body.decode())


def join(client: Any, email: str = "jane@smallbiz.com", sub: str = "janes-bakery", **fields: str) -> Any:
    data = {"email": email, "business_name": "Jane's Bakery", "password": PASSWORD, "account_subdomain": sub}
    return post_form(client, "/t/acme/join", {**data, **fields})


def settings(client: Any, key: str, **changes: Any) -> None:
    status, body = call(client, "PATCH", "/v1/tenant/settings", key, changes)
    assert status == 200, body


def invite(client: Any, key: str, email: str = "jane@smallbiz.com", **fields: Any) -> dict[str, Any]:
    status, inv = call(client, "POST", "/v1/invitations", key, {"email": email, "owner": "Olivia", **fields})
    assert status == 201, inv
    return dict(inv)


def invitation(client: Any, key: str, invitation_id: str) -> dict[str, Any]:
    status, inv = call(client, "GET", f"/v1/invitations/{invitation_id}", key)
    assert status == 200
    return dict(inv)


def history(client: Any, key: str, invitation_id: str) -> list[str]:
    _, page = call(client, "GET", f"/v1/invitations/{invitation_id}/history", key)
    return [e["type"] for e in page["items"]]


def confirmation_links() -> list[str]:
    """Each email's confirmation link (its HTML and text parts both carry it), oldest first."""
    return list(dict.fromkeys(m for e in sent_emails() for m in CONFIRM_LINK.findall(e.body)))


def confirm(client: Any, link: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    """Press "Confirm my email" on the link's page, with the password chosen at sign-up."""
    return post_form(client, link.removeprefix("http://testserver"), {"password": password}, **kwargs)


def follow(client: Any, response: Any) -> Any:
    """The page a form's 303 leads to (POST/redirect/GET), fetched with the cookie the redirect set."""
    assert response.status_code == 303, text(response)
    headers = {k.lower(): v for k, v in response.headers.items()}
    cookie = str(headers.get("set-cookie", "")).split(";", 1)[0]
    return client.http.get(headers["location"], headers={"Cookie": cookie} if cookie else {})


def sign_in(client: Any, account: str, username: str, password: str = PASSWORD) -> Any:
    return post_form(client, f"/a/{account}/login", {"username": username, "password": password})


def session_cookie(response: Any) -> str:
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return cookie.split(";", 1)[0]


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


# --- the page -------------------------------------------------------------------------------------
def test_join_page_is_branded_labelled_and_sets_a_csrf_cookie(client: Any, key: str) -> None:
    settings(client, key, branding={"display_name": "Acme Capital", "colour": "#0a7d3b"})
    response = client.http.get("/t/acme/join")
    page = text(response)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "csrf=" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert "Acme Capital" in page and "#0a7d3b" in page
    for name in ("email", "business_name", "password", "account_subdomain"):
        assert f'<label for="{name}">' in page and f'id="{name}"' in page
    assert 'name="viewport"' in page and "<script" not in page
    assert "https://your-subdomain.myonboarding.com" in page  # the lender's residency domain
    assert "http://testserver/t/acme/join" in page

    assert client.http.get("/t/nobody-here/join").status_code == 404


def test_french_lender_with_canadian_residency(client: Any) -> None:
    status, created = call(
        client,
        "POST",
        "/v1/tenants",
        None,
        {"name": "Prêts Nord", "subdomain": "nord", "admin_email": "a@nord.ca", "data_residency": "ca"},
    )
    assert status == 201
    settings(client, created["api_key"], locale="fr")
    page = text(client.http.get("/t/nord/join"))
    assert 'lang="fr"' in page and "Créez votre compte" in page
    assert "https://votre-sous-domaine.myonboarding.ca" in page
    response = post_form(
        client,
        "/t/nord/join",
        {"email": "x@y.ca", "business_name": "B", "password": PASSWORD, "account_subdomain": "xyz-co"},
    )
    assert response.status_code == 403
    assert "Ce courriel n'est pas sur notre liste" in text(response)


def test_host_form_picks_the_lender_from_host_but_builds_no_link_from_it(client: Any, key: str) -> None:
    response = client.http.get("/join", headers={"Host": "acme.myonboarding.com"})
    assert response.status_code == 200
    page = text(response)
    assert 'action="/join"' in page
    assert "http://testserver/t/acme/join" in page  # from settings, not from Host
    assert client.http.get("/join", headers={"Host": "acme.myonboarding.ca"}).status_code == 404  # wrong residency
    assert client.http.get("/join", headers={"Host": "acme.evil.example"}).status_code == 404
    assert client.http.get("/join", headers={"Host": "nobody.myonboarding.com"}).status_code == 404

    invite(client, key, send=False)
    settings(client, key, require_email_confirmation=False)
    data = {"email": "jane@smallbiz.com", "business_name": "B", "password": PASSWORD, "account_subdomain": "janes"}
    joined = post_form(client, "/join", data, host="acme.myonboarding.com")
    assert joined.status_code == 303, text(joined)
    assert joined.headers["Location"] == "/join/ready/janes"  # a path: the host is the lender's, never built from Host
    signed = post_form(client, "/login", {"username": "admin", "password": PASSWORD}, host="janes.myonboarding.com")
    assert signed.status_code == 303
    assert signed.headers["Location"] == "https://janes.myonboarding.com/portal"


# --- require_invitation -----------------------------------------------------------------------------
def test_email_not_on_the_list_gets_the_two_checkpoints(client: Any, key: str) -> None:
    invite(client, key, email="someone-else@smallbiz.com", send=False)
    response = join(client)
    page = text(response)
    assert response.status_code == 403
    assert "Email is not on our list" in page and 'role="alert"' in page
    assert "same email address at which Acme Lending invited you" in page
    assert "has not invited you yet" in page
    assert 'value="jane@smallbiz.com"' in page and PASSWORD not in page
    _, listing = call(client, "GET", "/v1/invitations", key)
    assert [i["status"] for i in listing["items"]] == ["PENDING"]


def test_invited_customer_joins_only_after_confirming_the_email(client: Any, key: str) -> None:
    inv = invite(client, key, send=False, first_name="Jane")
    response = follow(client, join(client, email="JANE@smallbiz.com"))
    assert response.status_code == 200, text(response)
    assert "Check your email" in text(response) and "jane@smallbiz.com" in text(response)
    assert invitation(client, key, inv["invitation_id"])["status"] == "PENDING"
    assert sign_in(client, "janes-bakery", "admin").status_code == 401  # not confirmed yet

    assert drain(SEND_QUEUE) == 1
    [link] = confirmation_links()
    [mail] = sent_emails()
    assert mail.destinations["ToAddresses"] == ["jane@smallbiz.com"]
    assert mail.subject == "Confirm your email for Acme Lending"
    _, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    assert [(c["template"], c["status"]) for c in log["items"]] == [("confirmation", "sent")]

    path = link.removeprefix("http://testserver")
    landing = client.http.get(path)  # a mail scanner's GET uses nothing up
    assert landing.status_code == 200 and "janes-bakery" in text(landing)
    assert 'type="password"' in text(landing) and 'autocomplete="current-password"' in text(landing)
    assert client.http.get(path).status_code == 200
    assert confirm(client, link, csrf=False).status_code == 403
    confirmed = follow(client, confirm(client, link))
    assert confirmed.status_code == 200, text(confirmed)
    assert "http://testserver/a/janes-bakery/login" in text(confirmed)

    after = invitation(client, key, inv["invitation_id"])
    assert after["status"] == "JOINED" and after["joined_at"] and after["account_subdomain"] == "janes-bakery"
    assert after["business_legal_name"] == "Jane's Bakery"
    events = history(client, key, inv["invitation_id"])
    assert events[-5:] == ["join_requested", "send_requested", "sent", "joined", "link_rotated"]
    _, joined = call(client, "GET", "/v1/invitations?status=JOINED", key)
    assert [i["invitation_id"] for i in joined["items"]] == [inv["invitation_id"]]

    reused = confirm(client, link)
    assert reused.status_code == 410
    # Used: it says so and where to sign in (no new-link form: there is nothing left to confirm).
    assert "already confirmed" in text(reused) and 'href="http://testserver/a/janes-bakery/login"' in text(reused)
    assert client.http.get(path).status_code == 410


def test_expired_confirmation_link_offers_a_new_one(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = invite(client, key, send=False)
    assert join(client).status_code == 303
    drain(SEND_QUEUE)
    [old] = confirmation_links()
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr("chalicelib.services.join.utcnow", lambda: later)
    expired = confirm(client, old)
    assert expired.status_code == 410 and "Send a new link" in text(expired)

    resent = post_form(client, "/t/acme/join/resend", {"email": "jane@smallbiz.com"})
    assert resent.status_code == 303
    unknown = post_form(client, "/t/acme/join/resend", {"email": "nobody@smallbiz.com"})
    assert unknown.status_code == 303 and unknown.headers == resent.headers  # no hint whether the email exists
    assert text(follow(client, unknown)) == text(follow(client, resent))
    drain(SEND_QUEUE)
    fresh = [link for link in confirmation_links() if link != old]
    assert len(fresh) == 1
    assert confirm(client, old).status_code == 410
    assert confirm(client, fresh[0]).status_code == 303
    assert invitation(client, key, inv["invitation_id"])["status"] == "JOINED"


def test_without_confirmation_the_customer_joins_at_once_and_signs_in(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    inv = invite(client, key, send=False)
    response = follow(client, join(client))
    assert response.status_code == 200, text(response)
    assert "http://testserver/a/janes-bakery/login" in text(response)
    assert invitation(client, key, inv["invitation_id"])["status"] == "JOINED"
    assert history(client, key, inv["invitation_id"])[-2:] == ["joined", "link_rotated"]

    login_page = client.http.get("/a/janes-bakery/login")
    assert login_page.status_code == 200 and "Acme Lending" in text(login_page)
    signed = sign_in(client, "janes-bakery", "admin")
    assert signed.status_code == 303
    assert signed.headers["Location"] == "http://testserver/portal"  # no token in the URL
    cookie = session_cookie(signed)
    assert "Secure" not in signed.headers["Set-Cookie"]  # local stage only
    portal = client.http.get("/portal", headers={"Cookie": cookie})
    assert portal.status_code == 200 and "jane@smallbiz.com" in text(portal)
    assert client.http.get("/portal").status_code == 401
    assert client.http.get("/portal", headers={"Cookie": "session=forged"}).status_code == 401

    assert sign_in(client, "janes-bakery", "Jane@SmallBiz.com").status_code == 303
    wrong_password = sign_in(client, "janes-bakery", "admin", "wrong password!!")
    wrong_user = sign_in(client, "janes-bakery", "root")
    no_account = sign_in(client, "nobody-here", "admin")
    for refused in (wrong_password, wrong_user, no_account):
        assert refused.status_code == 401
        assert "The username or password is incorrect." in text(refused)
        assert "Set-Cookie" not in refused.headers or "session=" not in refused.headers["Set-Cookie"]


def test_confirming_needs_the_password_chosen_at_sign_up(client: Any, key: str) -> None:
    """Someone who knows an invited email starts a join with their own password: the customer who
    follows the emailed link cannot confirm an account whose password they did not choose."""
    inv = invite(client, key, send=False)
    assert join(client, password="impostor's own password").status_code == 303
    drain(SEND_QUEUE)
    [planted] = confirmation_links()
    for attempt in ("", PASSWORD):
        refused = confirm(client, planted, attempt)
        assert refused.status_code == 401
        assert "The password is incorrect." in text(refused) and 'role="alert"' in text(refused)
        assert 'aria-invalid="true"' in text(refused) and PASSWORD not in text(refused)
    assert invitation(client, key, inv["invitation_id"])["status"] == "PENDING"
    assert "joined" not in history(client, key, inv["invitation_id"])
    assert "the new sign-up replaces this one" in text(refused)

    # The customer creates the account again with their own password: it replaces the planted one.
    assert join(client).status_code == 303
    drain(SEND_QUEUE)
    [own] = [link for link in confirmation_links() if link != planted]
    assert confirm(client, planted, "impostor's own password").status_code == 410
    assert confirm(client, own).status_code == 303
    assert invitation(client, key, inv["invitation_id"])["status"] == "JOINED"
    assert sign_in(client, "janes-bakery", "admin").status_code == 303
    assert sign_in(client, "janes-bakery", "admin", "impostor's own password").status_code == 401


def test_wrong_confirmation_passwords_are_throttled(client: Any, key: str) -> None:
    inv = invite(client, key, send=False)
    assert join(client).status_code == 303
    drain(SEND_QUEUE)
    [link] = confirmation_links()
    for _ in range(5):
        assert confirm(client, link, "guess guess guess").status_code == 401
    blocked = confirm(client, link)  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many attempts" in text(blocked)
    assert invitation(client, key, inv["invitation_id"])["status"] == "PENDING"


# --- open join (no invitation required) -----------------------------------------------------------
def test_open_join_creates_a_self_signup_invitation(client: Any, key: str) -> None:
    settings(client, key, require_invitation=False, require_email_confirmation=False)
    response = join(client, email="walk-in@newbiz.com", sub="walk-in", business_name="New Biz Ltd")
    assert response.status_code == 303, text(response)
    _, listing = call(client, "GET", "/v1/invitations?status=JOINED", key)
    [inv] = listing["items"]
    assert (inv["source"], inv["owner"], inv["email"]) == ("self_signup", "self-signup", "walk-in@newbiz.com")
    assert inv["business_legal_name"] == "New Biz Ltd" and inv["account_subdomain"] == "walk-in"
    assert history(client, key, inv["invitation_id"]) == ["created", "joined"]


def test_the_open_join_page_does_not_assume_an_invitation(client: Any, key: str) -> None:
    """Walk-through #21: with Require Invitation off, anyone may join, so the page must not say "invited you"."""
    invited = text(client.http.get("/t/acme/join"))
    assert "Use the email address at which Acme Lending invited you." in invited
    settings(client, key, require_invitation=False)
    page = text(client.http.get("/t/acme/join"))
    assert "at which Acme Lending invited you" not in page and "invites you" not in page
    assert "If Acme Lending invited you, use the email address the invitation was sent to." in page
    settings(client, key, locale="fr")
    french = text(client.http.get("/t/acme/join"))
    assert "vous a invité." not in french and "vous invite" not in french
    assert "Si Acme Lending vous a invité, utilisez l'adresse courriel à laquelle l'invitation a été envoyée." in french


def test_open_join_with_confirmation_is_pending_until_confirmed(client: Any, key: str) -> None:
    settings(client, key, require_invitation=False)
    assert join(client, email="walk-in@newbiz.com", sub="walk-in").status_code == 303
    _, listing = call(client, "GET", "/v1/invitations", key)
    [inv] = listing["items"]
    assert (inv["status"], inv["source"]) == ("PENDING", "self_signup")
    drain(SEND_QUEUE)
    [link] = confirmation_links()
    assert confirm(client, link).status_code == 303
    assert invitation(client, key, inv["invitation_id"])["status"] == "JOINED"
    assert history(client, key, inv["invitation_id"]) == [
        "created",
        "join_requested",
        "send_requested",
        "sent",
        "joined",
    ]


# --- several invitations with one email -----------------------------------------------------------
def test_several_invitations_with_one_email_ask_for_the_business(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    bakery = invite(client, key, send=False, business_legal_name="Jane's Bakery Inc.")
    cafe = invite(client, key, send=False, business_legal_name="Jane's Cafe LLC")
    response = join(client, business_name="Jane's")
    page = text(follow(client, response))
    assert "Select your Business Legal Name" in page
    assert 'type="radio"' in page and "Jane's Bakery Inc." in page and "Jane's Cafe LLC" in page
    assert PASSWORD not in page and 'name="password"' not in page
    join_id = re.search(r'name="join_id" value="([^"]+)"', page)
    assert join_id

    missing = post_form(client, "/t/acme/join/choose", {"join_id": join_id.group(1)})
    assert missing.status_code == 400 and "Select your Business Legal Name." in text(missing)
    chosen = post_form(
        client, "/t/acme/join/choose", {"join_id": join_id.group(1), "invitation_id": cafe["invitation_id"]}
    )
    assert chosen.status_code == 303, text(chosen)
    assert invitation(client, key, cafe["invitation_id"])["status"] == "JOINED"
    assert invitation(client, key, bakery["invitation_id"])["status"] == "PENDING"
    again = post_form(
        client, "/t/acme/join/choose", {"join_id": join_id.group(1), "invitation_id": cafe["invitation_id"]}
    )
    assert again.status_code == 410  # the pending join is used up

    # A business name that matches one of them needs no second step.
    direct = join(client, sub="janes-bakery-2", business_name="janes bakery inc")
    assert direct.status_code == 303, text(direct)
    assert invitation(client, key, bakery["invitation_id"])["status"] == "JOINED"


# --- account subdomain and password rules -----------------------------------------------------------
SUBDOMAIN_CASES = [
    ("admin", "This name is reserved"),
    ("-bad-", "Use 3 to 63 lowercase letters"),
    ("ab", "Use 3 to 63 lowercase letters"),
    ("", "Choose the subdomain"),
    ("acme", "already taken"),  # the lender's own subdomain: customers and lenders share the domain
]


def test_account_subdomain_rules(client: Any, key: str) -> None:
    invite(client, key, send=False)
    for sub, message in SUBDOMAIN_CASES:
        response = join(client, sub=sub)
        page = text(response)
        assert response.status_code in (400, 409), sub
        assert message in page, sub
        assert 'aria-invalid="true"' in page
        assert 'aria-describedby="account_subdomain-hint account_subdomain-error"' in page


def test_account_subdomain_is_unique_across_customers(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False)
    invite(client, key, email="bob@otherbiz.com", send=False)
    assert join(client, sub="shared-name").status_code == 303
    response = join(client, email="bob@otherbiz.com", sub="Shared-Name")
    assert response.status_code == 409
    assert "This subdomain is already taken" in text(response)


def test_a_lender_cannot_take_a_customers_account_name(client: Any, key: str) -> None:
    # Customers and lenders share <name>.<base domain>: one namespace, refused with 409 from either side.
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False)
    assert join(client, sub="janes-bakery").status_code == 303
    status, body = call(
        client,
        "POST",
        "/v1/tenants",
        None,
        {"name": "Bakery Lending", "subdomain": "Janes-Bakery", "admin_email": "ops@bakery-lending.example"},
    )
    assert status == 409, body
    assert body["error"]["fields"] == {"subdomain": "already taken"}


def test_a_name_held_by_an_unconfirmed_sign_up_is_taken_until_it_expires(
    client: Any, key: str, aws: dict[str, str]
) -> None:
    import boto3

    invite(client, key, send=False)
    assert join(client, sub="held-name").status_code == 303  # waiting for the email confirmation
    new_lender = {"name": "Held Lending", "subdomain": "held-name", "admin_email": "ops@held.example"}
    assert call(client, "POST", "/v1/tenants", None, new_lender)[0] == 409

    # Abandoned: past its expiry, and the table's TTL has not deleted it yet (it can lag by days).
    boto3.client("dynamodb").update_item(
        TableName=aws["TABLE_NAME"],
        Key={"PK": {"S": "ACCOUNT#held-name"}, "SK": {"S": "ACCOUNT"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int((utcnow() - timedelta(hours=1)).timestamp()))}},
    )
    status, body = call(client, "POST", "/v1/tenants", None, new_lender)
    assert status == 201, body
    refused = join(client, sub="held-name")
    assert refused.status_code == 409 and "This subdomain is already taken" in text(refused)


def test_password_length_rules(client: Any, key: str) -> None:
    invite(client, key, send=False)
    for password, ok in [("x" * 11, False), ("é" * 129, False), ("x" * 12, True), ("é" * 128, True)]:
        response = join(client, password=password)
        page = text(response)
        assert password not in page
        if ok:
            assert response.status_code == 303, page
        else:
            assert response.status_code == 400
            assert "password-error" in page and ("at least 12" in page or "at most 128" in page)


def test_rejoining_replaces_the_unconfirmed_sign_up(client: Any, key: str) -> None:
    inv = invite(client, key, send=False)
    assert join(client, sub="first-name").status_code == 303
    drain(SEND_QUEUE)
    assert join(client, sub="second-name").status_code == 303
    drain(SEND_QUEUE)
    first, second = confirmation_links()
    assert confirm(client, first).status_code == 410
    assert confirm(client, second).status_code == 303
    assert invitation(client, key, inv["invitation_id"])["account_subdomain"] == "second-name"
    settings(client, key, require_email_confirmation=False)
    invite(client, key, email="bob@otherbiz.com", send=False)
    assert join(client, email="bob@otherbiz.com", sub="first-name").status_code == 303  # the old name is free


# --- abuse ----------------------------------------------------------------------------------------
def test_csrf_is_required(client: Any, key: str) -> None:
    invite(client, key, send=False)
    data = {"email": "jane@smallbiz.com", "business_name": "B", "password": PASSWORD, "account_subdomain": "janes"}
    response = post_form(client, "/t/acme/join", data, csrf=False)
    assert response.status_code == 403 and "The form expired" in text(response)
    mismatched = client.http.post(
        "/t/acme/join",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrf={CSRF}"},
        body=urlencode({**data, "csrf_token": "d" * 43}),
    )
    assert mismatched.status_code == 403
    assert (
        post_form(client, "/a/janes/login", {"username": "admin", "password": PASSWORD}, csrf=False).status_code == 403
    )
    _, listing = call(client, "GET", "/v1/invitations", key)
    assert [i["account_subdomain"] for i in listing["items"]] == [None]


def test_join_is_rate_limited_per_email_with_retry_after(client: Any, key: str) -> None:
    for i in range(5):
        assert join(client, email="spam@smallbiz.com", sub=f"spam-{i}").status_code == 403
    limited = join(client, email="spam@smallbiz.com", sub="spam-9")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Too many attempts" in text(limited) and "try again in" in text(limited)
    assert join(client, email="other@smallbiz.com").status_code == 403  # another email is not affected


def test_sign_in_is_throttled_after_repeated_failures(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False)
    assert join(client).status_code == 303
    for _ in range(5):
        assert sign_in(client, "janes-bakery", "admin", "wrong password!!").status_code == 401
    blocked = sign_in(client, "janes-bakery", "admin")  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many attempts" in text(blocked)


def test_confirm_is_rate_limited_per_ip(client: Any, key: str) -> None:
    invite(client, key, send=False)
    bogus = "/t/acme/join/confirm/" + "A" * 43
    statuses = [post_form(client, bogus, {}).status_code for _ in range(31)]
    assert statuses[:30] == [410] * 30
    assert statuses[30] == 429


def test_a_joined_customer_is_sent_to_their_sign_in_address_from_old_links(client: Any, key: str) -> None:
    """Once the customer has joined with a password, their emailed portal link is retired: the old link, a
    fresh-link request and the used confirmation link all give the account's sign-in address."""
    from chalicelib import bootstrap

    inv = invite(client, key, send=False, first_name="Jane")
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    old_token = s.invitations.portal_link(tenant, inv["invitation_id"]).url.rsplit("/", 1)[-1]
    assert join(client).status_code in (202, 303)
    drain(SEND_QUEUE)
    [link] = confirmation_links()
    assert confirm(client, link).status_code in (200, 303)
    sign_in_url = "http://testserver/a/janes-bakery/login"

    old = client.http.get(f"/portal/{old_token}")
    assert old.status_code == 404
    page = text(old)
    assert "You have an account" in page and f'href="{sign_in_url}"' in page
    assert 'lang="fr"' in page and "Vous avez un compte" in page

    asked = post_form(client, "/portal/fresh-link", {"email": "jane@smallbiz.com", "token": old_token})
    assert asked.status_code == 200
    assert f'href="{sign_in_url}"' in text(asked) and "You have an account" in text(asked)
    # Someone with the old link but another address learns nothing from the answer.
    wrong = post_form(client, "/portal/fresh-link", {"email": "someone@else.com", "token": old_token})
    assert sign_in_url not in text(wrong)

    reused = confirm(client, link)
    assert reused.status_code == 410
    assert "already confirmed" in text(reused) and f'href="{sign_in_url}"' in text(reused)
