"""Build the deployable CloudFormation template: ``python -m infra.package build`` (``make package``).

``chalice package --merge-template infra/resources.json`` writes a SAM template with one function per Chalice
handler. :func:`post_process` turns it into a template that ``aws cloudformation deploy`` takes as it is:

* the waterfall's ASL file is inlined (``Definition`` + ``DefinitionSubstitutions``): a local
  ``DefinitionS3Location`` is only uploaded by ``aws cloudformation package``, and devstack reads the same file;
* every SQS event source reports partial batch failures (``FunctionResponseTypes: [ReportBatchItemFailures]``),
  which Chalice never sets, and points at its queue with ``Fn::GetAtt``, so CloudFormation creates the queue
  before the event source mapping (Chalice writes a bare ARN string);
* every function gets the settings environment: resources of this stack as ``Ref``, the rest as Parameters;
* every function gets a role of its own, generated from its entry in :data:`FUNCTION_ACCESS` (what its code does
  with AWS), its own log group with a retention, and active X-Ray tracing;
* API Gateway's own answers (an unknown route or method, a throttled or oversized request) use the API's error
  shape (``infra/gateway_responses.json``, which devstack's local gateway applies too).

:func:`build` then slims Chalice's ``deployment.zip`` (:func:`slim_bundle`): what the Lambda runtime provides and
data the code never reads stay out, and a bundle over Lambda's limit is refused.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import marshal
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
RESOURCES = INFRA / "resources.json"
GATEWAY_RESPONSES = INFRA / "gateway_responses.json"
BUILD = ROOT / "build"
STAGE = "dev"
# The stack name the printed commands use. Any lowercase name of at most 22 characters works (the bucket is named
# {stack}-documents-{account}-{region}); every resource's name derives from it, so two stacks coexist.
STACK_NAME = "lender-onboarding"

# Chalice binds each SQS handler to a queue *name* (chalicelib.config: onboarding-send, ...), the name the queue has
# in a stack named this (infra/resources.json names everything ${AWS::StackName}-...); post_process then points
# each event source at the queue resource itself, so a stack of any name works, and two stacks coexist.
CODE_STACK_NAME = "onboarding"

Template = dict[str, Any]

# Settings (chalicelib.config) environment variables that name a resource of this stack.
RESOURCE_ENVIRONMENT: dict[str, dict[str, str]] = {
    "TABLE_NAME": {"Ref": "Table"},
    "SEND_QUEUE_URL": {"Ref": "SendQueue"},
    "IMPORT_QUEUE_URL": {"Ref": "ImportQueue"},
    "LINK_REQUEST_QUEUE_URL": {"Ref": "LinkRequestQueue"},
    "SES_FEEDBACK_QUEUE_URL": {"Ref": "SesFeedbackQueue"},
    "PORTAL_EVENTS_QUEUE_URL": {"Ref": "PortalEventsQueue"},
    "WEBHOOK_QUEUE_URL": {"Ref": "WebhookQueue"},
    "SES_FEEDBACK_TOPIC_ARN": {"Ref": "SesFeedbackTopic"},
    "SES_CONFIGURATION_SET": {"Ref": "SesConfigurationSet"},
    "STATE_MACHINE_ARN": {"Ref": "WaterfallStateMachine"},
    "DOCUMENTS_BUCKET": {"Ref": "DocumentsBucket"},
}


@dataclass(frozen=True)
class Parameter:
    """A setting given at deploy time. Without a default, ``aws cloudformation deploy`` requires a value."""

    env: str
    name: str
    description: str
    default: str | None = None
    secret: bool = False
    allowed_values: tuple[str, ...] = ()
    pattern: str | None = None
    min_length: int | None = None

    def to_cfn(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"Type": "String", "Description": self.description}
        if self.default is not None:
            spec["Default"] = self.default
        if self.secret:
            spec["NoEcho"] = True
        if self.allowed_values:
            spec["AllowedValues"] = list(self.allowed_values)
        if self.pattern:
            spec["AllowedPattern"] = self.pattern
        if self.min_length is not None:
            spec["MinLength"] = self.min_length
        return spec


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "PUBLIC_BASE_URL",
        "PublicBaseUrl",
        "Base URL of the links in invitations (links are never built from a request's Host header).",
        default="https://app.myonboarding.com",
        pattern=r"^https://[^\s/]+(/\S*)?$",
    ),
    Parameter(
        "HOST_BASED_LINKS",
        "HostBasedLinks",
        "Join links on each lender's subdomain (https://{subdomain}.{base domain}/join).",
        default="true",
        allowed_values=("true", "false"),
    ),
    Parameter(
        "SENDER_EMAIL",
        "SenderEmail",
        "From address of invitations; its SES identity must be verified in the deploy region.",
        default="invitations@myonboarding.com",
        pattern=r"^[^@\s]+@[^@\s]+$",
    ),
    Parameter(
        "LINK_SIGNING_KEY",
        "LinkSigningKey",
        "Key that derives link tokens (random, >= 32 characters).",
        secret=True,
        min_length=32,
    ),
    Parameter("PLAID_BASE_URL", "PlaidBaseUrl", "Plaid environment.", default="https://sandbox.plaid.com"),
    Parameter("PLAID_CLIENT_ID", "PlaidClientId", "Plaid client id.", min_length=1),
    Parameter("PLAID_SECRET", "PlaidSecret", "Plaid secret.", secret=True, min_length=1),
    Parameter(
        "FINICITY_BASE_URL", "FinicityBaseUrl", "Mastercard Open Banking API.", default="https://api.finicity.com"
    ),
    Parameter("FINICITY_APP_KEY", "FinicityAppKey", "Mastercard Open Banking app key.", secret=True, min_length=1),
    Parameter("FINICITY_PARTNER_ID", "FinicityPartnerId", "Mastercard Open Banking partner id.", min_length=1),
    Parameter(
        "FINICITY_PARTNER_SECRET",
        "FinicityPartnerSecret",
        "Mastercard Open Banking partner secret.",
        secret=True,
        min_length=1,
    ),
    Parameter(
        "FINICITY_WEBHOOK_SECRET",
        "FinicityWebhookSecret",
        "Secret of Mastercard Open Banking webhooks.",
        secret=True,
        min_length=1,
    ),
    Parameter("MX_BASE_URL", "MxBaseUrl", "MX Platform API environment.", default="https://int-api.mx.com"),
    Parameter("MX_CLIENT_ID", "MxClientId", "MX client id.", min_length=1),
    Parameter("MX_API_KEY", "MxApiKey", "MX API key.", secret=True, min_length=1),
    Parameter(
        "MX_WEBHOOK_USERNAME", "MxWebhookUsername", "Basic-auth user of MX webhooks.", default="mx", min_length=1
    ),
    Parameter(
        "MX_WEBHOOK_PASSWORD", "MxWebhookPassword", "Basic-auth password of MX webhooks.", secret=True, min_length=1
    ),
)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# How `chalice package` writes the queue of `@app.on_sqs_message(queue=NAME)`.
_CHALICE_QUEUE_ARN = re.compile(
    r"^arn:\$\{AWS::Partition\}:sqs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(?P<name>[^:]+)$"
)
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


# --- one role per function ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What one function's code does with AWS. Its role grants exactly this, plus writing its own log group,
    sending X-Ray segments and, for an SQS handler, consuming its own queue (derived from its event source).

    Every function reads and writes the one table (all data lives there, keys are tenant-first); the rest is
    declared per function. A new AWS call in a function's code path needs its entry here, and the expected
    action set in tests/unit/test_infra.py.
    """

    send_to: tuple[str, ...] = ()  # logical ids of the queues it sends to
    documents: tuple[str, ...] = ()  # S3 object actions on the documents bucket
    list_document_versions: bool = False  # deleting every version under a prefix (a customer's data)
    start_waterfall: bool = False  # StartExecution + DescribeExecution on the bank-link state machine
    task_tokens: bool = False  # answers the waterfall's waitForTaskToken steps
    email: bool = (
        False  # SES v2 SendEmail from SenderEmail (or a lender's verified domain) through the configuration set
    )
    sending_domains: bool = False  # SES v2 Create/Get/DeleteEmailIdentity of lenders' own sending domains
    sms: bool = False  # SNS SMS to phone numbers and the opt-out check


