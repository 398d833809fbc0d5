"""Signatures of outbound webhooks.

Every delivery carries the Standard Webhooks headers (https://www.standardwebhooks.com) that the
``standardwebhooks`` and ``svix`` libraries verify: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64>``, HMAC-SHA256 over ``f"{id}.{timestamp}.{body}"`` keyed with the bytes of
the ``whsec_`` + base64 secret (:func:`standard_headers`, :func:`verify_standard`).

For one release the previous header is sent too (setting ``webhook_legacy_signature``). It reads ``X-Onboarding-Signature: t=1767225600,v1=<hex>[,v1=<hex>]``: one ``v1`` per
secret valid at the time of sending (two during a rotation), so a receiver holding either secret
accepts the event. ``t`` is Unix seconds; a receiver rejects a timestamp more than five minutes
away from its clock (replay protection). Standard library only, so a lender can copy
:func:`verify` as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from secrets import token_bytes
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

HEADER = "X-Onboarding-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, stale or matches none of the secrets."""


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def compute(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    signed = str(int(timestamp)).encode() + b"." + _bytes(body)
    return hmac.new(_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign(body: bytes | str, secrets: Iterable[str], timestamp: int | None = None) -> str:
    """The header value for ``body``, signed with every secret given (newest first)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signatures = [f"{SCHEME}={compute(s, ts, body)}" for s in secrets]
    if not signatures:
        raise ValueError("at least one secret is needed to sign")
    return ",".join([f"t={ts}", *signatures])


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; raises InvalidSignature when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise InvalidSignature("the timestamp is not a number") from exc
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise InvalidSignature("no timestamp in the signature header")
    if not signatures:
        raise InvalidSignature(f"no {SCHEME} signature in the signature header")
    return timestamp, signatures


def verify(
    body: bytes | str,
    header: str,
    secrets: str | Iterable[str],
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a webhook as its receiver: returns the signed timestamp, or raises InvalidSignature.

    ``body`` must be the raw request body, byte for byte (parse the JSON only after verifying).
    ``secrets`` may hold two secrets while you roll yours over.
    """
    timestamp, signatures = parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("the timestamp is outside the tolerance (replayed or clock skew)")
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [compute(s, timestamp, body) for s in candidates]
    # Compare every pair in constant time; no early exit reveals which one matched.
    matched = False
    for want in expected:
        for got in signatures:
            matched |= hmac.compare_digest(want, got)
    if not matched:
        raise InvalidSignature("no signature matches")
    return timestamp


# --- Standard Webhooks -----------------------------------------------------------------------------------------------
# https://www.standardwebhooks.com: what the `standardwebhooks` and `svix` libraries verify. The signed content is
# f"{webhook-id}.{webhook-timestamp}.{body}", the key the bytes a ``whsec_`` secret's base64 encodes, the header a
# space-separated list of ``v1,<base64 HMAC-SHA256>`` (one per secret valid now, two during a rotation).
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + standard base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret.

    Secrets made before Standard Webhooks are unpadded URL-safe base64 (``token_urlsafe``), which the libraries'
    strict decoding refuses; they decode here to the same 32 bytes, and :func:`standard_secret` gives the form a
    lender's library takes.
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def standard_secret(secret: str) -> str:
    """The ``whsec_`` + standard base64 spelling of ``secret`` (unchanged for a secret made by :func:`new_secret`)."""
    return SECRET_PREFIX + base64.b64encode(secret_key(secret)).decode()


def _standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    signed = f"{msg_id}.{int(timestamp)}.".encode() + _bytes(body)
    return base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def standard_headers(
    msg_id: str, body: bytes | str, secrets_: Iterable[str], timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers of ``body``; ``msg_id`` stays the same on every retry (dedupe on it)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signatures = [f"{SCHEME},{_standard_signature(s, msg_id, ts, body)}" for s in secrets_]
    if not signatures:
        raise ValueError("at least one secret is needed to sign")
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: " ".join(signatures)}


def verify_standard(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets_: str | Iterable[str],
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a Standard Webhooks delivery (header names case-insensitive); returns the timestamp or raises
    InvalidSignature. A lender would rather call ``standardwebhooks.Webhook(secret).verify(body, headers)``."""
    lower = {key.lower(): value for key, value in headers.items()}
    msg_id, stamp, header = (lower.get(h, "") for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not msg_id or not header:
        raise InvalidSignature("missing webhook-id or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise InvalidSignature("the webhook-timestamp is not a number") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("the timestamp is outside the tolerance (replayed or clock skew)")
    got = [part.partition(",")[2] for part in header.split() if part.startswith(f"{SCHEME},")]
    candidates = [secrets_] if isinstance(secrets_, str) else list(secrets_)
    matched = False
    for secret in candidates:
        want = _standard_signature(secret, msg_id, timestamp, body)
        for signature in got:
            matched |= hmac.compare_digest(want, signature)
    if not matched:
        raise InvalidSignature("no signature matches")
    return timestamp
