"""Bank-link provider adapters, one module per provider, loaded through the registry.

:data:`chalicelib.domain.providers.PROVIDERS` names each provider's module; the module's
``adapter(settings, store)`` returns an :class:`~chalicelib.adapters.providers.base.Adapter` (the HTTP client and the webhook verifier).
Modules are imported here on first use, so a function that never talks to a partner never loads them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from chalicelib.adapters.providers.base import Adapter, BankLinkClient, ProviderError, WebhookRejected
from chalicelib.config import partner_secret
from chalicelib.domain.providers import PROVIDERS, Provider

if TYPE_CHECKING:
    from chalicelib.adapters.providers.base import PartnerSecrets
    from chalicelib.config import Secret, Settings

__all__ = [
    "Adapter",
    "BankLinkClient",
    "Each",
    "LazyAdapters",
    "ProviderError",
    "WebhookRejected",
    "build_adapter",
    "build_adapters",
]

T = TypeVar("T")


def build_adapter(key: str, settings: Settings, store: PartnerSecrets) -> Adapter:
    """The adapter of one registered provider, its partner secrets from ``store`` (the client's are read now,
    the webhook verifier's when it checks a webhook). Raises KeyError for a key the registry does not hold."""
    module = importlib.import_module(PROVIDERS[key].adapter)
    built: Adapter = module.adapter(settings, store)
    if built.client.provider != key:
        raise ValueError(f"{PROVIDERS[key].adapter} built a client for {built.client.provider!r}, not {key!r}")
    return built


def build_adapters(settings: Settings, store: PartnerSecrets) -> LazyAdapters:
    """Every registered provider's adapter, each built on first use, and again when its client's secrets change (keep
    one per process: clients keep sessions, tokens and keys)."""
    return LazyAdapters(settings, store)


def client_secrets(key: str) -> tuple[Secret, ...]:
    """The secrets provider ``key``'s client is built with (its webhook verifier reads its own when it verifies)."""
    return tuple(partner_secret(key, secret.name) for secret in PROVIDERS[key].secrets if not secret.webhook)


class LazyAdapters(Mapping[Provider, Adapter]):
    """The registered providers' adapters by key, each built when first asked for: its module imported, its client's
    secrets read. A provider left unconfigured (a placeholder secret) raises ConfigurationError for its own calls
    only, so a platform that uses one partner needs only that partner's secrets.

    Each time an adapter is asked for, its client's secrets are read again from the store (from its cache, refreshed
    every few minutes: SecretStore), and a changed value builds the adapter again: a credential replaced with
    ``put-secret-value`` is in use once the cache expires, without a new deployment or a cold start."""

    def __init__(self, settings: Settings, store: PartnerSecrets) -> None:
        self._settings, self._store = settings, store
        self._built: dict[str, tuple[tuple[str, ...], Adapter]] = {}
        self._lock = threading.Lock()  # the embedded stack serves requests on threads

    def __getitem__(self, key: str) -> Adapter:
        if key not in PROVIDERS:
            raise KeyError(key)
        with self._lock:
            values = tuple(self._store.get(secret) for secret in client_secrets(key))
            built = self._built.get(key)
            if built is None or built[0] != values:
                built = values, build_adapter(key, self._settings, self._store)
                self._built[key] = built
            return built[1]

    def __iter__(self) -> Iterator[Provider]:
        return (Provider(key) for key in list(PROVIDERS))

    def __len__(self) -> int:
        return len(PROVIDERS)


class Each(Mapping[Provider, T]):
    """One part of every adapter (its client, its verifier) by provider, built as :class:`LazyAdapters` builds them."""

    def __init__(self, adapters: Mapping[Provider, Adapter], part: Callable[[Adapter], T]) -> None:
        self._adapters, self._part = adapters, part

    def __getitem__(self, key: Provider) -> T:
        return self._part(self._adapters[key])

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)
