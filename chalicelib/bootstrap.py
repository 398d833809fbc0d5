"""Composition root: builds adapters from settings and hands them to services, once per process.

Entry points call :func:`services`; tests call :func:`reset` after changing the environment,
or build services from fakes directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo.table import Table
from chalicelib.adapters.dynamo.tenants import TenantRepository
from chalicelib.config import Settings, get_settings
from chalicelib.services.tenants import TenantService


@dataclass(frozen=True)
class Services:
    settings: Settings
    table: Table
    tenants: TenantService


@cache
def services() -> Services:
    settings = get_settings()
    table = Table(settings.table_name, aws.client("dynamodb"))
    return Services(
        settings=settings,
        table=table,
        tenants=TenantService(TenantRepository(table)),
    )


def reset() -> None:
    """Forget settings, clients and services (tests and the local stack change the environment)."""
    services.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
