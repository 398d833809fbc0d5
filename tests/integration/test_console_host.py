"""Sign-in on the lender's own host: in production the console is served on ``<subdomain>.<base domain>``,
so /console/login (and the forgotten-password page) take the lender from the Host header and ask only
for email and password; the path form, used locally, keeps the lender field. Teammates' links are built
from settings (the lender's host in production), never from the request's Host."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib import bootstrap
from tests.integration.console_helpers import PASSWORD, Browser, sign_up
from tests.integration.helpers import drain
from tests.integration.test_console_settings import RESET, invite, links_to

HOST_ACCEPT = re.compile(r"https://[a-z0-9-]+\.myonboarding\.com/console/accept/[A-Za-z0-9_-]{43}")


class HostBrowser(Browser):
    """A browser that reaches the console on one host."""

    host: str = ""

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**super()._headers(extra), "Host": self.host}


def on_host(client: Any, host: str) -> HostBrowser:
    browser = HostBrowser(client)
    browser.host = host
    return browser


def test_the_login_page_on_the_lenders_host_needs_no_lender_field(client: Any) -> None:
    _, lender = sign_up(client)
    browser = on_host(client, f"{lender['subdomain']}.myonboarding.com")
    page = browser.get("/console/login")
    assert page.status == 200
    assert 'name="lender"' not in page.text and "Signing in to Acme Lending." in page.text
    signed_in = browser.post("/console/login", {"email": lender["admin_email"], "password": PASSWORD}, page.csrf())
    assert signed_in.status == 303 and signed_in.location == "/console/invitations", signed_in.text[:2000]
    assert "Olivia Officer (admin)" in browser.get("/console/invitations").text

    # A lender typed into the form cannot override the host's lender.
    _, other = sign_up(client)
    again = on_host(client, f"{lender['subdomain']}.myonboarding.com")
    form = again.get("/console/login")
    refused = again.post(
        "/console/login",
        {"lender": other["subdomain"], "email": other["admin_email"], "password": PASSWORD},
        form.csrf(),
    )
    assert refused.status == 401


def test_other_hosts_keep_the_path_form(client: Any) -> None:
    _, lender = sign_up(client)
    for host in (
        f"{lender['subdomain']}.myonboarding.ca",  # the other residency's domain
        "nobody-here.myonboarding.com",  # no such lender (or a customer account's name)
        f"{lender['subdomain']}.evil.example",
        "testserver",
    ):
        page = on_host(client, host).get("/console/login")
        assert page.status == 200 and 'name="lender"' in page.text, host
    forgot = on_host(client, f"{lender['subdomain']}.myonboarding.com").get("/console/forgot")
    assert 'name="lender"' not in forgot.text and "Acme Lending" in forgot.text
    plain = Browser(client)
    shown = plain.get("/console/login")
    done = plain.post(
        "/console/login",
        {"lender": lender["subdomain"], "email": lender["admin_email"], "password": PASSWORD},
        shown.csrf(),
    )
    assert done.status == 303


def test_forgot_password_on_the_host_finds_the_member(client: Any) -> None:
    _, lender = sign_up(client)
    browser = on_host(client, f"{lender['subdomain']}.myonboarding.com")
    page = browser.get("/console/forgot")
    sent = browser.post("/console/forgot", {"email": lender["admin_email"]}, page.csrf())
    assert sent.status == 200 and "we emailed it a link" in sent.text
    drain("onboarding-send")
    assert len(links_to(lender["admin_email"], RESET)) == 1


def test_teammate_links_go_to_the_lenders_host_in_production(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_BASED_LINKS", "true")
    bootstrap.reset()
    admin, lender = sign_up(client)
    invite(admin, "theo@acme-lending.example")
    drain("onboarding-send")
    (link,) = links_to("theo@acme-lending.example", HOST_ACCEPT)
    assert link.startswith(f"https://{lender['subdomain']}.myonboarding.com/console/accept/"), link


def test_signed_out_pages_name_the_lender_when_the_host_or_the_link_says_which(client: Any) -> None:
    """Walk-through #25: no empty "· Console" header; the lender's name where the host or a token names it."""
    admin, lender = sign_up(client)
    header = re.compile(r'<span class="brand">([^<]*)</span>')
    on_lender_host = on_host(client, f"{lender['subdomain']}.myonboarding.com").get("/console/login").text
    assert header.search(on_lender_host).group(1) == "Acme Lending · Console"  # type: ignore[union-attr]
    anywhere = Browser(client).get("/console/login").text
    assert header.search(anywhere).group(1) == "Lender console"  # type: ignore[union-attr]

    invite(admin, "theo@acme-lending.example")
    drain("onboarding-send")
    accept = re.compile(r"http://testserver(/console/accept/[A-Za-z0-9_-]{43})")
    (path,) = links_to("theo@acme-lending.example", accept)
    page = Browser(client).get(path).text
    assert header.search(page).group(1) == "Acme Lending · Console"  # type: ignore[union-attr]
