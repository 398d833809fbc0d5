"""Settings, Webhooks: the webhook URL and its signing secrets (a new secret shown once, the list with
created dates, rotation with an overlap, revoke), through the same services as the API. Admins only;
another lender's secret is not found."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.console_helpers import sign_up
from tests.integration.helpers import call
from tests.integration.test_console_settings import invite, join_as

SECRET = re.compile(r'id="new-webhook-secret">(whsec_[^<]+)<')


def test_the_webhook_url_is_saved_and_kept_by_the_general_settings_form(client: Any) -> None:
    admin, lender = sign_up(client)
    page = admin.get("/console/settings/webhooks")
    assert page.status == 200 and "No secret yet" in page.text
    bad = admin.post("/console/settings/webhooks", {"webhook_url": "not a url"}, page.csrf())
    assert bad.status == 400 and 'id="webhook_url-error"' in bad.text and 'href="#webhook_url"' in bad.text
    saved = admin.post("/console/settings/webhooks", {"webhook_url": "https://crm.example/hooks"}, page.csrf())
    assert saved.status == 303 and "notice=webhook_saved" in saved.location
    assert 'value="https://crm.example/hooks"' in admin.get("/console/settings/webhooks").text
    # The general form no longer carries the URL, and saving it leaves the URL alone.
    general = admin.get("/console/settings")
    assert 'name="webhook_url"' not in general.text and 'href="/console/settings/webhooks"' in general.text
    assert admin.post("/console/settings", {"require_invitation": "yes"}, general.csrf()).status == 303
    _, settings = call(client, "GET", "/v1/tenant/settings", lender["api_key"])
    assert settings["webhook_url"] == "https://crm.example/hooks"


def test_secrets_are_shown_once_listed_rotated_and_revoked_like_the_api(client: Any) -> None:
    admin, lender = sign_up(client)
    page = admin.get("/console/settings/webhooks")
    created = admin.post("/console/settings/webhooks/secrets", {"previous_valid_for_seconds": "0"}, page.csrf())
    assert created.status == 201, created.text[:2000]
    found = SECRET.search(created.text)
    assert found
    secret = found.group(1)
    listing = admin.get("/console/settings/webhooks")
    assert secret not in listing.text and secret[:10] in listing.text  # shown once, then its prefix only
    assert re.search(r'data-label="Created">\d{4}-\d\d-\d\d \d\d:\d\d<', listing.text)
    _, api = call(client, "GET", "/v1/tenant/webhook-secrets", lender["api_key"])
    (first,) = api["items"]
    # The only secret cannot be revoked (events are always signed): no button, and a 409 when forced.
    assert "The only secret" in listing.text
    assert admin.post(f"/console/settings/webhooks/secrets/{first['secret_id']}/revoke", {}, page.csrf()).status == 409

    rotated = admin.post("/console/settings/webhooks/secrets", {"previous_valid_for_seconds": "86400"}, page.csrf())
    assert rotated.status == 201 and "The previous secret also signs events until" in rotated.text
    _, api = call(client, "GET", "/v1/tenant/webhook-secrets", lender["api_key"])
    assert len(api["items"]) == 2
    revoked = admin.post(f"/console/settings/webhooks/secrets/{first['secret_id']}/revoke", {}, page.csrf())
    assert revoked.status == 303 and "notice=secret_revoked" in revoked.location
    _, api = call(client, "GET", "/v1/tenant/webhook-secrets", lender["api_key"])
    assert [s["secret_id"] for s in api["items"]] != [first["secret_id"]] and len(api["items"]) == 1
    bad = admin.post("/console/settings/webhooks/secrets", {"previous_valid_for_seconds": "-5"}, page.csrf())
    assert bad.status == 400 and 'id="previous_valid_for_seconds-error"' in bad.text

    # The API revokes through the same rule.
    (last,) = api["items"]
    status, answer = call(client, "DELETE", f"/v1/tenant/webhook-secrets/{last['secret_id']}", lender["api_key"])
    assert status == 409, answer


def test_only_admins_and_only_their_own_lenders_secrets(client: Any) -> None:
    admin, lender = sign_up(client)
    page = admin.get("/console/settings/webhooks")
    admin.post("/console/settings/webhooks/secrets", {"previous_valid_for_seconds": "0"}, page.csrf())
    admin.post("/console/settings/webhooks/secrets", {"previous_valid_for_seconds": "3600"}, page.csrf())
    _, api = call(client, "GET", "/v1/tenant/webhook-secrets", lender["api_key"])
    target = api["items"][-1]["secret_id"]

    stranger, other = sign_up(client)
    forced = stranger.post(
        f"/console/settings/webhooks/secrets/{target}/revoke", {}, stranger.get("/console/settings/webhooks").csrf()
    )
    assert forced.status == 404
    status, _ = call(client, "DELETE", f"/v1/tenant/webhook-secrets/{target}", other["api_key"])
    assert status == 404
    _, api = call(client, "GET", "/v1/tenant/webhook-secrets", lender["api_key"])
    assert len(api["items"]) == 2

    invite(admin, "theo@acme-lending.example")
    officer = join_as(client, "theo@acme-lending.example")
    assert officer.get("/console/settings/webhooks").status == 403
    token = officer.get("/console/invitations").csrf()
    assert officer.post("/console/settings/webhooks/secrets", {}, token).status == 403
    assert officer.post(f"/console/settings/webhooks/secrets/{target}/revoke", {}, token).status == 403
