"""Console pages: the lender's settings, API keys and staff (the last two for admins only)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.api.console_invitations import field_errors, integration_options
from chalicelib.api.console_web import Ctx, console_page, redirect
from chalicelib.api.routing import validation_fields
from chalicelib.bootstrap import sending_domains, services, staff, webhooks
from chalicelib.domain.notifications import RotateWebhookSecret, WebhookSecretCreated
from chalicelib.domain.providers import PROVIDERS
from chalicelib.domain.sending_domain import SendingDomainRequest
from chalicelib.domain.staff import NewStaff, Role, StaffStatus
from chalicelib.domain.tenant import TenantSettingsPatch
from chalicelib.errors import Conflict, DomainError, NotFound, UpstreamError, ValidationFailed
from chalicelib.i18n import N_
from chalicelib.services.tenants import CreateApiKey

if TYPE_CHECKING:
    from chalicelib.domain.sending_domain import SendingDomain

bp = Blueprint(__name__)

SETTINGS_LABELS = {
    "require_invitation": N_("Require invitation to join"),
    "require_email_confirmation": N_("Require email confirmation to join"),
    "default_banking_integration": N_("Default banking integration"),
    "invitation_ttl_days": N_("Invitation links last (days)"),
    "locale": N_("Language of messages"),
    "sender_name": N_("Sender name"),
    "reply_to": N_("Reply-to address"),
    "provider_order": N_("Provider order"),
    "branding_display_name": N_("Name shown to customers"),
    "branding_colour": N_("Brand colour"),
    "branding_logo_url": N_("Logo URL"),
    "form": N_("Form"),
}
# The provider order's select boxes, one per registered provider.
ORDINALS = (N_("First"), N_("Second"), N_("Third"), N_("Fourth"), N_("Fifth"), N_("Sixth"))
LATER = N_("Number %(n)s")
STAFF_LABELS = {"email": N_("Email"), "name": N_("Name"), "role": N_("Role"), "form": N_("Form")}
ROLES = (("officer", N_("Officer")), ("admin", N_("Administrator")))
DOMAIN_INVALID = N_("enter a domain name, like mail.example.com")
DOMAIN_UNAVAILABLE = N_("the email service did not answer; please try again in a minute")
NOTICES = {
    "saved": N_("Settings saved."),
    "domain_registered": N_("Sending domain registered: publish its DNS records below."),
    "domain_removed": N_("Sending domain removed: emails go from the platform's address again."),
    "revoked": N_("The API key was revoked; requests with it are refused from now on."),
    "changed": N_("The staff member was changed."),
    "deactivated": N_("The staff member was deactivated and signed out."),
    "invitation_resent": N_("A new invitation link was emailed; the previous link no longer works."),
    "webhook_saved": N_("The webhook URL was saved."),
    "secret_revoked": N_("The signing secret was revoked; events are no longer signed with it."),
}
WEBHOOK_LABELS = {
    "webhook_url": N_("Webhook URL"),
    "previous_valid_for_seconds": N_("Keep the current secret"),
    "form": N_("Form"),
}
# How long the secret being replaced keeps signing (the API's previous_valid_for_seconds).
OVERLAPS = (
    ("86400", N_("24 hours (recommended)")),
    ("3600", N_("1 hour")),
    ("604800", N_("7 days")),
    ("0", N_("No: stop it now")),
)


def settings_errors(exc: ValidationError) -> dict[str, str]:
    """Nested fields by their form names: ``branding.colour`` is ``branding_colour``."""
    errors: dict[str, str] = {}
    for name, message in validation_fields(exc).items():
        parts = name.split(".")
        field = f"branding_{parts[1]}" if parts[0] == "branding" and len(parts) > 1 else parts[0]
        errors.setdefault(field, message)
    return errors


def _settings_values(ctx: Ctx) -> dict[str, str]:
    current = ctx.tenant.settings
    return {
        "require_invitation": "yes" if current.require_invitation else "no",
        "require_email_confirmation": "yes" if current.require_email_confirmation else "no",
        "default_banking_integration": str(current.default_banking_integration),
        "invitation_ttl_days": str(current.invitation_ttl_days),
        "locale": current.locale,
        "sender_name": current.sender_name or "",
        "reply_to": str(current.reply_to or ""),
        **{f"provider_{i + 1}": str(p) for i, p in enumerate(current.provider_order)},
        "branding_display_name": current.branding.display_name or "",
        "branding_colour": current.branding.colour,
        "branding_logo_url": str(current.branding.logo_url or ""),
    }


def _order_slots(ctx: Ctx) -> list[tuple[int, str]]:
    """``(position, label)`` of each select of the provider order: as many as there are providers."""
    return [
        (n, ctx.words.gettext(ORDINALS[n - 1]) if n <= len(ORDINALS) else ctx.words.gettext(LATER) % {"n": n})
        for n in range(1, len(PROVIDERS) + 1)
    ]


def _sending_domain(ctx: Ctx) -> SendingDomain | None:
    """The lender's domain as SES sees it now; what was last recorded when SES cannot be asked."""
    if ctx.tenant.sending_domain is None:
        return None
    try:
        return sending_domains().current(ctx.tenant)
    except NotFound:  # the claim lapsed and another lender took the domain
        return None
    except DomainError:
        return ctx.tenant.sending_domain


