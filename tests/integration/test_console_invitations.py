"""Console invitation pages: add (with errors by field), list with tabs and search, detail with
history and messages, edit, portal link, bulk resend with one outcome per row, remove."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from tests.integration.console_helpers import Browser, selected_owner, sign_up
from tests.integration.helpers import drain


def add(browser: Browser, **fields: str) -> str:
    shown = browser.get("/console/invitations/new")
    owner = re.search(r'<option value="(stf_[0-9A-Za-z]+)" selected>', shown.text)
    assert owner
    form = {"owner": owner.group(1), "banking_integration": "waterfall", "channel": "email", **fields}
    form_id = re.search(r'name="form_id" value="([^"]+)"', shown.text)
    assert form_id
    done = browser.post("/console/invitations/new", {**form, "form_id": form_id.group(1)}, shown.csrf())
    assert done.status == 303, done.text[:3000]
    found = re.match(r"/console/invitations/(inv_[0-9A-Z]+)\?notice=", done.location)
    assert found, done.location
    return found.group(1)


def test_the_add_customer_form_has_the_seed_fields_and_defaults(client: Any) -> None:
    browser, _ = sign_up(client)
    page = browser.get("/console/invitations/new")
    for label in (
        "First name",
        "Last name",
        "Email",
        "Phone number",
        "Business legal name",
        "Owner",
        "Banking integration",
    ):
        assert f">{label}" in page.text, label
    assert '<option value="waterfall" selected>' in page.text
    assert re.search(r'<option value="stf_[0-9A-Za-z]+" selected>Olivia Officer</option>', page.text)
    assert 'name="channel" value="email" checked' in page.text
    assert 'value="sms"' in page.text and 'value="both"' in page.text


def test_email_and_owner_alone_carry_the_required_marker(client: Any) -> None:
    # The help page: "The only required fields are Email and Owner". Both labels carry the same marker.
    browser, _ = sign_up(client)
    page = browser.get("/console/invitations/new").text
    marked = re.findall(r'<label for="(\w+)">[^<]*<span class="muted">\(required\)</span></label>', page)
    assert marked == ["email", "owner"]


def test_the_waterfall_option_is_short_and_its_hint_names_the_order(client: Any) -> None:
    # A select cannot wrap its option: at 390 px "Waterfall: Plaid, then Finicity, then MX (recommended)" was cut
    # off. The option says what it is; the hint under the label (which wraps) names the lender's order.
    browser, _ = sign_up(client)
    page = html.unescape(browser.get("/console/invitations/new").text)
    assert '<option value="waterfall" selected>Waterfall (recommended)</option>' in page
    hint = re.search(r'<p class="hint" id="banking_integration-hint">([^<]+)</p>', page)
    assert hint and "Plaid, then Finicity, then MX" in hint.group(1), hint


def test_errors_are_summarised_and_shown_next_to_each_field(client: Any) -> None:
    browser, _ = sign_up(client)
    page = browser.submit("/console/invitations/new", None, {"email": "not-an-email", "owner": "", "channel": "email"})
    assert page.status == 400
    assert 'role="alert"' in page.text and "There is a problem" in page.text
    assert 'href="#email"' in page.text and 'href="#owner"' in page.text
    assert 'id="email-error"' in page.text and 'id="owner-error"' in page.text
    assert re.search(r'id="email"[^>]*aria-invalid="true"', page.text, re.S)
    # What was typed stays in the form.
    assert 'value="not-an-email"' in page.text

    # A rule across fields lands on the field it is about.
    sms = browser.submit(
        "/console/invitations/new",
        None,
        {"email": "j@smallbiz.example", "owner": selected_owner(browser), "channel": "sms"},
    )
    assert sms.status == 400
    assert 'href="#phone"' in sms.text and 'id="phone-error"' in sms.text
    assert "phone is required when channel is sms or both" in sms.text


def test_add_list_search_detail(client: Any) -> None:
    browser, _ = sign_up(client)
    inv_id = add(
        browser,
        first_name="Jane",
        last_name="Baker",
        email="jane@smallbiz.example",
        business_legal_name="Jane's Bakery Inc.",
        phone="514 555 0123",
        channel="both",
    )
    detail = browser.get(f"/console/invitations/{inv_id}")
    assert detail.status == 200
    assert "Jane Baker" in detail.text and "PENDING" in detail.text and "+15145550123" in detail.text
    assert "created" in detail.text and "send requested" in detail.text
    assert "Olivia Officer" in detail.text  # the history names the staff member, not an id

    drain("onboarding-send")
    messages = browser.get(f"/console/invitations/{inv_id}")
    assert "Emails and SMS" in messages.text and "No email or SMS has been sent yet" not in messages.text
    assert messages.text.count("<strong>sent</strong>") == 2  # one email, one SMS

    everything = browser.get("/console/invitations")
    assert "jane@smallbiz.example" in everything.text
    assert "jane@smallbiz.example" in browser.get("/console/invitations?status=PENDING").text
    assert "jane@smallbiz.example" not in browser.get("/console/invitations?status=JOINED").text
    assert "jane@smallbiz.example" in browser.get("/console/invitations?q=baker").text
    assert "jane@smallbiz.example" not in browser.get("/console/invitations?q=nobody").text
    assert browser.get("/console/invitations?status=NOPE").status == 400


def test_a_double_submitted_form_creates_one_invitation(client: Any) -> None:
    browser, _ = sign_up(client)
    shown = browser.get("/console/invitations/new")
    form_id = re.search(r'name="form_id" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    form = {"email": "twice@smallbiz.example", "owner": selected_owner(browser), "channel": "email", "form_id": form_id}
    first = browser.post("/console/invitations/new", form, shown.csrf())
    second = browser.post("/console/invitations/new", form, shown.csrf())
    assert first.location == second.location


def test_paging(client: Any) -> None:
    browser, lender = sign_up(client)
    for i in range(27):
        client.http.post(
            "/v1/invitations",
            headers={"Authorization": f"Bearer {lender['api_key']}", "Content-Type": "application/json"},
            body=json.dumps({"email": f"c{i}@smallbiz.example", "owner": "CRM", "send": False}),
        )
    first = browser.get("/console/invitations")
    assert first.text.count('name="ids"') == 25
    nxt = re.search(r'href="(/console/invitations\?cursor=[^"]+)">Next page', first.text)
    assert nxt
    second = browser.get(nxt.group(1).replace("&amp;", "&"))
    assert second.text.count('name="ids"') == 2
    assert "First page" in second.text
    # An owner set through the API (free text from a CRM) is shown and filterable.
    assert "CRM" in browser.get("/console/invitations?owner=CRM").text


def test_edit_only_while_pending_and_with_the_version_read(client: Any) -> None:
    browser, _ = sign_up(client)
    inv_id = add(browser, email="edit@smallbiz.example", send="0")
    form = browser.get(f"/console/invitations/{inv_id}/edit")
    assert form.status == 200 and 'value="edit@smallbiz.example"' in form.text
    saved = browser.post(
        f"/console/invitations/{inv_id}/edit",
        {
            "email": "edit@smallbiz.example",
            "owner": selected_owner(browser),
            "first_name": "Eddie",
            "channel": "email",
            "banking_integration": "plaid",
            "version": "1",
        },
        form.csrf(),
    )
    assert saved.status == 303 and saved.location.endswith("notice=edited")
    detail = browser.get(f"/console/invitations/{inv_id}")
    assert "Eddie" in detail.text and "edited" in detail.text
    # The provider registry's label, not its key.
    assert "<dt>Banking integration</dt><dd>Plaid</dd>" in detail.text

    stale = browser.post(
        f"/console/invitations/{inv_id}/edit",
        {
            "email": "edit@smallbiz.example",
            "owner": selected_owner(browser),
            "first_name": "Old",
            "channel": "email",
            "version": "1",
        },
        form.csrf(),
    )
    # Walk-through #16: in plain words, not "the invitation is at version 2, not 1; reload it".
    assert stale.status == 409 and "Someone changed this invitation since you opened it" in stale.text
    assert "not 1" not in stale.text and "reload it" not in stale.text


def test_portal_link_page_and_json(client: Any) -> None:
    browser, _ = sign_up(client)
    inv_id = add(browser, email="link@smallbiz.example")
    page = browser.get(f"/console/invitations/{inv_id}/portal-link")
    assert page.status == 200
    url = re.search(r'id="portal-url" type="text" readonly value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert url.startswith("http://testserver/portal/")
    data = json.loads(browser.get(f"/console/invitations/{inv_id}/portal-link?format=json").text)
    assert data["url"] == url


def test_bulk_resend_gives_each_row_its_outcome(client: Any) -> None:
    browser, _ = sign_up(client)
    just_sent = add(browser, email="sent@smallbiz.example")
    not_sent = add(browser, email="quiet@smallbiz.example", send="0")
    listing = browser.get("/console/invitations")
    result = browser.post("/console/invitations/resend", [("ids", just_sent), ("ids", not_sent)], listing.csrf())
    assert result.status == 200
    assert "1 of 2 sent again" in result.text
    rows = re.findall(r'<tr data-outcome="(\w+)">(.*?)</tr>', result.text, re.S)
    outcomes = {("sent@" in body and "sent") or "quiet": outcome for outcome, body in rows}
    assert outcomes == {"sent": "rate_limited", "quiet": "queued"}
    assert "this invitation was just sent" in result.text

    nothing = browser.post("/console/invitations/resend", [], listing.csrf())
    assert nothing.status == 400 and "select at least one invitation" in nothing.text


def test_bulk_resend_results_tell_two_customers_of_one_name_apart(client: Any) -> None:
    """Walk-through #19: two rows both read "Jane Doe"; each names its email and business too."""
    browser, _ = sign_up(client)
    jane = {"first_name": "Jane", "last_name": "Doe", "send": "0"}
    bakery = add(browser, email="jane@smallbiz.example", business_legal_name="Jane's Bakery LLC", **jane)
    catering = add(browser, email="jane.doe@catering.example", business_legal_name="Jane's Catering Inc", **jane)
    listing = browser.get("/console/invitations")
    result = browser.post("/console/invitations/resend", [("ids", bakery), ("ids", catering)], listing.csrf())
    cells = re.findall(r'<tr data-outcome="\w+">\s*<td data-label="Customer">(.*?)</td>', result.text, re.S)
    assert len(cells) == 2
    by_id = {inv_id: next(c for c in cells if inv_id in c) for inv_id in (bakery, catering)}
    assert "jane@smallbiz.example" in by_id[bakery] and "Jane&#39;s Bakery LLC" in by_id[bakery]
    assert "jane.doe@catering.example" in by_id[catering] and "Jane&#39;s Catering Inc" in by_id[catering]


