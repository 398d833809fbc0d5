"""SES v2 email identities: a lender's sending domain, registered with Easy DKIM. Raise UpstreamError, never a raw
ClientError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import UpstreamError
from chalicelib.observability import logger


@dataclass(frozen=True)
class IdentityState:
    """What SES says of a domain identity (``CreateEmailIdentity`` / ``GetEmailIdentity``)."""

    verified_for_sending: bool
    dkim_status: str | None
    tokens: list[str]


def _state(response: dict[str, Any]) -> IdentityState:
    dkim = response.get("DkimAttributes") or {}
    return IdentityState(
        verified_for_sending=bool(response.get("VerifiedForSendingStatus")),
        dkim_status=dkim.get("Status"),
        tokens=[str(t) for t in dkim.get("Tokens") or []],
    )


class SesIdentities:
    def __init__(self, client: Any) -> None:
        self.client = client

    def register(self, domain: str, *, replace: bool = False) -> IdentityState:
        """Create the domain identity (Easy DKIM, SES's default), or read it when it exists already; with ``replace``
        an existing one is deleted and created anew (new DKIM tokens, unverified until their records are published).

        Raises UpstreamError.
        """
        try:
            return _state(self.client.create_email_identity(EmailIdentity=domain))
        except ClientError as exc:
            if _code(exc) == "AlreadyExistsException" and replace:
                self.remove(domain)
                return self.register(domain)
            if _code(exc) != "AlreadyExistsException":
                logger.exception("SES CreateEmailIdentity failed", extra={"error_code": _code(exc)})
                raise UpstreamError("the email service is unavailable, please retry") from exc
        except BotoCoreError as exc:
            logger.exception("SES CreateEmailIdentity failed")
            raise UpstreamError("the email service is unavailable, please retry") from exc
        state = self.state(domain)
        if state is None:  # deleted between the two calls
            raise UpstreamError("the email service is unavailable, please retry")
        return state

    def state(self, domain: str) -> IdentityState | None:
        """The identity's verification; None when SES has no such identity. Raises UpstreamError."""
        try:
            return _state(self.client.get_email_identity(EmailIdentity=domain))
        except ClientError as exc:
            if _code(exc) == "NotFoundException":
                return None
            logger.exception("SES GetEmailIdentity failed", extra={"error_code": _code(exc)})
            raise UpstreamError("the email service is unavailable, please retry") from exc
        except BotoCoreError as exc:
            logger.exception("SES GetEmailIdentity failed")
            raise UpstreamError("the email service is unavailable, please retry") from exc

    def remove(self, domain: str) -> None:
        """Delete the identity; one already gone is not an error. Raises UpstreamError."""
        try:
            self.client.delete_email_identity(EmailIdentity=domain)
        except ClientError as exc:
            if _code(exc) == "NotFoundException":
                return
            logger.exception("SES DeleteEmailIdentity failed", extra={"error_code": _code(exc)})
            raise UpstreamError("the email service is unavailable, please retry") from exc
        except BotoCoreError as exc:
            logger.exception("SES DeleteEmailIdentity failed")
            raise UpstreamError("the email service is unavailable, please retry") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
