"""Tenant isolation: every authenticated route, called with lender B's key and lender A's real ids,
answers 404 (never 403, never A's data) and changes nothing of A's.

The matrix is built from ``chalicelib.api.routing.ROUTES``, so routes added later are covered
without touching this file. While B's requests run, a botocore hook also fails the test if any
DynamoDB request so much as names A's partition.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.config import SEND_QUEUE
from tests.integration.helpers import call, drain
from tests.key_guard import KeyGuard

PATH_PARAM = re.compile(r"\{(\w+)\}")


def sign_up(client: Any, name: str, subdomain: str, email: str) -> dict[str, Any]:
    status, body = call(
        client, "POST", "/v1/tenants", None, {"name": name, "subdomain": subdomain, "admin_email": email}
    )
    assert status == 201, body
    return dict(body)


def table_items(table_name: str) -> list[dict[str, Any]]:
    import boto3

    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table_name}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def owned_by(tenant_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mine = [
        i
        for i in items
        if i["PK"]["S"].startswith(f"TENANT#{tenant_id}") or i.get("tenant_id", {}).get("S") == tenant_id
    ]
    return sorted(mine, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def ids_of(items: list[dict[str, Any]]) -> dict[str, str]:
    """Every ``*_id`` attribute of the tenant's items: the real ids to put in B's requests."""
    ids: dict[str, str] = {}
    for item in sorted(items, key=lambda i: i.get("type", {}).get("S") != "invitation"):
        for name, value in item.items():
            if name.endswith("_id") and "S" in value:
                ids.setdefault(name, value["S"])
    return ids


def minimal(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """The smallest value a JSON schema accepts (required properties only)."""
    if "$ref" in schema:
        return minimal(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return minimal(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs)
    for hint in ("const", "default"):
        if hint in schema:
            return schema[hint]
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "email":
            return "someone@bravo.example"
        if schema.get("format") == "uri":
            return "https://bravo.example/"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [minimal(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    return {k: minimal(schema["properties"][k], defs) for k in schema.get("required", [])}


def example(model: Any, ids: dict[str, str]) -> dict[str, Any]:
    schema = model.model_json_schema()
    value = minimal(schema, schema.get("$defs", {}))
    for name in list(value):
        if name in ids:
            value[name] = ids[name]
        elif name == "ids":
            value[name] = [ids["invitation_id"]]
    return dict(value)


@pytest.fixture
def two_lenders(client: Any, aws: dict[str, str]) -> dict[str, Any]:
    a = sign_up(client, "Alpha Lending", "alpha-iso", "ops@alpha-lending.example")
    b = sign_up(client, "Bravo Lending", "bravo-iso", "ops@bravo-lending.example")
    key = a["api_key"]
    invited = {
        "email": "jane.alpha@customer.example",
        "owner": "Alice Owner",
        "phone": "+16135550187",
        "channel": "both",
    }
    status, inv = call(client, "POST", "/v1/invitations", key, invited)
    assert status == 201, inv
    status, quiet = call(
        client, "POST", "/v1/invitations", key, {"email": "bob.alpha@customer.example", "owner": "A", "send": False}
    )
    assert status == 201, quiet
    drain(SEND_QUEUE)  # communications, provider message lookups, history
    status, extra_key = call(client, "POST", "/v1/api-keys", key, {"label": "second"})
    assert status == 201, extra_key
    items = owned_by(a["tenant"]["tenant_id"], table_items(aws["TABLE_NAME"]))
    ids = {**ids_of(items), "invitation_id": inv["invitation_id"], "key_id": extra_key["key"]["key_id"]}
    secrets = {
        a["tenant"]["tenant_id"],
        "alpha-iso",
        "Alpha Lending",
        "ops@alpha-lending.example",
        invited["email"],
        invited["phone"],
        quiet["invitation_id"],
        a["api_key"],
        extra_key["api_key"],
    }
    return {"a": a, "b": b, "ids": ids, "secrets": secrets, "table": aws["TABLE_NAME"]}


def authenticated_routes() -> list[Any]:
    import app  # noqa: F401  (registers every blueprint's routes)
    from chalicelib.api.routing import ROUTES

    return [spec for spec in ROUTES if spec.auth]


def request_for(spec: Any, ids: dict[str, str]) -> tuple[str, dict[str, Any] | str | None, dict[str, str], list[str]]:
    """Path with A's ids, a valid body and query, and the ids that had to be made up."""
    made_up: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ids:
            made_up.append(name)
        return ids.get(name, f"{name.split('_')[0][:3]}_made_up")

    path = PATH_PARAM.sub(fill, spec.path)
    body: dict[str, Any] | str | None = None
    if spec.body is not None:
        body = example(spec.body, ids)
    elif spec.method in ("post", "put", "patch") and spec.content_type != "application/json":
        body = ""
    query = {k: str(v) for k, v in example(spec.query, ids).items()} if spec.query is not None else {}
    return path, body, query, made_up


def send(client: Any, spec: Any, key: str, path: str, body: Any, query: dict[str, str]) -> tuple[int, str]:
    from urllib.parse import urlencode

    url = f"{path}?{urlencode(query)}" if query else path
    headers = {"Authorization": f"Bearer {key}", "Content-Type": spec.content_type}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    response = getattr(client.http, spec.method)(url, **kwargs)
    return response.status_code, response.body.decode() if response.body else ""


def test_every_authenticated_route_refuses_another_lenders_ids(client: Any, two_lenders: dict[str, Any]) -> None:
    from chalicelib.adapters import aws

    a, b, ids = two_lenders["a"], two_lenders["b"], two_lenders["ids"]
    a_tenant = a["tenant"]["tenant_id"]
    routes = authenticated_routes()
    assert len(routes) >= 10

    # A's own GETs of the same ids work: the 404s below are about the key, not about bad ids.
    for spec in routes:
        path, body, query, made_up = request_for(spec, ids)
        if spec.method == "get" and PATH_PARAM.search(spec.path) and not made_up:
            status, text = send(client, spec, a["api_key"], path, body, query)
            assert status != 404, f"A cannot read its own {spec.path}: {text}"

    before = owned_by(a_tenant, table_items(two_lenders["table"]))
    guard = KeyGuard(forbidden_tenant=a_tenant)
    guard.attach(aws.client("dynamodb"))
    problems = []
    for spec in routes:
        path, body, query, made_up = request_for(spec, ids)
        status, text = send(client, spec, b["api_key"], path, body, query)
        label = f"{spec.method.upper()} {spec.path}"
        if PATH_PARAM.search(spec.path):
            if status != 404 or '"not_found"' not in text:
                problems.append(f"{label}: expected 404 not_found with B's key, got {status} {text[:200]}")
        elif status >= 500 or status in (401, 403):
            problems.append(f"{label}: got {status} with B's key: {text[:200]}")
        sent = json.dumps(body) + json.dumps(query) + path
        leaked = sorted(s for s in two_lenders["secrets"] | set(ids.values()) if s in text and s not in sent)
        if leaked:
            problems.append(f"{label}: B's answer shows A's data {leaked}")
        after = owned_by(a_tenant, table_items(two_lenders["table"]))
        if after != before:
            problems.append(f"{label}: A's items changed")
            before = after
    assert problems == []
    guard.assert_clean()
    assert guard.seen > len(routes)


def test_minimal_bodies_are_valid_for_every_route() -> None:
    """The matrix sends valid bodies, so B's 404s come from ownership checks, not from validation."""
    ids = {"invitation_id": "inv_x"}
    for spec in authenticated_routes():
        for model in (spec.body, spec.query):
            if model is not None:
                model.model_validate(example(model, ids))
