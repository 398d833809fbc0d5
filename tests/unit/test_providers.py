"""Provider adapters without sockets: webhook verification, fixture parsing, request shapes, error mapping."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from chalicelib.adapters.providers import ProviderError, WebhookRejected, build_adapters
from chalicelib.adapters.providers.finicity import FinicityClient, sign_finicity, verify_finicity
from chalicelib.adapters.providers.http import JsonResponse
from chalicelib.adapters.providers.mx import MxClient, basic_auth, verify_mx
from chalicelib.adapters.providers.plaid import PlaidClient, PlaidKeyCache, verify_plaid
from chalicelib.adapters.secrets import SecretStore
from chalicelib.config import Settings
from chalicelib.domain.bank_link import CustomerInfo, ErrorClass, ProviderOutcome
from chalicelib.domain.providers import Provider, known
from chalicelib.errors import ValidationFailed

EVENTS = Path(__file__).resolve().parents[1] / "events"
NOW = 1_716_250_000


@contextmanager
def rejected(reason: str) -> Iterator[None]:
    """The webhook is rejected for the expected reason (the client-facing message never says which)."""
    with pytest.raises(WebhookRejected) as raised:
        yield
    assert reason in raised.value.reason
    assert raised.value.message == "webhook signature not accepted"


def event(name: str) -> bytes:
    return (EVENTS / f"{name}.json").read_bytes()


# -- Plaid -----------------------------------------------------------------------------------------------


class PlaidKeys:
    """An ES256 key pair and a key_fetcher that serves its public JWK, as /webhook_verification_key/get does."""

    def __init__(self, kid: str = "6c5516e1-92dc-479e-a8ff-5a51992e0001") -> None:
        self.kid = kid
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk: dict[str, Any] = {
            **json.loads(ECAlgorithm.to_jwk(self.private.public_key())),
            "alg": "ES256",
            "kid": kid,
            "use": "sig",
            "created_at": NOW - 86_400,
            "expired_at": None,
        }
        self.fetched: list[str] = []

    def fetch(self, kid: str) -> dict[str, Any]:
        self.fetched.append(kid)
        if kid != self.kid:
            raise WebhookRejected("unknown verification key id")
        return self.jwk

    def sign(self, body: bytes, *, iat: int = NOW, alg: str = "ES256", key: Any = None, **claims: Any) -> str:
        payload = {"iat": iat, "request_body_sha256": hashlib.sha256(body).hexdigest(), **claims}
        return jwt.encode(payload, key or self.private, algorithm=alg, headers={"kid": self.kid})


@pytest.fixture
def plaid_keys() -> PlaidKeys:
    return PlaidKeys()


def test_plaid_accepts_a_good_signature_and_parses_success(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    headers = {"Plaid-Verification": plaid_keys.sign(body)}

    outcome = verify_plaid(headers, body, plaid_keys.fetch, now=NOW + 10)

    assert outcome == ProviderOutcome(
        provider=Provider("plaid"),
        session_id="link-sandbox-af1a0311-da53-4636-b754-dd15cc058176",
        event_id="356dbb28-7f98-44d1-8e6d-0cec580f3171:SESSION_FINISHED",
        linked=True,
        detail="SESSION_FINISHED SUCCESS",
        credential="public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d",
    )
    assert plaid_keys.fetched == [plaid_keys.kid]


def test_plaid_header_name_is_case_insensitive(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    outcome = verify_plaid({"plaid-verification": plaid_keys.sign(body)}, body, plaid_keys.fetch, now=NOW)
    assert outcome is not None and outcome.linked


@pytest.mark.parametrize(
    ("fixture", "error_class", "event_suffix"),
    [
        ("plaid_session_finished_exited", ErrorClass.USER_EXITED, "SESSION_FINISHED"),
        ("plaid_events_institution_not_supported", ErrorClass.INSTITUTION_NOT_SUPPORTED, "EVENTS"),
        ("plaid_events_institution_down", ErrorClass.PROVIDER_ERROR, "EVENTS"),
    ],
)
def test_plaid_failures_map_to_error_classes(
    plaid_keys: PlaidKeys, fixture: str, error_class: ErrorClass, event_suffix: str
) -> None:
    body = event(fixture)
    outcome = verify_plaid({"Plaid-Verification": plaid_keys.sign(body)}, body, plaid_keys.fetch, now=NOW)

    assert outcome is not None
    assert (outcome.linked, outcome.error_class) == (False, error_class)
    assert outcome.event_id.endswith(f":{event_suffix}")
    assert "Platypus" not in (outcome.detail or "")  # institution names stay out of the history


@pytest.mark.parametrize("fixture", ["plaid_events_success", "plaid_item_default_update"])
def test_plaid_webhooks_we_do_not_act_on_are_acknowledged(plaid_keys: PlaidKeys, fixture: str) -> None:
    body = event(fixture)
    assert verify_plaid({"Plaid-Verification": plaid_keys.sign(body)}, body, plaid_keys.fetch, now=NOW) is None


def test_plaid_rejects_a_missing_header(plaid_keys: PlaidKeys) -> None:
    with pytest.raises(WebhookRejected):
        verify_plaid({}, event("plaid_session_finished_success"), plaid_keys.fetch, now=NOW)


def test_plaid_rejects_a_signature_from_another_key(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    forged = plaid_keys.sign(body, key=ec.generate_private_key(ec.SECP256R1()))
    with rejected("signature"):
        verify_plaid({"Plaid-Verification": forged}, body, plaid_keys.fetch, now=NOW)


def test_plaid_rejects_a_tampered_body(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_exited")
    token = plaid_keys.sign(body)
    tampered = body.replace(b'"EXITED"', b'"SUCCESS"')
    with rejected("body"):
        verify_plaid({"Plaid-Verification": token}, tampered, plaid_keys.fetch, now=NOW)


def test_plaid_rejects_a_token_without_body_hash(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    token = jwt.encode({"iat": NOW}, plaid_keys.private, algorithm="ES256", headers={"kid": plaid_keys.kid})
    with pytest.raises(WebhookRejected):
        verify_plaid({"Plaid-Verification": token}, body, plaid_keys.fetch, now=NOW)


def test_plaid_rejects_a_stale_iat(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    token = plaid_keys.sign(body, iat=NOW - 301)
    with rejected("old"):
        verify_plaid({"Plaid-Verification": token}, body, plaid_keys.fetch, now=NOW)
    # Just inside the window is fine.
    assert verify_plaid({"Plaid-Verification": plaid_keys.sign(body, iat=NOW - 299)}, body, plaid_keys.fetch, now=NOW)


def test_plaid_rejects_an_iat_in_the_future(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    token = plaid_keys.sign(body, iat=NOW + 600)
    with pytest.raises(WebhookRejected):
        verify_plaid({"Plaid-Verification": token}, body, plaid_keys.fetch, now=NOW)


def test_plaid_stale_check_uses_the_real_clock_by_default(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    with pytest.raises(WebhookRejected):
        verify_plaid({"Plaid-Verification": plaid_keys.sign(body, iat=NOW)}, body, plaid_keys.fetch)
    fresh = plaid_keys.sign(body, iat=int(time.time()))
    assert verify_plaid({"Plaid-Verification": fresh}, body, plaid_keys.fetch) is not None


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_plaid_rejects_other_algorithms(plaid_keys: PlaidKeys, alg: str) -> None:
    body = event("plaid_session_finished_success")
    payload = {"iat": NOW, "request_body_sha256": hashlib.sha256(body).hexdigest()}
    # The classic confusion: an HMAC keyed with the public key's coordinates, or no signature at all.
    key = None if alg == "none" else plaid_keys.jwk["x"]
    token = jwt.encode(payload, key, algorithm=alg, headers={"kid": plaid_keys.kid})
    with rejected("ES256"):
        verify_plaid({"Plaid-Verification": token}, body, plaid_keys.fetch, now=NOW)
    assert plaid_keys.fetched == []  # rejected before any key lookup


def test_plaid_rejects_a_token_without_kid(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    token = jwt.encode(
        {"iat": NOW, "request_body_sha256": hashlib.sha256(body).hexdigest()}, plaid_keys.private, algorithm="ES256"
    )
    with rejected("key id"):
        verify_plaid({"Plaid-Verification": token}, body, plaid_keys.fetch, now=NOW)


def test_plaid_rejects_garbage_and_unknown_keys(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    with pytest.raises(WebhookRejected):
        verify_plaid({"Plaid-Verification": "not-a-jwt"}, body, plaid_keys.fetch, now=NOW)
    other = PlaidKeys(kid="unknown-kid")
    with pytest.raises(WebhookRejected):
        verify_plaid({"Plaid-Verification": other.sign(body)}, body, plaid_keys.fetch, now=NOW)


def test_plaid_rejects_a_key_that_is_not_ec(plaid_keys: PlaidKeys) -> None:
    body = event("plaid_session_finished_success")
    token = plaid_keys.sign(body)
    with pytest.raises(WebhookRejected):
        verify_plaid({"Plaid-Verification": token}, body, lambda _kid: {**plaid_keys.jwk, "kty": "RSA"}, now=NOW)


def test_a_signed_body_that_is_not_json_is_a_validation_error(plaid_keys: PlaidKeys) -> None:
    body = b"<xml/>"
    with pytest.raises(ValidationFailed):
        verify_plaid({"Plaid-Verification": plaid_keys.sign(body)}, body, plaid_keys.fetch, now=NOW)


class FakeKeySource:
    def __init__(self, keys: dict[str, dict[str, Any]]) -> None:
        self.keys = keys
        self.calls: list[str] = []

    def get_webhook_verification_key(self, key_id: str) -> dict[str, Any] | None:
        self.calls.append(key_id)
        return self.keys.get(key_id)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_key_cache_fetches_once_and_refetches_after_its_ttl(plaid_keys: PlaidKeys) -> None:
    source, clock = FakeKeySource({plaid_keys.kid: plaid_keys.jwk}), Clock(NOW)
    cache = PlaidKeyCache(source, ttl_s=3600, clock=clock)  # type: ignore[arg-type]

    assert cache(plaid_keys.kid) == plaid_keys.jwk
    assert cache(plaid_keys.kid) == plaid_keys.jwk
    assert source.calls == [plaid_keys.kid]

    clock.now += 3601
    cache(plaid_keys.kid)
    assert source.calls == [plaid_keys.kid, plaid_keys.kid]


def test_key_cache_rejects_unknown_kids_and_remembers_the_miss() -> None:
    source, clock = FakeKeySource({}), Clock(NOW)
    cache = PlaidKeyCache(source, miss_ttl_s=60, clock=clock)  # type: ignore[arg-type]

    for _ in range(3):
        with pytest.raises(WebhookRejected):
            cache("forged")
    assert source.calls == ["forged"]
    clock.now += 61
    with pytest.raises(WebhookRejected):
        cache("forged")
    assert source.calls == ["forged", "forged"]


def test_key_cache_rejects_an_expired_key(plaid_keys: PlaidKeys) -> None:
    expired = {**plaid_keys.jwk, "expired_at": NOW - 1}
    cache = PlaidKeyCache(FakeKeySource({plaid_keys.kid: expired}), clock=Clock(NOW))  # type: ignore[arg-type]
    with rejected("expired"):
        cache(plaid_keys.kid)


def test_key_cache_as_key_fetcher(plaid_keys: PlaidKeys) -> None:
    cache = PlaidKeyCache(FakeKeySource({plaid_keys.kid: plaid_keys.jwk}), clock=Clock(NOW))  # type: ignore[arg-type]
    body = event("plaid_session_finished_success")
    assert verify_plaid({"Plaid-Verification": plaid_keys.sign(body)}, body, cache, now=NOW) is not None


# -- Finicity --------------------------------------------------------------------------------------------

SECRET = "finicity-webhook-secret"


@pytest.mark.parametrize(
    ("fixture", "linked", "error_class"),
    [
        ("finicity_done", True, None),
        ("finicity_institution_not_supported", False, ErrorClass.INSTITUTION_NOT_SUPPORTED),
        ("finicity_unable_to_connect", False, ErrorClass.PROVIDER_ERROR),
        ("finicity_cancel", False, ErrorClass.USER_EXITED),
    ],
)
def test_finicity_outcomes(fixture: str, linked: bool, error_class: ErrorClass | None) -> None:
    body = event(fixture)
    outcome = verify_finicity({"X-Signature": sign_finicity(body, SECRET)}, body, SECRET)

    assert outcome is not None
    assert (outcome.provider, outcome.session_id) == (Provider("finicity"), "fin_4f1c2b7a9e3d4c8b8a7f6e5d4c3b2a19")
    assert (outcome.linked, outcome.error_class) == (linked, error_class)
    assert outcome.event_id == json.loads(body)["eventId"]
    # The data step reaches a linked customer's data through the Finicity customer id.
    assert outcome.credential == ("1005061234" if linked else None)


@pytest.mark.parametrize("fixture", ["finicity_added", "finicity_ping"])
def test_finicity_progress_events_are_acknowledged(fixture: str) -> None:
    body = event(fixture)
    assert verify_finicity({"x-signature": sign_finicity(body, SECRET)}, body, SECRET) is None


def test_finicity_accepts_upper_case_hex() -> None:
    body = event("finicity_done")
    assert verify_finicity({"X-Signature": sign_finicity(body, SECRET).upper()}, body, SECRET) is not None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Signature": ""},
        {"X-Signature": "00" * 32},
        {"X-Signature": sign_finicity(b"{}", SECRET)},
        {"X-Signature": sign_finicity(event("finicity_done"), "another-secret")},
    ],
)
def test_finicity_rejects_bad_signatures(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected):
        verify_finicity(headers, event("finicity_done"), SECRET)


def test_finicity_rejects_a_tampered_body() -> None:
    body = event("finicity_cancel")
    signature = sign_finicity(body, SECRET)
    with pytest.raises(WebhookRejected):
        verify_finicity({"X-Signature": signature}, body.replace(b'"cancel"', b'"done"'), SECRET)


# -- MX --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "linked", "error_class"),
    [
        ("mx_member_connected", True, None),
        ("mx_member_discontinued", False, ErrorClass.INSTITUTION_NOT_SUPPORTED),
        ("mx_member_expired", False, ErrorClass.USER_EXITED),
        ("mx_member_failed", False, ErrorClass.PROVIDER_ERROR),
    ],
)
def test_mx_outcomes(fixture: str, linked: bool, error_class: ErrorClass | None) -> None:
    body = event(fixture)
    outcome = verify_mx({"Authorization": basic_auth("mx", "pw")}, body, "mx", "pw")

    assert outcome is not None
    assert outcome.session_id == "USR-fa7537f3-48aa-a683-a02a-b18940482f54"
    assert (outcome.linked, outcome.error_class) == (linked, error_class)
    status = json.loads(body)["connection_status"]
    assert outcome.event_id == f"MBR-7c6f361b-e582-15b6-60c0-358f12466b4b:CONNECTION_STATUS:{status}"
    member = "USR-fa7537f3-48aa-a683-a02a-b18940482f54/MBR-7c6f361b-e582-15b6-60c0-358f12466b4b"
    assert outcome.credential == (member if linked else None)


def test_mx_in_progress_statuses_are_acknowledged() -> None:
    body = event("mx_member_challenged")
    assert verify_mx({"authorization": basic_auth("mx", "pw")}, body, "mx", "pw") is None


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic_auth("mx", "wrong"),
        basic_auth("other", "pw"),
        basic_auth("mx", "pw") + "x",
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"mxpw").decode(),
        "Bearer " + base64.b64encode(b"mx:pw").decode(),
    ],
)
def test_mx_rejects_wrong_basic_auth(authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with pytest.raises(WebhookRejected):
        verify_mx(headers, event("mx_member_connected"), "mx", "pw")


# -- domain ----------------------------------------------------------------------------------------------


def test_an_outcome_is_linked_or_failed_never_both() -> None:
    with pytest.raises(ValueError):
        ProviderOutcome(
            provider=Provider("mx"), session_id="s", event_id="e", linked=True, error_class=ErrorClass.TIMEOUT
        )
    with pytest.raises(ValueError):
        ProviderOutcome(provider=Provider("mx"), session_id="s", event_id="e", linked=False)


# -- HTTP clients against a fake transport -----------------------------------------------------------------

CUSTOMER = CustomerInfo(
    invitation_id="inv_31b7",
    tenant_id="t_9f2c",
    email="jane.doe@example.com",
    phone="+15145550123",
    first_name="Jane",
    last_name="Doe",
    locale="fr",
)


class FakeHttp:
    """Stands in for JsonHttp: records calls, answers from a queue."""

    def __init__(self, *answers: JsonResponse) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def post(self, path: str, json_body: Any, *, headers: Any = None, auth: Any = None) -> JsonResponse:
        self.calls.append({"path": path, "body": json_body, "headers": headers, "auth": auth})
        return self.answers.pop(0)


def test_plaid_client_asks_for_a_hosted_link_session() -> None:
    http = FakeHttp(
        JsonResponse(
            200,
            {
                "link_token": "link-sandbox-1",
                "hosted_link_url": "https://hosted.plaid.com/link/abc",
                "expiration": "2024-05-21T04:17:54Z",
                "request_id": "r",
            },
        )
    )
    client = PlaidClient("https://sandbox.plaid.com", "cid", "sec", http=http)  # type: ignore[arg-type]

    session = client.create_link_session(
        CUSTOMER, webhook_url="https://api/webhooks/plaid", redirect_url="https://portal/x", reference="t:i:1:0"
    )

    assert (session.session_id, session.link_url) == ("link-sandbox-1", "https://hosted.plaid.com/link/abc")
    assert session.expires_at is not None and session.expires_at.tzinfo is not None
    body = http.calls[0]["body"]
    assert http.calls[0]["path"] == "/link/token/create"
    assert (body["client_id"], body["secret"], body["webhook"], body["language"]) == (
        "cid",
        "sec",
        "https://api/webhooks/plaid",
        "fr",
    )
    assert body["user"]["client_user_id"] == "t:i:1:0"
    assert body["hosted_link"]["completion_redirect_uri"] == "https://portal/x"


@pytest.mark.parametrize(
    ("answer", "error_class", "retryable"),
    [
        (
            {"error_type": "INVALID_INPUT", "error_code": "INVALID_API_KEYS", "error_message": "secret: abc"},
            ErrorClass.PROVIDER_ERROR,
            False,
        ),
        (
            {"error_type": "ITEM_ERROR", "error_code": "PRODUCTS_NOT_SUPPORTED", "error_message": "x"},
            ErrorClass.INSTITUTION_NOT_SUPPORTED,
            False,
        ),
        ({"error_type": "RATE_LIMIT_EXCEEDED", "error_code": "RATE_LIMIT"}, ErrorClass.PROVIDER_ERROR, True),
    ],
)
def test_plaid_client_maps_refusals_without_leaking_partner_text(
    answer: dict[str, Any], error_class: ErrorClass, retryable: bool
) -> None:
    client = PlaidClient("u", "cid", "sec", http=FakeHttp(JsonResponse(400, answer)))  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as raised:
        client.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="ref")
    assert (raised.value.error_class, raised.value.retryable) == (error_class, retryable)
    assert raised.value.partner_code == answer["error_code"]
    assert answer.get("error_message", "#") not in raised.value.message


def test_plaid_client_treats_an_answer_without_hosted_link_as_unexpected() -> None:
    client = PlaidClient("u", "c", "s", http=FakeHttp(JsonResponse(200, {"link_token": "t"})))  # type: ignore[arg-type]
    with pytest.raises(ProviderError):
        client.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="ref")


def test_plaid_unknown_verification_key_is_none() -> None:
    http = FakeHttp(
        JsonResponse(400, {"error_type": "INVALID_INPUT", "error_code": "INVALID_WEBHOOK_VERIFICATION_KEY_ID"})
    )
    assert PlaidClient("u", "c", "s", http=http).get_webhook_verification_key("k") is None  # type: ignore[arg-type]


def test_finicity_client_authenticates_once_and_generates_a_connect_url() -> None:
    http = FakeHttp(
        JsonResponse(200, {"token": "tok-1"}),
        JsonResponse(201, {"id": "1005061234", "username": "u", "createdDate": "1607450357"}),
        JsonResponse(200, {"link": "https://connect2.finicity.com?x=1"}),
        JsonResponse(201, {"id": 1005061235}),
        JsonResponse(200, {"link": "https://connect2.finicity.com?x=2"}),
    )
    client = FinicityClient("u", "app-key", "partner", "partner-secret", http=http)  # type: ignore[arg-type]

    first = client.create_link_session(CUSTOMER, webhook_url="https://api/wf", redirect_url="https://p", reference="r1")
    second = client.create_link_session(
        CUSTOMER, webhook_url="https://api/wf", redirect_url="https://p", reference="r2"
    )

    paths = [c["path"] for c in http.calls]
    assert paths == [
        "/aggregation/v2/partners/authentication",
        "/aggregation/v2/customers/active",
        "/connect/v2/generate",
        "/aggregation/v2/customers/active",
        "/connect/v2/generate",
    ]
    assert http.calls[0]["body"] == {"partnerId": "partner", "partnerSecret": "partner-secret"}
    assert http.calls[1]["headers"]["Finicity-App-Token"] == "tok-1"
    generate = http.calls[2]["body"]
    assert generate["customerId"] == "1005061234"
    assert generate["webhookData"] == {"session_id": first.session_id, "reference": "r1"}
    assert (generate["webhook"], generate["redirectUri"], generate["language"]) == (
        "https://api/wf",
        "https://p",
        "fr-CA",
    )
    assert http.calls[4]["body"]["customerId"] == "1005061235"
    assert first.session_id != second.session_id
    assert first.link_url == "https://connect2.finicity.com?x=1"


def test_finicity_client_renews_a_rejected_token_once() -> None:
    http = FakeHttp(
        JsonResponse(200, {"token": "old"}),
        JsonResponse(401, {"code": 10022, "message": "Invalid or expired token"}),
        JsonResponse(200, {"token": "new"}),
        JsonResponse(201, {"id": "1"}),
        JsonResponse(200, {"link": "https://c"}),
    )
    client = FinicityClient("u", "k", "p", "s", http=http)  # type: ignore[arg-type]
    client.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="ref")
    assert http.calls[3]["headers"]["Finicity-App-Token"] == "new"


def test_finicity_client_refusal_is_a_provider_error() -> None:
    http = FakeHttp(JsonResponse(401, {"code": 10001, "message": "Invalid credentials"}))
    client = FinicityClient("u", "k", "p", "s", http=http)  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as raised:
        client.create_link_session(CUSTOMER, webhook_url="w", redirect_url="r", reference="ref")
    assert raised.value.partner_code == "10001" and not raised.value.retryable


def test_mx_client_creates_a_user_and_a_widget_url() -> None:
    http = FakeHttp(
        JsonResponse(200, {"user": {"guid": "USR-1", "id": "onb-x"}}),
        JsonResponse(
            200, {"widget_url": {"type": "connect_widget", "url": "https://int-widgets.moneydesktop.com/md/connect/x"}}
        ),
    )
    client = MxClient("u", "client", "key", http=http)  # type: ignore[arg-type]

    session = client.create_link_session(
        CUSTOMER, webhook_url="https://api/wmx", redirect_url="https://p", reference="r"
    )

    assert (session.provider, session.session_id) == (Provider("mx"), "USR-1")
    assert session.expires_at is not None
    user_call, widget_call = http.calls
    assert (user_call["path"], widget_call["path"]) == ("/users", "/users/USR-1/widget_urls")
    assert user_call["auth"] == ("client", "key")
    assert user_call["headers"]["Accept"] == "application/vnd.mx.api.v1+json"
    assert user_call["headers"]["Accept-Language"] == "fr-CA"
    assert json.loads(user_call["body"]["user"]["metadata"]) == {"reference": "r", "webhook_url": "https://api/wmx"}
    assert widget_call["body"]["widget_url"]["widget_type"] == "connect_widget"


def test_build_adapters_covers_every_registered_provider() -> None:
    settings = Settings(stage="test")
    adapters = build_adapters(settings, SecretStore(settings))
    assert list(adapters) == known()
    assert all(adapter.client.provider == provider for provider, adapter in adapters.items())


def test_forged_key_ids_cannot_make_every_webhook_call_plaid() -> None:
    from chalicelib.adapters.providers.base import WebhookRejected
    from chalicelib.adapters.providers.plaid import PlaidKeyCache

    class CountingClient:
        calls = 0

        def get_webhook_verification_key(self, kid: str) -> None:
            CountingClient.calls += 1
            return None

    now = [1000.0]
    cache = PlaidKeyCache(CountingClient(), fetch_interval_s=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for i in range(50):
        with pytest.raises(WebhookRejected):
            cache(f"forged-{i}")
    assert CountingClient.calls == 1
    now[0] += 1.5
    with pytest.raises(WebhookRejected):
        cache("forged-later")
    assert CountingClient.calls == 2
