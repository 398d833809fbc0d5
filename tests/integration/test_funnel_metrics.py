"""The invitation funnel's EMF metrics (issue 14, the funnel dashboard): each step counted once, where it happens.

The metrics are read as CloudWatch would: from the EMF lines the invocations print (the app's middleware flushes
them at the end of every HTTP request and queue batch). A redelivered message must not count a second time.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from chalicelib.config import IMPORT_QUEUE, PORTAL_EVENTS_QUEUE, SEND_QUEUE, SES_FEEDBACK_QUEUE
from chalicelib.observability import FUNNEL_METRICS, NAMESPACE
from tests.integration.feedback_helpers import enqueue, invite, notification, sent_invitation, sns_envelope
from tests.integration.helpers import drain
from tests.integration.test_imports import csv_text, upload
from tests.integration.test_join import confirm, confirmation_links, join, settings


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


@pytest.fixture
def metrics(capsys: pytest.CaptureFixture[str]) -> Any:
    """``metrics()`` -> the funnel counts emitted since the last call, summed over the EMF lines printed."""

    def read() -> Counter[str]:
        totals: Counter[str] = Counter()
        for line in capsys.readouterr().out.splitlines():
            if not line.startswith('{"_aws"'):
                continue
            record = json.loads(line)
            for directive in record["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == NAMESPACE
                for metric in directive["Metrics"]:
                    value = record[metric["Name"]]
                    totals[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
        return Counter({name: n for name, n in totals.items() if name in dict(FUNNEL_METRICS)})

    read()  # what the fixtures' own requests emitted (the lender's sign-up)
    return read


def test_created_counts_api_import_and_walk_in_invitations(client: Any, key: str, metrics: Any) -> None:
    invite(client, key, send=False)
    assert metrics() == {"InvitationCreated": 1}

    rows = [["a@one.com", "O", "One Ltd"], ["b@two.com", "O", "Two Ltd"]]
    status, job = upload(client, key, csv_text(rows, "email,owner,business_legal_name"), "?send=false")
    assert status == 202, job
    drain(IMPORT_QUEUE)
    assert metrics() == {"InvitationCreated": 2}

    settings(client, key, require_invitation=False, require_email_confirmation=False)
    assert join(client, email="walk-in@newbiz.com", sub="walk-in").status_code == 303
    assert metrics() == {"InvitationCreated": 1, "InvitationJoined": 1}


def test_sent_counts_each_message_once(client: Any, key: str, metrics: Any) -> None:
    invite(client, key, phone="+15145550123", channel="both")
    metrics()
    drain(SEND_QUEUE)
    assert metrics() == {"EmailSent": 1, "SmsSent": 1}


def test_delivered_counts_once_per_notification(client: Any, key: str, metrics: Any) -> None:
    inv, message_id = sent_invitation(client, key)
    metrics()
    body = sns_envelope(notification("ses_delivery_notification.json", message_id, inv["email"]))
    enqueue(SES_FEEDBACK_QUEUE, [body, body])  # SNS delivers at least once
    drain(SES_FEEDBACK_QUEUE)
    assert metrics() == {"EmailDelivered": 1}


def test_bounced_counts_a_permanent_bounce_once(client: Any, key: str, metrics: Any) -> None:
    inv, message_id = sent_invitation(client, key)
    other, other_id = sent_invitation(client, key)
    metrics()
    hard = sns_envelope(notification("ses_bounce_notification.json", message_id, inv["email"], feedback_id="fb-1"))
    soft = sns_envelope(
        notification(
            "ses_bounce_notification.json", other_id, other["email"], feedback_id="fb-2", bounce_type="Transient"
        )
    )
    enqueue(SES_FEEDBACK_QUEUE, [hard, hard, soft])
    drain(SES_FEEDBACK_QUEUE)
    assert metrics()["EmailBounced"] == 1  # a transient bounce is retried, not counted


def test_opened_counts_the_first_visit(client: Any, key: str, metrics: Any) -> None:
    from chalicelib import bootstrap

    inv = invite(client, key, send=False)
    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    token = s.invitations.portal_link(tenant, inv["invitation_id"]).url.rsplit("/", 1)[-1]
    metrics()
    assert client.http.get(f"/portal/{token}").status_code == 200
    assert client.http.get(f"/portal/{token}").status_code == 200
    assert metrics() == {"InvitationOpened": 1}


def test_joined_counts_the_confirmation_once(client: Any, key: str, metrics: Any) -> None:
    invite(client, key, email="jane@smallbiz.com", send=False)
    assert join(client).status_code == 303  # the lender requires the email to be confirmed
    drain(SEND_QUEUE)
    metrics()
    [link] = confirmation_links()
    assert confirm(client, link).status_code == 303
    assert confirm(client, link).status_code == 410  # used once
    assert metrics() == {"InvitationJoined": 1}


def test_completed_counts_once_per_invitation(client: Any, key: str, metrics: Any) -> None:
    inv = invite(client, key, send=False)
    body = {
        "type": "portal_completed",
        "event_id": f"pe-{inv['invitation_id']}",
        "tenant_id": inv["tenant_id"],
        "invitation_id": inv["invitation_id"],
        "at": "2026-01-05T10:00:00Z",
    }
    metrics()
    enqueue(PORTAL_EVENTS_QUEUE, [json.dumps(body)] * 2 + [json.dumps({**body, "event_id": "pe-another"})])
    drain(PORTAL_EVENTS_QUEUE)
    assert metrics() == {"InvitationCompleted": 1}
