"""The waterfall state machine (infra/waterfall.asl.json): its structure, and its behaviour on moto's executing
Step Functions with the resources devstack builds from infra/ (Retry intervals shortened by quick_retries).

The test plays the link-request worker: it reads the queue and answers the task tokens, so any provider name (a
fourth one included) runs through the same states.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.domain.providers import known
from chalicelib.domain.waterfall import PROVIDER_FAILURES, PROVIDER_UNAVAILABLE, reason_from_error
from tests.unit.test_infra import ASL, _finished, _next_message, _start, _states_entered

Waterfall = tuple[Any, Any, dict[str, str]]
TRANSIENT_AWS = {"SQS.SdkClientException", "SQS.AmazonSQSException"}
INFRA_ERRORS = ("States.Permissions", "States.TaskFailed", "SQS.KmsAccessDeniedException", "AccessDeniedException")


def _tasks() -> dict[str, dict[str, Any]]:
    return {name: state for name, state in ASL["States"].items() if state["Type"] == "Task"}


def _matching(catchers: list[dict[str, Any]], error: str) -> dict[str, Any] | None:
    """The catcher (or retrier) Step Functions picks for ``error``: the first that names it, or States.ALL
    (which never matches States.Runtime)."""
    for catcher in catchers:
        names = catcher["ErrorEquals"]
        if error in names or ("States.ALL" in names and error != "States.Runtime"):
            return catcher
    return None


def _ends_failed(state_name: str) -> bool:
    """Whether every way on from ``state_name`` ends in a Fail state."""
    state = ASL["States"][state_name]
    if state["Type"] == "Fail":
        return True
    nexts = [state["Next"]] if "Next" in state else []
    nexts += [c["Next"] for c in state.get("Catch", [])]
    return bool(nexts) and all(_ends_failed(n) for n in nexts)


# --- structure -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(_tasks()))
def test_every_task_retries_transient_aws_errors_before_any_catch(name: str) -> None:
    state = _tasks()[name]
    keys = list(state)
    assert "Retry" in keys, name
    if "Catch" in keys:
        assert keys.index("Retry") < keys.index("Catch"), name
    for error in TRANSIENT_AWS:
        retrier = _matching(state["Retry"], error)
        assert retrier is not None and retrier["MaxAttempts"] >= 2, (name, error)


def test_only_a_providers_own_failures_move_on_to_the_next_provider() -> None:
    step = ASL["States"]["TryProvider"]
    moving_on = [c for c in step["Catch"] if c["Next"] == "NextProvider"]
    assert len(moving_on) == 1
    assert set(moving_on[0]["ErrorEquals"]) == set(PROVIDER_FAILURES)
    assert not {"States.ALL", "States.TaskFailed", "States.Runtime", "States.Permissions"} & set(PROVIDER_FAILURES)
    for error in PROVIDER_FAILURES:
        assert _matching(step["Catch"], error) is moving_on[0], error
    # Infrastructure errors: after their retries, they end the execution in a Fail state.
    for error in (*INFRA_ERRORS, *TRANSIENT_AWS):
        catcher = _matching(step["Catch"], error)
        assert catcher is not None and catcher["Next"] != "NextProvider", error
        assert _ends_failed(catcher["Next"]), error
    # The provider being down is retried on the same provider first, then counts as that provider's failure.
    assert _matching(step["Retry"], PROVIDER_UNAVAILABLE) is not None
    assert reason_from_error({"Error": PROVIDER_UNAVAILABLE}) == "provider_error"


def test_the_data_step_reports_a_data_failure_but_fails_on_infrastructure_errors() -> None:
    step = ASL["States"]["FetchData"]
    assert _matching(step["Catch"], "FinancialData.Failed")["Next"] == "DataUnavailable"  # type: ignore[index]
    assert _matching(step["Catch"], "States.Timeout")["Next"] == "DataUnavailable"  # type: ignore[index]
    for error in INFRA_ERRORS:
        assert _ends_failed(_matching(step["Catch"], error)["Next"]), error  # type: ignore[index]


def test_providers_are_a_loop_not_one_state_per_provider() -> None:
    tasks = _tasks()
    link_steps = [n for n, s in tasks.items() if s["Parameters"]["MessageBody"].get("type") == "link_request"]
    assert link_steps == ["TryProvider"]
    body = tasks["TryProvider"]["Parameters"]["MessageBody"]
    assert body["provider.$"] == "States.ArrayGetItem($.providers, $.loop.index)"
    assert not any(key in json.dumps(ASL) for key in known())  # no provider is named in the machine


def test_a_top_level_timeout_above_the_longest_legitimate_run() -> None:
    step = Settings.model_fields["link_step_timeout_seconds"].default
    fetch = ASL["States"]["FetchData"]
    not_ready = fetch["Retry"][1]
    data_waits = sum(
        not_ready["IntervalSeconds"] * not_ready["BackoffRate"] ** i for i in range(not_ready["MaxAttempts"])
    )
    data_step = (not_ready["MaxAttempts"] + 3) * fetch["TimeoutSeconds"] + data_waits
    unavailable = _matching(ASL["States"]["TryProvider"]["Retry"], PROVIDER_UNAVAILABLE)
    assert unavailable is not None
    per_provider = (unavailable["MaxAttempts"] + 1) * step + 120 * unavailable["MaxAttempts"]
    longest = len(known()) * per_provider + data_step
    assert longest < ASL["TimeoutSeconds"] <= 2 * 86400


# --- behaviour on moto -----------------------------------------------------------------------------------------------
@pytest.fixture
def waterfall() -> Iterator[Waterfall]:
    """Step Functions that executes, with the resources devstack builds from infra/ (as tests/unit/test_infra.py)."""
    import boto3
    from moto import mock_aws

    from devstack.resources import create_resources

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        env = create_resources(boto3.session.Session())
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        yield sfn, boto3.client("sqs", region_name="us-east-1"), env
        for execution in sfn.list_executions(stateMachineArn=env["STATE_MACHINE_ARN"], statusFilter="RUNNING")[
            "executions"
        ]:
            sfn.stop_execution(executionArn=execution["executionArn"])


@contextmanager
def sqs_refusing(code: str, times: int, only: tuple[str, ...] = ("link_request",)) -> Iterator[list[str]]:
    """SQS answers ``code`` to the first ``times`` SendMessage calls carrying messages of the types ``only``."""
    from moto.sqs.exceptions import SQSException
    from moto.sqs.models import SQSBackend

    original = SQSBackend.send_message
    refused: list[str] = []

    def send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        if json.loads(message_body).get("type") in only and len(refused) < times:
            refused.append(code)
            raise SQSException(code, "refused by the test")
        return original(self, queue_name, message_body, *args, **kwargs)

    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    try:
        yield refused
    finally:
        SQSBackend.send_message = original  # type: ignore[method-assign]


def _task_failures(sfn: Any, execution_arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["taskFailedEventDetails"]["error"] for e in events if "taskFailedEventDetails" in e]


def test_a_transient_sqs_error_is_retried_on_the_same_provider(waterfall: Waterfall) -> None:
    sfn, sqs, env = waterfall
    with sqs_refusing("RequestThrottled", times=1) as refused:
        arn = _start(sfn, env, "inv-t-1", ["plaid", "mx"])
        request = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert refused == ["RequestThrottled"]
    assert (request["slot"], request["provider"], request["previous"]) == (1, "plaid", None)
    assert _task_failures(sfn, arn)[0] in TRANSIENT_AWS
    sfn.send_task_success(taskToken=request["task_token"], output=json.dumps({"provider": "plaid"}))
    data = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))
    assert _finished(sfn, arn)["status"] == "SUCCEEDED"
    assert "NextProvider" not in _states_entered(sfn, arn)


@contextmanager
def slow_to_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The execution's thread, once it has sent a task's message, stalls before it starts waiting for the answer (as
    on a loaded machine) until the event is set: the worker's answer arrives in between."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    setup = CallbackEndpoint.setup_heartbeat_endpoint
    answered = threading.Event()

    def stalled(self: Any, heartbeat_seconds: int) -> Any:
        answered.wait(10)
        return setup(self, heartbeat_seconds)

    monkeypatch.setattr(CallbackEndpoint, "setup_heartbeat_endpoint", stalled)
    yield answered


def test_an_answer_given_before_the_execution_waits_for_it_is_kept(
    waterfall: Waterfall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cause of this module's flake under load: moto 5.2.5 sends the message, then sets up the wait; an answer
    in between was dropped and the step sat until its heartbeat timed out, 60 s later."""
    sfn, sqs, env = waterfall
    queue = env["LINK_REQUEST_QUEUE_URL"]
    with slow_to_wait(monkeypatch) as answered:
        arn = _start(sfn, env, "inv-t-3", ["plaid", "mx"], timeout=120)
        request = _next_message(sqs, queue)
        sfn.send_task_success(taskToken=request["task_token"], output=json.dumps({"provider": "plaid"}))
        answered.set()
        data = _next_message(sqs, queue)
    assert (data["type"], data["provider"]) == ("financial_data", "plaid")
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))
    assert _finished(sfn, arn)["status"] == "SUCCEEDED"
    assert "NextProvider" not in _states_entered(sfn, arn)


