"""The local SQS poller follows Lambda's event source mapping: event shape, partial batch failures, DLQ."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chalice import Chalice

from devstack.poller import LambdaContext, Pollers, QueuePoller, failed_message_ids, to_lambda_event

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/work"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:work"


def sqs_message(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"rh{n}",
        "Body": json.dumps({"n": n}),
        "MD5OfBody": "md5",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        **extra,
    }


class FakeSqs:
    """Hands out prepared batches and records what the poller deletes or makes visible again."""

    def __init__(self, *batches: list[dict[str, Any]]) -> None:
        self.batches = list(batches)
        self.receive_calls: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.made_visible: list[tuple[str, int]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receive_calls.append(kwargs)
        return {"Messages": self.batches.pop(0)} if self.batches else {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.made_visible += [(e["ReceiptHandle"], e["VisibilityTimeout"]) for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class RecordingHandler:
    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.result = result
        self.error = error
        self.calls: list[tuple[dict[str, Any], Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls.append((event, context))
        if self.error is not None:
            raise self.error
        return self.result


def poller(sqs: Any, handler: Any, **kwargs: Any) -> QueuePoller:
    return QueuePoller(
        sqs, queue_url=QUEUE_URL, queue_arn=QUEUE_ARN, handler=handler, function_name="app-dev-work", **kwargs
    )


def test_event_has_lambda_sqs_record_shape() -> None:
    message = sqs_message(
        1,
        MessageAttributes={
            "tenant": {"StringValue": "ten_1", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
        MD5OfMessageAttributes="md5attrs",
    )

    event = to_lambda_event([message], QUEUE_ARN, "us-east-1")

    assert event == {
        "Records": [
            {
                "messageId": "m1",
                "receiptHandle": "rh1",
                "body": '{"n": 1}',
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                "messageAttributes": {
                    "tenant": {
                        "stringValue": "ten_1",
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    },
                    "blob": {
                        "binaryValue": base64.b64encode(b"\x00\x01").decode(),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "Binary",
                    },
                },
                "md5OfBody": "md5",
                "md5OfMessageAttributes": "md5attrs",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_receive_asks_for_a_bounded_batch_with_every_attribute() -> None:
    sqs = FakeSqs()

    poller(sqs, RecordingHandler(), batch_size=25).poll_once()

    assert sqs.receive_calls == [
        {
            "QueueUrl": QUEUE_URL,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": 1,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
    ]


def test_handler_gets_a_lambda_context() -> None:
    handler = RecordingHandler()

    poller(FakeSqs([sqs_message(1)]), handler, memory_mb=512, timeout_s=30).poll_once()

    context = handler.calls[0][1]
    assert context.function_name == "app-dev-work"
    assert context.memory_limit_in_mb == 512
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:app-dev-work"
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 30_000


def test_success_deletes_the_whole_batch() -> None:
    sqs = FakeSqs([sqs_message(1), sqs_message(2)])

    outcome = poller(sqs, RecordingHandler(result=None)).poll_once()

    assert (outcome.received, outcome.deleted, outcome.failed) == (2, 2, 0)
    assert sqs.deleted == ["rh1", "rh2"]
    assert sqs.made_visible == []


def test_partial_failure_deletes_only_the_others_and_retries_the_failed_soon() -> None:
    sqs = FakeSqs([sqs_message(1), sqs_message(2), sqs_message(3)])
    handler = RecordingHandler(result={"batchItemFailures": [{"itemIdentifier": "m2"}]})

    outcome = poller(sqs, handler, retry_visibility_s=2).poll_once()

    assert (outcome.deleted, outcome.failed) == (2, 1)
    assert sqs.deleted == ["rh1", "rh3"]
    assert sqs.made_visible == [("rh2", 2)]


def test_exception_deletes_nothing() -> None:
    sqs = FakeSqs([sqs_message(1), sqs_message(2)])

    outcome = poller(sqs, RecordingHandler(error=RuntimeError("boom"))).poll_once()

    assert (outcome.deleted, outcome.failed) == (0, 2)
    assert sqs.deleted == []
    assert sorted(sqs.made_visible) == [("rh1", 2), ("rh2", 2)]


def test_keeping_the_queue_visibility_timeout_changes_nothing() -> None:
    sqs = FakeSqs([sqs_message(1)])

    poller(sqs, RecordingHandler(error=RuntimeError("boom")), retry_visibility_s=None).poll_once()

    assert sqs.made_visible == []


@pytest.mark.parametrize(
    "result",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailures": "m1"},
    ],
)
def test_invalid_failure_report_fails_the_whole_batch_like_lambda(result: Any) -> None:
    assert failed_message_ids(result, ["m1", "m2"]) == {"m1", "m2"}


@pytest.mark.parametrize("result", [None, {}, {"batchItemFailures": []}, "ok", {"statusCode": 200}])
def test_no_failure_report_means_success(result: Any) -> None:
    assert failed_message_ids(result, ["m1"]) == set()


def test_run_survives_handler_and_sqs_errors_and_stops_on_request() -> None:
    stop = threading.Event()

    class FlakySqs(FakeSqs):
        def receive_message(self, **kwargs: Any) -> dict[str, Any]:
            if len(self.receive_calls) == 0:
                self.receive_calls.append(kwargs)
                raise ConnectionError("embedded AWS restarting")
            if len(self.receive_calls) >= 3:
                stop.set()
            return super().receive_message(**kwargs)

    sqs = FlakySqs([sqs_message(1)], [sqs_message(2)])
    handler = RecordingHandler(error=RuntimeError("handler bug"))
    thread = threading.Thread(target=poller(sqs, handler).run, args=(stop,))
    thread.start()
    thread.join(10)

    assert not thread.is_alive()
    assert len(handler.calls) == 2


def test_lambda_context_never_reports_negative_time() -> None:
    context = LambdaContext("f", timeout_ms=0)
    assert context.get_remaining_time_in_millis() == 0


# With the embedded AWS in-process: redrive to the DLQ is SQS's job, and moto does it.


@pytest.fixture
def sqs() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def make_queue(sqs: Any, name: str, max_receive_count: int) -> tuple[str, str]:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive})["QueueUrl"]
    return url, dlq_url


def test_a_message_that_keeps_failing_reaches_the_dlq_after_max_receive_count(sqs: Any) -> None:
    url, dlq_url = make_queue(sqs, "work", max_receive_count=3)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    handler = RecordingHandler(error=RuntimeError("always fails"))
    # Visibility 0: the failed message is visible again at once, so the test needs no sleep.
    p = QueuePoller(
        sqs,
        queue_url=url,
        queue_arn="arn",
        handler=handler,
        function_name="f",
        wait_seconds=0,
        retry_visibility_s=0,
    )

    for _ in range(5):
        p.poll_once()

    receive_counts = [event["Records"][0]["attributes"]["ApproximateReceiveCount"] for event, _ in handler.calls]
    assert receive_counts == ["1", "2", "3"]
    dead = sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_pollers_feed_the_apps_sqs_handlers_and_honour_partial_failures(sqs: Any) -> None:
    url, dlq_url = make_queue(sqs, "jobs", max_receive_count=2)
    app = Chalice(app_name="probe")
    seen: list[str] = []

    @app.on_sqs_message(queue="jobs", batch_size=5)
    def work(event: Any) -> dict[str, Any]:
        failures = []
        for record in event:
            seen.append(record.body)
            if record.body == "bad":
                failures.append({"itemIdentifier": record.to_dict()["messageId"]})
        return {"batchItemFailures": failures}

    for body in ("good", "bad"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    [p] = Pollers(app, sqs, retry_visibility_s=0).build()
    p.wait_seconds = 0

    assert p.function_name == "probe-dev-work"
    assert p.batch_size == 5
    for _ in range(4):
        p.poll_once()

    assert sorted(seen) == ["bad", "bad", "good"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])] == ["bad"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
