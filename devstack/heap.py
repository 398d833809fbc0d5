"""The stack process's garbage collector, fit for a heap of millions of long-lived moto objects.

CPython's full collection walks every object the collector tracks, and it comes each time the heap
has grown by a quarter: on the running stack (bench/stack_load.py, a 10,000-row import) the pauses
grew with the table to 0.74 s at 1.1 million objects on a loaded machine, every thread stopped
meanwhile, and the API's slowest answers waited for them. Nearly all of those objects are the embedded
AWS's data, alive until a write replaces them.

After each full collection its survivors are frozen (``gc.freeze``: moved to the permanent generation,
which later collections skip), so the next full collection walks only what was allocated since.
A frozen object that is released by reference counting (an item replaced, a message deleted) is freed
as usual. What freezing gives up: a reference cycle that was alive at a full collection and becomes
garbage later is not collected (the cycles of the work in flight at that instant: measured, 146,000
objects after a 10,000-row import and 200 sends). :class:`IdleCollector` takes those back once the
stack has been quiet for a while: one whole collection (about 1 s there) when nobody waits on a write.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("devstack.heap")
IDLE_CHECK_S = 60.0


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def freeze_after_full_collections() -> None:
    """From now on, freeze what survives each full collection (idempotent)."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def stop_freezing() -> None:
    """Back to the collector's defaults; what was frozen is collectable again."""
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_freeze_survivors)
    gc.unfreeze()


class IdleCollector:
    """Every ``every_s`` seconds: if ``writes()`` (the embedded AWS's count of write requests) has not moved since the
    last look and full collections froze more since the last whole collection, collect everything once (unfrozen);
    the survivors are frozen again by the callback."""

    def __init__(self, writes: Callable[[], int], every_s: float = IDLE_CHECK_S) -> None:
        self.writes = writes
        self.every_s = every_s
        self._seen = writes()
        self._frozen = gc.get_freeze_count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One look; returns whether it collected."""
        seen, self._seen = self._seen, self.writes()
        if self._seen != seen or gc.get_freeze_count() <= self._frozen:
            return False
        gc.unfreeze()
        found = gc.collect()
        self._frozen = gc.get_freeze_count()
        log.debug("Idle: collected %d unreachable objects held by freezing", found)
        return True

    def start(self) -> IdleCollector:
        self._thread = threading.Thread(target=self._run, name="idle-collector", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception:
                log.exception("Idle collection failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
