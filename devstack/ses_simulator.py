"""SES's mailbox simulator for the local stack, with faithful feedback.

Real SES answers mail to ``bounce@simulator.amazonses.com`` with a hard bounce, ``complaint@`` with a
complaint, ``success@`` (and ``ooto@``) with a delivery, ``suppressionlist@`` with an account-level
suppression bounce; a ``+label`` is allowed before the ``@``. moto publishes only canned examples
whose message id and recipient are not those of the message sent, so this thread watches the
messages moto's SES keeps and publishes, for every simulator recipient, the configuration-set event
record SES would publish (``eventType``, the real ``mail.messageId`` and recipient) to the SES
feedback topic; SNS fans it out to the feedback queue like in AWS. moto's canned notifications are
switched off (they name message ids nobody sent). [SES DG "Using the mailbox simulator",
"Examples of event data that Amazon SES publishes to Amazon SNS"]
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from devstack.embedded_aws import BACKENDS

log = logging.getLogger("devstack.ses_simulator")

SIMULATOR_DOMAIN = "simulator.amazonses.com"
ACCOUNT_ID = "123456789012"
# SES does not bounce instantly either; the delay also lets the send worker record the message id.
PUBLISH_DELAY_S = 1.0
POLL_INTERVAL_S = 0.25


def simulator_mailbox(address: str) -> str | None:
    """``bounce+x@simulator.amazonses.com`` -> ``bounce``; None for any other address."""
    local, _, domain = address.strip().lower().rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return None
    return local.split("+", 1)[0]


def recipients(destinations: Any) -> list[str]:
    if isinstance(destinations, dict):
        return [a for k in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destinations.get(k, [])]
    if isinstance(destinations, list):
        return [str(d) for d in destinations]
    return []


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def event_record(
    mailbox: str, message_id: str, source: str, recipient: str, all_recipients: list[str], sent_at: datetime
) -> dict[str, Any] | None:
    """The event record SES publishes for a simulator mailbox, or None for mailboxes we do not model."""
    now = datetime.now(UTC)
    mail = {
        "timestamp": _iso(sent_at),
        "source": source,
        "sourceArn": f"arn:aws:ses:us-east-1:{ACCOUNT_ID}:identity/{source.rpartition('@')[2].rstrip('>')}",
        "sendingAccountId": ACCOUNT_ID,
        "messageId": message_id,
        "destination": all_recipients,
        "headersTruncated": False,
        "tags": {"ses:configuration-set": ["onboarding"], "ses:from-domain": [source.rpartition("@")[2].rstrip(">")]},
    }
    feedback_id = f"{message_id[:16]}-{uuid.uuid4()}-000000"
    if mailbox in ("bounce", "suppressionlist"):
        return {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General" if mailbox == "bounce" else "OnAccountSuppressionList",
                "bouncedRecipients": [
                    {
                        "emailAddress": recipient,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": _iso(now),
                "feedbackId": feedback_id,
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            },
            "mail": mail,
        }
    if mailbox == "complaint":
        return {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": recipient}],
                "timestamp": _iso(now),
                "feedbackId": feedback_id,
                "userAgent": "Amazon SES Mailbox Simulator",
                "complaintFeedbackType": "abuse",
                "arrivalDate": _iso(now),
            },
            "mail": mail,
        }
    if mailbox in ("success", "ooto"):
        return {
            "eventType": "Delivery",
            "mail": mail,
            "delivery": {
                "timestamp": _iso(now),
                "processingTimeMillis": int((now - sent_at).total_seconds() * 1000),
                "recipients": [recipient],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            },
        }
    return None


class SesSimulator:
    """A daemon thread: new moto SES messages to simulator addresses -> feedback on the SNS topic."""

    def __init__(self, sns: Any, topic_arn: str, region: str = "us-east-1", ses_backend: Any = None) -> None:
        self.sns = sns
        self.topic_arn = topic_arn
        self.region = region
        self._backend = ses_backend
        self._seen: dict[str, float] = {}
        self._published: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from moto.backends import get_backend

            self._backend = get_backend("ses")[ACCOUNT_ID][self.region]
        return self._backend

    def silence_canned_notifications(self, ses: Any, identity: str) -> None:
        """Stop moto publishing its canned examples for this identity (we publish faithful ones)."""
        for kind in ("Bounce", "Complaint", "Delivery"):
            ses.set_identity_notification_topic(Identity=identity, NotificationType=kind)

    def skip_sent(self) -> None:
        """Publish nothing for the messages already sent (kept from a previous run)."""
        with BACKENDS:
            self._published.update(str(getattr(m, "id", "")) for m in self.backend.sent_messages)

    def tick(self, now: float | None = None) -> int:
        """Publish feedback for messages first seen at least PUBLISH_DELAY_S ago; returns how many."""
        current = time.monotonic() if now is None else now
        published = 0
        with BACKENDS:  # moto's SES appends to this list while requests run
            sent = list(self.backend.sent_messages)
        for message in sent:
            message_id = str(getattr(message, "id", ""))
            if not message_id or message_id in self._published:
                continue
            first_seen = self._seen.setdefault(message_id, current)
            if current - first_seen < PUBLISH_DELAY_S:
                continue
            self._published.add(message_id)
            addresses = recipients(getattr(message, "destinations", None))
            sent_at = datetime.now(UTC)
            for address in addresses:
                mailbox = simulator_mailbox(address)
                record = (
                    event_record(mailbox or "", message_id, str(message.source), address, addresses, sent_at)
                    if mailbox
                    else None
                )
                if record is None:
                    continue
                self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(record))
                published += 1
                log.info("Simulated SES %s for message %s", record["eventType"], message_id)
        return published

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ses-simulator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            try:
                self.tick()
            except Exception:  # keep simulating: one bad message must not stop the thread
                log.exception("SES simulator tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
