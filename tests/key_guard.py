"""Tenant-first keys, checked at runtime: a botocore hook inspects every DynamoDB request.

Every partition key a request names must start with ``TENANT#<id>`` unless it is one of the
global lookups that docs/data-model.md lists (the allow-list is read from that document, so a new
global item type has to be documented before it can be used). Used by the ``aws`` fixture for the
whole integration suite and by the isolation tests (which also forbid one tenant's partition).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-model.md"
TENANT_PK = re.compile(r"^TENANT#[^#]+")


@cache
def allowed_globals() -> tuple[str, ...]:
    """Global partition-key prefixes (``APIKEY#``) and exact keys (``IDEMPOTENCY``) from the data model."""
    text = DOC.read_text()
    tokens: set[str] = set()
    bullet = re.search(r"\*\*Global items.*?(?=\n- \*\*|\n\n)", text, re.S)
    if bullet:
        tokens.update(re.findall(r"`([^`]+)`", bullet.group(0), re.S))
    for row in re.findall(r"^\|[^|\n]*\|\s*`([^`]+)`\s*\|", text, re.M):  # items table: PK column
        tokens.add(row)
    prefixes = set()
    for token in tokens:
        token = token.strip()
        if not token or token.startswith("TENANT#") or not re.match(r"^[A-Z][A-Z_]*(#|$)", token):
            continue
        prefixes.add(token.split("#", 1)[0] + "#" if "#" in token else token)
    return tuple(sorted(prefixes))


def is_allowed(pk: str) -> bool:
    if TENANT_PK.match(pk):
        return True
    return any(pk.startswith(p) if p.endswith("#") else pk == p for p in allowed_globals())


def _pk_of(item_or_key: dict[str, Any] | None) -> list[str]:
    if not item_or_key:
        return []
    found = []
    for name, value in item_or_key.items():
        # PK, and the GSI partition keys an item writes (GSI1PK ...).
        if (name == "PK" or re.fullmatch(r"GSI\d+PK", name)) and isinstance(value, dict) and "S" in value:
            found.append(value["S"])
    return found


def partition_keys(operation: str, params: dict[str, Any]) -> list[str]:
    """Every partition key value a DynamoDB request names (low-level, typed-attribute form)."""
    keys: list[str] = []
    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        keys += _pk_of(params.get("Key"))
    if operation == "PutItem":
        keys += _pk_of(params.get("Item"))
    if operation == "UpdateItem":
        # A SET of GSInPK moves the item into an index partition: check those values too.
        values = params.get("ExpressionAttributeValues") or {}
        names = params.get("ExpressionAttributeNames") or {}
        for target, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", params.get("UpdateExpression", "")):
            attribute = names.get(target, target)
            if re.fullmatch(r"GSI\d+PK", attribute) and "S" in values.get(placeholder, {}):
                keys.append(values[placeholder]["S"])
    if operation == "Query":
        names = params.get("ExpressionAttributeNames") or {}
        values = params.get("ExpressionAttributeValues") or {}
        for target, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
            attribute = names.get(target, target)
            if attribute == "PK" or re.fullmatch(r"GSI\d+PK", attribute):
                keys.append(values.get(placeholder, {}).get("S", ""))
    if operation == "TransactWriteItems":
        for action in params.get("TransactItems", []):
            for kind, body in action.items():
                if kind == "Update":
                    keys += partition_keys("UpdateItem", body)
                else:
                    keys += _pk_of(body.get("Item") if kind == "Put" else body.get("Key"))
    if operation == "BatchGetItem":
        for request in (params.get("RequestItems") or {}).values():
            for key in request.get("Keys", []):
                keys += _pk_of(key)
    if operation == "BatchWriteItem":
        for requests in (params.get("RequestItems") or {}).values():
            for request in requests:
                keys += _pk_of(request.get("PutRequest", {}).get("Item"))
                keys += _pk_of(request.get("DeleteRequest", {}).get("Key"))
    if operation == "Scan":
        keys.append("<Scan>")  # never allowed: listings are queries on a tenant partition
    return keys


@dataclass
class KeyGuard:
    """Records every DynamoDB partition key that breaks the rules (or names a forbidden tenant)."""

    forbidden_tenant: str | None = None
    violations: list[str] = field(default_factory=list)
    seen: int = 0

    def check(self, operation: str, params: dict[str, Any]) -> None:
        for pk in partition_keys(operation, params):
            self.seen += 1
            if not is_allowed(pk):
                self.violations.append(f"{operation}: partition key {pk!r} is neither TENANT#<id> nor allow-listed")
            if self.forbidden_tenant and pk.startswith(f"TENANT#{self.forbidden_tenant}"):
                self.violations.append(f"{operation}: touched the other tenant's partition {pk!r}")

    def on_call(self, model: Any = None, params: dict[str, Any] | None = None, **_: Any) -> None:
        if model is not None and model.service_model.service_name == "dynamodb":
            self.check(model.name, params or {})

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.dynamodb", self.on_call)
        return client

    def assert_clean(self) -> None:
        assert not self.violations, "DynamoDB keys built without the tenant:\n" + "\n".join(
            dict.fromkeys(self.violations)
        )


def install(monkeypatch: Any, guard: KeyGuard | None = None) -> KeyGuard:
    """Attach ``guard`` to every client the app creates from now on (``chalicelib.adapters.aws.client``)."""
    from chalicelib.adapters import aws

    guard = guard or KeyGuard()
    original = aws.client
    attached: set[int] = set()

    def guarded(service: str) -> Any:
        client = original(service)
        if service == "dynamodb" and id(client) not in attached:
            attached.add(id(client))
            guard.attach(client)
        return client

    monkeypatch.setattr(aws, "client", guarded)
    return guard