def test_a_retried_task_waits_for_an_answer_of_its_own(waterfall: Waterfall, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each attempt of a retried task has its own token (moto 5.2.5 reused the first one, and with it the first
    attempt's answer): the retry is not settled by the answer its predecessor got."""
    sfn, sqs, env = waterfall
    queue = env["LINK_REQUEST_QUEUE_URL"]
    arn = _start(sfn, env, "inv-t-4", ["plaid", "mx"], timeout=120)
    first = _next_message(sqs, queue)
    sfn.send_task_failure(taskToken=first["task_token"], error=PROVIDER_UNAVAILABLE, cause="partner 503")
    with slow_to_wait(monkeypatch) as answered:
        retry = _next_message(sqs, queue)
        assert (retry["slot"], retry["provider"], retry["retry"]) == (1, "plaid", 1)
        assert retry["task_token"] != first["task_token"]
        sfn.send_task_success(taskToken=retry["task_token"], output=json.dumps({"provider": "plaid"}))
        answered.set()
        data = _next_message(sqs, queue)
    assert (data["type"], data["provider"]) == ("financial_data", "plaid")
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))
    assert _finished(sfn, arn)["status"] == "SUCCEEDED"


def test_an_unavailable_provider_is_asked_again_then_left_for_the_next(waterfall: Waterfall) -> None:
    sfn, sqs, env = waterfall
    queue = env["LINK_REQUEST_QUEUE_URL"]
    # A step timeout well past any pause of a loaded machine: only the partner's answers may move this run.
    arn = _start(sfn, env, "inv-t-2", ["plaid", "mx"], timeout=120)
    retries = []
    unavailable = _matching(ASL["States"]["TryProvider"]["Retry"], PROVIDER_UNAVAILABLE)
    assert unavailable is not None
    for _ in range(unavailable["MaxAttempts"] + 1):
        request = _next_message(sqs, queue)
        assert (request["slot"], request["provider"]) == (1, "plaid")
        retries.append(request["retry"])
        sfn.send_task_failure(taskToken=request["task_token"], error=PROVIDER_UNAVAILABLE, cause="partner 503")
    # Each request says which retry it is: the worker's idempotency key.
    assert retries == list(range(unavailable["MaxAttempts"] + 1))
    nxt = _next_message(sqs, queue)
    assert (nxt["slot"], nxt["provider"], nxt["previous"]["Error"]) == (2, "mx", PROVIDER_UNAVAILABLE)
    sfn.send_task_success(taskToken=nxt["task_token"], output=json.dumps({"provider": "mx"}))
    data = _next_message(sqs, queue)
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))
    assert _finished(sfn, arn)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("error", ["AccessDeniedException", "KMS.KMSInvalidStateException"])
