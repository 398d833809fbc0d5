"""Routes: the lender's hosted join page, email confirmation and customer sign-in. The signed-in portal
(``/portal`` and its actions, found by the session cookie set here) lives in :mod:`chalicelib.api.portal`.

Each page answers at a path (``/t/{lender}/join``, ``/a/{account}/login``) and at the host form
(``https://{lender}.{base domain}/join``, ``https://{account}.{base domain}/login``). The Host header
only picks the lender or account; every link is built from settings, never from Host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from chalice import Blueprint, Response

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
from chalicelib.api.join_words import wait_text, words
from chalicelib.api.portal import SESSION_COOKIE, brand
from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import joins, services
from chalicelib.domain.account import PENDING_JOIN_TTL_SECONDS
from chalicelib.errors import ConcurrentModification, NotFound, RateLimited, UpstreamError
from chalicelib.observability import logger
from chalicelib.services.join import (
    AwaitingConfirmation,
    ChooseBusiness,
    ConfirmRefused,
    Joined,
    JoinForm,
    JoinRefused,
    LinkInvalid,
    NotOnList,
    SignInRefused,
)
from chalicelib.urls import HOST_LABEL
from chalicelib.web import page

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalice.app import Request

    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)

FORM = ["application/x-www-form-urlencoded"]
JOIN_FIELDS = ("email", "business_name", "account_subdomain")
JOIN_EMAIL_COOKIE = "join_email"
# The pending sign-up that waits for its Business Legal Name: a secret, so a cookie and never the URL. Once the
# business is chosen the cookie says so instead ("done:<lender>:<next page>"), so that the browser's Back to the
# chooser says the sign-up went through and where it goes on, not that it expired.
JOIN_CHOICE_COOKIE = "join_choice"
CHOSEN_TTL_SECONDS = 24 * 3600
_NEXT_PAGE = re.compile(r"^(check-email|ready/[a-z0-9-]{1,63})$")


@dataclass(frozen=True)
class Site:
    """A lender's join page as reached: ``prefix`` is where its forms post (a path, never a host)."""

    tenant: Tenant
    prefix: str


# --- helpers ---------------------------------------------------------------------------------------
_ip = client_ip


def _host_label(request: Request) -> tuple[str, str] | None:
    """(label, residency) when the request's Host is ``<label>.<base domain>``."""
    return services().settings.urls.host_label(request.headers.get("host") or "")


def _context(tenant: Tenant | None) -> dict[str, Any]:
    if tenant is None:
        return {"t": words("en"), "locale": "en", "lender": ""}
    settings = services().settings
    return {
        **brand(tenant),
        "t": words(tenant.settings.locale),
        "lender": tenant.display_name,
        "domain": settings.urls.base_domain(tenant.data_residency),
        "join_url": settings.urls.join(tenant),
    }


CONFIRM_CSRF = "join-confirm"  # the confirmation page's form: its token is bound to the link's token


def _messages(tenant: Tenant | None, problems: dict[str, str]) -> dict[str, str]:
    table = _context(tenant)["t"]["problems"]
    return {field: table.get(field, {}).get(code, code) for field, code in problems.items()}


def _html(request: Request, tenant: Tenant | None, work: Callable[[], Response]) -> Response:
    """Run a page's work; refusals that are not the form's own become their pages (never JSON)."""
    try:
        return work()
    except RateLimited as exc:
        ctx = _context(tenant)
        wait = wait_text(ctx.get("locale", "en"), exc.retry_after)
        return page("too_many.html", status=429, headers={"Retry-After": str(exc.retry_after)}, wait=wait, **ctx)
    except NotFound:
        return page("join_not_found.html", status=404, **_context(tenant))
    except (UpstreamError, ConcurrentModification):
        return page("join_unavailable.html", status=503, headers={"Retry-After": "5"}, **_context(tenant))
    except Exception:
        logger.exception("Join page failed", extra={"path": request.path})
        return page("join_unavailable.html", status=500, **_context(tenant))


def _site_by_path(subdomain: str) -> Site:
    tenant = joins().lender(subdomain)
    return Site(tenant, f"/t/{tenant.subdomain}/join")


def _site_by_host(request: Request) -> Site:
    found = _host_label(request)
    if found is None:
        raise NotFound("no such lender")
    label, residency = found
    tenant = joins().lender(label)
    if tenant.data_residency != residency:
        raise NotFound("no such lender")  # a lender answers only on its own residency's domain
    return Site(tenant, "/join")


