"""Deploy rehearsal (issue 14 item 9): the template ``make package`` builds, turned into plain CloudFormation by
aws-sam-translator (what CloudFormation's own SAM transform does), created as a stack on moto's CloudFormation.

Its code is uploaded to a bucket first and ``CodeUri`` pointed at it, as ``aws cloudformation package`` does. The
assertions read the created resources through each service's API, not the template.

What moto cannot create is listed below with the reason and checked against moto itself, so a resource type that
moto learns (or that the template gains) shows up here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"
STACK = "rehearsal"
ARTIFACTS = "rehearsal-artifacts"

# Resource types moto's CloudFormation has no model for: it records them as created and creates nothing
# ("Tried to parse ... but it's not supported by moto's CloudFormation implementation"; moto's
# CLOUDFORMATION_COVERAGE.md lists what it supports). Their properties are covered by tests/unit/test_infra.py.
MOTO_UNSUPPORTED = {
    "AWS::ApiGateway::Account": "account-wide API Gateway logging role",
    "AWS::ApiGateway::BasePathMapping": "lender hosts' custom domains mapped to the API (without a certificate: none)",
    "AWS::ApiGateway::DomainName": "lender hosts' wildcard custom domains (without a certificate: none)",
    "AWS::ApiGateway::Stage": "the API stage's tracing, access log and throttling",
    "AWS::CloudWatch::Alarm": "alarms on DLQs, executions, functions and the API",
    "AWS::S3::BucketPolicy": "TLS-only and no-DeleteBucket policy",
    "AWS::SecretsManager::Secret": "the secrets (devstack creates them in moto from the same declarations)",
    "AWS::SES::ConfigurationSet": "the sending configuration set",
    "AWS::SES::ConfigurationSetEventDestination": "SES feedback to SNS",
    "AWS::SNS::Subscription": "SES feedback queue and alarm email subscriptions",
    "AWS::SQS::QueuePolicy": "SES feedback topic may send to its queue",
}
# Resources moto would create wrongly, removed before the stack is created.
REMOVED = {
    # moto's RestApi from CloudFormation reads Name, Description and EndpointConfiguration but not Body, the OpenAPI
    # document SAM puts every route in; the API then has no method and moto refuses the Deployment ("The REST API
    # doesn't contain any methods").
    "AWS::ApiGateway::Deployment": "moto ignores the RestApi's Body (its routes)",
}
# Conditions false with the rehearsal's parameters (no certificate, no hosted zone): their resources are not created.
FALSE_CONDITIONS = {"HasCustomDomains", "HasDnsUs", "HasDnsCa"}
QUEUES = ("send", "import", "link-requests", "ses-feedback", "portal-events", "webhooks")


class _NoManagedPolicies:
    """aws-sam-translator asks for managed policy ARNs only for a function's ``Policies``; every function here has
    its own role (infra/package.py), so nothing is looked up."""

    def load(self) -> dict[str, str]:
        return {}


def to_cloudformation(sam: dict[str, Any], parameters: dict[str, str], code_uri: str) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    sam = json.loads(json.dumps(sam))
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    cfn: dict[str, Any] = transform(sam, parameters, _NoManagedPolicies())
    return cfn


def required_parameters(template: dict[str, Any]) -> dict[str, str]:
    """A value for every parameter without a default, fit for its pattern and length."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if "Default" in spec:
            continue
        if "Url" in name:
            values[name] = "https://app.rehearsal.example"
        elif "Domain" in name:
            values[name] = "rehearsal.example"
        elif spec.get("AllowedValues"):
            values[name] = str(spec["AllowedValues"][0])
        else:
            values[name] = "rehearsal-value-" + "x" * max(0, int(spec.get("MinLength", 0)) - 16)
    return values


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from moto.cloudformation.parsing import resource_class_from_type

    from tests.packaging import package_real_app

    sam, bundle = package_real_app(tmp_path_factory.mktemp("rehearsal"))
    parameters = required_parameters(sam)
    cfn = to_cloudformation(sam, parameters, f"s3://{ARTIFACTS}/deployment.zip")
    types = {resource["Type"] for resource in cfn["Resources"].values()}
    unsupported = {kind for kind in types if resource_class_from_type(kind) is None}
    removed = [logical for logical, r in cfn["Resources"].items() if r["Type"] in REMOVED]
    for logical in removed:
        del cfn["Resources"][logical]

    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
        session = boto3.session.Session(region_name=REGION)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS)
        s3.put_object(Bucket=ARTIFACTS, Key="deployment.zip", Body=Path(bundle).read_bytes())
        cloudformation = session.client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(cfn),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        yield {
            "session": session,
            "sam": sam,
            "cfn": cfn,
            "unsupported": unsupported,
            "removed": removed,
            "stack": cloudformation.describe_stacks(StackName=STACK)["Stacks"][0],
            "resources": cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"],
        }


