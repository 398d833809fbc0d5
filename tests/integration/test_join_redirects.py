"""The join pages answer a POST with a redirect to a page that can be reloaded or reached with Back
(POST/redirect/GET): "Check your email" and "Your account is ready" are GET pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.config import SEND_QUEUE
from tests.integration.helpers import call, drain
from tests.integration.test_join import (
    confirm,
    confirmation_links,
    invitation,
    invite,
    join,
    post_form,
    settings,
    text,
)


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def location(response: Any) -> str:
    return str({k.lower(): v for k, v in response.headers.items()}["location"])


def cookie_of(response: Any) -> str:
    return str({k.lower(): v for k, v in response.headers.items()}["set-cookie"]).split(";", 1)[0]


def test_joining_redirects_to_check_your_email_and_confirming_to_account_ready(client: Any, key: str) -> None:
    invite(client, key, send=False)
    joined = join(client)
    assert joined.status_code == 303
    assert location(joined) == "/t/acme/join/check-email"
    check = client.http.get(location(joined), headers={"Cookie": cookie_of(joined)})
    assert check.status_code == 200
    assert "Check your email" in text(check) and "jane@smallbiz.com" in text(check)
    # Reloading the page (or coming back to it) sends nothing again.
    assert client.http.get(location(joined), headers={"Cookie": cookie_of(joined)}).status_code == 200
    assert drain(SEND_QUEUE) == 1

    [link] = confirmation_links()
    confirmed = confirm(client, link)
    assert confirmed.status_code == 303
    assert location(confirmed) == "/t/acme/join/ready/janes-bakery"
    ready = client.http.get(location(confirmed))
    assert ready.status_code == 200 and "Your account is ready" in text(ready)
    assert "http://testserver/a/janes-bakery/login" in text(ready)


def test_without_email_confirmation_joining_redirects_to_account_ready(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False)
    joined = join(client)
    assert joined.status_code == 303 and location(joined) == "/t/acme/join/ready/janes-bakery"
    assert "Your account is ready" in text(client.http.get(location(joined)))


def test_the_ready_page_only_shows_an_active_account_of_this_lender(client: Any, key: str) -> None:
    invite(client, key, send=False)
    assert join(client).status_code == 303  # waiting for its confirmation: not ready
    assert client.http.get("/t/acme/join/ready/janes-bakery").status_code == 404
    assert client.http.get("/t/acme/join/ready/no-such-account").status_code == 404
    # Without its cookie the check-email page still reads well, without the address.
    page = client.http.get("/t/acme/join/check-email")
    assert page.status_code == 200 and "Check your email" in text(page)
    assert post_form(client, "/t/acme/join/check-email", {}).status_code in (404, 405)


def test_the_business_chooser_is_a_page_reached_by_a_redirect(client: Any, key: str) -> None:
    """Walk-through #24: the chooser was the answer to the join POST, so Reload posted the sign-up again."""
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False, business_legal_name="Jane's Bakery Inc.")
    cafe = invite(client, key, send=False, business_legal_name="Jane's Cafe LLC")
    joined = join(client, business_name="Jane's")
    assert joined.status_code == 303 and location(joined) == "/t/acme/join/choose"
    # The pending sign-up's secret rides in an HttpOnly cookie, never in the URL (Path=/, as a __Host- cookie needs:
    # another lender's chooser does not find it, see below).
    cookie = {k.lower(): v for k, v in joined.headers.items()}["set-cookie"]
    assert cookie.startswith("join_choice=") and "Path=/;" in cookie and "HttpOnly" in cookie
    page = client.http.get("/t/acme/join/choose", headers={"Cookie": cookie_of(joined)})
    assert page.status_code == 200 and "Jane's Cafe LLC" in text(page)
    # Reloading shows the same choice and signs nobody up.
    again = client.http.get("/t/acme/join/choose", headers={"Cookie": cookie_of(joined)})
    assert again.status_code == 200 and "Jane's Cafe LLC" in text(again) and "Jane's Bakery Inc." in text(again)
    assert invitation(client, key, cafe["invitation_id"])["status"] == "PENDING"
    # Without the cookie (another browser, or the sign-up expired) the page says to start again.
    lost = client.http.get("/t/acme/join/choose")
    assert lost.status_code == 410 and "Start again" in text(lost)
    status, _ = call(
        client, "POST", "/v1/tenants", None, {"name": "Other", "subdomain": "other", "admin_email": "a@o.com"}
    )
    assert status == 201
    elsewhere = client.http.get("/t/other/join/choose", headers={"Cookie": cookie_of(joined)})
    assert elsewhere.status_code == 410 and "Jane's Cafe LLC" not in text(elsewhere)


