"""The bank-link waterfall on moto's executing Step Functions (in-process), with fake providers.

The state machine is the real infra/waterfall.asl.json; the link-request queue is fed to the app's
handler with ``drain``; partners are fakes that follow PART A's ProviderClient interface, and
webhooks are signed (Finicity with its real HMAC verifier, Plaid and MX with a test signature).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.providers.base import Connection, DataNotReady, Fetched, ProviderError, WebhookRejected
from chalicelib.adapters.providers.finicity import sign_finicity, verify_finicity
from chalicelib.config import LINK_REQUEST_QUEUE, WEBHOOK_QUEUE, partner_secret
from chalicelib.domain.bank_link import CustomerInfo, ErrorClass, LinkSession, ProviderOutcome, failed, linked
from chalicelib.domain.financial import Account, AccountType, FinancialData, Transaction, account_id_for
from chalicelib.domain.providers import Provider, known
from chalicelib.services.bank_links import WaterfallExhausted
from tests.conftest import settle_executions
from tests.integration.feedback_helpers import Receiver
from tests.integration.helpers import Fault, call, cancelled, drain

FINICITY_WEBHOOK_SECRET = partner_secret("finicity", "webhook-secret")

TEST_SECRET = b"test-webhook-secret"
WAIT_S = 15.0


# --- fakes (PART A's interface) ---------------------------------------------------------------------
@dataclass
class FakeProvider:
    """A partner: link sessions (ProviderClient) and, after a link, the customer's data (FinancialDataSource)."""

    provider: Provider
    refuse: ErrorClass | None = None
    sessions: list[tuple[str, CustomerInfo, str]] = field(default_factory=list)
    # The data: ``not_ready`` "come back later" answers first; ``refuse_data`` fails every fetch for good.
    not_ready: int = 0
    refuse_data: bool = False
    refuse_revoke: bool = False
    connects: list[str] = field(default_factory=list)
    fetches: int = 0
    revoked: list[str] = field(default_factory=list)

    def connect(self, credential: str) -> Connection:
        self.connects.append(credential)
        return Connection(self.provider, f"access-{credential}", "item-1")

    def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
        self.fetches += 1
        if self.not_ready > 0:
            self.not_ready -= 1
            raise DataNotReady("not yet", partner_code="PRODUCT_NOT_READY")
        if self.refuse_data:
            raise ProviderError("refused", partner_code="ITEM_LOGIN_REQUIRED")
        data = fixture_data(self.provider, start, end)
        return Fetched(data, [("accounts", {"accounts": [a.provider_account_id for a in data.accounts]})])

    def revoke(self, connection: Connection) -> None:
        if self.refuse_revoke:
            raise ProviderError("down", retryable=True, partner_code="INTERNAL_SERVER_ERROR")
        self.revoked.append(connection.access)

    def create_link_session(
        self, customer: CustomerInfo, *, webhook_url: str, redirect_url: str, reference: str
    ) -> LinkSession:
        if self.refuse is not None:
            raise ProviderError("refused", error_class=self.refuse, partner_code="TEST_REFUSED")
        session_id = f"{self.provider}-{uuid.uuid4().hex[:12]}"
        self.sessions.append((session_id, customer, webhook_url))
        return LinkSession(
            provider=self.provider, session_id=session_id, link_url=f"https://{self.provider}.test/{session_id}"
        )


def fixture_data(provider: Provider, start: date, end: date) -> FinancialData:
    """One checking account ending at 500.00; worked by hand (balances rebuilt backwards from 500.00):
    end-of-day 35.00 before the payroll on end-10, 2,035.00 until the NSF fee on end-5, 2,000.00 until
    rent on end-2, 500.00 after. Lowest 35.00, never negative, one NSF fee, one deposit of 2,000.00."""
    account = Account(
        account_id=account_id_for(provider, "chk-1"),
        provider_account_id="chk-1",
        name="Business Checking",
        mask="6789",
        type=AccountType.CHECKING,
        institution="First Platypus Bank",
        current_balance=Decimal("500.00"),
        available_balance=Decimal("450.00"),
        as_of=end,
    )

    def txn(n: str, days_ago: int, amount: str, description: str, pending: bool = False) -> Transaction:
        return Transaction(
            transaction_id=n,
            account_id=account.account_id,
            date=end - timedelta(days=days_ago),
            amount=Decimal(amount),
            description=description,
            pending=pending,
        )

    return FinancialData(
        provider=provider,
        institution="First Platypus Bank",
        fetched_at=datetime.now(UTC),
        period_start=start,
        period_end=end,
        accounts=[account],
        transactions=[
            txn("t1", 10, "2000.00", "ACME PAYROLL"),
            txn("t2", 5, "-35.00", "NSF FEE"),
            txn("t3", 2, "-1500.00", "=RENT+1"),
            txn("t4", 1, "-10.00", "COFFEE", pending=True),
        ],
    )


