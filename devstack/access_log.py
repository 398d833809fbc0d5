"""The local server's access log without secrets: ``chalice local`` prints every request line, and a
request line can carry a portal or confirmation token in its path and an email address in its query.

API Gateway's access logs in production are configured not to log paths or query strings; this keeps
the local stack's log to the same standard (tests/e2e/test_log_hygiene.py reads it).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from chalice.local import ChaliceRequestHandler

from chalicelib.observability import redact

if TYPE_CHECKING:
    from chalice.local import LocalDevServer

# Link tokens are 43 url-safe characters; ids (inv_..., ten_...) are shorter and carry no secret.
_SECRET_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]{40,}(?=[/?#\s]|$)")
_SECRET_PARAM = re.compile(r"(?i)\b(token|key|password|code|secret)=[^&\s\"]*")


def redact_request_line(text: str) -> str:
    text = _SECRET_SEGMENT.sub("***", unquote(text))
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    return redact(text)


class RedactingRequestHandler(ChaliceRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        super().log_message(format, *(redact_request_line(a) if isinstance(a, str) else a for a in args))


def redact_access_log(server: LocalDevServer) -> None:
    """Swap the server's request handler for one that redacts its log lines."""
    wrapped = server.server.RequestHandlerClass
    keywords = getattr(wrapped, "keywords", {})
    server.server.RequestHandlerClass = functools.partial(RedactingRequestHandler, **keywords)
