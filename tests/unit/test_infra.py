"""infra/: queues and their DLQs, the packaging step, the IAM policy file and the waterfall state machine.

The waterfall runs on moto in-process (its Step Functions interpreter executes the ASL; no sockets). The packaging
tests post-process Chalice's output for a tiny app in a temporary directory; nothing downloads wheels.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import config
from infra.package import (
    INFRA,
    Access,
    environment,
    packaging_environment,
    post_process,
    queue_name,
    run_chalice_package,
    secret_logical_id,
)

ROOT = INFRA.parent
TEMPLATE = json.loads((INFRA / "resources.json").read_text())
RESOURCES = TEMPLATE["Resources"]
ASL = json.loads((INFRA / "waterfall.asl.json").read_text())
QUEUE_NAMES = sorted(
    value for name, value in vars(config).items() if name.endswith("_QUEUE") and isinstance(value, str)
)
PROVIDERS = ["plaid", "finicity", "mx"]


def _queues() -> dict[str, tuple[str, dict[str, Any]]]:
    """Queues by the name they have in a stack named like the one the code binds to (chalicelib.config)."""
    return {
        str(queue_name(resource["Properties"])): (logical, resource["Properties"])
        for logical, resource in RESOURCES.items()
        if resource["Type"] == "AWS::SQS::Queue"
    }


# --- queues -------------------------------------------------------------------------------------------------------


def test_the_queue_constants_are_found() -> None:
    assert len(QUEUE_NAMES) == 6


@pytest.mark.parametrize("name", QUEUE_NAMES)
def test_every_queue_exists_with_a_dead_letter_queue(name: str) -> None:
    queues = _queues()
    assert name in queues, f"{name} is not in infra/resources.json"
    _, props = queues[name]
    redrive = props["RedrivePolicy"]
    assert redrive["maxReceiveCount"] >= 5
    dlq_logical = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert RESOURCES[dlq_logical]["Type"] == "AWS::SQS::Queue"
    assert RESOURCES[dlq_logical]["Properties"]["MessageRetentionPeriod"] == 1209600


# --- packaging ----------------------------------------------------------------------------------------------------


FAKE_APP = """
from chalice import Chalice

app = Chalice(app_name="fake-onboarding")


@app.on_sqs_message(queue="onboarding-send", batch_size=10)
def send(event):
    return None


@app.on_sqs_message(queue="onboarding-import", batch_size=5, maximum_batching_window_in_seconds=2)
def import_rows(event):
    return None


@app.on_sqs_message(queue_arn="arn:aws:sqs:us-east-1:123456789012:elsewhere", batch_size=1)
def elsewhere(event):
    return None


@app.schedule("rate(1 hour)")
def sweep(event):
    return None


@app.route("/")
def index():
    return {}
"""


@pytest.fixture(scope="module")
def fake_sam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Chalice's own SAM output for a tiny app (empty requirements: no download) merged with infra/resources.json."""
    project = tmp_path_factory.mktemp("fake-app")
    (project / "app.py").write_text(FAKE_APP)
    (project / "requirements.txt").write_text("")
    (project / ".chalice").mkdir()
    (project / ".chalice" / "policy-dev.json").write_text((ROOT / ".chalice" / "policy-dev.json").read_text())
    stage = {"autogen_policy": False, "iam_policy_file": "policy-dev.json", "lambda_timeout": 30}
    stage["environment_variables"] = {"STAGE": "prod"}
    (project / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "fake-onboarding", "stages": {"dev": stage}})
    )
    return run_chalice_package(project / "out", "dev", project)


FAKE_ACCESS = {
    "Send": Access(send_to=("WebhookQueue",), email=True),
    "ImportRows": Access(send_to=("SendQueue",)),
    "Elsewhere": Access(),
    "Sweep": Access(send_to=("SendQueue",), secrets=(config.partner_secret("plaid", "secret"),)),
    "APIHandler": Access(
        send_to=("SendQueue",), documents=("s3:GetObject",), start_waterfall=True, secrets=(config.LINK_SIGNING_KEY,)
    ),
}


@pytest.fixture(scope="module")
def packaged(fake_sam: dict[str, Any]) -> dict[str, Any]:
    return post_process(fake_sam, access=FAKE_ACCESS)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical: resource["Properties"]
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _sqs_events(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        event["Properties"]
        for function in _functions(template).values()
        for event in function.get("Events", {}).values()
        if event["Type"] == "SQS"
    ]


def test_every_sqs_event_source_reports_batch_item_failures(fake_sam: dict[str, Any], packaged: dict[str, Any]) -> None:
    assert len(_sqs_events(fake_sam)) == 3
    assert all("FunctionResponseTypes" not in source for source in _sqs_events(fake_sam)), "Chalice sets it now?"
    for source in _sqs_events(packaged):
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_sqs_event_sources_point_at_the_queues_of_the_stack(packaged: dict[str, Any]) -> None:
    queues = {
        source["Queue"] if isinstance(source["Queue"], str) else source["Queue"]["Fn::GetAtt"][0]
        for source in _sqs_events(packaged)
    }
    assert queues == {"SendQueue", "ImportQueue", "arn:aws:sqs:us-east-1:123456789012:elsewhere"}


