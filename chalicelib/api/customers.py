"""Routes: customers who joined (remove them, or disconnect only their financial data)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import customers
from chalicelib.domain.waterfall import DisconnectResult
from chalicelib.services.customers import CustomerRemoved

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)


@endpoint(
    bp,
    "/v1/customers/{customer_id}",
    "DELETE",
    summary="Remove a customer who joined or submitted: revoke their access, delete their bank links and "
    "documents; the record stays, INACTIVE, with its history",
    response=CustomerRemoved,
    errors=(404, 409),
    tags=("customers",),
)
def remove_customer(tenant: Tenant, customer_id: str, **_: Any) -> CustomerRemoved:
    return customers().remove(tenant, customer_id)


@endpoint(
    bp,
    "/v1/customers/{customer_id}/disconnect",
    "POST",
    summary="Delete only the customer's financial data (bank links, documents); keep the record",
    response=DisconnectResult,
    errors=(404,),
    tags=("customers",),
)
def disconnect_customer(tenant: Tenant, customer_id: str, **_: Any) -> DisconnectResult:
    return customers().disconnect(tenant, customer_id)
