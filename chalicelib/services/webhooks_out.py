"""Outbound webhooks: every notification of a lender with a ``webhook_url`` becomes a signed event,
delivered through the webhooks queue with exponential backoff for 24 hours, then the DLQ.

One queue message is one attempt (``attempt`` counts them). A failed attempt schedules the next one
as a new message: SQS delays a message at most 15 minutes, so a longer wait is a chain of delayed
messages that carry ``not_before`` and are only re-queued until it passes. Each attempt runs at most
once per (event, run, attempt) through Powertools idempotency, so duplicates of a message (a
redelivered trigger, an SQS redelivery after a crash) never POST twice. When the 24 hours are over
the worker raises on the last message: SQS redelivers it (the recorded failure is replayed, nothing
is sent) until ``maxReceiveCount``, and the redrive policy moves it to the dead-letter queue.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib.domain import ids, webhook_signing
from chalicelib.domain.invitation import utcnow
from chalicelib.domain.notifications import (
    WEBHOOK_EVENT_TYPES,
    Notification,
    Redelivery,
    RotateWebhookSecret,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookDeliveryQuery,
    WebhookEvent,
    WebhookMessage,
    WebhookSecretCreated,
    WebhookSecretInfo,
    WebhookSecretList,
    backoff_seconds,
)
from chalicelib.errors import ConcurrentModification, Conflict, NotFound, UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.notifications import NotificationRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.adapters.webhook_sender import WebhookSender
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant

SQS_MAX_DELAY_SECONDS = 900
SECRET_PREFIX = webhook_signing.SECRET_PREFIX


class WebhookRetriesExhausted(UpstreamError):
    """Raised on the last attempt's message so SQS's redrive policy moves it to the DLQ."""


def event_id_for(notification_id: str) -> str:
    return "evt_" + notification_id.removeprefix("ntf_")


def display_url(url: str) -> str:
    """Scheme, host and path: a query string may carry the lender's own token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _expired(secret: dict[str, Any], now: datetime) -> bool:
    expires = secret.get("expires_at")
    return bool(expires) and datetime.fromisoformat(str(expires)) <= now


