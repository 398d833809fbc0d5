"""HTML form helpers: urlencoded bodies, cookies (named, set and read only here), CSRF tokens, and form errors in
words."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from chalicelib.bootstrap import services
from chalicelib.domain.ids import derived_token, same
from chalicelib.i18n import N_

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalice import Response
    from chalice.app import Request

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"
# Over https every cookie is ``__Host-<name>``: Secure, Path=/ and no Domain, which a browser enforces, so no other
# host (another lender's, another customer account's: all share one registrable domain) can set it.
HOST_PREFIX = "__Host-"


def parse_form(request: Request) -> dict[str, str]:
    raw = request.raw_body or b""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items()}


# --- cookies: every one is named, set and read here ------------------------------------------------------------
def _cookie_jar(request: Request) -> dict[str, str]:
    """The request's cookies, the first of each name. Each ``name=value`` pair stands alone: a malformed one (which
    a sibling host could plant) is skipped, where ``http.cookies`` would stop reading and lose the session after it."""
    jar: dict[str, str] = {}
    for pair in (request.headers.get("cookie") or "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in jar:
            jar[name] = value.strip()
    return jar


def _https_cookies() -> bool:
    return services().settings.secure_cookies


# A year, and the hosts under the one answering (none are served over http).
HSTS = "max-age=31536000; includeSubDomains"


def strict_transport_security(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: wherever pages are served over https (where cookies are ``__Host-``), every answer asks the
    browser to use https only for this host: a network attacker can then serve no http look-alike of a lender's
    sign-in page to someone who typed its host. Plain http (``make run``) answers without it."""
    response = get_response(request)
    if _https_cookies():
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def cookie_name(name: str) -> str:
    """The name a cookie is set and read under: ``__Host-<name>`` where pages are served over https (see
    ``Settings.secure_cookies``), ``<name>`` over plain http. Only that one name is ever read: a plain ``session``
    or ``csrf`` that a sibling host planted never stands in for the ``__Host-`` one."""
    return f"{HOST_PREFIX}{name}" if _https_cookies() else name


def read_cookie(request: Request, name: str) -> str:
    """The value of our cookie ``name`` (under :func:`cookie_name`), or ""."""
    return _cookie_jar(request).get(cookie_name(name), "")


