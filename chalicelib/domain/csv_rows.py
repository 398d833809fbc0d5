"""CSV import and export rules: the template, header checks, row validation, in-file duplicates,
deterministic ids per (job, row), and formula-injection neutralising for export.

Plain Python, no I/O. Row validation reuses :class:`InvitationFields`, so a CSV row and a JSON
create accept exactly the same values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from chalicelib.domain.invitation import InvitationFields, business_key
from chalicelib.domain.model import Model
from chalicelib.errors import TooLarge, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

COLUMNS: tuple[str, ...] = (
    "email",
    "owner",
    "first_name",
    "last_name",
    "phone",
    "business_legal_name",
    "banking_integration",
    "channel",
)
REQUIRED: tuple[str, ...] = ("email", "owner")
EXAMPLE_ROW: tuple[str, ...] = (
    "jane@smallbiz.com",
    "Olivia Officer",
    "Jane",
    "Doe",
    "514 555 0123",  # a "+" first would be read as a formula: the export guard would put a quote before it
    "Jane's Bakery Inc.",
    "waterfall",
    "email",
)
EXAMPLE_LEFT_IN = "this is the template's example row: replace it with your customers, or delete it"

MAX_ROWS = 50_000
# Lambda takes at most 6 MB per request (API Gateway's 10 MB does not matter): the body travels inside the event,
# escaped (quotes, line ends), so a file is capped at 5 MB; larger files are split into several imports.
MAX_MEGABYTES = 5
MAX_BYTES = MAX_MEGABYTES * 1024 * 1024
CHUNK_ROWS = 500
# A chunk is stored as one DynamoDB item (400 KB at most): keep well under it.
CHUNK_BYTES = 250_000
MAX_REASON = 200

Outcome = Literal["created", "duplicate", "invalid", "valid"]

# OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheets. A spreadsheet that
# splits on ';' (Excel in fr-CA and most of Europe) or on tabs sees every part of a cell between those as a cell of
# its own, so each part (after any spaces) is checked, not only the start of the cell.
# Spaces and quotes before the sign do not stop a spreadsheet: they are skipped when looking for it.
_FORMULA_PART = re.compile(r"(^|[,;\t\r\n])(?=[ \"]*[=+\-@])")
_CONTROL_START = ("\t", "\r")


def template_csv() -> str:
    return to_csv([COLUMNS, EXAMPLE_ROW])


def neutralise(cell: str) -> str:
    """Put ``'`` before every part of the cell a spreadsheet would run as a formula (OWASP CSV injection), whether
    it splits on ``,``, ``;`` or tabs; a cell starting with a tab or CR gets one too."""
    safe = _FORMULA_PART.sub(r"\1'", cell)
    return "'" + safe if safe.startswith(_CONTROL_START) else safe


def to_csv(rows: Iterable[Sequence[Any]], *, escape: bool = True) -> str:
    """CSV with every text cell quoted (numbers stay numbers) and, with ``escape``, formula-like parts neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if isinstance(value, int | float) and not isinstance(value, bool):
                cells.append(value)
            else:
                text = "" if value is None else str(value)
                cells.append(neutralise(text) if escape else text)
        writer.writerow(cells)
    return out.getvalue()


# --- upload ---------------------------------------------------------------------------------------
def decode(body: bytes) -> str:
    """UTF-8 with or without a byte-order mark; anything else is a 400 naming the problem."""
    if not body.strip():
        raise ValidationFailed("the file is empty", fields={"body": "empty; expected a CSV with a header row"})
    if len(body) > MAX_BYTES:
        raise TooLarge(
            f"the file is larger than {MAX_MEGABYTES} MB (Lambda takes at most 6 MB per request); "
            "split it into several files and import each",
            fields={"body": f"larger than {MAX_MEGABYTES} MB; split the file"},
        )
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"the file is not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8'",
            fields={"body": "not UTF-8"},
        ) from exc


def header_key(name: str) -> str:
    """``" First Name "`` -> ``first_name``: how a spreadsheet user's header maps to a column."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def check_header(raw: Sequence[str]) -> list[str]:
    """Normalised column names; raises ValidationFailed naming missing, unknown and repeated columns."""
    names = [header_key(n) for n in raw]
    while names and not names[-1]:  # spreadsheets often leave empty trailing header cells
        names.pop()
    problems: dict[str, str] = {}
    for required in REQUIRED:
        if required not in names:
            problems[required] = "required column is missing"
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            problems[f"column {position}"] = "has no name"
        elif name not in COLUMNS:
            problems[name] = "unknown column"
        elif name in seen:
            problems[name] = "column appears more than once"
        seen.add(name)
    if problems:
        listed = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise ValidationFailed(
            f"the header row is not valid ({listed}). Expected columns: {', '.join(COLUMNS)}",
            fields=problems,
        )
    return names


@dataclass
class ParsedFile:
    columns: list[str]
    # (row number as a spreadsheet shows it: the header is row 1, the first data row is row 2, cells)
    rows: list[tuple[int, list[str]]]


def parse(text: str) -> ParsedFile:
    """Read the header and every non-blank row. Raises ValidationFailed for header errors or too many rows."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ValidationFailed("the file has no header row", fields={"body": "no header row"}) from exc
    columns = check_header(header)
    rows: list[tuple[int, list[str]]] = []
    try:
        # Rows count records, as a spreadsheet does: a quoted cell spanning lines is still one row.
        for row, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise ValidationFailed(
                    f"the file has more than {MAX_ROWS} rows; split it into several imports",
                    fields={"body": f"more than {MAX_ROWS} rows"},
                )
            rows.append((row, cells))
    except csv.Error as exc:
        raise ValidationFailed(
            f"the file is not valid CSV near line {reader.line_num}: {exc}", fields={"body": "not valid CSV"}
        ) from exc
    if not rows:
        raise ValidationFailed("the file has a header but no rows", fields={"body": "no rows"})
    return ParsedFile(columns, rows)


