"""Use cases for customers who joined: remove them, or disconnect only their financial data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.domain.invitation import Invitation, InvitationEvent, PortalStatus, Status, utcnow
from chalicelib.domain.model import Model
from chalicelib.domain.waterfall import DisconnectResult
from chalicelib.errors import Conflict, UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.accounts import AccountRepository
    from chalicelib.adapters.dynamo.invitations import Action, InvitationRepository
    from chalicelib.domain.tenant import Tenant
    from chalicelib.services.bank_links import BankLinkService
    from chalicelib.services.invitations import InvitationService


class CustomerRemoved(Model):
    invitation: Invitation
    financial_data: DisconnectResult


class CustomerService:
    def __init__(
        self,
        invitations: InvitationService,
        repo: InvitationRepository,
        accounts: AccountRepository,
        bank_links: BankLinkService,
    ) -> None:
        self.invitations = invitations
        self.repo = repo
        self.accounts = accounts
        self.bank_links = bank_links

    def remove(self, tenant: Tenant, customer_id: str, actor: str = "lender") -> CustomerRemoved:
        """Revoke a joined customer's access and delete their data; the record stays as INACTIVE.

        Raises NotFound, or Conflict when the customer never joined (delete the invitation instead).
        Repeating it is harmless: an INACTIVE customer is answered as it is.
        """
        inv = self.invitations.get(tenant, customer_id)
        if inv.status is Status.PENDING and not self.bank_links.submitted(inv):
            raise Conflict(
                "this customer has not joined yet: remove the invitation with DELETE /v1/invitations/{id}",
                fields={"status": inv.status.value},
            )
        financial = self.bank_links.disconnect(tenant, inv)
        token_hash = self.invitations.token_hash_of(inv)

        def change(current: Invitation) -> tuple[Invitation, list[Action]] | None:
            if current.status is Status.INACTIVE:
                return None
            # The email may be invited again later, as a new customer; the portal link stops working.
            extra = self.repo.release_actions(current, token_hash)
            if current.account_subdomain:
                extra.append(self.accounts.delete_action(current.account_subdomain))
            after = current.model_copy(
                update={"status": Status.INACTIVE, "link_nonce": None, "account_subdomain": None}
            )
            event = InvitationEvent(
                type="customer_removed",
                actor=actor,
                at=utcnow(),
                details={"documents": financial.documents, "bank_links": financial.bank_link_items},
            )
            return after, [*extra, self.repo.event_action(after, event)]

        removed = self.repo.mutate(tenant.tenant_id, inv.invitation_id, change) or self.invitations.get(
            tenant, customer_id
        )
        logger.info("Customer removed", extra={"tenant_id": tenant.tenant_id, "invitation_id": inv.invitation_id})
        return CustomerRemoved(invitation=removed, financial_data=financial)

    def delete_invitation(self, tenant: Tenant, invitation_id: str) -> None:
        """Remove an invitation the customer has not joined with, and anything they already uploaded
        or linked through its portal link (documents, bank links). Raises Conflict once they joined or
        submitted: that customer is removed with :meth:`remove`, which keeps the record and history."""
        inv = self.invitations.get(tenant, invitation_id)
        inv.ensure_deletable(submitted=self.bank_links.submitted(inv))
        result = self.bank_links.disconnect(tenant, inv)
        if result.revoke_failed:
            # Deleting now would lose the only way to revoke the provider's access: keep it, retry later.
            names = ", ".join(result.revoke_failed)
            raise UpstreamError(f"the bank connection at {names} could not be revoked; please retry")
        self.invitations.delete(tenant, invitation_id)

    def disconnect(self, tenant: Tenant, customer_id: str, actor: str = "lender") -> DisconnectResult:
        """Delete the customer's bank links and documents, keep the customer record."""
        inv = self.invitations.get(tenant, customer_id)
        result = self.bank_links.disconnect(tenant, inv)
        event = InvitationEvent(
            type="financial_data_disconnected", actor=actor, at=utcnow(), details=result.model_dump()
        )

        def change(current: Invitation) -> tuple[Invitation, list[Action]]:
            # The portal's progress no longer claims a bank link or documents that are gone.
            after = current
            if current.portal_status in (PortalStatus.BANK_LINKED, PortalStatus.DOCUMENTS_UPLOADED):
                after = current.model_copy(update={"portal_status": PortalStatus.OPENED})
            return after, [self.repo.event_action(after, event)]

        self.repo.mutate(tenant.tenant_id, inv.invitation_id, change, known=inv)
        return result
