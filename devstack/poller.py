"""Local stand-in for Lambda's SQS event source mapping.

``chalice local`` serves HTTP routes only, so without this the app's ``on_sqs_message`` handlers
would never run locally. One thread per handler long-polls its queue and calls the handler with
the event and context shapes Lambda uses, then applies Lambda's ``ReportBatchItemFailures``
rules (infra/ turns them on for every mapping) to decide which messages to delete.

Redelivery and the dead-letter queue are left to SQS itself: the queues carry their production
RedrivePolicy and the embedded AWS (moto 5.2.5) moves a message to the DLQ once it has been
received more than ``maxReceiveCount`` times, exactly as SQS does. The poller only shortens the
wait before a retry, so a failing message reaches the DLQ in seconds rather than minutes.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalice.app import SQSEventConfig

log = logging.getLogger("devstack.poller")

ACCOUNT_ID = "123456789012"
MAX_MESSAGES = 10  # ReceiveMessage's own limit; Lambda gathers bigger batches over a batching window.

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_ms: int = 60_000
    region: str = "us-east-1"
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SQS API ``MessageAttributes`` (``StringValue``, bytes) -> Lambda's record shape (``stringValue``, base64)."""
    converted: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [_b64(v) for v in value.get("BinaryListValues", [])],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = _b64(value["BinaryValue"])
        converted[name] = item
    return converted


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()


def to_lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def to_lambda_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands an SQS-triggered function."""
    return {"Records": [to_lambda_record(m, queue_arn, region) for m in messages]}


def failed_message_ids(result: Any, batch_ids: Sequence[str]) -> set[str]:
    """Which messages to keep, following Lambda's ``ReportBatchItemFailures`` rules.

    No response, or an empty ``batchItemFailures``, means every message succeeded. An item whose
    ``itemIdentifier`` is missing, empty or not in the batch makes Lambda treat the whole batch as
    failed, so a handler bug here shows up locally as it would in AWS.
    """
    if not isinstance(result, Mapping):
        return set()
    failures = result.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not identifier or identifier not in batch_ids:
            log.warning("batchItemFailures names an unknown message; the whole batch is retried")
            return set(batch_ids)
        ids.add(identifier)
    return ids


@dataclass(frozen=True)
class BatchOutcome:
    received: int
    deleted: int
    failed: int


class QueuePoller:
    """Feeds one queue to one handler, one batch at a time (one Lambda instance, concurrency 1)."""

    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        function_name: str,
        batch_size: int = 10,
        region: str = "us-east-1",
        memory_mb: int = 128,
        timeout_s: int = 60,
        wait_seconds: int = 1,
        retry_visibility_s: int | None = 2,
    ) -> None:
        """``retry_visibility_s`` makes failed messages visible again after that many seconds instead
        of the queue's visibility timeout (None keeps the queue's), so local retries are quick."""
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler
        self.function_name = function_name
        self.batch_size = max(1, min(batch_size, MAX_MESSAGES))
        self.region = region
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.wait_seconds = wait_seconds
        self.retry_visibility_s = retry_visibility_s

    def poll_once(self) -> BatchOutcome:
        """Receive one batch, invoke the handler, delete what succeeded. SQS errors propagate."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if not messages:
            return BatchOutcome(0, 0, 0)
        batch_ids = [m["MessageId"] for m in messages]
        context = LambdaContext(self.function_name, self.memory_mb, self.timeout_s * 1000, self.region)
        try:
            result = self.handler(to_lambda_event(messages, self.queue_arn, self.region), context)
        except Exception:
            # Lambda retries the whole batch when the function raises; so do we.
            log.exception("Handler %s raised; %d message(s) will be retried", self.function_name, len(messages))
            failed = set(batch_ids)
        else:
            failed = failed_message_ids(result, batch_ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        self._delete(done)
        self._retry_soon(retry)
        return BatchOutcome(len(messages), len(done), len(retry))

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set. Nothing a handler or SQS does ends the loop."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if stop.is_set():
                    break
                log.exception("Polling %s failed; retrying in 1 s", self.queue_url)
                stop.wait(1)

    def _delete(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for chunk in _chunks(messages):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                log.warning("Could not delete a message from %s: %s", self.queue_url, failure.get("Code"))

    def _retry_soon(self, messages: Sequence[Mapping[str, Any]]) -> None:
        if self.retry_visibility_s is None:
            return
        for chunk in _chunks(messages):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_visibility_s}
                for i, m in enumerate(chunk)
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)


def _chunks(items: Sequence[Mapping[str, Any]], size: int = MAX_MESSAGES) -> Iterator[Sequence[Mapping[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sqs_sources(app: Any) -> list[tuple[SQSEventConfig, Handler]]:
    """Every ``on_sqs_message`` handler the app registered, with the callable Lambda would invoke."""
    return [(cfg, app.handler_map[cfg.name]) for cfg in app.event_sources if isinstance(cfg, SQSEventConfig)]


def queue_name(cfg: SQSEventConfig) -> str:
    if cfg.queue:
        return cfg.queue
    if cfg.queue_arn:
        return cfg.queue_arn.rsplit(":", 1)[-1]
    raise ValueError(f"{cfg.name} names no queue")


@dataclass(frozen=True)
class FunctionSettings:
    """What Lambda would give the handler's function: memory and timeout, from .chalice/config.json."""

    memory_mb: int = 128
    timeout_s: int = 60


class Pollers:
    """Starts one :class:`QueuePoller` thread per SQS handler of the app and stops them together."""

    def __init__(
        self,
        app: Any,
        sqs: Any,
        *,
        region: str = "us-east-1",
        stage: str = "dev",
        function_settings: Callable[[str], FunctionSettings] | None = None,
        retry_visibility_s: int | None = 2,
    ) -> None:
        self.app = app
        self.sqs = sqs
        self.region = region
        self.stage = stage
        self.function_settings = function_settings or (lambda _name: FunctionSettings())
        self.retry_visibility_s = retry_visibility_s
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def build(self) -> list[QueuePoller]:
        pollers: list[QueuePoller] = []
        for cfg, handler in sqs_sources(self.app):
            name = queue_name(cfg)
            try:
                url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            except Exception:
                log.exception("Queue %s for handler %s does not exist locally; not polling it", name, cfg.name)
                continue
            settings = self.function_settings(cfg.name)
            pollers.append(
                QueuePoller(
                    self.sqs,
                    queue_url=url,
                    queue_arn=arn,
                    handler=handler,
                    function_name=f"{self.app.app_name}-{self.stage}-{cfg.name}",
                    batch_size=cfg.batch_size,
                    region=self.region,
                    memory_mb=settings.memory_mb,
                    timeout_s=settings.timeout_s,
                    retry_visibility_s=self.retry_visibility_s,
                )
            )
        return pollers

    def start(self) -> list[QueuePoller]:
        pollers = self.build()
        for poller in pollers:
            thread = threading.Thread(
                target=poller.run, args=(self.stop_event,), name=f"poll-{poller.function_name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        return pollers

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every thread to stop and wait for the batch in flight (bounded: long polls last 1 s)."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.threads.clear()
