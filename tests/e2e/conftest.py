"""End-to-end tests: the stack fixtures live in tests/stack.py (shared with tests/contract)."""

from __future__ import annotations

import pytest

from tests.stack import ROOT, START_TIMEOUT, STOP_TIMEOUT, RunningStack, free_port, run_stack, stop, wait_for_health

__all__ = ["ROOT", "START_TIMEOUT", "STOP_TIMEOUT", "RunningStack", "free_port", "run_stack", "stop", "wait_for_health"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """A failing test's report carries the stack's output: the server side of what went wrong."""
    report: pytest.TestReport = yield
    if report.failed:
        for name in ("stack", "fresh_stack"):
            running = getattr(item, "funcargs", {}).get(name)
            if isinstance(running, RunningStack):
                report.sections.append((f"devstack output ({name}, last 20000 chars)", running.output()[-20_000:]))
    return report
