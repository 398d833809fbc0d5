"""Link tokens: derived, hashed, expiring.

A link token is ``HMAC-SHA256(link_key, purpose:subject:nonce)`` with a fresh 128-bit nonce from
``secrets`` per link. The table stores the nonce and the token's SHA-256 (for lookup), never the
token. Rotating a link (a resend) means a new nonce: the old token's lookup is deleted with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_nonce() -> str:
    return secrets.token_hex(16)


def derive_token(link_key: str, purpose: str, subject: str, nonce: str) -> str:
    digest = hmac.new(link_key.encode(), f"{purpose}:{subject}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    """Cheap shape check before any database read (43 url-safe base64 characters)."""
    return len(value) == 43 and all(c.isalnum() or c in "-_" for c in value)