def _settings_page(
    ctx: Ctx,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    *,
    domain_value: str = "",
    domain_error: str | None = None,
) -> Response:
    settings = services().settings
    return ctx.render(
        "settings.html",
        status=status,
        values=values,
        errors=errors,
        labels=ctx.words.each(SETTINGS_LABELS),
        integrations=integration_options(ctx.words),
        providers=[(info.key, info.label) for info in PROVIDERS.values()],
        order_slots=_order_slots(ctx),
        join_url=settings.urls.join(ctx.tenant),
        notice=ctx.words.notice(NOTICES, ctx.query.get("notice")),
        sending_domain=_sending_domain(ctx),
        platform_sender=settings.sender_email,
        domain_value=domain_value,
        domain_errors={"domain": domain_error} if domain_error else {},
    )


@console_page(bp, "/console/settings", section="settings")
def settings_page(ctx: Ctx) -> Response:
    return _settings_page(ctx, _settings_values(ctx), {})


@console_page(bp, "/console/settings", ("POST",), section="settings", admin=True)
def settings_save(ctx: Ctx) -> Response:
    form = ctx.form
    names = [k for k in SETTINGS_LABELS if k not in ("form", "provider_order")]
    slots = [f"provider_{i}" for i in range(1, len(PROVIDERS) + 1)]
    values = {k: form.get(k, "").strip() for k in [*names, *slots]}
    data: dict[str, Any] = {
        "require_invitation": values["require_invitation"] == "yes",
        "require_email_confirmation": values["require_email_confirmation"] == "yes",
        "default_banking_integration": values["default_banking_integration"] or None,
        "invitation_ttl_days": values["invitation_ttl_days"] or None,
        "locale": values["locale"] or None,
        # A blank optional field clears it.
        "sender_name": values["sender_name"] or None,
        "reply_to": values["reply_to"] or None,
        "provider_order": [values[slot] for slot in slots if values[slot]],
        "branding": {
            "display_name": values["branding_display_name"] or None,
            "colour": values["branding_colour"] or "#1f4e79",
            "logo_url": values["branding_logo_url"] or None,
        },
    }
    for required in ("default_banking_integration", "invitation_ttl_days", "locale", "provider_order"):
        if not data[required]:
            data.pop(required)
    try:
        patch = TenantSettingsPatch.model_validate(data)
    except ValidationError as exc:
        return _settings_page(ctx, values, settings_errors(exc), 400)
    services().tenants.update_settings(ctx.tenant, patch)
    return redirect("/console/settings?notice=saved")


