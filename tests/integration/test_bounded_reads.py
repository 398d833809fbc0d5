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


def test_a_large_export_file_is_streamed_to_s3_in_parts_and_a_failure_leaves_nothing(aws: dict[str, str]) -> None:
    import boto3

    from chalicelib import bootstrap
    from chalicelib.adapters.documents import STREAM_PART_BYTES

    documents = bootstrap.exports().documents
    mib = bytes(range(256)) * 4096
    count = 2 * STREAM_PART_BYTES // len(mib) + 1  # two full parts and a last, short one
    assert documents.put_stream("exports/t/big.csv", (mib for _ in range(count)), "text/csv") == count * len(mib)
    s3 = boto3.client("s3")
    stored = s3.get_object(Bucket=aws["DOCUMENTS_BUCKET"], Key="exports/t/big.csv")["Body"].read()
    assert stored == mib * count

    def broken() -> Iterator[bytes]:
        for _ in range(count - 1):
            yield mib
        raise RuntimeError("the listing failed half-way")

    with pytest.raises(RuntimeError):
        documents.put_stream("exports/t/broken.csv", broken(), "text/csv")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=aws["DOCUMENTS_BUCKET"])
    assert "Contents" not in s3.list_objects_v2(Bucket=aws["DOCUMENTS_BUCKET"], Prefix="exports/t/broken")


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
