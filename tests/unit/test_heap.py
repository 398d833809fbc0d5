"""devstack/heap.py: a full collection's survivors are frozen, so the next one walks only what is new; garbage
made after a freeze is still collected. Counts objects, not seconds."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.heap import freeze_after_full_collections, stop_freezing


@pytest.fixture
def freezing() -> Iterator[None]:
    gc.unfreeze()
    freeze_after_full_collections()
    freeze_after_full_collections()  # idempotent: one callback
    try:
        yield
    finally:
        stop_freezing()


class Node:
    def __init__(self) -> None:
        self.me: Any = self  # a reference cycle: only the collector frees it


def test_the_survivors_of_a_full_collection_are_left_out_of_the_next(freezing: None) -> None:
    kept = [Node() for _ in range(10_000)]
    walked: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            walked.append(len(gc.get_objects(2)))

    gc.collect()
    assert gc.get_freeze_count() >= len(kept)
    gc.callbacks.insert(0, count)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(count)
    assert walked[0] < len(kept)  # the 10,000 kept objects were not walked again
    assert all(node.me is node for node in kept)


def test_garbage_made_after_a_freeze_is_still_collected(freezing: None) -> None:
    gc.collect()
    garbage = [Node() for _ in range(1_000)]
    del garbage
    assert gc.collect() >= 1_000


def test_stop_freezing_makes_frozen_objects_collectable_again(freezing: None) -> None:
    gc.collect()
    stop_freezing()
    assert gc.get_freeze_count() == 0
    assert sum(1 for cb in gc.callbacks if getattr(cb, "__module__", "") == "devstack.heap") == 0


def test_a_quiet_stack_gets_back_the_garbage_that_freezing_held(freezing: None) -> None:
    from devstack.heap import IdleCollector

    writes = [0]
    idle = IdleCollector(lambda: writes[0])
    in_flight = [Node() for _ in range(1_000)]  # alive at a full collection: frozen with the rest
    gc.collect()
    frozen = gc.get_freeze_count()
    del in_flight  # now garbage, but frozen: no collection sees it

    writes[0] += 1
    assert not idle.check()  # the stack is writing: no whole collection
    assert gc.get_freeze_count() > frozen - 1_000  # the cycles are still held
    assert idle.check()  # quiet since the last look
    assert gc.get_freeze_count() <= frozen - 1_000  # the cycles are gone; the survivors are frozen again
    assert gc.get_freeze_count() > 0
    assert not idle.check()  # nothing frozen since: nothing to do