def _find_site(request: Request, subdomain: str | None) -> Site | None:
    try:
        return _site_by_path(subdomain) if subdomain is not None else _site_by_host(request)
    except NotFound:
        return None


# --- pages -----------------------------------------------------------------------------------------
def _join_form(
    request: Request,
    site: Site,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
    not_on_list: bool = False,
) -> Response:
    token, headers = csrf_cookie(request)
    return page(
        "join.html",
        status=status,
        headers=headers,
        action=site.prefix,
        values=values,
        errors=_messages(site.tenant, problems),
        not_on_list=not_on_list,
        open_join=not site.tenant.settings.require_invitation,
        csrf_token=token,
        **_context(site.tenant),
    )


def _see_other(location: str, headers: dict[str, str] | None = None) -> Response:
    """POST/redirect/GET: the page after a form is a GET, so Back and Reload never post it again."""
    return Response(
        body="", status_code=303, headers={"Location": location, "Cache-Control": "no-store", **(headers or {})}
    )


def _outcome(
    request: Request, site: Site, result: ChooseBusiness | AwaitingConfirmation | Joined, *, chosen: bool = False
) -> Response:
    """The redirect after a join form; ``chosen`` when it answers the business chooser, whose cookie then records
    where the sign-up went (see ``JOIN_CHOICE_COOKIE``)."""
    if isinstance(result, ChooseBusiness):
        # Path=/ (a __Host- cookie's): the pending sign-up is found only with this lender (JoinService.choices).
        cookie = set_cookie(JOIN_CHOICE_COOKIE, result.join_id, max_age=PENDING_JOIN_TTL_SECONDS)
        return _see_other(f"{site.prefix}/choose", {"Set-Cookie": cookie})
    cookies: list[str] = []
    if isinstance(result, AwaitingConfirmation):
        # The address the link went to rides in a cookie, never in the URL; it names the lender (the cookie's Path
        # is / on every host), so only this lender's check-email page shows it.
        value = quote(f"{site.tenant.subdomain}:{result.email}", safe="@")
        cookies.append(set_cookie(JOIN_EMAIL_COOKIE, value, max_age=24 * 3600))
        next_page = "check-email"
    else:
        next_page = f"ready/{result.account_subdomain}"
    if chosen:
        done = quote(f"done:{site.tenant.subdomain}:{next_page}", safe="")
        cookies.append(set_cookie(JOIN_CHOICE_COOKIE, done, max_age=CHOSEN_TTL_SECONDS))
    headers: dict[str, Any] = {"Set-Cookie": cookies[0] if len(cookies) == 1 else cookies} if cookies else {}
    return _see_other(f"{site.prefix}/{next_page}", headers)


def _chosen_next_page(request: Request, site: Site) -> str | None:
    """Where this browser's sign-up with this lender went once its business was chosen, if it was."""
    marker, _, rest = unquote(read_cookie(request, JOIN_CHOICE_COOKIE))[:200].partition(":")
    lender, _, next_page = rest.partition(":")
    if marker != "done" or lender != site.tenant.subdomain or not _NEXT_PAGE.match(next_page):
        return None
    return next_page


def _choice_gone(request: Request, site: Site) -> Response:
    """The chooser without its pending sign-up: it went through (said so, with the way on) or nothing of it is
    known in this browser (it lapsed after 15 minutes, or was finished elsewhere: say both, and what to do)."""
    next_page = _chosen_next_page(request, site)
    if next_page is not None:
        return page(
            "join_chosen.html",
            next_url=f"{site.prefix}/{next_page}",
            confirming=next_page == "check-email",
            **_context(site.tenant),
        )
    return page(
        "join_expired.html",
        status=410,
        action=site.prefix,
        confirming=site.tenant.settings.require_email_confirmation,
        minutes=PENDING_JOIN_TTL_SECONDS // 60,
        **_context(site.tenant),
    )


def _check_email_get(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))
    lender, _, email = unquote(read_cookie(request, JOIN_EMAIL_COOKIE))[:320].partition(":")
    email = email[:254] if lender == site.tenant.subdomain else ""
    token, headers = csrf_cookie(request)
    return page(
        "join_check_email.html",
        headers=headers,
        email=email if "@" in email else "",
        action=f"{site.prefix}/resend",
        csrf_token=token,
        **_context(site.tenant),
    )


def _ready_get(request: Request, subdomain: str | None, account: str) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))

    def work() -> Response:
        url = joins().ready_account_url(site.tenant, account)
        if url is None:
            return page("join_not_found.html", status=404, **_context(site.tenant))
        return page("confirm_done.html", account_url=url, **_context(site.tenant))

    return _html(request, site.tenant, work)


