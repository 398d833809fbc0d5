"""Mastercard Open Banking (Finicity) Connect: partner token, customer, ``/connect/v2/generate``, webhooks.

Session id: one we mint and pass in ``webhookData`` (Connect echoes ``webhookData`` in every event), so the
webhook finds its session even when several Connect URLs exist for one Finicity customer.

Signature: ``X-Signature`` is the hex HMAC-SHA256 of the raw body keyed with the webhook secret (the
partner secret in Mastercard's documentation; kept as its own setting here). There is no timestamp in the
signature, so a replay is possible: the ``eventId`` dedupe is what makes it harmless.

Outcomes:
- ``done`` (sent after ``added`` when the customer finishes) -> linked.
- ``institutionNotSupported``, ``institutionNotFound`` -> ``institution_not_supported``.
- ``unableToConnect``, ``error`` -> ``provider_error``.
- ``cancel`` / ``exit`` (Connect's documented exit: code 100, reason ``exit``) -> ``user_exited``.
- everything else (``ping``, ``started``, ``added``, ``invalidCredentials`` the customer can retry, ...)
  is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.adapters.providers.base import (
    Adapter,
    Connection,
    DataNotReady,
    Fetched,
    ProviderError,
    RateLimited,
    WebhookRejected,
    WebhookUnsigned,
    header,
    json_object,
    text,
)
from chalicelib.adapters.providers.http import JsonHttp, field, required_text
from chalicelib.config import partner_secret
from chalicelib.domain.bank_link import ErrorClass, LinkSession, ProviderOutcome, failed, linked
from chalicelib.domain.financial import (
    Account,
    AccountType,
    FinancialData,
    Transaction,
    account_id_for,
    decimal_or_none,
    mask_of,
)
from chalicelib.domain.providers import Provider
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from chalicelib.adapters.providers.base import PartnerSecrets
    from chalicelib.config import Settings
    from chalicelib.domain.bank_link import CustomerInfo

KEY = Provider("finicity")
SIGNATURE_HEADER = "X-Signature"
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")  # what sign_finicity gives (the header is read lower-cased)
# Partner tokens live two hours; renew well before.
TOKEN_TTL_S = 90 * 60

SUCCESS_EVENTS = frozenset({"done"})
UNSUPPORTED_EVENTS = frozenset({"institutionNotSupported", "institutionNotFound"})
ERROR_EVENTS = frozenset({"unableToConnect", "error"})
EXIT_EVENTS = frozenset({"cancel", "exit"})
MAX_TRANSACTION_PAGES = 100
ACCOUNT_TYPES = {
    "checking": AccountType.CHECKING,
    "savings": AccountType.SAVINGS,
    "moneyMarket": AccountType.SAVINGS,
    "cd": AccountType.SAVINGS,
    "creditCard": AccountType.CREDIT,
    "lineOfCredit": AccountType.CREDIT,
    "loan": AccountType.LOAN,
    "mortgage": AccountType.LOAN,
    "studentLoan": AccountType.LOAN,
    "investment": AccountType.INVESTMENT,
    "brokerageAccount": AccountType.INVESTMENT,
}


class FinicityClient:
    provider = KEY

    def __init__(
        self,
        base_url: str,
        app_key: str,
        partner_id: str,
        partner_secret: str,
        *,
        http: JsonHttp | None = None,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = 1000,
    ) -> None:
        self._page_size = page_size
        self._app_key = app_key
        self._partner_id = partner_id
        self._partner_secret = partner_secret
        self._http = http or JsonHttp("finicity", base_url)
        self._clock = clock
        self._token: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def create_link_session(
        self, customer: CustomerInfo, *, webhook_url: str, redirect_url: str, reference: str
    ) -> LinkSession:
        """Create a Finicity customer and a single-use Connect URL for it. Raises :class:`ProviderError`."""
        session_id = f"fin_{secrets.token_hex(16)}"
        customer_id = self._create_customer(customer, session_id)
        answer = self._call(
            "/connect/v2/generate",
            {
                "partnerId": self._partner_id,
                "customerId": customer_id,
                "redirectUri": redirect_url,
                "webhook": webhook_url,
                "webhookContentType": "application/json",
                "webhookData": {"session_id": session_id, "reference": reference},
                "singleUseUrl": True,
                "language": "fr-CA" if customer.locale.startswith("fr") else "en-US",
            },
        )
        return LinkSession(
            provider=KEY,
            session_id=session_id,
            link_url=required_text("finicity", answer, "link"),
            expires_at=None,
        )

    def _create_customer(self, customer: CustomerInfo, session_id: str) -> str:
        # Usernames are unique per partner: one customer per session keeps retries from colliding.
        answer = self._call(
            "/aggregation/v2/customers/active",
            {
                "username": f"onb-{session_id}",
                "firstName": customer.first_name or "Customer",
                "lastName": customer.last_name or "Applicant",
            },
        )
        customer_id = field(answer, "id")
        if not isinstance(customer_id, str | int) or customer_id == "":
            raise ProviderError("finicity answered unexpectedly")
        return str(customer_id)

    # --- financial data --------------------------------------------------------------------------
    def connect(self, credential: str) -> Connection:
        """The Finicity customer id the ``done`` event named is the connection itself."""
        return Connection(KEY, credential)

    def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
        """Customer accounts, their institution's name, then the customer's transactions page by page.

        Raises DataNotReady while no account has been aggregated yet, RateLimited, ProviderError.
        """
        customer = connection.access
        accounts = self._get(f"/aggregation/v1/customers/{customer}/accounts", {})
        listed = field(accounts, "accounts") or []
        if not listed or not any(isinstance(a, dict) and a.get("aggregationSuccessDate") for a in listed):
            raise DataNotReady("finicity has not aggregated the accounts yet")
        raw: list[tuple[str, Any]] = [("accounts", accounts)]
        institution = None
        institution_id = field(listed[0], "institutionId")
        if institution_id is not None:
            answer = self._get(f"/institution/v2/institutions/{institution_id}", {})
            raw.append(("institution", answer))
            institution = text(field(answer, "institution", "name"))
        transactions: list[dict[str, Any]] = []
        window = {
            "fromDate": int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()),
            "toDate": int(datetime(end.year, end.month, end.day, 23, 59, 59, tzinfo=UTC).timestamp()),
            "limit": self._page_size,
            "sort": "asc",
        }
        for page in range(1, MAX_TRANSACTION_PAGES + 1):
            answer = self._get(f"/aggregation/v3/customers/{customer}/transactions", {**window, "start": page})
            raw.append((f"transactions_{page:03d}", answer))
            transactions += [t for t in field(answer, "transactions") or [] if isinstance(t, dict)]
            if not field(answer, "moreAvailable"):
                break
        else:
            raise ProviderError("finicity returned more transaction pages than expected")
        return Fetched(normalise_finicity(accounts, institution, transactions, start, end, datetime.now(UTC)), raw)

    def revoke(self, connection: Connection) -> None:
        """Delete the Finicity customer (its accounts and consent go with it); 404 means already gone."""
        path = f"/aggregation/v1/customers/{connection.access}"
        response = self._http.delete(path, headers=self._headers(self._partner_token()))
        if response.status not in (200, 204, 404):
            self._refused("/aggregation/v1/customers/{id}", response.status, response.body)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = self._http.get(path, params, headers=self._headers(self._partner_token()))
        if response.status == 401:
            response = self._http.get(path, params, headers=self._headers(self._partner_token(renew=True)))
        if response.status != 200:
            self._refused(
                path.split("/customers/")[0] + "/customers/{id}" if "/customers/" in path else path,
                response.status,
                response.body,
            )
        return response.body

    def _partner_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if not renew and self._token is not None and self._token[0] > self._clock():
                return self._token[1]
            response = self._http.post(
                "/aggregation/v2/partners/authentication",
                {"partnerId": self._partner_id, "partnerSecret": self._partner_secret},
                headers=self._headers(),
            )
            if response.status != 200:
                self._refused("/aggregation/v2/partners/authentication", response.status, response.body)
            token = required_text("finicity", response.body, "token")
            self._token = (self._clock() + TOKEN_TTL_S, token)
            return token

    def _call(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post(path, body, headers=self._headers(self._partner_token()))
        if response.status == 401:  # token revoked or expired early: renew once
            response = self._http.post(path, body, headers=self._headers(self._partner_token(renew=True)))
        if response.status not in (200, 201):
            self._refused(path, response.status, response.body)
        return response.body

    def _headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"Finicity-App-Key": self._app_key, "Accept": "application/json"}
        if token is not None:
            headers["Finicity-App-Token"] = token
        return headers

    @staticmethod
    def _refused(path: str, status: int, body: Any) -> NoReturn:
        code = field(body, "code")
        logger.warning("finicity refused a request", extra={"path": path, "status": status, "error_code": code})
        if status == 429:
            raise RateLimited("finicity asked us to slow down", partner_code=str(code) if code is not None else None)
        raise ProviderError(
            "finicity refused the request",
            retryable=status == 429,
            partner_code=str(code) if code is not None else None,
        )


def sign_finicity(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_finicity(headers: Mapping[str, str], body: bytes, secret: str) -> ProviderOutcome | None:
    """Check ``X-Signature`` (hex HMAC-SHA256 of the raw body) and normalise the Connect event.

    Raises :class:`WebhookRejected` for a missing or wrong signature.
    """
    signature = (header(headers, SIGNATURE_HEADER) or "").strip().lower()
    if not signature:
        raise WebhookUnsigned("missing X-Signature header")
    if not HEX_SHA256.fullmatch(signature):
        raise WebhookUnsigned("X-Signature is not a hex HMAC-SHA256")
    expected = sign_finicity(body, secret)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise WebhookRejected("signature does not match the body")
    return parse_finicity(json_object(body))


def parse_finicity(payload: dict[str, Any]) -> ProviderOutcome | None:
    event_type = text(payload.get("eventType"))
    session_id = text(field(payload, "webhookData", "session_id"))
    if event_type is None or session_id is None:
        return None  # ping, or an event for a Connect URL we did not create
    event_id = text(payload.get("eventId")) or f"{session_id}:{event_type}"
    if event_type in SUCCESS_EVENTS:
        customer_id = payload.get("customerId")
        credential = str(customer_id) if isinstance(customer_id, str | int) and customer_id != "" else None
        return linked(KEY, session_id, event_id, event_type, credential)
    if event_type in UNSUPPORTED_EVENTS:
        return failed(KEY, session_id, event_id, ErrorClass.INSTITUTION_NOT_SUPPORTED, event_type)
    if event_type in ERROR_EVENTS:
        code = field(payload, "payload", "code")
        detail = f"{event_type} {code}" if isinstance(code, int) else event_type
        return failed(KEY, session_id, event_id, ErrorClass.PROVIDER_ERROR, detail)
    if event_type in EXIT_EVENTS:
        return failed(KEY, session_id, event_id, ErrorClass.USER_EXITED, event_type)
    return None


def _epoch_day(value: Any) -> date | None:
    try:
        return datetime.fromtimestamp(int(value), UTC).date()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def normalise_finicity(
    accounts_answer: Any,
    institution: str | None,
    transactions: list[dict[str, Any]],
    start: date,
    end: date,
    fetched_at: datetime,
) -> FinancialData:
    """Finicity accounts + transactions -> the normalised model. Finicity already signs amounts our way
    (deposits positive, debits negative); dates are epoch seconds (``postedDate``)."""
    accounts = []
    ids: dict[str, str] = {}
    for raw in field(accounts_answer, "accounts") or []:
        provider_id = str(raw["id"])
        ids[provider_id] = account_id_for(KEY, provider_id)
        kind = str(raw.get("type") or "")
        accounts.append(
            Account(
                account_id=ids[provider_id],
                provider_account_id=provider_id,
                name=text(raw.get("name")) or "Account",
                mask=mask_of(text(raw.get("realAccountNumberLast4")) or text(raw.get("number"))),
                type=ACCOUNT_TYPES.get(kind, AccountType.OTHER),
                subtype=kind or None,
                currency=text(raw.get("currency")) or "USD",
                institution=institution,
                current_balance=decimal_or_none(raw.get("balance")),
                available_balance=decimal_or_none(field(raw, "detail", "availableBalanceAmount")),
                as_of=end,
            )
        )
    normalised = []
    for raw in transactions:
        day = _epoch_day(raw.get("postedDate") or raw.get("transactionDate"))
        account_id = ids.get(str(raw.get("accountId")))
        if day is None or account_id is None or not start <= day <= end:
            continue
        normalised.append(
            Transaction(
                transaction_id=str(raw["id"]),
                account_id=account_id,
                date=day,
                amount=decimal_or_none(raw.get("amount")) or Decimal(0),
                description=text(raw.get("description")) or text(raw.get("memo")) or "",
                category=text(field(raw, "categorization", "category")),
                pending=raw.get("status") == "pending",
            )
        )
    normalised.sort(key=lambda t: (t.date, t.transaction_id))
    return FinancialData(
        provider=KEY,
        institution=institution,
        fetched_at=fetched_at,
        period_start=start,
        period_end=end,
        accounts=accounts,
        transactions=normalised,
    )


def adapter(settings: Settings, store: PartnerSecrets) -> Adapter:
    """The registry's entry point: the client (link sessions, financial data) and its webhook verifier."""
    client = FinicityClient(
        settings.partner(KEY, "base_url"),
        store.get(partner_secret(KEY, "app-key")),
        settings.partner(KEY, "partner_id"),
        store.get(partner_secret(KEY, "partner-secret")),
    )
    webhook_secret = partner_secret(KEY, "webhook-secret")
    return Adapter(
        client,
        lambda headers, body: store.verify(webhook_secret, lambda value: verify_finicity(headers, body, value)),
    )
