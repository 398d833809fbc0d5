"""Bank-link waterfall and portal documents: the rules, with no I/O.

An *attempt* is one run of the waterfall (one Step Functions execution named
``<invitation_id>-<attempt>``); each of its *slots* is one provider tried in turn. A slot's
decision (linked, or failed with a reason) is recorded exactly once, by whoever closes it first:
the webhook (the customer finished at the provider), the link-request worker (the provider
refused to open a session, or the state machine reports a timeout through ``previous``) or the
``waterfall_exhausted`` message (the last slot).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, field_validator

from chalicelib.domain.invitation import PortalStatus
from chalicelib.domain.model import Model
from chalicelib.domain.providers import BankingIntegration, Provider

if TYPE_CHECKING:
    from chalicelib.domain.tenant import TenantSettings

# Error names a slot can fail with. The first three come from SendTaskFailure (webhook or worker),
# ``timeout`` from the state machine itself (States.Timeout / States.HeartbeatTimeout).
INSTITUTION_NOT_SUPPORTED = "institution_not_supported"
USER_EXITED = "user_exited"
PROVIDER_ERROR = "provider_error"
TIMEOUT = "timeout"
REASONS = (INSTITUTION_NOT_SUPPORTED, USER_EXITED, PROVIDER_ERROR, TIMEOUT)
# The worker's SendTaskFailure when the partner was down while opening a session: the state machine
# retries the same provider later, then moves on (recorded as provider_error).
PROVIDER_UNAVAILABLE = "Provider.Unavailable"
# What the state machine's provider step catches as the provider's own failure; anything else ends the
# execution as an infrastructure failure (infra/waterfall.asl.json, tests/unit/test_waterfall_asl.py).
PROVIDER_FAILURES = (
    INSTITUTION_NOT_SUPPORTED,
    USER_EXITED,
    PROVIDER_ERROR,
    PROVIDER_UNAVAILABLE,
    "States.Timeout",
    "States.HeartbeatTimeout",
)
# Execution statuses that end an attempt without the worker hearing of it (Broken's message lost, the
# top-level timeout, States.Runtime, a stop by hand): the customer's next click closes it as failed.
ENDED_WITHOUT_OUTCOME = ("FAILED", "TIMED_OUT", "ABORTED")


class AttemptState(StrEnum):
    RUNNING = "running"
    LINKED = "linked"
    EXHAUSTED = "exhausted"
    FAILED = "failed"  # the platform broke (not a provider's answer): the customer may start again


class SlotState(StrEnum):
    REQUESTED = "requested"  # the link request arrived, no provider session yet
    OPEN = "open"  # the customer can use the provider's link
    LINKED = "linked"
    FAILED = "failed"

    @property
    def closed(self) -> bool:
        return self in (SlotState.LINKED, SlotState.FAILED)


OPEN_SLOT_STATES = (SlotState.REQUESTED.value, SlotState.OPEN.value)


class AttemptRecord(Model):
    """A bank-link attempt as stored: one run of the waterfall (one Step Functions execution)."""

    tenant_id: str
    invitation_id: str
    attempt: int
    state: AttemptState
    providers: list[Provider]
    started_at: datetime
    execution_name: str
    # The execution's input, kept so a start whose StartExecution failed can be launched again unchanged.
    input: dict[str, Any]
    execution_arn: str | None = None
    ended_at: datetime | None = None
    linked_provider: Provider | None = None
    current_slot: int | None = None
    current_provider: Provider | None = None


class SlotRecord(Model):
    """One provider tried within an attempt, as stored; its decision is written once (``SlotDecision``)."""

    # A stored item that fails validation must not quote its task token or credential in the error (and the log).
    model_config = ConfigDict(hide_input_in_errors=True)

    tenant_id: str
    invitation_id: str
    attempt: int
    slot: int
    provider: Provider
    state: SlotState = SlotState.REQUESTED
    started_at: datetime | None = None
    # The provider session, once open (the webhook finds the slot by it through a ``SessionLookup``).
    session_id: str | None = None
    link_url: str | None = None
    session_expires_at: datetime | None = None
    task_token: str | None = Field(default=None, repr=False)
    # What the link webhook carried for the data step (Plaid's public token ...): never logged.
    credential: str | None = Field(default=None, repr=False)
    # The decision.
    reason: str | None = None
    detail: str | None = None
    decided_by: str | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None


class SlotDecision(Model):
    """What closing a slot writes: linked, or failed with a reason (``REASONS``)."""

    state: SlotState
    reason: str | None = None
    detail: str | None = None
    decided_by: str
    ended_at: datetime
    duration_seconds: float | None = None


class SessionLookup(Model):
    """A provider session's way back to its slot: a webhook names the session, never the lender."""

    tenant_id: str
    invitation_id: str
    attempt: int
    slot: int
    provider: Provider


def providers_for(banking_integration: BankingIntegration, settings: TenantSettings) -> list[Provider]:
    """``waterfall`` tries the lender's order; a chosen provider is tried alone."""
    if banking_integration == BankingIntegration.WATERFALL:
        order = list(dict.fromkeys(settings.provider_order))
        if not order:
            raise ValueError("provider_order must name at least one provider")
        return order
    return [Provider(banking_integration)]


