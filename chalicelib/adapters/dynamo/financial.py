"""Persistence of a customer's financial data: one record per invitation, and the provider connections.

The record lives in the invitation's partition (``FIN#DATA``) and holds the state, the accounts and the
summary (small: tens of accounts, a few dozen months); the transactions themselves are in S3 (see
:class:`~chalicelib.services.financial.FinancialDataService`). Moving to ``ready`` is conditional on the
attempt, so a redelivered data step writes nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.domain.financial import ConnectionRecord, FinancialRecord
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.invitations import Action
    from chalicelib.adapters.dynamo.table import Table


class FinancialRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, tenant_id: str, invitation_id: str) -> FinancialRecord | None:
        item = self.table.get(keys.financial_data(tenant_id, invitation_id), consistent=True)
        return FinancialRecord.model_validate(item) if item else None

    def finish_action(self, tenant_id: str, invitation_id: str, record: FinancialRecord) -> Action:
        """Write the attempt's outcome (``ready`` or ``failed``) once.

        The transaction fails when this attempt's data is already ``ready`` (a redelivery), or when a
        failure would overwrite ready data; a newer attempt replaces an older one.
        """
        item = {**keys.financial_data(tenant_id, invitation_id), "type": "financial_data", **_stored(record)}
        return {
            "Put": {
                **self.table.t_put(item)["Put"],
                "ConditionExpression": "attribute_not_exists(PK) OR #a < :a OR (#a = :a AND #st <> :ready)",
                "ExpressionAttributeNames": {"#a": "attempt", "#st": "state"},
                "ExpressionAttributeValues": {
                    ":a": {"N": str(record.attempt)},
                    ":ready": {"S": "ready"},
                },
            }
        }

    def transact(self, actions: list[Action]) -> bool:
        """False, writing nothing, when a condition failed (already recorded)."""
        try:
            self.table.transact(actions)
        except Conflict:
            return False
        return True

    # --- connections ------------------------------------------------------------------------------
    def connection(self, tenant_id: str, invitation_id: str, provider: str) -> ConnectionRecord | None:
        item = self.table.get(keys.financial_connection(tenant_id, invitation_id, provider), consistent=True)
        return ConnectionRecord.model_validate(item) if item else None

    def connections(self, tenant_id: str, invitation_id: str) -> list[ConnectionRecord]:
        items, _ = self.table.query(
            keys.invitation_pk(tenant_id, invitation_id), sk_prefix="FIN#CONNECTION#", consistent=True
        )
        return [ConnectionRecord.model_validate(item) for item in items]

    def save_connection(self, tenant_id: str, invitation_id: str, record: ConnectionRecord) -> None:
        """Keep what reaches the data; overwrites the provider's previous connection (a relink)."""
        key = keys.financial_connection(tenant_id, invitation_id, str(record.provider))
        self.table.put({**key, "type": "financial_connection", **_stored(record)})

    def delete_connection(self, tenant_id: str, invitation_id: str, record: ConnectionRecord) -> None:
        self.table.delete(keys.financial_connection(tenant_id, invitation_id, str(record.provider)))

    def delete_record(self, tenant_id: str, invitation_id: str) -> bool:
        key = keys.financial_data(tenant_id, invitation_id)
        if self.table.get(key, consistent=True) is None:
            return False
        self.table.delete(key)
        return True


def _stored(record: FinancialRecord | ConnectionRecord) -> dict[str, Any]:
    """A record's attributes as stored: JSON types (enums as values, dates ISO 8601), no empty ones."""
    return record.model_dump(mode="json", exclude_none=True)