FUNCTION_ACCESS: dict[str, Access] = {
    # Lender API, join page and portal: enqueues sends, imports, portal events and webhooks; starts and answers
    # the waterfall (provider webhooks, heartbeats); presigns uploads and downloads; deletes a customer's data.
    "APIHandler": Access(
        send_to=("SendQueue", "ImportQueue", "PortalEventsQueue", "WebhookQueue"),
        documents=("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"),
        list_document_versions=True,
        start_waterfall=True,
        task_tokens=True,
        sending_domains=True,
    ),
    # Emails and texts one invitation; a held send comes back on its own queue with a delay (sending safety);
    # an SMS opt-out or a paused lender becomes a lender notification (webhook).
    "SendWorker": Access(send_to=("SendQueue", "WebhookQueue"), email=True, sms=True),
    # Writes the rows of one import chunk and enqueues their sends; writes an invitation export's CSV to the bucket
    # one part per step, queuing the next step (PutObject covers the multipart calls but the abort of a failed one;
    # GetObject reads the rows a sparse step left pending for the next).
    "ImportWorker": Access(
        send_to=("SendQueue", "ImportQueue"), documents=("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload")
    ),
    # Re-enqueues sends left in the outbox.
    "OutboxRelay": Access(send_to=("SendQueue",)),
    # Provider link sessions and the data step: answers the waterfall, stores fetched data, notifies the lender.
    "LinkRequestWorker": Access(send_to=("WebhookQueue",), documents=("s3:PutObject",), task_tokens=True),
    # SES feedback: retries a transient bounce (send queue) and notifies the lender.
    "SesFeedbackWorker": Access(send_to=("SendQueue", "WebhookQueue")),
    # Portal completions notify the lender.
    "PortalEventsWorker": Access(send_to=("WebhookQueue",)),
    # POSTs to lender URLs; a failed attempt goes back on its own queue with a delay.
    "WebhookWorker": Access(send_to=("WebhookQueue",)),
}

TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    # TransactWriteItems has no action of its own: it needs the item actions above plus this one.
    "dynamodb:ConditionCheckItem",
)
CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def _arn(service: str, resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def _statement(sid: str, actions: tuple[str, ...] | list[str], resources: list[Any] | str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def role_statements(logical: str, function: dict[str, Any], access: Access) -> list[dict[str, Any]]:
    """The IAM statements of ``logical``'s role: its declaration, its log group, traces, its event queue."""
    table = {"Fn::GetAtt": ["Table", "Arn"]}
    bucket = {"Fn::GetAtt": ["DocumentsBucket", "Arn"]}
    statements = [
        _statement("OwnLogGroup", ("logs:CreateLogStream", "logs:PutLogEvents"), [_log_group_arn(logical)]),
        # X-Ray segments belong to no resource: AWS defines no resource type for these actions.
        _statement("XRayHasNoResourceArn", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), "*"),
        _statement("Table", TABLE_ACTIONS, [table, {"Fn::Sub": "${Table.Arn}/index/*"}]),
    ]
    consumed = [
        event["Properties"]["Queue"]
        for event in function.get("Events", {}).values()
        if event.get("Type") == "SQS" and isinstance(event["Properties"].get("Queue"), dict)
    ]
    if consumed:
        statements.append(_statement("ConsumeOwnQueue", CONSUME_ACTIONS, consumed))
    if access.send_to:
        queues = [{"Fn::GetAtt": [queue, "Arn"]} for queue in access.send_to]
        statements.append(_statement("SendToQueues", ("sqs:SendMessage",), queues))
    if access.documents:
        statements.append(_statement("DocumentObjects", access.documents, [{"Fn::Sub": "${DocumentsBucket.Arn}/*"}]))
    if access.list_document_versions:
        statements.append(_statement("DocumentVersions", ("s3:ListBucketVersions",), [bucket]))
    if access.start_waterfall:
        machine = {"Ref": "WaterfallStateMachine"}
        executions = {
            "Fn::Sub": [
                "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${Name}:*",
                {"Name": {"Fn::GetAtt": ["WaterfallStateMachine", "Name"]}},
            ]
        }
        statements.append(_statement("StartWaterfall", ("states:StartExecution",), [machine]))
        statements.append(_statement("WatchWaterfall", ("states:DescribeExecution",), [executions]))
    if access.task_tokens:
        # A task token names no resource: AWS defines no resource type for the callback actions.
        tokens = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")
        statements.append(_statement("TaskTokensHaveNoResourceArn", tokens, "*"))
    if access.email:
        sender_domain = {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderEmail"}]}]}
        identities = [
            _arn("ses", "identity/${SenderEmail}"),
            {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${Domain}",
                    {"Domain": sender_domain},
                ]
            },
            _arn("ses", "configuration-set/${SesConfigurationSet}"),
            # A lender's own domain (/v1/tenant/sending-domain) is named at run time: any identity of the account,
            # and SES sends only from the verified ones.
            _arn("ses", "identity/*"),
        ]
        statements.append(_statement("SendEmail", ("ses:SendEmail",), identities))
    if access.sending_domains:
        lender_domains = ("ses:CreateEmailIdentity", "ses:GetEmailIdentity", "ses:DeleteEmailIdentity")
        statements.append(_statement("LenderSendingDomains", lender_domains, [_arn("ses", "identity/*")]))
    if access.sms:
        # SMS goes to a phone number, not a topic: AWS defines no resource for it or for the opt-out check.
        statements.append(_statement("SmsHasNoResourceArn", ("sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"), "*"))
    return statements


def _log_group(logical: str) -> str:
    return f"{logical}LogGroup"


def _log_group_arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [_log_group(logical), "Arn"]}


