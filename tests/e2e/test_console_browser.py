"""The loan officer's journey through the lender console in a real browser (Debian's Chromium driven
by Playwright) on the local stack: sign up, add a customer (errors first), see it PENDING, edit it,
copy its portal link, bulk resend two (one refused with its reason), invite a teammate who joins
from the emailed link as an officer and cannot open the staff page.

Screenshots of every page at 390 px and 1280 px go to ``test-output/`` for a human to look at; at
390 px no page may scroll sideways. Without /usr/bin/chromium the test FAILS rather than skips.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import RunningStack
from tests.e2e.test_join_browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "blue tractor river lamp"
OUTBOX_WAIT_S = 30
WIDTHS = (390, 1280)


def shoot(page: Any, name: str) -> None:
    """Screenshots at both widths; at phone width nothing may be wider than the screen."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(OUTPUT / f"console-{name}-{width}.png"), full_page=True)
        if width == 390:
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, f"{name} scrolls sideways at 390 px ({wide} px wide)"
    page.set_viewport_size({"width": 1280, "height": 900})


def emailed_link(stack: RunningStack, email: str, fragment: str) -> str:
    deadline = time.monotonic() + OUTBOX_WAIT_S
    while time.monotonic() < deadline:
        for mail in requests.get(f"{stack.api}/dev/outbox.json", timeout=10).json()["emails"]:
            if email in mail["destinations"]:
                found = [link for link in mail["links"] if fragment in link]
                if found:
                    return str(found[0])
        time.sleep(0.3)
    raise AssertionError(f"no email with a {fragment} link reached {email} within {OUTBOX_WAIT_S} s")


