"""Each provider's data fetcher against the local sandbox, over loopback: link, connect, fetch, normalise,
summarise, revoke. The figures are the ones worked out by hand in devstack/sandbox_data.py."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from chalicelib.adapters.providers import ProviderError
from chalicelib.adapters.providers.base import DataNotReady, FinancialDataSource, RateLimited
from chalicelib.adapters.providers.finicity import FinicityClient
from chalicelib.adapters.providers.http import JsonHttp
from chalicelib.adapters.providers.mx import MxClient
from chalicelib.adapters.providers.plaid import PlaidClient
from chalicelib.domain.financial import AccountType, summarise
from chalicelib.domain.providers import Provider
from devstack.sandbox import ProviderSandbox
from tests.unit.test_sandbox import CREDS, Receiver, clients, complete, receiver, sandbox, start  # noqa: F401

TODAY = date.today()
START = TODAY - timedelta(days=89)


@pytest.fixture(scope="module")
def small_pages(sandbox: ProviderSandbox) -> dict[Provider, FinancialDataSource]:  # noqa: F811
    """Clients whose pages are small, so that a 90-day fetch takes several pages at every provider."""

    def http(name: str) -> JsonHttp:
        return JsonHttp(name, sandbox.url, backoff_s=0)

    return {
        Provider("plaid"): PlaidClient(
            sandbox.url, CREDS.plaid_client_id, CREDS.plaid_secret, http=http("plaid"), page_size=50
        ),
        Provider("finicity"): FinicityClient(
            sandbox.url,
            CREDS.finicity_app_key,
            CREDS.finicity_partner_id,
            CREDS.finicity_partner_secret,
            http=http("finicity"),
            page_size=60,
        ),
        Provider("mx"): MxClient(sandbox.url, CREDS.mx_client_id, CREDS.mx_api_key, http=http("mx"), page_size=70),
    }


def link(sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver, provider: Provider) -> str:  # noqa: F811
    """Open a session, let the customer link, and return the credential the verified webhook carried."""
    session = start(clients, receiver, provider)
    receiver.take()
    assert complete(sandbox, session.session_id, "success").status_code == 200
    outcomes = [r.outcome for r in receiver.take() if r.outcome is not None and r.outcome.linked]
    assert len(outcomes) == 1
    assert outcomes[0].credential
    return outcomes[0].credential


@pytest.mark.parametrize(
    ("provider", "pages"),
    [(Provider("plaid"), 1 + 5), (Provider("finicity"), 2 + 4), (Provider("mx"), 2 + 1 + 4)],
)
def test_sandbox_data_normalises_and_summarises_to_the_hand_figures(
    sandbox: ProviderSandbox,  # noqa: F811
    clients: dict[Provider, Any],  # noqa: F811
    receiver: Receiver,  # noqa: F811
    small_pages: dict[Provider, FinancialDataSource],
    provider: Provider,
    pages: int,
) -> None:
    source = small_pages[provider]
    connection = source.connect(link(sandbox, clients, receiver, provider))
    fetched = source.fetch(connection, START, TODAY)
    data = fetched.data

    # Raw answers kept for audit: every page (Plaid: accounts + 5 sync pages of 50 for 213 transactions;
    # Finicity: accounts + institution + 4 pages of 60; MX: member + institution + accounts + 4 pages of 70).
    assert len(fetched.raw) == pages
    assert data.provider == provider
    assert data.institution == "First Platypus Bank"
    checking, savings, card = data.accounts
    assert [a.mask for a in data.accounts] == ["0001", "0002", "0003"]
    assert [a.type for a in data.accounts] == [AccountType.CHECKING, AccountType.SAVINGS, AccountType.CREDIT]
    assert (checking.current_balance, checking.available_balance) == (Decimal("1000.00"), Decimal("958.00"))
    assert savings.current_balance == Decimal("15000.00")
    assert card.available_balance is None

    assert len(data.transactions) == 213
    assert sum(1 for t in data.transactions if t.pending) == 1
    payroll = [t for t in data.transactions if "PAYROLL" in t.description.upper()]
    assert len(payroll) == 7
    assert all(t.amount == Decimal("2800.00") and t.account_id == checking.account_id for t in payroll)
    assert {t.amount for t in data.transactions if t.account_id == card.account_id} == {Decimal("-61.50")}

    summary = summarise(data)
    by_account = {s.account_id: s for s in summary.accounts}
    assert by_account[checking.account_id].average_daily_balance == Decimal("753.33")
    assert by_account[checking.account_id].days_negative == 18
    assert by_account[checking.account_id].nsf_count == 6
    assert by_account[checking.account_id].lowest_balance == Decimal("-600.00")
    assert by_account[checking.account_id].lowest_balance_date == TODAY - timedelta(days=76)
    assert by_account[savings.account_id].average_daily_balance == Decimal("8466.67")
    assert summary.average_daily_balance == Decimal("9220.00")
    assert (summary.lowest_balance, summary.lowest_balance_date) == (Decimal("2400.00"), TODAY - timedelta(days=76))
    assert summary.days_negative == 18
    assert summary.nsf_count == 6
    assert sum(m.inflows for m in summary.monthly) == Decimal("31600.00")
    assert sum(m.outflows for m in summary.monthly) == Decimal("19107.00")
    assert sum(m.transactions for m in summary.monthly) == 212
    payrolls = [r for r in summary.recurring_deposits if r.payroll_like]
    assert [(r.frequency, r.occurrences, r.average_amount) for r in payrolls] == [("biweekly", 7, Decimal("2800.00"))]
    assert summary.largest_deposits[0].amount == Decimal("12000.00")
    assert [d.date for d in summary.largest_deposits[1:]] == [TODAY - timedelta(days=k) for k in (89, 75, 61, 47)]
    assert summary.period.gaps == []

    source.revoke(connection)
    source.revoke(connection)  # already gone: not an error
    with pytest.raises(ProviderError):
        source.fetch(connection, START, TODAY)


def test_sandbox_lists_revoked_connections(
    sandbox: ProviderSandbox,  # noqa: F811
    clients: dict[Provider, Any],  # noqa: F811
    receiver: Receiver,  # noqa: F811
    small_pages: dict[Provider, FinancialDataSource],
) -> None:
    connection = small_pages[Provider("plaid")].connect(link(sandbox, clients, receiver, Provider("plaid")))
    small_pages[Provider("plaid")].revoke(connection)
    items = requests.get(f"{sandbox.url}/sandbox/connections", timeout=5).json()["plaid_items"]
    assert {"item_id": connection.item_id, "removed": True} in items


def test_a_public_token_is_exchanged_once(
    sandbox: ProviderSandbox,  # noqa: F811
    clients: dict[Provider, Any],  # noqa: F811
    receiver: Receiver,  # noqa: F811
    small_pages: dict[Provider, FinancialDataSource],
) -> None:
    credential = link(sandbox, clients, receiver, Provider("plaid"))
    small_pages[Provider("plaid")].connect(credential)
    with pytest.raises(ProviderError) as caught:
        small_pages[Provider("plaid")].connect(credential)
    assert caught.value.partner_code == "INVALID_PUBLIC_TOKEN"


@pytest.mark.parametrize(
    ("provider", "path", "status", "body", "error"),
    [
        (
            Provider("plaid"),
            "/transactions/sync",
            400,
            {"error_type": "ITEM_ERROR", "error_code": "PRODUCT_NOT_READY", "error_message": "not ready"},
            DataNotReady,
        ),
        (
            Provider("plaid"),
            "/accounts/get",
            429,
            {"error_type": "RATE_LIMIT_EXCEEDED", "error_code": "ACCOUNTS_LIMIT", "error_message": "slow"},
            RateLimited,
        ),
        (Provider("finicity"), "/aggregation/v1/customers/*", 429, {"code": 429, "message": "slow"}, RateLimited),
        (Provider("mx"), "/users/*", 429, {"error": {"status": 429, "message": "slow"}}, RateLimited),
    ],
)
def test_come_back_later_answers_are_typed(
    sandbox: ProviderSandbox,  # noqa: F811
    clients: dict[Provider, Any],  # noqa: F811
    receiver: Receiver,  # noqa: F811
    small_pages: dict[Provider, FinancialDataSource],
    provider: Provider,
    path: str,
    status: int,
    body: dict[str, Any],
    error: type[ProviderError],
) -> None:
    source = small_pages[provider]
    connection = source.connect(link(sandbox, clients, receiver, provider))
    sandbox.inject_fault(path, status, 1, body)
    with pytest.raises(error) as caught:
        source.fetch(connection, START, TODAY)
    assert caught.value.error_name in ("FinancialData.NotReady", "FinancialData.RateLimited")
    assert source.fetch(connection, START, TODAY).data.accounts  # the next call goes through
