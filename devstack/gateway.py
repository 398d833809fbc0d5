"""The local server answers like the deployed API Gateway: ``infra/gateway_responses.json`` replaces the gateway's
own answers in production (an unknown route is a 404 in the API's error shape, not a 403 "Missing Authentication
Token"), and the same file shapes what ``chalice local`` answers for an unknown route here.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from chalice.local import ForbiddenError, LocalGatewayException

if TYPE_CHECKING:
    from chalice.local import LocalDevServer

from infra.package import GATEWAY_RESPONSES


def unknown_route_response() -> tuple[int, bytes]:
    """Status and body of API Gateway's MISSING_AUTHENTICATION_TOKEN response, as infra/ deploys it."""
    response = json.loads(GATEWAY_RESPONSES.read_text())["MISSING_AUTHENTICATION_TOKEN"]
    return int(response["StatusCode"]), response["ResponseTemplates"]["application/json"].encode()


def answer_like_api_gateway(server: LocalDevServer) -> None:
    """Swap the server's request handler for a subclass that sends the deployed gateway responses."""
    current = server.server.RequestHandlerClass
    base = current.func if isinstance(current, functools.partial) else current
    keywords = current.keywords if isinstance(current, functools.partial) else {}
    status, body = unknown_route_response()

    class GatewayResponses(base):  # type: ignore[misc, valid-type]
        def _send_error_response(self, error: LocalGatewayException) -> None:
            # chalice local raises ForbiddenError only when no route matches (this app has no authorizers).
            if isinstance(error, ForbiddenError):
                headers: Any = {"Content-Type": "application/json"}
                self._send_http_response(status, headers, body)
                return
            super()._send_error_response(error)

    server.server.RequestHandlerClass = functools.partial(GatewayResponses, **keywords)
