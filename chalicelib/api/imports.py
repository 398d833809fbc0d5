"""Routes: bulk CSV import (template, upload, status) and CSV export of invitations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.api.invitations import idempotency_key
from chalicelib.api.routing import endpoint, json_response
from chalicelib.bootstrap import imports
from chalicelib.services.imports import ExportQuery, ImportJob, ImportStatus, StatusQuery, UploadQuery

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
    summary="Import invitations from a CSV file (UTF-8, up to 50,000 rows and 10 MB); processed asynchronously",
    query=UploadQuery,
    response=ImportJob,
    status=202,
    errors=(422,),
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
    summary="The invitation list as CSV, with the list's filters; formula-like cells are neutralised",
    query=ExportQuery,
    tags=("invitations",),
    response_content_type="text/csv",
)
def export_invitations(tenant: Tenant, query: ExportQuery, **_: Any) -> Response:
    return csv_response(imports().export(tenant, query), "invitations.csv")
