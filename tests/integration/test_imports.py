from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any

import boto3
import pytest

from chalicelib.config import IMPORT_QUEUE, SEND_QUEUE
from chalicelib.errors import UpstreamError
from tests.integration.helpers import call, drain, sent_emails

HEADER = "email,owner,first_name,last_name,phone,business_legal_name,banking_integration,channel"


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def upload(client: Any, key: str, text: str | bytes, query: str = "", **headers: str) -> tuple[int, Any]:
    body = text.encode() if isinstance(text, str) else text
    response = client.http.post(
        f"/v1/imports{query}",
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {key}", **headers},
        body=body,
    )
    return response.status_code, json.loads(response.body)


def csv_text(rows: list[list[str]], header: str = HEADER) -> str:
    out = io.StringIO()
    out.write(header + "\r\n")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def all_results(client: Any, key: str, job_id: str, limit: int = 500) -> list[dict[str, Any]]:
    status, page = call(client, "GET", f"/v1/imports/{job_id}?limit={limit}", key)
    assert status == 200, page
    results = list(page["results"])
    while page["next_cursor"]:
        _, page = call(client, "GET", f"/v1/imports/{job_id}?limit={limit}&cursor={page['next_cursor']}", key)
        results += page["results"]
    return results


def invitations(client: Any, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    _, page = call(client, "GET", "/v1/invitations?limit=200", key)
    items += page["items"]
    while page["next_cursor"]:
        _, page = call(client, "GET", f"/v1/invitations?limit=200&cursor={page['next_cursor']}", key)
        items += page["items"]
    return items


def test_template_round_trip_creates_and_sends(client: Any, key: str) -> None:
    response = client.http.get("/v1/imports/template", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    header, example = list(csv.reader(io.StringIO(response.body.decode())))
    assert header == HEADER.split(",")
    # The example row left in is refused (it would invite a stranger); filled in like it, a row imports.
    filled = ["jane@janes-bakery.example", *example[1:]]
    rows = [example, filled, *[[f"c{i}@smallbiz.com", "Olivia Officer", f"C{i}", "", "", "", "", ""] for i in range(3)]]
    text = "\ufeff" + csv_text(rows)  # Excel's "CSV UTF-8" starts with a byte-order mark
    status, job = upload(client, key, text)
    assert status == 202, job
    assert job["state"] == "queued" and job["rows_total"] == 5
    assert drain(IMPORT_QUEUE) == 1
    _, done = call(client, "GET", f"/v1/imports/{job['import_id']}", key)
    assert done["state"] == "completed"
    assert done["rows_done"] == 5
    assert done["counts"] == {"created": 4, "duplicate": 0, "invalid": 1, "valid": 0}
    assert [r["row"] for r in done["results"]] == [2, 3, 4, 5, 6]
    refused = done["results"][0]
    assert (refused["outcome"], refused["field"]) == ("invalid", "email")
    assert "template's example row" in refused["reason"]
    created = {r["invitation_id"] for r in done["results"] if r["outcome"] == "created"}
    listed = {i["invitation_id"]: i for i in invitations(client, key)}
    assert created == set(listed)
    assert "jane@smallbiz.com" not in {i["email"] for i in listed.values()}
    jane = next(i for i in listed.values() if i["email"] == "jane@janes-bakery.example")
    assert jane["phone"] == "+15145550123" and jane["source"] == "import" and jane["delivery_status"] == "queued"
    _, history = call(client, "GET", f"/v1/invitations/{jane['invitation_id']}/history", key)
    assert [e["type"] for e in history["items"]] == ["created", "send_requested"]
    assert drain(SEND_QUEUE) == 1  # the four sends go in one message (SENDS_PER_MESSAGE)
    assert sorted(e.destinations["ToAddresses"][0] for e in sent_emails()) == sorted(
        i["email"] for i in listed.values()
    )


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        ("email,first_name", {"owner"}),
        ("owner,first_name", {"email"}),
        ("email,owner,nickname", {"nickname"}),
        ("email,owner,Email", {"email"}),
        ("email,,owner", {"column 2"}),
    ],
)
def test_header_errors_are_400_naming_columns(client: Any, key: str, header: str, fields: set[str]) -> None:
    status, payload = upload(client, key, header + "\r\nx@y.com,O,Z\r\n")
    assert status == 400
    assert set(payload["error"]["fields"]) == fields
    assert all(f in payload["error"]["message"] for f in fields)


