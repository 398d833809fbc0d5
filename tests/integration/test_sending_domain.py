"""A lender's own sending domain through the API (issue 15 item 3), on the embedded SES as the local stack runs it
(devstack/embedded_aws.py: a domain identity gets Easy DKIM tokens and is verified at once)."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

import pytest

from chalicelib.config import SEND_QUEUE
from devstack.embedded_aws import ses_domains_verify_at_once
from tests.integration.feedback_helpers import invite
from tests.integration.helpers import call, drain, sent_emails

PATH = "/v1/tenant/sending-domain"


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    ses_domains_verify_at_once()
    return str(lender["api_key"])


def test_a_verified_domain_gives_its_records_and_becomes_the_from_address(client: Any, key: str) -> None:
    assert call(client, "GET", PATH, key)[0] == 404
    status, domain = call(client, "PUT", PATH, key, {"domain": "Mail.Acme-Lending.com."})
    assert status == 200, domain
    assert (domain["domain"], domain["status"]) == ("mail.acme-lending.com", "verified")
    assert domain["from_address"] == "invitations@mail.acme-lending.com"
    assert len(domain["records"]) == 3
    for record in domain["records"]:
        token = record["name"].split(".", 1)[0]
        assert record == {
            "type": "CNAME",
            "name": f"{token}._domainkey.mail.acme-lending.com",
            "value": f"{token}.dkim.amazonses.com",
        }
    assert call(client, "GET", PATH, key) == (200, domain)
    assert call(client, "GET", "/v1/tenant", key)[1]["sending_domain"]["domain"] == "mail.acme-lending.com"

    inv = invite(client, key)
    drain(SEND_QUEUE)
    [message] = [m for m in sent_emails() if inv["email"] in str(m.destinations)]
    name, address = parseaddr(message.source)
    assert address == "invitations@mail.acme-lending.com"
    assert name == "Acme Lending via MyOnboarding"  # still the honest display name


def test_without_a_domain_or_after_removing_it_mail_goes_from_the_platform(client: Any, key: str) -> None:
    assert call(client, "PUT", PATH, key, {"domain": "acme-lending.com"})[0] == 200
    status, _ = call(client, "DELETE", PATH, key)
    assert status == 204
    assert call(client, "GET", PATH, key)[0] == 404
    inv = invite(client, key)
    drain(SEND_QUEUE)
    [message] = [m for m in sent_emails() if inv["email"] in str(m.destinations)]
    assert parseaddr(message.source)[1] == "invitations@myonboarding.com"


@pytest.mark.parametrize(
    "domain", ["not a domain", "ops@acme-lending.com", "https://acme-lending.com", "localhost", "10.0.0.1", ""]
)
def test_a_bad_domain_is_400_naming_the_field(client: Any, key: str, domain: str) -> None:
    status, body = call(client, "PUT", PATH, key, {"domain": domain})
    assert status == 400, body
    assert set(body["error"]["fields"]) == {"domain"}


def test_the_platforms_own_domain_is_refused(client: Any, key: str) -> None:
    for domain in ("myonboarding.com", "mail.myonboarding.com"):
        status, body = call(client, "PUT", PATH, key, {"domain": domain})
        assert status == 400 and set(body["error"]["fields"]) == {"domain"}, body


def test_a_domain_another_lender_claimed_is_409(client: Any, key: str) -> None:
    assert call(client, "PUT", PATH, key, {"domain": "acme-lending.com"})[0] == 200
    status, other = call(
        client, "POST", "/v1/tenants", body={"name": "Other", "subdomain": "other", "admin_email": "ops@other.com"}
    )
    assert status == 201, other
    status, body = call(client, "PUT", PATH, other["api_key"], {"domain": "ACME-lending.com"})
    assert status == 409 and set(body["error"]["fields"]) == {"domain"}, body
    # Changing to another domain frees the first for someone else.
    assert call(client, "PUT", PATH, key, {"domain": "mail.acme-lending.com"})[0] == 200
    status, taken = call(client, "PUT", PATH, other["api_key"], {"domain": "acme-lending.com"})
    assert status == 200 and taken["status"] == "verified", taken


def test_a_pending_domain_keeps_the_platform_address_until_ses_verifies_it(client: Any, lender: dict[str, Any]) -> None:
    import boto3

    from chalicelib import bootstrap
    from tests.unit.test_ses_identities import FakeSesV2

    ses = FakeSesV2()  # SES as in production: PENDING until the records are published
    bootstrap.sending_domains().identities.client = ses
    key = lender["api_key"]
    status, domain = call(client, "PUT", PATH, key, {"domain": "acme-lending.com"})
    assert status == 200 and domain["status"] == "pending" and len(domain["records"]) == 3, domain
    inv = invite(client, key)
    drain(SEND_QUEUE)
    [message] = [m for m in sent_emails() if inv["email"] in str(m.destinations)]
    assert parseaddr(message.source)[1] == "invitations@myonboarding.com"

    ses.publish("acme-lending.com")  # the lender published the CNAMEs; SES saw them
    boto3.client("ses").verify_domain_identity(Domain="acme-lending.com")  # the embedded SES sends from it too
    status, domain = call(client, "GET", PATH, key)
    assert (status, domain["status"]) == (200, "verified") and domain["verified_at"], domain
    inv = invite(client, key)
    drain(SEND_QUEUE)
    [message] = [m for m in sent_emails() if inv["email"] in str(m.destinations)]
    assert parseaddr(message.source)[1] == "invitations@acme-lending.com"


def test_the_console_settings_page_shows_the_domain_its_records_and_status(client: Any) -> None:
    from tests.integration.console_helpers import sign_up

    ses_domains_verify_at_once()
    admin, lender = sign_up(client)
    page = admin.get("/console/settings")
    assert page.status == 200 and 'id="sending-domain"' in page.text and "invitations@myonboarding.com" in page.text
    status, domain = call(client, "PUT", PATH, lender["api_key"], {"domain": "mail.acme-lending.com"})
    assert status == 200, domain
    page = admin.get("/console/settings")
    assert "mail.acme-lending.com" in page.text
    assert "data-domain-status>verified<" in page.text
    for record in domain["records"]:
        assert record["name"] in page.text and record["value"] in page.text


def test_an_unverified_claim_lapses_so_a_squatter_cannot_hold_a_domain(
    client: Any, lender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lender that registers a domain it cannot verify must not keep the real owner out: after 72 hours without
    verification another lender may take it, and the first loses it (never sends from it, never deletes the identity
    the new owner uses)."""
    from datetime import timedelta

    from chalicelib import bootstrap
    from chalicelib.domain import sending_domain
    from chalicelib.domain.invitation import utcnow
    from tests.unit.test_ses_identities import FakeSesV2

    ses = FakeSesV2()  # PENDING until the records are published
    bootstrap.sending_domains().identities.client = ses
    squatter = lender["api_key"]
    status, owner = call(
        client, "POST", "/v1/tenants", body={"name": "Real Owner", "subdomain": "owner", "admin_email": "ops@owner.com"}
    )
    assert status == 201, owner
    assert call(client, "PUT", PATH, squatter, {"domain": "owner.com"})[1]["status"] == "pending"
    status, body = call(client, "PUT", PATH, owner["api_key"], {"domain": "owner.com"})
    assert status == 409, body  # within the hold
    assert "72 hours" in body["error"]["message"]

    later = utcnow() + sending_domain.CLAIM_HOLD + timedelta(minutes=1)
    monkeypatch.setattr("chalicelib.services.sending_domains.utcnow", lambda: later)
    status, taken = call(client, "PUT", PATH, owner["api_key"], {"domain": "owner.com"})
    assert status == 200 and taken["status"] == "pending", taken
    ses.publish("owner.com")  # the real owner can publish the DNS records
    assert call(client, "GET", PATH, owner["api_key"])[1]["status"] == "verified"

    status, lost = call(client, "GET", PATH, squatter)
    assert status == 404 and "another lender" in lost["error"]["message"], lost
    assert call(client, "GET", "/v1/tenant", squatter)[1]["sending_domain"] is None
    assert call(client, "DELETE", PATH, squatter)[0] == 404
    assert "owner.com" in ses.identities  # the owner's identity was not deleted
    assert call(client, "GET", PATH, owner["api_key"])[1]["status"] == "verified"


