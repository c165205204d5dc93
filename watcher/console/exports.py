"""History and alert exports for audits, as CSV and XLSX.

Registry text is untrusted and spreadsheets execute formulas: a company called ``=HYPERLINK(...)``
must arrive as text. Every formula trigger (``=``, ``+``, ``-``, ``@`` and their full-width forms)
that a spreadsheet could read as the start of a cell gets an apostrophe before it, OWASP's advice
for CSV injection: at the start of the text, but also after any separator or line break, since a
program that splits the text on another delimiter (``ACME;=cmd|' /C calc'!A0`` opened with ``;``),
or on lines, would start a cell there. A leading tab or carriage return, which some programs skip,
is treated the same way. XLSX cells are also written with the string type. :func:`neutralise` is the
one function every CSV and XLSX writer of the project uses (``watcher history --format csv`` too).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from watcher.models import Alert, Borrower
from watcher.store import HISTORY_FIELDS, HistoryRow

ALERT_FIELDS: tuple[str, ...] = (
    "id",
    "created_at",
    "severity",
    "status",
    "kind",
    "borrower_id",
    "borrower_name",
    "source",
    "acknowledged_by",
    "acknowledged_at",
    "note",
    "closed_by",
    "closed_at",
)

FORMULA_TRIGGERS = "=+-@\uff1d\uff0b\uff0d\uff20"
"""Characters that make a spreadsheet cell a formula (``=`` ``+`` ``-`` ``@``, ASCII and full-width)."""
CELL_SEPARATORS = ",;|\t\r\n\v\f\x1c\x1d\x1e\x1f\x85\u2028\u2029"
"""Delimiters and line breaks after which some program may start a new cell."""
_CELL_START = re.compile(
    f"(?:^|(?<=[{re.escape(CELL_SEPARATORS)}]))([ \u3000]*)(?=[{re.escape(FORMULA_TRIGGERS)}])|^(?=[\t\r])"
)
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: object) -> object:
    """A text value no spreadsheet can take for a formula, wherever it starts a cell; numbers and
    empty values unchanged."""
    if not isinstance(value, str):
        return value
    return _CELL_START.sub(lambda match: (match[1] or "") + "'", value)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def history_records(rows: Iterable[HistoryRow]) -> list[dict]:
    """The ``watcher history`` jsonl contract, one dict per change event."""
    return [row.as_json() for row in rows]


def alert_records(rows: Iterable[tuple[Alert, Borrower | None]]) -> list[dict]:
    """One dict per alert; an alert about a whole source (a monitoring gap) has no borrower."""
    return [
        {
            "id": alert.id,
            "created_at": _iso(alert.created_at),
            "severity": alert.severity,
            "status": alert.status,
            "kind": alert.kind,
            "borrower_id": borrower.id if borrower else None,
            "borrower_name": borrower.name if borrower else None,
            "source": alert.source,
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": _iso(alert.acknowledged_at),
            "note": alert.note,
            "closed_by": alert.closed_by,
            "closed_at": _iso(alert.closed_at),
        }
        for alert, borrower in rows
    ]


def to_csv(fields: Sequence[str], records: Iterable[dict]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else neutralise(value) for key, value in record.items()})
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(sheet_title: str, fields: Sequence[str], records: Iterable[dict]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = sheet_title
    sheet.append(list(fields))
    for record in records:
        row = []
        for key in fields:
            value = record.get(key)
            if isinstance(value, str):
                # Control characters are not allowed in XLSX and would make openpyxl refuse the file.
                value = neutralise(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
            row.append(value)
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


__all__ = [
    "ALERT_FIELDS",
    "CSV_MEDIA_TYPE",
    "HISTORY_FIELDS",
    "XLSX_MEDIA_TYPE",
    "alert_records",
    "history_records",
    "neutralise",
    "to_csv",
    "to_xlsx",
]
