"""``make bench``: run every benchmark module, print one markdown table, write bench/results.md.

Benchmarks report; they never fail. A module that crashes becomes a row saying so.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import Row, table

# Each module exposes run() -> list[Row]. Add new benchmarks here.
MODULES = [
    "bench.bundle",
    "bench.cold_start",
    "bench.create_invitation",
    "bench.send_consumer",
    "bench.import_10k",
    "bench.financial_data",
    "bench.stack_load",
]


def main(argv: list[str]) -> int:
    selected = [m for m in MODULES if not argv or any(a in m for a in argv)]
    rows: list[Row] = []
    for name in selected:
        started = time.perf_counter()
        if importlib.util.find_spec(name) is None:
            rows.append(Row(name, "not written yet", "", None, "", ""))
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(name).run())
        except Exception as exc:  # a broken benchmark is reported, never fatal
            traceback.print_exc()
            rows.append(Row(name, "failed", "", None, "", f"{type(exc).__name__}: {exc}"))
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    header = (
        f"Benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()} on "
        f"{platform.machine()} ({platform.system()}). Ratio = measured / floor (lower is better).\n\n"
    )
    text = header + table(rows)
    print(text)
    Path(__file__).with_name("results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
