"""The invitation owner: a staff member (by id) chosen in the console, or free text from the API.

The API keeps accepting ``owner`` as free text (CRM integrations) and shows it as such
(``owner_staff_id`` null); ``owner_staff_id`` names one of the lender's active staff. The console
offers only the lender's active staff and shows each owner's current name.
"""

from __future__ import annotations

import re
from typing import Any

from tests.integration.console_helpers import Browser, selected_owner, sign_up
from tests.integration.helpers import call


def _rename(admin: Browser, name: str) -> None:
    """The signed-in member's name changes (in the repository: the console has no rename page)."""
    from chalicelib import bootstrap

    session = bootstrap.staff().session(admin.cookies["console_session"])
    assert session is not None
    member = session.staff
    bootstrap.staff().repo.save(member, member.model_copy(update={"name": name, "version": member.version + 1}))


def test_the_api_keeps_a_free_text_owner_and_shows_it_as_such(client: Any) -> None:
    _, lender = sign_up(client)
    status, inv = call(client, "POST", "/v1/invitations", lender["api_key"], {"email": "a@x.example", "owner": "CRM"})
    assert status == 201, inv
    assert inv["owner"] == "CRM" and inv["owner_staff_id"] is None
    status, missing = call(client, "POST", "/v1/invitations", lender["api_key"], {"email": "b@x.example"})
    assert status == 400 and "owner" in missing["error"]["fields"], missing


def test_the_api_accepts_an_active_staff_member_of_the_lender_only(client: Any) -> None:
    admin, lender = sign_up(client)
    _, other = sign_up(client)
    mine = selected_owner(admin)
    status, inv = call(
        client, "POST", "/v1/invitations", lender["api_key"], {"email": "c@x.example", "owner_staff_id": mine}
    )
    assert status == 201, inv
    assert inv["owner_staff_id"] == mine and inv["owner"] == "Olivia Officer"
    # Another lender's staff member is not a possible owner (a 400 naming the field, nothing created).
    status, refused = call(
        client, "POST", "/v1/invitations", other["api_key"], {"email": "d@x.example", "owner_staff_id": mine}
    )
    assert status == 400 and "owner_staff_id" in refused["error"]["fields"], refused
    status, bad = call(
        client, "POST", "/v1/invitations", lender["api_key"], {"email": "e@x.example", "owner_staff_id": "nope"}
    )
    assert status == 400 and "owner_staff_id" in bad["error"]["fields"], bad
    # Filter by staff member; a free-text edit turns the owner back into text.
    status, page = call(client, "GET", f"/v1/invitations?owner_staff_id={mine}", lender["api_key"])
    assert status == 200 and [i["invitation_id"] for i in page["items"]] == [inv["invitation_id"]]
    status, edited = call(
        client, "PATCH", f"/v1/invitations/{inv['invitation_id']}", lender["api_key"], {"owner": "Sales CRM"}
    )
    assert status == 200 and edited["owner"] == "Sales CRM" and edited["owner_staff_id"] is None, edited


