"""Routes: the hosted lender sign-up page."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.api.console_web import SESSION_COOKIE, redirect, session_cookie
from chalicelib.api.forms import (
    client_ip,
    csrf_cookie,
    csrf_valid,
    human_errors,
    parse_form,
    read_cookie,
)
from chalicelib.api.routing import endpoint, validation_fields
from chalicelib.bootstrap import sending, services, staff
from chalicelib.domain.staff import check_password
from chalicelib.errors import Conflict, RateLimited, ValidationFailed
from chalicelib.services.tenants import CreateTenant
from chalicelib.web import page

bp = Blueprint(__name__)

LABELS = {
    "name": "Institution name",
    "subdomain": "Subdomain",
    "admin_email": "Administrator email",
    "admin_name": "Your name",
    "password": "Password",
    "data_residency": "Data residency",
    "csrf_token": "Form",
}


def _form(request: Any, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    token, headers = csrf_cookie(request)
    settings = services().settings
    return page(
        "signup.html",
        status=status,
        headers=headers,
        values=values,
        errors=human_errors(errors, str),  # the sign-up page is in English
        labels=LABELS,
        csrf_token=token,
        base_domain=settings.urls.base_domain("us"),
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
    values["admin_name"] = form.get("admin_name", "")
    errors: dict[str, str] = {}
    try:
        request_model = CreateTenant.model_validate({k: v for k, v in values.items() if k != "admin_name"})
    except ValidationError as exc:
        errors = validation_fields(exc)
    try:
        check_password(form.get("password", ""))
    except ValidationFailed as exc:
        errors |= exc.fields
    if errors:
        return _form(request, values, errors, 400)
    try:
        signed_in = staff().sign_up_lender(
            request_model, values["admin_name"], form.get("password", ""), ip=client_ip(request)
        )[1]
    except Conflict as exc:
        return _form(request, values, exc.fields or {"subdomain": exc.message}, 409)
    except RateLimited as exc:
        return _form(request, values, {"name": f"{exc.message}; try again in {exc.retry_after} seconds"}, 429)
    # POST/redirect/GET: the first admin is signed in, and the next page shows the API key once.
    return redirect("/signup/done", {"Set-Cookie": session_cookie(signed_in.session_id)})


@endpoint(bp, "/signup/done", "GET", summary="Lender sign-up: the API key, shown once", auth=False, document=False)
def signup_done(request: Any, **_: Any) -> Response:
    session_id = read_cookie(request, SESSION_COOKIE)
    session = staff().session(session_id)
    if session is None:
        return redirect("/console/login")
    tenant = session.tenant
    return page(
        "signup_done.html",
        tenant=tenant,
        api_key=staff().first_api_key(session_id),
        join_url=services().settings.urls.join(tenant),
    )


# --- the admin email's verification (emailed at sign-up) ------------------------------------------------
@endpoint(bp, "/verify/{tenant_id}/{token}", "GET", summary="Confirm a lender's email", auth=False, document=False)
def verify_page(tenant_id: str, token: str, **_: Any) -> Response:
    # A button, not an automatic confirmation: mail scanners open links, people press buttons.
    return page("lender_verify.html", action=f"/verify/{tenant_id}/{token}", done=False, invalid=False)


@endpoint(
    bp,
    "/verify/{tenant_id}/{token}",
    "POST",
    summary="Confirm a lender's email",
    auth=False,
    document=False,
    content_types=["application/x-www-form-urlencoded"],
)
def verify_submit(tenant_id: str, token: str, **_: Any) -> Response:
    tenant = sending().confirm(tenant_id, token)
    if tenant is None:
        return page("lender_verify.html", status=410, action="", done=False, invalid=True)
    return page("lender_verify.html", action="", done=True, invalid=False, name=tenant.name)


@endpoint(bp, "/favicon.ico", "GET", summary="No icon (browsers ask for one)", auth=False, document=False)
def favicon(**_: Any) -> Response:
    """Browsers ask every host for /favicon.ico: an empty answer they cache, not a 404 on every page."""
    return Response(body="", status_code=204, headers={"Cache-Control": "public, max-age=86400"})
