"""Routes: the customer portal, reached two ways.

- from an invitation link: ``/portal/{token}`` and ``/portal/{token}/<action>``;
- signed in on the join page: ``/portal`` and ``/portal/<action>``, found by the session cookie,
  so no token ever appears in the session's URLs.

Each action is written once and bound to both resolvers (:func:`_bind`). Chalice (API Gateway,
``chalice local`` and the test client alike) matches literal segments before ``{token}``, and a
token is 43 characters, so ``/portal/submit`` can never be read as a token.

Every action answers JSON to API clients (``Content-Type: application/json``) and, to browsers
posting forms, redirects back to the page (or re-renders it with the error). Forms carry a CSRF
token derived with the server's key from what reached the page (the session id, or the link's
token), so a cookie planted by a sibling host cannot stand in for it; JSON calls made with the
session cookie send the session's token (the page's, or ``X-CSRF-Token`` of ``GET /portal/status``)
in ``X-CSRF-Token`` (a token in the path is itself the credential, so token calls need none).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib import bootstrap
from chalicelib.api.forms import (
    CSRF_FIELD,
    bound_csrf,
    bound_csrf_valid,
    client_ip,
    csrf_cookie,
    csrf_valid,
    parse_form,
    read_cookie,
    set_cookie,
)
from chalicelib.api.routing import endpoint, error_response, invalid, json_response, parse_json
from chalicelib.domain.providers import customer_name
from chalicelib.domain.waterfall import DOCUMENT_TYPES, MAX_DOCUMENT_BYTES, UploadRequest
from chalicelib.errors import DomainError, Forbidden, NotFound, RateLimited, Unauthorized, ValidationFailed
from chalicelib.services.portal import PortalState
from chalicelib.web import SECURITY_HEADERS, page

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.services.portal import PortalContext

bp = Blueprint(__name__)

SESSION_COOKIE = "session"  # set by the sign-in route (chalicelib.api.join)
CSRF_HEADER = "x-csrf-token"
SESSION_BASE = "/portal"
# What the forms' CSRF tokens are bound to: the session id (SESSION_BASE) or the link's token (/portal/{token}).
SESSION_CSRF = "portal-session"
LINK_CSRF = "portal-link"
FORM_TYPES = ["application/x-www-form-urlencoded", "application/json"]
# The status answers: one customer's progress (and the session's CSRF token), never kept by a cache.
NO_STORE = {"Cache-Control": "no-store"}
PREPARING_TRIES = 20  # reloads 3 s apart while a provider's link is prepared: a minute, then a Refresh link

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
        "details_saved": "Details saved.",
        "done": "done",
        "errors_heading": "Please correct the following:",
        "field_error": "{label}: {message}",
        "need_first_name": "enter your first name",
        "need_last_name": "enter your last name",
        "too_long": "use at most {n} characters",
        "need_mobile": "enter a mobile number, e.g. +1\u00a0514\u00a0555\u00a00123",
        "start_link": "Link my bank account",
        "retry_link": "Try linking again",
        "open_link": "Continue with {provider}",
        "link_waiting": "Waiting for {provider}. Finish there, then come back: this page refreshes by itself.",
        "link_preparing": "Preparing your secure link…",
        "link_preparing_auto": "This page updates by itself in a few seconds.",
        "link_preparing_slow": "This is taking longer than usual. Refresh the page in a moment.",
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
        "remove_upload": "Remove",
        "remove_upload_label": "Remove {name}",
        "submit": "Submit to {brand}",
        "submit_hint": "Link your bank account or upload a document first.",
        "submitted": "Submitted. Thank you! {brand} will be in touch.",
        "status": "Status",
        "back": "Back to the portal",
        "sign_out": "Sign out",
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
        "details_saved": "Coordonnées enregistrées.",
        "done": "fait",
        "errors_heading": "Veuillez corriger ce qui suit\u00a0:",
        "field_error": "{label}\u00a0: {message}",
        "need_first_name": "entrez votre prénom",
        "need_last_name": "entrez votre nom de famille",
        "too_long": "utilisez au plus {n} caractères",
        "need_mobile": "entrez un numéro de mobile, par exemple +1\u00a0514\u00a0555\u00a00123",
        "start_link": "Lier mon compte bancaire",
        "retry_link": "Réessayer",
        "open_link": "Continuer avec {provider}",
        "link_waiting": "En attente de {provider}. Terminez là-bas puis revenez : cette page se met à jour seule.",
        "link_preparing": "Préparation de votre lien sécurisé…",
        "link_preparing_auto": "Cette page se met à jour seule dans quelques secondes.",
        "link_preparing_slow": "Cela prend plus de temps que d'habitude. Actualisez la page dans un moment.",
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
        "remove_upload": "Retirer",
        "remove_upload_label": "Retirer {name}",
        "submit": "Soumettre à {brand}",
        "submit_hint": "Liez d'abord votre compte bancaire ou téléversez un document.",
        "submitted": "Soumis. Merci! {brand} communiquera avec vous.",
        "status": "Statut",
        "back": "Retour au portail",
        "sign_out": "Me déconnecter",
    },
}

# What the customer reads for the portal's statuses and the bank-link attempts' outcomes and reasons.
STATUS_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "not_started": "Not started",
        "opened": "Started",
        "bank_linked": "Bank account linked",
        "documents_uploaded": "Documents received",
        "completed": "Submitted",
        "pending": "In progress",
        "linked": "Linked",
        "failed": "Did not work",
        "institution_not_supported": "your bank is not available through this provider",
        "user_exited": "closed before finishing",
        "provider_error": "the provider had a problem",
        "timeout": "took too long",
    },
    "fr": {
        "not_started": "Pas commencé",
        "opened": "Commencé",
        "bank_linked": "Compte bancaire lié",
        "documents_uploaded": "Documents reçus",
        "completed": "Soumis",
        "pending": "En cours",
        "linked": "Lié",
        "failed": "N'a pas fonctionné",
        "institution_not_supported": "votre banque n'est pas offerte par ce fournisseur",
        "user_exited": "fermé avant la fin",
        "provider_error": "le fournisseur a eu un problème",
        "timeout": "trop long",
    },
}


def status_words(locale: str) -> dict[str, str]:
    return STATUS_WORDS.get(locale, STATUS_WORDS["en"])


def brand(tenant: Any, locale: str | None = None) -> dict[str, Any]:
    branding = tenant.settings.branding
    return {
        "brand_name": tenant.display_name,
        "colour": branding.colour,
        "logo_url": branding.shown_logo_url,
        "locale": locale or tenant.settings.locale,
    }


def _wants_json(request: Request) -> bool:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower() == "application/json"


def _bound_to(request: Request, base_path: str) -> tuple[str, str]:
    """(purpose, secret) of the CSRF token of the portal reached at ``base_path``: the session's id, or the link's
    token."""
    if base_path == SESSION_BASE:
        return SESSION_CSRF, read_cookie(request, SESSION_COOKIE)
    return LINK_CSRF, base_path.removeprefix(f"{SESSION_BASE}/")


def _form_token(request: Request, base_path: str) -> str:
    return bound_csrf(*_bound_to(request, base_path))


def _form_token_valid(request: Request, base_path: str, submitted: str) -> bool:
    return bound_csrf_valid(request, submitted, *_bound_to(request, base_path))


def _redirect(location: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body="",
        status_code=303,
        headers={"Location": location, "Cache-Control": "no-store", **(headers or {})},
    )


def _invalid_page(request: Request, token: str = "", status: int = 404) -> Response:
    """The friendly "link no longer works" page. It keeps the old token in its "send me a fresh
    link" form, so the request can find the lender without revealing anything."""
    csrf, headers = csrf_cookie(request)
    safe = token if len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token) else ""
    # A customer who joined with a password has an account: the retired link says where to sign in.
    account = bootstrap.portal().sign_in_address(safe) if safe else None
    return page(
        "portal_invalid.html",
        status=status,
        headers=headers,
        csrf=csrf,
        csrf_field=CSRF_FIELD,
        token=safe,
        sign_in_url=account[0] if account else None,
        **({**brand(account[1]), "locale": "en"} if account else {}),
    )


