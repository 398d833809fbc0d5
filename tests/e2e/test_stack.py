"""``make run`` works: the stack answers over HTTP, keeps data in the embedded AWS and stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from typing import Any

import boto3
import pytest
import requests

from tests.e2e.conftest import STOP_TIMEOUT, RunningStack
from tests.stack import phone_for

pytestmark = pytest.mark.e2e


def aws_client(stack: RunningStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_health_answers(stack: RunningStack) -> None:
    response = requests.get(f"{stack.api}/health", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("authorization", [None, "Bearer sk_whatever"])
def test_an_unknown_route_is_404_in_the_error_shape(stack: RunningStack, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{stack.api}/v1/no-such-thing", headers=headers, timeout=5)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_a_method_the_route_lacks_is_405_in_the_error_shape(stack: RunningStack) -> None:
    response = requests.delete(f"{stack.api}/health", timeout=5)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_lender_signed_up_over_http_gets_a_working_key(stack: RunningStack) -> None:
    subdomain = f"acme-{uuid.uuid4().hex[:8]}"
    created = requests.post(
        f"{stack.api}/v1/tenants",
        json={
            "name": "Acme Lending",
            "subdomain": subdomain,
            "admin_email": "ops@acme-lending.com",
            "data_residency": "us",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]

    allowed = requests.get(f"{stack.api}/v1/tenant/settings", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    refused = requests.get(f"{stack.api}/v1/tenant/settings", headers={"Authorization": f"Bearer {key}x"}, timeout=10)

    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_the_outbox_shows_what_the_embedded_aws_sent(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex[:8]
    link = f"http://127.0.0.1/t/acme/join?token={marker}&lang=en"
    aws_client(stack, "sesv2").send_email(
        FromEmailAddress="invitations@myonboarding.com",
        Destination={"ToAddresses": [f"jane.{marker}@acme-lending.com"]},
        Content={
            "Simple": {
                "Subject": {"Data": f"Join Acme {marker}"},
                "Body": {"Html": {"Data": f'<p>Hello</p><p><a href="{link.replace("&", "&amp;")}">Join</a></p>'}},
            }
        },
    )
    phone = phone_for(marker, "+1555555")
    aws_client(stack, "sns").publish(PhoneNumber=phone, Message=f"Acme: join at {link}. Reply STOP to opt out.")

    outbox = requests.get(f"{stack.api}/dev/outbox.json", timeout=10)
    assert outbox.status_code == 200
    [mail] = [m for m in outbox.json()["emails"] if m["subject"] == f"Join Acme {marker}"]
    assert mail["source"] == "invitations@myonboarding.com"
    assert mail["destinations"] == [f"jane.{marker}@acme-lending.com"]
    assert mail["links"] == [link]
    assert "Hello" in mail["text"]
    assert mail["timestamp"]
    [sms] = [s for s in outbox.json()["sms"] if s["phone_number"] == phone]
    assert sms["links"] == [link]

    html = requests.get(f"{stack.api}/dev/outbox", timeout=10)
    assert html.status_code == 200
    assert html.headers["Content-Type"].startswith("text/html")
    assert f'href="{link.replace("&", "&amp;")}"' in html.text
    # The email's own markup is shown as text, never rendered into the page.
    assert "&lt;p&gt;Hello&lt;/p&gt;" in html.text


def test_a_fresh_stack_has_an_empty_outbox_and_stops_cleanly_on_sigterm(fresh_stack: RunningStack) -> None:
    outbox = requests.get(f"{fresh_stack.api}/dev/outbox.json", timeout=10)
    page = requests.get(f"{fresh_stack.api}/dev/outbox", timeout=10)
    assert outbox.status_code == 200
    assert outbox.json() == {"emails": [], "sms": []}
    assert page.status_code == 200

    started = time.monotonic()
    fresh_stack.process.send_signal(signal.SIGTERM)
    try:
        code = fresh_stack.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stack did not stop within {STOP_TIMEOUT} s of SIGTERM")

    assert code == 0
    assert time.monotonic() - started < STOP_TIMEOUT
    output = fresh_stack.output()
    assert f"API:          {fresh_stack.api}" in output
    assert f"Embedded AWS: {fresh_stack.aws}" in output
