"""Random bodies through every SQS handler of the app (found in ``app.event_sources``, so a new
consumer is fuzzed without touching this file): no exception escapes, a bad record is either
acknowledged or reported in ``batchItemFailures``, and nothing is stored or queued from it."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.helpers import FUZZ, bodies, queued, stored


def record(body: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": uuid.uuid4().hex,
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAFUZZ",
            "ApproximateFirstReceiveTimestamp": "1700000000000",
        },
        "MD5OfBody": hashlib.md5(body.encode("utf-8", "surrogatepass")).hexdigest(),  # noqa: S324 (what SQS sends)
    }


def fuzz_handler(cfg: Any, handler: Any, env: dict[str, str]) -> None:
    from devstack.poller import LambdaContext, queue_name, to_lambda_event

    arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_name(cfg)}"

    @FUZZ
    @given(batch=st.lists(bodies, min_size=1, max_size=3), receive_count=st.integers(min_value=1, max_value=6))
    def check(batch: list[str], receive_count: int) -> None:
        before_items, before_queued = stored(env["TABLE_NAME"]), queued(env)
        event = to_lambda_event([record(b, receive_count) for b in batch], arn, "us-east-1")

        result = handler(event, LambdaContext(function_name=cfg.name))

        assert isinstance(result, dict), f"{cfg.name} returned {result!r}"
        assert set(result) <= {"batchItemFailures"}, result
        ids = {r["messageId"] for r in event["Records"]}
        assert {f["itemIdentifier"] for f in result.get("batchItemFailures", [])} <= ids
        new = stored(env["TABLE_NAME"]) - before_items
        assert not new, f"{cfg.name} stored {sorted(new)} from a body that names nothing real"
        assert queued(env) == before_queued, f"{cfg.name} queued messages from a rejected body"

    check()


def test_every_sqs_handler_survives_random_bodies(client: Any, aws: dict[str, str]) -> None:
    from app import app
    from devstack.poller import sqs_sources

    handlers = sqs_sources(app)
    assert handlers, "the app has no SQS handler to fuzz"
    for cfg, handler in handlers:
        fuzz_handler(cfg, handler, aws)
