"""The data step after a bank link: its cost per linked customer, and the time to normalise and summarise
20,000 transactions.

- Normalise + summarise: Plaid-shaped answers (the sandbox's scripted business, repeated to 20,000
  transactions over two years) through ``normalise_plaid`` and ``summarise``, against the floor of parsing the
  same JSON bare with ``json.loads``.
- AWS calls: the link worker's ``financial_data`` handling of one linked customer on the embedded AWS, counted
  with botocore hooks (the partner is a fake that returns the same 20,000 transactions, so only AWS is counted).
- State transitions: the states a first-provider link with its data enters in infra/waterfall.asl.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import Row

TRANSACTIONS = 20_000
ROUNDS = 3


def plaid_answers(as_of: date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from devstack import sandbox_data

    prefix = "benchitem-"
    accounts = {
        "accounts": [sandbox_data.plaid_account(a, prefix) for a in sandbox_data.ACCOUNTS],
        "item": {"item_id": "benchitem", "institution_name": sandbox_data.INSTITUTION},
    }
    base = sandbox_data.transactions(as_of)
    transactions: list[dict[str, Any]] = []
    copy = 0
    while len(transactions) < TRANSACTIONS:
        for txn in base:
            if len(transactions) == TRANSACTIONS:
                break
            shaped = sandbox_data.plaid_transaction(replace(txn, pending=False), prefix)
            shaped["transaction_id"] = f"{shaped['transaction_id']}-{copy}"
            transactions.append(shaped)
        copy += 1
    return accounts, transactions


def _best(fn: Any) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def compute_rows() -> list[Row]:
    from chalicelib.adapters.providers.plaid import normalise_plaid
    from chalicelib.domain.financial import summarise

    as_of = date.today()
    start = as_of - timedelta(days=729)
    accounts, transactions = plaid_answers(as_of)
    text = json.dumps({"accounts": accounts, "transactions": transactions})

    def bare() -> None:
        json.loads(text)

    def ours() -> None:
        raw = json.loads(text)
        summarise(normalise_plaid(raw["accounts"], raw["transactions"], start, as_of, datetime.now(UTC)))

    floor, measured = _best(bare), _best(ours)
    return [
        Row(
            "financial data: normalise + summarise 20,000 transactions",
            f"{measured * 1000:.0f} ms",
            f"{floor * 1000:.0f} ms json.loads",
            measured / floor,
            "",
            f"{len(text) / 1e6:.1f} MB of Plaid JSON, 2 years",
        )
    ]


def data_step_rows() -> list[Row]:
    from chalice.test import Client

    from bench.create_invitation import CallCounter, embedded_aws, signed_up_key

    with embedded_aws():
        from app import app
        from chalicelib import bootstrap
        from chalicelib.adapters.dynamo import keys
        from chalicelib.adapters.providers.base import Connection, Fetched
        from chalicelib.adapters.providers.plaid import normalise_plaid
        from chalicelib.domain.providers import Provider
        from chalicelib.services.financial import FinancialDataRequest

        as_of = date.today()
        accounts, transactions = plaid_answers(as_of)

        class Source:
            provider = Provider("plaid")

            def connect(self, credential: str) -> Connection:
                return Connection(Provider("plaid"), "access-bench", "item-bench")

            def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
                data = normalise_plaid(accounts, transactions, start, end, datetime.now(UTC))
                return Fetched(data, [("accounts_get", accounts), ("transactions_sync_001", transactions)])

            def revoke(self, connection: Connection) -> None:
                return None

        with Client(app, stage_name="dev") as client:
            key = signed_up_key(client, "bench-data")
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
            created = client.http.post(
                "/v1/invitations",
                headers=headers,
                body=json.dumps({"email": "data@smallbiz.example", "owner": "O", "send": False}),
            )
            inv = json.loads(created.body)
            tenant_id, inv_id = inv["tenant_id"], inv["invitation_id"]
            table = bootstrap.services().table
            # A linked attempt, as the webhook leaves it (its credential on the linked slot).
            table.put(
                {
                    **keys.bank_link_attempt(tenant_id, inv_id, 1),
                    "type": "bank_link_attempt",
                    "attempt": 1,
                    "state": "linked",
                    "linked_provider": "plaid",
                    "providers": ["plaid"],
                    "started_at": datetime.now(UTC).isoformat(),
                    "execution_name": f"{inv_id}-1",
                }
            )
            table.put(
                {
                    **keys.bank_link_slot(tenant_id, inv_id, 1, 1),
                    "type": "bank_link_slot",
                    "tenant_id": tenant_id,
                    "invitation_id": inv_id,
                    "attempt": 1,
                    "slot": 1,
                    "provider": "plaid",
                    "state": "linked",
                    "session_id": "link-bench",
                    "credential": "public-bench",
                }
            )
            service = bootstrap.financial_data()
            service.sources = {Provider("plaid"): Source()}  # type: ignore[dict-item]
            message = FinancialDataRequest(
                type="financial_data",
                task_token="bench-token",  # answered to a closed task: the call is counted all the same
                tenant_id=tenant_id,
                invitation_id=inv_id,
                attempt=1,
                provider=Provider("plaid"),
            )
            counter = CallCounter()
            counter.attach()
            counter.enabled = True
            began = time.perf_counter()
            outcome = service.handle_request(message)
            elapsed = time.perf_counter() - began
            counter.enabled = False
            calls = sum(counter.calls.values())
            detail = ", ".join(f"{name.split(':')[1]} {n}" for name, n in sorted(counter.calls.items()))
            redelivered = CallCounter()
            redelivered.attach()
            redelivered.enabled = True
            again = service.handle_request(message)
            redelivered.enabled = False

    return [
        Row(
            "financial data step: AWS calls per linked customer",
            f"{calls} calls ({outcome})",
            "",
            None,
            "",
            f"{detail}; a redelivery: {sum(redelivered.calls.values())} calls ({again}); "
            f"{elapsed * 1000:.0f} ms for 20,000 transactions on moto",
        )
    ]


def transition_rows() -> list[Row]:
    from pathlib import Path

    asl = json.loads((Path(__file__).resolve().parent.parent / "infra" / "waterfall.asl.json").read_text())
    states = asl["States"]
    name, seen = asl["StartAt"], []
    while True:
        seen.append(name)
        state = states[name]
        if state["Type"] in ("Succeed", "Fail"):
            break
        # The first provider links: each Choice takes its first branch (a provider is left to try).
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state["Next"]
    return [
        Row(
            "financial data: state transitions per linked customer",
            f"{len(seen)} ({', '.join(seen)})",
            "4 without the data step",
            len(seen) / 4,
            "",
            "each 'come back later' adds one retry of FetchData",
        )
    ]


def run() -> list[Row]:
    return [*compute_rows(), *data_step_rows(), *transition_rows()]
