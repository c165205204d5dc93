"""History and alert exports for audits, as CSV and XLSX.

Registry text is untrusted and spreadsheets execute formulas: the cells are written by
:mod:`watcher.spreadsheet`, which neutralises every formula trigger (its docstring says how), as every
CSV and XLSX writer of the project does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from watcher.models import Alert, Borrower
from watcher.spreadsheet import (
    CELL_SEPARATORS,
    CSV_MEDIA_TYPE,
    FORMULA_TRIGGERS,
    XLSX_MEDIA_TYPE,
    neutralise,
    to_csv,
    to_xlsx,
)
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


def _iso(value: datetime | date | None) -> str | None:
    """ISO 8601; a time with its offset, in UTC (SQLite hands back naive times, all stored in UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
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


__all__ = [
    "ALERT_FIELDS",
    "CELL_SEPARATORS",
    "CSV_MEDIA_TYPE",
    "FORMULA_TRIGGERS",
    "HISTORY_FIELDS",
    "XLSX_MEDIA_TYPE",
    "alert_records",
    "history_records",
    "neutralise",
    "to_csv",
    "to_xlsx",
]
