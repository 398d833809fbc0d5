"""Run the app's scheduled functions (``@app.schedule(Rate(...))``) on the local stack, the way an
EventBridge rule invokes them in AWS: a thread per function, a scheduled-event payload per tick."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from chalice.app import Rate, ScheduledEventConfig

from devstack.poller import LambdaContext

log = logging.getLogger("devstack.scheduler")

_SECONDS = {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}


def interval_seconds(expression: Any) -> float | None:
    """Seconds between runs of a ``Rate``; None for cron expressions (not run locally)."""
    if isinstance(expression, Rate):
        return float(expression.value * _SECONDS[expression.unit.upper()])
    return None


def scheduled_event(rule_name: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule_name}"],
        "detail": {},
    }


class Scheduler:
    def __init__(self, app: Any, region: str = "us-east-1", speed: float = 1.0) -> None:
        """``speed`` > 1 runs schedules faster than their rate (tests)."""
        self.app = app
        self.region = region
        self.speed = speed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> list[str]:
        started = []
        for cfg in self.app.event_sources:
            if not isinstance(cfg, ScheduledEventConfig):
                continue
            every = interval_seconds(cfg.schedule_expression)
            if every is None:
                log.info("Not running %s locally (cron schedule)", cfg.name)
                continue
            thread = threading.Thread(
                target=self._run,
                args=(cfg.name, self.app.handler_map[cfg.name], every / self.speed),
                daemon=True,
                name=f"schedule-{cfg.name}",
            )
            thread.start()
            self._threads.append(thread)
            started.append(cfg.name)
        return started

    def _run(self, name: str, handler: Any, every: float) -> None:
        while not self._stop.wait(every):
            try:
                handler(scheduled_event(name, self.region), LambdaContext(name, 128, 60_000, self.region))
            except Exception:
                log.exception("Scheduled function %s raised", name)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
