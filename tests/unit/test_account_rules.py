"""Account rules, password hashing and the fixed-window rate limiter (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.passwords import PasswordHasher
from chalicelib.adapters.ratelimit import RateLimiter
from chalicelib.domain.account import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    Account,
    AccountStatus,
    Limit,
    account_subdomain_problem,
    password_problem,
)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "too_short"),
        ("a" * (PASSWORD_MIN - 1), "too_short"),
        ("a" * PASSWORD_MIN, None),
        ("pässwörd ✓ with spaces", None),
        ("a" * PASSWORD_MAX, None),
        ("a" * (PASSWORD_MAX + 1), "too_long"),
    ],
)
def test_password_length_is_counted_in_characters(password: str, problem: str | None) -> None:
    assert password_problem(password) == problem


@pytest.mark.parametrize(
    ("value", "problem", "normalised"),
    [
        ("Janes-Bakery ", None, "janes-bakery"),
        ("", "required", ""),
        ("admin", "reserved", "admin"),
        ("LOGIN", "reserved", "login"),
        ("ab", "invalid", "ab"),
        ("-bakery", "invalid", "-bakery"),
        ("bakery-", "invalid", "bakery-"),
        ("jane.bakery", "invalid", "jane.bakery"),
        ("xn--bcher-kva", "invalid", "xn--bcher-kva"),
        ("a" * 64, "invalid", "a" * 64),
        ("a" * 63, None, "a" * 63),
    ],
)
def test_account_subdomain_rules(value: str, problem: str | None, normalised: str) -> None:
    assert account_subdomain_problem(value) == (problem, normalised)


def test_sign_in_accepts_admin_or_the_email() -> None:
    account = Account(
        account_subdomain="janes",
        tenant_id="ten_1",
        invitation_id="inv_1",
        email="jane@smallbiz.com",
        business_name="Jane's",
        password_hash="x",
        status=AccountStatus.ACTIVE,
        created_at=datetime.now(UTC),
    )
    assert account.accepts_username("admin")
    assert account.accepts_username(" Admin ")
    assert account.accepts_username("JANE@smallbiz.com")
    assert not account.accepts_username("root")
    assert not account.accepts_username("")


def test_passwords_use_argon2id_with_owasp_parameters() -> None:
    hasher = PasswordHasher()
    hashed = hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "correct horse battery" not in hashed
    assert hasher.verify(hashed, "correct horse battery")
    assert not hasher.verify(hashed, "correct horse battery!")
    assert not hasher.verify("not a hash", "anything")
    assert not hasher.needs_rehash(hashed)
    weaker = PasswordHasher(memory_cost=8192, time_cost=1).hash("correct horse battery")
    assert hasher.needs_rehash(weaker)
    hasher.burn("anything")  # the equal-work path never raises


class FakeTable:
    """The two Table calls the limiter makes, with DynamoDB's ADD semantics."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def update(self, key: dict[str, str], changes: dict[str, Any], *, add: dict[str, int], **_: Any) -> dict[str, Any]:
        item = self.items.setdefault((key["PK"], key["SK"]), dict(key))
        item.update(changes)
        for name, amount in add.items():
            item[name] = item.get(name, 0) + amount
        return dict(item)

    def get(self, key: dict[str, str], consistent: bool = False) -> dict[str, Any] | None:
        return self.items.get((key["PK"], key["SK"]))


def test_rate_limiter_counts_per_subject_and_window() -> None:
    now = [1_000_000.0]
    table = FakeTable()
    limiter = RateLimiter(table, clock=lambda: now[0])  # type: ignore[arg-type]
    limit = Limit("test", 3, 600)
    window_end = (int(now[0]) // 600 + 1) * 600

    decisions = [limiter.hit(limit, "1.2.3.4") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == window_end - int(now[0])
    assert limiter.hit(limit, "5.6.7.8").allowed  # another subject has its own count
    assert not limiter.peek(limit, "1.2.3.4").allowed
    assert limiter.peek(limit, "9.9.9.9").allowed

    # Subjects are stored hashed, and every counter expires (TTL) after its window.
    for (pk, _), item in table.items.items():
        assert "1.2.3.4" not in pk and "5.6.7.8" not in pk
        assert item["expires_at"] >= window_end

    now[0] = window_end + 1.0  # a new window starts from zero
    assert limiter.hit(limit, "1.2.3.4").allowed
