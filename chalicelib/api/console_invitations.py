"""Console pages: the invitation list, add / edit / remove, bulk resend, detail, portal link.

Every action calls the same service as the API route that does it (InvitationService,
CustomerService); these views only turn forms into the API's models and results into pages.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib import bootstrap
from chalicelib.api.console_web import Ctx, Words, console_page, redirect
from chalicelib.api.routing import invalid, validation_fields
from chalicelib.bootstrap import customers, exports, sending, services, staff
from chalicelib.domain.financial import FinancialDataView, TransactionFilter
from chalicelib.domain.invitation import CreateInvitation, EditInvitation, Invitation, Status
from chalicelib.domain.providers import WATERFALL, Provider, banking_integrations
from chalicelib.domain.providers import label as provider_label
from chalicelib.domain.staff import StaffStatus
from chalicelib.errors import (
    ConcurrentModification,
    Conflict,
    DomainError,
    ExportTooLarge,
    RateLimited,
    ValidationFailed,
)
from chalicelib.i18n import DEFAULT, N_
from chalicelib.observability import logger
from chalicelib.services.exports import ExportQuery
from chalicelib.services.invitations import ListQuery, ResendRequest

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)

PAGE_SIZE = 25
TABS = (("", N_("All")), ("PENDING", N_("Pending")), ("JOINED", N_("Joined")), ("INACTIVE", N_("Inactive")))
FIELDS = ("first_name", "last_name", "email", "phone", "business_legal_name", "owner", "banking_integration", "channel")
LABELS = {
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "email": N_("Email"),
    "phone": N_("Phone number"),
    "business_legal_name": N_("Business legal name"),
    "owner": N_("Owner"),
    "banking_integration": N_("Banking integration"),
    "channel": N_("Invite by"),
    "form": N_("Form"),
    "ids": N_("Invitations"),
}
# The banking integrations come from the provider registry (chalicelib/domain/providers.py).
# A select cannot wrap an option (at 390 px the order was cut off): the option is short and the hint names the order.
WATERFALL_OPTION = N_("Waterfall (recommended)")
WATERFALL_HINT = N_("The waterfall tries %(order)s, until one links the customer's bank. We recommend it.")
THEN = N_("%(earlier)s, then %(next)s")
ALONE_OPTION = N_("%(provider)s only")
CHANNELS = (("email", N_("Email")), ("sms", N_("SMS")), ("both", N_("Email and SMS")))
KEEP_TEXT_OWNER = N_("Keep %(owner)s (free text, from the API or an upload)")
KEEP_STAFF_OWNER = N_("Keep %(owner)s (no longer active)")
STAFF_ID = re.compile(r"^stf_[0-9A-Za-z]{1,40}$")
NOTICES = {
    "created": N_("The customer was added and their invitation is on its way."),
    "added": N_("The customer was added (no invitation sent)."),
    "edited": N_("The invitation was saved."),
    "edited_sent": N_("The invitation was saved and sent again."),
    "removed": N_("The invitation was removed."),
    "resent": N_("The invitation was sent again."),
}
# The same notices while the lender's sending is held (sandbox, paused, suspended: the banner above says why): the
# invitation is kept, not on its way.
HELD_NOTICES = {
    "created": N_("The customer was added. Their invitation waits until sending resumes (see above)."),
    "edited_sent": N_("The invitation was saved. It goes out again once sending resumes (see above)."),
    "resent": N_("The invitation was renewed with a fresh link. It waits until sending resumes (see above)."),
}
INVALID = {
    "email": N_("enter a valid email address, like name@example.com"),
    "phone": N_("enter a valid phone number, like 514 555 0123"),
}
JOINED_CUSTOMER = N_(
    "This customer has joined. To revoke access, use Delete customer: it keeps an INACTIVE record and its history."
)
STALE_EDIT = N_(
    "Someone changed this invitation since you opened it. Reload the page to see their changes, "
    "or save again to replace them with yours."
)
REMOVED_CUSTOMER = N_("This customer was removed: the INACTIVE record and its history are kept.")
OUTCOMES = {
    "queued": N_("Sent again"),
    "not_found": N_("Not found"),
    "refused": N_("Not sent"),
    "rate_limited": N_("Not sent yet"),
    "error": N_("Failed, try again"),
}


def field_errors(exc: ValidationError, words: Words) -> dict[str, str]:
    """The model's errors by form field (a rule across fields lands on the field it is about). The models'
    own messages are the API's English; only the commonest, a missing field, is in the page's language."""
    return form_errors(validation_fields(exc), words)


def form_errors(fields: dict[str, str], words: Words) -> dict[str, str]:
    """Errors named by the API's fields, by form field: the owner select sends ``owner_staff_id``."""
    errors: dict[str, str] = {}
    for name, message in fields.items():
        target = name.split(".")[0]
        if target == "owner_staff_id":
            target = "owner"
        if target == "body":
            target = "phone" if "phone" in message else "form"
        if message == "Field required":
            message = words.gettext("this field is required")
        elif target in INVALID and words.locale != DEFAULT:
            # The models' detailed reasons (email-validator's, phonenumbers') exist in English only.
            message = words.gettext(INVALID[target])
        errors.setdefault(target, message)
    return errors


