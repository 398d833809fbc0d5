"""The Chalice application: creates the app, wires Powertools middleware and registers blueprints."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, ConvertToMiddleware

from chalicelib.api import bank_links as bank_link_routes
from chalicelib.api import (
    console,
    console_invitations,
    console_settings,
    console_work,
    invitations,
    openapi,
    pages,
    portal,
    tenants,
)
from chalicelib.api import customers as customer_routes
from chalicelib.api import financial as financial_routes
from chalicelib.api import imports as import_routes
from chalicelib.api import join as join_pages
from chalicelib.api import notifications as notification_routes
from chalicelib.api import webhooks as webhook_routes
from chalicelib.api.forms import strict_transport_security
from chalicelib.api.routing import framework_errors_in_error_shape, set_authenticator
from chalicelib.bootstrap import services
from chalicelib.config import local_stage
from chalicelib.handlers import imports as import_worker
from chalicelib.handlers import link_requests, portal_events, relay, send, ses_feedback, webhooks_out
from chalicelib.observability import flush_metrics, get_tracer, logger, tracing_enabled

app = Chalice(app_name="lender-onboarding")
app.api.binary_types.append("multipart/form-data")  # the console's CSV upload arrives byte for byte
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))


@app.middleware("all")
def emit_metrics(event: Any, get_response: Any) -> Any:
    """Powertools Metrics: whatever the invocation counted leaves as one EMF line when it ends."""
    try:
        return get_response(event)
    finally:
        flush_metrics()


app.register_middleware(framework_errors_in_error_shape(app), "http")
app.register_middleware(strict_transport_security, "http")

if tracing_enabled():  # off outside Lambda: the X-Ray SDK is then never imported
    app.register_middleware(ConvertToMiddleware(get_tracer().capture_lambda_handler))

set_authenticator(lambda authorization: services().tenants.authenticate(authorization))

app.register_blueprint(tenants.bp)
app.register_blueprint(import_routes.bp)  # before invitations: /v1/invitations/export is a literal path
app.register_blueprint(invitations.bp)
app.register_blueprint(portal.bp)
app.register_blueprint(bank_link_routes.bp)
app.register_blueprint(customer_routes.bp)
app.register_blueprint(financial_routes.bp)
app.register_blueprint(webhook_routes.bp)
app.register_blueprint(pages.bp)
app.register_blueprint(join_pages.bp)
app.register_blueprint(console.bp)
app.register_blueprint(console_invitations.bp)
app.register_blueprint(console_settings.bp)
app.register_blueprint(console_work.bp)
if local_stage():  # the outbox page exists only on the embedded stack
    from chalicelib.api import dev

    app.register_blueprint(dev.bp)
app.register_blueprint(openapi.bp)
app.register_blueprint(send.bp)
app.register_blueprint(import_worker.bp)
app.register_blueprint(relay.bp)
app.register_blueprint(link_requests.bp)
app.register_blueprint(notification_routes.bp)
app.register_blueprint(ses_feedback.bp)
app.register_blueprint(portal_events.bp)
app.register_blueprint(webhooks_out.bp)
