"""Every public address comes from one builder (chalicelib/urls.py): the path form locally, the lender's own host
(by data residency) in production, and a Host header that only chooses between them, never becomes an address."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.domain.tenant import Tenant
from chalicelib.urls import PublicUrls

ROOT = Path(__file__).resolve().parents[2]
# The builder itself, and the partners' API clients (their own base URLs, not ours).
ALLOWED = {ROOT / "chalicelib" / "urls.py", ROOT / "chalicelib" / "config.py"}
PARTNER_CLIENTS = ROOT / "chalicelib" / "adapters" / "providers"
# The settings an address is made of: only the builder reads them.
ADDRESS_SETTINGS = {"public_base_url", "base_domain_us", "base_domain_ca", "host_based_links"}


def urls(host_based: bool = False) -> PublicUrls:
    return Settings(
        stage="test",
        public_base_url="https://api.example.com/",  # type: ignore[arg-type]
        base_domain_us="onboard.example",
        base_domain_ca="onboard.example.ca",
        host_based_links=host_based,
    ).urls


def lender(residency: str = "us") -> Tenant:
    return Tenant(
        tenant_id="ten_1",
        name="Acme Lending",
        subdomain="acme",
        admin_email="admin@acme.example",
        data_residency=residency,  # type: ignore[arg-type]
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_path_form_puts_everything_under_the_public_base_url() -> None:
    built = urls()
    tenant = lender("ca")
    assert built.portal("tok") == "https://api.example.com/portal/tok"
    assert built.portal_return == "https://api.example.com/portal/return"
    assert built.webhook("plaid") == "https://api.example.com/webhooks/plaid"
    assert built.verification("ten_1", "tok") == "https://api.example.com/verify/ten_1/tok"
    assert built.join(tenant) == "https://api.example.com/t/acme/join"
    assert built.join_confirmation(tenant, "tok") == "https://api.example.com/t/acme/join/confirm/tok"
    assert built.console(tenant) == "https://api.example.com/console/login"
    assert built.staff_link(tenant, "reset", "tok") == "https://api.example.com/console/reset/tok"
    assert built.account_login(tenant, "jane") == "https://api.example.com/a/jane/login"
    assert built.signed_in_portal(None) == "https://api.example.com/portal"


@pytest.mark.parametrize(("residency", "domain"), [("us", "onboard.example"), ("ca", "onboard.example.ca")])
def test_the_host_form_uses_the_lenders_residency_domain(residency: str, domain: str) -> None:
    built = urls(host_based=True)
    tenant = lender(residency)
    assert built.join(tenant) == f"https://acme.{domain}/join"
    assert built.join_confirmation(tenant, "tok") == f"https://acme.{domain}/join/confirm/tok"
    assert built.console(tenant) == f"https://acme.{domain}/console/login"
    assert built.staff_link(tenant, "accept", "tok") == f"https://acme.{domain}/console/accept/tok"
    assert built.account_login(tenant, "jane") == f"https://jane.{domain}/login"
    # The API's own addresses never move to a lender's host.
    assert built.portal("tok") == "https://api.example.com/portal/tok"
    assert built.webhook("mx") == "https://api.example.com/webhooks/mx"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("acme.onboard.example", ("acme", "us")),
        ("ACME.onboard.example.:443", ("acme", "us")),
        ("acme.onboard.example.ca", ("acme", "ca")),
        ("a.b.onboard.example", None),  # not one DNS label
        ("-acme.onboard.example", None),
        ("onboard.example", None),
        ("acme.evil.example", None),
        ("acme.onboard.example.evil.example", None),
        ("", None),
    ],
)
def test_a_host_header_is_read_as_a_label_of_a_base_domain_or_nothing(
    host: str, expected: tuple[str, str] | None
) -> None:
    assert urls().host_label(host) == expected


def test_an_account_origin_is_built_from_settings_and_only_chosen_by_the_host() -> None:
    built = urls()
    tenant = lender("ca")
    assert built.account_origin(tenant, "jane", "Jane.onboard.example.ca:443") == "https://jane.onboard.example.ca"
    assert built.account_origin(tenant, "jane", "jane.onboard.example") is None  # the other residency's domain
    assert built.account_origin(tenant, "jane", "api.example.com") is None
    assert built.account_origin(tenant, None, "jane.onboard.example.ca") is None
    origin = built.account_origin(tenant, "jane", "jane.onboard.example.ca")
    assert built.signed_in_portal(origin) == "https://jane.onboard.example.ca/portal"
    assert built.api_path("/portal/documents/d1/complete", origin) == (
        "https://jane.onboard.example.ca/portal/documents/d1/complete"
    )


def address_builders(path: Path) -> list[str]:
    """Where a module builds a public address itself: an f-string that starts with a scheme, a read of the settings
    an address is made of, or the API's base URL taken out of the builder to append to."""
    where = path.relative_to(ROOT) if ROOT in path.parents else path.name
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith(("http://", "https://")):
                found.append(f"{where}:{node.lineno}: f-string starting with a scheme")
        elif isinstance(node, ast.Attribute) and node.attr in ADDRESS_SETTINGS:
            found.append(f"{where}:{node.lineno}: reads settings.{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr in ("base_url", "api"):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in ("settings", "urls"):
                found.append(f"{where}:{node.lineno}: takes {name}.{node.attr} to build on")
    return found


def modules() -> list[Path]:
    return [
        path
        for path in sorted([*(ROOT / "chalicelib").rglob("*.py"), ROOT / "app.py"])
        if path not in ALLOWED and PARTNER_CLIENTS not in path.parents
    ]


def test_no_module_but_the_builder_builds_a_public_address() -> None:
    offenders = [line for path in modules() for line in address_builders(path)]
    assert not offenders, offenders


def test_the_guard_sees_an_address_built_by_hand(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def link(settings, urls, t):\n"
        '    a = f"https://{t}.example/join"\n'
        '    b = f"{settings.base_url}/portal/{t}"\n'
        '    c = f"{urls.api}/verify/{t}"\n'
        "    return settings.base_domain_ca, a, b, c\n"
    )
    assert len(address_builders(sample)) == 4
