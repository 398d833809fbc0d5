"""Use cases of the customer portal: what the customer sees, contact details, documents, submit,
and the "send me a fresh link" request of an expired link.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, ValidationError, field_validator

from chalicelib.domain import ids, links
from chalicelib.domain.account import Limit
from chalicelib.domain.invitation import (
    Invitation,
    InvitationEvent,
    JoinedVia,
    PortalStatus,
    Status,
    normalise_email,
    normalise_phone,
    utcnow,
)
from chalicelib.domain.model import Model
from chalicelib.domain.waterfall import (
    DOCUMENT_TYPES,
    MAX_DOCUMENT_BYTES,
    Attempt,
    AttemptState,
    Document,
    DocumentList,
    PresignedUpload,
    UploadRequest,
    advance,
    document_key,
    document_object_prefix,
)
from chalicelib.errors import Conflict, DomainError, NotFound, RateLimited, ValidationFailed
from chalicelib.observability import count, logger

if TYPE_CHECKING:
    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.bank_links import BankLinkRepository
    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.adapters.dynamo.table import Item
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.adapters.ratelimit import RateLimiter
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.bank_links import BankLinkService
    from chalicelib.services.invitations import InvitationService


# "Send me a fresh link" answers whether a link went out, so guesses of the address are bounded.
FRESH_LINK_PER_IP = Limit("fresh-link-ip", 10, 3600)
# An upload slot is settled this long after its presigned POST expired (clock skew between us and S3).
UPLOAD_GRACE_SECONDS = 5 * 60


class ContactDetails(Model):
    """What the customer may correct on the portal (the email is the lender's record)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    first_name: str | None = Field(default=None, max_length=80)
    last_name: str | None = Field(default=None, max_length=80)
    phone: str | None = Field(default=None, max_length=32)

    @field_validator("first_name", "last_name")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None


class PortalState(Model):
    """Everything the portal page (and its JSON status) shows."""

    invitation_id: str
    portal_status: PortalStatus
    bank_link: Attempt | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    documents: list[Document] = Field(default_factory=list)
    submitted: bool = False
    offer_documents: bool = Field(description="true once the waterfall ran out of providers (or any time)")
    can_submit: bool


class Submitted(Model):
    event_id: str
    at: datetime


@dataclass(frozen=True)
class FreshLink:
    """The answer to "send me a fresh link": a link went out, or the customer has an account to sign in at."""

    sent: bool
    sign_in_url: str | None = None


@dataclass(frozen=True)
class PortalContext:
    tenant: Tenant
    invitation: Invitation


class PortalService:
    def __init__(
        self,
        invitations: InvitationService,
        repo: InvitationRepository,
        tenants: TenantRepository,
        links_repo: BankLinkRepository,
        bank_links: BankLinkService,
        documents: DocumentStore,
        queue: QueuePublisher,
        settings: Settings,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.invitations = invitations
        self.repo = repo
        self.tenants = tenants
        self.links_repo = links_repo
        self.bank_links = bank_links
        self.documents = documents
        self.queue = queue
        self.settings = settings
        self.limiter = limiter

    # --- who is this ------------------------------------------------------------------------
    def by_token(self, token: str, *, opened: bool = False) -> PortalContext | None:
        """The invitation and lender a portal token opens, or None (unknown, rotated, expired)."""
        resolved = self.invitations.resolve(token)
        if resolved is None:
            return None
        tenant = self.tenants.get(resolved.tenant_id)
        if tenant is None:
            return None
        inv = self.invitations.opened(resolved.invitation) if opened else resolved.invitation
        return PortalContext(tenant, inv)

    # --- the page ---------------------------------------------------------------------------
    def state(self, ctx: PortalContext, *, active: bool = True) -> PortalState:
        """The portal's state; ``active`` (a page view or status poll) heartbeats the open provider step."""
        inv = ctx.invitation
        if active:
            self.bank_links.heartbeat(inv)
        links_view = self.bank_links.links(inv)
        current = links_view.attempts[-1] if links_view.attempts else None
        docs = [self._document(i, download=False) for i in self._documents(ctx)]
        submitted = self.links_repo.submission(inv.tenant_id, inv.invitation_id) is not None
        fresh = self.repo.get(inv.tenant_id, inv.invitation_id) or inv
        linked = any(a.state is AttemptState.LINKED for a in links_view.attempts)
        uploaded = any(d.state == "uploaded" for d in docs)
        return PortalState(
            invitation_id=inv.invitation_id,
            portal_status=fresh.portal_status,
            bank_link=current,
            attempts=links_view.attempts,
            documents=docs,
            submitted=submitted,
            offer_documents=True,
            can_submit=(linked or uploaded) and not submitted,
        )

    # --- contact details --------------------------------------------------------------------
    def confirm_contact(self, ctx: PortalContext, form: dict[str, str], *, complete: bool = False) -> Invitation:
        """Raises ValidationFailed naming each field.

        ``complete``: the data is the portal's form, which shows the names on file filled in, so a name on
        file sent blank is an error (the customer cleared it, and saving would silently keep it); otherwise
        (the JSON API) a missing or blank field keeps its value. A name never given may stay blank.
        """
        fields: dict[str, str] = {}
        if complete:
            cleared = [n for n in ("first_name", "last_name") if getattr(ctx.invitation, n) and n in form]
            fields = {name: "Field required" for name in cleared if not form[name].strip()}
        details = None
        try:
            details = ContactDetails.model_validate(form)
        except ValidationError as exc:
            for e in exc.errors():
                fields.setdefault(".".join(str(p) for p in e["loc"]) or "form", e["msg"].removeprefix("Value error, "))
        if fields or details is None:
            described = "; ".join(f"{name}: {message}" for name, message in sorted(fields.items()))
            raise ValidationFailed(f"the contact details are not valid ({described})", fields=fields)
        now = utcnow()

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            updates = {k: v for k, v in details.model_dump().items() if v is not None and getattr(current, k) != v}
            after = current.model_copy(update={**updates, "contact_confirmed_at": now})
            event = InvitationEvent(
                type="contact_confirmed", actor="customer", at=now, details={"changed": sorted(updates)}
            )
            return after, [self.repo.event_action(after, event)]

        return self.repo.mutate(ctx.invitation.tenant_id, ctx.invitation.invitation_id, change) or ctx.invitation

    # --- documents --------------------------------------------------------------------------
    def request_upload(
        self,
        ctx: PortalContext,
        request: UploadRequest,
        base_path: str,
        *,
        browser: bool = False,
        origin: str | None = None,
    ) -> PresignedUpload:
        """A presigned POST for one document, scoped to the lender and invitation.

        ``browser``: S3 then redirects the browser to the GET ``complete_url`` after the upload.
        ``origin``: where that URL points when not the API's base URL (a customer signed in at
        ``https://{account}.{base domain}``, whose session cookie lives on that host).
        """
        inv = ctx.invitation
        self._ensure_open(inv)
        if len(self._documents(ctx)) >= 50:
            raise Conflict("at most 50 documents per invitation")
        document_id = ids.new_id("doc")
        key = document_key(inv.tenant_id, inv.invitation_id, document_id, request.filename)
        complete = self.settings.urls.api_path(f"{base_path}/documents/{document_id}/complete", origin)
        post = self.documents.presigned_post(
            key, request.content_type, MAX_DOCUMENT_BYTES, success_redirect=complete if browser else None
        )
        self.links_repo.put_document(
            {
                "tenant_id": inv.tenant_id,
                "invitation_id": inv.invitation_id,
                "document_id": document_id,
                "filename": request.filename,
                "content_type": request.content_type,
                "size": request.size,
                "object_key": key,
                "state": "pending",
                "created_at": utcnow().isoformat(),
            }
        )
        from chalicelib.adapters.documents import UPLOAD_EXPIRES_SECONDS

        return PresignedUpload(
            document_id=document_id,
            url=post["url"],
            fields=post["fields"],
            expires_in=UPLOAD_EXPIRES_SECONDS,
            complete_url=complete,
        )

    def complete_upload(self, ctx: PortalContext, document_id: str) -> Document:
        """Confirm an upload by looking at the stored object; idempotent.

        Raises NotFound (no such document), Conflict (nothing uploaded yet, or not what was declared).
        """
        inv = ctx.invitation
        record = self.links_repo.document(inv.tenant_id, inv.invitation_id, document_id)
        if record is None:
            raise NotFound("no such document")
        if record["state"] == "uploaded":
            return self._document(record, download=False)
        if record["state"] == "removed":
            # Its file came through the link after the customer removed the slot: nobody sees it, so it goes now
            # (its link may still take another: the slot is looked at once more when the link has expired).
            self._discard_file(record)
        if record["state"] != "pending":
            raise Conflict("this upload was removed; upload the file again")
        stored = self.documents.head(record["object_key"])
        if stored is None:
            raise Conflict("the file has not arrived yet; upload it, then confirm")
        stored_type = stored.content_type.split(";", 1)[0].strip().lower()
        if stored.size > MAX_DOCUMENT_BYTES or (stored_type and stored_type not in DOCUMENT_TYPES):
            raise Conflict("the uploaded file is not an accepted document")
        now = utcnow()
        event = InvitationEvent(
            type="document_uploaded",
            actor="customer",
            at=now,
            details={"document_id": document_id, "content_type": record["content_type"], "size": stored.size},
        )
        # A concurrent confirmation may win the condition: same result.
        with contextlib.suppress(Conflict):
            self.links_repo.transact(
                [
                    self.links_repo.mark_uploaded_action(
                        inv.tenant_id,
                        inv.invitation_id,
                        document_id,
                        {"size": stored.size, "uploaded_at": now.isoformat()},
                    ),
                    self.repo.event_action(inv, event),
                ]
            )
        self._advance(inv, PortalStatus.DOCUMENTS_UPLOADED)
        fresh = self.links_repo.document(inv.tenant_id, inv.invitation_id, document_id) or record
        return self._document(fresh, download=False)

    def remove_upload(self, ctx: PortalContext, document_id: str) -> None:
        """Remove an upload whose file never arrived (the customer gave up on it); idempotent.

        Raises NotFound (no such document), Conflict (the file arrived: it stays for the lender).
        """
        inv = ctx.invitation
        self._ensure_open(inv)
        record = self.links_repo.document(inv.tenant_id, inv.invitation_id, document_id)
        if record is None:
            raise NotFound("no such document")
        if record["state"] == "pending":
            action = self.links_repo.mark_removed_action(
                inv.tenant_id, inv.invitation_id, document_id, utcnow().isoformat()
            )
            with contextlib.suppress(Conflict):  # confirmed (or settled) meanwhile: read what it became
                self.links_repo.transact([action])
            record = self.links_repo.document(inv.tenant_id, inv.invitation_id, document_id) or record
        if record["state"] == "uploaded":
            raise Conflict("this file has arrived and stays with your documents")

    def lender_documents(self, tenant: Tenant, invitation_id: str) -> DocumentList:
        inv = self.repo.get(tenant.tenant_id, invitation_id) if invitation_id.startswith("inv_") else None
        if inv is None:
            raise NotFound("no such invitation")
        items = self._documents(PortalContext(tenant, inv))
        return DocumentList(items=[self._document(i, download=i["state"] == "uploaded") for i in items])

    def _documents(self, ctx: PortalContext) -> list[Item]:
        """The invitation's documents, uploaded or still able to arrive.

        An upload slot whose presigned POST has expired is settled once, when next seen: its file came
        (the browser never returned to confirm it) -> uploaded; no file -> ``expired``, hidden from the
        customer and the lender alike, so an abandoned "Upload a document" does not wait forever. One the
        customer removed (``removed``) is hidden too.
        """
        from chalicelib.adapters.documents import UPLOAD_EXPIRES_SECONDS

        inv = ctx.invitation
        cutoff = utcnow() - timedelta(seconds=UPLOAD_EXPIRES_SECONDS + UPLOAD_GRACE_SECONDS)
        items = self.links_repo.documents(inv.tenant_id, inv.invitation_id)
        kept: list[Item] = []
        for item in items:
            link_expired = datetime.fromisoformat(item["created_at"]) < cutoff
            if item["state"] == "pending" and link_expired:
                item = self._settle(ctx, item)
            elif item["state"] == "removed" and link_expired and not item.get("discarded_at"):
                self._discard(item)
            if item["state"] not in ("expired", "removed"):
                kept.append(item)
        return kept

    def _discard_file(self, item: Item) -> None:
        """Delete whatever file reached a removed upload slot (every version: the bucket is versioned)."""
        prefix = document_object_prefix(item["tenant_id"], item["invitation_id"], item["document_id"])
        if self.documents.delete_prefix(prefix):
            logger.info(
                "Deleted a file that arrived for a removed upload",
                extra={"tenant_id": item["tenant_id"], "document_id": item["document_id"]},
            )

    def _discard(self, item: Item) -> None:
        """A removed slot whose upload link has expired: its late file (if one came) deleted, then never again."""
        self._discard_file(item)
        with contextlib.suppress(Conflict):
            self.links_repo.mark_discarded(
                item["tenant_id"], item["invitation_id"], item["document_id"], utcnow().isoformat()
            )

    def _settle(self, ctx: PortalContext, item: Item) -> Item:
        inv = ctx.invitation
        if self.documents.head(item["object_key"]) is not None:
            try:
                self.complete_upload(ctx, item["document_id"])
            except Conflict:  # not an accepted document: as good as no file
                pass
            else:
                return self.links_repo.document(inv.tenant_id, inv.invitation_id, item["document_id"]) or item
        with contextlib.suppress(Conflict):  # a concurrent view settled it first
            self.links_repo.transact(
                [self.links_repo.mark_expired_action(inv.tenant_id, inv.invitation_id, item["document_id"])]
            )
        return self.links_repo.document(inv.tenant_id, inv.invitation_id, item["document_id"]) or item

    def _document(self, item: Item, *, download: bool) -> Document:
        return Document(
            document_id=item["document_id"],
            filename=item["filename"],
            content_type=item["content_type"],
            size=item["size"],
            state=item["state"],
            created_at=datetime.fromisoformat(item["created_at"]),
            uploaded_at=datetime.fromisoformat(item["uploaded_at"]) if item.get("uploaded_at") else None,
            download_url=self.documents.presigned_get(item["object_key"], item["filename"]) if download else None,
        )

    # --- submit -----------------------------------------------------------------------------
    def submit(self, ctx: PortalContext) -> Submitted:
        """Publish ``portal_completed`` once (the same event id on every retry).

        Raises Conflict until a bank account is linked or a document uploaded.
        """
        inv = ctx.invitation
        self._ensure_open(inv)
        existing = self.links_repo.submission(inv.tenant_id, inv.invitation_id)
        if existing is None:
            state = self.state(ctx, active=False)
            if not state.can_submit:
                raise Conflict("link a bank account or upload a document before submitting")
            now = utcnow()
            body = {
                "type": "portal_completed",
                "event_id": str(uuid.uuid4()),
                "tenant_id": inv.tenant_id,
                "invitation_id": inv.invitation_id,
                "at": now.isoformat(),
            }
            event = InvitationEvent(
                type="portal_submitted", actor="customer", at=now, details={"event_id": body["event_id"]}
            )

            joining: list[bool] = []

            def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
                joining[:] = [False]
                if self.links_repo.submission(current.tenant_id, current.invitation_id) is not None:
                    return None  # a concurrent submit won
                actions = [
                    self.links_repo.submission_action(current.tenant_id, current.invitation_id, body),
                    self.repo.event_action(current, event),
                ]
                if current.status is not Status.PENDING:
                    return current, actions
                # Submitting through the emailed link is following the invitation: the customer joined.
                joining[:] = [True]
                after = current.joined(JoinedVia.PORTAL, now)
                joined = InvitationEvent(type="joined", actor="customer", at=now, details={"via": "portal"})
                return after, [*actions, self.repo.event_action(after, joined)]

            if self.repo.mutate(inv.tenant_id, inv.invitation_id, change) is not None and joining == [True]:
                count("InvitationJoined")
            existing = self.links_repo.submission(inv.tenant_id, inv.invitation_id)
            if existing is None:
                raise NotFound("no such invitation")
        body = existing["event"]
        if not existing.get("published"):
            # Published after the record: a lost publish is retried by the next submit, same event id.
            self.queue.send(self.settings.portal_events_queue_url, body)
            self.links_repo.mark_submission_published(inv.tenant_id, inv.invitation_id)
        return Submitted(event_id=body["event_id"], at=datetime.fromisoformat(body["at"]))

    # --- old links ---------------------------------------------------------------------------
    def sign_in_address(self, token: str) -> tuple[str, Tenant] | None:
        """The account sign-in URL (and the lender) of the customer an old portal link was sent to, once they
        have joined with a password (which retired that link); None otherwise. Holding the link is the proof:
        it is the customer's own, and the address names a sign-in page, nothing more."""
        found = self._old_link(token)
        url = self._account_url(*found) if found else None
        return (url, found[0]) if url and found else None

    def _old_link(self, token: str) -> tuple[Tenant, Invitation] | None:
        if not links.looks_like_token(token):
            return None
        record = self.repo.portal_token(links.token_hash(token))
        if record is None:
            return None
        inv = self.repo.get(record.tenant_id, record.invitation_id)
        tenant = self.tenants.get(record.tenant_id)
        return (tenant, inv) if inv is not None and tenant is not None else None

    def _account_url(self, tenant: Tenant, inv: Invitation) -> str | None:
        if inv.status is Status.JOINED and inv.joined_via is JoinedVia.SIGN_UP and inv.account_subdomain:
            return self.settings.urls.account_login(tenant, inv.account_subdomain)
        return None

    # --- fresh link -------------------------------------------------------------------------
    def fresh_link(self, token: str, email: str, ip: str = "") -> FreshLink:
        """Queue a new link when ``email`` is the address on file of the invitation this (expired or
        replaced) token belonged to and it is still PENDING (``sent``). A customer who has joined with a
        password gets no link but their account's sign-in address (``sign_in_url``), again only for the
        address on file. Why nothing was sent is never told: an unknown link, another address, a cooldown
        or the send limit all give the same answer. Raises RateLimited (per IP)."""
        if self.limiter is not None:
            decision = self.limiter.hit(FRESH_LINK_PER_IP, ip or "-")
            if not decision.allowed:
                raise RateLimited("too many requests for a fresh link", retry_after=decision.retry_after)
        try:
            wanted = normalise_email(email)
        except ValueError:
            return FreshLink(sent=False)
        found = self._old_link(token)
        if found is None or not ids.same(found[1].email, wanted):
            return FreshLink(sent=False)
        tenant, inv = found
        sign_in_url = self._account_url(tenant, inv)
        if sign_in_url is not None:
            return FreshLink(sent=False, sign_in_url=sign_in_url)
        if inv.status is not Status.PENDING:
            return FreshLink(sent=False)
        try:
            self.invitations.send(tenant, inv.invitation_id, actor="customer", reason="fresh_link")
        except DomainError as exc:  # cooldown, send limit, suppressed
            logger.info("Fresh link not sent", extra={"invitation_id": inv.invitation_id, "error_code": exc.code})
            return FreshLink(sent=False)
        return FreshLink(sent=True)

    # --- shared -----------------------------------------------------------------------------
    def _ensure_open(self, inv: Invitation) -> None:
        if inv.status is Status.INACTIVE:
            raise Conflict("this portal is closed")

    def _advance(self, inv: Invitation, target: PortalStatus) -> None:
        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            moved = advance(current.portal_status, target)
            return (current.model_copy(update={"portal_status": moved}), []) if moved else None

        self.repo.mutate(inv.tenant_id, inv.invitation_id, change)
