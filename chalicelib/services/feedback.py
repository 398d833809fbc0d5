"""Inbound delivery events: SES bounces, complaints and deliveries, SMS opt-outs, portal completions.

Each event takes effect once. Its state change (communication status, invitation status, history,
and any send it triggers) is one optimistic-locked transaction that also writes a marker keyed on
the event's own id (SES ``feedbackId``, the portal's ``event_id``); a redelivery finds the marker
and changes nothing. What follows the transaction is idempotent by construction and therefore
repeated on every delivery, so a crash after the write loses nothing: suppression is a put, a
queued send is re-enqueued (the send worker skips one already sent), and notifications carry a
key derived from the event.

Transient bounces: the email is sent again (a send request written with the bounce, queued with
an SQS delay of ``transient_bounce_retry_delay_seconds``), at most ``transient_bounce_max_retries``
times per original send, bypassing the lender's resend cooldown but never the send limit; then the
invitation is ``failed`` and the lender is notified. Undetermined bounces are treated as transient.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain.ids import hash_secret
from chalicelib.domain.invitation import (
    Channel,
    DeliveryStatus,
    Invitation,
    InvitationEvent,
    PortalStatus,
    communication_rank,
    utcnow,
)
from chalicelib.domain.notifications import NotificationType, PortalEvent
from chalicelib.domain.ses_events import BounceType, FeedbackMessage, SesNotification
from chalicelib.errors import DomainError
from chalicelib.observability import count, logger

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.adapters.dynamo.notifications import EventMarkers
    from chalicelib.adapters.dynamo.table import Item
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.invitations import InvitationService
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.sending import SendingService

SES_SCOPE = "ses"
PORTAL_SCOPE = "portal"

HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
COMPLAINT = "complaint"
DELIVERY = "delivery"
REJECT = "reject"

# What each outcome writes on the communication record.
COMMUNICATION_STATUS = {
    HARD_BOUNCE: "bounced",
    SOFT_BOUNCE: "soft_bounced",
    COMPLAINT: "complained",
    DELIVERY: "delivered",
    REJECT: "rejected",
}


def classify(notification: SesNotification) -> str | None:
    kind = notification.kind
    if kind == "Bounce" and notification.bounce is not None:
        return HARD_BOUNCE if notification.bounce.bounce_type is BounceType.PERMANENT else SOFT_BOUNCE
    return {"Complaint": COMPLAINT, "Delivery": DELIVERY, "Reject": REJECT}.get(kind)


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def fallback_send_id(tenant_id: str, invitation_id: str) -> str:
    """One SMS fallback per invitation, whatever number of bounces arrive."""
    return f"snd_fb{_short_hash(tenant_id, invitation_id)}"


def retry_send_id(ses_message_id: str) -> str:
    """One retry per transiently bounced email."""
    return f"snd_rt{_short_hash(ses_message_id)}"


class FeedbackService:
    def __init__(
        self,
        repo: InvitationRepository,
        markers: EventMarkers,
        tenants: TenantRepository,
        invitations: InvitationService,
        notifications: NotificationService,
        settings: Settings,
        sending: SendingService | None = None,
    ) -> None:
        self.repo = repo
        self.markers = markers
        # Counts hard bounces and complaints per lender and day; pauses a lender whose rates are too high.
        self.sending = sending
        self.tenants = tenants
        self.invitations = invitations
        self.notifications = notifications
        self.settings = settings

    # --- SES ----------------------------------------------------------------------------------
    def handle_ses(self, message: FeedbackMessage) -> str:
        """Apply one SES notification; returns the outcome. Raises UpstreamError / ConcurrentModification
        (the SQS record is retried)."""
        notification = message.notification
        if notification is None:
            logger.info("SNS control message acknowledged", extra={"sns_type": message.sns_type})
            return "ignored"
        outcome = classify(notification)
        ses_message_id = notification.mail.message_id
        log: dict[str, Any] = {"ses_message_id": ses_message_id, "kind": notification.kind}
        if outcome is None:
            return "ignored"
        record = self.repo.by_provider_message(ses_message_id)
        if record is None:
            # Not ours (another sender on the account, a canned test notification) or long gone:
            # retrying would never find it, so acknowledge it and leave a trace.
            logger.warning("SES feedback for an unknown message id acknowledged", extra=log)
            return "unknown"
        if record.get("channel") != "email":
            return "ignored"
        tenant_id, invitation_id = str(record["tenant_id"]), str(record["invitation_id"])
        log |= {"tenant_id": tenant_id, "invitation_id": invitation_id, "outcome": outcome}
        tenant = self.tenants.get(tenant_id)
        inv = self.repo.get(tenant_id, invitation_id)
        if tenant is None or inv is None:
            logger.info("SES feedback for a deleted invitation acknowledged", extra=log)
            return "gone"
        communication_id = str(record["communication_id"])
        comm = self.markers.communication(tenant_id, invitation_id, communication_id)
        send_id = str(comm["send_id"]) if comm else None
        request = self.repo.send_request(tenant_id, invitation_id, send_id) if send_id else None
        at = self._feedback_time(notification)

        # Protect the sender reputation first; a put is idempotent.
        if outcome in (HARD_BOUNCE, COMPLAINT):
            address = self._address(inv, record, notification)
            if address is not None:
                self.repo.suppress(tenant_id, address, "complaint" if outcome == COMPLAINT else "hard bounce", at)
            else:
                logger.warning("Bounced address not identified; nothing suppressed", extra=log)

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            if self.markers.seen(SES_SCOPE, notification.event_id):
                return None
            applied = self._apply(tenant, current, notification, outcome, record, comm, request, at)
            # Counted on the day we learn of it (the rate compares it with the recent days' sends).
            counted = self.sending.feedback_action(tenant_id, outcome, utcnow()) if self.sending else None
            if applied is None or counted is None:
                return applied
            # Counted with the feedback's marker: a redelivered notification counts nothing.
            return applied[0], [*applied[1], counted]

        if self.repo.mutate(tenant_id, invitation_id, change) is not None:
            # Applied now (a redelivery finds its marker and changes nothing): the funnel counts it once.
            if outcome == DELIVERY:
                count("EmailDelivered")
            elif outcome == HARD_BOUNCE:
                count("EmailBounced")
        if self.sending is not None and outcome in (HARD_BOUNCE, COMPLAINT):
            self.sending.review_reputation(tenant_id)
        current = self.repo.get(tenant_id, invitation_id)
        if current is None:
            return "gone"
        self._follow_up(tenant, current, notification, outcome, record, request)
        logger.info("SES feedback applied", extra=log)
        return outcome

    @staticmethod
    def _feedback_time(notification: SesNotification) -> datetime:
        for part in (notification.bounce, notification.complaint, notification.delivery):
            if part is not None and part.timestamp is not None:
                return part.timestamp
        return utcnow()

    @staticmethod
    def _address(inv: Invitation, record: Item, notification: SesNotification) -> str | None:
        """The address the feedback is about: the one we sent to (known by its hash), never a
        recipient the notification names that we did not send to."""
        expected = record.get("recipient_hash")
        if hash_secret(inv.email.lower()) == expected:
            return inv.email
        for address in notification.recipients:
            if hash_secret(address.strip().lower()) == expected:
                return address.strip().lower()
        return None

    def _apply(
        self,
        tenant: Tenant,
        current: Invitation,
        notification: SesNotification,
        outcome: str,
        record: Item,
        comm: Item | None,
        request: Item | None,
        at: datetime,
    ) -> tuple[Invitation, list[Action]]:
        now = utcnow()
        tenant_id, invitation_id = current.tenant_id, current.invitation_id
        actions: list[Action] = [self.markers.action(SES_SCOPE, notification.event_id, tenant_id, now)]
        detail = None
        if notification.bounce is not None:
            detail = f"{notification.bounce.bounce_type.value}/{notification.bounce.bounce_sub_type or '-'}"
        elif notification.complaint is not None:
            detail = notification.complaint.complaint_feedback_type
        # Feedback arrives out of order: a Delivery read after the Bounce does not move the message back.
        if comm is not None and communication_rank(COMMUNICATION_STATUS[outcome]) >= communication_rank(
            str(comm.get("status"))
        ):
            actions.append(
                self.markers.communication_status_action(
                    tenant_id, invitation_id, str(comm["communication_id"]), COMMUNICATION_STATUS[outcome], detail, now
                )
            )
        # Feedback about an address the invitation no longer has, or about a send a newer one
        # replaced, is recorded in the history but does not change the invitation's status.
        current_address = hash_secret(current.email.lower()) == record.get("recipient_hash")
        current_send = request is not None and request.get("link_version") == current.link_version
        details: dict[str, Any] = {"communication_id": record.get("communication_id"), "channel": "email"}
        if request is not None:
            details["send_id"] = request.get("send_id")
        if not current_address:
            details["stale_address"] = True
        after = current
        events: list[InvitationEvent] = []

        def event(type_: str, **extra: Any) -> None:
            events.append(InvitationEvent(type=type_, actor="system", at=now, details={**details, **extra}))

        if outcome == HARD_BOUNCE:
            assert notification.bounce is not None
            event("bounced", bounce_type="Permanent", bounce_sub_type=notification.bounce.bounce_sub_type)
            if current_address:
                after = after.model_copy(update={"delivery_status": DeliveryStatus.BOUNCED})
                if after.phone and after.channel is Channel.EMAIL:
                    fb_id = fallback_send_id(tenant_id, invitation_id)
                    if self.repo.send_request(tenant_id, invitation_id, fb_id) is None:
                        try:
                            after, more = self.invitations.system_send(
                                tenant,
                                after,
                                reason="bounce_fallback",
                                channel=Channel.SMS,
                                send_id=fb_id,
                                now=now,
                                keep_delivery_status=True,
                            )
                            actions.extend(more)
                            events.append(
                                InvitationEvent(
                                    type="fallback_sms_sent",
                                    actor="system",
                                    at=now,
                                    details={"send_id": fb_id, "channel": "sms", "reason": "email hard-bounced"},
                                )
                            )
                        except DomainError as exc:
                            event("fallback_sms_skipped", reason=exc.message)
        elif outcome == SOFT_BOUNCE:
            assert notification.bounce is not None
            attempt = int(request.get("retry_attempt", 0)) if request else 0
            event(
                "soft_bounced",
                bounce_type=notification.bounce.bounce_type.value,
                bounce_sub_type=notification.bounce.bounce_sub_type,
                retry_attempt=attempt,
            )
            if current_address and current_send:
                if attempt < self.settings.transient_bounce_max_retries:
                    retry_id = retry_send_id(notification.mail.message_id)
                    due = now + timedelta(seconds=self.settings.transient_bounce_retry_delay_seconds)
                    try:
                        after, more = self.invitations.system_send(
                            tenant,
                            after,
                            reason="transient_bounce_retry",
                            channel=Channel.EMAIL,
                            send_id=retry_id,
                            now=now,
                            details={"retry_attempt": attempt + 1, "due_at": due.isoformat()},
                        )
                        actions.extend(more)
                        events.append(
                            InvitationEvent(
                                type="retry_scheduled",
                                actor="system",
                                at=now,
                                details={"send_id": retry_id, "retry_attempt": attempt + 1, "due_at": due.isoformat()},
                            )
                        )
                    except DomainError as exc:
                        after = after.model_copy(update={"delivery_status": DeliveryStatus.FAILED})
                        event("retry_skipped", reason=exc.message)
                else:
                    after = after.model_copy(update={"delivery_status": DeliveryStatus.FAILED})
                    event("retries_exhausted", retries=attempt)
        elif outcome == COMPLAINT:
            event("complained", feedback_type=detail)
            if current_address:
                after = after.model_copy(update={"delivery_status": DeliveryStatus.COMPLAINED})
        elif outcome == DELIVERY:
            event("delivered")
            if (
                current_address
                and current_send
                and after.delivery_status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT)
            ):
                after = after.model_copy(update={"delivery_status": DeliveryStatus.DELIVERED})
        elif outcome == REJECT:
            event("rejected")
            if current_address and current_send:
                after = after.model_copy(update={"delivery_status": DeliveryStatus.FAILED})
        actions.extend(self.repo.event_action(after, e) for e in events)
        return after, actions

    def _follow_up(
        self,
        tenant: Tenant,
        inv: Invitation,
        notification: SesNotification,
        outcome: str,
        record: Item,
        request: Item | None,
    ) -> None:
        """Idempotent steps after the state change; they run on every delivery of the event."""
        tenant_id, invitation_id = inv.tenant_id, inv.invitation_id
        current_address = hash_secret(inv.email.lower()) == record.get("recipient_hash")
        key = f"ses:{notification.event_id}"
        if outcome == HARD_BOUNCE:
            assert notification.bounce is not None
            fallback = self.repo.send_request(tenant_id, invitation_id, fallback_send_id(tenant_id, invitation_id))
            if fallback is not None and fallback.get("state") == "queued":
                self.invitations.enqueue_send(inv, str(fallback["send_id"]))
            self.notifications.notify(
                tenant_id,
                NotificationType.BOUNCE,
                invitation_id,
                {
                    "bounce_type": "Permanent",
                    "bounce_sub_type": notification.bounce.bounce_sub_type,
                    "address_suppressed": True,
                    "sms_fallback": fallback is not None,
                },
                key=key,
            )
        elif outcome == SOFT_BOUNCE:
            assert notification.bounce is not None
            retry = self.repo.send_request(tenant_id, invitation_id, retry_send_id(notification.mail.message_id))
            if retry is not None:
                if retry.get("state") == "queued":
                    self.invitations.enqueue_send(
                        inv, str(retry["send_id"]), delay_seconds=self.settings.transient_bounce_retry_delay_seconds
                    )
            elif current_address and inv.delivery_status is DeliveryStatus.FAILED:
                attempts = int(request.get("retry_attempt", 0)) if request else 0
                self.notifications.notify(
                    tenant_id,
                    NotificationType.BOUNCE,
                    invitation_id,
                    {
                        "bounce_type": notification.bounce.bounce_type.value,
                        "bounce_sub_type": notification.bounce.bounce_sub_type,
                        "retries": attempts,
                        "address_suppressed": False,
                    },
                    key=key,
                )
        elif outcome == COMPLAINT:
            assert notification.complaint is not None
            self.notifications.notify(
                tenant_id,
                NotificationType.COMPLAINT,
                invitation_id,
                {"feedback_type": notification.complaint.complaint_feedback_type, "address_suppressed": True},
                key=key,
            )

    # --- SMS opt-outs -------------------------------------------------------------------------
    def sms_opted_out(self, tenant: Tenant, inv: Invitation, send_id: str) -> None:
        """The send worker found the number opted out: never text it again, tell the lender."""
        if not inv.phone:
            return
        self.repo.suppress(tenant.tenant_id, inv.phone, "SMS opt-out", utcnow())
        self.notifications.notify(
            tenant.tenant_id,
            NotificationType.OPT_OUT,
            inv.invitation_id,
            {"channel": "sms", "send_id": send_id},
            key=f"opt_out:{inv.invitation_id}:{hash_secret(inv.phone)[:16]}",
        )

    # --- portal completions -------------------------------------------------------------------
    def handle_portal(self, event: PortalEvent) -> str:
        log = {"tenant_id": event.tenant_id, "invitation_id": event.invitation_id, "event_id": event.event_id}
        if event.type != "portal_completed":
            logger.info("Portal event of another type acknowledged", extra={**log, "type": event.type})
            return "ignored"
        if self.tenants.get(event.tenant_id) is None:
            return "gone"

        completing: list[bool] = []

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            completing[:] = [False]
            if self.markers.seen(PORTAL_SCOPE, event.event_id):
                return None
            now = utcnow()
            actions = [self.markers.action(PORTAL_SCOPE, event.event_id, current.tenant_id, now)]
            if current.portal_status is PortalStatus.COMPLETED:
                return current, actions
            completing[:] = [True]
            after = current.model_copy(update={"portal_status": PortalStatus.COMPLETED})
            history = InvitationEvent(
                type="portal_completed", actor="customer", at=event.at or now, details={"event_id": event.event_id}
            )
            return after, [*actions, self.repo.event_action(after, history)]

        if self.repo.mutate(event.tenant_id, event.invitation_id, change) is not None and completing == [True]:
            count("InvitationCompleted")
        inv = self.repo.get(event.tenant_id, event.invitation_id)
        if inv is None:
            logger.info("Portal completion for a deleted invitation acknowledged", extra=log)
            return "gone"
        if inv.portal_status is not PortalStatus.COMPLETED:
            return "ignored"
        self.notifications.notify(
            event.tenant_id,
            NotificationType.COMPLETION,
            event.invitation_id,
            {"completed_at": (event.at or utcnow()).isoformat()},
            key=f"completion:{event.invitation_id}",
        )
        logger.info("Portal completion applied", extra=log)
        return "completed"
