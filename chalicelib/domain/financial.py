"""Financial data after a bank link: one normalised model whatever the provider, and the underwriting summary.

Plain Python, no I/O: the provider adapters turn each partner's payloads into :class:`FinancialData`, and
:func:`summarise` computes what an underwriter reads first.

Sign convention (every provider, every account): ``Transaction.amount`` is the change to the account's
balance. Positive is money *into* the account (a deposit, a payroll credit, a refund), negative is money
*out of* it (a purchase, a fee, a withdrawal). Plaid reports the opposite sign (positive = outflow) and MX an
absolute amount with a ``CREDIT``/``DEBIT`` type; the adapters convert. Amounts are :class:`~decimal.Decimal`
in the account's currency and travel as strings in JSON (``"-35.00"``).

Balances: ``current`` is the ledger balance on ``as_of``; ``available`` what the customer could spend (None
when the provider does not say). For deposit accounts a negative current balance is an overdraft.

Daily balances (for average daily balance, lowest balance and days negative) are rebuilt backwards from the
current balance: the balance at the end of day ``d`` is ``current - sum(amount of posted transactions dated
after d)``. Pending transactions take no part in the summary. Only deposit accounts (checking, savings) have
daily balances: a credit card's "balance" is what is owed, and summing it with cash would mean nothing.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, model_validator

from chalicelib.domain.model import Model
from chalicelib.domain.providers import Provider

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# Lender setting bounds: how many days of transactions to fetch after a link.
DEFAULT_HISTORY_DAYS = 90
MAX_HISTORY_DAYS = 730

# A stretch of at least this many days with no posted transaction in any account is reported as a gap.
GAP_DAYS = 7
LARGEST_DEPOSITS = 5
CENT = Decimal("0.01")


class AccountType(StrEnum):
    CHECKING = "checking"
    SAVINGS = "savings"
    CREDIT = "credit"
    LOAN = "loan"
    INVESTMENT = "investment"
    OTHER = "other"

    @property
    def deposit(self) -> bool:
        return self in (AccountType.CHECKING, AccountType.SAVINGS)


class Account(Model):
    account_id: str = Field(description="Ours, stable for the same provider account: acct_<hex>")
    provider_account_id: str = Field(description="The provider's id for the account")
    name: str
    mask: str | None = Field(default=None, description="The last 4 digits of the account number, never more")
    type: AccountType
    subtype: str | None = None
    currency: str = Field(default="USD", min_length=3, max_length=3)
    institution: str | None = None
    current_balance: Decimal | None = Field(default=None, description="Ledger balance on as_of")
    available_balance: Decimal | None = Field(default=None, description="Spendable balance; null when not given")
    as_of: date


class Transaction(Model):
    transaction_id: str = Field(description="The provider's id for the transaction")
    account_id: str
    date: date
    amount: Decimal = Field(description="Signed: positive = money into the account, negative = money out")
    description: str
    category: str | None = Field(default=None, description="The provider's category, when it gives one")
    pending: bool = False


class FinancialData(Model):
    """What one provider returned for one linked customer, normalised."""

    provider: Provider
    institution: str | None = None
    fetched_at: datetime
    period_start: date = Field(description="First day of transactions asked for")
    period_end: date = Field(description="Last day of transactions asked for (the balances' date)")
    accounts: list[Account]
    transactions: list[Transaction]


def account_id_for(provider: Provider | str, provider_account_id: str) -> str:
    """Our account id: the same provider account always gets the same id, and the provider's stays private."""
    digest = hashlib.sha256(f"{provider}:{provider_account_id}".encode()).hexdigest()[:20]
    return f"acct_{digest}"


def mask_of(number: str | None) -> str | None:
    """The last four digits of an account number (masked or not); None when there are none."""
    if not number:
        return None
    digits = re.sub(r"\D", "", number)
    return digits[-4:] if digits else None


