"""Random join forms (POST /t/{subdomain}/join, or /signup when there is no join page): never a
5xx, and a refused form stores nothing."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.helpers import FUZZ, stored
from tests.integration.helpers import call

emails = st.one_of(
    st.emails().map(str),
    st.text(max_size=80),
    st.sampled_from(["", "a@b", "@x.com", "jane@smallbiz.example", "JANE@SMALLBIZ.EXAMPLE ", "a@b.c" * 60]),
)
texts = st.one_of(st.text(max_size=120), st.sampled_from(["", " ", "Jane's Bakery", "x" * 301, "<script>"]))
subdomains = st.one_of(st.from_regex(r"[a-z0-9-]{0,70}", fullmatch=True), st.text(max_size=40), st.just("www"))
passwords = st.one_of(st.text(max_size=100), st.sampled_from(["", "short", "correct horse battery staple"]))


def test_join_form_refuses_bad_input_without_a_5xx_or_a_trace(client: Any, aws: dict[str, str], lender: dict) -> None:
    from app import app

    key = lender["api_key"]
    subdomain = lender["tenant"]["subdomain"]
    # Open joining (no invitation needed) so the form reaches the account logic, not only the list check.
    status, _ = call(client, "PATCH", "/v1/tenant/settings", key, {"require_invitation": False})
    assert status == 200
    path = f"/t/{subdomain}/join" if "/t/{subdomain}/join" in app.routes else "/signup"
    csrf = secrets.token_urlsafe(32)

    @FUZZ
    @given(
        email=emails,
        business=texts,
        password=passwords,
        account=subdomains,
        with_csrf=st.booleans(),
        junk=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
    )
    def check(email: str, business: str, password: str, account: str, with_csrf: bool, junk: dict[str, str]) -> None:
        form = {
            **junk,
            "email": email,
            "business_name": business,
            "password": password,
            "account_subdomain": account,
            "csrf_token": csrf if with_csrf else "",
        }
        before = stored(aws["TABLE_NAME"])
        response = client.http.post(
            path,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrf={csrf}"},
            body=urlencode(form),
        )

        assert response.status_code < 500, (response.status_code, response.body[:300])
        if response.status_code >= 400:
            assert stored(aws["TABLE_NAME"]) == before, "a refused join stored something"

    check()
