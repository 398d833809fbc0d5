"""Use cases of the customer's financial data: the waterfall's data step, the lender's reads, removal.

After a link succeeds the state machine (infra/waterfall.asl.json, state ``FetchData``) posts a
``financial_data`` message with a task token. The worker turns the link's credential into a lasting
connection once, fetches accounts, balances and transactions from the provider that linked, keeps the
raw answers and the normalised data in the documents bucket (under the invitation's prefix, so a
disconnect removes them with the documents), writes the accounts and the summary to DynamoDB, and
answers the task. "Come back later" answers fail the task with a named error that the state machine
retries with backoff; nothing sleeps in a Lambda. When the retries run out, ``financial_data_failed``
records why.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.domain.csv_rows import to_csv
from chalicelib.domain.financial import (
    DEFAULT_HISTORY_DAYS,
    ConnectionRecord,
    FinancialData,
    FinancialDataStatus,
    FinancialDataView,
    FinancialRecord,
    Summary,
    TransactionFilter,
    TransactionPage,
    TransactionQuery,
    select_transactions,
    summarise,
)
from chalicelib.domain.invitation import InvitationEvent, utcnow
from chalicelib.domain.model import Model
from chalicelib.domain.notifications import NotificationType
from chalicelib.domain.providers import Provider
from chalicelib.domain.waterfall import AttemptState, SlotRecord, SlotState, document_prefix, execution_name
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.bank_links import BankLinkRepository
    from chalicelib.adapters.dynamo.financial import FinancialRepository
    from chalicelib.adapters.dynamo.invitations import InvitationRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.providers.base import Connection, FinancialDataSource
    from chalicelib.adapters.workflow import Workflow
    from chalicelib.domain.invitation import Invitation
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.notifications import NotificationService

CSV_HEADER = ["date", "account_id", "account_name", "amount", "currency", "description", "category", "pending"]


class FinancialDataRequest(Model):
    """What the ``FetchData`` state posts to the link-request queue."""

    type: Literal["financial_data"]
    task_token: str
    tenant_id: str
    invitation_id: str
    attempt: int
    provider: Provider | None = None


class FinancialDataFailed(Model):
    """What ``DataUnavailable`` posts when the data step gave up."""

    type: Literal["financial_data_failed"]
    tenant_id: str
    invitation_id: str
    attempt: int
    error: dict[str, Any] | None = None


class Forgotten(Model):
    """What removing the financial data did; ``revoke_failed`` lists providers to retry (the call is safe to repeat)."""

    financial_records: int = 0
    connections_revoked: int = 0
    revoke_failed: list[Provider] = []


def data_prefix(tenant_id: str, invitation_id: str, attempt: int) -> str:
    return f"{document_prefix(tenant_id, invitation_id)}financial/attempt-{attempt:04d}/"


class FinancialDataService:
    def __init__(
        self,
        repo: FinancialRepository,
        links: BankLinkRepository,
        invitations: InvitationRepository,
        tenants: TenantRepository,
        workflow: Workflow,
        sources: Mapping[Provider, FinancialDataSource],
        documents: DocumentStore,
        notifications: NotificationService | None = None,
    ) -> None:
        self.repo = repo
        self.links = links
        self.invitations = invitations
        self.tenants = tenants
        self.workflow = workflow
        self.sources = sources
        self.documents = documents
        self.notifications = notifications

    # --- the data step --------------------------------------------------------------------------
    def handle_request(self, message: FinancialDataRequest) -> str:
        """Fetch and store the data of the attempt's linked provider, then answer the task.

        A redelivery (or a retry after the data was stored) writes nothing and answers again. Raises
        UpstreamError (the SQS message is retried) when AWS itself fails.
        """
        from chalicelib.adapters.providers.base import DataNotReady, ProviderError, RateLimited

        inv = self.invitations.get(message.tenant_id, message.invitation_id)
        attempt = self.links.attempt(message.tenant_id, message.invitation_id, message.attempt)
        if inv is None or attempt is None or attempt.state is not AttemptState.LINKED:
            # Deleted or disconnected while the step waited: there is nothing to fetch for anyone.
            self.workflow.succeed(message.task_token, {"outcome": "gone"})
            return "gone"
        record = self.repo.record(inv.tenant_id, inv.invitation_id)
        if record and record.attempt == message.attempt and record.state is FinancialDataStatus.READY:
            self.workflow.succeed(message.task_token, {"outcome": "ready", "transactions": record.transaction_count})
            return "duplicate"
        slot = self._linked_slot(inv, message.attempt)
        provider = slot.provider if slot else message.provider
        source = self.sources.get(provider) if provider else None
        if slot is None or source is None or provider is None:
            self.workflow.fail(message.task_token, "FinancialData.Failed", "no linked provider can serve data")
            return "failed"
        tenant = self.tenants.get(inv.tenant_id)
        days = tenant.settings.financial_history_days if tenant else DEFAULT_HISTORY_DAYS
        end = utcnow().date()
        start = end - timedelta(days=days - 1)
        try:
            connection = self._connection(inv, provider, slot, source)
            fetched = source.fetch(connection, start, end)
        except (DataNotReady, RateLimited) as exc:
            logger.info(
                "Financial data not ready; the state machine retries",
                extra={
                    "provider": str(provider),
                    "invitation_id": inv.invitation_id,
                    "partner_code": exc.partner_code,
                },
            )
            self.workflow.fail(message.task_token, exc.error_name, "the provider asked us to come back later")
            return "not_ready"
        except ProviderError as exc:
            logger.warning(
                "Financial data fetch failed",
                extra={
                    "provider": str(provider),
                    "invitation_id": inv.invitation_id,
                    "partner_code": exc.partner_code,
                },
            )
            error = "FinancialData.Retryable" if exc.retryable else "FinancialData.Failed"
            self.workflow.fail(
                message.task_token, error, exc.error_class.value if exc.error_class else "provider_error"
            )
            return "failed"
        stored = self._store(inv, message.attempt, fetched.data, fetched.raw)
        self.workflow.succeed(message.task_token, {"outcome": "ready", "transactions": len(fetched.data.transactions)})
        return "ready" if stored else "duplicate"

    def _linked_slot(self, inv: Invitation, attempt: int) -> SlotRecord | None:
        _, slots = self.links.everything(inv.tenant_id, inv.invitation_id)
        return next((s for s in slots if s.attempt == attempt and s.state is SlotState.LINKED), None)

    def _connection(
        self, inv: Invitation, provider: Provider, slot: SlotRecord, source: FinancialDataSource
    ) -> Connection:
        """The stored connection of this link, or a new one made from the link's credential (once).

        Raises ProviderError (the credential is missing, or the provider refused it).
        """
        from chalicelib.adapters.providers.base import Connection, ProviderError

        session = slot.session_id or ""
        stored = self.repo.connection(inv.tenant_id, inv.invitation_id, str(provider))
        if stored and stored.session_id == session:
            return Connection(provider, stored.access, stored.item_id)
        if not slot.credential:
            raise ProviderError("the link carried no credential for the data")
        connection = source.connect(slot.credential)
        self.repo.save_connection(
            inv.tenant_id,
            inv.invitation_id,
            ConnectionRecord(
                provider=provider,
                session_id=session,
                access=connection.access,
                item_id=connection.item_id,
                created_at=utcnow(),
            ),
        )
        return connection

    def _store(self, inv: Invitation, attempt: int, data: FinancialData, raw: list[tuple[str, Any]]) -> bool:
        """Raw answers and normalised data to S3, then the record and its history event once."""
        prefix = data_prefix(inv.tenant_id, inv.invitation_id, attempt)
        for name, body in raw:
            self.documents.put_json(f"{prefix}raw/{name}.json", body)
        transactions_key = f"{prefix}normalised.json"
        self.documents.put_json(transactions_key, data.model_dump(mode="json"))
        summary = summarise(data)
        now = utcnow()
        record = FinancialRecord(
            state=FinancialDataStatus.READY,
            attempt=attempt,
            provider=data.provider,
            institution=data.institution,
            fetched_at=data.fetched_at,
            period_start=data.period_start,
            period_end=data.period_end,
            transaction_count=len(data.transactions),
            transactions_key=transactions_key,
            accounts=json.dumps([a.model_dump(mode="json") for a in data.accounts]),
            summary=summary.model_dump_json(),
            updated_at=now,
        )
        event = InvitationEvent(
            type="financial_data_ready",
            actor="waterfall",
            at=now,
            details={
                "attempt": attempt,
                "provider": str(data.provider),
                "accounts": len(data.accounts),
                "transactions": len(data.transactions),
            },
        )
        created = self.repo.transact(
            [
                self.repo.finish_action(inv.tenant_id, inv.invitation_id, record),
                self.invitations.event_action(inv, event),
            ]
        )
        if created:
            logger.info(
                "Financial data ready",
                extra={"invitation_id": inv.invitation_id, "provider": str(data.provider)},
            )
        if self.notifications is not None:
            # Raised again with the same key after a crash between the write and here: the lender gets it once.
            self.notifications.notify(
                inv.tenant_id,
                NotificationType.FINANCIAL_DATA_READY,
                inv.invitation_id,
                {
                    "provider": str(data.provider),
                    "accounts": len(data.accounts),
                    "transactions": len(data.transactions),
                    "period_start": data.period_start.isoformat(),
                    "period_end": data.period_end.isoformat(),
                },
                key=f"financial_data_ready:{execution_name(inv.invitation_id, attempt)}",
            )
        return created

    def handle_failed(self, message: FinancialDataFailed) -> str:
        """The data step gave up: record why, once (never over data that is ready)."""
        inv = self.invitations.get(message.tenant_id, message.invitation_id)
        if inv is None:
            return "gone"
        error = message.error or {}
        reason = str(error.get("Cause") or error.get("Error") or "provider_error")[:200]
        now = utcnow()
        record = FinancialRecord(
            state=FinancialDataStatus.FAILED,
            attempt=message.attempt,
            reason=reason,
            error=str(error.get("Error") or "")[:100],
            updated_at=now,
        )
        event = InvitationEvent(
            type="financial_data_failed",
            actor="waterfall",
            at=now,
            details={"attempt": message.attempt, "reason": reason},
        )
        current = self.repo.record(inv.tenant_id, inv.invitation_id)
        if current and current.attempt == message.attempt and current.state is FinancialDataStatus.FAILED:
            return "duplicate"
        written = self.repo.transact(
            [
                self.repo.finish_action(inv.tenant_id, inv.invitation_id, record),
                self.invitations.event_action(inv, event),
            ]
        )
        return "failed" if written else "duplicate"

    # --- the lender's reads ---------------------------------------------------------------------
    def _invitation(self, tenant: Tenant, invitation_id: str) -> Invitation:
        inv = self.invitations.get(tenant.tenant_id, invitation_id) if invitation_id.startswith("inv_") else None
        if inv is None:
            raise NotFound("no such invitation")
        return inv

    def view(self, tenant: Tenant, invitation_id: str) -> FinancialDataView:
        inv = self._invitation(tenant, invitation_id)
        record = self.repo.record(inv.tenant_id, inv.invitation_id)
        if record is None or (record.state is FinancialDataStatus.FAILED and self._linked_later(inv, record)):
            linked = self._latest_linked(inv)
            status = FinancialDataStatus.PENDING if linked else FinancialDataStatus.NONE
            return FinancialDataView(invitation_id=inv.invitation_id, status=status)
        if record.state is FinancialDataStatus.FAILED:
            return FinancialDataView(
                invitation_id=inv.invitation_id, status=FinancialDataStatus.FAILED, reason=record.reason
            )
        return FinancialDataView(
            invitation_id=inv.invitation_id,
            status=FinancialDataStatus.READY,
            provider=record.provider,
            institution=record.institution,
            fetched_at=record.fetched_at,
            period_start=record.period_start,
            period_end=record.period_end,
            accounts=json.loads(record.accounts),
            transaction_count=record.transaction_count,
            summary=Summary.model_validate_json(record.summary) if record.summary else None,
        )

    def _latest_linked(self, inv: Invitation) -> int | None:
        number = self.links.current_attempt_number(inv.tenant_id, inv.invitation_id)
        attempt = self.links.attempt(inv.tenant_id, inv.invitation_id, number)
        return number if attempt and attempt.state is AttemptState.LINKED else None

    def _linked_later(self, inv: Invitation, record: FinancialRecord) -> bool:
        latest = self._latest_linked(inv)
        return latest is not None and latest > record.attempt

    def _data(self, tenant: Tenant, invitation_id: str) -> tuple[FinancialData | None, str]:
        """The stored data, or None while there is none (no link yet, pending, failed, disconnected)."""
        inv = self._invitation(tenant, invitation_id)
        record = self.repo.record(inv.tenant_id, inv.invitation_id)
        if record is None or record.state is not FinancialDataStatus.READY or not record.transactions_key:
            return None, ""
        stored = self.documents.get_json(record.transactions_key)
        if stored is None:
            return None, ""
        # The cursor's version: a new fetch invalidates the cursors handed out before it.
        return FinancialData.model_validate(stored), record.fetched_at.isoformat() if record.fetched_at else ""

    def transactions(self, tenant: Tenant, invitation_id: str, query: TransactionQuery) -> TransactionPage:
        """Empty while there is no data: ``GET .../financial-data`` says why."""
        data, version = self._data(tenant, invitation_id)
        if data is None:
            return TransactionPage(items=[])
        chosen = select_transactions(data.transactions, query)
        offset = _decode_cursor(query.cursor, version)
        page = chosen[offset : offset + query.limit]
        more = offset + query.limit < len(chosen)
        return TransactionPage(items=page, next_cursor=_encode_cursor(offset + query.limit, version) if more else None)

    def transactions_csv(self, tenant: Tenant, invitation_id: str, query: TransactionFilter) -> str:
        data, _ = self._data(tenant, invitation_id)
        rows: list[list[Any]] = [CSV_HEADER]
        if data is None:
            return to_csv(rows)
        accounts = {a.account_id: a for a in data.accounts}
        for t in select_transactions(data.transactions, query):
            account = accounts.get(t.account_id)
            rows.append(
                [
                    t.date.isoformat(),
                    t.account_id,
                    account.name if account else "",
                    str(t.amount),
                    account.currency if account else "",
                    t.description,
                    t.category or "",
                    "true" if t.pending else "false",
                ]
            )
        return to_csv(rows)

    # --- removal --------------------------------------------------------------------------------
    def forget(self, tenant_id: str, invitation_id: str) -> Forgotten:
        """Revoke every provider connection that has a revoke API, then delete the record.

        The S3 objects are under the invitation's document prefix: the caller deletes them with the
        documents. A connection whose revoke failed is kept (and reported) so that repeating the call
        retries it; nothing is deleted silently while the provider still holds access.
        """
        from chalicelib.adapters.providers.base import Connection, ProviderError

        revoked, failed = 0, []
        for stored in self.repo.connections(tenant_id, invitation_id):
            provider = stored.provider
            source = self.sources.get(provider)
            try:
                if source is not None:
                    source.revoke(Connection(provider, stored.access, stored.item_id))
            except ProviderError:
                logger.warning("Revoking a provider connection failed", extra={"provider": str(provider)})
                failed.append(provider)
                continue
            self.repo.delete_connection(tenant_id, invitation_id, stored)
            revoked += 1
        records = 1 if self.repo.delete_record(tenant_id, invitation_id) else 0
        return Forgotten(financial_records=records, connections_revoked=revoked, revoke_failed=failed)


def _encode_cursor(offset: int, version: str) -> str:
    raw = json.dumps({"o": offset, "v": version}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, version: str) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValidationFailed("cursor is not valid", fields={"cursor": "not a cursor from this API"}) from exc
    if data.get("v") != version or offset < 0:
        raise ValidationFailed("cursor is not valid", fields={"cursor": "the data was fetched again; start over"})
    return offset
