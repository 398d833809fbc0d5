"""Persistence of a lender's standing as a sender: daily counters, the sending state, the audit log.

The daily counters double as the quota: :meth:`SendingRepository.reserve` adds one send only while the
day's count is under the quota (a conditional ADD), so two workers never both take the last slot.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.adapters.dynamo import keys
from chalicelib.domain import ids
from chalicelib.domain.sending import DayStats, SendingState
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.table import Table

Counter = Literal["email_sent", "sms_sent", "bounces", "complaints"]
STATS_TTL_DAYS = 90


class SendingRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def reserve_action(self, tenant_id: str, counter: Counter, day: date, quota: int) -> dict[str, Any]:
        """A transaction action counting one send of ``day``; its condition fails once the day reached ``quota``."""
        return self.table.t_update(
            keys.send_stats(tenant_id, day.isoformat()),
            {"type": "send_stats", "day": day.isoformat(), "expires_at": _expiry(day)},
            add={counter: 1},
            condition="attribute_not_exists(#c) OR #c < :quota",
            names={"#c": counter},
            values={":quota": quota},
        )

    def count(self, tenant_id: str, counter: Counter, day: date, n: int = 1) -> None:
        self.table.update(
            keys.send_stats(tenant_id, day.isoformat()),
            {"type": "send_stats", "day": day.isoformat(), "expires_at": _expiry(day)},
            add={counter: n},
        )

    def count_action(self, tenant_id: str, counter: Counter, day: date) -> dict[str, Any]:
        """:meth:`count` as a transaction action (with the feedback marker, so a redelivery counts nothing)."""
        return self.table.t_update(
            keys.send_stats(tenant_id, day.isoformat()),
            {"type": "send_stats", "day": day.isoformat(), "expires_at": _expiry(day)},
            add={counter: 1},
        )

    def days(self, tenant_id: str, first: date, last: date) -> list[DayStats]:
        """The counters of ``first``..``last`` (days without any send are absent)."""
        items, _ = self.table.query(
            keys.tenant_pk(tenant_id),
            sk_between=(f"SENDSTATS#{first.isoformat()}", f"SENDSTATS#{last.isoformat()}"),
            consistent=True,
        )
        return [DayStats.model_validate(i) for i in items]

    def held_sends(self, tenant_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The lender's send requests held until its standing changes, oldest first (at most ``limit``)."""
        found: list[dict[str, Any]] = []
        cursor: dict[str, Any] | None = None
        while len(found) < limit:
            items, cursor = self.table.query(
                keys.held_sends_index(tenant_id), index=keys.GSI_STATUS, limit=100, cursor=cursor
            )
            found.extend(items)
            if cursor is None:
                break
        return found[:limit]

    # --- verification of the admin email ------------------------------------------------------------
    def start_verification(self, tenant_id: str, nonce: str, expires_at: datetime) -> None:
        """A new link replaces any earlier one."""
        self.table.put(
            {
                **keys.lender_verification(tenant_id),
                "type": "lender_verification",
                "nonce": nonce,
                "expires_at": int(expires_at.timestamp()),
            }
        )

    def verification(self, tenant_id: str) -> dict[str, Any] | None:
        return self.table.get(keys.lender_verification(tenant_id), consistent=True)

    def end_verification(self, tenant_id: str, nonce: str) -> bool:
        """Use the link once: False when it was already used or replaced."""
        try:
            self.table.delete_if(keys.lender_verification(tenant_id), "#n = :n", {"#n": "nonce"}, {":n": nonce})
        except Conflict:
            return False
        return True

    def save_state(self, tenant_id: str, state: SendingState) -> None:
        self.table.update(
            keys.tenant(tenant_id), {"sending": state.model_dump(mode="json")}, condition="attribute_exists(PK)"
        )

    def audit(self, tenant_id: str, action: str, actor: str, reason: str | None, at: datetime) -> None:
        entry: dict[str, Any] = {
            **keys.audit(tenant_id, at.isoformat(), ids.new_id("aud")),
            "type": "audit",
            "action": action,
            "actor": actor,
            "reason": reason,
            "at": at.isoformat(),
        }
        self.table.put(entry)

    def audit_log(self, tenant_id: str) -> list[dict[str, Any]]:
        items, _ = self.table.query(keys.tenant_pk(tenant_id), sk_prefix="AUDIT#", consistent=True)
        return [{k: i.get(k) for k in ("action", "actor", "reason", "at")} for i in items]


def _expiry(day: date) -> int:
    return int(datetime.combine(day + timedelta(days=STATS_TTL_DAYS), datetime.min.time()).timestamp())