def test_body_errors(client: Any, key: str) -> None:
    status, payload = upload(client, key, "")
    assert status == 400 and "empty" in payload["error"]["message"]
    status, payload = upload(client, key, HEADER + "\r\n")
    assert status == 400 and payload["error"]["fields"] == {"body": "no rows"}
    status, payload = upload(client, key, (HEADER + "\r\nj\xe9@x.com,O\r\n").encode("latin-1"))
    assert status == 400 and payload["error"]["fields"] == {"body": "not UTF-8"}
    response = client.http.post(
        "/v1/imports", headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}, body="{}"
    )
    assert response.status_code == 415


def test_invalid_rows_have_reasons_and_valid_rows_still_import(client: Any, key: str) -> None:
    text = csv_text(
        [
            ["not-an-email", "O", "", "", "", "", "", ""],
            ["a@smallbiz.com", "", "", "", "", "", "", ""],
            ["b@smallbiz.com", "O", "", "", "12", "", "", ""],
            ["c@smallbiz.com", "O", "", "", "", "", "", "sms"],
            ["d@smallbiz.com", "O", "", "", "", "", "yodlee", ""],
            ["e@smallbiz.com", "O", "", "", "", "", "PLAID", "Email"],
        ]
    )
    _, job = upload(client, key, text)
    drain(IMPORT_QUEUE)
    results = all_results(client, key, job["import_id"])
    by_row = {r["row"]: r for r in results}
    assert [by_row[r]["outcome"] for r in range(2, 8)] == ["invalid"] * 5 + ["created"]
    assert [by_row[r]["field"] for r in range(2, 7)] == ["email", "owner", "phone", "phone", "banking_integration"]
    assert all(by_row[r]["reason"] for r in range(2, 7))
    assert "phone is required" in by_row[5]["reason"]
    _, invalid_only = call(client, "GET", f"/v1/imports/{job['import_id']}?outcome=invalid", key)
    assert [r["row"] for r in invalid_only["results"]] == [2, 3, 4, 5, 6]
    (created,) = invitations(client, key)
    assert created["banking_integration"] == "plaid"


def test_duplicates_in_file_and_against_existing(client: Any, key: str) -> None:
    status, existing = call(client, "POST", "/v1/invitations", key, {"email": "old@smallbiz.com", "owner": "O"})
    assert status == 201
    text = csv_text(
        [
            ["old@smallbiz.com", "O", "", "", "", "", "", ""],
            ["twice@smallbiz.com", "O", "", "", "", "Acme Inc.", "", ""],
            ["TWICE@smallbiz.com ", "P", "", "", "", "ACME inc", "", ""],
            ["twice@smallbiz.com", "O", "", "", "", "Other Co", "", ""],
            ["bad@", "O", "", "", "", "", "", ""],
            ["bad@", "O", "", "", "", "", "", ""],
        ]
    )
    _, job = upload(client, key, text, "?send=false")
    drain(IMPORT_QUEUE)
    by_row = {r["row"]: r for r in all_results(client, key, job["import_id"])}
    assert by_row[2]["outcome"] == "duplicate"
    assert by_row[2]["invitation_id"] == existing["invitation_id"]
    assert by_row[3]["outcome"] == "created"
    assert by_row[4]["outcome"] == "duplicate" and "row 3" in by_row[4]["reason"]
    assert by_row[5]["outcome"] == "created"  # another business: a separate invitation, as the seed allows
    assert by_row[6]["outcome"] == by_row[7]["outcome"] == "invalid"
    _, done = call(client, "GET", f"/v1/imports/{job['import_id']}", key)
    assert done["counts"] == {"created": 2, "duplicate": 2, "invalid": 2, "valid": 0}
    emails = Counter(i["email"] for i in invitations(client, key))
    assert emails == {"old@smallbiz.com": 1, "twice@smallbiz.com": 2}
    assert all(i["delivery_status"] == "not_sent" for i in invitations(client, key) if i["source"] == "import")
    assert drain(SEND_QUEUE) == 1  # only the invitation created through the API is sent


