"""A secret kept for one session to read once (the first API key after sign-up): sealed with the server key and the
session id, so the stored value alone, or another session, or another purpose, opens nothing."""

from __future__ import annotations

import base64

from chalicelib.domain.ids import seal, unseal

KEY = "server-link-key"


def test_a_sealed_secret_opens_with_the_same_key_purpose_and_session_only() -> None:
    sealed = seal(KEY, "first-api-key", "session-1", "lok_secret")
    assert "lok_secret" not in sealed
    assert unseal(KEY, "first-api-key", "session-1", sealed) == "lok_secret"
    assert unseal(KEY, "first-api-key", "session-2", sealed) is None
    assert unseal(KEY, "other-purpose", "session-1", sealed) is None
    assert unseal("another-key", "first-api-key", "session-1", sealed) is None


def test_a_tampered_or_malformed_value_opens_nothing() -> None:
    sealed = seal(KEY, "first-api-key", "session-1", "lok_secret")
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    for at in (0, 12, len(raw) - 1):  # the nonce, the ciphertext, the tag
        tampered = raw.copy()
        tampered[at] ^= 1
        assert unseal(KEY, "first-api-key", "session-1", base64.urlsafe_b64encode(tampered).decode()) is None
    for junk in ("", "!!!", "abc", "A" * 40):
        assert unseal(KEY, "first-api-key", "session-1", junk) is None


def test_each_seal_is_different() -> None:
    assert seal(KEY, "p", "s", "same") != seal(KEY, "p", "s", "same")
