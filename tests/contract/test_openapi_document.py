"""The OpenAPI document itself: valid OpenAPI 3.1 (openapi-spec-validator), every reference resolves, every
operation has an identifier a code generator can use, every JSON answer has a schema, and the answers a
client must handle (resend's 429 with Retry-After) are documented. In-process: no stack needed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    import app  # noqa: F401  (registers every route)
    from chalicelib.api.openapi import document

    return document()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    errors = [str(error).splitlines()[0][:300] for error in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_every_reference_points_at_a_component(doc: dict[str, Any]) -> None:
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    schemas = doc["components"]["schemas"]
    dangling = sorted(
        ref for ref in refs if not ref.startswith("#/components/schemas/") or ref.split("/")[-1] not in schemas
    )
    assert dangling == []


def test_operation_ids_are_unique_identifiers(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not re.fullmatch(r"[a-z][a-z0-9_]*", i)] == []
    listing = doc["paths"]["/v1/invitations"]["get"]["operationId"]
    assert listing == "list_invitations"


def test_every_answer_with_a_body_declares_its_schema(doc: dict[str, Any]) -> None:
    def has_schema(response: dict[str, Any]) -> bool:
        content = response.get("content")
        return bool(content) and all("schema" in media for media in content.values())

    empty = [
        f"{method.upper()} {path} {status}"
        for method, path, op in operations(doc)
        for status, response in op["responses"].items()
        if status != "204" and not has_schema(response)
    ]
    assert empty == []


def test_rate_limited_answers_are_documented_with_retry_after(doc: dict[str, Any]) -> None:
    resend = doc["paths"]["/v1/invitations/resend"]["post"]["responses"]
    assert "429" in resend
    # The all-refused answer still carries one outcome per id (the same schema as the 200).
    assert (
        resend["429"]["content"]["application/json"]["schema"] == resend["200"]["content"]["application/json"]["schema"]
    )
    for method, path, op in operations(doc):
        if "429" in op["responses"]:
            assert "Retry-After" in op["responses"]["429"].get("headers", {}), f"{method} {path}"


def test_query_parameters_keep_their_enums(doc: dict[str, Any]) -> None:
    params = {p["name"]: p for p in doc["paths"]["/v1/invitations"]["get"]["parameters"]}
    status = params["status"]["schema"]
    ref = next(s["$ref"] for s in status["anyOf"] if "$ref" in s)
    assert doc["components"]["schemas"][ref.split("/")[-1]]["enum"] == ["PENDING", "JOINED", "INACTIVE"]
