"""SQS consumer: the import queue, the bulk-CSV worker: one message per stored chunk of an uploaded CSV
(``import_chunk``), or one invitation export to write to S3 (``export``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib.bootstrap import exports, imports
from chalicelib.config import IMPORT_QUEUE
from chalicelib.handlers.sqs import poison, process_batch, receive_count
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


def _chunk(record: SQSRecord) -> None:
    from chalicelib.services.imports import ChunkMessage

    try:
        message = ChunkMessage.model_validate_json(record.body)
    except ValidationError:
        poison(record, "not an import chunk message")
    outcome = imports().process_chunk(message, receive_count(record))
    logger.info(
        "Import chunk processed", extra={"import_id": message.job_id, "chunk": message.chunk, "outcome": outcome}
    )


def _export(record: SQSRecord) -> None:
    from chalicelib.services.exports import ExportMessage

    try:
        message = ExportMessage.model_validate_json(record.body)
    except ValidationError:
        poison(record, "not an export message")
    outcome = exports().run(message, receive_count(record))
    logger.info("Export processed", extra={"export_id": message.export_id, "outcome": outcome})


HANDLERS = {"import_chunk": _chunk, "export": _export}


# One chunk (up to 500 rows) or one export per invocation keeps each well inside the function timeout.
@bp.on_sqs_message(queue=IMPORT_QUEUE, batch_size=1)
def import_worker(event: Any) -> dict[str, Any]:
    def handle(record: SQSRecord) -> None:
        try:
            kind = json.loads(record.body).get("type")
        except (ValueError, AttributeError):
            kind = None
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            poison(record, "not a message of the import queue")
        handler(record)

    return process_batch(event, event.context, handle)
