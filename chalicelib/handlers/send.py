"""SQS consumer: the send queue (invitation emails and SMS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib.bootstrap import delivery, staff_mail, verification_mail
from chalicelib.config import SEND_QUEUE
from chalicelib.handlers.sqs import poison, process_batch, receive_count
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


@bp.on_sqs_message(queue=SEND_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def send_worker(event: Any) -> dict[str, Any]:

    from chalicelib.domain.staff import StaffEmail
    from chalicelib.services.delivery import SendBatch, SendMessage
    from chalicelib.services.sending import VerificationEmail

    service = delivery()
    service.register_context(event.context)

    # Other messages on the send queue: (type marker, model, the service that sends it).
    others: list[tuple[str, type[Any], Callable[[], Any]]] = [
        ('"type":"staff_email"', StaffEmail, staff_mail),
        ('"type":"lender_verification"', VerificationEmail, verification_mail),
    ]

    def handle(record: SQSRecord) -> None:
        for marker, model, build in others:
            if marker in record.body:
                try:
                    parsed = model.model_validate_json(record.body)
                except ValidationError:
                    poison(record, f"not a {model.__name__} message")
                mail = build()
                mail.once.register_context(event.context)
                logger.info("Email processed", extra={"kind": model.__name__, "outcome": mail.process(parsed)})
                return
        if '"type":"send_batch"' in record.body:
            try:
                batch = SendBatch.model_validate_json(record.body)
            except ValidationError:
                poison(record, "not a send batch message")
            outcomes = service.process_batch(batch)
            logger.info("Sends processed", extra={"sends": len(batch.sends), "outcomes": outcomes})
            return
        try:
            message = SendMessage.model_validate_json(record.body)
        except ValidationError:
            poison(record, "not a send message")
        outcome = service.process(message, receive_count(record))
        logger.info("Send processed", extra={"send_id": message.send_id, "outcome": outcome})

    return process_batch(event, event.context, handle)