def give_functions_their_roles(template: Template, access: dict[str, Access]) -> None:
    """Replace Chalice's roles (one shared policy file) with one generated role per function; give each function
    its own log group (retention from the LogRetentionDays parameter) and active tracing."""
    functions = dict(_resources(template, *FUNCTION_TYPES))
    undeclared, stale = sorted(set(functions) - set(access)), sorted(set(access) - set(functions))
    if undeclared or stale:
        raise ValueError(f"FUNCTION_ACCESS: no entry for {undeclared}, entries without a function {stale}")
    if "LogRetentionDays" not in template.get("Parameters", {}):
        raise ValueError(f"the LogRetentionDays parameter is missing from {RESOURCES.name}")
    resources = template["Resources"]
    for logical, function in functions.items():
        props = function["Properties"]
        role = props.get("Role", {}).get("Fn::GetAtt", [f"{logical}Role"])[0]
        resources[role] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": f"{logical}Access",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": role_statements(logical, props, access[logical]),
                        },
                    }
                ],
            },
        }
        props["Role"] = {"Fn::GetAtt": [role, "Arn"]}
        props.pop("Policies", None)
        props["Tracing"] = "Active"
        resources[_log_group(logical)] = _log_group_resource({"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{logical}"})
        props["LoggingConfig"] = {"LogGroup": {"Ref": _log_group(logical)}}


def _log_group_resource(name: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {"LogGroupName": name, "RetentionInDays": {"Ref": "LogRetentionDays"}},
    }


def observe_state_machines(template: Template) -> None:
    """Log errors (without execution data: inputs carry tenant and customer ids) and trace every state machine."""
    resources = template["Resources"]
    for logical, machine in list(_resources(template, "AWS::StepFunctions::StateMachine")):
        props = machine["Properties"]
        group = _log_group(logical)
        # /aws/vendedlogs/ keeps Step Functions from growing the account's log resource policy per log group.
        resources[group] = _log_group_resource({"Fn::Sub": f"/aws/vendedlogs/states/${{AWS::StackName}}-{logical}"})
        props["LoggingConfiguration"] = {
            "Level": "ERROR",
            "IncludeExecutionData": False,
            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": _log_group_arn(logical)}}],
        }
        props["TracingConfiguration"] = {"Enabled": True}
        role = resources[props["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        role.setdefault("Policies", []).append(
            {
                "PolicyName": "logs-and-traces",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        # Step Functions sets up log delivery through these account-level actions, which AWS
                        # defines without a resource type (the log group is named in LoggingConfiguration).
                        _statement(
                            "LogDeliveryHasNoResourceArn",
                            (
                                "logs:CreateLogDelivery",
                                "logs:GetLogDelivery",
                                "logs:UpdateLogDelivery",
                                "logs:DeleteLogDelivery",
                                "logs:ListLogDeliveries",
                                "logs:PutResourcePolicy",
                                "logs:DescribeResourcePolicies",
                                "logs:DescribeLogGroups",
                            ),
                            "*",
                        ),
                        _statement(
                            "XRayHasNoResourceArn",
                            (
                                "xray:PutTraceSegments",
                                "xray:PutTelemetryRecords",
                                "xray:GetSamplingRules",
                                "xray:GetSamplingTargets",
                            ),
                            "*",
                        ),
                    ],
                },
            }
        )


# One JSON line per request: who, what, how it ended, how long; no body, no query string (tokens travel there).
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "xrayTraceId": "$context.xrayTraceId",
    },
    separators=(",", ":"),
)


def protect_apis(template: Template) -> None:
    """Tracing, JSON access logs and throttling on every API stage."""
    resources = template["Resources"]
    for logical, api in list(_resources(template, "AWS::Serverless::Api")):
        props = api["Properties"]
        group = f"{logical}AccessLogGroup"
        resources[group] = _log_group_resource({"Fn::Sub": f"/aws/apigateway/${{AWS::StackName}}/{logical}"})
        # Chalice names every API after the app: the stack's name keeps two stacks' API metrics apart.
        props["Name"] = {"Fn::Sub": "${AWS::StackName}"}
        props["TracingEnabled"] = True
        props["AccessLogSetting"] = {"DestinationArn": {"Fn::GetAtt": [group, "Arn"]}, "Format": ACCESS_LOG_FORMAT}
        props["MethodSettings"] = [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
                "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"},
            }
        ]


# --- alarms and the funnel dashboard ---------------------------------------------------------------------------------

