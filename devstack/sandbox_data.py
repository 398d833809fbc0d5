"""The financial data the local provider sandbox serves after a link: one scripted business, three accounts.

Every provider renders the same story in its own shape (see ``devstack/sandbox.py``), so a test can assert
the underwriting summary against figures worked out by hand. Amounts here use the project's convention
(positive = money into the account). Days are counted back from ``as_of`` (``k`` = 0 is ``as_of`` itself);
two years (730 days) are kept, and each provider returns the part a request asks for.

Business checking (mask 0001), current balance 1,000.00. A 14-day cycle anchored so that ``as_of`` is cycle
day 5 (:func:`cycle_day`):
- cycle day 0: payroll ``GUSTO PAYROLL PPD`` +2,800.00 (biweekly, payroll-like);
- every day: two card purchases of 100.00, except cycle day 11 (the balance's first negative day): 100.00,
  65.00 and an ``NSF FEE`` of 35.00. Every day's outflow is 200.00, so each cycle is neutral.
End-of-day balance on cycle day c: 2,000 - 200c (2,000 down to -600; negative on days 11, 12, 13).

Business savings (mask 0002), current 15,000.00: one ``WIRE TRANSFER IN`` of +12,000.00 at k = 40.
Business card (mask 0003, a credit account), owes 1,107.00: ``AMAZON MKTP`` -61.50 every 5 days from k = 2.
Checking also has one pending purchase of 42.00 on ``as_of`` (excluded from summaries).

For the 90-day window (k = 0..89: six whole cycles and cycle days 0-5), by hand:
- checking: balances sum to 6 x 9,800 + 9,000 = 67,800 -> average 753.33; 18 days negative; 6 NSF fees;
  lowest -600.00 first at k = 76; 7 payroll credits (k = 5, 19, ..., 89).
- savings: 49 days at 3,000 and 41 at 15,000 -> 762,000 / 90 = 8,466.67.
- combined: 829,800 / 90 = 9,220.00, lowest 2,400.00 at k = 76 (checking -600 + savings 3,000).
- flows: in 31,600.00 (7 x 2,800 + 12,000), out 19,107.00 (90 x 200 + 18 x 61.50); 212 posted transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

HISTORY_DAYS = 730
CYCLE = 14
AS_OF_CYCLE_DAY = 5


@dataclass(frozen=True)
class SandboxAccount:
    key: str  # stable within the sandbox: checking, savings, card
    name: str
    number: str
    kind: str  # checking, savings, credit
    current: Decimal
    available: Decimal | None


@dataclass(frozen=True)
class SandboxTransaction:
    key: str  # unique and stable: <account>-<k>-<n>
    account: str
    day: date
    amount: Decimal  # positive = into the account
    description: str
    category: str
    pending: bool = False


ACCOUNTS = (
    SandboxAccount("checking", "Business Checking", "9876540001", "checking", Decimal("1000.00"), Decimal("958.00")),
    SandboxAccount("savings", "Business Savings", "9876540002", "savings", Decimal("15000.00"), Decimal("15000.00")),
    SandboxAccount("card", "Business Card", "5500000000000003", "credit", Decimal("1107.00"), None),
)
INSTITUTION = "First Platypus Bank"
MERCHANTS = ("SHELL OIL 5731", "STAPLES 0112", "HOME DEPOT 4410", "UBER TRIP", "CITY PARKING")


def cycle_day(k: int) -> int:
    """The 14-day cycle's day of ``as_of - k`` (``as_of`` is day 5)."""
    return (AS_OF_CYCLE_DAY - k) % CYCLE


