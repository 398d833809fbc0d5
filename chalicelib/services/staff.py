"""Use cases for lender staff: console sign-up, sign-in and sessions, teammates and their roles.

The console's pages call these and the same services as the API; a session names one staff member
of one lender, and that lender is the only tenant any console request can reach.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.domain import ids, links
from chalicelib.domain.sending_domain import sending_address
from chalicelib.domain.staff import (
    INVITE_PURPOSE,
    INVITE_TTL_SECONDS,
    LOGIN_PER_ACCOUNT_IP,
    LOGIN_PER_IP,
    RESET_PER_ACCOUNT,
    RESET_PER_IP,
    RESET_PURPOSE,
    RESET_TTL_SECONDS,
    SESSION_TTL_SECONDS,
    NewStaff,
    Role,
    StaffEmail,
    StaffMember,
    StaffStatus,
    check_password,
    ensure_change_allowed,
)
from chalicelib.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.adapters.dynamo.staff import StaffRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Mailer
    from chalicelib.adapters.passwords import PasswordHasher
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.adapters.ratelimit import RateLimiter
    from chalicelib.config import Settings
    from chalicelib.domain.account import Limit
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.tenants import CreateTenant, TenantCreated, TenantService


@dataclass(frozen=True)
class ConsoleSession:
    """A live console session: who is signed in, for which lender, and the session's CSRF token."""

    tenant: Tenant
    staff: StaffMember
    csrf_token: str


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    session: ConsoleSession


SHOWN_ONCE_PURPOSE = "first-api-key"
# Long enough to survive a slow page load; the table's TTL removes a key nobody came to see.
SHOWN_ONCE_TTL_SECONDS = 10 * 60


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def staff_link_token(link_key: str, staff_id: str, purpose: str, nonce: str) -> str:
    return links.derive_token(link_key, purpose, staff_id, nonce)


