"""Rotating secrets without a redeploy (the attacker's review, item 5, and the closing note's "partner API credentials
take effect at the next cold start"), through the wiring production uses (bootstrap) on moto's Secrets Manager, which
keeps version stages: ``put-secret-value`` makes the new value AWSCURRENT and the old one AWSPREVIOUS.

- Inbound webhook secrets: right after ``put-secret-value`` the partner's new signature is accepted (a signature no
  cached version accepts re-reads the secret, at most once per ``webhook_secret_refresh_seconds``), and the old one
  still is for ``webhook_secret_overlap_seconds`` after the new version was created, never after.
- Partner API credentials: a changed value builds the provider's client again once the cache expires.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws as aws_clients
from chalicelib.adapters.providers import ProviderError
from chalicelib.adapters.providers.finicity import sign_finicity
from chalicelib.config import SECRET_PLACEHOLDER, SECRETS, partner_secret
from chalicelib.domain.bank_link import CustomerInfo
from chalicelib.domain.providers import Provider
from devstack.sandbox import ProviderSandbox

FINICITY_WEBHOOK_SECRET = partner_secret("finicity", "webhook-secret")
PLAID_SECRET = partner_secret("plaid", "secret")
NEW = "local-rotated-webhook-secret-" + "n" * 32
CUSTOMER = CustomerInfo(invitation_id="inv_1", tenant_id="ten_1", email="jo@smallbiz.com")


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


def finicity_webhook(client: Any, key: str) -> int:
    """A Finicity webhook (for a session we never opened) signed with ``key``: 401 when the signature is refused."""
    body = json.dumps(
        {"eventType": "done", "eventId": uuid.uuid4().hex, "customerId": "1", "webhookData": {"session_id": "x"}}
    ).encode()
    headers = {"Content-Type": "application/json", "X-Signature": sign_finicity(body, key)}
    return int(client.http.post("/webhooks/finicity", headers=headers, body=body).status_code)


def put(aws: dict[str, str], secret: Any, value: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=aws[secret.env], SecretString=value)


def test_a_rotated_webhook_secret_is_accepted_at_once_and_the_old_one_during_the_overlap(
    client: Any, aws: dict[str, str], reads: list[str]
) -> None:
    old = FINICITY_WEBHOOK_SECRET.local
    accepted = finicity_webhook(client, old)
    assert accepted != 401
    put(aws, FINICITY_WEBHOOK_SECRET, NEW)
    # The cache still holds the old value: the new signature makes the function read the secret again.
    assert finicity_webhook(client, NEW) == accepted
    assert finicity_webhook(client, old) == accepted  # the partner's retries signed before the rotation
    assert finicity_webhook(client, "w" * 40) == 401

    # Forged signatures cannot make a Secrets Manager call each: one refresh per refresh interval at most.
    before = len(reads)
    assert [finicity_webhook(client, f"forged-{i}" * 8) for i in range(5)] == [401] * 5
    assert len(reads) == before


def test_after_the_overlap_only_the_current_version_passes(
    client: Any, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_OVERLAP_SECONDS", "0")
    bootstrap.reset()
    put(aws, FINICITY_WEBHOOK_SECRET, NEW)
    assert finicity_webhook(client, NEW) != 401
    assert finicity_webhook(client, FINICITY_WEBHOOK_SECRET.local) == 401


def test_a_placeholder_previous_version_never_passes_in_production(
    client: Any, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template's first value is a placeholder: once the operator puts the real one, the placeholder is
    AWSPREVIOUS, and anyone who read the (public) template knows it."""
    for secret in SECRETS:
        put(aws, secret, "k" * 48 if secret.generated else SECRET_PLACEHOLDER)
    for secret in SECRETS:
        if secret.name.startswith("finicity-"):
            put(aws, secret, f"real-{secret.name}-" + "r" * 40)
    monkeypatch.setenv("STAGE", "prod")
    for name, value in {"PLAID_CLIENT_ID": "p", "FINICITY_PARTNER_ID": "f", "MX_CLIENT_ID": "m"}.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    real = f"real-{FINICITY_WEBHOOK_SECRET.name}-" + "r" * 40
    assert finicity_webhook(client, real) != 401
    assert finicity_webhook(client, SECRET_PLACEHOLDER) == 401


