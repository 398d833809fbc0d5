"""Lender notifications: raised by inbound events (completion, bounce, complaint, SMS opt-out,
bank-link waterfall exhausted), listed unread first, marked read; each one also becomes a webhook
event when the lender has a ``webhook_url``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from chalicelib.domain import ids
from chalicelib.domain.invitation import utcnow
from chalicelib.domain.notifications import Notification, NotificationPage, NotificationQuery, NotificationType
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.notifications import NotificationRepository
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.webhooks_out import WebhookService


def notification_id_for(tenant_id: str, key: str) -> str:
    """The same (tenant, key) always names the same notification: a redelivered event raises it once."""
    return "ntf_" + hashlib.sha256(f"{tenant_id}\n{key}".encode()).hexdigest()[:26]


class NotificationService:
    def __init__(self, repo: NotificationRepository, webhooks: WebhookService | None = None) -> None:
        self.repo = repo
        self.webhooks = webhooks

    def notify(
        self,
        tenant_id: str,
        type: NotificationType | str,
        invitation_id: str | None,
        data: dict[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> Notification:
        """Raise a notification for the lender (and queue its webhook event).

        ``key`` makes the call idempotent: give the id of the event that caused it (an SQS message
        id, an execution name ...) and a redelivery raises nothing new, though the webhook event is
        queued again in case the first attempt was lost (the webhook worker sends it once).
        ``data`` must hold no personal data (no email, phone or name): it is shown in the API and
        sent to the lender's webhook. Raises ValidationFailed for an unknown type, UpstreamError.
        """
        try:
            kind = NotificationType(type)
        except ValueError as exc:
            raise ValidationFailed(f"unknown notification type {type!r}", fields={"type": "unknown"}) from exc
        notification = Notification(
            notification_id=notification_id_for(tenant_id, key) if key else ids.new_id("ntf"),
            type=kind,
            invitation_id=invitation_id,
            data=dict(data or {}),
            created_at=utcnow(),
        )
        stored, created = self.repo.create(tenant_id, notification)
        logger.info(
            "Notification raised" if created else "Notification already raised",
            extra={"tenant_id": tenant_id, "notification_id": stored.notification_id, "type": kind.value},
        )
        if self.webhooks is not None:
            self.webhooks.publish(tenant_id, stored)
        return stored

    def list(self, tenant: Tenant, query: NotificationQuery) -> NotificationPage:
        items, cursor = self.repo.page(
            tenant.tenant_id, query.type.value if query.type else None, query.limit, query.cursor
        )
        return NotificationPage(items=items, unread_count=self.repo.unread_count(tenant.tenant_id), next_cursor=cursor)

    def unread_count(self, tenant: Tenant) -> int:
        """The number on the console's bell."""
        return self.repo.unread_count(tenant.tenant_id)

    def mark_read(self, tenant: Tenant, notification_id: str) -> Notification:
        found = self.repo.get(tenant.tenant_id, notification_id) if notification_id.startswith("ntf_") else None
        if found is None:
            raise NotFound("no such notification")
        return self.repo.mark_read(tenant.tenant_id, found, utcnow())
