"""Borrower import from CSV or XLSX: every bad row is reported with its line (a workbook's row) and
reason, every good row is kept. Both formats become text rows checked by the same code."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from sources.base import Source
from watcher.borrower_rows import BorrowerRow as BorrowerRow
from watcher.borrower_rows import NumberUnit as NumberUnit
from watcher.borrower_rows import ParsedBorrowers as ParsedBorrowers
from watcher.borrower_rows import RowProblem as RowProblem
from watcher.borrower_upsert import Outcome as Outcome
from watcher.borrower_upsert import UpsertCounts as UpsertCounts
from watcher.borrower_upsert import upsert_borrowers as upsert_borrowers
from watcher.models import Borrower
from watcher.spreadsheet import SheetRow, SpreadsheetError, first_sheet_rows, is_workbook, restore
from watcher.store import secured_ids
from watcher.units import format_duration, parse_duration
from watcher.vocabulary import PartyRole

if TYPE_CHECKING:
    import _csv

REQUIRED_COLUMNS = ("id", "name", "source", "registry_id")
OPTIONAL_COLUMNS = ("officer", "tags", "interval", "legal_rep_on_file", "role", "secures")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MAX_FIELD_CHARS = 1000
"""Longer cells are rejected with their row: no name, id or tag list is that long."""
MAX_KEY_CHARS = 64
"""The id and officer columns' width in the database: PostgreSQL refuses a longer value."""
UTF8_BOM = b"\xef\xbb\xbf"


class BorrowerFileError(Exception):
    """The file as a whole cannot be read (missing, undecodable, header without required columns)."""


