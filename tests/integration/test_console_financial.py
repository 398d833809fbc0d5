"""The customer's financial data on the console's customer page: accounts, balances, the underwriting
summary and a transactions CSV once the data is ready; a clear state while there is none, while it is
being fetched, and when the provider never gave it. Another lender's officer gets 404."""

from __future__ import annotations

import csv
import io
from typing import Any

from chalicelib.domain.providers import Provider
from tests.integration.console_helpers import sign_up
from tests.integration.test_financial_data import linked_with_data
from tests.integration.test_waterfall import World, invitation, world  # noqa: F401  (fixtures)


def test_ready_data_shows_accounts_balances_summary_and_a_csv(client: Any, world: World) -> None:  # noqa: F811
    admin, lender = sign_up(client)
    inv_id = linked_with_data(client, lender["api_key"])
    page = admin.get(f"/console/invitations/{inv_id}")
    assert page.status == 200
    assert 'id="financial-data"' in page.text and 'data-status="ready"' in page.text
    assert "First Platypus Bank" in page.text and "6789" in page.text
    assert "500.00" in page.text and "450.00" in page.text  # current and available balances
    assert "35.00" in page.text  # the summary's lowest balance
    # Walk-through #6: labels an underwriter cannot misread, and no "checking (checking)".
    for label in ("Lowest combined balance", "Days any account was overdrawn", "NSF/overdraft fees (count)"):
        assert label in page.text, label
    assert "Lowest balance<" not in page.text and "Days with a negative balance" not in page.text
    assert "checking (checking)" not in page.text
    assert f'href="/console/invitations/{inv_id}/transactions.csv"' in page.text

    answer = client.http.get(
        f"/console/invitations/{inv_id}/transactions.csv",
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in admin.cookies.items())},
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.body.decode())))
    assert rows[0][:4] == ["date", "account_id", "account_name", "amount"] and len(rows) == 5
    assert "'=RENT+1" in [r[5] for r in rows]  # the same neutralised CSV as the API's

    # Another lender's staff: not found, like an id that does not exist.
    stranger, _ = sign_up(client)
    assert stranger.get(f"/console/invitations/{inv_id}").status == 404
    assert stranger.get(f"/console/invitations/{inv_id}/transactions.csv").status == 404
    # Signed out: the sign-in page, never the data.
    assert client.http.get(f"/console/invitations/{inv_id}/transactions.csv").status_code == 303


def test_no_bank_link_yet_and_a_provider_that_never_gave_the_data_are_said_plainly(
    client: Any,
    world: World,  # noqa: F811
) -> None:
    admin, lender = sign_up(client)
    inv_id, _ = invitation(client, lender["api_key"], email="nobank@smallbiz.com")
    page = admin.get(f"/console/invitations/{inv_id}")
    assert 'data-status="none"' in page.text and "has not linked a bank account yet" in page.text
    assert "transactions.csv" not in page.text

    world.providers[Provider("plaid")].refuse_data = True
    failed_id = linked_with_data(client, lender["api_key"])
    page = admin.get(f"/console/invitations/{failed_id}")
    assert 'data-status="failed"' in page.text and "did not give us the data" in page.text
    assert "transactions.csv" not in page.text


def test_disconnected_financial_data_says_when_and_by_whom(client: Any, world: World) -> None:  # noqa: F811
    """Walk-through #12: after "Disconnect financial data" the portal status no longer says "bank linked",
    and the financial card says the data was disconnected (when, by whom), not that no bank was ever linked."""
    from datetime import UTC, datetime

    admin, lender = sign_up(client)
    inv_id = linked_with_data(client, lender["api_key"])
    assert "bank linked" in admin.get(f"/console/invitations/{inv_id}").text
    confirm = admin.get(f"/console/customers/{inv_id}/disconnect")
    assert admin.post(f"/console/customers/{inv_id}/disconnect", {}, confirm.csrf()).status == 303

    page = admin.get(f"/console/invitations/{inv_id}")
    portal = page.text.split(">Portal<", 1)[1].split("</dd>", 1)[0]
    assert "bank linked" not in portal and "opened" in portal, portal
    today = datetime.now(UTC).date().isoformat()
    assert 'data-status="disconnected"' in page.text
    assert f"Financial data disconnected on {today} by Olivia Officer" in page.text
    assert "has not linked a bank account yet" not in page.text
