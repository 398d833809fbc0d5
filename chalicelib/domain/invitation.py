"""Invitations: the lender's record of one customer, its statuses and the rules that govern them.

Plain Python, no I/O: every rule here tests in microseconds.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chalicelib.domain.model import Model
from chalicelib.domain.providers import BankingIntegration, describe_integrations
from chalicelib.domain.tenant import Locale
from chalicelib.errors import Conflict, DeliveryRefused, RateLimited

RESEND_COOLDOWN_SECONDS = 60
MAX_SENDS = 10


class Status(StrEnum):
    """The customer's relationship with the lender: PENDING (invited, has not joined yet), JOINED
    (followed the invitation: signed up with a password, or submitted the portal through the emailed
    link; see joined_via), INACTIVE (removed by the lender). Progress through the portal is
    portal_status (not_started, opened, bank_linked, documents_uploaded, completed)."""

    PENDING = "PENDING"
    JOINED = "JOINED"
    INACTIVE = "INACTIVE"


class JoinedVia(StrEnum):
    """How a JOINED customer followed the invitation: ``portal`` (submitted through the emailed link,
    no password yet; they may still create an account) or ``sign_up`` (has an account and password)."""

    PORTAL = "portal"
    SIGN_UP = "sign_up"


class DeliveryStatus(StrEnum):
    NOT_SENT = "not_sent"
    QUEUED = "queued"
    # The send worker holds it (admin email not confirmed, quiet hours, today's quota): it goes later by itself.
    HELD = "held"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    OPTED_OUT = "opted_out"
    FAILED = "failed"


class PortalStatus(StrEnum):
    NOT_STARTED = "not_started"
    OPENED = "opened"
    BANK_LINKED = "bank_linked"
    DOCUMENTS_UPLOADED = "documents_uploaded"
    COMPLETED = "completed"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"

    @property
    def uses_email(self) -> bool:
        return self in (Channel.EMAIL, Channel.BOTH)

    @property
    def uses_sms(self) -> bool:
        return self in (Channel.SMS, Channel.BOTH)


class Source(StrEnum):
    LENDER = "lender"
    IMPORT = "import"
    SELF_SIGNUP = "self_signup"


def normalise_email(value: str) -> str:
    """Validate with email-validator (syntax only: no DNS at request time) and normalise."""
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return info.normalized.lower()


def normalise_phone(value: str, default_region: str = "US") -> str:
    """Any reasonable phone notation -> E.164 (``+15145550123``), via phonenumbers."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    from chalicelib.domain.sms import NEVER_SMS, number_kind

    kind = number_kind(number)  # what phone_kind(e164) finds, without parsing the number again
    if kind in NEVER_SMS:
        raise ValueError(f"is a {kind.replace('_', '-')} number: only a mobile number can receive our SMS")
    return e164


def business_key(name: str | None) -> str:
    """How two business legal names compare: case, accents, punctuation and spacing ignored."""
    if not name:
        return "-"
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", folded) or "-"


class InvitationFields(Model):
    """The customer data a lender provides; shared by create, edit and CSV import."""

    # An owner is required as text or as a staff member's id (the field descriptions say so; a schema-level
    # anyOf would say it too, but generated clients then lose the model): the examples show both forms.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"email": "jane@smallbiz.com", "owner": "Olivia Officer"},
                {"email": "jane@smallbiz.com", "owner_staff_id": "stf_01JD0000000000000000000000"},
            ]
        },
    )

    email: str = Field(max_length=254, examples=["jane@smallbiz.com"])
    # Before owner: owner is required only without it.
    owner_staff_id: str | None = Field(
        default=None,
        pattern=r"^stf_[0-9A-Za-z]{1,40}$",
        description="The staff member (an active console user of the lender) responsible for this customer, as "
        "chosen in the console; owner then holds their name. Give it or owner",
    )
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        validate_default=True,
        description="Relationship manager or loan officer responsible, as free text (e.g. from a CRM); "
        "required unless owner_staff_id is given, which takes precedence",
    )
    first_name: str | None = Field(default=None, max_length=80)
    last_name: str | None = Field(default=None, max_length=80)
    # Before phone: the phone's check depends on the channel.
    channel: Channel = Channel.EMAIL
    phone: str | None = Field(
        default=None,
        max_length=32,
        description="Normalised to E.164. Premium-rate, toll-free, shared-cost, VoIP and similar numbers are "
        "refused; a fixed line is kept but cannot be used with channel sms or both",
    )
    business_legal_name: str | None = Field(default=None, max_length=200)
    banking_integration: BankingIntegration | None = Field(default=None, json_schema_extra=describe_integrations)
    locale: Locale | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value)

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not info.data.get("owner_staff_id"):
            raise ValueError("is required")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        e164 = normalise_phone(value)
        channel = info.data.get("channel")
        if isinstance(channel, Channel) and channel.uses_sms:
            from chalicelib.domain.sms import SMS_CAPABLE, phone_kind

            if phone_kind(e164) not in SMS_CAPABLE:
                raise ValueError("is a fixed-line number: it cannot receive SMS (use a mobile number, or email)")
        return e164

    @field_validator("first_name", "last_name", "business_legal_name")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _channel_needs_phone(self) -> InvitationFields:
        if self.channel.uses_sms and not self.phone:
            raise ValueError("phone is required when channel is sms or both")
        return self