def chromium() -> Any:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the console's browser test needs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def test_an_officer_runs_the_console(stack: RunningStack) -> None:
    from playwright.sync_api import expect

    subdomain = f"con-{uuid.uuid4().hex[:8]}"
    admin_email = f"olivia.{uuid.uuid4().hex[:6]}@maple-credit.example"
    teammate = f"theo.{uuid.uuid4().hex[:6]}@maple-credit.example"
    jane = f"jane.{uuid.uuid4().hex[:6]}@smallbiz.example"
    sam = f"sam.{uuid.uuid4().hex[:6]}@smallbiz.example"
    OUTPUT.mkdir(exist_ok=True)

    with chromium() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
            )
            page: Any = context.new_page()

            # Sign up: the lender and its first admin, signed in; the API key shown once.
            page.goto(f"{stack.api}/signup")
            page.get_by_label("Institution name").fill("Maple Credit Union")
            page.get_by_label("Subdomain").fill(subdomain)
            page.get_by_label("Administrator email").fill(admin_email)
            page.get_by_label("Your name").fill("Olivia Officer")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Create account").click()
            expect(page.locator("#api-key")).to_contain_text("lok_")
            shoot(page, "signup-done")
            page.get_by_role("link", name="Open the console").click()
            expect(page.get_by_role("heading", name="Invitations")).to_be_visible()
            expect(page.get_by_role("link", name="Notifications: 0 unread")).to_be_visible()
            shoot(page, "invitations-empty")

            # Add a customer: errors first, summarised and next to the field.
            page.get_by_role("link", name="Add customer").click()
            expect(page.get_by_label("Banking integration")).to_have_value("waterfall")
            page.get_by_label("Email (required)").fill("not an email")
            page.get_by_role("button", name="Add customer").click()
            expect(page.get_by_role("alert")).to_contain_text("There is a problem")
            expect(page.get_by_label("Email (required)")).to_have_attribute("aria-invalid", "true")
            shoot(page, "add-customer-errors")
            page.get_by_label("First name").fill("Jane")
            page.get_by_label("Last name").fill("Baker")
            page.get_by_label("Email (required)").fill(jane)
            page.get_by_label("Phone number").fill("514 555 0123")
            page.get_by_label("Business legal name").fill("Jane's Bakery Inc.")
            page.get_by_label("Email and SMS").check()
            page.get_by_role("button", name="Add customer").click()
            expect(page.locator(".notice")).to_contain_text("invitation is on its way")
            expect(page.get_by_role("heading", name="Jane Baker")).to_contain_text("PENDING")
            shoot(page, "invitation-detail")

            # A second customer, added without sending.
            page.goto(f"{stack.api}/console/invitations/new")
            page.get_by_label("Email (required)").fill(sam)
            page.get_by_label("Add without sending an invitation now").check()
            page.get_by_role("button", name="Add customer").click()
            expect(page.locator(".notice")).to_contain_text("no invitation sent")

            # The list: PENDING tab, both customers.
            page.goto(f"{stack.api}/console/invitations")
            page.get_by_role("link", name="Pending").click()
            expect(page.get_by_role("link", name="Jane Baker", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name=sam, exact=True)).to_be_visible()
            shoot(page, "invitations")

            # Edit (pencil), only while PENDING.
            page.get_by_role("link", name="Edit Jane Baker").click()
            page.get_by_label("First name").fill("Janet")
            page.get_by_role("button", name="Save").click()
            expect(page.locator(".notice")).to_contain_text("The invitation was saved")
            expect(page.get_by_role("heading", name="Janet Baker")).to_be_visible()
            expect(page.get_by_text("edited").first).to_be_visible()

            # Copy the customer portal link from the row menu: clipboard and shown.
            page.goto(f"{stack.api}/console/invitations")
            page.get_by_label("More actions for Janet Baker").click()
            page.get_by_role("link", name="Copy customer portal link").click()
            shown = page.locator(".portal-url").first
            expect(shown).to_contain_text(f"{stack.api}/portal/")
            assert page.evaluate("navigator.clipboard.readText()") == shown.inner_text()
            shoot(page, "portal-link-copied")

            # Bulk resend: Janet was just sent (refused, with why), Sam never was (sent).
            page.get_by_label("Select Janet Baker").check()
            page.get_by_label(f"Select {sam}").check()
            page.get_by_role("button", name="Resend").click()
            expect(page.get_by_role("heading", name="Resend: 1 of 2 sent again")).to_be_visible()
            expect(page.locator('tr[data-outcome="rate_limited"]')).to_contain_text("this invitation was just sent")
            expect(page.locator('tr[data-outcome="queued"]')).to_contain_text(sam)
            shoot(page, "resend-results")

            # Settings, then invite a teammate.
            page.get_by_role("link", name="Settings").click()
            expect(page.get_by_label("Sender name")).to_be_visible()
            shoot(page, "settings")
            page.get_by_role("link", name="API keys").click()
            shoot(page, "api-keys")
            page.get_by_role("link", name="Staff").click()
            page.get_by_label("Email (required)").fill(teammate)
            page.get_by_label("Name").fill("Theo Teammate")
            page.get_by_role("button", name="Send invitation").click()
            expect(page.locator(".notice")).to_contain_text(f"{teammate} is invited as officer")
            shoot(page, "staff")

            # The teammate joins from the email, in a browser of their own, and is an officer.
            officer_context = browser.new_context(viewport={"width": 1280, "height": 900})
            officer: Any = officer_context.new_page()
            officer.goto(emailed_link(stack, teammate, "/console/accept/"))
            officer.get_by_label("Password").fill("green kettle morning bus")
            officer.get_by_role("button", name="Join the console").click()
            expect(officer.get_by_role("heading", name="Invitations")).to_be_visible()
            expect(officer.get_by_text("Theo Teammate (officer)")).to_be_visible()
            officer.goto(f"{stack.api}/console/settings/staff")
            expect(officer.get_by_role("heading", name="Not allowed")).to_be_visible()
            shoot(officer, "officer-refused")

            # Signing out ends the session.
            page.get_by_role("button", name="Sign out").click()
            expect(page.locator(".notice")).to_contain_text("You are signed out")
            shoot(page, "login")
            page.goto(f"{stack.api}/console/invitations")
            expect(page.get_by_role("heading", name="Sign in to the lender console")).to_be_visible()
        finally:
            browser.close()
