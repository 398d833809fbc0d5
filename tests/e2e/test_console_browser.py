"""The loan officer's journey through the lender console in a real browser (Debian's Chromium driven
by Playwright) on the local stack: sign up, add a customer (errors first), see it PENDING, edit it,
copy its portal link, bulk resend two (one refused with its reason), upload a 20-row account list
with 2 bad rows and see them named, the customer completes the portal (in a second browser
context), the bell shows 1 unread, the customer appears under Customers and is disconnected, then
a teammate invited by email joins as an officer and cannot open the staff page.

Screenshots of every page at 390 px and 1280 px go to ``test-output/`` for a human to look at; at
390 px no page may scroll sideways. Chromium is found on PATH (tests/browser.py): without it the test skips on a
developer machine and fails under CI (REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.browser import chromium_executable
from tests.e2e.conftest import RunningStack
from tests.e2e.test_join_browser import CHROMIUM_ARGS, OUTPUT
from tests.e2e.test_portal_flow import complete, provider_link, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "blue tractor river lamp"
OUTBOX_WAIT_S = 30
WIDTHS = (390, 1280)
# Every select's chosen option, wider than the text area of its box (a select never wraps: the end is cut off).
# The arrow of Chromium's native select takes about 20 px inside the padding.
CUT_OFF_SELECTS = """() => {
  const ctx = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("select")].filter(s => s.offsetParent !== null).flatMap(s => {
    const css = getComputedStyle(s);
    ctx.font = css.font;
    const room = s.clientWidth - parseFloat(css.paddingLeft) - parseFloat(css.paddingRight) - 20;
    const text = s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : "";
    return ctx.measureText(text).width > room ? [s.id + ": " + text] : [];
  });
}"""


def shoot(page: Any, name: str) -> None:
    """Screenshots at both widths; at phone width nothing may be wider than the screen."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(OUTPUT / f"console-{name}-{width}.png"), full_page=True)
        if width == 390:
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, f"{name} scrolls sideways at 390 px ({wide} px wide)"
            cut = page.evaluate(CUT_OFF_SELECTS)
            assert not cut, f"{name}: at 390 px these selects cut off their chosen option: {cut}"
    page.set_viewport_size({"width": 1280, "height": 900})


