"""Secrets as deployed, on moto's Secrets Manager: the embedded stack creates every declared secret (the same
resources the packaged template creates), functions read them by the ARN in their environment through Powertools'
SecretsProvider with its cache, production refuses a placeholder when it reads one, and every read in this suite is
checked against the reading function's grants (tests/secret_guard.py)."""

from __future__ import annotations

import secrets as random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws as aws_clients
from chalicelib.adapters.secrets import SecretStore
from chalicelib.config import (
    LINK_SIGNING_KEY,
    SECRET_PLACEHOLDER,
    SECRETS,
    ConfigurationError,
    get_settings,
    partner_secret,
)
from chalicelib.domain.providers import PROVIDERS, Provider
from tests import secret_guard
from tests.integration.helpers import call, drain

PLAID_SECRET = partner_secret("plaid", "secret")
MX_WEBHOOK_PASSWORD = partner_secret("mx", "webhook-password")
FINICITY_WEBHOOK_SECRET = partner_secret("finicity", "webhook-secret")
PARTNER_IDS = {"PLAID_CLIENT_ID": "5f2c0a1b", "FINICITY_PARTNER_ID": "2445582695152", "MX_CLIENT_ID": "mx-real"}


@pytest.fixture
def reads(aws: dict[str, str]) -> Iterator[list[str]]:
    """The SecretIds of every GetSecretValue the app's Secrets Manager client sends."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["SecretId"])

    client = aws_clients.client("secretsmanager")
    client.meta.events.register("provide-client-params.secrets-manager.GetSecretValue", record)
    yield sent
    client.meta.events.unregister("provide-client-params.secrets-manager.GetSecretValue", record)


def test_the_embedded_stack_creates_every_secret_and_gives_only_arns(aws: dict[str, str]) -> None:
    manager = boto3.client("secretsmanager")
    for secret in SECRETS:
        arn = aws[secret.env]
        assert arn.startswith("arn:aws:secretsmanager:")
        described = manager.describe_secret(SecretId=arn)
        assert described["Name"] == f"onboarding/{secret.name}"
        assert manager.get_secret_value(SecretId=arn)["SecretString"] == secret.local
    assert not {secret.local for secret in SECRETS} & set(aws.values())


def test_functions_read_secrets_manager_by_arn_once_while_the_value_is_fresh(
    aws: dict[str, str], reads: list[str]
) -> None:
    store = bootstrap.services().secrets
    assert [store.get(PLAID_SECRET) for _ in range(3)] == [PLAID_SECRET.local] * 3
    assert reads == [aws[PLAID_SECRET.env]]


def test_a_replaced_secret_is_read_once_the_cache_expires(aws: dict[str, str], reads: list[str]) -> None:
    cached = bootstrap.services().secrets
    fresh = SecretStore(get_settings(), max_age=0)
    assert cached.get(PLAID_SECRET) == fresh.get(PLAID_SECRET) == PLAID_SECRET.local
    boto3.client("secretsmanager").put_secret_value(SecretId=aws[PLAID_SECRET.env], SecretString="local-rotated")
    assert cached.get(PLAID_SECRET) == PLAID_SECRET.local  # within its 5 minutes
    assert fresh.get(PLAID_SECRET) == "local-rotated"
    assert len(reads) == 3


@pytest.fixture
def production(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The wiring production uses at stage prod, with real partner ids; secrets as the template creates them: the
    link key generated, every partner secret a placeholder."""
    manager = boto3.client("secretsmanager")
    for secret in SECRETS:
        value = random.token_urlsafe(48) if secret.generated else SECRET_PLACEHOLDER
        manager.put_secret_value(SecretId=aws[secret.env], SecretString=value)
    monkeypatch.setenv("STAGE", "prod")
    for name, value in PARTNER_IDS.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    return aws


def test_production_derives_links_with_the_generated_key(production: dict[str, str]) -> None:
    key = bootstrap.services().link_key()
    assert len(key) >= LINK_SIGNING_KEY.min_length and LINK_SIGNING_KEY.problem(key) is None


def test_production_refuses_a_placeholder_partner_secret_naming_it(production: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="secret plaid-secret is still a placeholder") as refused:
        bootstrap.provider_clients()[Provider("plaid")]
    assert f"put-secret-value --secret-id {production[PLAID_SECRET.env]}" in str(refused.value)


