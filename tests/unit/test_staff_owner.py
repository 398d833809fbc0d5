"""Which staff member an uploaded row's free-text owner names (domain.staff.owner_index / owner_key)."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.staff import Role, StaffMember, StaffStatus, owner_index, owner_key


def member(staff_id: str, email: str, name: str | None, status: StaffStatus = StaffStatus.ACTIVE) -> StaffMember:
    return StaffMember(
        staff_id=staff_id,
        tenant_id="ten_1",
        email=email,
        name=name,
        role=Role.OFFICER,
        status=status,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def lookup(members: list[StaffMember], text: str) -> str | None:
    found = owner_index(members).get(owner_key(text))
    return found.staff_id if found else None


def test_a_member_is_named_by_email_or_name_whatever_the_case_and_spacing() -> None:
    team = [member("stf_a", "olivia@acme.example", "Olivia Officer"), member("stf_b", "bo@acme.example", None)]
    assert lookup(team, " OLIVIA@acme.example ") == "stf_a"
    assert lookup(team, "olivia   officer") == "stf_a"
    assert lookup(team, "bo@acme.example") == "stf_b"  # a member without a name is named by their email
    assert lookup(team, "Olivia") is None
    assert lookup(team, "") is None


def test_a_name_two_members_share_names_nobody_but_their_emails_still_do() -> None:
    team = [member("stf_a", "sam1@acme.example", "Sam Lee"), member("stf_b", "sam2@acme.example", "Sam Lee")]
    assert lookup(team, "Sam Lee") is None
    assert lookup(team, "sam2@acme.example") == "stf_b"


def test_only_active_members_can_be_named() -> None:
    team = [
        member("stf_a", "gone@acme.example", "Gone Person", StaffStatus.DEACTIVATED),
        member("stf_b", "new@acme.example", "New Person", StaffStatus.INVITED),
        member("stf_c", "same@acme.example", "Gone Person"),
    ]
    assert lookup(team, "gone@acme.example") is None
    assert lookup(team, "new@acme.example") is None
    # The deactivated namesake does not make the active member's name ambiguous.
    assert lookup(team, "Gone Person") == "stf_c"
