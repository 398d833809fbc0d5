"""Create the embedded AWS resources from infra/resources.json: one source of truth with production.

A small interpreter for the CloudFormation resource types the template uses (DynamoDB table, SQS
queues, SNS topics and subscriptions, SES configuration set, S3 bucket, Step Functions state
machine, and the Secrets Manager secrets ``infra/package.py`` adds from ``chalicelib.config.SECRETS``)
and the intrinsics it needs (Ref, Fn::GetAtt, Fn::Sub). Used by ``make run`` and by the
integration tests, so a resource added to infra/ exists locally without a second definition.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from devstack.embedded_aws import task_tokens_per_attempt

INFRA = Path(__file__).resolve().parent.parent / "infra"
TEMPLATE = INFRA / "resources.json"
ASL = INFRA / "waterfall.asl.json"
ACCOUNT_ID = "123456789012"
SENDER_IDENTITY = "myonboarding.com"
# infra/resources.json names resources ${AWS::StackName}-...; this stack name gives the names chalicelib.config binds.
STACK_NAME = "onboarding"


def quick_retries(definition: str) -> str:
    """The same state machine with every Retry waiting 1 s: the provider sandbox is ready again at once,
    and a developer (or a test) should not wait the minutes production gives a real provider."""
    document = json.loads(definition)
    for state in document["States"].values():
        for retrier in state.get("Retry", []):
            retrier["IntervalSeconds"] = 1
            retrier["BackoffRate"] = 1
    return json.dumps(document)


def load_template() -> dict[str, Any]:
    """infra/resources.json with the secrets the packaged template adds (the same resources as deployed)."""
    from infra.package import secret_resources

    template: dict[str, Any] = json.loads(TEMPLATE.read_text())
    template["Resources"].update(secret_resources())
    return template


def _local_secret_values() -> dict[str, str]:
    """Each secret's value on the embedded stack, by logical id: its declared local value, generated or not (the
    provider sandbox checks the same values, and links survive a restart of ``make run``)."""
    from chalicelib.config import SECRETS
    from infra.package import secret_logical_id

    return {secret_logical_id(secret): secret.local for secret in SECRETS}


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The template's parameters at their defaults (a CommaDelimitedList as a list, as Ref gives it)."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        default = spec.get("Default")
        values[name] = default.split(",") if spec.get("Type") == "CommaDelimitedList" else default
    return values


class _Resolver:
    def __init__(self, region: str, parameters: dict[str, Any] | None = None) -> None:
        self.region = region
        self.refs: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            **(parameters or {}),
        }
        self.arns: dict[str, str] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                name = value["Ref"]
                # A resource with no local counterpart (a KMS key, a policy) resolves to its logical id.
                return self.refs.get(name, name)
            if "Fn::GetAtt" in value:
                logical, attribute = value["Fn::GetAtt"]
                if attribute != "Arn":
                    raise ValueError(f"unsupported attribute {attribute}")
                return self.arns[logical]
            if "Fn::Sub" in value:
                text = value["Fn::Sub"]
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(
                        self.resolve(
                            {"Fn::GetAtt": m.group(1).split(".")} if "." in m.group(1) else {"Ref": m.group(1)}
                        )
                    ),
                    text,
                )
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _order(resources: dict[str, Any]) -> list[str]:
    """Dependency order: a resource after every resource it references."""

    def deps(value: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(value, dict):
            if "Ref" in value:
                found.add(value["Ref"])
            if "Fn::GetAtt" in value:
                found.add(value["Fn::GetAtt"][0])
            if "Fn::Sub" in value:
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}]+)\}", value["Fn::Sub"]))
            for v in value.values():
                found |= deps(v)
        elif isinstance(value, list):
            for v in value:
                found |= deps(v)
        return {d for d in found if d in resources}

    ordered: list[str] = []
    pending = dict.fromkeys(resources)
    while pending:
        for name in list(pending):
            if deps(resources[name]) <= set(ordered):
                ordered.append(name)
                pending.pop(name)
    return ordered


def create_resources(session: Any, region: str = "us-east-1") -> dict[str, str]:
    """Create every resource; return the environment variables that point the app at them."""
    template = load_template()
    resources = template["Resources"]
    r = _Resolver(region, parameter_defaults(template))
    clients: dict[str, Any] = {}
    local_secrets = _local_secret_values()

    def client(name: str) -> Any:
        if name not in clients:
            clients[name] = session.client(name, region_name=region)
        return clients[name]

    for logical in _order(resources):
        kind = resources[logical]["Type"]
        props = r.resolve(resources[logical].get("Properties", {}))
        if kind == "AWS::DynamoDB::Table":
            ddb = client("dynamodb")
            ddb.create_table(
                TableName=props["TableName"],
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
                BillingMode=props["BillingMode"],
            )
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)
            r.refs[logical] = props["TableName"]
            r.arns[logical] = f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{props['TableName']}"
        elif kind == "AWS::SQS::Queue":
            attributes = {
                k: json.dumps(v) if isinstance(v, dict) else str(v)
                for k, v in props.items()
                if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy")
            }
            url = client("sqs").create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
            r.refs[logical] = url
            r.arns[logical] = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{props['QueueName']}"
        elif kind == "AWS::SNS::Topic":
            arn = client("sns").create_topic(Name=props["TopicName"])["TopicArn"]
            r.refs[logical] = r.arns[logical] = arn
        elif kind == "AWS::SNS::Subscription":
            attributes = {"RawMessageDelivery": "true" if props.get("RawMessageDelivery") else "false"}
            client("sns").subscribe(
                TopicArn=props["TopicArn"],
                Protocol=props["Protocol"],
                Endpoint=props["Endpoint"],
                Attributes=attributes,
            )
        elif kind == "AWS::SES::ConfigurationSet":
            ses = client("ses")
            ses.create_configuration_set(ConfigurationSet={"Name": props["Name"]})
            ses.verify_domain_identity(Domain=SENDER_IDENTITY)
            r.refs[logical] = props["Name"]
        elif kind == "AWS::SES::ConfigurationSetEventDestination":
            destination = props["EventDestination"]
            topic = destination["SnsDestination"]["TopicARN"]
            # moto publishes SES feedback to the identity's notification topics.
            ses = client("ses")
            for feedback in ("Bounce", "Complaint", "Delivery"):
                ses.set_identity_notification_topic(Identity=SENDER_IDENTITY, NotificationType=feedback, SnsTopic=topic)
        elif kind == "AWS::S3::Bucket":
            name = props["BucketName"]
            client("s3").create_bucket(Bucket=name)
            r.refs[logical] = name
            r.arns[logical] = f"arn:aws:s3:::{name}"
        elif kind == "AWS::IAM::Role":
            r.refs[logical] = logical
            r.arns[logical] = f"arn:aws:iam::{ACCOUNT_ID}:role/{logical}"
        elif kind == "AWS::SecretsManager::Secret":
            arn = client("secretsmanager").create_secret(
                Name=props["Name"], Description=props.get("Description", ""), SecretString=local_secrets[logical]
            )["ARN"]
            r.refs[logical] = r.arns[logical] = arn
        elif kind == "AWS::StepFunctions::StateMachine":
            if not ASL.exists():
                continue
            definition = ASL.read_text()
            for key, value in props.get("DefinitionSubstitutions", {}).items():
                definition = definition.replace("${" + key + "}", str(value))
            definition = quick_retries(definition)
            task_tokens_per_attempt()  # moto's executions, wherever this machine runs locally, keep early answers
            arn = client("stepfunctions").create_state_machine(
                name=props["StateMachineName"], definition=definition, roleArn=props["RoleArn"], type="STANDARD"
            )["stateMachineArn"]
            r.refs[logical] = r.arns[logical] = arn
        # Other types (policies) have no local effect.

    from chalicelib.config import SECRETS
    from infra.package import secret_logical_id

    # Every function of the embedded stack runs in this one process: each reads its secrets as deployed, from
    # Secrets Manager by ARN (the per-function grants are checked by the tests' secret guard).
    secret_arns = {secret.env: r.refs[secret_logical_id(secret)] for secret in SECRETS}
    return {
        **secret_arns,
        "TABLE_NAME": r.refs["Table"],
        "SEND_QUEUE_URL": r.refs["SendQueue"],
        "IMPORT_QUEUE_URL": r.refs["ImportQueue"],
        "LINK_REQUEST_QUEUE_URL": r.refs["LinkRequestQueue"],
        "SES_FEEDBACK_QUEUE_URL": r.refs["SesFeedbackQueue"],
        "PORTAL_EVENTS_QUEUE_URL": r.refs["PortalEventsQueue"],
        "WEBHOOK_QUEUE_URL": r.refs["WebhookQueue"],
        "SES_FEEDBACK_TOPIC_ARN": r.refs["SesFeedbackTopic"],
        "SES_CONFIGURATION_SET": r.refs["SesConfigurationSet"],
        "STATE_MACHINE_ARN": r.refs.get("WaterfallStateMachine", ""),
        "DOCUMENTS_BUCKET": r.refs["DocumentsBucket"],
        "SENDER_EMAIL": f"invitations@{SENDER_IDENTITY}",
    }
