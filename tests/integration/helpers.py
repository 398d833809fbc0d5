"""Helpers for integration tests: HTTP calls through chalice.test.Client and draining queues like Lambda."""

from __future__ import annotations

import json
from typing import Any

import boto3

from devstack.poller import QueuePoller, sqs_sources


def headers(key: str | None = None, **extra: str) -> dict[str, str]:
    result = {"Content-Type": "application/json", **extra}
    if key:
        result["Authorization"] = f"Bearer {key}"
    return result


def call(
    client: Any, method: str, path: str, key: str | None = None, body: Any = None, **extra: str
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": headers(key, **extra)}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = getattr(client.http, method.lower())(path, **kwargs)
    text = response.body.decode() if response.body else ""
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload = text
    return response.status_code, payload


def poller(queue: str, retry_visibility_s: int | None = 0) -> QueuePoller:
    """A Lambda-like poller for the app handler bound to ``queue`` (moto in-process)."""
    from app import app

    sqs = boto3.client("sqs")
    for cfg, handler in sqs_sources(app):
        if cfg.queue == queue:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            return QueuePoller(
                sqs,
                queue_url=url,
                queue_arn=f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                handler=handler,
                function_name=cfg.name,
                batch_size=cfg.batch_size,
                wait_seconds=0,
                retry_visibility_s=retry_visibility_s,
            )
    raise LookupError(f"no handler for {queue}")


def drain(queue: str, rounds: int = 20) -> int:
    """Feed the queue to its handler until it is empty; returns the messages processed."""
    p = poller(queue)
    total = 0
    for _ in range(rounds):
        outcome = p.poll_once()
        if outcome.received == 0:
            break
        total += outcome.deleted
    return total


def sent_emails() -> list[Any]:
    from moto.backends import get_backend

    backend = get_backend("ses")["123456789012"]["us-east-1"]
    return list(backend.sent_messages)


def sent_sms() -> list[Any]:
    from moto.backends import get_backend

    backend = get_backend("sns")["123456789012"]["us-east-1"]
    return list(backend.sms_messages.items())


class Fault:
    """An AWS failure injected into one real client through botocore's own ``before-call`` hook:
    the next ``times`` calls of ``operation`` answer ``code`` (plus ``extra`` response fields)
    instead of reaching the embedded AWS. Use as a context manager; ``calls`` counts the failures."""

    def __init__(self, client: Any, operation: str, code: str, times: int, **extra: Any) -> None:
        self.client = client
        self.event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        self.code = code
        self.left = times
        self.extra = extra
        self.calls = 0

    def __call__(self, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        if self.left <= 0:
            return None
        self.left -= 1
        self.calls += 1
        response = AWSResponse(url="https://aws.invalid", status_code=400, headers={}, raw=None)
        return response, {"Error": {"Code": self.code, "Message": "injected by the test"}, **self.extra}

    def __enter__(self) -> Fault:
        self.client.meta.events.register(self.event, self, unique_id=f"fault-{id(self)}")
        return self

    def __exit__(self, *_: Any) -> None:
        self.client.meta.events.unregister(self.event, unique_id=f"fault-{id(self)}")


def cancelled(*reasons: str) -> dict[str, Any]:
    """The extra fields of a TransactionCanceledException with these cancellation reasons."""
    return {"CancellationReasons": [{"Code": r} for r in reasons]}
