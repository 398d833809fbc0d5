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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError
from chalicelib.errors import WebhookRejected
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
            raise ConfigurationError(
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
        a Secrets Manager call) and checked once more. Raises the last :class:`WebhookRejected`, or
        ConfigurationError as :meth:`get` does."""
        refused: WebhookRejected | None = None
        for refresh in (False, True):
            try:
                values = self._webhook_values(secret, refresh=refresh)
            except ConfigurationError:
                if not refresh:
                    raise
                values = None  # Secrets Manager failed the re-read: the signature stays refused (logged above)
            if values is None:
                break
            for value in values:
                try:
                    return check(value)
                except WebhookRejected as exc:
                    refused = exc
        assert refused is not None
        raise refused

    def _webhook_values(self, secret: Secret, *, refresh: bool) -> list[str] | None:
        """The usable values (None: a refresh is not allowed yet, or the secret has no ARN on a local stage)."""
        arn = self._settings.secret_arns.get(secret.name)
        if not arn:
            return None if refresh else [self.get(secret)]  # the local value, or ConfigurationError
        now = time.monotonic()
        with self._lock:
            cached = self._versions.get(arn)
            if refresh:
                last = self._refreshed_at.get(arn)
                if last is not None and now - last < self._settings.webhook_secret_refresh_seconds:
                    return None
                self._refreshed_at[arn] = now
            elif cached is not None and now - cached.read_at < self._max_age:
                return cached.values(time.time())
        versions = self._read_versions(secret, arn, now)
        with self._lock:
            self._versions[arn] = versions
        return versions.values(time.time())

    def _read_versions(self, secret: Secret, arn: str, now: float) -> _Versions:
        """AWSCURRENT and, while the overlap after its creation lasts, AWSPREVIOUS, straight from Secrets Manager:
        Powertools' provider caches by name only (a VersionStage in its ``sdk_options`` would share the current
        value's cache entry) and returns no CreatedDate."""
        client = aws.client("secretsmanager")
        current = self._read_stage(client, secret, arn, "AWSCURRENT")
        if current is None:
            raise ConfigurationError(f"secret {secret.name} cannot be read from Secrets Manager ({arn})")
        value, created = current
        self._check(secret, arn, value)
        until = created + self._settings.webhook_secret_overlap_seconds
        previous = None
        if time.time() < until:
            found = self._read_stage(client, secret, arn, "AWSPREVIOUS")
            # A placeholder or otherwise unusable previous value (the template's first one) never counts.
            usable = found is not None and (self._settings.is_local or secret.problem(found[0]) is None)
            previous = found[0] if found is not None and usable and found[0] != value else None
        return _Versions(value, previous, until, now)

    @staticmethod
    def _read_stage(client: Any, secret: Secret, arn: str, stage: str) -> tuple[str, float] | None:
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
        return value, (created if isinstance(created, datetime) else datetime.now(UTC)).timestamp()

    def _check(self, secret: Secret, arn: str, value: str) -> None:
        if self._settings.is_local:
            return
        problem = secret.problem(value)
        if problem is not None:
            raise ConfigurationError(
                f"secret {secret.name} is {problem}: production needs its real value; set it with "
                f"aws secretsmanager put-secret-value --secret-id {arn} --secret-string ..."
            )
