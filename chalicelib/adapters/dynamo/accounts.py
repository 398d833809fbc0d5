"""Customer accounts, their confirmation tokens, sessions and pending joins.

The account item is also the guard that keeps account subdomains unique across all customers:
``ACCOUNT#<subdomain>`` is created with a condition. An unconfirmed account carries ``expires_at``
(the table's TTL) so an abandoned sign-up frees its name; the condition treats an expired one as free
because TTL deletion can lag by a day or two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import hostnames, keys
from chalicelib.adapters.dynamo.table import serialize
from chalicelib.domain.account import (
    CONFIRM_PURPOSE,
    Account,
    AccountSession,
    AccountStatus,
    ConfirmationToken,
    PendingJoin,
)

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.dynamo.table import Table

Action = dict[str, Any]


def _epoch(at: datetime | None) -> int | None:
    return int(at.timestamp()) if at else None


class AccountRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- accounts -----------------------------------------------------------------------------
    def get(self, account_subdomain: str, now: datetime | None = None) -> Account | None:
        """The account, or None; with ``now``, an unconfirmed account past its expiry counts as gone."""
        item = self.table.get(keys.account_guard(account_subdomain), consistent=True)
        if item is None:
            return None
        if now is not None and item.get("expires_at") and int(item["expires_at"]) <= int(now.timestamp()):
            return None
        return Account.model_validate(item)

    def put_action(self, account: Account, now: datetime, expires_at: int | None) -> Action:
        """Create the account unless the name is held: by a confirmed account, or by another
        customer's unexpired sign-up. The same invitation may replace its own unconfirmed sign-up."""
        item = {
            **keys.account_guard(account.account_subdomain),
            "type": "account",
            **account.model_dump(mode="json"),
            "expires_at": expires_at,
        }
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(PK) OR (#st = :pending AND "
                "(invitation_id = :inv OR expires_at <= :now))",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": serialize(
                    {
                        ":pending": AccountStatus.PENDING_CONFIRMATION.value,
                        ":inv": account.invitation_id,
                        ":now": int(now.timestamp()),
                    }
                ),
            }
        }

    def delete_action(self, account_subdomain: str) -> Action:
        """Remove an account (its name becomes free); sessions die with their invitation's INACTIVE status."""
        return self.table.t_delete(keys.account_guard(account_subdomain))

    def delete_pending_action(self, account: Account) -> Action:
        """Drop this invitation's earlier unconfirmed sign-up (another name was chosen since)."""
        return {
            "Delete": {
                "TableName": self.table.name,
                "Key": serialize(keys.account_guard(account.account_subdomain)),
                "ConditionExpression": "#st = :pending AND invitation_id = :inv",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": serialize(
                    {":pending": AccountStatus.PENDING_CONFIRMATION.value, ":inv": account.invitation_id}
                ),
            }
        }

    def name_not_a_lender_action(self, account_subdomain: str) -> Action:
        """Customers and lenders share ``<name>.<base domain>`` (adapters/dynamo/hostnames.py)."""
        return hostnames.not_a_lender(self.table, account_subdomain)

    def lender_has(self, account_subdomain: str) -> bool:
        return hostnames.held_by_lender(self.table, account_subdomain)

    def activate_action(self, account: Account, token_hash: str, at: datetime) -> Action:
        return self.table.t_update(
            keys.account_guard(account.account_subdomain),
            {
                "status": AccountStatus.ACTIVE.value,
                "confirmed_at": at.isoformat(),
                "confirm_hash": None,
                "confirm_expires_at": None,
                "expires_at": None,
            },
            condition="#st = :pending AND confirm_hash = :h",
            names={"#st": "status"},
            values={":pending": AccountStatus.PENDING_CONFIRMATION.value, ":h": token_hash},
        )

    def reconfirm_action(self, account: Account, new_hash: str, expires: datetime, hold_until: int) -> Action:
        """Point a pending account at a fresh confirmation token (a resend); fails if it moved on."""
        return self.table.t_update(
            keys.account_guard(account.account_subdomain),
            {"confirm_hash": new_hash, "confirm_expires_at": expires.isoformat(), "expires_at": hold_until},
            condition="#st = :pending AND confirm_hash = :old",
            names={"#st": "status"},
            values={":pending": AccountStatus.PENDING_CONFIRMATION.value, ":old": account.confirm_hash},
        )

    def set_password_hash(self, account_subdomain: str, password_hash: str) -> None:
        self.table.update(
            keys.account_guard(account_subdomain), {"password_hash": password_hash}, condition="attribute_exists(PK)"
        )

    def write(self, actions: list[Action]) -> None:
        """One transaction; raises Conflict when any condition fails."""
        self.table.transact(actions)

    # --- confirmation tokens (stored by hash, like link tokens) --------------------------------
    def token_put_action(self, token_hash: str, account: Account, expires: datetime) -> Action:
        return self.table.t_put(
            {
                **keys.link_token(token_hash),
                "type": "link_token",
                "purpose": CONFIRM_PURPOSE,
                "tenant_id": account.tenant_id,
                "invitation_id": account.invitation_id,
                "account_subdomain": account.account_subdomain,
                "expires_at": _epoch(expires),
            }
        )

    def token_use_action(self, token_hash: str, at: datetime, keep_until: datetime) -> Action:
        """Single use: the transaction that confirms marks the token used, only if it is there and unused.
        The used token stays until ``keep_until`` (TTL) so a second visit can say where to sign in."""
        return self.table.t_update(
            keys.link_token(token_hash),
            {"used_at": at.isoformat(), "expires_at": _epoch(keep_until)},
            condition="attribute_exists(PK) AND attribute_not_exists(used_at)",
        )

    def token_delete_action(self, token_hash: str) -> Action:
        return self.table.t_delete(keys.link_token(token_hash))

    def token(self, token_hash: str) -> ConfirmationToken | None:
        """An unused confirmation token."""
        found = self.used_token(token_hash)
        return None if found is None or found.used_at else found

    def used_token(self, token_hash: str) -> ConfirmationToken | None:
        """A confirmation token, used or not (a used one carries ``used_at``)."""
        item = self.table.get(keys.link_token(token_hash), consistent=True)
        return ConfirmationToken.model_validate(item) if item and item.get("purpose") == CONFIRM_PURPOSE else None

    # --- sessions -----------------------------------------------------------------------------
    def create_session(self, session_hash: str, account: Account, created: datetime, expires_at: int) -> None:
        self.table.put_new(
            {
                **keys.session(session_hash),
                "type": "session",
                "account_subdomain": account.account_subdomain,
                "tenant_id": account.tenant_id,
                "invitation_id": account.invitation_id,
                "created_at": created.isoformat(),
                "expires_at": expires_at,
            }
        )

    def session(self, session_hash: str) -> AccountSession | None:
        item = self.table.get(keys.session(session_hash), consistent=True)
        return AccountSession.model_validate(item) if item else None

    def delete_session(self, session_hash: str) -> None:
        self.table.delete(keys.session(session_hash))

    # --- pending joins ------------------------------------------------------------------------
    def put_pending_join(self, join_hash: str, pending: PendingJoin) -> None:
        self.table.put_new({**keys.pending_join(join_hash), "type": "pending_join", **pending.model_dump(mode="json")})

    def pending_join(self, join_hash: str) -> PendingJoin | None:
        item = self.table.get(keys.pending_join(join_hash), consistent=True)
        return PendingJoin.model_validate(item) if item else None

    def delete_pending_join(self, join_hash: str) -> None:
        self.table.delete(keys.pending_join(join_hash))
