"""Where the browser tests find Chromium, and what happens when it is missing.

On a developer machine a missing Chromium skips the browser tests (with the install command in the reason). CI sets
``REQUIRE_BROWSER=1`` (``.ci/run``), and then a missing Chromium fails the run: a green CI always ran the browser.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "Chromium is missing from PATH: apt-get install chromium (see README, 'Two commands')"


def chromium_executable() -> str:
    """The path of Debian's Chromium (``chromium``, or ``chromium-browser`` on Ubuntu-like systems)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"{INSTALL_HINT}; REQUIRE_BROWSER is set, so this fails instead of skipping", pytrace=False)
    pytest.skip(INSTALL_HINT)
