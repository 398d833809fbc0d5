"""Persistence of a lender's sending domain: on the tenant item, with a global claim so one domain has one lender."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.adapters.dynamo import keys
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.table import Table
    from chalicelib.domain.sending_domain import SendingDomain


def _claimed(reasons: list[str]) -> Exception:
    return Conflict("this domain is already used by another lender", fields={"domain": "already claimed"})


class SendingDomainRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def claim(self, tenant_id: str, record: SendingDomain, previous: str | None) -> None:
        """Claim ``record.domain`` for the tenant (again, if it is already its own), release ``previous`` and store
        the record on the tenant item, in one transaction. Raises Conflict (field ``domain``) when another lender
        holds the domain."""
        actions = [
            self.table.t_update(
                keys.sending_domain_claim(record.domain),
                {"type": "sending_domain_claim", "tenant_id": tenant_id},
                condition="attribute_not_exists(PK) OR tenant_id = :me",
                values={":me": tenant_id},
            ),
            self.table.t_update(
                keys.tenant(tenant_id),
                {"sending_domain": record.model_dump(mode="json")},
                condition="attribute_exists(PK)",
            ),
        ]
        if previous and previous != record.domain:
            actions.append(self._release_action(tenant_id, previous))
        self.table.transact(actions, conflict=_claimed)

    def save(self, tenant_id: str, record: SendingDomain) -> None:
        """Store a refreshed status (the claim is unchanged)."""
        self.table.update(
            keys.tenant(tenant_id), {"sending_domain": record.model_dump(mode="json")}, condition="attribute_exists(PK)"
        )

    def release(self, tenant_id: str, domain: str) -> None:
        """Forget the tenant's domain and free its claim, in one transaction."""
        self.table.transact(
            [
                self._release_action(tenant_id, domain),
                self.table.t_update(keys.tenant(tenant_id), {"sending_domain": None}, condition="attribute_exists(PK)"),
            ]
        )

    def _release_action(self, tenant_id: str, domain: str) -> dict[str, object]:
        return self.table.t_delete(
            keys.sending_domain_claim(domain),
            condition="attribute_not_exists(PK) OR tenant_id = :me",
            values={":me": tenant_id},
        )
