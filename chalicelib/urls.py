"""Every public address the product hands out, built in one place from settings, never from a request.

Two forms exist for a lender's own pages (join page, console, a customer's account):

- the host form, in production (``HOST_BASED_LINKS=true``): ``https://{label}.{base domain}/...``, where the base
  domain follows the lender's data residency (``BASE_DOMAIN_US`` or ``BASE_DOMAIN_CA``);
- the path form, locally and wherever no wildcard domain is routed: ``{PUBLIC_BASE_URL}/t/{lender}/join``,
  ``{PUBLIC_BASE_URL}/a/{account}/login``, ``{PUBLIC_BASE_URL}/console/...``.

Everything else (portal links, provider webhooks and redirects, sender verification) lives under the API's public
base URL. A Host header may only *choose* between these forms (``host_label``); it never becomes part of an address.
tests/unit/test_urls.py fails when another module builds a public address itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.domain.tenant import Tenant

# A DNS label: a lender's subdomain or a customer account's name.
HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class PublicUrls:
    """The product's public addresses, from ``PUBLIC_BASE_URL``, the base domains and ``HOST_BASED_LINKS``."""

    def __init__(self, settings: Settings) -> None:
        self.api = str(settings.public_base_url).rstrip("/")
        self.host_based = settings.host_based_links
        self._domains = {"us": settings.base_domain_us, "ca": settings.base_domain_ca}

    # --- the API's own addresses ---------------------------------------------------------------
    def portal(self, token: str) -> str:
        """The customer's portal link (the token is a bearer secret: only ever sent to the customer)."""
        return f"{self.api}/portal/{token}"

    @property
    def portal_return(self) -> str:
        """Where a bank-link provider sends the customer back (never carries the portal token)."""
        return f"{self.api}/portal/return"

    def webhook(self, provider: str) -> str:
        """Where a bank-link provider posts its webhooks."""
        return f"{self.api}/webhooks/{provider}"

    def verification(self, tenant_id: str, token: str) -> str:
        """The link that confirms a lender's sender address."""
        return f"{self.api}/verify/{tenant_id}/{token}"

    # --- a lender's hosts ----------------------------------------------------------------------
    def base_domain(self, data_residency: str) -> str:
        return self._domains["ca"] if data_residency == "ca" else self._domains["us"]

    def host(self, label: str, data_residency: str) -> str:
        """``https://{label}.{base domain}``: a lender's or a customer account's own host."""
        return f"https://{label}.{self.base_domain(data_residency)}"

    def console(self, tenant: Tenant, path: str = "/console/login") -> str:
        """A console page of the lender: on its own host in production, the path form locally."""
        if self.host_based:
            return f"{self.host(tenant.subdomain, tenant.data_residency)}{path}"
        return f"{self.api}{path}"

    def staff_link(self, tenant: Tenant, page: str, token: str) -> str:
        """A teammate's one-time link (``page``: ``accept`` or ``reset``), on the lender's console host."""
        return self.console(tenant, f"/console/{page}/{token}")

    def join(self, tenant: Tenant) -> str:
        """The lender's join page."""
        if self.host_based:
            return f"{self.host(tenant.subdomain, tenant.data_residency)}/join"
        return f"{self.api}/t/{tenant.subdomain}/join"

    def join_confirmation(self, tenant: Tenant, token: str) -> str:
        """The email-confirmation link of a sign-up on the lender's join page."""
        return f"{self.join(tenant)}/confirm/{token}"

    # --- a customer's account ------------------------------------------------------------------
    def account(self, tenant: Tenant, account_subdomain: str) -> str:
        """The root of a customer's account pages (no trailing slash)."""
        if self.host_based:
            return self.host(account_subdomain, tenant.data_residency)
        return f"{self.api}/a/{account_subdomain}"

    def account_login(self, tenant: Tenant, account_subdomain: str) -> str:
        return f"{self.account(tenant, account_subdomain)}/login"

    def signed_in_portal(self, origin: str | None) -> str:
        """The portal of a signed-in customer: on the account's host when ``origin`` is it, else the API's."""
        return f"{origin or self.api}/portal"

    def api_path(self, path: str, origin: str | None = None) -> str:
        """``path`` under the API's base URL, or under ``origin`` (an account host from ``account_origin``)."""
        return f"{origin or self.api}{path}"

    def account_origin(self, tenant: Tenant, account_subdomain: str | None, host: str) -> str | None:
        """``https://{account}.{base domain}`` when the request's Host is that account's host, else None.

        The address is built from settings and the account's name; the Host header only tells which of the two
        places sign-in put the session cookie (that host, or the API's base URL)."""
        if not account_subdomain:
            return None
        expected = f"{account_subdomain}.{self.base_domain(tenant.data_residency)}".lower()
        return self.host(account_subdomain, tenant.data_residency) if _bare_host(host) == expected else None

    # --- reading a Host header -----------------------------------------------------------------
    def host_label(self, host: str) -> tuple[str, str] | None:
        """(label, residency) when ``host`` (a Host header) is ``<label>.<base domain>``: the host form of a
        lender's pages (join page, console) or a customer account's; None for any other host."""
        host = _bare_host(host)
        for residency, domain in self._domains.items():
            suffix = "." + domain.lower()
            if host.endswith(suffix):
                label = host[: -len(suffix)]
                if HOST_LABEL.match(label):
                    return label, residency
        return None


def _bare_host(host: str) -> str:
    """A Host header without port or trailing dot, lower-cased."""
    host = host.strip().lower()
    return (host.rsplit(":", 1)[0] if ":" in host else host).rstrip(".")