# --- rows -----------------------------------------------------------------------------------------
class RowResult(Model):
    row: int
    outcome: Outcome
    invitation_id: str | None = None
    field: str | None = None
    reason: str | None = None


@dataclass
class RowCheck:
    """A row validated: ``fields`` when valid, otherwise the first bad field and every reason."""

    row: int
    fields: InvitationFields | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def invalid_result(self) -> RowResult:
        name, reason = next(iter(self.errors.items()))
        if len(self.errors) > 1:
            reason += "; " + "; ".join(f"{k}: {v}" for k, v in list(self.errors.items())[1:])
        return RowResult(row=self.row, outcome="invalid", field=name, reason=reason[:MAX_REASON])


def validate_row(columns: Sequence[str], row: int, cells: Sequence[str]) -> RowCheck:
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        return RowCheck(row, errors={"row": f"has {len(cells)} cells but the header has {len(columns)} columns"})
    data: dict[str, Any] = {}
    for name, value in zip(columns, cells, strict=False):
        value = value.strip()
        if value:
            data[name] = value.lower() if name in ("banking_integration", "channel") else value
    try:
        fields = InvitationFields.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            # A rule across fields has no location; its message starts with the field it asks for.
            name = ".".join(str(p) for p in err["loc"]) or next(
                (c for c in COLUMNS if message.startswith(c + " ")), "row"
            )
            if err["type"] == "missing":
                message = "is required"
            errors.setdefault(name, message[:MAX_REASON])
        return RowCheck(row, errors=errors)
    if is_the_example(fields):
        return RowCheck(row, errors={"email": EXAMPLE_LEFT_IN})
    return RowCheck(row, fields=fields)


def is_the_example(fields: InvitationFields) -> bool:
    """The template's example row, left in the file (however its columns are ordered): importing it would invite
    a stranger's address, and its bounce would count against the lender's sending."""
    example = dict(zip(COLUMNS, EXAMPLE_ROW, strict=True))
    compared = ("email", "first_name", "last_name", "business_legal_name")
    return all(getattr(fields, name) == example[name] for name in compared)


def quick_key(columns: Sequence[str], cells: Sequence[str]) -> tuple[str, str] | None:
    """A cheap (email, business) key, no validation: rows with equal keys are candidates for duplicates."""
    values = dict(zip(columns, cells, strict=False))
    email = unicodedata.normalize("NFC", values.get("email", "").strip()).lower()
    if not email:
        return None
    return email, business_key(values.get("business_legal_name", "").strip() or None)


def duplicates_in_file(parsed: ParsedFile) -> dict[int, int]:
    """row -> the earlier valid row with the same email and business legal name (the guard's key).

    Only rows sharing a cheap key are validated here, so a clean file costs one dict pass. Within a
    group the first *valid* row wins; invalid rows are left for the worker to report.
    """
    groups: dict[tuple[str, str], list[tuple[int, list[str]]]] = {}
    for row, cells in parsed.rows:
        key = quick_key(parsed.columns, cells)
        if key is not None:
            groups.setdefault(key, []).append((row, cells))
    duplicate_of: dict[int, int] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        first: dict[tuple[str, str], int] = {}
        for row, cells in members:
            check = validate_row(parsed.columns, row, cells)
            if check.fields is None:
                continue
            real = (check.fields.email, business_key(check.fields.business_legal_name))
            if real in first:
                duplicate_of[row] = first[real]
            else:
                first[real] = row
    return duplicate_of


@dataclass
class Chunk:
    index: int
    rows: list[tuple[int, list[str]]]


def chunks(parsed: ParsedFile, max_rows: int = CHUNK_ROWS, max_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Row-contiguous chunks of at most ``max_rows`` rows and about ``max_bytes`` of cell text."""
    current: list[tuple[int, list[str]]] = []
    size = 0
    index = 0
    for row, cells in parsed.rows:
        row_size = sum(len(c) + 4 for c in cells) + 16
        if current and (len(current) >= max_rows or size + row_size > max_bytes):
            yield Chunk(index, current)
            index += 1
            current, size = [], 0
        current.append((row, cells))
        size += row_size
    if current:
        yield Chunk(index, current)


# --- deterministic identities -----------------------------------------------------------------------
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:16], "big")


def row_id(prefix: str, job_id: str, row: int) -> str:
    """The same id every time a (job, row) is processed, so a redelivered chunk rewrites, never duplicates.

    Shape of :func:`chalicelib.domain.ids.new_id`: the job's 10-character time prefix keeps ids
    sorted by creation time, then the job's fingerprint, the row number and a check part.
    """
    body = job_id.split("_", 1)[-1]
    time_part = body[:10]
    return f"{prefix}_{time_part}{_base32(_digest(job_id), 7)}{_base32(row, 5)}{_base32(_digest(job_id, str(row)), 4)}"


def row_nonce(job_secret: str, row: int) -> str:
    """The link nonce of a row: secret (from the job's random seed) yet the same on every retry."""
    return hashlib.sha256(f"{job_secret}:{row}".encode()).hexdigest()[:32]