def _choose_form(
    request: Request, site: Site, join_id: str, options: list[tuple[str, str]], problems: dict[str, str]
) -> Response:
    token, headers = csrf_cookie(request)
    return page(
        "join_choose.html",
        status=400 if problems else 200,
        headers=headers,
        action=f"{site.prefix}/choose",
        join_id=join_id,
        options=options,
        errors=_messages(site.tenant, problems),
        csrf_token=token,
        **_context(site.tenant),
    )


def _choose_get(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))

    def work() -> Response:
        join_id = read_cookie(request, JOIN_CHOICE_COOKIE)[:100]
        try:
            options = joins().choices(site.tenant, join_id)
        except LinkInvalid:
            return _choice_gone(request, site)
        return _choose_form(request, site, join_id, options, {})

    return _html(request, site.tenant, work)


def _link_sent_get(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))
    return page("confirm_resent.html", **_context(site.tenant))


def _join_get(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))
    return _join_form(request, site, {}, {})


def _join_post(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))

    def work() -> Response:
        form = parse_form(request)
        values = {k: form.get(k, "")[:300] for k in JOIN_FIELDS}
        if not csrf_valid(request, form):
            return _join_form(request, site, values, {"csrf_token": "expired"}, 403)
        submitted = JoinForm(
            email=values["email"],
            business_name=values["business_name"],
            password=form.get("password", ""),
            account_subdomain=values["account_subdomain"],
        )
        try:
            result = joins().join(site.tenant, submitted, _ip(request))
        except JoinRefused as exc:
            status = 409 if "taken" in exc.problems.values() or "already_joined" in exc.problems.values() else 400
            return _join_form(request, site, values, exc.problems, status)
        except NotOnList:
            return _join_form(request, site, values, {}, 403, not_on_list=True)
        return _outcome(request, site, result)

    return _html(request, site.tenant, work)


def _choose_post(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))

    def work() -> Response:
        form = parse_form(request)
        join_id = form.get("join_id", "")[:100]
        if not csrf_valid(request, form):
            return _join_form(request, site, {}, {"csrf_token": "expired"}, 403)
        if _chosen_next_page(request, site) is not None:
            # The chooser posted again from the browser's cache after the choice went through: its page says so.
            return _see_other(f"{site.prefix}/choose")
        try:
            result = joins().choose(site.tenant, join_id, form.get("invitation_id", ""), _ip(request))
        except LinkInvalid:
            return _choice_gone(request, site)
        except JoinRefused as exc:
            if "invitation_id" in exc.problems:
                return _choose_form(request, site, join_id, joins().choices(site.tenant, join_id), exc.problems)
            return _join_form(request, site, {}, exc.problems, 409)
        return _outcome(request, site, result, chosen=True)

    return _html(request, site.tenant, work)


def _invalid_link(request: Request, site: Site, status: int = 410, account_url: str | None = None) -> Response:
    """An expired or used confirmation link; a used one of an active account gives its sign-in address."""
    token, headers = csrf_cookie(request)
    return page(
        "confirm_invalid.html",
        status=status,
        headers=headers,
        action=f"{site.prefix}/resend",
        csrf_token=token,
        account_url=account_url,
        **_context(site.tenant),
    )


def _confirm_form(request: Request, site: Site, token: str, problem: str | None = None, status: int = 200) -> Response:
    # Reading the link changes nothing: mail scanners that fetch links do not use it up.
    try:
        account = joins().confirmation(site.tenant, token)
    except LinkInvalid as exc:
        return _invalid_link(request, site, account_url=exc.account_url)
    csrf = bound_csrf(CONFIRM_CSRF, token)  # no cookie: the form's token is bound to the link's
    ctx = _context(site.tenant)
    return page(
        "confirm.html",
        status=status,
        action=f"{site.prefix}/confirm/{token}",
        account=account.account_subdomain,
        problem=_problem_text(ctx["t"], problem),
        csrf_token=csrf,
        **ctx,
    )


def _problem_text(table: dict[str, Any], problem: str | None) -> str | None:
    if problem == "csrf_expired":
        return str(table["problems"]["csrf_token"]["expired"])
    return str(table[problem]) if problem else None


def _confirm_get(request: Request, subdomain: str | None, token: str) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))
    return _html(request, site.tenant, lambda: _confirm_form(request, site, token))