def test_dry_run_validates_and_creates_nothing(client: Any, key: str) -> None:
    call(client, "POST", "/v1/invitations", key, {"email": "old@smallbiz.com", "owner": "O", "send": False})
    text = csv_text(
        [
            ["new@smallbiz.com", "O", "", "", "", "", "", ""],
            ["old@smallbiz.com", "O", "", "", "", "", "", ""],
            ["nope", "O", "", "", "", "", "", ""],
        ]
    )
    _, job = upload(client, key, text, "?dry_run=true")
    assert job["dry_run"] is True and job["send"] is False
    drain(IMPORT_QUEUE)
    _, done = call(client, "GET", f"/v1/imports/{job['import_id']}", key)
    assert done["state"] == "completed"
    assert done["counts"] == {"created": 0, "duplicate": 1, "invalid": 1, "valid": 1}
    assert [r["outcome"] for r in done["results"]] == ["valid", "duplicate", "invalid"]
    assert [i["email"] for i in invitations(client, key)] == ["old@smallbiz.com"]
    assert drain(SEND_QUEUE) == 0


def test_same_idempotency_key_is_one_job(client: Any, key: str) -> None:
    text = csv_text([[f"i{i}@smallbiz.com", "O", "", "", "", "", "", ""] for i in range(3)])
    s1, first = upload(client, key, text, **{"Idempotency-Key": "import-1"})
    s2, again = upload(client, key, text, **{"Idempotency-Key": "import-1"})
    assert (s1, s2) == (202, 202)
    assert again["import_id"] == first["import_id"]
    s3, other = upload(client, key, text + "x@smallbiz.com,O\r\n", **{"Idempotency-Key": "import-1"})
    assert s3 == 422 and other["error"]["code"] == "idempotency_key_reused"
    assert drain(IMPORT_QUEUE) == 1
    assert len(invitations(client, key)) == 3
    _, fresh = upload(client, key, text)  # without a key the same file is a new job: every row a duplicate
    drain(IMPORT_QUEUE)
    _, done = call(client, "GET", f"/v1/imports/{fresh['import_id']}", key)
    assert done["counts"]["duplicate"] == 3 and len(invitations(client, key)) == 3


def test_results_paginate_across_chunks(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import bootstrap

    monkeypatch.setenv("IMPORT_CHUNK_ROWS", "4")
    bootstrap.reset()
    text = csv_text([[f"p{i}@smallbiz.com", "O", "", "", "", "", "", ""] for i in range(10)])
    _, job = upload(client, key, text, "?send=false")
    assert drain(IMPORT_QUEUE) == 3
    rows = [r["row"] for r in all_results(client, key, job["import_id"], limit=3)]
    assert rows == list(range(2, 12))
    status, bad = call(client, "GET", f"/v1/imports/{job['import_id']}?cursor=nonsense", key)
    assert status == 400 and "cursor" in bad["error"]["fields"]


def test_another_lenders_import_is_404(client: Any, key: str) -> None:
    _, job = upload(client, key, csv_text([["a@smallbiz.com", "O", "", "", "", "", "", ""]]))
    response = client.http.post(
        "/v1/tenants",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"name": "Other", "subdomain": "other-lender", "admin_email": "ops@other.com"}),
    )
    other_key = json.loads(response.body)["api_key"]
    status, _ = call(client, "GET", f"/v1/imports/{job['import_id']}", other_key)
    assert status == 404


def crashing_table(table: Any, where: str, allowed: int) -> Any:
    """A Table that fails like a worker dying mid-chunk: after ``allowed`` BatchWriteItem calls
    (``where="batch"``), or when the chunk's results are saved (``where="result"``)."""
    from chalicelib.adapters.dynamo.table import Table

    class Crashing(Table):
        calls = 0

        def batch_put_serialized(self, items: list[dict[str, Any]]) -> int:
            Crashing.calls += 1
            if where == "batch" and Crashing.calls > allowed:
                raise UpstreamError("injected crash")
            return super().batch_put_serialized(items)

        def put(self, item: Any) -> None:
            if where == "result" and str(item["SK"]).startswith("RESULT#"):
                raise UpstreamError("injected crash")
            super().put(item)

    return Crashing(table.name, table.client)


