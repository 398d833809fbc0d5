"""Every read of one request is bounded (issue 11 item 14): a filtered listing stops after a few DynamoDB pages
and hands back a cursor, search by email pages, a large export is a job whose CSV is downloaded from S3, and an
upload over the cap is refused before it is parsed."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.config import IMPORT_QUEUE
from tests.integration.helpers import call, drain

HEADER = "email,owner,first_name,last_name,phone,business_legal_name,banking_integration,channel"


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


@pytest.fixture
def queries(client: Any) -> Iterator[list[dict[str, Any]]]:
    """Every DynamoDB Query the app's own client (built by bootstrap) sends while the test runs."""
    from chalicelib import bootstrap

    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    events = bootstrap.services().table.client.meta.events
    events.register("provide-client-params.dynamodb.Query", record)
    yield seen
    events.unregister("provide-client-params.dynamodb.Query", record)


def import_rows(client: Any, key: str, rows: list[list[str]]) -> str:
    out = io.StringIO()
    out.write(HEADER + "\r\n")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    response = client.http.post(
        "/v1/imports?send=false",
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {key}"},
        body=out.getvalue().encode(),
    )
    assert response.status_code == 202, response.body
    drain(IMPORT_QUEUE, rounds=100)
    return str(json.loads(response.body)["import_id"])


def test_a_filter_matching_nothing_over_many_items_answers_within_the_bound_with_a_cursor(
    client: Any, key: str, queries: list[dict[str, Any]]
) -> None:
    from chalicelib.adapters.dynamo.table import PAGE_READ_LIMIT

    status, needle = call(
        client, "POST", "/v1/invitations", key, {"email": "needle@smallbiz.com", "owner": "O", "send": False}
    )
    assert status == 201
    import_rows(client, key, [[f"hay{i}@smallbiz.com", "O", "Hay", "", "", "", "", ""] for i in range(40)])

    queries.clear()
    status, page = call(client, "GET", "/v1/invitations?q=nobody-has-this&limit=2", key)
    assert status == 200, page
    assert page["items"] == [] and page["next_cursor"], "a short page comes back with a cursor to continue"
    assert len(queries) <= PAGE_READ_LIMIT
    assert sum(q.get("Limit", 0) for q in queries) < 41, "the request stopped before reading every invitation"

    # Following the cursors reaches the one match (the oldest invitation), each request within the bound.
    found: list[str] = []
    cursor, requests_made = page["next_cursor"], 1
    while cursor:
        queries.clear()
        status, page = call(client, "GET", f"/v1/invitations?q=needle&limit=2&cursor={cursor}", key)
        assert status == 200, page
        assert len(queries) <= PAGE_READ_LIMIT
        found += [i["invitation_id"] for i in page["items"]]
        cursor, requests_made = page["next_cursor"], requests_made + 1
        assert requests_made < 40
    assert found == [needle["invitation_id"]]


def test_a_cursor_from_another_listing_is_refused(client: Any, key: str) -> None:
    for i in range(3):
        body = {"email": "same@smallbiz.com", "owner": "O", "business_legal_name": f"Biz {i}", "send": False}
        assert call(client, "POST", "/v1/invitations", key, body)[0] == 201
    _, listing = call(client, "GET", "/v1/invitations?limit=1", key)
    status, error = call(client, "GET", f"/v1/invitations?email=same@smallbiz.com&cursor={listing['next_cursor']}", key)
    assert status == 400 and "cursor" in error["error"]["fields"]


def test_search_by_email_pages_with_the_cursor(client: Any, key: str) -> None:
    made = []
    for i in range(5):
        body = {"email": "same@smallbiz.com", "owner": "O", "business_legal_name": f"Biz {i}", "send": False}
        status, inv = call(client, "POST", "/v1/invitations", key, body)
        assert status == 201, inv
        made.append(inv["invitation_id"])

    for path in ("/v1/invitations?email=same@smallbiz.com&limit=2", "/v1/invitations?q=SAME@smallbiz.com&limit=2"):
        seen: list[str] = []
        status, page = call(client, "GET", path, key)
        pages = 1
        seen += [i["invitation_id"] for i in page["items"]]
        assert status == 200 and len(page["items"]) == 2 and page["next_cursor"]
        while page["next_cursor"]:
            status, page = call(client, "GET", f"{path}&cursor={page['next_cursor']}", key)
            assert status == 200, page
            seen += [i["invitation_id"] for i in page["items"]]
            pages += 1
        assert sorted(seen) == sorted(made) and len(seen) == 5 and pages >= 3


