"""50 parallel edits of one invitation: optimistic locking gives one winner per version, clean 409s
for the rest, and never a lost update."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.api.routing import error_response
from chalicelib.domain.invitation import EditInvitation, Invitation
from chalicelib.errors import ConcurrentModification, DomainError
from tests.integration.helpers import call

WRITERS = 50


@pytest.fixture
def invitation(client: Any, lender: dict[str, Any], linearizable_aws: None) -> tuple[Any, Invitation]:
    from chalicelib.bootstrap import services

    status, body = call(
        client,
        "POST",
        "/v1/invitations",
        lender["api_key"],
        {"email": "race@smallbiz.example", "owner": "Start", "send": False},
    )
    assert status == 201, body
    tenant = services().tenants.authenticate(f"Bearer {lender['api_key']}")
    return tenant, Invitation.model_validate(body)


def race(edits: list[EditInvitation], tenant: Any, invitation_id: str) -> list[Invitation | Exception]:
    """Run every edit in its own thread, all released at once."""
    from chalicelib.bootstrap import services

    service = services().invitations
    start = threading.Barrier(len(edits))
    outcomes: list[Invitation | Exception] = [DomainError("not run")] * len(edits)

    def edit(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = service.edit(tenant, invitation_id, edits[i])
        except Exception as exc:  # anything but a clean ConcurrentModification fails the test below
            outcomes[i] = exc

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(len(edits))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def edited_events(tenant: Any, invitation_id: str) -> int:
    from chalicelib.bootstrap import services

    page = services().invitations.history(tenant, invitation_id, limit=500)
    return sum(1 for e in page.items if e.type == "edited")


def test_same_expected_version_gives_one_success_and_clean_409s(invitation: tuple[Any, Invitation]) -> None:
    from chalicelib.bootstrap import services

    tenant, inv = invitation
    edits = [EditInvitation(owner=f"Owner {i}", expected_version=inv.version) for i in range(WRITERS)]

    outcomes = race(edits, tenant, inv.invitation_id)

    winners = [o for o in outcomes if isinstance(o, Invitation)]
    losers = [o for o in outcomes if not isinstance(o, Invitation)]
    assert len(winners) == 1
    assert all(isinstance(o, ConcurrentModification) for o in losers), {type(o).__name__ for o in losers}
    assert {error_response(o).status_code for o in losers if isinstance(o, DomainError)} == {409}
    stored = services().invitations.get(tenant, inv.invitation_id)
    assert stored.version == inv.version + 1
    assert stored.owner == winners[0].owner
    assert edited_events(tenant, inv.invitation_id) == 1


def test_without_expected_version_every_success_is_one_version_and_none_is_lost(
    invitation: tuple[Any, Invitation],
) -> None:
    from chalicelib.bootstrap import services

    tenant, inv = invitation
    edits = [EditInvitation(owner=f"Owner {i}") for i in range(WRITERS)]

    outcomes = race(edits, tenant, inv.invitation_id)

    winners = [o for o in outcomes if isinstance(o, Invitation)]
    losers = [o for o in outcomes if not isinstance(o, Invitation)]
    assert winners
    assert all(isinstance(o, ConcurrentModification) for o in losers), {type(o).__name__ for o in losers}
    # Each success wrote a distinct next version: no two writers both "won" the same version.
    versions = sorted(w.version for w in winners)
    assert versions == list(range(inv.version + 1, inv.version + 1 + len(winners)))
    stored = services().invitations.get(tenant, inv.invitation_id)
    assert stored.version == inv.version + len(winners)
    assert stored.owner == max(winners, key=lambda w: w.version).owner
    assert edited_events(tenant, inv.invitation_id) == len(winners)


def test_the_api_answers_409_to_a_stale_expected_version(client: Any, lender: dict[str, Any]) -> None:
    key = lender["api_key"]
    status, inv = call(
        client, "POST", "/v1/invitations", key, {"email": "stale@smallbiz.example", "owner": "A", "send": False}
    )
    assert status == 201
    path = f"/v1/invitations/{inv['invitation_id']}"
    first = call(client, "PATCH", path, key, {"owner": "B", "expected_version": inv["version"]})
    second = call(client, "PATCH", path, key, {"owner": "C", "expected_version": inv["version"]})
    assert first[0] == 200
    assert second[0] == 409
    assert second[1]["error"]["code"] == "concurrent_modification"
