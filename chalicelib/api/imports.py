"""Routes: bulk CSV import (template, upload, status) and CSV export of invitations (direct, or as a job)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.api.invitations import idempotency_key
from chalicelib.api.routing import endpoint, json_response
from chalicelib.bootstrap import exports, imports
from chalicelib.domain.csv_rows import MAX_MEGABYTES
from chalicelib.services.exports import ExportJob, ExportQuery
from chalicelib.services.imports import ImportJob, ImportStatus, StatusQuery, UploadQuery

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)


def csv_response(text: str, filename: str) -> Response:
    return Response(
        body=text,
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@endpoint(
    bp,
    "/v1/imports/template",
    "GET",
    summary="The CSV import template: the header row and one example row",
    tags=("imports",),
    response_content_type="text/csv",
)
def import_template(**_: Any) -> Response:
    return csv_response(imports().template(), "invitations-template.csv")


@endpoint(
    bp,
    "/v1/imports",
    "POST",
    summary=f"Import invitations from a CSV file (UTF-8, up to 50,000 rows and {MAX_MEGABYTES} MB); processed "
    "asynchronously",
    description=f"The file is the request body, at most {MAX_MEGABYTES} MB (5,242,880 bytes): Lambda takes at most "
    "6 MB per request, with the encoding around the body. A larger file is refused with 413 naming `body`: split it "
    "into several files of fewer rows and import each (the same email and business name in two files is still one "
    "invitation: the second import reports the row as a duplicate).",
    query=UploadQuery,
    response=ImportJob,
    status=202,
    errors=(413, 422),
    tags=("imports",),
    content_types=["text/csv"],
)
def start_import(tenant: Tenant, query: UploadQuery, request: Any, **_: Any) -> Response:
    job = imports().start(tenant, request.raw_body or b"", query, idempotency_key(request))
    return json_response(job, 202, {"Location": f"/v1/imports/{job.import_id}"})


@endpoint(
    bp,
    "/v1/imports/{import_id}",
    "GET",
    summary="An import's progress, counts and per-row results (paginated, optionally one outcome)",
    description="Each request reads a bounded part of the results: a page may hold fewer than `limit` results, "
    "even none, and still have a `next_cursor` (also while chunks are being processed); follow it until it is null.",
    query=StatusQuery,
    response=ImportStatus,
    errors=(404,),
    tags=("imports",),
)
def import_status(tenant: Tenant, import_id: str, query: StatusQuery, **_: Any) -> ImportStatus:
    return imports().status(tenant, import_id, query)


@endpoint(
    bp,
    "/v1/invitations/export",
    "GET",
    summary="The invitation list as CSV, with the list's filters, when it is small; formula-like cells are neutralised",
    description="Answers directly only while everything matching is read in a bounded number of list pages "
    "(about 1,000 rows); otherwise 422 `export_too_large`, and POST /v1/invitations/exports exports them all as a job.",
    query=ExportQuery,
    errors=(422,),
    tags=("invitations",),
    response_content_type="text/csv",
)
def export_invitations(tenant: Tenant, query: ExportQuery, **_: Any) -> Response:
    return csv_response(exports().direct(tenant, query), "invitations.csv")


@endpoint(
    bp,
    "/v1/invitations/exports",
    "POST",
    summary="Export the invitations matching the list's filters as a CSV file, asynchronously",
    description="Creates an export job (202, `Location` names it). A worker pages through every matching invitation "
    "and writes the CSV to storage; GET the job until `state` is `completed`, then download `download_url` "
    "(a presigned link valid for 5 minutes; GET the job again for a fresh one; the file is kept for a day).",
    body=ExportQuery,
    response=ExportJob,
    status=202,
    tags=("invitations",),
)
def start_export(tenant: Tenant, body: ExportQuery, **_: Any) -> Response:
    job = exports().start(tenant, body)
    return json_response(job, 202, {"Location": f"/v1/invitations/exports/{job.export_id}"})


@endpoint(
    bp,
    "/v1/invitations/exports/{export_id}",
    "GET",
    summary="An export job: its state and, once completed, a short-lived download URL of the CSV",
    response=ExportJob,
    errors=(404,),
    tags=("invitations",),
)
def export_status(tenant: Tenant, export_id: str, **_: Any) -> ExportJob:
    return exports().status(tenant, export_id)