def test_send_a_new_link_redirects_to_a_page_that_can_be_reloaded(client: Any, key: str) -> None:
    resent = post_form(client, "/t/acme/join/resend", {"email": "jane@smallbiz.com"})
    assert resent.status_code == 303 and location(resent) == "/t/acme/join/link-sent"
    page = client.http.get(location(resent))
    assert page.status_code == 200 and "Check your email" in text(page)
    assert client.http.get("/join/link-sent", headers={"Host": "acme.myonboarding.com"}).status_code == 200


def _choose_cafe(client: Any, key: str) -> tuple[str, str, Any]:
    """Jane signs up with two businesses invited under her email and picks the cafe: (the chooser's cookie, its
    join_id, the answer to her choice)."""
    invite(client, key, send=False, business_legal_name="Jane's Bakery Inc.")
    cafe = invite(client, key, send=False, business_legal_name="Jane's Cafe LLC")
    joined = join(client, business_name="Jane's")
    pending = cookie_of(joined)
    page = text(client.http.get("/t/acme/join/choose", headers={"Cookie": pending}))
    join_id = re.search(r'name="join_id" value="([^"]+)"', page)
    assert join_id
    chosen = post_form(
        client,
        "/t/acme/join/choose",
        {"join_id": join_id.group(1), "invitation_id": cafe["invitation_id"]},
        cookie=pending,
    )
    assert chosen.status_code == 303, text(chosen)
    return pending, join_id.group(1), chosen


def cookies_of(response: Any) -> str:
    raw = {k.lower(): v for k, v in response.headers.items()}["set-cookie"]
    return "; ".join(line.split(";", 1)[0] for line in ([raw] if isinstance(raw, str) else raw))


def test_back_to_the_chooser_after_choosing_says_the_sign_up_went_through(client: Any, key: str) -> None:
    """Walk-through: after choosing, the browser's Back showed the chooser saying 'This sign-up expired. Please
    start again', when it had gone through and a confirmation email was on its way."""
    _, join_id, chosen = _choose_cafe(client, key)
    assert location(chosen) == "/t/acme/join/check-email"
    after = cookies_of(chosen)

    back = client.http.get("/t/acme/join/choose", headers={"Cookie": after})
    shown = text(back)
    assert back.status_code == 200, shown
    assert "You already chose your business" in shown and "expired" not in shown
    assert "check your email" in shown.lower() and 'href="/t/acme/join/check-email"' in shown
    # The chooser's form, posted again from the browser's cache, answers the same (and signs nobody up twice).
    again = post_form(client, "/t/acme/join/choose", {"join_id": join_id, "invitation_id": "inv_x"}, cookie=after)
    assert again.status_code == 303 and location(again) == "/t/acme/join/choose"
    # Another lender's chooser does not read it.
    status, _ = call(
        client, "POST", "/v1/tenants", None, {"name": "Other", "subdomain": "other", "admin_email": "a@o.com"}
    )
    assert status == 201
    elsewhere = client.http.get("/t/other/join/choose", headers={"Cookie": after})
    assert elsewhere.status_code == 410 and "You already chose your business" not in text(elsewhere)


def test_back_to_the_chooser_without_email_confirmation_leads_to_the_ready_account(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    _, _, chosen = _choose_cafe(client, key)
    assert location(chosen) == "/t/acme/join/ready/janes-bakery"
    back = client.http.get("/t/acme/join/choose", headers={"Cookie": cookies_of(chosen)})
    assert back.status_code == 200 and "You already chose your business" in text(back)
    assert 'href="/t/acme/join/ready/janes-bakery"' in text(back)


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", ("If you already chose your business", "check your email", "15 minutes", "start again")),
        ("fr", ("Si vous avez déjà choisi votre entreprise", "vérifiez vos courriels", "15 minutes", "recommencer")),
    ],
)
def test_a_chooser_found_without_its_sign_up_says_what_may_have_happened(
    client: Any, key: str, locale: str, words: tuple[str, ...]
) -> None:
    """No pending sign-up in this browser: it went through (then the email finishes it) or lapsed after 15 minutes
    (then start again). Not 'This sign-up expired', which a customer who had just chosen could not make sense of."""
    settings(client, key, locale=locale)
    lost = client.http.get("/t/acme/join/choose")
    shown = text(lost)
    assert lost.status_code == 410
    for phrase in words:
        assert phrase.lower() in shown.lower(), phrase
    assert 'href="/t/acme/join"' in shown
