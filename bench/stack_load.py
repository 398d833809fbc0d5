"""The running stack (``python -m devstack``, what ``make run`` starts) under a day's load, over HTTP:
import 10,000 CSV rows (``send=false``), then create and send 200 invitations, while a prober asks
the API for a lender's settings every 0.25 s. The stack keeps its state as ``make run`` does (a
snapshot every 30 s while the load writes). Reports the stack process's peak RSS (the kernel's
VmHWM), the slowest API answer meanwhile, and how long the stack takes to exit after Ctrl-C.

    python -m bench stack_load          # BENCH_IMPORT_ROWS=3000 BENCH_INVITATIONS=20 to try smaller

The run is aborted (the stack killed) when its RSS passes ABORT_RSS: a leak must not take the
machine down with it.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import Row
from bench.import_10k import generated_csv

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "10000"))
INVITATIONS = int(os.environ.get("BENCH_INVITATIONS", "200"))
RSS_GOAL = 1 << 30
LATENCY_GOAL_S = 2.0
EXIT_GOAL_S = 5.0
ABORT_RSS = 4 << 30
PROBE_EVERY_S = 0.25
PROBE_TIMEOUT_S = 30.0
PHASE_TIMEOUT_S = 900.0


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes, from /proc (Linux)."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values


@dataclass
class Watch:
    """Samples the stack's RSS and times a cheap authenticated API call, each in its own thread."""

    pid: int
    api: str
    key: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)
    aborted: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Watch:
        for target in (self._sample, self._probe):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(PROBE_TIMEOUT_S + 1)

    def _sample(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(0.5):
            try:
                rss = proc_status(self.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            self.timeline.append((time.monotonic() - started, rss))
            if rss > ABORT_RSS:
                self.aborted = f"RSS passed {ABORT_RSS >> 30} GiB after {time.monotonic() - started:.0f} s"
                os.kill(self.pid, signal.SIGKILL)
                return

    def _probe(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self._stop.wait(PROBE_EVERY_S):
            started = time.perf_counter()
            try:
                response = requests.get(f"{self.api}/v1/tenant/settings", headers=headers, timeout=PROBE_TIMEOUT_S)
                if response.status_code != 200:
                    self.failures.append(str(response.status_code))
            except requests.RequestException as exc:
                self.failures.append(type(exc).__name__)
            self.latencies.append(time.perf_counter() - started)


def wait_until(check: Callable[[], bool], what: str, watch: Watch, timeout: float = PHASE_TIMEOUT_S) -> float:
    started = time.monotonic()
    while not check():
        if watch.aborted:
            raise RuntimeError(watch.aborted)
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} took more than {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def import_rows(api: str, auth: dict[str, str], watch: Watch) -> float:
    started = time.monotonic()
    response = requests.post(
        f"{api}/v1/imports?send=false",
        data=generated_csv(ROWS),
        headers={**auth, "Content-Type": "text/csv"},
        timeout=120,
    )
    assert response.status_code == 202, response.text
    url = f"{api}/v1/imports/{response.json()['import_id']}?limit=1"

    def completed() -> bool:
        job = requests.get(url, headers=auth, timeout=PROBE_TIMEOUT_S).json()
        if job["state"] == "failed":
            raise RuntimeError(f"the import failed: {job}")
        return bool(job["state"] == "completed")

    wait_until(completed, "the import", watch)
    return time.monotonic() - started


def send_invitations(api: str, auth: dict[str, str], watch: Watch) -> float:
    started = time.monotonic()
    ids = []
    for i in range(INVITATIONS):
        body = {"email": f"sent{i}@smallbiz.example", "owner": "Olivia Officer", "first_name": f"Jane{i}"}
        response = requests.post(f"{api}/v1/invitations", json=body, headers=auth, timeout=PROBE_TIMEOUT_S)
        assert response.status_code == 201, response.text
        ids.append(response.json()["invitation_id"])

    def all_sent() -> bool:
        page = requests.get(
            f"{api}/v1/invitations?delivery_status=sent&limit=200", headers=auth, timeout=PROBE_TIMEOUT_S
        ).json()
        sent = {i["invitation_id"] for i in page["items"]}
        return all(i in sent for i in ids)

    wait_until(all_sent, "the sends", watch)
    return time.monotonic() - started


def exit_after_sigint(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return float("inf")
    return time.monotonic() - started


def run() -> list[Row]:
    from tests.stack import run_stack

    # As ``make run`` runs: the state kept (snapshots every 30 s while the load writes), in a scratch directory.
    with tempfile.TemporaryDirectory(prefix="bench-devstack-") as state_dir, run_stack(Path(state_dir)) as stack:
        pid = stack.process.pid
        idle = proc_status(pid)["VmRSS"]
        key = stack.sign_up("Bench Lending")
        auth = {"Authorization": f"Bearer {key}"}
        watch = Watch(pid, stack.api, key).start()
        error = ""
        import_s = send_s = float("nan")
        try:
            import_s = import_rows(stack.api, auth, watch)
            send_s = send_invitations(stack.api, auth, watch)
        except Exception as exc:  # reported in the table: a broken stack is a figure too
            error = f"{type(exc).__name__}: {exc}"
        finally:
            watch.stop()
        peak = proc_status(pid)["VmHWM"] if stack.process.poll() is None else max(r for _, r in watch.timeline)
        exit_s = exit_after_sigint(stack.process) if stack.process.poll() is None else float("nan")
    return rows(idle, peak, watch, import_s, send_s, exit_s, error)


def rows(idle: int, peak: int, watch: Watch, import_s: float, send_s: float, exit_s: float, error: str) -> list[Row]:
    mib = 1 << 20
    slowest = max(watch.latencies, default=float("nan"))
    median = statistics.median(watch.latencies) if watch.latencies else float("nan")
    load = f"{ROWS:,}-row import (send=false) then {INVITATIONS} invitations sent"
    trail = ", ".join(f"{t:.0f}s {r / mib:.0f}" for t, r in watch.timeline[:: max(1, len(watch.timeline) // 12)])
    note = f"; {error}" if error else ""
    return [
        Row(
            "running stack: peak RSS",
            f"{peak / mib:,.0f} MiB",
            f"{idle / mib:,.0f} MiB",
            peak / idle,
            f"< {RSS_GOAL / mib:,.0f} MiB",
            f"{load}; floor = RSS after start; RSS over time (MiB): {trail}{note}",
        ),
        Row(
            "running stack: slowest API answer under load",
            f"{slowest:.2f} s",
            f"{median:.3f} s",
            slowest / median if median else None,
            f"< {LATENCY_GOAL_S:g} s",
            f"GET /v1/tenant/settings every {PROBE_EVERY_S} s ({len(watch.latencies)} probes, "
            f"{len(watch.failures)} failed{': ' + ', '.join(sorted(set(watch.failures))) if watch.failures else ''}); "
            "floor = median answer",
        ),
        Row(
            "running stack: import, then sends",
            f"import {import_s:.1f} s ({ROWS / import_s:,.0f} rows/s); {INVITATIONS} sends {send_s:.1f} s",
            "",
            None,
            "(context)",
            "upload to job completed; first create to every invitation delivery_status=sent",
        ),
        Row(
            "running stack: exit after Ctrl-C (SIGINT)",
            f"{exit_s:.2f} s",
            "",
            None,
            f"< {EXIT_GOAL_S:g} s",
            "after the load above",
        ),
    ]


def main() -> None:
    from bench import table

    print(table(run()))


if __name__ == "__main__":
    main()
