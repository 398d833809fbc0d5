"""The portal's forms as a customer meets them: errors next to the field in human words, what was typed kept,
a confirmation after success, each step's ✓, status words instead of raw values."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.integration.helpers import call
from tests.integration.test_portal import hdr, invitation, post_form


@pytest.fixture
def key(lender: dict[str, Any]) -> str:
    return str(lender["api_key"])


def text(response: Any) -> str:
    return html.unescape(response.body.decode())


def field_input(page: str, name: str) -> str:
    found = re.search(rf'<input id="{name}"[^>]*>', page)
    assert found is not None, f"no input {name}"
    return found.group(0)


def test_contact_errors_stand_by_their_field_in_words_and_keep_what_was_typed(client: Any, key: str) -> None:
    inv_id, token = invitation(client, key, last_name="Doe")
    bad = post_form(client, f"/portal/{token}/contact", {"first_name": "", "last_name": "Doe", "phone": "hello"})
    assert bad.status_code == 400
    page = text(bad)
    # The summary links each field; the message stands by the field, which is marked invalid.
    assert 'href="#phone"' in page and 'href="#first_name"' in page
    assert (
        '<p class="field-error" id="phone-error">Mobile phone: enter a mobile number, e.g. +1 514 555 0123</p>' in page
    )
    assert '<p class="field-error" id="first_name-error">First name: enter your first name</p>' in page
    phone = field_input(page, "phone")
    assert 'aria-invalid="true"' in phone and 'value="hello"' in phone and "phone-error" in phone
    first = field_input(page, "first_name")
    assert 'aria-invalid="true"' in first and 'value=""' in first
    assert "aria-invalid" not in field_input(page, "last_name")
    assert "please check" not in page
    # Nothing was saved.
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert (inv["first_name"], inv["phone"]) == ("Jo", None)


def test_contact_errors_in_french(client: Any, key: str) -> None:
    _, token = invitation(client, key, locale="fr")
    page = text(post_form(client, f"/portal/{token}/contact", {"first_name": "Jo", "last_name": "", "phone": "123"}))
    assert "Téléphone mobile\u00a0: entrez un numéro de mobile, par exemple +1 514 555 0123" in page
    assert "Nom\u00a0: entrez votre nom de famille" in page


def test_saved_details_are_confirmed_and_the_step_gets_its_tick(client: Any, key: str) -> None:
    _, token = invitation(client, key)
    before = text(client.http.get(f"/portal/{token}"))
    assert 'data-step="contact" data-done="false"' in before
    ok = post_form(
        client, f"/portal/{token}/contact", {"first_name": "Joanne", "last_name": "Doe", "phone": "514 555 0199"}
    )
    assert ok.status_code == 303
    after = text(client.http.get(hdr(ok, "location").split("#")[0]))
    assert 'role="status"' in after and "Details saved." in after
    assert 'data-step="contact" data-done="true"' in after
    # The tick stays on later visits; the notice only right after saving.
    later = text(client.http.get(f"/portal/{token}"))
    assert 'data-step="contact" data-done="true"' in later and "Details saved." not in later


def test_the_json_api_keeps_its_field_names(client: Any, key: str) -> None:
    _, token = invitation(client, key)
    status, err = call(client, "POST", f"/portal/{token}/contact", body={"phone": "hello"})
    assert status == 400 and set(err["error"]["fields"]) == {"phone"}