def test_remove_asks_first_and_only_before_joining(client: Any) -> None:
    browser, _ = sign_up(client)
    inv_id = add(browser, email="gone@smallbiz.example", send="0")
    confirm = browser.get(f"/console/invitations/{inv_id}/remove")
    assert confirm.status == 200 and "Remove this invitation?" in confirm.text
    done = browser.post(f"/console/invitations/{inv_id}/remove", {}, confirm.csrf())
    assert done.status == 303 and done.location == "/console/invitations?notice=removed"
    assert browser.get(f"/console/invitations/{inv_id}").status == 404
    assert "gone@smallbiz.example" not in browser.get("/console/invitations").text


def test_a_customer_without_a_name_is_named_once_by_email_when_asked_to_confirm(client: Any) -> None:
    """Walk-through: "Remove this invitation? gone@smallbiz.example (gone@smallbiz.example) has not joined."
    (an imported customer often has only an email). With a name: the name, then the email."""
    browser, _ = sign_up(client)
    bare = add(browser, email="gone@smallbiz.example", send="0")
    page = browser.get(f"/console/invitations/{bare}/remove").text
    assert "<strong>gone@smallbiz.example</strong> has not joined" in page
    assert "(gone@smallbiz.example)" not in page
    named = add(browser, email="jo@smallbiz.example", first_name="Jo", last_name="Baker", send="0")
    page = browser.get(f"/console/invitations/{named}/remove").text
    assert "<strong>Jo Baker</strong> (jo@smallbiz.example) has not joined" in page