def test_the_console_owner_is_a_staff_member_chosen_from_a_list_and_shown_by_current_name(client: Any) -> None:
    admin, lender = sign_up(client)
    mine = selected_owner(admin)
    form = admin.get("/console/invitations/new")
    # Only the lender's active staff are offered: a select, not free text.
    assert re.search(r'<select id="owner" name="owner"', form.text)
    assert re.findall(r'<option value="(stf_[0-9A-Za-z]+)"', form.text) == [mine]
    created = admin.post(
        "/console/invitations/new",
        {"email": "jane@smallbiz.example", "owner": mine, "channel": "email", "send": "0", "form_id": "f" * 20},
        form.csrf(),
    )
    assert created.status == 303, created.text[:2000]
    inv_id = created.location.split("/")[-1].split("?")[0]
    status, inv = call(client, "GET", f"/v1/invitations/{inv_id}", lender["api_key"])
    assert inv["owner_staff_id"] == mine and inv["owner"] == "Olivia Officer"

    # A free-text owner from the API shows as such; a staff id from another form is refused by field.
    call(
        client, "POST", "/v1/invitations", lender["api_key"], {"email": "crm@x.example", "owner": "CRM", "send": False}
    )
    refused = admin.post(
        "/console/invitations/new",
        {
            "email": "x@smallbiz.example",
            "owner": "stf_0000000000000000000000000",
            "channel": "email",
            "form_id": "g" * 20,
        },
        form.csrf(),
    )
    assert refused.status == 400 and 'id="owner-error"' in refused.text
    assert "not an active staff member" in refused.text

    _rename(admin, "Olivia Newname")
    listing = admin.get("/console/invitations")
    assert "Olivia Newname" in listing.text and ">CRM<" in listing.text
    # The filter lists staff by current name and finds their invitations by id.
    assert re.search(rf'<option value="{mine}"[^>]*>Olivia Newname</option>', listing.text)
    mine_only = admin.get(f"/console/invitations?owner={mine}")
    assert "jane@smallbiz.example" in mine_only.text and "crm@x.example" not in mine_only.text
    crm_only = admin.get("/console/invitations?owner=CRM")
    assert "crm@x.example" in crm_only.text and "jane@smallbiz.example" not in crm_only.text
    assert "Olivia Newname" in admin.get(f"/console/invitations/{inv_id}").text
    export = admin.get(f"/console/invitations/export?owner={mine}")
    assert "jane@smallbiz.example" in export.text and "crm@x.example" not in export.text


def test_editing_keeps_a_free_text_owner_unless_a_teammate_is_chosen(client: Any) -> None:
    admin, lender = sign_up(client)
    mine = selected_owner(admin)
    _, inv = call(
        client, "POST", "/v1/invitations", lender["api_key"], {"email": "k@x.example", "owner": "CRM", "send": False}
    )
    path = f"/console/invitations/{inv['invitation_id']}/edit"
    form = admin.get(path)
    assert '<option value="" selected>Keep CRM (free text, from the API or an upload)</option>' in form.text
    kept = admin.post(path, {"email": "k@x.example", "owner": "", "first_name": "Kim", "version": "1"}, form.csrf())
    assert kept.status == 303, kept.text[:2000]
    _, after = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", lender["api_key"])
    assert after["owner"] == "CRM" and after["owner_staff_id"] is None and after["first_name"] == "Kim"
    chosen = admin.post(path, {"email": "k@x.example", "owner": mine, "version": "2"}, form.csrf())
    assert chosen.status == 303, chosen.text[:2000]
    _, after = call(client, "GET", f"/v1/invitations/{inv['invitation_id']}", lender["api_key"])
    assert after["owner_staff_id"] == mine and after["owner"] == "Olivia Officer"


def test_an_uploaded_owner_naming_a_staff_member_by_email_or_name_is_that_member(client: Any) -> None:
    from chalicelib.config import IMPORT_QUEUE
    from tests.integration.helpers import drain
    from tests.integration.test_imports import csv_text, invitations, upload

    admin, lender = sign_up(client)
    mine = selected_owner(admin)
    rows = [
        ["by-name@x.example", "  olivia OFFICER ", "", "", "", "", "", ""],
        ["by-email@x.example", lender["admin_email"].upper(), "", "", "", "", "", ""],
        ["free@x.example", "Sales Team", "", "", "", "", "", ""],
    ]
    status, job = upload(client, lender["api_key"], csv_text(rows), "?send=false")
    assert status == 202, job
    drain(IMPORT_QUEUE)
    owners = {i["email"]: (i["owner"], i["owner_staff_id"]) for i in invitations(client, lender["api_key"])}
    assert owners == {
        "by-name@x.example": ("Olivia Officer", mine),
        "by-email@x.example": ("Olivia Officer", mine),
        "free@x.example": ("Sales Team", None),
    }
    status, page = call(client, "GET", f"/v1/invitations?owner_staff_id={mine}", lender["api_key"])
    assert status == 200 and {i["email"] for i in page["items"]} == {"by-name@x.example", "by-email@x.example"}
