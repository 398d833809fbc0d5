"""The real app packaged as ``make package`` packages it, without downloading its dependencies: its code is copied
with an empty requirements.txt (the template does not depend on them), run through ``chalice package`` and
infra.package's post-processing. Shared by tests/unit/test_infra.py and the deploy rehearsal."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from infra.package import ROOT, post_process, run_chalice_package


def package_real_app(workdir: Path) -> tuple[dict[str, Any], Path]:
    """Return the deployable template and the deployment.zip it refers to (the app's code only)."""
    project = workdir / "project"
    project.mkdir(parents=True)
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    (project / "requirements.txt").write_text("")
    out = workdir / "out"
    template = post_process(run_chalice_package(out, "dev", project))
    return template, out / "deployment.zip"
