"""``make run``: the whole system on this machine, no AWS account, Docker or network needed.

    python -m devstack [--host 127.0.0.1] [--api-port 8000] [--moto-port 5000] [--sandbox-port 8100]
                       [--state-dir .devstack] [--fresh | --no-state]

The embedded AWS's data (lenders, keys, invitations, queued messages, the outbox) is kept in
``.devstack/`` and restored at the next start (devstack/state.py).

Ctrl-C or SIGTERM stops the pollers, the HTTP server and the embedded AWS, then exits 0 (within seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType


DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".devstack"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run the whole system locally: embedded AWS, the HTTP API and SQS pollers.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address both servers bind to (default 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=8000, help="port of the app's HTTP API (default 8000)")
    parser.add_argument("--moto-port", type=int, default=5000, help="port of the embedded AWS (default 5000)")
    parser.add_argument(
        "--sandbox-port", type=int, default=8100, help="port of the bank-link provider sandbox (default 8100)"
    )
    parser.add_argument(
        "--retry-after",
        type=int,
        default=2,
        metavar="SECONDS",
        help="seconds before a message a handler failed is retried (default 2; -1 keeps the queue's timeout)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help="where the embedded AWS's data is kept between runs (default .devstack/ in the project)",
    )
    parser.add_argument("--fresh", action="store_true", help="drop the kept data and start empty")
    parser.add_argument(
        "--snapshot-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how often the kept data is saved while something changes (default 30; also saved at stop)",
    )
    parser.add_argument("--no-state", action="store_true", help="keep nothing: start empty, save nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    # Installed before starting so a signal during start-up still ends in a clean stop.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    from devstack.stack import LocalStack, PortInUse

    stack = LocalStack(
        host=args.host,
        api_port=args.api_port,
        moto_port=args.moto_port,
        sandbox_port=args.sandbox_port,
        retry_visibility_s=None if args.retry_after < 0 else args.retry_after,
        state_dir=None if args.no_state else args.state_dir,
        fresh=args.fresh,
        snapshot_every_s=args.snapshot_every,
    )
    try:
        stack.start()
    except PortInUse as exc:
        print(
            f"devstack: {exc}; choose another port (API_PORT=... MOTO_PORT=... SANDBOX_PORT=... make run)",
            file=sys.stderr,
        )
        return 2
    print(f"API:          {stack.api_url}", flush=True)
    print(f"Console:      {stack.api_url}/console  (new lender: {stack.api_url}/signup)", flush=True)
    print(f"Embedded AWS: {stack.aws_url}", flush=True)
    print(f"Outbox:       {stack.api_url}/dev/outbox", flush=True)
    print(f"Bank sandbox: {stack.sandbox_url}/sandbox/sessions", flush=True)
    if stack.state_dir is None:
        print("State:        not kept (--no-state)", flush=True)
    else:
        kept = "restored" if stack.restored else "empty; kept"
        print(f"State:        {kept} in {stack.state_dir} (make run FRESH=1 or make reset to start clean)", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("Stopping...", flush=True)
        started = time.monotonic()
        stack.stop()
        print(f"Stopped in {time.monotonic() - started:.1f} s.", flush=True)
    return 0


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: after a clean stop, all that is left is freeing the
    heap object by object (seconds for an embedded AWS holding a day's data), which the kernel does at once."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
