"""Sending rules: who is held, how quotas ramp, when a lender is paused."""

from __future__ import annotations

from datetime import UTC, date, datetime

from chalicelib.domain.sending import DayStats, SendingState, daily_quota, hold_for, next_day, pause_reason

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
DAY = date(2026, 12, 1)


def test_an_unverified_lender_reaches_only_its_own_address() -> None:
    state = SendingState()
    own = {"ops@acme.example"}
    assert hold_for(state, "email", "OPS@acme.example", own) is None
    held = hold_for(state, "email", "victim@example.org", own)
    assert held is not None and held.reason == "unverified"
    assert hold_for(state, "sms", "+15145550123", own) is not None  # a number is never the lender's own
    verified = SendingState(verified_at=NOW)
    assert hold_for(verified, "email", "victim@example.org", own) is None
    assert hold_for(state, "email", "victim@example.org", own, require_verification=False) is None


def test_suspension_and_pause_hold_everything_with_their_reason() -> None:
    suspended = SendingState(verified_at=NOW, suspended_at=NOW, suspended_reason="phishing report")
    paused = SendingState(verified_at=NOW, paused_at=NOW, paused_reason="bounce rate 7.5%")
    assert hold_for(suspended, "email", "a@b.example", set()).detail == "phishing report"  # type: ignore[union-attr]
    assert hold_for(paused, "sms", "+15145550123", set()).reason == "paused"  # type: ignore[union-attr]


def test_quotas_start_small_double_with_clean_days_and_stop_at_the_caps() -> None:
    assert daily_quota("email", None, 10_000, None) == 200
    assert daily_quota("sms", None, 10_000, None) == 50
    assert daily_quota("email", DayStats(day=DAY, email_sent=180), 10_000, None) == 360
    assert daily_quota("email", DayStats(day=DAY, email_sent=50), 10_000, None) == 200  # never below the base
    assert daily_quota("email", DayStats(day=DAY, email_sent=9_000), 10_000, None) == 10_000
    assert daily_quota("email", DayStats(day=DAY, email_sent=180), 10_000, 100) == 100  # the operator's cap
    # A day with bounces above 2% or any complaint does not ramp.
    assert daily_quota("email", DayStats(day=DAY, email_sent=200, bounces=5), 10_000, None) == 200
    assert daily_quota("email", DayStats(day=DAY, email_sent=200, complaints=1), 10_000, None) == 200
    assert daily_quota("sms", DayStats(day=DAY, sms_sent=50), 2_000, None) == 100


def test_pause_follows_ses_thresholds_with_enough_sends_behind_them() -> None:
    assert pause_reason([DayStats(day=DAY, email_sent=19, bounces=5)]) is None  # too few to judge
    assert pause_reason([DayStats(day=DAY, email_sent=40, bounces=2)]) is None  # 5.0%: at the limit
    reason = pause_reason([DayStats(day=DAY, email_sent=20, bounces=1), DayStats(day=DAY, email_sent=20, bounces=2)])
    assert reason is not None and reason.startswith("bounce rate 7.5%")
    complaint = pause_reason([DayStats(day=DAY, email_sent=500, complaints=1)])
    assert complaint is not None and complaint.startswith("complaint rate 0.20%")
    assert pause_reason([DayStats(day=DAY, email_sent=1_000, complaints=1)]) is None  # 0.1%: at the limit


def test_the_next_day_starts_at_utc_midnight() -> None:
    assert next_day(NOW) == datetime(2026, 12, 3, tzinfo=UTC)
