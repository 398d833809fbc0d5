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

from chalicelib.api.forms import from_this_site, human_errors, read_cookie, set_cookie
from chalicelib.api.routing import STATUS_BY_ERROR
from chalicelib.bootstrap import notifications, sending, staff
from chalicelib.domain.ids import same
from chalicelib.errors import DomainError, RateLimited
from chalicelib.i18n import N_, negotiate, supported, translations
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
    ("invitations", N_("Invitations"), "/console/invitations"),
    ("upload", N_("Upload account list"), "/console/upload"),
    ("customers", N_("Customers"), "/console/customers"),
    ("communications", N_("Communication log"), "/console/communications"),
    ("settings", N_("Settings"), "/console/settings"),
)
ERROR_TITLES = {
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Not possible now"),
    429: N_("Too many attempts"),
}

# Words of the data that pages show through the ``term`` filter (chalicelib/web.py), marked here for extraction.
# The values themselves (in DynamoDB, the API, CSV exports) stay as they are.
TERMS = (
    # invitation status badges (the data keeps PENDING / JOINED / INACTIVE)
    N_("PENDING"),
    N_("JOINED"),
    N_("INACTIVE"),
    # delivery, portal progress, source
    N_("not sent"),
    N_("queued"),
    N_("held"),
    N_("sent"),
    N_("delivered"),
    N_("bounced"),
    N_("soft bounced"),
    N_("complained"),
    N_("opted out"),
    N_("refused"),
    N_("rejected"),
    N_("failed"),
    # what became of a held message: went later, or closed unsent
    N_("deferred"),
    N_("replaced"),
    N_("not needed"),
    N_("not started"),
    N_("opened"),
    N_("bank linked"),
    N_("documents uploaded"),
    N_("completed"),
    N_("lender"),
    N_("import"),
    N_("self signup"),
    # messages, bank-link attempts, import jobs, staff
    N_("invitation"),
    N_("confirmation"),
    N_("running"),
    N_("linked"),
    N_("exhausted"),
    N_("pending"),
    N_("processing"),
    N_("admin"),
    N_("officer"),
    N_("invited"),
    N_("active"),
    N_("deactivated"),
    # banking integration
    N_("waterfall"),
    # a sending domain
    N_("verified"),
    # bank account types (financial data)
    N_("checking"),
    N_("savings"),
    N_("credit"),
    N_("loan"),
    N_("investment"),
    N_("other"),
    # an invitation's history (its event types; their details stay as recorded)
    N_("bank link decision"),
    N_("bank link exhausted"),
    N_("contact confirmed"),
    N_("created"),
    N_("customer removed"),
    N_("document uploaded"),
    N_("edited"),
    N_("fallback sms sent"),
    N_("financial data disconnected"),
    N_("financial data failed"),
    N_("financial data ready"),
    N_("join requested"),
    N_("joined"),
    N_("link rotated"),
    N_("portal completed"),
    N_("portal opened"),
    N_("portal submitted"),
    N_("retry scheduled"),
    N_("send cancelled"),
    N_("send failed"),
    N_("send requested"),
)


def request_locale(request: Request) -> str:
    """Someone not signed in (no lender yet) gets the best match of their browser's languages."""
    return negotiate(request.headers.get("accept-language"))


