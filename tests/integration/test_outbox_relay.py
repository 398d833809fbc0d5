"""A send whose SQS message was lost (SQS down after the DynamoDB commit) is relayed, and sent once."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.queue import QueuePublisher
from chalicelib.bootstrap import services
from chalicelib.config import SEND_QUEUE
from chalicelib.domain.invitation import CreateInvitation
from chalicelib.services.invitations import InvitationService
from tests.integration.helpers import call, drain, sent_emails


class BrokenSqs:
    def send_message(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")


def test_lost_send_is_relayed_once(client: Any, lender: dict[str, Any]) -> None:
    s = services()
    tenant = s.tenant_repo.get(lender["tenant"]["tenant_id"])
    assert tenant is not None
    broken = InvitationService(s.invitation_repo, QueuePublisher(BrokenSqs()), s.settings)
    inv = broken.create(tenant, CreateInvitation(email="lost@smallbiz.com", owner="O"))
    assert inv.delivery_status == "queued"
    assert drain(SEND_QUEUE) == 0  # nothing reached the queue

    assert s.invitations.relay_outbox(older_than_seconds=0) == 1
    drain(SEND_QUEUE)
    assert [e.destinations["ToAddresses"] for e in sent_emails()] == [["lost@smallbiz.com"]]
    # the closed send request left the outbox: a second relay finds nothing
    assert s.invitations.relay_outbox(older_than_seconds=0) == 0
    _, current = call(client, "GET", f"/v1/invitations/{inv.invitation_id}", lender["api_key"])
    assert current["delivery_status"] == "sent"


def test_scheduled_relay_handler_runs(client: Any) -> None:
    response = client.lambda_.invoke(
        "outbox_relay",
        client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]),
    )
    assert response.payload == {"relayed": 0}
