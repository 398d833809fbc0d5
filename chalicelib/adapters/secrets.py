"""The deployment's secrets (``chalicelib.config.SECRETS``), read from AWS Secrets Manager with Powertools Parameters.

A function's environment holds the ARN of each secret it reads, never a value. A value is read when it is used and
kept for :data:`MAX_AGE_SECONDS`, so a secret replaced with ``put-secret-value`` is in use within that time, and a
warm function calls Secrets Manager at most once per secret in that time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import BaseProvider

    from chalicelib.config import Secret, Settings

MAX_AGE_SECONDS = 300


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
        if not self._settings.is_local:
            problem = secret.problem(value)
            if problem is not None:
                raise ConfigurationError(
                    f"secret {secret.name} is {problem}: production needs its real value; set it with "
                    f"aws secretsmanager put-secret-value --secret-id {arn} --secret-string ..."
                )
        return value