class Words:
    """The console's words in one language, for text made in Python (notices, form errors, labels)."""

    def __init__(self, locale: str) -> None:
        self.locale = supported(locale)
        self._catalog = translations(self.locale)

    def gettext(self, message: str) -> str:
        return self._catalog.gettext(message)

    def pgettext(self, context: str, message: str) -> str:
        return self._catalog.pgettext(context, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalog.ngettext(singular, plural, n)

    def each(self, messages: dict[str, str]) -> dict[str, str]:
        """A table of marked strings (field labels, notices) in this language."""
        return {key: self.gettext(text) for key, text in messages.items()}

    def options(self, pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``(value, marked text)`` pairs for a select or tabs, the text in this language."""
        return [(value, self.gettext(text)) for value, text in pairs]

    def notice(self, table: dict[str, str], key: str | None) -> str | None:
        text = table.get(key or "")
        return self.gettext(text) if text else None


def form_lists(request: Request) -> dict[str, list[str]]:
    """An urlencoded body, every value of every field (checkbox lists)."""
    raw = request.raw_body or b""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}


def session_cookie(value: str, *, max_age: int = SESSION_MAX_AGE) -> str:
    return set_cookie(SESSION_COOKIE, value, max_age=max_age)


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
        return from_this_site(self.request) and same(form.get("csrf_token", ""), self.session.csrf_token)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params or {})

    @functools.cached_property
    def words(self) -> Words:
        """The lender's language (its settings' locale) for every page of its console."""
        return Words(self.tenant.settings.locale)

    def gettext(self, message: str) -> str:
        return self.words.gettext(message)

    def render(
        self, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response:
        for name in ("errors", "domain_errors"):  # every form's errors in words, in one place
            if isinstance(context.get(name), dict):
                context[name] = human_errors(context[name], self.words.gettext)
        return page(
            f"console/{template}",
            status=status,
            headers=headers,
            locale=self.words.locale,
            **self.base_context(),
            **context,
        )

    def base_context(self) -> dict[str, Any]:
        try:
            unread = notifications().unread_count(self.tenant)
        except DomainError:
            unread = None  # the bell must never take a page down
        path = self.request.path or "/console/invitations"
        return {
            "tenant": self.tenant,
            "me": self.staff,
            "csrf_token": self.session.csrf_token,
            "unread": unread,
            "nav": [(key, self.gettext(label), href) for key, label, href in NAV],
            "section": self.section,
            "brand_name": self.tenant.display_name,
            "colour": self.tenant.settings.branding.colour,
            "sending_hold": sending().standing(self.tenant),
            "verification_sent": self.query.get("verification") == "sent",
            "here": path if self.request.method == "GET" else "/console/invitations",
        }


def error_page(ctx: Ctx | None, exc: DomainError, locale: str) -> Response:
    """A refused request as a page. The title is in the page's language; the message is the service's own
    (the API's English text, which names what was wrong)."""
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
    log = logger.info if status < 500 else logger.error
    log("Console request refused", extra={"error_code": exc.code, "status": status})
    words = ctx.words if ctx is not None else Words(locale)
    context = {"title": words.gettext(ERROR_TITLES.get(status, N_("Something is wrong"))), "message": exc.message}
    if ctx is None:
        return page("console/error.html", status=status, headers=headers, locale=words.locale, **context)
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
            locale = request_locale(request)
            try:
                session = staff().session(read_cookie(request, SESSION_COOKIE))
                if session is None:
                    if request.method == "GET":
                        return redirect(f"/console/login?next={quote(request.path or '/console', safe='/')}")
                    words = Words(locale)
                    return page(
                        "console/error.html",
                        status=401,
                        locale=locale,
                        title=words.gettext("Signed out"),
                        message=words.gettext("Your session has ended. Please sign in again."),
                    )
                ctx = Ctx(request, session, section)
                locale = ctx.words.locale
                if request.method == "POST" and not multipart:
                    ctx.lists = form_lists(request) if _urlencoded(request) else {}
                    if not ctx.csrf_ok(ctx.form) and not _csrf_header(request, session):
                        return ctx.render(
                            "error.html",
                            status=403,
                            title=ctx.gettext("The form expired"),
                            message=ctx.gettext("Please go back, reload the page and try again."),
                        )
                if admin:
                    session.staff.ensure_admin()
                return fn(ctx, **params)
            except DomainError as exc:
                return error_page(ctx, exc, locale)
            except Exception:
                logger.exception("Console page failed", extra={"route": path})
                words = Words(locale)
                return page(
                    "console/error.html",
                    status=500,
                    locale=locale,
                    title=words.gettext("Something went wrong"),
                    message=words.gettext("Something went wrong on our side. Please try again."),
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
    return from_this_site(request) and bool(sent) and same(sent, session.csrf_token)
