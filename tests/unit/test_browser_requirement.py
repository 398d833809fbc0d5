"""The browser test finds Chromium on PATH; under CI (REQUIRE_BROWSER=1) a missing Chromium is a failure, not a skip,
so a green run always includes the browser test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import chromium_executable

ROOT = Path(__file__).resolve().parents[2]


def fake_chromium(directory: Path) -> Path:
    exe = directory / "chromium"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_a_missing_chromium_fails_when_the_browser_is_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium_executable()


def test_a_missing_chromium_skips_on_a_developer_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        chromium_executable()


def test_chromium_is_found_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = fake_chromium(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/nonexistent")
    monkeypatch.setenv("REQUIRE_BROWSER", "1")
    assert chromium_executable() == str(exe)


def test_ci_requires_the_browser_before_it_runs_the_tests() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "export REQUIRE_BROWSER=1" in lines
    assert lines.index("export REQUIRE_BROWSER=1") < next(
        i for i, line in enumerate(lines) if line.startswith("make test")
    )