def test_a_verified_claim_never_lapses(client: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from chalicelib.domain import sending_domain
    from chalicelib.domain.invitation import utcnow

    assert call(client, "PUT", PATH, key, {"domain": "acme-lending.com"})[1]["status"] == "verified"
    later = utcnow() + sending_domain.CLAIM_HOLD * 10 + timedelta(days=1)
    monkeypatch.setattr("chalicelib.services.sending_domains.utcnow", lambda: later)
    status, other = call(
        client, "POST", "/v1/tenants", body={"name": "Other", "subdomain": "other", "admin_email": "ops@other.com"}
    )
    assert status == 201, other
    assert call(client, "PUT", PATH, other["api_key"], {"domain": "acme-lending.com"})[0] == 409


def test_an_operator_releases_a_verified_claim_for_the_domains_new_owner(
    client: Any, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A verified claim never lapses, so when a domain changes hands (sold, a lender closed) only the operator can free
    it: the lender falls back to the platform's address, its audit log says why, and the new owner may claim it."""
    from chalicelib import cli

    assert call(client, "PUT", PATH, key, {"domain": "acme-lending.com"})[1]["status"] == "verified"
    tenant_id = call(client, "GET", "/v1/tenant", key)[1]["tenant_id"]
    status, other = call(
        client, "POST", "/v1/tenants", body={"name": "Other", "subdomain": "other", "admin_email": "ops@other.com"}
    )
    assert status == 201, other
    assert call(client, "PUT", PATH, other["api_key"], {"domain": "acme-lending.com"})[0] == 409

    assert cli.main(["release-domain", "ACME-Lending.com", "--reason", "domain sold to Other"]) == 0
    assert f"acme-lending.com released from {tenant_id}" in capsys.readouterr().out
    assert call(client, "GET", PATH, key)[0] == 404
    inv = invite(client, key)
    drain(SEND_QUEUE)
    [message] = [m for m in sent_emails() if inv["email"] in str(m.destinations)]
    assert parseaddr(message.source)[1] == "invitations@myonboarding.com"
    assert cli.main(["audit", tenant_id]) == 0
    assert "domain_released" in (log := capsys.readouterr().out) and "acme-lending.com: domain sold to Other" in log

    status, taken = call(client, "PUT", PATH, other["api_key"], {"domain": "acme-lending.com"})
    assert status == 200 and taken["status"] == "verified", taken
    # Nothing to release twice; an unknown domain says so.
    assert cli.main(["release-domain", "nobody.example", "--reason", "x"]) == 1
    assert "no lender holds nobody.example" in capsys.readouterr().err


def test_a_verified_identity_left_in_ses_is_never_inherited_by_the_next_claimant(
    client: Any, lender: dict[str, Any]
) -> None:
    """Whatever left a domain's identity in SES (a failed clean-up, a lapsed claim), a lender that newly claims the
    domain gets an identity of its own to verify with its own DNS records, never the old one's verification."""
    from chalicelib import bootstrap
    from tests.unit.test_ses_identities import FakeSesV2

    ses = FakeSesV2()
    bootstrap.sending_domains().identities.client = ses
    ses.create_email_identity(EmailIdentity="acme-lending.com")
    ses.publish("acme-lending.com")  # verified by whoever held it before
    left_over = ses.identities["acme-lending.com"]["tokens"]
    status, domain = call(client, "PUT", PATH, lender["api_key"], {"domain": "acme-lending.com"})
    assert status == 200 and domain["status"] == "pending", domain
    assert {r["name"].split(".", 1)[0] for r in domain["records"]}.isdisjoint(left_over)
    # The lender's own domain asked again is its identity, not a new one each time.
    assert call(client, "PUT", PATH, lender["api_key"], {"domain": "acme-lending.com"})[1] == domain


def test_a_release_that_ses_cannot_complete_changes_nothing_and_can_be_retried(
    client: Any, lender: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib import bootstrap, cli
    from tests.unit.test_ses_identities import FakeSesV2

    ses = FakeSesV2()
    bootstrap.sending_domains().identities.client = ses
    key = lender["api_key"]
    assert call(client, "PUT", PATH, key, {"domain": "acme-lending.com"})[0] == 200
    ses.publish("acme-lending.com")
    ses.down = True
    assert cli.main(["release-domain", "acme-lending.com", "--reason", "sold"]) == 1
    assert "unavailable" in capsys.readouterr().err
    ses.down = False
    assert call(client, "GET", PATH, key)[1]["status"] == "verified"  # still the lender's, still in use
    assert cli.main(["release-domain", "acme-lending.com", "--reason", "sold"]) == 0
    assert "acme-lending.com" not in ses.identities
    assert call(client, "GET", PATH, key)[0] == 404
