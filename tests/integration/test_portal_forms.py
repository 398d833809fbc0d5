"""The portal's forms as a customer meets them: errors next to the field in human words, what was typed kept,
a confirmation after success, each step's ✓, status words instead of raw values."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import requests

from chalicelib.domain.invitation import utcnow
from tests.integration.console_helpers import sign_up
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
        '<p class="field-error" id="phone-error">Mobile phone: enter a mobile number, e.g. +1\u00a0514\u00a0555\u00a00123</p>'
        in page
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
    _, token = invitation(client, key, locale="fr", last_name="Roy")
    page = text(post_form(client, f"/portal/{token}/contact", {"first_name": "Jo", "last_name": "", "phone": "123"}))
    # The example number never breaks across lines on a phone (walk-through #27).
    assert "Téléphone mobile\u00a0: entrez un numéro de mobile, par exemple +1\u00a0514\u00a0555\u00a00123" in page
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


def browser_upload(client: Any, token: str, filename: str) -> str:
    """Press "Upload a document" on the portal: the upload page's document id."""
    page = post_form(client, f"/portal/{token}/documents", {"content_type": "application/pdf", "filename": filename})
    assert page.status_code == 200
    found = re.search(r"/documents/(doc_[0-9A-Za-z]+)/complete", page.body.decode())
    assert found
    return found.group(1)


def send_file(client: Any, token: str, body: bytes) -> str:
    """A file posted straight to S3 through the JSON API's presigned POST, not yet confirmed."""
    status, upload = call(
        client,
        "POST",
        f"/portal/{token}/documents",
        body={"filename": "stmt.pdf", "content_type": "application/pdf", "size": len(body)},
    )
    assert status == 200, upload
    posted = requests.post(upload["url"], data=upload["fields"], files={"file": ("stmt.pdf", body)}, timeout=5)
    assert posted.status_code in (200, 201, 204), posted.text
    return str(upload["document_id"])


