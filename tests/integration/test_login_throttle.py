"""Sign-in throttling that a stranger cannot turn against the customer (issue 11 item 11).

Wrong passwords are counted per account *and* IP: a stranger guessing from one address is stopped there, while the
customer signs in from their own. Only a sustained attack on one account from many addresses tightens the limit
for every address (one wrong password an hour each), and even then a right password from an address that has not
failed goes through: nobody but the customer can lock the customer out.

The service is bootstrap's (production wiring on the embedded DynamoDB); the IP is what the route reads from API
Gateway's ``sourceIp``, passed here directly because the test client has only one.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.account import LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ACCOUNT_IP
from chalicelib.errors import RateLimited
from tests.integration.test_join import PASSWORD, invite, join, settings

ACCOUNT = "janes-bakery"
WRONG = "not the password at all"
CUSTOMER_IP = "203.0.113.10"
STRANGER_IP = "198.51.100.66"


@pytest.fixture
def account(client: Any, lender: dict[str, Any]) -> str:
    key = lender["api_key"]
    settings(client, key, require_email_confirmation=False)
    invite(client, key, send=False)
    assert join(client, sub=ACCOUNT).status_code == 303
    return ACCOUNT


def attempt(name: str, ip: str, password: str) -> str:
    from chalicelib import bootstrap
    from chalicelib.services.join import SignInRefused

    try:
        bootstrap.joins().sign_in(name, "admin", password, ip)
    except SignInRefused:
        return "refused"
    except RateLimited:
        return "limited"
    return "signed in"


def test_a_stranger_guessing_cannot_lock_the_customer_out(account: str) -> None:
    tries = [attempt(account, STRANGER_IP, WRONG) for _ in range(LOGIN_FAILURES_PER_ACCOUNT_IP.max + 3)]
    assert tries == ["refused"] * LOGIN_FAILURES_PER_ACCOUNT_IP.max + ["limited"] * 3
    assert attempt(account, STRANGER_IP, PASSWORD) == "limited"  # that address waits, even with the password
    assert attempt(account, CUSTOMER_IP, PASSWORD) == "signed in"


def test_a_customer_who_mistypes_is_not_counted_against_after_signing_in(account: str) -> None:
    for _ in range(LOGIN_FAILURES_PER_ACCOUNT_IP.max - 1):
        assert attempt(account, CUSTOMER_IP, WRONG) == "refused"
    assert attempt(account, CUSTOMER_IP, PASSWORD) == "signed in"
    # The right password gave the attempt back: the next typo is not the last one.
    assert attempt(account, CUSTOMER_IP, WRONG) == "refused"
    assert attempt(account, CUSTOMER_IP, PASSWORD) == "signed in"


def test_a_sustained_attack_from_many_addresses_slows_strangers_but_not_the_customer(account: str) -> None:
    attackers = [f"198.51.100.{i}" for i in range(LOGIN_FAILURES_PER_ACCOUNT.max)]
    assert [attempt(account, ip, WRONG) for ip in attackers] == ["refused"] * len(attackers)

    # Under attack: an address that already failed waits an hour; a new one gets a single wrong guess.
    assert attempt(account, attackers[0], WRONG) == "limited"
    assert attempt(account, "192.0.2.1", WRONG) == "refused"
    assert attempt(account, "192.0.2.1", WRONG) == "limited"
    # The customer, from an address that has not failed, still signs in.
    assert attempt(account, CUSTOMER_IP, PASSWORD) == "signed in"


def test_another_account_is_not_affected(account: str, client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    invite(client, key, email="bob@otherbiz.com", send=False)
    assert join(client, email="bob@otherbiz.com", sub="bobs-garage").status_code == 303
    for _ in range(LOGIN_FAILURES_PER_ACCOUNT_IP.max):
        attempt(account, STRANGER_IP, WRONG)
    assert attempt("bobs-garage", STRANGER_IP, PASSWORD) == "signed in"
