"""Helpers for the feedback, notification and webhook tests: invitations really sent through the
send worker, documented SES notifications about them, and a local webhook receiver."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.config import SEND_QUEUE
from chalicelib.domain import webhook_signing
from devstack.poller import LambdaContext, to_lambda_event
from tests.integration.helpers import call, drain

EVENTS = Path(__file__).resolve().parents[1] / "events"
PHONE = "+15145550123"  # moto treats numbers ending in 99 as opted out


def invite(client: Any, key: str, **fields: Any) -> dict[str, Any]:
    body = {"email": f"c{uuid.uuid4().hex[:8]}@smallbiz.com", "owner": "Olivia Officer", **fields}
    status, inv = call(client, "POST", "/v1/invitations", key, body)
    assert status == 201, inv
    return dict(inv)


def sent_invitation(client: Any, key: str, **fields: Any) -> tuple[dict[str, Any], str]:
    """An invitation whose email went out; returns it and the SES message id."""
    inv = invite(client, key, **fields)
    drain(SEND_QUEUE)
    status, log = call(client, "GET", f"/v1/communications?invitation_id={inv['invitation_id']}", key)
    assert status == 200, log
    emails = [c for c in log["items"] if c["channel"] == "email" and c["provider_message_id"]]
    assert emails, log
    return inv, emails[-1]["provider_message_id"]


def notification(
    fixture: str, message_id: str, recipient: str, *, feedback_id: str | None = None, bounce_type: str | None = None
) -> dict[str, Any]:
    """A documented example about a message we sent."""
    data = copy.deepcopy(json.loads((EVENTS / fixture).read_text()))
    data["mail"]["messageId"] = message_id
    data["mail"]["destination"] = [recipient]
    if "bounce" in data:
        data["bounce"]["bouncedRecipients"] = [{**data["bounce"]["bouncedRecipients"][0], "emailAddress": recipient}]
        data["bounce"]["feedbackId"] = feedback_id or f"fb-{uuid.uuid4()}"
        if bounce_type:
            data["bounce"]["bounceType"] = bounce_type
    if "complaint" in data:
        data["complaint"]["complainedRecipients"] = [{"emailAddress": recipient}]
        data["complaint"]["feedbackId"] = feedback_id or f"fb-{uuid.uuid4()}"
    if "delivery" in data:
        data["delivery"]["recipients"] = [recipient]
    return data


def sns_envelope(payload: dict[str, Any], sns_message_id: str | None = None) -> str:
    envelope = json.loads((EVENTS / "ses_sns_envelope_bounce.json").read_text())
    envelope["MessageId"] = sns_message_id or str(uuid.uuid4())
    envelope["Message"] = json.dumps(payload)
    return json.dumps(envelope)


def enqueue(queue: str, bodies: list[str]) -> None:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def history_types(client: Any, key: str, invitation_id: str) -> list[str]:
    status, page = call(client, "GET", f"/v1/invitations/{invitation_id}/history", key)
    assert status == 200, page
    return [e["type"] for e in page["items"]]


def lambda_batch(bodies: list[str], queue: str) -> tuple[dict[str, Any], list[str]]:
    """A Lambda SQS event of these bodies, and their message ids."""
    messages = [
        {"MessageId": str(uuid.uuid4()), "ReceiptHandle": f"rh-{i}", "Body": body, "Attributes": {}}
        for i, body in enumerate(bodies)
    ]
    event = to_lambda_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{queue}", "us-east-1")
    return event, [m["MessageId"] for m in messages]


def context(name: str) -> LambdaContext:
    return LambdaContext(function_name=name)


class Receiver:
    """A lender's CRM on 127.0.0.1: records every POST and answers with the next queued status."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                verified = verified_legacy = None
                if receiver.secret is not None:
                    # As a lender verifies: the standardwebhooks library on the raw body and the headers.
                    try:
                        Webhook(receiver.secret).verify(body, dict(self.headers))
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                    try:
                        webhook_signing.verify(body, self.headers.get(webhook_signing.HEADER, ""), receiver.secret)
                        verified_legacy = True
                    except webhook_signing.InvalidSignature:
                        verified_legacy = False
                receiver.requests.append(
                    {
                        "headers": dict(self.headers),
                        "body": body,
                        "verified": verified,
                        "verified_legacy": verified_legacy,
                    }
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/onboarding"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
