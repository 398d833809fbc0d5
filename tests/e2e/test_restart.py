"""``make run`` keeps its state: a lender, its key, its invitations, the outbox and an import survive a
kill and a restart (devstack/state.py snapshots the embedded AWS's data; tests/integration/test_state.py
checks what a snapshot holds and that --fresh drops it)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.import_10k import generated_csv
from tests.e2e.conftest import run_stack

pytestmark = pytest.mark.e2e

SNAPSHOT_EVERY_S = 0.5
IMPORT_ROWS = 120


def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def snapshot_after(state_dir: Path, moment: float) -> bool:
    snapshot = state_dir / "aws-state.pickle"
    return snapshot.exists() and snapshot.stat().st_mtime > moment


def test_a_lender_its_invitations_and_an_import_survive_a_kill_and_a_restart(tmp_path: Path) -> None:
    with run_stack(tmp_path, "--snapshot-every", str(SNAPSHOT_EVERY_S)) as first:
        key = first.sign_up("Keeper Lending")
        auth = {"Authorization": f"Bearer {key}"}
        sent = requests.post(
            f"{first.api}/v1/invitations",
            json={"email": "kept.sent@keeper.example", "owner": "Olivia Officer"},
            headers=auth,
            timeout=30,
        )
        pending = requests.post(
            f"{first.api}/v1/invitations",
            json={"email": "kept.pending@keeper.example", "owner": "Olivia Officer", "send": False},
            headers=auth,
            timeout=30,
        )
        assert sent.status_code == pending.status_code == 201, (sent.text, pending.text)
        eventually(
            lambda: any(
                "kept.sent@keeper.example" in m["destinations"]
                for m in requests.get(f"{first.api}/dev/outbox.json", timeout=30).json()["emails"]
            ),
            "the invitation email reaching the outbox",
        )
        upload = {**auth, "Content-Type": "text/csv", "Idempotency-Key": "keeper-import-1"}
        started = requests.post(
            f"{first.api}/v1/imports?send=false", data=generated_csv(IMPORT_ROWS), headers=upload, timeout=60
        )
        assert started.status_code == 202, started.text
        written = time.time()
        eventually(lambda: snapshot_after(tmp_path, written), "a snapshot after the last write")
        first.process.send_signal(signal.SIGKILL)  # no clean stop: only the periodic snapshot is left
        first.process.wait(10)

    with run_stack(tmp_path) as second:
        eventually(lambda: "State:        restored" in second.output(), "the stack saying it restored its state")
        settings = requests.get(f"{second.api}/v1/tenant/settings", headers=auth, timeout=30)
        assert settings.status_code == 200, settings.text
        for created in (sent, pending):
            invitation = requests.get(
                f"{second.api}/v1/invitations/{created.json()['invitation_id']}", headers=auth, timeout=30
            )
            assert invitation.status_code == 200, invitation.text
            assert invitation.json()["email"] == created.json()["email"]
        outbox = requests.get(f"{second.api}/dev/outbox.json", timeout=30).json()
        assert any("kept.sent@keeper.example" in m["destinations"] for m in outbox["emails"])

        # The upload retried with its Idempotency-Key is the same import, and it runs to the end.
        again = requests.post(
            f"{second.api}/v1/imports?send=false", data=generated_csv(IMPORT_ROWS), headers=upload, timeout=60
        )
        assert again.status_code == 202, again.text
        assert again.json()["import_id"] == started.json()["import_id"]
        job = eventually(
            lambda: (
                (
                    j := requests.get(f"{second.api}/v1/imports/{again.json()['import_id']}", headers=auth, timeout=30)
                ).json()["state"]
                == "completed"
                and j.json()
            ),
            "the import completing after the restart",
        )
        assert job["counts"]["created"] == IMPORT_ROWS
