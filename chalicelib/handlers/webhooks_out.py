"""SQS consumer: outbound webhook attempts (see chalicelib.services.webhooks_out for the schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib.bootstrap import webhooks
from chalicelib.config import WEBHOOK_QUEUE
from chalicelib.domain.notifications import WebhookMessage
from chalicelib.handlers.ses_feedback import PoisonMessage
from chalicelib.handlers.sqs import process_batch
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


# Two per batch: each POST may take up to 13 s (connect 3 + read 10) within the 30 s function timeout.
@bp.on_sqs_message(queue=WEBHOOK_QUEUE, batch_size=2, maximum_batching_window_in_seconds=1)
def webhook_worker(event: Any) -> dict[str, Any]:
    service = webhooks()
    if service.once is not None:
        service.once.register_context(event.context)

    def handle(record: SQSRecord) -> None:
        try:
            message = WebhookMessage.model_validate_json(record.body)
        except ValidationError as exc:
            logger.error("Unparseable webhook message", extra={"message_id": record.message_id})
            raise PoisonMessage("not a webhook message") from exc
        outcome = service.deliver(message)
        logger.info("Webhook message processed", extra={"event_id": message.event_id, "outcome": outcome})

    return process_batch(event, event.context, handle)
