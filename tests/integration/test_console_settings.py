"""Console settings, API keys and staff: teammates invited by email through the send worker,
roles, deactivation, forgotten passwords; officers cannot reach admin pages."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.console_helpers import PASSWORD, Browser, csrf_of, sign_up
from tests.integration.helpers import drain, sent_emails

ACCEPT = re.compile(r"http://testserver/console/accept/[A-Za-z0-9_-]{43}")
RESET = re.compile(r"http://testserver/console/reset/[A-Za-z0-9_-]{43}")


def links_to(address: str, pattern: re.Pattern[str]) -> list[str]:
    return list(
        dict.fromkeys(m for e in sent_emails() if address in str(e.destinations) for m in pattern.findall(e.body))
    )


def invite(admin: Browser, email: str, role: str = "officer") -> Any:
    return admin.submit("/console/settings/staff", None, {"email": email, "name": "Theo Teammate", "role": role})


def join_as(client: Any, email: str, password: str = PASSWORD) -> Browser:
    drain("onboarding-send")
    found = links_to(email, ACCEPT)
    assert len(found) == 1, found
    teammate = Browser(client)
    path = found[0].removeprefix("http://testserver")
    accepted = teammate.submit(path, None, {"name": "Theo Teammate", "password": password})
    assert accepted.status == 303, accepted.text[:2000]
    return teammate


def test_settings_are_saved_through_the_same_rules_as_the_api(client: Any) -> None:
    admin, lender = sign_up(client)
    page = admin.get("/console/settings")
    assert page.status == 200 and "Require invitation to join" in page.text
    saved = admin.post(
        "/console/settings",
        {
            "require_invitation": "no",
            "require_email_confirmation": "yes",
            "default_banking_integration": "finicity",
            "invitation_ttl_days": "30",
            "locale": "fr",
            "sender_name": "Acme Loans",
            "reply_to": "loans@acme-lending.example",
            "webhook_url": "",
        },
        page.csrf(),
    )
    assert saved.status == 303
    api = client.http.get("/v1/tenant/settings", headers={"Authorization": f"Bearer {lender['api_key']}"})
    import json

    settings = json.loads(api.body)
    assert settings["require_invitation"] is False and settings["default_banking_integration"] == "finicity"
    assert settings["invitation_ttl_days"] == 30 and settings["sender_name"] == "Acme Loans"

    bad = admin.post(
        "/console/settings",
        {"require_invitation": "yes", "invitation_ttl_days": "500", "reply_to": "not an email"},
        page.csrf(),
    )
    assert bad.status == 400
    assert 'id="invitation_ttl_days-error"' in bad.text and 'id="reply_to-error"' in bad.text


def test_api_keys_are_shown_once_and_can_be_revoked(client: Any) -> None:
    admin, lender = sign_up(client)
    page = admin.get("/console/settings/api-keys")
    assert lender["api_key"][:10] in page.text and lender["api_key"] not in page.text
    created = admin.post("/console/settings/api-keys", {"label": "CRM production"}, page.csrf())
    assert created.status == 201
    key = re.search(r'id="new-api-key">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    assert client.http.get("/v1/tenant", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert key not in admin.get("/console/settings/api-keys").text

    key_id = re.findall(r"/console/settings/api-keys/(key_[0-9A-Z]+)/revoke", created.text)[-1]
    # Revoke asks first (walk-through: one tap on a phone cut the CRM off, with no way back).
    assert f'<a class="button secondary" href="/console/settings/api-keys/{key_id}/revoke"' in created.text
    confirm = admin.get(f"/console/settings/api-keys/{key_id}/revoke")
    assert confirm.status == 200 and "Revoke this API key?" in confirm.text and "CRM production" in confirm.text
    assert "stops working at once" in confirm.text and 'href="/console/settings/api-keys">Keep it<' in confirm.text
    assert client.http.get("/v1/tenant", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    revoked = admin.post(f"/console/settings/api-keys/{key_id}/revoke", {}, confirm.csrf())
    assert revoked.status == 303
    assert client.http.get("/v1/tenant", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    # A revoked key, or one of no one, has nothing to confirm.
    assert admin.get(f"/console/settings/api-keys/{key_id}/revoke").status == 404
    assert admin.get("/console/settings/api-keys/key_NOPE/revoke").status == 404


def test_a_teammate_is_invited_by_email_joins_as_officer_and_cannot_reach_admin_pages(client: Any) -> None:
    admin, lender = sign_up(client)
    shown = invite(admin, "theo@acme-lending.example")
    assert shown.status == 201 and "theo@acme-lending.example</strong> is invited as officer" in shown.text
    assert "/console/accept/" not in shown.text  # the link goes to the teammate only

    officer = join_as(client, "theo@acme-lending.example")
    # Staff emails name the lender "via" the platform, like every other email (sending safety).
    (mail,) = [e for e in sent_emails() if "theo@acme-lending.example" in str(e.destinations)]
    assert " via MyOnboarding" in str(mail.source)
    listing = officer.get("/console/invitations")
    assert listing.status == 200 and "Theo Teammate (officer)" in listing.text
    for path in ("/console/settings/staff", "/console/settings/api-keys"):
        assert officer.get(path).status == 403, path
    assert officer.post("/console/settings", {"require_invitation": "no"}, listing.csrf()).status == 403
    settings = officer.get("/console/settings")
    assert settings.status == 200 and "Only administrators can change settings" in settings.text
    # The teammate is now an owner to choose on the add-customer form.
    assert re.search(
        r'<option value="stf_[0-9A-Za-z]+"[^>]*>Theo Teammate</option>', admin.get("/console/invitations/new").text
    )

    # The link works once.
    again = links_to("theo@acme-lending.example", ACCEPT)[0].removeprefix("http://testserver")
    assert Browser(client).get(again).status == 404
    # The teammate signs in with their password afterwards.
    fresh = Browser(client)
    ok = fresh.submit(
        "/console/login",
        None,
        {"lender": lender["subdomain"], "email": "theo@acme-lending.example", "password": PASSWORD},
    )
    assert ok.status == 303


def test_an_email_already_on_the_team_is_refused_next_to_the_field(client: Any) -> None:
    admin, lender = sign_up(client)
    page = invite(admin, lender["admin_email"])
    assert page.status == 409 and 'id="email-error"' in page.text


def test_roles_change_and_deactivation_ends_the_session_at_once(client: Any) -> None:
    admin, _ = sign_up(client)
    invite(admin, "theo@acme-lending.example")
    officer = join_as(client, "theo@acme-lending.example")
    staff_page = admin.get("/console/settings/staff")
    theo = re.search(r'/console/settings/staff/(stf_[0-9A-Z]+)"', staff_page.text).group(1)  # type: ignore[union-attr]

    promoted = admin.post(f"/console/settings/staff/{theo}", {"action": "role", "role": "admin"}, staff_page.csrf())
    assert promoted.status == 303
    assert officer.get("/console/settings/staff").status == 200

    admin.post(f"/console/settings/staff/{theo}", {"action": "deactivate"}, staff_page.csrf())
    assert officer.get("/console/invitations").status == 303  # signed out: back to the sign-in page
    assert "Deactivated" in admin.get("/console/settings/staff").text


def test_deactivating_a_teammate_asks_first(client: Any) -> None:
    """Walk-through: "Deactivate" sat next to "Change role" and took effect at one tap, with no way back (there is
    no reactivation). It leads to a page naming the teammate; its button deactivates."""
    admin, _ = sign_up(client)
    invite(admin, "theo@acme-lending.example")
    officer = join_as(client, "theo@acme-lending.example")
    staff_page = admin.get("/console/settings/staff")
    theo = re.search(r'/console/settings/staff/(stf_[0-9A-Z]+)"', staff_page.text).group(1)  # type: ignore[union-attr]
    assert f'<a class="button danger" href="/console/settings/staff/{theo}/deactivate"' in staff_page.text
    assert 'value="deactivate"' not in staff_page.text

    confirm = admin.get(f"/console/settings/staff/{theo}/deactivate")
    assert confirm.status == 200 and "Deactivate this teammate?" in confirm.text
    assert "theo@acme-lending.example" in confirm.text and "cannot be undone" in confirm.text
    assert 'href="/console/settings/staff">Keep them<' in confirm.text
    assert officer.get("/console/invitations").status == 200  # asking changed nothing
    done = admin.post(f"/console/settings/staff/{theo}", {"action": "deactivate"}, confirm.csrf())
    assert done.status == 303
    assert officer.get("/console/invitations").status == 303
    # Nothing to confirm for a deactivated teammate, oneself, or no one.
    assert admin.get(f"/console/settings/staff/{theo}/deactivate").status == 404
    me = re.search(r"stf_[0-9A-Z]+", admin.get("/console/invitations/new").text).group(0)  # type: ignore[union-attr]
    assert admin.get(f"/console/settings/staff/{me}/deactivate").status == 404
    assert admin.get("/console/settings/staff/stf_NOPE/deactivate").status == 404


def test_the_last_admin_cannot_be_demoted(client: Any) -> None:
    from chalicelib import bootstrap
    from chalicelib.domain.staff import Role
    from chalicelib.errors import Conflict

    admin, lender = sign_up(client)
    service = bootstrap.staff()
    session = service.sign_in(lender["subdomain"], lender["admin_email"], PASSWORD, "198.51.100.1").session
    import pytest

    with pytest.raises(Conflict):
        service.change(session.staff, session.tenant, session.staff.staff_id, role=Role.OFFICER)


def test_forgot_password_emails_a_single_use_link(client: Any) -> None:
    admin, lender = sign_up(client)
    anonymous = Browser(client)
    asked = anonymous.submit("/console/forgot", None, {"lender": lender["subdomain"], "email": lender["admin_email"]})
    assert asked.status == 200 and "we emailed it a link" in asked.text
    nobody = anonymous.submit("/console/forgot", None, {"lender": lender["subdomain"], "email": "nobody@x.example"})
    assert nobody.status == 200 and "we emailed it a link" in nobody.text  # the same answer: no account discovery
    drain("onboarding-send")
    found = links_to(lender["admin_email"], RESET)
    assert len(found) == 1
    assert not links_to("nobody@x.example", RESET)
    path = found[0].removeprefix("http://testserver")
    short = anonymous.submit(path, None, {"password": "short"})
    assert short.status == 400 and 'id="password-error"' in short.text
    done = anonymous.submit(path, None, {"password": "a brand new passphrase"})
    assert done.status == 303
    assert anonymous.get("/console/invitations").status == 200
    assert Browser(client).get(path).status == 404  # used
    old = Browser(client).submit(
        "/console/login", None, {"lender": lender["subdomain"], "email": lender["admin_email"], "password": PASSWORD}
    )
    assert old.status == 401


def test_a_password_reset_ends_the_members_other_sessions(client: Any) -> None:
    """Whoever signed in with a leaked password (or took a session cookie) is out once the owner sets a new password
    through the emailed link; the browser that set it stays signed in."""
    intruder, lender = sign_up(client)
    assert intruder.get("/console/invitations").status == 200
    owner = Browser(client)
    owner.submit("/console/forgot", None, {"lender": lender["subdomain"], "email": lender["admin_email"]})
    drain("onboarding-send")
    [link] = links_to(lender["admin_email"], RESET)
    done = owner.submit(link.removeprefix("http://testserver"), None, {"password": "a brand new passphrase"})
    assert done.status == 303
    assert owner.get("/console/invitations").status == 200
    assert intruder.get("/console/invitations").status == 303  # to the sign-in page
    forged = intruder.post("/console/settings/api-keys", {"name": "mine"}, "0" * 64)
    assert forged.status == 401


def test_provider_order_and_branding_with_errors_by_field(client: Any) -> None:
    import json

    admin, lender = sign_up(client)
    page = admin.get("/console/settings")
    assert 'id="brand-preview"' in page.text
    base = {"require_invitation": "yes", "require_email_confirmation": "yes", "invitation_ttl_days": "14"}
    saved = admin.post(
        "/console/settings",
        {
            **base,
            "provider_1": "mx",
            "provider_2": "plaid",
            "provider_3": "",
            "branding_display_name": "Maple Loans",
            "branding_colour": "#aa3300",
            "branding_logo_url": "",
        },
        page.csrf(),
    )
    assert saved.status == 303
    settings = json.loads(
        client.http.get("/v1/tenant/settings", headers={"Authorization": f"Bearer {lender['api_key']}"}).body
    )
    assert settings["provider_order"] == ["mx", "plaid"]
    assert settings["branding"] == {"display_name": "Maple Loans", "colour": "#aa3300", "logo_url": None}
    # The console's header takes the brand colour at once.
    assert "--brand: #aa3300" in admin.get("/console/invitations").text

    bad = admin.post(
        "/console/settings",
        {**base, "provider_1": "mx", "provider_2": "mx", "branding_colour": "red"},
        page.csrf(),
    )
    assert bad.status == 400
    assert 'id="provider_order-error"' in bad.text and 'id="branding_colour-error"' in bad.text


def test_an_admin_registers_and_removes_the_sending_domain_in_the_console(client: Any) -> None:
    """Walk-through #17 (and #26): the sending domain has a console form, for administrators, through the same
    service as PUT/DELETE /v1/tenant/sending-domain; officers see the domain but no form and no admin-only links."""
    from devstack.embedded_aws import ses_domains_verify_at_once
    from tests.integration.helpers import call

    ses_domains_verify_at_once()
    admin, lender = sign_up(client)
    page = admin.get("/console/settings")
    assert 'action="/console/settings/sending-domain"' in page.text and "PUT /v1/tenant/sending-domain" not in page.text

    bad = admin.post("/console/settings/sending-domain", {"domain": "not a domain"}, page.csrf())
    assert bad.status == 400 and 'id="domain-error"' in bad.text and 'value="not a domain"' in bad.text
    done = admin.post("/console/settings/sending-domain", {"domain": "Mail.Acme-Lending.com"}, page.csrf())
    assert done.status == 303 and done.location == "/console/settings?notice=domain_registered#sending-domain"
    shown = admin.get("/console/settings")
    assert "mail.acme-lending.com" in shown.text and 'id="dkim-records"' in shown.text
    status, api = call(client, "GET", "/v1/tenant/sending-domain", lender["api_key"])
    assert status == 200 and api["domain"] == "mail.acme-lending.com"

    invite(admin, "theo@acme-lending.example")
    officer = join_as(client, "theo@acme-lending.example")
    seen = officer.get("/console/settings").text
    assert "mail.acme-lending.com" in seen and 'action="/console/settings/sending-domain' not in seen
    assert 'href="/console/settings/webhooks"' not in seen and 'href="/console/settings/staff"' not in seen
    assert "Save settings" not in seen  # no disabled button on a form they cannot change
    refused = officer.post("/console/settings/sending-domain", {"domain": "x.example.org"}, csrf_of(officer))
    assert refused.status == 403

    removed = admin.post("/console/settings/sending-domain/remove", {}, shown.csrf())
    assert removed.status == 303
    assert call(client, "GET", "/v1/tenant/sending-domain", lender["api_key"])[0] == 404
    assert "mail.acme-lending.com" not in admin.get("/console/settings").text


def test_form_errors_are_human_and_name_the_field_not_the_library(client: Any) -> None:
    """Walk-through #15 (console part): no "String should have ...", "Input should be ..." or "relative URL
    without a base"; each error says what to enter, next to the field it names."""
    blank = Browser(client)
    signup = blank.submit("/signup", None, {"name": "", "subdomain": "", "admin_email": "x", "password": ""})
    assert signup.status == 400
    assert "String should" not in signup.text and "Input should" not in signup.text, signup.text[-3000:]
    assert "value is not a valid email address" not in signup.text
    assert "Subdomain: this field is required" in signup.text
    assert "enter a valid email address, like name@example.com" in signup.text
    # A name with markup is not "an email address": the message says what is wrong with it.
    tagged = blank.submit("/signup", None, {"name": "<b>Acme</b>", "subdomain": "acme-tagged"})
    assert "not an email address" not in tagged.text
    assert "Institution name: use a plain name, without @, &lt; or &gt;" in tagged.text

    admin, _ = sign_up(client)
    page = admin.get("/console/settings")
    form = {
        "require_invitation": "yes",
        "require_email_confirmation": "yes",
        "invitation_ttl_days": "0",
        "locale": "en",
        "provider_1": "plaid",
        "branding_colour": "#1f4e79",
        "sender_name": "x" * 200,
    }
    saved = admin.post("/console/settings", form, page.csrf())
    assert saved.status == 400 and "Input should" not in saved.text and "String should" not in saved.text
    assert "enter 1 or more" in saved.text and "use at most" in saved.text

    hooks = admin.get("/console/settings/webhooks")
    bad = admin.post("/console/settings/webhooks", {"webhook_url": "not a url"}, hooks.csrf())
    assert bad.status == 400 and "relative URL" not in bad.text and "Input should" not in bad.text
    assert "enter a full address that starts with https://" in bad.text