class StaffService:
    def __init__(
        self,
        tenants: TenantService,
        tenant_repo: TenantRepository,
        repo: StaffRepository,
        limiter: RateLimiter,
        hasher: PasswordHasher,
        settings: Settings,
        queue: QueuePublisher | None = None,
        *,
        link_key: Callable[[], str],
    ) -> None:
        self.queue = queue
        self.tenants = tenants
        self.tenant_repo = tenant_repo
        self.repo = repo
        self.limiter = limiter
        self.hasher = hasher
        self.settings = settings
        self.link_key = link_key

    # --- sign-up, sign-in, sessions -----------------------------------------------------------
    def sign_up_lender(
        self, request: CreateTenant, name: str | None, password: str, ip: str
    ) -> tuple[TenantCreated, SignedIn]:
        """Create the lender, its first API key and its first admin (``admin_email``), signed in.

        Raises ValidationFailed (password), Conflict (subdomain), RateLimited (sign-ups from one IP).
        """
        check_password(password)
        created = self.tenants.sign_up(request, ip=ip)
        admin = StaffMember(
            staff_id=ids.new_id("stf"),
            tenant_id=created.tenant.tenant_id,
            email=created.tenant.admin_email.lower(),
            name=(name or "").strip()[:120] or None,
            role=Role.ADMIN,
            status=StaffStatus.ACTIVE,
            created_at=datetime.now(UTC),
            password_hash=self.hasher.hash(password),
        )
        self.repo.create(admin)
        logger.info("Lender admin created", extra={"tenant_id": admin.tenant_id, "staff_id": admin.staff_id})
        signed_in = self._start(admin, created.tenant)
        # The page after the form (POST/redirect/GET) shows the key once: kept sealed with the new session's id,
        # which only the admin's cookie holds, so neither the URL nor a cookie nor the table ever holds it in clear.
        sealed = ids.seal(self.link_key(), SHOWN_ONCE_PURPOSE, signed_in.session_id, created.api_key)
        expires_at = int(time.time()) + SHOWN_ONCE_TTL_SECONDS
        self.repo.put_shown_once(_hash(signed_in.session_id), sealed, expires_at)
        return created, signed_in

    def first_api_key(self, session_id: str) -> str | None:
        """The API key made at sign-up, the first time the new admin's session asks (later: None)."""
        if not session_id or len(session_id) > 100:
            return None
        item = self.repo.take_shown_once(_hash(session_id))
        if item is None or int(item.get("expires_at") or 0) <= int(time.time()):
            return None
        return ids.unseal(self.link_key(), SHOWN_ONCE_PURPOSE, session_id, str(item.get("sealed") or ""))

    def register_lender(self, request: CreateTenant, ip: str | None = None) -> TenantCreated:
        """``POST /v1/tenants``: the lender and its first API key, and its ``admin_email`` as a console
        administrator without a password yet: "Forgot your password?" on the sign-in page emails them the
        link that sets one (nobody signs in before). Raises Conflict (subdomain), RateLimited."""
        created = self.tenants.sign_up(request, ip=ip)
        admin = StaffMember(
            staff_id=ids.new_id("stf"),
            tenant_id=created.tenant.tenant_id,
            email=created.tenant.admin_email.lower(),
            name=None,
            role=Role.ADMIN,
            status=StaffStatus.ACTIVE,
            created_at=datetime.now(UTC),
            password_hash=None,
        )
        self.repo.create(admin)
        logger.info("Lender admin created", extra={"tenant_id": admin.tenant_id, "staff_id": admin.staff_id})
        return created

    def _limit(self, limit: Limit, subject: str) -> None:
        decision = self.limiter.hit(limit, subject)
        if not decision.allowed:
            logger.info("Rate limited", extra={"scope": limit.scope})
            raise RateLimited("too many sign-in attempts", retry_after=decision.retry_after)

    def sign_in(self, subdomain: str, email: str, password: str, ip: str) -> SignedIn:
        """Raises RateLimited, Unauthorized (any wrong part costs and reads the same), Forbidden
        (the right password of a deactivated member)."""
        subdomain = subdomain.strip().lower()[:63]
        email = email.strip().lower()[:254]
        password = password[:1024]  # bound the hashing work of absurd inputs
        self._limit(LOGIN_PER_IP, ip)
        self._limit(LOGIN_PER_ACCOUNT_IP, f"{subdomain}\n{email}\n{ip}")
        tenant = self.tenant_repo.by_subdomain(subdomain) if subdomain and email else None
        member = self.repo.by_email(tenant.tenant_id, email) if tenant else None
        if member is not None and member.password_hash:
            ok = self.hasher.verify(member.password_hash, password)
        else:
            self.hasher.burn(password)
            ok = False
        if not ok or member is None or tenant is None or member.password_hash is None:
            logger.info("Console sign-in refused", extra={"reason": "credentials"})
            raise Unauthorized("the lender, email or password is incorrect")
        if member.status is not StaffStatus.ACTIVE:
            raise Forbidden("this console account is deactivated; ask one of your administrators")
        if self.hasher.needs_rehash(member.password_hash):
            self.repo.save(member, member.model_copy(update={"password_hash": self.hasher.hash(password)}))
        return self._start(member, tenant)

    def _start(self, member: StaffMember, tenant: Tenant) -> SignedIn:
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        self.repo.create_session(_hash(session_id), member, now, int(now.timestamp()) + SESSION_TTL_SECONDS)
        logger.info("Staff signed in", extra={"tenant_id": member.tenant_id, "staff_id": member.staff_id})
        return SignedIn(session_id, ConsoleSession(tenant, member, self.csrf_token(session_id)))

    def csrf_token(self, session_id: str) -> str:
        """The session's CSRF token: derived from the session id with the server key, so it is
        stored nowhere and no other session (or a guess) can produce it."""
        return ids.derived_token(self.link_key(), "console-csrf", session_id)

    def session(self, session_id: str | None) -> ConsoleSession | None:
        """The live session, or None. A deactivated member's sessions end at their next request."""
        if not session_id or len(session_id) > 100:
            return None
        record = self.repo.session(_hash(session_id))
        if record is None or not record.live(int(time.time())):
            return None
        member = self.repo.get(record.tenant_id, record.staff_id)
        if member is None or member.status is not StaffStatus.ACTIVE or not member.holds_session(record.created_at):
            return None
        tenant = self.tenant_repo.get(record.tenant_id, cached=True)
        if tenant is None:
            return None
        return ConsoleSession(tenant, member, self.csrf_token(session_id))

    def sign_out(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 100:
            self.repo.delete_session(_hash(session_id))

    # --- teammates ----------------------------------------------------------------------------
    def members(self, tenant: Tenant) -> list[StaffMember]:
        return self.repo.all(tenant.tenant_id)

    def owners(self, tenant: Tenant) -> list[str]:
        """Who an invitation can be assigned to: the active members' names."""
        return [m.display_name for m in self.members(tenant) if m.status is StaffStatus.ACTIVE]

    def member(self, tenant: Tenant, staff_id: str) -> StaffMember:
        found = self.repo.get(tenant.tenant_id, staff_id) if staff_id.startswith("stf_") else None
        if found is None:
            raise NotFound("no such staff member")
        return found

    def _token(self, staff_id: str, purpose: str, nonce: str) -> str:
        return staff_link_token(self.link_key(), staff_id, purpose, nonce)

    def _enqueue(self, member: StaffMember, purpose: str) -> None:
        """Queue the email with the member's current link; the send worker derives the link."""
        assert member.link_nonce is not None
        message = StaffEmail(
            tenant_id=member.tenant_id, staff_id=member.staff_id, purpose=purpose, nonce_hash=_hash(member.link_nonce)
        )
        if self.queue is not None:
            self.queue.send(self.settings.send_queue_url, message.model_dump(mode="json"))

    def invite(self, actor: StaffMember, tenant: Tenant, request: NewStaff) -> StaffMember:
        """An admin invites a teammate; a single-use link, emailed through the send queue, lets
        them choose a password. Raises Forbidden (not an admin), Conflict (already a member)."""
        actor.ensure_admin()
        nonce = links.new_nonce()
        member = StaffMember(
            staff_id=ids.new_id("stf"),
            tenant_id=tenant.tenant_id,
            email=str(request.email),
            name=request.name,
            role=request.role,
            status=StaffStatus.INVITED,
            created_at=datetime.now(UTC),
            invited_by=actor.staff_id,
            link_nonce=nonce,
        )
        token = self._token(member.staff_id, INVITE_PURPOSE, nonce)
        expires = int(time.time()) + INVITE_TTL_SECONDS
        self.repo.create(member, [self.repo.token_put_action(links.token_hash(token), INVITE_PURPOSE, member, expires)])
        logger.info("Staff invited", extra={"tenant_id": tenant.tenant_id, "staff_id": member.staff_id})
        self._enqueue(member, INVITE_PURPOSE)
        return member

    def resend_invitation(self, actor: StaffMember, tenant: Tenant, staff_id: str) -> StaffMember:
        """Email a teammate who has not joined yet a new single-use link; their previous link stops
        working. Raises Forbidden (not an admin), NotFound, Conflict (already joined or deactivated)."""
        actor.ensure_admin()
        member = self.member(tenant, staff_id)
        if member.status is not StaffStatus.INVITED:
            raise Conflict(f"this teammate's account is {member.status.value}: only a pending invitation is resent")
        nonce = links.new_nonce()
        after = member.model_copy(update={"link_nonce": nonce, "version": member.version + 1})
        token = self._token(member.staff_id, INVITE_PURPOSE, nonce)
        expires = int(time.time()) + INVITE_TTL_SECONDS
        self.repo.save(
            member, after, [self.repo.token_put_action(links.token_hash(token), INVITE_PURPOSE, after, expires)]
        )
        logger.info("Staff invitation resent", extra={"tenant_id": tenant.tenant_id, "staff_id": staff_id})
        self._enqueue(after, INVITE_PURPOSE)
        return after

    def _link_owner(self, token: str, purpose: str, status: StaffStatus) -> tuple[Tenant, StaffMember] | None:
        if not links.looks_like_token(token):
            return None
        found = self.repo.token(links.token_hash(token), purpose)
        if found is None:
            return None
        member = self.repo.get(found.tenant_id, found.staff_id)
        tenant = self.tenant_repo.get(found.tenant_id)
        if member is None or tenant is None or member.status is not status or member.link_nonce is None:
            return None
        if not ids.same(self._token(member.staff_id, purpose, member.link_nonce), token):
            return None  # an older link of this member: only the newest works
        return tenant, member

    def invitation(self, token: str) -> tuple[Tenant, StaffMember] | None:
        """The lender and teammate a (live, unused) invitation link is for."""
        return self._link_owner(token, INVITE_PURPOSE, StaffStatus.INVITED)

    def reset_link(self, token: str) -> tuple[Tenant, StaffMember] | None:
        """The lender and member a (live, unused) password-reset link is for."""
        return self._link_owner(token, RESET_PURPOSE, StaffStatus.ACTIVE)

    def _use_link(self, token: str, found: tuple[Tenant, StaffMember], name: str | None, password: str) -> SignedIn:
        tenant, member = found
        after = member.model_copy(
            update={
                "status": StaffStatus.ACTIVE,
                "name": (name or "").strip()[:120] or member.name,
                "password_hash": self.hasher.hash(password),
                "link_nonce": None,
                "version": member.version + 1,
                "sessions_after": datetime.now(UTC),  # the member's other sessions end (the new one starts after)
            }
        )
        try:
            self.repo.save(member, after, [self.repo.token_use_action(links.token_hash(token))])
        except Conflict as exc:
            raise NotFound("this link was already used or has expired") from exc
        return self._start(after, tenant)

    def accept(self, token: str, name: str | None, password: str) -> SignedIn:
        """The teammate chooses a password: their account becomes active and they are signed in.

        Raises NotFound (a used, expired or unknown link), ValidationFailed (password).
        """
        found = self.invitation(token)
        if found is None:
            raise NotFound("this invitation link was already used or has expired")
        check_password(password)
        return self._use_link(token, found, name, password)

    def request_reset(self, subdomain: str, email: str, ip: str) -> None:
        """Email a password-reset link to an active member. Answers the same whether or not there is
        one (no account discovery). Raises RateLimited."""
        subdomain = subdomain.strip().lower()[:63]
        email = email.strip().lower()[:254]
        decision = self.limiter.hit(RESET_PER_IP, ip)
        if decision.allowed:
            decision = self.limiter.hit(RESET_PER_ACCOUNT, f"{subdomain}\n{email}")
        if not decision.allowed:
            raise RateLimited("too many reset requests", retry_after=decision.retry_after)
        tenant = self.tenant_repo.by_subdomain(subdomain) if subdomain and email else None
        member = self.repo.by_email(tenant.tenant_id, email) if tenant else None
        if member is None or member.status is not StaffStatus.ACTIVE:
            logger.info("Password reset for no active member; nothing sent")
            return
        nonce = links.new_nonce()
        after = member.model_copy(update={"link_nonce": nonce, "version": member.version + 1})
        token = self._token(member.staff_id, RESET_PURPOSE, nonce)
        expires = int(time.time()) + RESET_TTL_SECONDS
        self.repo.save(
            member, after, [self.repo.token_put_action(links.token_hash(token), RESET_PURPOSE, after, expires)]
        )
        self._enqueue(after, RESET_PURPOSE)

    def reset(self, token: str, password: str) -> SignedIn:
        """Raises NotFound (a used, expired, superseded or unknown link), ValidationFailed (password)."""
        found = self.reset_link(token)
        if found is None:
            raise NotFound("this reset link was already used or has expired")
        check_password(password)
        return self._use_link(token, found, None, password)

    def change(
        self, actor: StaffMember, tenant: Tenant, staff_id: str, *, role: Role | None = None, deactivate: bool = False
    ) -> StaffMember:
        """Change a teammate's role or deactivate them (their sessions end at once).

        Raises Forbidden (not an admin), NotFound, Conflict (yourself, or the last admin).
        """
        actor.ensure_admin()
        target = self.member(tenant, staff_id)
        admins = sum(1 for m in self.members(tenant) if m.is_admin)
        ensure_change_allowed(actor, target, role, deactivate, admins)
        update: dict[str, object] = {"version": target.version + 1}
        if role is not None:
            update["role"] = role
        if deactivate:
            update["status"] = StaffStatus.DEACTIVATED
        after = target.model_copy(update=update)
        self.repo.save(target, after)
        logger.info("Staff changed", extra={"tenant_id": tenant.tenant_id, "staff_id": staff_id})
        return after


class StaffMail:
    """The send worker's part for staff emails: the invitation and password-reset links."""

    def __init__(
        self,
        repo: StaffRepository,
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

    def process(self, message: StaffEmail) -> str:
        """Send the email once; a message for a link that was since replaced or used sends nothing.

        Raises UpstreamError to have SQS retry it."""
        from chalicelib.adapters.messaging import Email
        from chalicelib.services.messages import render_email, send_once, sender_display

        member = self.repo.get(message.tenant_id, message.staff_id)
        tenant = self.tenants.get(message.tenant_id)
        if member is None or tenant is None:
            return "gone"
        wanted = StaffStatus.INVITED if message.purpose == INVITE_PURPOSE else StaffStatus.ACTIVE
        if member.status is not wanted or member.link_nonce is None or _hash(member.link_nonce) != message.nonce_hash:
            return "superseded"
        token = staff_link_token(self.link_key(), member.staff_id, message.purpose, member.link_nonce)
        ttl = INVITE_TTL_SECONDS if message.purpose == INVITE_PURPOSE else RESET_TTL_SECONDS
        rendered = render_email(
            message.purpose,
            tenant.settings.locale,
            lender=tenant.display_name,
            url=self.settings.urls.staff_link(
                tenant, "accept" if message.purpose == INVITE_PURPOSE else "reset", token
            ),
            name=member.name,
            expires=datetime.now(UTC) + timedelta(seconds=ttl),
            colour=tenant.settings.branding.colour,
            logo_url=tenant.settings.branding.shown_logo_url,
        )
        email = Email(
            to=member.email,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            sender_name=sender_display(tenant.settings.sender_name or tenant.display_name, self.settings.platform_name),
            reply_to=None,
            tags={"type": message.purpose},
            sender_address=sending_address(self.settings.sender_email, tenant.sending_domain),
        )

        outcome = send_once(self.mailer, self.once, f"staff-email:{message.staff_id}:{message.nonce_hash}", email)
        logger.info("Staff email processed", extra={"staff_id": member.staff_id, "outcome": outcome})
        return outcome
