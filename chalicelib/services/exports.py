"""Use cases for the CSV export of invitations: a bounded direct answer, and an export job for the rest.

One request may read only so much (API Gateway answers within 29 s, Lambda returns at most 6 MB), so
``GET /v1/invitations/export`` reads at most :data:`DIRECT_EXPORT_PAGES` list pages and, when more
match, says to start a job. A job (``POST /v1/invitations/exports``) is one message on the import queue
(the bulk-CSV worker): each step reads list pages for one multipart part of the file in S3 and queues
the next step, the last one completes the file, and the job's status then gives a short-lived presigned
download URL. Cells are neutralised by the
domain's CSV writer either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from chalicelib.domain import csv_rows, ids
from chalicelib.domain.invitation import DeliveryStatus, Status, utcnow
from chalicelib.domain.model import Model
from chalicelib.errors import ExportTooLarge, NotFound, UpstreamError
from chalicelib.observability import logger
from chalicelib.services.invitations import ListQuery

if TYPE_CHECKING:
    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.exports import ExportRepository
    from chalicelib.adapters.dynamo.table import Item
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.queue import QueuePublisher
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.invitations import InvitationService

# Rows per list page read for an export, and how many pages a direct (in-request) export may read.
EXPORT_PAGE = 200
DIRECT_EXPORT_PAGES = 5
# CSV bytes one worker step writes (one multipart part; S3 wants at least 5 MiB but for the last part): a step reads
# list pages until it has this much, so each invocation is bounded (about 25,000 rows) whatever the export's size.
PART_BYTES = 8 * 1024 * 1024
# List pages one step may read (each a bounded read of at most PAGE_READ_LIMIT queries), however few rows match.
STEP_PAGES = 25
# Matches maxReceiveCount of the import queue's redrive policy: the last try marks the job failed.
MAX_RECEIVES = 5
DOWNLOAD_EXPIRES_SECONDS = 5 * 60
# The file's lifetime (the bucket's lifecycle rule on the exports/ prefix deletes it after a day).
EXPORT_RETENTION = timedelta(hours=23)
KEY_PREFIX = "exports/"

ExportState = Literal["queued", "running", "completed", "failed"]

# The invitation's id, the import template's columns in the template's order, then what only the lender reads.
EXPORT_COLUMNS = (
    "invitation_id",
    *csv_rows.COLUMNS,
    "locale",
    "status",
    "delivery_status",
    "portal_status",
    "source",
    "created_at",
    "updated_at",
    "joined_at",
)


class ExportQuery(Model):
    """The filters of GET /v1/invitations, without paging."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    owner: str | None = Field(default=None, max_length=120)
    owner_staff_id: str | None = Field(default=None, max_length=44)
    email: str | None = Field(default=None, max_length=254)
    delivery_status: DeliveryStatus | None = None
    q: str | None = Field(default=None, max_length=254, description="Search, as in the list")


class ExportJob(Model):
    export_id: str
    state: ExportState
    filters: ExportQuery
    rows: int | None = Field(default=None, description="Rows written (without the header), once completed")
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    error: str | None = None
    download_url: str | None = Field(
        default=None,
        description="Once completed: a presigned link to the CSV, valid for 5 minutes (GET the job again for a "
        "fresh one); the file is kept for a day",
    )
    download_expires_at: datetime | None = None


class ExportMessage(Model):
    type: Literal["export"] = "export"
    tenant_id: str
    export_id: str
    step: int = Field(default=0, ge=0, description="Which part of the file this message writes")


def export_key(tenant_id: str, export_id: str) -> str:
    return f"{KEY_PREFIX}{tenant_id}/{export_id}.csv"


