"""Settings: one pydantic-settings model, validated once per process (cold start).

Services never read ``os.environ``; they receive what they need from :func:`get_settings`
through the composition root (``chalicelib.bootstrap``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Literal

from pydantic import AnyHttpUrl, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.domain.providers import PROVIDERS

if TYPE_CHECKING:
    from chalicelib.urls import PublicUrls

# Queue names are fixed because Chalice binds SQS event sources by name at import time.
# infra/resources.json creates queues with exactly these names.
SEND_QUEUE = "onboarding-send"
IMPORT_QUEUE = "onboarding-import"
LINK_REQUEST_QUEUE = "onboarding-link-requests"
SES_FEEDBACK_QUEUE = "onboarding-ses-feedback"
PORTAL_EVENTS_QUEUE = "onboarding-portal-events"
WEBHOOK_QUEUE = "onboarding-webhooks"


# Each provider's settings and secrets are declared with it, in its registry entry (chalicelib/domain/providers.py):
# its settings become fields of Settings (``<key>_<name>``), its secrets rows of SECRETS, both named from the entry.
# Partner ids production cannot run without (settings, not secrets: they name the account, the secrets prove it). Left
# at their local placeholder, every partner call fails; the deploy requires them as parameters.
PRODUCTION_PARTNER_IDS = tuple(
    f"{key}_{setting.name}" for key, info in PROVIDERS.items() for setting in info.settings if setting.required
)
MIN_LINK_KEY_LENGTH = 32


# --- secrets --------------------------------------------------------------------------------------------------------
# What a placeholder secret holds until the operator sets the real value (the template writes it; production refuses it).
SECRET_PLACEHOLDER = "PLACEHOLDER: set the real value with aws secretsmanager put-secret-value"


@dataclass(frozen=True)
class Secret:
    """One secret of the deployment, declared once (:data:`SECRETS`).

    In AWS it is the Secrets Manager secret ``${AWS::StackName}/<name>`` that the template creates (infra/package.py);
    a function that reads it gets its ARN, never its value, in the environment variable ``env`` and may read it
    (``secretsmanager:GetSecretValue`` on that ARN only, from ``FUNCTION_ACCESS``). Code reads it through
    ``chalicelib.adapters.secrets.SecretStore.get``. The embedded stack creates it in moto holding ``local``, which
    the provider sandbox checks too.
    """

    name: str
    env: str
    description: str
    local: str
    # True: Secrets Manager generates the value when the stack is created. False: the stack creates a placeholder and
    # the operator puts the partner's value (README, "Secrets").
    generated: bool = False
    min_length: int = 1

    def problem(self, value: str) -> str | None:
        """Why ``value`` cannot serve in production, or None when it can."""
        value = value.strip()
        if not value:
            return "empty"
        if value.startswith((SECRET_PLACEHOLDER, "local-")):  # every local value starts with "local-"
            return "still a placeholder"
        if len(value) < self.min_length:
            return f"shorter than {self.min_length} characters"
        return None


LINK_SIGNING_KEY = Secret(
    "link-signing-key",
    "LINK_SIGNING_KEY_ARN",
    "Key that derives link tokens and console CSRF tokens (generated; replacing it invalidates every link sent).",
    local="local-only-link-key-do-not-use-in-production",
    generated=True,
    min_length=MIN_LINK_KEY_LENGTH,
)


# Inbound webhook secrets are chosen by the operator and guard forgeable calls: at least 32 characters (192 bits as
# `openssl rand -base64 24`), so a guessable "unused" never passes for one.
WEBHOOK_SECRET_MIN = 32


def partner_secret(key: str, name: str) -> Secret:
    """The secret ``name`` that provider ``key`` declares (chalicelib/domain/providers.py); KeyError if none."""
    declared = {secret.name: secret for secret in PROVIDERS[key].secrets}[name]
    return Secret(
        f"{key}-{name}",
        f"{key}_{name}_ARN".replace("-", "_").upper(),
        declared.description,
        local=declared.local,
        min_length=WEBHOOK_SECRET_MIN if declared.webhook else 1,
    )


# Partner secrets: left empty or at a placeholder, a webhook check would turn into one anyone passes (Finicity's HMAC
# over "", MX basic auth with an empty password), so production refuses them. Those of the client (the partner's API)
# apart from those of its webhook checks: infra/package.py grants each to the functions that read it.
PARTNER_SECRETS: tuple[Secret, ...] = tuple(
    partner_secret(key, secret.name) for key, info in PROVIDERS.items() for secret in info.secrets
)
_WEBHOOK = {f"{key}-{secret.name}" for key, info in PROVIDERS.items() for secret in info.secrets if secret.webhook}
PARTNER_API_SECRETS = tuple(secret for secret in PARTNER_SECRETS if secret.name not in _WEBHOOK)
PARTNER_WEBHOOK_SECRETS = tuple(secret for secret in PARTNER_SECRETS if secret.name in _WEBHOOK)
SECRETS: tuple[Secret, ...] = (LINK_SIGNING_KEY, *PARTNER_SECRETS)


def _secret_arns_from_environment() -> dict[str, str]:
    return {secret.name: os.environ[secret.env] for secret in SECRETS if os.environ.get(secret.env)}


# One DNS label: what a lender subdomain or a customer account name can be in a host.


def _partner_defaults() -> dict[str, str]:
    return {
        f"{key}_{setting.name}": setting.local if setting.default is None else setting.default
        for key, info in PROVIDERS.items()
        for setting in info.settings
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, frozen=True)

    stage: Literal["local", "test", "prod"] = "prod"
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_DEFAULT_REGION")
    # Set only for local runs and tests: every boto3 client then talks to the embedded AWS.
    aws_endpoint_url: AnyHttpUrl | None = None

    table_name: str = "onboarding"
    send_queue_url: str = ""
    import_queue_url: str = ""
    # Rows per stored chunk and SQS message of a CSV import (tests use small chunks to cross chunk boundaries).
    import_chunk_rows: int = Field(default=500, ge=1, le=500)
    link_request_queue_url: str = ""
    ses_feedback_queue_url: str = ""
    portal_events_queue_url: str = ""
    webhook_queue_url: str = ""
    ses_feedback_topic_arn: str = ""
    ses_configuration_set: str = "onboarding"
    state_machine_arn: str = ""
    # Each waterfall slot waits this long for the customer to finish at one provider; the portal
    # heartbeats the open task while the customer is active, so a closed tab moves on sooner.
    link_step_timeout_seconds: int = Field(default=900, ge=1)
    link_heartbeat_seconds: int = Field(default=300, ge=1)
    documents_bucket: str = "onboarding-documents"

    # Links in emails are built from this, never from a request's Host header.
    public_base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")
    # Lender join pages also answer on https://{subdomain}.{base_domain}/join (and .ca for Canadian residency).
    base_domain_us: str = "myonboarding.com"
    base_domain_ca: str = "myonboarding.ca"
    # True in production: join links read https://{subdomain}.{base_domain}/join,
    # otherwise {public_base_url}/t/{subdomain}/join.
    host_based_links: bool = False
    sender_email: str = "invitations@myonboarding.com"
    # Every email reads "<lender> via <platform_name>": a lender can never pose as someone else outright.
    platform_name: str = Field(default="MyOnboarding", min_length=1, max_length=40)

    # ARNs of the secrets this function reads, by Secret.name, from each Secret's own variable (never a value).
    secret_arns: dict[str, str] = Field(default_factory=_secret_arns_from_environment)
    # The public lender sign-up (POST /v1/tenants, /signup) per client IP.
    lender_signups_per_ip_per_hour: int = 10
    # A new lender's messages reach only its own address until its admin email is confirmed.
    lender_verification_required: bool = True
    # No SMS 21:00-08:00 in the recipient's time zone (held until 08:00 there).
    sms_quiet_hours: bool = True
    # Platform ceilings of a lender's daily quotas (domain/sending.py ramps up to them).
    email_daily_cap: int = Field(default=10_000, ge=0)
    sms_daily_cap: int = Field(default=2_000, ge=0)
    invitation_resend_cooldown_seconds: int = 60
    invitation_max_sends: int = 10
    # SES feedback: a transiently bounced email is sent again after this delay, at most this many times.
    transient_bounce_retry_delay_seconds: int = Field(default=900, ge=0, le=900)
    transient_bounce_max_retries: int = 3
    # Outbound webhooks: exponential backoff from the base, each wait capped, for the whole window, then the DLQ.
    webhook_retry_base_seconds: int = 60
    webhook_retry_max_interval_seconds: int = 6 * 3600
    webhook_retry_window_seconds: int = 24 * 3600
    webhook_connect_timeout_seconds: float = 3.0
    webhook_read_timeout_seconds: float = 10.0
    # How long a function keeps a secret's value (SecretStore): a value put with put-secret-value is in use within it.
    secret_cache_seconds: int = Field(default=300, ge=0)
    # Inbound partner webhooks: after put-secret-value, a signature made with the secret's previous version
    # (AWSPREVIOUS) is still accepted this long after the new version was created (partners' retries, in-flight calls).
    webhook_secret_overlap_seconds: int = Field(default=24 * 3600, ge=0)
    # A signature that no cached version accepts re-reads the secret, at most once per this many seconds per secret
    # (so forged calls cannot cost a Secrets Manager call each).
    webhook_secret_refresh_seconds: int = Field(default=30, ge=1)
    # Send the pre-Standard-Webhooks X-Onboarding-Signature header next to webhook-signature: for one release,
    # while lenders move their verification to a Standard Webhooks library; then the default becomes False.
    webhook_legacy_signature: bool = True

    # Each provider's settings, ``<key>_<name>`` (``plaid_client_id`` from PLAID_CLIENT_ID), as its registry entry
    # declares them (chalicelib/domain/providers.py); code reads them with :meth:`partner`. Their secrets: SECRETS.
    __annotations__.update(dict.fromkeys(_partner_defaults(), "str"))
    locals().update(_partner_defaults())

    def partner(self, key: str, name: str) -> str:
        """Provider ``key``'s setting ``name`` (declared in its registry entry)."""
        return str(getattr(self, f"{key}_{name}"))

    @model_validator(mode="after")
    def _production_needs_real_partner_ids(self) -> Settings:
        """Outside the local stages, refuse to start (at cold start) on an empty or placeholder partner id. Secrets
        are checked when they are read (``SecretStore.get``): a function gets only the ARNs of those it reads."""
        if self.is_local:
            return self
        missing = []
        for name in PRODUCTION_PARTNER_IDS:
            value = str(getattr(self, name)).strip()
            if not value or value.startswith("local-"):  # every local placeholder starts with "local-"
                missing.append(name.upper())
        if missing:
            raise ValueError(f"production needs real values for: {', '.join(missing)}")
        return self

    @property
    def endpoint_url(self) -> str | None:
        return str(self.aws_endpoint_url).rstrip("/") if self.aws_endpoint_url else None

    @property
    def is_local(self) -> bool:
        return self.stage in ("local", "test")

    @property
    def secure_cookies(self) -> bool:
        """Cookies are Secure and named ``__Host-<name>`` (chalicelib/api/forms.py) wherever pages are served over
        https: always outside the local stages (API Gateway answers https only), and locally when the public base URL
        is https. Over plain http (``make run``, the test client) they keep plain names: Chromium keeps a Secure cookie
        from http://127.0.0.1 or http://localhost, but Python's cookie jar (requests, the e2e tests) and other hosts
        never send one back over http."""
        return not self.is_local or self.public_base_url.scheme == "https"

    @cached_property
    def urls(self) -> PublicUrls:
        """Every public address (portal, join page, console, accounts, webhooks): chalicelib/urls.py."""
        from chalicelib.urls import PublicUrls

        return PublicUrls(self)


def local_stage() -> bool:
    """Whether this process runs on the embedded stack; read at import time to decide which routes exist."""
    return os.environ.get("STAGE", "prod").lower() in ("local", "test")


class ConfigurationError(RuntimeError):
    """The deployment's settings are invalid: a server error, never the client's fault."""


class SecretNotSet(ConfigurationError):
    """A secret this deployment has not set up (no ARN for this function, or still a placeholder or unusable value):
    whatever needs it is not configured here. A secret that could not be *read* is a plain ConfigurationError."""


@cache
def get_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from exc
