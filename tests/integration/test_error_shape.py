"""Answers the framework gives before a view runs (405, 415) and bodies no model can parse are in the one error
shape, ``{"error": {"code", "message", "fields"}}``, like every other refusal."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.integration.helpers import call, headers


def error_of(response: Any) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return dict(body["error"])


def test_a_method_the_route_does_not_have_is_405_in_the_error_shape(client: Any, lender: dict[str, Any]) -> None:
    response = client.http.put("/v1/invitations", headers=headers(lender["api_key"]), body="{}")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_a_content_type_the_route_does_not_take_is_415_in_the_error_shape(client: Any, lender: dict[str, Any]) -> None:
    response = client.http.post(
        "/v1/invitations",
        headers={"Authorization": f"Bearer {lender['api_key']}", "Content-Type": "text/plain"},
        body="email=jane@smallbiz.example",
    )
    assert response.status_code == 415
    error = error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert error["fields"] == {"Content-Type": "must be application/json"}


def test_views_answers_are_left_alone(client: Any, lender: dict[str, Any]) -> None:
    status, body = call(client, "GET", "/v1/invitations/inv_nope", lender["api_key"])
    assert status == 404 and body["error"]["code"] == "not_found"


DEEP_BODIES = {
    "unparseable": "[" * 5000,
    "deep array": "[" * 5000 + "]" * 5000,
    "deep object": '{"a":' * 400 + "1" + "}" * 400,
}


def json_routes() -> list[Any]:
    import app  # noqa: F401  (registers every route)
    from chalicelib.api.routing import ROUTES

    return [spec for spec in ROUTES if spec.body is not None]


@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
def test_deeply_nested_json_is_400_on_every_json_route(client: Any, lender: dict[str, Any], shape: str) -> None:
    routes = json_routes()
    assert len(routes) >= 6
    for spec in routes:
        path = re.sub(r"\{[^}]+\}", "inv_00000000000000000000000000", spec.path)
        response = getattr(client.http, spec.method)(path, headers=headers(lender["api_key"]), body=DEEP_BODIES[shape])
        assert response.status_code == 400, (spec.method, spec.path, response.body[:200])
        assert "body" in error_of(response)["fields"], (spec.method, spec.path)


def test_a_partner_webhook_nested_too_deeply_is_refused_as_bad_input() -> None:
    from chalicelib.adapters.providers.base import json_object
    from chalicelib.errors import ValidationFailed

    for body in DEEP_BODIES.values():
        with pytest.raises(ValidationFailed) as refused:
            json_object(body.encode())
        assert "body" in refused.value.fields
