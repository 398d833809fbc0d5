"""Routes: lender sign-up, API keys, settings, health."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.forms import client_ip
from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import sending, sending_domains, services, staff
from chalicelib.domain.model import Model
from chalicelib.domain.sending_domain import SendingDomain, SendingDomainRequest
from chalicelib.domain.tenant import ApiKey, Tenant, TenantSettings, TenantSettingsPatch
from chalicelib.services.sending import VerificationStarted
from chalicelib.services.tenants import ApiKeyCreated, CreateApiKey, CreateTenant, TenantCreated

bp = Blueprint(__name__)


class Health(Model):
    status: str


class ApiKeyList(Model):
    items: list[ApiKey]


@endpoint(bp, "/health", "GET", summary="Liveness check", auth=False, response=Health, tags=("system",))
def health(**_: Any) -> Health:
    return Health(status="ok")


@endpoint(
    bp,
    "/v1/tenants",
    "POST",
    summary="Sign up a lender; returns its first API key once",
    auth=False,
    body=CreateTenant,
    response=TenantCreated,
    status=201,
    errors=(409, 429),
    tags=("tenants",),
)
def create_tenant(body: CreateTenant, request: Any, **_: Any) -> TenantCreated:
    # Its admin is a console user too, who sets a password through "Forgot your password?".
    return staff().register_lender(body, ip=client_ip(request))


@endpoint(bp, "/v1/tenant", "GET", summary="The authenticated lender", response=Tenant, tags=("tenants",))
def get_tenant(tenant: Tenant, **_: Any) -> Tenant:
    return tenant


@endpoint(
    bp,
    "/v1/tenant/verification",
    "POST",
    summary="Email the admin a new link that confirms their address (the previous link stops working); until "
    "it is confirmed, messages reach only the lender's own address",
    response=VerificationStarted,
    status=202,
    errors=(409,),
    tags=("tenants",),
)
def restart_verification(tenant: Tenant, **_: Any) -> VerificationStarted:
    return sending().restart_verification(tenant)


@endpoint(
    bp,
    "/v1/tenant/sending-domain",
    "PUT",
    summary="Send from your own domain: registers it with SES and returns the DKIM records (CNAMEs) to publish; "
    "emails go from an address at it once verified ('<name> via <platform>' stays the display name)",
    body=SendingDomainRequest,
    response=SendingDomain,
    errors=(409,),
    tags=("tenants",),
)
def put_sending_domain(tenant: Tenant, body: SendingDomainRequest, **_: Any) -> SendingDomain:
    return sending_domains().register(tenant, body)


@endpoint(
    bp,
    "/v1/tenant/sending-domain",
    "GET",
    summary="Your sending domain: the DNS records to publish and whether SES has verified them",
    response=SendingDomain,
    errors=(404,),
    tags=("tenants",),
)
def get_sending_domain(tenant: Tenant, **_: Any) -> SendingDomain:
    return sending_domains().current(tenant)


@endpoint(
    bp,
    "/v1/tenant/sending-domain",
    "DELETE",
    summary="Stop sending from your domain: emails go from the platform's address again",
    status=204,
    errors=(404,),
    tags=("tenants",),
)
def delete_sending_domain(tenant: Tenant, **_: Any) -> None:
    sending_domains().remove(tenant)


@endpoint(bp, "/v1/tenant/settings", "GET", summary="Lender settings", response=TenantSettings, tags=("tenants",))
def get_settings(tenant: Tenant, **_: Any) -> TenantSettings:
    return services().tenants.get_settings(tenant)


@endpoint(
    bp,
    "/v1/tenant/settings",
    "PATCH",
    summary="Change lender settings (only the fields sent)",
    body=TenantSettingsPatch,
    response=TenantSettings,
    tags=("tenants",),
)
def patch_settings(tenant: Tenant, body: TenantSettingsPatch, **_: Any) -> TenantSettings:
    return services().tenants.update_settings(tenant, body)


@endpoint(bp, "/v1/api-keys", "GET", summary="List API keys (prefix only)", response=ApiKeyList, tags=("tenants",))
def list_api_keys(tenant: Tenant, **_: Any) -> ApiKeyList:
    return ApiKeyList(items=services().tenants.list_keys(tenant))


@endpoint(
    bp,
    "/v1/api-keys",
    "POST",
    summary="Create an API key; the secret is shown once",
    body=CreateApiKey,
    response=ApiKeyCreated,
    status=201,
    tags=("tenants",),
)
def create_api_key(tenant: Tenant, body: CreateApiKey, **_: Any) -> ApiKeyCreated:
    return services().tenants.create_key(tenant, body)


@endpoint(
    bp,
    "/v1/api-keys/{key_id}",
    "DELETE",
    summary="Revoke an API key",
    response=ApiKey,
    errors=(404,),
    tags=("tenants",),
)
def revoke_api_key(tenant: Tenant, key_id: str, **_: Any) -> ApiKey:
    return services().tenants.revoke_key(tenant, key_id)
