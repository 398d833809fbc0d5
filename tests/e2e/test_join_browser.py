"""A customer joins on the lender's page in a real browser (Debian's Chromium driven by Playwright),
follows the confirmation link from the dev outbox, confirms with the password chosen at sign-up, signs
in as ``admin``, lands on the portal, uses it by session and signs out.

Screenshots of the join page at 360 px and 1280 px go to ``test-output/`` for a human to look at.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.browser import chromium_executable
from tests.e2e.conftest import ROOT, RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "blue tractor river lamp"
OUTBOX_WAIT_S = 30


def confirmation_link(stack: RunningStack, email: str) -> str:
    """The confirmation link of the email the send worker delivered to ``email`` (it runs in the background)."""
    deadline = time.monotonic() + OUTBOX_WAIT_S
    while time.monotonic() < deadline:
        emails = requests.get(f"{stack.api}/dev/outbox.json", timeout=10).json()["emails"]
        for mail in emails:
            if email in mail["destinations"]:
                links = [link for link in mail["links"] if "/join/confirm/" in link]
                if links:
                    return str(links[0])
        time.sleep(0.3)
    raise AssertionError(f"no confirmation email reached the outbox within {OUTBOX_WAIT_S} s")


def lender_with_invitation(stack: RunningStack) -> tuple[str, str]:
    subdomain = f"brw-{uuid.uuid4().hex[:8]}"
    key = stack.sign_up("Maple Credit Union", subdomain=subdomain)
    email = f"owner.{uuid.uuid4().hex[:8]}@smallbiz.example"
    invited = requests.post(
        f"{stack.api}/v1/invitations",
        json={"email": email, "owner": "Olivia Officer", "business_legal_name": "Jane's Bakery Inc.", "send": False},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert invited.status_code == 201, invited.text
    return subdomain, email


def test_a_customer_joins_confirms_signs_in_and_sees_the_portal(stack: RunningStack) -> None:
    chromium = chromium_executable()  # skips on a developer machine without it, fails under CI (REQUIRE_BROWSER=1)
    from playwright.sync_api import expect, sync_playwright

    subdomain, email = lender_with_invitation(stack)
    account = f"bakery-{uuid.uuid4().hex[:6]}"
    OUTPUT.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page: Any = browser.new_page(viewport={"width": 360, "height": 800})
            page.goto(f"{stack.api}/t/{subdomain}/join")
            expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
            # Nothing wider than the phone's screen: no sideways scrolling at 360 px.
            assert page.evaluate("document.documentElement.scrollWidth") <= 360
            page.screenshot(path=str(OUTPUT / "join-360.png"), full_page=True)

            # Errors are announced and each field says what is wrong.
            page.get_by_label("Password", exact=True).fill("short")
            page.get_by_role("button", name="Create Account").click()
            expect(page.get_by_role("alert")).to_contain_text("Please correct the following")
            expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
            page.screenshot(path=str(OUTPUT / "join-errors-360.png"), full_page=True)

            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{stack.api}/t/{subdomain}/join")
            page.screenshot(path=str(OUTPUT / "join-1280.png"), full_page=True)

            page.get_by_label("Email").fill(email)
            page.get_by_label("Business name").fill("Jane's Bakery Inc.")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_label("Account subdomain").fill(account)
            page.get_by_role("button", name="Create Account").click()
            expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

            page.goto(confirmation_link(stack, email))
            # Confirming asks for the password chosen at sign-up (a planted sign-up cannot be confirmed).
            page.get_by_label("Password", exact=True).fill("not the password at all")
            page.get_by_role("button", name="Confirm my email").click()
            expect(page.get_by_role("alert")).to_contain_text("The password is incorrect.")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Confirm my email").click()
            expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
            expect(page.locator("#account-url")).to_have_text(f"{stack.api}/a/{account}/login")

            page.get_by_role("link", name="Sign in now").click()
            page.get_by_label("Username or email").fill("admin")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{stack.api}/portal")
            expect(page.get_by_text(email).first).to_be_visible()
            assert "token" not in page.url
            page.screenshot(path=str(OUTPUT / "portal-signed-in-1280.png"), full_page=True)

            # The signed-in portal is usable: its forms post to /portal/<action> with the session.
            page.get_by_label("Mobile phone").fill("514 555 0199")
            page.get_by_role("button", name="Confirm my details").click()
            page.wait_for_url(f"{stack.api}/portal?confirmed=1#contact")
            expect(page.get_by_label("Mobile phone")).to_have_value("+15145550199")

            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{stack.api}/a/{account}/login")
            page.goto(f"{stack.api}/portal")
            expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
        finally:
            browser.close()


def boxes(page: Any, selector: str) -> list[dict[str, float]]:
    return [page.locator(selector).nth(i).bounding_box() for i in range(page.locator(selector).count())]


def test_each_business_radio_sits_left_of_its_own_name(stack: RunningStack) -> None:
    """Two invitations for one email: the chooser's radios sit inline, left of their own business name and
    on its line, never centred above it (where the second radio was nearer the first name than its own)."""
    chromium = chromium_executable()
    from playwright.sync_api import expect, sync_playwright

    subdomain = f"brw-{uuid.uuid4().hex[:8]}"
    key = stack.sign_up("Maple Credit Union", subdomain=subdomain)
    email = f"jane.{uuid.uuid4().hex[:8]}@smallbiz.example"
    for business in ("Jane's Bakery LLC", "Jane's Catering Inc"):
        invited = requests.post(
            f"{stack.api}/v1/invitations",
            json={"email": email, "owner": "Olivia Officer", "business_legal_name": business, "send": False},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert invited.status_code == 201, invited.text
    OUTPUT.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for width in (390, 1280):
                page: Any = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(f"{stack.api}/t/{subdomain}/join")
                page.get_by_label("Email").fill(email)
                page.get_by_label("Business name").fill("Jane's")
                page.get_by_label("Password", exact=True).fill(PASSWORD)
                page.get_by_label("Account subdomain").fill(f"jane-{uuid.uuid4().hex[:6]}")
                page.get_by_role("button", name="Create Account").click()
                expect(page.get_by_role("heading", name="Select your Business Legal Name")).to_be_visible()
                page.screenshot(path=str(OUTPUT / f"join-choose-{width}.png"), full_page=True)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                radios = boxes(page, "input[type=radio]")
                labels = boxes(page, ".choice label")
                assert len(radios) == len(labels) == 2
                for radio, label in zip(radios, labels, strict=True):
                    assert radio["width"] < 40, radio  # a radio, not a full-width block
                    assert radio["x"] + radio["width"] <= label["x"], (radio, label)  # left of its name
                    radio_mid = radio["y"] + radio["height"] / 2
                    assert label["y"] <= radio_mid <= label["y"] + label["height"], (radio, label)  # on its line
                # Clicking a name selects its own radio.
                page.get_by_label("Jane's Catering Inc").check()
                expect(page.locator("input[type=radio]").nth(1)).to_be_checked()
                if width == 1280:
                    # Choosing goes on to "Check your email"; Back to the chooser says the sign-up went through
                    # (it said "This sign-up expired. Please start again.").
                    page.get_by_role("button", name="Continue").click()
                    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
                    page.go_back()
                    expect(page.get_by_role("heading", name="You already chose your business")).to_be_visible()
                    page.screenshot(path=str(OUTPUT / f"join-chosen-{width}.png"), full_page=True)
                    page.get_by_role("link", name="Continue").click()
                    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
                page.close()
        finally:
            browser.close()
