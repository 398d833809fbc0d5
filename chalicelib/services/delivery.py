"""The send worker's use case: deliver one queued send by email and/or SMS, exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.adapters.messaging import Email, OptedOut
from chalicelib.domain.ids import hash_secret
from chalicelib.domain.invitation import (
    Channel,
    Communication,
    DeliveryStatus,
    Invitation,
    InvitationEvent,
    Status,
    utcnow,
)
from chalicelib.domain.model import Model
from chalicelib.domain.sms import SMS_CAPABLE, phone_kind
from chalicelib.errors import Conflict, DeliveryRefused, UpstreamError
from chalicelib.observability import count, logger, mask_email, mask_phone
from chalicelib.services.messages import render_email, render_sms, sender_display
from chalicelib.services.sending import SendDeferred

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Mailer, SmsSender
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.invitations import InvitationService
    from chalicelib.services.sending import SendingService

# Matches maxReceiveCount of the send queue's redrive policy: the last try marks the send failed.
MAX_RECEIVES = 5
# A held send is looked at again after this delay (SQS's maximum).
DEFER_SECONDS = 900


class SendMessage(Model):
    type: str = "send"
    tenant_id: str
    invitation_id: str
    send_id: str
    # Which deferral this copy belongs to: a copy from an earlier round is a duplicate.
    defer_round: int = 0


class DeliveryService:
    def __init__(
        self,
        invitations: InvitationService,
        repo: InvitationRepository,
        tenants: TenantRepository,
        mailer: Mailer,
        sms: SmsSender,
        once: Once,
        on_opt_out: Callable[[Tenant, Invitation, str], None] | None = None,
        gate: SendingService | None = None,
    ) -> None:
        self.invitations = invitations
        self.repo = repo
        self.tenants = tenants
        self.mailer = mailer
        self.sms = sms
        self.once = once
        # Told when a number turns out to have opted out (suppression + lender notification).
        self.on_opt_out = on_opt_out
        # Verification, quotas, quiet hours: a held message waits (deferred), it is never dropped.
        self.gate = gate

    def process(self, message: SendMessage, receive_count: int = 1) -> str:
        """Deliver one send. Returns what happened; raises UpstreamError to have SQS retry it."""
        log = {"tenant_id": message.tenant_id, "invitation_id": message.invitation_id, "send_id": message.send_id}
        request = self.repo.send_request(message.tenant_id, message.invitation_id, message.send_id)
        if request is None:
            logger.info("Send request gone (invitation deleted)", extra=log)
            return "gone"
        if request["state"] not in ("queued", "deferred"):
            logger.info("Send already processed", extra={**log, "state": request["state"]})
            return "duplicate"
        if int(request.get("defer_round", 0)) != message.defer_round:
            logger.info("An earlier copy of a deferred send", extra=log)
            return "duplicate"
        inv = self.repo.get(message.tenant_id, message.invitation_id)
        tenant = self.tenants.get(message.tenant_id)
        if inv is None or tenant is None:
            # Close the orphan: left queued, the outbox relay would send it back here forever.
            self.repo.mark_send(message.tenant_id, message.invitation_id, message.send_id, "gone")
            logger.info("Send request closed: its invitation or lender is gone", extra=log)
            return "gone"
        if request.get("channel_override"):  # a system send on one channel (the SMS after a hard bounce)
            inv = inv.model_copy(update={"channel": Channel(request["channel_override"])})
        template = str(request.get("template", "invitation"))
        link = self._link(tenant, inv, request, template)
        # An invitation goes out only while PENDING; a confirmation while a sign-up may still attach.
        if link is None or not (inv.open_for_sign_up if template == "confirmation" else inv.status is Status.PENDING):
            self.repo.mark_send(message.tenant_id, message.invitation_id, message.send_id, "superseded")
            logger.info("Send superseded by a newer send or a status change", extra=log)
            return "superseded"
        try:
            outcomes, reasons = self._deliver(tenant, inv, message.send_id, template, link)
        except Exception as exc:
            # Transient (UpstreamError) or not, the last receive records the send as failed: never left queued.
            if receive_count >= MAX_RECEIVES:
                reason = exc.message if isinstance(exc, UpstreamError) else "an unexpected error (see the logs)"
                self._finish(
                    inv, message.send_id, {"error": "failed"}, "failed", template=template, reasons={"error": reason}
                )
                logger.error("Send failed for good; it goes to the dead-letter queue", extra=log)
            raise
        held = [channel for channel, outcome in outcomes.items() if outcome == "deferred"]
        if held:
            self._defer(inv, message, held)
            return "deferred"
        self._finish(inv, message.send_id, outcomes, final_state="sent", template=template, reasons=reasons)
        return "sent"

    def _defer(self, inv: Invitation, message: SendMessage, channels: list[str]) -> None:
        """Come back later: the same message again after a delay (SQS allows 15 minutes at most), so a hold
        that lasts hours is looked at again every 15 minutes. The channels already sent are not sent twice
        (each channel's attempt is idempotent). Raises UpstreamError (SQS retries this message) when the
        message cannot be queued again, so nothing is lost."""
        if not self.repo.defer_send(
            message.tenant_id, message.invitation_id, message.send_id, message.defer_round, channels
        ):
            return
        later = message.model_copy(update={"defer_round": message.defer_round + 1})
        try:
            self.invitations.queue.send(
                self.invitations.settings.send_queue_url, later.model_dump(mode="json"), delay_seconds=DEFER_SECONDS
            )
        except UpstreamError:
            # Give this copy back its round, so that SQS's retry of it carries the send on.
            self.repo.undo_defer(message.tenant_id, message.invitation_id, message.send_id, message.defer_round)
            raise
        logger.info("Send deferred", extra={"invitation_id": inv.invitation_id, "channels": channels})

    def _link(self, tenant: Tenant, inv: Invitation, request: dict[str, Any], template: str) -> tuple[str, Any] | None:
        """The message's URL and expiry, or None when a newer send (or a used link) replaced this one."""
        if template == "confirmation":
            from chalicelib.services.join import confirmation_link

            url, token_hash, expires = confirmation_link(self.invitations.settings, tenant, request)
            return (url, expires) if self.repo.token(token_hash) else None
        if inv.link_version != request["link_version"] or inv.link_expires_at is None:
            return None
        return self.invitations.portal_url(inv), inv.link_expires_at

    def _deliver(
        self, tenant: Tenant, inv: Invitation, send_id: str, template: str, link: tuple[str, Any]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Each channel's outcome, and the reason of each channel that was refused."""
        url, expires = link
        lender = tenant.display_name
        branding = tenant.settings.branding
        outcomes: dict[str, str] = {}
        reasons: dict[str, str] = {}
        # A confirmation proves the email address: it goes by email whatever the invitation's channel.
        if inv.channel.uses_email or template == "confirmation":
            suppressed = self.repo.suppressed(tenant.tenant_id, inv.email)
            if suppressed:
                outcomes["email"] = "suppressed"
                self._log_comm(
                    tenant.tenant_id,
                    inv,
                    send_id,
                    "email",
                    template,
                    None,
                    "suppressed",
                    f"address suppressed after a {suppressed['reason']}",
                )
            else:
                rendered = render_email(
                    template,
                    inv.locale,
                    lender=lender,
                    url=url,
                    name=inv.first_name,
                    expires=expires,
                    colour=branding.colour,
                    logo_url=str(branding.logo_url) if branding.logo_url else None,
                )
                email = Email(
                    to=inv.email,
                    subject=rendered.subject,
                    html=rendered.html,
                    text=rendered.text,
                    sender_name=sender_display(
                        tenant.settings.sender_name or lender, self.invitations.settings.platform_name
                    ),
                    reply_to=str(tenant.settings.reply_to) if tenant.settings.reply_to else None,
                    tags={"tenant": tenant.tenant_id, "send": send_id},
                )

                def send_email() -> str:
                    if self.gate is not None:
                        # A join confirmation answers the customer's own request: not the lender's outreach.
                        self.gate.admit(tenant, "email", email.to, lender_initiated=template == "invitation")
                    return self.mailer.send(email)

                outcomes["email"] = self._attempt(
                    f"{send_id}:email", send_email, tenant, inv, send_id, "email", template, reasons
                )
        if inv.channel.uses_sms and inv.phone and template == "invitation":
            phone = inv.phone
            text = render_sms(template, inv.locale, lender=lender, url=url)

            def send_sms() -> str:
                # A number known to have opted out is never tried again (not even the SNS check).
                if self.repo.suppressed(tenant.tenant_id, phone) or self.sms.opted_out(phone):
                    raise OptedOut("the number opted out of SMS")
                if phone_kind(phone) not in SMS_CAPABLE:
                    raise DeliveryRefused("the number cannot receive SMS (not a mobile number)")
                if self.gate is not None:
                    self.gate.admit(tenant, "sms", phone)
                return self.sms.send(phone, text)

            outcomes["sms"] = self._attempt(f"{send_id}:sms", send_sms, tenant, inv, send_id, "sms", template, reasons)
            if outcomes["sms"] == "opted_out" and self.on_opt_out is not None:
                self.on_opt_out(tenant, inv, send_id)
        return outcomes, reasons

    def _attempt(
        self,
        key: str,
        send: Any,
        tenant: Tenant,
        inv: Invitation,
        send_id: str,
        channel: str,
        template: str,
        reasons: dict[str, str],
    ) -> str:
        """Send at most once per (send, channel); a refusal is recorded (its reason in ``reasons``), a transient
        error propagates."""

        def effect() -> dict[str, Any]:
            try:
                return {"message_id": send(), "status": "sent"}
            except DeliveryRefused as exc:
                return {
                    "message_id": None,
                    "status": exc.code if exc.code == "opted_out" else "refused",
                    "detail": exc.message,
                }

        try:
            result = self.once(key, effect)
        except SendDeferred as held:
            # Nothing was sent and nothing is remembered as done: the next look tries again.
            detail = held.hold.detail + (f" (until {held.hold.until.isoformat()})" if held.hold.until else "")
            self._log_comm(tenant.tenant_id, inv, send_id, channel, template, None, "deferred", detail)
            return "deferred"
        if result["status"] == "sent":
            count("EmailSent" if channel == "email" else "SmsSent")
        elif result.get("detail"):
            reasons[channel] = str(result["detail"])
        self._log_comm(
            tenant.tenant_id,
            inv,
            send_id,
            channel,
            template,
            result.get("message_id"),
            result["status"],
            result.get("detail"),
        )
        return str(result["status"])

    def _log_comm(
        self,
        tenant_id: str,
        inv: Invitation,
        send_id: str,
        channel: str,
        template: str,
        message_id: str | None,
        status: str,
        detail: str | None,
    ) -> None:
        now = utcnow()
        recipient = inv.email if channel == "email" else (inv.phone or "")
        comm = Communication(
            communication_id=f"com_{send_id}_{channel}",
            invitation_id=inv.invitation_id,
            send_id=send_id,
            channel=channel,
            recipient=mask_email(recipient) if channel == "email" else mask_phone(recipient),
            template=template,
            provider_message_id=message_id,
            status=status,
            created_at=now,
            updated_at=now,
            detail=detail,
        )
        if not self.repo.record_communication(tenant_id, comm, hash_secret(recipient.lower())):
            logger.info("A later outcome of this message is kept", extra={"send_id": send_id, "channel": channel})

    def _finish(
        self,
        inv: Invitation,
        send_id: str,
        outcomes: dict[str, str],
        final_state: str,
        template: str = "invitation",
        reasons: dict[str, str] | None = None,
    ) -> None:
        statuses = set(outcomes.values())
        if "sent" in statuses:
            delivery = DeliveryStatus.SENT
        elif "opted_out" in statuses:
            delivery = DeliveryStatus.OPTED_OUT
        else:
            delivery = DeliveryStatus.FAILED
        link_version = inv.link_version

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            actions: list[Action] = [
                self.repo.finish_send_action(current.tenant_id, current.invitation_id, send_id, final_state, outcomes)
            ]
            failed = final_state != "sent" or delivery is DeliveryStatus.FAILED
            event = InvitationEvent(
                type="send_failed" if failed else "sent",
                actor="system",
                at=utcnow(),
                details={"send_id": send_id, "channels": outcomes}
                | ({"reasons": reasons} if reasons else {})
                | ({} if template == "invitation" else {"template": template}),
            )
            if (
                template != "invitation"
                or current.link_version != link_version
                or current.delivery_status is not DeliveryStatus.QUEUED
            ):
                # A newer send or feedback already moved the status on; record the send without regressing it.
                return current, [*actions, self.repo.event_action(current, event)]
            after = current.model_copy(update={"delivery_status": delivery})
            return after, [*actions, self.repo.event_action(after, event)]

        try:
            self.repo.mutate(inv.tenant_id, inv.invitation_id, change)
        except Conflict:
            # The send request was already closed by a concurrent delivery of the same message.
            logger.info("Send already finished", extra={"send_id": send_id})
