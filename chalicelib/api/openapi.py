"""Route: ``GET /openapi.json``, generated from the same pydantic models that validate requests."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.api.routing import ROUTES, RouteSpec, endpoint

if TYPE_CHECKING:
    from pydantic import BaseModel

bp = Blueprint(__name__)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}

REASONS = {
    400: "Invalid input; `fields` names each bad field",
    401: "Missing or invalid API key",
    404: "Not found (or another lender's)",
    409: "Conflicts with the current state",
    422: "Idempotency-Key reused with another body",
    429: "Too many requests; see Retry-After",
    503: "A dependency is unavailable; retry",
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    name = model.__name__ if mode == "serialization" else f"{model.__name__}"
    components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(spec: RouteSpec, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": spec.summary,
        "tags": list(spec.tags),
        "operationId": f"{spec.method}_{spec.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
    }
    params = [
        {"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
        for p in spec.path.split("/")
        if p.startswith("{")
    ]
    if spec.query is not None:
        for name, field in spec.query.model_fields.items():
            schema = spec.query.model_json_schema()["properties"][name]
            params.append({"name": name, "in": "query", "required": field.is_required(), "schema": schema})
    if spec.path == "/v1/invitations" and spec.method == "post":
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {spec.content_type: {"schema": _schema(spec.body, components, "validation")}},
        }
    elif spec.content_type != "application/json" and spec.method in ("post", "put", "patch"):
        # A raw body (a CSV upload): without it documented, clients send none and get Chalice's 415.
        op["requestBody"] = {"required": True, "content": {spec.content_type: {"schema": {"type": "string"}}}}
    responses: dict[str, Any] = {}
    if spec.status == 204:
        responses["204"] = {"description": "Done"}
    else:
        content = (
            {"application/json": {"schema": _schema(spec.response, components, "serialization")}}
            if spec.response
            else {}
        )
        responses[str(spec.status)] = {"description": "Success", "content": content}
    for status in spec.errors:
        responses[str(status)] = {
            "description": REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op["responses"] = responses
    op["security"] = [{"bearerAuth": []}] if spec.auth else []
    return op


@cache
def document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method] = _operation(spec, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lender onboarding API",
            "version": "1.0.0",
            "description": "Invite loan applicants, follow every invitation, and receive their bank data.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from POST /v1/tenants or /v1/api-keys",
                }
            },
        },
    }


@endpoint(bp, "/openapi.json", "GET", summary="This document", auth=False, document=False)
def openapi(**_: Any) -> Response:
    import json

    return Response(body=json.dumps(document()), headers={"Content-Type": "application/json"})
