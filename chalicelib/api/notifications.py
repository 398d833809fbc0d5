"""Routes: lender notifications, webhook deliveries and webhook signing secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import notifications, webhooks
from chalicelib.domain.notifications import (
    Notification,
    NotificationPage,
    NotificationQuery,
    Redelivery,
    RotateWebhookSecret,
    WebhookDeliveryPage,
    WebhookDeliveryQuery,
    WebhookSecretCreated,
    WebhookSecretList,
)

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)


@endpoint(
    bp,
    "/v1/notifications",
    "GET",
    summary="Notifications, unread first; unread_count is the red icon",
    query=NotificationQuery,
    response=NotificationPage,
    tags=("notifications",),
)
def list_notifications(tenant: Tenant, query: NotificationQuery, **_: Any) -> NotificationPage:
    return notifications().list(tenant, query)


@endpoint(
    bp,
    "/v1/notifications/{notification_id}/read",
    "POST",
    summary="Mark a notification read",
    response=Notification,
    errors=(404,),
    tags=("notifications",),
)
def read_notification(tenant: Tenant, notification_id: str, **_: Any) -> Notification:
    return notifications().mark_read(tenant, notification_id)


@endpoint(
    bp,
    "/v1/webhook-deliveries",
    "GET",
    summary="Webhook delivery attempts and the answers they got, newest first",
    query=WebhookDeliveryQuery,
    response=WebhookDeliveryPage,
    tags=("webhooks",),
)
def list_webhook_deliveries(tenant: Tenant, query: WebhookDeliveryQuery, **_: Any) -> WebhookDeliveryPage:
    return webhooks().deliveries(tenant, query)


@endpoint(
    bp,
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    "POST",
    summary="Send a delivery's event once more",
    response=Redelivery,
    status=202,
    errors=(404, 409),
    tags=("webhooks",),
)
def redeliver_webhook(tenant: Tenant, delivery_id: str, **_: Any) -> Redelivery:
    return webhooks().redeliver(tenant, delivery_id)


@endpoint(
    bp,
    "/v1/tenant/webhook-secrets",
    "GET",
    summary="Webhook signing secrets valid now (prefixes only)",
    response=WebhookSecretList,
    tags=("webhooks",),
)
def list_webhook_secrets(tenant: Tenant, **_: Any) -> WebhookSecretList:
    return webhooks().list_secrets(tenant)


@endpoint(
    bp,
    "/v1/tenant/webhook-secrets",
    "POST",
    summary="Create a new webhook signing secret (shown once); the previous one stays valid for a while",
    body=RotateWebhookSecret,
    response=WebhookSecretCreated,
    status=201,
    errors=(409,),
    tags=("webhooks",),
)
def rotate_webhook_secret(tenant: Tenant, body: RotateWebhookSecret, **_: Any) -> WebhookSecretCreated:
    return webhooks().rotate_secret(tenant, body)


@endpoint(
    bp,
    "/v1/tenant/webhook-secrets/{secret_id}",
    "DELETE",
    summary="Revoke a webhook signing secret at once (not the only one: create a new one first); "
    "returns the secrets left",
    response=WebhookSecretList,
    errors=(404, 409),
    tags=("webhooks",),
)
def revoke_webhook_secret(tenant: Tenant, secret_id: str, **_: Any) -> WebhookSecretList:
    return webhooks().revoke_secret(tenant, secret_id)