class ExportService:
    def __init__(
        self,
        repo: ExportRepository,
        tenants: TenantRepository,
        invitations: InvitationService,
        documents: DocumentStore,
        queue: QueuePublisher,
        settings: Settings,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.invitations = invitations
        self.documents = documents
        self.queue = queue
        self.settings = settings

    # --- direct (in the request) ----------------------------------------------------------------
    def direct(self, tenant: Tenant, query: ExportQuery) -> str:
        """The CSV when everything matching fits in :data:`DIRECT_EXPORT_PAGES` list pages.

        Raises ExportTooLarge (naming the job route) when more remain: the request never reads on.
        """
        chunks = []
        cursor: str | None = None
        for _ in range(DIRECT_EXPORT_PAGES):
            rows, cursor = self._page(tenant, query, cursor)
            chunks.append(rows)
            if cursor is None:
                return csv_rows.to_csv([EXPORT_COLUMNS, *(r for rows in chunks for r in rows)])
        raise ExportTooLarge(
            f"more invitations match than one answer may read ({DIRECT_EXPORT_PAGES * EXPORT_PAGE} at most); "
            "POST /v1/invitations/exports with the same filters to export them all as a job"
        )

    def _page(self, tenant: Tenant, query: ExportQuery, cursor: str | None) -> tuple[list[list[Any]], str | None]:
        page = self.invitations.search(
            tenant, ListQuery(**query.model_dump(exclude_none=True), limit=EXPORT_PAGE, cursor=cursor)
        )
        rows = []
        for inv in page.items:
            data = inv.model_dump(mode="json")
            rows.append([data.get(c) for c in EXPORT_COLUMNS])
        return rows, page.next_cursor

    # --- jobs -------------------------------------------------------------------------------------
    def start(self, tenant: Tenant, query: ExportQuery) -> ExportJob:
        """Create an export job and queue it. Raises UpstreamError when the queue is unavailable (the
        job is then marked failed, so it never looks as if it were still coming)."""
        export_id = ids.new_id("exp")
        now = utcnow()
        self.repo.put_job(
            {
                "export_id": export_id,
                "tenant_id": tenant.tenant_id,
                "state": "queued",
                "filters": query.model_dump(mode="json", exclude_none=True),
                "step": 0,
                "created_at": now.isoformat(),
                "updated_at": now.isoformat(),
                # DynamoDB's TTL removes the job a little after its file is gone.
                "expires_at": int((now + EXPORT_RETENTION + timedelta(days=1)).timestamp()),
            }
        )
        try:
            self._enqueue(tenant.tenant_id, export_id, 0)
        except UpstreamError:
            self.repo.set_job(
                tenant.tenant_id,
                export_id,
                {"state": "failed", "error": "could not be queued; start the export again"},
                only_if_state=("queued",),
            )
            raise
        logger.info("Export queued", extra={"tenant_id": tenant.tenant_id, "export_id": export_id})
        return self.status(tenant, export_id)

    def status(self, tenant: Tenant, export_id: str) -> ExportJob:
        """The job; a completed one with a fresh presigned download URL. Raises NotFound (also once expired)."""
        job = self.repo.job(tenant.tenant_id, export_id) if export_id.startswith("exp_") else None
        if job is None:
            raise NotFound("no such export")
        model = _job_model(job)
        if model.state == "completed" and model.completed_at is not None:
            if utcnow() - model.completed_at > EXPORT_RETENTION:
                raise NotFound("this export has expired; start a new one")
            model.download_url = self.documents.presigned_get(
                job["key"], "invitations.csv", expires_in=DOWNLOAD_EXPIRES_SECONDS
            )
            model.download_expires_at = utcnow() + timedelta(seconds=DOWNLOAD_EXPIRES_SECONDS)
        return model

    # --- worker -------------------------------------------------------------------------------
    def run(self, message: ExportMessage, receive_count: int = 1) -> str:
        """One step of a job: read list pages from the job's cursor until a part's worth of CSV
        (:data:`PART_BYTES`) or the end, upload it as part ``step + 1``, then queue the next step or
        complete the file. Each invocation is bounded like a request, however many invitations match.

        Idempotent: the job records the next step (a conditional write), so a redelivered step uploads
        the same part number again at most and is then recognised; a step whose successor was never
        queued queues it again. Raises to have SQS retry; the last try marks the job failed.
        """
        tenant_id, export_id = message.tenant_id, message.export_id
        job = self.repo.job(tenant_id, export_id)
        tenant = self.tenants.get(tenant_id)
        if job is None or tenant is None:
            return "gone"
        if job["state"] in ("completed", "failed"):
            return "duplicate"
        step = int(job.get("step", 0))
        if message.step != step:
            if message.step == step - 1:  # done, but its successor may not have been queued
                self._enqueue(tenant_id, export_id, step)
            return "duplicate"
        try:
            return self._step(tenant, job, step)
        except Exception:
            if receive_count >= MAX_RECEIVES:
                if job.get("upload_id"):
                    self.documents.abort_multipart(export_key(tenant_id, export_id), str(job["upload_id"]))
                self.repo.set_job(
                    tenant_id,
                    export_id,
                    {"state": "failed", "error": "the export could not be written", "updated_at": utcnow().isoformat()},
                    only_if_state=("queued", "running"),
                )
                logger.error("Export failed for good", extra={"tenant_id": tenant_id, "export_id": export_id})
            raise

    def _step(self, tenant: Tenant, job: Item, step: int) -> str:
        tenant_id, export_id = tenant.tenant_id, str(job["export_id"])
        key = export_key(tenant_id, export_id)
        upload_id = job.get("upload_id")
        if upload_id is None:
            upload_id = self.documents.start_multipart(key, "text/csv; charset=utf-8")
            if not self.repo.set_job(
                tenant_id,
                export_id,
                {"state": "running", "upload_id": upload_id, "updated_at": utcnow().isoformat()},
                only_if_state=("queued",),
            ):
                self.documents.abort_multipart(key, upload_id)
                return "duplicate"  # another copy of this first step started the upload
        query = ExportQuery.model_validate(job["filters"])
        cursor: str | None = job.get("cursor")
        if step == 0:
            buffer = bytearray(csv_rows.to_csv([EXPORT_COLUMNS]).encode())
        else:  # what the previous step read but was too little for a part of its own
            buffer = bytearray(self.documents.get_bytes(f"{key}.pending-{step}") or b"")
        rows = 0
        for _ in range(STEP_PAGES):
            page, cursor = self._page(tenant, query, cursor)
            rows += len(page)
            if page:
                buffer += csv_rows.to_csv(page).encode()
            if cursor is None or len(buffer) >= PART_BYTES:
                break
        parts = list(job.get("parts") or [])
        if cursor is not None and len(buffer) < PART_BYTES:
            # A sparse filter: this step read its share of the list, not a part's worth of rows. S3 wants 5 MiB
            # in every part but the last, so the rows wait in a pending object for the next step.
            self.documents.put_bytes(f"{key}.pending-{step + 1}", bytes(buffer), "text/csv; charset=utf-8")
        elif buffer or not parts:
            parts.append(self.documents.upload_part(key, str(upload_id), len(parts) + 1, bytes(buffer)))
        total = int(job.get("rows", 0)) + rows
        now = utcnow().isoformat()
        if cursor is None:
            self.documents.complete_multipart(key, str(upload_id), parts)
            self.repo.set_job(
                tenant_id,
                export_id,
                {"state": "completed", "rows": total, "key": key, "completed_at": now, "updated_at": now},
                only_if_state=("running",),
            )
            logger.info("Export completed", extra={"tenant_id": tenant_id, "export_id": export_id, "rows": total})
            return "written"
        moved = self.repo.advance(
            tenant_id,
            export_id,
            step,
            {"step": step + 1, "cursor": cursor, "parts": parts, "rows": total, "updated_at": now},
        )
        if not moved:
            return "duplicate"  # a concurrent copy of this step advanced the job first
        self._enqueue(tenant_id, export_id, step + 1)
        return "part written"

    def _enqueue(self, tenant_id: str, export_id: str, step: int) -> None:
        message = ExportMessage(tenant_id=tenant_id, export_id=export_id, step=step).model_dump()
        self.queue.send(self.settings.import_queue_url, message)


def _job_model(item: Item) -> ExportJob:
    return ExportJob(
        export_id=item["export_id"],
        state=item["state"],
        filters=ExportQuery.model_validate(item.get("filters") or {}),
        rows=item.get("rows"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        completed_at=item.get("completed_at"),
        error=item.get("error"),
    )
