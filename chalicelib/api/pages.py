"""Routes: the hosted lender sign-up page."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.api.forms import CSRF_COOKIE, client_ip, cookie_header, csrf_token, csrf_valid, parse_form
from chalicelib.api.routing import endpoint, validation_fields
from chalicelib.bootstrap import services
from chalicelib.errors import Conflict, RateLimited
from chalicelib.services.tenants import CreateTenant
from chalicelib.web import page

bp = Blueprint(__name__)

LABELS = {
    "name": "Institution name",
    "subdomain": "Subdomain",
    "admin_email": "Administrator email",
    "data_residency": "Data residency",
    "csrf_token": "Form",
}


def _form(request: Any, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    token, fresh = csrf_token(request)
    settings = services().settings
    headers = {"Set-Cookie": cookie_header(CSRF_COOKIE, token, secure=not settings.is_local)} if fresh else {}
    return page(
        "signup.html",
        status=status,
        headers=headers,
        values=values,
        errors=errors,
        labels=LABELS,
        csrf_token=token,
        base_domain=settings.base_domain_us,
    )


@endpoint(bp, "/signup", "GET", summary="Lender sign-up page", auth=False, document=False)
def signup_page(request: Any, **_: Any) -> Response:
    return _form(request, {}, {})


@endpoint(
    bp,
    "/signup",
    "POST",
    summary="Lender sign-up form",
    auth=False,
    document=False,
    content_types=["application/x-www-form-urlencoded"],
)
def signup_submit(request: Any, **_: Any) -> Response:
    form = parse_form(request)
    values = {k: form.get(k, "") for k in ("name", "subdomain", "admin_email", "data_residency")}
    if not csrf_valid(request, form):
        return _form(request, values, {"csrf_token": "the form expired, please submit it again"}, 400)
    try:
        created = services().tenants.sign_up(CreateTenant.model_validate(values), ip=client_ip(request))
    except ValidationError as exc:
        return _form(request, values, validation_fields(exc), 400)
    except Conflict as exc:
        return _form(request, values, exc.fields or {"subdomain": exc.message}, 409)
    except RateLimited as exc:
        return _form(request, values, {"name": f"{exc.message}; try again in {exc.retry_after} seconds"}, 429)
    settings = services().settings
    join = settings.join_url(created.tenant.subdomain, created.tenant.data_residency)
    return page("signup_done.html", status=201, tenant=created.tenant, api_key=created.api_key, join_url=join)
