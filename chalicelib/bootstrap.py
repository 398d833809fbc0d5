"""Composition root: builds adapters from settings and hands them to services, once per process.

Entry points call :func:`services`; tests call :func:`reset` after changing the environment,
or build services from fakes directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo.invitations import InvitationRepository
from chalicelib.adapters.dynamo.staff import StaffRepository
from chalicelib.adapters.dynamo.table import Table
from chalicelib.adapters.dynamo.tenants import TenantRepository
from chalicelib.adapters.queue import QueuePublisher
from chalicelib.adapters.ratelimit import RateLimiter
from chalicelib.adapters.secrets import SecretStore
from chalicelib.config import LINK_SIGNING_KEY, Settings, get_settings
from chalicelib.services.invitations import InvitationService
from chalicelib.services.tenants import TenantService

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chalicelib.adapters.providers.base import Adapter, BankLinkClient
    from chalicelib.domain.providers import Provider
    from chalicelib.services.bank_links import BankLinkService
    from chalicelib.services.customers import CustomerService
    from chalicelib.services.delivery import DeliveryService
    from chalicelib.services.exports import ExportService
    from chalicelib.services.feedback import FeedbackService
    from chalicelib.services.financial import FinancialDataService
    from chalicelib.services.imports import ImportService
    from chalicelib.services.join import JoinService
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.portal import PortalService
    from chalicelib.services.sending import SendingService, VerificationMail
    from chalicelib.services.sending_domains import SendingDomainService
    from chalicelib.services.staff import StaffMail, StaffService
    from chalicelib.services.webhooks_out import WebhookService


@dataclass(frozen=True)
class Services:
    settings: Settings
    table: Table
    queue: QueuePublisher
    tenant_repo: TenantRepository
    invitation_repo: InvitationRepository
    tenants: TenantService
    invitations: InvitationService
    secrets: SecretStore

    def link_key(self) -> str:
        """The current link signing key (read from Secrets Manager when a link is derived, cached)."""
        return self.secrets.get(LINK_SIGNING_KEY)


@cache
def services() -> Services:
    settings = get_settings()
    secrets = SecretStore(settings, max_age=settings.secret_cache_seconds)

    def link_key() -> str:
        return secrets.get(LINK_SIGNING_KEY)

    table = Table(settings.table_name, aws.client("dynamodb"))
    queue = QueuePublisher(aws.client("sqs"))
    tenant_repo = TenantRepository(table)
    invitation_repo = InvitationRepository(table)
    return Services(
        settings=settings,
        table=table,
        queue=queue,
        tenant_repo=tenant_repo,
        invitation_repo=invitation_repo,
        tenants=TenantService(
            tenant_repo,
            RateLimiter(table),
            settings.lender_signups_per_ip_per_hour,
            after_sign_up=lambda tenant: sending().start_verification(tenant),
        ),
        invitations=InvitationService(invitation_repo, queue, settings, StaffRepository(table), link_key=link_key),
        secrets=secrets,
    )


@cache
def delivery() -> DeliveryService:
    """The send worker's service (built only in the worker: it needs the SES and SNS clients)."""
    from chalicelib.adapters.messaging import Mailer, SmsSender
    from chalicelib.services.delivery import DeliveryService

    s = services()
    return DeliveryService(
        invitations=s.invitations,
        repo=s.invitation_repo,
        tenants=s.tenant_repo,
        mailer=Mailer(aws.client("sesv2"), s.settings.sender_email, s.settings.ses_configuration_set),
        sms=SmsSender(aws.client("sns")),
        on_opt_out=feedback().sms_opted_out,
        gate=sending(),
    )


@cache
def sending() -> SendingService:
    """Sending safety: the gate before every message (verification, quotas, quiet hours), reputation, operator."""
    from chalicelib.adapters.dynamo.sending import SendingRepository
    from chalicelib.services.sending import SendingService

    s = services()
    return SendingService(
        SendingRepository(s.table),
        s.tenant_repo,
        s.settings,
        notifications=notifications(),
        queue=s.queue,
        link_key=s.link_key,
    )


@cache
def sending_domains() -> SendingDomainService:
    """A lender's own sending domain: the claim in the table, the identity in SES v2 (Easy DKIM)."""
    from chalicelib.adapters.dynamo.sending import SendingRepository
    from chalicelib.adapters.dynamo.sending_domains import SendingDomainRepository
    from chalicelib.adapters.ses_identities import SesIdentities
    from chalicelib.services.sending_domains import SendingDomainService

    s = services()
    return SendingDomainService(
        SendingDomainRepository(s.table),
        s.tenant_repo,
        SesIdentities(aws.client("sesv2")),
        s.settings,
        audit=SendingRepository(s.table),
    )