# --- sending domain (the same service as PUT / DELETE /v1/tenant/sending-domain) -----------------------
@console_page(bp, "/console/settings/sending-domain", ("POST",), section="settings", admin=True)
def sending_domain_save(ctx: Ctx) -> Response:
    domain = ctx.form.get("domain", "").strip()
    try:
        sending_domains().register(ctx.tenant, SendingDomainRequest.model_validate({"domain": domain}))
    except ValidationError as exc:
        return _settings_page(
            ctx,
            _settings_values(ctx),
            {},
            400,
            domain_value=domain,
            domain_error=_domain_error(ctx, validation_fields(exc).get("domain")),
        )
    except (ValidationFailed, Conflict) as exc:
        message = exc.fields.get("domain") if exc.fields else None
        return _settings_page(
            ctx,
            _settings_values(ctx),
            {},
            409 if isinstance(exc, Conflict) else 400,
            domain_value=domain,
            domain_error=message or exc.message,
        )
    except UpstreamError:
        return _settings_page(
            ctx, _settings_values(ctx), {}, 503, domain_value=domain, domain_error=ctx.gettext(DOMAIN_UNAVAILABLE)
        )
    return redirect("/console/settings?notice=domain_registered#sending-domain")


@console_page(bp, "/console/settings/sending-domain/remove", ("POST",), section="settings", admin=True)
def sending_domain_remove(ctx: Ctx) -> Response:
    with contextlib.suppress(NotFound):  # already gone: what was asked for
        sending_domains().remove(ctx.tenant)
    return redirect("/console/settings?notice=domain_removed#sending-domain")


def _domain_error(ctx: Ctx, message: str | None) -> str:
    return ctx.gettext(DOMAIN_INVALID) if message is None or "String should" in message else message


# --- webhooks -----------------------------------------------------------------------------------
def _webhooks_page(
    ctx: Ctx,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    created: WebhookSecretCreated | None = None,
) -> Response:
    return ctx.render(
        "webhooks.html",
        status=status,
        values=values
        or {"webhook_url": str(ctx.tenant.settings.webhook_url or ""), "previous_valid_for_seconds": "86400"},
        errors=errors or {},
        labels=ctx.words.each(WEBHOOK_LABELS),
        overlaps=ctx.words.options(OVERLAPS),
        secrets=webhooks().list_secrets(ctx.tenant).items,
        created=created,
        notice=ctx.words.notice(NOTICES, ctx.query.get("notice")),
    )


@console_page(bp, "/console/settings/webhooks", section="settings", admin=True)
def webhook_settings(ctx: Ctx) -> Response:
    return _webhooks_page(ctx)


@console_page(bp, "/console/settings/webhooks", ("POST",), section="settings", admin=True)
def webhook_url_save(ctx: Ctx) -> Response:
    values = {"webhook_url": ctx.form.get("webhook_url", "").strip()}
    try:
        patch = TenantSettingsPatch.model_validate({"webhook_url": values["webhook_url"] or None})
    except ValidationError as exc:
        return _webhooks_page(ctx, values, settings_errors(exc), 400)
    services().tenants.update_settings(ctx.tenant, patch)
    return redirect("/console/settings/webhooks?notice=webhook_saved")


@console_page(bp, "/console/settings/webhooks/secrets", ("POST",), section="settings", admin=True)
def webhook_secret_create(ctx: Ctx) -> Response:
    overlap = ctx.form.get("previous_valid_for_seconds", "86400")
    try:
        request = RotateWebhookSecret.model_validate({"previous_valid_for_seconds": overlap})
    except ValidationError as exc:
        return _webhooks_page(ctx, errors=settings_errors(exc), status=400)
    return _webhooks_page(ctx, created=webhooks().rotate_secret(ctx.tenant, request), status=201)


@console_page(bp, "/console/settings/webhooks/secrets/{secret_id}/revoke", ("POST",), section="settings", admin=True)
def webhook_secret_revoke(ctx: Ctx, secret_id: str) -> Response:
    webhooks().revoke_secret(ctx.tenant, secret_id)
    return redirect("/console/settings/webhooks?notice=secret_revoked")


# --- API keys ---------------------------------------------------------------------------------
def _keys_page(ctx: Ctx, created: Any = None, status: int = 200) -> Response:
    return ctx.render(
        "api_keys.html",
        status=status,
        keys=services().tenants.list_keys(ctx.tenant),
        created=created,
        notice=ctx.words.notice(NOTICES, ctx.query.get("notice")),
    )


@console_page(bp, "/console/settings/api-keys", section="settings", admin=True)
def api_keys(ctx: Ctx) -> Response:
    return _keys_page(ctx)


