"""``table.serialize`` writes the common types itself: every item comes out exactly as boto3's TypeSerializer
writes it after ``_to_dynamo`` (floats as Decimal, None left out of maps), and what it does not write itself
fails as boto3 fails."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters.dynamo.table import _to_dynamo, serialize


def reference(item: dict[str, Any]) -> dict[str, Any]:
    """What serialize wrote before it had a fast path."""
    return {k: TypeSerializer().serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**6), max_value=10**6),
    st.binary(max_size=4),
    st.frozensets(st.text(min_size=1, max_size=4), min_size=1, max_size=3).map(set),
    st.frozensets(st.integers(min_value=0, max_value=99), min_size=1, max_size=3).map(set),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3), st.tuples(inner)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=6))
def test_serialize_writes_what_boto3_writes(item: dict[str, Any]) -> None:
    try:
        expected = reference(item)
    except (TypeError, ValueError, ArithmeticError) as exc:
        with pytest.raises(type(exc)):
            serialize(item)
        return
    assert serialize(item) == expected


def test_an_invitation_like_item() -> None:
    item = {
        "PK": "TENANT#t",
        "SK": "INV#i",
        "version": 1,
        "score": 0.5,
        "dry_run": False,
        "note": None,
        "details": {"row": 2, "gone": None, "tags": ["a", None, {"x": 1.25}]},
        "chunks": {"0", "1"},
        "amount": Decimal("12.50"),
    }
    assert serialize(item) == reference(item)
    assert serialize(item)["details"] == {
        "M": {"row": {"N": "2"}, "tags": {"L": [{"S": "a"}, {"NULL": True}, {"M": {"x": {"N": "1.25"}}}]}}
    }
