"""Use cases for invitations: create, list, edit, delete, resend, links, history, communications."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from chalicelib.domain import ids, links
from chalicelib.domain.invitation import (
    PORTAL_LINK,
    Channel,
    Communication,
    CommunicationStatus,
    CreateInvitation,
    DeliveryStatus,
    EditInvitation,
    Invitation,
    InvitationEvent,
    InvitationFields,
    PortalStatus,
    Source,
    Status,
    link_expiry,
    search_text,
    utcnow,
)
from chalicelib.domain.model import Model
from chalicelib.domain.staff import StaffMember, StaffStatus, owner_index
from chalicelib.errors import (
    ConcurrentModification,
    Conflict,
    DeliveryRefused,
    DomainError,
    IdempotencyMismatch,
    NotFound,
    RateLimited,
    UpstreamError,
    ValidationFailed,
)
from chalicelib.observability import count, logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.adapters.dynamo.staff import StaffRepository
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class ListQuery(Model):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    owner: str | None = Field(
        default=None,
        max_length=120,
        description="A free-text owner, as stored (case aside); a staff member's invitations: owner_staff_id",
    )
    owner_staff_id: str | None = Field(
        default=None, max_length=44, description="Invitations owned by this staff member"
    )
    email: str | None = Field(default=None, max_length=254)
    delivery_status: DeliveryStatus | None = None
    q: str | None = Field(
        default=None, max_length=254, description="Search: a full email address, or part of a name or email"
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2000)


class InvitationPage(Model):
    items: list[Invitation]
    next_cursor: str | None = Field(
        default=None,
        description="Where the next page starts; null on the last page. A page may hold fewer items than "
        "`limit`, even none, and still have a next_cursor: keep following it until it is null.",
    )


class HistoryPage(Model):
    items: list[InvitationEvent]
    next_cursor: str | None = None


class PortalLink(Model):
    invitation_id: str
    url: str
    expires_at: datetime


class ResendRequest(Model):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=100)


class ResendOutcome(Model):
    invitation_id: str
    outcome: Literal["queued", "not_found", "refused", "rate_limited", "error"]
    reason: str | None = None
    retry_after: int | None = None


class ResendResult(Model):
    results: list[ResendOutcome]


class CommunicationQuery(Model):
    """``invitation_id`` gives that invitation's messages, oldest first, in one page; without it, the
    lender's whole log, newest first, paginated. The filters apply to both."""

    model_config = ConfigDict(extra="forbid")

    invitation_id: str | None = Field(default=None, min_length=1, max_length=64)
    channel: Literal["email", "sms"] | None = None
    outcome: CommunicationStatus | None = None
    since: date | None = Field(default=None, description="First day (UTC), inclusive")
    until: date | None = Field(default=None, description="Last day (UTC), inclusive")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _dates_in_order(self) -> CommunicationQuery:
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self

    def matches(self, comm: Communication) -> bool:
        day = comm.created_at.astimezone(UTC).date()
        return (
            (self.channel is None or comm.channel == self.channel)
            and (self.outcome is None or comm.status == self.outcome.value)
            and (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
        )


class CommunicationLog(Model):
    items: list[Communication]
    next_cursor: str | None = None


@dataclass
class ResolvedLink:
    tenant_id: str
    invitation: Invitation


class InvitationService:
    def __init__(
        self,
        repo: InvitationRepository,
        queue: QueuePublisher,
        settings: Settings,
        staff: StaffRepository | None = None,
        *,
        link_key: Callable[[], str],
    ) -> None:
        self.repo = repo
        self.queue = queue
        self.settings = settings
        self.staff = staff
        # The current link signing key (a secret, read when a link is derived: it can be replaced while warm).
        self.link_key = link_key

    def _owner(self, tenant: Tenant, owner: str | None, owner_staff_id: str | None) -> tuple[str, str | None]:
        """(owner text, owner_staff_id): a staff owner's text is their name at assignment.

        Raises ValidationFailed naming owner_staff_id when it is not an active member of this lender."""
        if not owner_staff_id:
            if not owner:
                raise ValidationFailed("owner is required", fields={"owner": "is required"})
            return owner, None
        member = self.staff.get(tenant.tenant_id, owner_staff_id) if self.staff else None
        if member is None or member.status is not StaffStatus.ACTIVE:
            reason = "is not an active staff member of this lender"
            raise ValidationFailed(f"owner_staff_id {reason}", fields={"owner_staff_id": reason})
        return member.display_name[:120], member.staff_id

    def owner_index(self, tenant: Tenant) -> dict[str, StaffMember]:
        """The active staff an uploaded owner cell can name (``domain.staff.owner_index``)."""
        return owner_index(self.staff.all(tenant.tenant_id)) if self.staff else {}

    # --- create -------------------------------------------------------------------------------
    def create(
        self,
        tenant: Tenant,
        request: CreateInvitation,
        *,
        idempotency_key: str | None = None,
        source: Source = Source.LENDER,
        actor: str = "lender",
    ) -> Invitation:
        """Create a PENDING invitation and, unless ``send`` is false, queue its first send.

        Raises Conflict (an open invitation for the same email and business name exists),
        IdempotencyMismatch (the key was used with another body).
        """
        body_hash = hashlib.sha256(json.dumps(request.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        if idempotency_key:
            replay = self._replay(tenant, idempotency_key, body_hash)
            if replay is not None:
                return replay
        owner, owner_staff_id = self._owner(tenant, request.owner, request.owner_staff_id)
        now = utcnow()
        settings = tenant.settings
        inv = Invitation(
            invitation_id=ids.new_id("inv"),
            tenant_id=tenant.tenant_id,
            email=request.email,
            owner=owner,
            owner_staff_id=owner_staff_id,
            first_name=request.first_name,
            last_name=request.last_name,
            phone=request.phone,
            business_legal_name=request.business_legal_name,
            banking_integration=request.banking_integration or settings.default_banking_integration,
            channel=request.channel,
            locale=request.locale or settings.locale,
            source=source,
            created_at=now,
            updated_at=now,
        )
        events = [InvitationEvent(type="created", actor=actor, at=now, details={"source": source.value})]
        extra: list[Action] = []
        send_id = None
        if request.send:
            inv, send_id, actions = self._prepare_send(tenant, inv, "invitation", now)
            extra.extend(actions)
            events.append(
                InvitationEvent(
                    type="send_requested",
                    actor=actor,
                    at=now,
                    details={"channel": inv.channel.value, "send_id": send_id},
                )
            )
        else:
            inv, actions = self._rotate_link(tenant, inv, now)
            extra.extend(actions)
        extra.extend(self.repo.event_action(inv, e) for e in events)
        if idempotency_key:
            extra.append(
                self.repo.idempotency_action(
                    tenant.tenant_id,
                    "create_invitation",
                    idempotency_key,
                    body_hash,
                    {"invitation_id": inv.invitation_id},
                    int(time.time()) + IDEMPOTENCY_TTL_SECONDS,
                )
            )
        try:
            self.repo.create(inv, extra)
        except DomainError:
            if idempotency_key:
                replay = self._replay(tenant, idempotency_key, body_hash)
                if replay is not None:
                    return replay
            raise
        logger.info("Invitation created", extra={"tenant_id": tenant.tenant_id, "invitation_id": inv.invitation_id})
        count("InvitationCreated")
        if send_id:
            self.enqueue_send(inv, send_id)
        return inv

    def _replay(self, tenant: Tenant, key: str, body_hash: str) -> Invitation | None:
        record = self.repo.idempotency_record(tenant.tenant_id, "create_invitation", key)
        if record is None:
            return None
        if record["body_hash"] != body_hash:
            raise IdempotencyMismatch(
                "this Idempotency-Key was already used with a different request body",
                fields={"Idempotency-Key": "reused with another body"},
            )
        existing = self.repo.get(tenant.tenant_id, record["response"]["invitation_id"])
        if existing is None:
            raise NotFound("the invitation created with this Idempotency-Key was since deleted")
        return existing

    # --- reads --------------------------------------------------------------------------------
    def get(self, tenant: Tenant, invitation_id: str) -> Invitation:
        inv = self.repo.get(tenant.tenant_id, invitation_id) if invitation_id.startswith("inv_") else None
        if inv is None:
            raise NotFound("no such invitation")
        return inv

    def get_many(self, tenant: Tenant, invitation_ids: list[str]) -> dict[str, Invitation]:
        """The tenant's invitations among ``invitation_ids`` (those that still exist), by id."""
        return self.repo.get_many(tenant.tenant_id, invitation_ids)

    def search(self, tenant: Tenant, query: ListQuery) -> InvitationPage:
        text = " ".join((query.q or "").split()).lower() or None
        if text and not query.email and "@" in text:
            # A whole address is looked up through its email guard, not by reading the list.
            try:
                query = query.model_copy(
                    update={"email": InvitationFields.model_validate({"email": text, "owner": "-"}).email, "q": None}
                )
                text = None
            except ValidationError:
                pass
        if query.email:
            try:
                email = InvitationFields.model_validate({"email": query.email, "owner": "-"}).email
            except ValidationError as exc:
                raise ValidationFailed("email is not valid", fields={"email": "not a valid email address"}) from exc
            page, cursor = self.repo.email_page(tenant.tenant_id, email, query.limit, query.cursor)
            found = [
                i
                for i in page
                if (query.status is None or i.status == query.status)
                and (
                    query.owner is None or (i.owner_staff_id is None and i.owner.lower() == query.owner.strip().lower())
                )
                and (query.owner_staff_id is None or i.owner_staff_id == query.owner_staff_id)
                and (query.delivery_status is None or i.delivery_status == query.delivery_status)
                and (text is None or text in search_text(i))
            ]
            return InvitationPage(items=found, next_cursor=cursor)
        filters = {
            k: str(v.value if hasattr(v, "value") else v)
            for k, v in {
                "status": query.status,
                "owner": query.owner,
                "owner_staff_id": query.owner_staff_id,
                "delivery_status": query.delivery_status,
            }.items()
            if v is not None
        }
        if "owner" in filters:
            filters["owner"] = filters["owner"].strip()
        items, cursor = self.repo.page(tenant.tenant_id, filters, query.limit, query.cursor, text=text)
        return InvitationPage(items=items, next_cursor=cursor)

    def history(self, tenant: Tenant, invitation_id: str, limit: int = 100, cursor: str | None = None) -> HistoryPage:
        self.get(tenant, invitation_id)
        items, next_cursor = self.repo.history(tenant.tenant_id, invitation_id, limit, cursor)
        return HistoryPage(items=items, next_cursor=next_cursor)

    def communications(self, tenant: Tenant, invitation_id: str) -> CommunicationLog:
        self.get(tenant, invitation_id)
        return CommunicationLog(items=self.repo.communications(tenant.tenant_id, invitation_id))

    def communication_log(self, tenant: Tenant, query: CommunicationQuery) -> CommunicationLog:
        """One invitation's messages (``invitation_id``), or one page of the lender's whole log."""
        if query.invitation_id is not None:
            log = self.communications(tenant, query.invitation_id)
            return CommunicationLog(items=[c for c in log.items if query.matches(c)])
        items, cursor = self.repo.communication_page(
            tenant.tenant_id,
            channel=query.channel,
            status=query.outcome.value if query.outcome else None,
            since=query.since,
            until=query.until,
            limit=query.limit,
            cursor=query.cursor,
        )
        return CommunicationLog(items=items, next_cursor=cursor)

    # --- edit / delete ------------------------------------------------------------------------
    def edit(self, tenant: Tenant, invitation_id: str, patch: EditInvitation, actor: str = "lender") -> Invitation:
        """Raises Conflict when not PENDING, ConcurrentModification when another edit won."""
        before = self.get(tenant, invitation_id)
        if patch.expected_version is not None and patch.expected_version != before.version:
            raise ConcurrentModification(
                f"the invitation is at version {before.version}, not {patch.expected_version}; reload it"
            )
        before.ensure_editable()
        changes = patch.model_dump(exclude_unset=True, exclude={"send", "expected_version"})
        if "owner" in changes and "owner_staff_id" not in changes:
            changes["owner_staff_id"] = None  # a free-text owner replaces a staff owner
        merged = before.model_dump(include=set(InvitationFields.model_fields)) | changes
        try:
            fields = InvitationFields.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed.of_input(exc) from exc
        if changes.get("owner_staff_id"):
            owner, owner_staff_id = self._owner(tenant, None, changes["owner_staff_id"])
            fields = fields.model_copy(update={"owner": owner, "owner_staff_id": owner_staff_id})
        now = utcnow()
        after = before.model_copy(update={**fields.model_dump(), "updated_at": now, "version": before.version + 1})
        if after.banking_integration is None:
            after.banking_integration = tenant.settings.default_banking_integration
        changed = sorted(k for k in changes if getattr(before, k) != getattr(after, k))
        events = [InvitationEvent(type="edited", actor=actor, at=now, details={"fields": changed})]
        extra: list[Action] = []
        send_id = None
        if patch.send:
            after.ensure_resendable(
                now, self.settings.invitation_resend_cooldown_seconds, self.settings.invitation_max_sends
            )
            self._ensure_deliverable(tenant, after)
            after, send_id, actions = self._prepare_send(tenant, after, "invitation", now, old=before)
            extra.extend(actions)
            events.append(
                InvitationEvent(
                    type="send_requested",
                    actor=actor,
                    at=now,
                    details={"channel": after.channel.value, "send_id": send_id},
                )
            )
        extra.extend(self.repo.event_action(after, e) for e in events)
        self.repo.save(before, after, extra)
        if send_id:
            self.enqueue_send(after, send_id)
        return after

    def delete(self, tenant: Tenant, invitation_id: str) -> None:
        inv = self.get(tenant, invitation_id)
        inv.ensure_deletable()
        self.repo.delete(inv, self._token_hash(inv))
        logger.info("Invitation deleted", extra={"tenant_id": tenant.tenant_id, "invitation_id": invitation_id})

    # --- sending ------------------------------------------------------------------------------
    def resend(self, tenant: Tenant, request: ResendRequest, actor: str = "lender") -> ResendResult:
        """Resend each invitation; every id gets its own outcome, one failure never hides another."""
        results = []
        for invitation_id in dict.fromkeys(request.ids):
            try:
                self.send(tenant, invitation_id, actor=actor)
                results.append(ResendOutcome(invitation_id=invitation_id, outcome="queued"))
            except NotFound:
                results.append(ResendOutcome(invitation_id=invitation_id, outcome="not_found"))
            except RateLimited as exc:
                results.append(
                    ResendOutcome(
                        invitation_id=invitation_id,
                        outcome="rate_limited",
                        reason=exc.message,
                        retry_after=exc.retry_after,
                    )
                )
            except UpstreamError as exc:
                results.append(ResendOutcome(invitation_id=invitation_id, outcome="error", reason=exc.message))
            except DomainError as exc:
                results.append(ResendOutcome(invitation_id=invitation_id, outcome="refused", reason=exc.message))
        return ResendResult(results=results)

    def send(self, tenant: Tenant, invitation_id: str, actor: str = "lender", reason: str = "invitation") -> Invitation:
        """Queue a send of the invitation with a fresh link (the previous link stops working)."""
        before = self.get(tenant, invitation_id)
        now = utcnow()
        before.ensure_resendable(
            now, self.settings.invitation_resend_cooldown_seconds, self.settings.invitation_max_sends
        )
        self._ensure_deliverable(tenant, before)
        after, send_id, actions = self._prepare_send(tenant, before, reason, now, old=before)
        after = after.model_copy(update={"version": before.version + 1, "updated_at": now})
        event = InvitationEvent(
            type="send_requested",
            actor=actor,
            at=now,
            details={"channel": after.channel.value, "send_id": send_id, "reason": reason},
        )
        self.repo.save(before, after, [*actions, self.repo.event_action(after, event)])
        self.enqueue_send(after, send_id)
        return after

    def _ensure_deliverable(self, tenant: Tenant, inv: Invitation) -> None:
        """Refuse a send none of whose channels can deliver: a suppressed address, an opted-out number."""
        if inv.channel.uses_sms and inv.phone and self.repo.suppressed(tenant.tenant_id, inv.phone):
            if not inv.channel.uses_email or self.repo.suppressed(tenant.tenant_id, inv.email):
                raise DeliveryRefused(
                    "this phone number opted out of SMS (the customer replied STOP); it is never texted again "
                    "unless they opt back in: invite by email or correct the number"
                )
            return
        if inv.channel.uses_sms:
            return
        suppressed = self.repo.suppressed(tenant.tenant_id, inv.email)
        if suppressed:
            raise DeliveryRefused(
                f"email to this address is suppressed after a {suppressed['reason']}; "
                "correct the address or invite by SMS"
            )

    def _rotate_link(
        self, tenant: Tenant, inv: Invitation, now: datetime, old: Invitation | None = None
    ) -> tuple[Invitation, list[Action]]:
        rotated = inv.model_copy(
            update={
                "link_nonce": links.new_nonce(),
                "link_version": inv.link_version + 1,
                "link_expires_at": link_expiry(now, tenant.settings.invitation_ttl_days),
            }
        )
        actions = self.repo.token_actions(
            rotated, self._token_hash(rotated), self._token_hash(old) if old else None, PORTAL_LINK
        )
        return rotated, actions

    def rotate_link_actions(
        self, tenant: Tenant, inv: Invitation, now: datetime, reason: str, actor: str = "system"
    ) -> tuple[Invitation, list[Action]]:
        """Replace the invitation's portal link (the emailed one stops working) when it has one: the
        invitation and actions to write with the caller's own change (e.g. a password join)."""
        if inv.link_nonce is None:
            return inv, []
        rotated, actions = self._rotate_link(tenant, inv, now, old=inv)
        event = InvitationEvent(type="link_rotated", actor=actor, at=now, details={"reason": reason})
        return rotated, [*actions, self.repo.event_action(rotated, event)]

    def _prepare_send(
        self,
        tenant: Tenant,
        inv: Invitation,
        reason: str,
        now: datetime,
        old: Invitation | None = None,
        *,
        send_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> tuple[Invitation, str, list[Action]]:
        rotated, actions = self._rotate_link(tenant, inv, now, old)
        send_id = send_id or ids.new_id("snd")
        rotated = rotated.model_copy(
            update={
                "send_count": inv.send_count + 1,
                "last_send_requested_at": now,
                "delivery_status": DeliveryStatus.QUEUED,
            }
        )
        actions.append(self.repo.send_request_action(rotated, send_id, reason, now, details=details))
        return rotated, send_id, actions

    def system_send(
        self,
        tenant: Tenant,
        inv: Invitation,
        *,
        reason: str,
        channel: Channel,
        send_id: str,
        now: datetime,
        details: dict[str, Any] | None = None,
        keep_delivery_status: bool = False,
    ) -> tuple[Invitation, list[Action]]:
        """The invitation and actions of a send the system asks for (SMS after a hard bounce, a
        retry after a transient bounce), to be written with the caller's own change; the caller
        enqueues it with :meth:`enqueue_send` after writing. Only ``channel`` is used. The lender's
        cooldown does not apply, the send limit does; ``send_id`` is the caller's, so a redelivered
        trigger cannot queue a second send. Raises Conflict / DeliveryRefused when it may not go out.
        """
        inv.ensure_resendable(now, 0, self.settings.invitation_max_sends)
        self._ensure_deliverable(tenant, inv.model_copy(update={"channel": channel}))
        extra = {**(details or {}), "channel_override": channel.value}
        after, _, actions = self._prepare_send(tenant, inv, reason, now, old=inv, send_id=send_id, details=extra)
        if keep_delivery_status:
            after = after.model_copy(update={"delivery_status": inv.delivery_status})
        return after, actions

    def enqueue_send(self, inv: Invitation, send_id: str, delay_seconds: int = 0) -> None:
        """Queue a written send request (the send worker ignores one already processed).

        If SQS is down the send request stays in the outbox, where the relay finds it.
        """
        try:
            self.queue.send(
                self.settings.send_queue_url,
                send_message(inv.tenant_id, inv.invitation_id, send_id),
                delay_seconds=delay_seconds,
            )
        except UpstreamError:
            logger.warning(
                "Send left in the outbox for the relay",
                extra={"tenant_id": inv.tenant_id, "invitation_id": inv.invitation_id, "send_id": send_id},
            )

    def relay_outbox(self, older_than_seconds: int = 120) -> int:
        """Re-enqueue send requests whose SQS message never left (the send worker is idempotent)."""
        stale = self.repo.stale_send_requests(utcnow() - timedelta(seconds=older_than_seconds))
        bodies = [send_message(i["tenant_id"], i["invitation_id"], i["send_id"]) for i in stale]
        failed = self.queue.send_batch(self.settings.send_queue_url, bodies) if bodies else []
        return len(bodies) - len(failed)

    # --- links --------------------------------------------------------------------------------
    def token_for(self, inv: Invitation) -> str | None:
        if not inv.link_nonce:
            return None
        return links.derive_token(self.link_key(), PORTAL_LINK, inv.invitation_id, inv.link_nonce)

    def token_hash_of(self, inv: Invitation | None) -> str | None:
        """Hash of the invitation's current portal token (the key of its lookup item)."""
        token = self.token_for(inv) if inv else None
        return links.token_hash(token) if token else None

    _token_hash = token_hash_of

    def portal_url(self, inv: Invitation) -> str:
        """The customer's portal link; Conflict when the invitation holds none (its link was withdrawn)."""
        token = self.token_for(inv)
        if token is None:
            raise Conflict("this customer has no portal link: it was withdrawn")
        return self.settings.urls.portal(token)

    def portal_link(self, tenant: Tenant, invitation_id: str, actor: str = "lender") -> PortalLink:
        """The customer's current portal URL; an expired (or never issued) link is rotated first."""
        inv = self.get(tenant, invitation_id)
        if inv.status is Status.INACTIVE:
            raise Conflict("this customer is INACTIVE: their portal is closed")
        now = utcnow()
        if inv.link_expired(now):
            before = inv
            inv, actions = self._rotate_link(tenant, inv, now, old=before)
            inv = inv.model_copy(update={"version": before.version + 1, "updated_at": now})
            event = InvitationEvent(type="link_rotated", actor=actor, at=now, details={"reason": "expired"})
            self.repo.save(before, inv, [*actions, self.repo.event_action(inv, event)])
        assert inv.link_expires_at is not None
        return PortalLink(invitation_id=inv.invitation_id, url=self.portal_url(inv), expires_at=inv.link_expires_at)

    def opened(self, inv: Invitation) -> Invitation:
        """The customer opened the portal: the first time moves portal_status to ``opened``."""
        if inv.portal_status is not PortalStatus.NOT_STARTED:
            return inv

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            if current.portal_status is not PortalStatus.NOT_STARTED:
                return None
            after = current.model_copy(update={"portal_status": PortalStatus.OPENED})
            event = InvitationEvent(type="portal_opened", actor="customer", at=utcnow())
            return after, [self.repo.event_action(after, event)]

        saved = self.repo.mutate(inv.tenant_id, inv.invitation_id, change)
        if saved is None:
            return inv
        count("InvitationOpened")
        return saved

    def resolve(self, token: str) -> ResolvedLink | None:
        """The invitation a portal token opens, or None when unknown, rotated or expired."""
        if not links.looks_like_token(token):
            return None
        record = self.repo.portal_token(links.token_hash(token))
        if record is None:
            return None
        inv = self.repo.get(record.tenant_id, record.invitation_id)
        if inv is None or inv.status is Status.INACTIVE or inv.link_expired(utcnow()):
            return None
        current = self.token_for(inv)
        if current is None or not ids.same(current, token):
            return None
        return ResolvedLink(tenant_id=record.tenant_id, invitation=inv)


def send_message(tenant_id: str, invitation_id: str, send_id: str) -> dict[str, Any]:
    return {"type": "send", "tenant_id": tenant_id, "invitation_id": invitation_id, "send_id": send_id}


# Sends per send-queue message when many are queued at once (an import's rows): the send worker takes up to 10
# messages per invocation, so at most 100 sends in its 30 s.
SENDS_PER_MESSAGE = 10


def send_batch_messages(tenant_id: str, sends: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Send-queue messages for ``sends`` ((invitation id, send id) pairs of one lender), SENDS_PER_MESSAGE a message
    (``services.delivery.SendBatch``)."""
    return [
        {
            "type": "send_batch",
            "tenant_id": tenant_id,
            "sends": [{"invitation_id": i, "send_id": s} for i, s in sends[start : start + SENDS_PER_MESSAGE]],
        }
        for start in range(0, len(sends), SENDS_PER_MESSAGE)
    ]
