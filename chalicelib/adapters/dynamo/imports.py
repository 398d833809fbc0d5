"""Import persistence: the job, its stored chunks, per-chunk results and the rows' bulk writes.

Uniqueness stays with the email guard (``keys.email_guard``): every row reserves its guard with a
conditional put (up to 100 of them per TransactWriteItems, so a chunk of 500 rows takes 5 requests, not
500), and only the rows that hold their guard get their other items written, with BatchWriteItem
(UnprocessedItems retried with backoff). The invitation item is written last, so an invitation that
exists has everything that goes with it. The guards' transactions only serve their conditions: the
other items are not in them, a chunk converges by idempotent rewrites of deterministic items instead.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, cast

from chalicelib.adapters.dynamo import keys
from chalicelib.adapters.dynamo.table import serialize
from chalicelib.domain.invitation import business_key
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from chalicelib.adapters.dynamo.invitations import InvitationRepository
    from chalicelib.adapters.dynamo.table import Item, Table
    from chalicelib.domain.csv_rows import Chunk
    from chalicelib.domain.invitation import Invitation, InvitationEvent

COUNTERS = ("rows_done", "created", "duplicate", "invalid", "valid")


def _event_sort(at: datetime, row: int, seq: int) -> str:
    """Same shape as the invitation repository's event keys, but fixed for a (row, event) pair."""
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{seq:012d}#r{row:05d}"


