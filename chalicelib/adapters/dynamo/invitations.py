"""Invitation persistence: the invitation, its guards, link tokens, history, sends and communications.

Every state change is one TransactWriteItems call: the invitation (with a version condition), its
history event and whatever else must change with it, so nothing is half-written.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamo import keys
from chalicelib.adapters.dynamo.table import serialize
from chalicelib.domain.invitation import (
    PORTAL_LINK,
    Communication,
    Invitation,
    InvitationEvent,
    PortalToken,
    business_key,
    replaceable_outcomes,
    search_text,
    utcnow,
)
from chalicelib.domain.model import Model
from chalicelib.domain.sending import DayStats
from chalicelib.domain.tenant import Tenant
from chalicelib.errors import ConcurrentModification, Conflict

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date, datetime

    from chalicelib.adapters.dynamo.table import Item, Table

Action = dict[str, Any]
LINK_LOOKUP_GRACE = timedelta(days=30)


_sequence = itertools.count()


class SendContext(Model):
    """What the send worker needs to deliver one send, read in one call."""

    request: dict[str, Any] | None
    invitation: Invitation | None
    tenant: Tenant | None
    # The lender's counters of the day before (its quota grows from them); None before any send.
    previous_day: DayStats | None


def _event_sort(at: datetime) -> str:
    """Time, then this process's sequence (events written in one call keep their order), then randomness."""
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{next(_sequence):012d}#{secrets.token_hex(3)}"


def _epoch(at: datetime | None) -> int | None:
    return int(at.timestamp()) if at else None


class InvitationRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- items --------------------------------------------------------------------------------
    @staticmethod
    def item(inv: Invitation) -> Item:
        data = inv.model_dump(mode="json")
        data["link_nonce"] = inv.link_nonce
        return {
            **keys.invitation(inv.tenant_id, inv.invitation_id),
            "type": "invitation",
            **data,
            "GSI1PK": keys.status_index(inv.tenant_id, inv.status),
            "GSI1SK": inv.invitation_id,
            "GSI2PK": (
                keys.staff_owner_index(inv.tenant_id, inv.owner_staff_id)
                if inv.owner_staff_id
                else keys.owner_index(inv.tenant_id, inv.owner)
            ),
            "GSI2SK": inv.invitation_id,
            "GSI3PK": keys.delivery_index(inv.tenant_id, inv.delivery_status),
            "GSI3SK": inv.invitation_id,
            # What the console's "search by email or name" matches (a contains() filter, lowercased).
            "search_text": search_text(inv),
        }

    @staticmethod
    def from_item(item: Item) -> Invitation:
        return Invitation.model_validate(item)

    def email_guard_item(self, inv: Invitation) -> Item:
        return {
            **keys.email_guard(inv.tenant_id, inv.email, business_key(inv.business_legal_name)),
            "type": "email_guard",
            "invitation_id": inv.invitation_id,
        }

    def event_action(self, inv: Invitation, event: InvitationEvent) -> Action:
        return self.table.t_put_new(
            {
                **keys.invitation_event(inv.tenant_id, inv.invitation_id, _event_sort(event.at)),
                "type": "event",
                **event.model_dump(mode="json"),
            }
        )

    def token_actions(self, inv: Invitation, new_hash: str | None, old_hash: str | None, purpose: str) -> list[Action]:
        actions: list[Action] = []
        if old_hash and old_hash != new_hash:
            # The replaced link's lookup stays, as a tombstone, for a month: it opens nothing
            # (resolve() compares with the current link), but "send me a fresh link" from an old
            # email still finds its invitation.
            actions.append(
                self.table.t_put(
                    {
                        **keys.link_token(old_hash),
                        "type": "link_token",
                        "purpose": purpose,
                        "replaced": True,
                        "tenant_id": inv.tenant_id,
                        "invitation_id": inv.invitation_id,
                        "expires_at": _epoch(utcnow() + LINK_LOOKUP_GRACE),
                    }
                )
            )
        if new_hash:
            actions.append(
                self.table.t_put(
                    {
                        **keys.link_token(new_hash),
                        "type": "link_token",
                        "purpose": purpose,
                        "tenant_id": inv.tenant_id,
                        "invitation_id": inv.invitation_id,
                        # Kept a month past the link's expiry: "send me a fresh link" still finds the
                        # invitation from an expired link (resolve() checks the expiry itself).
                        "expires_at": _epoch(inv.link_expires_at + LINK_LOOKUP_GRACE if inv.link_expires_at else None),
                    }
                )
            )
        return actions

    def send_request_action(
        self,
        inv: Invitation,
        send_id: str,
        reason: str,
        at: datetime,
        template: str = "invitation",
        details: dict[str, Any] | None = None,
    ) -> Action:
        """The outbox record of one send. ``template`` picks the message (and its link) in the send
        worker; ``details`` carries what that template needs (e.g. a confirmation's link nonce)."""
        return self.table.t_put_new(
            {
                **(details or {}),
                **keys.send_request(inv.tenant_id, inv.invitation_id, send_id),
                "type": "send_request",
                "send_id": send_id,
                "tenant_id": inv.tenant_id,
                "invitation_id": inv.invitation_id,
                "link_version": inv.link_version,
                "channel": inv.channel.value,
                "reason": reason,
                "template": template,
                "state": "queued",
                "created_at": at.isoformat(),
                # Sparse outbox index: the relay re-enqueues send requests whose SQS message was lost.
                "GSI1PK": "OUTBOX#queued",
                "GSI1SK": f"{at.isoformat()}#{send_id}",
            }
        )

    # --- writes -------------------------------------------------------------------------------
    def create(self, inv: Invitation, extra: list[Action]) -> None:
        """Create the invitation and its email guard with ``extra`` actions, atomically.

        Raises Conflict naming the existing invitation when the (email, business name) pair is taken.
        """

        def taken(reasons: list[str]) -> Exception:
            guard = self.table.get(
                keys.email_guard(inv.tenant_id, inv.email, business_key(inv.business_legal_name)), consistent=True
            )
            if guard and guard["invitation_id"] != inv.invitation_id:
                return Conflict(
                    f"an open invitation for this email already exists: {guard['invitation_id']}",
                    fields={"email": f"already invited as {guard['invitation_id']}"},
                )
            return ConcurrentModification("a concurrent request changed the same data, please retry")

        self.table.transact(
            [self.table.t_put_new(self.email_guard_item(inv)), self.table.t_put_new(self.item(inv)), *extra],
            conflict=taken,
        )

    def save(
        self,
        before: Invitation,
        after: Invitation,
        extra: list[Action],
        conflict: Callable[[list[str]], Exception] | None = None,
    ) -> None:
        """Write ``after`` if the stored version is still ``before.version``; raises ConcurrentModification,
        or ``conflict(reasons)`` when given (reasons: the invitation's first, then ``extra``'s in order)."""
        item = self.item(after)
        put = self.table.t_put(item)
        put["Put"]["ConditionExpression"] = "#v = :v"
        put["Put"]["ExpressionAttributeNames"] = {"#v": "version"}
        put["Put"]["ExpressionAttributeValues"] = {":v": {"N": str(before.version)}}
        actions = [put, *extra]
        if (before.email, business_key(before.business_legal_name)) != (
            after.email,
            business_key(after.business_legal_name),
        ):
            actions.append(
                self.table.t_delete(
                    keys.email_guard(before.tenant_id, before.email, business_key(before.business_legal_name))
                )
            )
            actions.append(self.table.t_put_new(self.email_guard_item(after)))

        guard_moved = len(actions) > 1 + len(extra)

        def lost(reasons: list[str]) -> Exception:
            if guard_moved and reasons and reasons[0] == "None" and reasons[-1] == "ConditionalCheckFailed":
                return Conflict(
                    "another open invitation already has this email and business legal name",
                    fields={"email": "already invited"},
                )
            return ConcurrentModification("the invitation was changed by someone else; reload it and try again")

        self.table.transact(actions, conflict=conflict or lost)

    def mutate(
        self,
        tenant_id: str,
        invitation_id: str,
        change: Callable[[Invitation], tuple[Invitation, list[Action]] | None],
        attempts: int = 6,
        *,
        known: Invitation | None = None,
        conflict: Callable[[list[str]], Exception] | None = None,
    ) -> Invitation | None:
        """Apply a system change under optimistic locking, re-reading and retrying when another write won.

        ``change`` returns the new invitation (its version is bumped here) and the actions that go
        with it, or None for no change. Returns the saved invitation, or None (missing or unchanged).
        ``known`` is a copy just read (the first try then reads nothing); ``conflict`` maps a cancelled
        write's reasons to the exception to raise (ConcurrentModification tries again).
        """
        for _ in range(attempts):
            current, known = (known, None) if known is not None else (self.get(tenant_id, invitation_id), None)
            if current is None:
                return None
            outcome = change(current)
            if outcome is None:
                return None
            after, actions = outcome
            after = after.model_copy(update={"version": current.version + 1, "updated_at": utcnow()})
            try:
                self.save(current, after, actions, conflict=conflict)
            except ConcurrentModification:
                continue
            return after
        raise ConcurrentModification("the invitation kept changing; the update will be retried")

    def release_actions(self, inv: Invitation, token_hash: str | None) -> list[Action]:
        """Free the invitation's email guard and drop its portal link lookup (customer removal)."""
        actions = [
            self.table.t_delete(keys.email_guard(inv.tenant_id, inv.email, business_key(inv.business_legal_name)))
        ]
        if token_hash:
            actions.append(self.table.t_delete(keys.link_token(token_hash)))
        return actions

    def delete(self, inv: Invitation, token_hash: str | None) -> None:
        actions = [
            self.table.t_delete(keys.invitation(inv.tenant_id, inv.invitation_id), "version = :v", {":v": inv.version}),
            self.table.t_delete(keys.email_guard(inv.tenant_id, inv.email, business_key(inv.business_legal_name))),
        ]
        if token_hash:
            actions.append(self.table.t_delete(keys.link_token(token_hash)))
        self.table.transact(
            actions,
            conflict=lambda r: ConcurrentModification("the invitation was changed by someone else; reload it"),
        )
        # History, sends and communications go with it (their partition is the invitation's own).
        items, _ = self.table.query(keys.invitation_pk(inv.tenant_id, inv.invitation_id))
        for item in items:
            self.table.delete({"PK": item["PK"], "SK": item["SK"]})

    # --- reads --------------------------------------------------------------------------------
    def get(self, tenant_id: str, invitation_id: str, consistent: bool = True) -> Invitation | None:
        item = self.table.get(keys.invitation(tenant_id, invitation_id), consistent=consistent)
        return self.from_item(item) if item else None

    def get_many(self, tenant_id: str, invitation_ids: list[str]) -> dict[str, Invitation]:
        """The invitations that exist among ``invitation_ids``, by id: one BatchGetItem per 100."""
        wanted = list(dict.fromkeys(i for i in invitation_ids if i.startswith("inv_")))
        found = self.table.batch_get([keys.invitation(tenant_id, i) for i in wanted])
        return {inv.invitation_id: inv for inv in (self.from_item(item) for item in found)}

    def by_email(self, tenant_id: str, email: str) -> list[Invitation]:
        guards, _ = self.table.query(keys.tenant_pk(tenant_id), sk_prefix=keys.email_guard_prefix(email))
        found = self.table.batch_get([keys.invitation(tenant_id, g["invitation_id"]) for g in guards])
        return sorted((self.from_item(i) for i in found), key=lambda i: i.invitation_id, reverse=True)

    def email_page(
        self, tenant_id: str, email: str, limit: int, cursor: str | None
    ) -> tuple[list[Invitation], str | None]:
        """One page of the invitations of one email (one per business legal name), through their
        email guards in business-name order; the cursor continues from the last guard read."""
        guards, next_cursor = self.table.page(
            keys.tenant_pk(tenant_id), cursor, limit, sk_prefix=keys.email_guard_prefix(email)
        )
        found = {
            i["invitation_id"]: i
            for i in self.table.batch_get([keys.invitation(tenant_id, g["invitation_id"]) for g in guards])
        }
        ordered = (found.get(g["invitation_id"]) for g in guards)
        return [self.from_item(i) for i in ordered if i is not None], next_cursor

    def page(
        self, tenant_id: str, filters: dict[str, str], limit: int, cursor: str | None, text: str | None = None
    ) -> tuple[list[Invitation], str | None]:
        """Newest first. Picks the index that serves the most selective filter; the rest filter the
        page, and ``text`` (lowercased) must be part of the name, business name or email."""
        remaining = dict(filters)
        index: str | None
        if "owner_staff_id" in remaining:
            index, pk = keys.GSI_OWNER, keys.staff_owner_index(tenant_id, remaining.pop("owner_staff_id"))
        elif "owner" in remaining:
            index, pk = keys.GSI_OWNER, keys.owner_index(tenant_id, remaining.pop("owner"))
        elif "status" in remaining:
            index, pk = keys.GSI_STATUS, keys.status_index(tenant_id, remaining.pop("status"))
        elif "delivery_status" in remaining:
            index, pk = keys.GSI_DELIVERY, keys.delivery_index(tenant_id, remaining.pop("delivery_status"))
        else:
            index, pk = None, keys.tenant_pk(tenant_id)
        items, next_cursor = self.table.page(
            pk,
            cursor,
            limit,
            index=index,
            sk_prefix=None if index else keys.INVITATION_PREFIX,
            newest_first=True,
            filters=remaining or None,
            contains={"search_text": text} if text else None,
        )
        return [self.from_item(i) for i in items], next_cursor

    def history(
        self, tenant_id: str, invitation_id: str, limit: int, cursor: str | None
    ) -> tuple[list[InvitationEvent], str | None]:
        pk = keys.invitation_pk(tenant_id, invitation_id)
        items, next_cursor = self.table.page(pk, cursor, limit, sk_prefix=keys.EVENT_PREFIX)
        return [InvitationEvent.model_validate(i) for i in items], next_cursor

    def append_event(self, inv: Invitation, event: InvitationEvent) -> None:
        self.table.transact([self.event_action(inv, event)])

    # --- link tokens --------------------------------------------------------------------------
    def portal_token(self, token_hash: str) -> PortalToken | None:
        """The portal link of this hash (current or replaced); None for another kind of link."""
        item = self.table.get(keys.link_token(token_hash), consistent=True)
        return PortalToken.model_validate(item) if item and item.get("purpose") == PORTAL_LINK else None

    def token_exists(self, token_hash: str) -> bool:
        """Whether a link token of any kind is stored under this hash."""
        return self.table.get(keys.link_token(token_hash), consistent=True) is not None

    # --- sends and communications -------------------------------------------------------------
    def send_request(self, tenant_id: str, invitation_id: str, send_id: str) -> Item | None:
        return self.table.get(keys.send_request(tenant_id, invitation_id, send_id), consistent=True)

    def send_context(self, tenant_id: str, invitation_id: str, send_id: str, previous_day: date) -> SendContext:
        """The send request, its invitation, the lender and the lender's counters of ``previous_day``: one
        strongly consistent BatchGetItem."""
        wanted = {
            "request": keys.send_request(tenant_id, invitation_id, send_id),
            "invitation": keys.invitation(tenant_id, invitation_id),
            "tenant": keys.tenant(tenant_id),
            "previous_day": keys.send_stats(tenant_id, previous_day.isoformat()),
        }
        found = {(i["PK"], i["SK"]): i for i in self.table.batch_get(list(wanted.values()), consistent=True)}
        got = {name: found.get((key["PK"], key["SK"])) for name, key in wanted.items()}
        return SendContext(
            request=got["request"],
            invitation=self.from_item(got["invitation"]) if got["invitation"] else None,
            tenant=Tenant.model_validate(got["tenant"]) if got["tenant"] else None,
            previous_day=DayStats.model_validate(got["previous_day"]) if got["previous_day"] else None,
        )

    def claim_action(self, request: Item, channel: str, lease_until: int, now: int) -> Action:
        """Take one channel of an open send request for ``lease_until`` (epoch seconds): fails while another
        worker holds it, once that channel is done, and once the request is closed or in another deferral
        round. A worker that dies mid-send leaves the claim to expire, and a later try takes it."""
        round_seen = int(request.get("defer_round", 0))
        same_round = "(attribute_not_exists(#r) OR #r = :round)" if round_seen == 0 else "#r = :round"
        return self.table.t_update(
            {"PK": request["PK"], "SK": request["SK"]},
            {f"claim_{channel}": lease_until},
            condition=(
                f"#st IN (:queued, :deferred) AND {same_round} AND "
                "(attribute_not_exists(#claim) OR #claim < :now) AND attribute_not_exists(#done)"
            ),
            names={"#st": "state", "#r": "defer_round", "#claim": f"claim_{channel}", "#done": f"done_{channel}"},
            values={":queued": "queued", ":deferred": "deferred", ":round": round_seen, ":now": now},
        )

    def not_suppressed_action(self, tenant_id: str, address: str) -> Action:
        """A transaction check that ``address`` (an email or a phone number) is not on the suppression list."""
        return self.table.t_check(keys.suppression(tenant_id, address), "attribute_not_exists(PK)")

    def claim(self, actions: list[Action]) -> list[str] | None:
        """Commit a claim with what goes with it; None when it went through, else each action's
        cancellation reason (``ConditionalCheckFailed`` where a condition did not hold)."""
        return self.table.transact_or_reasons(actions)

    def release_claim(self, request: Item, channel: str) -> None:
        """Give a channel back after a failed try, so SQS's retry need not wait for the claim to expire."""
        self.table.update({"PK": request["PK"], "SK": request["SK"]}, {f"claim_{channel}": None})

    def remember_done(self, request: Item, done: dict[str, dict[str, Any]]) -> None:
        """Keep what channels already did (a later try of the same send must not do it again)."""
        self.table.update(
            {"PK": request["PK"], "SK": request["SK"]}, {f"done_{channel}": r for channel, r in done.items()}
        )

    def mark_send(self, tenant_id: str, invitation_id: str, send_id: str, state: str, **details: Any) -> None:
        self.table.update(
            keys.send_request(tenant_id, invitation_id, send_id),
            {"state": state, "GSI1PK": None, "GSI1SK": None, **details},
            condition="attribute_exists(PK)",
        )

    def finish_send_action(
        self, tenant_id: str, invitation_id: str, send_id: str, state: str, outcomes: dict[str, str]
    ) -> Action:
        """Close a queued send request (leaving the outbox index); fails if it was already closed."""
        return self.table.t_update(
            keys.send_request(tenant_id, invitation_id, send_id),
            {"state": state, "outcomes": outcomes, "GSI1PK": None, "GSI1SK": None},
            condition="#st IN (:queued, :deferred)",
            names={"#st": "state"},
            values={":queued": "queued", ":deferred": "deferred"},
        )

    def defer_send(
        self,
        tenant_id: str,
        invitation_id: str,
        send_id: str,
        round_seen: int,
        channels: list[str],
        done: dict[str, dict[str, Any]] | None = None,
        until_released: str | None = None,
    ) -> bool:
        """Move an open send request to the next deferral round, keeping what the channels that went already
        did; False when another copy of the message already did (SQS delivers at least once: only one copy
        may go on coming back). ``until_released`` (the request's sort key of creation) lists the request
        among the lender's held sends, which a change of its standing releases at once (see ``held_sends``)."""
        try:
            self.table.update(
                keys.send_request(tenant_id, invitation_id, send_id),
                {
                    "state": "deferred",
                    "held": channels,
                    "GSI1PK": keys.held_sends_index(tenant_id) if until_released else None,
                    "GSI1SK": until_released,
                    **{f"done_{channel}": r for channel, r in (done or {}).items()},
                },
                add={"defer_round": 1},
                condition="#st IN (:queued, :deferred) AND (attribute_not_exists(#r) OR #r = :seen)",
                names={"#st": "state", "#r": "defer_round"},
                values={":queued": "queued", ":deferred": "deferred", ":seen": round_seen},
            )
        except Conflict:
            return False
        return True

    def open_sends(self, tenant_id: str, invitation_id: str) -> list[Item]:
        """The invitation's send requests still queued or deferred."""
        items, _ = self.table.query(keys.invitation_pk(tenant_id, invitation_id), sk_prefix="SEND#", consistent=True)
        return [i for i in items if i.get("state") in ("queued", "deferred")]

    def undo_defer(self, tenant_id: str, invitation_id: str, send_id: str, round_seen: int) -> None:
        self.table.update(
            keys.send_request(tenant_id, invitation_id, send_id),
            {"defer_round": round_seen},
            condition="#r = :next",
            names={"#r": "defer_round"},
            values={":next": round_seen + 1},
        )

    def stale_send_requests(self, older_than: datetime, limit: int = 1000, page_size: int = 100) -> list[Item]:
        """Queued send requests created before ``older_than``, oldest first, up to ``limit``: the
        outbox index is read page by page, so a run of sends that cannot go out yet (or orphans not
        yet closed) never hides a lost one behind it."""
        due = older_than.isoformat()
        found: list[Item] = []
        cursor: dict[str, Any] | None = None
        while len(found) < limit:
            items, cursor = self.table.query(
                "OUTBOX#queued", index=keys.GSI_STATUS, sk_between=("0", due), limit=page_size, cursor=cursor
            )
            # A delayed send (a retry after a transient bounce) is stale only once it is due.
            found.extend(i for i in items if str(i.get("due_at") or i["created_at"]) < due)
            if cursor is None:
                break
        return found[:limit]

    def communication_actions(self, tenant_id: str, comm: Communication, recipient_hash: str) -> list[Action]:
        data = comm.model_dump(mode="json")
        sort = keys.communication_sort(data["created_at"], comm.communication_id)
        record = {
            **keys.communication(tenant_id, comm.invitation_id, comm.communication_id),
            "type": "communication",
            "tenant_id": tenant_id,
            **data,
            # The lender-wide log (see keys.communications_index): all, by channel, by outcome.
            "GSI1PK": keys.communications_index(tenant_id),
            "GSI1SK": sort,
            "GSI2PK": keys.communications_channel_index(tenant_id, comm.channel),
            "GSI2SK": sort,
            "GSI3PK": keys.communications_outcome_index(tenant_id, comm.status),
            "GSI3SK": sort,
        }
        put = self.table.t_put(record)
        # Never over a later outcome (SES feedback): the record is new, or its outcome ranks lower.
        allowed = replaceable_outcomes(comm.status)
        placeholders = {f":o{i}": s for i, s in enumerate(allowed)}
        put["Put"]["ConditionExpression"] = f"attribute_not_exists(PK) OR #st IN ({', '.join(placeholders)})"
        put["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
        put["Put"]["ExpressionAttributeValues"] = serialize(placeholders)
        actions = [put]
        if comm.provider_message_id:
            actions.append(
                self.table.t_put(
                    {
                        **keys.provider_message(comm.provider_message_id),
                        "type": "provider_message",
                        "tenant_id": tenant_id,
                        "invitation_id": comm.invitation_id,
                        "communication_id": comm.communication_id,
                        "channel": comm.channel,
                        "recipient_hash": recipient_hash,
                    }
                )
            )
        return actions

    def record_communication(
        self, tenant_id: str, comm: Communication, recipient_hash: str, extra: list[Action] | None = None
    ) -> bool:
        """Write the message's record; False (nothing written) when it already holds a later outcome."""
        try:
            self.table.transact([*self.communication_actions(tenant_id, comm, recipient_hash), *(extra or [])])
        except Conflict:
            return False
        return True

    def communications(self, tenant_id: str, invitation_id: str) -> list[Communication]:
        items, _ = self.table.query(keys.invitation_pk(tenant_id, invitation_id), sk_prefix=keys.COMMUNICATION_PREFIX)
        return sorted((Communication.model_validate(i) for i in items), key=lambda c: c.created_at)

    def communication_page(
        self,
        tenant_id: str,
        *,
        channel: str | None,
        status: str | None,
        since: date | None,
        until: date | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Communication], str | None]:
        """The lender's messages, newest first: the outcome's index when filtered by outcome (the
        rarer filter), else the channel's, else all; the other filter applies to that query, the
        dates bound its sort key."""
        filters: dict[str, str] = {}
        if status:
            index, pk = keys.GSI_DELIVERY, keys.communications_outcome_index(tenant_id, status)
            if channel:
                filters["channel"] = channel
        elif channel:
            index, pk = keys.GSI_OWNER, keys.communications_channel_index(tenant_id, channel)
        else:
            index, pk = keys.GSI_STATUS, keys.communications_index(tenant_id)
        # ISO times sort as strings: a day's messages lie between "<day>" and "<day>~".
        between = (since.isoformat() if since else "0", f"{until.isoformat()}~" if until else "~")
        items, next_cursor = self.table.page(
            pk, cursor, limit, index=index, sk_between=between, newest_first=True, filters=filters or None
        )
        return [Communication.model_validate(i) for i in items], next_cursor

    def by_provider_message(self, message_id: str) -> Item | None:
        return self.table.get(keys.provider_message(message_id), consistent=True)

    # --- suppression --------------------------------------------------------------------------
    def suppressed(self, tenant_id: str, email: str) -> Item | None:
        return self.table.get(keys.suppression(tenant_id, email), consistent=True)

    def suppress(self, tenant_id: str, email: str, reason: str, at: datetime) -> None:
        self.table.put(
            {
                **keys.suppression(tenant_id, email),
                "type": "suppression",
                "reason": reason,
                "created_at": at.isoformat(),
            }
        )

    # --- idempotency of API requests ----------------------------------------------------------
    def idempotency_record(self, tenant_id: str, scope: str, key: str) -> Item | None:
        return self.table.get(keys.idempotency(tenant_id, scope, key), consistent=True)

    def idempotency_action(
        self, tenant_id: str, scope: str, key: str, body_hash: str, response: dict[str, Any], expires_at: int
    ) -> Action:
        return self.table.t_put_new(
            {
                **keys.idempotency(tenant_id, scope, key),
                "type": "idempotency",
                "body_hash": body_hash,
                "response": response,
                "expires_at": expires_at,
            }
        )
