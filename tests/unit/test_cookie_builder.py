"""Every cookie is named, built and read in one place (chalicelib/api/forms.py: set_cookie, read_cookie), so none can
skip the ``__Host-`` prefix over https or be read under a name a sibling host can plant
(tests/integration/test_cookie_hardening.py)."""

from __future__ import annotations

import re
from pathlib import Path

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
BUILDER = CHALICELIB / "api" / "forms.py"
# What building or parsing a cookie by hand looks like: its attributes, the standard library's parser, the header.
BY_HAND = re.compile(
    r"[\"';] ?(HttpOnly|SameSite=)|SimpleCookie|http\.cookies|headers\.get\(\s*[\"']cookie[\"']", re.IGNORECASE
)


def test_no_cookie_is_built_or_read_outside_the_builder() -> None:
    offenders = [
        f"{path.relative_to(CHALICELIB)}:{number}: {line.strip()}"
        for path in sorted(CHALICELIB.rglob("*.py"))
        if path != BUILDER
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BY_HAND.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, offenders


def test_the_builder_is_where_the_attributes_are() -> None:
    assert BY_HAND.search(BUILDER.read_text())
