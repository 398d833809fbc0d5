"""SQS consumer: the import queue (one message per stored chunk of an uploaded CSV)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib.bootstrap import imports
from chalicelib.config import IMPORT_QUEUE
from chalicelib.handlers.sqs import poison, process_batch, receive_count
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


# One chunk (up to 500 rows) per invocation keeps each well inside the function timeout.
@bp.on_sqs_message(queue=IMPORT_QUEUE, batch_size=1)
def import_worker(event: Any) -> dict[str, Any]:
    from chalicelib.services.imports import ChunkMessage

    service = imports()

    def handle(record: SQSRecord) -> None:
        try:
            message = ChunkMessage.model_validate_json(record.body)
        except ValidationError:
            poison(record, "not an import chunk message")
        outcome = service.process_chunk(message, receive_count(record))
        logger.info(
            "Import chunk processed", extra={"import_id": message.job_id, "chunk": message.chunk, "outcome": outcome}
        )

    return process_batch(event, event.context, handle)
