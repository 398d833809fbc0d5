"""SES v2 identities adapter against a fake client answering in the documented shapes [SES API v2
CreateEmailIdentity / GetEmailIdentity]: Easy DKIM tokens at once, PENDING until the records are seen."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.adapters.ses_identities import SesIdentities
from chalicelib.errors import UpstreamError


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "from SES"}}, operation)


class FakeSesV2:
    """Domain identities as SES keeps them; ``publish(domain)`` is the lender's DNS host doing its part."""

    def __init__(self) -> None:
        self.identities: dict[str, dict[str, Any]] = {}
        self.down = False
        self.created = 0  # SES gives every identity it creates tokens of its own

    def _answer(self, domain: str) -> dict[str, Any]:
        identity = self.identities[domain]
        return {
            "IdentityType": "DOMAIN",
            "VerifiedForSendingStatus": identity["status"] == "SUCCESS",
            "DkimAttributes": {
                "SigningEnabled": True,
                "Status": identity["status"],
                "Tokens": identity["tokens"],
                "SigningAttributesOrigin": "AWS_SES",
            },
        }

    def create_email_identity(self, EmailIdentity: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com")
        if EmailIdentity in self.identities:
            raise client_error("AlreadyExistsException", "CreateEmailIdentity")
        self.created += 1
        self.identities[EmailIdentity] = {"status": "PENDING", "tokens": [f"tok{i}x{self.created}" for i in range(3)]}
        return self._answer(EmailIdentity)

    def get_email_identity(self, EmailIdentity: str) -> dict[str, Any]:  # noqa: N803
        if EmailIdentity not in self.identities:
            raise client_error("NotFoundException", "GetEmailIdentity")
        return self._answer(EmailIdentity)

    def delete_email_identity(self, EmailIdentity: str) -> dict[str, Any]:  # noqa: N803
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com")
        if self.identities.pop(EmailIdentity, None) is None:
            raise client_error("NotFoundException", "DeleteEmailIdentity")
        return {}

    def publish(self, domain: str) -> None:
        self.identities[domain]["status"] = "SUCCESS"


def test_register_returns_the_tokens_and_pending_until_published() -> None:
    ses = FakeSesV2()
    identities = SesIdentities(ses)
    first = identities.register("acme.com")
    assert (first.verified_for_sending, first.dkim_status, len(first.tokens)) == (False, "PENDING", 3)
    again = identities.register("acme.com")  # AlreadyExists: read back, same tokens
    assert again == first
    ses.publish("acme.com")
    state = identities.state("acme.com")
    assert state is not None and (state.verified_for_sending, state.dkim_status) == (True, "SUCCESS")


def test_unknown_and_removed_identities() -> None:
    identities = SesIdentities(FakeSesV2())
    assert identities.state("nobody.com") is None
    identities.remove("nobody.com")  # already gone: fine
    identities.register("acme.com")
    identities.remove("acme.com")
    assert identities.state("acme.com") is None


def test_ses_unreachable_is_an_upstream_error() -> None:
    ses = FakeSesV2()
    ses.down = True
    with pytest.raises(UpstreamError):
        SesIdentities(ses).register("acme.com")
