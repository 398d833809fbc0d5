"""The Chalice application: creates the app, wires Powertools middleware and registers blueprints."""

from __future__ import annotations

from chalice import Chalice, ConvertToMiddleware

from chalicelib.api import dev, invitations, openapi, pages, portal, tenants
from chalicelib.api.routing import set_authenticator
from chalicelib.bootstrap import services
from chalicelib.config import local_stage
from chalicelib.handlers import send
from chalicelib.observability import logger, tracer

app = Chalice(app_name="lender-onboarding")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))

set_authenticator(lambda authorization: services().tenants.authenticate(authorization))

app.register_blueprint(tenants.bp)
app.register_blueprint(invitations.bp)
app.register_blueprint(portal.bp)
app.register_blueprint(pages.bp)
if local_stage():  # the outbox page exists only on the embedded stack
    app.register_blueprint(dev.bp)
app.register_blueprint(openapi.bp)
app.register_blueprint(send.bp)
