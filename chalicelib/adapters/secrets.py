"""The deployment's secrets (``chalicelib.config.SECRETS``), read from AWS Secrets Manager with Powertools Parameters.

A function's environment holds the ARN of each secret it reads, never a value. A value is read when it is used and
kept for :data:`MAX_AGE_SECONDS`, so a secret replaced with ``put-secret-value`` is in use within that time, and a
warm function calls Secrets Manager at most once per secret in that time.

Inbound webhook secrets rotate with an overlap (:meth:`SecretStore.verify`): a signature is checked with the current
version (``AWSCURRENT``) and, for ``webhook_secret_overlap_seconds`` after that version was created, with the previous
one (``AWSPREVIOUS``); a signature that none of the cached versions accepts reads them again at once (at most once per
``webhook_secret_refresh_seconds``), so a partner's new signature is accepted right after ``put-secret-value``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError, SecretNotSet
from chalicelib.errors import WebhookRejected, WebhookUnsigned
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.parameters import BaseProvider

    from chalicelib.config import Secret, Settings

MAX_AGE_SECONDS = 300
T = TypeVar("T")


@dataclass(frozen=True)
class _Versions:
    """A webhook secret's usable values as read at ``read_at`` (monotonic): the current one, and the previous one
    until ``previous_until`` (epoch seconds)."""

    current: str
    previous: str | None
    previous_until: float
    read_at: float

    def values(self, now: float) -> list[str]:
        return [self.current] + ([self.previous] if self.previous is not None and now < self.previous_until else [])


class SecretStore:
    """Reads :class:`~chalicelib.config.Secret` values. Build once per process: the cache lives in the provider
    (Powertools' ``SecretsProvider`` on the process's Secrets Manager client unless one is given).

    On the local stages a secret whose ARN is not set reads as its declared local value (unit tests, tools), and
    values are not checked; the embedded stack sets the ARNs, so its functions read moto's Secrets Manager.
    """

    def __init__(
        self, settings: Settings, provider: BaseProvider | None = None, *, max_age: int = MAX_AGE_SECONDS
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._max_age = max_age
        self._versions: dict[str, _Versions] = {}
        self._refreshed_at: dict[str, float] = {}
        self._lock = threading.Lock()  # the embedded stack serves requests on threads

    def _secrets_manager(self) -> BaseProvider:
        if self._provider is None:
            # Imported here: Powertools' parameters module imports boto3, which a function without secrets never needs.
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
        return self._provider

    def get(self, secret: Secret) -> str:
        """The secret's current value, from a cache at most ``max_age`` seconds old.

        Raises ConfigurationError, naming the secret, when its ARN is not in this function's environment, Secrets
        Manager does not give it, or (outside the local stages) it is empty, still a placeholder or too short.
        """
        arn = self._settings.secret_arns.get(secret.name)
        if not arn:
            if self._settings.is_local:
                return secret.local
            raise SecretNotSet(
                f"secret {secret.name}: {secret.env} is not set; this function is not declared to read it "
                "(infra/package.py FUNCTION_ACCESS)"
            )
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._secrets_manager().get(arn, max_age=self._max_age)
        except GetParameterError as exc:
            logger.exception("Secret unreadable", extra={"secret": secret.name})
            raise ConfigurationError(f"secret {secret.name} cannot be read from Secrets Manager ({arn})") from exc
        if not isinstance(value, str):
            raise ConfigurationError(f"secret {secret.name} must be a SecretString ({arn})")
        self._check(secret, arn, value)
        return value

    def verify(self, secret: Secret, check: Callable[[str], T]) -> T:
        """``check(value)`` with each usable value of the inbound webhook secret: the current version, then the
        previous one while the rotation's overlap lasts. When every cached value is refused, the versions are read
        again (at most once per ``webhook_secret_refresh_seconds`` for this secret, so forged calls cannot each cost
        a Secrets Manager call) and checked once more; not when they were read for this very call, nor when the
        call carries no signature at all (:class:`WebhookUnsigned`: no version could accept it, and it must not
        spend the re-read the partner's first call after a rotation needs). Raises the last
        :class:`WebhookRejected`, or ConfigurationError as :meth:`get` does."""
        values, just_read = self._webhook_values(secret)
        try:
            return self._first_accepted(values, check)
        except WebhookUnsigned:
            raise
        except WebhookRejected:
            if just_read:
                raise  # a re-read now would find what was just read
            again = self._re_read(secret)
            if again is None:
                raise
        return self._first_accepted(again, check)

    @staticmethod
    def _first_accepted(values: list[str], check: Callable[[str], T]) -> T:
        refused: WebhookRejected | None = None
        for value in values:
            try:
                return check(value)
            except WebhookUnsigned:
                raise
            except WebhookRejected as exc:
                refused = exc
        assert refused is not None  # there is always a current value
        raise refused

    def _webhook_values(self, secret: Secret) -> tuple[list[str], bool]:
        """The usable values, cached or read now, and whether they were read now (from Secrets Manager, or the
        local value of a secret without an ARN on a local stage: nothing to read again)."""
        arn = self._settings.secret_arns.get(secret.name)
        if not arn:
            return [self.get(secret)], True  # the local value, or ConfigurationError
        now = time.monotonic()
        with self._lock:
            cached = self._versions.get(arn)
            if cached is not None and now - cached.read_at < self._max_age:
                return cached.values(time.time()), False
        return self._store_versions(secret, arn, now), True

    def _re_read(self, secret: Secret) -> list[str] | None:
        """The usable values read again, or None: a re-read of this secret was tried less than
        ``webhook_secret_refresh_seconds`` ago, or Secrets Manager failed it (logged; the signature stays refused,
        so the partner retries rather than getting a 500)."""
        arn = self._settings.secret_arns[secret.name]
        now = time.monotonic()
        with self._lock:
            last = self._refreshed_at.get(arn)
            if last is not None and now - last < self._settings.webhook_secret_refresh_seconds:
                return None
            self._refreshed_at[arn] = now
        try:
            return self._store_versions(secret, arn, now)
        except ConfigurationError:
            return None

    def _store_versions(self, secret: Secret, arn: str, now: float) -> list[str]:
        versions = self._read_versions(secret, arn, now)
        with self._lock:
            self._versions[arn] = versions
        return versions.values(time.time())

    def _read_versions(self, secret: Secret, arn: str, now: float) -> _Versions:
        """AWSCURRENT and, while the overlap after its creation lasts, AWSPREVIOUS, straight from Secrets Manager:
        Powertools' provider caches by name only (a VersionStage in its ``sdk_options`` would share the current
        value's cache entry) and returns no CreatedDate. An answer without a CreatedDate starts no overlap: counted
        from the moment of the read instead, every re-read would accept the previous version 24 h more."""
        client = aws.client("secretsmanager")
        current = self._read_stage(client, secret, arn, "AWSCURRENT")
        if current is None:
            raise ConfigurationError(f"secret {secret.name} cannot be read from Secrets Manager ({arn})")
        value, created = current
        self._check(secret, arn, value)
        until = created.timestamp() + self._settings.webhook_secret_overlap_seconds if created is not None else 0.0
        previous = None
        if time.time() < until:
            found = self._read_stage(client, secret, arn, "AWSPREVIOUS")
            # A placeholder or otherwise unusable previous value (the template's first one) never counts.
            usable = found is not None and (self._settings.is_local or secret.problem(found[0]) is None)
            previous = found[0] if found is not None and usable and found[0] != value else None
        return _Versions(value, previous, until, now)

    @staticmethod
    def _read_stage(client: Any, secret: Secret, arn: str, stage: str) -> tuple[str, datetime | None] | None:
        try:
            answer = client.get_secret_value(SecretId=arn, VersionStage=stage)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None  # no such stage (a secret never rotated has no AWSPREVIOUS)
            logger.exception("Secret unreadable", extra={"secret": secret.name, "stage": stage})
            raise ConfigurationError(f"secret {secret.name} cannot be read from Secrets Manager ({arn})") from exc
        except BotoCoreError as exc:
            logger.exception("Secret unreadable", extra={"secret": secret.name, "stage": stage})
            raise ConfigurationError(f"secret {secret.name} cannot be read from Secrets Manager ({arn})") from exc
        value = answer.get("SecretString")
        if not isinstance(value, str):
            raise ConfigurationError(f"secret {secret.name} must be a SecretString ({arn})")
        created = answer.get("CreatedDate")
        return value, created if isinstance(created, datetime) else None

    def _check(self, secret: Secret, arn: str, value: str) -> None:
        if self._settings.is_local:
            return
        problem = secret.problem(value)
        if problem is not None:
            raise SecretNotSet(
                f"secret {secret.name} is {problem}: production needs its real value; set it with "
                f"aws secretsmanager put-secret-value --secret-id {arn} --secret-string ..."
            )
