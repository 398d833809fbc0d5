"""Bank-link sessions and partner outcomes: plain models, no I/O.

A provider adapter turns a partner's webhook into one :class:`ProviderOutcome`; the waterfall decides what
to do with it. ``detail`` is for the history a loan officer reads: a partner status or error code, never
personal data, tokens or partner free text.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from chalicelib.domain.model import Model
from chalicelib.domain.providers import Provider


class ErrorClass(StrEnum):
    """Why a provider attempt failed; the state machine's Catch branches on these names."""

    INSTITUTION_NOT_SUPPORTED = "institution_not_supported"
    USER_EXITED = "user_exited"
    PROVIDER_ERROR = "provider_error"
    TIMEOUT = "timeout"


class LinkSession(Model):
    """A partner-hosted page where the customer links a bank account."""

    model_config = ConfigDict(frozen=True)

    provider: Provider
    # The id the partner's webhooks carry back (Plaid link_token, our Finicity session id, MX user guid).
    session_id: str = Field(min_length=1)
    link_url: str = Field(min_length=1)
    expires_at: datetime | None = None


class ProviderOutcome(Model):
    """A verified, normalised webhook: the session either linked or failed for one reason."""

    model_config = ConfigDict(frozen=True)

    provider: Provider
    session_id: str = Field(min_length=1)
    # Dedupe key of this delivery's effect: the same event delivered twice carries the same id.
    event_id: str = Field(min_length=1)
    linked: bool
    error_class: ErrorClass | None = None
    detail: str | None = Field(default=None, max_length=200)
    # What reaches the linked data (Plaid public token, Finicity customer id, MX ``user/member`` guids):
    # stored with the attempt for the data step, never logged nor put in history.
    credential: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _linked_xor_error(self) -> ProviderOutcome:
        if self.linked == (self.error_class is not None):
            raise ValueError("an outcome is either linked or carries an error class, not both or neither")
        return self


class CustomerInfo(Model):
    """What a partner needs to open a session for the customer (sent to the partner, never logged)."""

    model_config = ConfigDict(frozen=True)

    invitation_id: str
    tenant_id: str
    email: str
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str = "en"


def linked(
    provider: Provider, session_id: str, event_id: str, detail: str | None = None, credential: str | None = None
) -> ProviderOutcome:
    return ProviderOutcome(
        provider=provider, session_id=session_id, event_id=event_id, linked=True, detail=detail, credential=credential
    )


def failed(
    provider: Provider, session_id: str, event_id: str, error_class: ErrorClass, detail: str | None = None
) -> ProviderOutcome:
    return ProviderOutcome(
        provider=provider,
        session_id=session_id,
        event_id=event_id,
        linked=False,
        error_class=error_class,
        detail=detail,
    )
