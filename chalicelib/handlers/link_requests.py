"""SQS consumer of the bank-link waterfall: link requests, "all providers failed", "the run broke", the data step."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib import bootstrap
from chalicelib.config import LINK_REQUEST_QUEUE
from chalicelib.handlers.sqs import poison, process_batch
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

bp = Blueprint(__name__)


@bp.on_sqs_message(queue=LINK_REQUEST_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def link_request_worker(event: Any) -> dict[str, Any]:
    from chalicelib.services.bank_links import LinkRequest, WaterfallExhausted, WaterfallFailed
    from chalicelib.services.financial import FinancialDataFailed, FinancialDataRequest

    service = bootstrap.bank_links()
    if service.once is not None:
        service.once.register_context(event.context)
    financial = service.financial or bootstrap.financial_data()

    def handle(record: SQSRecord) -> None:
        try:
            body = json.loads(record.body)
            kind = body.get("type") if isinstance(body, dict) else None
            if kind == "link_request":
                outcome = service.handle_link_request(LinkRequest.model_validate(body))
            elif kind == "waterfall_exhausted":
                outcome = service.handle_exhausted(WaterfallExhausted.model_validate(body))
            elif kind == "waterfall_failed":
                outcome = service.handle_failed(WaterfallFailed.model_validate(body))
            elif kind == "financial_data":
                outcome = financial.handle_request(FinancialDataRequest.model_validate(body))
            elif kind == "financial_data_failed":
                outcome = financial.handle_failed(FinancialDataFailed.model_validate(body))
            else:
                poison(record, "not a waterfall message")
        except (ValueError, ValidationError):
            poison(record, "not a waterfall message")
        logger.info("Waterfall message processed", extra={"kind": kind, "outcome": outcome})

    return process_batch(event, event.context, handle)
