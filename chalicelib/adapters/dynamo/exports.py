"""Export job persistence: one item per job under the lender's partition (see keys.export_job)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.table import Item, Table


class ExportRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put_job(self, job: Item) -> None:
        """Create the job item (its id is new: a Conflict would be a bug, and raises)."""
        self.table.put_new({**keys.export_job(job["tenant_id"], job["export_id"]), "type": "export", **job})

    def job(self, tenant_id: str, export_id: str) -> Item | None:
        return self.table.get(keys.export_job(tenant_id, export_id), consistent=True)

    def set_job(
        self, tenant_id: str, export_id: str, changes: dict[str, Any], *, only_if_state: tuple[str, ...]
    ) -> bool:
        """SET ``changes`` while the job is in one of ``only_if_state``; False when it is not (or is gone)."""
        placeholders = {f":s{i}": state for i, state in enumerate(only_if_state)}
        try:
            self.table.update(
                keys.export_job(tenant_id, export_id),
                changes,
                condition=f"attribute_exists(PK) AND #state IN ({', '.join(placeholders)})",
                names={"#state": "state"},
                values=placeholders,
            )
        except Conflict:
            return False
        return True

    def advance(self, tenant_id: str, export_id: str, step: int, changes: dict[str, Any]) -> bool:
        """SET ``changes`` (the next step, its cursor, the parts so far) if the job is still at ``step``; False
        when another copy of that step got there first."""
        try:
            self.table.update(
                keys.export_job(tenant_id, export_id),
                changes,
                condition="#state = :running AND #step = :step",
                names={"#state": "state", "#step": "step"},
                values={":running": "running", ":step": step},
            )
        except Conflict:
            return False
        return True
