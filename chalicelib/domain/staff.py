"""Lender staff: the people who sign in to the console, their roles and the rules between them.

Plain Python, no I/O. An admin manages settings, API keys and staff; an officer works with
invitations, imports, customers and the communication log.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, EmailStr, Field, field_validator

from chalicelib.domain.account import PASSWORD_MAX, PASSWORD_MIN, Expiring, Limit, password_problem
from chalicelib.domain.model import Model
from chalicelib.errors import Conflict, Forbidden, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Iterable

SESSION_TTL_SECONDS = 12 * 3600
INVITE_TTL_SECONDS = 7 * 24 * 3600
RESET_TTL_SECONDS = 3600
INVITE_PURPOSE = "staff_invite"
RESET_PURPOSE = "staff_reset"

# A stranger who types wrong passwords for an officer's email slows down only their own address:
# the per-account limit is per (account, IP), never per account alone, so nobody can lock an
# officer out from elsewhere. The per-IP limit bounds how many accounts one address can try.
LOGIN_PER_IP = Limit("console-login-ip", 30, 600)
LOGIN_PER_ACCOUNT_IP = Limit("console-login-account-ip", 10, 900)
RESET_PER_IP = Limit("console-reset-ip", 10, 3600)
RESET_PER_ACCOUNT = Limit("console-reset-account", 3, 3600)

PASSWORD_WORDS = {
    "too_short": f"must be at least {PASSWORD_MIN} characters",
    "too_long": f"must be at most {PASSWORD_MAX} characters",
}


class Role(StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"


class StaffStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class StaffMember(Model):
    """One person at a lender who signs in to the console."""

    staff_id: str
    tenant_id: str
    email: str
    name: str | None = None
    role: Role
    status: StaffStatus
    created_at: datetime
    invited_by: str | None = None
    version: int = 1
    # argon2id; never shown. None until an invited teammate chooses a password.
    password_hash: str | None = Field(default=None, repr=False)
    # The random nonce of the current one-time link (invitation or password reset): the send worker
    # derives the link from it with the server key, so neither the queue nor the table holds a link.
    link_nonce: str | None = Field(default=None, repr=False)
    # When the password was last set through an emailed link (a reset): sessions started before then are over, so
    # whoever signed in with the leaked password, or took a session cookie, is out.
    sessions_after: datetime | None = None

    def holds_session(self, started_at: datetime | None) -> bool:
        """Whether a session of this member started at ``started_at`` is still theirs (not ended by a reset)."""
        if self.sessions_after is None:
            return True
        return started_at is not None and started_at >= self.sessions_after

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN and self.status is StaffStatus.ACTIVE

    def ensure_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("only an administrator can do this")


def owner_index(members: Iterable[StaffMember]) -> dict[str, StaffMember]:
    """The active members an uploaded row's free-text owner can name, by that text folded (case and surrounding
    space aside): each member's email, and a name only one active member has (a name two share names nobody)."""
    active = [m for m in members if m.status is StaffStatus.ACTIVE]
    names = Counter(owner_key(m.display_name) for m in active)
    index = {owner_key(m.display_name): m for m in active if names[owner_key(m.display_name)] == 1}
    index.update({owner_key(m.email): m for m in active})
    return index


def owner_key(text: str) -> str:
    """An uploaded owner cell as :func:`owner_index` looks it up."""
    return " ".join(text.split()).casefold()


def check_password(password: str, field: str = "password") -> None:
    problem = password_problem(password)
    if problem:
        raise ValidationFailed(f"the {field} {PASSWORD_WORDS[problem]}", fields={field: PASSWORD_WORDS[problem]})


class StaffSession(Expiring):
    """A console session as stored, by the hash of its id (the cookie holds the id)."""

    tenant_id: str
    staff_id: str
    created_at: datetime


class StaffLinkToken(Expiring):
    """A teammate's one-time link (invitation or password reset) as stored, by the hash of its token."""

    purpose: str
    tenant_id: str
    staff_id: str


class StaffEmail(Model):
    """The send queue's message for a staff email (the invitation or a password reset link)."""

    type: Literal["staff_email"] = "staff_email"
    tenant_id: str
    staff_id: str
    purpose: Literal["staff_invite", "staff_reset"]
    # Which link this message is for: a newer link makes an older message moot.
    nonce_hash: str


class NewStaff(Model):
    """Who a lender's admin invites (or who signs the lender up)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    name: str | None = Field(default=None, max_length=120)
    role: Role = Role.OFFICER

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("name")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


def ensure_change_allowed(
    actor: StaffMember, target: StaffMember, role: Role | None, deactivate: bool, active_admins: int
) -> None:
    """An admin changes other people; the lender always keeps one active admin."""
    actor.ensure_admin()
    if actor.staff_id == target.staff_id and (deactivate or (role is not None and role is not Role.ADMIN)):
        raise Conflict("you cannot demote or deactivate yourself; ask another administrator")
    losing_admin = target.is_admin and (deactivate or (role is not None and role is not Role.ADMIN))
    if losing_admin and active_admins <= 1:
        raise Conflict("the lender must keep at least one active administrator")