class CreateInvitation(InvitationFields):
    send: bool = Field(default=True, description="false creates the invitation as PENDING without sending")


class EditInvitation(Model):
    """PATCH body: only the fields present change. ``send`` re-sends with the edited data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str | None = Field(default=None, max_length=254)
    owner: str | None = Field(
        default=None, min_length=1, max_length=120, description="A free-text owner (clears owner_staff_id)"
    )
    owner_staff_id: str | None = Field(
        default=None, pattern=r"^stf_[0-9A-Za-z]{1,40}$", description="A staff member as owner (sets owner)"
    )
    first_name: str | None = Field(default=None, max_length=80)
    last_name: str | None = Field(default=None, max_length=80)
    phone: str | None = Field(default=None, max_length=32)
    business_legal_name: str | None = Field(default=None, max_length=200)
    banking_integration: BankingIntegration | None = None
    channel: Channel | None = None
    locale: Locale | None = None
    send: bool = False
    expected_version: int | None = Field(default=None, ge=1, description="Optimistic lock: the version you edited")


class Invitation(Model):
    invitation_id: str
    tenant_id: str
    email: str
    owner: str = Field(
        description="Who is responsible: free text from the API, or the name the staff member "
        "of owner_staff_id had when assigned (the console shows their current name)"
    )
    owner_staff_id: str | None = Field(
        default=None, description="Set when the owner is one of the lender's staff; null for a free-text owner"
    )
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    business_legal_name: str | None = None
    banking_integration: BankingIntegration
    channel: Channel
    locale: Locale
    status: Status = Field(
        default=Status.PENDING,
        description="PENDING: invited, has not joined yet. JOINED: signed up with a password, or submitted "
        "the portal through the emailed link (joined_via). INACTIVE: removed with DELETE /v1/customers/{id}. "
        "Progress through the portal is portal_status; delivery of the messages is delivery_status.",
    )
    delivery_status: DeliveryStatus = DeliveryStatus.NOT_SENT
    portal_status: PortalStatus = Field(
        default=PortalStatus.NOT_STARTED,
        description="Progress through the portal: not_started, opened, bank_linked, documents_uploaded, completed",
    )
    source: Source = Source.LENDER
    created_at: datetime
    updated_at: datetime
    joined_at: datetime | None = None
    joined_via: JoinedVia | None = Field(
        default=None,
        description="How a JOINED customer followed the invitation: portal (submitted through the emailed link, "
        "no password) or sign_up (created an account with a password); null while PENDING",
    )
    version: int = 1
    send_count: int = 0
    last_send_requested_at: datetime | None = None
    link_version: int = 0
    link_expires_at: datetime | None = None
    # Random per-link nonce; the link token is derived from it with the server's link key, so the
    # database alone cannot produce a working link. Never shown in the API.
    link_nonce: str | None = Field(default=None, exclude=True)
    account_subdomain: str | None = None
    contact_confirmed_at: datetime | None = Field(
        default=None, description="When the customer last confirmed their contact details on the portal"
    )

    @property
    def display_name(self) -> str:
        names = " ".join(n for n in (self.first_name, self.last_name) if n)
        return names or self.business_legal_name or ""

    # --- rules ------------------------------------------------------------------------------------
    def ensure_editable(self) -> None:
        if self.status is not Status.PENDING:
            raise Conflict(
                f"this invitation is {self.status.value}: only PENDING invitations can be edited, "
                "because the customer's own account now holds their data"
            )

    @property
    def open_for_sign_up(self) -> bool:
        """A password sign-up may still attach to this invitation: PENDING, or JOINED through the
        portal alone (the customer submitted by the emailed link and has no password yet)."""
        return self.status is Status.PENDING or (self.status is Status.JOINED and self.joined_via is JoinedVia.PORTAL)

    def joined(self, via: JoinedVia, now: datetime) -> Invitation:
        """This invitation once the customer followed it ``via`` the portal or a sign-up; the first
        join's time is kept."""
        return self.model_copy(update={"status": Status.JOINED, "joined_at": self.joined_at or now, "joined_via": via})

    def ensure_deletable(self, submitted: bool = False) -> None:
        """Only an invitation nothing came back through may be deleted (with all it holds); a customer
        who joined or submitted is removed instead, which keeps an INACTIVE record and its history."""
        if self.status is Status.INACTIVE:
            raise Conflict(
                "this customer was removed: the INACTIVE record and its history are kept",
                fields={"status": self.status.value},
            )
        if self.status is Status.JOINED or submitted:
            raise Conflict(
                "the customer has joined or submitted their application, and an invitation is deleted only "
                f"while nothing was submitted: remove the customer with DELETE /v1/customers/{self.invitation_id}, "
                "which revokes their access and keeps an INACTIVE record and its history",
                fields={"status": self.status.value},
            )

    def ensure_resendable(
        self, now: datetime, cooldown: int = RESEND_COOLDOWN_SECONDS, max_sends: int = MAX_SENDS
    ) -> None:
        """Raise unless a new send may go out now."""
        if self.status is not Status.PENDING:
            raise Conflict(f"this invitation is {self.status.value}: only PENDING invitations are sent")
        if self.send_count >= max_sends:
            raise DeliveryRefused(f"this invitation was already sent {self.send_count} times, the most allowed")
        if self.last_send_requested_at is not None:
            wait = cooldown - (now - self.last_send_requested_at).total_seconds()
            if wait > 0:
                raise RateLimited(
                    f"this invitation was just sent; try again in {int(wait) + 1} seconds", retry_after=int(wait) + 1
                )

    def link_expired(self, now: datetime) -> bool:
        return self.link_expires_at is None or self.link_expires_at <= now


