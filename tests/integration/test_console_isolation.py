"""Console isolation: lender B's staff, signed in, call every console URL that names a record with
lender A's real ids, by GET and by POST with B's own CSRF token: each answers 404, shows none of
A's data, and changes nothing of A's. The routes come from the app itself, so console pages added
later are covered without touching this file. A botocore hook fails the test if any DynamoDB
request made for B even names A's partition."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.console_helpers import PASSWORD, selected_owner, sign_up
from tests.integration.helpers import drain
from tests.integration.test_console_work import upload
from tests.integration.test_tenant_isolation import owned_by, table_items
from tests.key_guard import KeyGuard

PARAM = re.compile(r"\{(\w+)\}")
# Pages reached by a one-time link rather than a session: they name no tenant record by id.
LINK_PAGES = ("/console/accept/", "/console/reset/")


def console_routes() -> list[tuple[str, str]]:
    from app import app

    return sorted(
        (path, method)
        for path, methods in app.routes.items()
        if path.startswith("/console/") and PARAM.search(path) and not path.startswith(LINK_PAGES)
        for method in methods
    )


def test_no_console_url_reaches_another_lenders_data(client: Any, aws: dict[str, str]) -> None:
    from chalicelib import bootstrap
    from chalicelib.adapters import aws as aws_clients

    alpha, a = sign_up(client, "alpha-console", "ops@alpha-lending.example")
    bravo, _ = sign_up(client, "bravo-console", "ops@bravo-lending.example")
    created = alpha.submit(
        "/console/invitations/new",
        None,
        {
            "email": "jane.alpha@customer.example",
            "owner": selected_owner(alpha),
            "channel": "email",
            "first_name": "Janealpha",
            "form_id": "alpha-form-0000001",
        },
    )
    assert created.status == 303
    drain("onboarding-send")
    alpha.submit("/console/settings/staff", None, {"email": "theo@alpha-lending.example", "role": "officer"})
    alpha.post("/console/settings/api-keys", {"label": "second"}, alpha.get("/console/settings/api-keys").csrf())
    uploaded = upload(alpha, "email,owner\nbob.alpha@customer.example,Olivia Officer\n")
    assert uploaded.status_code == 303
    exported = alpha.post("/console/invitations/exports", {}, alpha.get("/console/invitations").csrf())
    assert exported.status == 303
    drain("onboarding-import")

    a_tenant = next(
        i["tenant_id"]["S"] for i in table_items(aws["TABLE_NAME"]) if i["PK"]["S"] == "SUBDOMAIN#alpha-console"
    )
    inv_id = created.location.split("/")[3].split("?")[0]
    bootstrap.notifications().notify(a_tenant, "completion", inv_id, {}, key="alpha-done")
    items = owned_by(a_tenant, table_items(aws["TABLE_NAME"]))
    ids: dict[str, str] = {}
    for item in items:
        for name, value in item.items():
            if name.endswith("_id") and "S" in value:
                ids.setdefault(name, value["S"])
    ids["invitation_id"] = inv_id
    ids["import_id"] = uploaded.headers["Location"].rsplit("/", 1)[-1]
    ids["customer_id"] = ids["invitation_id"]
    staff_ids = sorted({i["staff_id"]["S"] for i in items if i.get("type", {}).get("S") == "staff"})
    ids["staff_id"] = staff_ids[-1]

    # A's own pages with these ids work: B's 404s below are about the session, not about bad ids.
    for path, method in console_routes():
        if method == "GET":
            filled = PARAM.sub(lambda m: ids.get(m.group(1), "x_made_up"), path)
            assert alpha.get(filled).status in (200, 409), filled  # 409: e.g. deleting a customer not joined

    before = owned_by(a_tenant, table_items(aws["TABLE_NAME"]))
    guard = KeyGuard(forbidden_tenant=a_tenant)
    guard.attach(aws_clients.client("dynamodb"))
    csrf = bravo.get("/console/invitations").csrf()
    secrets = ["jane.alpha@customer.example", "Janealpha", "theo@alpha-lending.example", a_tenant, a["api_key"][:10]]
    problems = []
    routes = console_routes()
    assert len(routes) >= 9
    for path, method in routes:
        filled = PARAM.sub(lambda m: ids.get(m.group(1), "x_made_up"), path)
        form = {"action": "deactivate", "role": "officer", "email": "x@bravo.example", "owner": "B"}
        page = bravo.get(filled) if method == "GET" else bravo.post(filled, form, csrf)
        if page.status != 404:
            problems.append(f"{method} {path}: {page.status}")
        problems += [f"{method} {path} shows {s!r}" for s in secrets if s in page.text]
    # Bulk resend names ids in the form, not the path: A's id is simply not found for B.
    resend = bravo.post("/console/invitations/resend", [("ids", ids["invitation_id"])], csrf)
    assert 'data-outcome="not_found"' in resend.text
    # B's listings show nothing of A's.
    for path in (
        "/console/invitations",
        "/console/settings/staff",
        "/console/settings/api-keys",
        "/console/settings",
        "/console/invitations?q=janealpha",
        "/console/invitations/export",
    ):
        text = bravo.get(path).text
        problems += [f"GET {path} shows {s!r}" for s in secrets if s in text]
    assert not problems, "\n".join(problems)
    guard.assert_clean()
    assert owned_by(a_tenant, table_items(aws["TABLE_NAME"])) == before

    # And A's officer cannot sign in to B's console with A's password.
    from tests.integration.console_helpers import Browser

    wrong = Browser(client).submit(
        "/console/login", None, {"lender": "bravo-console", "email": "ops@alpha-lending.example", "password": PASSWORD}
    )
    assert wrong.status == 401
