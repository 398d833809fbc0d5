"""SQS publishing."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import UpstreamError
from chalicelib.observability import logger


class QueuePublisher:
    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> str:
        """Send one JSON message; raises UpstreamError when SQS cannot take it."""
        try:
            response = self.client.send_message(
                QueueUrl=queue_url, MessageBody=json.dumps(body, separators=(",", ":")), DelaySeconds=delay_seconds
            )
        except (ClientError, BotoCoreError) as exc:
            logger.exception("SQS send failed", extra={"queue": queue_url.rsplit("/", 1)[-1]})
            raise UpstreamError("the message queue is unavailable") from exc
        return str(response["MessageId"])

    def send_batch(self, queue_url: str, bodies: list[dict[str, Any]]) -> list[int]:
        """Send up to 10 messages per call; returns the indexes that failed."""
        failed: list[int] = []
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(start + i), "MessageBody": json.dumps(b, separators=(",", ":"))}
                for i, b in enumerate(bodies[start : start + 10])
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except (ClientError, BotoCoreError):
                logger.exception("SQS batch send failed", extra={"queue": queue_url.rsplit("/", 1)[-1]})
                failed.extend(int(e["Id"]) for e in entries)
                continue
            failed.extend(int(f["Id"]) for f in response.get("Failed", []))
        return failed