def owner_options(tenant: Tenant, words: Words, inv: Invitation | None = None) -> list[tuple[str, str]]:
    """The lender's active staff by id and current name. Editing an invitation whose owner is not
    one of them (free text from the API or an upload, or a deactivated member) offers to keep it ("")."""
    options = [(m.staff_id, m.display_name) for m in staff().members(tenant) if m.status is StaffStatus.ACTIVE]
    if inv is not None and inv.owner_staff_id not in {v for v, _ in options}:
        current = owner_names(tenant).get(inv.owner_staff_id or "") or inv.owner
        keep = KEEP_STAFF_OWNER if inv.owner_staff_id else KEEP_TEXT_OWNER
        options.insert(0, ("", words.gettext(keep) % {"owner": current}))
    return options


def filter_options(tenant: Tenant, current: str) -> list[tuple[str, str]]:
    """The owner filter: every staff member (deactivated ones keep their invitations), and a
    free-text owner in the URL (an owner set through the API or an upload) stays selected."""
    options = [(m.staff_id, m.display_name) for m in staff().members(tenant)]
    if current and current not in {v for v, _ in options}:
        options.append((current, current))
    return options


def owner_names(tenant: Tenant) -> dict[str, str]:
    """Each staff member's current name by id (an invitation's owner_staff_id)."""
    return {m.staff_id: m.display_name for m in staff().members(tenant)}


def owner_filter(value: str | None) -> dict[str, str]:
    """The console's ``owner`` parameter: a staff id, or the free text of an owner set through the API."""
    if not value:
        return {}
    return {"owner_staff_id": value} if STAFF_ID.match(value) else {"owner": value}


def staff_names(tenant: Tenant) -> dict[str, str]:
    return {f"staff:{m.staff_id}": m.display_name for m in staff().members(tenant)}


def _list_query(ctx: Ctx) -> ListQuery:
    q = ctx.query
    params = {
        "status": q.get("status") or None,
        "q": (q.get("q") or "").strip() or None,
        **owner_filter(q.get("owner")),
        "cursor": q.get("cursor") or None,
        "limit": PAGE_SIZE,
    }
    try:
        return ListQuery.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        raise invalid(exc, "search") from exc