def _confirm_post(request: Request, subdomain: str | None, token: str) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))

    def work() -> Response:
        form = parse_form(request)
        if not bound_csrf_valid(request, form.get(CSRF_FIELD, ""), CONFIRM_CSRF, token):
            return _confirm_form(request, site, token, "csrf_expired", 403)
        try:
            joined = joins().confirm(site.tenant, token, form.get("password", ""), _ip(request))
        except LinkInvalid as exc:
            return _invalid_link(request, site, account_url=exc.account_url)
        except ConfirmRefused:
            return _confirm_form(request, site, token, "confirm_refused", 401)
        return _see_other(f"{site.prefix}/ready/{joined.account_subdomain}")

    return _html(request, site.tenant, work)


def _resend_post(request: Request, subdomain: str | None) -> Response:
    site = _find_site(request, subdomain)
    if site is None:
        return page("join_not_found.html", status=404, **_context(None))

    def work() -> Response:
        form = parse_form(request)
        if not csrf_valid(request, form):
            return _invalid_link(request, site, 403)
        try:
            joins().resend(site.tenant, form.get("email", "")[:300], _ip(request))
        except JoinRefused:
            return _invalid_link(request, site, 400)
        return _see_other(f"{site.prefix}/link-sent")

    return _html(request, site.tenant, work)


# --- sign-in ----------------------------------------------------------------------------------------
def _login_form(
    request: Request, account: str, action: str, problem: str | None = None, status: int = 200, username: str = ""
) -> Response:
    tenant = joins().account_lender(account) if HOST_LABEL.match(account) else None
    token, headers = csrf_cookie(request)
    ctx = _context(tenant)
    return page(
        "login.html",
        status=status,
        headers=headers,
        action=action,
        account=account,
        problem=ctx["t"][problem] if problem else None,
        username=username,
        csrf_token=token,
        **ctx,
    )


def _login_post(request: Request, account: str, action: str, host_form: bool) -> Response:
    def work() -> Response:
        form = parse_form(request)
        username = form.get("username", "")[:254]
        if not csrf_valid(request, form):
            return _login_form(request, account, action, "bad_credentials", 403, username)
        try:
            signed_in = joins().sign_in(account, username, form.get("password", ""), _ip(request))
        except SignInRefused as exc:
            return _login_form(
                request,
                account,
                action,
                "bad_credentials" if exc.reason == "credentials" else exc.reason,
                401,
                username,
            )
        urls = services().settings.urls
        origin = urls.host(signed_in.account.account_subdomain, signed_in.tenant.data_residency) if host_form else None
        cookie = set_cookie(SESSION_COOKIE, signed_in.session_id, max_age=12 * 3600)
        return Response(
            body="",
            status_code=303,
            headers={"Location": urls.signed_in_portal(origin), "Set-Cookie": cookie, "Cache-Control": "no-store"},
        )

    return _html(request, None, work)


def _account_by_host(request: Request) -> str | None:
    found = _host_label(request)
    return found[0] if found else None


# --- routes ---------------------------------------------------------------------------------------
@endpoint(bp, "/t/{subdomain}/join", "GET", summary="Lender join page", auth=False, document=False)
def join_page(request: Request, subdomain: str, **_: Any) -> Response:
    return _join_get(request, subdomain)


@endpoint(bp, "/t/{subdomain}/join", "POST", summary="Join", auth=False, document=False, content_types=FORM)
def join_submit(request: Request, subdomain: str, **_: Any) -> Response:
    return _join_post(request, subdomain)


@endpoint(
    bp, "/t/{subdomain}/join/choose", "POST", summary="Pick a business", auth=False, document=False, content_types=FORM
)
def join_choose(request: Request, subdomain: str, **_: Any) -> Response:
    return _choose_post(request, subdomain)


@endpoint(bp, "/t/{subdomain}/join/choose", "GET", summary="Business chooser", auth=False, document=False)
def join_choose_page(request: Request, subdomain: str, **_: Any) -> Response:
    return _choose_get(request, subdomain)


@endpoint(bp, "/t/{subdomain}/join/link-sent", "GET", summary="New link sent", auth=False, document=False)
def link_sent_page(request: Request, subdomain: str, **_: Any) -> Response:
    return _link_sent_get(request, subdomain)


@endpoint(bp, "/t/{subdomain}/join/confirm/{token}", "GET", summary="Confirmation page", auth=False, document=False)
def confirm_page(request: Request, subdomain: str, token: str, **_: Any) -> Response:
    return _confirm_get(request, subdomain, token)


@endpoint(
    bp,
    "/t/{subdomain}/join/confirm/{token}",
    "POST",
    summary="Confirm email",
    auth=False,
    document=False,
    content_types=FORM,
)
def confirm_submit(request: Request, subdomain: str, token: str, **_: Any) -> Response:
    return _confirm_post(request, subdomain, token)


