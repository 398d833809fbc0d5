"""Fixed-window rate limits kept in DynamoDB, so they hold across every Lambda instance.

One item per (scope, subject, window): an atomic ``ADD count :1`` returns the new count, and the
table's TTL attribute ``expires_at`` removes the item after its window. Subjects (IP addresses,
emails) are stored hashed.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.adapters.dynamo import keys

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.adapters.dynamo.table import Table
    from chalicelib.domain.account import Limit


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int
    window: int = 0


def _subject(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


class RateLimiter:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock

    def _window(self, limit: Limit) -> tuple[int, int]:
        now = int(self.clock())
        window = now // limit.window
        return window, (window + 1) * limit.window - now

    def hit(self, limit: Limit, subject: str) -> Decision:
        """Count one event; not allowed once the window holds more than ``limit.max`` events.

        Raises UpstreamError when DynamoDB is unavailable (the caller refuses rather than opens up).
        """
        window, remaining = self._window(limit)
        item = self.table.update(
            keys.rate_limit(limit.scope, _subject(subject), window),
            {"expires_at": (window + 1) * limit.window + 60},
            add={"count": 1},
        )
        count = int(item["count"])
        return Decision(count <= limit.max, count, max(remaining, 1), window)

    def give_back(self, limit: Limit, subject: str, taken: Decision) -> None:
        """Return the event ``taken`` counted (the attempt turned out not to be a failure).

        Take first, give back after: parallel requests each count before any is checked, where a
        peek and a later count would let a burst of them through together.
        """
        self.table.update(
            keys.rate_limit(limit.scope, _subject(subject), taken.window),
            {"expires_at": (taken.window + 1) * limit.window + 60},
            add={"count": -1},
        )

    def clear(self, limit: Limit, subject: str) -> None:
        """Forget the current window's count (a right password ends a run of wrong ones)."""
        window, _ = self._window(limit)
        self.table.delete(keys.rate_limit(limit.scope, _subject(subject), window))

    def peek(self, limit: Limit, subject: str) -> Decision:
        """Whether one more event would still be allowed, without counting one."""
        window, remaining = self._window(limit)
        item = self.table.get(keys.rate_limit(limit.scope, _subject(subject), window), consistent=True)
        count = int(item["count"]) if item else 0
        return Decision(count < limit.max, count, max(remaining, 1))
