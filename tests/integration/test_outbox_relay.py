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
    broken = InvitationService(s.invitation_repo, QueuePublisher(BrokenSqs()), s.settings, link_key=s.link_key)
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


def test_orphaned_send_requests_are_closed_and_never_block_the_relay(client: Any, lender: dict[str, Any]) -> None:
    """More than a page of send requests whose invitation is gone (issue 11, item 12): the relay
    still finds a genuinely lost send behind them, and the send worker closes each orphan."""
    from datetime import timedelta

    from chalicelib.domain.invitation import Invitation, utcnow

    s = services()
    tenant = s.tenant_repo.get(lender["tenant"]["tenant_id"])
    assert tenant is not None
    long_ago = utcnow() - timedelta(hours=1)
    for n in range(130):
        ghost = Invitation(
            invitation_id=f"inv_GONE{n:04d}",
            tenant_id=tenant.tenant_id,
            email="gone@smallbiz.com",
            owner="O",
            banking_integration="waterfall",
            channel="email",
            locale="en",
            created_at=long_ago,
            updated_at=long_ago,
        )
        s.table.transact([s.invitation_repo.send_request_action(ghost, f"snd_GONE{n:04d}", "invitation", long_ago)])
    broken = InvitationService(s.invitation_repo, QueuePublisher(BrokenSqs()), s.settings, link_key=s.link_key)
    inv = broken.create(tenant, CreateInvitation(email="lost@smallbiz.com", owner="O"))

    assert s.invitations.relay_outbox(older_than_seconds=0) == 131
    assert drain(SEND_QUEUE, rounds=40) == 131
    assert [e.destinations["ToAddresses"] for e in sent_emails()] == [["lost@smallbiz.com"]]
    orphan = s.invitation_repo.send_request(tenant.tenant_id, "inv_GONE0000", "snd_GONE0000")
    assert orphan is not None and orphan["state"] == "gone"
    # Every orphan was closed with the lost send: the outbox is empty.
    assert s.invitations.relay_outbox(older_than_seconds=0) == 0
    _, current = call(client, "GET", f"/v1/invitations/{inv.invitation_id}", lender["api_key"])
    assert current["delivery_status"] == "sent"
