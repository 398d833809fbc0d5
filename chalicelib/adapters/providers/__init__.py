"""Bank-link provider adapters: HTTP clients for Plaid, Finicity and MX, and their webhook verifiers.

Import from here::

    from chalicelib.adapters.providers import build_clients, verify_plaid, verify_finicity, verify_mx
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.adapters.providers.base import ProviderClient, ProviderError, WebhookRejected
from chalicelib.adapters.providers.finicity import FinicityClient, verify_finicity
from chalicelib.adapters.providers.mx import MxClient, verify_mx
from chalicelib.adapters.providers.plaid import PlaidClient, PlaidKeyCache, verify_plaid
from chalicelib.domain.tenant import Provider

if TYPE_CHECKING:
    from chalicelib.config import Settings

__all__ = [
    "FinicityClient",
    "MxClient",
    "PlaidClient",
    "PlaidKeyCache",
    "ProviderClient",
    "ProviderError",
    "WebhookRejected",
    "build_clients",
    "build_plaid_key_cache",
    "verify_finicity",
    "verify_mx",
    "verify_plaid",
]


def build_plaid(settings: Settings) -> PlaidClient:
    return PlaidClient(settings.plaid_base_url, settings.plaid_client_id, settings.plaid_secret)


def build_clients(settings: Settings) -> dict[Provider, ProviderClient]:
    """One client per provider, built from settings (call once per process: clients keep sessions and tokens)."""
    return {
        Provider.PLAID: build_plaid(settings),
        Provider.FINICITY: FinicityClient(
            settings.finicity_base_url,
            settings.finicity_app_key,
            settings.finicity_partner_id,
            settings.finicity_partner_secret,
        ),
        Provider.MX: MxClient(settings.mx_base_url, settings.mx_client_id, settings.mx_api_key),
    }


def build_plaid_key_cache(settings: Settings, client: PlaidClient | None = None) -> PlaidKeyCache:
    """The ``key_fetcher`` for :func:`verify_plaid` (build once per process so the cache lives)."""
    return PlaidKeyCache(client or build_plaid(settings))
