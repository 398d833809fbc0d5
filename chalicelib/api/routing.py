"""How every HTTP route is declared: input parsing, auth, the one JSON error shape, and OpenAPI.

``endpoint`` registers a Chalice route and records its models for ``/openapi.json``. Views raise
domain exceptions; this module alone turns them into HTTP answers, so no stack trace or AWS error
text ever reaches a client.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from chalice import Response
from pydantic import BaseModel, ValidationError

from chalicelib.domain import json_input
from chalicelib.errors import (
    Conflict,
    DomainError,
    ExportTooLarge,
    Forbidden,
    IdempotencyMismatch,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    UpstreamError,
    ValidationFailed,
)
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalice import Blueprint, Chalice
    from chalice.app import Request

    from chalicelib.domain.tenant import Tenant

M = TypeVar("M", bound=BaseModel)

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    IdempotencyMismatch: 422,
    ExportTooLarge: 422,
    RateLimited: 429,
    UpstreamError: 503,
}


@dataclass
class RouteSpec:
    path: str
    method: str
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    errors: tuple[int, ...]
    tags: tuple[str, ...]
    content_type: str = "application/json"
    response_content_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)
    # The view's name: a code generator's method name (``list_invitations``), unique across the API.
    operation_id: str = ""
    # Answers other than ``status`` that carry a model rather than the error shape (resend's all-limited 429).
    responses: dict[int, type[BaseModel]] = field(default_factory=dict)
    # What a client must know beyond the summary (e.g. that a page may come back short).
    description: str | None = None
    # A route serving a registry (``/webhooks/{provider}``) is documented as the routes it serves, one per
    # registered value, each with its own path, summary and operation id: asked when the document is made.
    documented_as: Callable[[RouteSpec], list[RouteSpec]] | None = None

    def documented(self) -> list[RouteSpec]:
        return self.documented_as(self) if self.documented_as else [self]


ROUTES: list[RouteSpec] = []


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return Response(
        body=json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(exc: DomainError) -> Response:
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    log = logger.info if status < 500 else logger.error
    log("Request refused", extra={"error_code": exc.code, "status": status})
    return json_response(error_body(exc.code, exc.message, exc.fields), status, headers)


# Answers Chalice gives before any view runs, in its own shape ``{"Code", "Message"}``.
_FRAMEWORK_ERRORS = {"MethodNotAllowedError": "method_not_allowed", "UnsupportedMediaType": "unsupported_media_type"}


def framework_errors_in_error_shape(app: Chalice) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """HTTP middleware: Chalice's own 405 and 415 answers, rewritten into the one error shape (headers kept)."""

    def middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
        response = get_response(request)
        body = response.body
        if not (isinstance(body, dict) and body.keys() == {"Code", "Message"}):
            return response
        code = _FRAMEWORK_ERRORS.get(str(body["Code"]))
        if code is None:
            return response
        fields: dict[str, str] = {}
        if code == "method_not_allowed":
            message = f"{request.method} is not allowed here; use {response.headers.get('Allow', 'another method')}"
        else:
            route = app.routes.get(request.context.get("resourcePath", ""), {}).get(request.method)
            accepted = " or ".join(route.content_types) if route else "another content type"
            message = f"this route takes {accepted}"
            fields["Content-Type"] = f"must be {accepted}"
        headers = {k: str(v) for k, v in response.headers.items() if k.lower() != "content-type"}
        return json_response(error_body(code, message, fields), response.status_code, headers)

    return middleware


def validation_fields(exc: ValidationError) -> dict[str, str]:
    return ValidationFailed.of_input(exc).fields


def invalid(exc: ValidationError, what: str = "request") -> ValidationFailed:
    return ValidationFailed.of_input(exc, what)


def parse_json(request: Request, model: type[M]) -> M:
    raw = request.raw_body or b""
    data = json_input.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", fields={"body": "must be a JSON object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from exc


def parse_query(request: Request, model: type[M]) -> M:
    params = dict(request.query_params or {})
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise invalid(exc, "query") from exc


Authenticator = Callable[[str | None], "Tenant"]
_authenticator: list[Authenticator] = []


def set_authenticator(fn: Authenticator) -> None:
    """app.py wires the tenant service's ``authenticate`` here (keeps the routing layer service-free)."""
    _authenticator[:] = [fn]


def endpoint(
    bp: Blueprint,
    path: str,
    method: str,
    *,
    summary: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = True,
    errors: tuple[int, ...] = (),
    tags: tuple[str, ...] = (),
    content_types: list[str] | None = None,
    response_content_type: str = "application/json",
    document: bool = True,
    responses: dict[int, type[BaseModel]] | None = None,
    description: str | None = None,
    documented_as: Callable[[RouteSpec], list[RouteSpec]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route. The view gets ``request`` (the Chalice request), ``tenant`` when ``auth``,
    ``body`` / ``query`` parsed into their models when given, and the URL parameters."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if document:
            ROUTES.append(
                RouteSpec(
                    path,
                    method.lower(),
                    summary,
                    body,
                    query,
                    response,
                    status,
                    auth,
                    tuple(sorted({*errors, 400} | ({401} if auth else set()))),
                    tags,
                    (content_types or ["application/json"])[0],
                    response_content_type,
                    operation_id=fn.__name__,
                    responses=dict(responses or {}),
                    description=description,
                    documented_as=documented_as,
                )
            )

        def view(**url_params: Any) -> Any:
            request = bp.current_request
            try:
                kwargs: dict[str, Any] = dict(url_params)
                kwargs["request"] = request
                if auth:
                    kwargs["tenant"] = _authenticator[0](request.headers.get("authorization"))
                if body is not None:
                    kwargs["body"] = parse_json(request, body)
                if query is not None:
                    kwargs["query"] = parse_query(request, query)
                result = fn(**kwargs)
            except DomainError as exc:
                return error_response(exc)
            except Exception:  # a ValidationError here is about stored data: input was converted above
                logger.exception("Unhandled error", extra={"route": path, "method": method})
                return json_response(error_body("internal_error", "something went wrong on our side"), 500)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(body="", status_code=204)
            return json_response(result, status)

        # Copy the name and docstring only: Chalice must see the view's own (**url_params) signature.
        functools.update_wrapper(view, fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
        bp.route(path, methods=[method], content_types=content_types or ["application/json"])(view)
        return fn

    return decorator
