"""Production settings refuse to start without real partner credentials: an empty Finicity webhook secret would
accept any HMAC computed over "", an empty MX password any basic-auth header with it. Local stages keep their
placeholders so `make run` needs no configuration."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.config import PRODUCTION_SECRETS, Settings

REAL = {
    "link_signing_key": "k" * 48,
    "plaid_client_id": "5f2c0a1b9d3e4f0012345678",
    "plaid_secret": "plaid-real-secret-value",
    "finicity_app_key": "finicity-real-app-key",
    "finicity_partner_id": "2445582695152",
    "finicity_partner_secret": "finicity-real-partner-secret",
    "finicity_webhook_secret": "finicity-real-webhook-secret",
    "mx_client_id": "mx-real-client-id",
    "mx_api_key": "mx-real-api-key",
    "mx_webhook_username": "mx-webhooks",
    "mx_webhook_password": "mx-real-webhook-password",
}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes: nothing from the developer's or CI's environment."""
    for name in ("STAGE", *(n.upper() for n in REAL)):
        monkeypatch.delenv(name, raising=False)


def prod(**changes: Any) -> Settings:
    return Settings(stage="prod", **{**REAL, **changes})


def test_production_with_every_credential_starts() -> None:
    assert prod().finicity_webhook_secret == REAL["finicity_webhook_secret"]


def test_every_partner_credential_is_checked() -> None:
    assert set(PRODUCTION_SECRETS) == set(REAL) - {"link_signing_key"}


@pytest.mark.parametrize("name", sorted(set(REAL) - {"link_signing_key"}))
@pytest.mark.parametrize("value", ["", "   "])
def test_production_refuses_an_empty_partner_credential(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name.upper()):
        prod(**{name: value})


PLACEHOLDERS = sorted(n for n in PRODUCTION_SECRETS if str(Settings.model_fields[n].default).startswith("local-"))


def test_the_placeholders_are_the_secrets() -> None:
    assert {"plaid_secret", "finicity_webhook_secret", "mx_api_key", "mx_webhook_password"} <= set(PLACEHOLDERS)


@pytest.mark.parametrize("name", PLACEHOLDERS)
def test_production_refuses_a_local_placeholder(name: str) -> None:
    with pytest.raises(ValidationError, match=name.upper()):
        prod(**{name: Settings.model_fields[name].default})


@pytest.mark.parametrize("key", ["", "short-key", "local-only-link-key-do-not-use-in-production"])
def test_production_refuses_a_weak_link_signing_key(key: str) -> None:
    with pytest.raises(ValidationError, match="LINK_SIGNING_KEY"):
        prod(link_signing_key=key)


def test_the_error_names_every_missing_credential_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        prod(finicity_webhook_secret="", mx_webhook_password="")
    assert "FINICITY_WEBHOOK_SECRET" in str(refused.value) and "MX_WEBHOOK_PASSWORD" in str(refused.value)


@pytest.mark.parametrize("stage", ["local", "test"])
def test_local_stages_keep_their_placeholders(stage: str) -> None:
    settings = Settings(stage=stage, finicity_webhook_secret="")
    assert settings.is_local
