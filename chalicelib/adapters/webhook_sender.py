"""HTTP POST of signed webhook events to a lender's endpoint, with timeouts and SSRF protection.

A URL is refused (never fetched) unless it is http(s) and, outside the local stack, every address
its host resolves to is public: no loopback, private, link-local (cloud metadata), multicast or
reserved ranges. Redirects are not followed (a redirect could lead anywhere).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

USER_AGENT = "LenderOnboarding-Webhooks/1.0"
EXCERPT_CHARS = 200


class UrlRefused(ValueError):
    """The URL may not be called: wrong scheme, no host, or a non-public address."""


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response_excerpt: str | None = None
    # False when retrying cannot help (the URL itself is refused).
    retryable: bool = True


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def check_url(url: str, allow_private: bool, resolve: Callable[[str, int], list[str]] = _resolve) -> None:
    """Raise UrlRefused unless ``url`` may be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http and https URLs are called")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.username or parts.password:
        raise UrlRefused("credentials in the URL are not allowed")
    if allow_private:
        return
    if parts.scheme != "https":
        raise UrlRefused("webhook URLs must use https (the events carry customer data)")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port)
    except OSError as exc:
        raise UrlRefused("the host does not resolve") from exc
    if not addresses:
        raise UrlRefused("the host does not resolve")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise UrlRefused("the host resolves to a private, loopback or reserved address")


class WebhookSender:
    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        session: requests.Session | None = None,
        resolve: Callable[[str, int], list[str]] = _resolve,
    ) -> None:
        if session is None:
            import requests

            session = requests.Session()
            session.trust_env = False  # never route webhooks through a proxy from the environment
        self.session = session
        self.allow_private = allow_private
        self.timeout = (connect_timeout, read_timeout)
        self.resolve = resolve

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """POST ``body``; never raises: the outcome (status, duration, error) is the result."""
        import requests

        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            check_url(url, self.allow_private, self.resolve)
        except UrlRefused as exc:
            logger.warning("Webhook URL refused", extra={"reason": str(exc)})
            return PostResult(ok=False, status_code=None, duration_ms=0, error=f"refused: {exc}", retryable=False)
        try:
            response = self.session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,  # read only the excerpt we keep: a huge answer must not fill memory
            )
        except requests.Timeout:
            return PostResult(ok=False, status_code=None, duration_ms=elapsed(), error="timeout")
        except requests.RequestException as exc:
            return PostResult(ok=False, status_code=None, duration_ms=elapsed(), error=type(exc).__name__)
        try:
            head = response.raw.read(EXCERPT_CHARS * 4, decode_content=True) if response.raw is not None else b""
        except Exception:  # an answer we cannot read is still an answer: its status counts
            head = b""
        finally:
            response.close()
        excerpt = head.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS] if head else None
        ok = 200 <= response.status_code < 300
        return PostResult(
            ok=ok,
            status_code=response.status_code,
            duration_ms=elapsed(),
            error=None if ok else f"HTTP {response.status_code}",
            response_excerpt=excerpt,
        )
