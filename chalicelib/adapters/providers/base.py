"""What every bank-link provider adapter shares: the client protocol, typed errors, webhook helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chalicelib.domain import json_input
from chalicelib.domain.bank_link import ErrorClass
from chalicelib.errors import UpstreamError, ValidationFailed
from chalicelib.errors import WebhookRejected as WebhookRejected  # a provider module's verifier raises it
from chalicelib.errors import WebhookUnsigned as WebhookUnsigned  # ... or this, when nothing could verify

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import date

    from chalicelib.config import Secret
    from chalicelib.domain.bank_link import CustomerInfo, LinkSession, ProviderOutcome
    from chalicelib.domain.financial import FinancialData
    from chalicelib.domain.providers import Provider

T = TypeVar("T")


class PartnerSecrets(Protocol):
    """How an adapter reads its partner secrets (chalicelib.config.SECRETS): the composition root passes the
    SecretStore. An adapter reads its client's secrets when it is built (the registry builds it again when they
    change), its webhook verifier's when it checks a webhook (a function that only links accounts is not granted the
    webhook secrets: infra/package.py FUNCTION_ACCESS)."""

    def get(self, secret: Secret) -> str:
        """The secret's current value."""
        ...

    def verify(self, secret: Secret, check: Callable[[str], T]) -> T:
        """``check(value)`` with the secret's current value, then (while a rotation's overlap lasts) its previous one;
        raises the last :class:`WebhookRejected` when no value passes."""
        ...


class ProviderError(UpstreamError):
    """A partner call failed. The message is ours (safe for clients); the partner's text is never kept.

    ``retryable`` says whether the same call may succeed later (5xx, timeouts, connection errors);
    ``error_class`` is what the waterfall records when it gives up on this provider.
    """

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        error_class: ErrorClass = ErrorClass.PROVIDER_ERROR,
        partner_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_class = error_class
        # A partner error *code* (e.g. Plaid ``INVALID_API_KEYS``), for logs; never the partner's message.
        self.partner_code = partner_code


class DataNotReady(ProviderError):
    """The link succeeded but the provider has not gathered the data yet ("come back later").

    The data step fails its task with :attr:`error_name`; the state machine retries it with backoff.
    """

    code = "provider_data_not_ready"
    error_name = "FinancialData.NotReady"

    def __init__(self, message: str, *, partner_code: str | None = None) -> None:
        super().__init__(message, retryable=True, partner_code=partner_code)


class RateLimited(ProviderError):
    """The provider asked us to slow down (HTTP 429 or its rate-limit error); retried by the state machine."""

    code = "provider_rate_limited"
    error_name = "FinancialData.RateLimited"

    def __init__(self, message: str, *, partner_code: str | None = None) -> None:
        super().__init__(message, retryable=True, partner_code=partner_code)


class ProviderClient(Protocol):
    provider: Provider

    def create_link_session(
        self, customer: CustomerInfo, *, webhook_url: str, redirect_url: str, reference: str
    ) -> LinkSession:
        """Ask the partner for a hosted link session whose webhooks go to ``webhook_url``.

        ``reference`` is opaque to the adapter; it is handed to the partner where its API has a place for
        it. Raises :class:`ProviderError`.
        """
        ...


@dataclass(frozen=True)
class Connection:
    """What reaches a linked customer's data at one provider. ``access`` is a secret for Plaid (the access
    token); the Finicity customer id; ``<user_guid>/<member_guid>`` at MX. Never logged."""

    provider: Provider
    access: str
    item_id: str | None = None


@dataclass(frozen=True)
class Fetched:
    """Normalised data, and each raw answer (name, body) kept for audit."""

    data: FinancialData
    raw: list[tuple[str, Any]] = field(default_factory=list)


class FinancialDataSource(Protocol):
    provider: Provider

    def connect(self, credential: str) -> Connection:
        """Turn what the link webhook carried into a lasting connection (Plaid: exchange the public token).

        Raises :class:`ProviderError`.
        """
        ...

    def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
        """Accounts, balances and the transactions dated ``start``..``end``.

        Raises :class:`DataNotReady`, :class:`RateLimited` (both retried later) or :class:`ProviderError`.
        """
        ...

    def revoke(self, connection: Connection) -> None:
        """Ask the provider to forget the connection; an already-gone one is not an error.

        Raises :class:`ProviderError`.
        """
        ...


class BankLinkClient(ProviderClient, FinancialDataSource, Protocol):
    """One partner's HTTP client: link sessions, then the linked customer's data."""


@dataclass(frozen=True)
class Adapter:
    """What a provider module's ``adapter(settings, read_secret)`` returns (the registry's plug-in point).

    ``verify(headers, raw_body)`` checks the partner's signature (raises :class:`WebhookRejected`) and returns
    the normalised outcome, or None for a webhook type the waterfall ignores.
    """

    client: BankLinkClient
    verify: Callable[[Mapping[str, str], bytes], ProviderOutcome | None]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts as well as Chalice's header mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def json_object(body: bytes) -> dict[str, Any]:
    """Parse a verified webhook body; a body that is not a JSON object is the sender's fault (400)."""
    parsed = json_input.loads(body, "the webhook body")
    if not isinstance(parsed, dict):
        raise ValidationFailed("webhook body is not a JSON object", fields={"body": "must be a JSON object"})
    return parsed


def text(value: Any) -> str | None:
    """A non-empty string field, or None."""
    return value if isinstance(value, str) and value else None


def short(value: str, limit: int = 80) -> str:
    """Partner codes are short identifiers; cap them anyway so nothing long lands in the history."""
    return value[:limit]
