"""SMS safety rules, plain Python: which numbers may receive an SMS, when, and how long a message is.

- A number's type comes from ``phonenumbers``: premium-rate, shared-cost, toll-free, VoIP, pager, UAN,
  voicemail and personal numbers never receive our SMS (fraud and cost risk, no person behind them);
  a fixed line is kept for the record but cannot be chosen for SMS.
- Quiet hours: no SMS between 21:00 and 08:00 in the recipient's time zone (from the number). A number
  whose prefix spans several zones is quiet while it is quiet in any of them.
- Segments: GSM-7 fits 160 characters in one SMS (153 per part when split); anything outside GSM-7 is sent
  as UCS-2, 70 characters (67 per part).
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)

NEVER_SMS = frozenset(
    {"toll_free", "premium_rate", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail"}
)
SMS_CAPABLE = frozenset({"mobile", "fixed_line_or_mobile"})

# GSM 03.38 basic set (one septet each) and its extension table (two septets each).
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def phone_kind(e164: str) -> str:
    """``mobile``, ``fixed_line``, ``fixed_line_or_mobile``, ``premium_rate``, ... or ``unknown``."""
    import phonenumbers

    return number_kind(phonenumbers.parse(e164))


def number_kind(number: Any) -> str:
    """:func:`phone_kind` of a number phonenumbers has parsed already (a ``PhoneNumber``)."""
    import phonenumbers

    return _kind_names().get(phonenumbers.number_type(number), "unknown")


@functools.cache
def _kind_names() -> dict[int, str]:
    import phonenumbers

    return {v: k.lower() for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper()}


def time_zones(e164: str) -> list[str]:
    import phonenumbers
    from phonenumbers import timezone

    zones = timezone.time_zones_for_number(phonenumbers.parse(e164))
    return [z for z in zones if z != "Etc/Unknown"]


def quiet_until(e164: str, now: datetime) -> datetime | None:
    """When an SMS to ``e164`` may go, if ``now`` is within quiet hours for it; None when it may go now.

    A number with no known zone is never held (we cannot tell its night from its day).
    """
    latest: datetime | None = None
    for name in time_zones(e164):
        try:
            zone = ZoneInfo(name)
        except ZoneInfoNotFoundError:
            continue
        local = now.astimezone(zone)
        if QUIET_UNTIL <= local.time() < QUIET_FROM:
            continue
        day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
        resume = datetime.combine(day, QUIET_UNTIL, tzinfo=zone)
        if latest is None or resume > latest:
            latest = resume
    return latest


def is_gsm7(text: str) -> bool:
    return all(c in _GSM or c in _GSM_EXT for c in text)


def segments(text: str) -> int:
    """How many SMS parts ``text`` takes."""
    if is_gsm7(text):
        septets = sum(2 if c in _GSM_EXT else 1 for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
