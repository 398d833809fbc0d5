"""Routes: the customer portal reached from an invitation link."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import services
from chalicelib.web import page

bp = Blueprint(__name__)


def brand(tenant: Any) -> dict[str, Any]:
    branding = tenant.settings.branding
    return {
        "brand_name": tenant.display_name,
        "colour": branding.colour,
        "logo_url": str(branding.logo_url) if branding.logo_url else None,
        "locale": tenant.settings.locale,
    }


@endpoint(bp, "/portal/{token}", "GET", summary="Customer portal", auth=False, document=False)
def portal_page(token: str, **_: Any) -> Response:
    s = services()
    resolved = s.invitations.resolve(token)
    if resolved is None:
        return page("portal_invalid.html", status=404)
    tenant = s.tenant_repo.get(resolved.tenant_id)
    if tenant is None:
        return page("portal_invalid.html", status=404)
    inv = s.invitations.opened(resolved.invitation)
    return page("portal.html", invitation=inv, **brand(tenant))
