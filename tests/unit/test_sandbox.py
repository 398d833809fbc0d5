"""The provider sandbox and the real HTTP clients, over loopback: sessions, signed webhooks, retries.

A tiny receiver stands in for the API's webhook routes: it verifies every delivery with the adapters'
verifiers and answers 401 when verification fails, so a 200 means "correctly signed".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from chalicelib.adapters.providers import ProviderError, WebhookRejected
from chalicelib.adapters.providers.finicity import FinicityClient, verify_finicity
from chalicelib.adapters.providers.http import JsonHttp
from chalicelib.adapters.providers.mx import MxClient, verify_mx
from chalicelib.adapters.providers.plaid import PlaidClient, PlaidKeyCache, verify_plaid
from chalicelib.domain.bank_link import CustomerInfo, ErrorClass, ProviderOutcome
from chalicelib.domain.providers import Provider, known
from devstack.sandbox import ProviderSandbox, SandboxCredentials

CREDS = SandboxCredentials.from_environment({})
CUSTOMER = CustomerInfo(
    invitation_id="inv_1", tenant_id="t_1", email="jane@example.com", phone=None, first_name="Jane", last_name=None
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    outcome: ProviderOutcome | None = None
    reason: str | None = None


@dataclass
class Receiver:
    url: str = ""
    verifiers: dict[str, Callable[[dict[str, str], bytes], ProviderOutcome | None]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def take(self) -> list[Received]:
        taken, self.received[:] = list(self.received), []
        return taken


def _receiver_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            verify = receiver.verifiers.get(self.path)
            record = Received(self.path, headers, body, 404)
            if verify is not None:
                try:
                    record.outcome, record.status = verify(headers, body), 200
                except WebhookRejected as exc:
                    record.status, record.reason = 401, exc.reason
            receiver.received.append(record)
            self.send_response(record.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sandbox(receiver: Receiver) -> Iterator[ProviderSandbox]:
    with ProviderSandbox("127.0.0.1", 0, api_url=receiver.url, credentials=CREDS) as running:
        yield running


@pytest.fixture(scope="module")
def clients(sandbox: ProviderSandbox, receiver: Receiver) -> dict[Provider, Any]:
    def http(name: str) -> JsonHttp:
        return JsonHttp(name, sandbox.url, backoff_s=0)

    plaid = PlaidClient(sandbox.url, CREDS.plaid_client_id, CREDS.plaid_secret, http=http("plaid"))
    keys = PlaidKeyCache(plaid)
    receiver.verifiers.update(
        {
            "/webhooks/plaid": lambda h, b: verify_plaid(h, b, keys),
            "/webhooks/finicity": lambda h, b: verify_finicity(h, b, CREDS.finicity_webhook_secret),
            "/webhooks/mx": lambda h, b: verify_mx(h, b, CREDS.mx_webhook_username, CREDS.mx_webhook_password),
        }
    )
    return {
        Provider("plaid"): plaid,
        Provider("finicity"): FinicityClient(
            sandbox.url,
            CREDS.finicity_app_key,
            CREDS.finicity_partner_id,
            CREDS.finicity_partner_secret,
            http=http("finicity"),
        ),
        Provider("mx"): MxClient(sandbox.url, CREDS.mx_client_id, CREDS.mx_api_key, http=http("mx")),
    }


def start(clients: dict[Provider, Any], receiver: Receiver, provider: Provider, reference: str = "t_1:inv_1:1:0"):
    return clients[provider].create_link_session(
        CUSTOMER,
        webhook_url=f"{receiver.url}/webhooks/{provider}",
        redirect_url="http://portal.test/p/abc?step=bank",
        reference=reference,
    )


def complete(sandbox: ProviderSandbox, session_id: str, outcome: str) -> requests.Response:
    return requests.post(f"{sandbox.url}/sandbox/sessions/{session_id}/complete", json={"outcome": outcome}, timeout=10)


EXPECTED = {
    "success": (True, None),
    "institution_not_supported": (False, ErrorClass.INSTITUTION_NOT_SUPPORTED),
    "user_exited": (False, ErrorClass.USER_EXITED),
    "provider_error": (False, ErrorClass.PROVIDER_ERROR),
}


@pytest.mark.parametrize("provider", [Provider(k) for k in known()])
@pytest.mark.parametrize("outcome", list(EXPECTED))
def test_completion_posts_a_correctly_signed_webhook(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver, provider: Provider, outcome: str
) -> None:
    session = start(clients, receiver, provider)
    assert session.provider == provider
    assert session.link_url.startswith(f"{sandbox.url}/sandbox/link/")
    receiver.take()

    response = complete(sandbox, session.session_id, outcome)

    assert response.status_code == 200, response.text
    assert response.json()["webhook_status"] == 200
    deliveries = receiver.take()
    assert deliveries and all(d.status == 200 for d in deliveries), [(d.path, d.reason) for d in deliveries]
    outcomes = [d.outcome for d in deliveries if d.outcome is not None]
    decisive = outcomes[0]  # the sandbox posts the deciding webhook first (Finicity: after "added", ignored)
    assert (decisive.provider, decisive.session_id) == (provider, session.session_id)
    assert (decisive.linked, decisive.error_class) == EXPECTED[outcome]


def test_plaid_failure_also_sends_session_finished_exited(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    session = start(clients, receiver, Provider("plaid"))
    receiver.take()
    complete(sandbox, session.session_id, "institution_not_supported")
    events = [
        (json.loads(d.body)["webhook_code"], d.outcome.error_class if d.outcome else None) for d in receiver.take()
    ]
    assert events == [("EVENTS", ErrorClass.INSTITUTION_NOT_SUPPORTED), ("SESSION_FINISHED", ErrorClass.USER_EXITED)]


def test_completing_again_redelivers_the_same_events(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    session = start(clients, receiver, Provider("finicity"))
    receiver.take()
    complete(sandbox, session.session_id, "success")
    first = [d.outcome.event_id for d in receiver.take() if d.outcome]
    assert complete(sandbox, session.session_id, "success").status_code == 200
    assert [d.outcome.event_id for d in receiver.take() if d.outcome] == first

    conflict = complete(sandbox, session.session_id, "user_exited")
    assert conflict.status_code == 409
    assert receiver.take() == []


def test_the_customer_page_offers_the_choices_and_links_back(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    session = start(clients, receiver, Provider("mx"))
    receiver.take()

    page = requests.get(session.link_url, timeout=10)
    assert page.status_code == 200
    for outcome in EXPECTED:
        assert f'value="{outcome}"' in page.text

    done = requests.post(session.link_url, data={"outcome": "institution_not_supported"}, timeout=10)
    assert done.status_code == 200
    assert 'href="http://portal.test/p/abc?step=bank"' in done.text
    assert "close this window" in done.text
    [delivery] = receiver.take()
    assert delivery.outcome is not None and delivery.outcome.error_class == ErrorClass.INSTITUTION_NOT_SUPPORTED
    # Reloading the page shows the finished session, not the buttons again.
    assert 'value="success"' not in requests.get(session.link_url, timeout=10).text


def test_sessions_can_be_found_by_reference(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    session = start(clients, receiver, Provider("finicity"), reference="t_9:inv_9:2:1")
    found = requests.get(f"{sandbox.url}/sandbox/sessions", params={"reference": "t_9:inv_9:2:1"}, timeout=10).json()
    [entry] = found["sessions"]
    assert session.session_id in entry["session_ids"]
    assert entry["link_url"] == session.link_url
    by_id = requests.get(f"{sandbox.url}/sandbox/sessions/{session.session_id}", timeout=10).json()
    assert by_id["provider"] == "finicity"


def test_a_receiver_with_the_wrong_secret_answers_401(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    session = start(clients, receiver, Provider("finicity"))
    original = receiver.verifiers["/webhooks/finicity"]
    receiver.verifiers["/webhooks/finicity"] = lambda h, b: verify_finicity(h, b, "not-the-secret")
    try:
        response = complete(sandbox, session.session_id, "success")
    finally:
        receiver.verifiers["/webhooks/finicity"] = original
    assert response.json()["webhook_status"] == 401
    assert {d.reason for d in receiver.take()} == {"signature does not match the body"}


def test_a_rotated_plaid_key_still_verifies_and_the_new_one_is_fetched(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    sandbox.rotate_key()
    session = start(clients, receiver, Provider("plaid"))
    receiver.take()
    assert complete(sandbox, session.session_id, "success").json()["webhook_status"] == 200


def test_unknown_session_and_outcome(sandbox: ProviderSandbox) -> None:
    assert complete(sandbox, "no-such-session", "success").status_code == 404
    assert requests.get(f"{sandbox.url}/sandbox/link/nope", timeout=10).status_code == 404


def test_bad_outcome_is_refused(sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver) -> None:
    session = start(clients, receiver, Provider("plaid"))
    assert complete(sandbox, session.session_id, "maybe").status_code == 400


def test_clients_retry_server_errors(
    sandbox: ProviderSandbox, clients: dict[Provider, Any], receiver: Receiver
) -> None:
    sandbox.inject_fault("/link/token/create", 503, count=2)
    assert start(clients, receiver, Provider("plaid")).session_id.startswith("link-sandbox-")

    sandbox.inject_fault("/users", 502, count=3)
    with pytest.raises(ProviderError) as raised:
        start(clients, receiver, Provider("mx"))
    assert raised.value.retryable
    sandbox.inject_fault("/users", 502, count=0)


def test_wrong_credentials_are_a_provider_error_without_retry(sandbox: ProviderSandbox, receiver: Receiver) -> None:
    plaid = PlaidClient(sandbox.url, CREDS.plaid_client_id, "wrong", http=JsonHttp("plaid", sandbox.url, backoff_s=0))
    with pytest.raises(ProviderError) as raised:
        plaid.create_link_session(CUSTOMER, webhook_url=f"{receiver.url}/x", redirect_url="r", reference="ref")
    assert (raised.value.partner_code, raised.value.retryable) == ("INVALID_API_KEYS", False)

    finicity = FinicityClient(sandbox.url, "wrong-key", "p", "s", http=JsonHttp("finicity", sandbox.url, backoff_s=0))
    with pytest.raises(ProviderError):
        finicity.create_link_session(CUSTOMER, webhook_url=f"{receiver.url}/x", redirect_url="r", reference="ref")


def test_unknown_plaid_key_id_is_rejected(clients: dict[Provider, Any]) -> None:
    with pytest.raises(WebhookRejected):
        PlaidKeyCache(clients[Provider("plaid")])("not-a-kid")


def test_timeouts_are_retryable_provider_errors() -> None:
    # Nothing listens on port 9 of the loopback address: the connection is refused at once.
    http = JsonHttp("plaid", "http://127.0.0.1:9", retries=0)
    with pytest.raises(ProviderError) as raised:
        http.post("/link/token/create", {})
    assert raised.value.retryable
