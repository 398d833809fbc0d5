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
from chalicelib.adapters.dynamo.table import Table
from chalicelib.adapters.dynamo.tenants import TenantRepository
from chalicelib.adapters.queue import QueuePublisher
from chalicelib.config import Settings, get_settings
from chalicelib.services.invitations import InvitationService
from chalicelib.services.tenants import TenantService

if TYPE_CHECKING:
    from chalicelib.services.delivery import DeliveryService


@dataclass(frozen=True)
class Services:
    settings: Settings
    table: Table
    queue: QueuePublisher
    tenant_repo: TenantRepository
    invitation_repo: InvitationRepository
    tenants: TenantService
    invitations: InvitationService


@cache
def services() -> Services:
    settings = get_settings()
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
        tenants=TenantService(tenant_repo),
        invitations=InvitationService(invitation_repo, queue, settings),
    )


@cache
def delivery() -> DeliveryService:
    """The send worker's service (built only in the worker: it needs the SES, SNS and idempotency clients)."""
    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Mailer, SmsSender
    from chalicelib.services.delivery import DeliveryService

    s = services()
    return DeliveryService(
        invitations=s.invitations,
        repo=s.invitation_repo,
        tenants=s.tenant_repo,
        mailer=Mailer(aws.client("sesv2"), s.settings.sender_email, s.settings.ses_configuration_set),
        sms=SmsSender(aws.client("sns")),
        once=Once(s.settings.table_name, aws.client("dynamodb")),
    )


def reset() -> None:
    """Forget settings, clients and services (tests and the local stack change the environment)."""
    services.cache_clear()
    delivery.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
