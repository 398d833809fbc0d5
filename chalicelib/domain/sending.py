"""Who may send what, to whom, and when: the rules that keep the platform from being used to phish and keep
its sender reputation. Plain Python; the send worker asks :func:`hold_for` before every message.

- **Verification.** Until a lender's admin email is confirmed, its messages reach only that address (the
  lender can try its own invitations); anything to anyone else waits. SMS waits too (a number is never
  "the lender's own").
- **Quotas that ramp.** Per lender and day (UTC): 200 emails and 50 SMS at first; each day's quota is twice
  the previous day's sends when those went out cleanly, never below the base and never above the
  platform's cap (settings) or the operator's cap for the lender. A send over quota waits for the next day.
- **Reputation.** Over the last 7 days, a bounce rate above 5% or a complaint rate above 0.1% (SES's own
  review thresholds) pauses the lender's sending, with at least 20 sends behind the rate.
- **Operator.** A suspended lender sends nothing until an operator lifts it; every pause and suspension is
  in the audit log.
- **Quiet hours.** No SMS 21:00-08:00 in the recipient's time zone (domain/sms.py).

A held message is deferred, never dropped: it is tried again when the hold can have ended.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import Field

from chalicelib.domain.model import Model

EMAIL_DAY_ONE = 200
SMS_DAY_ONE = 50
BOUNCE_PAUSE_RATE = 0.05
COMPLAINT_PAUSE_RATE = 0.001
MIN_SENDS_FOR_RATE = 20
REPUTATION_DAYS = 7
# A day's quota may double only when the day before went out this cleanly.
RAMP_MAX_BOUNCE_RATE = 0.02

Channel = Literal["email", "sms"]


class SendingState(Model):
    """A lender's standing as a sender (set by verification, by the platform, or by an operator)."""

    verified_at: datetime | None = Field(default=None, description="When the admin email was confirmed")
    paused_at: datetime | None = None
    paused_reason: str | None = Field(default=None, description="Why sending is paused (bounce or complaint rate)")
    suspended_at: datetime | None = None
    suspended_reason: str | None = Field(default=None, description="Why an operator suspended the lender")
    email_cap: int | None = Field(default=None, ge=0, description="Operator's daily email cap for this lender")
    sms_cap: int | None = Field(default=None, ge=0, description="Operator's daily SMS cap for this lender")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class DayStats(Model):
    day: date
    email_sent: int = 0
    sms_sent: int = 0
    bounces: int = 0
    complaints: int = 0


class Hold(Model):
    """Why a message waits, and until when it cannot go (None: until something changes)."""

    reason: Literal["unverified", "paused", "suspended", "quota", "quiet_hours"]
    detail: str
    until: datetime | None = None


def next_day(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0, 0), tzinfo=UTC)


def daily_quota(channel: Channel, yesterday: DayStats | None, platform_cap: int, lender_cap: int | None) -> int:
    base = EMAIL_DAY_ONE if channel == "email" else SMS_DAY_ONE
    quota = base
    if yesterday is not None:
        sent = yesterday.email_sent if channel == "email" else yesterday.sms_sent
        clean = yesterday.email_sent == 0 or yesterday.bounces / yesterday.email_sent <= RAMP_MAX_BOUNCE_RATE
        if clean and yesterday.complaints == 0:
            quota = max(base, 2 * sent)
    caps = [platform_cap, *([lender_cap] if lender_cap is not None else [])]
    return min(quota, *caps)


def standing(state: SendingState, *, require_verification: bool = True) -> Hold | None:
    """What holds the lender's sending as a whole (suspended, paused, or sandbox until verified): what the
    console's banner says; None when the lender sends normally."""
    if state.suspended_at is not None:
        return Hold(reason="suspended", detail=state.suspended_reason or "suspended by the platform")
    if state.paused_at is not None:
        return Hold(reason="paused", detail=state.paused_reason or "sending paused")
    if require_verification and not state.verified:
        return Hold(
            reason="unverified",
            detail="the lender's admin email is not confirmed yet: messages reach only the lender's own address",
        )
    return None


def hold_for(
    state: SendingState, channel: Channel, recipient: str, own: set[str], *, require_verification: bool = True
) -> Hold | None:
    """The standing of the lender only (quota and quiet hours are checked by the worker, which counts).
    In sandbox mode an email to the lender's own address goes."""
    hold = standing(state, require_verification=require_verification)
    if hold is not None and hold.reason == "unverified" and channel == "email" and recipient.lower() in own:
        return None
    return hold


def pause_reason(days: list[DayStats]) -> str | None:
    """Why the lender's sending must pause, from the last days' sends and feedback; None when it may go on."""
    sent = sum(d.email_sent for d in days)
    bounces = sum(d.bounces for d in days)
    complaints = sum(d.complaints for d in days)
    if sent < MIN_SENDS_FOR_RATE:
        return None
    if bounces / sent > BOUNCE_PAUSE_RATE:
        return f"bounce rate {bounces / sent:.1%} over the last {REPUTATION_DAYS} days (limit {BOUNCE_PAUSE_RATE:.0%})"
    if complaints / sent > COMPLAINT_PAUSE_RATE:
        return (
            f"complaint rate {complaints / sent:.2%} over the last {REPUTATION_DAYS} days "
            f"(limit {COMPLAINT_PAUSE_RATE:.1%})"
        )
    return None
