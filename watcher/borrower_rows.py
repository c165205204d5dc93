"""The rows of a borrowers file (or the API's parties) once checked, and the problems found with them:
what the importer's parsing hands to its upsert, kept apart so neither has to import the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from watcher.vocabulary import PartyRole

NumberUnit = Literal["line", "row", "item"]
"""What problems count in: a CSV's lines, a workbook's rows as Excel numbers them, or the API's items
(their index in the request, from 0)."""


@dataclass(frozen=True, slots=True)
class BorrowerRow:
    id: str
    name: str
    source: str
    registry_id: str
    officer: str | None = None
    tags: tuple[str, ...] = ()
    interval_seconds: int | None = None
    legal_rep_on_file: str | None = None
    role: PartyRole | None = None
    """None when the file has no ``role`` column: a party's stored role and links stay as they are."""
    secures: tuple[str, ...] | None = None
    """The borrower ids the party guarantees or secures (a guarantor's or pledgor's, or a borrower's that
    guarantees other borrowers); None when the file has no ``secures`` column."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    message: str
    field: str | None = None
    """The column at fault, when it is one column."""


@dataclass(frozen=True, slots=True)
class ParsedBorrowers:
    rows: list[BorrowerRow] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    """The line each accepted row starts on, by borrower id."""
    rejected_ids: dict[str, int] = field(default_factory=dict)
    """The line of the first rejected row of each id no row was accepted with: a row securing it is
    told that, not that the id is nowhere."""
    unit: NumberUnit = "line"
    """What the numbers count: a CSV's lines, or a workbook's rows."""

    def reject(self, row: BorrowerRow, message: str, field: str | None = None) -> None:
        """Move an accepted ``row`` to the rejected ones, with why."""
        line = self.lines[row.id]
        self.rows.remove(row)
        self.rejected.append(RowProblem(line, message, field))
        self.rejected_ids.setdefault(row.id, line)

    @property
    def whole(self) -> str:
        """What the rows came in, for messages."""
        return "request" if self.unit == "item" else "file"
