"""Use cases of the hosted join page: join, pick a business, confirm the email, resend, sign in, sessions.

Every change to an invitation goes through the invitation repository (``create`` / ``save`` /
``mutate``) so its status index and history stay consistent, in the same transaction as the account,
its confirmation token and the confirmation's send request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain import ids, links
from chalicelib.domain.account import (
    CONFIRM_PER_IP,
    CONFIRM_PURPOSE,
    CONFIRM_TTL_SECONDS,
    JOIN_PER_EMAIL,
    JOIN_PER_IP,
    LOGIN_FAILURES_PER_ACCOUNT,
    LOGIN_FAILURES_PER_ACCOUNT_IP,
    LOGIN_FAILURES_UNDER_ATTACK,
    LOGIN_PER_IP,
    PENDING_ACCOUNT_TTL_SECONDS,
    PENDING_JOIN_TTL_SECONDS,
    RESEND_PER_EMAIL,
    RESEND_PER_IP,
    SELF_SIGNUP_OWNER,
    SESSION_TTL_SECONDS,
    Account,
    AccountStatus,
    Limit,
    PendingJoin,
    account_subdomain_problem,
    password_problem,
)
from chalicelib.domain.invitation import (
    Channel,
    Invitation,
    InvitationEvent,
    JoinedVia,
    Source,
    Status,
    business_key,
    normalise_email,
    utcnow,
)
from chalicelib.errors import ConcurrentModification, Conflict, DomainError, NotFound, RateLimited
from chalicelib.observability import count, logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.accounts import AccountRepository, Action
    from chalicelib.adapters.dynamo.invitations import InvitationRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.passwords import PasswordHasher
    from chalicelib.adapters.ratelimit import RateLimiter
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.invitations import InvitationService

CUSTOMER = "customer"
# A used confirmation link is remembered this long, so a second visit can give the sign-in address.
USED_CONFIRMATION_KEPT = timedelta(days=30)


# --- outcomes and refusals ---------------------------------------------------------------------
class JoinRefused(DomainError):
    """The form has problems: ``problems`` maps each field to a problem code the page words."""

    code = "join_refused"

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("the form has problems", fields=problems)
        self.problems = problems


class NotOnList(DomainError):
    """The lender requires an invitation and none is PENDING for this email."""

    code = "not_on_list"


class LinkInvalid(DomainError):
    """A confirmation link or a pending join that is unknown, expired or already used.

    ``account_url``: a used confirmation link of an account that is active now gives its sign-in address.
    """

    code = "link_invalid"

    def __init__(self, message: str, account_url: str | None = None) -> None:
        super().__init__(message)
        self.account_url = account_url


class ConfirmRefused(DomainError):
    """The password given on the confirmation page is not the one chosen for this sign-up."""

    code = "confirm_refused"


class SignInRefused(DomainError):
    """``reason``: ``credentials`` (the one generic answer), ``unconfirmed`` or ``inactive``."""

    code = "sign_in_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class JoinForm:
    email: str
    business_name: str
    password: str
    account_subdomain: str


@dataclass(frozen=True)
class ChooseBusiness:
    join_id: str
    options: list[tuple[str, str]]  # (invitation_id, business legal name)


@dataclass(frozen=True)
class AwaitingConfirmation:
    email: str


@dataclass(frozen=True)
class Joined:
    account_subdomain: str
    account_url: str


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    account: Account
    tenant: Tenant


@dataclass(frozen=True)
class PortalSession:
    tenant: Tenant
    invitation: Invitation


# --- links (chalicelib/urls.py builds them from settings, never from a request's Host) -----------
def confirmation_token(link_key: str, account_subdomain: str, nonce: str) -> str:
    return links.derive_token(link_key, CONFIRM_PURPOSE, account_subdomain, nonce)


def confirmation_link(
    settings: Settings, link_key: str, tenant: Tenant, send_request: dict[str, Any]
) -> tuple[str, str, datetime]:
    """(URL, token hash, expiry) of the confirmation a send request asks for (used by the send worker)."""
    token = confirmation_token(link_key, send_request["confirm_subject"], send_request["confirm_nonce"])
    url = settings.urls.join_confirmation(tenant, token)
    return url, links.token_hash(token), datetime.fromisoformat(send_request["confirm_expires_at"])


def _hash(secret: str) -> str:
    return ids.hash_secret(secret)


class JoinService:
    def __init__(
        self,
        tenants: TenantRepository,
        invitations: InvitationRepository,
        accounts: AccountRepository,
        limiter: RateLimiter,
        hasher: PasswordHasher,
        sends: InvitationService,
        settings: Settings,
    ) -> None:
        self.tenants = tenants
        self.invitations = invitations
        self.accounts = accounts
        self.limiter = limiter
        self.hasher = hasher
        self.sends = sends  # queues confirmation emails on the invitations' send path
        self.settings = settings

    # --- lenders --------------------------------------------------------------------------------
    def lender(self, subdomain: str) -> Tenant:
        tenant = self.tenants.by_subdomain(subdomain.strip().lower()) if len(subdomain) <= 63 else None
        if tenant is None:
            raise NotFound("no such lender")
        return tenant

    # --- abuse limits ---------------------------------------------------------------------------
    def _limit(self, limit: Limit, subject: str) -> None:
        decision = self.limiter.hit(limit, subject)
        if not decision.allowed:
            logger.info("Rate limited", extra={"scope": limit.scope})
            raise RateLimited("too many attempts", retry_after=decision.retry_after)

    # --- join -----------------------------------------------------------------------------------
    def join(self, tenant: Tenant, form: JoinForm, ip: str) -> ChooseBusiness | AwaitingConfirmation | Joined:
        """Raises RateLimited, JoinRefused (field problems), NotOnList."""
        self._limit(JOIN_PER_IP, ip)
        problems: dict[str, str] = {}
        try:
            email = normalise_email(form.email)
        except ValueError:
            email = ""
            problems["email"] = "invalid"
        business_name = " ".join(form.business_name.split())
        if not business_name:
            problems["business_name"] = "required"
        elif len(business_name) > 200:
            problems["business_name"] = "too_long"
        if problem := password_problem(form.password):
            problems["password"] = problem
        problem, subdomain = account_subdomain_problem(form.account_subdomain)
        if problem:
            problems["account_subdomain"] = problem
        if problems:
            raise JoinRefused(problems)
        self._limit(JOIN_PER_EMAIL, f"{tenant.tenant_id}:{email}")

        pending = [i for i in self.invitations.by_email(tenant.tenant_id, email) if i.open_for_sign_up]
        if not pending and tenant.settings.require_invitation:
            if any(i.status is Status.JOINED for i in self.invitations.by_email(tenant.tenant_id, email)):
                raise JoinRefused({"email": "already_joined"})
            raise NotOnList("email is not on our list")
        self._ensure_name_free(subdomain, {i.invitation_id for i in pending})
        password_hash = self.hasher.hash(form.password)

        chosen: Invitation | None = pending[0] if len(pending) == 1 else None
        if len(pending) > 1:
            wanted = business_key(business_name)
            matches = [i for i in pending if business_key(i.business_legal_name) == wanted]
            if len(matches) != 1:
                return self._ask_business(tenant, email, business_name, subdomain, password_hash, pending)
            chosen = matches[0]
        return self._complete(tenant, chosen, email, business_name, subdomain, password_hash)

    def _ensure_name_free(self, subdomain: str, own_invitations: set[str]) -> None:
        existing = self.accounts.get(subdomain, utcnow())
        mine = (
            existing is not None
            and existing.status is AccountStatus.PENDING_CONFIRMATION
            and existing.invitation_id in own_invitations
        )
        if (existing is not None and not mine) or self.accounts.lender_has(subdomain):
            raise JoinRefused({"account_subdomain": "taken"})

    def _ask_business(
        self,
        tenant: Tenant,
        email: str,
        business_name: str,
        subdomain: str,
        password_hash: str,
        pending: list[Invitation],
    ) -> ChooseBusiness:
        join_id = secrets.token_urlsafe(32)
        self.accounts.put_pending_join(
            _hash(join_id),
            PendingJoin(
                tenant_id=tenant.tenant_id,
                email=email,
                business_name=business_name,
                account_subdomain=subdomain,
                password_hash=password_hash,
                invitation_ids=[i.invitation_id for i in pending],
                expires_at=int(time.time()) + PENDING_JOIN_TTL_SECONDS,
            ),
        )
        return ChooseBusiness(join_id, _options(pending))

    def _pending_join(self, tenant: Tenant, join_id: str) -> PendingJoin:
        pending = self.accounts.pending_join(_hash(join_id)) if 0 < len(join_id) <= 64 else None
        if pending is None or pending.tenant_id != tenant.tenant_id or pending.expires_at <= int(time.time()):
            raise LinkInvalid("this sign-up expired, please start again")
        return pending

    def choices(self, tenant: Tenant, join_id: str) -> list[tuple[str, str]]:
        pending = self._pending_join(tenant, join_id)
        found = [self.invitations.get(tenant.tenant_id, i) for i in pending.invitation_ids]
        return _options([i for i in found if i is not None and i.open_for_sign_up])

    def choose(
        self, tenant: Tenant, join_id: str, invitation_id: str, ip: str
    ) -> ChooseBusiness | AwaitingConfirmation | Joined:
        """Second step when several invitations share the email. Raises LinkInvalid, JoinRefused."""
        self._limit(JOIN_PER_IP, ip)
        pending = self._pending_join(tenant, join_id)
        if invitation_id not in pending.invitation_ids:
            raise JoinRefused({"invitation_id": "required"})
        inv = self.invitations.get(tenant.tenant_id, invitation_id)
        if inv is None or not inv.open_for_sign_up:
            raise LinkInvalid("this invitation is no longer open")
        result = self._complete(
            tenant, inv, pending.email, pending.business_name, pending.account_subdomain, pending.password_hash
        )
        self.accounts.delete_pending_join(_hash(join_id))
        return result

    def _complete(
        self,
        tenant: Tenant,
        inv: Invitation | None,
        email: str,
        business_name: str,
        subdomain: str,
        password_hash: str,
    ) -> AwaitingConfirmation | Joined:
        now = utcnow()
        confirm = tenant.settings.require_email_confirmation
        creating = inv is None
        if inv is None:
            inv = Invitation(
                invitation_id=ids.new_id("inv"),
                tenant_id=tenant.tenant_id,
                email=email,
                owner=SELF_SIGNUP_OWNER,
                business_legal_name=business_name,
                banking_integration=tenant.settings.default_banking_integration,
                channel=Channel.EMAIL,
                locale=tenant.settings.locale,
                source=Source.SELF_SIGNUP,
                created_at=now,
                updated_at=now,
            )
        after = inv.model_copy(
            update={
                "account_subdomain": subdomain,
                "business_legal_name": inv.business_legal_name or business_name,
                "updated_at": now,
                "version": inv.version if creating else inv.version + 1,
            }
        )
        account = Account(
            account_subdomain=subdomain,
            tenant_id=tenant.tenant_id,
            invitation_id=inv.invitation_id,
            email=email,
            business_name=business_name,
            password_hash=password_hash,
            status=AccountStatus.PENDING_CONFIRMATION if confirm else AccountStatus.ACTIVE,
            created_at=now,
            confirmed_at=None if confirm else now,
        )
        events = []
        if creating:
            events.append(
                InvitationEvent(type="created", actor=CUSTOMER, at=now, details={"source": Source.SELF_SIGNUP.value})
            )
        actions: list[Action] = [self.accounts.name_not_a_lender_action(subdomain)]
        actions.extend(self._drop_earlier_signup(inv, subdomain))
        send_id = None
        if confirm:
            nonce = links.new_nonce()
            token_hash = links.token_hash(confirmation_token(self.sends.link_key(), subdomain, nonce))
            expires = now + timedelta(seconds=CONFIRM_TTL_SECONDS)
            account = account.model_copy(update={"confirm_hash": token_hash, "confirm_expires_at": expires})
            send_id = ids.new_id("snd")
            actions += [
                self.accounts.put_action(account, now, int(now.timestamp()) + PENDING_ACCOUNT_TTL_SECONDS),
                self.accounts.token_put_action(token_hash, account, expires),
                self._confirmation_send(after, send_id, subdomain, nonce, expires, now),
            ]
            events += [
                InvitationEvent(
                    type="join_requested", actor=CUSTOMER, at=now, details={"account_subdomain": subdomain}
                ),
                InvitationEvent(
                    type="send_requested",
                    actor=CUSTOMER,
                    at=now,
                    details={"channel": "email", "send_id": send_id, "reason": "confirmation"},
                ),
            ]
        else:
            after = after.joined(JoinedVia.SIGN_UP, now)
            actions.append(self.accounts.put_action(account, now, None))
            events.append(
                InvitationEvent(type="joined", actor=CUSTOMER, at=now, details={"account_subdomain": subdomain})
            )
        actions.extend(self.invitations.event_action(after, e) for e in events)
        if not confirm:
            # With a password of their own, the emailed portal link is retired (the lender copies the new one).
            after, rotation = self.sends.rotate_link_actions(tenant, after, now, "joined", actor=CUSTOMER)
            actions.extend(rotation)
        self._write(inv if not creating else None, after, actions, subdomain)
        if creating:
            count("InvitationCreated")
        if after.status is Status.JOINED and inv.status is not Status.JOINED:
            count("InvitationJoined")
        logger.info(
            "Customer joined" if not confirm else "Customer join awaits confirmation",
            extra={"tenant_id": tenant.tenant_id, "invitation_id": after.invitation_id},
        )
        if send_id:
            self.sends.enqueue_send(after, send_id)
            return AwaitingConfirmation(email)
        return Joined(subdomain, self.settings.urls.account_login(tenant, subdomain))

    def _drop_earlier_signup(self, inv: Invitation, subdomain: str) -> list[Action]:
        """A new join of the same invitation replaces its unconfirmed one (and kills its link)."""
        if not inv.account_subdomain:
            return []
        earlier = self.accounts.get(inv.account_subdomain)
        if (
            earlier is None
            or earlier.status is not AccountStatus.PENDING_CONFIRMATION
            or earlier.invitation_id != inv.invitation_id
        ):
            return []
        actions = [self.accounts.token_delete_action(earlier.confirm_hash)] if earlier.confirm_hash else []
        if earlier.account_subdomain != subdomain:
            actions.append(self.accounts.delete_pending_action(earlier))
        return actions

    def _confirmation_send(
        self, inv: Invitation, send_id: str, subdomain: str, nonce: str, expires: datetime, now: datetime
    ) -> Action:
        return self.invitations.send_request_action(
            inv,
            send_id,
            "confirmation",
            now,
            template="confirmation",
            details={
                "confirm_subject": subdomain,
                "confirm_nonce": nonce,
                "confirm_expires_at": expires.isoformat(),
            },
        )

    def _write(self, before: Invitation | None, after: Invitation, actions: list[Action], subdomain: str) -> None:
        try:
            if before is None:
                self.invitations.create(after, actions)
            else:
                self.invitations.save(before, after, actions)
        except ConcurrentModification:
            # The transaction does not say which condition failed: the name is the likely one.
            taken = self.accounts.get(subdomain, utcnow())
            if (taken is not None and taken.invitation_id != after.invitation_id) or self.accounts.lender_has(
                subdomain
            ):
                raise JoinRefused({"account_subdomain": "taken"}) from None
            raise
        except Conflict:
            # The (email, business name) guard belongs to an invitation that already joined.
            raise JoinRefused({"email": "already_joined"}) from None

    # --- confirmation ---------------------------------------------------------------------------
    def confirmation(self, tenant: Tenant, token: str) -> Account:
        """The pending account a confirmation link is for. Raises LinkInvalid (unknown, expired, used)."""
        if not links.looks_like_token(token):
            raise LinkInvalid("not a confirmation link")
        token_hash = links.token_hash(token)
        record = self.accounts.used_token(token_hash)
        now = utcnow()
        if record is not None and record.used_at and record.tenant_id == tenant.tenant_id:
            used = self.accounts.get(record.account_subdomain)
            active = used is not None and used.status is AccountStatus.ACTIVE
            url = self.settings.urls.account_login(tenant, record.account_subdomain) if active else None
            raise LinkInvalid("this link was already used", account_url=url)
        if record is None or record.tenant_id != tenant.tenant_id or not record.live(int(now.timestamp())):
            raise LinkInvalid("this link expired or was already used")
        account = self.accounts.get(record.account_subdomain)
        if account is None or account.status is not AccountStatus.PENDING_CONFIRMATION:
            raise LinkInvalid("this link was already used")
        if account.confirm_hash is None or not ids.same(account.confirm_hash, token_hash):
            raise LinkInvalid("this link was replaced by a newer one")
        return account

    def confirm(self, tenant: Tenant, token: str, password: str, ip: str) -> Joined:
        """Use the link once: the token goes, the account activates and the invitation becomes JOINED,
        in one transaction. Raises RateLimited, LinkInvalid, ConfirmRefused.

        The password chosen at sign-up is asked again: whoever knows an invited email can start a
        join, but only the person who chose the password can finish it from the emailed link.
        Wrong passwords count against the account like failed sign-ins.
        """
        self._limit(CONFIRM_PER_IP, ip)
        account = self.confirmation(tenant, token)
        self._check_password(account, password, ip)
        token_hash = links.token_hash(token)

        first_join: list[bool] = []

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            if not current.open_for_sign_up or self.accounts.token(token_hash) is None:
                return None
            first_join[:] = [current.status is not Status.JOINED]  # not when the portal already made it JOINED
            now = utcnow()
            after = current.joined(JoinedVia.SIGN_UP, now).model_copy(
                update={"account_subdomain": account.account_subdomain}
            )
            event = InvitationEvent(
                type="joined",
                actor=CUSTOMER,
                at=now,
                details={"account_subdomain": account.account_subdomain, "email_confirmed": True},
            )
            joined = self.invitations.event_action(after, event)
            # With a password of their own, the emailed portal link is retired (the lender copies the new one).
            after, rotation = self.sends.rotate_link_actions(tenant, after, now, "joined", actor=CUSTOMER)
            return after, [
                self.accounts.token_use_action(token_hash, now, now + USED_CONFIRMATION_KEPT),
                self.accounts.activate_action(account, token_hash, now),
                joined,
                *rotation,
            ]

        if self.invitations.mutate(tenant.tenant_id, account.invitation_id, change) is None:
            raise LinkInvalid("this link was already used")
        if first_join == [True]:
            count("InvitationJoined")
        logger.info("Customer confirmed and joined", extra={"tenant_id": tenant.tenant_id})
        return Joined(account.account_subdomain, self.settings.urls.account_login(tenant, account.account_subdomain))

    def _password_attempt(self, name: str, ip: str) -> str:
        """Count one password attempt of ``ip`` on account ``name`` before checking it (atomic: parallel guesses
        cannot all slip under the limit); returns the counter's subject. Raises RateLimited for this address only.

        The allowance is five wrong passwords per address and window, one while the account is under a sustained
        attack from many addresses; a right password always ends the count (:meth:`_password_right`).
        """
        subject = f"{name}:{ip}"
        attempt = self.limiter.hit(LOGIN_FAILURES_PER_ACCOUNT_IP, subject)
        allowance = LOGIN_FAILURES_PER_ACCOUNT_IP.max
        if not self.limiter.peek(LOGIN_FAILURES_PER_ACCOUNT, name).allowed:
            allowance = LOGIN_FAILURES_UNDER_ATTACK
            logger.warning("Account under a sustained password attack", extra={"scope": "login"})
        if attempt.count > allowance:
            logger.info("Rate limited", extra={"scope": LOGIN_FAILURES_PER_ACCOUNT_IP.scope})
            raise RateLimited("too many wrong passwords from this address", retry_after=attempt.retry_after)
        return subject

    def _password_wrong(self, name: str) -> None:
        self.limiter.hit(LOGIN_FAILURES_PER_ACCOUNT, name)

    def _password_right(self, subject: str) -> None:
        self.limiter.clear(LOGIN_FAILURES_PER_ACCOUNT_IP, subject)

    def _check_password(self, account: Account, password: str, ip: str) -> None:
        name = account.account_subdomain
        subject = self._password_attempt(name, ip)
        if not self.hasher.verify(account.password_hash, password[:1024]):
            self._password_wrong(name)
            logger.info("Confirmation refused", extra={"reason": "credentials", "tenant_id": account.tenant_id})
            raise ConfirmRefused("the password is incorrect")
        self._password_right(subject)

    def resend(self, tenant: Tenant, email_input: str, ip: str) -> None:
        """Send a fresh confirmation link for each sign-up of this email still waiting for one.

        Answers the same whether or not there was one. Raises RateLimited, JoinRefused (bad email).
        """
        self._limit(RESEND_PER_IP, ip)
        try:
            email = normalise_email(email_input)
        except ValueError:
            raise JoinRefused({"email": "invalid"}) from None
        self._limit(RESEND_PER_EMAIL, f"{tenant.tenant_id}:{email}")
        now = utcnow()
        for inv in self.invitations.by_email(tenant.tenant_id, email):
            if not inv.open_for_sign_up or not inv.account_subdomain:
                continue
            account = self.accounts.get(inv.account_subdomain, now)
            if (
                account is None
                or account.status is not AccountStatus.PENDING_CONFIRMATION
                or account.invitation_id != inv.invitation_id
            ):
                continue
            nonce = links.new_nonce()
            token_hash = links.token_hash(confirmation_token(self.sends.link_key(), account.account_subdomain, nonce))
            expires = now + timedelta(seconds=CONFIRM_TTL_SECONDS)
            send_id = ids.new_id("snd")
            fresh = account.model_copy(update={"confirm_hash": token_hash, "confirm_expires_at": expires})
            event = InvitationEvent(
                type="send_requested",
                actor=CUSTOMER,
                at=now,
                details={"channel": "email", "send_id": send_id, "reason": "confirmation_resent"},
            )
            actions = [
                self.accounts.reconfirm_action(
                    account, token_hash, expires, int(now.timestamp()) + PENDING_ACCOUNT_TTL_SECONDS
                ),
                self.accounts.token_put_action(token_hash, fresh, expires),
                self._confirmation_send(inv, send_id, account.account_subdomain, nonce, expires, now),
                self.invitations.event_action(inv, event),
            ]
            if account.confirm_hash:
                actions.append(self.accounts.token_delete_action(account.confirm_hash))
            try:
                self.accounts.write(actions)
            except Conflict:
                logger.info("Confirmation resend lost a race; skipped", extra={"invitation_id": inv.invitation_id})
                continue
            self.sends.enqueue_send(inv, send_id)

    # --- sign-in and sessions -------------------------------------------------------------------
    def sign_in(self, account_subdomain: str, username: str, password: str, ip: str) -> SignedIn:
        """Raises RateLimited (too many attempts from ``ip``, on any account or on this one), SignInRefused.
        A missing account and a wrong password cost the same."""
        self._limit(LOGIN_PER_IP, ip)
        name = account_subdomain.strip().lower()[:63]
        subject = self._password_attempt(name, ip)
        account = self.accounts.get(name, utcnow()) if name else None
        password = password[:1024]  # bound the hashing work of absurd inputs
        if account is not None and account.accepts_username(username):
            ok = self.hasher.verify(account.password_hash, password)
        else:
            self.hasher.burn(password)
            ok = False
        if not ok or account is None:
            self._password_wrong(name)
            logger.info("Sign-in refused", extra={"reason": "credentials"})
            raise SignInRefused("credentials")
        self._password_right(subject)
        if account.status is not AccountStatus.ACTIVE:
            raise SignInRefused("unconfirmed")
        inv = self.invitations.get(account.tenant_id, account.invitation_id)
        tenant = self.tenants.get(account.tenant_id)
        if inv is None or tenant is None or inv.status is Status.INACTIVE:
            raise SignInRefused("inactive")
        if self.hasher.needs_rehash(account.password_hash):
            self.accounts.set_password_hash(name, self.hasher.hash(password))
        session_id = secrets.token_urlsafe(32)
        now = utcnow()
        self.accounts.create_session(_hash(session_id), account, now, int(now.timestamp()) + SESSION_TTL_SECONDS)
        logger.info("Customer signed in", extra={"tenant_id": account.tenant_id, "invitation_id": inv.invitation_id})
        return SignedIn(session_id, account, tenant)

    def ready_account_url(self, tenant: Tenant, account_subdomain: str) -> str | None:
        """The sign-in URL of ``tenant``'s customer account of this name once it is active (the page a join
        or a confirmation redirects to); None for an unknown, unconfirmed or other lender's account."""
        name = account_subdomain.strip().lower()[:63]
        account = self.accounts.get(name, utcnow()) if name else None
        if account is None or account.tenant_id != tenant.tenant_id or account.status is not AccountStatus.ACTIVE:
            return None
        return self.settings.urls.account_login(tenant, name)

    def account_lender(self, account_subdomain: str) -> Tenant | None:
        """The lender whose branding a sign-in page shows (None: an unknown name gets a plain page)."""
        name = account_subdomain.strip().lower()[:63]
        account = self.accounts.get(name, utcnow()) if name else None
        return self.tenants.get(account.tenant_id) if account else None

    def session(self, session_id: str | None) -> PortalSession | None:
        if not session_id or len(session_id) > 100:
            return None
        record = self.accounts.session(_hash(session_id))
        if record is None or not record.live(int(time.time())):
            return None
        inv = self.invitations.get(record.tenant_id, record.invitation_id)
        tenant = self.tenants.get(record.tenant_id)
        if inv is None or tenant is None or inv.status is Status.INACTIVE:
            return None
        return PortalSession(tenant, inv)

    def sign_out(self, session_id: str | None) -> str | None:
        """End the session; returns the sign-in page of its account (None: there was no live session)."""
        current = self.session(session_id)
        if session_id and len(session_id) <= 100:
            self.accounts.delete_session(_hash(session_id))
        if current is None or not current.invitation.account_subdomain:
            return None
        return self.settings.urls.account_login(current.tenant, current.invitation.account_subdomain)


def _options(invitations: list[Invitation]) -> list[tuple[str, str]]:
    return sorted(
        ((i.invitation_id, i.business_legal_name or i.email) for i in invitations), key=lambda o: o[1].lower()
    )
