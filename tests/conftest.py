"""Shared fixtures: an in-process embedded AWS built from infra/, and the Chalice test client."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import fresh_stack, stack  # noqa: F401  (one local stack per session for e2e and contract tests)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LenderOnboardingTest")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto in-process with executing Step Functions, resources created from infra/resources.json."""
    import boto3
    from moto import mock_aws

    from chalicelib import bootstrap
    from devstack.resources import create_resources
    from tests import key_guard, secret_guard

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        env = create_resources(boto3.session.Session())
        for key, value in {**env, "STAGE": "test", "PUBLIC_BASE_URL": "http://testserver"}.items():
            monkeypatch.setenv(key, value)
        # Lender verification and SMS quiet hours hold messages: tests/integration/test_sending_safety.py
        # exercises them; elsewhere a lender sends as a verified one, at any hour the suite runs.
        monkeypatch.setenv("LENDER_VERIFICATION_REQUIRED", "false")
        monkeypatch.setenv("SMS_QUIET_HOURS", "false")
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        bootstrap.reset()
        # Every DynamoDB request of the test is checked: tenant-first keys or a documented global.
        guard = key_guard.install(monkeypatch)
        # Every secret read is checked against the reading function's grants (infra/package.py FUNCTION_ACCESS).
        secrets = secret_guard.install(monkeypatch)
        yield env
        settle_executions(boto3.client("stepfunctions"))
        bootstrap.reset()
        guard.assert_clean()
        secrets.assert_clean()


def settle_executions(sfn: Any, timeout: float = 3.0) -> None:
    """moto's reset at the end of the mock stops running executions, and fails on one whose worker
    thread has not started yet (a test that ends right after StartExecution): let those start."""
    import time

    deadline = time.monotonic() + timeout
    for machine in sfn.list_state_machines()["stateMachines"]:
        running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
        for execution in running["executions"]:
            while time.monotonic() < deadline:
                events = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
                if len(events) > 2:
                    break
                time.sleep(0.05)


@pytest.fixture
def linearizable_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB executes each request atomically; moto in-process does not lock its backend, so two
    threads' conditional writes can interleave inside moto itself. Serialising moto's request dispatch
    restores that one guarantee of the real service and nothing more: our threads still interleave
    between requests (read, decide, conditional write), which is the race under test."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    dispatch = BotocoreStubber.__call__

    def atomic(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return dispatch(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)


@pytest.fixture
def client(aws: dict[str, str]) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="dev") as test_client:
        yield test_client


def json_headers(key: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


@pytest.fixture
def lender(client: Any) -> dict[str, Any]:
    """A signed-up lender: its tenant record and API key."""
    import json

    response = client.http.post(
        "/v1/tenants",
        headers=json_headers(),
        body=json.dumps({"name": "Acme Lending", "subdomain": "acme", "admin_email": "ops@acme-lending.com"}),
    )
    assert response.status_code == 201, response.body
    return json.loads(response.body)
