"""The bank-link providers the platform knows: one registry entry each, plain data (no I/O, no partner code).

Everything that lists providers is derived from :data:`PROVIDERS`: validation of ``Provider`` and
``BankingIntegration`` values (and the enums of the OpenAPI document), the lender's default waterfall order,
the partner webhook route (``POST /webhooks/<key>``), the console's and the portal's labels, and the
adapters the composition root builds. Adding a provider is one adapter module under
``chalicelib/adapters/providers/`` (see README, "Adding a bank-link provider") and one entry here.

The entry names its adapter module as a string: the module (and its HTTP and crypto imports) loads only
where a client or a webhook verifier is built, never at a cold start that does not need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic_core import PydanticCustomError, core_schema

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue


@dataclass(frozen=True)
class ProviderSetting:
    """A non-secret value a provider needs from the deployment (an account id, its API's base URL).

    The setting ``<key>_<name>`` of chalicelib/config.py (variable ``<KEY>_<NAME>``) and the template's parameter
    of the same name in CamelCase (infra/package.py).
    """

    name: str
    description: str
    default: str | None = None
    """The template's default; None makes the parameter required at deploy time."""
    local: str = ""
    """The local stacks' value when there is no ``default`` (starts with ``local-``: production refuses it)."""
    required: bool = True
    """Production refuses to start with it empty or at a ``local-`` placeholder (the template: MinLength 1)."""


@dataclass(frozen=True)
class ProviderSecret:
    """A secret a provider needs: the Secrets Manager secret ``<key>-<name>`` (chalicelib/config.py ``SECRETS``), its
    ARN in ``<KEY>_<NAME>_ARN``, readable by the functions that call the partner (``webhook``: only by the one that
    checks its webhooks)."""

    name: str
    description: str
    local: str
    """The embedded stack's value (and the provider sandbox's); starts with ``local-``."""
    webhook: bool = False


@dataclass(frozen=True)
class ProviderInfo:
    key: str
    """In the API, in stored records and in the webhook URL (``/webhooks/<key>``): lowercase, never renamed."""
    name: str
    """What customers read on the portal ("Continue at <name>")."""
    adapter: str
    """The adapter module (``chalicelib.adapters.providers.<key>``); its ``adapter(settings, read_secret)`` builds
    the client and the webhook verifier."""
    webhook_summary: str
    """The OpenAPI summary of its webhook route (how the partner authenticates its calls)."""
    short_name: str = ""
    """What lenders read in the console (defaults to :attr:`name`)."""
    alone: bool = True
    """Whether a lender may choose it as the only banking integration (otherwise only inside the waterfall)."""
    default: bool = True
    """Whether a new lender's waterfall includes it (in registry order)."""
    settings: tuple[ProviderSetting, ...] = ()
    secrets: tuple[ProviderSecret, ...] = ()

    @property
    def label(self) -> str:
        return self.short_name or self.name


# The registry: the order is the default waterfall order and the order of every list shown.
PROVIDERS: dict[str, ProviderInfo] = {
    info.key: info
    for info in (
        ProviderInfo(
            key="plaid",
            name="Plaid",
            adapter="chalicelib.adapters.providers.plaid",
            webhook_summary="Plaid Link webhook (Plaid-Verification JWT)",
            settings=(
                ProviderSetting("base_url", "Plaid environment.", default="https://sandbox.plaid.com", required=False),
                ProviderSetting("client_id", "Plaid client id.", local="local-client"),
            ),
            # Plaid's webhooks are checked with a key fetched with the API credentials: no webhook secret.
            secrets=(ProviderSecret("secret", "Plaid secret.", local="local-secret"),),
        ),
        ProviderInfo(
            key="finicity",
            name="Mastercard Open Banking (Finicity)",
            short_name="Finicity",
            adapter="chalicelib.adapters.providers.finicity",
            webhook_summary="Finicity Connect webhook (HMAC-SHA256)",
            settings=(
                ProviderSetting(
                    "base_url", "Mastercard Open Banking API.", default="https://api.finicity.com", required=False
                ),
                ProviderSetting("partner_id", "Mastercard Open Banking partner id.", local="local-partner"),
            ),
            secrets=(
                ProviderSecret("app-key", "Mastercard Open Banking app key.", local="local-app-key"),
                ProviderSecret(
                    "partner-secret", "Mastercard Open Banking partner secret.", local="local-partner-secret"
                ),
                ProviderSecret(
                    "webhook-secret",
                    "Key of the HMAC on Mastercard Open Banking webhooks (at least 32 characters).",
                    local="local-finicity-secret",
                    webhook=True,
                ),
            ),
        ),
        ProviderInfo(
            key="mx",
            name="MX",
            adapter="chalicelib.adapters.providers.mx",
            webhook_summary="MX Connect webhook (basic auth)",
            settings=(
                ProviderSetting(
                    "base_url", "MX Platform API environment.", default="https://int-api.mx.com", required=False
                ),
                ProviderSetting("client_id", "MX client id.", local="local-client"),
                ProviderSetting("webhook_username", "Basic-auth user of MX webhooks.", default="mx"),
            ),
            secrets=(
                ProviderSecret("api-key", "MX Platform API key.", local="local-key"),
                ProviderSecret(
                    "webhook-password",
                    "Basic-auth password of MX webhooks (at least 32 characters).",
                    local="local-mx-password",
                    webhook=True,
                ),
            ),
        ),
    )
}

WATERFALL = "waterfall"


def known() -> list[str]:
    """Every provider key, in registry order."""
    return list(PROVIDERS)


def info(key: str) -> ProviderInfo | None:
    return PROVIDERS.get(key)


def label(key: str) -> str:
    """The console's name of a provider; a key no longer registered (old records) shows as itself."""
    found = PROVIDERS.get(key)
    return found.label if found else key


def customer_name(key: str) -> str:
    """The portal's name of a provider; a key no longer registered (old records) shows as itself."""
    found = PROVIDERS.get(key)
    return found.name if found else key


def default_order() -> list[Provider]:
    """A new lender's waterfall: every default provider, in registry order."""
    return [Provider(p.key) for p in PROVIDERS.values() if p.default] or [Provider(k) for k in PROVIDERS]


def banking_integrations() -> list[str]:
    """``waterfall`` and every provider a lender may choose alone."""
    return [WATERFALL, *(p.key for p in PROVIDERS.values() if p.alone)]


def describe_integrations(schema: dict[str, Any]) -> None:
    """The documented description of an invitation's ``banking_integration`` (the registry's choices)."""
    choices = [k for k in banking_integrations() if k != WATERFALL]
    listed = choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
    schema["description"] = f"{WATERFALL} (the lender's default), {listed}"


def _expected(values: Iterable[str]) -> str:
    """pydantic's wording for an enum: ``'a', 'b' or 'c'`` (clients and tests read the message)."""
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class _RegistryValue(str):
    """A string validated against the registry *when validated*, so a provider registered later (a test's
    fake) is accepted and documented without redefining any model. Constructing one directly does not
    check: stored records of a provider since removed still load."""

    __slots__ = ()

    @classmethod
    def allowed(cls) -> list[str]:
        raise NotImplementedError

    @classmethod
    def parse(cls, value: Any) -> Any:
        allowed = cls.allowed()
        if value not in allowed:
            raise PydanticCustomError("enum", "Input should be {expected}", {"expected": _expected(allowed)})
        return cls(value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls.parse,
            core_schema.str_schema(),
            ref=cls.__name__,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json-unless-none"),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"enum": cls.allowed(), "title": cls.__name__, "type": "string"}


class Provider(_RegistryValue):
    """A registered bank-link provider's key (``plaid``, ...)."""

    __slots__ = ()

    @classmethod
    def allowed(cls) -> list[str]:
        return known()


class BankingIntegration(_RegistryValue):
    """How an invitation links a bank: ``waterfall`` (the lender's order) or one provider a lender may choose alone."""

    __slots__ = ()
    WATERFALL: ClassVar[BankingIntegration]

    @classmethod
    def allowed(cls) -> list[str]:
        return banking_integrations()


BankingIntegration.WATERFALL = BankingIntegration(WATERFALL)