def test_an_export_larger_than_one_page_is_a_job_with_a_presigned_csv(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.services import exports

    monkeypatch.setattr(exports, "EXPORT_PAGE", 7)
    monkeypatch.setattr(exports, "DIRECT_EXPORT_PAGES", 2)
    rows = [[f"e{i}@smallbiz.com", "Ann", "=1+1" if i == 3 else f"E{i}", "", "", "", "", ""] for i in range(20)]
    import_rows(client, key, rows)
    auth = {"Authorization": f"Bearer {key}"}

    # More than the direct export may read: it says so and names the job route instead of reading on.
    direct = client.http.get("/v1/invitations/export?owner=Ann", headers=auth)
    assert direct.status_code == 422, direct.body
    assert "/v1/invitations/exports" in json.loads(direct.body)["error"]["message"]

    status, job = call(client, "POST", "/v1/invitations/exports", key, {"owner": "Ann"})
    assert status == 202, job
    assert job["state"] == "queued" and job["download_url"] is None
    assert drain(IMPORT_QUEUE) == 1
    status, done = call(client, "GET", f"/v1/invitations/exports/{job['export_id']}", key)
    assert status == 200, done
    assert done["state"] == "completed" and done["rows"] == 20
    assert done["download_url"] and done["download_expires_at"]

    fetched = requests.get(done["download_url"], timeout=10)
    assert fetched.status_code == 200
    exported = list(csv.DictReader(io.StringIO(fetched.content.decode())))
    assert sorted(r["email"] for r in exported) == sorted(r[0] for r in rows)
    assert {r["first_name"] for r in exported if r["email"] == "e3@smallbiz.com"} == {"'=1+1"}  # neutralised

    # A redelivered message changes nothing; another lender's key does not see the job.
    other = call(
        client,
        "POST",
        "/v1/tenants",
        None,
        {"name": "Other", "subdomain": "other-lender", "admin_email": "ops@other-lender.com"},
    )[1]["api_key"]
    assert call(client, "GET", f"/v1/invitations/exports/{job['export_id']}", other)[0] == 404
    assert call(client, "POST", "/v1/invitations/exports", key, {"status": "NOPE"})[0] == 400


def test_a_small_export_is_still_answered_directly(client: Any, key: str) -> None:
    import_rows(client, key, [[f"s{i}@smallbiz.com", "Bob", "", "", "", "", "", ""] for i in range(3)])
    response = client.http.get("/v1/invitations/export?owner=bob", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert len(list(csv.DictReader(io.StringIO(response.body.decode())))) == 3


def test_an_upload_over_5_mb_is_refused_naming_the_field(client: Any, key: str) -> None:
    row = "big@smallbiz.com,Olivia Officer," + "x" * 90 + ",,,,,\r\n"
    body = (HEADER + "\r\n" + row * (5 * 1024 * 1024 // len(row) + 1)).encode()
    assert len(body) > 5 * 1024 * 1024
    response = client.http.post(
        "/v1/imports", headers={"Content-Type": "text/csv", "Authorization": f"Bearer {key}"}, body=body
    )
    assert response.status_code == 413, response.body[:300]
    error = json.loads(response.body)["error"]
    assert "body" in error["fields"] and "5 MB" in error["message"] and "split" in error["message"]


# --- the console: the same bounds behind "CSV export of the current view" and the upload dialog -------------------
def test_the_console_lists_short_pages_and_exports_a_large_view_as_a_job(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.services import exports
    from tests.integration.console_helpers import sign_up

    monkeypatch.setattr(exports, "EXPORT_PAGE", 7)
    monkeypatch.setattr(exports, "DIRECT_EXPORT_PAGES", 2)
    browser, details = sign_up(client)
    from chalicelib.adapters.dynamo.table import PAGE_READ_LIMIT
    from chalicelib.api.console_invitations import PAGE_SIZE

    many = PAGE_SIZE * PAGE_READ_LIMIT + 10
    import_rows(
        client, details["api_key"], [[f"v{i}@smallbiz.com", "Ann", "", "", "", "", "", ""] for i in range(many)]
    )

    # A search that matches nothing: the page answers (empty), with a link to read on.
    listing = browser.get("/console/invitations?q=nobody-has-this")
    assert listing.status == 200
    assert 'id="search-further"' in listing.text and "cursor=" in listing.text
    further = browser.get(re.search(r'<a href="([^"]+)">Search further', listing.text).group(1).replace("&amp;", "&"))
    assert further.status == 200 and "No invitations here yet" in further.text

    shown = browser.get("/console/invitations/export?owner=Ann")
    assert shown.status == 200 and "text/html" in str(shown.headers.get("Content-Type"))
    started = browser.post("/console/invitations/exports", {"owner": "Ann"}, shown.csrf())
    assert started.status == 303, started.text[:500]
    running = browser.get(started.location)
    assert '<meta http-equiv="refresh"' in running.text
    drain(IMPORT_QUEUE)
    done = browser.get(started.location)
    assert '<meta http-equiv="refresh"' not in done.text

    link = re.search(r'id="download" href="([^"]+)"', done.text)
    assert link, done.text[:2000]
    fetched = requests.get(link.group(1).replace("&amp;", "&"), timeout=10)
    assert len(list(csv.DictReader(io.StringIO(fetched.content.decode())))) == many


def test_the_console_refuses_an_upload_over_the_cap_naming_the_file(client: Any) -> None:
    from chalicelib.api.console_work import MAX_UPLOAD_BYTES
    from tests.integration.console_helpers import sign_up
    from tests.integration.test_console_work import upload

    browser, _ = sign_up(client)
    row = "big@smallbiz.com,Olivia Officer\n"
    refused = upload(browser, "email,owner\n" + row * (MAX_UPLOAD_BYTES // len(row) + 1))
    assert refused.status_code == 413
    assert b'id="file-error"' in refused.body and b"split" in refused.body
    # The file travels base64-encoded in the Lambda event: at the cap it still fits Lambda's 6 MB.
    assert MAX_UPLOAD_BYTES * 4 / 3 + 64 * 1024 < 6 * 1024 * 1024


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 1,500 bytes (moto, like S3, wants 5 MiB in every part but the last: lowered to match)."""
    from chalicelib.services import exports

    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1500)
    monkeypatch.setattr(exports, "PART_BYTES", 1500)
    monkeypatch.setattr(exports, "EXPORT_PAGE", 5)
    monkeypatch.setattr(exports, "STEP_PAGES", 2)


def export_file(client: Any, key: str, filters: dict[str, str]) -> tuple[dict[str, Any], int, list[dict[str, str]]]:
    status, job = call(client, "POST", "/v1/invitations/exports", key, filters)
    assert status == 202, job
    steps = drain(IMPORT_QUEUE, rounds=200)
    status, done = call(client, "GET", f"/v1/invitations/exports/{job['export_id']}", key)
    assert status == 200 and done["state"] == "completed", done
    fetched = requests.get(done["download_url"], timeout=10)
    return done, steps, list(csv.DictReader(io.StringIO(fetched.content.decode())))


def listed(client: Any, key: str, query: str = "") -> list[str]:
    ids, cursor = [], ""
    while True:
        status, page = call(client, "GET", f"/v1/invitations?limit=200{query}{cursor}", key)
        assert status == 200
        ids += [i["invitation_id"] for i in page["items"]]
        if not page["next_cursor"]:
            return ids
        cursor = f"&cursor={page['next_cursor']}"


def test_an_export_job_writes_its_file_one_bounded_part_per_step(
    client: Any, key: str, small_parts: None, queries: list[dict[str, Any]]
) -> None:
    from chalicelib.adapters.dynamo.table import PAGE_READ_LIMIT
    from chalicelib.services import exports

    import_rows(client, key, [[f"p{i}@smallbiz.com", "Ann", f"P{i}", "", "", "", "", ""] for i in range(60)])
    queries.clear()
    done, steps, rows = export_file(client, key, {"owner": "Ann"})
    assert steps > 3, "the file was written in several steps"
    # Each step read at most its share: STEP_PAGES list pages, each a bounded read.
    assert len(queries) <= steps * exports.STEP_PAGES * PAGE_READ_LIMIT
    assert [r["invitation_id"] for r in rows] == listed(client, key, "&owner=Ann") and done["rows"] == 60


def test_a_sparse_export_carries_its_rows_over_and_a_redelivered_step_changes_nothing(
    client: Any, key: str, small_parts: None
) -> None:
    from chalicelib import bootstrap
    from chalicelib.services.exports import ExportMessage, ExportQuery

    rows = [[f"hay{i}@smallbiz.com", "Bob", "Hay", "", "", "", "", ""] for i in range(50)]
    for i in (3, 17, 31, 45):
        rows[i][2] = f"Needle{i}"
    import_rows(client, key, rows)
    done, steps, exported = export_file(client, key, {"q": "needle"})
    assert steps >= 2 and sorted(r["first_name"] for r in exported) == ["Needle17", "Needle3", "Needle31", "Needle45"]
    import boto3

    bucket = bootstrap.services().settings.documents_bucket
    stored = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="exports/")["Contents"]]
    assert any(".pending-" in name for name in stored), "the first step's few rows waited for the next"

    # The same step delivered twice, and a step delivered after its successor ran: one row each, in order.
    service = bootstrap.exports()
    tenant = bootstrap.services().tenants.authenticate(f"Bearer {key}")
    job = service.start(tenant, ExportQuery(owner="Bob"))
    drain(IMPORT_QUEUE, rounds=1)  # step 0
    assert service.run(ExportMessage(tenant_id=tenant.tenant_id, export_id=job.export_id, step=0)) == "duplicate"
    drain(IMPORT_QUEUE, rounds=200)
    again = service.status(tenant, job.export_id)
    assert again.state == "completed" and again.rows == 50 and again.download_url
    exported = list(csv.DictReader(io.StringIO(requests.get(again.download_url, timeout=10).content.decode())))
    assert [r["invitation_id"] for r in exported] == listed(client, key, "&owner=Bob")


def test_an_import_status_filtered_to_an_absent_outcome_reads_a_bounded_number_of_chunks(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import bootstrap
    from chalicelib.services.imports import RESULT_CHUNKS_PER_PAGE
    from tests.integration.console_helpers import sign_up

    browser, details = sign_up(client)
    key = details["api_key"]

    monkeypatch.setenv("IMPORT_CHUNK_ROWS", "2")
    bootstrap.reset()
    chunks = RESULT_CHUNKS_PER_PAGE * 2 + 1
    rows = [[f"r{i}@smallbiz.com", "O", "", "", "", "", "", ""] for i in range(chunks * 2)]
    rows[-1][0] = "not-an-email"  # the one invalid row, in the last chunk
    job_id = import_rows(client, key, rows)
    reads: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params["Key"]["SK"]["S"].startswith("RESULT#"):
            reads.append(params)

    events = bootstrap.services().table.client.meta.events
    events.register("provide-client-params.dynamodb.GetItem", record)
    path = f"/v1/imports/{job_id}?outcome=invalid"
    found: list[int] = []
    status, page = call(client, "GET", path, key)
    requests_made = 1
    assert status == 200 and page["results"] == [] and page["next_cursor"]
    assert len(reads) <= RESULT_CHUNKS_PER_PAGE
    found += [r["row"] for r in page["results"]]
    while page["next_cursor"]:
        reads.clear()
        status, page = call(client, "GET", f"{path}&cursor={page['next_cursor']}", key)
        assert status == 200 and len(reads) <= RESULT_CHUNKS_PER_PAGE
        found += [r["row"] for r in page["results"]]
        requests_made += 1
    events.unregister("provide-client-params.dynamodb.GetItem", record)
    assert found == [len(rows) + 1] and requests_made == 3

    # The console's import page reads the same bounded pages, and links to the rest of the rejected rows.
    page_url, shown = f"/console/upload/{job_id}", ""
    for _ in range(3):
        console_page = browser.get(page_url)
        assert console_page.status == 200
        shown += console_page.text
        more = re.search(r'id="more-rejected" href="([^"]+)"', console_page.text)
        if not more:
            break
        page_url = more.group(1).replace("&amp;", "&")
    assert f'<td data-label="Row">{len(rows) + 1}</td>' in shown


def test_a_staff_owner_filter_reads_its_own_index_and_answers_a_full_page(
    client: Any, queries: list[dict[str, Any]]
) -> None:
    """The console's owner filter (a teammate) is an index of its own: one query, the matches and no cursor, however
    many other invitations are newer."""
    from tests.integration.console_helpers import selected_owner, sign_up

    admin, lender = sign_up(client)
    key, mine = lender["api_key"], selected_owner(admin)
    status, old = call(
        client, "POST", "/v1/invitations", key, {"email": "mine@smallbiz.com", "owner_staff_id": mine, "send": False}
    )
    assert status == 201, old
    import_rows(client, key, [[f"hay{i}@smallbiz.com", "CRM", "Hay", "", "", "", "", ""] for i in range(40)])

    queries.clear()
    status, page = call(client, "GET", f"/v1/invitations?owner_staff_id={mine}&limit=2", key)
    assert status == 200, page
    assert ([i["invitation_id"] for i in page["items"]], page["next_cursor"]) == ([old["invitation_id"]], None)
    assert [q.get("IndexName") for q in queries] == ["GSI2"]
    # Handed to another teammate's name as free text, it leaves the teammate's listing at once.
    status, _ = call(client, "PATCH", f"/v1/invitations/{old['invitation_id']}", key, {"owner": "CRM"})
    assert status == 200
    assert call(client, "GET", f"/v1/invitations?owner_staff_id={mine}", key)[1]["items"] == []
    status, crm = call(client, "GET", "/v1/invitations?owner=crm&limit=100", key)
    assert len(crm["items"]) == 41, crm