ALARM_PARAMETERS: dict[str, dict[str, Any]] = {
    "AlarmEmail": {
        "Type": "String",
        "Description": "Address subscribed to the alarm topic (confirm the email AWS sends); empty: no subscription.",
        "Default": "",
        "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+$",
    },
    "ApiLatencyP99Ms": {
        "Type": "Number",
        "Description": "The API's p99 latency (ms) that raises an alarm when exceeded for 15 minutes.",
        "Default": 3000,
        "MinValue": 100,
    },
    "Api5xxRate": {
        "Type": "Number",
        "Description": "Share of API requests answered 5xx over 5 minutes (0.01 is 1%) that raises an alarm.",
        "Default": 0.01,
        "MinValue": 0,
        "MaxValue": 1,
    },
}
ALARM_TOPIC = "AlarmTopic"
PERIOD_SECONDS = 300


def _alarm(
    name: str,
    description: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, Any],
    *,
    statistic: str = "Sum",
    threshold: Any = 0,
    comparison: str = "GreaterThanThreshold",
    periods: int = 1,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "AlarmName": {"Fn::Sub": f"${{AWS::StackName}}-{name}"},
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
        "Period": PERIOD_SECONDS,
        "EvaluationPeriods": periods,
        "Threshold": threshold,
        "ComparisonOperator": comparison,
        # No data means nothing happened (no errors, an empty queue): not an alarm.
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": ALARM_TOPIC}],
        "OKActions": [{"Ref": ALARM_TOPIC}],
    }
    if statistic.startswith("p"):
        props["ExtendedStatistic"] = statistic
    else:
        props["Statistic"] = statistic
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": props}


def dead_letter_queues(template: Template) -> list[str]:
    """Logical ids of the queues another queue's RedrivePolicy sends to."""
    found = []
    for _, queue in _resources(template, "AWS::SQS::Queue"):
        target = queue.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn", {})
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            found.append(target["Fn::GetAtt"][0])
    return sorted(found)


def add_alarms(template: Template) -> None:
    """One SNS topic (on the stack's KMS key, an optional email subscription) and the alarms that page it:
    every DLQ holding a message, failed or timed-out executions, each function's errors and throttles,
    the API's 5xx rate and p99 latency."""
    resources = template["Resources"]
    template.setdefault("Parameters", {}).update(copy.deepcopy(ALARM_PARAMETERS))
    template.setdefault("Conditions", {})["HasAlarmEmail"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    resources[ALARM_TOPIC] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": {"Fn::Sub": "${AWS::StackName}-alarms"}, "KmsMasterKeyId": {"Ref": "TopicKey"}},
    }
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {"TopicArn": {"Ref": ALARM_TOPIC}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
    }
    alarms: dict[str, dict[str, Any]] = {}
    for dlq in dead_letter_queues(template):
        alarms[f"{dlq}NotEmptyAlarm"] = _alarm(
            f"{dlq}-not-empty",
            f"{dlq} holds a message its consumer gave up on: read it, fix the cause, redrive it.",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": [dlq, "QueueName"]}},
            statistic="Maximum",
        )
    for logical, _ in _resources(template, "AWS::StepFunctions::StateMachine"):
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
            alarms[f"{logical}{metric}Alarm"] = _alarm(
                f"{logical}-{metric}",
                f"{logical}: an execution ended {metric[len('Executions') :].lower()} (the waterfall itself broke; "
                "providers failing end in FellBackToDocuments, not here).",
                "AWS/States",
                metric,
                {"StateMachineArn": {"Ref": logical}},
            )
    for logical, _ in _resources(template, *FUNCTION_TYPES):
        for metric in ("Errors", "Throttles"):
            alarms[f"{logical}{metric}Alarm"] = _alarm(
                f"{logical}-{metric}",
                f"{logical}: {metric.lower()} in the last 5 minutes.",
                "AWS/Lambda",
                metric,
                {"FunctionName": {"Ref": logical}},
            )
    for logical, api in _resources(template, "AWS::Serverless::Api"):
        dimensions = {"ApiName": {"Fn::Sub": "${AWS::StackName}"}, "Stage": api["Properties"]["StageName"]}
        alarms[f"{logical}5xxRateAlarm"] = _alarm(
            f"{logical}-5xx-rate",
            f"{logical}: more than Api5xxRate of the requests answered 5xx over 5 minutes.",
            "AWS/ApiGateway",
            "5XXError",
            dimensions,
            statistic="Average",  # 5XXError is 0 or 1 per request: its average is the rate
            threshold={"Ref": "Api5xxRate"},
        )
        alarms[f"{logical}LatencyP99Alarm"] = _alarm(
            f"{logical}-latency-p99",
            f"{logical}: p99 latency above ApiLatencyP99Ms for 15 minutes.",
            "AWS/ApiGateway",
            "Latency",
            dimensions,
            statistic="p99",
            threshold={"Ref": "ApiLatencyP99Ms"},
            periods=3,
        )
    resources.update(alarms)


