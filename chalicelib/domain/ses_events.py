"""SES feedback as AWS documents it: bounce, complaint and delivery notifications.

Two producers, two spellings: identity notifications carry ``notificationType``, configuration-set
event publishing carries ``eventType`` (and adds Send, Reject, Open, Click ... records). Both arrive
through SNS, either wrapped in the SNS envelope (``Type`` = ``Notification``, the SES JSON as a
string in ``Message``) or, with raw message delivery, as the SES JSON itself. SES may add fields at
any time, so unknown fields are ignored. [SES DG "Amazon SNS notification contents for Amazon SES",
"Examples of event data that Amazon SES publishes to Amazon SNS"]
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field, ValidationError, model_validator

from chalicelib.domain.model import Model


class NotAnSesNotification(ValueError):
    """The body is neither an SES notification nor an SNS envelope around one."""


class _Lenient(Model):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Mail(_Lenient):
    timestamp: datetime | None = None
    message_id: str = Field(alias="messageId", min_length=1)
    source: str | None = None
    source_arn: str | None = Field(default=None, alias="sourceArn")
    sending_account_id: str | None = Field(default=None, alias="sendingAccountId")
    destination: list[str] = Field(default_factory=list)
    tags: dict[str, list[str]] | None = None


class BounceType(StrEnum):
    PERMANENT = "Permanent"
    TRANSIENT = "Transient"
    UNDETERMINED = "Undetermined"


class BouncedRecipient(_Lenient):
    email_address: str = Field(alias="emailAddress")
    action: str | None = None
    status: str | None = None
    diagnostic_code: str | None = Field(default=None, alias="diagnosticCode")


class Bounce(_Lenient):
    bounce_type: BounceType = Field(alias="bounceType")
    bounce_sub_type: str | None = Field(default=None, alias="bounceSubType")
    bounced_recipients: list[BouncedRecipient] = Field(default_factory=list, alias="bouncedRecipients")
    timestamp: datetime | None = None
    feedback_id: str = Field(alias="feedbackId", min_length=1)
    reporting_mta: str | None = Field(default=None, alias="reportingMTA")
    remote_mta_ip: str | None = Field(default=None, alias="remoteMtaIp")


class ComplainedRecipient(_Lenient):
    email_address: str = Field(alias="emailAddress")


class Complaint(_Lenient):
    complained_recipients: list[ComplainedRecipient] = Field(default_factory=list, alias="complainedRecipients")
    timestamp: datetime | None = None
    feedback_id: str = Field(alias="feedbackId", min_length=1)
    complaint_feedback_type: str | None = Field(default=None, alias="complaintFeedbackType")
    complaint_sub_type: str | None = Field(default=None, alias="complaintSubType")
    user_agent: str | None = Field(default=None, alias="userAgent")
    arrival_date: datetime | None = Field(default=None, alias="arrivalDate")


class Delivery(_Lenient):
    timestamp: datetime | None = None
    recipients: list[str] = Field(default_factory=list)
    processing_time_millis: int | None = Field(default=None, alias="processingTimeMillis")
    smtp_response: str | None = Field(default=None, alias="smtpResponse")
    reporting_mta: str | None = Field(default=None, alias="reportingMTA")


class Reject(_Lenient):
    reason: str | None = None


class SesNotification(_Lenient):
    notification_type: str | None = Field(default=None, alias="notificationType")
    event_type: str | None = Field(default=None, alias="eventType")
    mail: Mail
    bounce: Bounce | None = None
    complaint: Complaint | None = None
    delivery: Delivery | None = None
    reject: Reject | None = None

    @model_validator(mode="after")
    def _typed_and_complete(self) -> SesNotification:
        kind = self.notification_type or self.event_type
        if not kind:
            raise ValueError("notificationType or eventType is required")
        if kind == "Bounce" and self.bounce is None:
            raise ValueError("a Bounce carries a bounce object")
        if kind == "Complaint" and self.complaint is None:
            raise ValueError("a Complaint carries a complaint object")
        return self

    @property
    def kind(self) -> str:
        """Bounce, Complaint, Delivery, Send, Reject, Open, Click, ... whichever field carried it."""
        return str(self.notification_type or self.event_type)

    @property
    def event_id(self) -> str:
        """Stable across redeliveries and across both producers: SES's own feedback id when it has one."""
        if self.bounce is not None:
            return f"bounce:{self.bounce.feedback_id}"
        if self.complaint is not None:
            return f"complaint:{self.complaint.feedback_id}"
        return f"{self.kind.lower()}:{self.mail.message_id}"

    @property
    def recipients(self) -> list[str]:
        """The addresses this feedback is about (may be redacted by some ISPs: never rely on it alone)."""
        if self.bounce is not None:
            return [r.email_address for r in self.bounce.bounced_recipients]
        if self.complaint is not None:
            return [r.email_address for r in self.complaint.complained_recipients]
        if self.delivery is not None:
            return list(self.delivery.recipients)
        return list(self.mail.destination)


class SnsEnvelope(_Lenient):
    type: str = Field(alias="Type")
    message_id: str = Field(alias="MessageId")
    topic_arn: str | None = Field(default=None, alias="TopicArn")
    message: str = Field(alias="Message")
    timestamp: datetime | None = Field(default=None, alias="Timestamp")


class FeedbackMessage(Model):
    """One SQS body: the SES notification and, when it came wrapped, the SNS message id."""

    notification: SesNotification | None
    sns_message_id: str | None = None
    sns_type: str = "Notification"


def parse_feedback(body: str) -> FeedbackMessage:
    """Parse an SQS body from the SES feedback topic (SNS envelope or raw message delivery).

    SNS control messages (SubscriptionConfirmation, UnsubscribeConfirmation) come back with no
    notification. Raises NotAnSesNotification when the body is neither shape.
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise NotAnSesNotification("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise NotAnSesNotification("the body is not a JSON object")
    try:
        if "Type" in data and "Message" in data:
            envelope = SnsEnvelope.model_validate(data)
            if envelope.type != "Notification":
                return FeedbackMessage(notification=None, sns_message_id=envelope.message_id, sns_type=envelope.type)
            inner = json.loads(envelope.message)
            return FeedbackMessage(
                notification=SesNotification.model_validate(inner), sns_message_id=envelope.message_id
            )
        return FeedbackMessage(notification=SesNotification.model_validate(data))
    except (ValidationError, ValueError) as exc:
        raise NotAnSesNotification(f"not an SES notification: {type(exc).__name__}") from exc
