"""The console says, on every page, when the lender's sending is held: sandbox mode until the admin email is
confirmed (with a button that sends a new link, the previous one stops working), paused (bounce or
complaint rate) or suspended by an operator, each with its reason and what to do (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import bootstrap
from tests.integration.console_helpers import Browser, sign_up
from tests.integration.helpers import drain
from tests.integration.test_console_settings import invite, join_as, links_to
from tests.integration.test_sending_safety import VERIFY_LINK

PAGES = ("/console/invitations", "/console/customers", "/console/settings", "/console/notifications")


@pytest.fixture
def strict(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Production's default: a new lender's admin email must be confirmed before sending to others."""
    monkeypatch.setenv("LENDER_VERIFICATION_REQUIRED", "true")
    bootstrap.reset()


def _tenant_id(browser: Browser) -> str:
    session = bootstrap.staff().session(browser.cookies["console_session"])
    assert session is not None
    return session.tenant.tenant_id


def _confirm(client: Any, path: str) -> int:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return int(client.http.post(path, headers=form, body="").status_code)


def test_an_unverified_lender_sees_sandbox_mode_on_every_page_and_can_get_a_new_link(strict: None, client: Any) -> None:
    admin, lender = sign_up(client)
    for path in (*PAGES, "/console/invitations/inv_NOPE"):
        page = admin.get(path)
        assert 'id="sending-banner"' in page.text and 'data-reason="unverified"' in page.text, path
        assert "Sending is in sandbox mode" in page.text and lender["admin_email"] in page.text, path
    drain("onboarding-send")
    (first,) = links_to(lender["admin_email"], VERIFY_LINK)

    listing = admin.get("/console/settings")
    assert "Resend verification email" in listing.text
    sent = admin.post("/console/verification", {"next": "/console/settings"}, listing.csrf())
    assert sent.status == 303 and sent.location == "/console/settings?verification=sent", sent.text[:1000]
    assert "We emailed a new confirmation link" in admin.get(sent.location).text
    drain("onboarding-send")
    links = links_to(lender["admin_email"], VERIFY_LINK)
    assert len(links) == 2 and links[0] == first
    # The previous link stops working; the new one confirms the lender and the banner goes.
    assert _confirm(client, first) == 410
    assert _confirm(client, links[1]) == 200
    for path in PAGES:
        assert 'id="sending-banner"' not in admin.get(path).text, path
    # Once confirmed there is nothing to resend.
    again = admin.post("/console/verification", {"next": "/console/settings"}, listing.csrf())
    assert again.status == 409


def test_only_an_admin_resends_the_link_and_an_outside_next_is_ignored(strict: None, client: Any) -> None:
    admin, _ = sign_up(client)
    invite(admin, "theo@acme-lending.example")
    officer = join_as(client, "theo@acme-lending.example")
    page = officer.get("/console/invitations")
    assert "Sending is in sandbox mode" in page.text and "Ask an administrator" in page.text
    assert "Resend verification email" not in page.text
    assert officer.post("/console/verification", {"next": "/console/invitations"}, page.csrf()).status == 403
    outside = admin.post("/console/verification", {"next": "//evil.example/"}, admin.get("/console/invitations").csrf())
    assert outside.status == 303 and outside.location == "/console/invitations?verification=sent"
    # A POST without the session's token changes nothing.
    assert admin.post("/console/verification", {"next": "/console/invitations"}, "f" * 64).status == 403


def test_a_paused_or_suspended_lender_sees_why_and_what_to_do(client: Any) -> None:
    admin, _ = sign_up(client)
    tenant_id = _tenant_id(admin)
    assert 'id="sending-banner"' not in admin.get("/console/invitations").text  # verified (tests' default)

    service = bootstrap.sending()
    state = service.tenants.fresh(tenant_id).sending  # type: ignore[union-attr]
    paused = state.model_copy(update={"paused_at": datetime.now(UTC), "paused_reason": "bounce rate 12.0% over 7 days"})
    service.repo.save_state(tenant_id, paused)
    service.tenants.forget(tenant_id)
    page = admin.get("/console/customers")
    assert 'data-reason="paused"' in page.text and "Sending is paused" in page.text
    assert "bounce rate 12.0% over 7 days" in page.text and 'href="/console/communications"' in page.text

    service.suspend(tenant_id, "reports of phishing")
    for path in PAGES:
        page = admin.get(path)
        assert 'data-reason="suspended"' in page.text and "reports of phishing" in page.text, path
        assert "Sending is suspended by the platform" in page.text, path
    service.resume(tenant_id)
    assert 'id="sending-banner"' not in admin.get("/console/invitations").text


def test_while_sending_is_held_adding_a_customer_does_not_say_the_invitation_is_on_its_way(
    strict: None, client: Any
) -> None:
    """Walk-through: in sandbox mode "Add customer" said "their invitation is on its way" while the page below
    showed it deferred. The notice says it waits, until sending resumes; "on its way" once it is so."""
    from tests.integration.test_console_invitations import add

    admin, lender = sign_up(client)
    held = add(admin, email="jane@smallbiz.example")
    page = admin.get(f"/console/invitations/{held}?notice=created").text
    assert "on its way" not in page
    assert "Their invitation waits until sending resumes" in page
    assert "It waits until sending resumes" in admin.get(f"/console/invitations/{held}?notice=resent").text

    drain("onboarding-send")
    (link,) = links_to(lender["admin_email"], VERIFY_LINK)
    assert _confirm(client, link) == 200
    sent = add(admin, email="sam@smallbiz.example")
    assert "their invitation is on its way" in admin.get(f"/console/invitations/{sent}?notice=created").text