def test_abandoned_uploads_go_once_their_upload_link_expired_and_sizes_are_of_real_files(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser, details = sign_up(client)
    key = details["api_key"]
    inv_id, token = invitation(client, key)
    browser_upload(client, token, "statement-oct.pdf")
    browser_upload(client, token, "empty.pdf")
    arrived = send_file(client, token, b"%PDF-1.7\n" + b"x" * 36)  # 45 bytes
    assert call(client, "POST", f"/portal/{token}/documents/{arrived}/complete", body={})[0] == 200
    late = send_file(client, token, b"%PDF-1.7\n" + b"y" * 2991)  # 3000 bytes, sent but never confirmed

    portal = text(client.http.get(f"/portal/{token}"))
    assert "statement-oct.pdf – waiting for the file" in portal  # its upload link still works
    assert "stmt.pdf – uploaded (45 bytes)" in portal
    detail = browser.get(f"/console/invitations/{inv_id}").text
    assert "25600.0 KB" not in detail and "45 bytes" in detail

    # Past the presigned POST's expiry, a slot that never got its file is gone; one whose file came is uploaded.
    later = utcnow() + timedelta(minutes=30)
    monkeypatch.setattr("chalicelib.services.portal.utcnow", lambda: later)
    portal = text(client.http.get(f"/portal/{token}"))
    assert "waiting for the file" not in portal and "statement-oct.pdf" not in portal and "empty.pdf" not in portal
    assert portal.count("stmt.pdf – uploaded") == 2 and "2.9 KB" in portal
    _, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert sorted((d["document_id"], d["state"], d["size"]) for d in docs["items"]) == sorted(
        [(arrived, "uploaded", 45), (late, "uploaded", 3000)]
    )
    detail = browser.get(f"/console/invitations/{inv_id}").text
    assert "statement-oct.pdf" not in detail and "45 bytes" in detail and "2.9 KB" in detail


def test_the_customer_removes_an_upload_whose_file_never_came(client: Any, key: str) -> None:
    """Walk-through #5: an abandoned "Upload a document" waited 20 minutes in the list with no way to remove it.
    Each pending upload has a Remove button; an uploaded file has none. A removed slot takes no file later."""
    inv_id, token = invitation(client, key)
    abandoned = browser_upload(client, token, "statement-oct.pdf")
    arrived = send_file(client, token, b"%PDF-1.7\n" + b"x" * 36)
    assert call(client, "POST", f"/portal/{token}/documents/{arrived}/complete", body={})[0] == 200
    portal = text(client.http.get(f"/portal/{token}"))
    assert f'action="/portal/{token}/documents/{abandoned}/remove"' in portal
    assert f"/documents/{arrived}/remove" not in portal  # a file that arrived stays

    removed = post_form(client, f"/portal/{token}/documents/{abandoned}/remove", {})
    assert removed.status_code == 303 and hdr(removed, "Location") == f"/portal/{token}#documents"
    portal = text(client.http.get(f"/portal/{token}"))
    assert "statement-oct.pdf" not in portal and "stmt.pdf – uploaded" in portal
    _, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert [d["document_id"] for d in docs["items"]] == [arrived]
    # Removing again, or removing a file that arrived, changes nothing and says why.
    assert post_form(client, f"/portal/{token}/documents/{abandoned}/remove", {}).status_code == 303
    refused = post_form(client, f"/portal/{token}/documents/{arrived}/remove", {})
    assert refused.status_code == 409
    _, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert [d["document_id"] for d in docs["items"]] == [arrived]
    # A removed slot's upload link may still be used before it expires: the file is refused, not listed.
    late = removed_slot_with_its_file(client, token)
    status, err = call(client, "POST", f"/portal/{token}/documents/{late}/complete", body={})
    assert status == 409 and "removed" in err["error"]["message"], err
    _, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert [d["document_id"] for d in docs["items"]] == [arrived]


def test_file_sizes_read_like_sizes() -> None:
    from chalicelib.web import file_size

    assert [file_size(n, "en") for n in (1, 45, 1023, 1024, 3000, 25 * 2**20)] == [
        "1 byte",
        "45 bytes",
        "1023 bytes",
        "1 KB",
        "2.9 KB",
        "25 MB",
    ]
    assert [file_size(n, "fr") for n in (45, 3000, 1536 * 1024)] == ["45 octets", "2,9 Ko", "1,5 Mo"]


def test_logo_and_webhook_addresses_must_be_https(client: Any, key: str) -> None:
    for body in (
        {"branding": {"logo_url": "http://insecure.example/logo.png"}},
        {"webhook_url": "http://crm.example/hooks"},
    ):
        status, err = call(client, "PATCH", "/v1/tenant/settings", key, body)
        assert status == 400, err
        assert "https" in str(err["error"]["fields"]), err
    # A loopback http address stays possible for a local receiver; the webhook sender refuses loopback
    # addresses outside the local stage, so it can never reach one in production.
    status, saved = call(client, "PATCH", "/v1/tenant/settings", key, {"webhook_url": "http://127.0.0.1:9/hooks"})
    assert status == 200, saved
    status, saved = call(
        client,
        "PATCH",
        "/v1/tenant/settings",
        key,
        {"branding": {"logo_url": "https://cdn.example/logo.png"}, "webhook_url": "https://crm.example/hooks"},
    )
    assert status == 200 and saved["webhook_url"] == "https://crm.example/hooks", saved


def test_the_logo_has_an_empty_alt_beside_the_lenders_name(client: Any, key: str) -> None:
    """A logo that fails to load must not print the lender's name a second time next to the name."""
    assert (
        call(client, "PATCH", "/v1/tenant/settings", key, {"branding": {"logo_url": "https://cdn.example/l.png"}})[0]
        == 200
    )
    _, token = invitation(client, key)
    page = client.http.get(f"/portal/{token}").body.decode()
    assert '<img src="https://cdn.example/l.png" alt="">' in page
    assert '<span class="brand">Acme Lending</span>' in page


def test_a_logo_saved_over_http_before_the_rule_is_not_shown(client: Any, key: str) -> None:
    from chalicelib import bootstrap
    from chalicelib.domain.tenant import Branding

    s = bootstrap.services()
    tenant = s.tenants.authenticate(f"Bearer {key}")
    stored = tenant.settings.model_copy(update={"branding": Branding(logo_url="http://insecure.example/logo.png")})
    s.tenant_repo.save_settings(tenant.tenant_id, stored, {"branding"})
    _, token = invitation(client, key)
    page = client.http.get(f"/portal/{token}").body.decode()
    assert "insecure.example" not in page and "<img" not in page


def test_the_customer_reads_status_words_not_raw_values(client: Any, key: str) -> None:
    from chalicelib.api.portal import TEXT, status_words

    _, token = invitation(client, key)
    page = text(client.http.get(f"/portal/{token}"))
    assert "Status: Started" in page and "Status: opened" not in page
    _, token_fr = invitation(client, key, email="fr@smallbiz.com", locale="fr")
    assert "Statut : Commencé" in text(client.http.get(f"/portal/{token_fr}")).replace("\u00a0", " ")
    # Every status, outcome and reason has words in both languages (no raw value can reach the page).
    from chalicelib.domain.invitation import PortalStatus

    raw = [s.value for s in PortalStatus] + ["pending", "linked", "failed"]
    raw += ["institution_not_supported", "user_exited", "provider_error", "timeout"]
    for locale in TEXT:
        shown = status_words(locale)
        assert all(shown.get(value) and "_" not in shown[value] for value in raw), locale


def test_preparing_the_bank_link_refreshes_by_itself_a_bounded_number_of_times(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import bootstrap
    from chalicelib.domain.waterfall import Attempt, AttemptState, Provider

    real_state = type(bootstrap.portal()).state
    link: list[str | None] = [None]

    def preparing(self: Any, ctx: Any, *, active: bool = True) -> Any:
        attempt = Attempt(
            attempt=1,
            state=AttemptState.RUNNING,
            providers=[Provider("plaid")],
            started_at=utcnow(),
            execution_name="x-1",
            current_provider=Provider("plaid"),
            link_url=link[0],
        )
        return real_state(self, ctx, active=active).model_copy(update={"bank_link": attempt})

    monkeypatch.setattr(type(bootstrap.portal()), "state", preparing)
    _, token = invitation(client, key)
    first = text(client.http.get(f"/portal/{token}"))
    assert 'data-bank-link="preparing"' in first
    assert f'<meta http-equiv="refresh" content="3;url=/portal/{token}?wait=1#bank">' in first
    again = text(client.http.get(f"/portal/{token}?wait=1"))
    assert f'content="3;url=/portal/{token}?wait=2#bank"' in again
    # After a minute of tries the page stops reloading and says so; the Refresh link stays.
    last = text(client.http.get(f"/portal/{token}?wait=20"))
    assert 'http-equiv="refresh"' not in last and "taking longer than usual" in last
    assert f'href="/portal/{token}#bank"' in last
    assert client.http.get(f"/portal/{token}?wait=nonsense").status_code == 200
    # Once the provider's link is there, the page waits for the customer (a slower refresh, as before).
    link[0] = "https://plaid.test/s"
    ready = text(client.http.get(f"/portal/{token}?wait=3"))
    assert 'id="provider-link"' in ready and '<meta http-equiv="refresh" content="15">' in ready


def test_a_name_never_given_may_stay_blank(client: Any, key: str) -> None:
    inv_id, token = invitation(client, key, first_name=None)
    ok = post_form(client, f"/portal/{token}/contact", {"first_name": "", "last_name": "", "phone": "514 555 0199"})
    assert ok.status_code == 303, text(ok)
    _, inv = call(client, "GET", f"/v1/invitations/{inv_id}", key)
    assert (inv["first_name"], inv["last_name"], inv["phone"]) == (None, None, "+15145550199")


def stored_versions(document_id: str) -> list[str]:
    """Every stored version (and delete marker) of one document's object (the bucket is versioned)."""
    import boto3

    from chalicelib.bootstrap import services

    s3 = boto3.client("s3", region_name="us-east-1")
    found = s3.list_object_versions(Bucket=services().settings.documents_bucket, Prefix="tenants/")
    versions = [*found.get("Versions", []), *found.get("DeleteMarkers", [])]
    return [v["Key"] for v in versions if f"/{document_id}/" in v["Key"]]


def removed_slot_with_its_file(client: Any, token: str) -> str:
    """A slot the customer removed, whose file then arrived through its still-valid upload link."""
    status, upload = call(
        client,
        "POST",
        f"/portal/{token}/documents",
        body={"filename": "late.pdf", "content_type": "application/pdf", "size": 8},
    )
    assert status == 200, upload
    assert call(client, "POST", f"/portal/{token}/documents/{upload['document_id']}/remove", body={})[0] == 200
    posted = requests.post(upload["url"], data=upload["fields"], files={"file": ("late.pdf", b"%PDF-1.7")}, timeout=5)
    assert posted.status_code in (200, 201, 204)
    assert stored_versions(upload["document_id"])  # it arrived
    return str(upload["document_id"])


def test_a_file_that_arrives_for_a_removed_slot_is_deleted_when_its_confirmation_comes(client: Any, key: str) -> None:
    """It stayed in S3 until the customer was deleted: nobody could see it, and nobody would ever delete it."""
    _, token = invitation(client, key)
    late = removed_slot_with_its_file(client, token)
    status, err = call(client, "POST", f"/portal/{token}/documents/{late}/complete", body={})
    assert status == 409 and "removed" in err["error"]["message"], err
    assert stored_versions(late) == []
    # The browser's redirect after its upload (the form path) says the same, and deletes nothing more.
    again = client.http.get(f"/portal/{token}/documents/{late}/complete")
    assert again.status_code in (303, 409), again.status_code
    assert stored_versions(late) == []


def test_a_file_that_arrives_for_a_removed_slot_unconfirmed_is_deleted_once_its_link_expired(
    client: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The browser never came back to confirm it (closed, or another tab removed the slot): past the upload link's
    expiry the next look at the documents deletes it, once."""
    inv_id, token = invitation(client, key)
    late = removed_slot_with_its_file(client, token)
    client.http.get(f"/portal/{token}")
    assert stored_versions(late)  # its link may still be in use: not yet
    later = utcnow() + timedelta(minutes=30)
    monkeypatch.setattr("chalicelib.services.portal.utcnow", lambda: later)
    assert "late.pdf" not in text(client.http.get(f"/portal/{token}"))
    assert stored_versions(late) == []
    # Settled: later looks do not list the bucket for it again.
    from chalicelib.bootstrap import portal

    def refuse(prefix: str) -> int:
        raise AssertionError(f"{prefix} was looked at again")

    monkeypatch.setattr(portal().documents, "delete_prefix", refuse)
    assert client.http.get(f"/portal/{token}").status_code == 200
    _, docs = call(client, "GET", f"/v1/invitations/{inv_id}/documents", key)
    assert docs["items"] == []
