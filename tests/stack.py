"""The local stack (``python -m devstack``) as a subprocess on free ports, reached over HTTP only.

Shared by tests/e2e and tests/contract: tests/conftest.py exposes the fixtures, so one pytest run
starts one session stack for both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60
STOP_TIMEOUT = 10


@dataclass
class RunningStack:
    api: str
    aws: str
    process: subprocess.Popen[bytes]
    log_path: Path
    # The bank-link provider sandbox (Plaid, Finicity, MX) the stack's app talks to.
    sandbox: str = ""

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sign_up(self, name: str, *, subdomain: str | None = None, admin_email: str = "ops@lender.example") -> str:
        """Sign a new lender up over HTTP; returns its API key."""
        import uuid

        import requests

        created = requests.post(
            f"{self.api}/v1/tenants",
            json={"name": name, "subdomain": subdomain or f"lender-{uuid.uuid4().hex[:8]}", "admin_email": admin_email},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        self.verify(str(created.json()["tenant"]["tenant_id"]))
        return str(created.json()["api_key"])

    def verify(self, tenant_id: str, timeout: float = 30.0) -> None:
        """Confirm the lender's admin email the way its admin does: the emailed link (read from the local
        outbox), then the page's button. Until then its messages reach only its own address."""
        import time

        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            emails = requests.get(f"{self.api}/dev/outbox.json", timeout=10).json()["emails"]
            links = [u for e in emails for u in e["links"] if f"/verify/{tenant_id}/" in u]
            if links:
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                done = requests.post(links[0], data="", headers=form, timeout=10)
                assert done.status_code == 200, done.text
                return
            time.sleep(0.2)
        raise AssertionError(f"no verification email for {tenant_id} within {timeout} s")


def phone_for(marker: str, prefix: str = "+1514555") -> str:
    """A test's own mobile number from its random marker, never one ending in 99: moto's SNS answers
    CheckIfPhoneNumberIsOptedOut true for those, so one run in a hundred found its SMS refused as opted out."""
    suffix = int(marker, 16) % 10_000
    if suffix % 100 == 99:
        suffix -= 1
    return f"{prefix}{suffix:04d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(stack: RunningStack) -> int:
    """SIGTERM, then kill after STOP_TIMEOUT seconds. Returns the exit code."""
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            stack.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            stack.process.kill()
            stack.process.wait()
    return stack.process.returncode


@contextmanager
def run_stack(state_dir: Path | None = None, *options: str) -> Iterator[RunningStack]:
    """``state_dir``: keep the embedded AWS's data there between runs (default: keep nothing, so a
    test never reads or writes the developer's own .devstack/). ``options``: more devstack options."""
    api_port, moto_port, sandbox_port = free_port(), free_port(), free_port()
    state = ["--no-state"] if state_dir is None else ["--state-dir", str(state_dir), *options]
    # Every test signs up its own lender from 127.0.0.1: lift the per-IP sign-up limit for the suite.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LENDER_SIGNUPS_PER_IP_PER_HOUR": "100000"}
    # The suite runs at any hour: SMS quiet hours are tested in tests/integration/test_sending_safety.py.
    env["SMS_QUIET_HOURS"] = "false"
    # The stack sets its own endpoint, stage and credentials; inherited test settings must not leak in.
    for name in ("AWS_ENDPOINT_URL", "STAGE", "MOTO_PORT", "PLAID_BASE_URL", "FINICITY_BASE_URL", "MX_BASE_URL"):
        env.pop(name, None)
    with tempfile.NamedTemporaryFile("wb", prefix="devstack-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack",
                "--api-port",
                str(api_port),
                "--moto-port",
                str(moto_port),
                "--sandbox-port",
                str(sandbox_port),
                *state,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack = RunningStack(
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{moto_port}",
        process,
        Path(log.name),
        sandbox=f"http://127.0.0.1:{sandbox_port}",
    )
    failed = False
    try:
        wait_for_health(stack)
        yield stack
    except BaseException:
        failed = True
        raise
    finally:
        code = stop(stack)
        if failed or code not in (0, None):
            print(f"--- devstack output (exit {code}) ---\n{stack.output()}", file=sys.stderr)
        stack.log_path.unlink(missing_ok=True)


def wait_for_health(stack: RunningStack) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(f"devstack exited with {stack.process.returncode} before answering /health")
        try:
            if requests.get(f"{stack.api}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"devstack did not answer /health within {START_TIMEOUT} s")


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """One stack for the whole session; tests use unique names so they do not see each other's data."""
    with run_stack() as running:
        yield running


@pytest.fixture
def fresh_stack() -> Iterator[RunningStack]:
    """A stack of the test's own, for tests that need empty state or stop it."""
    with run_stack() as running:
        yield running