def _signed_out_page(
    status: int = 401, sign_in_url: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """No live session: the customer signs in again at their account address."""
    return page("portal_signed_out.html", status=status, headers=headers, sign_in_url=sign_in_url)


# --- how a request finds its invitation ------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    """One way of reaching the portal: where its forms post (``base_path``), how it finds the
    invitation, and what a browser sees when it cannot."""

    base_path: str
    resolve: Callable[[bool], PortalContext | None]  # argument: mark the portal opened
    refused: Callable[[], Response]
    refused_error: DomainError
    session: bool


def _token_binding(request: Request, token: str) -> Binding:
    return Binding(
        base_path=f"/portal/{token}",
        resolve=lambda opened: bootstrap.portal().by_token(token, opened=opened),
        refused=lambda: _invalid_page(request, token),
        refused_error=NotFound("this portal link is not valid or has expired"),
        session=False,
    )


def _session_binding(request: Request) -> Binding:
    def resolve(opened: bool) -> PortalContext | None:
        from chalicelib.services.portal import PortalContext

        session = bootstrap.joins().session(read_cookie(request, SESSION_COOKIE))
        if session is None:
            return None
        inv = bootstrap.services().invitations.opened(session.invitation) if opened else session.invitation
        return PortalContext(session.tenant, inv)

    return Binding(
        base_path=SESSION_BASE,
        resolve=resolve,
        refused=_signed_out_page,
        refused_error=Unauthorized("you are signed out; sign in again"),
        session=True,
    )


def _csrf_header_valid(request: Request) -> bool:
    return _form_token_valid(request, SESSION_BASE, request.headers.get(CSRF_HEADER, ""))


# --- rendering -------------------------------------------------------------------------------------
def _words(ctx: PortalContext) -> tuple[str, dict[str, str]]:
    locale = ctx.invitation.locale if ctx.invitation.locale in TEXT else "en"
    return locale, {k: v.replace("{brand}", ctx.tenant.display_name) for k, v in TEXT[locale].items()}


def portal_response(
    request: Request,
    ctx: PortalContext,
    base_path: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    signed_in: bool = False,
    wait: int = 0,
) -> Response:
    """Render the portal for an already-resolved invitation; its forms post to ``{base_path}/...``.

    ``signed_in``: reached by session (``/portal``), so the page offers to sign out.
    """
    state = bootstrap.portal().state(ctx)
    locale, words = _words(ctx)
    token = _form_token(request, base_path)
    running = state.bank_link is not None and state.bank_link.state.value == "running"
    preparing = running and state.bank_link is not None and not state.bank_link.link_url
    return page(
        "portal.html",
        status=status,
        invitation=state_invitation(ctx),
        state=state,
        t=words,
        base_path=base_path,
        csrf=token,
        csrf_field=CSRF_FIELD,
        error=error,
        notice=notice,
        errors=errors or {},
        values=values,
        refresh=running,
        # While the provider's link is being prepared (seconds), the page reloads itself every few seconds,
        # counting its reloads in ``wait`` so it stops after PREPARING_TRIES (no JavaScript needed).
        preparing_refresh=f"{base_path}?wait={wait + 1}#bank" if preparing and wait < PREPARING_TRIES else None,
        preparing_slow=preparing and wait >= PREPARING_TRIES,
        signed_in=signed_in,
        provider_name=customer_name,
        words_of=status_words(locale),
        document_types=sorted(DOCUMENT_TYPES),
        **brand(ctx.tenant, locale),
    )


def state_invitation(ctx: PortalContext) -> Any:
    """The invitation as stored now (a form post may have just changed it)."""
    s = bootstrap.services()
    return s.invitation_repo.get(ctx.invitation.tenant_id, ctx.invitation.invitation_id) or ctx.invitation


def _upload_page(request: Request, ctx: PortalContext, presigned: Any, base: str) -> Response:
    locale, words = _words(ctx)
    csrf = _form_token(request, base)
    headers: dict[str, str] = {}
    target = urlsplit(presigned.url)
    headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}"
    )
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


# --- one action, two bindings ----------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """What an action gets: the resolved invitation, the form (None for a JSON call) and URL parameters."""

    request: Request
    ctx: PortalContext
    form: dict[str, str] | None
    base_path: str
    params: dict[str, str]
    session: bool


Action = Callable[[Call], Any]


def _act(request: Request, binding: Binding, action: Action, params: dict[str, str], anchor: str) -> Response:
    """Run an action: JSON in -> JSON out; a form -> redirect, or the page with the error."""
    base = binding.base_path
    ctx = binding.resolve(False)
    if ctx is None:
        return error_response(binding.refused_error) if _wants_json(request) else binding.refused()
    if _wants_json(request):
        if binding.session and not _csrf_header_valid(request):
            return error_response(Forbidden(f"send the session's csrf token in {CSRF_HEADER}"))
        try:
            result = action(Call(request, ctx, None, base, params, binding.session))
        except DomainError as exc:
            return error_response(exc)
        return json_response(result)
    render = functools.partial(portal_response, request, ctx, base, signed_in=binding.session)
    try:
        form = parse_form(request)
        if not _form_token_valid(request, base, form.get(CSRF_FIELD, "")):
            raise Forbidden("the form expired; reload the page and try again")
        result = action(Call(request, ctx, form, base, params, binding.session))
    except DomainError as exc:
        status = 403 if isinstance(exc, Forbidden) else 409 if exc.code in ("conflict",) else 400
        return render(error=exc.message, status=status)
    if isinstance(result, Response):
        return result
    return _redirect(f"{base}{anchor}")


def _bind(
    suffix: str,
    summary: str,
    action: Action,
    *,
    anchor: str = "",
) -> None:
    """Register ``POST /portal/{token}<suffix>`` and ``POST /portal<suffix>`` for one action."""

    def by_token(token: str, request: Request, **params: str) -> Response:
        return _act(request, _token_binding(request, token), action, params, anchor)

    def by_session(request: Request, **params: str) -> Response:
        return _act(request, _session_binding(request), action, params, anchor)

    name = action.__name__.strip("_")
    for view, path, how in (
        (by_token, f"/portal/{{token}}{suffix}", "portal link"),
        (by_session, f"/portal{suffix}", "signed in"),
    ):
        view.__name__ = view.__qualname__ = f"{name}_{'by_token' if view is by_token else 'by_session'}"
        endpoint(
            bp,
            path,
            "POST",
            summary=f"{summary} ({how})",
            auth=False,
            document=False,
            content_types=FORM_TYPES,
        )(view)


# --- the actions (each written once) ---------------------------------------------------------------
CONTACT_FIELDS = {"first_name": ("first_name", 80), "last_name": ("last_name", 80), "phone": ("phone", 32)}


def _confirm_contact(call: Call) -> Any:
    if call.form is None:
        inv = bootstrap.portal().confirm_contact(call.ctx, _json_dict(call.request))
        return {"first_name": inv.first_name, "last_name": inv.last_name, "phone": inv.phone}
    form = {name: call.form[name][:300] for name in CONTACT_FIELDS if name in call.form}
    try:
        bootstrap.portal().confirm_contact(call.ctx, form, complete=True)
    except ValidationFailed as exc:
        _, words = _words(call.ctx)
        return portal_response(
            call.request,
            call.ctx,
            call.base_path,
            errors=contact_errors(words, exc.fields, form),
            values=form,
            status=400,
            signed_in=call.session,
        )
    return None


def contact_errors(words: dict[str, str], fields: dict[str, str], form: dict[str, str]) -> dict[str, str]:
    """The service's field errors in the customer's words, each prefixed with its field's label (the
    message stands alone beside the field for a screen reader, and in the summary at the top)."""
    errors: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        if name not in fields:
            continue
        if name == "phone":
            message = words["need_mobile"]
        elif not form.get(name, "").strip():
            message = words[f"need_{name}"]
        else:
            message = words["too_long"].replace("{n}", str(CONTACT_FIELDS[name][1]))
        errors[name] = words["field_error"].replace("{label}", words[name]).replace("{message}", message)
    for name, message in fields.items():  # anything else (never expected): the service's own words
        errors.setdefault(name if name in CONTACT_FIELDS else "form", message)
    return errors


def _start_bank_link(call: Call) -> Any:
    return bootstrap.bank_links().start(call.ctx.tenant, call.ctx.invitation)


def _request_upload(call: Call) -> Any:
    service = bootstrap.portal()
    if call.form is None:
        return service.request_upload(call.ctx, parse_json(call.request, UploadRequest), call.base_path)
    kind = call.form.get("content_type", "")
    ext = DOCUMENT_TYPES.get(kind, (".pdf",))[0]
    try:
        upload = UploadRequest.model_validate(
            {
                "filename": call.form.get("filename") or f"statement{ext}",
                "content_type": kind,
                # A browser knows the size only once the file is chosen; S3's policy enforces the limit.
                "size": MAX_DOCUMENT_BYTES,
            }
        )
    except ValidationError as exc:
        raise invalid(exc, "form") from exc
    origin = _account_origin(call.request, call.ctx) if call.session else None
    presigned = service.request_upload(call.ctx, upload, call.base_path, browser=True, origin=origin)
    return _upload_page(call.request, call.ctx, presigned, call.base_path)


def _account_origin(request: Request, ctx: PortalContext) -> str | None:
    """``https://{account}.{base domain}`` when the customer signed in there (the host form).

    Built from settings and the session's account; the Host header only chooses between that and
    the API's base URL, the two places sign-in puts the session cookie.
    """
    urls = bootstrap.services().settings.urls
    return urls.account_origin(ctx.tenant, ctx.invitation.account_subdomain, request.headers.get("host") or "")


def _complete_upload(call: Call) -> Any:
    return bootstrap.portal().complete_upload(call.ctx, call.params["document_id"])


def _remove_upload(call: Call) -> Any:
    document_id = call.params["document_id"]
    bootstrap.portal().remove_upload(call.ctx, document_id)
    return {"document_id": document_id, "removed": True} if call.form is None else None


def _submit(call: Call) -> Any:
    return bootstrap.portal().submit(call.ctx)


_bind("/contact", "Confirm or correct contact details", _confirm_contact, anchor="?confirmed=1#contact")
_bind("/bank-link", "Start (or resume) linking a bank account", _start_bank_link, anchor="#bank")
_bind("/documents", "Presigned upload for one document", _request_upload)
_bind("/documents/{document_id}/complete", "Confirm an upload", _complete_upload, anchor="#documents")
_bind("/documents/{document_id}/remove", "Remove an upload whose file never came", _remove_upload, anchor="#documents")
_bind("/submit", "Submit the portal", _submit, anchor="#submit")


# --- reads (GET), bound to both resolvers too ------------------------------------------------------
def _page(request: Request, binding: Binding) -> Response:
    ctx = binding.resolve(True)
    if ctx is None:
        return binding.refused()
    # Right after a saved contact form (its redirect says so), the page confirms it.
    query: dict[str, str] = dict(request.query_params or {})
    saved = query.get("confirmed") == "1"
    notice = _words(ctx)[1]["details_saved"] if saved else None
    wait = query.get("wait", "0")
    tries = min(int(wait), PREPARING_TRIES) if wait.isdigit() and len(wait) < 4 else 0
    return portal_response(request, ctx, binding.base_path, notice=notice, signed_in=binding.session, wait=tries)


def _status(binding: Binding) -> Any:
    ctx = binding.resolve(False)
    if ctx is None:
        raise binding.refused_error
    return bootstrap.portal().state(ctx)


def _upload_redirect(request: Request, binding: Binding, document_id: str) -> Response:
    """S3 sends the browser here (``success_action_redirect``) after a successful POST upload.

    A top-level navigation, so the SameSite=Lax session cookie comes along.
    """
    ctx = binding.resolve(False)
    if ctx is None:
        return binding.refused()
    try:
        bootstrap.portal().complete_upload(ctx, document_id)
    except DomainError as exc:
        return portal_response(
            request, ctx, binding.base_path, error=exc.message, status=409, signed_in=binding.session
        )
    return _redirect(f"{binding.base_path}#documents")


@endpoint(bp, "/portal/return", "GET", summary="Where providers send the customer back", auth=False, document=False)
def portal_return(**_: Any) -> Response:
    return page("portal_return.html")


@endpoint(bp, "/portal/{token}", "GET", summary="Customer portal", auth=False, document=False)
def portal_page(token: str, request: Request, **_: Any) -> Response:
    return _page(request, _token_binding(request, token))


@endpoint(bp, "/portal", "GET", summary="Customer portal (signed in)", auth=False, document=False)
def session_portal(request: Request, **_: Any) -> Response:
    return _page(request, _session_binding(request))


@endpoint(
    bp,
    "/portal/{token}/status",
    "GET",
    summary="Portal state (polled while linking)",
    response=PortalState,
    auth=False,
    errors=(404,),
    tags=("portal",),
)
def portal_status(token: str, request: Request, **_: Any) -> Any:
    return json_response(_status(_token_binding(request, token)), headers=NO_STORE)


@endpoint(bp, "/portal/status", "GET", summary="Portal state (signed in)", auth=False, document=False)
def session_portal_status(request: Request, **_: Any) -> Any:
    """The state, and in ``X-CSRF-Token`` the token a JSON client sends back with its POSTs."""
    state = _status(_session_binding(request))
    return json_response(state, headers={"X-CSRF-Token": _form_token(request, SESSION_BASE), **NO_STORE})


@endpoint(
    bp,
    "/portal/{token}/documents/{document_id}/complete",
    "GET",
    summary="S3 upload redirect",
    auth=False,
    document=False,
)
def upload_redirect(token: str, document_id: str, request: Request, **_: Any) -> Response:
    return _upload_redirect(request, _token_binding(request, token), document_id)


@endpoint(
    bp,
    "/portal/documents/{document_id}/complete",
    "GET",
    summary="S3 upload redirect (signed in)",
    auth=False,
    document=False,
)
def session_upload_redirect(document_id: str, request: Request, **_: Any) -> Response:
    return _upload_redirect(request, _session_binding(request), document_id)


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
    try:
        answer = bootstrap.portal().fresh_link(form.get("token", ""), form.get("email", "")[:300], client_ip(request))
    except RateLimited as exc:
        return page("portal_fresh_link.html", status=429, headers={"Retry-After": str(exc.retry_after)}, too_many=True)
    return page("portal_fresh_link.html", sent=answer.sent, sign_in_url=answer.sign_in_url)


@endpoint(
    bp,
    "/portal/sign-out",
    "POST",
    summary="Sign out (signed in)",
    auth=False,
    document=False,
    content_types=["application/x-www-form-urlencoded"],
)
def sign_out(request: Request, **_: Any) -> Response:
    """End the session and clear its cookie, then back to the account's sign-in page."""
    form = parse_form(request)
    if not _form_token_valid(request, SESSION_BASE, form.get(CSRF_FIELD, "")):
        ctx = _session_binding(request).resolve(False)
        if ctx is None:
            return _signed_out_page(403)
        return portal_response(
            request,
            ctx,
            SESSION_BASE,
            error="the form expired; reload the page and try again",
            status=403,
            signed_in=True,
        )
    sign_in_url = bootstrap.joins().sign_out(read_cookie(request, SESSION_COOKIE))
    cleared = {"Set-Cookie": set_cookie(SESSION_COOKIE, "", max_age=0)}
    if sign_in_url is None:
        return _signed_out_page(200, headers=cleared)
    return _redirect(sign_in_url, cleared)


def _json_dict(request: Request) -> dict[str, str]:
    from chalicelib.domain import json_input

    data = json_input.loads(request.raw_body or b"{}")
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", fields={"body": "must be a JSON object"})
    return {k: str(v) for k, v in data.items() if v is not None}
