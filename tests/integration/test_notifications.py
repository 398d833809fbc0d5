"""GET /v1/notifications (unread first, filter, unread_count, pages) and POST .../read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import bootstrap
from tests.conftest import json_headers
from tests.integration.helpers import call


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def raise_some(tenant_id: str) -> list[str]:
    service = bootstrap.notifications()
    kinds = ["completion", "bounce", "complaint", "opt_out", "waterfall_exhausted"]
    return [
        service.notify(tenant_id, kind, f"inv_{i}", {"n": i}, key=f"test:{i}").notification_id
        for i, kind in enumerate(kinds)
    ]


def test_unread_first_then_read_newest_first_with_count(client: Any, key: str, lender: dict[str, Any]) -> None:
    ids = raise_some(lender["tenant"]["tenant_id"])
    status, page = call(client, "GET", "/v1/notifications", key)
    assert status == 200
    assert page["unread_count"] == 5
    assert [n["notification_id"] for n in page["items"]] == ids[::-1]

    status, read = call(client, "POST", f"/v1/notifications/{ids[-1]}/read", key)
    assert status == 200 and read["read"] is True and read["read_at"]
    status, again = call(client, "POST", f"/v1/notifications/{ids[-1]}/read", key)  # idempotent
    assert status == 200 and again["read_at"] == read["read_at"]

    _, page = call(client, "GET", "/v1/notifications", key)
    assert page["unread_count"] == 4
    assert [n["notification_id"] for n in page["items"]] == [*ids[-2::-1], ids[-1]]
    assert [n["read"] for n in page["items"]] == [False] * 4 + [True]


def test_filter_by_type_and_pages(client: Any, key: str, lender: dict[str, Any]) -> None:
    ids = raise_some(lender["tenant"]["tenant_id"])
    _, page = call(client, "GET", "/v1/notifications?type=bounce", key)
    assert [n["type"] for n in page["items"]] == ["bounce"]
    assert page["unread_count"] == 5  # the icon counts everything

    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/notifications?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = call(client, "GET", path, key)
        assert status == 200, page
        seen += [n["notification_id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]

    status, bad = call(client, "GET", "/v1/notifications?type=parade", key)
    assert status == 400 and "type" in bad["error"]["fields"]


def test_the_same_key_raises_one_notification(client: Any, key: str, lender: dict[str, Any]) -> None:
    service = bootstrap.notifications()
    tenant_id = lender["tenant"]["tenant_id"]
    first = service.notify(tenant_id, "waterfall_exhausted", "inv_1", {"providers": ["plaid"]}, key="exec-1")
    second = service.notify(tenant_id, "waterfall_exhausted", "inv_1", {"providers": ["plaid"]}, key="exec-1")
    assert first.notification_id == second.notification_id
    _, page = call(client, "GET", "/v1/notifications", key)
    assert page["unread_count"] == 1 and len(page["items"]) == 1


def test_another_lenders_notification_is_404(client: Any, key: str, lender: dict[str, Any]) -> None:
    ids = raise_some(lender["tenant"]["tenant_id"])
    response = client.http.post(
        "/v1/tenants",
        headers=json_headers(),
        body=json.dumps({"name": "Other", "subdomain": "other-lender", "admin_email": "ops@other.com"}),
    )
    other = json.loads(response.body)["api_key"]
    status, _ = call(client, "POST", f"/v1/notifications/{ids[0]}/read", other)
    assert status == 404
    _, page = call(client, "GET", "/v1/notifications", other)
    assert page == {"items": [], "unread_count": 0, "next_cursor": None}
    status, _ = call(client, "POST", "/v1/notifications/ntf_unknown/read", key)
    assert status == 404
