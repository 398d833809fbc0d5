"""Signatures of outbound webhooks: HMAC-SHA256 over ``f"{timestamp}.{body}"``.

The header reads ``X-Onboarding-Signature: t=1767225600,v1=<hex>[,v1=<hex>]``: one ``v1`` per
secret valid at the time of sending (two during a rotation), so a receiver holding either secret
accepts the event. ``t`` is Unix seconds; a receiver rejects a timestamp more than five minutes
away from its clock (replay protection). Standard library only, so a lender can copy
:func:`verify` as is.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

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
