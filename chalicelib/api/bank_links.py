"""Routes: the lender's view of an invitation's bank-link attempts and uploaded documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib import bootstrap
from chalicelib.api.routing import endpoint
from chalicelib.domain.waterfall import BankLinks, DocumentList

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/bank-links",
    "GET",
    summary="Bank-link attempts with every provider decision (provider, outcome, reason, duration)",
    response=BankLinks,
    errors=(404,),
    tags=("invitations",),
)
def list_bank_links(tenant: Tenant, invitation_id: str, **_: Any) -> BankLinks:
    return bootstrap.bank_links().view(tenant, invitation_id)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/documents",
    "GET",
    summary="Documents the customer uploaded, with short-lived download URLs",
    response=DocumentList,
    errors=(404,),
    tags=("invitations",),
)
def list_documents(tenant: Tenant, invitation_id: str, **_: Any) -> DocumentList:
    return bootstrap.portal().lender_documents(tenant, invitation_id)