def menu_fits_a_phone(page: Any, summary_label: str) -> None:
    """At 390 px a row's "…" menu opens with every item on the screen (it opened off the left edge where the "…"
    is the row's first button: a customer could not be deleted on a phone)."""
    page.set_viewport_size({"width": 390, "height": 900})
    summary = page.get_by_label(summary_label)
    summary.click()
    items = summary.locator("xpath=..").locator("li a, li button")
    assert items.count() > 0
    for i in range(items.count()):
        box = items.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (summary_label, i, box)
    summary.click()  # closed again
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

    executable = chromium_executable()  # skips on a developer machine without it, fails under CI (REQUIRE_BROWSER=1)
    with chromium() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
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
            # A new lender sends in sandbox mode until its admin email is confirmed: every page says so.
            expect(page.locator("#sending-banner")).to_contain_text("Sending is in sandbox mode")
            expect(page.get_by_role("button", name="Resend verification email")).to_be_visible()
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
            # Sandbox mode: the invitation is kept, and the notice says so (not "on its way").
            expect(page.locator(".notice")).to_contain_text("Their invitation waits until sending resumes")
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
            portal_url = shown.inner_text()
            assert page.evaluate("navigator.clipboard.readText()") == portal_url
            shoot(page, "portal-link-copied")

            # Bulk resend: Janet was just sent (refused, with why), Sam never was (sent).
            page.get_by_label("Select Janet Baker").check()
            page.get_by_label(f"Select {sam}").check()
            page.get_by_role("button", name="Resend", exact=True).click()  # not "Resend verification email"
            expect(page.get_by_role("heading", name="Resend: 1 of 2 sent again")).to_be_visible()
            expect(page.locator('tr[data-outcome="rate_limited"]')).to_contain_text("this invitation was just sent")
            expect(page.locator('tr[data-outcome="queued"]')).to_contain_text(sam)
            shoot(page, "resend-results")

            # Upload an account list: 20 rows, 2 of them bad, named with their field.
            csv_path = OUTPUT / "console-upload.csv"
            lines = ["email,owner,first_name"] + [
                f"{'not-an-email' if i in (5, 12) else f'up{i}.{subdomain}@smallbiz.example'},Olivia Officer,Up{i}"
                for i in range(1, 21)
            ]
            csv_path.write_text("\n".join(lines) + "\n")
            page.get_by_role("link", name="Upload account list").first.click()
            shoot(page, "upload")
            with page.expect_download() as download:
                page.get_by_role("link", name="Download the import template").click()
            assert download.value.suggested_filename == "invitations-template.csv"
            page.get_by_label("Account list (CSV)").set_input_files(str(csv_path))
            page.get_by_label("Add the customers without sending invitations now").check()
            page.get_by_role("button", name="Import").click()
            expect(page.get_by_role("heading", name="Import: completed")).to_be_visible(timeout=30_000)
            expect(page.locator("#count-created")).to_have_text("18")
            expect(page.locator("#rejected tbody tr")).to_have_count(2)
            # Row numbers are the file's line numbers (the header is line 1).
            expect(page.locator('#rejected td[data-label="Row"]')).to_have_text(["6", "13"])
            expect(page.locator('#rejected td[data-label="Field"]')).to_have_text(["email", "email"])
            shoot(page, "upload-results")

            # The customer completes the portal in a browser of their own.
            customer: Any = browser.new_context(viewport={"width": 390, "height": 800}).new_page()
            customer.goto(portal_url)
            customer.get_by_role("button", name="Link my bank account").click()
            token = portal_url.rsplit("/", 1)[-1]
            complete(stack, provider_link(stack, token, "plaid"), "success")
            wait_for(
                lambda: requests.get(f"{stack.api}/portal/{token}/status", timeout=10).json()["can_submit"],
                "the bank link",
            )
            customer.reload()
            customer.locator("#submit button[type=submit]").click()
            expect(customer.locator("[data-submitted=true]")).to_be_visible()

            # The bell shows it (with the bank data's own notification), and the list says what happened.
            seen: list[str] = []

            def bell() -> bool:
                page.reload()
                seen.append(page.locator(".bell").get_attribute("aria-label") or "")
                return seen[-1] == "Notifications: 2 unread"

            try:
                wait_for(bell, "the completion and bank-data notifications")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the bell said {seen[-3:]}") from None
            expect(page.locator(".bell .count")).to_have_text("2")
            shoot(page, "bell-unread")
            page.locator(".bell").click()
            completion = page.locator('[data-notification="completion"]')
            expect(completion).to_contain_text("Customer completed the portal")
            expect(page.locator('[data-notification="financial_data_ready"]')).to_contain_text("Bank data ready")
            shoot(page, "notifications")
            completion.get_by_role("button", name="Mark read").click()
            expect(page.locator('.bell[aria-label="Notifications: 1 unread"]')).to_be_visible()

            # The communication log has every message, filterable.
            page.get_by_role("link", name="Communication log").click()
            expect(page.locator("tr[data-outcome]").first).to_be_visible()
            shoot(page, "communications")

            # A joined row of the list has no Edit or Remove: its menu comes first in the row, and still fits.
            page.goto(f"{stack.api}/console/invitations")
            menu_fits_a_phone(page, "More actions for Janet Baker")
            # Customers: the customer who completed the portal, with their financial data; disconnect after confirming.
            page.get_by_role("link", name="Customers").click()
            expect(page.get_by_role("link", name="Janet Baker", exact=True)).to_be_visible()
            shoot(page, "customers")
            page.get_by_role("link", name="Janet Baker", exact=True).click()
            expect(page.locator("#financial-data")).to_have_attribute("data-status", "ready")
            janet_url = page.url
            with page.expect_download() as transactions:
                page.get_by_role("link", name="Download transactions (CSV)").click()
            assert transactions.value.suggested_filename.endswith("-transactions.csv")
            shoot(page, "customer-financial")
            page.get_by_role("link", name="Customers").click()
            menu_fits_a_phone(page, "Actions for Janet Baker")
            page.get_by_label("Actions for Janet Baker").click()
            page.get_by_role("link", name="Disconnect financial data").click()
            shoot(page, "disconnect-confirm")
            page.get_by_role("button", name="Disconnect").click()
            expect(page.locator(".notice")).to_contain_text("financial data")
            # The customer page says what happened (walk-through #12), and a JOINED customer is deleted under
            # Customers: the invitation's remove page says so, with the link, and fits a phone (#8).
            page.goto(janet_url)
            expect(page.locator("#financial-data")).to_have_attribute("data-status", "disconnected")
            expect(page.locator("#financial-data")).to_contain_text("Financial data disconnected on")
            shoot(page, "customer-disconnected")
            page.goto(f"{janet_url}/remove")
            expect(page.get_by_role("alert")).to_contain_text("This customer has joined")
            expect(page.get_by_role("link", name="Delete customer")).to_be_visible()
            shoot(page, "remove-joined")

            # A reversed date range in the communication log: the log again, the error next to To (#2).
            page.goto(f"{stack.api}/console/communications?since=2026-12-05&until=2026-12-01")
            expect(page.locator("#until-error")).to_contain_text("To must be on or after From")
            expect(page.locator("#since")).to_have_value("2026-12-05")
            shoot(page, "communications-bad-range")

            # Settings, then invite a teammate.
            page.get_by_role("link", name="Settings").click()
            expect(page.get_by_label("Sender name")).to_be_visible()
            shoot(page, "settings")
            # The sending domain from the console (#17): its long DKIM records stay inside a phone's width (#9).
            page.get_by_label("Your sending domain").fill(f"mail.{subdomain}.example")
            page.get_by_role("button", name="Register the domain").click()
            expect(page.locator(".notice")).to_contain_text("Sending domain registered")
            expect(page.locator("#dkim-records tr")).to_have_count(4)
            shoot(page, "settings-sending-domain")
            page.get_by_role("navigation", name="Settings").get_by_role("link", name="Webhooks").click()
            page.get_by_role("button", name="Create a secret").click()
            expect(page.locator("#new-webhook-secret")).to_contain_text("whsec_")
            shoot(page, "webhooks")
            page.get_by_role("link", name="API keys").click()
            shoot(page, "api-keys")
            page.get_by_role("link", name="Staff").click()
            page.get_by_label("Email (required)").fill(teammate)
            page.get_by_label("Name").fill("Theo Teammate")
            page.get_by_role("button", name="Send invitation").click()
            expect(page.locator(".notice")).to_contain_text(f"{teammate} is invited as officer")
            expect(page.get_by_role("button", name=f"Resend the invitation to {teammate}")).to_be_visible()
            shoot(page, "staff")

            # The teammate joins from the email, in a browser of their own, and is an officer.
            officer_context = browser.new_context(viewport={"width": 1280, "height": 900})
            officer: Any = officer_context.new_page()
            officer.goto(emailed_link(stack, teammate, "/console/accept/"))
            officer.get_by_label("Password").fill("green kettle morning bus")
            officer.get_by_role("button", name="Join the console").click()
            expect(officer.get_by_role("heading", name="Invitations")).to_be_visible()
            expect(officer.get_by_text("Theo Teammate (officer)")).to_be_visible()
            officer.goto(f"{stack.api}/console/settings")
            expect(officer.get_by_text("Only administrators can change settings")).to_be_visible()
            expect(officer.get_by_role("link", name="Webhooks")).to_have_count(0)  # admin-only (#26)
            expect(officer.get_by_role("button", name="Save settings")).to_have_count(0)
            shoot(officer, "officer-settings")
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