def test_every_function_gets_the_settings_environment(packaged: dict[str, Any]) -> None:
    functions = _functions(packaged)
    assert len(functions) == 5  # three SQS handlers, the schedule, the API handler
    for function in functions.values():
        variables = function["Environment"]["Variables"]
        assert variables["STAGE"] == "prod"  # the stage's own variables stay
        assert variables["TABLE_NAME"] == {"Ref": "Table"}
        for name, value in environment().items():
            assert variables[name] == value
            target = value["Ref"]
            assert target in packaged["Resources"] or target in packaged["Parameters"]
    assert packaged["Parameters"]["PublicBaseUrl"]["AllowedPattern"].startswith("^https://")
    assert "Default" in packaged["Parameters"]["SenderEmail"]


def test_a_function_gets_the_arns_of_the_secrets_it_reads_and_no_other(packaged: dict[str, Any]) -> None:
    secret_variables = {secret.env for secret in config.SECRETS}
    given = {
        logical: {k: v for k, v in function["Environment"]["Variables"].items() if k in secret_variables}
        for logical, function in _functions(packaged).items()
    }
    assert given == {
        "Send": {},
        "ImportRows": {},
        "Elsewhere": {},
        "Sweep": {"PLAID_SECRET_ARN": {"Ref": "PlaidSecret"}},
        "APIHandler": {"LINK_SIGNING_KEY_ARN": {"Ref": "LinkSigningKey"}},
    }
    assert packaged["Resources"]["PlaidSecret"]["Type"] == "AWS::SecretsManager::Secret"


def test_a_secret_set_by_the_stage_config_is_refused(fake_sam: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(fake_sam))
    broken["Resources"]["Send"]["Properties"]["Environment"]["Variables"]["PLAID_SECRET_ARN"] = "arn:aws:..."
    with pytest.raises(ValueError, match="PLAID_SECRET_ARN"):
        post_process(broken, access=FAKE_ACCESS)


def test_packaged_environment_names_are_settings_fields() -> None:
    fields = {name.upper() for name in config.Settings.model_fields}
    assert set(environment()) <= fields


def test_settings_naming_a_resource_are_all_packaged_and_none_holds_a_secret() -> None:
    resource_like = ("_queue_url", "_arn", "_bucket", "table_name", "_configuration_set")
    secret_like = ("secret", "password", "api_key", "app_key", "signing_key")
    fields = set(config.Settings.model_fields) - {"secret_arns"}
    assert {name.upper() for name in fields if name.endswith(resource_like)} <= set(environment())
    # Secrets are in Secrets Manager (config.SECRETS); a function's environment holds their ARNs only. A duration
    # about secrets (how long one is cached, a rotation's overlap) holds no secret.
    durations = {name for name in fields if name.endswith("_seconds")}
    assert [name for name in fields - durations if any(word in name for word in secret_like)] == []


def test_the_deploy_refuses_empty_partner_ids_before_the_functions_would() -> None:
    from infra.package import PARAMETERS

    by_env = {p.env: p.to_cfn() for p in PARAMETERS}
    for name in config.PRODUCTION_PARTNER_IDS:
        assert by_env[name.upper()].get("MinLength", 0) >= 1, name


def test_no_parameter_carries_a_secret() -> None:
    from infra.package import PARAMETERS

    secret_parameters = {secret_logical_id(secret) for secret in config.SECRETS}
    for parameter in PARAMETERS:
        assert "NoEcho" not in parameter.to_cfn(), parameter.name
        assert parameter.name not in secret_parameters
        assert parameter.env not in {secret.env for secret in config.SECRETS}


def test_packaging_imports_the_app_as_the_deployed_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer shell pointed at the local stack must not leak into the package (app.py picks routes by STAGE).
    monkeypatch.setenv("STAGE", "local")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:5000")
    monkeypatch.setenv("TABLE_NAME", "local-table")
    env = packaging_environment("dev")
    assert env.get("STAGE", "prod") == "prod"  # Settings default to prod
    assert "AWS_ENDPOINT_URL" not in env
    assert "TABLE_NAME" not in env
    assert env["AWS_DEFAULT_REGION"]


def test_the_state_machine_definition_is_inlined(fake_sam: dict[str, Any], packaged: dict[str, Any]) -> None:
    assert fake_sam["Resources"]["WaterfallStateMachine"]["Properties"]["DefinitionS3Location"]  # input untouched
    props = packaged["Resources"]["WaterfallStateMachine"]["Properties"]
    assert "DefinitionS3Location" not in props
    assert props["Definition"] == ASL
    assert props["DefinitionSubstitutions"] == {"LinkRequestQueueUrl": {"Ref": "LinkRequestQueue"}}
    # devstack/resources.py reads these from infra/resources.json.
    assert {"StateMachineName", "RoleArn", "DefinitionSubstitutions"} <= set(
        RESOURCES["WaterfallStateMachine"]["Properties"]
    )


def test_an_asl_placeholder_without_substitution_is_refused(fake_sam: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(fake_sam))
    broken["Resources"]["WaterfallStateMachine"]["Properties"]["DefinitionSubstitutions"] = {}
    with pytest.raises(ValueError, match="LinkRequestQueueUrl"):
        post_process(broken, access=FAKE_ACCESS)


def test_a_handler_on_a_queue_the_stack_does_not_create_is_refused(fake_sam: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(fake_sam))
    del broken["Resources"]["ImportQueue"]
    with pytest.raises(ValueError, match="onboarding-import"):
        post_process(broken, access=FAKE_ACCESS)


