"""What ``make run`` keeps between runs: a snapshot of the embedded AWS's data in ``.devstack/``.

The snapshot holds the data, not the resources: DynamoDB items, SQS messages (an import's chunks
waiting in its queue included), the emails and text messages the outbox shows, SNS opt-outs and S3
objects. At start the resources are created from infra/ as always, then the data is put back into
them, so a resource added to infra/ since the last run simply starts empty.

It is taken under the embedded AWS's request lock, so DynamoDB, SQS and the rest are captured at
one instant (a consistent cut): a forked copy of the process pickles and writes it while the stack goes
on (see StateKeeper.save), every SNAPSHOT_EVERY_S seconds
when something was written, and at a clean stop. A crash loses at most the last interval; the app's SQS consumers and imports are
idempotent, so whatever was in flight is redone. Not kept: Step Functions executions (a bank-link
waterfall waiting for its provider at the time of the stop ends with the process).
"""

from __future__ import annotations

import copyreg
import gc
import io
import logging
import os
import pickle
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devstack.embedded_aws import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

log = logging.getLogger("devstack.state")

ACCOUNT_ID = "123456789012"
SNAPSHOT_FILE = "aws-state.pickle"
SNAPSHOT_EVERY_S = 30.0
FORMAT = 1


def _backend(service: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)[ACCOUNT_ID][region]  # type: ignore[call-overload]


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector walks the whole heap (millions of moto objects) every few thousand allocations:
    with it paused, copying or rebuilding 40,000 items takes 0.3 s instead of 3 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def capture(region: str) -> dict[str, Any]:
    """The data of the embedded AWS, copied as far as later writes would change it (call it holding
    the request lock): each item's attribute dict, each list and dict of messages. Attribute values
    are shared with moto; moto replaces them on update, except inside nested maps and sets."""
    dynamodb = _backend("dynamodb", region)
    sqs = _backend("sqs", region)
    ses = _backend("ses", region)
    sns = _backend("sns", region)
    s3 = _backend("s3", "global")
    return {
        "format": FORMAT,
        "dynamodb": {
            name: [(item.hash_key, item.range_key, dict(item.attrs)) for item in _items(table)]
            for name, table in dynamodb.tables.items()
        },
        "sqs": {name: list(queue._messages) for name, queue in sqs.queues.items()},
        "ses": {"sent_messages": list(ses.sent_messages), "sent_message_count": ses.sent_message_count},
        "sns": {
            "sms_messages": dict(sns.sms_messages),
            "sms_message_objects": dict(getattr(sns, "sms_message_objects", {})),
            "opt_out_numbers": list(sns.opt_out_numbers),
        },
        "s3": {
            name: [(key.name, key.value, dict(key.metadata)) for key in bucket.keys.values()]
            for name, bucket in s3.buckets.items()
        },
    }


def _items(table: Any) -> Iterator[Any]:
    for partition in table.items.values():
        if isinstance(partition, dict):
            yield from partition.values()
        else:
            yield partition


def _dynamo_type(type_: str, value: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    restored = DynamoType.__new__(DynamoType)
    restored.type, restored.value = type_, value
    return restored


def _table_items(rows: list[tuple[Any, Any, dict[str, Any]]], has_range_key: bool) -> dict[Any, Any]:
    """moto's ``Table.items`` from captured rows, without re-validating each item's size on every
    attribute (moto's LimitedSizeDict does, which makes a rebuild quadratic)."""
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict

    items: dict[Any, Any] = defaultdict(dict)
    for hash_key, range_key, attrs in rows:
        item: Any = Item.__new__(Item)
        item.hash_key, item.range_key = hash_key, range_key
        item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.update(item.attrs, attrs)
        if has_range_key:
            items[hash_key][range_key] = item
        else:
            items[hash_key] = item
    return items


def dumps(data: dict[str, Any]) -> bytes:
    from moto.dynamodb.models.dynamo_type import DynamoType

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, DynamoType: lambda v: (_dynamo_type, (v.type, v.value))}
    pickler.dump(data)
    return buffer.getvalue()


def apply(data: dict[str, Any], region: str) -> dict[str, int]:
    """Put captured data back into the resources that exist now; returns counts of what came back."""
    counts = {"items": 0, "messages": 0, "emails": 0, "objects": 0}
    dynamodb = _backend("dynamodb", region)
    for name, rows in data["dynamodb"].items():
        table = dynamodb.tables.get(name)
        if table is not None:
            table.items = _table_items(rows, table.range_key_attr is not None)
            counts["items"] += len(rows)
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
            with gc_paused():
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
        """Write a snapshot if anything was written since the last one. Returns whether it wrote.

        Where the system can fork (Linux, macOS), a forked copy of the process captures, pickles and
        writes the data, as Redis's BGSAVE does: the request lock is held only for the fork (the copy
        sees the data as it was at that instant), and the pickling runs on another core instead of
        holding this process's GIL (in-process, 40,000 items kept API answers waiting up to 4.4 s).
        Elsewhere the data is copied under the lock and pickled in this process."""
        from devstack.embedded_aws import writes

        with BACKENDS:
            seen = writes()
            if not force and seen == self._saved_at_writes:
                return False
        saved = self._save_forked(seen) if hasattr(os, "fork") else self._save_here(seen)
        if saved:
            self._saved_at_writes = seen
        return saved

    def _write(self, payload: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(payload)
        os.replace(partial, self.path)  # atomic: a crash mid-write leaves the previous snapshot

    def _save_forked(self, seen: int) -> bool:
        # Everything the copy runs is imported here: another thread may hold the import lock at the fork.
        from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: F401

        self.directory.mkdir(parents=True, exist_ok=True)
        with BACKENDS, gc_paused():
            started = time.monotonic()
            pid = os.fork()
            if pid == 0:  # the copy: only this thread exists; no logging (its lock may be held), no cleanup
                code = 1
                try:
                    gc.disable()
                    self._write(dumps(capture(self.region)))
                    code = 0
                finally:
                    os._exit(code)
            held = time.monotonic() - started
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("The snapshot copy failed (exit status %s); the previous snapshot is kept", status)
            return False
        # ru_maxrss is in KiB on Linux: the copy shares the stack's pages until either side writes them.
        log.debug(
            "Snapshot written by a copy (request lock held %.3f s; copy's peak RSS %d MiB)", held, usage.ru_maxrss >> 10
        )
        return True

    def _save_here(self, seen: int) -> bool:
        for attempt in range(3):
            with BACKENDS, gc_paused():
                started = time.monotonic()
                data = capture(self.region)
                held = time.monotonic() - started
            try:
                payload = dumps(data)
                break
            except RuntimeError:  # a nested map changed while it was pickled: copy again
                if attempt == 2:
                    raise
        self._write(payload)
        log.debug("Snapshot of %d bytes (request lock held %.2f s)", len(payload), held)
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
