"""Log hygiene: everything the local stack printed (its stdout and stderr, which is what CloudWatch
would keep) during the end-to-end run holds no email address, phone number, token, password or
API key in clear. The test drives the flows that handle them, then reads the whole log so far,
including what earlier e2e tests made the stack print."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.stack import RunningStack, phone_for

pytestmark = pytest.mark.e2e

WAIT_S = 30.0
# Addresses the system itself owns may appear (the sender); nobody's personal data.
SYSTEM_ADDRESSES = {"invitations@myonboarding.com"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Not inside an identifier: request ids and UUIDs hold long digit runs between hex letters and hyphens.
PHONE = re.compile(r"(?<![\w*-])\+?1?[\s(.-]*\d{3}[\s).-]*\d{3}[\s.-]*\d{4}(?![\w-])")
API_KEY = re.compile(r"lok_[A-Za-z0-9_-]{20,}")
TOKEN_IN_URL = re.compile(r"/(?:portal|confirm)/([A-Za-z0-9_-]{43})\b|[?&]token=([A-Za-z0-9_-]{16,})")


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def clear_emails(text: str) -> list[str]:
    """Addresses in clear: the masked form ``j***@domain`` does not match (``*`` ends the local part)."""
    found = []
    for match in EMAIL.finditer(text):
        start = match.start()
        if start > 0 and text[start - 1] == "*":
            continue
        if match.group(0).lower() not in SYSTEM_ADDRESSES:
            found.append(match.group(0))
    return found


def exercise(stack: RunningStack) -> dict[str, str]:
    """Sign-up, an invitation by email and SMS, its sends, the portal, and a join with a password."""
    marker = uuid.uuid4().hex[:8]
    admin = f"admin.{marker}@hygiene-lending.example"
    subdomain = f"hygiene-{marker}"
    key = stack.sign_up("Hygiene Lending", subdomain=subdomain, admin_email=admin)
    auth = {"Authorization": f"Bearer {key}"}
    email = f"jane.{marker}@customer-hygiene.example"
    phone = phone_for(marker)
    invitation = requests.post(
        f"{stack.api}/v1/invitations",
        json={"email": email, "owner": "Olivia Officer", "phone": phone, "channel": "both", "first_name": "Jane"},
        headers=auth,
        timeout=10,
    )
    assert invitation.status_code == 201, invitation.text
    inv = invitation.json()

    def sent() -> bool:
        outbox = requests.get(f"{stack.api}/dev/outbox.json", timeout=10).json()
        return any(email in m["destinations"] for m in outbox["emails"]) and any(
            s["phone_number"] == phone for s in outbox["sms"]
        )

    wait_for(sent, "the invitation's email and SMS")
    link = requests.get(f"{stack.api}/v1/invitations/{inv['invitation_id']}/portal-link", headers=auth, timeout=10)
    assert link.status_code == 200, link.text
    portal_url = link.json()["url"]
    token = portal_url.rsplit("/", 1)[-1]
    assert requests.get(portal_url, timeout=10).status_code == 200
    requests.get(f"{stack.api}/portal/{token}/status", timeout=10)
    # Wrong credentials and a bad key are logged as refusals: the key itself must not be.
    requests.get(f"{stack.api}/v1/tenant", headers={"Authorization": f"Bearer {key}x"}, timeout=10)
    requests.get(f"{stack.api}/v1/invitations?email={email}", headers=auth, timeout=10)

    password = f"Correct-Horse-{marker}-Battery"
    join_email = f"joiner.{marker}@customer-hygiene.example"
    settings = requests.patch(
        f"{stack.api}/v1/tenant/settings", json={"require_invitation": False}, headers=auth, timeout=10
    )
    assert settings.status_code == 200, settings.text
    session = requests.Session()
    page = session.get(f"{stack.api}/t/{subdomain}/join", timeout=10)
    if page.status_code == 200:  # the join page exists: a password goes through it
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, "the join form carries a CSRF token"
        session.post(
            f"{stack.api}/t/{subdomain}/join",
            data={
                "email": join_email,
                "business_name": "Joiner Bakery",
                "password": password,
                "account_subdomain": f"joiner-{marker}",
                "csrf_token": csrf.group(1),
            },
            timeout=20,
        )
    return {
        "api key": key,
        "admin email": admin,
        "customer email": email,
        "customer phone": phone,
        "phone digits": phone[2:],
        "portal token": token,
        "password": password,
        "joiner email": join_email,
    }


def test_the_stack_logs_no_personal_data_or_secret_in_clear(stack: RunningStack) -> None:
    known = exercise(stack)
    time.sleep(1.0)  # let the pollers log what they did with the last messages
    log = stack.output()
    assert "Tenant created" in log or "Invitation created" in log, "the stack's logs were not captured"

    leaks = [f"{what} {value!r}" for what, value in known.items() if value in log]
    leaks += [f"email address {e!r}" for e in sorted(set(clear_emails(log)))]
    leaks += [f"phone number {p.strip()!r}" for p in sorted(set(PHONE.findall(log)))]
    leaks += [f"API key {k[:10]}..." for k in sorted(set(API_KEY.findall(log)))]
    leaks += [f"link token {''.join(t)[:8]}..." for t in sorted(set(TOKEN_IN_URL.findall(log)))]
    context = dict.fromkeys(leaks, "")
    for leak in leaks:
        needle = leak.split("'")[1] if "'" in leak else ""
        index = log.find(needle) if needle else -1
        if index >= 0:
            context[leak] = log[max(0, log.rfind("\n", 0, index) + 1) : log.find("\n", index)][:300]
    assert not leaks, "clear personal data or secrets in the stack's logs:\n" + "\n".join(
        f"- {leak}\n    {line}" for leak, line in context.items()
    )


def test_the_checks_recognise_clear_and_masked_values() -> None:
    assert clear_emails("to jane.doe@bank.example and j***@bank.example from invitations@myonboarding.com") == [
        "jane.doe@bank.example"
    ]
    assert PHONE.findall("call +15145550199 or (514) 555-0199, not ***99")
    assert not PHONE.findall("took 1234 ms; id ten_01M81G6WJK18J0; ***99")
    assert not PHONE.findall('"function_request_id":"21095024-775f-44c0-a748-1278357811ab"')
    assert API_KEY.findall("key lok_" + "a" * 43)
    assert TOKEN_IN_URL.findall("GET /portal/" + "A" * 43 + " 200")
