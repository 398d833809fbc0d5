"""The running stack under a burst: 50 requests at once (customers joining, a lender creating
invitations) are all answered, none with a 5xx. Before moto's request handling was serialised, the
embedded AWS failed such bursts with "dictionary changed size during iteration" and the join page
answered 503.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

JOINS = 20  # the join limit per IP is 30 per 10 minutes, and every request here comes from 127.0.0.1
CREATES = 30


def join(stack: RunningStack, subdomain: str, email: str, n: int) -> int:
    session = requests.Session()
    page = session.get(f"{stack.api}/t/{subdomain}/join", timeout=60)
    if page.status_code != 200:
        return page.status_code
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, "the join form carries a CSRF token"
    answer = session.post(
        f"{stack.api}/t/{subdomain}/join",
        data={
            "email": email,
            "business_name": f"Burst Bakery {n}",
            "password": f"Correct-Horse-{n}-Battery-Staple",
            "account_subdomain": f"burst-{uuid.uuid4().hex[:10]}",
            "csrf_token": csrf.group(1),
        },
        allow_redirects=False,
        timeout=60,
    )
    return answer.status_code


def test_fifty_concurrent_joins_and_creates_get_no_5xx(stack: RunningStack) -> None:
    subdomain = f"burst-{uuid.uuid4().hex[:8]}"
    key = stack.sign_up("Burst Lending", subdomain=subdomain)
    auth = {"Authorization": f"Bearer {key}"}
    invited = [f"joiner{n}.{uuid.uuid4().hex[:6]}@burst.example" for n in range(JOINS)]
    for email in invited:
        created = requests.post(
            f"{stack.api}/v1/invitations",
            json={"email": email, "owner": "Olivia Officer", "send": False},
            headers=auth,
            timeout=30,
        )
        assert created.status_code == 201, created.text

    def create(n: int) -> int:
        body = {"email": f"new{n}.{uuid.uuid4().hex[:6]}@burst.example", "owner": "Olivia Officer"}
        return requests.post(f"{stack.api}/v1/invitations", json=body, headers=auth, timeout=60).status_code

    with ThreadPoolExecutor(JOINS + CREATES) as pool:
        joins = [pool.submit(join, stack, subdomain, email, n) for n, email in enumerate(invited)]
        creates = [pool.submit(create, n) for n in range(CREATES)]
        join_statuses = [f.result() for f in joins]
        create_statuses = [f.result() for f in creates]

    assert [s for s in join_statuses + create_statuses if s >= 500] == []
    assert create_statuses == [201] * CREATES
    # A join completes (303 to "check your email" or "your account is ready") unless the per-IP limit says wait.
    assert set(join_statuses) <= {303, 429}, join_statuses
