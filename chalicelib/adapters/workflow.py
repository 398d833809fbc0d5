"""Step Functions: start the bank-link waterfall and close its task tokens.

A task token that is no longer open (timed out, already answered, execution finished) is a
normal outcome for webhooks and heartbeats that arrive late, so it comes back as
``TaskResult.CLOSED`` instead of an exception. Anything else AWS refuses raises UpstreamError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

CLOSED_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class TaskResult(StrEnum):
    SENT = "sent"
    CLOSED = "closed"  # the task was already closed: nothing changed


@dataclass(frozen=True)
class Execution:
    arn: str
    already_started: bool


class Workflow:
    def __init__(self, state_machine_arn: str, client: SFNClient | Any) -> None:
        self.state_machine_arn = state_machine_arn
        self.client = client

    def execution_arn(self, name: str) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> Execution:
        """Start (or find) the execution called ``name``.

        Standard executions are idempotent on name + input while running; a closed one with the
        same name answers ExecutionAlreadyExists, which means it was started before: not an error.
        Raises UpstreamError when Step Functions refuses or is unreachable.
        """
        try:
            response = self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=json.dumps(payload, separators=(",", ":"), sort_keys=True),
            )
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                return Execution(self.execution_arn(name), already_started=True)
            logger.exception("StartExecution failed", extra={"execution": name, "error_code": _code(exc)})
            raise UpstreamError("the bank-link workflow is unavailable, please retry") from exc
        except BotoCoreError as exc:
            logger.exception("StartExecution failed", extra={"execution": name})
            raise UpstreamError("the bank-link workflow is unavailable, please retry") from exc
        return Execution(str(response["executionArn"]), already_started=False)

    def status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when no such execution."""
        try:
            response = self.client.describe_execution(executionArn=self.execution_arn(name))
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                return None
            raise UpstreamError("the bank-link workflow is unavailable, please retry") from exc
        return str(response["status"])

    def output(self, name: str) -> dict[str, Any] | None:
        """The output of a SUCCEEDED execution; None while running, after any other end, or unknown."""
        try:
            response = self.client.describe_execution(executionArn=self.execution_arn(name))
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                return None
            raise UpstreamError("the bank-link workflow is unavailable, please retry") from exc
        if response.get("status") != "SUCCEEDED":
            return None
        try:
            parsed = json.loads(response.get("output") or "{}")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def succeed(self, token: str, output: dict[str, Any]) -> TaskResult:
        return self._token_call("SendTaskSuccess", taskToken=token, output=json.dumps(output, separators=(",", ":")))

    def fail(self, token: str, error: str, cause: str = "") -> TaskResult:
        # Error is at most 256 characters, Cause 32768; neither ever carries partner text here.
        return self._token_call("SendTaskFailure", taskToken=token, error=error[:256], cause=cause[:1000])

    def heartbeat(self, token: str) -> TaskResult:
        return self._token_call("SendTaskHeartbeat", taskToken=token)

    def _token_call(self, operation: str, **params: Any) -> TaskResult:
        method = {
            "SendTaskSuccess": self.client.send_task_success,
            "SendTaskFailure": self.client.send_task_failure,
            "SendTaskHeartbeat": self.client.send_task_heartbeat,
        }[operation]
        try:
            method(**params)
        except ClientError as exc:
            if _code(exc) in CLOSED_TOKEN_ERRORS:
                logger.info("Task already closed", extra={"operation": operation, "error_code": _code(exc)})
                return TaskResult.CLOSED
            logger.exception("Step Functions call failed", extra={"operation": operation, "error_code": _code(exc)})
            raise UpstreamError("the bank-link workflow is unavailable, please retry") from exc
        except BotoCoreError as exc:
            logger.exception("Step Functions call failed", extra={"operation": operation})
            raise UpstreamError("the bank-link workflow is unavailable, please retry") from exc
        return TaskResult.SENT


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
