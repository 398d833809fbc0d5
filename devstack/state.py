"""What ``make run`` keeps between runs: a snapshot of the embedded AWS's data in ``.devstack/``.

The snapshot holds the data, not the resources: DynamoDB items, SQS messages (an import's chunks
waiting in its queue included), the emails and text messages the outbox shows, SNS opt-outs and S3
objects. At start the resources are created from infra/ as always, then the data is put back into
them, so a resource added to infra/ since the last run simply starts empty.

It is taken under the embedded AWS's request lock, so DynamoDB, SQS and the rest are captured at
one instant (a consistent cut): every SNAPSHOT_EVERY_S seconds when something was written, and at
a clean stop. A crash loses at most the last interval; the app's SQS consumers and imports are
idempotent, so whatever was in flight is redone. Not kept: Step Functions executions (a bank-link
waterfall waiting for its provider at the time of the stop ends with the process).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devstack.embedded_aws import BACKENDS

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("devstack.state")

ACCOUNT_ID = "123456789012"
SNAPSHOT_FILE = "aws-state.pickle"
SNAPSHOT_EVERY_S = 30.0
FORMAT = 1


def _backend(service: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)[ACCOUNT_ID][region]  # type: ignore[call-overload]


def capture(region: str) -> dict[str, Any]:
    """The data of the embedded AWS (call it holding the request lock)."""
    dynamodb = _backend("dynamodb", region)
    sqs = _backend("sqs", region)
    ses = _backend("ses", region)
    sns = _backend("sns", region)
    s3 = _backend("s3", "global")
    return {
        "format": FORMAT,
        "dynamodb": {name: table.items for name, table in dynamodb.tables.items()},
        "sqs": {name: list(queue._messages) for name, queue in sqs.queues.items()},
        "ses": {"sent_messages": ses.sent_messages, "sent_message_count": ses.sent_message_count},
        "sns": {
            "sms_messages": sns.sms_messages,
            "sms_message_objects": getattr(sns, "sms_message_objects", {}),
            "opt_out_numbers": sns.opt_out_numbers,
        },
        "s3": {
            name: [(key.name, key.value, dict(key.metadata)) for key in bucket.keys.values()]
            for name, bucket in s3.buckets.items()
        },
    }


def apply(data: dict[str, Any], region: str) -> dict[str, int]:
    """Put captured data back into the resources that exist now; returns counts of what came back."""
    counts = {"items": 0, "messages": 0, "emails": 0, "objects": 0}
    dynamodb = _backend("dynamodb", region)
    for name, items in data["dynamodb"].items():
        if name in dynamodb.tables:
            dynamodb.tables[name].items = items
            counts["items"] += sum(len(v) if isinstance(v, dict) else 1 for v in items.values())
    sqs = _backend("sqs", region)
    for name, messages in data["sqs"].items():
        queue = sqs.queues.get(name)
        if queue is None:
            continue
        for message in messages:
            message.visible_at = 0.0  # a message in flight when the stack stopped is delivered again
        queue._messages = messages
        counts["messages"] += len(messages)
    ses = _backend("ses", region)
    ses.sent_messages = data["ses"]["sent_messages"]
    ses.sent_message_count = data["ses"]["sent_message_count"]
    counts["emails"] = len(ses.sent_messages)
    sns = _backend("sns", region)
    sns.sms_messages = data["sns"]["sms_messages"]
    sns.sms_message_objects = data["sns"]["sms_message_objects"]
    sns.opt_out_numbers = data["sns"]["opt_out_numbers"]
    s3 = _backend("s3", "global")
    for name, objects in data["s3"].items():
        if name not in s3.buckets:
            continue
        for key, value, metadata in objects:
            s3.put_object(name, key, value).set_metadata(metadata, replace=True)
            counts["objects"] += 1
    return counts


@dataclass
class StateKeeper:
    """Restores the snapshot at start, then keeps it current from a daemon thread."""

    directory: Path
    region: str = "us-east-1"
    every_s: float = SNAPSHOT_EVERY_S
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _saved_at_writes: int = field(default=-1, init=False, repr=False)

    @property
    def path(self) -> Path:
        return self.directory / SNAPSHOT_FILE

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def restore(self) -> dict[str, int] | None:
        """Put the last snapshot's data back (None when there is none or it cannot be read)."""
        if not self.path.exists():
            return None
        try:
            data = pickle.loads(self.path.read_bytes())
            if data.get("format") != FORMAT:
                raise ValueError(f"snapshot format {data.get('format')}, expected {FORMAT}")
            with BACKENDS:
                counts = apply(data, self.region)
        except Exception:
            # Starting empty beats not starting: keep the unreadable file for a look, out of the way.
            log.exception("Could not restore %s; starting with empty state", self.path)
            self.path.replace(self.path.with_suffix(".unreadable"))
            return None
        log.info("Restored %s", ", ".join(f"{n} {what}" for what, n in counts.items()))
        return counts

    def save(self, force: bool = False) -> bool:
        """Write a snapshot if anything was written since the last one. Returns whether it wrote."""
        from devstack.embedded_aws import writes

        buffer = io.BytesIO()
        with BACKENDS:
            seen = writes()
            if not force and seen == self._saved_at_writes:
                return False
            started = time.monotonic()
            pickle.dump(capture(self.region), buffer, protocol=pickle.HIGHEST_PROTOCOL)
            held = time.monotonic() - started
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, self.path)  # atomic: a crash mid-write leaves the previous snapshot
        self._saved_at_writes = seen
        log.debug("Snapshot of %d bytes (lock held %.2f s)", buffer.tell(), held)
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="state-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.save()
            except Exception:
                log.exception("Snapshot failed; the previous one is kept")

    def stop(self) -> None:
        """Stop the thread and take the last snapshot (call it before the embedded AWS stops)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.save()