@pytest.mark.parametrize(
    ("where", "allowed"),
    [
        ("batch", 0),  # guards reserved, nothing else written
        ("batch", 1),  # half the history and outbox items written, no invitation
        ("result", 0),  # everything written and the sends queued, the chunk's results not saved
    ],
)
def test_crash_mid_chunk_then_redelivery_converges(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch, where: str, allowed: int
) -> None:
    """Chunk 1 is processed, the worker dies part-way through chunk 2, SQS redelivers both:
    every row ends up created once, history is not doubled and each customer gets one email."""
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamo.imports import ImportRepository
    from chalicelib.adapters.dynamo.invitations import InvitationRepository
    from chalicelib.services.imports import ChunkMessage, ImportService

    monkeypatch.setenv("IMPORT_CHUNK_ROWS", "10")
    bootstrap.reset()
    rows = [[f"r{i}@smallbiz.com", "O", f"R{i}", "", "", "", "", ""] for i in range(20)]
    _, job = upload(client, key, csv_text(rows))

    s = bootstrap.services()
    sqs = boto3.client("sqs")
    url = s.settings.import_queue_url
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 2
    by_chunk = {ChunkMessage.model_validate_json(m["Body"]).chunk: m for m in messages}
    bootstrap.imports().process_chunk(ChunkMessage.model_validate_json(by_chunk[0]["Body"]))
    table = crashing_table(s.table, where, allowed)
    crashing = ImportService(
        ImportRepository(table, InvitationRepository(table)), s.tenant_repo, s.invitations, s.queue, s.settings
    )
    with pytest.raises(UpstreamError):
        crashing.process_chunk(ChunkMessage.model_validate_json(by_chunk[1]["Body"]))
    _, midway = call(client, "GET", f"/v1/imports/{job['import_id']}", key)
    assert midway["state"] == "processing" and midway["rows_done"] == 10
    # Neither message was deleted: both come back (the first one is a redelivery of a finished chunk).
    for m in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert drain(IMPORT_QUEUE) == 2

    _, done = call(client, "GET", f"/v1/imports/{job['import_id']}", key)
    assert done["state"] == "completed"
    assert done["counts"] == {"created": 20, "duplicate": 0, "invalid": 0, "valid": 0}
    assert done["rows_done"] == 20
    listed = invitations(client, key)
    assert sorted(i["email"] for i in listed) == sorted(r[0] for r in rows)
    for inv in listed[:3]:  # the newest: rows of the chunk that crashed
        _, history = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}/history", key)
        assert [e["type"] for e in history["items"]] == ["created", "send_requested"]
    drain(SEND_QUEUE)
    drain(SEND_QUEUE)  # anything requeued by the redelivery is recognised as already sent
    recipients = Counter(e.destinations["ToAddresses"][0] for e in sent_emails())
    assert recipients == Counter(r[0] for r in rows)


def test_a_send_that_fails_in_a_batch_message_is_retried_alone_with_its_own_budget(client: Any, key: str) -> None:
    """An import queues its sends several to a message: a send of it that fails goes back to the queue on its own
    (its receives then count for it alone, so it cannot fail its siblings for good nor take them to the dead-letter
    queue), the message itself succeeds, and nobody gets a second email."""
    from chalicelib.adapters import aws
    from tests.integration.helpers import Fault, poller

    rows = [[f"b{i}@smallbiz.com", "O", f"B{i}", "", "", "", "", ""] for i in range(12)]
    upload(client, key, csv_text(rows))
    drain(IMPORT_QUEUE)
    sends = poller(SEND_QUEUE)
    with Fault(aws.client("sesv2"), "SendEmail", "TooManyRequestsException", times=1) as fault:
        first = sends.poll_once()
    assert fault.calls == 1
    assert (first.received, first.deleted, first.failed) == (2, 2, 0)  # 12 sends: messages of 10 and 2
    assert len(sent_emails()) == 11
    again = sends.poll_once()
    assert (again.received, again.deleted, again.failed) == (1, 1, 0)  # the failed send, alone
    assert sends.poll_once().received == 0
    assert Counter(e.destinations["ToAddresses"][0] for e in sent_emails()) == Counter(r[0] for r in rows)


