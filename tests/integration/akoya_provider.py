"""A fourth bank-link provider, written the way a real one is added: this one module plus a registry entry
(tests/integration/test_provider_plugin.py adds the entry). Nothing else in the code knows it.

It follows the adapter contract of chalicelib/adapters/providers/ (``KEY``, a client with link sessions and
financial data, a webhook verifier, ``adapter(settings, store)``); the partner behind it is in-memory: sessions are
recorded in :data:`SESSIONS`, and the data is the hand-worked fixture of the waterfall tests.
Webhooks carry ``X-Akoya-Signature``, the hex HMAC-SHA256 of the raw body with :data:`WEBHOOK_SECRET`.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.adapters.providers.base import Adapter, Connection, Fetched, WebhookRejected, header, json_object, text
from chalicelib.domain.bank_link import ErrorClass, LinkSession, ProviderOutcome, failed, linked
from chalicelib.domain.providers import Provider
from tests.integration.test_waterfall import fixture_data

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date

    from chalicelib.adapters.providers.base import PartnerSecrets
    from chalicelib.config import Settings
    from chalicelib.domain.bank_link import CustomerInfo

KEY = Provider("akoya")
SIGNATURE_HEADER = "X-Akoya-Signature"
WEBHOOK_SECRET = "test-akoya-secret"
# (session id, customer, webhook URL) of every link session opened, for the tests to read.
SESSIONS: list[tuple[str, CustomerInfo, str]] = []
REVOKED: list[str] = []


class AkoyaClient:
    provider = KEY

    def create_link_session(
        self, customer: CustomerInfo, *, webhook_url: str, redirect_url: str, reference: str
    ) -> LinkSession:
        session_id = f"ak-{uuid.uuid4().hex[:12]}"
        SESSIONS.append((session_id, customer, webhook_url))
        return LinkSession(
            provider=KEY,
            session_id=session_id,
            link_url=f"https://link.akoya.test/{session_id}",
            expires_at=datetime.now(UTC) + timedelta(minutes=30),
        )

    def connect(self, credential: str) -> Connection:
        return Connection(KEY, f"akoya-token-{credential}")

    def fetch(self, connection: Connection, start: date, end: date) -> Fetched:
        data = fixture_data(KEY, start, end)
        return Fetched(data, [("accounts", {"accounts": [a.provider_account_id for a in data.accounts]})])

    def revoke(self, connection: Connection) -> None:
        REVOKED.append(connection.access)


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_akoya(headers: Mapping[str, str], body: bytes, secret: str) -> ProviderOutcome | None:
    """``{"session_id", "event_id", "status": "linked" | "exited" | "unsupported" | "error", "credential"}``."""
    given = header(headers, SIGNATURE_HEADER) or ""
    if not hmac.compare_digest(given, sign(body, secret)):
        raise WebhookRejected("bad akoya signature")
    payload = json_object(body)
    session_id, event_id, status = text(payload.get("session_id")), text(payload.get("event_id")), payload.get("status")
    if not (session_id and event_id):
        return None
    if status == "linked":
        return linked(KEY, session_id, event_id, "linked", text(payload.get("credential")))
    reasons = {
        "exited": ErrorClass.USER_EXITED,
        "unsupported": ErrorClass.INSTITUTION_NOT_SUPPORTED,
        "error": ErrorClass.PROVIDER_ERROR,
    }
    return failed(KEY, session_id, event_id, reasons[status], str(status)) if status in reasons else None


def adapter(settings: Settings, store: PartnerSecrets) -> Adapter:
    return Adapter(AkoyaClient(), lambda headers, body: verify_akoya(headers, body, WEBHOOK_SECRET))
