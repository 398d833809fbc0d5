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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.providers.base import ProviderError, WebhookRejected, header, json_object, short, text
from chalicelib.adapters.providers.http import JsonHttp, field, required_text
from chalicelib.domain.bank_link import ErrorClass, LinkSession, ProviderOutcome, failed, linked
from chalicelib.domain.tenant import Provider
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chalicelib.domain.bank_link import CustomerInfo

ACCEPT = "application/vnd.mx.api.v1+json"
WIDGET_URL_LIFETIME = timedelta(minutes=10)

UNSUPPORTED_STATUSES = frozenset({"DISCONTINUED", "DISABLED"})
EXIT_STATUSES = frozenset({"EXPIRED"})
ERROR_STATUSES = frozenset({"FAILED", "REJECTED", "LOCKED", "IMPEDED", "PREVENTED"})


class MxClient:
    provider = Provider.MX

    def __init__(self, base_url: str, client_id: str, api_key: str, *, http: JsonHttp | None = None) -> None:
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
            provider=Provider.MX,
            session_id=user_guid,
            link_url=required_text("mx", widget, "widget_url", "url"),
            expires_at=datetime.now(UTC) + WIDGET_URL_LIFETIME,
        )

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
        raise WebhookRejected("missing basic credentials")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected("malformed basic credentials") from exc
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
        return linked(Provider.MX, user_guid, event_id, detail)
    if status in UNSUPPORTED_STATUSES:
        return failed(Provider.MX, user_guid, event_id, ErrorClass.INSTITUTION_NOT_SUPPORTED, detail)
    if status in EXIT_STATUSES:
        return failed(Provider.MX, user_guid, event_id, ErrorClass.USER_EXITED, detail)
    if status in ERROR_STATUSES:
        return failed(Provider.MX, user_guid, event_id, ErrorClass.PROVIDER_ERROR, detail)
    return None