def test_a_provider_left_unconfigured_fails_only_its_own_calls(production: dict[str, str]) -> None:
    """A lender platform that uses Plaid alone sets Plaid's secret: MX's and Finicity's placeholders refuse MX's and
    Finicity's calls, not Plaid's (before, every provider was built at once and the first placeholder refused all,
    which pushed operators to fill unused secrets with junk)."""
    boto3.client("secretsmanager").put_secret_value(SecretId=production[PLAID_SECRET.env], SecretString="p" * 30)
    clients = bootstrap.provider_clients()
    assert clients[Provider("plaid")].provider == "plaid"
    with pytest.raises(ConfigurationError, match="secret mx-api-key is still a placeholder"):
        clients[Provider("mx")]
    verifiers = bootstrap.bank_links().verifiers
    assert callable(verifiers[Provider("plaid")])
    assert set(clients) == set(verifiers) == {Provider(key) for key in PROVIDERS}


def test_a_webhook_secret_anyone_could_guess_is_refused_in_production() -> None:
    for secret in (FINICITY_WEBHOOK_SECRET, MX_WEBHOOK_PASSWORD):
        assert secret.problem("unused") is not None
        assert secret.problem(random.token_urlsafe(12)) is not None  # 16 characters
        assert secret.problem(random.token_urlsafe(24)) is None  # 32 characters


def test_production_refuses_the_local_link_key(production: dict[str, str]) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=production[LINK_SIGNING_KEY.env], SecretString=LINK_SIGNING_KEY.local
    )
    with pytest.raises(ConfigurationError, match="secret link-signing-key is still a placeholder"):
        bootstrap.services().link_key()


def test_production_refuses_a_secret_its_function_has_no_arn_for(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLAID_SECRET.env)
    bootstrap.reset()
    with pytest.raises(ConfigurationError, match="secret plaid-secret: PLAID_SECRET_ARN is not set"):
        bootstrap.provider_clients()[Provider("plaid")]


def test_every_read_is_attributed_to_the_function_that_made_it(
    client: Any, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = secret_guard.install(monkeypatch)
    status, _ = call(
        client, "POST", "/v1/invitations", lender["api_key"], {"email": "jane@smallbiz.com", "owner": "Olivia"}
    )
    assert status == 201
    assert ("APIHandler", "link-signing-key") in guard.reads
    assert drain("onboarding-send") >= 1
    assert ("SendWorker", "link-signing-key") in guard.reads
    assert guard.denied() == []


def test_the_guard_refuses_a_read_the_function_is_not_granted() -> None:
    guard = secret_guard.SecretGuard(reads=[("WebhookWorker", "plaid-secret"), ("SendWorker", "link-signing-key")])
    assert guard.denied() == [("WebhookWorker", "plaid-secret")]
    with pytest.raises(AssertionError, match="WebhookWorker"):
        guard.assert_clean()


def test_a_webhook_for_a_provider_left_unconfigured_is_not_found_not_a_server_error(
    production: dict[str, str], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can post to /webhooks/mx: where MX is not set up (its secrets still placeholders) the route answers 404
    like an unknown provider, with a warning, instead of a 500 and an error log that pages the operator."""
    status, body = call(client, "POST", "/webhooks/mx", body={"type": "MEMBER", "action": "CONNECTED"})
    assert status == 404, body
    assert body["error"]["code"] == "not_found"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_webhook_whose_provider_secret_cannot_be_read_stays_a_server_error(
    production: dict[str, str], client: Any
) -> None:
    """Only a provider that is not set up answers 404: when its secret exists but Secrets Manager cannot give it
    (here: deleted under the function), the partner gets a 5xx and retries, rather than a 404 it may take as final."""
    manager = boto3.client("secretsmanager")
    for secret in SECRETS:
        if secret.name.startswith("mx-"):
            manager.put_secret_value(SecretId=production[secret.env], SecretString="m" * 40)
    manager.delete_secret(SecretId=production[partner_secret("mx", "api-key").env], ForceDeleteWithoutRecovery=True)
    status, body = call(client, "POST", "/webhooks/mx", body={"type": "MEMBER", "action": "CONNECTED"})
    assert status >= 500, body
