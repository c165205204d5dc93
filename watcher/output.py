"""Everything the command line prints goes through here, because most of it is untrusted text.

Borrower names come from a bank's CSV, company and person names and error details from registries,
notes from officers: none of it may crash the output (rich reads ``[/x]`` as a closing tag) or drive
the terminal (``ESC ] 0 ; … BEL`` retitles the window, CSI sequences move the cursor and recolour,
C1 characters do the same on some terminals). So text for people (plain lines, tables, the progress
bar) is never read as markup and has control sequences and characters removed; json keeps
the data exactly, with every control character escaped, so it stays valid and inert on a terminal;
CSV is written as it is, for spreadsheets and scripts.

Tables fit the terminal (:mod:`watcher.table_fit`): text wraps and the least useful columns are
left out first, but no cell is cut short. Piped, a table honours ``COLUMNS`` when it is set and is
otherwise printed as tab-separated rows under a header line, one row per line. Times are shown in
a zone, with its offset (:func:`when`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from watcher.record import LISTING_CATEGORIES, Action, Category
from watcher.table_fit import ColumnNeeds, Fit, Layout, fit_columns
from watcher.units import format_moment
from watcher.vocabulary import Language, Severity

if TYPE_CHECKING:
    from watcher.store import HistoryRow

_ESCAPE_SEQUENCE = re.compile(
    # CSI: colours, cursor movement, erasing (ESC [ or the 8-bit C1 form), parameters and all.
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    # Every other escape: ESC, intermediate bytes, a final byte. For a string (OSC, DCS, APC…: a
    # window title, a link) that removes the introducer and ESC \ only; BEL and C1 go with the
    # control characters. Its text stays visible, so a string begun in one value and ended in
    # another cannot hide what lies between.
    r"|\x1b[ -/]*[0-~]"
)
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# C0 but tab and newline, DEL, C1, and the bidi embeddings/overrides/isolates that reorder what is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw: DEL, C1, the two separators that split lines, bidi controls.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(value: object, *, one_line: bool = True) -> str:
    """``value`` as text safe to show on a terminal: no escape sequences, no control characters.

    ``one_line`` turns line breaks into spaces, so one record stays one line; otherwise they become
    plain newlines (table cells may wrap).
    """
    if value is None:
        return ""
    text = _ESCAPE_SEQUENCE.sub("", str(value))
    if one_line:
        return _CONTROL.sub("", _LINE_BREAK.sub(" ", text))
    return _CONTROL_BUT_NEWLINE.sub("", _LINE_BREAK.sub("\n", text))


def echo(message: object = "", *, err: bool = False) -> None:
    """Print one line for people (on stderr with ``err``)."""
    typer.echo(printable(message), err=err)


def echo_document(text: str) -> None:
    """A document of several lines as it is (Graphviz input…), without escape sequences or control
    characters a terminal would act on."""
    typer.echo(printable(text, one_line=False), nl=False)


def json_text(value: object, *, indent: int | None = None) -> str:
    """JSON with the data kept whole; characters a terminal or a line splitter would act on are escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def echo_json(value: object, *, indent: int | None = None) -> None:
    typer.echo(json_text(value, indent=indent))


@dataclass
class Table:
    """Rows for a table, each cell already :func:`printable`; shown with :func:`print_table`.

    ``fits`` says how a column gives way on a narrow terminal (:class:`Fit`; ``WORDS`` when not
    named); ``drop_first`` names the columns to leave out, in that order, when it is too narrow
    even so, ``drop_to_fit`` those left out after them only when the table would not fit at all.
    """

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    fits: dict[str, Fit] = field(default_factory=dict)
    drop_first: tuple[str, ...] = ()
    drop_to_fit: tuple[str, ...] = ()

    def add_row(self, *cells: object) -> None:
        self.rows.append(tuple(printable(cell, one_line=False).replace("\t", " ") for cell in cells))

    def fit_of(self, column: str) -> Fit:
        return self.fits.get(column, Fit.WORDS)


def table(
    *columns: str,
    text: Iterable[str] = (),
    keep: Iterable[str] = (),
    drop_first: Iterable[str] = (),
    drop_to_fit: Iterable[str] = (),
) -> Table:
    """A table of ``columns``: ``text`` ones hold free text, ``keep`` ones never wrap (see :class:`Table`)."""
    fits = {column: Fit.TEXT for column in text} | {column: Fit.KEEP for column in keep}
    return Table(columns, fits=fits, drop_first=tuple(drop_first), drop_to_fit=tuple(drop_to_fit))


def _console(width: int | None = None):
    from rich.console import Console

    # Piped output is read by people in files and logs, not squeezed into an 80-column guess.
    if width is None and not sys.stdout.isatty():
        width = 200
    return Console(width=width, markup=False, emoji=False, highlight=False)


def table_width() -> int | None:
    """The width a table must fit: the terminal's (``COLUMNS`` first, as rich reads it); piped,
    ``COLUMNS`` if set; None when piped without it (tab-separated rows then)."""
    if sys.stdout.isatty():
        return int(_console().width)
    columns = os.environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def print_table(rows: Table) -> None:
    """The table fitted to the terminal; tab-separated rows when piped without ``COLUMNS`` or when
    the terminal is too narrow for any table of these columns."""
    width = table_width()
    layout = _layout(rows, width) if width is not None else None
    if layout is None:
        _print_tab_separated(rows)
        return
    _print_fitted(rows, layout, width or 0)


