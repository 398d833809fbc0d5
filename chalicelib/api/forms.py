"""HTML form helpers: urlencoded bodies, cookies, double-submit CSRF tokens, and form errors in words."""

from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from chalicelib.domain.ids import same
from chalicelib.i18n import N_

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalice.app import Request

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"


def parse_form(request: Request) -> dict[str, str]:
    raw = request.raw_body or b""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items()}


def cookies(request: Request) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header means no cookies, not a 500
        return {}
    return {k: m.value for k, m in jar.items()}


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None, path: str = "/") -> str:
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def csrf_token(request: Request) -> tuple[str, bool]:
    """The request's CSRF token, and whether a fresh cookie must be set for it."""
    existing = cookies(request).get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing, False
    return secrets.token_urlsafe(32), True


def csrf_valid(request: Request, form: dict[str, str]) -> bool:
    cookie = cookies(request).get(CSRF_COOKIE, "")
    submitted = form.get(CSRF_FIELD, "")
    return bool(cookie) and len(cookie) >= 32 and same(cookie, submitted)


def client_ip(request: Request) -> str:
    """The caller's address as API Gateway saw it (for rate limits; never trusted for anything else)."""
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


# --- the console's error messages, in words -----------------------------------------------------------------
# The models' messages are the API's (pydantic's own wording, English). A page shows each error next to the
# field it names, so it says what to enter instead: each pattern of the library's wording has its human
# message here, once for every console form (Ctx.render, the signed-out pages and sign-up pass their errors
# through :func:`human_errors`). Messages of our own validators ("must be a name ...") pass as they are.
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
