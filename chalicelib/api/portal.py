"""Routes: the customer portal reached from an invitation link (``/portal/{token}``).

Every action answers JSON to API clients (``Content-Type: application/json``) and, to browsers
posting forms, redirects back to the page (or re-renders it with the error). Forms carry a
double-submit CSRF token. A signed-in customer (join page session) gets the same page through
:func:`portal_response` with the invitation their session resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib import bootstrap
from chalicelib.api.forms import CSRF_COOKIE, CSRF_FIELD, cookie_header, csrf_token, csrf_valid, parse_form
from chalicelib.api.routing import endpoint, error_response, invalid, json_response, parse_json
from chalicelib.domain.waterfall import DOCUMENT_TYPES, MAX_DOCUMENT_BYTES, UploadRequest
from chalicelib.errors import DomainError, Forbidden, NotFound
from chalicelib.web import SECURITY_HEADERS, page

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.services.portal import PortalContext

bp = Blueprint(__name__)

FORM_TYPES = ["application/x-www-form-urlencoded", "application/json"]

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Customer portal",
        "welcome": "Welcome",
        "intro": "{brand} asks you for the following. It takes a few minutes.",
        "step_contact": "Confirm your contact details",
        "step_bank": "Link your bank account",
        "step_documents": "Upload your statements",
        "step_submit": "Submit",
        "email": "Email",
        "first_name": "First name",
        "last_name": "Last name",
        "phone": "Mobile phone",
        "confirm": "Confirm my details",
        "contact_confirmed": "Thank you, your details are confirmed.",
        "start_link": "Link my bank account",
        "retry_link": "Try linking again",
        "open_link": "Continue with {provider}",
        "link_waiting": "Waiting for {provider}. Finish there, then come back: this page refreshes by itself.",
        "link_preparing": "Preparing your secure link…",
        "refresh": "Refresh",
        "linked": "Your bank account is linked through {provider}.",
        "exhausted": "We could not link your bank automatically. Please upload your recent statements instead.",
        "attempts": "What happened so far",
        "provider": "Provider",
        "outcome": "Outcome",
        "reason": "Reason",
        "documents_intro": "PDF, PNG, JPEG or CSV, up to 25 MB each.",
        "document_type": "Type of file",
        "file_name": "File name (optional)",
        "upload": "Upload a document",
        "choose_file": "Choose the file",
        "send_file": "Send the file",
        "confirm_upload": "I have sent it: confirm",
        "uploaded": "uploaded",
        "pending": "waiting for the file",
        "submit": "Submit to {brand}",
        "submit_hint": "Link your bank account or upload a document first.",
        "submitted": "Submitted. Thank you! {brand} will be in touch.",
        "status": "Status",
        "back": "Back to the portal",
    },
    "fr": {
        "title": "Portail client",
        "welcome": "Bienvenue",
        "intro": "{brand} vous demande les renseignements suivants. Cela prend quelques minutes.",
        "step_contact": "Confirmer vos coordonnées",
        "step_bank": "Lier votre compte bancaire",
        "step_documents": "Téléverser vos relevés",
        "step_submit": "Soumettre",
        "email": "Courriel",
        "first_name": "Prénom",
        "last_name": "Nom",
        "phone": "Téléphone mobile",
        "confirm": "Confirmer mes coordonnées",
        "contact_confirmed": "Merci, vos coordonnées sont confirmées.",
        "start_link": "Lier mon compte bancaire",
        "retry_link": "Réessayer",
        "open_link": "Continuer avec {provider}",
        "link_waiting": "En attente de {provider}. Terminez là-bas puis revenez : cette page se met à jour seule.",
        "link_preparing": "Préparation de votre lien sécurisé…",
        "refresh": "Actualiser",
        "linked": "Votre compte bancaire est lié par {provider}.",
        "exhausted": "Nous n'avons pas pu lier votre banque automatiquement. Veuillez plutôt téléverser vos relevés récents.",
        "attempts": "Historique",
        "provider": "Fournisseur",
        "outcome": "Résultat",
        "reason": "Raison",
        "documents_intro": "PDF, PNG, JPEG ou CSV, jusqu'à 25 Mo chacun.",
        "document_type": "Type de fichier",
        "file_name": "Nom du fichier (facultatif)",
        "upload": "Téléverser un document",
        "choose_file": "Choisir le fichier",
        "send_file": "Envoyer le fichier",
        "confirm_upload": "Je l'ai envoyé : confirmer",
        "uploaded": "reçu",
        "pending": "en attente du fichier",
        "submit": "Soumettre à {brand}",
        "submit_hint": "Liez d'abord votre compte bancaire ou téléversez un document.",
        "submitted": "Soumis. Merci! {brand} communiquera avec vous.",
        "status": "Statut",
        "back": "Retour au portail",
    },
}

PROVIDER_NAMES = {"plaid": "Plaid", "finicity": "Mastercard Open Banking (Finicity)", "mx": "MX"}


def brand(tenant: Any, locale: str | None = None) -> dict[str, Any]:
    branding = tenant.settings.branding
    return {
        "brand_name": tenant.display_name,
        "colour": branding.colour,
        "logo_url": str(branding.logo_url) if branding.logo_url else None,
        "locale": locale or tenant.settings.locale,
    }


def _wants_json(request: Request) -> bool:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower() == "application/json"


def _context(token: str, *, opened: bool = False) -> PortalContext:
    ctx = bootstrap.portal().by_token(token, opened=opened)
    if ctx is None:
        raise NotFound("this portal link is not valid or has expired")
    return ctx


def _checked_form(request: Request) -> dict[str, str]:
    form = parse_form(request)
    if not csrf_valid(request, form):
        raise Forbidden("the form expired; reload the page and try again")
    return form


def _redirect(location: str) -> Response:
    return Response(body="", status_code=303, headers={"Location": location, "Cache-Control": "no-store"})


def _invalid_page(request: Request, token: str = "", status: int = 404) -> Response:
    """The friendly "link no longer works" page. It keeps the old token in its "send me a fresh
    link" form, so the request can find the lender without revealing anything."""
    csrf, fresh = csrf_token(request)
    headers = {"Set-Cookie": cookie_header(CSRF_COOKIE, csrf, secure=False)} if fresh else {}
    safe = token if len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token) else ""
    return page("portal_invalid.html", status=status, headers=headers, csrf=csrf, csrf_field=CSRF_FIELD, token=safe)


