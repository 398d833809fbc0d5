"""SQS consumer: portal events (``portal_completed`` when the customer submits the portal)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib.bootstrap import feedback
from chalicelib.config import PORTAL_EVENTS_QUEUE
from chalicelib.domain.notifications import PortalEvent
from chalicelib.handlers.ses_feedback import PoisonMessage
from chalicelib.handlers.sqs import process_batch
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


@bp.on_sqs_message(queue=PORTAL_EVENTS_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def portal_events_worker(event: Any) -> dict[str, Any]:
    service = feedback()

    def handle(record: SQSRecord) -> None:
        try:
            message = PortalEvent.model_validate_json(record.body)
        except ValidationError as exc:
            logger.error("Unparseable portal event", extra={"message_id": record.message_id})
            raise PoisonMessage("not a portal event") from exc
        outcome = service.handle_portal(message)
        logger.info("Portal event processed", extra={"event_id": message.event_id, "outcome": outcome})

    return process_batch(event, event.context, handle)
