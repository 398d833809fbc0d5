"""Tenant (lender) and API-key persistence."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chalicelib.adapters.dynamo import hostnames, keys
from chalicelib.domain.tenant import ApiKey, Tenant, TenantSettings
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from chalicelib.adapters.dynamo.table import Table


def _subdomain_taken(reasons: list[str]) -> Exception:
    return Conflict("this subdomain is already taken", fields={"subdomain": "already taken"})


# How long ``get(..., cached=True)`` may answer from this process's memory. Only authentication
# asks for it (it saves one GetItem per API request); a settings change made through this
# repository is seen at once here and within this many seconds by the other warm instances.
TENANT_CACHE_SECONDS = 30.0


class TenantRepository:
    def __init__(self, table: Table, cache_seconds: float = TENANT_CACHE_SECONDS) -> None:
        self.table = table
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Tenant]] = {}

    def create(self, tenant: Tenant, key: ApiKey, key_hash: str) -> None:
        """Create the tenant, its subdomain guard and its first API key atomically.

        Raises Conflict (field ``subdomain``) when the subdomain is taken, by a lender or by a customer's account
        (one host namespace: adapters/dynamo/hostnames.py).
        """
        self.table.transact(
            [
                self.table.t_put_new(
                    {**keys.subdomain_guard(tenant.subdomain), "type": "subdomain", "tenant_id": tenant.tenant_id}
                ),
                hostnames.not_a_customer(self.table, tenant.subdomain, tenant.created_at),
                self.table.t_put_new(
                    {**keys.tenant(tenant.tenant_id), "type": "tenant", **tenant.model_dump(mode="json")}
                ),
                *self._key_actions(key, key_hash),
            ],
            conflict=_subdomain_taken,
        )

    def get(self, tenant_id: str, *, cached: bool = False) -> Tenant | None:
        """The tenant; ``cached`` accepts a copy up to ``cache_seconds`` old."""
        if cached:
            hit = self._cache.get(tenant_id)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1].model_copy(deep=True)
        item = self.table.get(keys.tenant(tenant_id))
        if not item:
            self._cache.pop(tenant_id, None)
            return None
        tenant = Tenant.model_validate(item)
        if self.cache_seconds > 0:
            self._cache[tenant_id] = (time.monotonic() + self.cache_seconds, tenant.model_copy(deep=True))
        return tenant

    def by_subdomain(self, subdomain: str) -> Tenant | None:
        guard = self.table.get(keys.subdomain_guard(subdomain))
        return self.get(guard["tenant_id"]) if guard else None

    def fresh(self, tenant_id: str) -> Tenant | None:
        """The tenant by a strongly consistent read, bypassing the cache (read-modify-write paths)."""
        item = self.table.get(keys.tenant(tenant_id), consistent=True)
        return Tenant.model_validate(item) if item else None

    def forget(self, tenant_id: str) -> None:
        """Drop this process's cached copy (after a write made elsewhere)."""
        self._cache.pop(tenant_id, None)

    def save_settings(self, tenant_id: str, settings: TenantSettings, fields: set[str]) -> None:
        """Write only ``fields`` of the settings map, so concurrent changes to other fields survive."""
        self._cache.pop(tenant_id, None)
        data = settings.model_dump(mode="json")
        names = {"#settings": "settings"}
        values: dict[str, object] = {}
        sets, removes = [], []
        for i, field in enumerate(sorted(fields)):
            names[f"#f{i}"] = field
            if data.get(field) is None:
                removes.append(f"#settings.#f{i}")
            else:
                values[f":v{i}"] = data[field]
                sets.append(f"#settings.#f{i} = :v{i}")
        expression = " ".join(
            part
            for part in ("SET " + ", ".join(sets) if sets else "", "REMOVE " + ", ".join(removes) if removes else "")
            if part
        )
        if expression:
            self.table.update_expression(
                keys.tenant(tenant_id), expression, names=names, values=values, condition="attribute_exists(PK)"
            )

    # --- API keys ---------------------------------------------------------------------------------
    def _key_actions(self, key: ApiKey, key_hash: str) -> list[dict[str, object]]:
        data = key.model_dump(mode="json")
        return [
            self.table.t_put_new({**keys.api_key_lookup(key_hash), "type": "api_key", **data}),
            self.table.t_put_new(
                {
                    **keys.api_key_listing(key.tenant_id, key.key_id),
                    "type": "api_key_listing",
                    "key_hash": key_hash,
                    **data,
                }
            ),
        ]

    def add_key(self, key: ApiKey, key_hash: str) -> None:
        self.table.transact(self._key_actions(key, key_hash))

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        item = self.table.get(keys.api_key_lookup(key_hash))
        return ApiKey.model_validate(item) if item else None

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        items, _ = self.table.query(keys.tenant_pk(tenant_id), sk_prefix=keys.API_KEY_LISTING_PREFIX)
        return [ApiKey.model_validate(i) for i in items]

    def revoke_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        listing = self.table.get(keys.api_key_listing(tenant_id, key_id))
        if listing is None:
            return None
        now = datetime.now(UTC).isoformat()
        self.table.transact(
            [
                self.table.t_update(keys.api_key_listing(tenant_id, key_id), {"revoked_at": now}),
                self.table.t_update(keys.api_key_lookup(listing["key_hash"]), {"revoked_at": now}),
            ]
        )
        return ApiKey.model_validate({**listing, "revoked_at": now})
