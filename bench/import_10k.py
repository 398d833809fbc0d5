"""Import 10,000 generated CSV rows on the embedded stack (moto in-process, chalice.test.Client, the
import queue fed to its handler like Lambda) and compare with the floor: the same 10,000 invitation
items written by bare BatchWriteItem calls against the same moto, in the same run.

moto runs with the corrections the running stack applies to it (``devstack.embedded_aws.install``),
each one to behave as DynamoDB does, not to do less than it: without them moto's TransactWriteItems
deep-copies the whole table once per action (and checks each condition twice), and a Query with
``begins_with`` on the sort key sorts and checks every item of the partition, where DynamoDB reads the
key range of a partition kept sorted (the import reads the lender's staff list once per chunk, in the
partition that holds its 20,000 invitations and guards: 0.3 s a read on moto). The floor runs on the
same corrected moto (BatchWriteItem is not touched by them).

The process's garbage collector is set up as the running stack sets it up (``devstack/heap.py``: what
survives a full collection is frozen, so the next one walks only what is new). Here the emulated table
lives in the worker's own heap, millions of objects that each full collection walked again (an import
that allocates as it writes paid 2.9 s of its 21.7 s for ten of them, the floor 0.5 s of 7.2 s); in AWS
the table is not in the worker's memory. Both runs get the same collector, in the same process.

Timed: from the upload request until the job reads ``completed`` (parsing, validation, guards,
history, outbox, link tokens, SQS messages for the sends: ten sends a message). The send worker is not run.
DynamoDB write requests are counted with botocore ``before-call`` hooks on the app's client.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import time
from typing import Any

from bench import Row
from bench.create_invitation import embedded_aws, signed_up_key

ROWS = int(__import__("os").environ.get("BENCH_IMPORT_ROWS", "10000"))
RATIO_GOAL = 3.0
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def generated_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["email", "owner", "first_name", "last_name", "phone", "business_legal_name", "banking_integration", "channel"]
    )
    for i in range(rows):
        writer.writerow(
            [
                f"customer{i}@smallbiz{i % 97}.example",
                f"Officer {i % 12}",
                f"First{i}",
                f"Last{i}",
                f"+1514555{i % 10000:04d}",
                f"Business {i} Inc.",
                "",
                "email",
            ]
        )
    return out.getvalue().encode()


class WriteCounter:
    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.enabled = False

    def __call__(self, model: Any = None, **_: Any) -> None:
        if self.enabled and model is not None and model.name in WRITES:
            self.calls[model.name] += 1


class SendQueueSink:
    """Empties the send queue after every SendMessageBatch, as a send worker keeping up would.

    moto 5.2.5's SendMessage builds all the queue's attributes for every message, counting every
    message in the queue, so each send costs O(queue depth) there (O(n^2) for an import): an
    artefact of the emulator, not of SQS. The sends the messages carry are counted before they are dropped.
    """

    def __init__(self, queue_url: str) -> None:
        self.queue_name = queue_url.rsplit("/", 1)[-1]
        self.sent = 0

    def __call__(self, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if model is None or model.name != "SendMessageBatch":
            return
        self.sent += self.empty()

    def empty(self) -> int:
        """Drop the queue's messages; returns how many sends they carried (a batch message carries several)."""
        from moto.backends import get_backend

        queue = get_backend("sqs")["123456789012"]["us-east-1"].get_queue(self.queue_name)
        sends = sum(len(json.loads(m.body).get("sends", [None])) for m in queue._messages)
        queue._messages = []
        return sends


def import_once(client: Any, key: str, body: bytes, query: str) -> tuple[float, dict[str, Any]]:
    from app import app
    from chalicelib.adapters import aws
    from chalicelib.bootstrap import services
    from chalicelib.config import IMPORT_QUEUE
    from devstack.poller import QueuePoller, sqs_sources

    settings = services().settings
    cfg, handler = next((c, h) for c, h in sqs_sources(app) if c.queue == IMPORT_QUEUE)
    poller = QueuePoller(
        aws.client("sqs"),
        queue_url=settings.import_queue_url,
        queue_arn=f"arn:aws:sqs:us-east-1:123456789012:{IMPORT_QUEUE}",
        handler=handler,
        function_name=cfg.name,
        batch_size=cfg.batch_size,
        wait_seconds=0,
        retry_visibility_s=0,
    )
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    response = client.http.post(f"/v1/imports{query}", headers=headers, body=body)
    assert response.status_code == 202, response.body
    job_id = json.loads(response.body)["import_id"]
    while poller.poll_once().received:
        pass
    elapsed = time.perf_counter() - started
    status = client.http.get(f"/v1/imports/{job_id}?limit=1", headers={"Authorization": f"Bearer {key}"})
    job = json.loads(status.body)
    assert job["state"] == "completed", job
    return elapsed, job


