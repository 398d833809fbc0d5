"""The smaller holes found in review (issue 11, item 18)."""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import keys
from chalicelib.adapters.passwords import PasswordHasher
from chalicelib.config import WEBHOOK_QUEUE
from chalicelib.domain.bank_link import ErrorClass
from chalicelib.domain.notifications import WebhookMessage
from chalicelib.domain.providers import Provider
from chalicelib.errors import RateLimited
from chalicelib.services.join import SignInRefused
from tests.integration import test_waterfall as waterfall
from tests.integration.feedback_helpers import Receiver
from tests.integration.helpers import Fault, call
from tests.integration.test_join import join, settings
from tests.integration.test_waterfall import World, decisions, finished, invitation, open_slot, start, webhook

world = waterfall.world  # the waterfall's fixture: bootstrap's service with only the partners faked


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


# --- a SendTaskFailure lost after the slot was closed ------------------------------------------------
def test_a_refusal_whose_task_failure_was_lost_still_moves_the_waterfall_on(
    client: Any, key: str, world: World
) -> None:
    """Plaid refuses the session; the refusal is recorded, then SendTaskFailure fails (Step Functions
    unavailable). SQS retries the link request: the failure is sent again, so Finicity gets its turn
    now instead of after the step's timeout (60 s here)."""
    world.providers[Provider("plaid")].refuse = ErrorClass.INSTITUTION_NOT_SUPPORTED
    inv_id, token = invitation(client, key)
    with Fault(aws.client("stepfunctions"), "SendTaskFailure", "InternalFailure", times=3) as fault:
        start(client, token)
        finicity = open_slot(client, key, inv_id, "finicity")
    assert fault.calls >= 1
    webhook(client, "finicity", finicity)
    final = finished(client, key, inv_id)
    assert [(d["provider"], d["outcome"], d["reason"]) for d in final["decisions"]] == [
        ("plaid", "failed", "institution_not_supported"),
        ("finicity", "linked", None),
    ]
    assert len(decisions(client, key, inv_id)) == 2  # the refusal was recorded once


# --- duplicated webhook retries merge ---------------------------------------------------------------
def test_copies_of_a_failing_webhook_message_schedule_one_retry(
    client: Any, key: str, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_BASE_SECONDS", "0")
    bootstrap.reset()
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=WEBHOOK_QUEUE)["QueueUrl"]
    with Receiver() as crm:
        assert call(client, "POST", "/v1/tenant/webhook-secrets", key, {})[0] == 201
        assert call(client, "PATCH", "/v1/tenant/settings", key, {"webhook_url": crm.url})[0] == 200
        crm.statuses = [500] * 10
        bootstrap.notifications().notify(
            lender["tenant"]["tenant_id"], "completion", "inv_X", {"completed_at": "2026-01-05T10:00:00Z"}, key="k"
        )
        message = sqs.receive_message(QueueUrl=url)["Messages"][0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        # Three copies of the first attempt (a redelivered trigger, SQS duplicates), one after another.
        service = bootstrap.webhooks()
        outcomes = [service.deliver(WebhookMessage.model_validate_json(message["Body"])) for _ in range(3)]
        assert outcomes == ["retry_scheduled"] * 3
        assert len(crm.requests) == 1
        # One attempt 2 is queued, not one per copy: the copies merged.
        waiting = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        assert [json.loads(m["Body"])["attempt"] for m in waiting] == [2], [m["Body"] for m in waiting]


# --- stored data that no longer validates is our error, not the client's ----------------------------
def test_an_unreadable_stored_record_is_a_500_in_the_error_shape(client: Any, key: str) -> None:
    status, inv = call(client, "POST", "/v1/invitations", key, {"email": "jo@smallbiz.com", "owner": "O"})
    assert status == 201, inv
    s = bootstrap.services()
    s.table.update(keys.invitation(inv["tenant_id"], inv["invitation_id"]), {"channel": "carrier_pigeon"})

    status, body = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", key)
    assert status == 500, body
    assert body["error"]["code"] == "internal_error" and body["error"]["fields"] == {}
    assert "carrier_pigeon" not in str(body)


def test_bad_input_found_inside_a_service_is_still_a_400(client: Any, key: str) -> None:
    status, inv = call(client, "POST", "/v1/invitations", key, {"email": "jo@smallbiz.com", "owner": "O"})
    assert status == 201, inv
    # Valid alone, invalid with the stored data: an SMS channel without a phone number.
    status, body = call(client, "PATCH", f"/v1/invitations/{inv['invitation_id']}", key, {"channel": "sms"})
    assert status == 400, body
    assert body["error"]["code"] == "validation_error"


# --- parallel wrong passwords are all counted before any is checked ----------------------------------
class GatedHasher:
    """The real hasher, except that ``verify`` holds each caller at a barrier, so every request
    that gets as far as checking a password is in flight at once (a parallel guessing burst)."""

    def __init__(self, real: PasswordHasher, parties: int) -> None:
        self.real = real
        self.gate = threading.Barrier(parties)
        self.verified = 0
        self.lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        with self.lock:
            self.verified += 1
        with contextlib.suppress(threading.BrokenBarrierError):
            self.gate.wait(timeout=3)
        return self.real.verify(password_hash, password)

    def burn(self, password: str) -> None:
        self.real.burn(password)

    def hash(self, password: str) -> str:
        return self.real.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.real.needs_rehash(password_hash)


@pytest.fixture
def atomic_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies an UpdateItem atomically; in-process moto reads, changes and writes the item with no lock, so
    two parallel ADDs can both return the same count (this test failed now and then with 6 checked). Serialise
    them, as the local stack's request lock does (devstack/embedded_aws.py), so the test sees DynamoDB's behaviour."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    real = DynamoDBBackend.update_item

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return real(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", update_item)


@pytest.mark.usefixtures("atomic_updates")
def test_parallel_wrong_passwords_cannot_outrun_the_account_limit(client: Any, key: str) -> None:
    settings(client, key, require_email_confirmation=False)
    call(client, "POST", "/v1/invitations", key, {"email": "jane@smallbiz.com", "owner": "O", "send": False})
    assert join(client).status_code == 303
    service = bootstrap.joins()
    gated = GatedHasher(service.hasher, parties=10)
    service.hasher = gated  # type: ignore[assignment]

    def guess(n: int) -> str:
        try:
            # One address: wrong passwords are budgeted per account *and* address (issue 11 item 11), so that a
            # stranger cannot lock the customer out; the budget is what parallel guesses must not outrun.
            service.sign_in("janes-bakery", "admin", f"wrong password {n}", "198.51.100.7")
        except RateLimited:
            return "limited"
        except SignInRefused:
            return "refused"
        return "signed_in"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(guess, range(10)))
    # At most 5 wrong passwords per account and address are ever checked, however many arrive at once.
    assert gated.verified <= 5, outcomes
    assert outcomes.count("refused") == gated.verified and outcomes.count("limited") == 10 - gated.verified