def fake_verifier(provider: Provider) -> Callable[[Mapping[str, str], bytes], ProviderOutcome | None]:
    def verify(headers: Mapping[str, str], body: bytes) -> ProviderOutcome | None:
        given = {k.lower(): v for k, v in headers.items()}.get("x-test-signature", "")
        if not hmac.compare_digest(given, hmac.new(TEST_SECRET, body, hashlib.sha256).hexdigest()):
            raise WebhookRejected("bad test signature")
        data = json.loads(body)
        if data.get("error_class"):
            return failed(provider, data["session_id"], data["event_id"], ErrorClass(data["error_class"]))
        return linked(provider, data["session_id"], data["event_id"], credential=data.get("credential"))

    return verify


@dataclass
class World:
    providers: dict[Provider, FakeProvider]
    service: Any


@pytest.fixture
def world(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The service production builds (bootstrap.bank_links), with only the partners faked."""
    monkeypatch.setenv("LINK_STEP_TIMEOUT_SECONDS", "60")
    bootstrap.reset()
    s = bootstrap.services()
    fakes = {p: FakeProvider(p) for p in map(Provider, known())}
    secret = s.secrets.get(FINICITY_WEBHOOK_SECRET)
    service = bootstrap.bank_links()
    service.providers = fakes
    service.financial.sources = fakes
    service.verifiers = {
        Provider("plaid"): fake_verifier(Provider("plaid")),
        Provider("finicity"): lambda h, b: verify_finicity(h, b, secret),
        Provider("mx"): fake_verifier(Provider("mx")),
    }
    original = bootstrap.bank_links
    monkeypatch.setattr(bootstrap, "bank_links", lambda: service)
    yield World(fakes, service)
    # Executions still waiting on a task would keep moto's runner threads busy into the next test.
    sfn = boto3.client("stepfunctions")
    arn = s.settings.state_machine_arn
    settle_executions(sfn)  # moto cannot stop an execution whose worker has not started yet
    for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])
    bootstrap.bank_links = original  # before the aws fixture's teardown calls bootstrap.reset()


# --- helpers ---------------------------------------------------------------------------------------
def invitation(client: Any, key: str, **fields: Any) -> tuple[str, str]:
    """Create an invitation; return (invitation id, portal token)."""
    status, inv = call(
        client, "POST", "/v1/invitations", key, {"email": "jo@smallbiz.com", "owner": "O", "send": False, **fields}
    )
    assert status == 201, inv
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    url = s.invitations.portal_link(tenant, inv["invitation_id"]).url
    return inv["invitation_id"], url.rsplit("/", 1)[-1]


def start(client: Any, token: str) -> dict[str, Any]:
    status, attempt = call(client, "POST", f"/portal/{token}/bank-link", body={})
    assert status == 200, attempt
    return dict(attempt)


def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def bank_links(client: Any, key: str, inv_id: str) -> dict[str, Any]:
    status, body = call(client, "GET", f"/v1/invitations/{inv_id}/bank-links", key)
    assert status == 200, body
    return dict(body)


def open_slot(client: Any, key: str, inv_id: str, provider: str) -> str:
    """Feed the link-request queue until ``provider``'s session is open; return its session id."""

    def opened() -> str | None:
        drain(LINK_REQUEST_QUEUE)
        attempt = bank_links(client, key, inv_id)["attempts"][-1]
        if attempt["current_provider"] == provider and attempt["link_url"]:
            return str(attempt["link_url"].rsplit("/", 1)[-1])
        return None

    return str(wait_until(opened, f"{provider} link session"))


def finished(client: Any, key: str, inv_id: str) -> dict[str, Any]:
    """Wait for the execution to end (feeding the queue), then return the last attempt."""
    sfn = boto3.client("stepfunctions")
    arn = bootstrap.services().settings.state_machine_arn
    attempt = bank_links(client, key, inv_id)["attempts"][-1]
    execution = arn.replace(":stateMachine:", ":execution:") + ":" + attempt["execution_name"]

    def done() -> bool:
        drain(LINK_REQUEST_QUEUE)
        return bool(sfn.describe_execution(executionArn=execution)["status"] != "RUNNING")

    wait_until(done, "the execution to end")
    drain(LINK_REQUEST_QUEUE)
    return dict(bank_links(client, key, inv_id)["attempts"][-1])


def webhook(
    client: Any,
    provider: str,
    session_id: str,
    error: str | None = None,
    event_id: str | None = None,
    signature: str | None = None,
    credential: str | None = None,
) -> tuple[int, Any]:
    event_id = event_id or uuid.uuid4().hex
    if provider == "finicity":
        event_type = {
            None: "done",
            "institution_not_supported": "institutionNotSupported",
            "user_exited": "cancel",
            "provider_error": "unableToConnect",
        }[error]
        body = json.dumps(
            {
                "eventType": event_type,
                "eventId": event_id,
                "customerId": credential or "1",
                "webhookData": {"session_id": session_id},
            }
        ).encode()
        sig = signature or sign_finicity(body, bootstrap.services().secrets.get(FINICITY_WEBHOOK_SECRET))
        headers = {"Content-Type": "application/json", "X-Signature": sig}
    else:
        payload = {"session_id": session_id, "event_id": event_id, "error_class": error, "credential": credential}
        body = json.dumps(payload).encode()
        sig = signature or hmac.new(TEST_SECRET, body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Test-Signature": sig}
    response = client.http.post(f"/webhooks/{provider}", headers=headers, body=body)
    return response.status_code, json.loads(response.body or b"null")


def assert_plaid_failed_then_finicity_linked(client: Any, key: str, inv_id: str) -> None:
    final = finished(client, key, inv_id)
    assert [(d["provider"], d["outcome"], d["reason"]) for d in final["decisions"]] == [
        ("plaid", "failed", "provider_error"),
        ("finicity", "linked", None),
    ]


def decisions(client: Any, key: str, inv_id: str) -> list[dict[str, Any]]:
    status, page = call(client, "GET", f"/v1/invitations/{inv_id}/history", key)
    assert status == 200, page
    return [e["details"] for e in page["items"] if e["type"] == "bank_link_decision"]


def history_types(client: Any, key: str, inv_id: str) -> list[str]:
    _, page = call(client, "GET", f"/v1/invitations/{inv_id}/history", key)
    return [e["type"] for e in page["items"]]


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


# --- tests -----------------------------------------------------------------------------------------
def test_first_provider_links(client: Any, key: str, world: World) -> None:
    inv_id, token = invitation(client, key, first_name="Jo")
    attempt = start(client, token)
    assert attempt["attempt"] == 1
    assert attempt["execution_name"] == f"{inv_id}-1"
    assert attempt["providers"] == ["plaid", "finicity", "mx"]
    session = open_slot(client, key, inv_id, "plaid")
    ((_, customer, webhook_url),) = world.providers[Provider("plaid")].sessions
    assert customer.first_name == "Jo" and customer.invitation_id == inv_id
    assert webhook_url == "http://testserver/webhooks/plaid"

    status, answer = webhook(client, "plaid", session)
    assert (status, answer["outcome"]) == (200, "linked")

    final = finished(client, key, inv_id)
    assert final["state"] == "linked" and final["linked_provider"] == "plaid"
    assert [(d["provider"], d["outcome"], d["reason"]) for d in final["decisions"]] == [("plaid", "linked", None)]
    assert final["decisions"][0]["duration_seconds"] is not None
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert inv["portal_status"] == "bank_linked"
    assert [(d["provider"], d["outcome"]) for d in decisions(client, key, inv_id)] == [("plaid", "linked")]
    assert world.providers[Provider("finicity")].sessions == []


@pytest.mark.parametrize("error", ["institution_not_supported", "user_exited", "provider_error"])
def test_first_fails_and_second_links(client: Any, key: str, world: World, error: str) -> None:
    inv_id, token = invitation(client, key)
    start(client, token)
    plaid = open_slot(client, key, inv_id, "plaid")
    status, answer = webhook(client, "plaid", plaid, error=error)
    assert (status, answer["outcome"]) == (200, "failed")

    finicity = open_slot(client, key, inv_id, "finicity")
    status, answer = webhook(client, "finicity", finicity)
    assert (status, answer["outcome"]) == (200, "linked")

    final = finished(client, key, inv_id)
    assert final["state"] == "linked" and final["linked_provider"] == "finicity"
    got = [(d["provider"], d["outcome"], d["reason"]) for d in final["decisions"]]
    assert got == [("plaid", "failed", error), ("finicity", "linked", None)]
    # Each decision is in the history exactly once, with its reason.
    assert [(d["provider"], d["outcome"], d.get("reason")) for d in decisions(client, key, inv_id)] == got


def test_provider_refusing_a_session_falls_through(client: Any, key: str, world: World) -> None:
    world.providers[Provider("plaid")].refuse = ErrorClass.PROVIDER_ERROR
    inv_id, token = invitation(client, key)
    start(client, token)
    finicity = open_slot(client, key, inv_id, "finicity")
    webhook(client, "finicity", finicity)
    assert_plaid_failed_then_finicity_linked(client, key, inv_id)
    assert len(decisions(client, key, inv_id)) == 2


def test_a_provider_without_its_secrets_is_a_provider_failure_and_the_next_one_is_asked(
    client: Any, key: str, world: World
) -> None:
    from chalicelib.config import ConfigurationError

    class Unconfigured(Mapping[Provider, Any]):
        """The clients as production builds them (lazily) with Plaid's secret still a placeholder."""

        def __getitem__(self, provider: Provider) -> Any:
            if provider == "plaid":
                raise ConfigurationError("secret plaid-secret is still a placeholder")
            return world.providers[provider]

        def __iter__(self) -> Iterator[Provider]:
            return iter(world.providers)

        def __len__(self) -> int:
            return len(world.providers)

    world.service.providers = Unconfigured()
    inv_id, token = invitation(client, key)
    start(client, token)
    finicity = open_slot(client, key, inv_id, "finicity")
    webhook(client, "finicity", finicity)
    assert_plaid_failed_then_finicity_linked(client, key, inv_id)


def test_timeout_moves_on(client: Any, key: str, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough for the next provider to open its session and take its webhook on a loaded machine (each
    # step has this timeout), short enough to keep the test quick.
    monkeypatch.setenv("LINK_STEP_TIMEOUT_SECONDS", "4")
    bootstrap.get_settings.cache_clear()
    world.service.settings = bootstrap.get_settings()
    inv_id, token = invitation(client, key, banking_integration="waterfall")
    start(client, token)
    open_slot(client, key, inv_id, "plaid")
    # Nobody answers: after four seconds Plaid's step times out and Finicity gets its link request.
    finicity = open_slot(client, key, inv_id, "finicity")
    webhook(client, "finicity", finicity)
    final = finished(client, key, inv_id)
    assert [(d["provider"], d["outcome"], d["reason"]) for d in final["decisions"]] == [
        ("plaid", "failed", "timeout"),
        ("finicity", "linked", None),
    ]


def test_every_provider_fails_then_documents_are_offered(client: Any, key: str, world: World) -> None:
    status, _ = call(client, "POST", "/v1/tenant/webhook-secrets", key, {})
    assert status == 201
    with Receiver() as crm:
        status, _ = call(client, "PATCH", "/v1/tenant/settings", key, {"webhook_url": crm.url})
        assert status == 200
        inv_id, token = _exhaust_every_provider(client, key)
        # A redelivered "exhausted" message records nothing new and the lender is told once.
        tenant_id = bootstrap.services().tenants.authenticate(f"Bearer {key}").tenant_id
        again = WaterfallExhausted(type="waterfall_exhausted", tenant_id=tenant_id, invitation_id=inv_id, attempt=1)
        assert world.service.handle_exhausted(again) == "duplicate"
        drain(WEBHOOK_QUEUE)
    # The lender is told, in the API and through its webhook, exactly once.
    status, page = call(client, "GET", "/v1/notifications?type=waterfall_exhausted", key)
    assert status == 200, page
    assert [(n["type"], n["invitation_id"]) for n in page["items"]] == [("waterfall_exhausted", inv_id)]
    assert page["items"][0]["data"]["providers"] == ["plaid", "finicity", "mx"]
    events = [json.loads(r["body"]) for r in crm.requests]
    assert [(e["type"], e["data"]["invitation_id"]) for e in events] == [("invitation.bank_link_exhausted", inv_id)]
    page_html = client.http.get(f"/portal/{token}")
    assert b'data-bank-link="exhausted"' in page_html.body
    # A new click starts attempt 2, a new execution.
    assert start(client, token)["attempt"] == 2


def _exhaust_every_provider(client: Any, key: str) -> tuple[str, str]:
    inv_id, token = invitation(client, key)
    start(client, token)
    for provider, error in (
        ("plaid", "institution_not_supported"),
        ("finicity", "user_exited"),
        ("mx", "provider_error"),
    ):
        session = open_slot(client, key, inv_id, provider)
        assert webhook(client, provider, session, error=error)[0] == 200
    final = finished(client, key, inv_id)
    assert final["state"] == "exhausted"
    assert [(d["provider"], d["reason"]) for d in final["decisions"]] == [
        ("plaid", "institution_not_supported"),
        ("finicity", "user_exited"),
        ("mx", "provider_error"),
    ]
    types = history_types(client, key, inv_id)
    assert types.count("bank_link_decision") == 3
    assert types.count("bank_link_exhausted") == 1
    return inv_id, token


def test_chosen_provider_only(client: Any, key: str, world: World) -> None:
    inv_id, token = invitation(client, key, banking_integration="mx")
    assert start(client, token)["providers"] == ["mx"]
    session = open_slot(client, key, inv_id, "mx")
    webhook(client, "mx", session, error="user_exited")
    final = finished(client, key, inv_id)
    assert final["state"] == "exhausted"
    assert [(d["provider"], d["reason"]) for d in final["decisions"]] == [("mx", "user_exited")]


def test_second_click_returns_the_running_attempt(client: Any, key: str, world: World) -> None:
    inv_id, token = invitation(client, key)
    first = start(client, token)
    second = start(client, token)
    assert (first["attempt"], second["attempt"]) == (1, 1)
    assert len(bank_links(client, key, inv_id)["attempts"]) == 1
    # Starting the same execution name again returns the same execution (no second run).
    execution = world.service.workflow.start(f"{inv_id}-1", {"anything": 1})
    assert execution.already_started


def test_duplicate_and_late_webhooks_change_state_once(client: Any, key: str, world: World) -> None:
    inv_id, token = invitation(client, key)
    start(client, token)
    plaid = open_slot(client, key, inv_id, "plaid")
    assert webhook(client, "plaid", plaid, error="user_exited", event_id="evt-1")[1]["outcome"] == "failed"
    # The same delivery again, and another (contradicting) event for the closed session.
    assert webhook(client, "plaid", plaid, error="user_exited", event_id="evt-1") == (
        200,
        {"received": True, "outcome": "duplicate"},
    )
    assert webhook(client, "plaid", plaid, event_id="evt-2")[1]["outcome"] in ("duplicate", "late")

    finicity = open_slot(client, key, inv_id, "finicity")
    webhook(client, "finicity", finicity, event_id="fin-1")
    final = finished(client, key, inv_id)
    # After the execution ended: a late event changes nothing.
    assert webhook(client, "finicity", finicity, error="user_exited", event_id="fin-2")[0] == 200
    assert webhook(client, "finicity", finicity, event_id="fin-1")[0] == 200
    again = bank_links(client, key, inv_id)["attempts"][-1]
    assert again == final
    assert [(d["provider"], d["outcome"]) for d in decisions(client, key, inv_id)] == [
        ("plaid", "failed"),
        ("finicity", "linked"),
    ]


def test_unknown_session_is_acknowledged(client: Any, world: World) -> None:
    assert webhook(client, "plaid", "plaid-nobody") == (200, {"received": True, "outcome": "unknown_session"})


def test_bad_signature_is_401_and_changes_nothing(client: Any, key: str, world: World) -> None:
    inv_id, token = invitation(client, key)
    start(client, token)
    plaid = open_slot(client, key, inv_id, "plaid")
    status, body = webhook(client, "plaid", plaid, signature="0" * 64)
    assert status == 401 and body["error"]["code"] == "webhook_rejected"
    status, _ = webhook(client, "finicity", "finicity-x", signature="f" * 64)
    assert status == 401
    attempt = bank_links(client, key, inv_id)["attempts"][-1]
    assert attempt["state"] == "running" and attempt["decisions"][0]["outcome"] == "pending"
    assert decisions(client, key, inv_id) == []


def test_a_webhook_acts_only_on_its_own_providers_sessions(client: Any, key: str, world: World) -> None:
    """A provider module whose verifier answers for another provider (say, copied from it) must not let webhooks
    authenticated with its secret close that provider's sessions: the outcome must name the route's provider."""
    world.service.verifiers[Provider("mx")] = fake_verifier(Provider("plaid"))
    inv_id, token = invitation(client, key)
    start(client, token)
    plaid = open_slot(client, key, inv_id, "plaid")
    status, body = webhook(client, "mx", plaid)
    assert status == 401 and body["error"]["code"] == "webhook_rejected", body
    attempt = bank_links(client, key, inv_id)["attempts"][-1]
    assert attempt["state"] == "running" and attempt["decisions"][0]["outcome"] == "pending"


def test_bank_links_are_tenant_scoped(client: Any, key: str, world: World) -> None:
    inv_id, _ = invitation(client, key)
    status, other = call(
        client,
        "POST",
        "/v1/tenants",
        body={"name": "Other Lending", "subdomain": "other", "admin_email": "ops@other.com"},
    )
    assert status == 201
    status, _ = call(client, "GET", f"/v1/invitations/{inv_id}/bank-links", other["api_key"])
    assert status == 404
    status, _ = call(client, "GET", f"/v1/invitations/{inv_id}/documents", other["api_key"])
    assert status == 404
    status, _ = call(client, "GET", f"/v1/invitations/{inv_id}/bank-links")
    assert status == 401


# --- a cancelled transaction is a duplicate only when a condition failed (issue 11, item 5) ---------
def test_transaction_conflict_on_a_webhook_is_retried_not_taken_for_a_duplicate(
    client: Any, key: str, world: World
) -> None:
    inv_id, token = invitation(client, key)
    start(client, token)
    plaid = open_slot(client, key, inv_id, "plaid")
    dynamodb = bootstrap.services().table.client
    with Fault(dynamodb, "TransactWriteItems", "TransactionCanceledException", 1, **cancelled("TransactionConflict")):
        status, answer = webhook(client, "plaid", plaid)
    assert (status, answer["outcome"]) == (200, "linked")
    final = finished(client, key, inv_id)
    assert (final["state"], final["linked_provider"]) == ("linked", "plaid")


def test_throttled_webhook_is_5xx_so_the_partner_retries_and_the_retry_links(
    client: Any, key: str, world: World
) -> None:
    inv_id, token = invitation(client, key)
    start(client, token)
    plaid = open_slot(client, key, inv_id, "plaid")
    dynamodb = bootstrap.services().table.client
    reasons = cancelled("ThrottlingError", "None", "None", "None")
    with Fault(dynamodb, "TransactWriteItems", "TransactionCanceledException", 100, **reasons) as fault:
        status, answer = webhook(client, "plaid", plaid, event_id="evt-throttled")
    assert fault.calls > 1  # retried before giving up
    assert status == 503 and answer["error"]["code"] == "upstream_error"
    # Plaid retries the same event: the decision is recorded, not lost as a "duplicate".
    finished(client, key, inv_id)
    status, answer = webhook(client, "plaid", plaid, event_id="evt-throttled")
    assert (status, answer["outcome"]) == (200, "linked")
    final = bank_links(client, key, inv_id)["attempts"][-1]
    assert (final["state"], final["linked_provider"]) == ("linked", "plaid")
    assert [(d["provider"], d["outcome"]) for d in decisions(client, key, inv_id)] == [("plaid", "linked")]


def test_a_conflicting_open_slot_is_retried_not_dropped(client: Any, key: str, world: World) -> None:
    inv_id, token = invitation(client, key)
    start(client, token)
    dynamodb = bootstrap.services().table.client
    # More failures than one message's retries: the link request fails and SQS delivers it again.
    with Fault(dynamodb, "TransactWriteItems", "TransactionCanceledException", 6, **cancelled("TransactionConflict")):
        session = open_slot(client, key, inv_id, "plaid")
    assert webhook(client, "plaid", session)[1]["outcome"] == "linked"


# --- infrastructure errors and transient provider errors (issue 14 item 6) ----------------------------
def test_a_provider_down_for_a_moment_is_asked_again_not_skipped(client: Any, key: str, world: World) -> None:
    plaid = world.providers[Provider("plaid")]
    calls: list[str] = []
    original = plaid.create_link_session

    def flaky(customer: CustomerInfo, **kwargs: Any) -> LinkSession:
        calls.append(customer.invitation_id)
        if len(calls) == 1:
            raise ProviderError("partner 503", retryable=True, partner_code="INTERNAL_SERVER_ERROR")
        return original(customer, **kwargs)

    plaid.create_link_session = flaky  # type: ignore[method-assign]
    inv_id, token = invitation(client, key)
    start(client, token)
    session = open_slot(client, key, inv_id, "plaid")  # the state machine's Retry asked Plaid again
    assert len(calls) == 2
    assert webhook(client, "plaid", session)[1]["outcome"] == "linked"
    final = finished(client, key, inv_id)
    assert [(d["provider"], d["outcome"]) for d in final["decisions"]] == [("plaid", "linked")]
    assert world.providers[Provider("finicity")].sessions == []


def test_an_infrastructure_error_fails_the_attempt_visibly_and_a_new_click_starts_again(
    client: Any, key: str, world: World
) -> None:
    from tests.unit.test_waterfall_asl import sqs_refusing

    inv_id, token = invitation(client, key)
    with sqs_refusing("KmsAccessDenied", times=100):
        start(client, token)
        final = finished(client, key, inv_id)
    # Not a provider's failure: no decision recorded, the attempt failed, the history says why.
    assert final["state"] == "failed" and final["decisions"] == []
    _, page = call(client, "GET", f"/v1/invitations/{inv_id}/history", key)
    failed = [e["details"] for e in page["items"] if e["type"] == "bank_link_failed"]
    assert failed == [{"attempt": 1, "error": "SQS.SdkClientException", "next": "retry"}]
    sfn = boto3.client("stepfunctions")
    execution = bootstrap.services().settings.state_machine_arn.replace(":stateMachine:", ":execution:")
    assert sfn.describe_execution(executionArn=f"{execution}:{inv_id}-1")["status"] == "FAILED"
    # The customer is not stuck on "preparing": the portal offers to start again, and that works.
    assert b'data-bank-link="preparing"' not in client.http.get(f"/portal/{token}").body
    assert start(client, token)["attempt"] == 2
    open_slot(client, key, inv_id, "plaid")


def test_an_execution_that_ended_unannounced_is_closed_on_the_next_click(client: Any, key: str, world: World) -> None:
    from tests.unit.test_waterfall_asl import sqs_refusing

    inv_id, token = invitation(client, key)
    # The queue refuses everything (a disabled KMS key): the execution fails and even its Broken message is lost.
    with sqs_refusing("KmsDisabled", times=100, only=("link_request", "waterfall_failed")):
        start(client, token)
        sfn = boto3.client("stepfunctions")
        execution = bootstrap.services().settings.state_machine_arn.replace(":stateMachine:", ":execution:")
        status = lambda: sfn.describe_execution(executionArn=f"{execution}:{inv_id}-1")["status"]  # noqa: E731
        wait_until(lambda: status() != "RUNNING", "the execution to end")
    assert status() == "FAILED"
    assert bank_links(client, key, inv_id)["attempts"][-1]["state"] == "running"  # nobody told the worker
    # The customer's next click finds the failed execution, closes the attempt and starts a new one.
    again = start(client, token)
    assert again["attempt"] == 2
    assert [a["state"] for a in bank_links(client, key, inv_id)["attempts"]] == ["failed", "running"]
    _, page = call(client, "GET", f"/v1/invitations/{inv_id}/history", key)
    failed = [e["details"] for e in page["items"] if e["type"] == "bank_link_failed"]
    assert failed == [{"attempt": 1, "error": "execution failed", "next": "retry"}]
    open_slot(client, key, inv_id, "plaid")
