"""``make run``: the whole system on this machine, no AWS account, Docker or network needed.

    python -m devstack [--host 127.0.0.1] [--api-port 8000] [--moto-port 5000] [--sandbox-port 8100]

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType


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
