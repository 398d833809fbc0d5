"""The send worker's use case: deliver one queued send by email and/or SMS, exactly once.

An email costs four AWS calls: one read (the send request, its invitation, the lender and the lender's
counters of yesterday), one transaction that claims the channel (with today's quota slot, and a check that
the address is not suppressed), the send, and one transaction that closes the send request with its
communication record, the invitation's delivery status and its history event. The claim is what makes a
channel go at most once: it holds while its worker may still be sending, and a channel that went is marked
done on the send request; a worker that dies mid-send leaves the claim to expire, and a later try of the same
message takes it (as Powertools idempotency would).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

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
from chalicelib.domain.sending import Channel as Medium
from chalicelib.domain.sending import next_day
from chalicelib.domain.sending_domain import sending_address
from chalicelib.domain.sms import SMS_CAPABLE, phone_kind
from chalicelib.errors import ConcurrentModification, Conflict, DeliveryRefused, UpstreamError
from chalicelib.observability import count, logger, mask_email, mask_phone
from chalicelib.services.invitations import SENDS_PER_MESSAGE
from chalicelib.services.messages import render_email, render_sms, sender_display
from chalicelib.services.sending import Slot

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.adapters.dynamo.table import Item
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.messaging import Mailer, SmsSender
    from chalicelib.domain.sending import DayStats
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.invitations import InvitationService
    from chalicelib.services.sending import SendingService

# Matches maxReceiveCount of the send queue's redrive policy: the last try marks the send failed.
MAX_RECEIVES = 5
# A send of a batch message starts only with this much of the invocation left (its claim, the provider call and
# the closing write); the rest go back to the queue.
BATCH_SEND_MARGIN_MS = 5_000
# A failed send of a batch message comes back on its own at once; its later tries follow the queue's visibility timeout.
RETRY_DELAY_SECONDS = 0
# A held send is looked at again after this delay (SQS's maximum).
DEFER_SECONDS = 900
# How long a channel's claim holds when the Lambda context does not say how much time is left.
CLAIM_SECONDS = 300
CONDITION_FAILED = "ConditionalCheckFailed"
# Holds that end when the lender's standing changes (not with time): such a send goes out at once then.
RELEASED_HOLDS = ("unverified", "paused", "suspended")
# An invitation's delivery statuses while its message has not gone yet.
WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.HELD)


class SendMessage(Model):
    type: str = "send"
    tenant_id: str
    invitation_id: str
    send_id: str
    # Which deferral this copy belongs to: a copy from an earlier round is a duplicate.
    defer_round: int = 0


class SendRef(Model):
    invitation_id: str
    send_id: str


class SendBatch(Model):
    """Several sends of one lender in one send-queue message (an import's rows: ``send_batch_messages``); each is
    handled as its own SendMessage would be."""

    type: Literal["send_batch"]
    tenant_id: str
    sends: list[SendRef] = Field(min_length=1, max_length=SENDS_PER_MESSAGE)


class ChannelResult(Model):
    """What one channel of a send did: sent (with the provider's message id), or why not."""

    status: str  # sent | refused | opted_out | suppressed | deferred
    message_id: str | None = None
    detail: str | None = None
    # Taken from an earlier try of the same send (its communication record is already written).
    earlier: bool = Field(default=False, exclude=True)
    # Why a deferred channel waits (a Hold's reason: unverified, paused, quota ...).
    hold: str | None = Field(default=None, exclude=True)


class SendInProgress(UpstreamError):
    """Another worker holds this channel of the send right now: SQS tries the message again later."""


class SendsIncomplete(UpstreamError):
    """Sends of a batch message could not be queued again (SQS refused): SQS tries the whole message again, and the
    sends that went are then duplicates."""


class _Closed(Exception):
    """The send request was closed, or moved to another deferral round, by another copy of the message."""


class _AlreadyFinished(Conflict):
    """The send request was closed by a concurrent delivery of the same message."""


class DeliveryService:
    def __init__(
        self,
        invitations: InvitationService,
        repo: InvitationRepository,
        tenants: TenantRepository,
        mailer: Mailer,
        sms: SmsSender,
        on_opt_out: Callable[[Tenant, Invitation, str], None] | None = None,
        gate: SendingService | None = None,
    ) -> None:
        self.invitations = invitations
        self.repo = repo
        self.tenants = tenants
        self.mailer = mailer
        self.sms = sms
        # Told when a number turns out to have opted out (suppression + lender notification).
        self.on_opt_out = on_opt_out
        # Verification, quotas, quiet hours: a held message waits (deferred), it is never dropped.
        self.gate = gate
        self._context: Any = None

    def register_context(self, context: Any) -> None:
        """The Lambda context of the invocation: a claim holds as long as the invocation may still run."""
        self._context = context

    def _lease_until(self, now: datetime) -> int:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        seconds = (int(remaining()) // 1000 + 1) if callable(remaining) else CLAIM_SECONDS
        return int(now.timestamp()) + seconds

    def process(self, message: SendMessage, receive_count: int = 1) -> str:
        """Deliver one send. Returns what happened; raises UpstreamError to have SQS retry it."""
        log = {"tenant_id": message.tenant_id, "invitation_id": message.invitation_id, "send_id": message.send_id}
        now = utcnow()
        context = self.repo.send_context(
            message.tenant_id, message.invitation_id, message.send_id, now.date() - timedelta(days=1)
        )
        request = context.request
        if request is None:
            logger.info("Send request gone (invitation deleted)", extra=log)
            return "gone"
        if request["state"] not in ("queued", "deferred"):
            logger.info("Send already processed", extra={**log, "state": request["state"]})
            return "duplicate"
        if int(request.get("defer_round", 0)) != message.defer_round:
            logger.info("An earlier copy of a deferred send", extra=log)
            return "duplicate"
        inv, tenant = context.invitation, context.tenant
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
        wanted = inv.open_for_sign_up if template == "confirmation" else inv.status is Status.PENDING
        if link is None or not wanted:
            self._supersede(inv, request, template, still_wanted=wanted)
            logger.info("Send superseded by a newer send or a status change", extra=log)
            return "superseded"
        try:
            results = self._deliver(tenant, inv, request, template, link, context.previous_day, now)
        except _Closed:
            logger.info("Send handled by another copy of the message", extra=log)
            return "duplicate"
        except Exception as exc:
            # Transient (UpstreamError) or not, the last receive records the send as failed: never left queued.
            if receive_count >= MAX_RECEIVES:
                reason = exc.message if isinstance(exc, UpstreamError) else "an unexpected error (see the logs)"
                self._finish(
                    inv, message.send_id, {"error": "failed"}, "failed", template=template, reasons={"error": reason}
                )
                logger.error("Send failed for good; it goes to the dead-letter queue", extra=log)
            raise
        held = [channel for channel, result in results.items() if result.status == "deferred"]
        if held:
            self._defer(inv, message, request, template, results, known=context.invitation)
            return "deferred"
        # The invitation as stored (``inv`` may carry a one-off channel): the write needs no second read.
        stored = context.invitation
        self._finish(inv, message.send_id, {}, final_state="sent", template=template, results=results, known=stored)
        return "sent"

    def process_batch(self, batch: SendBatch) -> dict[str, int]:
        """Deliver every send of ``batch``, each as :meth:`process` does (idempotent); returns how many had each
        outcome.

        Each send keeps its own retry budget: one that raises is queued again as its own message (a single send,
        whose receives then count for it alone, the last one recording it failed), so a failing send neither
        fails its siblings for good nor takes them to the dead-letter queue. When the invocation is about to run
        out of time, the sends not yet tried go back to the queue as one message, rather than all ten messages of
        the invocation coming back with their claims' leases run out. Raises SendsIncomplete (SQS tries the whole
        message again; the sends that went are then duplicates) only when those messages cannot be queued.
        """
        outcomes: dict[str, int] = {}
        failed: list[SendRef] = []
        for index, ref in enumerate(batch.sends):
            if self._running_out():
                rest = batch.sends[index:]
                self._requeue(batch.model_copy(update={"sends": rest}).model_dump(mode="json"), delay=0)
                outcomes["postponed"] = len(rest)
                logger.warning("Out of time: the batch's other sends go back to the queue", extra={"sends": len(rest)})
                break
            message = SendMessage(tenant_id=batch.tenant_id, invitation_id=ref.invitation_id, send_id=ref.send_id)
            try:
                # Never the last receive here: a send that fails is queued again on its own, with its own budget.
                outcome = self.process(message, receive_count=1)
            except Exception as exc:
                log = {"tenant_id": batch.tenant_id, "invitation_id": ref.invitation_id, "send_id": ref.send_id}
                if isinstance(exc, UpstreamError):
                    logger.warning("A send of a batch message is queued again", extra={**log, "error": str(exc)})
                else:
                    logger.exception("A send of a batch message failed; it is queued again on its own", extra=log)
                failed.append(ref)
                continue
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        for ref in failed:
            single = SendMessage(tenant_id=batch.tenant_id, invitation_id=ref.invitation_id, send_id=ref.send_id)
            self._requeue(single.model_dump(mode="json"), delay=RETRY_DELAY_SECONDS)
        if failed:
            outcomes["retried_alone"] = len(failed)
        return outcomes

    def _running_out(self) -> bool:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return callable(remaining) and int(remaining()) < BATCH_SEND_MARGIN_MS

    def _requeue(self, body: dict[str, Any], delay: int) -> None:
        try:
            self.invitations.queue.send(self.invitations.settings.send_queue_url, body, delay_seconds=delay)
        except UpstreamError as exc:
            raise SendsIncomplete("a send of this message could not be queued again; it will be tried again") from exc

    def _defer(
        self,
        inv: Invitation,
        message: SendMessage,
        request: Item,
        template: str,
        results: dict[str, ChannelResult],
        known: Invitation | None = None,
    ) -> None:
        """Come back later: the same message again after a delay (SQS allows 15 minutes at most), so a hold
        that lasts hours is looked at again every 15 minutes. The channels that went are kept as done on the
        send request (the next look does not send them again). Raises UpstreamError (SQS retries this
        message) when the message cannot be queued again, so nothing is lost."""
        for channel, result in results.items():
            if not result.earlier:
                self._log_comm(inv, message.send_id, channel, template, result)
        held = [channel for channel, result in results.items() if result.status == "deferred"]
        done = {c: r.model_dump(mode="json") for c, r in results.items() if r.status != "deferred"}
        # Held for the lender's standing alone: listed to go out as soon as that changes (see SendingService).
        standing = all(results[c].hold in RELEASED_HOLDS for c in held)
        if not self.repo.defer_send(
            message.tenant_id,
            message.invitation_id,
            message.send_id,
            message.defer_round,
            held,
            done,
            until_released=f"{request.get('created_at', '')}#{message.send_id}" if standing else None,
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
        if template == "invitation":
            went = any(r.status == "sent" for r in results.values())
            self._held(inv, DeliveryStatus.SENT if went else DeliveryStatus.HELD, known)
        logger.info("Send deferred", extra={"invitation_id": inv.invitation_id, "channels": held})

    def _held(self, inv: Invitation, status: DeliveryStatus, known: Invitation | None) -> None:
        """The invitation's delivery status while its message waits: "held" (nothing went yet), or "sent" when
        one channel went and the other waits; the next rounds of the same hold write nothing."""
        link_version = inv.link_version

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            if current.link_version != link_version or current.delivery_status not in WAITING:
                return None  # a newer send or feedback moved it on meanwhile
            if current.delivery_status is status:
                return None
            return current.model_copy(update={"delivery_status": status}), []

        self.repo.mutate(inv.tenant_id, inv.invitation_id, change, known=known)

    def _supersede(self, inv: Invitation, request: Item, template: str, *, still_wanted: bool) -> None:
        """Close a send that is no longer wanted: a newer send replaced its link, or the invitation moved on
        (the customer joined, or was removed). What the log showed for its held channels ("deferred") becomes
        "replaced" or "not needed"; an invitation left "queued" or "held" with no send still open says
        "not sent". Each write may repeat (a redelivered message does the same), the send request is closed last."""
        send_id = str(request["send_id"])
        if still_wanted:
            result = ChannelResult(status="replaced", detail="a newer message replaced this one")
        elif template == "confirmation":
            result = ChannelResult(status="not_needed", detail="the sign-up no longer needs confirming")
        else:
            state = "has joined" if inv.status is Status.JOINED else f"is {inv.status.value}"
            result = ChannelResult(status="not_needed", detail=f"not needed: the customer {state}")
        for channel in request.get("held") or []:
            self._log_comm(inv, send_id, str(channel), template, result)
        if template == "invitation" and inv.delivery_status in WAITING:
            others = [r for r in self.repo.open_sends(inv.tenant_id, inv.invitation_id) if r["send_id"] != send_id]
            if not others:
                self._not_sent(inv, send_id, result)
        self.repo.mark_send(inv.tenant_id, inv.invitation_id, send_id, "superseded")

    def _not_sent(self, inv: Invitation, send_id: str, result: ChannelResult) -> None:
        """The invitation's last open send went nowhere: its delivery status says so instead of "queued"."""
        link_version = inv.link_version

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            if current.delivery_status not in WAITING or current.link_version != link_version:
                return None  # a newer send or feedback moved it on meanwhile
            after = current.model_copy(update={"delivery_status": DeliveryStatus.NOT_SENT})
            event = InvitationEvent(
                type="send_cancelled",
                actor="system",
                at=utcnow(),
                details={"send_id": send_id, "reason": str(result.detail)},
            )
            return after, [self.repo.event_action(after, event)]

        self.repo.mutate(inv.tenant_id, inv.invitation_id, change)

    def _link(self, tenant: Tenant, inv: Invitation, request: dict[str, Any], template: str) -> tuple[str, Any] | None:
        """The message's URL and expiry, or None when a newer send (or a used link) replaced this one."""
        if template == "confirmation":
            from chalicelib.services.join import confirmation_link

            url, token_hash, expires = confirmation_link(
                self.invitations.settings, self.invitations.link_key(), tenant, request
            )
            return (url, expires) if self.repo.token_exists(token_hash) else None
        if inv.link_version != request["link_version"] or inv.link_expires_at is None or not inv.link_nonce:
            return None
        return self.invitations.portal_url(inv), inv.link_expires_at

    def _deliver(
        self,
        tenant: Tenant,
        inv: Invitation,
        request: Item,
        template: str,
        link: tuple[str, Any],
        previous_day: DayStats | None,
        now: datetime,
    ) -> dict[str, ChannelResult]:
        """Each channel's result. When a channel fails after another went, what went is kept on the send
        request (and in its communication record) before the error goes up, so SQS's retry does not repeat it."""
        url, expires = link
        lender = tenant.display_name
        branding = tenant.settings.branding
        results: dict[str, ChannelResult] = {}
        try:
            # A confirmation proves the email address: it goes by email whatever the invitation's channel.
            if inv.channel.uses_email or template == "confirmation":
                rendered = render_email(
                    template,
                    inv.locale,
                    lender=lender,
                    url=url,
                    name=inv.first_name,
                    expires=expires,
                    colour=branding.colour,
                    logo_url=branding.shown_logo_url,
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
                    tags={"tenant": tenant.tenant_id, "send": str(request["send_id"])},
                    sender_address=sending_address(self.invitations.settings.sender_email, tenant.sending_domain),
                )
                results["email"] = self._channel(
                    tenant,
                    request,
                    "email",
                    inv.email,
                    lambda: self.mailer.send(email),
                    previous_day,
                    now,
                    # A join confirmation answers the customer's own request: not the lender's outreach.
                    lender_initiated=template == "invitation",
                )
            if inv.channel.uses_sms and inv.phone and template == "invitation":
                phone = inv.phone
                text = render_sms(template, inv.locale, lender=lender, url=url)

                def send_sms() -> str:
                    if self.sms.opted_out(phone):
                        raise OptedOut("the number opted out of SMS")
                    if phone_kind(phone) not in SMS_CAPABLE:
                        raise DeliveryRefused("the number cannot receive SMS (not a mobile number)")
                    return self.sms.send(phone, text)

                results["sms"] = self._channel(tenant, request, "sms", phone, send_sms, previous_day, now)
                if results["sms"].status == "opted_out" and self.on_opt_out is not None:
                    self.on_opt_out(tenant, inv, str(request["send_id"]))
        except Exception:
            went = {c: r for c, r in results.items() if r.status != "deferred" and not r.earlier}
            if went:
                self.repo.remember_done(request, {c: r.model_dump(mode="json") for c, r in went.items()})
                for channel, result in went.items():
                    self._log_comm(inv, str(request["send_id"]), channel, template, result)
            raise
        return results

    def _channel(
        self,
        tenant: Tenant,
        request: Item,
        channel: Medium,
        recipient: str,
        send: Callable[[], str],
        previous_day: DayStats | None,
        now: datetime,
        *,
        lender_initiated: bool = True,
    ) -> ChannelResult:
        """One channel of the send, at most once: the earlier result when it already went, else clearance
        (verification, quiet hours), then the claim with its quota slot, then the send."""
        done = request.get(f"done_{channel}")
        if done is not None:
            return ChannelResult.model_validate({**done, "earlier": True})
        slot: Slot | None = None
        if self.gate is not None:
            cleared = self.gate.clearance(
                tenant, channel, recipient, now, previous_day, lender_initiated=lender_initiated
            )
            if not isinstance(cleared, Slot):
                until = f" (until {cleared.until.isoformat()})" if cleared.until else ""
                return ChannelResult(status="deferred", detail=cleared.detail + until, hold=cleared.reason)
            slot = cleared
        actions = [
            self.repo.claim_action(request, channel, self._lease_until(now), int(now.timestamp())),
            self.repo.not_suppressed_action(tenant.tenant_id, recipient),
            *([slot.action] if slot is not None else []),
        ]
        refused = self.repo.claim(actions)
        if refused is not None:
            return self._not_claimed(tenant, request, channel, recipient, refused, slot, now)
        try:
            result = ChannelResult(status="sent", message_id=send())
        except DeliveryRefused as exc:
            status = exc.code if exc.code == "opted_out" else "refused"
            result = ChannelResult(status=status, detail=exc.message)
        except Exception:
            self.repo.release_claim(request, channel)
            raise
        if result.status == "sent":
            count("EmailSent" if channel == "email" else "SmsSent")
        return result

    def _not_claimed(
        self,
        tenant: Tenant,
        request: Item,
        channel: str,
        recipient: str,
        reasons: list[str],
        slot: Slot | None,
        now: datetime,
    ) -> ChannelResult:
        """Why the claim's transaction did not go through (reasons: claim, suppression check, quota slot)."""
        claim, suppression, *quota = reasons
        if claim == CONDITION_FAILED:
            current = self.repo.send_request(
                str(request["tenant_id"]), str(request["invitation_id"]), request["send_id"]
            )
            if (
                current is None
                or current["state"] not in ("queued", "deferred")
                or int(current.get("defer_round", 0)) != int(request.get("defer_round", 0))
            ):
                raise _Closed()
            if f"done_{channel}" in current:
                return ChannelResult.model_validate({**current[f"done_{channel}"], "earlier": True})
            raise SendInProgress("this message is being sent by another worker; it will be retried")
        if suppression == CONDITION_FAILED:
            if channel == "sms":
                return ChannelResult(status="opted_out", detail="the number opted out of SMS")
            entry = self.repo.suppressed(tenant.tenant_id, recipient) or {}
            return ChannelResult(
                status="suppressed", detail=f"address suppressed after a {entry.get('reason', 'bounce')}"
            )
        if slot is not None and quota and quota[0] == CONDITION_FAILED and self.gate is not None:
            hold = self.gate.quota_hold(slot, now)
            return ChannelResult(
                status="deferred", detail=f"{hold.detail} (until {next_day(now).isoformat()})", hold=hold.reason
            )
        raise UpstreamError("the send could not be claimed, please retry")

    def _communication(
        self, inv: Invitation, send_id: str, channel: str, template: str, result: ChannelResult
    ) -> tuple[Communication, str]:
        now = utcnow()
        recipient = inv.email if channel == "email" else (inv.phone or "")
        comm = Communication(
            communication_id=f"com_{send_id}_{channel}",
            invitation_id=inv.invitation_id,
            send_id=send_id,
            channel=channel,
            recipient=mask_email(recipient) if channel == "email" else mask_phone(recipient),
            template=template,
            provider_message_id=result.message_id,
            status=result.status,
            created_at=now,
            updated_at=now,
            detail=result.detail,
        )
        return comm, hash_secret(recipient.lower())

    def _log_comm(self, inv: Invitation, send_id: str, channel: str, template: str, result: ChannelResult) -> None:
        comm, recipient_hash = self._communication(inv, send_id, channel, template, result)
        if not self.repo.record_communication(inv.tenant_id, comm, recipient_hash):
            logger.info("A later outcome of this message is kept", extra={"send_id": send_id, "channel": channel})

    def _finish(
        self,
        inv: Invitation,
        send_id: str,
        outcomes: dict[str, str],
        final_state: str,
        template: str = "invitation",
        reasons: dict[str, str] | None = None,
        results: dict[str, ChannelResult] | None = None,
        known: Invitation | None = None,
    ) -> None:
        """Close the send request with its communication records, the invitation's delivery status and its
        history event: one transaction (``known``, when given, spares the read of the invitation)."""
        results = results or {}
        outcomes = outcomes or {channel: result.status for channel, result in results.items()}
        reasons = reasons or {c: str(r.detail) for c, r in results.items() if r.status != "sent" and r.detail}
        statuses = set(outcomes.values())
        if "sent" in statuses:
            delivery = DeliveryStatus.SENT
        elif "opted_out" in statuses:
            delivery = DeliveryStatus.OPTED_OUT
        else:
            delivery = DeliveryStatus.FAILED
        link_version = inv.link_version
        # Each channel's communication record (one from an earlier try is written already).
        comms: dict[str, list[Action]] = {}
        for channel, result in results.items():
            if not result.earlier:
                comm, recipient_hash = self._communication(inv, send_id, channel, template, result)
                comms[channel] = self.repo.communication_actions(inv.tenant_id, comm, recipient_hash)

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            actions: list[Action] = [
                self.repo.finish_send_action(current.tenant_id, current.invitation_id, send_id, final_state, outcomes),
                *(action for channel_actions in comms.values() for action in channel_actions),
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
                or current.delivery_status not in WAITING
            ):
                # A newer send or feedback already moved the status on; record the send without regressing it.
                return current, [*actions, self.repo.event_action(current, event)]
            after = current.model_copy(update={"delivery_status": delivery})
            return after, [*actions, self.repo.event_action(after, event)]

        def lost(cancelled: list[str]) -> Exception:
            """Reasons: the invitation's, the send request's, then each channel's communication actions."""
            if len(cancelled) > 1 and cancelled[1] == CONDITION_FAILED:
                return _AlreadyFinished("the send request was already closed")
            position = 2
            for channel, channel_actions in list(comms.items()):
                if CONDITION_FAILED in cancelled[position : position + len(channel_actions)]:
                    # Feedback already gave this message a later outcome: keep it, write the rest.
                    logger.info("A later outcome of this message is kept", extra={"send_id": send_id})
                    del comms[channel]
                position += len(channel_actions)
            return ConcurrentModification("the invitation changed meanwhile")

        try:
            self.repo.mutate(inv.tenant_id, inv.invitation_id, change, known=known, conflict=lost)
        except _AlreadyFinished:
            # The send request was already closed by a concurrent delivery of the same message.
            logger.info("Send already finished", extra={"send_id": send_id})
