"""A lender's own sending domain (issue 15, honest sender identity): the rules, with no I/O.

A lender may send from an address at its own domain once SES has verified the domain with DKIM: SES gives three
tokens, the lender publishes one CNAME per token, SES sees them and signs the lender's mail. Until then, and for a
lender without a domain, emails go from the platform's address. The display name stays "<lender> via <platform>"
either way (services/messages.py ``sender_display``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from chalicelib.domain.model import Model

# RFC 1035 host names (IDN as punycode): labels of 1-63 letters, digits or inner hyphens, at least two labels, a
# top-level label that is not all digits, 253 characters at most.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?=.{{4,253}}$)(?:{_LABEL}\.)+(?!\d+$){_LABEL}$")
# Easy DKIM: each token is published as <token>._domainkey.<domain> CNAME <token>.dkim.amazonses.com
# [SES DG "Easy DKIM in Amazon SES"].
DKIM_TARGET = "dkim.amazonses.com"
# How long an unverified claim keeps a domain from other lenders. SES looks for the records for 72 hours; a lender
# that registers a domain it cannot verify (not its own) must not keep the real owner out after that.
CLAIM_HOLD = timedelta(hours=72)


class DomainStatus(StrEnum):
    PENDING = "pending"  # the records are not seen yet (publishing them can take up to 72 hours)
    VERIFIED = "verified"  # emails now go from an address at this domain
    FAILED = "failed"  # SES stopped looking: check the records, then register the domain again


class DnsRecord(Model):
    type: Literal["CNAME"] = "CNAME"
    name: str = Field(examples=["abcdef123._domainkey.mail.acme-lending.com"])
    value: str = Field(examples=["abcdef123.dkim.amazonses.com"])


class SendingDomain(Model):
    """The lender's domain as the API and the console show it."""

    domain: str
    status: DomainStatus
    records: list[DnsRecord] = Field(description="DNS records to publish at the lender's DNS host")
    from_address: str = Field(description="The address emails go from once the domain is verified")
    requested_at: datetime
    verified_at: datetime | None = None


class SendingDomainRequest(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    domain: str = Field(min_length=1, max_length=254, examples=["mail.acme-lending.com"])

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return normalise_domain(value)


def normalise_domain(value: str) -> str:
    """``Mail.Acme-Lending.com.`` -> ``mail.acme-lending.com``; raises ValueError for anything that is not a
    domain name (an address, a URL, a bare word, an IP address)."""
    domain = value.strip().lower().removesuffix(".")
    if not _DOMAIN.match(domain):
        raise ValueError("must be a domain name such as mail.example.com")
    return domain


def platform_domain_problem(domain: str, platform_sender: str) -> str | None:
    """A lender may not claim the platform's own domain (nor a subdomain of it): its mail would pass for ours."""
    platform = platform_sender.rpartition("@")[2].lower()
    if domain == platform or domain.endswith(f".{platform}"):
        return "is the platform's own domain"
    return None


def dkim_records(domain: str, tokens: list[str]) -> list[DnsRecord]:
    return [DnsRecord(name=f"{token}._domainkey.{domain}", value=f"{token}.{DKIM_TARGET}") for token in tokens]


def status_from_ses(verified_for_sending: bool, dkim_status: str | None) -> DomainStatus:
    """SES v2 ``GetEmailIdentity``: ``VerifiedForSendingStatus`` and ``DkimAttributes.Status`` (PENDING, SUCCESS,
    FAILED, TEMPORARY_FAILURE, NOT_STARTED)."""
    if verified_for_sending or dkim_status == "SUCCESS":
        return DomainStatus.VERIFIED
    if dkim_status == "FAILED":
        return DomainStatus.FAILED
    return DomainStatus.PENDING


def mailbox_at(sender_email: str, domain: str) -> str:
    """The platform sender's mailbox name at the lender's domain: ``invitations@`` + ``mail.acme-lending.com``."""
    return f"{sender_email.partition('@')[0]}@{domain}"


def sending_address(sender_email: str, domain: SendingDomain | None) -> str:
    """The From address of a lender's emails: at its own domain once verified, the platform's otherwise."""
    if domain is None or domain.status is not DomainStatus.VERIFIED:
        return sender_email
    return mailbox_at(sender_email, domain.domain)
