"""Random bodies and headers to every inbound webhook (every route under /webhooks/, found in
``app.routes``; ``/webhooks/{provider}`` once per registered provider): never a 5xx, and an unverified call
stores and queues nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.helpers import FUZZ, json_objects, queued, stored

HEADER_NAMES = [
    "Content-Type",
    "Plaid-Verification",
    "Authorization",
    "X-Finicity-Signature",
    "Finicity-Signature",
    "X-Signature",
    "X-MX-Signature",
    "X-Request-Id",
]
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
    st.sampled_from(["application/json", "Basic bXg6d3Jvbmc=", "Basic !!!", "Bearer x", "eyJhbGciOiJFUzI1NiJ9.e30.x"]),
)
headers = st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=4)
payloads = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(str.encode),
    json_objects.map(lambda o: __import__("json").dumps(o).encode()),
)


def webhook_paths() -> list[str]:
    from app import app
    from chalicelib.domain.providers import known

    routes = [path for path, methods in app.routes.items() if path.startswith("/webhooks/") and "POST" in methods]
    return sorted({path.replace("{provider}", key) for path in routes for key in known()})


def test_every_webhook_refuses_random_calls_without_a_5xx_or_a_trace(client: Any, aws: dict[str, str]) -> None:
    paths = webhook_paths()
    if not paths:
        return  # no inbound webhooks yet: nothing to fuzz

    @FUZZ
    @given(path=st.sampled_from(paths), body=payloads, extra=headers)
    def check(path: str, body: bytes, extra: dict[str, str]) -> None:
        before_items, before_queued = stored(aws["TABLE_NAME"]), queued(aws)
        response = client.http.post(path, headers={"Content-Type": "application/json", **extra}, body=body)

        assert response.status_code < 500, (path, response.status_code, response.body[:300])
        if response.status_code >= 400:
            assert stored(aws["TABLE_NAME"]) == before_items, f"{path} stored something from a refused call"
            assert queued(aws) == before_queued, f"{path} queued something from a refused call"

    check()
