"""The embedded AWS of ``make run`` (devstack/embedded_aws.py): bounded memory under a day's traffic,
transactions that roll back exactly what they wrote, and moto's server safe under concurrent requests.

The memory checks count bytes still allocated (tracemalloc), not seconds.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack.embedded_aws import BackendLock, EmbeddedAws, LockedApp, install
from tests.stack import free_port

TABLE = "t"
ROWS = 2_000


def create_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def row(pk: str, sk: str, **attrs: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    """moto in-process, corrected as the local stack corrects it, with a table of ROWS rows."""
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        for start in range(0, ROWS, 25):
            requests = [
                {"PutRequest": {"Item": row("TENANT#a", f"INV#{i:05d}", email=f"c{i}@x.example", note="x" * 200)}}
                for i in range(start, start + 25)
            ]
            client.batch_write_item(RequestItems={TABLE: requests})
        yield client


def retained_bytes(work: Any) -> tuple[int, int]:
    """(bytes still allocated after ``work`` and a full collection, peak bytes during it)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, peak - before


def create_invitation(dynamodb: Any, i: int) -> None:
    """The shape of the app's create: the invitation, its history entry and its email guard."""
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": row("TENANT#a", f"NEW#{i:05d}", email=f"n{i}@x.example"),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": {"TableName": TABLE, "Item": row("TENANT#a", f"NEW#{i:05d}#H#1", type="created")}},
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": row("TENANT#a", f"GUARD#n{i}@x.example"),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
    )


def test_a_transaction_copies_the_items_it_writes_not_the_table(dynamodb: Any) -> None:
    create_invitation(dynamodb, 1)  # warm-up: parsers, caches and the like are allocated once
    retained, peak = retained_bytes(lambda: create_invitation(dynamodb, 2))

    # The table holds ~1 MB of rows: a copy of it would show here several times over.
    assert peak < 300_000, f"a 3-item transaction allocated {peak:,} bytes on a {ROWS}-row table"
    assert retained < 100_000


def test_queries_and_transactions_leave_nothing_behind(dynamodb: Any) -> None:
    created = iter(range(100, 200))

    def traffic() -> None:
        for _ in range(10):
            create_invitation(dynamodb, next(created))
            dynamodb.query(
                TableName=TABLE,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
                ExpressionAttributeValues={":pk": {"S": "TENANT#a"}, ":sk": {"S": "INV#"}},
                Limit=50,
            )

    traffic()  # warm-up: parsers, caches and the like are allocated once
    retained, _ = retained_bytes(traffic)

    # 30 new rows are kept (~30 KB); the copies moto makes of query results and rows must not be.
    assert retained < 400_000, f"10 creates and 10 queries left {retained:,} bytes allocated"


