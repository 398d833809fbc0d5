"""Use cases for bulk CSV import (upload, chunk worker, status); the export is in services/exports.py.

Upload checks the header at once, splits the rows into chunks stored in DynamoDB and puts one SQS
message per chunk. The worker validates a chunk's rows, reserves each row's email guard and writes
the rest in batches. Every id a row produces (invitation, send request, link nonce, history keys)
is derived from (job, row), so a chunk processed twice writes the same items again: no lost row,
no second invitation, and the send worker sees the same send request, so no second email.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from chalicelib.domain import csv_rows, ids, links
from chalicelib.domain.csv_rows import RowCheck, RowResult
from chalicelib.domain.invitation import (
    DeliveryStatus,
    Invitation,
    InvitationEvent,
    Source,
    link_expiry,
    utcnow,
)
from chalicelib.domain.model import Model
from chalicelib.domain.staff import owner_key
from chalicelib.errors import IdempotencyMismatch, NotFound, ValidationFailed
from chalicelib.observability import count, logger
from chalicelib.services.invitations import send_batch_messages

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.imports import ImportRepository
    from chalicelib.adapters.dynamo.table import Item
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.config import Settings
    from chalicelib.domain.staff import StaffMember
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.invitations import InvitationService

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# Matches maxReceiveCount of the import queue's redrive policy: the last try marks the job failed.
MAX_RECEIVES = 5
# Chunk results (one item of up to ~250 KB each) one status request may read: a filter on an outcome that few rows
# have would otherwise read every chunk of a 50,000-row import in one request.
RESULT_CHUNKS_PER_PAGE = 8

State = Literal["queued", "processing", "completed", "failed"]


class ImportCounts(Model):
    created: int = 0
    duplicate: int = 0
    invalid: int = 0
    valid: int = Field(default=0, description="Dry run only: rows that would be created")


class ImportJob(Model):
    import_id: str
    state: State
    dry_run: bool
    send: bool
    rows_total: int
    rows_done: int
    counts: ImportCounts
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    error: str | None = None


class ImportStatus(ImportJob):
    results: list[RowResult] = Field(default_factory=list, description="Per-row results, in row order")
    next_cursor: str | None = None


class StatusQuery(Model):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=100)
    outcome: Literal["created", "duplicate", "invalid", "valid"] | None = None


class UploadQuery(Model):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    send: bool = True


class ChunkMessage(Model):
    type: Literal["import_chunk"] = "import_chunk"
    tenant_id: str
    job_id: str
    chunk: int = Field(ge=0)


def _job_model(item: Item) -> ImportJob:
    return ImportJob(
        import_id=item["job_id"],
        state=item["state"],
        dry_run=item["dry_run"],
        send=item["send"],
        rows_total=item["rows_total"],
        rows_done=item.get("rows_done", 0),
        counts=ImportCounts(**{k: item.get(k, 0) for k in ImportCounts.model_fields}),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        completed_at=item.get("completed_at"),
        error=item.get("error"),
    )


def _encode_cursor(chunk: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{chunk}:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        chunk, offset = (int(p) for p in raw.split(":"))
        if chunk < 0 or offset < 0:
            raise ValueError
    except ValueError as exc:
        raise ValidationFailed("cursor is not valid", fields={"cursor": "not a cursor from this API"}) from exc
    return chunk, offset


class _Row:
    """One valid row on its way to the table."""

    __slots__ = ("inv", "row", "send_id", "satellites", "item")

    def __init__(self, inv: Invitation, row: int, send_id: str | None) -> None:
        self.inv = inv
        self.row = row
        self.send_id = send_id
        self.satellites: list[dict[str, Any]] = []
        self.item: dict[str, Any] = {}


class ImportService:
    def __init__(
        self,
        repo: ImportRepository,
        tenants: TenantRepository,
        invitations: InvitationService,
        queue: QueuePublisher,
        settings: Settings,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.invitations = invitations
        self.queue = queue
        self.settings = settings

    # --- upload -------------------------------------------------------------------------------
    def start(self, tenant: Tenant, body: bytes, options: UploadQuery, idempotency_key: str | None = None) -> ImportJob:
        """Check the header, store the rows in chunks and queue them. Raises ValidationFailed
        (header, encoding, size), IdempotencyMismatch (the key came with another file)."""
        parsed = csv_rows.parse(csv_rows.decode(body))
        body_hash = hashlib.sha256(body + f"|dry_run={options.dry_run}|send={options.send}".encode()).hexdigest()
        job_id = ids.new_id("imp")
        if idempotency_key:
            earlier = self.repo.claim_key(
                tenant.tenant_id, idempotency_key, body_hash, job_id, int(time.time()) + IDEMPOTENCY_TTL_SECONDS
            )
            if earlier is not None:
                if earlier["body_hash"] != body_hash:
                    raise IdempotencyMismatch(
                        "this Idempotency-Key was already used with a different file or options",
                        fields={"Idempotency-Key": "reused with another body"},
                    )
                job_id = earlier["response"]["job_id"]
                existing = self.repo.job(tenant.tenant_id, job_id)
                if existing is not None and existing.get("enqueued"):
                    return _job_model(existing)
                # The first upload stopped half-way: finish it (every step below is idempotent).
        chunks = list(csv_rows.chunks(parsed, max_rows=self.settings.import_chunk_rows))
        duplicate_of = csv_rows.duplicates_in_file(parsed)
        now = utcnow().isoformat()
        self.repo.put_chunks(tenant.tenant_id, job_id, chunks, duplicate_of)
        self.repo.put_job(
            {
                "job_id": job_id,
                "tenant_id": tenant.tenant_id,
                "state": "queued",
                "dry_run": options.dry_run,
                "send": options.send and not options.dry_run,
                "rows_total": len(parsed.rows),
                "columns": parsed.columns,
                "chunks": len(chunks),
                "rows_done": 0,
                "created": 0,
                "duplicate": 0,
                "invalid": 0,
                "valid": 0,
                "created_at": now,
                "updated_at": now,
                # Seeds the rows' link nonces; never leaves the table.
                "secret": secrets.token_hex(32),
                "idempotency_key": idempotency_key,
            }
        )
        bodies = [ChunkMessage(tenant_id=tenant.tenant_id, job_id=job_id, chunk=c.index).model_dump() for c in chunks]
        failed = self.queue.send_batch(self.settings.import_queue_url, bodies)
        if failed:
            from chalicelib.errors import UpstreamError

            raise UpstreamError("the import queue is unavailable; upload again with the same Idempotency-Key")
        self.repo.set_job(tenant.tenant_id, job_id, {"enqueued": True})
        logger.info(
            "Import queued",
            extra={"tenant_id": tenant.tenant_id, "import_id": job_id, "rows": len(parsed.rows), "chunks": len(chunks)},
        )
        job = self.repo.job(tenant.tenant_id, job_id)
        assert job is not None
        return _job_model(job)

    # --- status -------------------------------------------------------------------------------
    def status(self, tenant: Tenant, job_id: str, query: StatusQuery) -> ImportStatus:
        job = self.repo.job(tenant.tenant_id, job_id) if job_id.startswith("imp_") else None
        if job is None:
            raise NotFound("no such import")
        chunk, offset = _decode_cursor(query.cursor)
        results: list[RowResult] = []
        next_cursor = None
        reads = 0
        while chunk < int(job["chunks"]):
            if reads >= RESULT_CHUNKS_PER_PAGE:  # a bounded read per request: the page comes back short
                next_cursor = _encode_cursor(chunk, offset)
                break
            stored = self.repo.result(tenant.tenant_id, job_id, chunk)
            reads += 1
            if stored is None:  # not processed yet: come back for the rest
                next_cursor = _encode_cursor(chunk, offset)
                break
            while offset < len(stored):
                entry = stored[offset]
                offset += 1
                if query.outcome is None or entry["outcome"] == query.outcome:
                    results.append(RowResult.model_validate(entry))
                    if len(results) >= query.limit:
                        break
            if len(results) >= query.limit:
                if offset >= len(stored):
                    chunk, offset = chunk + 1, 0
                next_cursor = _encode_cursor(chunk, offset) if chunk < int(job["chunks"]) else None
                break
            chunk, offset = chunk + 1, 0
        return ImportStatus(**_job_model(job).model_dump(), results=results, next_cursor=next_cursor)

    # --- worker -------------------------------------------------------------------------------
    def process_chunk(self, message: ChunkMessage, receive_count: int = 1) -> str:
        """Process one chunk (idempotent). Raises to have SQS retry; the last try marks the job failed."""
        try:
            return self._process_chunk(message)
        except Exception:
            if receive_count >= MAX_RECEIVES:
                self.repo.set_job(
                    message.tenant_id,
                    message.job_id,
                    {
                        "state": "failed",
                        "error": f"chunk {message.chunk} could not be processed",
                        "updated_at": utcnow().isoformat(),
                    },
                    only_if_state=("queued", "processing"),
                )
                logger.error(
                    "Import chunk failed for good", extra={"import_id": message.job_id, "chunk": message.chunk}
                )
            raise

    def _process_chunk(self, message: ChunkMessage) -> str:
        tenant_id, job_id, index = message.tenant_id, message.job_id, message.chunk
        job = self.repo.job(tenant_id, job_id)
        tenant = self.tenants.get(tenant_id)
        if job is None or tenant is None:
            return "gone"
        results = self.repo.result(tenant_id, job_id, index)
        outcome = "duplicate"
        if results is None:
            rows = self.repo.chunk(tenant_id, job_id, index)
            if rows is None:
                return "gone"
            if job["state"] == "queued":
                self.repo.set_job(
                    tenant_id,
                    job_id,
                    {"state": "processing", "updated_at": utcnow().isoformat()},
                    only_if_state=("queued",),
                )
            results = [r.model_dump(exclude_none=True) for r in self.process_rows(tenant, job, rows)]
            self.repo.put_result(tenant_id, job_id, index, results)
            outcome = "processed"
        counts: dict[str, int] = {"rows_done": len(results)}
        for r in results:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        now = utcnow().isoformat()
        updated = self.repo.count_chunk(tenant_id, job_id, index, counts, now) or self.repo.job(tenant_id, job_id)
        all_done = updated is not None and len(updated.get("done_chunks", ())) >= int(updated["chunks"])
        if all_done and self.repo.set_job(
            tenant_id,
            job_id,
            {"state": "completed", "completed_at": now, "updated_at": now},
            only_if_state=("queued", "processing"),
        ):
            logger.info("Import completed", extra={"tenant_id": tenant_id, "import_id": job_id})
        return outcome

    def process_rows(self, tenant: Tenant, job: Item, rows: list[tuple[int, list[str], int | None]]) -> list[RowResult]:
        """Validate and write one chunk's rows; returns one result per row, in row order."""
        columns = list(job["columns"])
        results: dict[int, RowResult] = {}
        valid: list[RowCheck] = []
        for row, cells, duplicate_of in rows:
            check = csv_rows.validate_row(columns, row, cells)
            if check.fields is None:
                results[row] = check.invalid_result()
            elif duplicate_of is not None:
                results[row] = RowResult(
                    row=row,
                    outcome="duplicate",
                    field="email",
                    reason=f"same email and business legal name as row {duplicate_of}",
                )
            else:
                valid.append(check)
        staff = self.invitations.owner_index(tenant) if valid else {}
        prepared = [self._prepare(tenant, job, check, staff) for check in valid]
        if job["dry_run"]:
            owners = self.repo.guard_owners([p.inv for p in prepared])
            for p in prepared:
                if p.inv.invitation_id in owners:
                    results[p.row] = self._duplicate(p.row, owners[p.inv.invitation_id])
                else:
                    results[p.row] = RowResult(row=p.row, outcome="valid")
        else:
            for p in self._write(prepared, results):
                results[p.row] = RowResult(row=p.row, outcome="created", invitation_id=p.inv.invitation_id)
        return [results[row] for row, _, _ in rows]

    @staticmethod
    def _duplicate(row: int, existing: str) -> RowResult:
        return RowResult(
            row=row,
            outcome="duplicate",
            invitation_id=existing,
            field="email",
            reason=f"an open invitation for this email and business legal name exists: {existing}",
        )

    def _prepare(self, tenant: Tenant, job: Item, check: RowCheck, owners: dict[str, StaffMember]) -> _Row:
        """The invitation a row creates, with ids derived from (job, row): what InvitationService.create builds.

        An owner cell naming an active staff member (``owners``: by email, or a name only they have) makes them the
        owner, as the console's owner list does; any other text stays free text."""
        assert check.fields is not None
        fields, row, job_id = check.fields, check.row, job["job_id"]
        member = owners.get(owner_key(fields.owner or ""))
        at = datetime.fromisoformat(job["created_at"])
        settings = tenant.settings
        send = bool(job["send"])
        inv = Invitation(
            invitation_id=csv_rows.row_id("inv", job_id, row),
            tenant_id=tenant.tenant_id,
            email=fields.email,
            # A required column: a row without it is refused before this.
            owner=member.display_name[:120] if member else fields.owner or "-",
            owner_staff_id=member.staff_id if member else None,
            first_name=fields.first_name,
            last_name=fields.last_name,
            phone=fields.phone,
            business_legal_name=fields.business_legal_name,
            banking_integration=fields.banking_integration or settings.default_banking_integration,
            channel=fields.channel,
            locale=fields.locale or settings.locale,
            source=Source.IMPORT,
            created_at=at,
            updated_at=at,
            link_nonce=csv_rows.row_nonce(job["secret"], row),
            link_version=1,
            link_expires_at=link_expiry(at, settings.invitation_ttl_days),
        )
        send_id = None
        events = [
            InvitationEvent(
                type="created", actor="import", at=at, details={"source": "import", "import_id": job_id, "row": row}
            )
        ]
        if send:
            send_id = csv_rows.row_id("snd", job_id, row)
            inv.send_count = 1
            inv.last_send_requested_at = at
            inv.delivery_status = DeliveryStatus.QUEUED
            events.append(
                InvitationEvent(
                    type="send_requested",
                    actor="import",
                    at=at,
                    details={"channel": inv.channel.value, "send_id": send_id},
                )
            )
        prepared = _Row(inv, row, send_id)
        if not job["dry_run"]:
            token = self.invitations.token_for(inv)
            prepared.satellites, prepared.item = self.repo.row_items(
                inv, row, events, links.token_hash(token) if token else None, send_id, at
            )
        return prepared

    def _write(self, prepared: list[_Row], results: dict[int, RowResult]) -> list[_Row]:
        """Reserve guards, write what is new, queue sends. Returns the rows whose invitation now exists;
        the others get their ``duplicate`` result in ``results``."""
        fresh: list[_Row] = []
        resumed: list[_Row] = []
        owners = self.repo.reserve_guards([p.inv for p in prepared])
        for p in prepared:
            owner = owners[p.inv.invitation_id]
            if owner is None:
                fresh.append(p)
            elif owner == p.inv.invitation_id:
                resumed.append(p)  # ours from an earlier attempt of this chunk
            else:
                results[p.row] = self._duplicate(p.row, owner)
        done_before: list[_Row] = []
        if resumed:
            tenant_id = resumed[0].inv.tenant_id
            present = self.repo.existing_invitations(tenant_id, [p.inv.invitation_id for p in resumed])
            for p in resumed:
                (done_before if p.inv.invitation_id in present else fresh).append(p)
        self.repo.write_rows([s for p in fresh for s in p.satellites], [p.item for p in fresh])
        if fresh:
            count("InvitationCreated", len(fresh))  # written now; rows of an earlier attempt were counted then
        # Rows written by an earlier attempt are queued again: the send worker ignores a send it already made.
        sends = [(p.inv.invitation_id, p.send_id) for p in (*fresh, *done_before) if p.send_id]
        if sends:
            # Several sends a message (the worker handles each one on its own): a tenth of the SQS messages.
            bodies = send_batch_messages(prepared[0].inv.tenant_id, sends)
            failed = self.queue.send_batch(self.settings.send_queue_url, bodies)
            if failed:
                lost = sum(len(bodies[i]["sends"]) for i in failed)
                logger.warning("Import sends left in the outbox for the relay", extra={"count": lost})
        return [*fresh, *done_before]

    # --- template --------------------------------------------------------------------
    @staticmethod
    def template() -> str:
        return csv_rows.template_csv()
