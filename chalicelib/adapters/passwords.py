"""Password hashing with argon2id (argon2-cffi), at or above the OWASP minimum (m=19 MiB, t=2, p=1)."""

from __future__ import annotations

from functools import cached_property

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MEMORY_COST_KIB = 19456
TIME_COST = 2
PARALLELISM = 1


class PasswordHasher:
    """Hashes and verifies passwords. Never raises on a wrong password or a damaged hash: returns False."""

    def __init__(
        self, memory_cost: int = MEMORY_COST_KIB, time_cost: int = TIME_COST, parallelism: int = PARALLELISM
    ) -> None:
        self._argon2 = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)

    @cached_property
    def _dummy(self) -> str:
        return self._argon2.hash("not-a-real-password-only-for-equal-work")

    def burn(self, password: str) -> None:
        """Do the work of a verification when there is no account, so timing tells nothing."""
        self.verify(self._dummy, password)