class ImportRepository:
    def __init__(self, table: Table, invitations: InvitationRepository) -> None:
        self.table = table
        self.invitations = invitations

    # --- jobs ---------------------------------------------------------------------------------
    def put_job(self, job: Item) -> None:
        """Create the job item; an existing one (a replayed upload) is left as it is."""
        with contextlib.suppress(Conflict):
            self.table.put_new({**keys.import_job(job["tenant_id"], job["job_id"]), "type": "import", **job})

    def job(self, tenant_id: str, job_id: str) -> Item | None:
        return self.table.get(keys.import_job(tenant_id, job_id), consistent=True)

    def set_job(
        self, tenant_id: str, job_id: str, changes: dict[str, Any], *, only_if_state: tuple[str, ...] = ()
    ) -> bool:
        """SET ``changes``; with ``only_if_state`` only while the job is in one of those states."""
        condition = "attribute_exists(PK)"
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        if only_if_state:
            names["#state"] = "state"
            placeholders = []
            for i, state in enumerate(only_if_state):
                values[f":s{i}"] = state
                placeholders.append(f":s{i}")
            condition += f" AND #state IN ({', '.join(placeholders)})"
        try:
            self.table.update(
                keys.import_job(tenant_id, job_id), changes, condition=condition, names=names, values=values
            )
        except Conflict:
            return False
        return True

    def count_chunk(self, tenant_id: str, job_id: str, index: int, counts: dict[str, int], at: str) -> Item | None:
        """Add one chunk's counts to the job, once: a redelivered chunk finds its index already in
        ``done_chunks`` and adds nothing. Returns the updated job, or None when already counted."""
        add: dict[str, Any] = {name: counts.get(name, 0) for name in COUNTERS}
        add["done_chunks"] = {str(index)}
        try:
            return self.table.update(
                keys.import_job(tenant_id, job_id),
                {"updated_at": at},
                condition="attribute_exists(PK) AND NOT contains(#done, :idx)",
                names={"#done": "done_chunks"},
                values={":idx": str(index)},
                add=cast("dict[str, int]", add),
            )
        except Conflict:
            return None

    # --- chunks and results -------------------------------------------------------------------
    def put_chunks(self, tenant_id: str, job_id: str, chunks: list[Chunk], duplicate_of: dict[int, int]) -> None:
        items: list[Mapping[str, Any]] = []
        for chunk in chunks:
            rows = [[row, cells, duplicate_of.get(row)] for row, cells in chunk.rows]
            items.append(
                {
                    **keys.import_chunk(tenant_id, job_id, chunk.index),
                    "type": "import_chunk",
                    "rows": json.dumps(rows, separators=(",", ":"), ensure_ascii=False),
                }
            )
        self.table.batch_put(items)

    def chunk(self, tenant_id: str, job_id: str, index: int) -> list[tuple[int, list[str], int | None]] | None:
        item = self.table.get(keys.import_chunk(tenant_id, job_id, index), consistent=True)
        if item is None:
            return None
        return [(int(r[0]), list(r[1]), r[2]) for r in json.loads(item["rows"])]

    def put_result(self, tenant_id: str, job_id: str, index: int, results: list[dict[str, Any]]) -> None:
        """The chunk's per-row results (rewritten identically when a chunk is processed again)."""
        self.table.put(
            {
                **keys.import_result(tenant_id, job_id, index),
                "type": "import_result",
                "results": json.dumps(results, separators=(",", ":"), ensure_ascii=False),
            }
        )

    def result(self, tenant_id: str, job_id: str, index: int) -> list[dict[str, Any]] | None:
        item = self.table.get(keys.import_result(tenant_id, job_id, index), consistent=True)
        return json.loads(item["results"]) if item else None

    # --- idempotent uploads -------------------------------------------------------------------
    def claim_key(self, tenant_id: str, key: str, body_hash: str, job_id: str, expires_at: int) -> Item | None:
        """Record that ``key`` made ``job_id``; returns the earlier record when the key was used before."""
        record = {
            **keys.idempotency(tenant_id, "import", key),
            "type": "idempotency",
            "body_hash": body_hash,
            "response": {"job_id": job_id},
            "expires_at": expires_at,
        }
        try:
            self.table.put_new(record)
        except Conflict:
            return self.table.get(keys.idempotency(tenant_id, "import", key), consistent=True)
        return None

    # --- rows ---------------------------------------------------------------------------------
    def reserve_guards(self, invs: list[Invitation]) -> dict[str, str | None]:
        """Take the (email, business) guard of each of ``invs``: invitation id -> None when taken now, else the
        invitation id the guard already names (``inv``'s own one after a crash and redelivery). Up to 100 guards
        per conditional transaction; a row whose guard key an earlier one of ``invs`` has gets that row's answer."""
        first: dict[tuple[str, str], Invitation] = {}
        for inv in invs:
            first.setdefault((inv.email, business_key(inv.business_legal_name)), inv)
        unique = list(first.values())
        existing = self.table.put_new_each([self.invitations.email_guard_item(inv) for inv in unique])
        owners: dict[str, str | None] = {
            inv.invitation_id: None if found is None else str(found["invitation_id"])
            for inv, found in zip(unique, existing, strict=True)
        }
        for inv in invs:
            holder = first[(inv.email, business_key(inv.business_legal_name))]
            if holder is not inv:
                owners[inv.invitation_id] = owners[holder.invitation_id] or holder.invitation_id
        return owners

    def guard_owners(self, invs: list[Invitation]) -> dict[str, str]:
        """invitation id -> id of the open invitation already holding its guard (reads only: dry runs)."""
        by_guard = {(inv.email, business_key(inv.business_legal_name)): inv.invitation_id for inv in invs}
        found = self.table.batch_get(
            [keys.email_guard(invs[0].tenant_id, email, key) for email, key in by_guard] if invs else []
        )
        owners: dict[str, str] = {}
        for guard in found:
            email, _, bkey = guard["SK"].removeprefix("EMAIL#").rpartition("#")
            mine = by_guard.get((email, bkey))
            if mine is not None:
                owners[mine] = str(guard["invitation_id"])
        return owners

    def existing_invitations(self, tenant_id: str, invitation_ids: list[str]) -> set[str]:
        found = self.table.batch_get([keys.invitation(tenant_id, i) for i in invitation_ids])
        return {str(i["invitation_id"]) for i in found}

    def row_items(
        self,
        inv: Invitation,
        row: int,
        events: list[InvitationEvent],
        token_hash: str | None,
        send_id: str | None,
        at: datetime,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Wire-format items of one imported row: (history, outbox and link token; the invitation)."""
        satellites = [
            serialize(
                {
                    **keys.invitation_event(inv.tenant_id, inv.invitation_id, _event_sort(e.at, row, seq)),
                    "type": "event",
                    **e.model_dump(mode="json"),
                }
            )
            for seq, e in enumerate(events)
        ]
        if token_hash:
            satellites.extend(a["Put"]["Item"] for a in self.invitations.token_actions(inv, token_hash, None, "portal"))
        if send_id:
            satellites.append(self.invitations.send_request_action(inv, send_id, "invitation", at)["Put"]["Item"])
        return satellites, serialize(self.invitations.item(inv))

    def write_rows(self, satellites: list[dict[str, Any]], invitations: list[dict[str, Any]]) -> int:
        """BatchWriteItem the rows' other items, then their invitations. Returns the requests sent."""
        return self.table.batch_put_serialized(satellites) + self.table.batch_put_serialized(invitations)
