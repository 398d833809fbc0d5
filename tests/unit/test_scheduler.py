from __future__ import annotations

import time
from typing import Any

from chalice import Chalice, Cron, Rate

from devstack.scheduler import Scheduler, interval_seconds


def test_interval_of_rates_and_crons() -> None:
    assert interval_seconds(Rate(2, unit=Rate.MINUTES)) == 120
    assert interval_seconds(Rate(1, unit=Rate.HOURS)) == 3600
    assert interval_seconds(Cron(0, 10, "*", "*", "?", "*")) is None


def test_scheduled_functions_run_with_a_scheduled_event() -> None:
    app = Chalice("scheduled")
    seen: list[dict[str, Any]] = []

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def tick(event: Any) -> None:
        seen.append(event.to_dict())

    @app.schedule(Cron(0, 10, "*", "*", "?", "*"))
    def nightly(event: Any) -> None:  # pragma: no cover - cron schedules are not run locally
        raise AssertionError

    scheduler = Scheduler(app, speed=1200)  # one minute becomes 50 ms
    try:
        assert scheduler.start() == ["tick"]
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert seen and seen[0]["detail-type"] == "Scheduled Event"
