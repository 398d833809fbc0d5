"""Plaid Hosted Link: ``/link/token/create`` with ``hosted_link``, ``LINK`` webhooks, webhook verification.

Session id: the ``link_token``. Plaid creates the ``link_session_id`` only when the customer opens Link, but
every ``LINK`` webhook carries the ``link_token`` the session was created with.

Outcomes:
- ``SESSION_FINISHED`` ``SUCCESS`` -> linked; ``EXITED`` -> ``user_exited``.
- ``EVENTS`` (Hosted Link's summary of the session, sent when the session ends) -> a failure only when the
  customer left after an error that says more than "exited": an institution that cannot be linked
  (``institution_not_supported``) or an institution/Plaid fault (``provider_error``). Otherwise ignored.
  Both webhooks arrive for a failed session, in either order; whichever the waterfall sees first decides.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from jwt.algorithms import ECAlgorithm

from chalicelib.adapters.providers.base import (
    Adapter,
    Connection,
    DataNotReady,
    Fetched,
    ProviderError,
    RateLimited,
    WebhookRejected,
    header,
    json_object,
    short,
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

KEY = Provider("plaid")
VERIFICATION_HEADER = "Plaid-Verification"
MAX_WEBHOOK_AGE_S = 5 * 60
# A token signed a little in the future is clock skew, not an attack.
MAX_CLOCK_SKEW_S = 30
HOSTED_LINK_LIFETIME_S = 4 * 60 * 60
# /transactions/sync: at most this many pages (500 transactions each) per fetch; two years fit in far fewer.
MAX_SYNC_PAGES = 200
# What Plaid has pulled when it reports INITIAL_UPDATE_COMPLETE; a longer window waits for the history.
INITIAL_UPDATE_DAYS = 30

# Error codes after which another provider may well succeed where Plaid cannot.
UNSUPPORTED_INSTITUTION_CODES = frozenset(
    {
        "INSTITUTION_NOT_SUPPORTED",
        "INSTITUTION_NO_LONGER_SUPPORTED",
        "INSTITUTION_NOT_ENABLED_IN_ENVIRONMENT",
        "INSTITUTION_NOT_FOUND",
        "PRODUCTS_NOT_SUPPORTED",
        "PRODUCT_NOT_ENABLED",
        "UNAUTHORIZED_INSTITUTION",
        "NO_ACCOUNTS",
        "NO_AUTH_ACCOUNTS",
    }
)
# Error types that are the institution's or Plaid's fault rather than the customer's.
PROVIDER_FAULT_TYPES = frozenset({"INSTITUTION_ERROR", "API_ERROR", "RATE_LIMIT_EXCEEDED"})


class PlaidClient:
    provider = KEY

    def __init__(
        self,
        base_url: str,
        client_id: str,
        secret: str,
        *,
        client_name: str = "Lender onboarding",
        http: JsonHttp | None = None,
        page_size: int = 500,
    ) -> None:
        self._page_size = page_size
        self._client_id = client_id
        self._secret = secret
        self._client_name = client_name
        self._http = http or JsonHttp("plaid", base_url)

    def create_link_session(
        self, customer: CustomerInfo, *, webhook_url: str, redirect_url: str, reference: str
    ) -> LinkSession:
        """``/link/token/create`` for Hosted Link. Raises :class:`ProviderError`."""
        user: dict[str, Any] = {"client_user_id": reference, "email_address": customer.email}
        if customer.phone:
            user["phone_number"] = customer.phone
        body = {
            "client_name": self._client_name,
            "language": "fr" if customer.locale.startswith("fr") else "en",
            "country_codes": ["US", "CA"],
            "user": user,
            "products": ["transactions"],
            "webhook": webhook_url,
            "hosted_link": {
                "completion_redirect_uri": redirect_url,
                "url_lifetime_seconds": HOSTED_LINK_LIFETIME_S,
            },
        }
        answer = self._post("/link/token/create", body)
        link_token = required_text("plaid", answer, "link_token")
        hosted_link_url = required_text("plaid", answer, "hosted_link_url")
        return LinkSession(
            provider=KEY,
            session_id=link_token,
            link_url=hosted_link_url,
            expires_at=_parse_time(field(answer, "expiration")),
        )

    def get_webhook_verification_key(self, key_id: str) -> dict[str, Any] | None:
        """The JWK for ``key_id``, or None when Plaid does not know the id. Raises :class:`ProviderError`."""
        try:
            answer = self._post("/webhook_verification_key/get", {"key_id": key_id})
        except ProviderError as exc:
            if exc.partner_code == "INVALID_WEBHOOK_VERIFICATION_KEY_ID":
                return None
            raise
        key = field(answer, "key")
        if not isinstance(key, dict):
            raise ProviderError("plaid answered unexpectedly")
        return key

    # --- financial data --------------------------------------------------------------------------
    def connect(self, credential: str) -> Connection:
        """``/item/public_token/exchange``: the link's public token for a lasting access token."""
        answer = self._post("/item/public_token/exchange", {"public_token": credential})
        return Connection(KEY, required_text("plaid", answer, "access_token"), text(field(answer, "item_id")))

    def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
        """``/accounts/get`` then ``/transactions/sync`` from an empty cursor until ``has_more`` is false.

        Raises DataNotReady while Plaid's history pull is not complete enough for the window, RateLimited,
        ProviderError.
        """
        accounts = self._post("/accounts/get", {"access_token": connection.access})
        days = (end - start).days + 1
        for _ in range(2):
            try:
                transactions, pages = self._sync(connection.access, days)
                break
            except ProviderError as exc:
                # Documented: restart pagination from the first cursor when data changed meanwhile.
                if exc.partner_code != "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION":
                    raise
        else:
            raise DataNotReady("plaid data kept changing during paging", partner_code="TRANSACTIONS_SYNC_MUTATION")
        raw: list[tuple[str, Any]] = [("accounts_get", accounts)]
        raw += [(f"transactions_sync_{n:03d}", page) for n, page in enumerate(pages, start=1)]
        return Fetched(normalise_plaid(accounts, transactions, start, end, datetime.now(UTC)), raw)

    def _sync(self, access_token: str, days: int) -> tuple[list[dict[str, Any]], list[Any]]:
        found: dict[str, dict[str, Any]] = {}
        pages: list[Any] = []
        cursor = ""
        for _ in range(MAX_SYNC_PAGES):
            body: dict[str, Any] = {
                "access_token": access_token,
                "count": self._page_size,
                "options": {"days_requested": min(days, 730), "include_original_description": True},
            }
            if cursor:
                body["cursor"] = cursor
            answer = self._post("/transactions/sync", body)
            pages.append(answer)
            status = field(answer, "transactions_update_status")
            if status == "NOT_READY" or (status == "INITIAL_UPDATE_COMPLETE" and days > INITIAL_UPDATE_DAYS):
                raise DataNotReady("plaid is still pulling the transactions", partner_code=str(status))
            for txn in [*(field(answer, "added") or []), *(field(answer, "modified") or [])]:
                if isinstance(txn, dict) and isinstance(txn.get("transaction_id"), str):
                    found[txn["transaction_id"]] = txn
            for gone in field(answer, "removed") or []:
                if isinstance(gone, dict):
                    found.pop(str(gone.get("transaction_id")), None)
            cursor = text(field(answer, "next_cursor")) or ""
            if not field(answer, "has_more"):
                return list(found.values()), pages
        raise ProviderError("plaid returned more transaction pages than expected")

    def revoke(self, connection: Connection) -> None:
        """``/item/remove``; an item Plaid no longer knows is already revoked."""
        try:
            self._post("/item/remove", {"access_token": connection.access})
        except ProviderError as exc:
            if exc.partner_code not in ("ITEM_NOT_FOUND", "INVALID_ACCESS_TOKEN"):
                raise

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post(path, {"client_id": self._client_id, "secret": self._secret, **body})
        if response.status == 200:
            return response.body
        error_code = text(field(response.body, "error_code"))
        error_type = text(field(response.body, "error_type"))
        logger.warning(
            "plaid refused a request",
            extra={"path": path, "status": response.status, "error_type": error_type, "error_code": error_code},
        )
        if error_code == "PRODUCT_NOT_READY":
            raise DataNotReady("plaid has not gathered the data yet", partner_code=error_code)
        if response.status == 429 or error_type == "RATE_LIMIT_EXCEEDED":
            raise RateLimited("plaid asked us to slow down", partner_code=error_code)
        if error_code in UNSUPPORTED_INSTITUTION_CODES:
            raise ProviderError(
                "plaid cannot link this institution",
                error_class=ErrorClass.INSTITUTION_NOT_SUPPORTED,
                partner_code=error_code,
            )
        raise ProviderError(
            "plaid refused the request",
            retryable=response.status == 429 or error_type in PROVIDER_FAULT_TYPES,
            partner_code=error_code,
        )


