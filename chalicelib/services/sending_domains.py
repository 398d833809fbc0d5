"""Use cases of a lender's own sending domain (issue 15 item 3): register it with SES (Easy DKIM), show the DNS
records to publish and the verification status; once SES has verified it, the lender's emails go from an address
at that domain (domain/sending_domain.py ``sending_address``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from chalicelib.domain.invitation import utcnow
from chalicelib.domain.model import Model
from chalicelib.domain.sending_domain import (
    CLAIM_HOLD,
    DomainStatus,
    SendingDomain,
    dkim_records,
    mailbox_at,
    normalise_domain,
    platform_domain_problem,
    status_from_ses,
)
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.sending import SendingRepository
    from chalicelib.adapters.dynamo.sending_domains import SendingDomainRepository
    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.ses_identities import IdentityState, SesIdentities
    from chalicelib.config import Settings
    from chalicelib.domain.sending_domain import SendingDomainRequest
    from chalicelib.domain.tenant import Tenant


class ReleasedClaim(Model):
    domain: str
    tenant_id: str = Field(description="The lender that held the claim")
    in_use: bool = Field(description="Whether that lender was sending from the domain (it now uses the platform's)")


class SendingDomainService:
    def __init__(
        self,
        repo: SendingDomainRepository,
        tenants: TenantRepository,
        identities: SesIdentities,
        settings: Settings,
        audit: SendingRepository | None = None,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.identities = identities
        self.settings = settings
        self.audit = audit

    def register(self, tenant: Tenant, request: SendingDomainRequest) -> SendingDomain:
        """Claim the domain for this lender and register it with SES; the same domain again refreshes its status.

        Raises ValidationFailed (the platform's own domain), Conflict (another lender's domain: 409 naming
        ``domain``) or UpstreamError (SES unavailable: retry; the claim stays this lender's).
        """
        problem = platform_domain_problem(request.domain, self.settings.sender_email)
        if problem:
            raise ValidationFailed(f"domain {problem}", fields={"domain": problem})
        current = tenant.sending_domain
        if current is not None and current.domain == request.domain:
            return self._refreshed(tenant, current)
        now = utcnow()
        pending = SendingDomain(
            domain=request.domain,
            status=DomainStatus.PENDING,
            records=[],
            from_address=mailbox_at(self.settings.sender_email, request.domain),
            requested_at=now,
        )
        # Claimed before SES is asked, so a domain another lender holds never reaches SES.
        previous_held = current is not None and self.repo.holds(tenant.tenant_id, current.domain)
        self.repo.claim(tenant.tenant_id, pending, current.domain if current else None, now, now + CLAIM_HOLD)
        self.tenants.forget(tenant.tenant_id)
        # Newly this lender's: an identity SES still holds (a lapsed claim's, a failed clean-up's) is replaced, so its
        # verification is never inherited; the lender proves the domain with records of its own.
        record = self._with_state(pending, self.identities.register(request.domain, replace=True))
        self._remember_verified(tenant, record)
        self.repo.save(tenant.tenant_id, record)
        if current is not None and previous_held:  # a lapsed claim's identity is its new owner's now
            self.identities.remove(current.domain)
        logger.info(
            "Sending domain registered",
            extra={"tenant_id": tenant.tenant_id, "domain": record.domain, "status": record.status.value},
        )
        return record

    def current(self, tenant: Tenant) -> SendingDomain:
        """The lender's domain, its records and status (asked of SES again until verified). Raises NotFound."""
        if tenant.sending_domain is None:
            raise NotFound("no sending domain: PUT /v1/tenant/sending-domain registers one")
        return self._refreshed(tenant, tenant.sending_domain)

    def remove(self, tenant: Tenant) -> None:
        """Back to the platform's address: the claim is freed and SES forgets the identity. Raises NotFound."""
        current = tenant.sending_domain
        if current is None:
            raise NotFound("no sending domain")
        self._still_held(tenant, current)
        self.identities.remove(current.domain)  # first: when SES fails, nothing changed and the lender may retry
        self.repo.release(tenant.tenant_id, current.domain)
        self.tenants.forget(tenant.tenant_id)

    def release_claim(self, domain: str, reason: str, actor: str = "operator") -> ReleasedClaim:
        """Operator: free ``domain`` whoever holds it (a verified claim never lapses, so a domain that changed hands
        needs this). The lender that held it goes back to the platform's address and SES forgets the identity.

        Returns who held it and whether that lender was using it; the lender's audit log records it with
        ``reason``. Raises NotFound (nobody holds it) and ValidationFailed (not a domain name, no reason)."""
        if not reason.strip():
            raise ValidationFailed("reason is required", fields={"reason": "is required"})
        try:
            name = normalise_domain(domain)
        except ValueError as exc:
            raise ValidationFailed(f"domain {exc}", fields={"domain": str(exc)}) from exc
        tenant_id = self.repo.holder(name)
        if tenant_id is None:
            raise NotFound(f"no lender holds {name}")
        tenant = self.tenants.fresh(tenant_id)
        in_use = tenant is not None and tenant.sending_domain is not None and tenant.sending_domain.domain == name
        self.identities.remove(name)  # first: when SES fails, nothing changed and the operator may retry
        self.repo.release(tenant_id, name, keep_record=not in_use)
        self.tenants.forget(tenant_id)
        if self.audit is not None:
            self.audit.audit(tenant_id, "domain_released", actor, f"{name}: {reason.strip()}", utcnow())
        logger.info("Sending domain released by the operator", extra={"tenant_id": tenant_id, "domain": name})
        return ReleasedClaim(domain=name, tenant_id=tenant_id, in_use=in_use)

    def _still_held(self, tenant: Tenant, record: SendingDomain) -> None:
        """Raise NotFound (and drop the lender's record) when its unverified claim lapsed and another lender took
        the domain: the lender never sends from it, nor removes the identity its new owner uses."""
        if record.status is DomainStatus.VERIFIED or self.repo.holds(tenant.tenant_id, record.domain):
            return
        self.repo.forget(tenant.tenant_id)
        self.tenants.forget(tenant.tenant_id)
        logger.info("Lapsed sending domain claim dropped", extra={"tenant_id": tenant.tenant_id})
        raise NotFound(
            f"{record.domain} was not verified within 72 hours and another lender has claimed it: "
            "no sending domain (PUT /v1/tenant/sending-domain registers one)"
        )

    def _remember_verified(self, tenant: Tenant, record: SendingDomain) -> None:
        if record.status is DomainStatus.VERIFIED:
            self.repo.claim_verified(tenant.tenant_id, record.domain, record.verified_at or utcnow())

    def _refreshed(self, tenant: Tenant, record: SendingDomain) -> SendingDomain:
        if record.status is DomainStatus.VERIFIED and record.records:
            return record
        self._still_held(tenant, record)
        state = self.identities.state(record.domain) or self.identities.register(record.domain)
        fresh = self._with_state(record, state)
        self._remember_verified(tenant, fresh)
        if fresh != record:
            self.repo.save(tenant.tenant_id, fresh)
            self.tenants.forget(tenant.tenant_id)
        return fresh

    @staticmethod
    def _with_state(record: SendingDomain, state: IdentityState) -> SendingDomain:
        status = status_from_ses(state.verified_for_sending, state.dkim_status)
        return record.model_copy(
            update={
                "status": status,
                "records": dkim_records(record.domain, state.tokens) or record.records,
                "verified_at": record.verified_at or (utcnow() if status is DomainStatus.VERIFIED else None),
            }
        )