def test_a_lender_created_through_the_api_sets_its_console_password_through_forgot_password(client: Any) -> None:
    """Walk-through #14: POST /v1/tenants (the README's curl) makes its admin a console user without a password;
    "Forgot your password?" emails them a link to choose one, and then they sign in."""
    import json

    from tests.integration.helpers import call

    status, created = call(
        client,
        "POST",
        "/v1/tenants",
        body={"name": "Curl Lending", "subdomain": "curl-lending", "admin_email": "ops@curl-lending.example"},
    )
    assert status == 201, created
    anonymous = Browser(client)
    refused = anonymous.submit(
        "/console/login", None, {"lender": "curl-lending", "email": "ops@curl-lending.example", "password": PASSWORD}
    )
    assert refused.status == 401  # no password yet: nobody signs in before choosing one
    anonymous.submit("/console/forgot", None, {"lender": "curl-lending", "email": "ops@curl-lending.example"})
    drain("onboarding-send")
    (link,) = links_to("ops@curl-lending.example", RESET)
    done = anonymous.submit(link.removeprefix("http://testserver"), None, {"password": "a brand new passphrase"})
    assert done.status == 303
    staff_page = anonymous.get("/console/settings/staff")
    assert staff_page.status == 200 and "ops@curl-lending.example" in staff_page.text  # an administrator
    assert json.dumps(created["tenant"]["admin_email"]) == '"ops@curl-lending.example"'
