"""Resending a teammate's invitation from the staff page: a new single-use, expiring link is emailed and
the previous one stops working; only while the teammate has not joined; admins only; own lender only."""

from __future__ import annotations

from typing import Any

from tests.integration.console_helpers import PASSWORD, Browser, sign_up
from tests.integration.helpers import drain
from tests.integration.test_console_settings import ACCEPT, invite, links_to


def _staff_id(page_text: str, email: str) -> str:
    import re

    found = re.search(
        r'action="/console/settings/staff/(stf_[0-9A-Za-z]+)/resend"[^>]*>\s*<input[^>]+>\s*'
        rf'<button[^>]*aria-label="Resend the invitation to {re.escape(email)}"',
        page_text,
    )
    assert found, "no resend button for " + email
    return found.group(1)


def test_a_resent_invitation_replaces_the_link_and_works_once(client: Any) -> None:
    admin, _ = sign_up(client)
    invite(admin, "theo@acme-lending.example")
    drain("onboarding-send")
    (first,) = links_to("theo@acme-lending.example", ACCEPT)
    page = admin.get("/console/settings/staff")
    staff_id = _staff_id(page.text, "theo@acme-lending.example")
    resent = admin.post(f"/console/settings/staff/{staff_id}/resend", {}, page.csrf())
    assert resent.status == 303 and resent.location.endswith("notice=invitation_resent")
    assert "the previous link no longer works" in admin.get(resent.location).text
    drain("onboarding-send")
    links = links_to("theo@acme-lending.example", ACCEPT)
    assert len(links) == 2 and links[0] == first
    newest = links[1].removeprefix("http://testserver")
    assert Browser(client).get(first.removeprefix("http://testserver")).status == 404
    teammate = Browser(client)
    accepted = teammate.submit(newest, None, {"name": "Theo Teammate", "password": PASSWORD})
    assert accepted.status == 303, accepted.text[:2000]
    assert Browser(client).get(newest).status == 404  # single use

    # Joined: nothing to resend (no button, and a 409 when forced).
    after = admin.get("/console/settings/staff")
    assert "Resend the invitation to theo@acme-lending.example" not in after.text
    assert admin.post(f"/console/settings/staff/{staff_id}/resend", {}, after.csrf()).status == 409


def test_only_an_admin_of_the_same_lender_resends(client: Any) -> None:
    admin, _ = sign_up(client)
    invite(admin, "ava@acme-lending.example")
    staff_id = _staff_id(admin.get("/console/settings/staff").text, "ava@acme-lending.example")
    stranger, _ = sign_up(client)
    token = stranger.get("/console/settings/staff").csrf()
    assert stranger.post(f"/console/settings/staff/{staff_id}/resend", {}, token).status == 404
    assert admin.post(f"/console/settings/staff/{staff_id}/resend", {}, "f" * 64).status == 403
    drain("onboarding-send")
    assert len(links_to("ava@acme-lending.example", ACCEPT)) == 1
