"""The send-queue consumer: messages per second for 1,000 messages in batches of 10, fed to the
``send_worker`` handler as Lambda-shaped events, against the same number of bare SES v2 SendEmail
calls on the same moto.

Invitations are created through the API in chunks (outside the timing) and the table is reset
between chunks, because moto's TransactWriteItems deep-copies the whole table once per action.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench import Row
from bench.create_invitation import CallCounter, embedded_aws, reset_table, signed_up_key

MESSAGES = int(__import__("os").environ.get("BENCH_SEND_MESSAGES", "1000"))
BATCH = 10
CHUNK = 10  # messages seeded (and the table reset) per round: one batch


def run() -> list[Row]:
    from chalice.test import Client

    with embedded_aws():
        from app import app
        from chalicelib.adapters import aws
        from chalicelib.bootstrap import services
        from chalicelib.config import SEND_QUEUE
        from devstack.poller import LambdaContext, sqs_sources, to_lambda_event

        [(cfg, handler)] = [(c, h) for c, h in sqs_sources(app) if c.queue == SEND_QUEUE]
        settings = services().settings
        sqs = aws.client("sqs")
        queue_arn = sqs.get_queue_attributes(QueueUrl=settings.send_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        counter = CallCounter()
        counter.attach()

        with Client(app, stage_name="dev") as client:
            key = signed_up_key(client, "bench-send")
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

            def seed(start: int) -> list[dict[str, Any]]:
                """CHUNK invitations with a queued send each; returns their SQS messages."""
                reset_table(settings.table_name, settings.send_queue_url)
                for i in range(start, start + CHUNK):
                    body = json.dumps(
                        {"email": f"customer{i}@smallbiz.example", "owner": "Olivia Officer", "first_name": "Jane"}
                    )
                    response = client.http.post("/v1/invitations", headers=headers, body=body)
                    assert response.status_code == 201, response.body
                messages: list[dict[str, Any]] = []
                while len(messages) < CHUNK:
                    got = sqs.receive_message(
                        QueueUrl=settings.send_queue_url,
                        MaxNumberOfMessages=10,
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                    assert got, "the send queue ran dry"
                    messages.extend(got)
                return messages

            elapsed = in_aws = 0.0
            failures = 0
            processed = 0
            for start in range(0, MESSAGES, CHUNK):
                messages = seed(start)
                events = [
                    to_lambda_event(messages[i : i + BATCH], queue_arn, "us-east-1") for i in range(0, CHUNK, BATCH)
                ]
                counter.enabled, counter.seconds = True, 0.0
                began = time.perf_counter()
                for event in events:
                    result = handler(event, LambdaContext(function_name=cfg.name))
                    failures += len((result or {}).get("batchItemFailures", []))
                elapsed += time.perf_counter() - began
                counter.enabled = False
                in_aws += counter.seconds
                processed += CHUNK
            calls = dict(counter.calls)

            ses = aws.client("sesv2")
            began = time.perf_counter()
            for i in range(MESSAGES):
                ses.send_email(
                    FromEmailAddress=settings.sender_email,
                    Destination={"ToAddresses": [f"floor{i}@smallbiz.example"]},
                    Content={"Simple": {"Subject": {"Data": "Floor"}, "Body": {"Text": {"Data": "Hello"}}}},
                )
            floor_elapsed = time.perf_counter() - began

    rate = processed / elapsed
    floor_rate = MESSAGES / floor_elapsed
    breakdown = ", ".join(f"{name} x{count / processed:g}" for name, count in sorted(calls.items()))
    return [
        Row(
            f"send consumer: {MESSAGES} messages in batches of {BATCH}",
            f"{rate:.0f} msg/s",
            f"{floor_rate:.0f} sends/s",
            floor_rate / rate,
            "(report)",
            f"ratio = time per message / time per bare SES v2 SendEmail on the same moto; "
            f"{failures} batch item failures",
        ),
        Row(
            "send consumer: time outside AWS calls per message",
            f"{(elapsed - in_aws) / processed * 1000:.2f} ms",
            f"{floor_elapsed / MESSAGES * 1000:.2f} ms",
            (elapsed - in_aws) / processed / (floor_elapsed / MESSAGES),
            "(context)",
            f"our code, Powertools batch, rendering; in AWS calls: {in_aws / processed * 1000:.2f} ms "
            "per message (moto's TransactWriteItems deep-copies the table once per action)",
        ),
        Row(
            "send consumer: AWS calls per message",
            f"{sum(calls.values()) / processed:g}",
            "1",
            sum(calls.values()) / processed,
            "<= 4",
            f"{breakdown} (a read, the claim with its quota slot, the send, the closing write; before: 13)",
        ),
    ]


if __name__ == "__main__":
    from bench import table

    print(table(run()))