def decimal_or_none(value: object) -> Decimal | None:
    """A partner's JSON number (float, int or string) as an exact amount in cents; None when absent."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(CENT)
    except ArithmeticError:
        return None


# --- the summary ---------------------------------------------------------------------------------
class Gap(Model):
    start: date
    end: date
    days: int


class Period(Model):
    start: date
    end: date
    days: int
    first_transaction: date | None = None
    last_transaction: date | None = None
    gaps: list[Gap] = Field(
        default_factory=list, description=f"Stretches of {GAP_DAYS}+ days with no posted transaction"
    )


class MonthFlow(Model):
    month: str = Field(description="YYYY-MM")
    inflows: Decimal
    outflows: Decimal = Field(description="A positive number: the money that left")
    net: Decimal
    transactions: int


class Deposit(Model):
    date: date
    amount: Decimal
    description: str
    account_id: str


class RecurringDeposit(Model):
    description: str = Field(description="The deposits' common description, digits removed")
    frequency: str = Field(description="weekly, biweekly, semimonthly or monthly")
    occurrences: int
    average_amount: Decimal
    first_date: date
    last_date: date
    payroll_like: bool
    account_id: str


class AccountSummary(Model):
    account_id: str
    average_daily_balance: Decimal | None = Field(default=None, description="Deposit accounts only")
    lowest_balance: Decimal | None = None
    lowest_balance_date: date | None = None
    days_negative: int = 0
    nsf_count: int = Field(default=0, description="NSF, overdraft and returned-item fees")
    inflows: Decimal = Decimal(0)
    outflows: Decimal = Decimal(0)
    transactions: int = 0


class Summary(Model):
    period: Period
    accounts: list[AccountSummary]
    average_daily_balance: Decimal | None = Field(
        default=None, description="Of the deposit accounts' combined end-of-day balance"
    )
    lowest_balance: Decimal | None = Field(default=None, description="Lowest combined end-of-day balance")
    lowest_balance_date: date | None = None
    days_negative: int = Field(default=0, description="Days on which at least one deposit account ended negative")
    nsf_count: int = 0
    monthly: list[MonthFlow]
    recurring_deposits: list[RecurringDeposit]
    largest_deposits: list[Deposit]


_NSF = re.compile(
    r"\bNSF\b|NON[- ]?SUFFICIENT|INSUFFICIENT\s+FUNDS|OVERDRAFT|\bOD\s+FEE\b|RETURNED\s+ITEM|RETURN(ED)?\s+CHECK\s+FEE",
    re.IGNORECASE,
)
_NSF_CATEGORIES = frozenset(
    {"BANK_FEES_INSUFFICIENT_FUNDS", "BANK_FEES_OVERDRAFT_FEES", "insufficient funds", "overdraft", "nsf"}
)
_PAYROLL = re.compile(r"PAYROLL|DIRECT\s*DEP|DIR\s*DEP|SALARY|WAGES|PAYCHEX|\bADP\b|GUSTO|\bPAYCHECK\b", re.IGNORECASE)
_PAYROLL_CATEGORIES = frozenset({"INCOME_WAGES", "paycheck", "payroll", "salary", "income_wages"})


def is_nsf(txn: Transaction) -> bool:
    """An NSF, overdraft or returned-item fee (by category when the provider gives one, else by description)."""
    if txn.amount >= 0:
        return False
    if txn.category and txn.category.strip().lower() in {c.lower() for c in _NSF_CATEGORIES}:
        return True
    return bool(_NSF.search(txn.description))


def _payroll_like(txn: Transaction) -> bool:
    if txn.category and txn.category.strip().lower() in {c.lower() for c in _PAYROLL_CATEGORIES}:
        return True
    return bool(_PAYROLL.search(txn.description))


def _days(start: date, end: date) -> Iterable[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def daily_balances(account: Account, posted: Sequence[Transaction], start: date, end: date) -> dict[date, Decimal]:
    """End-of-day balances from ``start`` to ``end`` rebuilt backwards from the current balance."""
    current = account.current_balance or Decimal(0)
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for txn in posted:
        by_day[txn.date] += txn.amount
    # Transactions after ``end`` (posted after the period) are undone first.
    balance = current - sum((a for d, a in by_day.items() if d > end), Decimal(0))
    balances: dict[date, Decimal] = {}
    day = end
    while day >= start:
        balances[day] = balance
        balance -= by_day.get(day, Decimal(0))
        day -= timedelta(days=1)
    return balances


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _mean(values: Iterable[Decimal]) -> Decimal | None:
    items = list(values)
    return _money(sum(items, Decimal(0)) / len(items)) if items else None


def gaps(dates: Iterable[date], start: date, end: date, min_days: int = GAP_DAYS) -> list[Gap]:
    """Runs of at least ``min_days`` days in [start, end] on which no transaction is dated."""
    seen = sorted({d for d in dates if start <= d <= end})
    found: list[Gap] = []
    cursor = start
    for day in [*seen, end + timedelta(days=1)]:
        empty = (day - cursor).days
        if empty >= min_days:
            found.append(Gap(start=cursor, end=day - timedelta(days=1), days=empty))
        cursor = max(cursor, day + timedelta(days=1))
    return found


_FREQUENCIES = (("weekly", 6, 8), ("biweekly", 13, 15), ("semimonthly", 12, 18), ("monthly", 27, 33))


def _frequency(dates: Sequence[date]) -> str | None:
    intervals = [(b - a).days for a, b in zip(dates, dates[1:], strict=False)]
    if not intervals:
        return None
    typical = statistics.median(intervals)
    for name, low, high in _FREQUENCIES:
        if low <= typical <= high and all(low - 3 <= i <= high + 3 for i in intervals):
            return name
    return None


def _payee(description: str) -> str:
    """A deposit's payer: digits, punctuation and spacing removed, so each pay date's reference is ignored."""
    words = re.sub(r"[^A-Za-z ]+", " ", description).upper().split()
    return " ".join(words) or description.strip().upper()


def recurring_deposits(posted: Sequence[Transaction], min_occurrences: int = 3) -> list[RecurringDeposit]:
    """Credits from the same payer, on a regular schedule, of similar amounts (within 25% of their median)."""
    groups: dict[tuple[str, str], list[Transaction]] = defaultdict(list)
    for txn in posted:
        if txn.amount > 0:
            groups[(txn.account_id, _payee(txn.description))].append(txn)
    found: list[RecurringDeposit] = []
    for (account_id, payee), txns in groups.items():
        if len(txns) < min_occurrences:
            continue
        txns.sort(key=lambda t: t.date)
        median = statistics.median(t.amount for t in txns)
        if any(abs(t.amount - median) > median * Decimal("0.25") for t in txns):
            continue
        frequency = _frequency([t.date for t in txns])
        if frequency is None:
            continue
        found.append(
            RecurringDeposit(
                description=payee,
                frequency=frequency,
                occurrences=len(txns),
                average_amount=_mean(t.amount for t in txns) or Decimal(0),
                first_date=txns[0].date,
                last_date=txns[-1].date,
                payroll_like=any(_payroll_like(t) for t in txns),
                account_id=account_id,
            )
        )
    found.sort(key=lambda r: (not r.payroll_like, -r.average_amount * r.occurrences, r.description))
    return found


def summarise(data: FinancialData) -> Summary:
    """The underwriting summary of ``data`` over [period_start, period_end] (see the module docstring)."""
    start, end = data.period_start, data.period_end
    posted = [t for t in data.transactions if not t.pending and start <= t.date <= end]
    by_account: dict[str, list[Transaction]] = defaultdict(list)
    for txn in data.transactions:
        if not txn.pending:
            by_account[txn.account_id].append(txn)

    account_summaries: list[AccountSummary] = []
    combined: dict[date, Decimal] = {}
    negative_days: set[date] = set()
    for account in data.accounts:
        in_period = [t for t in by_account.get(account.account_id, []) if start <= t.date <= end]
        summary = AccountSummary(
            account_id=account.account_id,
            nsf_count=sum(1 for t in in_period if is_nsf(t)),
            inflows=_money(sum((t.amount for t in in_period if t.amount > 0), Decimal(0))),
            outflows=_money(-sum((t.amount for t in in_period if t.amount < 0), Decimal(0))),
            transactions=len(in_period),
        )
        if account.type.deposit and account.current_balance is not None:
            balances = daily_balances(account, by_account.get(account.account_id, []), start, end)
            low_day = min(balances, key=lambda d: (balances[d], d))
            negatives = {d for d, b in balances.items() if b < 0}
            summary = summary.model_copy(
                update={
                    "average_daily_balance": _mean(balances.values()),
                    "lowest_balance": _money(balances[low_day]),
                    "lowest_balance_date": low_day,
                    "days_negative": len(negatives),
                }
            )
            negative_days |= negatives
            for day, balance in balances.items():
                combined[day] = combined.get(day, Decimal(0)) + balance
        account_summaries.append(summary)

    monthly: dict[str, list[Transaction]] = defaultdict(list)
    for txn in posted:
        monthly[txn.date.strftime("%Y-%m")].append(txn)
    flows = []
    for month in sorted(monthly):
        txns = monthly[month]
        inflow = sum((t.amount for t in txns if t.amount > 0), Decimal(0))
        outflow = -sum((t.amount for t in txns if t.amount < 0), Decimal(0))
        flows.append(
            MonthFlow(
                month=month,
                inflows=_money(inflow),
                outflows=_money(outflow),
                net=_money(inflow - outflow),
                transactions=len(txns),
            )
        )

    credits = sorted((t for t in posted if t.amount > 0), key=lambda t: (-t.amount, t.date, t.transaction_id))
    dates = [t.date for t in posted]
    low = min(combined, key=lambda d: (combined[d], d)) if combined else None
    return Summary(
        period=Period(
            start=start,
            end=end,
            days=(end - start).days + 1,
            first_transaction=min(dates) if dates else None,
            last_transaction=max(dates) if dates else None,
            gaps=gaps(dates, start, end),
        ),
        accounts=account_summaries,
        average_daily_balance=_mean(combined.values()),
        lowest_balance=_money(combined[low]) if low is not None else None,
        lowest_balance_date=low,
        days_negative=len(negative_days),
        nsf_count=sum(s.nsf_count for s in account_summaries),
        monthly=flows,
        recurring_deposits=recurring_deposits(posted),
        largest_deposits=[
            Deposit(date=t.date, amount=_money(t.amount), description=t.description, account_id=t.account_id)
            for t in credits[:LARGEST_DEPOSITS]
        ],
    )


# --- what the lender reads ------------------------------------------------------------------------
class FinancialDataStatus(StrEnum):
    NONE = "none"  # no bank linked (yet)
    PENDING = "pending"  # linked; the data step is fetching (or waiting for the provider to be ready)
    READY = "ready"
    FAILED = "failed"  # linked, but the provider never gave the data (reason says why)


class FinancialRecord(Model):
    """One invitation's financial data as stored (``FIN#DATA``): the outcome of the newest attempt's data step.

    ``ready`` holds the accounts and the summary as JSON text (exact decimals and dates survive, one attribute per
    part); the transactions themselves are in S3 at ``transactions_key``. ``failed`` holds why."""

    state: FinancialDataStatus = Field(description="ready or failed")
    attempt: int
    updated_at: datetime
    provider: Provider | None = None
    institution: str | None = None
    fetched_at: datetime | None = None
    period_start: date | None = None
    period_end: date | None = None
    transaction_count: int = 0
    transactions_key: str | None = None
    accounts: str = "[]"
    summary: str | None = None
    reason: str | None = None
    error: str | None = None


class ConnectionRecord(Model):
    """What reaches a customer's data at one provider (an access token ...), made once from a link's credential."""

    # A stored item that fails validation must not quote its access token in the error (and the log).
    model_config = ConfigDict(hide_input_in_errors=True)

    provider: Provider
    session_id: str = Field(description="The link session it was made from: a relink makes a new one")
    access: str = Field(repr=False)
    item_id: str | None = None
    created_at: datetime


class FinancialDataView(Model):
    """``GET /v1/invitations/{id}/financial-data``: the accounts and the underwriting summary."""

    invitation_id: str
    status: FinancialDataStatus
    provider: Provider | None = None
    institution: str | None = None
    fetched_at: datetime | None = None
    period_start: date | None = None
    period_end: date | None = None
    accounts: list[Account] = Field(default_factory=list)
    transaction_count: int = 0
    summary: Summary | None = None
    reason: str | None = Field(default=None, description="Why the data is not available, when status is failed")


class TransactionFilter(Model):
    """Which transactions: one account, a date range (both days included)."""

    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(default=None, max_length=40)
    since: date | None = Field(default=None, description="First day included")
    until: date | None = Field(default=None, description="Last day included")

    @model_validator(mode="after")
    def _ordered(self) -> TransactionFilter:
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


class TransactionQuery(TransactionFilter):
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=200)


class TransactionPage(Model):
    items: list[Transaction] = Field(description="Newest first")
    next_cursor: str | None = None


def select_transactions(transactions: Iterable[Transaction], query: TransactionFilter) -> list[Transaction]:
    """The query's transactions, newest first (ties by id, so pages are stable)."""
    chosen = [
        t
        for t in transactions
        if (query.account_id is None or t.account_id == query.account_id)
        and (query.since is None or t.date >= query.since)
        and (query.until is None or t.date <= query.until)
    ]
    chosen.sort(key=lambda t: (t.date, t.transaction_id), reverse=True)
    return chosen
