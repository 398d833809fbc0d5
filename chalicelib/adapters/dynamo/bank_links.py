"""Persistence of bank-link attempts, their provider slots, provider-session lookups and documents.

Items of one invitation live in the invitation's own partition (``TENANT#t#INV#i``), so its
history, attempts and documents are read with one query and go with it when it is deleted. The
only global items are the provider-session lookups (a webhook carries no tenant) and the dedupe
markers of webhook events. Closing a slot is a conditional write: whichever of webhook, worker
or exhausted message closes it first records the decision; the others see ``False``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.domain.waterfall import (
    OPEN_SLOT_STATES,
    AttemptRecord,
    AttemptState,
    SessionLookup,
    SlotDecision,
    SlotRecord,
    SlotState,
)
from chalicelib.errors import ConcurrentModification, Conflict

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.dynamo.invitations import Action
    from chalicelib.adapters.dynamo.table import Item, Table
    from chalicelib.domain.bank_link import LinkSession
    from chalicelib.domain.model import Model

DEDUPE_TTL_SECONDS = 14 * 24 * 3600


class AlreadyClosed(Conflict):
    """The slot (or attempt) was already decided by someone else."""

    code = "already_closed"


class BankLinkRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- attempts -----------------------------------------------------------------------------
    def current_attempt_number(self, tenant_id: str, invitation_id: str) -> int:
        item = self.table.get(keys.bank_link_state(tenant_id, invitation_id), consistent=True)
        return int(item["attempt"]) if item else 0

    def begin_attempt(self, record: AttemptRecord, previous: int) -> None:
        """Claim attempt number ``record.attempt`` (the counter must still be ``previous``).

        Raises ConcurrentModification when another request claimed it first.
        """
        tenant_id, invitation_id, number = record.tenant_id, record.invitation_id, record.attempt
        counter = self.table.t_update(
            keys.bank_link_state(tenant_id, invitation_id),
            {"attempt": number, "type": "bank_link_state"},
            condition="attribute_not_exists(#a) OR #a = :prev",
            names={"#a": "attempt"},
            values={":prev": previous},
        )
        item = {
            **keys.bank_link_attempt(tenant_id, invitation_id, number),
            "type": "bank_link_attempt",
            **_stored(record),
        }
        self.table.transact(
            [counter, self.table.t_put_new(item)],
            conflict=lambda _: ConcurrentModification("another bank-link attempt was just started"),
        )

    def attempt(self, tenant_id: str, invitation_id: str, number: int) -> AttemptRecord | None:
        if number <= 0:
            return None
        item = self.table.get(keys.bank_link_attempt(tenant_id, invitation_id, number), consistent=True)
        return AttemptRecord.model_validate(item) if item else None

    def set_execution(self, record: AttemptRecord, execution_arn: str) -> None:
        """Remember the attempt's started execution."""
        self.table.update(
            keys.bank_link_attempt(record.tenant_id, record.invitation_id, record.attempt),
            {"execution_arn": execution_arn},
            condition="attribute_exists(PK)",
        )

    def finish_attempt_action(
        self,
        tenant_id: str,
        invitation_id: str,
        number: int,
        state: AttemptState,
        ended_at: datetime,
        linked_provider: str | None = None,
    ) -> Action:
        """Move a running attempt to ``state``; the transaction fails when it is no longer running."""
        changes: dict[str, Any] = {"state": state.value, "ended_at": ended_at.isoformat()}
        if linked_provider is not None:
            changes["linked_provider"] = linked_provider
        return self.table.t_update(
            keys.bank_link_attempt(tenant_id, invitation_id, number),
            changes,
            condition="#st = :running",
            names={"#st": "state"},
            values={":running": AttemptState.RUNNING.value},
        )

    def everything(self, tenant_id: str, invitation_id: str) -> tuple[list[AttemptRecord], list[SlotRecord]]:
        """Attempts and slots of the invitation, oldest first (SK order)."""
        items, _ = self.table.query(
            keys.invitation_pk(tenant_id, invitation_id), sk_prefix=keys.BANK_LINK_ATTEMPT_PREFIX, consistent=True
        )
        attempts = [AttemptRecord.model_validate(i) for i in items if i.get("type") == "bank_link_attempt"]
        slots = [SlotRecord.model_validate(i) for i in items if i.get("type") == "bank_link_slot"]
        return attempts, slots

    # --- slots --------------------------------------------------------------------------------
    def slot(self, tenant_id: str, invitation_id: str, number: int, slot: int) -> SlotRecord | None:
        item = self.table.get(keys.bank_link_slot(tenant_id, invitation_id, number, slot), consistent=True)
        return SlotRecord.model_validate(item) if item else None

    def request_slot(self, record: SlotRecord) -> bool:
        """Create the slot in state ``requested``; False when it already exists (a redelivery)."""
        key = keys.bank_link_slot(record.tenant_id, record.invitation_id, record.attempt, record.slot)
        stored = _stored(record.model_copy(update={"state": SlotState.REQUESTED}))
        try:
            self.table.put_new({**key, "type": "bank_link_slot", **stored})
        except Conflict:
            return False
        return True

    def open_slot(self, slot: SlotRecord, session: LinkSession, token: str) -> None:
        """Store the provider session with the task token, and the lookup webhooks use.

        Raises AlreadyClosed when the slot was decided meanwhile (e.g. it timed out).
        """
        tenant_id, invitation_id, number = slot.tenant_id, slot.invitation_id, slot.attempt
        provider = str(session.provider)
        lookup = SessionLookup(
            tenant_id=tenant_id, invitation_id=invitation_id, attempt=number, slot=slot.slot, provider=session.provider
        )
        opened = {
            "provider": provider,
            "session_id": session.session_id,
            "link_url": session.link_url,
            "session_expires_at": session.expires_at.isoformat() if session.expires_at else None,
        }
        actions = [
            self.table.t_update(
                keys.bank_link_slot(tenant_id, invitation_id, number, slot.slot),
                {**opened, "state": SlotState.OPEN.value, "task_token": token},
                condition="#st = :requested",
                names={"#st": "state"},
                values={":requested": SlotState.REQUESTED.value},
            ),
            self.table.t_put(
                {**keys.provider_session(provider, session.session_id), "type": "provider_session", **_stored(lookup)}
            ),
            self.table.t_update(
                keys.bank_link_attempt(tenant_id, invitation_id, number),
                {"current_slot": slot.slot, "current_provider": provider},
                condition="attribute_exists(PK)",
            ),
        ]
        self.table.transact(actions, conflict=lambda _: AlreadyClosed("the provider slot was already decided"))

    def remember_credential(self, slot: SlotRecord, credential: str) -> None:
        """Keep what the link webhook carried (Plaid's public token ...) for the data step to connect with."""
        self.table.update(_slot_key(slot), {"credential": credential}, condition="attribute_exists(PK)")

    def close_slot(self, slot: SlotRecord, decision: SlotDecision, extra: list[Action]) -> bool:
        """Record the slot's decision with ``extra`` (history, attempt, dedupe) atomically.

        Returns False, writing nothing, when the slot was already closed or any extra condition failed.
        """
        action = self.table.t_update(
            _slot_key(slot),
            decision.model_dump(mode="json"),
            condition="#st IN (:requested, :open)",
            names={"#st": "state"},
            values={":requested": OPEN_SLOT_STATES[0], ":open": OPEN_SLOT_STATES[1]},
        )
        try:
            self.table.transact([action, *extra], conflict=lambda _: AlreadyClosed("already decided"))
        except AlreadyClosed:
            return False
        return True

    # --- provider sessions and webhook dedupe ---------------------------------------------------
    def session_lookup(self, provider: str, session_id: str) -> SessionLookup | None:
        item = self.table.get(keys.provider_session(provider, session_id), consistent=True)
        return SessionLookup.model_validate(item) if item else None

    def seen(self, scope: str, event_id: str) -> bool:
        return self.table.get(keys.dedupe(scope, event_id), consistent=True) is not None

    def dedupe_action(self, scope: str, event_id: str, expires_at: int) -> Action:
        return self.table.t_put_new(
            {**keys.dedupe(scope, event_id), "type": "dedupe", "scope": scope, "expires_at": expires_at}
        )

    # --- documents ----------------------------------------------------------------------------
    def put_document(self, record: Item) -> None:
        key = keys.document(record["tenant_id"], record["invitation_id"], record["document_id"])
        self.table.put_new({**key, "type": "document", **record})

    def document(self, tenant_id: str, invitation_id: str, document_id: str) -> Item | None:
        return self.table.get(keys.document(tenant_id, invitation_id, document_id), consistent=True)

    def documents(self, tenant_id: str, invitation_id: str) -> list[Item]:
        items, _ = self.table.query(
            keys.invitation_pk(tenant_id, invitation_id), sk_prefix=keys.DOCUMENT_PREFIX, consistent=True
        )
        return items

    def mark_uploaded_action(
        self, tenant_id: str, invitation_id: str, document_id: str, changes: dict[str, Any]
    ) -> Action:
        return self.table.t_update(
            keys.document(tenant_id, invitation_id, document_id),
            {"state": "uploaded", **changes},
            condition="#st = :pending",
            names={"#st": "state"},
            values={":pending": "pending"},
        )

    def mark_expired_action(self, tenant_id: str, invitation_id: str, document_id: str) -> Action:
        """A pending upload whose presigned POST expired with no file: ``expired`` (hidden from every view)."""
        return self._close_pending(tenant_id, invitation_id, document_id, {"state": "expired"})

    def mark_removed_action(self, tenant_id: str, invitation_id: str, document_id: str, at: str) -> Action:
        """A pending upload the customer removed: ``removed`` (hidden from every view, takes no file later)."""
        return self._close_pending(tenant_id, invitation_id, document_id, {"state": "removed", "removed_at": at})

    def mark_discarded(self, tenant_id: str, invitation_id: str, document_id: str, at: str) -> None:
        """A removed upload whose link has expired and whose late file (if any) was deleted: never looked at again."""
        self.table.update(
            keys.document(tenant_id, invitation_id, document_id),
            {"discarded_at": at},
            condition="#st = :removed",
            names={"#st": "state"},
            values={":removed": "removed"},
        )

    def _close_pending(self, tenant_id: str, invitation_id: str, document_id: str, changes: dict[str, Any]) -> Action:
        return self.table.t_update(
            keys.document(tenant_id, invitation_id, document_id),
            changes,
            condition="#st = :pending",
            names={"#st": "state"},
            values={":pending": "pending"},
        )

    # --- portal submission --------------------------------------------------------------------
    def submission(self, tenant_id: str, invitation_id: str) -> Item | None:
        return self.table.get(keys.portal_submission(tenant_id, invitation_id), consistent=True)

    def submission_action(self, tenant_id: str, invitation_id: str, event: dict[str, Any]) -> Action:
        return self.table.t_put_new(
            {**keys.portal_submission(tenant_id, invitation_id), "type": "portal_submission", "event": event}
        )

    def mark_submission_published(self, tenant_id: str, invitation_id: str) -> None:
        self.table.update(keys.portal_submission(tenant_id, invitation_id), {"published": True})

    def transact(self, actions: list[Action]) -> None:
        self.table.transact(actions)

    # --- disconnect ---------------------------------------------------------------------------
    def delete_all(self, tenant_id: str, invitation_id: str) -> tuple[int, int, int]:
        """Delete attempts, slots, provider-session lookups and document records.

        Returns (bank-link items, provider sessions, documents) deleted.
        """
        pk = keys.invitation_pk(tenant_id, invitation_id)
        # The attempt counter stays: execution names must never be reused.
        links, _ = self.table.query(pk, sk_prefix=keys.BANK_LINK_ATTEMPT_PREFIX, consistent=True)
        docs, _ = self.table.query(pk, sk_prefix=keys.DOCUMENT_PREFIX, consistent=True)
        sessions = 0
        for item in links:
            if item.get("type") == "bank_link_slot" and item.get("session_id"):
                self.table.delete(keys.provider_session(item["provider"], item["session_id"]))
                sessions += 1
        for item in [*links, *docs]:
            self.table.delete({"PK": item["PK"], "SK": item["SK"]})
        return len(links), sessions, len(docs)


def _slot_key(slot: SlotRecord) -> dict[str, str]:
    return keys.bank_link_slot(slot.tenant_id, slot.invitation_id, slot.attempt, slot.slot)


def _stored(record: Model) -> dict[str, Any]:
    """A record's attributes as stored: JSON types (enums as values, datetimes ISO 8601), no empty ones."""
    return record.model_dump(mode="json", exclude_none=True)