class _EndingInvocation:
    """A Lambda context with little time left."""

    def get_remaining_time_in_millis(self) -> int:
        return 1_000


def test_sends_a_batch_has_no_time_left_for_go_back_to_the_queue_as_one_message(client: Any, key: str) -> None:
    """Near the end of the invocation a batch message starts no more sends (a send cut off by the timeout would
    come back with its claim's lease run out, and could go twice): the sends not tried go back as one message."""
    from chalicelib import bootstrap
    from chalicelib.services.delivery import SendBatch
    from tests.integration.helpers import poller

    rows = [[f"t{i}@smallbiz.com", "O", f"T{i}", "", "", "", "", ""] for i in range(3)]
    upload(client, key, csv_text(rows))
    drain(IMPORT_QUEUE)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=SEND_QUEUE)["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    batch = SendBatch.model_validate_json(message["Body"])
    service = bootstrap.delivery()
    service.register_context(_EndingInvocation())
    assert service.process_batch(batch) == {"postponed": 3}
    assert sent_emails() == []
    service.register_context(None)
    again = poller(SEND_QUEUE).poll_once()
    assert (again.received, again.deleted) == (1, 1)
    assert sorted(e.destinations["ToAddresses"][0] for e in sent_emails()) == sorted(r[0] for r in rows)


def test_export_filters_and_neutralises_formulas(client: Any, key: str) -> None:
    text = csv_text(
        [
            ["x1@smallbiz.com", "Ann", '=HYPERLINK("http://evil","click")', "+1", "", "@SUM(A1)", "", ""],
            ["x2@smallbiz.com", "Bob", "-2", "\tTab", "", "Plain Co", "", ""],
        ]
    )
    _, job = upload(client, key, text, "?send=false")
    drain(IMPORT_QUEUE)
    response = client.http.get("/v1/invitations/export", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    by_email = {r["email"]: r for r in rows}
    assert by_email["x1@smallbiz.com"]["first_name"] == '\'=HYPERLINK("http://evil","click")'
    assert by_email["x1@smallbiz.com"]["last_name"] == "'+1"
    assert by_email["x1@smallbiz.com"]["business_legal_name"] == "'@SUM(A1)"
    assert by_email["x2@smallbiz.com"]["first_name"] == "'-2"
    assert by_email["x2@smallbiz.com"]["business_legal_name"] == "Plain Co"
    filtered = client.http.get("/v1/invitations/export?owner=ann", headers={"Authorization": f"Bearer {key}"})
    assert [r["email"] for r in csv.DictReader(io.StringIO(filtered.body.decode()))] == ["x1@smallbiz.com"]
    bad = client.http.get("/v1/invitations/export?status=NOPE", headers={"Authorization": f"Bearer {key}"})
    assert bad.status_code == 400


def test_export_quotes_text_and_neutralises_what_a_semicolon_spreadsheet_splits_off(client: Any, key: str) -> None:
    status, _ = call(
        client,
        "POST",
        "/v1/invitations",
        key,
        {"email": "x3@smallbiz.com", "owner": "Ann", "business_legal_name": "Jane;=1+1", "send": False},
    )
    assert status == 201
    response = client.http.get("/v1/invitations/export", headers={"Authorization": f"Bearer {key}"})
    text = response.body.decode()
    header, row = text.splitlines()[:2]
    assert header.startswith('"invitation_id","email",')
    assert ',"Jane;\'=1+1",' in row
    # Read the way Excel in fr-CA reads it (';'): no part starts a formula.
    for line in csv.reader(io.StringIO(text), delimiter=";"):
        assert not any(cell.lstrip(" ").startswith(("=", "+", "-", "@")) for cell in line), line


def test_export_pages_through_every_invitation(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services import exports as export_service

    monkeypatch.setattr(export_service, "EXPORT_PAGE", 7)
    text = csv_text([[f"e{i}@smallbiz.com", "O", "", "", "", "", "", ""] for i in range(20)])
    upload(client, key, text, "?send=false")
    drain(IMPORT_QUEUE)
    response = client.http.get("/v1/invitations/export", headers={"Authorization": f"Bearer {key}"})
    emails = [r["email"] for r in csv.DictReader(io.StringIO(response.body.decode()))]
    assert sorted(emails) == sorted(f"e{i}@smallbiz.com" for i in range(20))


def test_a_chunk_takes_its_guards_in_a_few_requests_not_one_per_row(client: Any, key: str) -> None:
    """Issue 16: a conditional PutItem per row made the import 3.7x a bare BatchWriteItem of its invitations.
    The guards of a chunk go up to 100 per conditional transaction; the collisions are still found."""
    from chalicelib.adapters import aws as aws_clients

    status, existing = call(client, "POST", "/v1/invitations", key, {"email": "r7@smallbiz.com", "owner": "O"})
    assert status == 201
    rows = [[f"r{i}@smallbiz.com", "O", "", "", "", "", "", ""] for i in range(150)]
    _, job = upload(client, key, csv_text(rows), "?send=false")
    made: Counter[str] = Counter()

    def count(model: Any = None, **_: Any) -> None:
        made[model.name] += 1

    dynamodb = aws_clients.client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        drain(IMPORT_QUEUE)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)

    assert made["PutItem"] <= 1  # the chunk's results; no guard
    assert made["TransactWriteItems"] == 3  # 100 + 50 guards, then the 49 not taken before again
    by_row = {r["row"]: r for r in all_results(client, key, job["import_id"])}
    assert by_row[9] == {
        "row": 9,
        "outcome": "duplicate",
        "invitation_id": existing["invitation_id"],
        "field": "email",
        "reason": f"an open invitation for this email and business legal name exists: {existing['invitation_id']}",
    }
    assert Counter(r["outcome"] for r in by_row.values()) == {"created": 149, "duplicate": 1}
    assert Counter(i["email"] for i in invitations(client, key)) == {r[0]: 1 for r in rows}


def test_creates_racing_an_import_of_the_same_emails_leave_one_invitation_per_email(
    client: Any, key: str, linearizable_aws: None
) -> None:
    """Every email of the file is also created through the API, from four threads, while the chunk is processed:
    whichever wins, each email ends with one invitation, and the import names the winner of each row it lost."""
    import threading

    from chalicelib.bootstrap import services
    from chalicelib.domain.invitation import CreateInvitation
    from chalicelib.errors import DomainError

    emails = [f"race{i}@smallbiz.com" for i in range(120)]
    _, job = upload(client, key, csv_text([[e, "O", "", "", "", "", "", ""] for e in emails]), "?send=false")
    tenant = services().tenants.authenticate(f"Bearer {key}")
    start = threading.Barrier(5)
    created_by_api: dict[str, str] = {}
    unexpected: list[BaseException] = []

    def create(share: list[str]) -> None:
        start.wait()
        for email in share:
            try:
                inv = services().invitations.create(tenant, CreateInvitation(email=email, owner="API", send=False))
                created_by_api[email] = inv.invitation_id
            except DomainError:
                pass  # the import's invitation came first: a clean 409
            except BaseException as exc:
                unexpected.append(exc)

    def run_import() -> None:
        start.wait()
        try:
            drain(IMPORT_QUEUE)
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=create, args=(emails[k::4],)) for k in range(4)]
    threads.append(threading.Thread(target=run_import))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not unexpected

    listed = invitations(client, key)
    assert Counter(i["email"] for i in listed) == dict.fromkeys(emails, 1)
    owner = {i["email"]: i["invitation_id"] for i in listed}
    for email, invitation_id in created_by_api.items():
        assert owner[email] == invitation_id
    results = all_results(client, key, job["import_id"])
    assert len(results) == len(emails)
    for result, email in zip(results, emails, strict=True):
        assert result["outcome"] in ("created", "duplicate")
        assert result["invitation_id"] == owner[email]
        assert (result["outcome"] == "duplicate") == (email in created_by_api)
