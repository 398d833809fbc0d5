"""The send worker's cost per message (issue 16, item 4): an email costs one read, one claim, the send and
one write. Before, it cost 13 AWS calls (six GetItems among them: the send request, the invitation, the
lender twice, the suppression list, the invitation again), a figure `make bench` reports; this test keeps
the shape of the calls from drifting back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws as aws_clients
from chalicelib.domain.invitation import utcnow
from chalicelib.services.delivery import CLAIM_SECONDS, SendInProgress, SendMessage
from tests.integration.helpers import call, sent_emails


def emails_to(address: str) -> int:
    return sum(1 for m in sent_emails() if address in str(m.destinations))


class Calls:
    """Every AWS call made through the app's clients, as ``service:Operation``."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.made.append(f"{model.service_model.service_name}:{model.name}")


@pytest.fixture
def calls(aws: dict[str, str]) -> Any:
    seen = Calls()
    clients = [aws_clients.client(n) for n in ("dynamodb", "sesv2", "sns", "sqs")]
    for c in clients:
        c.meta.events.register("before-call", seen)
    yield seen
    for c in clients:
        c.meta.events.unregister("before-call", seen)


def queued(client: Any, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], SendMessage]:
    status, inv = call(client, "POST", "/v1/invitations", key, body)
    assert status == 201, inv
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    send_id = next(e["details"]["send_id"] for e in history["items"] if e["type"] == "send_requested")
    return inv, SendMessage(tenant_id=inv["tenant_id"], invitation_id=inv["invitation_id"], send_id=send_id)


def test_an_email_costs_a_read_a_claim_the_send_and_a_write(client: Any, lender: dict[str, Any], calls: Calls) -> None:
    key = lender["api_key"]
    inv, message = queued(client, key, {"email": "jo@smallbiz.com", "owner": "Olivia", "first_name": "Jo"})
    delivery = bootstrap.delivery()
    calls.made.clear()

    assert delivery.process(message) == "sent"

    assert calls.made == [
        "dynamodb:BatchGetItem",  # send request, invitation, lender, yesterday's sending counters
        "dynamodb:TransactWriteItems",  # claim the email, take a quota slot, not on the suppression list
        "sesv2:SendEmail",
        "dynamodb:TransactWriteItems",  # close the send, its communication record, the invitation and history
    ]
    _, comms = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    assert [(c["channel"], c["status"]) for c in comms["items"]] == [("email", "sent")]
    _, after = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert after["delivery_status"] == "sent"
    _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
    assert [e["type"] for e in history["items"]].count("sent") == 1

    calls.made.clear()
    assert delivery.process(message) == "duplicate"  # SQS delivered it twice: one read, nothing sent
    assert calls.made == ["dynamodb:BatchGetItem"]


def test_a_second_copy_waits_while_the_first_is_sending(client: Any, lender: dict[str, Any]) -> None:
    """SQS may hand the same message to two workers at once: the second backs off, one email leaves."""
    _, message = queued(client, lender["api_key"], {"email": "jo@smallbiz.com", "owner": "Olivia"})
    delivery = bootstrap.delivery()
    real_send = delivery.mailer.send
    second: list[BaseException] = []

    def send_while_a_copy_arrives(email: Any) -> str:
        try:
            delivery.process(message)
        except SendInProgress as exc:
            second.append(exc)
        return real_send(email)

    delivery.mailer.send = send_while_a_copy_arrives  # type: ignore[method-assign]
    try:
        assert delivery.process(message) == "sent"
    finally:
        delivery.mailer.send = real_send  # type: ignore[method-assign]
    assert len(second) == 1
    assert emails_to("jo@smallbiz.com") == 1
    assert delivery.process(message) == "duplicate"


def test_a_send_whose_worker_died_goes_once_its_claim_expires(
    client: Any, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-send (Lambda timeout) cannot release its claim: the message waits, then goes."""
    _, message = queued(client, lender["api_key"], {"email": "jo@smallbiz.com", "owner": "Olivia"})
    delivery = bootstrap.delivery()

    class Killed(BaseException):
        """What the runtime does to a timed-out invocation: nothing after it runs."""

    real_send = delivery.mailer.send

    def killed(email: Any) -> str:
        raise Killed()

    delivery.mailer.send = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        delivery.process(message)
    delivery.mailer.send = real_send  # type: ignore[method-assign]

    with pytest.raises(SendInProgress):  # SQS's next receive, while the claim may still be in use
        delivery.process(message, receive_count=2)
    later = utcnow() + timedelta(seconds=CLAIM_SECONDS + 1)
    monkeypatch.setattr("chalicelib.services.delivery.utcnow", lambda: later)
    assert delivery.process(message, receive_count=3) == "sent"
    assert emails_to("jo@smallbiz.com") == 1
