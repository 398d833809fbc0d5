"""Lender staff, their one-time links (invitation, password reset) and console sessions.

A staff member lives in the lender's partition (``STAFF#<id>``) with an email guard
(``STAFFEMAIL#<email>``) that keeps one member per email in a lender and finds them at sign-in.
Sessions and one-time links are global lookups by the hash of a random secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.domain.staff import StaffLinkToken, StaffMember, StaffSession
from chalicelib.errors import ConcurrentModification, Conflict

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.table import Item, Table


def _email_taken(reasons: list[str]) -> Exception:
    return Conflict("this email already has a console account at this lender", fields={"email": "already a member"})


def _changed(reasons: list[str]) -> Exception:
    return ConcurrentModification("someone changed this staff member first; reload the page")


class StaffRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def create(self, member: StaffMember, extra: list[dict[str, Any]] | None = None) -> None:
        """Raises Conflict (field ``email``) when the lender already has a member with this email."""
        self.table.transact(
            [
                self.table.t_put_new(
                    {
                        **keys.staff_email(member.tenant_id, member.email),
                        "type": "staff_email",
                        "staff_id": member.staff_id,
                    }
                ),
                self.table.t_put_new(
                    {**keys.staff(member.tenant_id, member.staff_id), "type": "staff", **self._data(member)}
                ),
                *(extra or []),
            ],
            conflict=_email_taken,
        )

    @staticmethod
    def _data(member: StaffMember) -> dict[str, Any]:
        return member.model_dump(mode="json")

    def get(self, tenant_id: str, staff_id: str) -> StaffMember | None:
        item = self.table.get(keys.staff(tenant_id, staff_id), consistent=True)
        return StaffMember.model_validate(item) if item else None

    def by_email(self, tenant_id: str, email: str) -> StaffMember | None:
        guard = self.table.get(keys.staff_email(tenant_id, email.strip().lower()))
        return self.get(tenant_id, guard["staff_id"]) if guard else None

    def all(self, tenant_id: str) -> list[StaffMember]:
        items, _ = self.table.query(keys.tenant_pk(tenant_id), sk_prefix=keys.STAFF_PREFIX)
        return sorted((StaffMember.model_validate(i) for i in items), key=lambda m: m.created_at)

    def save(self, before: StaffMember, after: StaffMember, extra: list[dict[str, Any]] | None = None) -> None:
        """Write ``after`` if nobody changed the member since ``before`` was read (optimistic lock)."""
        self.table.transact(
            [
                self.table.t_update(
                    keys.staff(before.tenant_id, before.staff_id),
                    dict(self._data(after).items()),
                    condition="version = :v",
                    values={":v": before.version},
                ),
                *(extra or []),
            ],
            conflict=_changed,
        )

    # --- one-time links (stored by hash, like link tokens) ------------------------------------
    def token_put_action(self, token_hash: str, purpose: str, member: StaffMember, expires_at: int) -> dict[str, Any]:
        return self.table.t_put(
            {
                **keys.link_token(token_hash),
                "type": "link_token",
                "purpose": purpose,
                "tenant_id": member.tenant_id,
                "staff_id": member.staff_id,
                "expires_at": expires_at,
            }
        )

    def token_use_action(self, token_hash: str) -> dict[str, Any]:
        """Single use: deleted in the transaction that uses it, and only if still there."""
        return self.table.t_delete(keys.link_token(token_hash), "attribute_exists(PK)")

    def token(self, token_hash: str, purpose: str) -> StaffLinkToken | None:
        """A live one-time link of this purpose."""
        item = self.table.get(keys.link_token(token_hash), consistent=True)
        if not item or item.get("purpose") != purpose:
            return None
        found = StaffLinkToken.model_validate(item)
        return found if found.live(int(datetime.now(UTC).timestamp())) else None

    # --- sessions -----------------------------------------------------------------------------
    def create_session(self, session_hash: str, member: StaffMember, created: datetime, expires_at: int) -> None:
        self.table.put_new(
            {
                **keys.console_session(session_hash),
                "type": "console_session",
                "tenant_id": member.tenant_id,
                "staff_id": member.staff_id,
                "created_at": created.isoformat(),
                "expires_at": expires_at,
            }
        )

    def session(self, session_hash: str) -> StaffSession | None:
        item = self.table.get(keys.console_session(session_hash), consistent=True)
        return StaffSession.model_validate(item) if item else None

    def delete_session(self, session_hash: str) -> None:
        self.table.delete(keys.console_session(session_hash))

    def put_shown_once(self, session_hash: str, sealed: str, expires_at: int) -> None:
        self.table.put(
            {**keys.shown_once(session_hash), "type": "shown_once", "sealed": sealed, "expires_at": expires_at}
        )

    def take_shown_once(self, session_hash: str) -> Item | None:
        """The session's secret to show once (sealed), removed as it is read."""
        return self.table.take(keys.shown_once(session_hash))
