"""Shared plumbing for SQS consumers: Powertools BatchProcessor with partial batch responses.

Each handler parses the record body into its pydantic model and calls one service function. A
record that raises is reported in ``batchItemFailures`` alone; the rest of the batch is deleted.
A body that can never parse fails too, so it reaches the dead-letter queue after maxReceiveCount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except (TypeError, ValueError):
        return 1


def process_batch(event: Any, context: Any, handle: Callable[[SQSRecord], None]) -> dict[str, Any]:
    """Run ``handle`` on every record; return the partial batch response Lambda expects."""
    # Imported here: every function imports app.py, and the HTTP one never needs the batch utility (~25 ms).
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    raw = event.to_dict() if hasattr(event, "to_dict") else event
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=raw, record_handler=handle, processor=processor, context=context)
    return dict(response)


class PoisonMessage(Exception):
    """A record that can never succeed: reported as a batch item failure, so SQS moves it to the
    dead-letter queue after maxReceiveCount (where an operator can see it) instead of dropping it."""


def poison(record: SQSRecord, reason: str) -> NoReturn:
    """Fail a record whose body can never be processed, leaving a trace without its content."""
    logger.error("Unprocessable message", extra={"message_id": record.message_id, "reason": reason})
    raise PoisonMessage(reason)
