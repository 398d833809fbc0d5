from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import csv_rows
from chalicelib.errors import TooLarge, ValidationFailed

HEADER = ",".join(csv_rows.COLUMNS)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+15145550123", "'+15145550123"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Jane", "Jane"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise(cell: str, expected: str) -> None:
    assert csv_rows.neutralise(cell) == expected


def test_to_csv_neutralises_every_cell_and_quotes() -> None:
    text = csv_rows.to_csv([["=cmd|' /C calc'!A0", 'say "hi"', None, 3]])
    assert list(csv.reader(io.StringIO(text))) == [["'=cmd|' /C calc'!A0", 'say "hi"', "", "3"]]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        # Excel in fr-CA and most of Europe splits on ';': each part is a cell of its own there.
        ('Jane;=HYPERLINK("http://evil")', 'Jane;\'=HYPERLINK("http://evil")'),
        ("Jane,+1", "Jane,'+1"),
        ("a\t@SUM(A1)", "a\t'@SUM(A1)"),
        ("x; -2", "x;' -2"),
        ('a;"=1', "a;'\"=1"),
        ("Jane; Doe, inc.", "Jane; Doe, inc."),
    ],
)
def test_neutralise_every_part_a_spreadsheet_may_split_off(cell: str, expected: str) -> None:
    assert csv_rows.neutralise(cell) == expected


def test_every_text_cell_is_quoted() -> None:
    text = csv_rows.to_csv([["inv_1", "Jane", "", None, 3]])
    assert text == '"inv_1","Jane","","",3\r\n'


DANGEROUS = st.text(alphabet=st.sampled_from(list("=+-@\t\r\n,;\" 'ab1")), max_size=12)


@given(cells=st.lists(DANGEROUS, min_size=1, max_size=4))
def test_no_delimiter_a_spreadsheet_may_use_lets_a_cell_start_a_formula(cells: list[str]) -> None:
    text = csv_rows.to_csv([cells])
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            for field in row:
                bare = field.lstrip(" ")
                assert not bare.startswith(("=", "+", "-", "@")), (delimiter, cells, text)


def test_template_has_header_and_a_valid_example() -> None:
    parsed = csv_rows.parse(csv_rows.template_csv())
    assert parsed.columns == list(csv_rows.COLUMNS)
    ((row, cells),) = parsed.rows
    assert row == 2
    # The example filled in with a customer of one's own (another email) is a valid row.
    own = ["jane@janes-bakery.example", *cells[1:]]
    check = csv_rows.validate_row(parsed.columns, row, own)
    assert check.fields is not None and check.fields.email == "jane@janes-bakery.example"
    # Walk-through #22: the example phone needs no formula guard, so a lender copying the row keeps no "'".
    assert "'" not in csv_rows.template_csv().replace("Jane's", "")
    assert check.fields.phone == "+15145550123"


def test_the_templates_example_row_left_in_is_refused_not_invited() -> None:
    """Walk-through: importing the template as downloaded invited jane@smallbiz.com, a stranger's address (a real
    email, and a bounce against the lender's sending). The example row, however its columns are ordered or its
    email cased, is refused with a reason; a row that only shares its email is not the example."""
    parsed = csv_rows.parse(csv_rows.template_csv())
    ((row, cells),) = parsed.rows
    check = csv_rows.validate_row(parsed.columns, row, cells)
    assert check.fields is None
    assert check.errors == {"email": "this is the template's example row: replace it with your customers, or delete it"}
    reordered = csv_rows.parse(
        "business_legal_name,email,owner,first_name,last_name\nJane's Bakery Inc.,JANE@smallbiz.com,Olivia,Jane,Doe\n"
    )
    ((row, cells),) = reordered.rows
    assert set(csv_rows.validate_row(reordered.columns, row, cells).errors) == {"email"}
    other = csv_rows.validate_row(["email", "owner", "business_legal_name"], 2, ["jane@smallbiz.com", "O", "Cafe"])
    assert other.fields is not None


def test_header_is_normalised_and_may_reorder_or_omit_optional_columns() -> None:
    assert csv_rows.check_header([" Owner", "EMAIL", "First Name", "business-legal-name", "", ""]) == [
        "owner",
        "email",
        "first_name",
        "business_legal_name",
    ]


def test_header_errors_name_every_problem() -> None:
    with pytest.raises(ValidationFailed) as caught:
        csv_rows.check_header(["email", "email", "colour", ""])
    # an empty cell before the end has no name; trailing empties are dropped, so only "colour" and the repeat
    assert caught.value.fields == {
        "owner": "required column is missing",
        "email": "column appears more than once",
        "colour": "unknown column",
    }
    with pytest.raises(ValidationFailed) as caught:
        csv_rows.check_header(["email", "", "owner"])
    assert caught.value.fields == {"column 2": "has no name"}


