"""A bank-link provider is a plug-in: one module (tests/integration/akoya_provider.py) and one registry entry
(the ``akoya`` fixture) make a fourth provider work everywhere, through the wiring production uses
(bootstrap builds its adapter from the registry): the API's validation and OpenAPI document, the waterfall on
moto's executing Step Functions (alone and after another provider), its webhook route, the data step, and
the console's and portal's pages. The last test checks that no other code names a provider."""

from __future__ import annotations

import ast
import html
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.domain import csv_rows
from chalicelib.domain.bank_link import ErrorClass
from chalicelib.domain.providers import PROVIDERS, Provider, ProviderInfo
from tests.conftest import settle_executions
from tests.integration import akoya_provider
from tests.integration.console_helpers import sign_up
from tests.integration.helpers import call
from tests.integration.test_waterfall import FakeProvider, finished, invitation, open_slot, start

ROOT = Path(__file__).resolve().parents[2]


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry entry: the only line a real fourth provider adds besides its module."""
    monkeypatch.setitem(
        PROVIDERS,
        "akoya",
        ProviderInfo(
            key="akoya",
            name="Akoya Data Access Network",
            short_name="Akoya",
            adapter="tests.integration.akoya_provider",
            webhook_summary="Akoya webhook (HMAC-SHA256)",
        ),
    )


@pytest.fixture
def akoya(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    register(monkeypatch)
    bootstrap.reset()
    akoya_provider.SESSIONS.clear()
    yield
    sfn = boto3.client("stepfunctions")
    settle_executions(sfn)
    arn = bootstrap.services().settings.state_machine_arn
    for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])
    bootstrap.reset()  # before the registry entry goes: no cached adapter outlives it


def akoya_webhook(client: Any, session_id: str, status: str, signature: str | None = None) -> tuple[int, Any]:
    body = json.dumps(
        {"session_id": session_id, "event_id": uuid.uuid4().hex, "status": status, "credential": "ak-cred-1"}
    ).encode()
    headers = {"Content-Type": "application/json", "X-Akoya-Signature": signature or akoya_provider.sign(body)}
    response = client.http.post("/webhooks/akoya", headers=headers, body=body)
    return response.status_code, json.loads(response.body or b"null")


def test_the_api_validates_and_documents_the_new_provider(client: Any, akoya: None, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    doc = json.loads(client.http.get("/openapi.json").body)
    webhook = doc["paths"]["/webhooks/akoya"]["post"]
    assert (webhook["operationId"], webhook["summary"]) == ("akoya_webhook", "Akoya webhook (HMAC-SHA256)")
    assert "/webhooks/plaid" in doc["paths"] and "/webhooks/{provider}" not in doc["paths"]
    schemas = doc["components"]["schemas"]
    assert schemas["Provider"]["enum"] == ["plaid", "finicity", "mx", "akoya"]
    assert schemas["BankingIntegration"]["enum"] == ["waterfall", "plaid", "finicity", "mx", "akoya"]
    assert schemas["TenantSettings"]["properties"]["provider_order"]["maxItems"] == 4

    status, settings = call(client, "PATCH", "/v1/tenant/settings", key, {"provider_order": ["akoya", "plaid"]})
    assert (status, settings["provider_order"]) == (200, ["akoya", "plaid"])
    status, refused = call(client, "PATCH", "/v1/tenant/settings", key, {"provider_order": ["yodlee"]})
    assert status == 400
    assert refused["error"]["fields"] == {"provider_order.0": "Input should be 'plaid', 'finicity', 'mx' or 'akoya'"}

    status, inv = call(
        client,
        "POST",
        "/v1/invitations",
        key,
        {"email": "a@smallbiz.com", "owner": "O", "send": False, "banking_integration": "akoya"},
    )
    assert (status, inv.get("banking_integration")) == (201, "akoya"), inv


def test_a_csv_row_may_choose_the_new_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    columns = list(csv_rows.COLUMNS)
    row = dict.fromkeys(columns, "") | {"email": "a@smallbiz.com", "owner": "O", "banking_integration": "Akoya"}
    ok = csv_rows.validate_row(columns, 2, [row[c] for c in columns])
    assert ok.fields is not None and ok.fields.banking_integration == "akoya"
    refused = csv_rows.validate_row(columns, 3, [(row | {"banking_integration": "yodlee"})[c] for c in columns])
    expected = "Input should be 'waterfall', 'plaid', 'finicity', 'mx' or 'akoya'"
    assert refused.errors == {"banking_integration": expected}


def test_the_new_provider_alone_links_through_its_webhook_and_gives_its_data(client: Any, akoya: None) -> None:
    admin, lender = sign_up(client)
    key = lender["api_key"]
    inv_id, token = invitation(client, key, banking_integration="akoya")
    assert start(client, token)["providers"] == ["akoya"]
    session = open_slot(client, key, inv_id, "akoya")
    ((opened, customer, webhook_url),) = akoya_provider.SESSIONS
    assert (opened, customer.invitation_id, webhook_url) == (session, inv_id, "http://testserver/webhooks/akoya")

    # The customer reads the provider's own name on the portal while its link is open.
    portal = html.unescape(client.http.get(f"/portal/{token}").body.decode())
    assert "Continue with Akoya Data Access Network" in portal

    assert akoya_webhook(client, session, "linked", signature="0" * 64)[0] == 401
    status, answer = akoya_webhook(client, session, "linked")
    assert (status, answer["outcome"]) == (200, "linked")
    final = finished(client, key, inv_id)
    assert (final["state"], final["linked_provider"]) == ("linked", "akoya")
    assert akoya_webhook(client, session, "linked")[1]["outcome"] == "duplicate"

    status, data = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data", key)
    assert (status, data["status"], data["provider"]) == (200, "ready", "akoya")

    detail = html.unescape(admin.get(f"/console/invitations/{inv_id}").text)
    assert "(Akoya)" in detail and "Akoya: linked" in detail
    assert "First Platypus Bank through Akoya" in detail


def test_the_waterfall_moves_on_to_the_new_provider(client: Any, akoya: None, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    call(client, "PATCH", "/v1/tenant/settings", key, {"provider_order": ["plaid", "akoya"]})
    service = bootstrap.bank_links()
    # Plaid (the real adapter would call its sandbox) refuses: only the partner is faked, akoya is as built.
    refusing = FakeProvider(Provider("plaid"), refuse=ErrorClass.INSTITUTION_NOT_SUPPORTED)
    service.providers = {**service.providers, Provider("plaid"): refusing}

    inv_id, token = invitation(client, key)
    assert start(client, token)["providers"] == ["plaid", "akoya"]
    session = open_slot(client, key, inv_id, "akoya")
    status, answer = akoya_webhook(client, session, "exited")
    assert (status, answer["outcome"]) == (200, "failed")

    final = finished(client, key, inv_id)
    assert final["state"] == "exhausted"
    assert [(d["provider"], d["outcome"], d["reason"]) for d in final["decisions"]] == [
        ("plaid", "failed", "institution_not_supported"),
        ("akoya", "failed", "user_exited"),
    ]


def test_the_console_offers_the_new_provider(client: Any, akoya: None) -> None:
    admin, _ = sign_up(client)
    form = html.unescape(admin.get("/console/invitations/new").text)
    assert '<option value="akoya"' in form and "Akoya only" in form
    assert "tries Plaid, then Finicity, then MX, then Akoya, until" in form

    settings = html.unescape(admin.get("/console/settings").text)
    assert 'name="provider_4"' in settings and "Fourth" in settings
    assert re.search(r'<option value="akoya"[^>]*>Akoya</option>', settings)
    saved = admin.submit(
        "/console/settings",
        None,
        {
            "require_invitation": "yes",
            "require_email_confirmation": "yes",
            "default_banking_integration": "akoya",
            "invitation_ttl_days": "14",
            "locale": "en",
            "provider_1": "akoya",
            "provider_2": "mx",
            "branding_colour": "#1f4e79",
        },
    )
    assert saved.status == 303, saved.text[:1000]
    shown = html.unescape(admin.get("/console/invitations/new").text)
    assert "tries Akoya, then MX, until" in shown


# --- nothing else names a provider -----------------------------------------------------------------------
# Where provider names may still appear as code (string literals), and why. Docstrings and comments may
# mention partners; a literal naming one (its key, a setting or secret named after it, its webhook path) is a
# list that a new provider would have to be added to.
ALLOWED = {
    "chalicelib/domain/providers.py": "the registry",
    "devstack/sandbox.py": "the local stand-in for each partner's API (a provider without one fails locally)",
    "devstack/sandbox_data.py": "the stand-in's data in each partner's shape",
}
SCANNED = ("app.py", "chalicelib", "infra", "devstack")


def _literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_code_outside_a_provider_module_and_the_registry_names_a_provider() -> None:
    keys = "|".join(("plaid", "finicity", "mx"))
    named = re.compile(rf"^(?:{keys})$|^(?:{keys})[-_]|/webhooks/(?:{keys})\b", re.IGNORECASE)
    found = {}
    sources = [ROOT / "app.py"] + [p for root in SCANNED[1:] for p in sorted((ROOT / root).rglob("*.py"))]
    for path in sources:
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("chalicelib/adapters/providers/") or relative in ALLOWED:
            continue
        hits = [text for text in _literals(path) if named.search(text)]
        if hits:
            found[relative] = hits
    templates = ROOT / "chalicelib" / "templates"
    for path in sorted(templates.rglob("*.html")):
        if re.search(rf"\b(?:{keys})\b", path.read_text(), re.IGNORECASE):
            found[path.relative_to(ROOT).as_posix()] = ["(template)"]
    asl = (ROOT / "infra" / "waterfall.asl.json").read_text()
    in_asl = [key for key in keys.split("|") if f'"{key}"' in asl]
    if in_asl:
        found["infra/waterfall.asl.json"] = in_asl
    assert found == {}
