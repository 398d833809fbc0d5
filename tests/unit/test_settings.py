"""Production refuses to run on placeholder credentials: an empty Finicity webhook secret would accept any HMAC
computed over "", an empty MX password any basic-auth header with it. Partner ids are settings, checked at cold start;
secrets are read from Secrets Manager when used and checked then (tests/unit/test_secrets.py). Local stages keep
their placeholders so `make run` needs no configuration."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.config import MIN_LINK_KEY_LENGTH, PRODUCTION_PARTNER_IDS, SECRET_PLACEHOLDER, SECRETS, Settings

REAL = {
    "plaid_client_id": "5f2c0a1b9d3e4f0012345678",
    "finicity_partner_id": "2445582695152",
    "mx_client_id": "mx-real-client-id",
    "mx_webhook_username": "mx-webhooks",
}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes: nothing from the developer's or CI's environment."""
    for name in ("STAGE", *(n.upper() for n in REAL), *(secret.env for secret in SECRETS)):
        monkeypatch.delenv(name, raising=False)


def prod(**changes: Any) -> Settings:
    return Settings(stage="prod", **{**REAL, **changes})


def test_production_with_every_partner_id_starts() -> None:
    assert prod().mx_client_id == REAL["mx_client_id"]


def test_every_partner_id_is_checked() -> None:
    assert set(PRODUCTION_PARTNER_IDS) == set(REAL)


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("value", ["", "   "])
def test_production_refuses_an_empty_partner_id(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name.upper()):
        prod(**{name: value})


PLACEHOLDERS = sorted(n for n in PRODUCTION_PARTNER_IDS if str(Settings.model_fields[n].default).startswith("local-"))


@pytest.mark.parametrize("name", PLACEHOLDERS)
def test_production_refuses_a_local_placeholder(name: str) -> None:
    with pytest.raises(ValidationError, match=name.upper()):
        prod(**{name: Settings.model_fields[name].default})


def test_the_error_names_every_missing_id_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        prod(plaid_client_id="", mx_client_id="")
    assert "PLAID_CLIENT_ID" in str(refused.value) and "MX_CLIENT_ID" in str(refused.value)


@pytest.mark.parametrize("stage", ["local", "test"])
def test_local_stages_keep_their_placeholders(stage: str) -> None:
    settings = Settings(stage=stage, plaid_client_id="")
    assert settings.is_local


# --- the secrets' declarations ----------------------------------------------------------------------------------------


def test_secrets_are_declared_once_each() -> None:
    assert len({s.name for s in SECRETS}) == len({s.env for s in SECRETS}) == len(SECRETS)
    assert all(s.env.endswith("_ARN") for s in SECRETS)  # the environment holds ARNs, never values


def test_the_secrets_are_what_settings_no_longer_hold() -> None:
    names = {s.name for s in SECRETS}
    assert names == {
        "link-signing-key",
        "plaid-secret",
        "finicity-app-key",
        "finicity-partner-secret",
        "finicity-webhook-secret",
        "mx-api-key",
        "mx-webhook-password",
    }
    held = {name.replace("_", "-") for name in Settings.model_fields}
    assert not names & held


def test_only_the_link_key_is_generated() -> None:
    assert [s.name for s in SECRETS if s.generated] == ["link-signing-key"]
    [key] = [s for s in SECRETS if s.generated]
    assert key.min_length == MIN_LINK_KEY_LENGTH


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: s.name)
def test_every_local_value_is_refused_in_production(secret: Any) -> None:
    assert secret.problem(secret.local) == "still a placeholder"


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("value", "problem"), [("", "empty"), ("  ", "empty"), (SECRET_PLACEHOLDER, "still a placeholder")]
)
def test_an_empty_or_placeholder_secret_is_refused(secret: Any, value: str, problem: str) -> None:
    assert secret.problem(value) == problem


def test_a_short_link_key_is_refused() -> None:
    [key] = [s for s in SECRETS if s.name == "link-signing-key"]
    assert key.problem("k" * (MIN_LINK_KEY_LENGTH - 1)) == f"shorter than {MIN_LINK_KEY_LENGTH} characters"
    assert key.problem("k" * MIN_LINK_KEY_LENGTH) is None


def test_secret_arns_come_from_each_secrets_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s/plaid-secret-AbCdEf"
    monkeypatch.setenv("PLAID_SECRET_ARN", arn)
    assert prod().secret_arns == {"plaid-secret": arn}
