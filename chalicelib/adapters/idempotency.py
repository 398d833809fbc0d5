"""Powertools idempotency on the single table: run a side effect at most once per key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# A send's result is kept a week: far longer than any SQS redelivery (retention is 4 days by default).
RESULT_TTL_SECONDS = 7 * 24 * 3600


class Once:
    """``once(key, effect)`` runs ``effect`` the first time a key is seen and replays its result after.

    A concurrent second call for the same key raises Powertools' IdempotencyAlreadyInProgressError,
    which fails that SQS record so it is retried later instead of acting twice.
    """

    def __init__(self, table_name: str, client: Any) -> None:
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table_name,
            key_attr="PK",
            sort_key_attr="SK",
            static_pk_value="IDEMPOTENCY",
            expiry_attr="expires_at",
            boto3_client=client,
        )
        self.config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=RESULT_TTL_SECONDS)

    def register_context(self, context: Any) -> None:
        """Let in-progress records expire with the Lambda's own timeout (a crash then retries)."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self.config.register_lambda_context(context)

    def __call__(self, key: str, effect: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        @idempotent_function(data_keyword_argument="request", config=self.config, persistence_store=self.persistence)
        def run(request: dict[str, Any]) -> dict[str, Any]:
            return effect()

        return run(request={"key": key})
