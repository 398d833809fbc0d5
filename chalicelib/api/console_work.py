"""Console pages: notifications (the bell), the communication log, the account-list upload and the
customers who joined. Each calls the service its API route calls."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any
from urllib.parse import urlencode

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.api.console_invitations import owner_names
from chalicelib.api.console_web import Ctx, console_page, redirect
from chalicelib.api.routing import invalid, validation_fields
from chalicelib.bootstrap import customers, imports, notifications, services
from chalicelib.domain.invitation import CommunicationStatus, Status
from chalicelib.domain.notifications import NotificationQuery
from chalicelib.errors import Conflict, ValidationFailed
from chalicelib.i18n import N_
from chalicelib.services.imports import StatusQuery, UploadQuery
from chalicelib.services.invitations import CommunicationQuery, ListQuery

bp = Blueprint(__name__)

PAGE_SIZE = 50
# The browser's multipart upload reaches Lambda base64-encoded (a binary type: 4 bytes for 3), inside the 6 MB
# Lambda takes per request: 4 MB of file is 5.3 MB encoded, with room for the form around it.
UPLOAD_LABELS = {"file": N_("Account list (CSV)"), "form": N_("Form")}
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
NOTIFICATION_WORDS = {
    "completion": N_("Customer completed the portal"),
    "bounce": N_("Email bounced"),
    "complaint": N_("Email marked as spam"),
    "opt_out": N_("SMS opt-out (replied STOP)"),
    "waterfall_exhausted": N_("No bank link worked: documents requested"),
    "financial_data_ready": N_("Bank data ready (accounts and transactions)"),
}
NOTICES = {
    "read": N_("Marked as read."),
    "all_read": N_("All notifications marked as read."),
    "disconnected": N_("The customer's financial data (bank links and documents) was deleted; the record stays."),
    "deleted": N_("The customer was removed: their access is revoked and their financial data deleted."),
}


# A bad filter, by field; the range's own rule (From after To) lands on To.
LOG_FILTER_ERRORS = {
    "channel": N_("choose Email or SMS"),
    "outcome": N_("choose an outcome from the list"),
    "date": N_("enter a date, like 2026-12-01"),
    "until": N_("To must be on or after From"),
    "cursor": N_("this page link has expired: filter again"),
}
LOG_FILTER_LABELS = {
    "channel": N_("Channel"),
    "outcome": N_("Outcome"),
    "cursor": N_("Page"),
}


# --- notifications ----------------------------------------------------------------------------------
@console_page(bp, "/console/notifications", section="notifications")
def notification_list(ctx: Ctx) -> Response:
    try:
        query = NotificationQuery.model_validate(
            {"limit": PAGE_SIZE, **({"cursor": ctx.query["cursor"]} if ctx.query.get("cursor") else {})}
        )
    except ValidationError as exc:
        raise invalid(exc, "query") from exc
    result = notifications().list(ctx.tenant, query)
    # Each notification names its customer (one batch read for the page), not just "the invitation".
    customers = services().invitations.get_many(ctx.tenant, [n.invitation_id for n in result.items if n.invitation_id])
    return ctx.render(
        "notifications.html",
        items=result.items,
        customers=customers,
        words=ctx.words.each(NOTIFICATION_WORDS),
        next_url=f"/console/notifications?{urlencode({'cursor': result.next_cursor})}" if result.next_cursor else None,
        notice=ctx.words.notice(NOTICES, ctx.query.get("notice")),
    )


@console_page(bp, "/console/notifications/{notification_id}/read", ("POST",), section="notifications")
def notification_read(ctx: Ctx, notification_id: str) -> Response:
    notifications().mark_read(ctx.tenant, notification_id)
    return redirect("/console/notifications?notice=read")


# --- communication log --------------------------------------------------------------------------------
@console_page(bp, "/console/communications", section="communications")
def communication_log(ctx: Ctx) -> Response:
    q = ctx.query
    filters = {k: q[k] for k in ("channel", "outcome", "since", "until") if q.get(k)}
    try:
        query = CommunicationQuery.model_validate(
            {**filters, "limit": PAGE_SIZE, **({"cursor": q["cursor"]} if q.get("cursor") else {})}
        )
    except ValidationError as exc:
        # The log again, its filters kept, each problem next to its field (the date pickers allow From > To).
        errors: dict[str, str] = {}
        for name in (n.split(".")[0] for n in validation_fields(exc)):
            if name in ("since", "until"):
                errors.setdefault(name, ctx.gettext(LOG_FILTER_ERRORS["date"]))
            elif name in LOG_FILTER_ERRORS:
                errors.setdefault(name, ctx.gettext(LOG_FILTER_ERRORS[name]))
        return ctx.render(
            "communications.html",
            status=400,
            items=[],
            filters=filters,
            errors=errors or {"until": ctx.gettext(LOG_FILTER_ERRORS["until"])},
            labels=ctx.words.each(LOG_FILTER_LABELS)
            | {"since": ctx.words.pgettext("dates", "From"), "until": ctx.words.pgettext("dates", "To")},
            outcomes=[s.value for s in CommunicationStatus],
        )
    log = services().invitations.communication_log(ctx.tenant, query)
    return ctx.render(
        "communications.html",
        errors={},
        labels={},
        items=log.items,
        filters=filters,
        outcomes=[s.value for s in CommunicationStatus],
        next_url=f"/console/communications?{urlencode({**filters, 'cursor': log.next_cursor})}"
        if log.next_cursor
        else None,
        first_url=f"/console/communications?{urlencode(filters)}" if query.cursor else None,
    )


# --- upload account list ---------------------------------------------------------------------------
def multipart_fields(request: Any) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body: name -> (file name, content)."""
    content_type = request.headers.get("content-type") or ""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode()
    message = BytesParser(policy=default_policy).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def _upload_form(ctx: Ctx, errors: dict[str, str], status: int = 200) -> Response:
    return ctx.render(
        "upload.html",
        status=status,
        errors=errors,
        labels=ctx.words.each(UPLOAD_LABELS),
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
    )


