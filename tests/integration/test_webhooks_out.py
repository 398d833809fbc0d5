"""Outbound webhooks on the embedded AWS, delivered to a receiver on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib import bootstrap
from chalicelib.config import WEBHOOK_QUEUE
from chalicelib.domain import webhook_signing
from tests.integration.feedback_helpers import Receiver, enqueue
from tests.integration.helpers import call, drain


@pytest.fixture(autouse=True)
def _fast_backoff(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Waits of 0 s keep retries within the test's own drain.
    monkeypatch.setenv("WEBHOOK_RETRY_BASE_SECONDS", "0")
    bootstrap.reset()


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def configure(client: Any, key: str, url: str, grace: int = 3600) -> str:
    status, created = call(client, "POST", "/v1/tenant/webhook-secrets", key, {"previous_valid_for_seconds": grace})
    assert status == 201, created
    status, settings = call(client, "PATCH", "/v1/tenant/settings", key, {"webhook_url": url})
    assert status == 200, settings
    return str(created["secret"])


def notify(lender: dict[str, Any], event_key: str = "k-1") -> str:
    n = bootstrap.notifications().notify(
        lender["tenant"]["tenant_id"], "completion", "inv_X", {"completed_at": "2026-01-05T10:00:00Z"}, key=event_key
    )
    return n.notification_id


def test_a_notification_becomes_one_signed_event(client: Any, key: str, lender: dict[str, Any]) -> None:
    with Receiver() as crm:
        secret = configure(client, key, crm.url)
        crm.secret = secret
        notify(lender)
        notify(lender)  # the same event raised again (a redelivered trigger)
        notify(lender)
        drain(WEBHOOK_QUEUE)

    assert len(crm.requests) == 1
    request = crm.requests[0]
    assert request["verified"] is True
    event = json.loads(request["body"])
    assert set(event) == {"id", "type", "created_at", "data"}
    assert event["type"] == "invitation.completed"
    assert event["data"]["invitation_id"] == "inv_X"
    assert request["headers"]["X-Onboarding-Event-Id"] == event["id"]
    status, deliveries = call(client, "GET", "/v1/webhook-deliveries", key)
    assert status == 200
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in deliveries["items"]] == [(1, True, 200)]


def test_deliveries_follow_standard_webhooks(client: Any, key: str, lender: dict[str, Any]) -> None:
    with Receiver() as crm:
        secret = configure(client, key, crm.url)
        crm.secret = secret
        crm.statuses = [503]  # the first attempt fails: the retry keeps the webhook-id
        notify(lender)
        drain(WEBHOOK_QUEUE)

    assert secret.startswith("whsec_") and webhook_signing.standard_secret(secret) == secret
    assert len(crm.requests) == 2
    event_id = json.loads(crm.requests[0]["body"])["id"]
    for request in crm.requests:
        # Real deliveries, verified by the standardwebhooks package exactly as a lender calls it.
        Webhook(secret).verify(request["body"], request["headers"])
        assert request["verified"] is True
        assert request["headers"]["webhook-id"] == event_id  # receivers dedupe on it
        assert request["headers"]["webhook-signature"].startswith("v1,")
        assert request["verified_legacy"] is True  # the old header, for one release


def test_the_old_signature_header_can_be_turned_off(
    client: Any, key: str, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_LEGACY_SIGNATURE", "false")
    bootstrap.reset()
    with Receiver() as crm:
        crm.secret = configure(client, key, crm.url)
        notify(lender)
        drain(WEBHOOK_QUEUE)

    [request] = crm.requests
    assert request["verified"] is True
    assert webhook_signing.HEADER not in request["headers"]


def test_failures_are_retried_with_attempt_counts_then_dlq(
    client: Any, key: str, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.services import webhooks_out

    # The default 24 h window; a clock that moves two hours each time the worker reads it.
    monkeypatch.setenv("WEBHOOK_RETRY_WINDOW_SECONDS", str(24 * 3600))
    bootstrap.reset()
    ticks = iter(range(10_000))
    start = datetime(2026, 1, 5, tzinfo=UTC)
    monkeypatch.setattr(webhooks_out, "utcnow", lambda: start + timedelta(hours=2 * next(ticks)))
    with Receiver() as crm:
        configure(client, key, crm.url)
        crm.statuses = [500, 503] + [500] * 20
        notify(lender)
        for _ in range(30):
            drain(WEBHOOK_QUEUE, rounds=1)

    attempts = [json.loads(r["body"])["id"] for r in crm.requests]
    assert len(set(attempts)) == 1
    status, deliveries = call(client, "GET", "/v1/webhook-deliveries", key)
    rows = sorted((d["attempt"], d["status_code"], d["error"]) for d in deliveries["items"])
    assert rows[0] == (1, 500, "HTTP 500")
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))  # each attempt recorded once
    assert len(crm.requests) == len(rows)  # and POSTed once, however often SQS redelivered it
    sqs = boto3.client("sqs")
    dlq = sqs.get_queue_url(QueueName=f"{WEBHOOK_QUEUE}-dlq")["QueueUrl"]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["attempt"] for m in dead] == [len(rows)]
    assert 3 <= len(rows) <= 13  # a bounded number of attempts within the window


def test_redeliver_sends_the_event_again(client: Any, key: str, lender: dict[str, Any]) -> None:
    with Receiver() as crm:
        configure(client, key, crm.url)
        notify(lender)
        drain(WEBHOOK_QUEUE)
        _, deliveries = call(client, "GET", "/v1/webhook-deliveries", key)
        delivery_id = deliveries["items"][0]["delivery_id"]

        status, queued = call(client, "POST", f"/v1/webhook-deliveries/{delivery_id}/redeliver", key)
        assert status == 202, queued
        drain(WEBHOOK_QUEUE)

    assert len(crm.requests) == 2
    assert crm.requests[0]["body"] == crm.requests[1]["body"]
    _, deliveries = call(client, "GET", "/v1/webhook-deliveries", key)
    assert sorted(d["trigger"] for d in deliveries["items"]) == ["automatic", "redelivery"]
    status, _ = call(client, "POST", "/v1/webhook-deliveries/whd_nope/redeliver", key)
    assert status == 404


def test_rotation_keeps_two_secrets_valid(client: Any, key: str, lender: dict[str, Any]) -> None:
    with Receiver() as crm:
        old = configure(client, key, crm.url)
        status, rotated = call(client, "POST", "/v1/tenant/webhook-secrets", key, {"previous_valid_for_seconds": 600})
        assert status == 201
        new = rotated["secret"]
        assert rotated["previous_expires_at"] is not None
        notify(lender)
        drain(WEBHOOK_QUEUE)

    request = crm.requests[0]
    header = request["headers"][webhook_signing.HEADER]
    assert header.count("v1=") == 2
    webhook_signing.verify(request["body"], header, old)
    webhook_signing.verify(request["body"], header, new)
    assert request["headers"]["webhook-signature"].count("v1,") == 2
    for secret in (old, new):  # either secret verifies with the Standard Webhooks library during the rotation
        Webhook(secret).verify(request["body"], request["headers"])
    status, listed = call(client, "GET", "/v1/tenant/webhook-secrets", key)
    assert len(listed["items"]) == 2
    assert all("secret" not in s and len(s["prefix"]) < 12 for s in listed["items"])
    # Retiring the old one at once leaves only the newest.
    call(client, "POST", "/v1/tenant/webhook-secrets", key, {"previous_valid_for_seconds": 0})
    _, listed = call(client, "GET", "/v1/tenant/webhook-secrets", key)
    assert len(listed["items"]) == 1


def test_no_webhook_url_means_no_event(client: Any, key: str, lender: dict[str, Any]) -> None:
    notify(lender)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=WEBHOOK_QUEUE)["QueueUrl"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_three_copies_of_a_webhook_message_post_once(client: Any, key: str, lender: dict[str, Any]) -> None:
    with Receiver() as crm:
        configure(client, key, crm.url)
        notify(lender)
        sqs = boto3.client("sqs")
        url = sqs.get_queue_url(QueueName=WEBHOOK_QUEUE)["QueueUrl"]
        message = sqs.receive_message(QueueUrl=url)["Messages"][0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        enqueue(WEBHOOK_QUEUE, [message["Body"]] * 3)
        drain(WEBHOOK_QUEUE)

    assert len(crm.requests) == 1
