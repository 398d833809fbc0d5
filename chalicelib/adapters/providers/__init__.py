"""Bank-link provider adapters, one module per provider, loaded through the registry.

:data:`chalicelib.domain.providers.PROVIDERS` names each provider's module; the module's
``adapter(settings, read_secret)`` returns an :class:`~chalicelib.adapters.providers.base.Adapter` (the HTTP client and the webhook verifier).
Modules are imported here on first use, so a function that never talks to a partner never loads them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from chalicelib.adapters.providers.base import Adapter, BankLinkClient, ProviderError, WebhookRejected
from chalicelib.domain.providers import PROVIDERS, Provider

if TYPE_CHECKING:
    from chalicelib.adapters.providers.base import ReadSecret
    from chalicelib.config import Settings

__all__ = ["Adapter", "BankLinkClient", "ProviderError", "WebhookRejected", "build_adapter", "build_adapters"]


def build_adapter(key: str, settings: Settings, read_secret: ReadSecret) -> Adapter:
    """The adapter of one registered provider, its partner secrets from ``read_secret`` (the client's are read now,
    the webhook verifier's when it checks a webhook). Raises KeyError for a key the registry does not hold."""
    module = importlib.import_module(PROVIDERS[key].adapter)
    built: Adapter = module.adapter(settings, read_secret)
    if built.client.provider != key:
        raise ValueError(f"{PROVIDERS[key].adapter} built a client for {built.client.provider!r}, not {key!r}")
    return built


def build_adapters(settings: Settings, read_secret: ReadSecret) -> dict[Provider, Adapter]:
    """Every registered provider's adapter (call once per process: clients keep sessions, tokens and keys, and the
    secrets they were built with)."""
    return {Provider(key): build_adapter(key, settings, read_secret) for key in PROVIDERS}