def test_the_console_script_is_served_from_the_console_itself(client: Any) -> None:
    answer = client.http.get("/console/static/console.js")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/javascript")
    assert b"navigator.clipboard" in answer.body


def test_joined_and_inactive_rows_offer_no_remove_or_resend_and_the_console_points_to_delete_customer(
    client: Any,
) -> None:
    """Walk-through #7 and #8: INACTIVE rows have no trash can or resend checkbox (as JOINED rows); removing
    or editing a JOINED invitation says to use Delete customer, with a link, and no API instructions."""
    from tests.integration.test_customers import joined_customer

    browser, lender = sign_up(client, subdomain="acme")  # the join helpers' lender
    inv, _ = joined_customer(client, lender["api_key"])
    inv_id = inv["invitation_id"]
    for path in (f"/console/invitations/{inv_id}/remove", f"/console/invitations/{inv_id}/edit"):
        page = browser.get(path)
        assert page.status == 409, (path, page.text[:500])
        assert "This customer has joined. To revoke access, use Delete customer" in page.text, path
        assert f'href="/console/customers/{inv_id}/delete"' in page.text
        assert "/v1/" not in page.text and "DELETE" not in page.text
    posted = browser.post(f"/console/invitations/{inv_id}/remove", {}, browser.get("/console/invitations").csrf())
    assert posted.status == 409 and f'href="/console/customers/{inv_id}/delete"' in posted.text

    detail = browser.get(f"/console/invitations/{inv_id}").text
    assert (
        f'href="/console/customers/{inv_id}/delete"' in detail and f"/console/invitations/{inv_id}/remove" not in detail
    )
    listing = browser.get("/console/invitations").text
    assert f'value="{inv_id}"' not in listing and f"/console/invitations/{inv_id}/remove" not in listing
    confirm = browser.get(f"/console/customers/{inv_id}/delete")
    browser.post(f"/console/customers/{inv_id}/delete", {}, confirm.csrf())
    listing = browser.get("/console/invitations?status=INACTIVE").text
    assert inv["email"] in listing
    assert f'value="{inv_id}"' not in listing and f"/console/invitations/{inv_id}/remove" not in listing
    detail = browser.get(f"/console/invitations/{inv_id}").text
    assert f"/console/invitations/{inv_id}/remove" not in detail and f"/console/customers/{inv_id}/delete" not in detail
    gone = browser.get(f"/console/invitations/{inv_id}/remove")
    assert gone.status == 409 and "/v1/" not in gone.text


def test_an_open_sign_up_has_no_owner_yet(client: Any) -> None:
    """Walk-through #21: a customer who joined through the open join page shows "Unassigned", not "self-signup"."""
    from tests.integration.test_join import join, settings

    browser, lender = sign_up(client, subdomain="acme")  # the join helpers' lender
    settings(client, lender["api_key"], require_invitation=False, require_email_confirmation=False)
    assert join(client, email="walkin@smallbiz.example").status_code in (200, 201, 303)
    for path in ("/console/invitations", "/console/customers"):
        page = browser.get(path).text
        assert "walkin@smallbiz.example" in page, path
        assert "self-signup" not in page and "Unassigned" in page, path
    inv_id = re.search(r'href="/console/invitations/(inv_[0-9A-Z]+)"', browser.get("/console/customers").text)
    assert inv_id
    detail = browser.get(f"/console/invitations/{inv_id.group(1)}").text
    assert "self-signup" not in detail and "Unassigned" in detail
