"""A lender's sending domain: the rules (domain names, DKIM records, SES status, the From address), no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from chalicelib.domain.sending_domain import (
    DomainStatus,
    SendingDomain,
    SendingDomainRequest,
    dkim_records,
    normalise_domain,
    platform_domain_problem,
    sending_address,
    status_from_ses,
)

PLATFORM = "invitations@myonboarding.com"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("acme-lending.com", "acme-lending.com"),
        ("  Mail.ACME-Lending.com. ", "mail.acme-lending.com"),
        ("xn--caf-dma.fr", "xn--caf-dma.fr"),
        ("a.b.c.example.co.uk", "a.b.c.example.co.uk"),
    ],
)
def test_domain_names_are_normalised(given: str, expected: str) -> None:
    assert normalise_domain(given) == expected
    assert SendingDomainRequest(domain=given).domain == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "localhost",
        "ops@acme.com",
        "https://acme.com",
        "acme.com/path",
        "-acme.com",
        "acme-.com",
        "acme..com",
        "10.0.0.1",
        "acme com",
        "a" * 64 + ".com",
        ".".join(["abcdefghij"] * 25) + ".com",
        "acme.com\r\nBcc: x@y.z",
    ],
)
def test_anything_but_a_domain_name_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="domain name"):
        normalise_domain(given)
    with pytest.raises(ValidationError):
        SendingDomainRequest(domain=given)


def test_the_platforms_own_domain_is_not_a_lenders() -> None:
    assert platform_domain_problem("myonboarding.com", PLATFORM)
    assert platform_domain_problem("mail.myonboarding.com", PLATFORM)
    assert platform_domain_problem("notmyonboarding.com", PLATFORM) is None
    assert platform_domain_problem("acme-lending.com", PLATFORM) is None


def test_one_cname_per_dkim_token() -> None:
    records = dkim_records("acme.com", ["t1", "t2", "t3"])
    assert [(r.type, r.name, r.value) for r in records] == [
        ("CNAME", "t1._domainkey.acme.com", "t1.dkim.amazonses.com"),
        ("CNAME", "t2._domainkey.acme.com", "t2.dkim.amazonses.com"),
        ("CNAME", "t3._domainkey.acme.com", "t3.dkim.amazonses.com"),
    ]


@pytest.mark.parametrize(
    ("verified", "dkim", "status"),
    [
        (False, "PENDING", DomainStatus.PENDING),
        (False, "NOT_STARTED", DomainStatus.PENDING),
        (False, "TEMPORARY_FAILURE", DomainStatus.PENDING),
        (False, None, DomainStatus.PENDING),
        (False, "FAILED", DomainStatus.FAILED),
        (False, "SUCCESS", DomainStatus.VERIFIED),
        (True, "PENDING", DomainStatus.VERIFIED),
    ],
)
def test_status_from_what_ses_says(verified: bool, dkim: str | None, status: DomainStatus) -> None:
    assert status_from_ses(verified, dkim) is status


@pytest.mark.parametrize("status", list(DomainStatus))
def test_mail_goes_from_the_domain_only_once_verified(status: DomainStatus) -> None:
    domain = SendingDomain(
        domain="acme.com",
        status=status,
        records=[],
        from_address="invitations@acme.com",
        requested_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    expected = "invitations@acme.com" if status is DomainStatus.VERIFIED else PLATFORM
    assert sending_address(PLATFORM, domain) == expected
    assert sending_address(PLATFORM, None) == PLATFORM
