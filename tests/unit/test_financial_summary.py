"""The underwriting summary on a small fixture whose every figure is worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from chalicelib.domain.financial import (
    Account,
    AccountType,
    FinancialData,
    Gap,
    Transaction,
    account_id_for,
    daily_balances,
    gaps,
    is_nsf,
    mask_of,
    summarise,
)
from chalicelib.domain.providers import Provider

JAN = 2026, 1


def d(day: int) -> date:
    return date(*JAN, day)


def txn(n: int, account: str, day: int, amount: str, description: str, **extra: object) -> Transaction:
    return Transaction(
        transaction_id=f"t{n}",
        account_id=account,
        date=d(day),
        amount=Decimal(amount),
        description=description,
        **extra,
    )


CHECKING = Account(
    account_id="acct_a",
    provider_account_id="A",
    name="Business checking",
    mask="1111",
    type=AccountType.CHECKING,
    current_balance=Decimal("300.00"),
    available_balance=Decimal("250.00"),
    as_of=d(31),
)
SAVINGS = Account(
    account_id="acct_b",
    provider_account_id="B",
    name="Savings",
    mask="2222",
    type=AccountType.SAVINGS,
    current_balance=Decimal("500.00"),
    as_of=d(31),
)
CARD = Account(
    account_id="acct_c",
    provider_account_id="C",
    name="Card",
    mask="3333",
    type=AccountType.CREDIT,
    current_balance=Decimal("200.00"),
    as_of=d(31),
)

# Checking: +6,000 payroll (4 weekly credits) +5,000 wire, -10,770 out: net +230, so it started January at
# 300 - 230 = 70. End-of-day balances, by hand:
#   1-2: 70 | 3-4: 1,570 | 5-9: -430 | 10-11: 1,070 | 12: -1,130 | 13-16: -1,165 | 17-19: 335 | 20: -2,165
#   21-23: -2,200 | 24-26: -700 | 27: 4,300 | 28-31: 300
# Sum over the 31 days: -6,880 -> average -221.935... -> -221.94. Negative on 5-9, 12-16, 20-26: 17 days.
TRANSACTIONS = [
    txn(1, "acct_a", 3, "1500.00", "ACME PAYROLL PPD 0103"),
    txn(2, "acct_a", 10, "1500.00", "ACME PAYROLL PPD 0110"),
    txn(3, "acct_a", 17, "1500.00", "ACME PAYROLL PPD 0117"),
    txn(4, "acct_a", 24, "1500.00", "ACME PAYROLL PPD 0124"),
    txn(5, "acct_a", 5, "-2000.00", "LANDLORD RENT"),
    txn(6, "acct_a", 12, "-2200.00", "TRUCK LEASE"),
    txn(7, "acct_a", 13, "-35.00", "NSF FEE"),
    txn(8, "acct_a", 20, "-2500.00", "SUPPLIER INV 88"),
    txn(9, "acct_a", 21, "-35.00", "Service charge", category="BANK_FEES_OVERDRAFT_FEES"),
    txn(10, "acct_a", 27, "5000.00", "CUSTOMER WIRE 1"),
    txn(11, "acct_a", 28, "-4000.00", "EQUIPMENT"),
    txn(12, "acct_a", 31, "-50.00", "COFFEE", pending=True),
    txn(13, "acct_c", 15, "-200.00", "OFFICE SUPPLY"),
]

DATA = FinancialData(
    provider=Provider("plaid"),
    institution="First Platypus Bank",
    fetched_at=datetime(2026, 1, 31, 12, tzinfo=UTC),
    period_start=d(1),
    period_end=d(31),
    accounts=[CHECKING, SAVINGS, CARD],
    transactions=TRANSACTIONS,
)


def test_per_account_daily_balance_figures() -> None:
    summary = summarise(DATA)
    checking, savings, card = summary.accounts

    assert checking.average_daily_balance == Decimal("-221.94")
    assert checking.lowest_balance == Decimal("-2200.00")
    assert checking.lowest_balance_date == d(21)
    assert checking.days_negative == 17
    assert checking.nsf_count == 2
    assert checking.inflows == Decimal("11000.00")
    assert checking.outflows == Decimal("10770.00")
    assert checking.transactions == 11  # the pending coffee is not counted

    assert savings.average_daily_balance == Decimal("500.00")
    assert savings.lowest_balance == Decimal("500.00")
    assert savings.lowest_balance_date == d(1)
    assert savings.days_negative == 0

    # A card's balance is what is owed: no daily balance figures, only its flows.
    assert card.average_daily_balance is None
    assert card.lowest_balance is None
    assert card.outflows == Decimal("200.00")


def test_overall_figures() -> None:
    summary = summarise(DATA)

    # Checking + savings: (-6,880 + 31 x 500) / 31 = 8,620 / 31 = 278.06; lowest -2,200 + 500 on the 21st.
    assert summary.average_daily_balance == Decimal("278.06")
    assert summary.lowest_balance == Decimal("-1700.00")
    assert summary.lowest_balance_date == d(21)
    assert summary.days_negative == 17
    assert summary.nsf_count == 2

    [january] = summary.monthly
    assert january.month == "2026-01"
    assert january.inflows == Decimal("11000.00")
    assert january.outflows == Decimal("10970.00")  # 10,770 from checking + 200 on the card
    assert january.net == Decimal("30.00")
    assert january.transactions == 12


def test_recurring_payroll_and_largest_deposits() -> None:
    summary = summarise(DATA)

    [payroll] = summary.recurring_deposits
    assert payroll.description == "ACME PAYROLL PPD"
    assert payroll.frequency == "weekly"
    assert payroll.occurrences == 4
    assert payroll.average_amount == Decimal("1500.00")
    assert (payroll.first_date, payroll.last_date) == (d(3), d(24))
    assert payroll.payroll_like is True

    assert [(x.date, x.amount) for x in summary.largest_deposits] == [
        (d(27), Decimal("5000.00")),
        (d(3), Decimal("1500.00")),
        (d(10), Decimal("1500.00")),
        (d(17), Decimal("1500.00")),
        (d(24), Decimal("1500.00")),
    ]


def test_period_and_gaps() -> None:
    period = summarise(DATA).period
    assert (period.start, period.end, period.days) == (d(1), d(31), 31)
    assert (period.first_transaction, period.last_transaction) == (d(3), d(28))
    assert period.gaps == []  # the longest quiet stretch is 3 days (29-31)

    assert gaps([d(10)], d(1), d(31)) == [
        Gap(start=d(1), end=d(9), days=9),
        Gap(start=d(11), end=d(31), days=21),
    ]
    assert gaps([], d(1), d(6)) == []  # six empty days are not a gap yet
    assert gaps([], d(1), d(7)) == [Gap(start=d(1), end=d(7), days=7)]


def test_transactions_after_the_period_are_undone_first() -> None:
    posted = [t for t in TRANSACTIONS if t.account_id == "acct_a" and not t.pending]
    balances = daily_balances(CHECKING, posted, d(1), d(20))
    assert balances[d(20)] == Decimal("-2165.00")
    assert balances[d(1)] == Decimal("70.00")


def test_irregular_or_uneven_credits_are_not_recurring() -> None:
    uneven = [
        txn(1, "acct_a", 2, "1000.00", "CLIENT PAYMENT"),
        txn(2, "acct_a", 9, "3000.00", "CLIENT PAYMENT"),
        txn(3, "acct_a", 16, "1000.00", "CLIENT PAYMENT"),
        txn(4, "acct_a", 1, "700.00", "ODD JOBS"),
        txn(5, "acct_a", 4, "700.00", "ODD JOBS"),
        txn(6, "acct_a", 29, "700.00", "ODD JOBS"),
    ]
    data = DATA.model_copy(update={"transactions": uneven})
    assert summarise(data).recurring_deposits == []


def test_nsf_detection_and_masking() -> None:
    assert is_nsf(txn(1, "a", 1, "-34.00", "RETURNED ITEM FEE"))
    assert is_nsf(txn(1, "a", 1, "-34.00", "Insufficient Funds Charge"))
    assert not is_nsf(txn(1, "a", 1, "34.00", "NSF FEE REFUND"))  # a refund is money in
    assert not is_nsf(txn(1, "a", 1, "-34.00", "TRANSFER TO SAVINGS"))
    assert mask_of("xxxxxx1111") == "1111"
    assert mask_of("12-3456-789") == "6789"
    assert mask_of(None) is None
    assert account_id_for(Provider("mx"), "ACT-1") == account_id_for("mx", "ACT-1") != account_id_for("plaid", "ACT-1")


def test_empty_data() -> None:
    data = DATA.model_copy(update={"accounts": [], "transactions": []})
    summary = summarise(data)
    assert summary.average_daily_balance is None
    assert summary.monthly == []
    assert summary.period.gaps == [Gap(start=d(1), end=d(31), days=31)]
