"""Search by email or name (``q``) in the invitation list and its CSV export: the console's search box."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.helpers import call


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


@pytest.fixture
def people(client: Any, key: str) -> dict[str, str]:
    made = {}
    for email, first, last, business in (
        ("jane@smallbiz.com", "Jane", "Doe", "Small Biz Inc"),
        ("marc@boulangerie.ca", "Marc", "Tremblay", "Boulangerie Tremblay"),
        ("zoe@example.com", "Zoé", "Martin", None),
    ):
        body = {"email": email, "owner": "Olivia Officer", "first_name": first, "last_name": last, "send": False}
        if business:
            body["business_legal_name"] = business
        status, inv = call(client, "POST", "/v1/invitations", key, body)
        assert status == 201, inv
        made[first] = inv["invitation_id"]
    return made


def found(client: Any, key: str, query: str) -> list[str]:
    status, page = call(client, "GET", f"/v1/invitations?{query}", key)
    assert status == 200, page
    return [i["invitation_id"] for i in page["items"]]


@pytest.mark.parametrize(
    ("q", "who"),
    [
        ("jane", ["Jane"]),
        ("TREMBLAY", ["Marc"]),  # last name and business name, any case
        ("boulangerie", ["Marc"]),
        ("zoé", ["Zoé"]),
        ("example.com", ["Zoé"]),  # part of an email
        ("  Jane   Doe ", ["Jane"]),  # spaces collapse
        ("nobody", []),
    ],
)
def test_q_matches_part_of_a_name_business_or_email(
    client: Any, key: str, people: dict[str, str], q: str, who: list[str]
) -> None:
    assert found(client, key, f"q={q}") == [people[w] for w in who]


def test_q_with_a_whole_email_uses_the_exact_lookup_and_combines_with_status(
    client: Any, key: str, people: dict[str, str]
) -> None:
    assert found(client, key, "q=Marc@Boulangerie.ca") == [people["Marc"]]
    assert found(client, key, "q=marc@boulangerie.ca&status=PENDING") == [people["Marc"]]
    assert found(client, key, "q=marc@boulangerie.ca&status=JOINED") == []
    assert found(client, key, "q=mar&status=PENDING") == [people["Zoé"], people["Marc"]]  # newest first
    assert found(client, key, "q=mar&status=JOINED") == []


def test_export_takes_the_search_too(client: Any, key: str, people: dict[str, str]) -> None:
    response = client.http.get("/v1/invitations/export?q=tremblay", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.body
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert [r["invitation_id"] for r in rows] == [people["Marc"]]
