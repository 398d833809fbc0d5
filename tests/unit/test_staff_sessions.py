"""Which console sessions a reset ended (domain.staff.StaffMember.holds_session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain.staff import Role, StaffMember, StaffStatus

RESET = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def member(sessions_after: datetime | None) -> StaffMember:
    return StaffMember(
        staff_id="stf_a",
        tenant_id="ten_1",
        email="olivia@acme.example",
        role=Role.ADMIN,
        status=StaffStatus.ACTIVE,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        sessions_after=sessions_after,
    )


def test_a_member_never_reset_holds_every_session() -> None:
    assert member(None).holds_session(RESET - timedelta(days=3))
    assert member(None).holds_session(None)


def test_a_reset_ends_the_sessions_started_before_it_only() -> None:
    reset = member(RESET)
    assert not reset.holds_session(RESET - timedelta(microseconds=1))
    assert reset.holds_session(RESET)  # the session the reset itself starts
    assert reset.holds_session(RESET + timedelta(hours=1))
    assert not reset.holds_session(None)  # a record that does not say when it started
