"""What ``make run`` keeps between runs (devstack/state.py): a snapshot of the embedded AWS's data,
put back into freshly created resources."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack import state
from devstack.embedded_aws import BACKENDS, install
from devstack.resources import create_resources
from devstack.state import StateKeeper

REGION = "us-east-1"


@pytest.fixture
def fresh_aws() -> Iterator[Any]:
    """Starts an empty embedded AWS with infra/'s resources; call it again for the 'next run'."""
    install()
    mocks: list[Any] = []

    def start() -> dict[str, str]:
        for mock in mocks:
            mock.stop()
        mocks.clear()
        mock = mock_aws()
        mock.start()
        mocks.append(mock)
        return create_resources(boto3.session.Session(), REGION)

    yield start
    for mock in mocks:
        mock.stop()


def test_a_snapshot_brings_back_items_messages_outbox_and_documents(fresh_aws: Any, tmp_path: Path) -> None:
    env = fresh_aws()
    dynamodb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
    dynamodb.put_item(TableName=env["TABLE_NAME"], Item={"PK": {"S": "TENANT#t1"}, "SK": {"S": "TENANT"}})
    sqs.send_message(QueueUrl=env["IMPORT_QUEUE_URL"], MessageBody="chunk 0")
    sqs.send_message(QueueUrl=env["IMPORT_QUEUE_URL"], MessageBody="chunk 1")
    in_flight = sqs.receive_message(QueueUrl=env["IMPORT_QUEUE_URL"], MaxNumberOfMessages=1, VisibilityTimeout=600)
    boto3.client("sesv2").send_email(
        FromEmailAddress=env["SENDER_EMAIL"],
        Destination={"ToAddresses": ["jane@smallbiz.example"]},
        Content={"Simple": {"Subject": {"Data": "Join"}, "Body": {"Text": {"Data": "Hello"}}}},
    )
    boto3.client("sns").publish(PhoneNumber="+15145550199", Message="Join at ...")
    s3.put_object(Bucket=env["DOCUMENTS_BUCKET"], Key="t1/doc.pdf", Body=b"%PDF-1.7", ContentType="application/pdf")
    keeper = StateKeeper(tmp_path, REGION)
    assert keeper.save(force=True)

    env = fresh_aws()  # the next run: empty resources
    assert keeper.restore() == {"items": 1, "messages": 2, "emails": 1, "objects": 1}

    item = boto3.client("dynamodb").get_item(
        TableName=env["TABLE_NAME"], Key={"PK": {"S": "TENANT#t1"}, "SK": {"S": "TENANT"}}
    )
    assert "Item" in item
    # The message in flight when the stack stopped is delivered again, with the one still queued.
    bodies = {
        m["Body"]
        for m in boto3.client("sqs").receive_message(QueueUrl=env["IMPORT_QUEUE_URL"], MaxNumberOfMessages=10)[
            "Messages"
        ]
    }
    assert bodies == {"chunk 0", "chunk 1"}
    assert in_flight["Messages"][0]["Body"] in bodies
    document = boto3.client("s3").get_object(Bucket=env["DOCUMENTS_BUCKET"], Key="t1/doc.pdf")
    assert document["Body"].read() == b"%PDF-1.7"
    assert document["ContentType"] == "application/pdf"
    from moto.backends import get_backend

    assert len(get_backend("ses")["123456789012"][REGION].sent_messages) == 1
    assert list(get_backend("sns")["123456789012"][REGION].sms_messages.values()) == [("+15145550199", "Join at ...")]


def test_nothing_is_saved_when_nothing_was_written(fresh_aws: Any, tmp_path: Path) -> None:
    fresh_aws()
    keeper = StateKeeper(tmp_path, REGION)

    # In-process moto does not pass through the request counter: the first save always writes.
    assert keeper.save()
    assert not keeper.save()


def test_fresh_drops_the_snapshot_and_an_unreadable_one_is_set_aside(fresh_aws: Any, tmp_path: Path) -> None:
    fresh_aws()
    keeper = StateKeeper(tmp_path, REGION)
    keeper.save(force=True)

    keeper.clear()
    assert keeper.restore() is None

    keeper.path.write_bytes(b"not a snapshot")
    assert keeper.restore() is None
    assert not keeper.path.exists()
    assert keeper.path.with_suffix(".unreadable").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the snapshot is taken in-process where fork() is missing")
def test_the_snapshot_is_written_by_a_forked_copy_while_requests_go_on(
    fresh_aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request lock is held only for the fork (issue 16: pickling 40,000 items under it made an API
    answer wait 4.4 s): the copy pickles what was there at the fork while the stack serves requests."""
    env = fresh_aws()
    dynamodb = boto3.client("dynamodb")
    dynamodb.put_item(TableName=env["TABLE_NAME"], Item={"PK": {"S": "TENANT#before"}, "SK": {"S": "TENANT"}})
    started_r, started_w = os.pipe()
    go_r, go_w = os.pipe()
    real_dumps = state.dumps

    def dumps_when_told(data: dict[str, Any]) -> bytes:  # runs in the forked copy
        os.write(started_w, str(os.getpid()).encode().ljust(16))
        os.read(go_r, 1)
        return real_dumps(data)

    monkeypatch.setattr(state, "dumps", dumps_when_told)
    keeper = StateKeeper(tmp_path, REGION)
    saved: list[bool] = []
    saver = threading.Thread(target=lambda: saved.append(keeper.save(force=True)))
    saver.start()
    try:
        pickled_by = int(os.read(started_r, 16))  # the copy is pickling now
        # Not in this process: pickling 40,000 items here held the GIL away from the API for seconds.
        assert pickled_by != os.getpid()
        assert BACKENDS._lock.acquire(timeout=30), "the request lock stayed held while the snapshot was made"
        BACKENDS._lock.release()
        dynamodb.put_item(TableName=env["TABLE_NAME"], Item={"PK": {"S": "TENANT#after"}, "SK": {"S": "TENANT"}})
    finally:
        os.write(go_w, b"1")
        saver.join(60)
    assert saved == [True]

    env = fresh_aws()
    assert keeper.restore() == {"items": 1, "messages": 0, "emails": 0, "objects": 0}
    found = boto3.client("dynamodb").scan(TableName=env["TABLE_NAME"])["Items"]
    assert [i["PK"]["S"] for i in found] == ["TENANT#before"]  # a consistent cut: as at the fork
