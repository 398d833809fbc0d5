"""How every console page is declared: the staff session, CSRF, roles and HTML error pages.

``console_page`` registers a Chalice route whose view receives a :class:`Ctx`. The lender comes
from the session and nowhere else (no tenant in any console URL); a record of another lender is
"not found" like one that does not exist. POSTs must carry the session's CSRF token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from chalice import Response

from chalicelib.api.forms import cookie_header, cookies
from chalicelib.api.routing import STATUS_BY_ERROR
from chalicelib.bootstrap import notifications, services, staff
from chalicelib.domain.ids import same
from chalicelib.errors import DomainError, RateLimited
from chalicelib.observability import logger
from chalicelib.web import page

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalice import Blueprint
    from chalice.app import Request

    from chalicelib.domain.staff import StaffMember
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.staff import ConsoleSession

SESSION_COOKIE = "console_session"
LENDER_COOKIE = "console_lender"
SESSION_MAX_AGE = 12 * 3600
CONTENT_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "application/json"]
MAX_FORM_FIELDS = 300

NAV = (
    ("invitations", "Invitations", "/console/invitations"),
    ("upload", "Upload account list", "/console/upload"),
    ("customers", "Customers", "/console/customers"),
    ("communications", "Communication log", "/console/communications"),
    ("settings", "Settings", "/console/settings"),
)


def form_lists(request: Request) -> dict[str, list[str]]:
    """An urlencoded body, every value of every field (checkbox lists)."""
    raw = request.raw_body or b""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}


def session_cookie(value: str, *, max_age: int = SESSION_MAX_AGE) -> str:
    return cookie_header(
        SESSION_COOKIE, value, secure=not services().settings.is_local, max_age=max_age, path="/console"
    )


def redirect(location: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body="", status_code=303, headers={"Location": location, "Cache-Control": "no-store", **(headers or {})}
    )


@dataclass
class Ctx:
    """One console request: who is signed in, for which lender, and what they sent."""

    request: Request
    session: ConsoleSession
    section: str
    lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def tenant(self) -> Tenant:
        return self.session.tenant

    @property
    def staff(self) -> StaffMember:
        return self.session.staff

    @property
    def actor(self) -> str:
        """How the invitation history names this staff member."""
        return f"staff:{self.staff.staff_id}"

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.lists.items()}

    def csrf_ok(self, form: dict[str, str]) -> bool:
        return same(form.get("csrf_token", ""), self.session.csrf_token)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params or {})

    def render(
        self, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response:
        return page(f"console/{template}", status=status, headers=headers, **self.base_context(), **context)

    def base_context(self) -> dict[str, Any]:
        try:
            unread = notifications().unread_count(self.tenant)
        except DomainError:
            unread = None  # the bell must never take a page down
        return {
            "tenant": self.tenant,
            "me": self.staff,
            "csrf_token": self.session.csrf_token,
            "unread": unread,
            "nav": NAV,
            "section": self.section,
            "brand_name": self.tenant.display_name,
            "colour": self.tenant.settings.branding.colour,
        }


def error_page(ctx: Ctx | None, exc: DomainError) -> Response:
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
    log = logger.info if status < 500 else logger.error
    log("Console request refused", extra={"error_code": exc.code, "status": status})
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 429: "Too many attempts"}
    context = {"title": titles.get(status, "Something is wrong"), "message": exc.message}
    if ctx is None:
        return page("console/error.html", status=status, headers=headers, **context)
    return ctx.render("error.html", status=status, headers=headers, **context)


def console_page(
    bp: Blueprint,
    path: str,
    methods: tuple[str, ...] = ("GET",),
    *,
    section: str = "",
    admin: bool = False,
    multipart: bool = False,
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a console page. Without a live session a GET goes to the sign-in page (and comes
    back after), anything else is refused; a POST without the session's CSRF token is refused
    (a ``multipart`` view reads its own body and must call ``ctx.csrf_ok`` itself)."""

    def decorator(fn: Callable[..., Response]) -> Callable[..., Response]:
        def view(**params: Any) -> Response:
            request = bp.current_request
            ctx: Ctx | None = None
            try:
                session = staff().session(cookies(request).get(SESSION_COOKIE))
                if session is None:
                    if request.method == "GET":
                        return redirect(f"/console/login?next={quote(request.path or '/console', safe='/')}")
                    return page(
                        "console/error.html",
                        status=401,
                        title="Signed out",
                        message="Your session has ended. Please sign in again.",
                    )
                ctx = Ctx(request, session, section)
                if request.method == "POST" and not multipart:
                    ctx.lists = form_lists(request) if _urlencoded(request) else {}
                    if not same(ctx.form.get("csrf_token", ""), session.csrf_token) and not _csrf_header(
                        request, session
                    ):
                        return ctx.render(
                            "error.html",
                            status=403,
                            title="The form expired",
                            message="Please go back, reload the page and try again.",
                        )
                if admin:
                    session.staff.ensure_admin()
                return fn(ctx, **params)
            except DomainError as exc:
                return error_page(ctx, exc)
            except Exception:
                logger.exception("Console page failed", extra={"route": path})
                return page(
                    "console/error.html",
                    status=500,
                    title="Something went wrong",
                    message="Something went wrong on our side. Please try again.",
                )

        functools.update_wrapper(view, fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
        bp.route(path, methods=list(methods), content_types=CONTENT_TYPES)(view)
        return fn

    return decorator


def _urlencoded(request: Request) -> bool:
    return (request.headers.get("content-type") or "").lower().startswith("application/x-www-form-urlencoded")


def _csrf_header(request: Request, session: ConsoleSession) -> bool:
    """Scripts (the upload page) send the token in a header instead of a form field."""
    sent = request.headers.get("x-csrf-token") or ""
    return bool(sent) and same(sent, session.csrf_token)
