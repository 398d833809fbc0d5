"""The deployment bundle: ``make package``'s build (Chalice's package with the runtime dependencies, slimmed by
infra.package.slim_bundle) measured against Lambda's limits: 250 MiB unzipped, 50 MB for a zip uploaded directly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import Row

MIB = 1024 * 1024


def run() -> list[Row]:
    from infra.package import LAMBDA_DIRECT_UPLOAD_LIMIT, LAMBDA_UNZIPPED_LIMIT, RUNTIME_PROVIDED, build

    with tempfile.TemporaryDirectory() as tmp:
        _, size = build(Path(tmp))
    left_out = f"left out {size.left_out / MIB:.1f} MiB ({', '.join(RUNTIME_PROVIDED)}, phonenumbers geo/carrier data)"
    return [
        Row(
            "bundle: deployment.zip unzipped",
            f"{size.unzipped / MIB:.1f} MiB",
            f"{LAMBDA_UNZIPPED_LIMIT / MIB:.0f} MiB (Lambda limit)",
            size.unzipped / LAMBDA_UNZIPPED_LIMIT,
            "< 1",
            left_out,
        ),
        Row(
            "bundle: deployment.zip zipped",
            f"{size.zipped / MIB:.1f} MiB",
            f"{LAMBDA_DIRECT_UPLOAD_LIMIT / MIB:.1f} MiB (direct upload limit)",
            size.zipped / LAMBDA_DIRECT_UPLOAD_LIMIT,
            "< 1",
            "deployed through S3 (aws cloudformation package), where only the unzipped limit applies",
        ),
    ]