@cache
def verification_mail() -> VerificationMail:
    """The send worker's part for the lender's verification email."""
    from chalicelib.adapters.dynamo.sending import SendingRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Mailer
    from chalicelib.services.sending import VerificationMail

    s = services()
    st = s.settings
    return VerificationMail(
        SendingRepository(s.table),
        s.tenant_repo,
        Mailer(aws.client("sesv2"), st.sender_email, st.ses_configuration_set),
        Once(st.table_name, aws.client("dynamodb")),
        st,
        link_key=s.link_key,
    )


@cache
def joins() -> JoinService:
    """The hosted join page's service: accounts, rate limits and password hashing."""
    from chalicelib.adapters.dynamo.accounts import AccountRepository
    from chalicelib.adapters.passwords import PasswordHasher
    from chalicelib.adapters.ratelimit import RateLimiter
    from chalicelib.services.join import JoinService

    s = services()
    return JoinService(
        tenants=s.tenant_repo,
        invitations=s.invitation_repo,
        accounts=AccountRepository(s.table),
        limiter=RateLimiter(s.table),
        hasher=PasswordHasher(),
        sends=s.invitations,
        settings=s.settings,
    )


@cache
def bank_links() -> BankLinkService:
    """The bank-link waterfall: Step Functions, the provider clients and their webhook verifiers.

    Tests replace it (``monkeypatch.setattr(bootstrap, "bank_links", ...)``) with fake providers.
    """
    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.bank_links import BankLinkRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.providers import Each
    from chalicelib.adapters.workflow import Workflow
    from chalicelib.services.bank_links import BankLinkService

    s = services()
    st = s.settings
    adapters = provider_adapters()
    return BankLinkService(
        repo=BankLinkRepository(s.table),
        invitations=s.invitation_repo,
        tenants=s.tenant_repo,
        workflow=Workflow(st.state_machine_arn, aws.client("stepfunctions")),
        providers=provider_clients(),
        verifiers=Each(adapters, lambda adapter: adapter.verify),
        documents=DocumentStore(st.documents_bucket, aws.client("s3")),
        once=Once(st.table_name, aws.client("dynamodb")),
        settings=st,
        notifications=notifications(),
        financial=financial_data(),
    )


@cache
def provider_adapters() -> Mapping[Provider, Adapter]:
    """Every registered provider's adapter (chalicelib/domain/providers.py): its client and webhook verifier, each
    built on first use, so an unconfigured provider fails only its own calls."""
    from chalicelib.adapters.providers import build_adapters

    s = services()
    return build_adapters(s.settings, s.secrets)


@cache
def provider_clients() -> Mapping[Provider, BankLinkClient]:
    """One HTTP client per provider (they keep sessions and tokens): link sessions and financial data."""
    from chalicelib.adapters.providers import Each

    return Each(provider_adapters(), lambda adapter: adapter.client)


@cache
def financial_data() -> FinancialDataService:
    """The data step after a bank link, the lender's financial-data reads, and revocation on disconnect."""
    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.bank_links import BankLinkRepository
    from chalicelib.adapters.dynamo.financial import FinancialRepository
    from chalicelib.adapters.workflow import Workflow
    from chalicelib.services.financial import FinancialDataService

    s = services()
    st = s.settings
    return FinancialDataService(
        repo=FinancialRepository(s.table),
        links=BankLinkRepository(s.table),
        invitations=s.invitation_repo,
        tenants=s.tenant_repo,
        workflow=Workflow(st.state_machine_arn, aws.client("stepfunctions")),
        sources=provider_clients(),
        documents=DocumentStore(st.documents_bucket, aws.client("s3")),
        notifications=notifications(),
    )


def portal() -> PortalService:
    """The customer portal's service (built on the current :func:`bank_links`, so a test's fake applies)."""
    from chalicelib.adapters.dynamo.bank_links import BankLinkRepository
    from chalicelib.adapters.ratelimit import RateLimiter
    from chalicelib.services.portal import PortalService

    s = services()
    links = bank_links()
    return PortalService(
        invitations=s.invitations,
        repo=s.invitation_repo,
        tenants=s.tenant_repo,
        links_repo=BankLinkRepository(s.table),
        bank_links=links,
        documents=links.documents,
        queue=s.queue,
        settings=s.settings,
        limiter=RateLimiter(s.table),
    )


