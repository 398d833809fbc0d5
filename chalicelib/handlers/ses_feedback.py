"""SQS consumer: SES bounce, complaint and delivery feedback (SES -> SNS topic -> this queue).

A body that is not an SES notification raises: it is reported alone in ``batchItemFailures`` and,
after ``maxReceiveCount`` receives, the redrive policy keeps it in the DLQ for a human to read.
Feedback about a message id we never sent is acknowledged and logged (see FeedbackService).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.bootstrap import feedback
from chalicelib.config import SES_FEEDBACK_QUEUE
from chalicelib.domain.ses_events import NotAnSesNotification, parse_feedback
from chalicelib.handlers.sqs import process_batch
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


class PoisonMessage(ValueError):
    """A body that can never be processed; failing it sends it to the DLQ after maxReceiveCount."""


@bp.on_sqs_message(queue=SES_FEEDBACK_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def ses_feedback_worker(event: Any) -> dict[str, Any]:
    service = feedback()

    def handle(record: SQSRecord) -> None:
        try:
            message = parse_feedback(record.body)
        except NotAnSesNotification as exc:
            logger.error("Unparseable SES feedback", extra={"message_id": record.message_id, "reason": str(exc)})
            raise PoisonMessage(str(exc)) from exc
        outcome = service.handle_ses(message)
        logger.info("SES feedback processed", extra={"message_id": record.message_id, "outcome": outcome})

    return process_batch(event, event.context, handle)
