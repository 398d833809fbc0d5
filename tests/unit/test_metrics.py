from __future__ import annotations

import json

import pytest

from chalicelib import observability


def test_counted_metrics_leave_as_one_emf_line(capsys: pytest.CaptureFixture[str]) -> None:
    observability.count("InvitationCreated")
    observability.count("InvitationCreated")
    observability.count("EmailSent")
    observability.flush_metrics()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    assert len(emf) == 1
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == observability.NAMESPACE
    assert emf[0]["InvitationCreated"] == [1.0, 1.0] or emf[0]["InvitationCreated"] == 2.0
    assert emf[0]["EmailSent"] in (1.0, [1.0])


def test_nothing_counted_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    observability.flush_metrics()
    assert "_aws" not in capsys.readouterr().out