@cache
def webhooks() -> WebhookService:
    """Outbound webhooks: events, the HTTP sender (loopback allowed only locally) and secrets."""
    from chalicelib.adapters.dynamo.notifications import NotificationRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.webhook_sender import WebhookSender
    from chalicelib.services.webhooks_out import WebhookService

    s = services()
    st = s.settings
    sender = WebhookSender(
        allow_private=st.is_local,
        connect_timeout=st.webhook_connect_timeout_seconds,
        read_timeout=st.webhook_read_timeout_seconds,
    )
    once = Once(st.table_name, aws.client("dynamodb"))
    return WebhookService(NotificationRepository(s.table), s.tenant_repo, s.queue, st, sender=sender, once=once)


@cache
def notifications() -> NotificationService:
    """Lender notifications; ``notify(tenant_id, type, invitation_id, data, key=...)`` for other services."""
    from chalicelib.adapters.dynamo.notifications import NotificationRepository
    from chalicelib.services.notifications import NotificationService

    return NotificationService(NotificationRepository(services().table), webhooks())


@cache
def feedback() -> FeedbackService:
    """Inbound delivery events: SES feedback, SMS opt-outs, portal completions."""
    from chalicelib.adapters.dynamo.notifications import EventMarkers
    from chalicelib.services.feedback import FeedbackService

    s = services()
    return FeedbackService(
        repo=s.invitation_repo,
        markers=EventMarkers(s.table),
        tenants=s.tenant_repo,
        invitations=s.invitations,
        notifications=notifications(),
        settings=s.settings,
        sending=sending(),
    )


@cache
def imports() -> ImportService:
    """CSV import (the upload route and the import queue's chunk worker)."""
    from chalicelib.adapters.dynamo.imports import ImportRepository
    from chalicelib.services.imports import ImportService

    s = services()
    return ImportService(
        ImportRepository(s.table, s.invitation_repo), s.tenant_repo, s.invitations, s.queue, s.settings
    )


@cache
def exports() -> ExportService:
    """CSV export of invitations: the bounded direct answer, export jobs and their worker (S3 + presigned GET)."""
    from chalicelib.adapters.documents import DocumentStore
    from chalicelib.adapters.dynamo.exports import ExportRepository
    from chalicelib.services.exports import ExportService

    s = services()
    return ExportService(
        ExportRepository(s.table),
        s.tenant_repo,
        s.invitations,
        DocumentStore(s.settings.documents_bucket, aws.client("s3")),
        s.queue,
        s.settings,
    )


@cache
def customers() -> CustomerService:
    """Removing customers and disconnecting their financial data (accounts + the bank-link service)."""
    from chalicelib.adapters.dynamo.accounts import AccountRepository
    from chalicelib.services.customers import CustomerService

    s = services()
    return CustomerService(s.invitations, s.invitation_repo, AccountRepository(s.table), bank_links())


@cache
def staff() -> StaffService:
    """Lender staff: console sign-up, sign-in, sessions, teammates."""
    from chalicelib.adapters.dynamo.staff import StaffRepository
    from chalicelib.adapters.passwords import PasswordHasher
    from chalicelib.services.staff import StaffService

    s = services()
    return StaffService(
        s.tenants,
        s.tenant_repo,
        StaffRepository(s.table),
        RateLimiter(s.table),
        PasswordHasher(),
        s.settings,
        s.queue,
        link_key=s.link_key,
    )


@cache
def staff_mail() -> StaffMail:
    """The send worker's staff emails (teammate invitations, password resets)."""
    from chalicelib.adapters.dynamo.staff import StaffRepository
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Mailer
    from chalicelib.services.staff import StaffMail

    s = services()
    st = s.settings
    return StaffMail(
        StaffRepository(s.table),
        s.tenant_repo,
        Mailer(aws.client("sesv2"), st.sender_email, st.ses_configuration_set),
        Once(st.table_name, aws.client("dynamodb")),
        st,
        link_key=s.link_key,
    )


def reset() -> None:
    """Forget settings, clients and services (tests and the local stack change the environment)."""
    for builder in (
        services,
        delivery,
        joins,
        bank_links,
        customers,
        webhooks,
        notifications,
        feedback,
        imports,
        exports,
        provider_adapters,
        provider_clients,
        financial_data,
        staff,
        staff_mail,
        sending,
        sending_domains,
        verification_mail,
    ):
        # A test may have swapped a builder for a plain function (fakes); only cached ones clear.
        clear = getattr(builder, "cache_clear", None)
        if clear is not None:
            clear()
    get_settings.cache_clear()
    aws.reset_clients()
