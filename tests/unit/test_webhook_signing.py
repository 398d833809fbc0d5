"""Webhook signatures, the retry schedule and the SSRF guard of the sender."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from chalicelib.adapters.webhook_sender import UrlRefused, check_url
from chalicelib.domain import webhook_signing as ws
from chalicelib.domain.notifications import backoff_seconds

BODY = b'{"id":"evt_1","type":"invitation.bounced","created_at":"2026-01-01T00:00:00Z","data":{}}'
NOW = 1_767_225_600


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = ws.sign(BODY, ["whsec_a"], timestamp=NOW)
    expected = hmac.new(b"whsec_a", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_round_trip_and_either_secret_during_rotation() -> None:
    header = ws.sign(BODY, ["whsec_new", "whsec_old"], timestamp=NOW)
    assert header.count("v1=") == 2
    assert ws.verify(BODY, header, "whsec_new", now=NOW) == NOW
    assert ws.verify(BODY, header, "whsec_old", now=NOW + 10) == NOW
    assert ws.verify(BODY.decode(), header, ["whsec_other", "whsec_old"], now=NOW) == NOW


@pytest.mark.parametrize(
    ("body", "secret", "now"),
    [
        (BODY + b" ", "whsec_a", NOW),  # body changed
        (BODY, "whsec_b", NOW),  # wrong secret
        (BODY, "whsec_a", NOW + ws.TOLERANCE_SECONDS + 1),  # replayed later
        (BODY, "whsec_a", NOW - ws.TOLERANCE_SECONDS - 1),  # from the future
    ],
)
def test_verification_fails(body: bytes, secret: str, now: int) -> None:
    header = ws.sign(BODY, ["whsec_a"], timestamp=NOW)
    with pytest.raises(ws.InvalidSignature):
        ws.verify(body, header, secret, now=now)


@pytest.mark.parametrize("header", ["", "v1=abc", f"t={NOW}", "t=soon,v1=abc", "garbage"])
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(ws.InvalidSignature):
        ws.verify(BODY, header, "whsec_a", now=NOW)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    header = ws.sign(BODY, ["whsec_a"], timestamp=NOW)
    forged = header.replace(f"t={NOW}", f"t={NOW + 60}")
    with pytest.raises(ws.InvalidSignature):
        ws.verify(BODY, forged, "whsec_a", now=NOW + 60)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        ws.sign(BODY, [], timestamp=NOW)


def test_backoff_doubles_then_caps() -> None:
    waits = [backoff_seconds(a, 60, 6 * 3600) for a in range(1, 12)]
    assert waits[:4] == [60, 120, 240, 480]
    assert waits[-1] == 6 * 3600
    # The schedule used by the worker covers about 24 hours in a dozen attempts, not hundreds.
    total, attempt = 0, 1
    while total + backoff_seconds(attempt, 60, 6 * 3600) <= 24 * 3600:
        total += backoff_seconds(attempt, 60, 6 * 3600)
        attempt += 1
    assert 10 <= attempt <= 14


def resolver(addresses: list[str]):  # type: ignore[no-untyped-def]
    return lambda host, port: addresses


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("ftp://crm.example.com/hook", ["93.184.215.14"]),
        ("file:///etc/passwd", []),
        ("http://user:pw@crm.example.com/hook", ["93.184.215.14"]),
        ("http://localhost:8080/hook", ["127.0.0.1"]),
        ("http://metadata/latest", ["169.254.169.254"]),
        ("https://intranet.example.com/hook", ["10.0.0.5"]),
        ("https://crm.example.com/hook", ["93.184.215.14", "192.168.1.10"]),
        ("https://v6.example.com/hook", ["::1"]),
        ("https://mapped.example.com/hook", ["::ffff:127.0.0.1"]),
        ("https://nowhere.example.com/hook", []),
        ("http://crm.example.com/hook", ["93.184.215.14"]),
    ],
)
def test_non_public_or_non_http_urls_are_refused(url: str, addresses: list[str]) -> None:
    with pytest.raises(UrlRefused):
        check_url(url, allow_private=False, resolve=resolver(addresses))


def test_public_https_url_is_allowed_and_loopback_only_locally() -> None:
    check_url("https://crm.example.com/hook", allow_private=False, resolve=resolver(["93.184.215.14"]))
    check_url("http://127.0.0.1:9000/hook", allow_private=True, resolve=resolver(["127.0.0.1"]))
    with pytest.raises(UrlRefused):
        check_url("gopher://127.0.0.1/x", allow_private=True)


# --- Standard Webhooks: checked against the standardwebhooks package itself ------------------------------------------


def _library_headers(headers: dict[str, str]) -> dict[str, str]:
    return {key.title(): value for key, value in headers.items()}  # header names arrive in any case


def test_every_new_secret_is_one_the_standard_webhooks_library_takes() -> None:
    from standardwebhooks.webhooks import Webhook

    for _ in range(200):
        secret = ws.new_secret()
        assert secret.startswith("whsec_")
        assert len(ws.secret_key(secret)) == 32
        assert ws.standard_secret(secret) == secret
        Webhook(secret)  # about a quarter of the old token_urlsafe secrets crashed or mis-keyed this


def test_standard_headers_verify_with_the_library_and_match_its_signature() -> None:
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    secret = ws.new_secret()
    now = int(time.time())
    headers = ws.standard_headers("evt_1", BODY, [secret], timestamp=now)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "evt_1" and headers["webhook-timestamp"] == str(now)
    library = Webhook(secret)
    assert headers["webhook-signature"] == library.sign("evt_1", datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    library.verify(BODY, _library_headers(headers))
    assert ws.verify_standard(BODY, _library_headers(headers), secret) == now


def test_during_a_rotation_either_secret_verifies_with_the_library() -> None:
    from standardwebhooks.webhooks import Webhook

    new, old = ws.new_secret(), ws.new_secret()
    headers = ws.standard_headers("evt_2", BODY, [new, old])
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_an_old_url_safe_secret_keeps_its_key_in_standard_spelling() -> None:
    import base64
    import secrets

    from standardwebhooks.webhooks import Webhook

    raw = secrets.token_bytes(32)
    old = "whsec_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")  # how secrets were made before
    assert ws.secret_key(old) == raw
    headers = ws.standard_headers("evt_3", BODY, [old])
    Webhook(ws.standard_secret(old)).verify(BODY, headers)  # what a lender with an old secret plugs in


@pytest.mark.parametrize(
    ("body", "change", "now_offset"),
    [
        (BODY + b" ", {}, 0),  # body changed
        (BODY, {"webhook-id": "evt_other"}, 0),  # id swapped
        (BODY, {"webhook-signature": "v1,AAAA"}, 0),  # forged
        (BODY, {"webhook-signature": ""}, 0),  # missing
        (BODY, {"webhook-timestamp": "soon"}, 0),  # malformed
        (BODY, {}, ws.TOLERANCE_SECONDS + 1),  # replayed later
    ],
)
def test_standard_verification_fails(body: bytes, change: dict[str, str], now_offset: int) -> None:
    secret = ws.new_secret()
    headers = {**ws.standard_headers("evt_1", BODY, [secret], timestamp=NOW), **change}
    with pytest.raises(ws.InvalidSignature):
        ws.verify_standard(body, headers, secret, now=NOW + now_offset)
    with pytest.raises(ws.InvalidSignature):
        ws.verify_standard(BODY, ws.standard_headers("evt_1", BODY, [secret], timestamp=NOW), ws.new_secret(), now=NOW)
