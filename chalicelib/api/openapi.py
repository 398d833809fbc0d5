"""Route: ``GET /openapi.json``, generated from the same pydantic models that validate requests.

Every model (request bodies and query models in validation mode, responses in serialization mode) goes through one
``models_json_schema`` call, so nested definitions land in ``components/schemas`` with unique names and every
``$ref`` resolves (a query model's enums included). tests/contract/test_openapi_document.py validates the result
with openapi-spec-validator, and tests/contract/test_generated_client.py drives the API through a client generated
from it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from chalice import Blueprint, Response
from pydantic.json_schema import models_json_schema

from chalicelib.api.routing import ROUTES, RouteSpec, endpoint
from chalicelib.domain.providers import PROVIDERS, ProviderInfo

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic.json_schema import JsonSchemaValue

    Mode = Literal["validation", "serialization"]

bp = Blueprint(__name__)

REF = "#/components/schemas/{model}"

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
    413: "The body is over the size limit; `fields` names it",
    422: "Idempotency-Key reused with another body, or (export) too many rows for one answer",
    429: "Too many requests; see Retry-After",
    503: "A dependency is unavailable; retry",
}

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _models(spec: RouteSpec) -> list[tuple[type[BaseModel], Mode]]:
    found: list[tuple[type[BaseModel], Mode]] = []
    for model in (spec.body, spec.query):
        if model is not None:
            found.append((model, "validation"))
    for model in (spec.response, *spec.responses.values()):
        if model is not None:
            found.append((model, "serialization"))
    return found


class Schemas:
    """Every model of every documented route, as component schemas and references to them."""

    def __init__(self, routes: list[RouteSpec]) -> None:
        wanted = list(dict.fromkeys(pair for spec in routes for pair in _models(spec)))
        refs, defs = models_json_schema(wanted, ref_template=REF)
        self.refs: dict[tuple[Any, Mode], JsonSchemaValue] = dict(refs)
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA, **defs.get("$defs", {})}
        self.query_models: set[str] = set()

    def unused_query_models(self, document: dict[str, Any]) -> set[str]:
        """Query models serve only as parameter lists: no client needs them as schemas."""
        text = json.dumps(document)
        return {name for name in self.query_models if f'"{REF.format(model=name)}"' not in text}

    def ref(self, model: type[BaseModel], mode: Mode) -> dict[str, Any]:
        return dict(self.refs[(model, mode)])

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        """One ``in: query`` parameter per field, its schema taken from the model's component (refs intact)."""
        name = self.refs[(model, "validation")]["$ref"].rsplit("/", 1)[-1]
        self.query_models.add(name)
        properties = self.components[name].get("properties", {})
        return [
            {"name": field, "in": "query", "required": info.is_required(), "schema": properties[field]}
            for field, info in model.model_fields.items()
        ]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(spec: RouteSpec, schemas: Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": spec.summary, "tags": list(spec.tags), "operationId": spec.operation_id}
    if spec.description:
        op["description"] = spec.description
    params = [
        {"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
        for p in spec.path.split("/")
        if p.startswith("{")
    ]
    if spec.query is not None:
        params += schemas.query_parameters(spec.query)
    if spec.path == "/v1/invitations" and spec.method == "post":
        params.append(IDEMPOTENCY_KEY)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {spec.content_type: {"schema": schemas.ref(spec.body, "validation")}},
        }
    elif spec.content_type != "application/json" and spec.method in ("post", "put", "patch"):
        # A raw body (a CSV upload): without it documented, clients send none and get Chalice's 415.
        op["requestBody"] = {"required": True, "content": {spec.content_type: {"schema": {"type": "string"}}}}
    responses: dict[str, Any] = {}
    if spec.status == 204:
        responses["204"] = {"description": "Done"}
    elif spec.response is not None:
        responses[str(spec.status)] = {
            "description": "Success",
            "content": {spec.response_content_type: {"schema": schemas.ref(spec.response, "serialization")}},
        }
    elif spec.response_content_type != "application/json":
        responses[str(spec.status)] = {
            "description": "Success",
            "content": {spec.response_content_type: {"schema": {"type": "string"}}},
        }
    else:
        raise ValueError(f"{spec.method.upper()} {spec.path}: a JSON answer needs a response model")
    for status, model in spec.responses.items():
        responses[str(status)] = {
            "description": REASONS.get(status, "See the schema"),
            "content": _json(schemas.ref(model, "serialization")),
        }
    for status in spec.errors:
        responses.setdefault(
            str(status),
            {"description": REASONS.get(status, "Error"), "content": _json({"$ref": REF.format(model="Error")})},
        )
    if "429" in responses:
        responses["429"]["headers"] = RETRY_AFTER
    op["responses"] = responses
    op["security"] = [{"bearerAuth": []}] if spec.auth else []
    return op


def document() -> dict[str, Any]:
    """The API's document; made once per process, and again only if the provider registry changed (tests)."""
    return _document(tuple(PROVIDERS.values()))


@cache
def _document(registry: tuple[ProviderInfo, ...]) -> dict[str, Any]:
    specs = [documented for spec in ROUTES for documented in spec.documented()]
    schemas = Schemas(specs)
    paths: dict[str, Any] = {}
    for spec in specs:
        paths.setdefault(spec.path, {})[spec.method] = _operation(spec, schemas)
    for name in schemas.unused_query_models({"paths": paths, "components": schemas.components}):
        del schemas.components[name]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lender onboarding API",
            "version": "1.0.0",
            "description": "Invite loan applicants, follow every invitation, and receive their bank data.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
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
    return Response(body=json.dumps(document()), headers={"Content-Type": "application/json"})