def transactions(as_of: date, days: int = HISTORY_DAYS) -> list[SandboxTransaction]:
    """Every transaction dated in the last ``days`` days up to ``as_of``, oldest first."""
    found: list[SandboxTransaction] = []
    for k in range(min(days, HISTORY_DAYS) - 1, -1, -1):
        day = as_of - timedelta(days=k)
        c = cycle_day(k)
        if c == 0:
            found.append(
                SandboxTransaction(
                    f"checking-{k}-p", "checking", day, Decimal("2800.00"), "GUSTO PAYROLL PPD", "payroll"
                )
            )
        first = MERCHANTS[k % len(MERCHANTS)]
        second = MERCHANTS[(k + 2) % len(MERCHANTS)]
        if c == 11:
            found += [
                SandboxTransaction(f"checking-{k}-a", "checking", day, Decimal("-100.00"), f"POS {first}", "shopping"),
                SandboxTransaction(f"checking-{k}-b", "checking", day, Decimal("-65.00"), f"POS {second}", "shopping"),
                SandboxTransaction(f"checking-{k}-n", "checking", day, Decimal("-35.00"), "NSF FEE", "bank_fees"),
            ]
        else:
            found += [
                SandboxTransaction(f"checking-{k}-a", "checking", day, Decimal("-100.00"), f"POS {first}", "shopping"),
                SandboxTransaction(f"checking-{k}-b", "checking", day, Decimal("-100.00"), f"POS {second}", "shopping"),
            ]
        if k == 40:
            found.append(
                SandboxTransaction(
                    f"savings-{k}-w", "savings", day, Decimal("12000.00"), "WIRE TRANSFER IN", "transfer"
                )
            )
        if k % 5 == 2:
            found.append(
                SandboxTransaction(f"card-{k}-c", "card", day, Decimal("-61.50"), "AMAZON MKTP US", "shopping")
            )
    found.append(
        SandboxTransaction("checking-0-pending", "checking", as_of, Decimal("-42.00"), "POS PENDING CAFE", "food", True)
    )
    return found


# --- each provider's documented shapes --------------------------------------------------------------
PLAID_TYPES = {
    "checking": ("depository", "checking"),
    "savings": ("depository", "savings"),
    "credit": ("credit", "credit card"),
}
PLAID_CATEGORIES = {
    "payroll": ("INCOME", "INCOME_WAGES"),
    "shopping": ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_OTHER_GENERAL_MERCHANDISE"),
    "bank_fees": ("BANK_FEES", "BANK_FEES_INSUFFICIENT_FUNDS"),
    "transfer": ("TRANSFER_IN", "TRANSFER_IN_DEPOSIT"),
    "food": ("FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE"),
}
FINICITY_TYPES = {"checking": "checking", "savings": "savings", "credit": "creditCard"}
FINICITY_CATEGORIES = {
    "payroll": "Paycheck",
    "shopping": "Shopping",
    "bank_fees": "Bank Fee",
    "transfer": "Transfer",
    "food": "Coffee Shops",
}
MX_TYPES = {"checking": "CHECKING", "savings": "SAVINGS", "credit": "CREDIT_CARD"}
MX_CATEGORIES = {
    "payroll": ("Paycheck", "Income"),
    "shopping": ("General Merchandise", "Shopping"),
    "bank_fees": ("Bank Fee", "Fees & Charges"),
    "transfer": ("Transfer", "Transfer"),
    "food": ("Coffee Shops", "Food & Dining"),
}


def _money(value: Decimal) -> float:
    return float(value)


def plaid_account(account: SandboxAccount, prefix: str) -> dict[str, object]:
    kind, subtype = PLAID_TYPES[account.kind]
    return {
        "account_id": f"{prefix}{account.key}",
        "balances": {
            "available": _money(account.available) if account.available is not None else None,
            "current": _money(account.current),
            "limit": 5000.0 if kind == "credit" else None,
            "iso_currency_code": "USD",
            "unofficial_currency_code": None,
        },
        "mask": account.number[-4:],
        "name": account.name,
        "official_name": f"{account.name} (Platypus)",
        "type": kind,
        "subtype": subtype,
    }


