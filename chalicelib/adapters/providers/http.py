"""The one HTTP client the provider adapters use: timeouts, retries with backoff, typed errors.

Retries cover connection failures and 5xx answers, with exponential backoff capped at ``MAX_BACKOFF_S``.
A partner's ``Retry-After`` is not obeyed here: a worker must not sleep for minutes inside one invocation;
the caller's own redelivery (SQS) is the longer retry. A read timeout on a POST is not retried: the
partner may have acted on it, and the caller decides what a second attempt means.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from chalicelib.adapters.providers.base import ProviderError
from chalicelib.observability import logger

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
RETRY_STATUSES = (500, 502, 503, 504)
MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: Any


class JsonHttp:
    """JSON over HTTP to one partner, sessions kept per thread (``requests.Session`` is not thread-safe).

    :meth:`post` returns the decoded answer for any status below 500; a 5xx that outlived the retries, a
    timeout, a connection failure or a non-JSON answer raises :class:`ProviderError` (``retryable=True``).
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        retries: int = 2,
        backoff_s: float = 0.3,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=retries,
            other=0,
            backoff_factor=backoff_s,
            backoff_max=MAX_BACKOFF_S,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST", "DELETE"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=self._retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def post(
        self,
        path: str,
        json_body: Any,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> JsonResponse:
        return self.request("POST", path, json_body=json_body, headers=headers, auth=auth)

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> JsonResponse:
        return self.request("GET", path, params=params, headers=headers, auth=auth)

    def delete(
        self, path: str, *, headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None
    ) -> JsonResponse:
        return self.request("DELETE", path, headers=headers, auth=auth)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> JsonResponse:
        """One call; see the class docstring for what raises. GET and DELETE are retried like POST."""
        url = f"{self.base_url}{path}"
        try:
            response = self._session().request(
                method, url, json=json_body, params=params, headers=headers, auth=auth, timeout=self.timeout
            )
        except requests.RequestException as exc:
            logger.warning(
                "provider call failed", extra={"provider": self.provider, "path": path, "error": type(exc).__name__}
            )
            raise ProviderError(f"{self.provider} is unavailable", retryable=True) from exc
        if response.status_code >= 500:
            logger.warning(
                "provider answered with a server error",
                extra={"provider": self.provider, "path": path, "status": response.status_code},
            )
            raise ProviderError(f"{self.provider} is unavailable", retryable=True)
        try:
            body = response.json() if response.content else None
        except ValueError as exc:
            logger.warning(
                "provider answered with a body that is not JSON",
                extra={"provider": self.provider, "path": path, "status": response.status_code},
            )
            raise ProviderError(f"{self.provider} answered unexpectedly", retryable=True) from exc
        return JsonResponse(response.status_code, body)


def field(body: Any, *path: str) -> Any:
    """``body[path[0]][path[1]]...`` or None when any step is missing."""
    current = body
    for key in path:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


def required_text(provider: str, body: Any, *path: str) -> str:
    value = field(body, *path)
    if not isinstance(value, str) or not value:
        logger.error("provider answer is missing a field", extra={"provider": provider, "field": ".".join(path)})
        raise ProviderError(f"{provider} answered unexpectedly")
    return value
