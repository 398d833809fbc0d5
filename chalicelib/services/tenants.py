"""Use cases for lenders: sign-up, API keys, settings, and authenticating a request's key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import ConfigDict, EmailStr, Field, ValidationError, field_validator

from chalicelib.domain import ids
from chalicelib.domain.account import Limit
from chalicelib.domain.model import Model
from chalicelib.domain.tenant import (
    ApiKey,
    DataResidency,
    Tenant,
    TenantSettings,
    TenantSettingsPatch,
    validate_display_name,
    validate_subdomain,
)
from chalicelib.errors import NotFound, RateLimited, Unauthorized, ValidationFailed
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.adapters.dynamo.tenants import TenantRepository
    from chalicelib.adapters.ratelimit import RateLimiter


class CreateTenant(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=120, examples=["Acme Lending"])
    subdomain: str = Field(min_length=1, max_length=63, examples=["acme-lending"])
    admin_email: EmailStr
    data_residency: DataResidency = DataResidency.US

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str) -> str:
        return validate_subdomain(value)

    @field_validator("name")
    @classmethod
    def _header_safe(cls, value: str) -> str:
        # The lender's name is the From name of its emails until it sets a sender_name.
        validate_display_name(value)
        return value


class CreateApiKey(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str | None = Field(default=None, max_length=80)


class TenantCreated(Model):
    tenant: Tenant
    api_key: str = Field(description="Shown once. Only its hash is stored.")
    api_key_id: str


class ApiKeyCreated(Model):
    key: ApiKey
    api_key: str = Field(description="Shown once. Only its hash is stored.")


class TenantService:
    def __init__(
        self,
        tenants: TenantRepository,
        limiter: RateLimiter | None = None,
        signups_per_hour: int = 10,
        after_sign_up: Callable[[Tenant], None] | None = None,
    ) -> None:
        self.tenants = tenants
        self.limiter = limiter
        # Starts the admin email's verification (the send worker emails the link).
        self.after_sign_up = after_sign_up
        # Lender sign-up is public: per IP, a handful an hour is plenty for a real institution.
        self.signup_limit = Limit("signup-ip", signups_per_hour, 3600)

    def sign_up(self, request: CreateTenant, ip: str | None = None) -> TenantCreated:
        """Raises Conflict when the subdomain is taken, RateLimited after too many sign-ups from one IP."""
        if self.limiter is not None and ip is not None:
            decision = self.limiter.hit(self.signup_limit, ip)
            if not decision.allowed:
                raise RateLimited("too many sign-ups from this address", retry_after=decision.retry_after)
        tenant = Tenant(
            tenant_id=ids.new_id("ten"),
            name=request.name,
            subdomain=request.subdomain,
            admin_email=str(request.admin_email),
            data_residency=request.data_residency,
            created_at=datetime.now(UTC),
        )
        secret, key = self._new_key(tenant.tenant_id, "initial")
        self.tenants.create(tenant, key, ids.hash_secret(secret))
        logger.info("Tenant created", extra={"tenant_id": tenant.tenant_id})
        if self.after_sign_up is not None:
            self.after_sign_up(tenant)
        return TenantCreated(tenant=tenant, api_key=secret, api_key_id=key.key_id)

    def authenticate(self, authorization: str | None) -> Tenant:
        """Resolve ``Bearer <key>`` to its tenant. Every failure is the same Unauthorized."""
        scheme, _, secret = (authorization or "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(ids.API_KEY_PREFIX):
            raise Unauthorized("a valid API key is required")
        key = self.tenants.key_by_hash(ids.hash_secret(secret))
        if key is None or key.revoked_at is not None:
            raise Unauthorized("a valid API key is required")
        # The key is read on every request (a revocation takes effect at once); the tenant may come
        # from a short per-process cache: one DynamoDB call per request instead of two.
        tenant = self.tenants.get(key.tenant_id, cached=True)
        if tenant is None:
            raise Unauthorized("a valid API key is required")
        return tenant

    def create_key(self, tenant: Tenant, request: CreateApiKey) -> ApiKeyCreated:
        secret, key = self._new_key(tenant.tenant_id, request.label)
        self.tenants.add_key(key, ids.hash_secret(secret))
        return ApiKeyCreated(key=key, api_key=secret)

    def list_keys(self, tenant: Tenant) -> list[ApiKey]:
        return sorted(self.tenants.list_keys(tenant.tenant_id), key=lambda k: k.created_at)

    def revoke_key(self, tenant: Tenant, key_id: str) -> ApiKey:
        revoked = self.tenants.revoke_key(tenant.tenant_id, key_id)
        if revoked is None:
            raise NotFound("no such API key")
        return revoked

    def get_settings(self, tenant: Tenant) -> TenantSettings:
        return tenant.settings

    def update_settings(self, tenant: Tenant, patch: TenantSettingsPatch) -> TenantSettings:
        """Apply a partial update on a fresh read; only the fields sent are written."""
        current = self.tenants.fresh(tenant.tenant_id) or tenant
        try:
            updated = patch.apply(current.settings)
        except ValidationError as exc:  # valid alone, invalid with the stored settings
            raise ValidationFailed.of_input(exc) from exc
        self.tenants.save_settings(tenant.tenant_id, updated, set(patch.model_fields_set))
        return updated

    def by_subdomain(self, subdomain: str) -> Tenant:
        tenant = self.tenants.by_subdomain(subdomain.lower())
        if tenant is None:
            raise NotFound("no such lender")
        return tenant

    @staticmethod
    def _new_key(tenant_id: str, label: str | None) -> tuple[str, ApiKey]:
        secret = ids.new_api_key()
        key = ApiKey(
            key_id=ids.new_id("key"),
            tenant_id=tenant_id,
            prefix=ids.api_key_display_prefix(secret),
            label=label,
            created_at=datetime.now(UTC),
        )
        return secret, key