class WebhookService:
    def __init__(
        self,
        repo: NotificationRepository,
        tenants: TenantRepository,
        queue: QueuePublisher,
        settings: Settings,
        sender: WebhookSender | None = None,
        once: Once | None = None,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.queue = queue
        self.settings = settings
        self.sender = sender
        self.once = once

    # --- producing events ---------------------------------------------------------------------
    def publish(self, tenant_id: str, notification: Notification) -> str | None:
        """Store the notification's event and queue its first attempt; None when the lender has no
        webhook. Safe to repeat (the worker sends each attempt once). Raises UpstreamError."""
        tenant = self.tenants.get(tenant_id)
        if tenant is None or tenant.settings.webhook_url is None:
            return None
        event = WebhookEvent(
            id=event_id_for(notification.notification_id),
            type=WEBHOOK_EVENT_TYPES[notification.type],
            created_at=notification.created_at,
            data={
                "notification_id": notification.notification_id,
                "invitation_id": notification.invitation_id,
                **notification.data,
            },
        )
        self.repo.put_event(tenant_id, event, notification.notification_id)
        message = WebhookMessage(tenant_id=tenant_id, event_id=event.id, first_attempt_at=utcnow())
        self.queue.send(self.settings.webhook_queue_url, message.model_dump(mode="json"))
        return event.id

    # --- the worker ---------------------------------------------------------------------------
    def deliver(self, message: WebhookMessage) -> str:
        """One attempt. Returns what happened; raises WebhookRetriesExhausted after 24 hours."""
        log = {"tenant_id": message.tenant_id, "event_id": message.event_id, "attempt": message.attempt}
        now = utcnow()
        if message.not_before is not None and now < message.not_before:
            wait = math.ceil((message.not_before - now).total_seconds())
            self.queue.send(
                self.settings.webhook_queue_url,
                message.model_dump(mode="json"),
                delay_seconds=min(SQS_MAX_DELAY_SECONDS, wait),
            )
            return "waiting"
        tenant = self.tenants.get(message.tenant_id)
        event = self.repo.event(message.tenant_id, message.event_id)
        if tenant is None or event is None:
            logger.info("Webhook event gone", extra=log)
            return "gone"
        if tenant.settings.webhook_url is None:
            logger.info("Webhook URL removed; event not sent", extra=log)
            return "no_webhook_url"
        url = str(tenant.settings.webhook_url)
        first = message.first_attempt_at or now
        delay = backoff_seconds(
            message.attempt, self.settings.webhook_retry_base_seconds, self.settings.webhook_retry_max_interval_seconds
        )
        final = (
            not message.retry
            or (now + timedelta(seconds=delay) - first).total_seconds() > self.settings.webhook_retry_window_seconds
        )
        next_at = None if final else now + timedelta(seconds=delay)
        assert self.once is not None, "the webhook worker needs its idempotency store"
        result = self.once(
            f"webhook:{message.event_id}:{message.run}:{message.attempt}",
            lambda: self._attempt(tenant, event, message, url, next_at),
        )
        if result["ok"]:
            logger.info("Webhook delivered", extra={**log, "status_code": result.get("status_code")})
            return "delivered"
        if not result["retryable"] or not message.retry:
            logger.warning("Webhook not delivered; no retry", extra={**log, "error": result.get("error")})
            return "failed"
        if final or result.get("next_retry_at") is None:
            logger.error("Webhook retries exhausted; the message goes to the dead-letter queue", extra=log)
            raise WebhookRetriesExhausted("the webhook endpoint did not accept the event within the retry window")
        retry_at = datetime.fromisoformat(str(result["next_retry_at"]))
        following = message.model_copy(
            update={"attempt": message.attempt + 1, "first_attempt_at": first, "not_before": retry_at}
        )
        wait = max(0, math.ceil((retry_at - now).total_seconds()))

        def schedule() -> dict[str, Any]:
            self.queue.send(
                self.settings.webhook_queue_url,
                following.model_dump(mode="json"),
                delay_seconds=min(SQS_MAX_DELAY_SECONDS, wait),
            )
            return {"queued": True}

        # Copies of this message (a redelivered trigger, an SQS duplicate) replay the attempt's
        # result; the next attempt is queued once for all of them, so the copies merge here.
        self.once(f"webhook-next:{message.event_id}:{message.run}:{message.attempt}", schedule)
        logger.info("Webhook attempt failed; retry scheduled", extra={**log, "retry_in_s": wait})
        return "retry_scheduled"

    def _attempt(
        self, tenant: Tenant, event: WebhookEvent, message: WebhookMessage, url: str, next_at: datetime | None
    ) -> dict[str, Any]:
        assert self.sender is not None, "the webhook worker needs its HTTP sender"
        body = json.dumps(event.model_dump(mode="json"), separators=(",", ":")).encode()
        secrets = self.signing_secrets(tenant.tenant_id)
        # webhook-id is the event id: the same on every retry and redelivery, so a receiver dedupes on it.
        headers = {
            **webhook_signing.standard_headers(event.id, body, secrets),
            "X-Onboarding-Event-Id": event.id,
            "X-Onboarding-Event-Type": event.type,
            "X-Onboarding-Delivery-Attempt": str(message.attempt),
        }
        if self.settings.webhook_legacy_signature:
            headers[webhook_signing.HEADER] = webhook_signing.sign(body, secrets)
        result = self.sender.post(url, body, headers)
        retry_at = next_at if (not result.ok and result.retryable and message.retry) else None
        delivery = WebhookDelivery(
            delivery_id=ids.new_id("whd"),
            event_id=event.id,
            event_type=event.type,
            attempt=message.attempt,
            trigger="automatic" if message.run == "auto" else "redelivery",
            url=display_url(url),
            ok=result.ok,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
            next_retry_at=retry_at,
            created_at=utcnow(),
        )
        self.repo.record_delivery(tenant.tenant_id, delivery)
        return {
            "ok": result.ok,
            "retryable": result.retryable,
            "status_code": result.status_code,
            "error": result.error,
            "delivery_id": delivery.delivery_id,
            "next_retry_at": retry_at.isoformat() if retry_at else None,
        }

    # --- the lender's view --------------------------------------------------------------------
    def deliveries(self, tenant: Tenant, query: WebhookDeliveryQuery) -> WebhookDeliveryPage:
        items, cursor = self.repo.deliveries(tenant.tenant_id, query.event_id, query.limit, query.cursor)
        return WebhookDeliveryPage(items=items, next_cursor=cursor)

    def redeliver(self, tenant: Tenant, delivery_id: str) -> Redelivery:
        """Send the event of a recorded delivery once more (one attempt, no automatic retries)."""
        found = self.repo.delivery(tenant.tenant_id, delivery_id) if delivery_id.startswith("whd_") else None
        if found is None:
            raise NotFound("no such webhook delivery")
        if tenant.settings.webhook_url is None:
            raise Conflict("set webhook_url in the tenant settings first", fields={"webhook_url": "not set"})
        message = WebhookMessage(
            tenant_id=tenant.tenant_id,
            event_id=found.event_id,
            run=ids.new_id("rdl"),
            retry=False,
            first_attempt_at=utcnow(),
        )
        self.queue.send(self.settings.webhook_queue_url, message.model_dump(mode="json"))
        return Redelivery(event_id=found.event_id)

    # --- secrets ------------------------------------------------------------------------------
    def signing_secrets(self, tenant_id: str) -> list[str]:
        """The secrets valid now, newest first. A lender who never created one gets one made here
        (events are always signed); they obtain a secret they know with a rotation."""
        stored, _ = self.repo.secrets(tenant_id)
        now = utcnow()
        active = [s["secret"] for s in stored if not _expired(s, now)]
        if active:
            return active
        created = self._rotate(tenant_id, previous_valid_for_seconds=0)
        return [created.secret]

    def rotate_secret(self, tenant: Tenant, request: RotateWebhookSecret) -> WebhookSecretCreated:
        created = self._rotate(tenant.tenant_id, request.previous_valid_for_seconds)
        logger.info("Webhook secret rotated", extra={"tenant_id": tenant.tenant_id, "secret_id": created.secret_id})
        return created

    def _rotate(self, tenant_id: str, previous_valid_for_seconds: int) -> WebhookSecretCreated:
        for _ in range(5):
            stored, version = self.repo.secrets(tenant_id)
            now = utcnow()
            active = [s for s in stored if not _expired(s, now)]
            secret = webhook_signing.new_secret()
            new = {
                "secret_id": ids.new_id("whs"),
                "secret": secret,
                "created_at": now.isoformat(),
                "expires_at": None,
            }
            kept: list[dict[str, Any]] = []
            previous_expires: datetime | None = None
            if active and previous_valid_for_seconds > 0:
                current = active[0]
                previous_expires = now + timedelta(seconds=previous_valid_for_seconds)
                if current.get("expires_at"):
                    previous_expires = min(previous_expires, datetime.fromisoformat(str(current["expires_at"])))
                kept = [{**current, "expires_at": previous_expires.isoformat()}]
            try:
                self.repo.save_secrets(tenant_id, [new, *kept], version)
            except ConcurrentModification:
                continue
            return WebhookSecretCreated(
                secret_id=str(new["secret_id"]),
                prefix=secret[: len(SECRET_PREFIX) + 4],
                created_at=now,
                secret=secret,
                previous_expires_at=previous_expires,
            )
        raise ConcurrentModification("the webhook secrets kept changing; retry")

    def revoke_secret(self, tenant: Tenant, secret_id: str) -> WebhookSecretList:
        """Stop signing with one secret at once; returns the secrets left.

        Raises NotFound (no such live secret), Conflict (the only live one: events are always signed, so
        create a new secret first), ConcurrentModification (the secrets changed meanwhile: retry)."""
        stored, version = self.repo.secrets(tenant.tenant_id)
        now = utcnow()
        active = [s for s in stored if not _expired(s, now)]
        if not any(s["secret_id"] == secret_id for s in active):
            raise NotFound("no such webhook signing secret")
        if len(active) == 1:
            raise Conflict("this is the only signing secret: create a new one first (events are always signed)")
        self.repo.save_secrets(tenant.tenant_id, [s for s in active if s["secret_id"] != secret_id], version)
        logger.info("Webhook secret revoked", extra={"tenant_id": tenant.tenant_id, "secret_id": secret_id})
        return self.list_secrets(tenant)

    def list_secrets(self, tenant: Tenant) -> WebhookSecretList:
        stored, _ = self.repo.secrets(tenant.tenant_id)
        now = utcnow()
        return WebhookSecretList(
            items=[
                WebhookSecretInfo(
                    secret_id=s["secret_id"],
                    prefix=str(s["secret"])[: len(SECRET_PREFIX) + 4],
                    created_at=s["created_at"],
                    expires_at=s.get("expires_at"),
                )
                for s in stored
                if not _expired(s, now)
            ]
        )