def plaid_transaction(txn: SandboxTransaction, prefix: str) -> dict[str, object]:
    primary, detailed = PLAID_CATEGORIES[txn.category]
    return {
        "account_id": f"{prefix}{txn.account}",
        "transaction_id": f"{prefix}{txn.key}",
        # Plaid: positive = money out of the account.
        "amount": _money(-txn.amount),
        "iso_currency_code": "USD",
        "unofficial_currency_code": None,
        "date": txn.day.isoformat(),
        "authorized_date": txn.day.isoformat(),
        "name": txn.description,
        "merchant_name": None,
        "pending": txn.pending,
        "pending_transaction_id": None,
        "payment_channel": "other" if txn.category in ("payroll", "transfer", "bank_fees") else "in store",
        "personal_finance_category": {"primary": primary, "detailed": detailed, "confidence_level": "HIGH"},
    }


def finicity_account(account: SandboxAccount, customer_id: str, as_of_epoch: int) -> dict[str, object]:
    detail: dict[str, object] = {}
    if account.available is not None:
        detail["availableBalanceAmount"] = _money(account.available)
    return {
        "id": f"{customer_id}{ACCOUNTS.index(account) + 1:02d}",
        "number": "xxxxxx" + account.number[-4:],
        "realAccountNumberLast4": account.number[-4:],
        "accountNumberDisplay": account.number[-4:],
        "name": account.name,
        "balance": _money(account.current),
        "type": FINICITY_TYPES[account.kind],
        "status": "active",
        "customerId": customer_id,
        "institutionId": "101732",
        "balanceDate": as_of_epoch,
        "aggregationSuccessDate": as_of_epoch,
        "aggregationStatusCode": 0,
        "currency": "USD",
        "detail": detail,
    }


def finicity_transaction(txn: SandboxTransaction, customer_id: str, epoch: int, number: int) -> dict[str, object]:
    account = next(a for a in ACCOUNTS if a.key == txn.account)
    return {
        "id": number,
        "amount": _money(txn.amount),
        "accountId": f"{customer_id}{ACCOUNTS.index(account) + 1:02d}",
        "customerId": customer_id,
        "status": "pending" if txn.pending else "active",
        "description": txn.description,
        "memo": txn.description,
        "type": "credit" if txn.amount > 0 else "debit",
        "postedDate": epoch,
        "transactionDate": epoch,
        "createdDate": epoch,
        "categorization": {
            "normalizedPayeeName": txn.description.title(),
            "category": FINICITY_CATEGORIES[txn.category],
            "bestRepresentation": txn.description,
            "country": "USA",
        },
    }


def mx_account(account: SandboxAccount, user_guid: str, member_guid: str) -> dict[str, object]:
    return {
        "guid": f"ACT-{member_guid[4:12]}-{account.key}",
        "account_number": "XXXXXX" + account.number[-4:],
        "name": account.name,
        "type": MX_TYPES[account.kind],
        "subtype": None,
        "balance": _money(account.current),
        "available_balance": _money(account.available) if account.available is not None else None,
        "currency_code": "USD",
        "institution_code": "first_platypus",
        "member_guid": member_guid,
        "user_guid": user_guid,
        "is_closed": False,
    }


def mx_transaction(txn: SandboxTransaction, user_guid: str, member_guid: str) -> dict[str, object]:
    category, top = MX_CATEGORIES[txn.category]
    return {
        "guid": f"TRN-{member_guid[4:12]}-{txn.key}",
        "account_guid": f"ACT-{member_guid[4:12]}-{txn.account}",
        # MX: an absolute amount, the direction in ``type``.
        "amount": _money(abs(txn.amount)),
        "type": "CREDIT" if txn.amount > 0 else "DEBIT",
        "date": txn.day.isoformat(),
        "posted_at": None if txn.pending else f"{txn.day.isoformat()}T12:00:00Z",
        "status": "PENDING" if txn.pending else "POSTED",
        "description": txn.description.title(),
        "original_description": txn.description,
        "category": category,
        "top_level_category": top,
        "currency_code": "USD",
        "member_guid": member_guid,
        "user_guid": user_guid,
    }
