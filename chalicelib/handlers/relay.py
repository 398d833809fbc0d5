"""Scheduled: re-enqueue sends whose SQS message never left (the API wrote the outbox, SQS was down)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Rate

from chalicelib.bootstrap import services
from chalicelib.observability import logger

bp = Blueprint(__name__)


@bp.schedule(Rate(2, unit=Rate.MINUTES))
def outbox_relay(event: Any) -> dict[str, int]:
    relayed = services().invitations.relay_outbox(older_than_seconds=120)
    if relayed:
        logger.warning("Relayed sends left in the outbox", extra={"count": relayed})
    return {"relayed": relayed}
