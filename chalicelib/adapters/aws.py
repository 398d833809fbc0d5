"""boto3 clients, created lazily once per process and shared by every adapter.

Only adapters import this module; nothing above the adapter layer touches boto3.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.config import get_settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """Return the process-wide client for ``service`` (``dynamodb``, ``sqs``, ``sesv2`` ...)."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    with _lock:
        if service not in _clients:
            import boto3  # imported here so cold paths that need no client never pay for it
            from botocore.config import Config

            settings = get_settings()
            _clients[service] = boto3.session.Session().client(  # type: ignore[call-overload]
                service,
                region_name=settings.aws_region,
                endpoint_url=settings.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10),
            )
        return _clients[service]


def reset_clients() -> None:
    """Forget every client (tests switch between embedded AWS instances)."""
    with _lock:
        _clients.clear()