def _sam_functions(sam: dict[str, Any]) -> set[str]:
    return {logical for logical, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def test_the_stack_is_created(rehearsal: dict[str, Any]) -> None:
    assert rehearsal["stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert rehearsal["removed"] and len(rehearsal["removed"]) == 1  # the API's one deployment, nothing else


def test_only_what_moto_cannot_create_is_skipped(rehearsal: dict[str, Any]) -> None:
    assert rehearsal["unsupported"] == set(MOTO_UNSUPPORTED)
    created = {r["LogicalResourceId"]: r for r in rehearsal["resources"]}
    expected = {
        logical
        for logical, r in rehearsal["cfn"]["Resources"].items()
        if r["Type"] not in MOTO_UNSUPPORTED and r.get("Condition") not in FALSE_CONDITIONS
    }
    assert len(expected) > 50
    assert expected <= set(created)
    for logical in expected:
        assert created[logical]["ResourceStatus"] == "CREATE_COMPLETE", logical
        assert created[logical]["ResourceType"] == rehearsal["cfn"]["Resources"][logical]["Type"], logical


def test_lender_domains_map_the_stage_sam_creates(rehearsal: dict[str, Any]) -> None:
    resources = rehearsal["cfn"]["Resources"]
    for mapping in ("LenderDomainUsMapping", "LenderDomainCaMapping"):
        stage = resources[mapping]["Properties"]["Stage"]["Ref"]
        assert resources[stage]["Type"] == "AWS::ApiGateway::Stage", mapping
    created = {r["LogicalResourceId"] for r in rehearsal["resources"]}
    assert not {"LenderDomainUs", "LenderDomainUsRecord", "LenderDomainCaRecord"} & created  # no certificate given


def test_every_function_exists_with_its_own_role(rehearsal: dict[str, Any]) -> None:
    lam = rehearsal["session"].client("lambda")
    functions = lam.list_functions()["Functions"]
    by_logical = {f["FunctionName"].split("-")[1]: f for f in functions}
    assert set(by_logical) == _sam_functions(rehearsal["sam"])
    assert len(by_logical) == 8
    iam = rehearsal["session"].client("iam")
    roles = {r["Arn"]: r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert len({f["Role"] for f in functions}) == len(functions)
    for logical, function in by_logical.items():
        policies = iam.list_role_policies(RoleName=roles[function["Role"]])["PolicyNames"]
        assert policies == [f"{logical}Access"]  # the role generated from its FUNCTION_ACCESS entry
        variables = function["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == STACK  # the Ref resolved to this stack's table
        assert variables["SEND_QUEUE_URL"].endswith(f"/{STACK}-send")


def test_every_queue_has_its_dead_letter_queue(rehearsal: dict[str, Any]) -> None:
    sqs = rehearsal["session"].client("sqs")
    urls = {url.rsplit("/", 1)[1]: url for url in sqs.list_queues()["QueueUrls"]}
    assert set(urls) == {f"{STACK}-{q}" for q in QUEUES} | {f"{STACK}-{q}-dlq" for q in QUEUES}
    for queue in QUEUES:
        attributes = sqs.get_queue_attributes(QueueUrl=urls[f"{STACK}-{queue}"], AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(f":{STACK}-{queue}-dlq")
        assert int(redrive["maxReceiveCount"]) >= 5


def test_every_sqs_consumer_reports_batch_item_failures(rehearsal: dict[str, Any]) -> None:
    lam = rehearsal["session"].client("lambda")
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    consumed = {m["EventSourceArn"].rsplit(":", 1)[1]: m for m in mappings}
    assert set(consumed) == {f"{STACK}-{q}" for q in QUEUES}
    for mapping in mappings:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], mapping["EventSourceArn"]
    send_worker = consumed[f"{STACK}-send"]["FunctionArn"]
    assert "-SendWorker-" in send_worker


def test_the_table_and_the_state_machine_exist(rehearsal: dict[str, Any]) -> None:
    session = rehearsal["session"]
    table = session.client("dynamodb").describe_table(TableName=STACK)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    machines = session.client("stepfunctions").list_state_machines()["stateMachines"]
    name = rehearsal["sam"]["Resources"]["WaterfallStateMachine"]["Properties"]["StateMachineName"]["Fn::Sub"]
    assert [m["name"] for m in machines] == [name.replace("${AWS::StackName}", STACK)]
    # moto's StateMachine from CloudFormation reads DefinitionString only, not the inlined Definition: the ASL and
    # its substitutions are checked in tests/unit/test_infra.py, and executed on moto by devstack and the tests.


def test_functions_hold_the_arn_variables_of_their_secrets_and_no_secret_value(rehearsal: dict[str, Any]) -> None:
    """moto's CloudFormation creates no secret (MOTO_UNSUPPORTED; the embedded stack creates them from the same
    declarations, tests/integration/test_secrets.py) and so cannot resolve a Ref to one: the ARN variables are read
    from the template after the SAM transform, and the created functions checked for secret values."""
    from chalicelib.config import SECRET_PLACEHOLDER, SECRETS
    from infra.package import FUNCTION_ACCESS, secret_logical_id

    arn_variables = {secret.env for secret in SECRETS}
    functions = {
        logical: resource["Properties"]
        for logical, resource in rehearsal["cfn"]["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert set(functions) == set(FUNCTION_ACCESS)
    for logical, props in functions.items():
        given = {k: v for k, v in props["Environment"]["Variables"].items() if k in arn_variables}
        assert given == {s.env: {"Ref": secret_logical_id(s)} for s in FUNCTION_ACCESS[logical].secrets}, logical
    values = {SECRET_PLACEHOLDER, *(secret.local for secret in SECRETS)}
    for function in rehearsal["session"].client("lambda").list_functions()["Functions"]:
        assert not set(function["Environment"]["Variables"].values()) & values, function["FunctionName"]