@endpoint(
    bp,
    "/t/{subdomain}/join/resend",
    "POST",
    summary="Resend confirmation",
    auth=False,
    document=False,
    content_types=FORM,
)
def resend_submit(request: Request, subdomain: str, **_: Any) -> Response:
    return _resend_post(request, subdomain)


@endpoint(bp, "/t/{subdomain}/join/check-email", "GET", summary="Check your email", auth=False, document=False)
def check_email_page(request: Request, subdomain: str, **_: Any) -> Response:
    return _check_email_get(request, subdomain)


@endpoint(bp, "/t/{subdomain}/join/ready/{account}", "GET", summary="Account ready", auth=False, document=False)
def ready_page(request: Request, subdomain: str, account: str, **_: Any) -> Response:
    return _ready_get(request, subdomain, account)


# The host forms: https://{lender}.{base domain}/join...
@endpoint(bp, "/join/check-email", "GET", summary="Check your email (host form)", auth=False, document=False)
def host_check_email_page(request: Request, **_: Any) -> Response:
    return _check_email_get(request, None)


@endpoint(bp, "/join/choose", "GET", summary="Business chooser (host form)", auth=False, document=False)
def host_join_choose_page(request: Request, **_: Any) -> Response:
    return _choose_get(request, None)


@endpoint(bp, "/join/link-sent", "GET", summary="New link sent (host form)", auth=False, document=False)
def host_link_sent_page(request: Request, **_: Any) -> Response:
    return _link_sent_get(request, None)


@endpoint(bp, "/join/ready/{account}", "GET", summary="Account ready (host form)", auth=False, document=False)
def host_ready_page(request: Request, account: str, **_: Any) -> Response:
    return _ready_get(request, None, account)


@endpoint(bp, "/join", "GET", summary="Lender join page (host form)", auth=False, document=False)
def host_join_page(request: Request, **_: Any) -> Response:
    return _join_get(request, None)


@endpoint(bp, "/join", "POST", summary="Join (host form)", auth=False, document=False, content_types=FORM)
def host_join_submit(request: Request, **_: Any) -> Response:
    return _join_post(request, None)


@endpoint(
    bp, "/join/choose", "POST", summary="Pick a business (host form)", auth=False, document=False, content_types=FORM
)
def host_join_choose(request: Request, **_: Any) -> Response:
    return _choose_post(request, None)


@endpoint(bp, "/join/confirm/{token}", "GET", summary="Confirmation page (host form)", auth=False, document=False)
def host_confirm_page(request: Request, token: str, **_: Any) -> Response:
    return _confirm_get(request, None, token)


@endpoint(
    bp,
    "/join/confirm/{token}",
    "POST",
    summary="Confirm email (host form)",
    auth=False,
    document=False,
    content_types=FORM,
)
def host_confirm_submit(request: Request, token: str, **_: Any) -> Response:
    return _confirm_post(request, None, token)


@endpoint(
    bp,
    "/join/resend",
    "POST",
    summary="Resend confirmation (host form)",
    auth=False,
    document=False,
    content_types=FORM,
)
def host_resend_submit(request: Request, **_: Any) -> Response:
    return _resend_post(request, None)


@endpoint(bp, "/a/{account}/login", "GET", summary="Customer sign-in page", auth=False, document=False)
def login_page(request: Request, account: str, **_: Any) -> Response:
    name = account.strip().lower()[:63]
    return _html(request, None, lambda: _login_form(request, name, f"/a/{name}/login"))


@endpoint(bp, "/a/{account}/login", "POST", summary="Customer sign-in", auth=False, document=False, content_types=FORM)
def login_submit(request: Request, account: str, **_: Any) -> Response:
    name = account.strip().lower()[:63]
    return _login_post(request, name, f"/a/{name}/login", host_form=False)


@endpoint(bp, "/login", "GET", summary="Customer sign-in page (host form)", auth=False, document=False)
def host_login_page(request: Request, **_: Any) -> Response:
    name = _account_by_host(request)
    if name is None:
        return page("join_not_found.html", status=404, **_context(None))
    return _html(request, None, lambda: _login_form(request, name, "/login"))


@endpoint(bp, "/login", "POST", summary="Customer sign-in (host form)", auth=False, document=False, content_types=FORM)
def host_login_submit(request: Request, **_: Any) -> Response:
    name = _account_by_host(request)
    if name is None:
        return page("join_not_found.html", status=404, **_context(None))
    return _login_post(request, name, "/login", host_form=True)