def add_funnel_dashboard(
    template: Template, namespace: str = "LenderOnboarding", service: str = "lender-onboarding"
) -> None:
    """A CloudWatch dashboard: the invitation funnel (hourly sums and a 7-day total) and the DLQ depths."""
    # The EMF metrics chalicelib.observability.count emits (namespace, service dimension), named there once:
    # created / sent / delivered / bounced / opened / joined / completed (tests/integration/test_funnel_metrics.py).
    from chalicelib.observability import FUNNEL_METRICS

    metrics = [
        [namespace, metric, "service", service, {"label": label, "stat": "Sum"}] for metric, label in FUNNEL_METRICS
    ]
    dlqs = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"${{{dlq}.QueueName}}", {"label": dlq}]
        for dlq in dead_letter_queues(template)
    ]
    widgets = [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 4,
            "properties": {
                "title": "Invitation funnel, last 7 days",
                "view": "singleValue",
                "region": "${AWS::Region}",
                "period": 604800,
                "setPeriodToTimeRange": True,
                "metrics": metrics,
            },
        },
        {
            "type": "metric",
            "x": 0,
            "y": 4,
            "width": 16,
            "height": 8,
            "properties": {
                "title": "Invitation funnel per hour",
                "view": "timeSeries",
                "region": "${AWS::Region}",
                "period": 3600,
                "metrics": metrics,
            },
        },
        {
            "type": "metric",
            "x": 16,
            "y": 4,
            "width": 8,
            "height": 8,
            "properties": {
                "title": "Dead-letter queues (should be 0)",
                "view": "timeSeries",
                "region": "${AWS::Region}",
                "stat": "Maximum",
                "period": PERIOD_SECONDS,
                "metrics": dlqs,
            },
        },
    ]
    template["Resources"]["FunnelDashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": {"Fn::Sub": "${AWS::StackName}-invitation-funnel"},
            "DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets}, separators=(",", ":"))},
        },
    }


def environment() -> dict[str, Any]:
    """Every environment variable the packaged functions get, with its CloudFormation value."""
    return {**RESOURCE_ENVIRONMENT, **{p.env: {"Ref": p.name} for p in PARAMETERS}}


def post_process(template: Template, *, base_dir: Path = INFRA, access: dict[str, Access] | None = None) -> Template:
    """Return a deployable copy of Chalice's merged SAM template; ``base_dir`` resolves local ASL paths,
    ``access`` declares what each function does (default :data:`FUNCTION_ACCESS`).

    Raises ValueError when the template cannot work once deployed: an ASL placeholder without substitution,
    an SQS handler on a queue this stack does not create, a queue whose visibility timeout is shorter than
    its function's timeout, an environment Ref to a missing resource, or a function without a declaration.
    """
    result = copy.deepcopy(template)
    inline_state_machines(result, base_dir)
    bind_sqs_event_sources(result)
    add_settings_environment(result)
    give_functions_their_roles(result, FUNCTION_ACCESS if access is None else access)
    observe_state_machines(result)
    protect_apis(result)
    add_alarms(result)
    add_funnel_dashboard(result)
    add_gateway_responses(result)
    return result


def add_gateway_responses(template: Template) -> None:
    responses = json.loads(GATEWAY_RESPONSES.read_text())
    for _, api in _resources(template, "AWS::Serverless::Api"):
        api.setdefault("Properties", {}).setdefault("GatewayResponses", {}).update(copy.deepcopy(responses))


def inline_state_machines(template: Template, base_dir: Path) -> None:
    for logical, resource in _resources(template, "AWS::StepFunctions::StateMachine"):
        props = resource["Properties"]
        location = props.get("DefinitionS3Location")
        if not isinstance(location, str):
            continue  # inline already, or a real S3 object
        text = (base_dir / location).read_text()
        missing = set(_PLACEHOLDER.findall(text)) - set(props.get("DefinitionSubstitutions", {}))
        if missing:
            raise ValueError(f"{logical}: no DefinitionSubstitutions for {sorted(missing)}")
        del props["DefinitionS3Location"]
        props["Definition"] = json.loads(text)


def queue_name(props: dict[str, Any], stack_name: str = CODE_STACK_NAME) -> str | None:
    """The QueueName of a queue's properties in a stack named ``stack_name`` (None when not a plain name)."""
    name = props.get("QueueName")
    if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
        name = name["Fn::Sub"].replace("${AWS::StackName}", stack_name)
    return name if isinstance(name, str) and "${" not in name else None


