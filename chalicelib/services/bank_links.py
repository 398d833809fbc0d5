"""Use cases of the bank-link waterfall: start an attempt, serve link requests, take webhooks.

The state machine (infra/waterfall.asl.json) decides *which* provider comes next; this service
talks to the providers and records *why* each one ended. Every slot's decision is written once,
with its history event, by a conditional write: the webhook (linked or a partner failure), the
worker (the partner refused to open a session, or ``previous`` reports a timeout) or the
``waterfall_exhausted`` message (the last slot), whichever comes first.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.config import ConfigurationError, SecretNotSet
from chalicelib.domain.bank_link import CustomerInfo
from chalicelib.domain.invitation import Invitation, InvitationEvent, PortalStatus, utcnow
from chalicelib.domain.model import Model
from chalicelib.domain.notifications import NotificationType
from chalicelib.domain.providers import Provider
from chalicelib.domain.waterfall import (
    ENDED_WITHOUT_OUTCOME,
    PROVIDER_UNAVAILABLE,
    Attempt,
    AttemptRecord,
    AttemptState,
    BankLinks,
    Decision,
    DisconnectResult,
    SlotDecision,
    SlotRecord,
    SlotState,
    advance,
    document_prefix,
    duration_seconds,
    execution_input,
    execution_name,
    providers_for,
    reason_from_error,
)
from chalicelib.errors import ConcurrentModification, Conflict, NotFound, UpstreamError, WebhookRejected
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.bank_links import BankLinkRepository
    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.providers.base import ProviderClient
    from chalicelib.adapters.workflow import Workflow
    from chalicelib.config import Settings
    from chalicelib.domain.bank_link import ProviderOutcome
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.financial import FinancialDataService
    from chalicelib.services.notifications import NotificationService

# (headers, raw body) -> a verified outcome, None for a webhook type we ignore; raises WebhookRejected.
Verifier = Callable[[Mapping[str, str], bytes], "ProviderOutcome | None"]

WEBHOOK_DEDUPE_TTL_SECONDS = 14 * 24 * 3600


class LinkRequest(Model):
    """What a waterfall slot posts to the link-request queue (infra/waterfall.asl.json)."""

    type: Literal["link_request"]
    task_token: str
    tenant_id: str
    invitation_id: str
    attempt: int
    slot: int
    provider: Provider
    previous: dict[str, Any] | None = None
    retry: int = 0  # the state machine's retry of this step ($$.State.RetryCount)


class WaterfallExhausted(Model):
    type: Literal["waterfall_exhausted"]
    tenant_id: str
    invitation_id: str
    attempt: int
    last_error: dict[str, Any] | None = None


class WaterfallFailed(Model):
    """The state machine's Broken state: an infrastructure error (not a provider's answer) ended the attempt."""

    type: Literal["waterfall_failed"]
    tenant_id: str
    invitation_id: str
    attempt: int
    error: dict[str, Any] | None = None


def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class BankLinkService:
    def __init__(
        self,
        repo: BankLinkRepository,
        invitations: InvitationRepository,
        tenants: TenantRepository,
        workflow: Workflow,
        providers: Mapping[Provider, ProviderClient],
        verifiers: Mapping[Provider, Verifier],
        documents: DocumentStore,
        once: Once | None,
        settings: Settings,
        notifications: NotificationService | None = None,
        financial: FinancialDataService | None = None,
    ) -> None:
        self.repo = repo
        self.invitations = invitations
        self.tenants = tenants
        self.workflow = workflow
        self.providers = providers
        self.verifiers = verifiers
        self.documents = documents
        self.once = once
        self.settings = settings
        # Tells the lender (and its webhook) when every provider failed.
        self.notifications = notifications
        # Revokes the provider connections and deletes the fetched data on disconnect.
        self.financial = financial

    # --- start -------------------------------------------------------------------------------
    def start(self, tenant: Tenant, inv: Invitation) -> Attempt:
        """Start an attempt, or return the one running (or linked): one execution per attempt.

        Raises UpstreamError when Step Functions is down (a retry resumes the same attempt).
        """
        for _ in range(3):
            number = self.repo.current_attempt_number(inv.tenant_id, inv.invitation_id)
            current = self.repo.attempt(inv.tenant_id, inv.invitation_id, number)
            if current is not None and current.state is AttemptState.RUNNING and current.execution_arn:
                ended = self.workflow.status(current.execution_name)
                if ended in ENDED_WITHOUT_OUTCOME:
                    # The execution ended without telling the worker (its Broken message was lost, the
                    # top-level timeout, States.Runtime): close the attempt now and start a new one.
                    self._fail_attempt(inv, number, {"Error": f"execution {ended.lower()}"})
                    continue
            if current is not None and current.state in (AttemptState.RUNNING, AttemptState.LINKED):
                if current.state is AttemptState.RUNNING and not current.execution_arn:
                    current = self._launch(current)
                return self._attempt_view(current, self._slots(inv, number))
            providers = providers_for(inv.banking_integration, tenant.settings)
            attempt = number + 1
            now = utcnow()
            payload = execution_input(
                inv.tenant_id,
                inv.invitation_id,
                attempt,
                providers,
                self.settings.link_step_timeout_seconds,
                self.settings.link_heartbeat_seconds,
            )
            record = AttemptRecord(
                tenant_id=inv.tenant_id,
                invitation_id=inv.invitation_id,
                attempt=attempt,
                state=AttemptState.RUNNING,
                providers=providers,
                started_at=now,
                execution_name=execution_name(inv.invitation_id, attempt),
                input=payload,
            )
            try:
                self.repo.begin_attempt(record, number)
            except ConcurrentModification:
                continue  # another click claimed this number: return that attempt
            self._event(
                inv,
                "bank_link_started",
                "customer",
                now,
                {"attempt": attempt, "providers": [str(p) for p in providers]},
            )
            return self._attempt_view(self._launch(record), [])
        raise ConcurrentModification("the bank link is being started, please retry")

    def _launch(self, record: AttemptRecord) -> AttemptRecord:
        execution = self.workflow.start(record.execution_name, record.input)
        self.repo.set_execution(record, execution.arn)
        logger.info(
            "Bank-link attempt started",
            extra={
                "tenant_id": record.tenant_id,
                "invitation_id": record.invitation_id,
                "attempt": record.attempt,
                "already_started": execution.already_started,
            },
        )
        return record.model_copy(update={"execution_arn": execution.arn})

    # --- reads -------------------------------------------------------------------------------
    def view(self, tenant: Tenant, invitation_id: str) -> BankLinks:
        """The lender's view: 404 for another lender's invitation."""
        inv = self.invitations.get(tenant.tenant_id, invitation_id) if invitation_id.startswith("inv_") else None
        if inv is None:
            raise NotFound("no such invitation")
        return self.links(inv)

    def links(self, inv: Invitation) -> BankLinks:
        attempts, slots = self.repo.everything(inv.tenant_id, inv.invitation_id)
        return BankLinks(
            invitation_id=inv.invitation_id,
            attempts=[self._attempt_view(a, [s for s in slots if s.attempt == a.attempt]) for a in attempts],
        )

    def current(self, inv: Invitation) -> Attempt | None:
        number = self.repo.current_attempt_number(inv.tenant_id, inv.invitation_id)
        record = self.repo.attempt(inv.tenant_id, inv.invitation_id, number)
        return self._attempt_view(record, self._slots(inv, number)) if record else None

    def _slots(self, inv: Invitation, number: int) -> list[SlotRecord]:
        _, slots = self.repo.everything(inv.tenant_id, inv.invitation_id)
        return [s for s in slots if s.attempt == number]

    @staticmethod
    def _attempt_view(record: AttemptRecord, slots: list[SlotRecord]) -> Attempt:
        decisions = [
            Decision(
                slot=s.slot,
                provider=s.provider,
                outcome="linked"
                if s.state is SlotState.LINKED
                else "failed"
                if s.state is SlotState.FAILED
                else "pending",
                reason=s.reason,
                started_at=s.started_at,
                ended_at=s.ended_at,
                duration_seconds=s.duration_seconds,
            )
            for s in sorted(slots, key=lambda s: s.slot)
        ]
        running = record.state is AttemptState.RUNNING
        open_slot = next((s for s in slots if s.state is SlotState.OPEN), None) if running else None
        return Attempt(
            attempt=record.attempt,
            state=record.state,
            providers=record.providers,
            started_at=record.started_at,
            ended_at=record.ended_at,
            execution_name=record.execution_name,
            linked_provider=record.linked_provider,
            current_provider=open_slot.provider if open_slot else None,
            link_url=open_slot.link_url if open_slot else None,
            decisions=decisions,
        )

    # --- heartbeat ---------------------------------------------------------------------------
    def heartbeat(self, inv: Invitation) -> bool:
        """The customer is active on the portal: keep the open provider step alive. Best effort."""
        number = self.repo.current_attempt_number(inv.tenant_id, inv.invitation_id)
        record = self.repo.attempt(inv.tenant_id, inv.invitation_id, number)
        if record is None or record.state is not AttemptState.RUNNING or not record.current_slot:
            return False
        slot = self.repo.slot(inv.tenant_id, inv.invitation_id, number, record.current_slot)
        if slot is None or slot.state is not SlotState.OPEN or not slot.task_token:
            return False
        try:
            from chalicelib.adapters.workflow import TaskResult

            return self.workflow.heartbeat(slot.task_token) is TaskResult.SENT
        except UpstreamError:
            logger.warning("Heartbeat not sent", extra={"invitation_id": inv.invitation_id})
            return False

    # --- the link-request worker -------------------------------------------------------------
    def handle_link_request(self, message: LinkRequest) -> str:
        """Record the previous slot's failure, then open a session with this slot's provider.

        Raises UpstreamError (retry the message) when AWS is down; a provider failure is not an
        error here: it fails the task so the waterfall moves on.
        """
        log = {"tenant_id": message.tenant_id, "invitation_id": message.invitation_id, "attempt": message.attempt}
        inv = self.invitations.get(message.tenant_id, message.invitation_id)
        attempt = self.repo.attempt(message.tenant_id, message.invitation_id, message.attempt)
        if inv is None or attempt is None:
            logger.info("Link request for a deleted invitation", extra=log)
            self.workflow.fail(message.task_token, "provider_error", "invitation deleted")
            return "gone"
        if message.previous is not None and message.slot > 1:
            self._record_failure(inv, attempt, message.slot - 1, reason_from_error(message.previous), actor="waterfall")
        if attempt.state is AttemptState.LINKED:
            # The customer linked at an earlier provider after its step moved on: end the run there.
            linked = str(attempt.linked_provider) if attempt.linked_provider else None
            self.workflow.succeed(message.task_token, {"provider": linked})
            return "already_linked"
        if attempt.state is not AttemptState.RUNNING:
            self.workflow.fail(message.task_token, "provider_error", "attempt closed")
            return "closed"

        def effect() -> dict[str, Any]:
            return {"outcome": self._open_session(inv, attempt, message)}

        if self.once is None:
            return str(effect()["outcome"])
        # A retried step (Provider.Unavailable) is a new request even where the token is reused.
        key = f"link_request:{_token_key(message.task_token)}" + (f":{message.retry}" if message.retry else "")
        return str(self.once(key, effect)["outcome"])

    def _open_session(self, inv: Invitation, attempt: AttemptRecord, message: LinkRequest) -> str:
        self.repo.request_slot(
            SlotRecord(
                tenant_id=inv.tenant_id,
                invitation_id=inv.invitation_id,
                attempt=message.attempt,
                slot=message.slot,
                provider=message.provider,
                started_at=utcnow(),
            )
        )
        slot = self.repo.slot(inv.tenant_id, inv.invitation_id, message.attempt, message.slot)
        if slot is not None and slot.state is SlotState.FAILED:
            # Recorded on an earlier receive whose SendTaskFailure did not go through (Step Functions
            # unavailable): send it again, or the waterfall waits for the step's timeout. A task that
            # already moved on answers "closed", which changes nothing.
            self.workflow.fail(message.task_token, slot.reason or "provider_error", "failed earlier")
            return "provider_error"
        if slot is None or slot.state is not SlotState.REQUESTED:
            return "duplicate"
        from chalicelib.adapters.providers.base import ProviderError

        try:
            client = self.providers.get(message.provider)
        except ConfigurationError:  # its secrets are not set: a provider failure, the waterfall moves on
            logger.exception("Bank-link provider not configured", extra={"provider": str(message.provider)})
            client = None
        try:
            if client is None:
                raise ProviderError(f"{message.provider} is not configured")
            session = client.create_link_session(
                CustomerInfo(
                    invitation_id=inv.invitation_id,
                    tenant_id=inv.tenant_id,
                    email=inv.email,
                    phone=inv.phone,
                    first_name=inv.first_name,
                    last_name=inv.last_name,
                    locale=inv.locale,
                ),
                webhook_url=self.settings.urls.webhook(str(message.provider)),
                # Never the portal token: it would leak a bearer link to the partner.
                redirect_url=self.settings.urls.portal_return,
                reference=f"{inv.invitation_id}-{message.attempt}-{message.slot}",
            )
        except ProviderError as exc:
            if exc.retryable:
                # The partner is down for now: the slot stays requested and the state machine asks this
                # provider again later (Retry on Provider.Unavailable), then moves on.
                logger.warning(
                    "Provider unavailable, the state machine retries it",
                    extra={
                        "provider": str(message.provider),
                        "invitation_id": inv.invitation_id,
                        "partner_code": exc.partner_code,
                    },
                )
                self.workflow.fail(message.task_token, PROVIDER_UNAVAILABLE, "the provider is unavailable")
                return "provider_unavailable"
            reason = exc.error_class.value if exc.error_class else "provider_error"
            logger.warning(
                "Provider refused a link session",
                extra={
                    "provider": str(message.provider),
                    "invitation_id": inv.invitation_id,
                    "partner_code": exc.partner_code,
                },
            )
            self._close(inv, slot, linked=False, reason=reason, detail=exc.partner_code, actor="waterfall")
            self.workflow.fail(message.task_token, reason, "the provider could not open a session")
            return "provider_error"
        from chalicelib.adapters.dynamo.bank_links import AlreadyClosed

        try:
            self.repo.open_slot(slot, session, message.task_token)
        except AlreadyClosed:
            return "closed"
        logger.info(
            "Link session opened",
            extra={"provider": str(message.provider), "invitation_id": inv.invitation_id, "slot": message.slot},
        )
        return "opened"

    def handle_exhausted(self, message: WaterfallExhausted) -> str:
        """Record the last slot's failure and the attempt's end, then notify the lender.

        A redelivery writes nothing new; the notification is raised again with the same key (a crash
        after the write loses nothing, and the lender still gets it once).
        """
        inv = self.invitations.get(message.tenant_id, message.invitation_id)
        attempt = self.repo.attempt(message.tenant_id, message.invitation_id, message.attempt)
        if inv is None or attempt is None:
            return "gone"
        last = len(attempt.providers)
        providers = [str(p) for p in attempt.providers]
        self._record_failure(inv, attempt, last, reason_from_error(message.last_error), actor="waterfall")
        now = utcnow()
        event = InvitationEvent(
            type="bank_link_exhausted",
            actor="waterfall",
            at=now,
            details={"attempt": message.attempt, "providers": providers, "next": "document_upload"},
        )
        try:
            self.repo.transact(
                [
                    self.repo.finish_attempt_action(
                        inv.tenant_id,
                        inv.invitation_id,
                        message.attempt,
                        AttemptState.EXHAUSTED,
                        now,
                    ),
                    self.invitations.event_action(inv, event),
                ]
            )
            outcome = "exhausted"
        except Conflict:
            current = self.repo.attempt(message.tenant_id, message.invitation_id, message.attempt)
            if current is None or current.state is not AttemptState.EXHAUSTED:
                return "duplicate"  # linked meanwhile: nothing to tell
            outcome = "duplicate"
        if self.notifications is not None:
            self.notifications.notify(
                inv.tenant_id,
                NotificationType.WATERFALL_EXHAUSTED,
                inv.invitation_id,
                {"attempt": message.attempt, "providers": providers, "next": "document_upload"},
                key=f"waterfall_exhausted:{execution_name(inv.invitation_id, message.attempt)}",
            )
        return outcome

    def handle_failed(self, message: WaterfallFailed) -> str:
        """The execution is failing for an infrastructure reason: close the attempt so the customer can
        start again, with the error's name in the invitation's history (the failed-executions alarm
        tells the operator). A redelivery changes nothing."""
        inv = self.invitations.get(message.tenant_id, message.invitation_id)
        if inv is None or self.repo.attempt(message.tenant_id, message.invitation_id, message.attempt) is None:
            return "gone"
        return "failed" if self._fail_attempt(inv, message.attempt, message.error) else "duplicate"

    def _fail_attempt(self, inv: Invitation, number: int, error: dict[str, Any] | None) -> bool:
        """Move a running attempt to failed with its history event, once; False when it had already ended."""
        now = utcnow()
        # Only the error's name: a Cause may quote AWS's message, which is not for the lender.
        name = str((error or {}).get("Error") or "unknown")[:80]
        event = InvitationEvent(
            type="bank_link_failed",
            actor="waterfall",
            at=now,
            details={"attempt": number, "error": name, "next": "retry"},
        )
        try:
            self.repo.transact(
                [
                    self.repo.finish_attempt_action(inv.tenant_id, inv.invitation_id, number, AttemptState.FAILED, now),
                    self.invitations.event_action(inv, event),
                ]
            )
        except Conflict:
            return False
        logger.error(
            "Bank-link attempt failed on an infrastructure error",
            extra={"tenant_id": inv.tenant_id, "invitation_id": inv.invitation_id, "attempt": number, "error": name},
        )
        return True

    def _record_failure(
        self, inv: Invitation, attempt: AttemptRecord, slot_number: int, reason: str, actor: str
    ) -> bool:
        slot = self.repo.slot(inv.tenant_id, inv.invitation_id, attempt.attempt, slot_number)
        if slot is None:
            # The slot's own link request was never processed (lost or still queued): record it anyway.
            if not 1 <= slot_number <= len(attempt.providers):
                return False
            slot = SlotRecord(
                tenant_id=inv.tenant_id,
                invitation_id=inv.invitation_id,
                attempt=attempt.attempt,
                slot=slot_number,
                provider=attempt.providers[slot_number - 1],
            )
            self.repo.request_slot(slot)
            slot = self.repo.slot(inv.tenant_id, inv.invitation_id, attempt.attempt, slot_number) or slot
        if slot.state.closed:
            return False
        return self._close(inv, slot, linked=False, reason=reason, detail=None, actor=actor)

    def _close(
        self,
        inv: Invitation,
        slot: SlotRecord,
        *,
        linked: bool,
        reason: str | None,
        detail: str | None,
        actor: str,
        extra: list[Action] | None = None,
    ) -> bool:
        """Record the slot's decision and its history event once; False when already decided."""
        now = utcnow()
        duration = duration_seconds(slot.started_at, now)
        outcome = "linked" if linked else "failed"
        decision = SlotDecision(
            state=SlotState.LINKED if linked else SlotState.FAILED,
            reason=reason,
            detail=detail,
            decided_by=actor,
            ended_at=now,
            duration_seconds=duration,
        )
        event = InvitationEvent(
            type="bank_link_decision",
            actor=actor,
            at=now,
            details={
                "attempt": slot.attempt,
                "slot": slot.slot,
                "provider": str(slot.provider),
                "outcome": outcome,
                "reason": reason,
                "detail": detail,
                "duration_seconds": duration,
            },
        )
        closed = self.repo.close_slot(slot, decision, [self.invitations.event_action(inv, event), *(extra or [])])
        if closed:
            logger.info(
                "Bank-link decision",
                extra={
                    "invitation_id": inv.invitation_id,
                    "provider": str(slot.provider),
                    "outcome": outcome,
                    "reason": reason,
                },
            )
        return closed

    # --- webhooks ----------------------------------------------------------------------------
    def receive_webhook(self, provider: Provider, headers: Mapping[str, str], body: bytes) -> str:
        """Verify (raises WebhookRejected -> 401, nothing changed) and act on one partner webhook."""
        try:
            verify = self.verifiers.get(provider)
            if verify is None:
                raise NotFound("no such webhook")
            outcome = verify(headers, body)
        except SecretNotSet as exc:
            # Not set up here (its secrets are placeholders): like an unknown provider. Anyone can post to this
            # route, so a warning, not the error (and 500) that would page the operator for an outsider's call.
            # A secret that could not be read (Secrets Manager throttled or unreachable) stays a 5xx: the partner
            # retries.
            logger.warning("Webhook for a provider that is not configured", extra={"provider": str(provider)})
            raise NotFound("no such webhook") from exc
        if outcome is None:
            return "ignored"
        if outcome.provider != provider:
            # Authenticated with this provider's secret, it may act on this provider's sessions only.
            logger.error("A webhook's outcome names another provider", extra={"route": str(provider)})
            raise WebhookRejected(f"a {provider} webhook cannot decide a {outcome.provider} session")
        return self.handle_outcome(outcome)

    def handle_outcome(self, outcome: ProviderOutcome) -> str:
        """Close the session's task: linked -> SendTaskSuccess, failed -> SendTaskFailure(error class).

        Duplicate and late deliveries (slot decided, task closed) return without changing anything.
        """
        from chalicelib.adapters.workflow import TaskResult

        log = {"provider": str(outcome.provider), "event_id": outcome.event_id}
        lookup = self.repo.session_lookup(str(outcome.provider), outcome.session_id)
        if lookup is None:
            logger.info("Webhook for an unknown session", extra=log)
            return "unknown_session"
        tenant_id, invitation_id = lookup.tenant_id, lookup.invitation_id
        inv = self.invitations.get(tenant_id, invitation_id)
        slot = self.repo.slot(tenant_id, invitation_id, lookup.attempt, lookup.slot)
        if inv is None or slot is None:
            return "unknown_session"
        scope = f"webhook:{outcome.provider}"
        if slot.state.closed or self.repo.seen(scope, outcome.event_id):
            logger.info("Webhook after the decision: nothing to do", extra=log)
            return "duplicate"
        token = slot.task_token or ""
        if outcome.linked and outcome.credential:
            # Before the task closes: the data step that follows reads it from the slot.
            self.repo.remember_credential(slot, outcome.credential)
        if outcome.linked:
            result = self.workflow.succeed(token, {"provider": str(outcome.provider), "session_id": outcome.session_id})
        else:
            error = outcome.error_class.value if outcome.error_class else "provider_error"
            result = self.workflow.fail(token, error, "the customer did not link at this provider")
        if result is TaskResult.CLOSED and not (outcome.linked and self._linked_by(slot, outcome.session_id)):
            # Timed out (or answered) before this delivery: the waterfall already moved on.
            logger.info("Late webhook: the provider step had already closed", extra=log)
            return "late"
        now = utcnow()
        extra = [self.repo.dedupe_action(scope, outcome.event_id, int(time.time()) + WEBHOOK_DEDUPE_TTL_SECONDS)]
        if outcome.linked:
            extra.append(
                self.repo.finish_attempt_action(
                    tenant_id,
                    invitation_id,
                    slot.attempt,
                    AttemptState.LINKED,
                    now,
                    linked_provider=str(outcome.provider),
                )
            )
        closed = self._close(
            inv,
            slot,
            linked=outcome.linked,
            reason=None if outcome.linked else (outcome.error_class.value if outcome.error_class else "provider_error"),
            detail=outcome.detail,
            actor=str(outcome.provider),
            extra=extra,
        )
        if not closed:
            return "duplicate"
        if outcome.linked:
            self._portal_status(inv, PortalStatus.BANK_LINKED)
            return "linked"
        return "failed"

    def _linked_by(self, slot: SlotRecord, session_id: str) -> bool:
        """After a crash between SendTaskSuccess and the record: did this session end the run?"""
        output = self.workflow.output(execution_name(slot.invitation_id, slot.attempt))
        result = (output or {}).get("result")
        return isinstance(result, dict) and result.get("session_id") == session_id

    # --- shared ------------------------------------------------------------------------------
    def _portal_status(self, inv: Invitation, target: PortalStatus) -> None:
        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            moved = advance(current.portal_status, target)
            if moved is None:
                return None
            after = current.model_copy(update={"portal_status": moved})
            return after, []

        self.invitations.mutate(inv.tenant_id, inv.invitation_id, change)

    def _event(self, inv: Invitation, kind: str, actor: str, at: datetime, details: dict[str, Any]) -> None:
        self.invitations.append_event(inv, InvitationEvent(type=kind, actor=actor, at=at, details=details))

    def submitted(self, invitation: Invitation) -> bool:
        """Whether the customer submitted the portal for this invitation."""
        return self.repo.submission(invitation.tenant_id, invitation.invitation_id) is not None

    # --- disconnect --------------------------------------------------------------------------
    def disconnect(self, tenant: Tenant, invitation: Invitation) -> DisconnectResult:
        """Delete the customer's bank links, provider sessions and documents (S3 objects and records).

        Running executions are left to time out: their late link requests find no attempt.
        """
        if invitation.tenant_id != tenant.tenant_id:
            raise NotFound("no such invitation")
        forgotten = self.financial.forget(tenant.tenant_id, invitation.invitation_id) if self.financial else None
        objects = self.documents.delete_prefix(document_prefix(tenant.tenant_id, invitation.invitation_id))
        links, sessions, docs = self.repo.delete_all(tenant.tenant_id, invitation.invitation_id)
        logger.info(
            "Bank links and documents deleted",
            extra={"tenant_id": tenant.tenant_id, "invitation_id": invitation.invitation_id, "objects": objects},
        )
        return DisconnectResult(
            bank_link_items=links,
            provider_sessions=sessions,
            documents=docs,
            objects=objects,
            financial_records=forgotten.financial_records if forgotten else 0,
            connections_revoked=forgotten.connections_revoked if forgotten else 0,
            revoke_failed=forgotten.revoke_failed if forgotten else [],
        )