class FieldError(ValueError):
    """A row rejected for one of its columns (``field``): the API answers with that field's path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _decode(path: Path) -> str:
    """UTF-8 (with or without Excel's BOM), else GB18030, which Chinese spreadsheet exports use.

    One encoding for the whole file: GB18030 decodes almost any bytes, so a UTF-8 file with one
    GB18030 row would otherwise import with every UTF-8 row garbled. A file that mixes them is
    refused, naming the first line that is not in the encoding the rest of the file uses.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BorrowerFileError(f"{path}: cannot read ({error.strerror or error})") from None
    has_bom = data.startswith(UTF8_BOM)
    body = data[len(UTF8_BOM) :] if has_bom else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = body.split(b"\n")  # no multi-byte character of either encoding contains a newline byte
    _refuse_mixed_encodings(path, lines, has_bom=has_bom)
    try:
        return body.decode("gb18030")
    except UnicodeDecodeError:
        neither = next(n for n, line in enumerate(lines, 1) if not _decodes(line, "gb18030"))
        raise BorrowerFileError(f"{path}: line {neither}: neither UTF-8 nor GB18030 text") from None


def _refuse_mixed_encodings(path: Path, lines: list[bytes], *, has_bom: bool) -> None:
    """Refuse a file that is not all UTF-8 yet claims to be (a BOM) or has lines of UTF-8 text."""
    not_utf8 = [number for number, line in enumerate(lines, 1) if not _decodes(line, "utf-8")]
    utf8_text = [
        number for number, line in enumerate(lines, 1) if not line.isascii() and _decodes(line, "utf-8")
    ]
    if has_bom:
        raise BorrowerFileError(
            f"{path}: line {not_utf8[0]}: not UTF-8, though the file starts with a UTF-8 byte order mark"
        )
    if utf8_text and len(utf8_text) >= len(not_utf8):
        raise BorrowerFileError(
            f"{path}: line {not_utf8[0]}: not UTF-8, unlike the rest of the file (UTF-8 text on line "
            f"{utf8_text[0]}); save the whole file in one encoding, preferably UTF-8"
        )
    if utf8_text:
        raise BorrowerFileError(
            f"{path}: line {utf8_text[0]}: UTF-8, unlike the rest of the file (GB18030 from line "
            f"{not_utf8[0]}); save the whole file in one encoding, preferably UTF-8"
        )


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


@contextmanager
def _csv_fields_up_to(size: int) -> Iterator[None]:
    """Let the csv module read fields of any length in this file, so an oversized cell is one
    rejected row rather than an error that ends the import."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, size))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def parse_borrowers_file(
    path: Path, *, sources: Mapping[str, Source], officers: Sequence[str] = ()
) -> ParsedBorrowers:
    """An XLSX workbook (known by its content, whatever its name) or a CSV file."""
    try:
        if not is_workbook(path):
            return parse_borrowers_csv(path, sources=sources, officers=officers)
        with first_sheet_rows(path) as (header, rows):
            return _parse(path, header, rows, unit="row", sources=sources, officers=officers)
    except SpreadsheetError as error:
        raise BorrowerFileError(str(error)) from None


def parse_borrowers_csv(
    path: Path, *, sources: Mapping[str, Source], officers: Sequence[str] = ()
) -> ParsedBorrowers:
    text = _decode(path)
    with _csv_fields_up_to(len(text) + 1):
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, [])
        return _parse(path, header, _numbered_rows(reader), unit="line", sources=sources, officers=officers)


def _parse(
    path: Path,
    header_cells: list[str],
    numbered_rows: Iterable[SheetRow],
    *,
    unit: NumberUnit,
    sources: Mapping[str, Source],
    officers: Sequence[str],
) -> ParsedBorrowers:
    header = _header(path, header_cells, unit)
    return _collect(((numbered, header) for numbered in numbered_rows), unit, sources, officers)


def parse_records(
    records: Sequence[Mapping[str, str]], *, sources: Mapping[str, Source], officers: Sequence[str] = ()
) -> ParsedBorrowers:
    """Rows given as column → cell text (the API's parties), numbered as items from 0 and checked as a
    file's rows are. Each record has the columns it names: one without ``role`` keeps the stored role
    and links, as a file without that column does."""

    def numbered() -> Iterator[tuple[SheetRow, Sequence[str]]]:
        for index, record in enumerate(records):
            header = [column for column in COLUMNS if column in record]
            problem = None
            if "secures" in record and "role" not in record:
                problem = "secures needs role beside it"
            yield SheetRow(index, [record[column] for column in header], problem), header

    return _collect(numbered(), "item", sources, officers)


def _collect(
    numbered_rows: Iterable[tuple[SheetRow, Sequence[str]]],
    unit: NumberUnit,
    sources: Mapping[str, Source],
    officers: Sequence[str],
) -> ParsedBorrowers:
    result = ParsedBorrowers(unit=unit)
    first_line_of = result.lines
    first_with_registry_id: dict[tuple[str, str], BorrowerRow] = {}
    for numbered, header in numbered_rows:
        line = numbered.number
        try:
            row = _checked_row(numbered, header, sources)
        except ValueError as error:
            field_name = error.field if isinstance(error, FieldError) else None
            result.rejected.append(RowProblem(line, str(error), field_name))
            bad_id = _row_id(numbered, header)
            if bad_id is not None:
                result.rejected_ids.setdefault(bad_id, line)
            continue
        if row.id in first_line_of:
            result.rejected.append(
                RowProblem(line, f"duplicate id {row.id!r} (first on {unit} {first_line_of[row.id]})", "id")
            )
            continue
        first_line_of[row.id] = line
        if row.officer and row.officer not in officers:
            result.warnings.append(
                RowProblem(
                    line, f"officer {row.officer!r} is not in [officers]; alerts reach the notifiers only"
                )
            )
        earlier = first_with_registry_id.setdefault((row.source, row.registry_id), row)
        if earlier is not row:
            result.warnings.append(
                RowProblem(
                    line, _same_registry_id(row, f"{earlier.id!r} ({unit} {first_line_of[earlier.id]})")
                )
            )
        result.rows.append(row)
    return result


def _same_registry_id(row: BorrowerRow, other: str) -> str:
    return (
        f"borrower {row.id!r} has the registry_id {row.registry_id!r} on source {row.source!r} of "
        f"borrower {other}; imported, but a duplicate is usually a typo"
    )


def registry_id_warnings(session: Session, parsed: ParsedBorrowers) -> list[RowProblem]:
    """A warning for each accepted row whose registry entity a borrower in the database that the file
    does not import already has (a later row of the file with it was warned about by the parse)."""
    in_file = {row.id for row in parsed.rows}
    existing: dict[tuple[str, str], str] = {}
    for borrower_id, source, registry_id in session.exec(
        select(Borrower.id, Borrower.source, Borrower.registry_id).order_by(col(Borrower.id))
    ):
        if borrower_id not in in_file:
            existing.setdefault((source, registry_id), borrower_id)
    warnings = []
    for row in parsed.rows:
        other = existing.pop((row.source, row.registry_id), None)  # only the file's first row with it
        if other is not None:
            warnings.append(
                RowProblem(parsed.lines[row.id], _same_registry_id(row, f"{other!r} in the database"))
            )
    return warnings


def _header(path: Path, header_row: list[str], unit: NumberUnit) -> list[str]:
    """The column names, refused as a whole when a required one is missing or one is unknown."""
    header = [name.strip() for name in header_row]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise BorrowerFileError(
            f"{path}: {unit} 1: header lacks {', '.join(missing)} (expected {','.join(REQUIRED_COLUMNS)} "
            f"and optionally {','.join(OPTIONAL_COLUMNS)})"
        )
    unknown = [column for column in header if column not in COLUMNS]
    if unknown:
        raise BorrowerFileError(f"{path}: {unit} 1: unknown column(s) {', '.join(unknown)}")
    if "secures" in header and "role" not in header:
        raise BorrowerFileError(f"{path}: {unit} 1: the secures column needs the role column beside it")
    return header


def _numbered_rows(reader: _csv.Reader) -> Iterator[SheetRow]:
    """Each row that is not blank, with its line: a quoted cell may span lines, so the line it starts on."""
    previous_end = reader.line_num
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield SheetRow(line, cells)


def _checked_row(numbered: SheetRow, header: Sequence[str], sources: Mapping[str, Source]) -> BorrowerRow:
    """The borrower of one row; ValueError with the reason when the row is rejected.

    A cell our exports neutralised (``'=…``) is read back as it was, so an exported list imports unchanged.
    """
    if numbered.problem:
        raise ValueError(numbered.problem)
    cells = numbered.cells
    if len(cells) > len(header):
        raise ValueError(f"{len(cells)} fields, header has {len(header)}")
    values = {name: restore(cell) for name, cell in zip(header, cells, strict=False)}
    _refuse_unstorable_cells(values)
    return _row(values, sources, header)


def _refuse_unstorable_cells(values: Mapping[str, str]) -> None:
    """FieldError when a cell cannot be kept: too long, or a NUL that PostgreSQL refuses."""
    for name, cell in values.items():
        if len(cell) > MAX_FIELD_CHARS:
            raise FieldError(name, f"{name} is {len(cell)} characters long (at most {MAX_FIELD_CHARS})")
        if "\x00" in cell:
            raise FieldError(name, f"{name} contains a NUL character")


def _row(
    values: Mapping[str, str | None], sources: Mapping[str, Source], header: Sequence[str]
) -> BorrowerRow:
    def cell(name: str) -> str:
        return (values.get(name) or "").strip()

    for name in REQUIRED_COLUMNS:
        if not cell(name):
            raise FieldError(name, f"{name} is empty")
    for name in ("id", "officer"):
        if len(cell(name)) > MAX_KEY_CHARS:
            raise FieldError(name, f"{name} is {len(cell(name))} characters long (at most {MAX_KEY_CHARS})")
    borrower_id, source_name = cell("id"), cell("source")
    source = sources.get(source_name)
    if source is None:
        known = ", ".join(sorted(sources)) or "none configured"
        raise FieldError("source", f"unknown source {source_name!r} (known: {known})")
    try:
        registry_id = source.normalise_id(cell("registry_id"))
    except ValueError as error:
        raise FieldError("registry_id", f"registry_id {cell('registry_id')!r}: {error}") from None
    interval_seconds = None
    if cell("interval"):
        try:
            interval_seconds = int(parse_duration(cell("interval")).total_seconds())
        except ValueError as error:
            raise FieldError("interval", f"interval {cell('interval')!r}: {error}") from None
        if interval_seconds <= 0:
            raise FieldError("interval", f"interval {cell('interval')!r}: must be longer than 0s")
    tags = tuple(sorted({tag.strip() for tag in cell("tags").replace(";", ",").split(",") if tag.strip()}))
    role, secures = _role_and_secures(borrower_id, cell("role"), cell("secures"), header)
    return BorrowerRow(
        id=borrower_id,
        name=cell("name"),
        source=source_name,
        registry_id=registry_id,
        officer=cell("officer") or None,
        tags=tags,
        interval_seconds=interval_seconds,
        legal_rep_on_file=cell("legal_rep_on_file") or None,
        role=role,
        secures=secures,
    )


def _role_and_secures(
    party_id: str, role_cell: str, secures_cell: str, header: Sequence[str]
) -> tuple[PartyRole | None, tuple[str, ...] | None]:
    """The row's role (empty: borrower) and the ids it secures, both None without a ``role`` column.

    A guarantor or pledgor secures at least one borrower; a borrower may secure others too (borrowers
    guaranteeing each other, 互保); no party secures itself. Whether the ids exist, and are borrowers,
    is judged against the whole file and the database (:func:`reject_bad_secures`).
    """
    if "role" not in header:
        return None, None
    try:
        role = PartyRole(role_cell.lower()) if role_cell else PartyRole.BORROWER
    except ValueError:
        raise FieldError("role", f"role {role_cell!r}: expected {', '.join(PartyRole)}") from None
    secures = tuple(
        sorted({part.strip() for part in secures_cell.replace(";", ",").split(",") if part.strip()})
    )
    if role.secures and not secures:
        raise FieldError("secures", f"role {role}: secures is empty (the ids of the borrowers it secures)")
    if party_id in secures:
        raise FieldError("secures", f"secures {party_id!r}: a party cannot secure itself")
    return role, secures


def _row_id(numbered: SheetRow, header: Sequence[str]) -> str | None:
    """The id cell of a row, however bad the rest of it is (None when it has none)."""
    if "id" not in header or header.index("id") >= len(numbered.cells):
        return None
    return restore(numbered.cells[header.index("id")]).strip() or None


@dataclass(slots=True)
class _SecuresCheck:
    """The file's accepted rows against the database's roles and links, rejecting rows as it goes."""

    parsed: ParsedBorrowers
    stored_roles: dict[str, PartyRole]
    stored_links: dict[str, tuple[str, ...]]
    in_file: dict[str, BorrowerRow] = field(default_factory=dict)
    hint_from: Collection[str] | None = None

    def reject(self, row: BorrowerRow, problem: tuple[str, str]) -> None:
        self.parsed.reject(row, problem[1], problem[0])
        del self.in_file[row.id]

    def securers_kept(self, borrower_id: str) -> list[str]:
        """Parties securing ``borrower_id`` whose links the file leaves as stored."""
        return sorted(
            party_id
            for party_id, ids in self.stored_links.items()
            if borrower_id in ids and (party_id not in self.in_file or self.in_file[party_id].secures is None)
        )

    def final_role(self, party_id: str) -> PartyRole | None:
        """The role ``party_id`` has once the file is imported; None when it is nowhere."""
        row = self.in_file.get(party_id)
        if row is not None and row.role is not None:
            return row.role
        return self.stored_roles.get(party_id, PartyRole.BORROWER if row is not None else None)

    def _did_you_mean(self, borrower_id: str) -> str:
        """Ids are case-sensitive: a near miss by case alone is named (among ``hint_from``'s ids
        and the file's when given: an officer's API token is told of no other officer's party)."""
        folded = borrower_id.casefold()
        stored = self.stored_roles if self.hint_from is None else self.hint_from
        known = sorted({*self.in_file, *stored} - {borrower_id})
        alike = [party for party in known if party.casefold() == folded]
        return f" (did you mean {alike[0]!r}?)" if alike else ""

    def target_problem(self, borrower_id: str) -> str | None:
        role = self.final_role(borrower_id)
        if role is None and borrower_id in self.parsed.rejected_ids:
            where = f"{self.parsed.unit} {self.parsed.rejected_ids[borrower_id]}"
            return f"secures {borrower_id!r}: borrower {borrower_id!r} was rejected ({where})"
        if role is None:
            hint = self._did_you_mean(borrower_id)
            return (
                f"secures {borrower_id!r}: no such borrower in the {self.parsed.whole} or the database{hint}"
            )
        if role.secures:
            return f"secures {borrower_id!r}, a {role}: secures names borrowers only"
        return None

    def problem(self, row: BorrowerRow) -> tuple[str, str] | None:
        """The column and reason why ``row``'s links cannot hold with the rows still accepted, or None."""
        securers = self.securers_kept(row.id)
        if row.role is not None and row.role.secures and securers:
            secured_by = ", ".join(map(repr, securers))
            return "role", f"role {row.role}: {row.id!r} is a borrower secured by {secured_by}"
        problems = (self.target_problem(borrower_id) for borrower_id in row.secures or ())
        message = next((problem for problem in problems if problem), None)
        return ("secures", message) if message else None


def reject_bad_secures(
    session: Session, parsed: ParsedBorrowers, *, hint_from: Collection[str] | None = None
) -> None:
    """Move rows whose links cannot hold to ``parsed.rejected``: an id in ``secures`` that is neither an
    accepted row of the file nor in the database, or one that is (or becomes) a guarantor or pledgor
    (a party secures borrowers, which may secure each other, not guarantors); and a row that makes a
    borrower a guarantor or pledgor while a party the file leaves as it is secures it. A rejection may
    break rows already judged (borrowers securing each other in a circle), so it runs until none is.
    A "did you mean" names only ids of the file and of ``hint_from`` when given (else any stored)."""
    check = _SecuresCheck(
        parsed,
        {party_id: PartyRole(role) for party_id, role in session.exec(select(Borrower.id, Borrower.role))},
        secured_ids(session),
        {row.id: row for row in parsed.rows},
        hint_from,
    )
    rejected = True
    while rejected:
        rejected = False
        for row in list(parsed.rows):
            problem = check.problem(row)
            if problem:
                check.reject(row, problem)
                rejected = True


def file_record(borrower: Borrower, secures: Sequence[str] = ()) -> dict[str, str]:
    """The borrower (securing ``secures``) as the row of a borrowers file that imports it unchanged,
    in :data:`COLUMNS` order."""
    interval = borrower.interval_seconds
    return {
        "id": borrower.id,
        "name": borrower.name,
        "source": borrower.source,
        "registry_id": borrower.registry_id,
        "officer": borrower.officer or "",
        "tags": ",".join(borrower.tag_list),
        "interval": format_duration(timedelta(seconds=interval)) if interval else "",
        "legal_rep_on_file": borrower.legal_rep_on_file or "",
        "role": borrower.role,
        "secures": ",".join(secures),
    }