def _print_tab_separated(rows: Table) -> None:
    """One line per row, cells separated by tabs (a tab or line break inside a cell becomes a space)."""

    def line(cells: Iterable[str]) -> str:
        return "\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in cells)

    typer.echo(line(rows.columns))
    for row in rows.rows:
        typer.echo(line(row))


def _print_fitted(rows: Table, layout: Layout, width: int) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text cells are never parsed as markup, whatever brackets the data holds; a word longer than
    # its column folds onto the next line rather than being cut off with "…".
    shown = RichTable(show_lines=False)
    for index, column_width in zip(layout.kept, layout.widths, strict=True):
        shown.add_column(Text(rows.columns[index]), width=column_width, overflow="fold")
    for row in rows.rows:
        shown.add_row(*(Text(row[index]) for index in layout.kept))
    _console(width).print(shown)


def _layout(rows: Table, width: int) -> Layout | None:
    from rich.cells import cell_len

    def needs(index: int, column: str) -> ColumnNeeds:
        lines = [line for cell in (column, *(row[index] for row in rows.rows)) for line in cell.split("\n")]
        words = [word for line in lines for word in line.split()]
        return ColumnNeeds(
            name=column,
            fit=rows.fit_of(column),
            natural=max(cell_len(line) for line in lines),
            longest_word=max((cell_len(word) for word in words), default=0),
            two_lines=max(_two_line_width(line, cell_len) for line in lines),
        )

    columns = [needs(index, column) for index, column in enumerate(rows.columns)]
    return fit_columns(columns, width, rows.drop_first, rows.drop_to_fit)


def _two_line_width(line: str, cell_len: Callable[[str], int]) -> int:
    """The narrowest width at which ``line`` wraps at a space into at most two lines."""
    words = line.split()
    if len(words) < 2:
        return cell_len(line)
    return min(
        max(cell_len(" ".join(words[:cut])), cell_len(" ".join(words[cut:]))) for cut in range(1, len(words))
    )


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[str | None], None]]:
    """A progress bar for a terminal; the step function advances it, printing a problem above it."""
    from rich.markup import escape
    from rich.progress import Progress
    from rich.text import Text

    with Progress(console=_console(), transient=False) as progress:
        task = progress.add_task(escape(printable(description)), total=total)  # the column reads markup

        def step(problem: str | None = None) -> None:
            progress.advance(task)
            if problem is not None:
                progress.console.print(Text(printable(problem), style="red"))

        yield step


def when(value: datetime | None, zone: tzinfo) -> str:
    """A time as people read it in a table or a line: to the minute in ``zone``, with its offset
    ("2026-12-06 09:41 +08:00"); empty for none."""
    return format_moment(value, zone) if value else ""


class HistoryFormat(StrEnum):
    table = "table"
    csv = "csv"
    jsonl = "jsonl"


def print_history(
    rows: Iterable[HistoryRow], output_format: HistoryFormat, zone: tzinfo, language: Language = Language.EN
) -> None:
    """The change history: a table for people (in ``language``, times in ``zone``), CSV for
    spreadsheets (formulas neutralised), JSON lines; the last two keep the stored values exactly, with
    ISO 8601 times and their offset."""
    if output_format is HistoryFormat.jsonl:
        for row in rows:
            echo_json(row.as_json())
    elif output_format is HistoryFormat.csv:
        _history_csv(rows)
    else:
        _history_table(rows, zone, language)


def _history_csv(rows: Iterable[HistoryRow]) -> None:
    from watcher.spreadsheet import csv_rows
    from watcher.store import HISTORY_FIELDS

    csv_rows(HISTORY_FIELDS, (row.as_json() for row in rows), sys.stdout)


def _history_table(rows: Iterable[HistoryRow], zone: tzinfo, language: Language) -> None:
    from watcher.labels import CATEGORY_LABEL, HISTORY_HEADERS, PARTY_LABEL
    from watcher.presentation import subject_label, value_label
    from watcher.render import SEVERITY_LABEL

    header = dict(zip(HISTORY_HEADERS[Language.EN], HISTORY_HEADERS[language], strict=True))
    shown = table(
        *HISTORY_HEADERS[language],
        text=[header[c] for c in ("borrower", "subject", "party", "before → after")],
        keep=[header[c] for c in ("id", "action", "effective", "severity", "alert")],
        # before → after does not name whom it is about: the subject goes only when nothing else can.
        drop_first=[header[c] for c in ("alert", "id", "action", "party", "effective", "severity")],
        drop_to_fit=[header["subject"]],
    )
    for row in rows:
        change = row.change_line()
        party = PARTY_LABEL[language].get(change.party, "") if change.party else ""
        severity = SEVERITY_LABEL[language].get(Severity(row.severity), row.severity) if row.severity else ""
        shown.add_row(
            str(row.id),
            when(row.detected_at, zone),
            f"{row.borrower_id} {row.borrower_name}",
            CATEGORY_LABEL[language][change.category],
            _action_label(change.category, change.action, language),
            subject_label(change, language),
            f"{party} {row.party_name or ''}".strip(),
            f"{value_label(change, row.before, language)} → {value_label(change, row.after, language)}",
            row.effective_date.isoformat() if row.effective_date else "",
            severity,
            str(row.alert_id or ""),
        )
    print_table(shown)


def _action_label(category: Category, action: Action, language: Language) -> str:
    from watcher.labels import ACTION_LABEL, LISTING_ACTION_LABEL

    labels = LISTING_ACTION_LABEL if category in LISTING_CATEGORIES else ACTION_LABEL
    return labels[language][action]