def test_decode_accepts_bom_and_refuses_other_encodings() -> None:
    assert csv_rows.decode("\ufeffemail,owner\n".encode()) == "email,owner\n"
    with pytest.raises(ValidationFailed, match="UTF-8"):
        csv_rows.decode("email,owner\nj\xe9@x.com,O\n".encode("latin-1"))
    with pytest.raises(ValidationFailed, match="empty"):
        csv_rows.decode(b"  \n")
    with pytest.raises(TooLarge, match="5 MB"):
        csv_rows.decode(b"x" * (csv_rows.MAX_BYTES + 1))


def test_parse_skips_blank_rows_and_numbers_rows_like_a_spreadsheet() -> None:
    parsed = csv_rows.parse('email,owner\na@x.com,O\n,\n\n"b@x.com","multi\nline"\nc@x.com,O\n')
    assert [r for r, _ in parsed.rows] == [2, 5, 6]


def test_parse_limits_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_rows, "MAX_ROWS", 2)
    with pytest.raises(ValidationFailed, match="more than 2 rows"):
        csv_rows.parse("email,owner\na@x.com,O\nb@x.com,O\nc@x.com,O\n")


def test_validate_row_reasons() -> None:
    columns = list(csv_rows.COLUMNS)
    ok = csv_rows.validate_row(columns, 2, [" Jane@SmallBiz.com ", "O", "", "", "(514) 555-0199", "", "PLAID", "Both"])
    assert ok.fields is not None
    assert (ok.fields.email, ok.fields.phone, ok.fields.banking_integration, ok.fields.channel) == (
        "jane@smallbiz.com",
        "+15145550199",
        "plaid",
        "both",
    )
    bad = csv_rows.validate_row(columns, 3, ["nope", "", "", "", "12", "", "", ""])
    assert set(bad.errors) == {"email", "owner", "phone"}
    result = bad.invalid_result()
    assert (result.row, result.outcome, result.field) == (3, "invalid", "email")
    assert "owner: is required" in str(result.reason)
    sms = csv_rows.validate_row(columns, 4, ["a@x.com", "O", "", "", "", "", "", "sms"])
    assert sms.errors == {"phone": "phone is required when channel is sms or both"}
    extra = csv_rows.validate_row(["email", "owner"], 5, ["a@x.com", "O", "surprise"])
    assert "row" in extra.errors


def test_duplicates_in_file_first_valid_row_wins() -> None:
    parsed = csv_rows.parse(
        "email,owner,business_legal_name\n"
        "dup@x.com,,Acme\n"  # row 2: same email but invalid (no owner): not the one others duplicate
        "DUP@x.com,O,ACME inc\n"  # row 3: first valid
        "dup@x.com ,P,acme-inc\n"  # row 4: duplicate of 3 (business names compare loosely)
        "dup@x.com,O,Other\n"  # row 5: another business, not a duplicate
        "solo@x.com,O,\n"
    )
    assert csv_rows.duplicates_in_file(parsed) == {4: 3}


def test_chunks_respect_rows_and_bytes() -> None:
    parsed = csv_rows.ParsedFile(["email", "owner"], [(i + 2, [f"{i}@x.com", "O" * 50]) for i in range(10)])
    assert [len(c.rows) for c in csv_rows.chunks(parsed, max_rows=4)] == [4, 4, 2]
    assert [c.index for c in csv_rows.chunks(parsed, max_rows=4)] == [0, 1, 2]
    by_bytes = list(csv_rows.chunks(parsed, max_rows=500, max_bytes=200))
    assert all(len(c.rows) <= 3 for c in by_bytes)
    assert [r for c in by_bytes for r, _ in c.rows] == list(range(2, 12))


def test_row_ids_are_deterministic_distinct_and_sort_with_the_job() -> None:
    job = "imp_01JABCDEFGHJKMNPQRSTVWXYZ0"
    ids = [csv_rows.row_id("inv", job, row) for row in range(2, 1000)]
    assert ids == [csv_rows.row_id("inv", job, row) for row in range(2, 1000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("inv_01JABCDEFG") and len(i) == len("inv_") + 26 for i in ids)
    assert ids == sorted(ids)  # row order is id order within an import
    other = csv_rows.row_id("inv", "imp_01JABCDEFGHJKMNPQRSTVWXYZ1", 2)
    assert other not in ids
    assert csv_rows.row_nonce("seed", 2) == csv_rows.row_nonce("seed", 2) != csv_rows.row_nonce("seed", 3)
    assert csv_rows.row_nonce("seed", 2) != csv_rows.row_nonce("other", 2)
