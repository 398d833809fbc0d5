"""Lenders (tenants), their settings and the rules for subdomains."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, ConfigDict, EmailStr, Field, field_validator

from chalicelib.domain.model import Model
from chalicelib.domain.providers import BankingIntegration, Provider, default_order, known
from chalicelib.domain.sending import SendingState
from chalicelib.domain.sending_domain import SendingDomain

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

RESERVED_SUBDOMAINS = frozenset(
    {
        "www",
        "api",
        "admin",
        "app",
        "apps",
        "mail",
        "email",
        "smtp",
        "ftp",
        "static",
        "assets",
        "cdn",
        "auth",
        "login",
        "signup",
        "join",
        "portal",
        "dev",
        "test",
        "staging",
        "status",
        "support",
        "help",
        "docs",
        "billing",
        "dashboard",
        "root",
        "system",
        "webhooks",
        "ns1",
        "ns2",
        "localhost",
    }
)


def validate_subdomain(value: str) -> str:
    """Normalise and check a subdomain: a DNS label (RFC 1123), 3 to 63 characters, not reserved."""
    candidate = value.strip().lower()
    if len(candidate) < 3 or not _DNS_LABEL.match(candidate):
        raise ValueError(
            "must be 3 to 63 lowercase letters, digits or hyphens, starting and ending with a letter or digit"
        )
    if "--" in candidate[2:4]:
        raise ValueError("must not contain '--' at positions 3-4 (reserved for internationalised names)")
    if candidate in RESERVED_SUBDOMAINS:
        raise ValueError(f"'{candidate}' is reserved, please choose another")
    return candidate


def display_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be the display name of an email's From header, or None when it can.

    A line break would end the header (and every send of the lender would fail); a name that carries an address
    (``Acme" <ceo@acme.com>``) would show the customer a sender we did not send from.
    """
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        return "must not contain control characters (line breaks, tabs)"
    if any(c in value for c in "<>@"):
        return "must be a plain name, without @, < or > (it is shown as the sender of emails)"
    return None


def validate_display_name(value: str | None) -> str | None:
    problem = None if value is None else display_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Subdomain = Annotated[str, Field(min_length=1, max_length=63, examples=["acme-lending"])]


class DataResidency(StrEnum):
    US = "us"
    CA = "ca"


Locale = Literal["en", "fr"]
HexColour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#1f4e79"])]


class Branding(Model):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=120)
    logo_url: AnyHttpUrl | None = None
    colour: HexColour = "#1f4e79"

    @property
    def shown_logo_url(self) -> str | None:
        """The logo pages and emails show: https only (a logo saved over http before that rule is left out)."""
        return str(self.logo_url) if self.logo_url is not None and self.logo_url.scheme == "https" else None


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def https_only(value: AnyHttpUrl | None, *, loopback_http: bool = False) -> AnyHttpUrl | None:
    """An address a lender gives must be https. ``loopback_http``: http is also accepted for a loopback host
    (a receiver on the developer's machine); the webhook sender refuses loopback addresses outside the local
    stage, so such an address never reaches anything in production."""
    if value is None or value.scheme == "https":
        return value
    if loopback_http and (value.host or "").lower() in LOOPBACK_HOSTS:
        return value
    raise ValueError("must be an https:// address")


class BrandingInput(Branding):
    """Branding as a lender sends it: its display name is also the From name of every email (when no sender_name),
    and its logo is https (it is shown in pages and emails).

    Stored branding is read back as :class:`Branding`, without these rules, so a value saved before still loads.
    """

    @field_validator("logo_url")
    @classmethod
    def _https_logo(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        return https_only(value)

    @field_validator("display_name")
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        return validate_display_name(value)


def distinct_providers(value: list[Provider]) -> list[Provider]:
    """Each provider at most once (so the list is never longer than the registry)."""
    if len(set(value)) != len(value):
        raise ValueError("each provider may appear only once")
    return value


def _at_most_every_provider(schema: dict[str, Any]) -> None:
    """The documented ``maxItems`` of a provider list: the registry's size when the document is made."""
    target = next((s for s in schema.get("anyOf", []) if s.get("type") == "array"), schema)
    target["maxItems"] = len(known())


class TenantSettings(Model):
    """What a lender can change at ``/v1/tenant/settings``; the defaults are what a new lender gets."""

    model_config = ConfigDict(extra="forbid")

    require_invitation: bool = True
    require_email_confirmation: bool = True
    default_banking_integration: BankingIntegration = BankingIntegration.WATERFALL
    provider_order: list[Provider] = Field(
        default_factory=default_order, min_length=1, json_schema_extra=_at_most_every_provider
    )
    invitation_ttl_days: int = Field(default=14, ge=1, le=90)
    locale: Locale = "en"
    sender_name: str | None = Field(default=None, max_length=80)
    reply_to: EmailStr | None = None
    branding: Branding = Field(default_factory=Branding)
    webhook_url: AnyHttpUrl | None = None
    financial_history_days: int = Field(
        default=90, ge=1, le=730, description="Days of transactions fetched after a bank link"
    )

    @field_validator("provider_order")
    @classmethod
    def _no_repeats(cls, value: list[Provider]) -> list[Provider]:
        return distinct_providers(value)


class TenantSettingsPatch(Model):
    """A partial update: only the fields present are changed."""

    model_config = ConfigDict(extra="forbid")

    require_invitation: bool | None = None
    require_email_confirmation: bool | None = None
    default_banking_integration: BankingIntegration | None = None
    provider_order: list[Provider] | None = Field(default=None, min_length=1, json_schema_extra=_at_most_every_provider)
    invitation_ttl_days: int | None = Field(default=None, ge=1, le=90)
    locale: Locale | None = None
    sender_name: str | None = Field(default=None, max_length=80)
    reply_to: EmailStr | None = None
    branding: BrandingInput | None = None
    webhook_url: AnyHttpUrl | None = None
    financial_history_days: int | None = Field(default=None, ge=1, le=730)

    @field_validator("provider_order")
    @classmethod
    def _no_repeats(cls, value: list[Provider] | None) -> list[Provider] | None:
        return None if value is None else distinct_providers(value)

    @field_validator("webhook_url")
    @classmethod
    def _https_webhook(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        return https_only(value, loopback_http=True)

    @field_validator("sender_name")
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        return validate_display_name(value)

    def apply(self, current: TenantSettings) -> TenantSettings:
        changes = self.model_dump(exclude_unset=True)
        merged = current.model_dump() | changes
        return TenantSettings.model_validate(merged)


class Tenant(Model):
    tenant_id: str
    name: str
    subdomain: str
    admin_email: str
    data_residency: DataResidency
    created_at: datetime
    settings: TenantSettings = Field(default_factory=TenantSettings)
    sending: SendingState = Field(
        default_factory=SendingState,
        description="The lender's standing as a sender: verification, pauses and suspensions, with reasons",
    )
    sending_domain: SendingDomain | None = Field(
        default=None, description="The lender's own sending domain, once registered (/v1/tenant/sending-domain)"
    )

    @property
    def display_name(self) -> str:
        return self.settings.branding.display_name or self.name


class ApiKey(Model):
    key_id: str
    tenant_id: str
    prefix: str
    label: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None
