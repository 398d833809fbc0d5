"""Use cases of sending safety: the gate before every message, reputation after feedback, operator actions.

The rules are in ``chalicelib/domain/sending.py`` and ``chalicelib/domain/sms.py``; this service counts
(daily quotas), reads the lender's standing, and records every change of it in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from chalicelib.domain import links
from chalicelib.domain.invitation import utcnow
from chalicelib.domain.model import Model
from chalicelib.domain.notifications import NotificationType
from chalicelib.domain.sending import (
    REPUTATION_DAYS,
    Channel,
    DayStats,
    Hold,
    SendingState,
    daily_quota,
    hold_for,
    next_day,
    pause_reason,
    standing,
)
from chalicelib.domain.sms import quiet_until
from chalicelib.errors import Conflict, NotFound
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.adapters.dynamo.invitations import Action
    from chalicelib.adapters.dynamo.sending import Counter, SendingRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Mailer
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.notifications import NotificationService


class Slot(Model):
    """One message's place in today's quota: a transaction action to commit with the send's claim."""

    channel: Channel
    quota: int
    action: dict[str, Any]


VERIFY_PURPOSE = "lender_verify"
VERIFY_TTL = timedelta(days=7)


class VerificationEmail(Model):
    """Send-queue message: email the admin the link that confirms their address."""

    type: Literal["lender_verification"] = "lender_verification"
    tenant_id: str
    # Which link: a newer link (a resend) makes an older message moot.
    nonce_hash: str


class VerificationStarted(Model):
    sent_to: str = Field(description="The admin email the link went to")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verification_token(link_key: str, tenant_id: str, nonce: str) -> str:
    return links.derive_token(link_key, VERIFY_PURPOSE, tenant_id, nonce)


