"""Financial data after a bank link: the state machine's data step on moto, the lender's reads, removal.

The waterfall is the real infra/waterfall.asl.json executing on moto; the partner is a fake with the
FinancialDataSource interface (the real fetchers are tested against the sandbox in
tests/unit/test_financial_fetch.py and end to end in tests/e2e/test_portal_flow.py).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.config import LINK_REQUEST_QUEUE
from chalicelib.domain.providers import Provider
from chalicelib.domain.waterfall import document_prefix
from tests.conftest import json_headers
from tests.integration.helpers import call
from tests.integration.test_waterfall import (  # noqa: F401  (fixtures)
    World,
    finished,
    history_types,
    invitation,
    key,
    open_slot,
    start,
    webhook,
    world,
)


def linked_with_data(client: Any, key: str, provider: str = "plaid") -> str:  # noqa: F811
    inv_id, token = invitation(client, key)
    start(client, token)
    session = open_slot(client, key, inv_id, provider)
    status, answer = webhook(client, provider, session, credential="public-sandbox-1")
    assert (status, answer["outcome"]) == (200, "linked")
    final = finished(client, key, inv_id)
    assert final["state"] == "linked"
    return inv_id


def objects(inv_id: str, tenant_id: str) -> list[str]:
    s3 = boto3.client("s3")
    bucket = bootstrap.services().settings.documents_bucket
    listing = s3.list_object_versions(Bucket=bucket, Prefix=document_prefix(tenant_id, inv_id))
    return [v["Key"] for v in listing.get("Versions", [])]


def test_data_step_stores_accounts_summary_and_transactions(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
    lender: dict[str, Any],
) -> None:
    inv_id = linked_with_data(client, key)
    plaid = world.providers[Provider("plaid")]
    assert plaid.connects == ["public-sandbox-1"]

    status, data = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data", key)
    assert status == 200, data
    assert data["status"] == "ready" and data["provider"] == "plaid"
    assert data["institution"] == "First Platypus Bank"
    (account,) = data["accounts"]
    assert (account["mask"], account["current_balance"], account["available_balance"]) == ("6789", "500.00", "450.00")
    assert data["transaction_count"] == 4
    summary = data["summary"]
    # The hand-worked figures of fixture_data: lowest 35.00 before the payroll, never negative, one NSF fee.
    assert summary["lowest_balance"] == "35.00"
    assert summary["days_negative"] == 0
    assert summary["nsf_count"] == 1
    assert [d["amount"] for d in summary["largest_deposits"]] == ["2000.00"]
    (acct,) = summary["accounts"]
    assert (acct["inflows"], acct["outflows"], acct["transactions"]) == ("2000.00", "1535.00", 3)

    # Newest first, paged, filtered.
    status, page = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data/transactions?limit=3", key)
    assert status == 200, page
    assert [t["transaction_id"] for t in page["items"]] == ["t4", "t3", "t2"]
    status, rest = call(
        client, "GET", f"/v1/invitations/{inv_id}/financial-data/transactions?limit=3&cursor={page['next_cursor']}", key
    )
    assert [t["transaction_id"] for t in rest["items"]] == ["t1"] and rest["next_cursor"] is None
    since = page["items"][1]["date"]
    _, recent = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data/transactions?since={since}", key)
    assert [t["transaction_id"] for t in recent["items"]] == ["t4", "t3"]
    status, bad = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data/transactions?limit=0", key)
    assert status == 400 and "limit" in bad["error"]["fields"]

    # CSV: every transaction, the formula-like description neutralised.
    response = client.http.get(
        f"/v1/invitations/{inv_id}/financial-data.csv", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows[0][:4] == ["date", "account_id", "account_name", "amount"]
    assert len(rows) == 5
    assert "'=RENT+1" in [r[5] for r in rows]

    # Raw answers and normalised data under the invitation's prefix; history and notification once.
    tenant_id = lender["tenant"]["tenant_id"]
    keys = objects(inv_id, tenant_id)
    assert any(k.endswith("/raw/accounts.json") for k in keys) and any(k.endswith("/normalised.json") for k in keys)
    assert history_types(client, key, inv_id).count("financial_data_ready") == 1
    _, notes = call(client, "GET", "/v1/notifications?type=financial_data_ready", key)
    assert [(n["invitation_id"], n["data"]["transactions"]) for n in notes["items"]] == [(inv_id, 4)]


def test_come_back_later_is_retried_by_the_state_machine(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    world.providers[Provider("plaid")].not_ready = 2
    inv_id = linked_with_data(client, key)
    assert world.providers[Provider("plaid")].fetches == 3
    assert world.providers[Provider("plaid")].connects == ["public-sandbox-1"]  # the token is exchanged once
    _, data = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data", key)
    assert data["status"] == "ready"
    # The retries are the state machine's (Retry on the named error), visible in the execution's history.
    sfn = boto3.client("stepfunctions")
    arn = bootstrap.services().settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{inv_id}-1"
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    failures = [e for e in events if e["type"] == "TaskFailed"]
    # moto reuses a task's token across retries and may log one failure more than it delivered; AWS gives a
    # new token per retry. Either way, the failures are the named error and the last try succeeded.
    assert {e["taskFailedEventDetails"]["error"] for e in failures} == {"FinancialData.NotReady"}
    assert len(failures) >= 2
    assert [e["type"] for e in events if e["type"] in ("TaskFailed", "TaskSucceeded")][-1] == "TaskSucceeded"


def test_a_redelivered_data_step_writes_nothing_twice(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
    lender: dict[str, Any],
) -> None:
    inv_id = linked_with_data(client, key)
    tenant_id = lender["tenant"]["tenant_id"]
    before = sorted(objects(inv_id, tenant_id))
    message = {
        "type": "financial_data",
        "task_token": "already-answered-token",
        "tenant_id": tenant_id,
        "invitation_id": inv_id,
        "attempt": 1,
        "provider": "plaid",
    }
    event = client.events.generate_sqs_event(queue_name=LINK_REQUEST_QUEUE, message_bodies=[json.dumps(message)])
    response = client.lambda_.invoke("link_request_worker", event)
    assert response.payload == {"batchItemFailures": []}
    assert sorted(objects(inv_id, tenant_id)) == before  # no new object version
    assert world.providers[Provider("plaid")].fetches == 1
    assert history_types(client, key, inv_id).count("financial_data_ready") == 1
    _, notes = call(client, "GET", "/v1/notifications?type=financial_data_ready", key)
    assert len(notes["items"]) == 1


def test_a_provider_that_never_gives_the_data_is_reported(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    world.providers[Provider("plaid")].refuse_data = True
    inv_id = linked_with_data(client, key)
    _, data = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data", key)
    assert data["status"] == "failed" and data["reason"]
    assert history_types(client, key, inv_id).count("financial_data_failed") == 1
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert inv["portal_status"] == "bank_linked"  # the link itself stands
    status, page = call(client, "GET", f"/v1/invitations/{inv_id}/financial-data/transactions", key)
    assert (status, page["items"]) == (200, [])


def test_disconnect_revokes_the_provider_and_leaves_nothing(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
    lender: dict[str, Any],
) -> None:
    inv_id = linked_with_data(client, key)
    tenant_id = lender["tenant"]["tenant_id"]
    assert objects(inv_id, tenant_id)
    # Only a customer who joined can be disconnected; an invitation deletion removes the same data.
    status, result = call(client, "DELETE", f"/v1/invitations/{inv_id}", key)
    if status == 409:  # the customer counts as joined: use the customer route
        status, result = call(client, "POST", f"/v1/customers/{inv_id}/disconnect", key)
    assert status in (200, 204), result
    assert world.providers[Provider("plaid")].revoked == ["access-public-sandbox-1"]
    assert objects(inv_id, tenant_id) == []
    table = bootstrap.services().table
    from chalicelib.adapters.dynamo import keys as dkeys

    items, _ = table.query(dkeys.invitation_pk(tenant_id, inv_id), sk_prefix=dkeys.FINANCIAL_PREFIX, consistent=True)
    assert items == []


def test_a_failed_revoke_is_reported_and_retried(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    inv_id = linked_with_data(client, key)
    plaid = world.providers[Provider("plaid")]
    plaid.refuse_revoke = True
    status, result = call(client, "POST", f"/v1/customers/{inv_id}/disconnect", key)
    assert status == 200, result
    assert (result["connections_revoked"], result["revoke_failed"]) == (0, ["plaid"])
    # Deleting the invitation now would lose the only handle on the provider's access: refused until revoked.
    status, body = call(client, "DELETE", f"/v1/invitations/{inv_id}", key)
    assert status in (503, 409), body
    plaid.refuse_revoke = False
    status, result = call(client, "POST", f"/v1/customers/{inv_id}/disconnect", key)
    assert (result["connections_revoked"], result["revoke_failed"]) == (1, [])
    assert plaid.revoked == ["access-public-sandbox-1"]


def test_another_lender_cannot_read_the_data(
    client: Any,
    key: str,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    inv_id = linked_with_data(client, key)
    response = client.http.post(
        "/v1/tenants",
        headers=json_headers(),
        body=json.dumps({"name": "Other Lender", "subdomain": "other-lender", "admin_email": "a@other.example"}),
    )
    other = json.loads(response.body)["api_key"]
    for path in ("/financial-data", "/financial-data/transactions", "/financial-data.csv"):
        status, body = call(client, "GET", f"/v1/invitations/{inv_id}{path}", other)
        assert status == 404, (path, body)


@pytest.mark.parametrize("days", [0, 731])
def test_history_days_setting_is_bounded(client: Any, key: str, days: int) -> None:  # noqa: F811
    status, body = call(client, "PATCH", "/v1/tenant/settings", key, {"financial_history_days": days})
    assert status == 400 and "financial_history_days" in body["error"]["fields"]
