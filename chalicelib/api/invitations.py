"""Routes: invitations, their history, links and communication log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from pydantic import ConfigDict, Field

from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import customers, services
from chalicelib.domain.invitation import CreateInvitation, EditInvitation, Invitation
from chalicelib.domain.model import Model
from chalicelib.errors import ValidationFailed
from chalicelib.services.invitations import (
    CommunicationLog,
    CommunicationQuery,
    HistoryPage,
    InvitationPage,
    ListQuery,
    PortalLink,
    ResendRequest,
    ResendResult,
)

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)


class PageQuery(Model):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=2000)


def idempotency_key(request: Any) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable characters",
            fields={"Idempotency-Key": "1 to 255 printable characters"},
        )
    return key


@endpoint(
    bp,
    "/v1/invitations",
    "POST",
    summary="Invite a customer",
    body=CreateInvitation,
    response=Invitation,
    status=201,
    errors=(409, 422),
    tags=("invitations",),
)
def create_invitation(tenant: Tenant, body: CreateInvitation, request: Any, **_: Any) -> Invitation:
    return services().invitations.create(tenant, body, idempotency_key=idempotency_key(request))


@endpoint(
    bp,
    "/v1/invitations",
    "GET",
    summary="List invitations, newest first",
    description="Each request reads a bounded part of the list: with filters (status, owner, delivery_status "
    "together, or q), a page may hold fewer than `limit` items, even none, and still carry a `next_cursor`. "
    "Follow `next_cursor` until it is null; only then is the list complete. A search by `email` (or a whole "
    "address in `q`) pages the same way, in business-name order.",
    query=ListQuery,
    response=InvitationPage,
    tags=("invitations",),
)
def list_invitations(tenant: Tenant, query: ListQuery, **_: Any) -> InvitationPage:
    return services().invitations.search(tenant, query)


@endpoint(
    bp,
    "/v1/invitations/resend",
    "POST",
    summary="Resend invitations; one outcome per id (429 with Retry-After when every id is in its cooldown)",
    body=ResendRequest,
    response=ResendResult,
    responses={429: ResendResult},
    tags=("invitations",),
)
def resend_invitations(tenant: Tenant, body: ResendRequest, **_: Any) -> Any:
    from chalicelib.api.routing import json_response

    result = services().invitations.resend(tenant, body)
    limited = [r for r in result.results if r.outcome == "rate_limited"]
    if limited and len(limited) == len(result.results):
        retry = max(r.retry_after or 1 for r in limited)
        return json_response(result, 429, {"Retry-After": str(retry)})
    return result


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}",
    "GET",
    summary="One invitation",
    response=Invitation,
    errors=(404,),
    tags=("invitations",),
)
def get_invitation(tenant: Tenant, invitation_id: str, **_: Any) -> Invitation:
    return services().invitations.get(tenant, invitation_id)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}",
    "PATCH",
    summary="Edit a PENDING invitation; send=true re-sends",
    body=EditInvitation,
    response=Invitation,
    errors=(404, 409, 429),
    tags=("invitations",),
)
def edit_invitation(tenant: Tenant, invitation_id: str, body: EditInvitation, **_: Any) -> Invitation:
    return services().invitations.edit(tenant, invitation_id, body)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}",
    "DELETE",
    summary="Delete a PENDING invitation nothing was submitted through; once the customer joined or "
    "submitted: 409, remove them with DELETE /v1/customers/{id} (record and history kept, INACTIVE)",
    status=204,
    errors=(404, 409),
    tags=("invitations",),
)
def delete_invitation(tenant: Tenant, invitation_id: str, **_: Any) -> None:
    customers().delete_invitation(tenant, invitation_id)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/history",
    "GET",
    summary="The invitation's history, oldest first",
    query=PageQuery,
    response=HistoryPage,
    errors=(404,),
    tags=("invitations",),
)
def invitation_history(tenant: Tenant, invitation_id: str, query: PageQuery, **_: Any) -> HistoryPage:
    return services().invitations.history(tenant, invitation_id, query.limit, query.cursor)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/portal-link",
    "GET",
    summary="The customer's current portal URL, to send by hand (an expired link is rotated)",
    response=PortalLink,
    errors=(404, 409),
    tags=("invitations",),
)
def portal_link(tenant: Tenant, invitation_id: str, **_: Any) -> PortalLink:
    return services().invitations.portal_link(tenant, invitation_id)


@endpoint(
    bp,
    "/v1/communications",
    "GET",
    summary="Every email and SMS: one invitation's (invitation_id), or the lender's, newest first and paginated",
    query=CommunicationQuery,
    response=CommunicationLog,
    errors=(404,),
    tags=("invitations",),
)
def list_communications(tenant: Tenant, query: CommunicationQuery, **_: Any) -> CommunicationLog:
    return services().invitations.communication_log(tenant, query)
