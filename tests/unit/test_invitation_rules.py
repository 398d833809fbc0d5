"""Domain rules of invitations, tenants and links: plain Python, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from chalicelib.domain import links
from chalicelib.domain.invitation import (
    Channel,
    CreateInvitation,
    Invitation,
    JoinedVia,
    Status,
    business_key,
    communication_rank,
    normalise_phone,
    replaceable_outcomes,
)
from chalicelib.domain.providers import BankingIntegration
from chalicelib.domain.tenant import TenantSettings, TenantSettingsPatch, validate_subdomain
from chalicelib.errors import Conflict, DeliveryRefused, RateLimited

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def invitation(**overrides: object) -> Invitation:
    data: dict[str, object] = {
        "invitation_id": "inv_1",
        "tenant_id": "ten_1",
        "email": "a@b.com",
        "owner": "O",
        "banking_integration": BankingIntegration.WATERFALL,
        "channel": Channel.EMAIL,
        "locale": "en",
        "created_at": NOW,
        "updated_at": NOW,
    }
    data.update(overrides)
    return Invitation.model_validate(data)


def test_only_pending_is_editable() -> None:
    invitation().ensure_editable()
    for status in (Status.JOINED, Status.INACTIVE):
        with pytest.raises(Conflict, match="only PENDING"):
            invitation(status=status).ensure_editable()


def test_joined_cannot_be_deleted_but_points_to_customer_removal() -> None:
    invitation().ensure_deletable()
    with pytest.raises(Conflict, match="/v1/customers/"):
        invitation(status=Status.JOINED).ensure_deletable()


def test_a_submission_or_a_removal_forbids_deleting() -> None:
    with pytest.raises(Conflict, match="DELETE /v1/customers/inv_1"):
        invitation().ensure_deletable(submitted=True)
    with pytest.raises(Conflict, match="INACTIVE record"):
        invitation(status=Status.INACTIVE).ensure_deletable()


def test_joining_through_the_portal_leaves_room_for_a_sign_up_once() -> None:
    assert invitation().open_for_sign_up
    by_portal = invitation().joined(JoinedVia.PORTAL, NOW)
    assert (by_portal.status, by_portal.joined_via, by_portal.joined_at) == (Status.JOINED, JoinedVia.PORTAL, NOW)
    assert by_portal.open_for_sign_up
    signed_up = by_portal.joined(JoinedVia.SIGN_UP, NOW + timedelta(days=1))
    assert (signed_up.joined_via, signed_up.joined_at) == (JoinedVia.SIGN_UP, NOW)  # the first join's time stays
    assert not signed_up.open_for_sign_up
    assert not invitation(status=Status.INACTIVE).open_for_sign_up


def test_a_message_outcome_only_moves_forward() -> None:
    # A held message's "deferred" entry becomes what became of it: sent, or replaced / not needed (#10).
    assert replaceable_outcomes("sent") == [
        "deferred",
        "failed",
        "not_needed",
        "opted_out",
        "refused",
        "replaced",
        "sent",
        "suppressed",
    ]
    assert "deferred" in replaceable_outcomes("replaced") and "delivered" not in replaceable_outcomes("not_needed")
    assert "bounced" not in replaceable_outcomes("suppressed")
    assert "bounced" in replaceable_outcomes("complained") and "delivered" in replaceable_outcomes("bounced")
    assert "delivered" not in replaceable_outcomes("soft_bounced")
    assert communication_rank("bounced") > communication_rank("delivered") > communication_rank("sent")


def test_resend_cooldown_and_limit() -> None:
    invitation().ensure_resendable(NOW)
    recent = invitation(last_send_requested_at=NOW - timedelta(seconds=20), send_count=1)
    with pytest.raises(RateLimited) as caught:
        recent.ensure_resendable(NOW, cooldown=60)
    assert caught.value.retry_after == 41
    invitation(last_send_requested_at=NOW - timedelta(seconds=61), send_count=1).ensure_resendable(NOW, cooldown=60)
    with pytest.raises(DeliveryRefused, match="10 times"):
        invitation(send_count=10).ensure_resendable(NOW, max_sends=10)


@pytest.mark.parametrize(("a", "b"), [("Jane's Bakery Inc.", "janes bakery inc"), ("Café Crème", "CAFE CREME")])
def test_business_key_ignores_case_accents_and_punctuation(a: str, b: str) -> None:
    assert business_key(a) == business_key(b)
    assert business_key(None) == business_key("") == "-"


def test_phone_is_normalised_to_e164() -> None:
    assert normalise_phone("(514) 555-0123") == "+15145550123"
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    with pytest.raises(ValueError):
        normalise_phone("12")


def test_sms_channel_needs_phone() -> None:
    with pytest.raises(ValidationError, match="phone is required"):
        CreateInvitation(email="a@b.com", owner="O", channel=Channel.SMS)


@pytest.mark.parametrize("name", ["www", "api", "admin", "ab", "-x1", "x1-", "a_b", "xn--abc"])
def test_bad_subdomains(name: str) -> None:
    with pytest.raises(ValueError):
        validate_subdomain(name)


def test_good_subdomain_is_lowercased() -> None:
    assert validate_subdomain(" Acme-Lending ") == "acme-lending"


def test_settings_patch_keeps_unspecified_fields() -> None:
    current = TenantSettings(require_invitation=False)
    updated = TenantSettingsPatch(locale="fr").apply(current)
    assert updated.require_invitation is False and updated.locale == "fr"


def test_link_tokens_derive_from_nonce_and_key() -> None:
    nonce = links.new_nonce()
    token = links.derive_token("key", "portal", "inv_1", nonce)
    assert links.looks_like_token(token)
    assert token == links.derive_token("key", "portal", "inv_1", nonce)
    assert token != links.derive_token("other-key", "portal", "inv_1", nonce)
    assert token != links.derive_token("key", "confirm", "inv_1", nonce)
    assert len(nonce) * 4 >= 128  # hex digits carry 4 bits each
    assert links.token_hash(token) != token