def portal_response(
    request: Request,
    ctx: PortalContext,
    base_path: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """Render the portal for an already-resolved invitation.

    The hook for signed-in customers: the session route resolves the invitation and calls this
    with its own ``base_path`` (the page's forms post to ``{base_path}/...``).
    """
    state = bootstrap.portal().state(ctx)
    inv = ctx.invitation
    locale = inv.locale if inv.locale in TEXT else "en"
    words = {k: v.replace("{brand}", ctx.tenant.display_name) for k, v in TEXT[locale].items()}
    token, fresh = csrf_token(request)
    headers = {"Set-Cookie": cookie_header(CSRF_COOKIE, token, secure=False)} if fresh else {}
    running = state.bank_link is not None and state.bank_link.state.value == "running"
    return page(
        "portal.html",
        status=status,
        headers=headers,
        invitation=state_invitation(ctx),
        state=state,
        t=words,
        base_path=base_path,
        csrf=token,
        csrf_field=CSRF_FIELD,
        error=error,
        notice=notice,
        refresh=running,
        provider_names=PROVIDER_NAMES,
        document_types=sorted(DOCUMENT_TYPES),
        **brand(ctx.tenant, locale),
    )


def state_invitation(ctx: PortalContext) -> Any:
    """The invitation as stored now (a form post may have just changed it)."""
    s = bootstrap.services()
    return s.invitation_repo.get(ctx.invitation.tenant_id, ctx.invitation.invitation_id) or ctx.invitation


def _act(request: Request, token: str, action: Any, *, anchor: str = "") -> Response:
    """Run ``action(ctx, form_or_json)``: JSON in -> JSON out; a form -> redirect, or the page with the error."""
    base = f"/portal/{token}"
    try:
        ctx = _context(token)
    except NotFound as exc:
        return error_response(exc) if _wants_json(request) else _invalid_page(request, token)
    if _wants_json(request):
        try:
            result = action(ctx, None)
        except DomainError as exc:
            return error_response(exc)
        except ValidationError as exc:
            return error_response(invalid(exc))
        return json_response(result)
    try:
        form = _checked_form(request)
        result = action(ctx, form)
    except DomainError as exc:
        status = 403 if isinstance(exc, Forbidden) else 409 if exc.code in ("conflict",) else 400
        return portal_response(request, ctx, base, error=exc.message, status=status)
    except ValidationError as exc:
        return portal_response(request, ctx, base, error=invalid(exc, "form").message, status=400)
    if isinstance(result, Response):
        return result
    return _redirect(f"{base}{anchor}")


# --- pages ---------------------------------------------------------------------------------------
@endpoint(bp, "/portal/return", "GET", summary="Where providers send the customer back", auth=False, document=False)
def portal_return(**_: Any) -> Response:
    return page("portal_return.html")


@endpoint(bp, "/portal/{token}", "GET", summary="Customer portal", auth=False, document=False)
def portal_page(token: str, request: Request, **_: Any) -> Response:
    ctx = bootstrap.portal().by_token(token, opened=True)
    if ctx is None:
        return _invalid_page(request, token)
    return portal_response(request, ctx, f"/portal/{token}")


@endpoint(bp, "/portal/{token}/status", "GET", summary="Portal state (polled while linking)", auth=False)
def portal_status(token: str, **_: Any) -> Any:
    return bootstrap.portal().state(_context(token))


@endpoint(
    bp,
    "/portal/fresh-link",
    "POST",
    summary="Send me a fresh link",
    auth=False,
    document=False,
    content_types=["application/x-www-form-urlencoded"],
)
def fresh_link(request: Request, **_: Any) -> Response:
    form = parse_form(request)
    if not csrf_valid(request, form):
        return _invalid_page(request, form.get("token", ""), status=403)
    bootstrap.portal().fresh_link(form.get("token", ""), form.get("email", ""))
    return page("portal_fresh_link.html")


# --- actions -------------------------------------------------------------------------------------
@endpoint(
    bp,
    "/portal/{token}/contact",
    "POST",
    summary="Confirm or correct contact details",
    auth=False,
    document=False,
    content_types=FORM_TYPES,
)
def confirm_contact(token: str, request: Request, **_: Any) -> Response:
    def action(ctx: PortalContext, form: dict[str, str] | None) -> Any:
        data = form if form is not None else _json_dict(request)
        inv = bootstrap.portal().confirm_contact(ctx, data)
        return {"first_name": inv.first_name, "last_name": inv.last_name, "phone": inv.phone}

    return _act(request, token, action, anchor="?confirmed=1#contact")


@endpoint(
    bp,
    "/portal/{token}/bank-link",
    "POST",
    summary="Start (or resume) linking a bank account",
    auth=False,
    document=False,
    content_types=FORM_TYPES,
)
def start_bank_link(token: str, request: Request, **_: Any) -> Response:
    def action(ctx: PortalContext, _form: dict[str, str] | None) -> Any:
        return bootstrap.bank_links().start(ctx.tenant, ctx.invitation)

    return _act(request, token, action, anchor="#bank")


@endpoint(
    bp,
    "/portal/{token}/documents",
    "POST",
    summary="Presigned upload for one document",
    auth=False,
    document=False,
    content_types=FORM_TYPES,
)
def request_upload(token: str, request: Request, **_: Any) -> Response:
    base = f"/portal/{token}"

    def action(ctx: PortalContext, form: dict[str, str] | None) -> Any:
        service = bootstrap.portal()
        if form is None:
            return service.request_upload(ctx, parse_json(request, UploadRequest), base)
        kind = form.get("content_type", "")
        ext = DOCUMENT_TYPES.get(kind, (".pdf",))[0]
        upload = UploadRequest.model_validate(
            {
                "filename": form.get("filename") or f"statement{ext}",
                "content_type": kind,
                # A browser knows the size only once the file is chosen; S3's policy enforces the limit.
                "size": MAX_DOCUMENT_BYTES,
            }
        )
        presigned = service.request_upload(ctx, upload, base, browser=True)
        return _upload_page(request, ctx, presigned, base)

    return _act(request, token, action)


def _upload_page(request: Request, ctx: PortalContext, presigned: Any, base: str) -> Response:
    inv = ctx.invitation
    locale = inv.locale if inv.locale in TEXT else "en"
    words = {k: v.replace("{brand}", ctx.tenant.display_name) for k, v in TEXT[locale].items()}
    csrf, fresh = csrf_token(request)
    target = urlsplit(presigned.url)
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}"
    )
    headers = {"Content-Security-Policy": csp}
    if fresh:
        headers["Set-Cookie"] = cookie_header(CSRF_COOKIE, csrf, secure=False)
    return page(
        "portal_upload.html",
        headers=headers,
        upload=presigned,
        t=words,
        base_path=base,
        csrf=csrf,
        csrf_field=CSRF_FIELD,
        accept=",".join(sorted({e for exts in DOCUMENT_TYPES.values() for e in exts})),
        **brand(ctx.tenant, locale),
    )


