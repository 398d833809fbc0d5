"""Console routes: sign-in, sign-out, a teammate's invitation link, the console's one script."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from chalice import Blueprint, Response

from chalicelib.api.console_web import (
    LENDER_COOKIE,
    SESSION_COOKIE,
    Ctx,
    Words,
    console_page,
    redirect,
    request_locale,
    session_cookie,
)
from chalicelib.api.forms import (
    client_ip,
    csrf_cookie,
    csrf_valid,
    human_errors,
    parse_form,
    read_cookie,
    set_cookie,
)
from chalicelib.bootstrap import sending, services, staff
from chalicelib.errors import DomainError, Forbidden, NotFound, RateLimited, Unauthorized, ValidationFailed
from chalicelib.i18n import N_
from chalicelib.observability import logger
from chalicelib.web import page

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)

FORM = ["application/x-www-form-urlencoded"]
SCRIPT = Path(__file__).resolve().parents[1] / "templates" / "console" / "console.js"
LOGIN_LABELS = {
    "lender": N_("Lender subdomain"),
    "email": N_("Email"),
    "password": N_("Password"),
    "csrf_token": N_("Form"),
}
MISSING = {
    "lender": N_("enter your lender subdomain"),
    "email": N_("enter your email"),
    "password": N_("enter your password"),
}
ACCEPT_LABELS = {"name": N_("Your name"), "password": N_("Password"), "csrf_token": N_("Form")}
EXPIRED = N_("the form expired, please submit it again")
INVITE_GONE = N_("This invitation link was already used or has expired. Ask an administrator to invite you again.")
LINK_GONE_TITLE = N_("This link no longer works")


def _safe_next(value: str | None) -> str:
    """Only a path of this console: never another site (``//evil``, a scheme), a path a browser would resolve out of
    /console (a dot segment, plain or percent-encoded; a tab or newline, which it drops), nor a character a header
    cannot carry (the redirect would fail after a successful sign-in)."""
    fallback = "/console/invitations"
    if not value or any(c < " " or c in "\\\x7f" for c in value):
        return fallback
    try:
        parts = urlsplit(value)
    except ValueError:  # "//[" : an unbalanced IPv6 host
        return fallback
    path = parts.path
    if parts.scheme or parts.netloc or not (path == "/console" or path.startswith("/console/")) or "//" in path:
        return fallback
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return fallback
    return value


def _host_lender(request: Request) -> Tenant | None:
    """The lender whose own host (``<subdomain>.<base domain>``, its residency's domain) the request came
    to: in production the console is served there, so sign-in needs no lender field. None on any other
    host (the path form, used locally, keeps the field)."""
    found = services().settings.urls.host_label(request.headers.get("host") or "")
    if found is None:
        return None
    label, residency = found
    tenant = services().tenant_repo.by_subdomain(label)
    return tenant if tenant is not None and tenant.data_residency == residency else None


def _words(request: Request) -> Words:
    return Words(request_locale(request))


def _anonymous(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """A page for someone not signed in, with the double-submit CSRF cookie its form needs, in the language
    their browser asks for (there is no lender yet to ask)."""
    token, headers = csrf_cookie(request)
    settings = services().settings
    words = _words(request)
    if "labels" in context:
        context["labels"] = words.each(context["labels"])
    if isinstance(context.get("errors"), dict):
        context["errors"] = human_errors(context["errors"], words.gettext)
    host_lender = _host_lender(request)
    # The header names the lender when the link's token or the host says which (else "Lender console").
    brand = context.get("lender") or (host_lender.display_name if host_lender is not None else None)
    return page(
        f"console/{template}",
        status=status,
        headers=headers,
        locale=words.locale,
        csrf_token=token,
        base_domain=settings.urls.base_domain("us"),
        host_lender=host_lender,
        **({"brand_name": brand} if brand else {}),
        **context,
    )


def _link_gone(request: Request, message: str) -> Response:
    words = _words(request)
    return page(
        "console/error.html",
        status=404,
        locale=words.locale,
        title=words.gettext(LINK_GONE_TITLE),
        message=message,
    )


@bp.route("/console", methods=["GET"])
def console_root() -> Response:
    return redirect("/console/invitations")


@bp.route("/console/static/console.js", methods=["GET"])
def console_script() -> Response:
    return Response(
        body=SCRIPT.read_text(),
        status_code=200,
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )


@bp.route("/console/login", methods=["GET"])
def login_page() -> Response:
    request = bp.current_request
    query: dict[str, str] = dict(request.query_params or {})
    if staff().session(read_cookie(request, SESSION_COOKIE)) is not None:
        return redirect(_safe_next(query.get("next")))
    values = {"lender": query.get("lender") or read_cookie(request, LENDER_COOKIE)}
    return _anonymous(
        request,
        "login.html",
        values=values,
        errors={},
        labels=LOGIN_LABELS,
        next=_safe_next(query.get("next")),
        notice=_words(request).gettext("You are signed out.") if query.get("signed_out") else None,
    )


@bp.route("/console/login", methods=["POST"], content_types=FORM)
def login_submit() -> Response:
    request = bp.current_request
    form = parse_form(request)
    host_lender = _host_lender(request)
    typed = host_lender.subdomain if host_lender is not None else form.get("lender", "").strip().lower()
    values = {"lender": typed, "email": form.get("email", "").strip()}
    nxt = _safe_next(form.get("next"))
    words = _words(request)

    def again(status: int, errors: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        response = _anonymous(
            request, "login.html", status, values=values, errors=errors, labels=LOGIN_LABELS, next=nxt, notice=None
        )
        response.headers.update(headers or {})
        return response

    if not csrf_valid(request, form):
        return again(400, {"csrf_token": words.gettext("the form expired, please sign in again")})
    given = {**form, "lender": values["lender"]}
    missing = {k: words.gettext(MISSING[k]) for k in ("lender", "email", "password") if not given.get(k)}
    if missing:
        return again(400, missing)
    try:
        signed_in = staff().sign_in(values["lender"], values["email"], form.get("password", ""), client_ip(request))
    except RateLimited as exc:
        return again(
            429,
            {
                "form": words.gettext("too many attempts; try again in %(seconds)s seconds")
                % {"seconds": exc.retry_after}
            },
            {"Retry-After": str(exc.retry_after)},
        )
    except Unauthorized:
        return again(401, {"form": words.gettext("the lender, email or password is incorrect")})
    except Forbidden as exc:
        return again(403, {"email": exc.message})
    except DomainError:
        logger.exception("Console sign-in failed")
        return again(503, {"form": words.gettext("sign-in is unavailable right now, please try again")})
    lender = signed_in.session.tenant.subdomain  # the stored name, never the typed text, goes in a header
    remember = set_cookie(LENDER_COOKIE, lender, max_age=365 * 24 * 3600)
    response = redirect(nxt)
    response.headers["Set-Cookie"] = [session_cookie(signed_in.session_id), remember]
    return response


@console_page(bp, "/console/logout", ("POST",))
def logout(ctx: Ctx) -> Response:
    staff().sign_out(read_cookie(ctx.request, SESSION_COOKIE))
    return redirect("/console/login?signed_out=1", {"Set-Cookie": session_cookie("", max_age=0)})


@console_page(bp, "/console/verification", ("POST",), admin=True)
def verification_resend(ctx: Ctx) -> Response:
    """The sandbox banner's button: the same use case as POST /v1/tenant/verification."""
    sending().restart_verification(ctx.tenant)
    back = _safe_next(ctx.form.get("next"))
    return redirect(f"{back}{'&' if '?' in back else '?'}verification=sent")


@bp.route("/console/accept/{token}", methods=["GET"])
def accept_page(token: str) -> Response:
    request = bp.current_request
    found = staff().invitation(token)
    if found is None:
        return _link_gone(request, _words(request).gettext(INVITE_GONE))
    tenant, member = found
    return _anonymous(
        request,
        "accept.html",
        token=token,
        lender=tenant.display_name,
        member=member,
        values={"name": member.name or ""},
        errors={},
        labels=ACCEPT_LABELS,
    )


@bp.route("/console/accept/{token}", methods=["POST"], content_types=FORM)
def accept_submit(token: str) -> Response:
    request = bp.current_request
    form = parse_form(request)
    found = staff().invitation(token)
    if found is None:
        return _link_gone(request, _words(request).gettext(INVITE_GONE))
    tenant, member = found
    values = {"name": form.get("name", "")}

    def again(status: int, errors: dict[str, str]) -> Response:
        return _anonymous(
            request,
            "accept.html",
            status,
            token=token,
            lender=tenant.display_name,
            member=member,
            values=values,
            errors=errors,
            labels=ACCEPT_LABELS,
        )

    if not csrf_valid(request, form):
        return again(400, {"csrf_token": _words(request).gettext(EXPIRED)})
    try:
        signed_in = staff().accept(token, form.get("name"), form.get("password", ""))
    except ValidationFailed as exc:
        return again(400, exc.fields or {"password": exc.message})
    except NotFound as exc:
        return _link_gone(request, exc.message)
    return redirect("/console/invitations", {"Set-Cookie": session_cookie(signed_in.session_id)})


# --- forgotten password ---------------------------------------------------------------------------
FORGOT_LABELS = {"lender": N_("Lender subdomain"), "email": N_("Email"), "csrf_token": N_("Form")}
RESET_LABELS = {"password": N_("New password"), "csrf_token": N_("Form")}
GONE = N_("This link was already used, was replaced by a newer one or has expired. Ask for a new one.")


@bp.route("/console/forgot", methods=["GET"])
def forgot_page() -> Response:
    request = bp.current_request
    values = {"lender": read_cookie(request, LENDER_COOKIE)}
    return _anonymous(request, "forgot.html", values=values, errors={}, labels=FORGOT_LABELS, sent=False)


@bp.route("/console/forgot", methods=["POST"], content_types=FORM)
def forgot_submit() -> Response:
    request = bp.current_request
    form = parse_form(request)
    host_lender = _host_lender(request)
    typed = host_lender.subdomain if host_lender is not None else form.get("lender", "").strip().lower()
    values = {"lender": typed, "email": form.get("email", "").strip()}
    if not csrf_valid(request, form):
        return _anonymous(
            request,
            "forgot.html",
            400,
            values=values,
            labels=FORGOT_LABELS,
            sent=False,
            errors={"csrf_token": _words(request).gettext(EXPIRED)},
        )
    missing = {k: _words(request).gettext(MISSING[k]) for k in ("lender", "email") if not values[k]}
    if missing:
        return _anonymous(request, "forgot.html", 400, values=values, labels=FORGOT_LABELS, sent=False, errors=missing)
    try:
        staff().request_reset(values["lender"], values["email"], client_ip(request))
    except RateLimited as exc:
        return _anonymous(
            request,
            "forgot.html",
            429,
            values=values,
            labels=FORGOT_LABELS,
            sent=False,
            errors={
                "email": _words(request).gettext("too many requests; try again in %(seconds)s seconds")
                % {"seconds": exc.retry_after}
            },
        )
    return _anonymous(request, "forgot.html", values=values, labels=FORGOT_LABELS, errors={}, sent=True)


@bp.route("/console/reset/{token}", methods=["GET"])
def reset_page(token: str) -> Response:
    request = bp.current_request
    found = staff().reset_link(token)
    if found is None:
        return _link_gone(request, _words(request).gettext(GONE))
    return _anonymous(
        request,
        "reset.html",
        token=token,
        lender=found[0].display_name,
        member=found[1],
        errors={},
        labels=RESET_LABELS,
    )


@bp.route("/console/reset/{token}", methods=["POST"], content_types=FORM)
def reset_submit(token: str) -> Response:
    request = bp.current_request
    form = parse_form(request)
    found = staff().reset_link(token)
    if found is None:
        return _link_gone(request, _words(request).gettext(GONE))

    def refused(errors: dict[str, str]) -> Response:
        return _anonymous(
            request,
            "reset.html",
            400,
            token=token,
            lender=found[0].display_name,
            member=found[1],
            labels=RESET_LABELS,
            errors=errors,
        )

    if not csrf_valid(request, form):
        return refused({"csrf_token": _words(request).gettext(EXPIRED)})
    try:
        signed_in = staff().reset(token, form.get("password", ""))
    except ValidationFailed as exc:
        return refused({"password": exc.fields.get("password", exc.message)})
    except NotFound:
        return _link_gone(request, _words(request).gettext(GONE))
    return redirect("/console/invitations", {"Set-Cookie": session_cookie(signed_in.session_id)})
