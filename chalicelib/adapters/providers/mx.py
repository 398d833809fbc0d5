"""MX Platform API: a user per session, a Connect widget URL, member connection-status webhooks.

Session id: the MX ``user_guid`` (one MX user per link session), which every member webhook carries.
Widget URLs expire after 10 minutes or their first use. MX's webhook URL is configured once in the MX
client dashboard, not per request: the intended URL and our reference travel in the user's ``metadata``
so support (and the local sandbox) can see where events go.

Webhooks are authenticated with HTTP basic auth (credentials set in the MX dashboard).

Outcomes from ``connection_status``:
- ``CONNECTED`` -> linked.
- ``DISCONTINUED``, ``DISABLED`` (MX no longer, or not now, aggregates that institution)
  -> ``institution_not_supported``.
- ``EXPIRED`` (the customer left the MFA challenge unanswered) -> ``user_exited``.
- ``FAILED``, ``REJECTED``, ``LOCKED``, ``IMPEDED``, ``PREVENTED`` -> ``provider_error``.
- anything else (``CREATED``, ``PENDING``, ``CHALLENGED``, ``DENIED`` the customer can retry, ...) is ignored.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from datetime import UTC, date, datetime, timedelta
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
    short,
    text,
)
from chalicelib.adapters.providers.http import JsonHttp, JsonResponse, field, required_text
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
    from collections.abc import Mapping

    from chalicelib.adapters.providers.base import PartnerSecrets
    from chalicelib.config import Settings
    from chalicelib.domain.bank_link import CustomerInfo

KEY = Provider("mx")
ACCEPT = "application/vnd.mx.api.v1+json"
WIDGET_URL_LIFETIME = timedelta(minutes=10)

UNSUPPORTED_STATUSES = frozenset({"DISCONTINUED", "DISABLED"})
EXIT_STATUSES = frozenset({"EXPIRED"})
ERROR_STATUSES = frozenset({"FAILED", "REJECTED", "LOCKED", "IMPEDED", "PREVENTED"})
MAX_PAGES = 200
ACCOUNT_TYPES = {
    "CHECKING": AccountType.CHECKING,
    "SAVINGS": AccountType.SAVINGS,
    "MONEY_MARKET": AccountType.SAVINGS,
    "CERTIFICATE_OF_DEPOSIT": AccountType.SAVINGS,
    "CREDIT_CARD": AccountType.CREDIT,
    "LINE_OF_CREDIT": AccountType.CREDIT,
    "LOAN": AccountType.LOAN,
    "MORTGAGE": AccountType.LOAN,
    "INVESTMENT": AccountType.INVESTMENT,
}


class MxClient:
    provider = KEY

    def __init__(
        self, base_url: str, client_id: str, api_key: str, *, http: JsonHttp | None = None, page_size: int = 250
    ) -> None:
        self._page_size = page_size
        self._auth = (client_id, api_key)
        self._http = http or JsonHttp("mx", base_url)

    def create_link_session(
        self, customer: CustomerInfo, *, webhook_url: str, redirect_url: str, reference: str
    ) -> LinkSession:
        """Create an MX user and a Connect widget URL for it. Raises :class:`ProviderError`."""
        language = "fr-CA" if customer.locale.startswith("fr") else "en-US"
        user = self._call(
            "/users",
            {
                "user": {
                    # MX user ids are unique per client: a fresh one per session keeps retries from colliding.
                    "id": f"onb-{secrets.token_hex(12)}",
                    "email": customer.email,
                    "metadata": json.dumps({"reference": reference, "webhook_url": webhook_url}),
                }
            },
            language,
        )
        user_guid = required_text("mx", user, "user", "guid")
        widget = self._call(
            f"/users/{user_guid}/widget_urls",
            {
                "widget_url": {
                    "widget_type": "connect_widget",
                    "mode": "aggregation",
                    "client_redirect_url": redirect_url,
                    "include_transactions": True,
                    "is_mobile_webview": False,
                }
            },
            language,
        )
        return LinkSession(
            provider=KEY,
            session_id=user_guid,
            link_url=required_text("mx", widget, "widget_url", "url"),
            expires_at=datetime.now(UTC) + WIDGET_URL_LIFETIME,
        )

    # --- financial data --------------------------------------------------------------------------
    def connect(self, credential: str) -> Connection:
        """``<user_guid>/<member_guid>`` from the CONNECTED webhook is the connection itself."""
        return Connection(KEY, credential)

    def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
        """The member (still aggregating -> DataNotReady), its institution, accounts and transactions.

        Raises DataNotReady, RateLimited, ProviderError.
        """
        user_guid, _, member_guid = connection.access.partition("/")
        base = f"/users/{user_guid}/members/{member_guid}"
        member = self._get(base, {})
        if field(member, "member", "is_being_aggregated"):
            raise DataNotReady("mx is still aggregating the member")
        raw: list[tuple[str, Any]] = [("member", member)]
        institution = None
        code = text(field(member, "member", "institution_code"))
        if code:
            answer = self._get(f"/institutions/{code}", {})
            raw.append(("institution", answer))
            institution = text(field(answer, "institution", "name"))
        accounts = self._pages(f"{base}/accounts", "accounts", {}, raw)
        transactions = self._pages(
            f"{base}/transactions",
            "transactions",
            {"from_date": start.isoformat(), "to_date": end.isoformat()},
            raw,
        )
        return Fetched(normalise_mx(accounts, institution, transactions, start, end, datetime.now(UTC)), raw)

    def _pages(self, path: str, name: str, params: dict[str, Any], raw: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self._get(path, {**params, "page": page, "records_per_page": self._page_size})
            raw.append((f"{name}_{page:03d}", answer))
            rows += [r for r in field(answer, name) or [] if isinstance(r, dict)]
            total = field(answer, "pagination", "total_pages")
            if not isinstance(total, int) or page >= total:
                return rows
        raise ProviderError("mx returned more pages than expected")

    def revoke(self, connection: Connection) -> None:
        """Delete the MX member (its accounts and transactions go with it); 404 means already gone."""
        user_guid, _, member_guid = connection.access.partition("/")
        response = self._http.delete(
            f"/users/{user_guid}/members/{member_guid}", headers={"Accept": ACCEPT}, auth=self._auth
        )
        if response.status not in (200, 202, 204, 404):
            self._refused("/users/{guid}/members/{guid}", response)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = self._http.get(path, params, headers={"Accept": ACCEPT}, auth=self._auth)
        if response.status != 200:
            self._refused("/users/{guid}/members/{guid}/..." if path.startswith("/users/") else path, response)
        return response.body

    def _refused(self, path: str, response: JsonResponse) -> NoReturn:
        logger.warning("mx refused a request", extra={"path": path, "status": response.status})
        code = field(response.body, "error", "status")
        partner_code = str(code) if code is not None else None
        if response.status == 429:
            raise RateLimited("mx asked us to slow down", partner_code=partner_code)
        raise ProviderError("mx refused the request", partner_code=partner_code)

    def _call(self, path: str, body: dict[str, Any], language: str) -> Any:
        response = self._http.post(
            path,
            body,
            headers={"Accept": ACCEPT, "Accept-Language": language},
            auth=self._auth,
        )
        if response.status in (200, 201, 202):
            return response.body
        message_code = field(response.body, "error", "status")
        logger.warning(
            "mx refused a request",
            # The path's user guid is not secret, but a template keeps log lines groupable.
            extra={"path": "/users/{guid}/widget_urls" if "widget_urls" in path else path, "status": response.status},
        )
        raise ProviderError(
            "mx refused the request",
            retryable=response.status == 429,
            partner_code=str(message_code) if message_code is not None else None,
        )


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def verify_mx(headers: Mapping[str, str], body: bytes, username: str, password: str) -> ProviderOutcome | None:
    """Check HTTP basic auth (constant time, user and password both compared) and normalise the webhook.

    Raises :class:`WebhookRejected` for missing or wrong credentials.
    """
    authorization = header(headers, "Authorization")
    if not authorization or not authorization[:6].lower() == "basic ":
        raise WebhookUnsigned("missing basic credentials")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookUnsigned("malformed basic credentials") from exc
    given_user, sep, given_password = decoded.partition(b":")
    user_ok = hmac.compare_digest(given_user, username.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    if not (sep and user_ok and password_ok):
        raise WebhookRejected("wrong basic credentials")
    return parse_mx(json_object(body))


def parse_mx(payload: dict[str, Any]) -> ProviderOutcome | None:
    kind = payload.get("type")
    status = text(payload.get("connection_status"))
    user_guid = text(payload.get("user_guid"))
    member_guid = text(payload.get("member_guid"))
    if not isinstance(kind, str) or not kind.startswith("MEMBER") or not (status and user_guid and member_guid):
        return None
    action = text(payload.get("action")) or kind
    event_id = f"{member_guid}:{action}:{status}"
    detail = short(status)
    if status == "CONNECTED":
        return linked(KEY, user_guid, event_id, detail, f"{user_guid}/{member_guid}")
    if status in UNSUPPORTED_STATUSES:
        return failed(KEY, user_guid, event_id, ErrorClass.INSTITUTION_NOT_SUPPORTED, detail)
    if status in EXIT_STATUSES:
        return failed(KEY, user_guid, event_id, ErrorClass.USER_EXITED, detail)
    if status in ERROR_STATUSES:
        return failed(KEY, user_guid, event_id, ErrorClass.PROVIDER_ERROR, detail)
    return None


def normalise_mx(
    accounts: list[dict[str, Any]],
    institution: str | None,
    transactions: list[dict[str, Any]],
    start: date,
    end: date,
    fetched_at: datetime,
) -> FinancialData:
    """MX accounts + transactions -> the normalised model. MX amounts are absolute; ``type`` CREDIT is money
    in and DEBIT money out."""
    normalised_accounts = []
    ids: dict[str, str] = {}
    for raw in accounts:
        provider_id = str(raw["guid"])
        ids[provider_id] = account_id_for(KEY, provider_id)
        kind = str(raw.get("type") or "")
        normalised_accounts.append(
            Account(
                account_id=ids[provider_id],
                provider_account_id=provider_id,
                name=text(raw.get("name")) or "Account",
                mask=mask_of(text(raw.get("account_number"))),
                type=ACCOUNT_TYPES.get(kind, AccountType.OTHER),
                subtype=text(raw.get("subtype")) or (kind.lower() or None),
                currency=text(raw.get("currency_code")) or "USD",
                institution=institution,
                current_balance=decimal_or_none(raw.get("balance")),
                available_balance=decimal_or_none(raw.get("available_balance")),
                as_of=end,
            )
        )
    normalised = []
    for raw in transactions:
        account_id = ids.get(str(raw.get("account_guid")))
        try:
            day = date.fromisoformat(str(raw.get("date")))
        except ValueError:
            continue
        if account_id is None or not start <= day <= end:
            continue
        amount = abs(decimal_or_none(raw.get("amount")) or Decimal(0))
        normalised.append(
            Transaction(
                transaction_id=str(raw["guid"]),
                account_id=account_id,
                date=day,
                amount=amount if raw.get("type") == "CREDIT" else -amount,
                description=text(raw.get("original_description")) or text(raw.get("description")) or "",
                category=text(raw.get("category")),
                pending=raw.get("status") == "PENDING",
            )
        )
    normalised.sort(key=lambda t: (t.date, t.transaction_id))
    return FinancialData(
        provider=KEY,
        institution=institution,
        fetched_at=fetched_at,
        period_start=start,
        period_end=end,
        accounts=normalised_accounts,
        transactions=normalised,
    )


def adapter(settings: Settings, store: PartnerSecrets) -> Adapter:
    """The registry's entry point: the client (link sessions, financial data) and its webhook verifier."""
    client = MxClient(
        settings.partner(KEY, "base_url"),
        settings.partner(KEY, "client_id"),
        store.get(partner_secret(KEY, "api-key")),
    )
    username, password = settings.partner(KEY, "webhook_username"), partner_secret(KEY, "webhook-password")
    return Adapter(
        client, lambda headers, body: store.verify(password, lambda value: verify_mx(headers, body, username, value))
    )