def search_text(inv: Invitation) -> str:
    """What a search by email or name matches: names, business name and email, lowercased."""
    parts = (inv.first_name, inv.last_name, inv.business_legal_name, inv.email)
    return " ".join(" ".join(p.split()) for p in parts if p).lower()


def link_expiry(now: datetime, ttl_days: int) -> datetime:
    return now + timedelta(days=ttl_days)


def utcnow() -> datetime:
    return datetime.now(UTC)


# The purpose a portal link's token is derived and stored with (links.derive_token, the link-token item).
PORTAL_LINK = "portal"


class PortalToken(Model):
    """A portal link as stored, by the hash of its token: which invitation it opens. A ``replaced`` one (rotated)
    is kept a while so an old link still finds its customer for "send me a fresh link"."""

    tenant_id: str
    invitation_id: str
    replaced: bool = False
    expires_at: int | None = None


class InvitationEvent(Model):
    """One line of an invitation's history."""

    type: str
    actor: str
    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class CommunicationStatus(StrEnum):
    """A message's outcome: what the send worker wrote, then what SES feedback said of it."""

    SENT = "sent"
    REFUSED = "refused"
    OPTED_OUT = "opted_out"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    SOFT_BOUNCED = "soft_bounced"
    COMPLAINED = "complained"
    REJECTED = "rejected"


# How far a message's outcome has got. The send worker writes the first rank, SES feedback the
# later ones; a write may replace an outcome of its own rank or below, never a later one (a retried
# send replays "sent" after the bounce arrived).
_COMMUNICATION_RANK = {
    # A held message's entry, then what became of it: sent, or closed unsent (a newer message replaced
    # it, or the customer no longer needed it).
    "deferred": 0,
    "replaced": 0,
    "not_needed": 0,
    CommunicationStatus.SENT: 0,
    CommunicationStatus.REFUSED: 0,
    CommunicationStatus.OPTED_OUT: 0,
    "suppressed": 0,
    "failed": 0,
    CommunicationStatus.SOFT_BOUNCED: 1,
    CommunicationStatus.DELIVERED: 2,
    CommunicationStatus.BOUNCED: 3,
    CommunicationStatus.COMPLAINED: 3,
    CommunicationStatus.REJECTED: 3,
}


def communication_rank(status: str) -> int:
    return _COMMUNICATION_RANK.get(status, 0)


def replaceable_outcomes(status: str) -> list[str]:
    """The stored outcomes a write of ``status`` may replace (its own rank and below)."""
    rank = communication_rank(status)
    return sorted({str(s) for s, r in _COMMUNICATION_RANK.items() if r <= rank})


class Communication(Model):
    """One email or SMS in the communication log."""

    communication_id: str
    invitation_id: str
    send_id: str
    channel: str
    recipient: str = Field(description="Masked")
    template: str
    provider_message_id: str | None = None
    status: str
    created_at: datetime
    updated_at: datetime
    detail: str | None = None
