"""requirements.txt (what `chalice package` installs into the Lambda bundle) equals the runtime deps."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_txt_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(listed) == sorted(declared)


def test_every_dependency_is_pinned() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in [*data["dependencies"], *data["optional-dependencies"]["dev"]]:
        assert "==" in requirement, requirement
