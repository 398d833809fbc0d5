"""Powertools Logger, Tracer and Metrics, created once for the whole process."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics, Tracer

SERVICE = "lender-onboarding"
NAMESPACE = "LenderOnboarding"

logger = Logger(service=SERVICE)
_metrics: list[Metrics] = []

# The invitation funnel, in order: each name is counted once per step, where the use case records it (a redelivered
# message counts nothing), and infra/package.py's dashboard reads exactly these (tests/unit/test_infra.py).
FUNNEL_METRICS = (
    ("InvitationCreated", "created"),  # the lender's API, console, CSV import or a walk-in sign-up
    ("EmailSent", "email sent"),
    ("SmsSent", "SMS sent"),
    ("EmailDelivered", "delivered"),  # SES Delivery feedback
    ("EmailBounced", "bounced"),  # SES permanent bounce (a transient one is retried, not counted)
    ("InvitationOpened", "opened"),  # the portal link opened for the first time
    ("InvitationJoined", "joined"),  # the customer joined (sign-up, confirmation or portal submission)
    ("InvitationCompleted", "completed"),  # the portal completion applied
)


def count(name: str, value: int = 1) -> None:
    """Add to a business metric (CloudWatch EMF), flushed at the end of the invocation.

    The Metrics object (and its ~25 ms import) is built on the first metric, not at cold start.
    """
    from aws_lambda_powertools.metrics import MetricUnit

    if not _metrics:
        from aws_lambda_powertools import Metrics

        _metrics.append(Metrics(namespace=NAMESPACE, service=SERVICE))
    _metrics[0].add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Write the invocation's metrics as one EMF log line (the middleware calls this)."""
    if _metrics and _metrics[0].metric_set:
        _metrics[0].flush_metrics()


def tracing_enabled() -> bool:
    """Powertools' own rule: in Lambda, not an emulator, not POWERTOOLS_TRACE_DISABLED."""
    from aws_lambda_powertools.tracing.tracer import Tracer

    return not Tracer._is_tracer_disabled()


@cache
def get_tracer() -> Tracer:
    """Built on first use: constructing a Tracer imports the X-Ray SDK (~150 ms of cold start)."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def __getattr__(name: str) -> Any:
    # ``from chalicelib.observability import tracer`` keeps working, and pays for X-Ray only then.
    if name == "tracer":
        return get_tracer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def mask_email(email: str) -> str:
    """``jane.doe@bank.com`` -> ``j***@bank.com``: enough for support, useless for harvesting."""
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"***{digits[-2:]}" if len(digits) >= 2 else "***"


def redact(text: str) -> str:
    """Mask every email address and phone number found in free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def safe_fields(**fields: Any) -> dict[str, Any]:
    """Log extras with emails and phone numbers masked."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
