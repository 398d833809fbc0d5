"""Answers the framework gives before a view runs (405, 415) and bodies no model can parse are in the one error
shape, ``{"error": {"code", "message", "fields"}}``, like every other refusal."""

from __future__ import annotations

import json
from typing import Any

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
