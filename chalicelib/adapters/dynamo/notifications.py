"""Persistence of lender notifications, webhook events, delivery attempts, webhook secrets, and the
markers that make inbound events (SES feedback, portal completions) take effect once.

Notifications live in the tenant's partition under ``NOTIF#U#...`` (unread) or ``NOTIF#R#...``
(read), so a newest-first query lists the unread ones first; a ``NOTIFREF#`` item finds one by id
and a counter item answers ``unread_count`` without counting. Reading one moves it in a single
transaction with the counter, so the count never drifts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.domain.notifications import Notification, WebhookDelivery, WebhookEvent
from chalicelib.errors import ConcurrentModification, Conflict

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.dynamo.invitations import Action
    from chalicelib.adapters.dynamo.table import Item, Table

# Inbound-event markers outlive any redelivery (SQS keeps a message at most 14 days).
MARKER_TTL_SECONDS = 30 * 24 * 3600


class NotificationRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- notifications ------------------------------------------------------------------------
    @staticmethod
    def _item(tenant_id: str, n: Notification) -> Item:
        data = n.model_dump(mode="json")
        data["notification_type"] = data.pop("type")
        return {"tenant_id": tenant_id, **data, "type": "notification"}

    @staticmethod
    def _model(item: Item) -> Notification:
        return Notification.model_validate({**item, "type": item["notification_type"]})

    def create(self, tenant_id: str, n: Notification) -> tuple[Notification, bool]:
        """Store an unread notification; returns (notification, created). An id that exists already
        (a redelivered event) returns the stored one and False."""
        created_at = n.created_at.isoformat()
        item = self._item(tenant_id, n)
        try:
            self.table.transact(
                [
                    self.table.t_put_new({**keys.notification_ref(tenant_id, n.notification_id), **item}),
                    self.table.t_put_new(
                        {**keys.notification(tenant_id, False, created_at, n.notification_id), **item}
                    ),
                    self.table.t_update(keys.notification_counter(tenant_id), {}, add={"unread": 1}),
                ]
            )
        except Conflict:
            existing = self.get(tenant_id, n.notification_id)
            if existing is None:
                raise
            return existing, False
        return n, True

    def get(self, tenant_id: str, notification_id: str) -> Notification | None:
        item = self.table.get(keys.notification_ref(tenant_id, notification_id), consistent=True)
        return self._model(item) if item else None

    def mark_read(self, tenant_id: str, current: Notification, at: datetime) -> Notification:
        """Move an unread notification to the read ones; already read is a no-op."""
        if current.read:
            return current
        after = current.model_copy(update={"read": True, "read_at": at})
        item = self._item(tenant_id, after)
        created_at = current.created_at.isoformat()
        try:
            self.table.transact(
                [
                    self.table.t_update(
                        keys.notification_ref(tenant_id, current.notification_id),
                        {"read": True, "read_at": at.isoformat()},
                        condition="#r = :unread",
                        names={"#r": "read"},
                        values={":unread": False},
                    ),
                    self.table.t_delete(keys.notification(tenant_id, False, created_at, current.notification_id)),
                    self.table.t_put(
                        {**keys.notification(tenant_id, True, created_at, current.notification_id), **item}
                    ),
                    self.table.t_update(keys.notification_counter(tenant_id), {}, add={"unread": -1}),
                ]
            )
        except Conflict:
            # Read concurrently by another request: the stored state is the answer.
            stored = self.get(tenant_id, current.notification_id)
            return stored if stored is not None else after
        return after

    def page(
        self, tenant_id: str, notification_type: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Notification], str | None]:
        items, next_cursor = self.table.page(
            keys.tenant_pk(tenant_id),
            cursor,
            limit,
            sk_prefix=keys.NOTIFICATION_PREFIX,
            newest_first=True,
            filters={"notification_type": notification_type} if notification_type else None,
        )
        return [self._model(i) for i in items], next_cursor

    def unread_count(self, tenant_id: str) -> int:
        item = self.table.get(keys.notification_counter(tenant_id), consistent=True)
        return max(0, int(item.get("unread", 0))) if item else 0

    # --- webhook events and deliveries --------------------------------------------------------
    def put_event(self, tenant_id: str, event: WebhookEvent, notification_id: str) -> bool:
        """Store an event once; False when it already existed."""
        try:
            self.table.put_new(
                {
                    **keys.webhook_event(tenant_id, event.id),
                    "type": "webhook_event",
                    "tenant_id": tenant_id,
                    "notification_id": notification_id,
                    "event": event.model_dump(mode="json"),
                }
            )
        except Conflict:
            return False
        return True

    def event(self, tenant_id: str, event_id: str) -> WebhookEvent | None:
        item = self.table.get(keys.webhook_event(tenant_id, event_id), consistent=True)
        return WebhookEvent.model_validate(item["event"]) if item else None

    def record_delivery(self, tenant_id: str, delivery: WebhookDelivery) -> None:
        self.table.put(
            {
                **keys.webhook_delivery(tenant_id, delivery.delivery_id),
                "type": "webhook_delivery",
                "tenant_id": tenant_id,
                **delivery.model_dump(mode="json"),
            }
        )

    def delivery(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None:
        item = self.table.get(keys.webhook_delivery(tenant_id, delivery_id), consistent=True)
        return WebhookDelivery.model_validate(item) if item else None

    def deliveries(
        self, tenant_id: str, event_id: str | None, limit: int, cursor: str | None
    ) -> tuple[list[WebhookDelivery], str | None]:
        items, next_cursor = self.table.page(
            keys.tenant_pk(tenant_id),
            cursor,
            limit,
            sk_prefix=keys.WEBHOOK_DELIVERY_PREFIX,
            newest_first=True,
            filters={"event_id": event_id} if event_id else None,
        )
        return [WebhookDelivery.model_validate(i) for i in items], next_cursor

    # --- webhook secrets ----------------------------------------------------------------------
    def secrets(self, tenant_id: str) -> tuple[list[dict[str, Any]], int]:
        """(secrets newest first, version); version 0 when none was ever created."""
        item = self.table.get(keys.webhook_secrets(tenant_id), consistent=True)
        if not item:
            return [], 0
        return list(item.get("secrets", [])), int(item.get("version", 0))

    def save_secrets(self, tenant_id: str, secrets: list[dict[str, Any]], expected_version: int) -> None:
        """Replace the secrets if nobody else did since ``expected_version``; raises ConcurrentModification."""
        item = {**keys.webhook_secrets(tenant_id), "type": "webhook_secrets", "secrets": secrets}
        if expected_version == 0:
            try:
                self.table.put_new({**item, "version": 1})
            except Conflict as exc:
                raise ConcurrentModification("the webhook secrets changed concurrently; retry") from exc
            return
        self.table.update(
            keys.webhook_secrets(tenant_id),
            {"secrets": secrets, "version": expected_version + 1},
            condition="#v = :v",
            names={"#v": "version"},
            values={":v": expected_version},
            conflict=lambda _: ConcurrentModification("the webhook secrets changed concurrently; retry"),
        )


class EventMarkers:
    """``DEDUPE#<scope>#<id>`` items, written in the same transaction as an inbound event's effect."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def seen(self, scope: str, event_id: str) -> bool:
        return self.table.get(keys.dedupe(scope, event_id), consistent=True) is not None

    def action(self, scope: str, event_id: str, tenant_id: str, at: datetime) -> Action:
        return self.table.t_put_new(
            {
                **keys.dedupe(scope, event_id),
                "type": "dedupe",
                "tenant_id": tenant_id,
                "created_at": at.isoformat(),
                "expires_at": int(time.time()) + MARKER_TTL_SECONDS,
            }
        )

    # Communication records belong to the invitation adapter's partition; feedback only reads one
    # and updates its status, in the same transaction as the invitation.
    def communication(self, tenant_id: str, invitation_id: str, communication_id: str) -> Item | None:
        return self.table.get(keys.communication(tenant_id, invitation_id, communication_id), consistent=True)

    def communication_status_action(
        self, tenant_id: str, invitation_id: str, communication_id: str, status: str, detail: str | None, at: datetime
    ) -> Action:
        return self.table.t_update(
            keys.communication(tenant_id, invitation_id, communication_id),
            {
                "status": status,
                "detail": detail,
                "updated_at": at.isoformat(),
                "GSI3PK": keys.communications_outcome_index(tenant_id, status),
            },
            condition="attribute_exists(PK)",
        )
