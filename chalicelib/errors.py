"""Domain exceptions. ``chalicelib.api.errors`` maps each one to an HTTP status and the JSON error shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class DomainError(Exception):
    """Base class: ``code`` is machine-readable, the message is safe to show to a client."""

    code = "error"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(DomainError):
    code = "validation_error"

    @classmethod
    def of_input(cls, exc: ValidationError, what: str = "request") -> ValidationFailed:
        """The 400 of a pydantic error about the client's input, naming each bad field.

        Only input becomes a 400: a ValidationError that reaches the routing layer unconverted came
        from stored or computed data, and is answered as a 500.
        """
        fields: dict[str, str] = {}
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "body"
            fields.setdefault(name, str(err["msg"]).removeprefix("Value error, "))
        return cls(f"the {what} has invalid fields: {', '.join(sorted(fields))}", fields=fields)


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Unauthorized(DomainError):
    code = "unauthorized"


class WebhookRejected(Unauthorized):
    """A partner webhook's signature or credentials did not verify (or it speaks for another partner): answer 401 and
    change nothing."""

    code = "webhook_rejected"

    def __init__(self, reason: str) -> None:
        # The reason goes to logs; clients only learn that the webhook was not accepted.
        super().__init__("webhook signature not accepted")
        self.reason = reason


class WebhookUnsigned(WebhookRejected):
    """A partner webhook with no signature or credentials, or none of the partner's form (an X-Signature that is not
    a hex SHA-256, an Authorization that is not Basic): no version of any secret could accept it, so it is refused
    without reading the secret again (chalicelib/adapters/secrets.py)."""


class Forbidden(DomainError):
    code = "forbidden"


class IdempotencyMismatch(DomainError):
    """The same Idempotency-Key was sent with another body."""

    code = "idempotency_key_reused"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConcurrentModification(Conflict):
    """An optimistic-locking condition failed: someone else changed the item first."""

    code = "concurrent_modification"


class DeliveryRefused(DomainError):
    """A message will not be sent (suppressed address, opted-out number, send limit)."""

    code = "delivery_refused"


class TooLarge(DomainError):
    """The request's content is over a size limit (413); ``fields`` names what to shrink."""

    code = "too_large"


class ExportTooLarge(DomainError):
    """More rows match than one request may read: the answer names the export job route instead."""

    code = "export_too_large"


class UpstreamError(DomainError):
    """A partner or AWS dependency failed; the message never carries the upstream text."""

    code = "upstream_error"