def bind_sqs_event_sources(template: Template) -> None:
    queues = {
        name: logical
        for logical, resource in _resources(template, "AWS::SQS::Queue")
        if (name := queue_name(resource.get("Properties", {}))) is not None
    }
    for logical, function in _resources(template, *FUNCTION_TYPES):
        props = function["Properties"]
        for event_name, event in props.get("Events", {}).items():
            if event.get("Type") != "SQS":
                continue
            source = event["Properties"]
            types = source.setdefault("FunctionResponseTypes", [])
            if "ReportBatchItemFailures" not in types:
                types.append("ReportBatchItemFailures")
            name = _chalice_queue_name(source["Queue"])
            if name is None:
                continue  # bound with queue_arn=...: a queue this stack does not own
            if name not in queues:
                raise ValueError(f"{logical}.{event_name}: queue {name!r} is not created by {RESOURCES.name}")
            queue = template["Resources"][queues[name]]["Properties"]
            visibility, timeout = int(queue.get("VisibilityTimeout", 30)), int(props.get("Timeout", 3))
            if visibility < timeout:
                raise ValueError(f"{name}: visibility timeout {visibility}s < timeout {timeout}s of {logical}")
            source["Queue"] = {"Fn::GetAtt": [queues[name], "Arn"]}


def add_settings_environment(template: Template) -> None:
    missing = sorted(ref["Ref"] for ref in RESOURCE_ENVIRONMENT.values() if ref["Ref"] not in template["Resources"])
    if missing:
        raise ValueError(f"environment refers to missing resources {missing}")
    parameters = template.setdefault("Parameters", {})
    for parameter in PARAMETERS:
        parameters[parameter.name] = parameter.to_cfn()
    values = environment()
    for _, function in _resources(template, *FUNCTION_TYPES):
        variables = function["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        for key, value in values.items():
            # A stage's own environment_variables in .chalice/config.json win.
            variables.setdefault(key, copy.deepcopy(value))


def _resources(template: Template, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical, resource in template.get("Resources", {}).items():
        if resource.get("Type") in types:
            yield logical, resource


def _chalice_queue_name(queue: Any) -> str | None:
    if isinstance(queue, dict) and isinstance(queue.get("Fn::Sub"), str):
        match = _CHALICE_QUEUE_ARN.match(queue["Fn::Sub"])
        if match:
            return match.group("name")
    return None


def packaging_environment(stage: str = STAGE, project_dir: Path = ROOT) -> dict[str, str]:
    """Environment of the ``chalice package`` process, which imports app.py as a cold start would.

    The developer's settings (a local STAGE, AWS_ENDPOINT_URL ...) are dropped and the stage's own
    environment_variables applied, so the route table is the deployed one (app.py picks routes by STAGE).
    """
    settings_names = {"STAGE", "AWS_ENDPOINT_URL", *environment()}
    env = {key: value for key, value in os.environ.items() if key.upper() not in settings_names}
    # Chalice insists on a region, but the template it writes only uses ${AWS::Region}.
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    env.update(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return env


def run_chalice_package(out_dir: Path, stage: str = STAGE, project_dir: Path = ROOT) -> Template:
    """Run this environment's ``chalice package`` on ``project_dir`` into ``out_dir``; return its sam.json."""
    command = [
        sys.executable,
        "-c",
        "import sys; from chalice.cli import main; sys.exit(main())",
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(RESOURCES),
        str(out_dir),
    ]
    subprocess.run(command, cwd=project_dir, env=packaging_environment(stage, project_dir), check=True)
    template: Template = json.loads((out_dir / "sam.json").read_text())
    return template


# --- the deployment bundle -----------------------------------------------------------------------------------------

# Lambda's limit on a function's code (with its layers) once unzipped; a zip uploaded directly may be 50 MB.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1000 * 1000
# The Lambda Python runtime ships boto3 and botocore (with s3transfer): the bundle uses the runtime's. botocore arrives
# through aws-xray-sdk (Powertools' tracer); 20 MiB unzipped.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# phonenumbers' geocoder and carrier data (42 MiB unzipped): the code reads numbers, their type and their time zones
# (SMS quiet hours) only. phonenumberslite is no substitute: it lacks phonenumbers/tzdata, so phonenumbers.timezone
# fails to import. tests/unit/test_bundle.py checks that nothing imports these and quiet hours work without them.
UNUSED_DATA = ("phonenumbers/geodata/", "phonenumbers/carrierdata/")


@dataclass(frozen=True)
class BundleSize:
    zipped: int
    unzipped: int
    left_out: int  # unzipped bytes :func:`slim_bundle` left out

    def describe(self) -> str:
        mib = 1024 * 1024
        return (
            f"{self.zipped / mib:.1f} MiB zipped, {self.unzipped / mib:.1f} MiB unzipped "
            f"(Lambda's limit: {LAMBDA_UNZIPPED_LIMIT / mib:.0f} MiB unzipped; {self.left_out / mib:.1f} MiB left out: "
            f"{', '.join(RUNTIME_PROVIDED)}, phonenumbers' geocoder and carrier data; modules precompiled)"
        )


def _left_out(name: str) -> bool:
    top = name.split("/", 1)[0]
    project = top.split("-", 1)[0] if top.endswith(".dist-info") else top
    return project.lower() in RUNTIME_PROVIDED or name.startswith(UNUSED_DATA)


def compiled(name: str, source: bytes) -> tuple[str, bytes] | None:
    """The bytecode cache entry of the module ``name`` (a path in the bundle), as Python would write it, or None
    for a file that does not compile (a template or test data named .py).

    The pyc is hash-based and unchecked (PEP 552): Lambda's read-only /var/task can never write one, so without
    it every cold start compiles every module it imports (about a fifth of the API function's import time in
    ``make bench``), and the zip's timestamps need not survive unpacking."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    flags = (0b01).to_bytes(4, "little")  # hash-based, source not checked
    pyc = importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)
    return importlib.util.cache_from_source(name), pyc


def slim_bundle(source: Path, target: Path) -> BundleSize:
    """Copy the zip ``source`` to ``target`` without :data:`RUNTIME_PROVIDED` and :data:`UNUSED_DATA`, adding the
    bytecode of every module (see :func:`compiled`; the packaging Python is the runtime's version).

    Raises ValueError when the result is still over Lambda's unzipped limit.
    """
    unzipped = left_out = 0
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as slim:
        names = set(original.namelist())
        for info in original.infolist():
            if _left_out(info.filename):
                left_out += info.file_size
                continue
            data = original.read(info)
            unzipped += info.file_size
            slim.writestr(info, data)  # the entry's compression and permissions as they were
            cached = compiled(info.filename, data) if info.filename.endswith(".py") else None
            if cached is not None and cached[0] not in names:
                entry = zipfile.ZipInfo(cached[0], date_time=info.date_time)
                entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, info.external_attr
                slim.writestr(entry, cached[1])
                unzipped += len(cached[1])
    size = BundleSize(target.stat().st_size, unzipped, left_out)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise ValueError(f"the deployment bundle is over Lambda's limit: {size.describe()}")
    return size


def build(out_dir: Path = BUILD, stage: str = STAGE) -> tuple[Path, BundleSize]:
    """Write ``template.json`` and the ``deployment.zip`` it refers to into ``out_dir``; return the template's path
    and the bundle's size."""
    with tempfile.TemporaryDirectory() as tmp:
        package_dir = Path(tmp) / "package"
        template = post_process(run_chalice_package(package_dir, stage))
        out_dir.mkdir(parents=True, exist_ok=True)
        size = slim_bundle(package_dir / "deployment.zip", out_dir / "deployment.zip")
    path = out_dir / "template.json"
    path.write_text(json.dumps(template, indent=2) + "\n")
    return path, size


def deploy_commands(template: Path) -> str:
    packaged = template.with_name("packaged.json")
    required = " ".join(f"{p.name}=..." for p in PARAMETERS if p.default is None)
    return "\n".join(
        [
            "# Upload deployment.zip (CodeUri) and deploy; SenderEmail's SES identity must be verified first.",
            f"aws cloudformation package --template-file {template} --s3-bucket <artifact-bucket> "
            f"--output-template-file {packaged}",
            f"aws cloudformation deploy --template-file {packaged} --stack-name {STACK_NAME} "
            f"--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --parameter-overrides {required} "
            "PublicBaseUrl=https://... AlarmEmail=...",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="write build/template.json and build/deployment.zip")
    build_parser.add_argument("--out", type=Path, default=BUILD)
    build_parser.add_argument("--stage", default=STAGE)
    args = parser.parse_args(argv)
    try:
        template, size = build(args.out, args.stage)
    except subprocess.CalledProcessError as exc:
        print(f"chalice package failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"cannot package: {exc}", file=sys.stderr)
        return 1
    shown = template.relative_to(ROOT) if template.is_relative_to(ROOT) else template
    print(f"wrote {shown}")
    print(f"deployment.zip: {size.describe()}")
    print(deploy_commands(shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
