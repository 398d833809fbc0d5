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
garbage later is never collected (the cycles of the requests in flight at that instant, a few KB
each time, and full collections come once per quarter of growth).
"""

from __future__ import annotations

import contextlib
import gc
from typing import Any


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
