"""No DynamoDB key is built without the tenant: a static scan of the adapters, the documented
allow-list of global items, and the runtime checker the integration suite runs on every request."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chalicelib.adapters.dynamo import keys
from tests.key_guard import KeyGuard, allowed_globals, is_allowed, partition_keys

ROOT = Path(__file__).resolve().parents[2]
DYNAMO = ROOT / "chalicelib" / "adapters" / "dynamo"
KEYS = DYNAMO / "keys.py"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _literal_text(node: ast.AST) -> str | None:
    """The text of a string literal or f-string (placeholders as ``{}``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_text(node.left), _literal_text(node.right)
        if left is not None or right is not None:
            return (left or "{}") + (right or "{}")
    return None


def key_violations(source: str, filename: str) -> list[str]:
    """Keys built by hand in an adapter: a TENANT# literal, a literal partition key, a literal query partition."""
    tree = ast.parse(source, filename)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        text = _literal_text(node)
        if text is not None and "TENANT#" in text and isinstance(node, ast.Constant | ast.JoinedStr):
            found.append(f"{filename}:{node.lineno}: builds a TENANT# key by hand; use keys.py")
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and (k.value == "PK" or re.fullmatch(r"GSI\d+PK", str(k.value))):
                    literal = _literal_text(v)
                    if literal is not None and not is_allowed(literal.replace("{}", "x")):
                        found.append(f"{filename}:{v.lineno}: partition key {literal!r} built by hand; use keys.py")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "query"
            and node.args
        ):
            literal = _literal_text(node.args[0])
            if literal is not None and not is_allowed(literal.replace("{}", "x")):
                found.append(f"{filename}:{node.lineno}: query on partition {literal!r}; use keys.py")
    return list(dict.fromkeys(found))  # an f-string's own parts are walked too


def adapter_files() -> list[Path]:
    return sorted(p for p in DYNAMO.glob("*.py") if p != KEYS)


@pytest.mark.parametrize("path", adapter_files(), ids=lambda p: p.name)
def test_adapters_build_every_key_through_keys_py(path: Path) -> None:
    assert key_violations(path.read_text(), path.name) == []


def test_nothing_outside_keys_py_spells_a_tenant_partition() -> None:
    offenders = []
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        if path != KEYS:
            offenders += [v for v in key_violations(path.read_text(), str(path.relative_to(ROOT))) if "TENANT#" in v]
    assert offenders == []


def test_the_scan_catches_hand_built_keys() -> None:
    bad = """
def get(table, tid, iid):
    table.get({"PK": f"TENANT#{tid}", "SK": f"INV#{iid}"})
    table.get({"PK": f"INV#{iid}", "SK": "X"})
    table.query(f"CUSTOMER#{iid}")
"""
    assert len(key_violations(bad, "bad.py")) == 3
    good = '''
def get(table, tid, iid, item):
    """Docstrings may mention TENANT#t#INV#i."""
    table.get(keys.invitation(tid, iid))
    table.delete({"PK": item["PK"], "SK": item["SK"]})
    table.query("OUTBOX#queued", index="GSI1")
'''
    assert key_violations(good, "good.py") == []


def global_prefixes_in_keys_py() -> set[str]:
    """Partition keys keys.py builds without ``tenant_pk``: ``{"PK": f"APIKEY#{...}"}`` -> ``APIKEY#``."""
    prefixes = set()
    for node in ast.walk(ast.parse(KEYS.read_text())):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "PK":
                    literal = _literal_text(v)
                    if literal and not literal.startswith("{}"):
                        prefixes.add(literal.split("#", 1)[0] + "#")
    return prefixes


def test_every_global_item_in_keys_py_is_on_the_documented_allow_list() -> None:
    documented = set(allowed_globals())
    assert {"APIKEY#", "TOKEN#", "SUBDOMAIN#", "IDEMPOTENCY"} <= documented
    missing = sorted(p for p in global_prefixes_in_keys_py() if p not in documented)
    assert missing == [], f"document these global items in docs/data-model.md (the allow-list): {missing}"


def test_tenant_keys_need_a_tenant() -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        keys.invitation("", "inv_1")
    assert keys.invitation("t1", "inv_1")["PK"] == "TENANT#t1"


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("GetItem", {"Key": {"PK": {"S": "TENANT#t1"}, "SK": {"S": "INV#i"}}}, ["TENANT#t1"]),
        (
            "PutItem",
            {"Item": {"PK": {"S": "APIKEY#h"}, "GSI1PK": {"S": "TENANT#t#STATUS#x"}}},
            ["APIKEY#h", "TENANT#t#STATUS#x"],
        ),
        (
            "Query",
            {
                "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :sk)",
                "ExpressionAttributeNames": {"#pk": "GSI2PK", "#sk": "GSI2SK"},
                "ExpressionAttributeValues": {":pk": {"S": "TENANT#t#OWNER#o"}, ":sk": {"S": "x"}},
            },
            ["TENANT#t#OWNER#o"],
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"Item": {"PK": {"S": "TENANT#a"}}}},
                    {"Delete": {"Key": {"PK": {"S": "TOKEN#h"}}}},
                    {
                        "Update": {
                            "Key": {"PK": {"S": "TENANT#a#INV#i"}},
                            "UpdateExpression": "SET #u0 = :u0",
                            "ExpressionAttributeNames": {"#u0": "GSI1PK"},
                            "ExpressionAttributeValues": {":u0": {"S": "OUTBOX#queued"}},
                        }
                    },
                ]
            },
            ["TENANT#a", "TOKEN#h", "TENANT#a#INV#i", "OUTBOX#queued"],
        ),
        ("BatchGetItem", {"RequestItems": {"t": {"Keys": [{"PK": {"S": "TENANT#a"}}]}}}, ["TENANT#a"]),
        ("Scan", {}, ["<Scan>"]),
    ],
)
def test_partition_keys_are_read_from_every_operation(operation: str, params: dict, expected: list[str]) -> None:
    assert partition_keys(operation, params) == expected


def test_the_runtime_guard_flags_keys_without_the_tenant_and_the_forbidden_tenant() -> None:
    guard = KeyGuard(forbidden_tenant="ten_a")
    guard.check("GetItem", {"Key": {"PK": {"S": "TENANT#ten_b"}, "SK": {"S": "INV#1"}}})
    guard.check("GetItem", {"Key": {"PK": {"S": "APIKEY#abc"}, "SK": {"S": "APIKEY"}}})
    guard.check("PutItem", {"Item": {"PK": {"S": "IDEMPOTENCY"}, "SK": {"S": "fn#h"}}})
    guard.assert_clean()

    guard.check("GetItem", {"Key": {"PK": {"S": "INV#1"}, "SK": {"S": "INV#1"}}})
    guard.check("Query", {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "TENANT#"}}})
    guard.check("GetItem", {"Key": {"PK": {"S": "TENANT#ten_a#INV#1"}, "SK": {"S": "X"}}})
    guard.check("Scan", {})
    assert len(guard.violations) == 4
    with pytest.raises(AssertionError, match="without the tenant"):
        guard.assert_clean()