def _list(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    query = _list_query(ctx)
    result = services().invitations.search(ctx.tenant, query)
    owner = query.owner_staff_id or query.owner or ""
    base = {k: v for k, v in {"status": ctx.query.get("status", ""), "q": query.q or "", "owner": owner}.items() if v}
    next_url = (
        f"/console/invitations?{urlencode({**base, 'cursor': result.next_cursor})}" if result.next_cursor else None
    )
    return ctx.render(
        "invitations.html",
        status=status,
        items=result.items,
        tabs=ctx.words.options(TABS),
        current=ctx.query.get("status", ""),
        q=query.q or "",
        owner=owner,
        owners=filter_options(ctx.tenant, owner),
        names=owner_names(ctx.tenant),
        next_url=next_url,
        first_url=f"/console/invitations?{urlencode(base)}" if query.cursor else None,
        export_url=f"/console/invitations/export?{urlencode(base)}",
        notice=_notice(ctx),
        **extra,
    )


@console_page(bp, "/console/invitations", section="invitations")
def invitation_list(ctx: Ctx) -> Response:
    return _list(ctx)


def integration_options(words: Words) -> list[tuple[str, str]]:
    """The banking integration select: the waterfall, then each provider a lender may choose alone, from the
    registry."""
    options = [(WATERFALL, words.gettext(WATERFALL_OPTION))]
    alone = [key for key in banking_integrations() if key != WATERFALL]
    return options + [(key, words.gettext(ALONE_OPTION) % {"provider": provider_label(key)}) for key in alone]


def waterfall_hint(words: Words, order: list[Provider]) -> str:
    """What the waterfall does for this lender: its providers in order (Plaid, then Finicity, then MX)."""
    names = [provider_label(p) for p in order]
    chain = names[0] if names else ""
    for name in names[1:]:
        chain = words.gettext(THEN) % {"earlier": chain, "next": name}
    return words.gettext(WATERFALL_HINT) % {"order": chain}


# --- add a customer ------------------------------------------------------------------------------
def _new_form(ctx: Ctx, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    return ctx.render(
        "invitation_form.html",
        status=status,
        mode="new",
        values=values,
        errors=errors,
        labels=ctx.words.each(LABELS),
        owners=owner_options(ctx.tenant, ctx.words),
        integrations=integration_options(ctx.words),
        waterfall_hint=waterfall_hint(ctx.words, ctx.tenant.settings.provider_order),
        channels=ctx.words.options(CHANNELS),
        action="/console/invitations/new",
    )


@console_page(bp, "/console/invitations/new", section="invitations")
def invitation_new(ctx: Ctx) -> Response:
    values = {
        "owner": ctx.staff.staff_id,
        "banking_integration": str(ctx.tenant.settings.default_banking_integration),
        "channel": "email",
        "form_id": secrets.token_urlsafe(16),
    }
    return _new_form(ctx, values, {})


@console_page(bp, "/console/invitations/new", ("POST",), section="invitations")
def invitation_create(ctx: Ctx) -> Response:
    form = ctx.form
    values = {k: form.get(k, "").strip() for k in FIELDS} | {"form_id": form.get("form_id", "")}
    data: dict[str, Any] = {k: v for k, v in values.items() if v and k in FIELDS}
    data["owner_staff_id"] = data.pop("owner", None)  # the select names a staff member
    data["send"] = form.get("send", "1") == "1"
    try:
        body = CreateInvitation.model_validate(data)
    except ValidationError as exc:
        return _new_form(ctx, values, field_errors(exc, ctx.words), 400)
    # The form's own id makes a double submit (or a reload of the POST) create one invitation.
    key = values["form_id"] if 16 <= len(values["form_id"]) <= 64 else None
    try:
        inv = services().invitations.create(ctx.tenant, body, idempotency_key=key and f"console:{key}", actor=ctx.actor)
    except Conflict as exc:
        return _new_form(ctx, values, {"email": exc.message}, 409)
    except ValidationFailed as exc:
        return _new_form(ctx, values, form_errors(exc.fields, ctx.words) or {"form": exc.message}, 400)
    return redirect(f"/console/invitations/{inv.invitation_id}?notice={'created' if body.send else 'added'}")


# --- bulk resend, export ----------------------------------------------------------------------
@console_page(bp, "/console/invitations/resend", ("POST",), section="invitations")
def invitation_resend(ctx: Ctx) -> Response:
    chosen = [i for i in dict.fromkeys(ctx.lists.get("ids", [])) if i][:100]
    if not chosen:
        return _list(
            ctx,
            400,
            errors={"ids": ctx.gettext("select at least one invitation to resend")},
            labels=ctx.words.each(LABELS),
        )
    result = services().invitations.resend(ctx.tenant, ResendRequest(ids=chosen), actor=ctx.actor)
    rows = []
    for outcome in result.results:
        try:
            inv: Invitation | None = services().invitations.get(ctx.tenant, outcome.invitation_id)
        except DomainError:
            inv = None
        rows.append({"outcome": outcome, "label": ctx.gettext(OUTCOMES[outcome.outcome]), "invitation": inv})
    sent = sum(1 for r in result.results if r.outcome == "queued")
    return ctx.render("resend_results.html", rows=rows, sent=sent, total=len(rows))


def _export_query(values: dict[str, str]) -> ExportQuery:
    # "owner" from the list's URL; "owner_staff_id" back from the export-job form (the query's own field).
    owner = (values.get("owner") or values.get("owner_staff_id") or "").strip()
    params = {k: values.get(k, "").strip() for k in ("status", "q")} | owner_filter(owner)
    try:
        return ExportQuery.model_validate({k: v for k, v in params.items() if v})
    except ValidationError as exc:
        raise invalid(exc, "export") from exc


@console_page(bp, "/console/invitations/export", section="invitations")
def invitation_export(ctx: Ctx) -> Response:
    """The current view as CSV when it is small; otherwise a page that starts an export job."""
    from chalicelib.api.imports import csv_response

    query = _export_query(ctx.query)
    try:
        return csv_response(exports().direct(ctx.tenant, query), "invitations.csv")
    except ExportTooLarge:
        filters = query.model_dump(mode="json", exclude_none=True)
        message = ctx.gettext("This view has too many invitations to download at once.")
        return ctx.render("export_start.html", filters=filters, message=message)


@console_page(bp, "/console/invitations/exports", ("POST",), section="invitations")
def invitation_export_start(ctx: Ctx) -> Response:
    job = exports().start(ctx.tenant, _export_query(ctx.form))
    return redirect(f"/console/invitations/exports/{job.export_id}")


@console_page(bp, "/console/invitations/exports/{export_id}", section="invitations")
def invitation_export_status(ctx: Ctx, export_id: str) -> Response:
    job = exports().status(ctx.tenant, export_id)
    return ctx.render("export_status.html", job=job, running=job.state in ("queued", "running"))


# --- one invitation -------------------------------------------------------------------------------
@console_page(bp, "/console/invitations/{invitation_id}", section="invitations")
def invitation_detail(ctx: Ctx, invitation_id: str) -> Response:
    service = services().invitations
    inv = service.get(ctx.tenant, invitation_id)
    history = service.history(ctx.tenant, invitation_id, 200)
    comms = service.communications(ctx.tenant, invitation_id)
    # The API's own views of the bank-link attempts and the documents (short-lived download URLs).
    links = bootstrap.bank_links().view(ctx.tenant, invitation_id)
    documents = bootstrap.portal().lender_documents(ctx.tenant, invitation_id)
    financial: FinancialDataView | None
    try:
        financial = bootstrap.financial_data().view(ctx.tenant, invitation_id)
    except DomainError:
        logger.exception("Financial data unavailable on the customer page")
        financial = None  # the rest of the page still shows; the section says the data is unavailable
    return ctx.render(
        "invitation_detail.html",
        inv=inv,
        attempts=links.attempts,
        documents=documents.items,
        history=history.items,
        comms=comms.items,
        names=staff_names(ctx.tenant),
        owner_name=owner_names(ctx.tenant).get(inv.owner_staff_id or ""),
        financial=financial,
        # The latest "Disconnect financial data": said on the financial card while no data came since.
        disconnected=next((e for e in reversed(history.items) if e.type == "financial_data_disconnected"), None),
        notice=_notice(ctx),
    )


def _notice(ctx: Ctx) -> str | None:
    """The notice a redirect asked for, said as it is: a message "on its way" only while sending is not held."""
    key = ctx.query.get("notice")
    if key in HELD_NOTICES and sending().standing(ctx.tenant) is not None:
        return ctx.words.notice(HELD_NOTICES, key)
    return ctx.words.notice(NOTICES, key)


@console_page(bp, "/console/invitations/{invitation_id}/transactions.csv", section="invitations")
def invitation_transactions_csv(ctx: Ctx, invitation_id: str) -> Response:
    """The same CSV as GET /v1/invitations/{id}/financial-data.csv (every transaction)."""
    from chalicelib.api.imports import csv_response

    text = bootstrap.financial_data().transactions_csv(ctx.tenant, invitation_id, TransactionFilter())
    return csv_response(text, f"{invitation_id}-transactions.csv")


def _edit_form(
    ctx: Ctx, inv: Invitation, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return ctx.render(
        "invitation_form.html",
        status=status,
        mode="edit",
        inv=inv,
        values=values,
        errors=errors,
        labels=ctx.words.each(LABELS),
        owners=owner_options(ctx.tenant, ctx.words, inv),
        integrations=integration_options(ctx.words),
        waterfall_hint=waterfall_hint(ctx.words, ctx.tenant.settings.provider_order),
        channels=ctx.words.options(CHANNELS),
        action=f"/console/invitations/{inv.invitation_id}/edit",
    )


@console_page(bp, "/console/invitations/{invitation_id}/edit", section="invitations")
def invitation_edit(ctx: Ctx, invitation_id: str) -> Response:
    inv = services().invitations.get(ctx.tenant, invitation_id)
    if inv.status is not Status.PENDING:
        return not_pending(ctx, inv)
    values = {k: str(getattr(inv, k) or "") for k in FIELDS} | {"version": str(inv.version)}
    values["owner"] = inv.owner_staff_id if inv.owner_staff_id in dict(owner_options(ctx.tenant, ctx.words)) else ""
    return _edit_form(ctx, inv, values, {})


@console_page(bp, "/console/invitations/{invitation_id}/edit", ("POST",), section="invitations")
def invitation_update(ctx: Ctx, invitation_id: str) -> Response:
    inv = services().invitations.get(ctx.tenant, invitation_id)
    form = ctx.form
    values = {k: form.get(k, "").strip() for k in FIELDS} | {"version": form.get("version", "")}
    data: dict[str, Any] = {k: (v or None) for k, v in values.items() if k in FIELDS}
    data["email"] = values["email"]  # required: blank is an error, not "unchanged"
    data.pop("owner")
    if values["owner"]:  # blank keeps an owner that is not among the active staff
        data["owner_staff_id"] = values["owner"]
    if not data["banking_integration"]:
        data.pop("banking_integration")
    if not data["channel"]:
        data.pop("channel")
    data["send"] = form.get("send") == "1"
    data["expected_version"] = int(values["version"]) if values["version"].isdigit() else None
    try:
        patch = EditInvitation.model_validate(data)
        services().invitations.edit(ctx.tenant, invitation_id, patch, actor=ctx.actor)
    except ValidationError as exc:
        return _edit_form(ctx, inv, values, field_errors(exc, ctx.words), 400)
    except RateLimited as exc:
        return _edit_form(ctx, inv, values, {"form": f"{exc.message}"}, 429)
    except Conflict as exc:
        fresh = services().invitations.get(ctx.tenant, invitation_id)
        if fresh.status is not Status.PENDING:
            return not_pending(ctx, fresh)
        # Another tab or teammate saved first: their version is the one the next save starts from.
        stale = isinstance(exc, ConcurrentModification) or str(fresh.version) != values["version"]
        message = ctx.gettext(STALE_EDIT) if stale else exc.message
        return _edit_form(ctx, fresh, values | {"version": str(fresh.version)}, {"form": message}, 409)
    except ValidationFailed as exc:
        return _edit_form(ctx, inv, values, form_errors(exc.fields, ctx.words) or {"form": exc.message}, 400)
    return redirect(f"/console/invitations/{invitation_id}?notice={'edited_sent' if patch.send else 'edited'}")


def not_pending(ctx: Ctx, inv: Invitation) -> Response:
    """Removing or editing an invitation that is no longer PENDING: what to do instead, in the console's
    own terms (the API's message names API routes)."""
    if inv.status is Status.INACTIVE:
        message, href, text = REMOVED_CUSTOMER, f"/console/invitations/{inv.invitation_id}", N_("See its history")
    else:
        message, href, text = JOINED_CUSTOMER, f"/console/customers/{inv.invitation_id}/delete", N_("Delete customer")
    return ctx.render(
        "error.html",
        status=409,
        title=ctx.gettext("Not possible now"),
        message=ctx.gettext(message),
        link_href=href,
        link_text=ctx.gettext(text),
    )


@console_page(bp, "/console/invitations/{invitation_id}/remove", section="invitations")
def invitation_remove_confirm(ctx: Ctx, invitation_id: str) -> Response:
    inv = services().invitations.get(ctx.tenant, invitation_id)
    try:
        inv.ensure_deletable(submitted=bootstrap.bank_links().submitted(inv))
    except Conflict:
        return not_pending(ctx, inv)
    return ctx.render("invitation_remove.html", inv=inv)


@console_page(bp, "/console/invitations/{invitation_id}/remove", ("POST",), section="invitations")
def invitation_remove(ctx: Ctx, invitation_id: str) -> Response:
    try:
        customers().delete_invitation(ctx.tenant, invitation_id)
    except Conflict:
        inv = services().invitations.get(ctx.tenant, invitation_id)
        if inv.status is Status.PENDING and not bootstrap.bank_links().submitted(inv):
            raise
        return not_pending(ctx, inv)
    return redirect("/console/invitations?notice=removed")


@console_page(bp, "/console/invitations/{invitation_id}/resend", ("POST",), section="invitations")
def invitation_resend_one(ctx: Ctx, invitation_id: str) -> Response:
    services().invitations.send(ctx.tenant, invitation_id, actor=ctx.actor)
    return redirect(f"/console/invitations/{invitation_id}?notice=resent")


@console_page(bp, "/console/invitations/{invitation_id}/portal-link", section="invitations")
def invitation_portal_link(ctx: Ctx, invitation_id: str) -> Response:
    link = services().invitations.portal_link(ctx.tenant, invitation_id, actor=ctx.actor)
    if ctx.query.get("format") == "json":
        return Response(
            body=json.dumps({"url": link.url, "expires_at": link.expires_at.isoformat()}),
            status_code=200,
            headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
        )
    inv = services().invitations.get(ctx.tenant, invitation_id)
    return ctx.render("portal_link.html", inv=inv, link=link)