def test_an_infrastructure_error_fails_the_execution_and_tells_the_worker(waterfall: Waterfall, error: str) -> None:
    sfn, sqs, env = waterfall
    queue = env["LINK_REQUEST_QUEUE_URL"]
    arn = _start(sfn, env, "inv-t-3", ["plaid", "finicity", "mx"])
    request = _next_message(sqs, queue)
    sfn.send_task_failure(taskToken=request["task_token"], error=error, cause="not a provider's answer")
    failed = _next_message(sqs, queue)
    assert failed["type"] == "waterfall_failed"
    assert (failed["invitation_id"], failed["attempt"], failed["error"]["Error"]) == ("inv-1", 1, error)
    execution = _finished(sfn, arn)
    assert execution["status"] == "FAILED"
    assert "NextProvider" not in _states_entered(sfn, arn)


def test_sqs_refusing_for_good_fails_the_execution_after_its_retries(waterfall: Waterfall) -> None:
    sfn, sqs, env = waterfall
    with sqs_refusing("KmsAccessDenied", times=100) as refused:
        arn = _start(sfn, env, "inv-t-4", ["plaid", "mx"])
        failed = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
        execution = _finished(sfn, arn)
    retrier = _matching(ASL["States"]["TryProvider"]["Retry"], "SQS.SdkClientException")
    assert retrier is not None
    assert len(refused) == retrier["MaxAttempts"] + 1  # retried, never counted as a provider's failure
    assert failed["type"] == "waterfall_failed"
    assert execution["status"] == "FAILED"
    assert "NextProvider" not in _states_entered(sfn, arn)


def test_a_fourth_provider_runs_without_editing_the_machine(waterfall: Waterfall) -> None:
    sfn, sqs, env = waterfall
    queue = env["LINK_REQUEST_QUEUE_URL"]
    providers = ["plaid", "finicity", "mx", "fourth"]
    arn = _start(sfn, env, "inv-t-5", providers)
    for slot, provider in enumerate(providers[:3], start=1):
        request = _next_message(sqs, queue)
        assert (request["slot"], request["provider"]) == (slot, provider)
        sfn.send_task_failure(taskToken=request["task_token"], error="user_exited", cause="closed")
    fourth = _next_message(sqs, queue)
    assert (fourth["slot"], fourth["provider"], fourth["previous"]["Error"]) == (4, "fourth", "user_exited")
    sfn.send_task_success(taskToken=fourth["task_token"], output=json.dumps({"provider": "fourth"}))
    data = _next_message(sqs, queue)
    assert (data["type"], data["provider"]) == ("financial_data", "fourth")
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))
    assert _finished(sfn, arn)["status"] == "SUCCEEDED"
    assert _states_entered(sfn, arn).count("TryProvider") == 4
