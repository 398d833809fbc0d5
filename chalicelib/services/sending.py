"""Use cases of sending safety: the gate before every message, reputation after feedback, operator actions.

The rules are in ``chalicelib/domain/sending.py`` and ``chalicelib/domain/sms.py``; this service counts
(daily quotas), reads the lender's standing, and records every change of it in the audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain.invitation import utcnow
from chalicelib.domain.notifications import NotificationType
from chalicelib.domain.sending import (
    REPUTATION_DAYS,
    Channel,
    Hold,
    SendingState,
    daily_quota,
    hold_for,
    next_day,
    pause_reason,
)
from chalicelib.domain.sms import quiet_until
from chalicelib.errors import NotFound
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.invitations import Action
    from chalicelib.adapters.dynamo.sending import SendingRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.notifications import NotificationService


class SendDeferred(Exception):
    """Raised inside a send attempt when the message must wait: nothing was sent, nothing is recorded as done."""

    def __init__(self, hold: Hold) -> None:
        super().__init__(hold.detail)
        self.hold = hold


class SendingService:
    def __init__(
        self,
        repo: SendingRepository,
        tenants: TenantRepository,
        settings: Settings,
        notifications: NotificationService | None = None,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.settings = settings
        self.notifications = notifications

    # --- the gate ---------------------------------------------------------------------------------
    def admit(self, tenant: Tenant, channel: Channel, recipient: str, now: datetime | None = None) -> None:
        """Let one message go, counting it against today's quota; raises SendDeferred when it must wait."""
        now = now or utcnow()
        standing = self.tenants.fresh(tenant.tenant_id) or tenant
        own = {standing.admin_email.lower()}
        hold = hold_for(
            standing.sending,
            channel,
            recipient,
            own,
            require_verification=self.settings.lender_verification_required,
        )
        if hold is None and channel == "sms" and self.settings.sms_quiet_hours:
            until = quiet_until(recipient, now)
            if until is not None:
                hold = Hold(
                    reason="quiet_hours",
                    detail="no SMS between 21:00 and 08:00 in the recipient's time zone",
                    until=until,
                )
        if hold is None:
            today = now.date()
            previous = self.repo.days(tenant.tenant_id, today - timedelta(days=1), today - timedelta(days=1))
            cap = self.settings.email_daily_cap if channel == "email" else self.settings.sms_daily_cap
            lender_cap = standing.sending.email_cap if channel == "email" else standing.sending.sms_cap
            quota = daily_quota(channel, previous[0] if previous else None, cap, lender_cap)
            if not self.repo.reserve(
                tenant.tenant_id, "email_sent" if channel == "email" else "sms_sent", today, quota
            ):
                hold = Hold(
                    reason="quota",
                    detail=f"today's {channel} quota of {quota} is used up; it grows with clean sending",
                    until=next_day(now),
                )
        if hold is not None:
            logger.info(
                "Send held",
                extra={"tenant_id": tenant.tenant_id, "channel": channel, "reason": hold.reason},
            )
            raise SendDeferred(hold)

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
        if action in ("paused", "suspended") and self.notifications is not None:
            self.notifications.notify(
                tenant.tenant_id,
                NotificationType.SENDING_PAUSED,
                None,
                {"action": action, "reason": reason},
                key=f"sending_{action}:{at.isoformat()}",
            )
        return tenant.model_copy(update={"sending": state})
