"""Customer accounts: the join form's rules, passwords, account subdomains, sessions and abuse limits.

Plain Python, no I/O. Problems are returned as short codes (``too_short``, ``reserved``...) so the
pages can say them in the lender's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from chalicelib.domain.model import Model
from chalicelib.domain.tenant import RESERVED_SUBDOMAINS, validate_subdomain

PASSWORD_MIN = 12
PASSWORD_MAX = 128
ADMIN_USERNAME = "admin"

CONFIRM_PURPOSE = "confirm"
CONFIRM_TTL_SECONDS = 24 * 3600
# An unconfirmed account holds its subdomain this long, then the name is free again.
PENDING_ACCOUNT_TTL_SECONDS = 7 * 24 * 3600
PENDING_JOIN_TTL_SECONDS = 15 * 60
SESSION_TTL_SECONDS = 12 * 3600

SELF_SIGNUP_OWNER = "self-signup"


@dataclass(frozen=True)
class Limit:
    """At most ``max`` events per fixed window of ``window`` seconds for one subject."""

    scope: str
    max: int
    window: int


# Per IP, generous enough for an office behind one NAT; per email / account, tight.
JOIN_PER_IP = Limit("join-ip", 30, 600)
JOIN_PER_EMAIL = Limit("join-email", 5, 3600)
CONFIRM_PER_IP = Limit("confirm-ip", 30, 600)
RESEND_PER_IP = Limit("resend-ip", 10, 3600)
RESEND_PER_EMAIL = Limit("resend-email", 3, 3600)
LOGIN_PER_IP = Limit("login-ip", 30, 600)
# Wrong passwords (sign-in and the confirmation page) are counted per account *and* address, so a stranger guessing
# from one address is stopped there and never locks the customer out of their own account.
LOGIN_FAILURES_PER_ACCOUNT_IP = Limit("login-fail-ip", 5, 900)
# Wrong passwords on one account from every address: past this, the account is under a sustained (distributed)
# attack and each address gets LOGIN_FAILURES_UNDER_ATTACK wrong passwords per window instead of the usual five.
LOGIN_FAILURES_PER_ACCOUNT = Limit("login-fail", 20, 3600)
LOGIN_FAILURES_UNDER_ATTACK = 1


def password_problem(password: str) -> str | None:
    """``too_short`` / ``too_long`` or None. Length is counted in characters; every character is allowed."""
    if len(password) < PASSWORD_MIN:
        return "too_short"
    if len(password) > PASSWORD_MAX:
        return "too_long"
    return None


def account_subdomain_problem(value: str) -> tuple[str | None, str]:
    """(problem code or None, normalised name). Same DNS-label and reserved-name rules as lender subdomains."""
    candidate = value.strip().lower()
    if not candidate:
        return "required", candidate
    if candidate in RESERVED_SUBDOMAINS:
        return "reserved", candidate
    try:
        return None, validate_subdomain(candidate)
    except ValueError:
        return "invalid", candidate


class AccountStatus(StrEnum):
    PENDING_CONFIRMATION = "pending_confirmation"
    ACTIVE = "active"


class Account(Model):
    """A customer's own account: where they sign in, with ``admin`` or their email and a password."""

    account_subdomain: str
    tenant_id: str
    invitation_id: str
    email: str
    business_name: str
    password_hash: str
    status: AccountStatus
    created_at: datetime
    confirmed_at: datetime | None = None
    # Hash of the current confirmation token (pending accounts only).
    confirm_hash: str | None = None
    confirm_expires_at: datetime | None = None

    def accepts_username(self, username: str) -> bool:
        given = username.strip().lower()
        return given == ADMIN_USERNAME or given == self.email.lower()


class Expiring(Model):
    """A stored session or one-time link: alive until ``expires_at`` (epoch seconds, the table's TTL attribute,
    which DynamoDB applies late, so every read checks it)."""

    expires_at: int = Field(description="Epoch seconds (the table's TTL attribute)")

    def live(self, now: int) -> bool:
        return self.expires_at > now


class AccountSession(Expiring):
    """A customer's signed-in session as stored, by the hash of its id (the cookie holds the id)."""

    account_subdomain: str
    tenant_id: str
    invitation_id: str
    created_at: datetime


class ConfirmationToken(Expiring):
    """A sign-up's email-confirmation link as stored, by the hash of its token; used once (``used_at``)."""

    tenant_id: str
    invitation_id: str
    account_subdomain: str
    expires_at: int = Field(description="Epoch seconds: the link's end, then (used) how long it is remembered")
    used_at: datetime | None = None

    def live(self, now: int) -> bool:
        return self.used_at is None and super().live(now)


class PendingJoin(Model):
    """The first step of a join whose email matches several invitations, kept server-side briefly.

    Holds the password's hash, never the password, so the second step (choosing the business) needs
    neither a hidden password field nor re-typing it.
    """

    tenant_id: str
    email: str
    business_name: str
    account_subdomain: str
    password_hash: str
    invitation_ids: list[str]
    expires_at: int