def test_a_cancelled_transaction_restores_every_item_it_touched(dynamodb: Any) -> None:
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": row("TENANT#a", "NEW#1", email="n1@x.example")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "TENANT#a"}, "SK": {"S": "INV#00001"}},
                        "UpdateExpression": "SET email = :e",
                        "ExpressionAttributeValues": {":e": {"S": "changed@x.example"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": {"PK": {"S": "TENANT#a"}, "SK": {"S": "INV#00002"}}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "TENANT#a"}, "SK": {"S": "INV#00003"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )

    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]

    def get(sk: str) -> dict[str, Any] | None:
        key = {"PK": {"S": "TENANT#a"}, "SK": {"S": sk}}
        return dynamodb.get_item(TableName=TABLE, Key=key).get("Item")

    assert get("NEW#1") is None
    assert get("INV#00001") == row("TENANT#a", "INV#00001", email="c1@x.example", note="x" * 200)
    assert get("INV#00002") == row("TENANT#a", "INV#00002", email="c2@x.example", note="x" * 200)


def test_a_transaction_that_succeeds_writes_every_item(dynamodb: Any) -> None:
    create_invitation(dynamodb, 300)

    with pytest.raises(ClientError) as duplicate:
        create_invitation(dynamodb, 300)

    assert duplicate.value.response["Error"]["Code"] == "TransactionCanceledException"
    got = dynamodb.get_item(TableName=TABLE, Key={"PK": {"S": "TENANT#a"}, "SK": {"S": "NEW#00300#H#1"}})
    assert got["Item"]["type"] == {"S": "created"}


@pytest.fixture
def server() -> Iterator[str]:
    """The embedded AWS over loopback, as the local stack runs it (outside mock_aws, which would
    answer the test's own clients in-process); its state is reset afterwards."""
    aws = EmbeddedAws("127.0.0.1", free_port())
    aws.start()
    url = f"http://127.0.0.1:{aws.port}"
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        aws.stop()


def remote(url: str, service: str) -> Any:
    """A client that reports a 5xx at once (botocore would retry it out of sight)."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


class OverlapProbe:
    """A WSGI app that records how many requests it is serving at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self._count = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self._count:
            self.inside += 1
            self.most = max(self.most, self.inside)
        threading.Event().wait(0.02)  # long enough for the other threads to arrive
        with self._count:
            self.inside -= 1
        start_response("200 OK", [])
        return [b"ok"]


def test_moto_serves_one_request_at_a_time() -> None:
    """moto's backends are plain dicts and lists: a request iterating one while another changes it
    fails with "dictionary changed size during iteration", so requests are serialised."""
    probe = OverlapProbe()
    app = LockedApp(probe, BackendLock())
    threads = [threading.Thread(target=app, args=({}, lambda *_: None)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert probe.most == 1


def test_a_long_poll_lets_the_message_it_waits_for_in(server: str) -> None:
    sqs = remote(server, "sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    received: list[dict[str, Any]] = []
    waiting = threading.Event()

    def receive() -> None:
        waiting.set()
        received.extend(remote(server, "sqs").receive_message(QueueUrl=url, WaitTimeSeconds=3).get("Messages", []))

    receiver = threading.Thread(target=receive)
    receiver.start()
    waiting.wait()
    threading.Event().wait(0.3)  # let the receive reach moto and start waiting
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    receiver.join()

    # Had the waiting receive kept the lock, the send would have waited for it to end empty-handed.
    assert [m["Body"] for m in received] == ["hello"]


def test_queries_answer_as_dynamodb_does_forward_backward_paged_and_by_index() -> None:
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="q",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI1PK", "GSI1SK")],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GSI1",
                    "KeySchema": [
                        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for tenant in ("a", "b", "c"):
            for i in (5, 1, 9, 3, 7, 2):
                item = row(f"TENANT#{tenant}", f"INV#{i}", GSI1PK=f"STATUS#{i % 2}", GSI1SK=f"{10 - i:02d}#{tenant}")
                client.put_item(TableName="q", Item=item)
        # Rows outside the index, or whose index key has the same text in another attribute or another type.
        client.put_item(TableName="q", Item=row("TENANT#d", "INV#1", note="STATUS#1"))
        client.put_item(TableName="q", Item={**row("TENANT#d", "INV#2"), "GSI1PK": {"SS": ["STATUS#1"]}})

        def sks(**query: Any) -> list[str]:
            pages, start = [], None
            while True:
                page = client.query(TableName="q", Limit=4, **query, **({"ExclusiveStartKey": start} if start else {}))
                pages += [f"{i['PK']['S']}/{i['SK']['S']}" for i in page["Items"]]
                start = page.get("LastEvaluatedKey")
                if not start:
                    return pages

        by_tenant = {"KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": "TENANT#b"}}}
        assert sks(**by_tenant) == [f"TENANT#b/INV#{i}" for i in (1, 2, 3, 5, 7, 9)]
        assert sks(**by_tenant, ScanIndexForward=False) == [f"TENANT#b/INV#{i}" for i in (9, 7, 5, 3, 2, 1)]
        assert sks(KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": "TENANT#z"}}) == []
        odd = sks(
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :s",
            ExpressionAttributeValues={":s": {"S": "STATUS#1"}},
        )
        # Ordered by the index's sort key (10 - i, then tenant): i = 9, 7, 5, 3, 1, each for a, b, c.
        assert odd == [f"TENANT#{t}/INV#{i}" for i in (9, 7, 5, 3, 1) for t in "abc"]


def test_sort_key_conditions_answer_as_dynamodb_does_forward_backward_and_paged() -> None:
    """A table query with begins_with or BETWEEN on the sort key reads only that range of the partition
    (devstack/embedded_aws.py): the answers, in both directions and page by page, are DynamoDB's."""
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="r",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")],
            BillingMode="PAY_PER_REQUEST",
        )
        sort_keys = ["EMAIL#a", "INV#1", "INV#3", "INV#5", "INV#7", "ST", "STAFF", "STAFF#2", "STAFF#1", "STAFFX", "SU"]
        for sk in sort_keys:
            client.put_item(TableName="r", Item=row("TENANT#a", sk, kind=sk[:3]))
            client.put_item(TableName="r", Item=row("TENANT#b", sk, kind=sk[:3]))

        def sks(condition: str, values: dict[str, str], **query: Any) -> list[str]:
            pages, start = [], None
            while True:
                page = client.query(
                    TableName="r",
                    Limit=2,
                    KeyConditionExpression=f"PK = :pk AND {condition}",
                    ExpressionAttributeValues={k: {"S": v} for k, v in {":pk": "TENANT#a", **values}.items()},
                    **query,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                pages += [i["SK"]["S"] for i in page["Items"]]
                assert all(i["PK"]["S"] == "TENANT#a" for i in page["Items"])
                start = page.get("LastEvaluatedKey")
                if not start:
                    return pages

        staff = {":p": "STAFF#"}
        assert sks("begins_with(SK, :p)", staff) == ["STAFF#1", "STAFF#2"]
        assert sks("begins_with(SK, :p)", staff, ScanIndexForward=False) == ["STAFF#2", "STAFF#1"]
        assert sks("begins_with(SK, :p)", {":p": "S"}) == ["ST", "STAFF", "STAFF#1", "STAFF#2", "STAFFX", "SU"]
        assert sks("begins_with(SK, :p)", {":p": "NONE#"}) == []
        between = {":lo": "INV#3", ":hi": "ST"}
        assert sks("SK BETWEEN :lo AND :hi", between) == ["INV#3", "INV#5", "INV#7", "ST"]
        assert sks("SK BETWEEN :lo AND :hi", between, ScanIndexForward=False) == ["ST", "INV#7", "INV#5", "INV#3"]
        assert sks("SK > :lo", {":lo": "STAFF#2"}) == ["STAFFX", "SU"]  # other conditions: moto alone, as before
        filtered = sks(
            "begins_with(SK, :p)", {":p": "INV#", ":k": "INV"}, FilterExpression="kind = :k", ScanIndexForward=False
        )
        assert filtered == ["INV#7", "INV#5", "INV#3", "INV#1"]


def test_item_reads_answer_exactly_what_motos_serializer_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item reads skip moto's serializer (devstack/embedded_aws.py): every answer, compared with the one moto's
    serializer writes for the same result, over every attribute type, paged, batched, projected and empty."""
    import json

    from moto.dynamodb.responses import DynamoResult

    install()
    direct = DynamoResult.execute_result
    compared: list[str] = []

    def both(self: Any, context: Any) -> Any:
        ours = direct(self, context)
        theirs = direct.moto_execute_result(self, context)  # type: ignore[attr-defined]
        assert ours[0] == theirs[0]
        assert ours[1]["Content-Type"] == theirs[1]["Content-Type"]
        assert json.loads(ours[2]) == json.loads(theirs[2]), context.operation_model.name
        compared.append(context.operation_model.name)
        return ours

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        every_type = {
            "n": {"N": "1.50"},
            "b": {"B": b"\x00\xff"},
            "flag": {"BOOL": False},
            "nothing": {"NULL": True},
            "m": {"M": {"x": {"L": [{"S": "y"}, {"N": "-2"}, {"M": {}}, {"B": b"z"}]}}},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2.5"]},
            "bs": {"BS": [b"q", b"r"]},
            "empty": {"S": ""},
        }
        for i in range(5):
            client.put_item(
                TableName=TABLE, Item={**row("TENANT#a", f"INV#{i}", email=f"c{i}@x.example"), **every_type}
            )
        key = {"PK": {"S": "TENANT#a"}, "SK": {"S": "INV#1"}}
        client.get_item(TableName=TABLE, Key=key)
        client.get_item(TableName=TABLE, Key={"PK": {"S": "TENANT#a"}, "SK": {"S": "none"}})
        client.get_item(TableName=TABLE, Key=key, ProjectionExpression="b, m.x")
        by_tenant = {"KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": "TENANT#a"}}}
        page = client.query(TableName=TABLE, Limit=2, **by_tenant)
        client.query(TableName=TABLE, Limit=2, ExclusiveStartKey=page["LastEvaluatedKey"], **by_tenant)
        client.query(TableName=TABLE, Select="COUNT", **by_tenant)
        client.query(TableName=TABLE, ReturnConsumedCapacity="TOTAL", **by_tenant)
        client.scan(TableName=TABLE, Limit=3)
        client.batch_get_item(RequestItems={TABLE: {"Keys": [key, {"PK": {"S": "TENANT#a"}, "SK": {"S": "none"}}]}})
        client.put_item(TableName=TABLE, Item=row("TENANT#a", "INV#9"))  # moto's own serializer: still equal
    assert {"GetItem", "Query", "Scan", "BatchGetItem", "PutItem"} <= set(compared)
