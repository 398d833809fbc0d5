"""HTML form helpers: urlencoded bodies, cookies and double-submit CSRF tokens."""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from chalicelib.domain.ids import same

if TYPE_CHECKING:
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