class SendingService:
    def __init__(
        self,
        repo: SendingRepository,
        tenants: TenantRepository,
        settings: Settings,
        notifications: NotificationService | None = None,
        queue: QueuePublisher | None = None,
        *,
        link_key: Callable[[], str],
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.settings = settings
        self.notifications = notifications
        self.queue = queue
        self.link_key = link_key

    # --- verification of the admin email -------------------------------------------------------------
    def start_verification(self, tenant: Tenant) -> None:
        """Email a new single-use link to the admin (an earlier link stops working). Nothing to do once
        verified. Raises UpstreamError when the message cannot be queued (the lender may ask again)."""
        if tenant.sending.verified or not self.settings.lender_verification_required:
            return
        nonce = links.new_nonce()
        self.repo.start_verification(tenant.tenant_id, nonce, utcnow() + VERIFY_TTL)
        if self.queue is not None:
            message = VerificationEmail(tenant_id=tenant.tenant_id, nonce_hash=_hash(nonce))
            self.queue.send(self.settings.send_queue_url, message.model_dump(mode="json"))

    def standing(self, tenant: Tenant) -> Hold | None:
        """What holds all of this lender's sending now (suspended, paused, sandbox), from ``tenant`` as given."""
        return standing(tenant.sending, require_verification=self.settings.lender_verification_required)

    def restart_verification(self, tenant: Tenant) -> VerificationStarted:
        """The lender asks for a new link. Raises Conflict once verified."""
        current = self._tenant(tenant.tenant_id)
        if current.sending.verified:
            raise Conflict("this lender's email is already confirmed")
        self.start_verification(current)
        return VerificationStarted(sent_to=current.admin_email)

    def confirm(self, tenant_id: str, token: str) -> Tenant | None:
        """Follow the emailed link: the lender is verified; None when the link is wrong, used or expired."""
        if not tenant_id.startswith("ten_") or not links.looks_like_token(token):
            return None
        pending = self.repo.verification(tenant_id)
        if pending is None:
            tenant = self.tenants.fresh(tenant_id)
            return tenant if tenant is not None and tenant.sending.verified else None
        expected = verification_token(self.link_key(), tenant_id, str(pending["nonce"]))
        if not hmac.compare_digest(expected, token) or int(pending["expires_at"]) < int(utcnow().timestamp()):
            return None
        if not self.repo.end_verification(tenant_id, str(pending["nonce"])):
            return None
        return self.verified(tenant_id)

    # --- the gate ---------------------------------------------------------------------------------
    def clearance(
        self,
        standing: Tenant,
        channel: Channel,
        recipient: str,
        now: datetime,
        previous_day: DayStats | None,
        *,
        lender_initiated: bool = True,
    ) -> Hold | Slot:
        """May one message go? A Hold (why it waits, and until when), or the quota Slot to take with the send's
        claim: the slot's condition fails when today's quota is used up (then see :meth:`quota_hold`).

        ``standing`` is the lender as just read (strongly consistent); ``previous_day`` its counters of
        yesterday. ``lender_initiated`` is False for a message the recipient asked for (a join confirmation):
        it is not held for the lender's verification, only for suspension, pause, quota and quiet hours."""
        own = {standing.admin_email.lower()}
        hold = hold_for(
            standing.sending,
            channel,
            recipient,
            own,
            require_verification=self.settings.lender_verification_required and lender_initiated,
        )
        if hold is None and channel == "sms" and self.settings.sms_quiet_hours:
            until = quiet_until(recipient, now)
            if until is not None:
                hold = Hold(
                    reason="quiet_hours",
                    detail="no SMS between 21:00 and 08:00 in the recipient's time zone",
                    until=until,
                )
        if hold is not None:
            logger.info("Send held", extra={"tenant_id": standing.tenant_id, "channel": channel, "reason": hold.reason})
            return hold
        cap = self.settings.email_daily_cap if channel == "email" else self.settings.sms_daily_cap
        lender_cap = standing.sending.email_cap if channel == "email" else standing.sending.sms_cap
        quota = daily_quota(channel, previous_day, cap, lender_cap)
        counter: Counter = "email_sent" if channel == "email" else "sms_sent"
        return Slot(
            channel=channel,
            quota=quota,
            action=self.repo.reserve_action(standing.tenant_id, counter, now.date(), quota),
        )

    @staticmethod
    def quota_hold(slot: Slot, now: datetime) -> Hold:
        """Why a message waits when its slot could not be taken."""
        hold = Hold(
            reason="quota",
            detail=f"today's {slot.channel} quota of {slot.quota} is used up; it grows with clean sending",
            until=next_day(now),
        )
        logger.info("Send held", extra={"channel": slot.channel, "reason": hold.reason})
        return hold

    # --- reputation ---------------------------------------------------------------------------------
    def feedback_action(self, tenant_id: str, kind: str, at: datetime) -> Action | None:
        """The counter update for one hard bounce or complaint, to commit with the feedback itself."""
        counter = {"hard_bounce": "bounces", "complaint": "complaints"}.get(kind)
        if counter is None:
            return None
        return self.repo.count_action(tenant_id, counter, at.date())  # type: ignore[arg-type]

    def review_reputation(self, tenant_id: str, now: datetime | None = None) -> str | None:
        """Pause the lender when its recent bounce or complaint rate is too high; returns the reason."""
        now = now or utcnow()
        tenant = self.tenants.fresh(tenant_id)
        if tenant is None or tenant.sending.paused_at is not None:
            return None
        today = now.date()
        reason = pause_reason(self.repo.days(tenant_id, today - timedelta(days=REPUTATION_DAYS - 1), today))
        if reason is None:
            return None
        self._change(tenant, "paused", "platform", reason, now)
        return reason

    # --- verification and operator actions ----------------------------------------------------------
    def verified(self, tenant_id: str, at: datetime | None = None) -> Tenant:
        tenant = self._tenant(tenant_id)
        if tenant.sending.verified:
            return tenant
        return self._change(tenant, "verified", "lender", None, at or utcnow())

    def suspend(self, tenant_id: str, reason: str, actor: str = "operator") -> Tenant:
        return self._change(self._tenant(tenant_id), "suspended", actor, reason, utcnow())

    def resume(self, tenant_id: str, actor: str = "operator") -> Tenant:
        """Lift a suspension and a pause (an operator's decision, after looking at why)."""
        return self._change(self._tenant(tenant_id), "resumed", actor, None, utcnow())

    def release_held(self, tenant_id: str) -> int:
        """Queue again, oldest first, the sends held for the lender's standing, so they go now rather than at
        their next 15-minute look (the worker checks the standing again: a send still held waits on). Each goes
        in the deferral round it is in; the delayed copy of that round then finds it done (a duplicate).
        Returns how many were queued; a failure is logged, and the delayed copies still carry those sends."""
        from chalicelib.services.delivery import SendMessage

        if self.queue is None:
            return 0
        held = self.repo.held_sends(tenant_id)
        bodies = [
            SendMessage(
                tenant_id=tenant_id,
                invitation_id=str(item["invitation_id"]),
                send_id=str(item["send_id"]),
                defer_round=int(item.get("defer_round", 0)),
            ).model_dump(mode="json")
            for item in held
        ]
        failed = self.queue.send_batch(self.settings.send_queue_url, bodies) if bodies else []
        if failed:
            logger.error(
                "Some held sends could not be queued again; their 15-minute retry carries them",
                extra={"tenant_id": tenant_id, "failed": len(failed), "held": len(bodies)},
            )
        logger.info("Held sends released", extra={"tenant_id": tenant_id, "count": len(bodies) - len(failed)})
        return len(bodies) - len(failed)

    def audit_log(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.repo.audit_log(tenant_id)

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.fresh(tenant_id)
        if tenant is None:
            raise NotFound("no such lender")
        return tenant

    def _change(self, tenant: Tenant, action: str, actor: str, reason: str | None, at: datetime) -> Tenant:
        state = tenant.sending
        if action == "verified":
            state = state.model_copy(update={"verified_at": at})
        elif action == "paused":
            state = state.model_copy(update={"paused_at": at, "paused_reason": reason})
        elif action == "suspended":
            state = state.model_copy(update={"suspended_at": at, "suspended_reason": reason})
        elif action == "resumed":
            state = SendingState(verified_at=state.verified_at, email_cap=state.email_cap, sms_cap=state.sms_cap)
        self.repo.save_state(tenant.tenant_id, state)
        self.tenants.forget(tenant.tenant_id)
        self.repo.audit(tenant.tenant_id, action, actor, reason, at)
        logger.info("Sending standing changed", extra={"tenant_id": tenant.tenant_id, "action": action})
        if action in ("verified", "resumed"):
            self.release_held(tenant.tenant_id)
        if action in ("paused", "suspended") and self.notifications is not None:
            self.notifications.notify(
                tenant.tenant_id,
                NotificationType.SENDING_PAUSED,
                None,
                {"action": action, "reason": reason},
                key=f"sending_{action}:{at.isoformat()}",
            )
        return tenant.model_copy(update={"sending": state})


class VerificationMail:
    """The send worker's part for the verification email (the link is derived here, never queued)."""

    def __init__(
        self,
        repo: SendingRepository,
        tenants: TenantRepository,
        mailer: Mailer,
        once: Once,
        settings: Settings,
        *,
        link_key: Callable[[], str],
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.mailer = mailer
        self.once = once
        self.settings = settings
        self.link_key = link_key

    def process(self, message: VerificationEmail) -> str:
        """Send the email once; a message for a replaced or used link sends nothing. Raises UpstreamError."""
        from chalicelib.adapters.messaging import Email
        from chalicelib.services.messages import render_email, send_once

        tenant = self.tenants.get(message.tenant_id)
        pending = self.repo.verification(message.tenant_id)
        if tenant is None or pending is None or _hash(str(pending["nonce"])) != message.nonce_hash:
            return "superseded"
        token = verification_token(self.link_key(), tenant.tenant_id, str(pending["nonce"]))
        rendered = render_email(
            "lender_verification",
            tenant.settings.locale,
            lender=tenant.name,
            url=self.settings.urls.verification(tenant.tenant_id, token),
            name=None,
            expires=datetime.fromtimestamp(int(pending["expires_at"]), tz=utcnow().tzinfo),
            colour=tenant.settings.branding.colour,
            logo_url=None,
        )
        email = Email(
            to=tenant.admin_email,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            sender_name=self.settings.platform_name,
            reply_to=None,
            tags={"type": "lender_verification"},
        )

        outcome = send_once(
            self.mailer, self.once, f"lender-verification:{tenant.tenant_id}:{message.nonce_hash}", email
        )
        logger.info("Verification email processed", extra={"tenant_id": tenant.tenant_id, "outcome": outcome})
        return outcome
