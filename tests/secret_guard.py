"""Least privilege for secrets, checked at runtime: every secret the app reads is attributed to the Lambda function
whose code read it, and must be one its role grants (``infra/package.py`` ``FUNCTION_ACCESS``); deployed, any other
read is refused (AccessDenied, and the function has no ARN for it). Used by the ``aws`` fixture for the whole
integration suite, like the key guard.

The function is the outermost frame of the app's own entry points on the stack: an event source's handler (its
Chalice name gives the function, as ``chalice package`` names it) or a route (anything under ``chalicelib/api``,
which the one API function serves). A read with neither on the stack (a test reading a secret itself) is not checked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import CodeType

    import pytest

    from chalicelib.config import Secret

API_FUNCTION = "APIHandler"
API_DIR = str(Path(__file__).resolve().parents[1] / "chalicelib" / "api")


@cache
def event_handlers() -> dict[CodeType, str]:
    """The code of every event source handler of the app, with the logical id of its function."""
    from chalice.app import EventSourceHandler
    from chalice.utils import to_cfn_resource_name

    from app import app

    return {
        handler.func.__code__: to_cfn_resource_name(name)
        for name, handler in app.handler_map.items()
        if isinstance(handler, EventSourceHandler)
    }


def calling_function(frame: Any = None) -> str | None:
    """The logical id of the function whose entry point is outermost on the stack, or None."""
    handlers = event_handlers()
    frame = frame or sys._getframe(1)
    found = None
    while frame is not None:  # innermost to outermost: the last match is the entry point
        code = frame.f_code
        if code in handlers:
            found = handlers[code]
        elif code.co_filename.startswith(API_DIR):
            found = API_FUNCTION
        frame = frame.f_back
    return found


@dataclass
class SecretGuard:
    reads: list[tuple[str, str]] = field(default_factory=list)  # (function, secret name)

    def denied(self) -> list[tuple[str, str]]:
        from infra.package import FUNCTION_ACCESS

        return sorted(
            {
                (function, name)
                for function, name in self.reads
                if name not in {secret.name for secret in FUNCTION_ACCESS[function].secrets}
            }
        )

    def assert_clean(self) -> None:
        denied = self.denied()
        assert not denied, (
            f"functions read secrets their role does not grant (infra/package.py FUNCTION_ACCESS): {denied}"
        )


def install(monkeypatch: pytest.MonkeyPatch) -> SecretGuard:
    from chalicelib.adapters.secrets import SecretStore

    guard = SecretGuard()
    original = SecretStore.get

    def get(self: SecretStore, secret: Secret) -> str:
        function = calling_function(sys._getframe(1))
        if function is not None:
            guard.reads.append((function, secret.name))
        return original(self, secret)

    verify = SecretStore.verify

    def verify_guarded(self: SecretStore, secret: Secret, check: Any) -> Any:
        function = calling_function(sys._getframe(1))
        if function is not None:
            guard.reads.append((function, secret.name))
        return verify(self, secret, check)

    monkeypatch.setattr(SecretStore, "get", get)
    monkeypatch.setattr(SecretStore, "verify", verify_guarded)
    return guard