class PlaidKeyCache:
    """``key_fetcher`` for :func:`verify_plaid`: JWKs by ``kid``, fetched through Plaid and kept in-process.

    A key is refetched after ``ttl_s`` so that one Plaid has since expired stops verifying; an unknown
    ``kid`` is remembered for ``miss_ttl_s``, and after a miss no other uncached id is looked up for
    ``fetch_interval_s``, so forged ids (a new one on every request) cannot make each request call
    Plaid. A genuine new ``kid`` arriving right after a forged one is refused once; Plaid retries.
    """

    def __init__(
        self,
        client: PlaidClient,
        *,
        ttl_s: float = 3600,
        miss_ttl_s: float = 60,
        fetch_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._miss_ttl_s = miss_ttl_s
        self._clock = clock
        self._keys: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        self._fetch_interval_s = fetch_interval_s
        self._next_fetch = float("-inf")

    def __call__(self, kid: str) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            cached = self._keys.get(kid)
        if cached is None or cached[0] <= now:
            with self._lock:
                throttled = cached is None and now < self._next_fetch
            if throttled:
                raise WebhookRejected("unknown verification key id (lookups throttled)")
            key = self._client.get_webhook_verification_key(kid)
            if key is None:
                with self._lock:
                    self._next_fetch = now + self._fetch_interval_s
            cached = (now + (self._ttl_s if key is not None else self._miss_ttl_s), key)
            with self._lock:
                self._keys[kid] = cached
        key = cached[1]
        if key is None:
            raise WebhookRejected("unknown verification key id")
        expired_at = key.get("expired_at")
        if isinstance(expired_at, int | float) and expired_at <= now:
            raise WebhookRejected("verification key expired")
        return key


def verify_plaid(
    headers: Mapping[str, str],
    body: bytes,
    key_fetcher: Callable[[str], dict[str, Any]],
    *,
    now: float | None = None,
) -> ProviderOutcome | None:
    """Verify the ``Plaid-Verification`` JWT over ``body`` and normalise the webhook.

    Returns None for webhooks we acknowledge without acting on. Raises :class:`WebhookRejected` (401) for a
    missing, malformed, wrongly signed or stale token or a body that does not match it;
    :class:`ProviderError` when the key cannot be fetched (answer 5xx: Plaid retries).
    """
    token = header(headers, VERIFICATION_HEADER)
    if not token:
        raise WebhookRejected("missing Plaid-Verification header")
    try:
        unverified = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise WebhookRejected("malformed verification token") from exc
    if unverified.get("alg") != "ES256":
        raise WebhookRejected("verification token algorithm is not ES256")
    kid = unverified.get("kid")
    if not isinstance(kid, str) or not kid:
        raise WebhookRejected("verification token has no key id")
    jwk = key_fetcher(kid)
    if jwk.get("alg", "ES256") != "ES256" or jwk.get("kty") != "EC" or jwk.get("crv", "P-256") != "P-256":
        raise WebhookRejected("verification key is not an ES256 key")
    try:
        public_key = ECAlgorithm.from_jwk(json.dumps({k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}))
        if not isinstance(public_key, EllipticCurvePublicKey):
            raise WebhookRejected("verification key is not a public key")
        claims = jwt.decode(
            token,
            key=public_key,
            algorithms=["ES256"],
            options={"require": ["iat"], "verify_aud": False},
            leeway=MAX_CLOCK_SKEW_S,
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise WebhookRejected("verification token signature does not verify") from exc
    issued_at = claims.get("iat")
    current = time.time() if now is None else now
    if not isinstance(issued_at, int | float) or current - issued_at > MAX_WEBHOOK_AGE_S:
        raise WebhookRejected("verification token is too old")
    if issued_at - current > MAX_CLOCK_SKEW_S:
        raise WebhookRejected("verification token is issued in the future")
    claimed = claims.get("request_body_sha256")
    if not isinstance(claimed, str) or not hmac.compare_digest(
        hashlib.sha256(body).hexdigest().encode(), claimed.lower().encode()
    ):
        raise WebhookRejected("body does not match the signed hash")
    return parse_plaid(json_object(body))


def parse_plaid(payload: dict[str, Any]) -> ProviderOutcome | None:
    """Normalise a verified Plaid webhook (see the module docstring for the mapping)."""
    if payload.get("webhook_type") != "LINK":
        return None
    code = payload.get("webhook_code")
    link_token = text(payload.get("link_token"))
    link_session_id = text(payload.get("link_session_id"))
    if link_token is None or link_session_id is None:
        return None
    event_id = f"{link_session_id}:{code}"
    if code == "SESSION_FINISHED":
        status = payload.get("status")
        if status == "SUCCESS":
            tokens = payload.get("public_tokens")
            credential = text(tokens[0]) if isinstance(tokens, list) and tokens else None
            return linked(KEY, link_token, event_id, "SESSION_FINISHED SUCCESS", credential)
        if status == "EXITED":
            return failed(KEY, link_token, event_id, ErrorClass.USER_EXITED, "SESSION_FINISHED EXITED")
        return None
    if code == "EVENTS":
        return _from_events(link_token, event_id, payload.get("events"))
    return None


def _from_events(link_token: str, event_id: str, events: Any) -> ProviderOutcome | None:
    if not isinstance(events, list):
        return None
    names = [e.get("event_name") for e in events if isinstance(e, dict)]
    if "HANDOFF" in names:  # the session succeeded; SESSION_FINISHED SUCCESS says so
        return None
    exits = [e for e in events if isinstance(e, dict) and e.get("event_name") == "EXIT"]
    if not exits:
        return None
    metadata = exits[-1].get("event_metadata")
    error_code = text(field(metadata, "error_code"))
    error_type = text(field(metadata, "error_type"))
    if error_code is None:
        return None  # a plain exit: SESSION_FINISHED EXITED reports it
    if error_code in UNSUPPORTED_INSTITUTION_CODES:
        return failed(KEY, link_token, event_id, ErrorClass.INSTITUTION_NOT_SUPPORTED, f"EXIT {short(error_code)}")
    if error_type in PROVIDER_FAULT_TYPES:
        return failed(KEY, link_token, event_id, ErrorClass.PROVIDER_ERROR, f"EXIT {short(error_code)}")
    return None  # the customer's own error (credentials, MFA) and then an exit


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _plaid_type(kind: Any, subtype: Any) -> AccountType:
    if kind == "depository":
        return AccountType.SAVINGS if subtype in ("savings", "money market", "cd", "hsa") else AccountType.CHECKING
    return {
        "credit": AccountType.CREDIT,
        "loan": AccountType.LOAN,
        "investment": AccountType.INVESTMENT,
        "brokerage": AccountType.INVESTMENT,
    }.get(str(kind), AccountType.OTHER)


def normalise_plaid(
    accounts_answer: Any, transactions: list[dict[str, Any]], start: date, end: date, fetched_at: datetime
) -> FinancialData:
    """``/accounts/get`` + the ``/transactions/sync`` transactions -> the normalised model.

    Plaid's ``amount`` is positive for money leaving the account: the sign is flipped.
    """
    institution = text(field(accounts_answer, "item", "institution_name")) or text(
        field(accounts_answer, "item", "institution_id")
    )
    accounts = []
    ids: dict[str, str] = {}
    for raw in field(accounts_answer, "accounts") or []:
        provider_id = str(raw["account_id"])
        ids[provider_id] = account_id_for(KEY, provider_id)
        balances = raw.get("balances") or {}
        accounts.append(
            Account(
                account_id=ids[provider_id],
                provider_account_id=provider_id,
                name=text(raw.get("name")) or text(raw.get("official_name")) or "Account",
                mask=mask_of(text(raw.get("mask"))),
                type=_plaid_type(raw.get("type"), raw.get("subtype")),
                subtype=text(raw.get("subtype")),
                currency=text(balances.get("iso_currency_code")) or "USD",
                institution=institution,
                current_balance=decimal_or_none(balances.get("current")),
                available_balance=decimal_or_none(balances.get("available")),
                as_of=end,
            )
        )
    normalised = []
    for raw in transactions:
        day = date.fromisoformat(str(raw["date"]))
        account_id = ids.get(str(raw.get("account_id")))
        if account_id is None or not start <= day <= end:
            continue
        category = field(raw, "personal_finance_category", "detailed")
        normalised.append(
            Transaction(
                transaction_id=str(raw["transaction_id"]),
                account_id=account_id,
                date=day,
                amount=-(decimal_or_none(raw.get("amount")) or Decimal(0)),
                description=text(raw.get("original_description")) or text(raw.get("name")) or "",
                category=text(category),
                pending=bool(raw.get("pending")),
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
    """The registry's entry point: the client (link sessions, financial data) and its webhook verifier.

    The verifier's key cache lives as long as the adapter (build once per process).
    """
    client = PlaidClient(
        settings.partner(KEY, "base_url"),
        settings.partner(KEY, "client_id"),
        store.get(partner_secret(KEY, "secret")),
    )
    keys = PlaidKeyCache(client)
    return Adapter(client, lambda headers, body: verify_plaid(headers, body, keys))