@endpoint(
    bp,
    "/portal/{token}/documents/{document_id}/complete",
    "POST",
    summary="Confirm an upload",
    auth=False,
    document=False,
    content_types=FORM_TYPES,
)
def complete_upload(token: str, document_id: str, request: Request, **_: Any) -> Response:
    def action(ctx: PortalContext, _form: dict[str, str] | None) -> Any:
        return bootstrap.portal().complete_upload(ctx, document_id)

    return _act(request, token, action, anchor="#documents")


@endpoint(
    bp,
    "/portal/{token}/documents/{document_id}/complete",
    "GET",
    summary="S3 upload redirect",
    auth=False,
    document=False,
)
def upload_redirect(token: str, document_id: str, request: Request, **_: Any) -> Response:
    """S3 sends the browser here (``success_action_redirect``) after a successful POST upload."""
    try:
        ctx = _context(token)
    except NotFound:
        return _invalid_page(request, token)
    try:
        bootstrap.portal().complete_upload(ctx, document_id)
    except DomainError as exc:
        return portal_response(request, ctx, f"/portal/{token}", error=exc.message, status=409)
    return _redirect(f"/portal/{token}#documents")


@endpoint(
    bp,
    "/portal/{token}/submit",
    "POST",
    summary="Submit the portal",
    auth=False,
    document=False,
    content_types=FORM_TYPES,
)
def submit(token: str, request: Request, **_: Any) -> Response:
    def action(ctx: PortalContext, _form: dict[str, str] | None) -> Any:
        return bootstrap.portal().submit(ctx)

    return _act(request, token, action, anchor="#submit")


def _json_dict(request: Request) -> dict[str, str]:
    import json

    try:
        data = json.loads(request.raw_body or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        from chalicelib.errors import ValidationFailed

        raise ValidationFailed("the body must be a JSON object", fields={"body": "must be a JSON object"})
    return {k: str(v) for k, v in data.items() if v is not None}
