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
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


@bp.on_sqs_message(queue=SEND_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def send_worker(event: Any) -> dict[str, Any]:

    from chalicelib.domain.staff import StaffEmail
    from chalicelib.services.delivery import SendMessage
    from chalicelib.services.sending import VerificationEmail

    service = delivery()
    service.once.register_context(event.context)

    def handle(record: SQSRecord) -> None:
        if '"type":"staff_email"' in record.body:
            try:
                staff_message = StaffEmail.model_validate_json(record.body)
            except ValidationError:
                poison(record, "not a staff email message")
            mail = staff_mail()
            mail.once.register_context(event.context)
            logger.info("Staff email", extra={"outcome": mail.process(staff_message)})
            return
        if '"type":"lender_verification"' in record.body:
            try:
                verification = VerificationEmail.model_validate_json(record.body)
            except ValidationError:
                poison(record, "not a verification email message")
            verifier = verification_mail()
            verifier.once.register_context(event.context)
            logger.info("Verification email", extra={"outcome": verifier.process(verification)})
            return
        try:
            message = SendMessage.model_validate_json(record.body)
        except ValidationError:
            poison(record, "not a send message")
        outcome = service.process(message, receive_count(record))
        logger.info("Send processed", extra={"send_id": message.send_id, "outcome": outcome})

    return process_batch(event, event.context, handle)
