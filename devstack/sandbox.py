"""Local bank-link provider sandbox: Plaid, Finicity and MX endpoints on one small HTTP server, offline.

    python -m devstack.sandbox [--host 127.0.0.1] [--port 8100] [--api http://127.0.0.1:8000]

Partner endpoints (the request/response shapes the adapters in ``chalicelib.adapters.providers`` use):

- Plaid: ``POST /link/token/create`` (``hosted_link_url`` points at this server),
  ``POST /webhook_verification_key/get`` (the JWK of an EC P-256 key generated at start).
- Finicity: ``POST /aggregation/v2/partners/authentication``, ``POST /aggregation/v2/customers/active``
  (and ``/testing``), ``POST /connect/v2/generate``.
- MX: ``POST /users``, ``POST /users/{user_guid}/widget_urls``.

Credentials are checked against what the app reads: the partner ids of its settings (same environment variables,
same defaults) and the local values of the partner secrets (``chalicelib.config.SECRETS``), which the embedded
stack's Secrets Manager holds.

The customer's side: ``GET /sandbox/link/{page}`` shows buttons (linked, unsupported institution, exit,
provider error). A choice posts the partner's webhook(s) to the session's webhook URL, signed the way the
partner signs (Plaid: ES256 JWT in ``Plaid-Verification``; Finicity: hex HMAC-SHA256 in ``X-Signature``;
MX: basic auth), then links back to the redirect URL.

For tests:

- ``POST /sandbox/sessions/{id}/complete`` ``{"outcome": "success" | "institution_not_supported" |
  "user_exited" | "provider_error"}`` does what the button does and answers with the HTTP status the
  decisive webhook got (``webhook_status``) and every delivery. ``{id}`` is the page id or the session id
  the adapter returned (Plaid link_token, Finicity session id, MX user guid). Completing again with the
  same outcome redelivers the same events (same event ids): a partner's duplicate delivery.
- ``GET /sandbox/sessions/{id}``, ``GET /sandbox/sessions[?reference=...]``: what the sandbox knows.
- ``POST /sandbox/faults`` ``{"path": "/link/token/create", "status": 503, "count": 2}``: the next
  ``count`` calls to ``path`` answer ``status`` (to exercise retries), with ``body`` when given (e.g. Plaid's
  ``PRODUCT_NOT_READY`` error); a path ending in ``*`` matches every path it starts.
- ``GET /sandbox/connections``: the Plaid items, Finicity customers and MX members the sandbox holds, and
  whether each was removed (``/item/remove``, customer or member deletion).

Financial data after a successful link (the same scripted business for every provider, see
``devstack/sandbox_data.py``, in each partner's documented shape):

- Plaid: ``POST /item/public_token/exchange``, ``/accounts/get``, ``/transactions/sync`` (cursor paging,
  ``count`` per page), ``/item/remove``.
- Finicity: ``GET /aggregation/v1/customers/{id}/accounts``, ``GET /aggregation/v3/customers/{id}/transactions``
  (``fromDate``/``toDate`` epoch seconds, ``start`` page index, ``limit``), ``GET /institution/v2/institutions/{id}``,
  ``DELETE /aggregation/v1/customers/{id}``.
- MX: ``GET /users/{u}/members/{m}``, ``.../accounts`` and ``.../transactions`` (``page``, ``records_per_page``,
  ``from_date``, ``to_date``), ``GET /institutions/{code}``, ``DELETE /users/{u}/members/{m}``.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import html
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from devstack import sandbox_data

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType

log = logging.getLogger("devstack.sandbox")

OUTCOMES = ("success", "institution_not_supported", "user_exited", "provider_error")
PLAID_LINK_LIFETIME_S = 4 * 60 * 60
MX_WIDGET_LIFETIME_S = 10 * 60
WEBHOOK_TIMEOUT = (3.0, 10.0)


@dataclass(frozen=True)
class SandboxCredentials:
    plaid_client_id: str
    plaid_secret: str
    finicity_app_key: str
    finicity_partner_id: str
    finicity_partner_secret: str
    finicity_webhook_secret: str
    mx_client_id: str
    mx_api_key: str
    mx_webhook_username: str
    mx_webhook_password: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SandboxCredentials:
        """What the app reads on the embedded stack: each id's upper-cased variable, else its Settings default; each
        secret's local value (the embedded stack's Secrets Manager holds it)."""
        from chalicelib.config import PARTNER_SECRETS, Settings

        env = os.environ if environ is None else environ
        # Partner ids are settings of the app (``plaid_client_id``); partner secrets come from Secrets Manager
        # (``plaid-secret``, here as ``plaid_secret``). Both as the providers' registry entries declare them.
        fields = {f.name for f in dataclasses.fields(cls)}
        ids = {
            name: env.get(name.upper(), Settings.model_fields[name].default)
            for name in fields & Settings.model_fields.keys()
        }
        secrets = {secret.name.replace("-", "_"): secret.local for secret in PARTNER_SECRETS}
        return cls(**ids, **{name: value for name, value in secrets.items() if name in fields})


@dataclass
class Delivery:
    event: str
    status: int | None
    decisive: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, "status": self.status, "decisive": self.decisive, "error": self.error}


@dataclass
class SandboxSession:
    page_id: str
    provider: str
    webhook_url: str
    redirect_url: str | None
    reference: str | None
    aliases: list[str]
    expires_at: float | None
    data: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    # The exact webhook bodies of the outcome, kept so that a second completion redelivers the same events.
    planned: list[tuple[str, bytes, bool]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def as_dict(self, base_url: str) -> dict[str, Any]:
        return {
            "page_id": self.page_id,
            "provider": self.provider,
            "session_ids": self.aliases,
            "link_url": f"{base_url}/sandbox/link/{self.page_id}",
            "webhook_url": self.webhook_url,
            "redirect_url": self.redirect_url,
            "reference": self.reference,
            "outcome": self.outcome,
            "deliveries": [d.as_dict() for d in self.deliveries],
        }


class SandboxError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    created_at: int
    expired_at: int | None = None

    def jwk(self) -> dict[str, Any]:
        public = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {
            "alg": "ES256",
            "crv": public["crv"],
            "kid": self.kid,
            "kty": "EC",
            "use": "sig",
            "x": public["x"],
            "y": public["y"],
            "created_at": self.created_at,
            "expired_at": self.expired_at,
        }


def new_signing_key() -> SigningKey:
    return SigningKey(str(uuid.uuid4()), ec.generate_private_key(ec.SECP256R1()), int(time.time()))


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _compact(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class ProviderSandbox:
    """The sandbox server; ``port=0`` picks a free port (read :attr:`url` after :meth:`start`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8100,
        *,
        api_url: str = "http://127.0.0.1:8000",
        credentials: SandboxCredentials | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.api_url = api_url.rstrip("/")
        self.credentials = credentials or SandboxCredentials.from_environment()
        self.clock = clock
        self.keys: list[SigningKey] = [new_signing_key()]
        self._sessions: dict[str, SandboxSession] = {}
        self._aliases: dict[str, str] = {}
        self._finicity_tokens: set[str] = set()
        self._finicity_usernames: set[str] = set()
        self._mx_users: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, list[Any]] = {}
        # Financial data: public token -> link token; access token -> item; Finicity customers; MX members.
        self._plaid_public_tokens: dict[str, str] = {}
        self._plaid_items: dict[str, dict[str, Any]] = {}
        self._finicity_customers: dict[str, bool] = {}
        self._mx_members: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._http = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{_client_host(self.host)}:{self.port}"

    def start(self) -> ProviderSandbox:
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.sandbox = self  # type: ignore[attr-defined]
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="provider-sandbox", daemon=True)
        self._thread.start()
        log.info("Bank-link sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._http.close()

    def __enter__(self) -> ProviderSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- state ------------------------------------------------------------------------------------------

    def session(self, session_id: str) -> SandboxSession | None:
        with self._lock:
            page_id = self._aliases.get(session_id, session_id)
            return self._sessions.get(page_id)

    def sessions(self, reference: str | None = None) -> list[SandboxSession]:
        with self._lock:
            found = list(self._sessions.values())
        return [s for s in found if reference is None or s.reference == reference]

    def _add_session(self, session: SandboxSession) -> None:
        with self._lock:
            self._sessions[session.page_id] = session
            for alias in session.aliases:
                self._aliases[alias] = session.page_id

    def rotate_key(self) -> SigningKey:
        """Expire the current Plaid signing key and sign with a new one from now on."""
        with self._lock:
            self.keys[-1].expired_at = int(self.clock())
            self.keys.append(new_signing_key())
            return self.keys[-1]

    def inject_fault(self, path: str, status: int, count: int = 1, body: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._faults[path] = [status, count, body]

    def _take_fault(self, path: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            fault = self._faults.get(path)
            if fault is None:
                fault = next((f for p, f in self._faults.items() if p.endswith("*") and path.startswith(p[:-1])), None)
            if not fault or fault[1] <= 0:
                return None
            fault[1] -= 1
            return fault[0], fault[2] or {"error": "fault injected by the sandbox"}

    # -- completing a session ---------------------------------------------------------------------------

    def complete(self, session_id: str, outcome: str) -> dict[str, Any]:
        """Post the outcome's webhook(s) for the session; see the module docstring."""
        if outcome not in OUTCOMES:
            raise SandboxError(400, {"error": "outcome must be one of " + ", ".join(OUTCOMES)})
        session = self.session(session_id)
        if session is None:
            raise SandboxError(404, {"error": "no such session"})
        with self._lock:
            if session.outcome is not None and session.outcome != outcome:
                raise SandboxError(409, {"error": f"session already completed with {session.outcome}"})
            if session.outcome is None:
                session.outcome = outcome
                session.planned = self._plan(session, outcome)
            planned = list(session.planned)
        deliveries = [self._deliver(session, event, body, decisive) for event, body, decisive in planned]
        with self._lock:
            session.deliveries.extend(deliveries)
        decisive = next((d for d in deliveries if d.decisive), None)
        return {
            "session_id": session_id,
            "provider": session.provider,
            "outcome": outcome,
            "webhook_status": decisive.status if decisive else None,
            "deliveries": [d.as_dict() for d in deliveries],
        }

    def _plan(self, session: SandboxSession, outcome: str) -> list[tuple[str, bytes, bool]]:
        if session.provider == "plaid":
            return self._plan_plaid(session, outcome)
        if session.provider == "finicity":
            return self._plan_finicity(session, outcome)
        return self._plan_mx(session, outcome)

    def _plan_plaid(self, session: SandboxSession, outcome: str) -> list[tuple[str, bytes, bool]]:
        common = {
            "webhook_type": "LINK",
            "link_session_id": session.data["link_session_id"],
            "link_token": session.data["link_token"],
            "environment": "sandbox",
        }
        finished = {
            **common,
            "webhook_code": "SESSION_FINISHED",
            "status": "SUCCESS" if outcome == "success" else "EXITED",
            "public_tokens": [f"public-sandbox-{uuid.uuid4()}"] if outcome == "success" else [],
        }
        with self._lock:
            for token in finished["public_tokens"]:
                self._plaid_public_tokens[token] = session.data["link_token"]
        events = {**common, "webhook_code": "EVENTS", "events": self._plaid_events(session, outcome)}
        # The decisive webhook goes first so the waterfall sees a deterministic reason.
        if outcome in ("success", "user_exited"):
            return [("SESSION_FINISHED", _compact(finished), True), ("EVENTS", _compact(events), False)]
        return [("EVENTS", _compact(events), True), ("SESSION_FINISHED", _compact(finished), False)]

    def _plaid_events(self, session: SandboxSession, outcome: str) -> list[dict[str, Any]]:
        def event(name: str, **metadata: Any) -> dict[str, Any]:
            return {
                "event_id": str(uuid.uuid4()),
                "event_name": name,
                "event_metadata": {"link_session_id": session.data["link_session_id"], **metadata},
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }

        institution = {"institution_id": "ins_109508", "institution_name": "First Platypus Bank"}
        opened = [event("OPEN"), event("SELECT_INSTITUTION", **institution)]
        if outcome == "success":
            return [*opened, event("SUBMIT_CREDENTIALS", **institution), event("HANDOFF", **institution)]
        if outcome == "user_exited":
            return [*opened, event("EXIT", exit_status="institution_login", **institution)]
        if outcome == "institution_not_supported":
            error = {"error_type": "INSTITUTION_ERROR", "error_code": "INSTITUTION_NO_LONGER_SUPPORTED"}
        else:
            error = {"error_type": "API_ERROR", "error_code": "INTERNAL_SERVER_ERROR"}
        return [*opened, event("ERROR", **institution, **error), event("EXIT", **institution, **error)]

    def _plan_finicity(self, session: SandboxSession, outcome: str) -> list[tuple[str, bytes, bool]]:
        def body(event_type: str, payload: dict[str, Any]) -> bytes:
            message: dict[str, Any] = {
                "customerId": session.data["customer_id"],
                "eventType": event_type,
                "eventId": f"{int(time.time() * 1000)}-{secrets.token_hex(12)}",
                "payload": payload,
            }
            if session.data.get("webhook_data") is not None:
                message["webhookData"] = session.data["webhook_data"]
            return _compact(message)

        institution_id = "101732"
        if outcome == "success":
            account = {
                "id": str(7_000_000_000 + secrets.randbelow(999_999_999)),
                "number": "xxxxxx1111",
                "realAccountNumberLast4": "1111",
                "name": "Checking",
                "type": "checking",
                "status": "active",
                "institutionId": institution_id,
            }
            return [
                ("added", body("added", {"accounts": [account], "institutionId": institution_id}), False),
                ("done", body("done", {}), True),
            ]
        if outcome == "institution_not_supported":
            return [("institutionNotSupported", body("institutionNotSupported", {"institutionId": "102105"}), True)]
        if outcome == "user_exited":
            return [("cancel", body("cancel", {"code": 100, "reason": "exit"}), True)]
        return [("unableToConnect", body("unableToConnect", {"institutionId": institution_id, "code": 102}), True)]

    def _plan_mx(self, session: SandboxSession, outcome: str) -> list[tuple[str, bytes, bool]]:
        if outcome == "success":
            with self._lock:
                self._mx_members[session.data["member_guid"]] = {
                    "user_guid": session.data["user_guid"],
                    "removed": False,
                }
        status = {
            "success": "CONNECTED",
            "institution_not_supported": "DISCONTINUED",
            "user_exited": "EXPIRED",
            "provider_error": "FAILED",
        }[outcome]
        message = {
            "action": "CONNECTION_STATUS",
            "type": "MEMBER",
            "user_guid": session.data["user_guid"],
            "user_id": session.data["user_id"],
            "member_guid": session.data["member_guid"],
            "member_id": None,
            "connection_status": status,
            "member_is_being_aggregated": outcome == "success",
        }
        return [(status, _compact(message), True)]

    def _deliver(self, session: SandboxSession, event: str, body: bytes, decisive: bool) -> Delivery:
        headers = {"Content-Type": "application/json", **self.signature_headers(session.provider, body)}
        try:
            response = self._http.post(session.webhook_url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
        except requests.RequestException as exc:
            log.warning("Webhook %s for %s could not be delivered: %s", event, session.provider, type(exc).__name__)
            return Delivery(event, None, decisive, type(exc).__name__)
        log.info("Webhook %s (%s) -> %s", event, session.provider, response.status_code)
        return Delivery(event, response.status_code, decisive)

    def signature_headers(self, provider: str, body: bytes) -> dict[str, str]:
        """The headers ``provider`` would sign ``body`` with (also handy for tests that post webhooks)."""
        creds = self.credentials
        if provider == "plaid":
            key = self.keys[-1]
            claims = {"iat": int(self.clock()), "request_body_sha256": hashlib.sha256(body).hexdigest()}
            token = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
            return {"Plaid-Verification": token}
        if provider == "finicity":
            digest = hmac.new(creds.finicity_webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            return {"X-Signature": digest}
        pair = f"{creds.mx_webhook_username}:{creds.mx_webhook_password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    # -- partner endpoints ------------------------------------------------------------------------------

    def plaid_link_token_create(self, body: dict[str, Any], _headers: Mapping[str, str]) -> dict[str, Any]:
        self._plaid_auth(body)
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("client_user_id"), str):
            raise _plaid_error("INVALID_REQUEST", "MISSING_FIELDS", "user.client_user_id is required")
        webhook = body.get("webhook")
        if not isinstance(webhook, str) or not webhook:
            raise _plaid_error("INVALID_REQUEST", "MISSING_FIELDS", "the sandbox needs a webhook URL")
        link_token = f"link-sandbox-{uuid.uuid4()}"
        expires = self.clock() + PLAID_LINK_LIFETIME_S
        answer: dict[str, Any] = {
            "link_token": link_token,
            "expiration": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "request_id": _request_id(),
        }
        hosted = body.get("hosted_link")
        if isinstance(hosted, dict):
            page_id = secrets.token_urlsafe(12)
            self._add_session(
                SandboxSession(
                    page_id=page_id,
                    provider="plaid",
                    webhook_url=webhook,
                    redirect_url=hosted.get("completion_redirect_uri"),
                    reference=user["client_user_id"],
                    aliases=[link_token],
                    expires_at=expires,
                    data={"link_token": link_token, "link_session_id": str(uuid.uuid4())},
                )
            )
            answer["hosted_link_url"] = f"{self.url}/sandbox/link/{page_id}"
        return answer

    def plaid_verification_key(self, body: dict[str, Any], _headers: Mapping[str, str]) -> dict[str, Any]:
        self._plaid_auth(body)
        kid = body.get("key_id")
        with self._lock:
            key = next((k for k in self.keys if k.kid == kid), None)
        if key is None:
            raise _plaid_error("INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID", "unknown key_id")
        return {"key": key.jwk(), "request_id": _request_id()}

    def _plaid_auth(self, body: dict[str, Any]) -> None:
        creds = self.credentials
        if body.get("client_id") != creds.plaid_client_id or body.get("secret") != creds.plaid_secret:
            raise _plaid_error("INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided")

    def finicity_authenticate(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        creds = self.credentials
        if (
            _header(headers, "Finicity-App-Key") != creds.finicity_app_key
            or body.get("partnerId") != creds.finicity_partner_id
            or body.get("partnerSecret") != creds.finicity_partner_secret
        ):
            raise SandboxError(401, {"code": 10001, "message": "Invalid credentials"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._finicity_tokens.add(token)
        return {"token": token}

    def finicity_customer(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        self._finicity_auth(headers)
        username = body.get("username")
        if not isinstance(username, str) or not 6 <= len(username) <= 255:
            raise SandboxError(400, {"code": 10010, "message": "username is required (6-255 characters)"})
        if not body.get("firstName") or not body.get("lastName"):
            raise SandboxError(400, {"code": 10010, "message": "firstName and lastName are required"})
        customer_id = str(1_000_000_000 + secrets.randbelow(8_999_999_999))
        with self._lock:
            if username in self._finicity_usernames:
                raise SandboxError(409, {"code": 11000, "message": "username already taken"})
            self._finicity_usernames.add(username)
            self._finicity_customers[customer_id] = False
        return {
            "id": customer_id,
            "username": username,
            "createdDate": str(int(self.clock())),
        }

    def finicity_generate(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        self._finicity_auth(headers)
        if body.get("partnerId") != self.credentials.finicity_partner_id:
            raise SandboxError(400, {"code": 10010, "message": "partnerId does not match the token"})
        customer_id = body.get("customerId")
        webhook = body.get("webhook")
        if not isinstance(customer_id, str) or not customer_id:
            raise SandboxError(400, {"code": 10010, "message": "customerId is required"})
        if not isinstance(webhook, str) or not webhook:
            raise SandboxError(400, {"code": 10010, "message": "the sandbox needs a webhook URL"})
        webhook_data = body.get("webhookData")
        aliases = [customer_id]
        reference = None
        if isinstance(webhook_data, dict):
            if isinstance(webhook_data.get("session_id"), str):
                aliases.insert(0, webhook_data["session_id"])
            reference = webhook_data.get("reference")
        page_id = secrets.token_urlsafe(12)
        self._add_session(
            SandboxSession(
                page_id=page_id,
                provider="finicity",
                webhook_url=webhook,
                redirect_url=body.get("redirectUri"),
                reference=reference if isinstance(reference, str) else None,
                aliases=aliases,
                expires_at=None,
                data={"customer_id": customer_id, "webhook_data": webhook_data},
            )
        )
        return {"link": f"{self.url}/sandbox/link/{page_id}"}

    def _finicity_auth(self, headers: Mapping[str, str]) -> None:
        if _header(headers, "Finicity-App-Key") != self.credentials.finicity_app_key:
            raise SandboxError(401, {"code": 10001, "message": "Invalid app key"})
        with self._lock:
            valid = _header(headers, "Finicity-App-Token") in self._finicity_tokens
        if not valid:
            raise SandboxError(401, {"code": 10022, "message": "Invalid or expired token"})

    def mx_create_user(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        self._mx_auth(headers)
        user = body.get("user")
        if not isinstance(user, dict):
            raise SandboxError(400, {"error": {"message": "user is required", "status": 400}})
        with self._lock:
            if user.get("id") is not None and any(u["id"] == user.get("id") for u in self._mx_users.values()):
                raise SandboxError(409, {"error": {"message": "user id already exists", "status": 409}})
            guid = f"USR-{uuid.uuid4()}"
            record = {
                "guid": guid,
                "id": user.get("id"),
                "email": user.get("email"),
                "is_disabled": False,
                "metadata": user.get("metadata"),
            }
            self._mx_users[guid] = record
        return {"user": record}

    def mx_widget_url(self, user_guid: str, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        self._mx_auth(headers)
        with self._lock:
            user = self._mx_users.get(user_guid)
        if user is None:
            raise SandboxError(404, {"error": {"message": "user not found", "status": 404}})
        request = body.get("widget_url")
        if not isinstance(request, dict) or request.get("widget_type") != "connect_widget":
            raise SandboxError(400, {"error": {"message": "widget_type must be connect_widget", "status": 400}})
        metadata: dict[str, Any] = {}
        try:
            parsed = json.loads(user.get("metadata") or "{}")
            metadata = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            pass
        webhook_url = metadata.get("webhook_url") or f"{self.api_url}/webhooks/mx"
        page_id = secrets.token_urlsafe(12)
        self._add_session(
            SandboxSession(
                page_id=page_id,
                provider="mx",
                webhook_url=str(webhook_url),
                redirect_url=request.get("client_redirect_url"),
                reference=metadata.get("reference") if isinstance(metadata.get("reference"), str) else None,
                aliases=[user_guid],
                expires_at=self.clock() + MX_WIDGET_LIFETIME_S,
                data={"user_guid": user_guid, "user_id": user.get("id"), "member_guid": f"MBR-{uuid.uuid4()}"},
            )
        )
        url = f"{self.url}/sandbox/link/{page_id}"
        return {"widget_url": {"type": "connect_widget", "url": url, "user_id": user.get("id")}}

    def _mx_auth(self, headers: Mapping[str, str]) -> None:
        creds = self.credentials
        expected = "Basic " + base64.b64encode(f"{creds.mx_client_id}:{creds.mx_api_key}".encode()).decode()
        if _header(headers, "Authorization") != expected:
            raise SandboxError(401, {"error": {"message": "unauthorized", "status": 401}})
        if _header(headers, "Accept") != "application/vnd.mx.api.v1+json":
            raise SandboxError(406, {"error": {"message": "Accept must be application/vnd.mx.api.v1+json"}})

    # -- financial data -----------------------------------------------------------------------------------

    def as_of(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def connections(self) -> dict[str, Any]:
        with self._lock:
            return {
                "plaid_items": [{"item_id": i["item_id"], "removed": i["removed"]} for i in self._plaid_items.values()],
                "finicity_customers": [{"customer_id": c, "removed": r} for c, r in self._finicity_customers.items()],
                "mx_members": [{"member_guid": m, "removed": v["removed"]} for m, v in self._mx_members.items()],
            }

    def plaid_exchange(self, body: dict[str, Any], _headers: Mapping[str, str]) -> dict[str, Any]:
        self._plaid_auth(body)
        with self._lock:
            link_token = self._plaid_public_tokens.pop(str(body.get("public_token")), None)
            if link_token is None:
                raise _plaid_error("INVALID_INPUT", "INVALID_PUBLIC_TOKEN", "provided public token is expired")
            access_token = f"access-sandbox-{uuid.uuid4()}"
            item_id = secrets.token_urlsafe(18)
            self._plaid_items[access_token] = {"item_id": item_id, "removed": False, "link_token": link_token}
        return {"access_token": access_token, "item_id": item_id, "request_id": _request_id()}

    def _plaid_item(self, body: dict[str, Any]) -> dict[str, Any]:
        self._plaid_auth(body)
        with self._lock:
            item = self._plaid_items.get(str(body.get("access_token")))
        if item is None or item["removed"]:
            raise _plaid_error("INVALID_INPUT", "INVALID_ACCESS_TOKEN", "could not find matching access token")
        return item

    def plaid_accounts(self, body: dict[str, Any], _headers: Mapping[str, str]) -> dict[str, Any]:
        item = self._plaid_item(body)
        prefix = item["item_id"][:10] + "-"
        return {
            "accounts": [sandbox_data.plaid_account(a, prefix) for a in sandbox_data.ACCOUNTS],
            "item": {
                "item_id": item["item_id"],
                "institution_id": "ins_109508",
                "institution_name": sandbox_data.INSTITUTION,
                "products": ["transactions"],
                "webhook": "",
            },
            "request_id": _request_id(),
        }

    def plaid_sync(self, body: dict[str, Any], _headers: Mapping[str, str]) -> dict[str, Any]:
        """``/transactions/sync``: the cursor is ``<offset>:<days>`` (opaque to the client)."""
        item = self._plaid_item(body)
        count = body.get("count", 100)
        if not isinstance(count, int) or not 1 <= count <= 500:
            raise _plaid_error("INVALID_REQUEST", "INVALID_FIELD", "count must be 1 to 500")
        cursor = body.get("cursor") or ""
        if cursor:
            offset_text, _, days_text = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
            offset, days = int(offset_text), int(days_text)
        else:
            requested = (body.get("options") or {}).get("days_requested", 90)
            offset, days = 0, max(1, min(int(requested), sandbox_data.HISTORY_DAYS))
        prefix = item["item_id"][:10] + "-"
        everything = sandbox_data.transactions(self.as_of(), days)
        page = everything[offset : offset + count]
        following = offset + len(page)
        return {
            "accounts": [sandbox_data.plaid_account(a, prefix) for a in sandbox_data.ACCOUNTS],
            "added": [sandbox_data.plaid_transaction(t, prefix) for t in page],
            "modified": [],
            "removed": [],
            "next_cursor": base64.urlsafe_b64encode(f"{following}:{days}".encode()).decode(),
            "has_more": following < len(everything),
            "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
            "request_id": _request_id(),
        }

    def plaid_item_remove(self, body: dict[str, Any], _headers: Mapping[str, str]) -> dict[str, Any]:
        item = self._plaid_item(body)
        with self._lock:
            item["removed"] = True
        return {"request_id": _request_id()}

    def _finicity_customer_id(self, customer_id: str, headers: Mapping[str, str]) -> str:
        self._finicity_auth(headers)
        with self._lock:
            removed = self._finicity_customers.get(customer_id)
        if removed is None or removed:
            raise SandboxError(404, {"code": 14001, "message": "Customer not found"})
        return customer_id

    def finicity_accounts(self, customer_id: str, headers: Mapping[str, str]) -> dict[str, Any]:
        self._finicity_customer_id(customer_id, headers)
        epoch = int(self.clock())
        return {"accounts": [sandbox_data.finicity_account(a, customer_id, epoch) for a in sandbox_data.ACCOUNTS]}

    def finicity_transactions(
        self, customer_id: str, query: dict[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._finicity_customer_id(customer_id, headers)
        try:
            from_date, to_date = int(query["fromDate"]), int(query["toDate"])
            start, limit = int(query.get("start", "1")), int(query.get("limit", "25"))
        except (KeyError, ValueError) as exc:
            raise SandboxError(400, {"code": 10010, "message": "fromDate and toDate are required"}) from exc
        if not 1 <= limit <= 1000 or start < 1:
            raise SandboxError(400, {"code": 10010, "message": "limit must be 1 to 1000, start at least 1"})
        everything = []
        for number, txn in enumerate(sandbox_data.transactions(self.as_of()), start=1):
            epoch = int(datetime(txn.day.year, txn.day.month, txn.day.day, 12, tzinfo=UTC).timestamp())
            if from_date <= epoch <= to_date:
                everything.append(sandbox_data.finicity_transaction(txn, customer_id, epoch, 5_000_000 + number))
        page = everything[(start - 1) * limit : start * limit]
        return {
            "found": len(everything),
            "displaying": len(page),
            "moreAvailable": start * limit < len(everything),
            "fromDate": str(from_date),
            "toDate": str(to_date),
            "sort": "asc",
            "transactions": page,
        }

    def finicity_institution(self, institution_id: str, headers: Mapping[str, str]) -> dict[str, Any]:
        self._finicity_auth(headers)
        return {"institution": {"id": int(institution_id), "name": sandbox_data.INSTITUTION}}

    def finicity_delete_customer(self, customer_id: str, headers: Mapping[str, str]) -> None:
        self._finicity_customer_id(customer_id, headers)
        with self._lock:
            self._finicity_customers[customer_id] = True

    def _mx_member(self, user_guid: str, member_guid: str, headers: Mapping[str, str]) -> dict[str, Any]:
        self._mx_auth(headers)
        with self._lock:
            member = self._mx_members.get(member_guid)
        if member is None or member["removed"] or member["user_guid"] != user_guid:
            raise SandboxError(404, {"error": {"message": "member not found", "status": 404}})
        return member

    def mx_member(self, user_guid: str, member_guid: str, headers: Mapping[str, str]) -> dict[str, Any]:
        self._mx_member(user_guid, member_guid, headers)
        return {
            "member": {
                "guid": member_guid,
                "user_guid": user_guid,
                "institution_code": "first_platypus",
                "connection_status": "CONNECTED",
                "is_being_aggregated": False,
                "successfully_aggregated_at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            }
        }

    def mx_accounts(
        self, user_guid: str, member_guid: str, query: dict[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._mx_member(user_guid, member_guid, headers)
        rows = [sandbox_data.mx_account(a, user_guid, member_guid) for a in sandbox_data.ACCOUNTS]
        return _mx_page("accounts", rows, query)

    def mx_transactions(
        self, user_guid: str, member_guid: str, query: dict[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._mx_member(user_guid, member_guid, headers)
        low = date.fromisoformat(query["from_date"]) if query.get("from_date") else date.min
        high = date.fromisoformat(query["to_date"]) if query.get("to_date") else date.max
        rows = [
            sandbox_data.mx_transaction(t, user_guid, member_guid)
            for t in sandbox_data.transactions(self.as_of())
            if low <= t.day <= high
        ]
        return _mx_page("transactions", rows, query)

    def mx_delete_member(self, user_guid: str, member_guid: str, headers: Mapping[str, str]) -> None:
        member = self._mx_member(user_guid, member_guid, headers)
        with self._lock:
            member["removed"] = True


def _mx_page(name: str, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    try:
        page, per_page = int(query.get("page", "1")), int(query.get("records_per_page", "25"))
    except ValueError as exc:
        raise SandboxError(
            400, {"error": {"message": "page and records_per_page are integers", "status": 400}}
        ) from exc
    per_page = max(1, min(per_page, 1000))
    total_pages = max(1, -(-len(rows) // per_page))
    return {
        name: rows[(page - 1) * per_page : page * per_page],
        "pagination": {
            "current_page": page,
            "per_page": per_page,
            "total_entries": len(rows),
            "total_pages": total_pages,
        },
    }


def _plaid_error(error_type: str, error_code: str, message: str) -> SandboxError:
    return SandboxError(
        400,
        {
            "error_type": error_type,
            "error_code": error_code,
            "error_message": message,
            "display_message": None,
            "request_id": _request_id(),
        },
    )


def _request_id() -> str:
    return secrets.token_hex(8)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}}
.badge{{display:inline-block;background:#eee;border-radius:.3rem;padding:.1rem .4rem;font-size:.8rem}}
button{{display:block;width:100%;margin:.6rem 0;padding:.8rem;font-size:1rem;border-radius:.4rem;
border:1px solid #888;background:#fff;cursor:pointer}} button.primary{{background:#1f4e79;color:#fff}}
</style></head><body>{body}</body></html>"""

PROVIDER_NAMES = {"plaid": "Plaid", "finicity": "Mastercard Open Banking (Finicity)", "mx": "MX"}
CHOICES = (
    ("success", "Link my account (success)", "primary"),
    ("institution_not_supported", "My bank is not supported", ""),
    ("user_exited", "Exit without linking", ""),
    ("provider_error", "Simulate a provider error", ""),
)


def _choice_page(session: SandboxSession) -> str:
    name = html.escape(PROVIDER_NAMES.get(session.provider, session.provider))
    buttons = "".join(
        f'<button class="{css}" type="submit" name="outcome" value="{value}">{html.escape(label)}</button>'
        for value, label, css in CHOICES
    )
    body = (
        f'<p class="badge">Local sandbox: no real bank is contacted</p><h1>{name}</h1>'
        "<p>Choose what happens in this bank-link session.</p>"
        f'<form method="post" action="/sandbox/link/{html.escape(session.page_id)}">{buttons}</form>'
    )
    return PAGE.format(title=f"{name} (sandbox)", body=body)


def _done_page(session: SandboxSession, result: dict[str, Any] | None) -> str:
    name = html.escape(PROVIDER_NAMES.get(session.provider, session.provider))
    outcome = html.escape(session.outcome or "")
    status = "" if result is None else f"<p>The webhook was answered with {result['webhook_status']}.</p>"
    back = (
        f'<p><a href="{html.escape(session.redirect_url, quote=True)}">Return to the portal</a></p>'
        if session.redirect_url
        else ""
    )
    body = f"<h1>{name}</h1><p>Session finished: <strong>{outcome}</strong>.</p>{status}"
    body += f"<p>You can close this window.</p>{back}"
    return PAGE.format(title=f"{name} (sandbox)", body=body)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ProviderSandbox/1.0"
    routes: ClassVar[dict[str, str]] = {
        "/link/token/create": "plaid_link_token_create",
        "/webhook_verification_key/get": "plaid_verification_key",
        "/aggregation/v2/partners/authentication": "finicity_authenticate",
        "/aggregation/v2/customers/active": "finicity_customer",
        "/aggregation/v2/customers/testing": "finicity_customer",
        "/connect/v2/generate": "finicity_generate",
        "/users": "mx_create_user",
        "/item/public_token/exchange": "plaid_exchange",
        "/accounts/get": "plaid_accounts",
        "/transactions/sync": "plaid_sync",
        "/item/remove": "plaid_item_remove",
    }

    @property
    def sandbox(self) -> ProviderSandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ---------------------------------------------------------------------------------------

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _html(self, status: int, page: str) -> None:
        self._send(status, page.encode(), "text/html; charset=utf-8")

    # -- verbs ------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        try:
            if path == "/health":
                self._json(200, {"status": "ok"})
            elif path.startswith("/sandbox/link/"):
                self._get_page(path.removeprefix("/sandbox/link/"))
            elif path == "/sandbox/connections":
                self._json(200, self.sandbox.connections())
            elif path == "/sandbox/sessions":
                reference = parse_qs(parts.query).get("reference", [None])[0]
                found = self.sandbox.sessions(reference)
                self._json(200, {"sessions": [s.as_dict(self.sandbox.url) for s in found]})
            elif path.startswith("/sandbox/sessions/"):
                session = self.sandbox.session(path.removeprefix("/sandbox/sessions/"))
                if session is None:
                    raise SandboxError(404, {"error": "no such session"})
                self._json(200, session.as_dict(self.sandbox.url))
            else:
                self._partner_get(path, {k: v[0] for k, v in parse_qs(parts.query).items()})
        except SandboxError as exc:
            self._json(exc.status, exc.body)
        except Exception:
            log.exception("Sandbox request failed")
            self._json(500, {"error": "sandbox failure"})

    def _partner_get(self, path: str, query: dict[str, str]) -> None:
        fault = self.sandbox._take_fault(path)
        if fault is not None:
            self._json(*fault)
            return
        headers = dict(self.headers.items())
        parts = path.strip("/").split("/")
        box = self.sandbox
        if len(parts) == 5 and parts[:3] == ["aggregation", "v1", "customers"] and parts[4] == "accounts":
            self._json(200, box.finicity_accounts(parts[3], headers))
        elif len(parts) == 5 and parts[:3] == ["aggregation", "v3", "customers"] and parts[4] == "transactions":
            self._json(200, box.finicity_transactions(parts[3], query, headers))
        elif len(parts) == 4 and parts[:3] == ["institution", "v2", "institutions"]:
            self._json(200, box.finicity_institution(parts[3], headers))
        elif len(parts) == 2 and parts[0] == "institutions":
            box._mx_auth(headers)
            self._json(200, {"institution": {"code": parts[1], "name": sandbox_data.INSTITUTION}})
        elif len(parts) == 4 and parts[0] == "users" and parts[2] == "members":
            self._json(200, box.mx_member(parts[1], parts[3], headers))
        elif len(parts) == 5 and parts[0] == "users" and parts[2] == "members" and parts[4] == "accounts":
            self._json(200, box.mx_accounts(parts[1], parts[3], query, headers))
        elif len(parts) == 5 and parts[0] == "users" and parts[2] == "members" and parts[4] == "transactions":
            self._json(200, box.mx_transactions(parts[1], parts[3], query, headers))
        else:
            self._json(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        parts = path.strip("/").split("/")
        headers = dict(self.headers.items())
        try:
            if len(parts) == 4 and parts[:3] == ["aggregation", "v1", "customers"]:
                self.sandbox.finicity_delete_customer(parts[3], headers)
            elif len(parts) == 4 and parts[0] == "users" and parts[2] == "members":
                self.sandbox.mx_delete_member(parts[1], parts[3], headers)
            else:
                raise SandboxError(404, {"error": "not found"})
            self._send(204, b"", "application/json")
        except SandboxError as exc:
            self._json(exc.status, exc.body)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        raw = self._read()
        try:
            if path.startswith("/sandbox/link/"):
                self._post_page(path.removeprefix("/sandbox/link/"), raw)
                return
            if path.startswith("/sandbox/"):
                self._json(200, self._sandbox_api(path, _json_body(raw)))
                return
            fault = self.sandbox._take_fault(path)
            if fault is not None:
                self._json(*fault)
                return
            body = _json_body(raw)
            headers = dict(self.headers.items())
            if path in self.routes:
                self._json(200, getattr(self.sandbox, self.routes[path])(body, headers))
            elif path.startswith("/users/") and path.endswith("/widget_urls"):
                user_guid = path.removeprefix("/users/").removesuffix("/widget_urls")
                self._json(200, self.sandbox.mx_widget_url(user_guid, body, headers))
            else:
                self._json(404, {"error": "not found"})
        except SandboxError as exc:
            self._json(exc.status, exc.body)
        except Exception:
            log.exception("Sandbox request failed")
            self._json(500, {"error": "sandbox failure"})

    def _sandbox_api(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/sandbox/faults":
            status, count = body.get("status"), body.get("count", 1)
            if not isinstance(body.get("path"), str) or not isinstance(status, int) or not isinstance(count, int):
                raise SandboxError(400, {"error": "path (string), status and count (integers) are required"})
            fault_body = body.get("body") if isinstance(body.get("body"), dict) else None
            self.sandbox.inject_fault(body["path"], status, count, fault_body)
            return {"path": body["path"], "status": status, "count": count}
        if path.startswith("/sandbox/sessions/") and path.endswith("/complete"):
            session_id = path.removeprefix("/sandbox/sessions/").removesuffix("/complete")
            return self.sandbox.complete(session_id, str(body.get("outcome")))
        raise SandboxError(404, {"error": "not found"})

    def _get_page(self, page_id: str) -> None:
        session = self.sandbox.session(page_id)
        if session is None or session.page_id != page_id:
            self._html(404, PAGE.format(title="Not found", body="<h1>This link is not valid.</h1>"))
        elif session.outcome is not None:
            self._html(200, _done_page(session, None))
        elif session.expires_at is not None and session.expires_at < self.sandbox.clock():
            self._html(410, PAGE.format(title="Expired", body="<h1>This link has expired.</h1>"))
        else:
            self._html(200, _choice_page(session))

    def _post_page(self, page_id: str, raw: bytes) -> None:
        session = self.sandbox.session(page_id)
        if session is None or session.page_id != page_id:
            self._html(404, PAGE.format(title="Not found", body="<h1>This link is not valid.</h1>"))
            return
        outcome = parse_qs(raw.decode(errors="replace")).get("outcome", [""])[0]
        result = self.sandbox.complete(page_id, outcome)
        self._html(200, _done_page(session, result))


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise SandboxError(400, {"error": "body is not JSON"}) from exc
    if not isinstance(parsed, dict):
        raise SandboxError(400, {"error": "body must be a JSON object"})
    return parsed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port (default 8100)")
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="the app's URL (MX webhooks default to it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        sandbox = ProviderSandbox(args.host, args.port, api_url=args.api).start()
    except OSError as exc:
        print(f"sandbox: cannot listen on {args.host}:{args.port} ({exc.strerror})", file=sys.stderr)
        return 2
    print(f"Bank-link sandbox: {sandbox.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
