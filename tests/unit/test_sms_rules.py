"""SMS safety rules: number types, quiet hours in the recipient's zone, one segment with the opt-out words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from chalicelib.domain import links
from chalicelib.domain.invitation import CreateInvitation, normalise_phone
from chalicelib.domain.sms import number_kind, phone_kind, quiet_until, segments
from chalicelib.services.messages import render_sms

URL = "https://acme.myonboarding.com/portal/" + links.derive_token(
    "k" * 32, "portal", "inv_01M8T2CQKSQQ1J2SWZ0EBYYJWE", "n"
)


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+1 900 555 0123", "premium-rate"),
        ("+1 800 555 0123", "toll-free"),
        ("+1 888 555 0123", "toll-free"),
    ],
)
def test_numbers_that_never_receive_sms_are_refused(number: str, kind: str) -> None:
    with pytest.raises(ValueError, match=kind):
        normalise_phone(number)
    with pytest.raises(ValidationError) as caught:
        CreateInvitation(email="jo@smallbiz.com", owner="O", phone=number)
    assert [e["loc"] for e in caught.value.errors()] == [("phone",)]


def test_the_kind_of_a_parsed_number_is_the_kind_of_its_e164_form() -> None:
    """normalise_phone takes the kind from the number it parsed (number_kind) where it parsed the E.164 form
    again (phone_kind): the same answer for every region's example of every type, written as people write it
    (national notation, leading zeros, an extension)."""
    import phonenumbers

    compared = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in vars(phonenumbers.PhoneNumberType).values():
            if not isinstance(kind, int):
                continue
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            for written in (national, national + " ext. 12"):
                number = phonenumbers.parse(written, region)
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                assert number_kind(number) == phone_kind(e164), (region, written)
                compared += 1
    assert compared > 1000


def test_a_fixed_line_is_kept_for_email_but_refused_for_sms() -> None:
    london = "+44 20 7946 0958"
    assert phone_kind(normalise_phone(london)) == "fixed_line"
    assert CreateInvitation(email="jo@smallbiz.com", owner="O", phone=london).phone == "+442079460958"
    for channel in ("sms", "both"):
        with pytest.raises(ValidationError) as caught:
            CreateInvitation(email="jo@smallbiz.com", owner="O", phone=london, channel=channel)
        assert [e["loc"] for e in caught.value.errors()] == [("phone",)]
        assert "fixed-line" in caught.value.errors()[0]["msg"]
    # North American numbers are "fixed line or mobile": accepted for SMS.
    assert CreateInvitation(email="jo@smallbiz.com", owner="O", phone="514 555 0123", channel="sms").phone


def test_quiet_hours_follow_the_recipients_zone() -> None:
    montreal = "+15145550123"  # America/Toronto: UTC-5 in December
    assert quiet_until(montreal, datetime(2026, 12, 2, 15, 0, tzinfo=UTC)) is None  # 10:00 local
    late = quiet_until(montreal, datetime(2026, 12, 2, 4, 0, tzinfo=UTC))  # 23:00 local on Dec 1
    assert late is not None and late.astimezone(UTC) == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    early = quiet_until(montreal, datetime(2026, 12, 2, 12, 30, tzinfo=UTC))  # 07:30 local
    assert early is not None and early.astimezone(UTC) == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    assert quiet_until(montreal, datetime(2026, 12, 3, 1, 59, tzinfo=UTC)) is None  # 20:59 local
    assert quiet_until(montreal, datetime(2026, 12, 3, 2, 0, tzinfo=UTC)) is not None  # 21:00 local
    paris = "+33612345678"
    assert quiet_until(paris, datetime(2026, 12, 2, 6, 59, tzinfo=UTC)) is not None  # 07:59 in Paris
    assert quiet_until(paris, datetime(2026, 12, 2, 7, 0, tzinfo=UTC)) is None


@pytest.mark.parametrize(("locale", "words"), [("en", "Reply STOP to opt out"), ("fr", "Répondez STOP")])
def test_an_invitation_sms_fits_one_segment_with_the_opt_out_words(locale: str, words: str) -> None:
    text = render_sms("invitation", locale, lender="Acme Lending", url=URL)
    assert words in text and URL in text and "Acme Lending" in text
    assert segments(text) == 1
    long = render_sms("invitation", locale, lender="The Very Long Name Of A Regional Credit Union Inc", url=URL)
    assert segments(long) == 1 and words in long and long.startswith("The Very Long")


def test_segments_count_gsm7_and_ucs2() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 307) == 3
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # extension characters count twice
    assert segments("ê" * 70) == 1 and segments("ê" * 71) == 2  # not GSM-7: UCS-2
