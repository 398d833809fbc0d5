"""Identifiers and secrets: time-sortable ids, link tokens, API keys and their hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def new_token() -> str:
    """A link token with 256 bits from the CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret (tokens, API keys). Never used for passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def derived_token(key: str, purpose: str, secret: str) -> str:
    """HMAC-SHA256 of ``<purpose>:<secret>`` with ``key`` (hex): a value only the key's holder can derive from the
    secret, different for each purpose (CSRF tokens bound to a session or a link)."""
    return hmac.new(key.encode(), f"{purpose}:{secret}".encode(), hashlib.sha256).hexdigest()


def _sealing_key(key: str, purpose: str, secret: str) -> bytes:
    return hmac.new(key.encode(), f"{purpose}-seal:{secret}".encode(), hashlib.sha256).digest()


def seal(key: str, purpose: str, secret: str, plaintext: str) -> str:
    """``plaintext`` encrypted (AES-256-GCM) under a key derived from ``key`` and ``secret``: what is stored can be
    read back only by the holder of both (the server key, and the session id that only its cookie holds)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # imported here: only sign-up pays for it

    nonce = os.urandom(12)
    sealed = AESGCM(_sealing_key(key, purpose, secret)).encrypt(nonce, plaintext.encode(), purpose.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: str, purpose: str, secret: str, sealed: str) -> str | None:
    """The plaintext :func:`seal` sealed with the same key, purpose and secret; None for anything else."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        opened = AESGCM(_sealing_key(key, purpose, secret)).decrypt(raw[:12], raw[12:], purpose.encode())
    except (InvalidTag, ValueError, binascii.Error):
        return None
    return opened.decode()


API_KEY_PREFIX = "lok_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_display_prefix(key: str) -> str:
    """What listings show of a key: enough to recognise it, far too little to use it."""
    return key[: len(API_KEY_PREFIX) + 6]
