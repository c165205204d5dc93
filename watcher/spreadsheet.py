"""Spreadsheets in and out: every CSV and XLSX the project writes, and the borrowers workbook it reads.

Writing. Registry text is untrusted and spreadsheets execute formulas: a company called
``=HYPERLINK(...)`` must arrive as text. Every formula trigger (``=``, ``+``, ``-``, ``@`` and their
full-width forms) that a spreadsheet could read as the start of a cell gets an apostrophe before it,
OWASP's advice for CSV injection: at the start of the text, but also after any separator or line
break, since a program that splits the text on another delimiter (``ACME;=cmd|' /C calc'!A0`` opened
with ``;``), or on lines, would start a cell there. A leading tab or carriage return, which some
programs skip, is treated the same way. Apostrophes already standing before a trigger there get one
more, so :func:`restore` gives back exactly the text :func:`neutralise` was given: a list exported
and imported again is unchanged. XLSX cells are also written with the string type. Every CSV and
XLSX writer of the project (the console's exports, ``watcher history --format csv``, ``watcher
borrowers list --format csv|xlsx``) goes through :func:`neutralise`.

Reading. A workbook's first sheet is read streaming (openpyxl read-only, formulas as their cached
values) into rows of text cells, the text a CSV of the same sheet would hold, so the import keeps one
validation path: ids typed as numbers come back as their digits, never ``9.14e17`` or ``…890.0``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from watcher.units import format_duration

FORMULA_TRIGGERS = "=+-@\uff1d\uff0b\uff0d\uff20"
"""Characters that make a spreadsheet cell a formula (``=`` ``+`` ``-`` ``@``, ASCII and full-width)."""
CELL_SEPARATORS = ",;|\t\r\n\v\f\x1c\x1d\x1e\x1f\x85\u2028\u2029"
"""Delimiters and line breaks after which some program may start a new cell."""
_AT_CELL_START = f"(?:^|(?<=[{re.escape(CELL_SEPARATORS)}]))([ \u3000]*)"
_TRIGGER = f"[{re.escape(FORMULA_TRIGGERS)}]"
_TO_NEUTRALISE = re.compile(f"{_AT_CELL_START}(?='*{_TRIGGER})|^(?='*[\t\r])")
_NEUTRALISED = re.compile(f"{_AT_CELL_START}'(?='*{_TRIGGER})|^'(?='*[\t\r])")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ZIP_SIGNATURE = b"PK\x03\x04"
"""An XLSX workbook is a zip archive."""
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""A compound document: an Excel 97-2003 .xls, or an XLSX encrypted with a password."""
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xltm", ".xls")
EXCEL_DIGITS = 15
"""Excel keeps 15 significant digits of a number: a longer id typed as a number has lost its tail."""
_ZEROS_FORMAT = re.compile(r"0+")


def neutralise(value: object) -> object:
    """A text value no spreadsheet can take for a formula, wherever it starts a cell; numbers and
    empty values unchanged."""
    if not isinstance(value, str):
        return value
    return _TO_NEUTRALISE.sub(lambda match: (match[1] or "") + "'", value)


def restore(text: str) -> str:
    """The text :func:`neutralise` was given: the apostrophe it put at each cell start removed."""
    return _NEUTRALISED.sub(lambda match: match[1] or "", text)


def csv_rows(fields: Sequence[str], records: Iterable[dict[str, Any]], target: IO[str]) -> None:
    """``fields`` as the header, then one line per record, every text neutralised."""
    writer = csv.DictWriter(target, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else neutralise(value) for key, value in record.items()})


def to_csv(fields: Sequence[str], records: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else neutralise(value) for key, value in record.items()})
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_xlsx(
    target: Path | IO[bytes], sheet_title: str, fields: Sequence[str], records: Iterable[dict[str, Any]]
) -> None:
    """One sheet, the header frozen; rows are streamed (write-only), so a long list needs little memory.
    Text cells are neutralised and typed as strings (an id stays text); numbers stay numbers."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    sheet.freeze_panes = "A2"
    sheet.append(list(fields))
    for record in records:
        row = []
        for key in fields:
            value = record.get(key)
            if isinstance(value, str):
                # Control characters are not allowed in XLSX and would make openpyxl refuse the file.
                value = neutralise(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
                cell.number_format = "@"  # Text: Excel keeps an id typed over it as text too
            row.append(cell)
        sheet.append(row)
    workbook.save(target)


def to_xlsx(sheet_title: str, fields: Sequence[str], records: Iterable[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(buffer, sheet_title, fields, records)
    return buffer.getvalue()


class SpreadsheetError(Exception):
    """The workbook as a whole cannot be read (an .xls, encrypted, damaged, not a workbook at all)."""


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One row of a CSV file or a sheet as text cells, numbered as the user sees it (line or row)."""

    number: int
    cells: list[str]
    problem: str | None = None
    """Why the row cannot be read as text (an error value, a number that lost digits), or None."""


