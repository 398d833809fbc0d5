"""Lender notifications (the red icon) and the webhook events and deliveries they become."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field

from chalicelib.domain.model import Model


class NotificationType(StrEnum):
    COMPLETION = "completion"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    OPT_OUT = "opt_out"
    WATERFALL_EXHAUSTED = "waterfall_exhausted"
    SENDING_PAUSED = "sending_paused"
    FINANCIAL_DATA_READY = "financial_data_ready"


# What each notification is called in a webhook event's ``type``.
WEBHOOK_EVENT_TYPES: dict[NotificationType, str] = {
    NotificationType.COMPLETION: "invitation.completed",
    NotificationType.BOUNCE: "invitation.bounced",
    NotificationType.COMPLAINT: "invitation.complained",
    NotificationType.OPT_OUT: "invitation.sms_opted_out",
    NotificationType.WATERFALL_EXHAUSTED: "invitation.bank_link_exhausted",
    NotificationType.SENDING_PAUSED: "lender.sending_paused",
    NotificationType.FINANCIAL_DATA_READY: "invitation.financial_data_ready",
}


class Notification(Model):
    notification_id: str
    type: NotificationType
    invitation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    read: bool = False
    created_at: datetime
    read_at: datetime | None = None


class NotificationQuery(Model):
    model_config = ConfigDict(extra="forbid")

    type: NotificationType | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2000)


class NotificationPage(Model):
    items: list[Notification] = Field(description="Unread first, then read; newest first within each")
    unread_count: int = Field(description="All unread notifications of the lender, whatever the filter")
    next_cursor: str | None = None


class WebhookEvent(Model):
    """The JSON body a lender's endpoint receives."""

    id: str = Field(examples=["evt_5f0c2b8e9d7a4c1b3e6f8a9d0c1b2e3f"])
    type: str = Field(examples=["invitation.bounced"])
    created_at: datetime
    data: dict[str, Any]


class WebhookDelivery(Model):
    """One attempt to deliver one event, and the answer it got."""

    delivery_id: str
    event_id: str
    event_type: str
    attempt: int
    trigger: Literal["automatic", "redelivery"]
    url: str
    ok: bool
    status_code: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    response_excerpt: str | None = None
    next_retry_at: datetime | None = None
    created_at: datetime


class WebhookDeliveryQuery(Model):
    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2000)


class WebhookDeliveryPage(Model):
    items: list[WebhookDelivery]
    next_cursor: str | None = None


class Redelivery(Model):
    event_id: str
    queued: bool = True


class RotateWebhookSecret(Model):
    model_config = ConfigDict(extra="forbid")

    previous_valid_for_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the secret being replaced still signs events (0 retires it now)",
    )


class WebhookSecretInfo(Model):
    secret_id: str
    prefix: str = Field(description="Enough to recognise a secret, never enough to use it")
    created_at: datetime
    expires_at: datetime | None = None


class WebhookSecretCreated(WebhookSecretInfo):
    secret: str = Field(description="Shown once: store it now; events are signed with it from now on")
    previous_expires_at: datetime | None = None


class WebhookSecretList(Model):
    items: list[WebhookSecretInfo]


class PortalEvent(Model):
    """A message on the portal-events queue (published by the portal when the customer submits)."""

    model_config = ConfigDict(extra="ignore")

    type: str
    event_id: str = Field(min_length=1, max_length=200)
    tenant_id: str = Field(min_length=1)
    invitation_id: str = Field(min_length=1)
    at: datetime | None = None


class WebhookMessage(Model):
    """A message on the webhooks queue: one attempt of one event."""

    type: Literal["webhook"] = "webhook"
    tenant_id: str
    event_id: str
    attempt: int = Field(default=1, ge=1)
    run: str = "auto"
    retry: bool = True
    first_attempt_at: datetime | None = None
    not_before: datetime | None = None


def backoff_seconds(attempt: int, base: int, cap: int) -> int:
    """Wait after failed attempt ``attempt`` (1-based): base, 2 x base, 4 x base ... capped."""
    return int(min(cap, base * 2 ** max(0, attempt - 1)))