def floor_items(tenant_pk: str) -> list[dict[str, Any]]:
    """The imported invitation items, moved to another partition (read outside the timing)."""
    from chalicelib.adapters.dynamo.table import serialize
    from chalicelib.bootstrap import services

    table = services().table
    items, cursor = [], None
    while True:
        page, cursor = table.query(tenant_pk, sk_prefix="INV#", cursor=cursor)
        items.extend(page)
        if not cursor:
            break
    moved = []
    for item in items:
        copy = {k: (v.replace(tenant_pk, "TENANT#floor", 1) if isinstance(v, str) else v) for k, v in item.items()}
        moved.append(serialize(copy))
    return moved


def bare_batch_writes(items: list[dict[str, Any]]) -> float:
    from chalicelib.adapters import aws
    from chalicelib.bootstrap import services

    dynamodb = aws.client("dynamodb")
    name = services().settings.table_name
    started = time.perf_counter()
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {name: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return time.perf_counter() - started


def run() -> list[Row]:
    from devstack.embedded_aws import install
    from devstack.heap import freeze_after_full_collections, stop_freezing

    install()
    freeze_after_full_collections()  # the collector as the running stack sets it up (see the module docstring)
    try:
        return measure()
    finally:
        stop_freezing()


def measure() -> list[Row]:
    from chalice.test import Client

    body = generated_csv(ROWS)
    rows: list[Row] = []
    with embedded_aws():
        from app import app
        from chalicelib.adapters import aws
        from chalicelib.adapters.dynamo import keys
        from chalicelib.bootstrap import services

        with Client(app, stage_name="dev") as client:
            counter = WriteCounter()
            aws.client("dynamodb").meta.events.register("before-call.dynamodb.*", counter)
            sink = SendQueueSink(services().settings.send_queue_url)
            aws.client("sqs").meta.events.register("after-call.sqs.SendMessageBatch", sink)
            results = []
            for label, query, subdomain in (
                ("send (default)", "", "bench-import-send"),
                ("send=false", "?send=false", "bench-import-nosend"),
            ):
                key = signed_up_key(client, subdomain)
                tenant = services().tenants.authenticate(f"Bearer {key}")
                sink.empty()  # the sign-up's own email (the admin's verification link) is not the import's
                counter.calls.clear()
                sink.sent = 0
                counter.enabled = True
                elapsed, job = import_once(client, key, body, query)
                counter.enabled = False
                assert job["counts"]["created"] == ROWS, job["counts"]
                assert sink.sent == (ROWS if not query else 0), sink.sent
                writes = dict(counter.calls)
                items = floor_items(keys.tenant_pk(tenant.tenant_id))
                floor = bare_batch_writes(items)
                results.append((label, elapsed, floor, writes, len(items)))
    for label, elapsed, floor, writes, floor_rows in results:
        per_row = sum(writes.values()) / ROWS
        detail = ", ".join(f"{name} {count / ROWS:.3g}" for name, count in sorted(writes.items()))
        rows.append(
            Row(
                f"import {ROWS:,} CSV rows, {label}",
                f"{ROWS / elapsed:,.0f} rows/s ({elapsed:.1f} s)",
                f"{floor_rows / floor:,.0f} rows/s ({floor:.1f} s)",
                elapsed / floor,
                f"<= {RATIO_GOAL:g}",
                f"floor = the same {floor_rows:,} invitation items by bare BatchWriteItem on the same moto; "
                f"DynamoDB write requests per row {per_row:.3f} ({detail}); "
                "send queue emptied after each SendMessageBatch (moto's SendMessage is O(queue depth))",
            )
        )
    return rows
