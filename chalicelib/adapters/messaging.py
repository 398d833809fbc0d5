"""Outbound email (SES v2) and SMS (SNS). Raise typed errors, never a raw ClientError."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formataddr
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.tenant import display_name_problem
from chalicelib.errors import DeliveryRefused, UpstreamError
from chalicelib.observability import logger

# SES errors that no retry will fix: the message is refused for good.
_EMAIL_FINAL = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "NotFoundException",
    "BadRequestException",
}


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str
    sender_name: str | None
    reply_to: str | None
    tags: dict[str, str]
    # The lender's verified domain address (domain/sending_domain.py ``sending_address``); None: the platform's.
    sender_address: str | None = None


class OptedOut(DeliveryRefused):
    code = "opted_out"


class Mailer:
    def __init__(self, client: Any, sender: str, configuration_set: str | None) -> None:
        self.client = client
        self.sender = sender
        self.configuration_set = configuration_set

    def from_address(self, name: str | None, address: str | None = None) -> str:
        """The From header: the name quoted as needed and, when not ASCII, an RFC 2047 encoded word (SES v2 takes
        no raw UTF-8 there). Raises DeliveryRefused for a name no header can carry: retrying cannot fix it."""
        sender = address or self.sender
        if not name:
            return sender
        problem = display_name_problem(name)
        if problem:
            raise DeliveryRefused(
                f"the sender name {problem}; change sender_name (or branding.display_name) in /v1/tenant/settings"
            )
        return formataddr((name, sender), charset="utf-8")

    def send(self, email: Email) -> str:
        """Send through SES v2 and return the SES message id.

        Raises DeliveryRefused (final: do not retry) or UpstreamError (transient: retry later).
        """
        sender = self.from_address(email.sender_name, email.sender_address)
        params: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [email.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                    },
                }
            },
            "EmailTags": [{"Name": k, "Value": v} for k, v in email.tags.items()],
        }
        if email.reply_to:
            params["ReplyToAddresses"] = [email.reply_to]
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        try:
            return str(self.client.send_email(**params)["MessageId"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _EMAIL_FINAL:
                logger.warning("SES refused the email", extra={"error_code": code})
                raise DeliveryRefused(f"the email service refused the message ({code})") from exc
            logger.exception("SES send failed", extra={"error_code": code})
            raise UpstreamError("the email service is unavailable") from exc
        except BotoCoreError as exc:
            logger.exception("SES send failed")
            raise UpstreamError("the email service is unavailable") from exc


class SmsSender:
    def __init__(self, client: Any) -> None:
        self.client = client

    def opted_out(self, phone: str) -> bool:
        try:
            return bool(self.client.check_if_phone_number_is_opted_out(phoneNumber=phone)["isOptedOut"])
        except (ClientError, BotoCoreError) as exc:
            logger.exception("SNS opt-out check failed")
            raise UpstreamError("the SMS service is unavailable") from exc

    def send(self, phone: str, text: str) -> str:
        """Publish a transactional SMS; returns the SNS message id.

        Raises OptedOut (final), DeliveryRefused (final) or UpstreamError (retry later).
        """
        try:
            response = self.client.publish(
                PhoneNumber=phone,
                Message=text,
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("OptedOut", "OptedOutException"):
                raise OptedOut("the number opted out of SMS") from exc
            if code in ("InvalidParameter", "InvalidParameterValue"):
                raise DeliveryRefused("the SMS service refused the number") from exc
            logger.exception("SNS publish failed", extra={"error_code": code})
            raise UpstreamError("the SMS service is unavailable") from exc
        except BotoCoreError as exc:
            logger.exception("SNS publish failed")
            raise UpstreamError("the SMS service is unavailable") from exc
        return str(response["MessageId"])