def set_cookie(name: str, value: str, *, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value for our cookie ``name``: host-only, ``Path=/``, HttpOnly, SameSite=Lax, and Secure with
    the ``__Host-`` prefix over https. ``max_age=0`` clears it."""
    https = _https_cookies()
    parts = [f"{cookie_name(name)}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if https:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


# --- CSRF -----------------------------------------------------------------------------------------------------------
def from_this_site(request: Request) -> bool:
    """False when the browser says the request comes from another origin: ``Sec-Fetch-Site: same-site`` is a sibling
    host (another lender's or customer's, ``SameSite=Lax`` cookies included), ``cross-site`` anything else. Browsers
    without the header (and API clients) pass; ``Origin`` cannot serve instead, since our pages' ``Referrer-Policy:
    no-referrer`` makes a browser send ``Origin: null`` with their own forms."""
    return (request.headers.get("sec-fetch-site") or "").strip().lower() in ("", "same-origin", "none")


def csrf_cookie(request: Request) -> tuple[str, dict[str, str]]:
    """A form shown before sign-in (no secret to bind a token to): its double-submit token, and the headers that set
    the cookie when the request had none."""
    existing = read_cookie(request, CSRF_COOKIE)
    if len(existing) >= 32:
        return existing, {}
    token = secrets.token_urlsafe(32)
    return token, {"Set-Cookie": set_cookie(CSRF_COOKIE, token)}


def csrf_valid(request: Request, form: dict[str, str]) -> bool:
    """A form shown before sign-in: the posted token matches the cookie, and the browser does not say it was posted
    from another site."""
    cookie = read_cookie(request, CSRF_COOKIE)
    submitted = form.get(CSRF_FIELD, "")
    return from_this_site(request) and len(cookie) >= 32 and same(cookie, submitted)


def bound_csrf(purpose: str, secret: str) -> str:
    """The CSRF token of a form reached with ``secret`` (a session id, a link's token), derived with the server's key:
    stored nowhere, and nobody without the secret (or a cookie a sibling host planted) can produce it."""
    return derived_token(services().link_key(), f"{purpose}-csrf", secret)


def bound_csrf_valid(request: Request, submitted: str, purpose: str, secret: str) -> bool:
    return from_this_site(request) and bool(secret) and same(submitted, bound_csrf(purpose, secret))


def client_ip(request: Request) -> str:
    """The caller's address as API Gateway saw it (for rate limits; never trusted for anything else)."""
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


# --- the console's error messages, in words -----------------------------------------------------------------
# The models' messages are the API's (pydantic's own wording, English). A page shows each error next to the
# field it names, so it says what to enter instead: each pattern of the library's wording has its human
# message here, once for every console form (Ctx.render, the signed-out pages and sign-up pass their errors
# through :func:`human_errors`). Our own validators' messages pass as they are, unless listed at the end.
_HUMAN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Field required$"), N_("this field is required")),
    (re.compile(r"^String should have at least 1 character$"), N_("this field is required")),
    (re.compile(r"^String should have at least (?P<n>\d+) characters$"), N_("use at least %(n)s characters")),
    (re.compile(r"^String should have at most (?P<n>\d+) characters?$"), N_("use at most %(n)s characters")),
    (re.compile(r"^Input should be greater than or equal to (?P<n>\S+)$"), N_("enter %(n)s or more")),
    (re.compile(r"^Input should be less than or equal to (?P<n>\S+)$"), N_("enter %(n)s or less")),
    (re.compile(r"^Input should be greater than (?P<n>\S+)$"), N_("enter more than %(n)s")),
    (re.compile(r"^Input should be less than (?P<n>\S+)$"), N_("enter less than %(n)s")),
    (re.compile(r"^Input should be a valid integer"), N_("enter a whole number")),
    (re.compile(r"^Input should be a valid (number|decimal)"), N_("enter a number")),
    (re.compile(r"^Input should be a valid date"), N_("enter a date, like 2026-12-01")),
    (re.compile(r"^Input should be a valid boolean"), N_("choose yes or no")),
    (
        re.compile(r"^(Input should be a valid URL|URL scheme should be|URL should have at most)"),
        N_("enter a full address that starts with https://"),
    ),
    (
        re.compile(r"^(value is not a valid email address|An email address)"),
        N_("enter a valid email address, like name@example.com"),
    ),
    (re.compile(r"^Input should be (?P<values>'[^']*'(?:(?:, | or )'[^']*')*)$"), N_("choose one of: %(values)s")),
    (re.compile(r"^String should match pattern"), N_("use only the characters this field allows")),
    (re.compile(r"^Input should be a valid (string|list|dictionary)"), N_("enter a value of the right kind")),
    (re.compile(r"^(Extra inputs are not permitted)$"), N_("this field is not expected here")),
    # our own validators' (chalicelib/domain), so that they too are in the page's language
    (re.compile(r"^must be a plain name, without @, < or >"), N_("use a plain name, without @, < or >")),
)


def human_message(message: str, gettext: Callable[[str], str]) -> str:
    """One error message in words a lender understands, in the page's language (``gettext``)."""
    text = str(message).removeprefix("Value error, ")
    for pattern, human in _HUMAN:
        found = pattern.match(text)
        if found is None:
            continue
        params = found.groupdict()
        if "values" in params:
            params["values"] = ", ".join(re.findall(r"'([^']*)'", params["values"]))
        return gettext(human) % params if params else gettext(human)
    return text


def human_errors(errors: dict[str, str] | None, gettext: Callable[[str], str]) -> dict[str, str]:
    """A form's errors by field, each in words (see :func:`human_message`)."""
    return {field: human_message(message, gettext) for field, message in (errors or {}).items()}
