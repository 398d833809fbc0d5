"""Persistence of a lender's sending domain: on the tenant item, with a global claim so one domain has one lender."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.adapters.dynamo import keys
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.dynamo.table import Table
    from chalicelib.domain.sending_domain import SendingDomain


def _claimed(reasons: list[str]) -> Exception:
    return Conflict(
        "this domain is claimed by another lender (an unverified claim lapses 72 hours after it was made)",
        fields={"domain": "already claimed"},
    )


class SendingDomainRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def claim(
        self, tenant_id: str, record: SendingDomain, previous: str | None, now: datetime, hold_until: datetime
    ) -> None:
        """Claim ``record.domain`` for the tenant (again, if it is already its own), release ``previous`` (when still
        its own) and store the record on the tenant item, in one transaction. An unverified claim of another lender
        whose hold ended is taken over. Raises Conflict (field ``domain``) when another lender holds the domain."""
        actions = [
            self.table.t_update(
                keys.sending_domain_claim(record.domain),
                {"type": "sending_domain_claim", "tenant_id": tenant_id, "hold_until": int(hold_until.timestamp())},
                condition=(
                    "attribute_not_exists(PK) OR tenant_id = :me OR "
                    "(attribute_not_exists(verified_at) AND hold_until < :now)"
                ),
                values={":me": tenant_id, ":now": int(now.timestamp())},
            ),
            self.table.t_update(
                keys.tenant(tenant_id),
                {"sending_domain": record.model_dump(mode="json")},
                condition="attribute_exists(PK)",
            ),
        ]
        if previous and previous != record.domain and self.holds(tenant_id, previous):
            actions.append(self._release_action(tenant_id, previous))
        self.table.transact(actions, conflict=_claimed)

    def holds(self, tenant_id: str, domain: str) -> bool:
        """Whether the tenant's claim on ``domain`` stands (another lender may have taken a lapsed one)."""
        claim = self.table.get(keys.sending_domain_claim(domain), consistent=True)
        return claim is not None and claim.get("tenant_id") == tenant_id

    def holder(self, domain: str) -> str | None:
        """The tenant whose claim on ``domain`` stands, lapsed or not; None when nobody claimed it."""
        claim = self.table.get(keys.sending_domain_claim(domain), consistent=True)
        return str(claim["tenant_id"]) if claim is not None else None

    def claim_verified(self, tenant_id: str, domain: str, at: datetime) -> bool:
        """Mark the tenant's claim verified (it never lapses then); False when the claim is no longer its own."""
        try:
            self.table.update(
                keys.sending_domain_claim(domain),
                {"verified_at": at.isoformat()},
                condition="tenant_id = :me",
                values={":me": tenant_id},
            )
        except Conflict:
            return False
        return True

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's record of a domain whose claim another lender took (the claim is not touched)."""
        self.table.update(keys.tenant(tenant_id), {"sending_domain": None}, condition="attribute_exists(PK)")

    def save(self, tenant_id: str, record: SendingDomain) -> None:
        """Store a refreshed status (the claim is unchanged)."""
        self.table.update(
            keys.tenant(tenant_id), {"sending_domain": record.model_dump(mode="json")}, condition="attribute_exists(PK)"
        )

    def release(self, tenant_id: str, domain: str, *, keep_record: bool = False) -> None:
        """Free the tenant's claim and forget its domain, in one transaction; with ``keep_record`` only the claim (the
        tenant's record names another domain)."""
        actions = [self._release_action(tenant_id, domain)]
        if not keep_record:
            actions.append(
                self.table.t_update(keys.tenant(tenant_id), {"sending_domain": None}, condition="attribute_exists(PK)")
            )
        self.table.transact(actions)

    def _release_action(self, tenant_id: str, domain: str) -> dict[str, object]:
        return self.table.t_delete(
            keys.sending_domain_claim(domain),
            condition="attribute_not_exists(PK) OR tenant_id = :me",
            values={":me": tenant_id},
        )
