"""Shared pieces of the fuzz tests: bounded Hypothesis settings and what a rejected input may leave."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded so the whole fuzz set stays in seconds; FUZZ_EXAMPLES=500 for a long local run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces, nothing flakes
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Counters, not data: a rejected request may still count against its sender's rate limit.
IGNORED_PREFIXES = ("RATE#",)

FIELD_NAMES = [
    "type",
    "tenant_id",
    "invitation_id",
    "send_id",
    "import_id",
    "event_id",
    "eventType",
    "event",
    "Type",
    "Message",
    "MessageId",
    "notificationType",
    "mail",
    "bounce",
    "webhook_type",
    "webhook_code",
    "link_session_id",
    "status",
    "attempt",
    "slot",
    "row",
    "email",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["send", "inv_01", "ten_01", "snd_01", "Notification", "Bounce", "Complaint", "", "null"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), json_values, max_size=8)


def sns_wrapped(inner: Any) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(inner)})


# Message bodies: junk text, JSON of any shape, plausible objects, and SNS envelopes around them.
bodies = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
    json_objects.map(json.dumps),
    json_objects.map(sns_wrapped),
)


def stored(table_name: str) -> set[tuple[str, str]]:
    """Every item's key (a scan: fine for the few items a test creates)."""
    import boto3

    client = boto3.client("dynamodb")
    keys: set[tuple[str, str]] = set()
    kwargs: dict[str, Any] = {"TableName": table_name, "ProjectionExpression": "PK, SK"}
    while True:
        page = client.scan(**kwargs)
        keys |= {(i["PK"]["S"], i["SK"]["S"]) for i in page["Items"] if not i["PK"]["S"].startswith(IGNORED_PREFIXES)}
        if "LastEvaluatedKey" not in page:
            return keys
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def queued(env: dict[str, str]) -> int:
    """Messages waiting in every queue of the app (visible or in flight)."""
    import boto3

    sqs = boto3.client("sqs")
    total = 0
    for name, url in env.items():
        if name.endswith("_QUEUE_URL") and url:
            attrs = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            total += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return total
