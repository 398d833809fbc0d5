"""Build the deployable CloudFormation template: ``python -m infra.package build`` (``make package``).

``chalice package --merge-template infra/resources.json`` writes a SAM template with one function per Chalice
handler. :func:`post_process` turns it into a template that ``aws cloudformation deploy`` takes as it is:

* the waterfall's ASL file is inlined (``Definition`` + ``DefinitionSubstitutions``): a local
  ``DefinitionS3Location`` is only uploaded by ``aws cloudformation package``, and devstack reads the same file;
* every SQS event source reports partial batch failures (``FunctionResponseTypes: [ReportBatchItemFailures]``),
  which Chalice never sets, and points at its queue with ``Fn::GetAtt``, so CloudFormation creates the queue
  before the event source mapping (Chalice writes a bare ARN string);
* every function gets the settings environment: resources of this stack as ``Ref``, the rest as Parameters.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
RESOURCES = INFRA / "resources.json"
BUILD = ROOT / "build"
STAGE = "dev"
# .chalice/policy-dev.json grants logs only to /aws/lambda/lender-onboarding-*: CloudFormation names the functions
# {stack name}-{logical id}-{suffix}, so deploy under this stack name.
STACK_NAME = "lender-onboarding"

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
        "LINK_SIGNING_KEY", "LinkSigningKey", "Key that derives link tokens (random, >= 32 characters).", secret=True
    ),
    Parameter("PLAID_BASE_URL", "PlaidBaseUrl", "Plaid environment.", default="https://sandbox.plaid.com"),
    Parameter("PLAID_CLIENT_ID", "PlaidClientId", "Plaid client id."),
    Parameter("PLAID_SECRET", "PlaidSecret", "Plaid secret.", secret=True),
    Parameter(
        "FINICITY_BASE_URL", "FinicityBaseUrl", "Mastercard Open Banking API.", default="https://api.finicity.com"
    ),
    Parameter("FINICITY_APP_KEY", "FinicityAppKey", "Mastercard Open Banking app key.", secret=True),
    Parameter("FINICITY_PARTNER_ID", "FinicityPartnerId", "Mastercard Open Banking partner id."),
    Parameter(
        "FINICITY_PARTNER_SECRET", "FinicityPartnerSecret", "Mastercard Open Banking partner secret.", secret=True
    ),
    Parameter(
        "FINICITY_WEBHOOK_SECRET", "FinicityWebhookSecret", "Secret of Mastercard Open Banking webhooks.", secret=True
    ),
    Parameter("MX_BASE_URL", "MxBaseUrl", "MX Platform API environment.", default="https://int-api.mx.com"),
    Parameter("MX_CLIENT_ID", "MxClientId", "MX client id."),
    Parameter("MX_API_KEY", "MxApiKey", "MX API key.", secret=True),
    Parameter("MX_WEBHOOK_USERNAME", "MxWebhookUsername", "Basic-auth user of MX webhooks.", default="mx"),
    Parameter("MX_WEBHOOK_PASSWORD", "MxWebhookPassword", "Basic-auth password of MX webhooks.", secret=True),
)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# How `chalice package` writes the queue of `@app.on_sqs_message(queue=NAME)`.
_CHALICE_QUEUE_ARN = re.compile(
    r"^arn:\$\{AWS::Partition\}:sqs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(?P<name>[^:]+)$"
)
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def environment() -> dict[str, Any]:
    """Every environment variable the packaged functions get, with its CloudFormation value."""
    return {**RESOURCE_ENVIRONMENT, **{p.env: {"Ref": p.name} for p in PARAMETERS}}


def post_process(template: Template, *, base_dir: Path = INFRA) -> Template:
    """Return a deployable copy of Chalice's merged SAM template; ``base_dir`` resolves local ASL paths.

    Raises ValueError when the template cannot work once deployed: an ASL placeholder without substitution,
    an SQS handler on a queue this stack does not create, a queue whose visibility timeout is shorter than
    its function's timeout, or an environment Ref to a missing resource.
    """
    result = copy.deepcopy(template)
    inline_state_machines(result, base_dir)
    bind_sqs_event_sources(result)
    add_settings_environment(result)
    return result


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


def bind_sqs_event_sources(template: Template) -> None:
    queues = {
        resource["Properties"]["QueueName"]: logical
        for logical, resource in _resources(template, "AWS::SQS::Queue")
        if isinstance(resource.get("Properties", {}).get("QueueName"), str)
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


def build(out_dir: Path = BUILD, stage: str = STAGE) -> Path:
    """Write ``template.json`` and the ``deployment.zip`` it refers to into ``out_dir``."""
    with tempfile.TemporaryDirectory() as tmp:
        package_dir = Path(tmp) / "package"
        template = post_process(run_chalice_package(package_dir, stage))
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package_dir / "deployment.zip", out_dir / "deployment.zip")
    path = out_dir / "template.json"
    path.write_text(json.dumps(template, indent=2) + "\n")
    return path


def deploy_commands(template: Path) -> str:
    packaged = template.with_name("packaged.json")
    required = " ".join(f"{p.name}=..." for p in PARAMETERS if p.default is None)
    return "\n".join(
        [
            "# Upload deployment.zip (CodeUri) and deploy; SenderEmail's SES identity must be verified first.",
            f"aws cloudformation package --template-file {template} --s3-bucket <artifact-bucket> "
            f"--output-template-file {packaged}",
            f"aws cloudformation deploy --template-file {packaged} --stack-name {STACK_NAME} "
            f"--capabilities CAPABILITY_IAM --parameter-overrides {required} PublicBaseUrl=https://...",
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
        template = build(args.out, args.stage)
    except subprocess.CalledProcessError as exc:
        print(f"chalice package failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"cannot package: {exc}", file=sys.stderr)
        return 1
    shown = template.relative_to(ROOT) if template.is_relative_to(ROOT) else template
    print(f"wrote {shown}")
    print(deploy_commands(shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