@console_page(bp, "/console/settings/api-keys", ("POST",), section="settings", admin=True)
def api_key_create(ctx: Ctx) -> Response:
    label = ctx.form.get("label", "").strip()[:80] or None
    created = services().tenants.create_key(ctx.tenant, CreateApiKey(label=label))
    return _keys_page(ctx, created, 201)


@console_page(bp, "/console/settings/api-keys/{key_id}/revoke", section="settings", admin=True)
def api_key_revoke_confirm(ctx: Ctx, key_id: str) -> Response:
    """Revoking cuts off whatever uses the key at once, with no way back: the page asks first."""
    key = next((k for k in services().tenants.list_keys(ctx.tenant) if k.key_id == key_id), None)
    if key is None or key.revoked_at is not None:
        raise NotFound("no such API key")
    return ctx.render("api_key_revoke.html", key=key)


@console_page(bp, "/console/settings/api-keys/{key_id}/revoke", ("POST",), section="settings", admin=True)
def api_key_revoke(ctx: Ctx, key_id: str) -> Response:
    services().tenants.revoke_key(ctx.tenant, key_id)
    return redirect("/console/settings/api-keys?notice=revoked")


# --- staff ------------------------------------------------------------------------------------
def _staff_page(
    ctx: Ctx,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    return ctx.render(
        "staff.html",
        status=status,
        members=staff().members(ctx.tenant),
        values=values or {"role": "officer"},
        errors=errors or {},
        labels=ctx.words.each(STAFF_LABELS),
        roles=ctx.words.options(ROLES),
        notice=ctx.words.notice(NOTICES, ctx.query.get("notice")),
        **extra,
    )


@console_page(bp, "/console/settings/staff", section="settings", admin=True)
def staff_list(ctx: Ctx) -> Response:
    return _staff_page(ctx)


@console_page(bp, "/console/settings/staff", ("POST",), section="settings", admin=True)
def staff_invite(ctx: Ctx) -> Response:
    values = {k: ctx.form.get(k, "").strip() for k in ("email", "name", "role")}
    try:
        request = NewStaff.model_validate({k: v for k, v in values.items() if v})
    except ValidationError as exc:
        return _staff_page(ctx, values, field_errors(exc, ctx.words), 400)
    try:
        invited = staff().invite(ctx.staff, ctx.tenant, request)
    except Conflict as exc:
        return _staff_page(ctx, values, exc.fields or {"email": exc.message}, 409)
    return _staff_page(ctx, status=201, invited=invited)


@console_page(bp, "/console/settings/staff/{staff_id}/resend", ("POST",), section="settings", admin=True)
def staff_resend(ctx: Ctx, staff_id: str) -> Response:
    staff().resend_invitation(ctx.staff, ctx.tenant, staff_id)
    return redirect("/console/settings/staff?notice=invitation_resent")


@console_page(bp, "/console/settings/staff/{staff_id}/deactivate", section="settings", admin=True)
def staff_deactivate_confirm(ctx: Ctx, staff_id: str) -> Response:
    """Deactivation signs the teammate out at once and cannot be undone: the page asks first."""
    member = staff().member(ctx.tenant, staff_id)
    if member.staff_id == ctx.staff.staff_id or member.status is StaffStatus.DEACTIVATED:
        raise NotFound("no such staff member")
    return ctx.render("staff_deactivate.html", member=member)


@console_page(bp, "/console/settings/staff/{staff_id}", ("POST",), section="settings", admin=True)
def staff_change(ctx: Ctx, staff_id: str) -> Response:
    action = ctx.form.get("action", "")
    if action == "deactivate":
        staff().change(ctx.staff, ctx.tenant, staff_id, deactivate=True)
        return redirect("/console/settings/staff?notice=deactivated")
    try:
        role = Role(ctx.form.get("role", ""))
    except ValueError:
        return _staff_page(ctx, errors={"role": ctx.gettext("choose officer or administrator")}, status=400)
    staff().change(ctx.staff, ctx.tenant, staff_id, role=role)
    return redirect("/console/settings/staff?notice=changed")