def execution_input(
    tenant_id: str,
    invitation_id: str,
    attempt: int,
    providers: list[Provider],
    timeout_seconds: int,
    heartbeat_seconds: int,
) -> dict[str, Any]:
    """The state machine's input: the providers in order (the machine loops over them, however many)."""
    # Step Functions wants the heartbeat below the timeout; with a one-second timeout (tests) the
    # heartbeat cannot be smaller, so it is clamped to the timeout.
    heartbeat = min(heartbeat_seconds, timeout_seconds - 1) if timeout_seconds > 1 else timeout_seconds
    return {
        "tenant_id": tenant_id,
        "invitation_id": invitation_id,
        "attempt": attempt,
        "providers": [str(p) for p in providers],
        "timeout_seconds": timeout_seconds,
        "heartbeat_seconds": heartbeat,
        "last_error": None,  # the first provider's request forwards it as ``previous``
    }


def execution_name(invitation_id: str, attempt: int) -> str:
    """Deterministic: starting the same attempt twice returns the same execution."""
    return f"{invitation_id}-{attempt}"


def reason_from_error(error: dict[str, Any] | None) -> str:
    """A Catch's ``{"Error", "Cause"}`` -> the reason recorded in history."""
    name = str((error or {}).get("Error") or "")
    if name in (INSTITUTION_NOT_SUPPORTED, USER_EXITED, PROVIDER_ERROR):
        return name
    if name in ("States.Timeout", "States.HeartbeatTimeout", TIMEOUT):
        return TIMEOUT
    return PROVIDER_ERROR  # Provider.Unavailable after its retries, or an unnamed failure


def duration_seconds(started_at: datetime | None, ended_at: datetime) -> float | None:
    if started_at is None:
        return None
    return round(max(0.0, (ended_at - started_at).total_seconds()), 3)


_ORDER = list(PortalStatus)


def advance(current: PortalStatus, target: PortalStatus) -> PortalStatus | None:
    """The portal status only moves forward; None when ``target`` would not be progress."""
    return target if _ORDER.index(target) > _ORDER.index(current) else None


# --- documents ------------------------------------------------------------------------------------
MAX_DOCUMENT_BYTES = 25 * 1024 * 1024
DOCUMENT_TYPES = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "text/csv": (".csv",),
}


def safe_filename(name: str) -> str:
    """A file name safe in an S3 key and a Content-Disposition header: ASCII, no path, <= 100 chars."""
    base = re.split(r"[\\/]", name)[-1]
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._")
    if not cleaned:
        cleaned = "document"
    stem, dot, ext = cleaned.rpartition(".")
    if dot and len(ext) <= 10:
        return f"{stem[: 100 - len(ext) - 1]}.{ext}"
    return cleaned[:100]


def document_key(tenant_id: str, invitation_id: str, document_id: str, filename: str) -> str:
    return f"{document_object_prefix(tenant_id, invitation_id, document_id)}{safe_filename(filename)}"


def document_prefix(tenant_id: str, invitation_id: str) -> str:
    return f"tenants/{tenant_id}/invitations/{invitation_id}/"


def document_object_prefix(tenant_id: str, invitation_id: str, document_id: str) -> str:
    """Where one document's object (every version of it) is stored."""
    return f"{document_prefix(tenant_id, invitation_id)}{document_id}/"


class UploadRequest(Model):
    """What the customer wants to upload; the presigned POST enforces type and size again at S3."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    size: int = Field(gt=0, le=MAX_DOCUMENT_BYTES, description="Bytes; at most 25 MB")

    @field_validator("content_type")
    @classmethod
    def _allowed_type(cls, value: str) -> str:
        kind = value.split(";", 1)[0].strip().lower()
        if kind not in DOCUMENT_TYPES:
            raise ValueError("must be PDF, PNG, JPEG or CSV")
        return kind

    @field_validator("filename")
    @classmethod
    def _safe(cls, value: str) -> str:
        return safe_filename(value)


# --- read models ----------------------------------------------------------------------------------
class Decision(Model):
    """One provider's turn in an attempt."""

    slot: int
    provider: Provider
    outcome: str = Field(description="pending, linked or failed")
    reason: str | None = Field(
        default=None, description="institution_not_supported, user_exited, provider_error, timeout"
    )
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None


class Attempt(Model):
    attempt: int
    state: AttemptState
    providers: list[Provider]
    started_at: datetime
    ended_at: datetime | None = None
    execution_name: str
    linked_provider: Provider | None = None
    current_provider: Provider | None = None
    link_url: str | None = Field(default=None, description="The current provider's link while the attempt runs")
    decisions: list[Decision] = Field(default_factory=list)


class BankLinks(Model):
    invitation_id: str
    attempts: list[Attempt]


class Document(Model):
    document_id: str
    filename: str
    content_type: str
    size: int = Field(description="uploaded: the stored file's size in bytes; pending: the size declared when asking")
    state: str = Field(
        description="pending (upload URL issued) or uploaded; a pending upload whose URL expired without a "
        "file is no longer listed"
    )
    created_at: datetime
    uploaded_at: datetime | None = None
    download_url: str | None = None


class DocumentList(Model):
    items: list[Document]


class PresignedUpload(Model):
    document_id: str
    url: str
    fields: dict[str, str]
    max_bytes: int = MAX_DOCUMENT_BYTES
    expires_in: int
    complete_url: str


class DisconnectResult(Model):
    bank_link_items: int
    provider_sessions: int
    documents: int
    objects: int = Field(
        description="S3 object versions deleted: uploads, and fetched financial data (raw and normalised)"
    )
    financial_records: int = 0
    connections_revoked: int = Field(default=0, description="Provider connections revoked (Plaid /item/remove ...)")
    revoke_failed: list[Provider] = Field(
        default_factory=list,
        description="Providers whose revoke call failed; their connection is kept, so calling again retries it",
    )
