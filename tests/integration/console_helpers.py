"""A tiny browser for console tests over chalice.test.Client: it keeps cookies and fills in each
form's CSRF token the way a page would, so tests speak in pages and forms."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    status: int
    headers: dict[str, Any]
    text: str

    @property
    def location(self) -> str:
        return str(self.headers.get("Location") or self.headers.get("location") or "")

    def csrf(self) -> str:
        found = CSRF.search(self.text)
        assert found, "the page has no form with a CSRF token"
        return found.group(1)


@dataclass
class Browser:
    client: Any
    cookies: dict[str, str] = field(default_factory=dict)
    ip: str = "127.0.0.1"

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep(self, response: Any) -> Page:
        raw = response.headers.get("Set-Cookie") or response.headers.get("set-cookie") or []
        for line in [raw] if isinstance(raw, str) else raw:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in line or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        body = response.body.decode() if isinstance(response.body, bytes) else (response.body or "")
        return Page(response.status_code, dict(response.headers), body)

    def get(self, path: str) -> Page:
        return self._keep(self.client.http.get(path, headers=self._headers()))

    def post(self, path: str, form: dict[str, Any] | list[tuple[str, str]], csrf: str | None = None) -> Page:
        pairs = list(form.items()) if isinstance(form, dict) else list(form)
        if csrf is not None:
            pairs.append(("csrf_token", csrf))
        return self._keep(
            self.client.http.post(
                path,
                headers=self._headers({"Content-Type": "application/x-www-form-urlencoded"}),
                body=urlencode(pairs),
            )
        )

    def submit(self, form_page: str, action: str | None, form: dict[str, Any] | list[tuple[str, str]]) -> Page:
        """GET ``form_page``, then POST ``form`` to ``action`` (or the same path) with its CSRF token."""
        shown = self.get(form_page)
        assert shown.status == 200, (shown.status, shown.text[:500])
        return self.post(action or form_page, form, shown.csrf())


def sign_up(client: Any, subdomain: str | None = None, email: str | None = None) -> tuple[Browser, dict[str, str]]:
    """A lender signs up on /signup: returns its first admin's browser (signed in) and the details."""
    browser = Browser(client)
    details = {
        "name": "Acme Lending",
        "subdomain": subdomain or f"acme-{uuid.uuid4().hex[:6]}",
        "admin_email": email or f"ops-{uuid.uuid4().hex[:6]}@acme-lending.com",
        "admin_name": "Olivia Officer",
        "password": PASSWORD,
        "data_residency": "us",
    }
    posted = browser.submit("/signup", None, details)
    assert posted.status == 303 and posted.location == "/signup/done", posted.text[:2000]
    done = browser.get(posted.location)
    assert done.status == 200, done.text[:2000]
    found = re.search(r'id="api-key">([^<]+)<', done.text)
    assert found
    details["api_key"] = found.group(1)
    return browser, details


def csrf_of(browser: Browser, path: str = "/console/invitations") -> str:
    return browser.get(path).csrf()


def selected_owner(browser: Browser) -> str:
    """The staff id the add-customer form picks as owner (the signed-in member)."""
    found = re.search(r'<option value="(stf_[0-9A-Za-z]+)" selected>', browser.get("/console/invitations/new").text)
    assert found, "no owner selected on the add-customer form"
    return found.group(1)
