from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import json_headers


def post(client: Any, path: str, body: Any, key: str | None = None) -> Any:
    return client.http.post(path, headers=json_headers(key), body=json.dumps(body))


def test_health(client: Any) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert json.loads(response.body) == {"status": "ok"}


def test_sign_up_returns_key_that_authenticates(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    assert key.startswith("lok_")
    response = client.http.get("/v1/tenant/settings", headers=json_headers(key))
    assert response.status_code == 200
    settings = json.loads(response.body)
    assert settings["require_invitation"] is True
    assert settings["require_email_confirmation"] is True
    assert settings["provider_order"] == ["plaid", "finicity", "mx"]
    assert settings["invitation_ttl_days"] == 14


def test_key_is_stored_only_as_hash(client: Any, lender: dict[str, Any], aws: dict[str, str]) -> None:
    import boto3

    items = boto3.client("dynamodb").scan(TableName=aws["TABLE_NAME"])["Items"]
    assert lender["api_key"] not in json.dumps(items)


@pytest.mark.parametrize("authorization", [None, "Bearer lok_wrong", "Basic abc", "Bearer "])
def test_missing_or_wrong_key_is_401_and_reveals_nothing(
    client: Any, lender: dict[str, Any], authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.http.get("/v1/tenant/settings", headers=headers)
    assert response.status_code == 401
    assert json.loads(response.body) == {
        "error": {"code": "unauthorized", "message": "a valid API key is required", "fields": {}}
    }


def test_taken_subdomain_is_409(client: Any, lender: dict[str, Any]) -> None:
    response = post(client, "/v1/tenants", {"name": "Other", "subdomain": "ACME", "admin_email": "a@b-bank.com"})
    assert response.status_code == 409
    assert json.loads(response.body)["error"]["fields"] == {"subdomain": "already taken"}


@pytest.mark.parametrize(
    ("subdomain", "reason"),
    [
        ("www", "reserved"),
        ("api", "reserved"),
        ("admin", "reserved"),
        ("-bad", "letters"),
        ("a_b", "letters"),
        ("x" * 64, "63"),
    ],
)
def test_bad_subdomain_names_the_field(client: Any, subdomain: str, reason: str) -> None:
    response = post(client, "/v1/tenants", {"name": "Acme", "subdomain": subdomain, "admin_email": "a@b-bank.com"})
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "validation_error"
    assert reason in error["fields"]["subdomain"]


def test_validation_names_every_bad_field(client: Any) -> None:
    response = post(
        client, "/v1/tenants", {"name": "", "subdomain": "ok-name", "admin_email": "nope", "data_residency": "eu"}
    )
    error = json.loads(response.body)["error"]
    assert response.status_code == 400
    assert set(error["fields"]) == {"name", "admin_email", "data_residency"}


def test_malformed_json_is_400_in_the_error_shape(client: Any) -> None:
    response = client.http.post("/v1/tenants", headers=json_headers(), body="{not json")
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["fields"] == {"body": "not valid JSON"}


def test_settings_patch_changes_only_given_fields(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    response = client.http.patch(
        "/v1/tenant/settings",
        headers=json_headers(key),
        body=json.dumps({"require_invitation": False, "locale": "fr", "branding": {"colour": "#aa0000"}}),
    )
    assert response.status_code == 200, response.body
    again = json.loads(client.http.get("/v1/tenant/settings", headers=json_headers(key)).body)
    assert again["require_invitation"] is False
    assert again["locale"] == "fr"
    assert again["branding"]["colour"] == "#aa0000"
    assert again["require_email_confirmation"] is True


def test_settings_patch_rejects_bad_values(client: Any, lender: dict[str, Any]) -> None:
    response = client.http.patch(
        "/v1/tenant/settings",
        headers=json_headers(lender["api_key"]),
        body=json.dumps({"provider_order": ["plaid", "plaid"], "invitation_ttl_days": 0, "webhook_url": "nope"}),
    )
    assert response.status_code == 400
    assert set(json.loads(response.body)["error"]["fields"]) == {"provider_order", "invitation_ttl_days", "webhook_url"}


def test_api_keys_create_list_revoke(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    created = json.loads(post(client, "/v1/api-keys", {"label": "crm"}, key).body)
    second = created["api_key"]
    assert client.http.get("/v1/tenant", headers=json_headers(second)).status_code == 200

    listing = json.loads(client.http.get("/v1/api-keys", headers=json_headers(key)).body)["items"]
    assert len(listing) == 2
    assert all(second not in json.dumps(item) for item in listing)
    assert {item["prefix"] for item in listing} >= {second[:10]}

    revoked = client.http.delete(f"/v1/api-keys/{created['key']['key_id']}", headers=json_headers(key))
    assert revoked.status_code == 200
    assert client.http.get("/v1/tenant", headers=json_headers(second)).status_code == 401
    assert client.http.get("/v1/tenant", headers=json_headers(key)).status_code == 200


def test_signup_page_creates_lender_and_shows_key_once(client: Any) -> None:
    page = client.http.get("/signup")
    assert page.status_code == 200
    body = page.body.decode()
    assert 'name="csrf_token"' in body
    cookie = page.headers["Set-Cookie"].split(";")[0]
    token = cookie.split("=", 1)[1]
    form = (
        f"csrf_token={token}&name=Maple+Credit&subdomain=maple&admin_email=ops%40maple-credit.ca&data_residency=ca"
        "&password=correct+horse+battery+staple"
    )
    done = client.http.post(
        "/signup", headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}, body=form
    )
    assert done.status_code == 303 and done.headers["Location"] == "/signup/done"
    session = done.headers["Set-Cookie"].split(";")[0]
    shown = client.http.get("/signup/done", headers={"Cookie": session})
    assert "lok_" in shown.body.decode()


def test_signup_page_without_csrf_is_refused(client: Any) -> None:
    form = "name=Maple&subdomain=maple&admin_email=ops%40maple-credit.ca"
    done = client.http.post("/signup", headers={"Content-Type": "application/x-www-form-urlencoded"}, body=form)
    assert done.status_code == 400
    assert "lok_" not in done.body.decode()


def test_settings_patches_from_stale_copies_do_not_undo_each_other(client: Any, lender: dict[str, Any]) -> None:
    """Two instances, each holding an older copy of the lender, patch different fields."""
    from chalicelib.bootstrap import services
    from chalicelib.domain.tenant import TenantSettingsPatch

    s = services()
    stale = s.tenant_repo.get(lender["tenant"]["tenant_id"])
    assert stale is not None
    s.tenants.update_settings(stale, TenantSettingsPatch(require_invitation=False))
    s.tenants.update_settings(stale, TenantSettingsPatch(locale="fr", webhook_url=None))
    saved = json.loads(client.http.get("/v1/tenant/settings", headers=json_headers(lender["api_key"])).body)
    assert saved["require_invitation"] is False
    assert saved["locale"] == "fr"


def test_lender_sign_up_is_rate_limited_per_ip(client: Any) -> None:
    statuses = []
    for i in range(11):
        response = post(
            client, "/v1/tenants", {"name": f"Bank {i}", "subdomain": f"bank-{i}", "admin_email": "a@b-bank.com"}
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [201] * 10
    assert statuses[10] == 429
    assert int(response.headers["Retry-After"]) > 0