@console_page(bp, "/console/upload", section="upload")
def upload_page(ctx: Ctx) -> Response:
    return _upload_form(ctx, {})


@console_page(bp, "/console/upload/template", section="upload")
def upload_template(ctx: Ctx) -> Response:
    from chalicelib.api.imports import csv_response

    return csv_response(imports().template(), "invitations-template.csv")


@console_page(bp, "/console/upload", ("POST",), section="upload", multipart=True)
def upload_submit(ctx: Ctx) -> Response:
    fields = multipart_fields(ctx.request)
    if not ctx.csrf_ok({k: v[1].decode("utf-8", "replace") for k, v in fields.items() if k == "csrf_token"}):
        return ctx.render(
            "error.html",
            status=403,
            title=ctx.gettext("The form expired"),
            message=ctx.gettext("Please reload the page and try again."),
        )
    name, content = fields.get("file", (None, b""))
    if not content.strip():
        return _upload_form(ctx, {"file": ctx.gettext("choose a CSV file to upload")}, 400)
    if len(content) > MAX_UPLOAD_BYTES:
        too_big = ctx.gettext("the file is larger than %(mb)s MB; split it into several files and upload each") % {
            "mb": MAX_UPLOAD_BYTES // (1024 * 1024)
        }
        return _upload_form(ctx, {"file": too_big}, 413)
    options = UploadQuery(
        dry_run=fields.get("dry_run", (None, b""))[1] == b"1", send=fields.get("no_send", (None, b""))[1] != b"1"
    )
    try:
        job = imports().start(ctx.tenant, content, options)
    except ValidationFailed as exc:
        return _upload_form(ctx, {"file": exc.message}, 400)
    return redirect(f"/console/upload/{job.import_id}")


@console_page(bp, "/console/upload/{import_id}", section="upload")
def upload_status(ctx: Ctx, import_id: str) -> Response:
    try:
        query = StatusQuery(outcome="invalid", limit=200, cursor=ctx.query.get("cursor") or None)
    except ValidationError as exc:
        raise invalid(exc, "query") from exc
    status = imports().status(ctx.tenant, import_id, query)
    running = status.state in ("queued", "processing")
    # Each page reads a bounded part of the results: rejected rows further on are one link away.
    more_url = (
        f"/console/upload/{import_id}?{urlencode({'cursor': status.next_cursor})}"
        if status.next_cursor and not running
        else None
    )
    percent = int(100 * status.rows_done / status.rows_total) if status.rows_total else 100
    return ctx.render(
        "upload_status.html",
        job=status,
        running=running,
        percent=percent,
        more_url=more_url,
        headers={"Refresh": "2"} if running else None,
    )


# --- customers --------------------------------------------------------------------------------------
@console_page(bp, "/console/customers", section="customers")
def customer_list(ctx: Ctx) -> Response:
    q = ctx.query
    status = q.get("status") or "JOINED"
    if status not in ("JOINED", "INACTIVE"):
        raise ValidationFailed("status must be JOINED or INACTIVE", fields={"status": "JOINED or INACTIVE"})
    params: dict[str, Any] = {"status": status, "limit": PAGE_SIZE}
    if q.get("q"):
        params["q"] = q["q"]
    if q.get("cursor"):
        params["cursor"] = q["cursor"]
    try:
        query = ListQuery.model_validate(params)
    except ValidationError as exc:
        raise invalid(exc, "search") from exc
    result = services().invitations.search(ctx.tenant, query)
    base = {"status": status, **({"q": query.q} if query.q else {})}
    return ctx.render(
        "customers.html",
        items=result.items,
        names=owner_names(ctx.tenant),
        current=status,
        q=query.q or "",
        next_url=f"/console/customers?{urlencode({**base, 'cursor': result.next_cursor})}"
        if result.next_cursor
        else None,
        notice=ctx.words.notice(NOTICES, q.get("notice")),
    )


@console_page(bp, "/console/customers/{customer_id}/disconnect", section="customers")
def customer_disconnect_confirm(ctx: Ctx, customer_id: str) -> Response:
    inv = services().invitations.get(ctx.tenant, customer_id)
    return ctx.render("customer_confirm.html", inv=inv, action="disconnect")


@console_page(bp, "/console/customers/{customer_id}/disconnect", ("POST",), section="customers")
def customer_disconnect(ctx: Ctx, customer_id: str) -> Response:
    customers().disconnect(ctx.tenant, customer_id, actor=ctx.actor)
    return redirect("/console/customers?notice=disconnected")


@console_page(bp, "/console/customers/{customer_id}/delete", section="customers")
def customer_delete_confirm(ctx: Ctx, customer_id: str) -> Response:
    inv = services().invitations.get(ctx.tenant, customer_id)
    if inv.status is Status.PENDING:
        raise Conflict(
            ctx.gettext("this customer has not joined yet: remove their invitation from the Invitations page")
        )
    return ctx.render("customer_confirm.html", inv=inv, action="delete")


@console_page(bp, "/console/customers/{customer_id}/delete", ("POST",), section="customers")
def customer_delete(ctx: Ctx, customer_id: str) -> Response:
    customers().remove(ctx.tenant, customer_id, actor=ctx.actor)
    return redirect("/console/customers?notice=deleted")
