"""Cold start: a fresh interpreter importing ``app`` (and each event handler's module) against a
fresh interpreter that imports boto3 and creates one DynamoDB client (the least any function here
can do). Runs are interleaved so that machine noise hits every variant alike; medians are reported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import Row

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
GOAL = 1.3

FLOOR = "import boto3; boto3.client('dynamodb', region_name='us-east-1')"
# What the first request of a cold start also builds: the composition root and its clients.
APP_AND_CLIENTS = "import app; from chalicelib.bootstrap import services; services()"


def handler_modules() -> list[str]:
    return sorted(
        f"chalicelib.handlers.{p.stem}" for p in (ROOT / "chalicelib" / "handlers").glob("*.py") if p.stem != "__init__"
    )


def environment() -> dict[str, str]:
    """Production-like: stage prod, no Lambda runtime (so no X-Ray), no embedded AWS."""
    from chalicelib.config import PRODUCTION_PARTNER_IDS

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDA_", "POWERTOOLS_"))}
    env.update(
        {
            "STAGE": "prod",
            # Production refuses to start without partner ids (chalicelib/config.py); secrets are read when used.
            **{name.upper(): f"bench-only-{name}" for name in PRODUCTION_PARTNER_IDS},
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _once(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def measure(variants: dict[str, str], runs: int = RUNS) -> dict[str, float]:
    env = environment()
    # Warm the OS file cache and write the .pyc files once, as the bundle ships them (infra/package.py precompiles
    # every module; Lambda could not write them). Timestamp-checked here, so an edited module is compiled afresh.
    warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for code in variants.values():
        _once(code, warm)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, code in variants.items():
            samples[name].append(_once(code, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def run() -> list[Row]:
    variants = {"floor": FLOOR, "app": "import app", "app + clients": APP_AND_CLIENTS}
    variants |= {m: f"import {m}" for m in handler_modules()}
    medians = measure(variants)
    floor = medians.pop("floor")
    rows = []
    for name, value in medians.items():
        label = {
            "app": "cold start: import app",
            "app + clients": "cold start: import app + services() (DynamoDB and SQS clients)",
        }.get(name, f"cold start: import {name}")
        rows.append(
            Row(
                label,
                f"{value * 1000:.0f} ms",
                f"{floor * 1000:.0f} ms",
                value / floor,
                f"<= {GOAL}" if name != "app + clients" else "(context)",
                f"median of {RUNS} fresh interpreters; floor = import boto3 + one DynamoDB client",
            )
        )
    return rows


if __name__ == "__main__":
    from bench import table

    print(table(run()))
