"""The secret store (chalicelib/adapters/secrets.py) on Powertools' own caching, with a provider that counts reads
(Powertools' documented way to bring a store: a BaseProvider with ``_get``). Reading through moto's Secrets Manager,
as deployed: tests/integration/test_secrets.py."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import BaseProvider

from chalicelib.adapters.secrets import MAX_AGE_SECONDS, SecretStore
from chalicelib.config import (
    LINK_SIGNING_KEY,
    SECRET_PLACEHOLDER,
    SECRETS,
    ConfigurationError,
    Settings,
    partner_secret,
)

PLAID_SECRET = partner_secret("plaid", "secret")
MX_WEBHOOK_PASSWORD = partner_secret("mx", "webhook-password")

PARTNER_IDS = {"plaid_client_id": "5f2c0a1b", "finicity_partner_id": "2445582695152", "mx_client_id": "mx-real"}
ARNS = {
    secret.name: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/{secret.name}-AbCdEf" for secret in SECRETS
}


class CountingProvider(BaseProvider):
    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__()
        self.values = values
        self.reads: list[str] = []

    def _get(self, name: str, **sdk_options: Any) -> Any:
        self.reads.append(name)
        if name not in self.values:
            raise LookupError(f"Secrets Manager can't find the specified secret: {name}")
        return self.values[name]

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STAGE", *(secret.env for secret in SECRETS)):
        monkeypatch.delenv(name, raising=False)


def prod(arns: dict[str, str] | None = None) -> Settings:
    return Settings(stage="prod", secret_arns=ARNS if arns is None else arns, **PARTNER_IDS)


def test_the_cache_lasts_five_minutes_by_default() -> None:
    assert MAX_AGE_SECONDS == 300


def test_a_warm_function_reads_each_secret_once_within_the_max_age() -> None:
    provider = CountingProvider({ARNS["plaid-secret"]: "plaid-real-secret", ARNS["link-signing-key"]: "k" * 64})
    store = SecretStore(prod(), provider)
    assert [store.get(PLAID_SECRET) for _ in range(3)] == ["plaid-real-secret"] * 3
    assert store.get(LINK_SIGNING_KEY) == "k" * 64
    assert provider.reads == [ARNS["plaid-secret"], ARNS["link-signing-key"]]  # by ARN, once each


def test_a_replaced_secret_is_read_again_once_the_cache_expires() -> None:
    provider = CountingProvider({ARNS["plaid-secret"]: "plaid-old-secret"})
    store = SecretStore(prod(), provider, max_age=0)
    assert store.get(PLAID_SECRET) == "plaid-old-secret"
    provider.values[ARNS["plaid-secret"]] = "plaid-new-secret"  # put-secret-value
    assert store.get(PLAID_SECRET) == "plaid-new-secret"
    assert len(provider.reads) == 2


def test_production_refuses_a_secret_whose_arn_it_was_not_given() -> None:
    store = SecretStore(prod(arns={}), CountingProvider({}))
    with pytest.raises(ConfigurationError, match=r"secret plaid-secret: PLAID_SECRET_ARN is not set"):
        store.get(PLAID_SECRET)


@pytest.mark.parametrize("value", [SECRET_PLACEHOLDER, "local-mx-password", "", "  "])
def test_production_refuses_a_placeholder_when_it_reads_it(value: str) -> None:
    store = SecretStore(prod(), CountingProvider({ARNS["mx-webhook-password"]: value}))
    with pytest.raises(ConfigurationError, match=r"secret mx-webhook-password is (still a placeholder|empty)") as err:
        store.get(MX_WEBHOOK_PASSWORD)
    assert "put-secret-value --secret-id " + ARNS["mx-webhook-password"] in str(err.value)


def test_production_refuses_a_short_link_key() -> None:
    store = SecretStore(prod(), CountingProvider({ARNS["link-signing-key"]: "too-short-for-a-key"}))
    with pytest.raises(ConfigurationError, match="secret link-signing-key is shorter than 32 characters"):
        store.get(LINK_SIGNING_KEY)


def test_a_placeholder_is_not_cached_as_good_once_replaced() -> None:
    provider = CountingProvider({ARNS["plaid-secret"]: SECRET_PLACEHOLDER})
    store = SecretStore(prod(), provider, max_age=0)
    with pytest.raises(ConfigurationError):
        store.get(PLAID_SECRET)
    provider.values[ARNS["plaid-secret"]] = "plaid-real-secret"
    assert store.get(PLAID_SECRET) == "plaid-real-secret"


def test_an_unreadable_secret_names_itself() -> None:
    store = SecretStore(prod(), CountingProvider({}))
    with pytest.raises(ConfigurationError, match="secret plaid-secret cannot be read from Secrets Manager"):
        store.get(PLAID_SECRET)


def test_a_binary_secret_is_refused() -> None:
    store = SecretStore(prod(), CountingProvider({ARNS["plaid-secret"]: b"\x00binary"}))
    with pytest.raises(ConfigurationError, match="secret plaid-secret must be a SecretString"):
        store.get(PLAID_SECRET)


@pytest.mark.parametrize("stage", ["local", "test"])
def test_local_stages_without_arns_read_the_declared_local_values(stage: str) -> None:
    provider = CountingProvider({})
    store = SecretStore(Settings(stage=stage), provider)
    assert {secret.name: store.get(secret) for secret in SECRETS} == {secret.name: secret.local for secret in SECRETS}
    assert provider.reads == []


def test_local_stages_with_arns_read_secrets_manager_and_accept_local_values() -> None:
    provider = CountingProvider({ARNS["plaid-secret"]: PLAID_SECRET.local})
    store = SecretStore(Settings(stage="local", secret_arns={"plaid-secret": ARNS["plaid-secret"]}), provider)
    assert store.get(PLAID_SECRET) == PLAID_SECRET.local
    assert provider.reads == [ARNS["plaid-secret"]]