def is_workbook(path: Path) -> bool:
    """Whether the file is an XLSX workbook, by its content, not its name; SpreadsheetError for one
    that cannot be read: an old binary .xls, an encrypted workbook, or a workbook name on other bytes."""
    try:
        with path.open("rb") as handle:
            start = handle.read(len(OLE_SIGNATURE))
    except OSError as error:
        raise SpreadsheetError(f"{path}: cannot read ({error.strerror or error})") from None
    if start.startswith(ZIP_SIGNATURE):
        return True
    if start == OLE_SIGNATURE:
        raise SpreadsheetError(
            f"{path}: an Excel 97-2003 workbook (.xls) or a password-protected one, which cannot be read; "
            "save it as .xlsx without a password, or as CSV"
        )
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        raise SpreadsheetError(f"{path}: not an Excel workbook (neither an .xlsx zip archive nor an .xls)")
    return False


@contextmanager
def first_sheet_rows(path: Path) -> Iterator[tuple[list[str], Iterator[SheetRow]]]:
    """The header (row 1) and the rows after it that are not blank, of the workbook's first sheet."""
    from openpyxl import load_workbook

    with path.open("rb") as handle:
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True, keep_links=False)
        except Exception as error:  # openpyxl raises what its zip and XML layers raise for a damaged file
            raise _unreadable(path, error) from None
        try:
            if not workbook.worksheets:
                raise SpreadsheetError(f"{path}: the workbook has no worksheet")
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()  # some writers store wrong dimensions; read every cell there is
            rows = _text_rows(path, _sheet_rows(path, sheet))
            header = next(rows, SheetRow(1, []))
            yield header.cells, (row for row in rows if row.problem or not _blank(row.cells))
        finally:
            workbook.close()


def _blank(cells: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _unreadable(path: Path, error: BaseException) -> SpreadsheetError:
    detail = str(error).strip().splitlines()
    reason = f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__
    return SpreadsheetError(f"{path}: not a readable .xlsx workbook ({reason})")


def _sheet_rows(path: Path, sheet: Any) -> Iterator[tuple[Any, ...]]:
    """openpyxl's rows from row 1, gaps filled with empty rows; a damaged sheet part is SpreadsheetError."""
    rows = sheet.iter_rows(min_row=1, min_col=1)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as error:  # as in first_sheet_rows: the zip and XML layers' own errors
            raise _unreadable(path, error) from None
        yield row


def _text_rows(path: Path, rows: Iterator[tuple[Any, ...]]) -> Iterator[SheetRow]:
    for number, cells in enumerate(rows, 1):
        texts: list[str] = []
        problem = None
        for cell in cells:
            try:
                texts.append(cell_text(cell))
            except ValueError as error:
                texts.append("")
                problem = problem or f"cell {cell.coordinate} {error}"
        while texts and not texts[-1].strip():
            texts.pop()
        yield SheetRow(number, texts, problem)


def cell_text(cell: Any) -> str:
    """The text a CSV export of the sheet would hold for the cell; ValueError when there is none
    that can be trusted (an error value, a number Excel rounded)."""
    value = cell.value
    if value is None:
        return ""
    if getattr(cell, "data_type", None) == "e":
        raise ValueError(f"holds the error value {value}")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return _number_text(value, cell.number_format)
    return _temporal_text(value)


def _number_text(value: int | float, number_format: str) -> str:
    """Digits as typed: an integral float without ``.0``, zeros a ``000000000`` format shows kept."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"holds the number {value}")
        if not value.is_integer():
            return format(Decimal(repr(value)), "f")
        if abs(value) >= 10**EXCEL_DIGITS:
            raise ValueError(
                f"holds the number {value:.{EXCEL_DIGITS - 1}E}, which Excel keeps to {EXCEL_DIGITS} digits: "
                "format the column as Text and type the value again"
            )
        value = int(value)
    digits = str(value)
    if _ZEROS_FORMAT.fullmatch(number_format or "") and value >= 0:
        return digits.zfill(len(number_format))
    return digits


def _temporal_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


__all__ = [
    "CELL_SEPARATORS",
    "CSV_MEDIA_TYPE",
    "FORMULA_TRIGGERS",
    "XLSX_MEDIA_TYPE",
    "SheetRow",
    "SpreadsheetError",
    "cell_text",
    "csv_rows",
    "first_sheet_rows",
    "is_workbook",
    "neutralise",
    "restore",
    "to_csv",
    "to_xlsx",
    "write_xlsx",
]
