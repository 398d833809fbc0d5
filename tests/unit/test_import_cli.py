from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from chalicelib import cli


class FakeResponse:
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        self.status_code = status
        self._payload = payload
        self.text = str(payload)
        self.reason = "reason"

    def json(self) -> dict[str, Any]:
        return self._payload


class FakeApi:
    """The import API as the CLI sees it: one upload, a job that progresses, filtered results."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.uploads: list[dict[str, Any]] = []
        self.polls = 0

    def job(self, state: str, done: int) -> dict[str, Any]:
        return {
            "import_id": "imp_1",
            "state": state,
            "dry_run": False,
            "rows_total": 4,
            "rows_done": done,
            "counts": {"created": 2, "duplicate": 1, "invalid": 1, "valid": 0},
            "results": [],
            "next_cursor": None,
        }

    def post(self, url: str, **kwargs: Any) -> FakeResponse:
        self.uploads.append(kwargs)
        return FakeResponse(202, self.job("queued", 0))

    def get(self, url: str, params: dict[str, Any], **_: Any) -> FakeResponse:
        if "outcome" in params:
            rows = {
                "invalid": [{"row": 3, "outcome": "invalid", "field": "email", "reason": "not an email"}],
                "duplicate": [{"row": 5, "outcome": "duplicate", "field": "email", "reason": "same as row 2"}],
            }[params["outcome"]]
            return FakeResponse(200, {**self.job("completed", 4), "results": rows})
        self.polls += 1
        return FakeResponse(200, self.job("completed", 4) if self.polls >= 2 else self.job("processing", 2))


def test_import_uploads_with_a_content_key_shows_progress_and_lists_rejected_rows(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(b"email,owner\na@x.com,O\n")
    api = FakeApi()
    args = cli.parser().parse_args(["import", str(path), "--api", "http://api/", "--key", "k", "--poll", "0"])
    out, err = io.StringIO(), io.StringIO()
    client = cli.ImportClient(args.api, args.key, session=api)
    job = client.upload(path.read_bytes(), dry_run=False, send=True, idempotency_key="x")
    assert api.headers["Authorization"] == "Bearer k"
    assert api.uploads[0]["headers"]["Content-Type"] == "text/csv"
    job = client.wait(job["import_id"], 0, err, 10)
    assert "2/4 rows (50%)" in err.getvalue() and "4/4 rows (100%)" in err.getvalue()
    rejected = client.results("imp_1", "invalid") + client.results("imp_1", "duplicate")
    out.write(cli.summary(job, rejected))
    text = out.getvalue()
    assert "created: 2" in text and "invalid: 1" in text
    assert "row 3: invalid - email: not an email" in text
    assert text.index("row 3") < text.index("row 5")


def test_errors_show_the_api_message_and_fields() -> None:
    response = FakeResponse(
        400, {"error": {"message": "the header row is not valid", "fields": {"owner": "required column is missing"}}}
    )
    try:
        cli._check(response)  # type: ignore[arg-type]
    except cli.CliError as exc:
        assert "HTTP 400: the header row is not valid" in str(exc)
        assert "owner: required column is missing" in str(exc)
    else:
        raise AssertionError("no error raised")