def test_a_queue_that_hides_messages_for_less_than_the_function_runs_is_refused(fake_sam: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(fake_sam))
    broken["Resources"]["SendQueue"]["Properties"]["VisibilityTimeout"] = 10
    with pytest.raises(ValueError, match="visibility timeout"):
        post_process(broken, access=FAKE_ACCESS)


def test_the_real_app_binds_only_queues_of_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.app import SQSEventConfig

    from chalicelib import bootstrap

    monkeypatch.setenv("STAGE", "test")
    bootstrap.reset()
    try:
        from app import app
    finally:
        bootstrap.reset()

    chalice_config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    timeout = chalice_config["stages"]["dev"].get("lambda_timeout", 60)
    queues = _queues()
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig) and source.queue:
            assert source.queue in queues, f"{source.name} listens to {source.queue}, not created by infra"
            assert queues[source.queue][1].get("VisibilityTimeout", 30) >= timeout


# --- IAM policy of the functions ----------------------------------------------------------------------------------

# Actions that take no resource ARN (SMS to a phone number, task tokens, X-Ray): "*" is the only possible resource.
NO_RESOURCE_ARN = {
    "sns:Publish",
    "sns:CheckIfPhoneNumberIsOptedOut",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def test_the_policy_file_is_least_privilege() -> None:
    policy = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        statement_actions = {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])
        assert not any(action.endswith("*") for action in statement_actions), statement["Sid"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if "*" in resources:
            assert statement_actions <= NO_RESOURCE_ARN, statement["Sid"]
        actions |= statement_actions
    for needed in (
        "dynamodb:Query",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "ses:SendEmail",
        "states:StartExecution",
    ):
        assert needed in actions


# --- one role per function (the real app) -------------------------------------------------------------------------

TABLE = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
}
BASE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords", *TABLE}
CONSUMER = {*BASE, "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
TASK_TOKENS = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
SECRETS = "secretsmanager:GetSecretValue"
# What each function's code does with AWS, spelled out: a change to infra.package.FUNCTION_ACCESS shows up here.
EXPECTED_ACTIONS: dict[str, set[str]] = {
    "APIHandler": {
        *BASE,
        "sqs:SendMessage",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:ListBucketVersions",
        "s3:ListBucket",
        "states:StartExecution",
        "states:DescribeExecution",
        *TASK_TOKENS,
        "ses:CreateEmailIdentity",
        "ses:GetEmailIdentity",
        "ses:DeleteEmailIdentity",
        SECRETS,
    },
    "SendWorker": {
        *CONSUMER,
        "sqs:SendMessage",
        "ses:SendEmail",
        "sns:Publish",
        "sns:CheckIfPhoneNumberIsOptedOut",
        SECRETS,
    },
    "ImportWorker": {
        *CONSUMER,
        "sqs:SendMessage",
        "s3:PutObject",
        "s3:GetObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucket",
        SECRETS,
    },
    "OutboxRelay": {*BASE, "sqs:SendMessage"},
    "LinkRequestWorker": {*CONSUMER, "sqs:SendMessage", "s3:PutObject", *TASK_TOKENS, SECRETS},
    "SesFeedbackWorker": {*CONSUMER, "sqs:SendMessage", SECRETS},
    "PortalEventsWorker": {*CONSUMER, "sqs:SendMessage"},
    "WebhookWorker": {*CONSUMER, "sqs:SendMessage"},
}
EXPECTED_SENDS = {
    "APIHandler": {"SendQueue", "ImportQueue", "PortalEventsQueue", "WebhookQueue"},
    "SendWorker": {"SendQueue", "WebhookQueue"},  # held sends come back with a delay
    "ImportWorker": {"SendQueue", "ImportQueue"},  # an export's next step
    "OutboxRelay": {"SendQueue"},
    "LinkRequestWorker": {"WebhookQueue"},
    "SesFeedbackWorker": {"SendQueue", "WebhookQueue"},
    "PortalEventsWorker": {"WebhookQueue"},
    "WebhookWorker": {"WebhookQueue"},
}

PARTNER_API = {"plaid-secret", "finicity-app-key", "finicity-partner-secret", "mx-api-key"}
# The secrets each function reads (tests/secret_guard.py checks the integration suite's reads against the grants).
EXPECTED_SECRETS: dict[str, set[str]] = {
    # links, console CSRF, partner webhooks (Plaid's key is fetched with the API credentials), revocation
    "APIHandler": {"link-signing-key", *PARTNER_API, "finicity-webhook-secret", "mx-webhook-password"},
    "SendWorker": {"link-signing-key"},  # the link in each message
    "ImportWorker": {"link-signing-key"},  # an imported invitation's link
    "OutboxRelay": set(),
    "LinkRequestWorker": PARTNER_API,  # link sessions and data fetches
    "SesFeedbackWorker": {"link-signing-key"},  # an SMS fallback or a retry issues a new link
    "PortalEventsWorker": set(),
    "WebhookWorker": set(),
}


@pytest.fixture(scope="module")
def real_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real app packaged (its code copied with an empty requirements.txt: nothing downloads) and post-processed."""
    from tests.packaging import package_real_app

    template, _ = package_real_app(tmp_path_factory.mktemp("real-app"))
    return template


def _statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"][function["Role"]["Fn::GetAtt"][0]]
    assert role["Type"] == "AWS::IAM::Role"
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_function_of_the_app_has_a_role_of_its_own(real_template: dict[str, Any]) -> None:
    functions = _functions(real_template)
    assert set(functions) == set(EXPECTED_ACTIONS)
    roles = [function["Role"]["Fn::GetAtt"][0] for function in functions.values()]
    assert len(set(roles)) == len(roles)


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_each_role_grants_exactly_what_its_function_uses(real_template: dict[str, Any], name: str) -> None:
    function = _functions(real_template)[name]
    statements = _statements(real_template, function)
    actions = {action for statement in statements for action in _as_list(statement["Action"])}
    assert actions == EXPECTED_ACTIONS[name]
    sends = {
        resource["Fn::GetAtt"][0]
        for statement in statements
        if "sqs:SendMessage" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    assert sends == EXPECTED_SENDS[name]
    consumed = [
        resource["Fn::GetAtt"][0]
        for statement in statements
        if "sqs:ReceiveMessage" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]
    own = [
        event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for event in function.get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert consumed == own  # a consumer receives from its own queue only


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_a_function_that_reads_objects_may_learn_one_is_missing(real_template: dict[str, Any], name: str) -> None:
    """Without s3:ListBucket S3 answers a missing key with 403 AccessDenied, not 404, and the document store would call
    an upload not there yet (or an export's pending part) an outage; the grant is on the bucket alone."""
    statements = _statements(real_template, _functions(real_template)[name])
    reads = any("s3:GetObject" in _as_list(st["Action"]) for st in statements)
    listing = [st for st in statements if "s3:ListBucket" in _as_list(st["Action"])]
    assert bool(listing) == reads
    for statement in listing:
        assert _as_list(statement["Action"]) == ["s3:ListBucket"]
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": ["DocumentsBucket", "Arn"]}]


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_only_actions_without_a_resource_type_get_every_resource(real_template: dict[str, Any], name: str) -> None:
    for statement in _statements(real_template, _functions(real_template)[name]):
        assert not any(action.endswith("*") for action in _as_list(statement["Action"])), statement["Sid"]
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= NO_RESOURCE_ARN, statement["Sid"]
            assert "NoResourceArn" in statement["Sid"]  # the reason is in the policy itself


@pytest.mark.parametrize("name", sorted(EXPECTED_SECRETS))
def test_each_function_reads_exactly_its_secrets(real_template: dict[str, Any], name: str) -> None:
    by_logical = {secret_logical_id(secret): secret.name for secret in config.SECRETS}
    function = _functions(real_template)[name]
    readable = [
        resource["Ref"]
        for statement in _statements(real_template, function)
        if SECRETS in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]
    assert all(logical in by_logical for logical in readable)  # the stack's secrets, by their exact ARN (Ref)
    assert {by_logical[logical] for logical in readable} == EXPECTED_SECRETS[name]
    assert len(readable) == len(set(readable))
    secret_variables = {secret.env: secret for secret in config.SECRETS}
    given = {k: v for k, v in function["Environment"]["Variables"].items() if k in secret_variables}
    assert given == {
        secret_variables[env].env: {"Ref": secret_logical_id(secret_variables[env])}
        for env in secret_variables
        if secret_variables[env].name in EXPECTED_SECRETS[name]
    }


def test_no_environment_variable_of_any_function_holds_a_secret_value(real_template: dict[str, Any]) -> None:
    parameters = real_template["Parameters"]
    resources = real_template["Resources"]
    values = {secret.local for secret in config.SECRETS} | {config.SECRET_PLACEHOLDER}
    for logical, function in _functions(real_template).items():
        for name, value in function["Environment"]["Variables"].items():
            assert json.dumps(value) not in {json.dumps(v) for v in values}, (logical, name)
            if isinstance(value, dict):  # a Ref: to a non-secret parameter, a resource, or a secret's ARN
                target = value["Ref"]
                assert target in resources or target in parameters, (logical, name)
                assert not parameters.get(target, {}).get("NoEcho"), (logical, name)
                if resources.get(target, {}).get("Type") == "AWS::SecretsManager::Secret":
                    assert name.endswith("_ARN"), (logical, name)
            else:
                assert not any(word in name for word in ("SECRET", "PASSWORD", "KEY")), (logical, name)


def test_the_stack_creates_every_secret(real_template: dict[str, Any]) -> None:
    resources = real_template["Resources"]
    created = {logical: r for logical, r in resources.items() if r["Type"] == "AWS::SecretsManager::Secret"}
    assert set(created) == {secret_logical_id(secret) for secret in config.SECRETS}
    for secret in config.SECRETS:
        props = created[secret_logical_id(secret)]["Properties"]
        assert props["Name"] == {"Fn::Sub": f"${{AWS::StackName}}/{secret.name}"}  # two stacks coexist
        if secret.generated:  # generated by Secrets Manager, never typed in or seen by anyone
            assert "SecretString" not in props
            assert props["GenerateSecretString"]["PasswordLength"] >= secret.min_length
        else:  # the operator puts the partner's value; production refuses the placeholder
            assert props["SecretString"] == config.SECRET_PLACEHOLDER
            assert secret.problem(props["SecretString"]) == "still a placeholder"


def test_each_function_logs_to_its_own_group_with_a_retention(real_template: dict[str, Any]) -> None:
    resources = real_template["Resources"]
    groups = set()
    for name, function in _functions(real_template).items():
        assert function["Tracing"] == "Active"
        group = function["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        logs = next(s for s in _statements(real_template, function) if s["Sid"] == "OwnLogGroup")
        assert logs["Resource"] == [{"Fn::GetAtt": [group, "Arn"]}], name
        groups.add(group)
    assert len(groups) == len(EXPECTED_ACTIONS)
    assert real_template["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_the_state_machine_logs_errors_without_execution_data_and_is_traced(real_template: dict[str, Any]) -> None:
    resources = real_template["Resources"]
    props = resources["WaterfallStateMachine"]["Properties"]
    logging = props["LoggingConfiguration"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ERROR", False)  # inputs carry customer ids
    group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert props["TracingConfiguration"] == {"Enabled": True}
    role = resources[props["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    actions = {
        a for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"] for a in _as_list(st["Action"])
    }
    assert {"logs:CreateLogDelivery", "xray:PutTraceSegments", "sqs:SendMessage"} <= actions


def test_the_api_stage_is_traced_access_logged_and_throttled(real_template: dict[str, Any]) -> None:
    props = real_template["Resources"]["RestAPI"]["Properties"]
    assert props["TracingEnabled"] is True
    group = props["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    assert real_template["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    fields = json.loads(props["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "latencyMs", "resourcePath"} <= set(fields)
    assert "$context.path" not in fields.values()  # resource paths, not paths carrying ids and tokens
    [throttle] = props["MethodSettings"]
    assert throttle["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert throttle["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}


@pytest.mark.parametrize("logical", ["Table", "DocumentsBucket"])
def test_the_data_survives_the_stack(logical: str) -> None:
    resource = RESOURCES[logical]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_table_and_the_bucket_refuse_deletion() -> None:
    assert RESOURCES["Table"]["Properties"]["DeletionProtectionEnabled"] is True
    policy = RESOURCES["DocumentsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    denied = {statement["Sid"]: statement for statement in policy if statement["Effect"] == "Deny"}
    assert denied["DeletionProtection"]["Action"] == "s3:DeleteBucket"
    assert denied["TlsOnly"]["Action"] == "s3:*"
    assert denied["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(denied["TlsOnly"]["Resource"]) == 2  # the bucket and its objects


def test_uploads_are_allowed_only_from_the_configured_origins() -> None:
    [rule] = RESOURCES["DocumentsBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == {"Ref": "UploadOrigins"}
    origins = TEMPLATE["Parameters"]["UploadOrigins"]["Default"].split(",")
    assert origins and all(origin.startswith("https://") for origin in origins)
    assert rule["AllowedMethods"] == ["POST"]  # presigned POST only


def test_topics_use_the_stack_key_and_queues_are_encrypted() -> None:
    for logical, resource in RESOURCES.items():
        if resource["Type"] == "AWS::SNS::Topic":
            assert resource["Properties"]["KmsMasterKeyId"] == {"Ref": "TopicKey"}, logical
        if resource["Type"] == "AWS::SQS::Queue":
            assert resource["Properties"]["SqsManagedSseEnabled"] is True, logical
    key = RESOURCES["TopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    services = {
        service
        for statement in key["KeyPolicy"]["Statement"]
        for service in _as_list(statement["Principal"].get("Service", []))
    }
    assert services == {"ses.amazonaws.com", "cloudwatch.amazonaws.com"}  # SES feedback and alarms publish


NAME_PROPERTIES = {
    "QueueName",
    "TableName",
    "TopicName",
    "BucketName",
    "StateMachineName",
    "LogGroupName",
    "Name",
    "DashboardName",
    "AlarmName",
}


# Host names are the operator's (parameters: a second stack side by side gets other base domains), and an SES event
# destination's name lives inside its configuration set.
NOT_NAMED_BY_THE_STACK = (
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::ApiGateway::DomainName",
    "AWS::Route53::RecordSet",
)


def _names(template: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{logical}.{key}": value
        for logical, resource in template["Resources"].items()
        for key, value in resource.get("Properties", {}).items()
        if key in NAME_PROPERTIES and resource["Type"] not in NOT_NAMED_BY_THE_STACK
    }


def test_every_name_derives_from_the_stack_name_so_two_stacks_coexist(real_template: dict[str, Any]) -> None:
    names = _names(real_template)
    assert len(names) > 20
    for where, value in names.items():
        assert isinstance(value, dict), f"{where} is a fixed name: {value}"
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        assert "${AWS::StackName}" in text, where
    first = {json.dumps(v).replace("${AWS::StackName}", "onboarding-a") for v in names.values()}
    second = {json.dumps(v).replace("${AWS::StackName}", "onboarding-b") for v in names.values()}
    assert not first & second


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]


def _alarm_on(template: dict[str, Any], metric: str, dimension: Any) -> dict[str, Any]:
    found = [
        a for a in _alarms(template) if a["MetricName"] == metric and dimension in [d["Value"] for d in a["Dimensions"]]
    ]
    assert len(found) == 1, f"{len(found)} alarms on {metric} of {dimension}"
    return found[0]


def test_every_dead_letter_queue_holding_a_message_raises_an_alarm(real_template: dict[str, Any]) -> None:
    dlqs = sorted(
        p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for _, p in _queues().values()
        if "RedrivePolicy" in p
    )
    assert len(dlqs) == len(QUEUE_NAMES)
    for dlq in dlqs:
        alarm = _alarm_on(real_template, "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [dlq, "QueueName"]})
        assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/SQS", "Maximum")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_failed_or_timed_out_executions_raise_an_alarm(real_template: dict[str, Any]) -> None:
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        alarm = _alarm_on(real_template, metric, {"Ref": "WaterfallStateMachine"})
        assert (alarm["Namespace"], alarm["Statistic"], alarm["Threshold"]) == ("AWS/States", "Sum", 0)


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_each_function_alarms_on_errors_and_throttles(real_template: dict[str, Any], name: str) -> None:
    for metric in ("Errors", "Throttles"):
        alarm = _alarm_on(real_template, metric, {"Ref": name})
        assert (alarm["Namespace"], alarm["Statistic"], alarm["Threshold"]) == ("AWS/Lambda", "Sum", 0)


def test_the_api_alarms_on_its_5xx_rate_and_p99_latency(real_template: dict[str, Any]) -> None:
    api_name = {"Fn::Sub": "${AWS::StackName}"}
    assert real_template["Resources"]["RestAPI"]["Properties"]["Name"] == api_name  # so the dimension is this stack's
    errors = _alarm_on(real_template, "5XXError", api_name)
    assert (errors["Statistic"], errors["Threshold"]) == ("Average", {"Ref": "Api5xxRate"})
    latency = _alarm_on(real_template, "Latency", api_name)
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", {"Ref": "ApiLatencyP99Ms"})
    assert {"Name": "Stage", "Value": "api"} in latency["Dimensions"]
    assert real_template["Parameters"]["Api5xxRate"]["Default"] == 0.01


def test_every_alarm_pages_the_one_encrypted_alarm_topic(real_template: dict[str, Any]) -> None:
    resources = real_template["Resources"]
    alarms = _alarms(real_template)
    assert len(alarms) == len(QUEUE_NAMES) + 2 + 2 * len(EXPECTED_ACTIONS) + 2
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "TopicKey"}
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert subscription["Condition"] == "HasAlarmEmail"  # AlarmEmail empty by default: no subscription


def _emitted_metrics() -> set[str]:
    """Names in count(...) calls of chalicelib (count("EmailSent" if email else "SmsSent") gives both)."""
    import re

    calls = [
        call
        for path in (ROOT / "chalicelib").rglob("*.py")
        for call in re.findall(r"\bcount\(([^)]*)\)", path.read_text())
    ]
    return {name for call in calls for name in re.findall(r"\"([A-Z]\w+)\"", call)}


def test_the_funnel_dashboard_shows_the_metrics_the_code_emits(real_template: dict[str, Any]) -> None:
    from chalicelib.observability import NAMESPACE, SERVICE

    body = json.loads(real_template["Resources"]["FunnelDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    funnel = body["widgets"][0]["properties"]["metrics"]
    shown = [metric[1] for metric in funnel]
    assert shown == [
        "InvitationCreated",
        "EmailSent",
        "SmsSent",
        "EmailDelivered",
        "EmailBounced",
        "InvitationOpened",
        "InvitationJoined",
        "InvitationCompleted",
    ]
    assert set(shown) <= _emitted_metrics()  # a metric nobody emits would be an empty line
    assert {(metric[0], metric[2], metric[3]) for metric in funnel} == {(NAMESPACE, "service", SERVICE)}


def test_a_function_without_a_declaration_is_refused(fake_sam: dict[str, Any]) -> None:
    partial = {name: access for name, access in FAKE_ACCESS.items() if name != "Sweep"}
    with pytest.raises(ValueError, match="Sweep"):
        post_process(fake_sam, access=partial)
    with pytest.raises(ValueError, match="Gone"):
        post_process(fake_sam, access={**FAKE_ACCESS, "Gone": Access()})


# --- the waterfall on moto ----------------------------------------------------------------------------------------

POLL_SECONDS = 20


@pytest.fixture
def waterfall() -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """Step Functions that executes, with the resources devstack builds from infra/ (same substitution contract)."""
    import boto3
    from moto import mock_aws

    from devstack.resources import create_resources

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        env = create_resources(boto3.session.Session())
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield sfn, sqs, env
        for execution in sfn.list_executions(stateMachineArn=env["STATE_MACHINE_ARN"], statusFilter="RUNNING")[
            "executions"
        ]:
            sfn.stop_execution(executionArn=execution["executionArn"])


def _start(sfn: Any, env: dict[str, str], name: str, providers: list[str], timeout: int = 10) -> str:
    from chalicelib.domain.providers import Provider
    from chalicelib.domain.waterfall import execution_input as build_input

    # The input the app sends (chalicelib.domain.waterfall), with any provider names a test wants.
    execution_input = {
        **build_input("t-1", "inv-1", 1, [Provider("mx")], timeout, 60),
        "providers": providers,
        "heartbeat_seconds": 60,
    }
    response = sfn.start_execution(
        stateMachineArn=env["STATE_MACHINE_ARN"], name=name, input=json.dumps(execution_input)
    )
    return str(response["executionArn"])


def _next_message(sqs: Any, queue_url: str) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body: dict[str, Any] = json.loads(message["Body"])
            return body
        time.sleep(0.05)
    raise AssertionError(f"no message on {queue_url} within {POLL_SECONDS} s")


def _finished(sfn: Any, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} still running after {POLL_SECONDS} s")


def _states_entered(sfn: Any, execution_arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [event["stateEnteredEventDetails"]["name"] for event in events if "stateEnteredEventDetails" in event]


def test_first_provider_links_then_fetches_data(waterfall: tuple[Any, Any, dict[str, str]]) -> None:
    sfn, sqs, env = waterfall
    execution_arn = _start(sfn, env, "inv-1-attempt-1", PROVIDERS)

    request = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert {k: v for k, v in request.items() if k != "task_token"} == {
        "type": "link_request",
        "tenant_id": "t-1",
        "invitation_id": "inv-1",
        "attempt": 1,
        "slot": 1,
        "provider": "plaid",
        "previous": None,
        "retry": 0,
    }
    sfn.send_task_success(taskToken=request["task_token"], output=json.dumps({"provider": "plaid", "status": "linked"}))

    data = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert {k: v for k, v in data.items() if k != "task_token"} == {
        "type": "financial_data",
        "tenant_id": "t-1",
        "invitation_id": "inv-1",
        "attempt": 1,
        "provider": "plaid",
    }
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))

    execution = _finished(sfn, execution_arn)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["result"] == {"provider": "plaid", "status": "linked"}
    assert output["data"] == {"outcome": "ready"}
    assert _states_entered(sfn, execution_arn) == ["Begin", "HasProvider", "TryProvider", "FetchData", "Linked"]


def test_data_not_ready_is_retried_then_reported(waterfall: tuple[Any, Any, dict[str, str]]) -> None:
    sfn, sqs, env = waterfall
    queue_url = env["LINK_REQUEST_QUEUE_URL"]
    execution_arn = _start(sfn, env, "inv-1-attempt-3", PROVIDERS, timeout=120)
    request = _next_message(sqs, queue_url)
    sfn.send_task_success(taskToken=request["task_token"], output=json.dumps({"provider": "plaid"}))

    first = _next_message(sqs, queue_url)
    assert first["type"] == "financial_data"
    sfn.send_task_failure(taskToken=first["task_token"], error="FinancialData.NotReady", cause="come back later")
    # The state machine's Retry sends the step again (not a sleeping Lambda). moto reuses the token across
    # retries and may replay the earlier failure once, so answer every repeat until the step gives up.
    repeats = 0
    message = _next_message(sqs, queue_url)
    while message["type"] == "financial_data" and repeats < 5:
        repeats += 1
        sfn.send_task_failure(taskToken=message["task_token"], error="FinancialData.Failed", cause="login_required")
        message = _next_message(sqs, queue_url)
    assert repeats >= 1
    failed = message
    assert failed["type"] == "financial_data_failed"
    assert failed["error"]["Error"] == "FinancialData.Failed"
    execution = _finished(sfn, execution_arn)
    assert execution["status"] == "SUCCEEDED"  # the link stands; only the data is missing
    assert _states_entered(sfn, execution_arn) == [
        "Begin",
        "HasProvider",
        "TryProvider",
        "FetchData",
        "DataUnavailable",
        "Linked",
    ]


def test_a_failed_provider_falls_through_to_the_next(waterfall: tuple[Any, Any, dict[str, str]]) -> None:
    sfn, sqs, env = waterfall
    execution_arn = _start(sfn, env, "inv-1-attempt-1", PROVIDERS)

    first = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert (first["slot"], first["provider"]) == (1, "plaid")
    assert first["previous"] is None
    sfn.send_task_failure(taskToken=first["task_token"], error="user_exited", cause="user closed Link")

    second = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert (second["type"], second["slot"], second["provider"]) == ("link_request", 2, "finicity")
    assert second["previous"]["Error"] == "user_exited"
    assert second["task_token"] != first["task_token"]
    sfn.send_task_success(taskToken=second["task_token"], output=json.dumps({"provider": "finicity"}))
    data = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert (data["type"], data["provider"]) == ("financial_data", "finicity")
    sfn.send_task_success(taskToken=data["task_token"], output=json.dumps({"outcome": "ready"}))

    execution = _finished(sfn, execution_arn)
    assert execution["status"] == "SUCCEEDED"
    assert _states_entered(sfn, execution_arn) == [
        "Begin",
        "HasProvider",
        "TryProvider",
        "NextProvider",
        "HasProvider",
        "TryProvider",
        "FetchData",
        "Linked",
    ]


def test_every_provider_failing_ends_in_documents(waterfall: tuple[Any, Any, dict[str, str]]) -> None:
    sfn, sqs, env = waterfall
    queue_url = env["LINK_REQUEST_QUEUE_URL"]
    # timeout_seconds=1: slot 1 is left unanswered and times out; slots 2 and 3 are answered at once.
    execution_arn = _start(sfn, env, "inv-1-attempt-2", PROVIDERS, timeout=1)

    first = _next_message(sqs, queue_url)
    assert first["slot"] == 1
    second = _next_message(sqs, queue_url)
    assert second["slot"] == 2
    assert second["previous"]["Error"] == "States.Timeout"
    sfn.send_task_failure(taskToken=second["task_token"], error="provider_error", cause="institution down")
    third = _next_message(sqs, queue_url)
    assert (third["slot"], third["provider"]) == (3, "mx")
    assert third["previous"]["Error"] == "provider_error"
    sfn.send_task_failure(taskToken=third["task_token"], error="institution_not_supported", cause="no such bank")

    exhausted = _next_message(sqs, queue_url)
    assert exhausted["type"] == "waterfall_exhausted"
    assert (exhausted["tenant_id"], exhausted["invitation_id"], exhausted["attempt"]) == ("t-1", "inv-1", 1)
    assert exhausted["last_error"]["Error"] == "institution_not_supported"
    assert "task_token" not in exhausted

    execution = _finished(sfn, execution_arn)
    assert execution["status"] == "SUCCEEDED"
    states = _states_entered(sfn, execution_arn)
    loop = ["HasProvider", "TryProvider", "NextProvider"]
    assert states == ["Begin", *loop, *loop, *loop, "HasProvider", "Exhausted", "FellBackToDocuments"]
    assert len(states) == 3 * len(PROVIDERS) + 4  # the documented transition count stays true
    assert "n providers all failing 3n+4 " in ASL["Comment"]


def test_a_single_provider_goes_straight_to_documents(waterfall: tuple[Any, Any, dict[str, str]]) -> None:
    sfn, sqs, env = waterfall
    execution_arn = _start(sfn, env, "inv-2-attempt-1", ["mx"])

    request = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    sfn.send_task_failure(taskToken=request["task_token"], error="user_exited", cause="user closed the widget")

    exhausted = _next_message(sqs, env["LINK_REQUEST_QUEUE_URL"])
    assert exhausted["type"] == "waterfall_exhausted"
    assert exhausted["last_error"]["Error"] == "user_exited"
    assert _finished(sfn, execution_arn)["status"] == "SUCCEEDED"
    assert _states_entered(sfn, execution_arn) == [
        "Begin",
        "HasProvider",
        "TryProvider",
        "NextProvider",
        "HasProvider",
        "Exhausted",
        "FellBackToDocuments",
    ]


def test_api_gateway_answers_in_the_error_shape(fake_sam: dict[str, Any], packaged: dict[str, Any]) -> None:
    apis = [r for r in packaged["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    assert len(apis) == 1
    responses = apis[0]["Properties"]["GatewayResponses"]
    # An unknown route (or a method the route lacks) is API Gateway's MISSING_AUTHENTICATION_TOKEN, a 403 by default.
    unknown = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown["StatusCode"] == "404"
    body = json.loads(unknown["ResponseTemplates"]["application/json"])
    assert body == {"error": {"code": "not_found", "message": body["error"]["message"], "fields": {}}}
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        template = responses[kind]["ResponseTemplates"]["application/json"]
        # $context.error.messageString is a quoted JSON string: substitute one to check the shape.
        shaped = json.loads(template.replace("$context.error.messageString", '"Too Many Requests"'))
        assert set(shaped["error"]) == {"code", "message", "fields"}


def test_lender_hosts_reach_the_api_through_wildcard_custom_domains(real_template: dict[str, Any]) -> None:
    """Join links and the console live on https://<subdomain>.<base domain>: with a certificate the stack creates a
    regional wildcard custom domain per base domain (US and Canadian residency) mapped to the API's stage, and with a
    hosted zone the DNS alias;
    without a certificate none of it (conditions), and the base domains are settings the functions get."""
    resources, conditions = real_template["Resources"], real_template["Conditions"]
    parameters = real_template["Parameters"]
    assert parameters["DomainCertificateArn"]["Default"] == ""
    assert conditions["HasCustomDomains"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainCertificateArn"}, ""]}]}
    for region, base in (("Us", "BaseDomainUs"), ("Ca", "BaseDomainCa")):
        domain = resources[f"LenderDomain{region}"]
        assert domain["Type"] == "AWS::ApiGateway::DomainName"
        assert domain["Condition"] == "HasCustomDomains"
        props = domain["Properties"]
        assert props["DomainName"] == {"Fn::Sub": f"*.${{{base}}}"}
        assert props["RegionalCertificateArn"] == {"Ref": "DomainCertificateArn"}
        assert props["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
        assert props["SecurityPolicy"] == "TLS_1_2"
        mapping = resources[f"LenderDomain{region}Mapping"]
        assert mapping["Type"] == "AWS::ApiGateway::BasePathMapping"
        assert mapping["Condition"] == domain["Condition"]
        assert mapping["Properties"] == {
            "DomainName": {"Ref": f"LenderDomain{region}"},
            "RestApiId": {"Ref": "RestAPI"},
            "Stage": {"Ref": "RestAPI.Stage"},
        }
        record = resources[f"LenderDomain{region}Record"]
        assert record["Type"] == "AWS::Route53::RecordSet"
        assert record["Condition"] == f"HasDns{region}"
        assert record["Properties"]["Name"] == {"Fn::Sub": f"*.${{{base}}}."}
        assert record["Properties"]["AliasTarget"] == {
            "DNSName": {"Fn::GetAtt": [f"LenderDomain{region}", "RegionalDomainName"]},
            "HostedZoneId": {"Fn::GetAtt": [f"LenderDomain{region}", "RegionalHostedZoneId"]},
        }
        output = real_template["Outputs"][f"LenderDomain{region}Target"]
        assert output["Value"] == {"Fn::GetAtt": [f"LenderDomain{region}", "RegionalDomainName"]}
    # No host defaults to a domain the deployer may not own (links carry tokens), and lender-host links need the
    # custom domains that route them.
    for name in ("PublicBaseUrl", "BaseDomainUs", "BaseDomainCa"):
        assert "Default" not in parameters[name], name
    assert parameters["HostBasedLinks"]["Default"] == "false"
    rule = real_template["Rules"]["HostBasedLinksNeedCustomDomains"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "HostBasedLinks"}, "true"]}
    assert [a["Assert"] for a in rule["Assertions"]] == [conditions["HasCustomDomains"]]
    for function in _functions(real_template).values():
        variables = function["Environment"]["Variables"]
        assert variables["BASE_DOMAIN_US"] == {"Ref": "BaseDomainUs"}
        assert variables["BASE_DOMAIN_CA"] == {"Ref": "BaseDomainCa"}