def test_a_replaced_partner_credential_is_used_once_the_cache_expires(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partner (the sandbox) accepts only the new credential after the rotation: the client built before it is
    built again with the new value, without a cold start."""
    with ProviderSandbox(port=0) as sandbox:
        monkeypatch.setenv("PLAID_BASE_URL", sandbox.url)
        monkeypatch.setenv("SECRET_CACHE_SECONDS", "0")  # the cache has expired at every read
        bootstrap.reset()
        clients = bootstrap.provider_clients()
        plaid = clients[Provider("plaid")]
        assert plaid.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="r1").link_url

        rotated = "local-rotated-plaid-secret"
        sandbox.credentials = dataclasses.replace(sandbox.credentials, plaid_secret=rotated)
        with pytest.raises(ProviderError):  # the old credential, as the partner sees it now
            plaid.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="r2")
        put(aws, PLAID_SECRET, rotated)
        again = clients[Provider("plaid")]
        assert again is not plaid
        assert again.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="r3").link_url
        assert clients[Provider("plaid")] is again  # unchanged values keep the client (its sessions and tokens)


def test_a_failed_re_read_leaves_the_signature_refused(client: Any, aws: dict[str, str]) -> None:
    """Secrets Manager down when a signature asks for a re-read: 401 as before (the partner retries), not 500."""
    from botocore.exceptions import EndpointConnectionError

    assert finicity_webhook(client, FINICITY_WEBHOOK_SECRET.local) != 401

    def down(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    sm = aws_clients.client("secretsmanager")
    sm.meta.events.register("before-call.secrets-manager.GetSecretValue", down)
    try:
        assert finicity_webhook(client, NEW) == 401
    finally:
        sm.meta.events.unregister("before-call.secrets-manager.GetSecretValue", down)


# --- the attacker's review of the rotation (second pass) --------------------------------------------------------
def sent_for(reads: list[str], aws: dict[str, str], secret: Any) -> int:
    return reads.count(aws[secret.env])


def test_without_a_creation_date_the_previous_version_never_passes(client: Any, aws: dict[str, str]) -> None:
    """The overlap counts from the current version's CreatedDate. An answer without one (a proxy, a stub) must not
    count it from the moment of each read instead: every re-read would start 24 h again, for ever."""

    def undated(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("CreatedDate", None)

    sm = aws_clients.client("secretsmanager")
    sm.meta.events.register("after-call.secrets-manager.GetSecretValue", undated)
    try:
        put(aws, FINICITY_WEBHOOK_SECRET, NEW)
        assert finicity_webhook(client, NEW) != 401
        assert finicity_webhook(client, FINICITY_WEBHOOK_SECRET.local) == 401
    finally:
        sm.meta.events.unregister("after-call.secrets-manager.GetSecretValue", undated)


def test_an_unsigned_call_reads_no_secret_and_leaves_the_re_read_to_the_partner(
    client: Any, aws: dict[str, str], reads: list[str]
) -> None:
    """A call with no signature (or credentials) at all cannot pass with any version: it must not re-read the
    secret, nor spend the one re-read per interval that the partner's first call after a rotation needs."""
    assert finicity_webhook(client, FINICITY_WEBHOOK_SECRET.local) != 401  # the versions are cached
    mx_unsigned = client.http.post("/webhooks/mx", headers={"Content-Type": "application/json"}, body=b"{}")
    assert mx_unsigned.status_code == 401
    put(aws, FINICITY_WEBHOOK_SECRET, NEW)
    before = sent_for(reads, aws, FINICITY_WEBHOOK_SECRET)
    for headers in ({}, {"X-Signature": ""}, {"X-Signature": "not-hex"}, {"X-Signature": "ab" * 31}):
        unsigned = client.http.post(
            "/webhooks/finicity", headers={"Content-Type": "application/json", **headers}, body=b"{}"
        )
        assert unsigned.status_code == 401, headers
    assert sent_for(reads, aws, FINICITY_WEBHOOK_SECRET) == before
    assert finicity_webhook(client, NEW) != 401  # the partner's new signature still gets its re-read


def test_a_signature_refused_by_versions_just_read_does_not_read_them_again(
    client: Any, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the cache expired, a forged signature reads the versions once: a re-read right after that read would
    answer the same, and cost Secrets Manager calls twice per forged call."""
    monkeypatch.setenv("SECRET_CACHE_SECONDS", "0")
    bootstrap.reset()
    put(aws, FINICITY_WEBHOOK_SECRET, NEW)  # both stages exist: AWSCURRENT and AWSPREVIOUS
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["SecretId"])

    sm = aws_clients.client("secretsmanager")
    sm.meta.events.register("provide-client-params.secrets-manager.GetSecretValue", record)
    try:
        assert finicity_webhook(client, "forged-" * 8) == 401
        assert sent_for(sent, aws, FINICITY_WEBHOOK_SECRET) == 2  # AWSCURRENT, AWSPREVIOUS: once each
        assert finicity_webhook(client, NEW) != 401
    finally:
        sm.meta.events.unregister("provide-client-params.secrets-manager.GetSecretValue", record)
