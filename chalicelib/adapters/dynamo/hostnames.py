"""One host namespace: ``<name>.<base domain>`` serves a lender's join page (``SUBDOMAIN#<name>``) or a customer's
sign-in (``ACCOUNT#<name>``), never both. Whoever claims a name writes its own item with ``attribute_not_exists`` and,
in the same transaction, checks that the other side does not hold it: DynamoDB transactions are serializable, so two
claims racing for one name from both sides cannot both succeed.

An unconfirmed customer sign-up holds its name until ``expires_at`` (the TTL), and the check treats one past it as
free: TTL deletion can lag by a day or two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.domain.account import AccountStatus

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.dynamo.table import Table

Action = dict[str, Any]


def not_a_lender(table: Table, name: str) -> Action:
    """For a customer claiming ``name``: no lender has it as its subdomain."""
    return table.t_check(keys.subdomain_guard(name), "attribute_not_exists(PK)")


def not_a_customer(table: Table, name: str, now: datetime) -> Action:
    """For a lender claiming ``name``: no customer account holds it (an expired unconfirmed sign-up does not)."""
    action = table.t_check(
        keys.account_guard(name),
        "attribute_not_exists(PK) OR (#st = :pending AND expires_at <= :now)",
        {":pending": AccountStatus.PENDING_CONFIRMATION.value, ":now": int(now.timestamp())},
    )
    action["ConditionCheck"]["ExpressionAttributeNames"] = {"#st": "status"}
    return action


def held_by_lender(table: Table, name: str) -> bool:
    return table.get(keys.subdomain_guard(name)) is not None
