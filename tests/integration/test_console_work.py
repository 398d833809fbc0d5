"""Console: the notification bell and list, the communication log, the account-list upload (template,
dry run, per-row results) and the customers page (disconnect, delete, each confirmed first)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from tests.integration.console_helpers import Browser, sign_up
from tests.integration.helpers import drain
from tests.integration.test_console_invitations import add
from tests.integration.test_customers import joined_customer

TEMPLATE_HEADER = ["email", "owner"]


def tenant_id_of(browser: Browser) -> str:
    from chalicelib import bootstrap
    from chalicelib.api.console_web import SESSION_COOKIE

    session = bootstrap.staff().session(browser.cookies[SESSION_COOKIE])
    assert session is not None
    return session.tenant.tenant_id


def test_the_bell_counts_unread_notifications_on_every_page_and_they_can_be_read(client: Any) -> None:
    from chalicelib import bootstrap

    browser, _ = sign_up(client)
    inv_id = add(
        browser, email="done@smallbiz.example", send="0", first_name="Dana", business_legal_name="Dana's Deli LLC"
    )
    assert 'aria-label="Notifications: 0 unread"' in browser.get("/console/invitations").text
    bootstrap.notifications().notify(tenant_id_of(browser), "completion", inv_id, {}, key="portal-done-1")
    for path in ("/console/invitations", "/console/settings", f"/console/invitations/{inv_id}"):
        page = browser.get(path)
        assert 'aria-label="Notifications: 1 unread"' in page.text, path
        assert '<span class="count" aria-hidden="true">1</span>' in page.text
    listing = browser.get("/console/notifications")
    assert "Customer completed the portal" in listing.text and f"/console/invitations/{inv_id}" in listing.text
    # Walk-through #19: the customer is named, not "Open the invitation".
    assert "Open the invitation" not in listing.text
    assert f'<a href="/console/invitations/{inv_id}">Dana</a>' in listing.text and "Dana&#39;s Deli LLC" in listing.text
    ntf = re.search(r"/console/notifications/(ntf_\w+)/read", listing.text).group(1)  # type: ignore[union-attr]
    read = browser.post(f"/console/notifications/{ntf}/read", {}, listing.csrf())
    assert read.status == 303
    assert 'aria-label="Notifications: 0 unread"' in browser.get("/console/invitations").text


def test_the_communication_log_lists_every_message_with_filters(client: Any) -> None:
    browser, _ = sign_up(client)
    add(browser, email="log@smallbiz.example", phone="514 555 0123", channel="both")
    drain("onboarding-send")
    page = browser.get("/console/communications")
    assert page.status == 200
    assert page.text.count('data-outcome="sent"') == 2
    sms = browser.get("/console/communications?channel=sms")
    assert sms.text.count('data-outcome="sent"') == 1 and ">SMS<" in sms.text
    assert browser.get("/console/communications?outcome=bounced").text.count("data-outcome=") == 0
    assert browser.get("/console/communications?since=2020-01-01&until=2020-01-31").text.count("data-outcome=") == 0
    assert browser.get("/console/communications?outcome=nope").status == 400


def test_bad_log_filters_show_the_log_again_with_the_filters_and_an_error_by_the_field(client: Any) -> None:
    """Walk-through #2: a reversed date range (reachable from the date pickers) or a bad value keeps the log
    page, its filters and says what is wrong next to the field; never the generic error page naming "body"."""
    browser, _ = sign_up(client)
    page = browser.get("/console/communications?since=2026-12-05&until=2026-12-01&channel=email")
    assert page.status == 400
    assert "Communication log" in page.text and "invalid fields" not in page.text
    assert 'value="2026-12-05"' in page.text and 'value="2026-12-01"' in page.text
    assert '<option value="email" selected>' in page.text
    assert 'id="until-error"' in page.text and "To must be on or after From" in page.text
    assert 'aria-invalid="true"' in page.text

    bad = browser.get("/console/communications?since=yesterday&outcome=nope&channel=fax")
    assert bad.status == 400 and "invalid fields" not in bad.text
    assert 'id="since-error"' in bad.text and "enter a date, like 2026-12-01" in bad.text
    assert 'id="outcome-error"' in bad.text and 'id="channel-error"' in bad.text
    assert 'value="yesterday"' in bad.text
    assert "Input should be" not in bad.text


def multipart(csrf: str, content: str, **flags: str) -> tuple[str, bytes]:
    boundary = "----console-test-boundary"
    parts = [("csrf_token", None, csrf.encode()), *((k, None, v.encode()) for k, v in flags.items())]
    parts.append(("file", "customers.csv", content.encode()))
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: text/csv\r\n"
        body += b"\r\n" + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def upload(browser: Browser, content: str, **flags: str) -> Any:
    shown = browser.get("/console/upload")
    content_type, body = multipart(shown.csrf(), content, **flags)
    headers = {"Content-Type": content_type, "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
    return browser.client.http.post("/console/upload", headers=headers, body=body)


def rows(n: int, bad: tuple[int, ...] = ()) -> str:
    lines = ["email,owner,first_name"]
    for i in range(1, n + 1):
        lines.append(f"{'not-an-email' if i in bad else f'row{i}@smallbiz.example'},Olivia Officer,Row{i}")
    return "\n".join(lines) + "\n"


def test_upload_an_account_list_with_a_dry_run_and_rejected_rows_named(client: Any) -> None:
    browser, _ = sign_up(client)
    template = browser.get("/console/upload/template")
    assert template.status == 200 and next(csv.reader(io.StringIO(template.text)))[:2] == TEMPLATE_HEADER

    dry = upload(browser, rows(5, bad=(2,)), dry_run="1")
    assert dry.status_code == 303, dry.body
    drain("onboarding-import")
    status = browser.get(dry.headers["Location"])
    assert "Dry run: completed" in status.text
    assert re.search(r'id="count-valid">4<', status.text) and re.search(r'id="count-invalid">1<', status.text)
    assert (
        "row2@" not in browser.get("/console/invitations").text
        and "row1@" not in browser.get("/console/invitations").text
    )

    real = upload(browser, rows(20, bad=(7, 13)), no_send="1")
    assert real.status_code == 303
    page = browser.get(real.headers["Location"])
    assert '<meta http-equiv="refresh"' in page.text  # the page follows the job while it runs
    drain("onboarding-import")
    done = browser.get(real.headers["Location"])
    assert "Import: completed" in done.text and '<meta http-equiv="refresh"' not in done.text
    assert re.search(r'id="count-created">18<', done.text)
    rejected = re.findall(r'<td data-label="Row">(\d+)</td><td data-label="Field"><strong>(\w+)</strong>', done.text)
    assert rejected == [("8", "email"), ("14", "email")]  # row numbers count the header line
    # Each reason in words (walk-through #15), not the validator library's.
    assert "value is not a valid email address" not in done.text
    assert done.text.count("enter a valid email address, like name@example.com") == 2
    listing = browser.get("/console/invitations?q=row20")
    assert "row20@smallbiz.example" in listing.text


def test_an_upload_without_a_file_or_token_is_refused(client: Any) -> None:
    browser, _ = sign_up(client)
    empty = upload(browser, "")
    assert empty.status_code == 400 and b'id="file-error"' in empty.body
    headers = {
        "Content-Type": multipart("x" * 64, rows(1))[0],
        "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
    }
    forged = client.http.post("/console/upload", headers=headers, body=multipart("x" * 64, rows(1))[1])
    assert forged.status_code == 403


def test_customers_can_be_disconnected_and_deleted_after_confirming(client: Any) -> None:
    browser, lender = sign_up(client, subdomain="acme")  # the join helpers' lender
    inv, _ = joined_customer(client, lender["api_key"])
    inv_id = inv["invitation_id"]
    page = browser.get("/console/customers")
    assert inv["email"] in page.text and "Disconnect financial data" in page.text and "Delete customer" in page.text

    confirm = browser.get(f"/console/customers/{inv_id}/disconnect")
    assert confirm.status == 200 and "Disconnect financial data?" in confirm.text
    done = browser.post(f"/console/customers/{inv_id}/disconnect", {}, confirm.csrf())
    assert done.status == 303 and done.location == "/console/customers?notice=disconnected"
    detail = browser.get(f"/console/invitations/{inv_id}")
    assert "financial data disconnected" in detail.text and "JOINED" in detail.text

    confirm = browser.get(f"/console/customers/{inv_id}/delete")
    assert "Delete this customer?" in confirm.text
    browser.post(f"/console/customers/{inv_id}/delete", {}, confirm.csrf())
    assert inv["email"] not in browser.get("/console/customers").text
    assert inv["email"] in browser.get("/console/customers?status=INACTIVE").text
    assert "customer removed" in browser.get(f"/console/invitations/{inv_id}").text


def test_a_pending_invitation_is_not_deleted_as_a_customer(client: Any) -> None:
    browser, _ = sign_up(client)
    inv_id = add(browser, email="pending@smallbiz.example", send="0")
    assert browser.get(f"/console/customers/{inv_id}/delete").status == 409
