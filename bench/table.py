"""The one table the benchmark suite prints: a case per row, watcher's value, urlwatch's, their ratio,
the target and the verdict; rows of the watcher-only suites leave the urlwatch columns empty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

HEADER = ("case", "watcher", "urlwatch", "w/u", "target", "verdict / detail")


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    watcher: str = ""
    urlwatch: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def section(title: str) -> Row:
    """A heading row that opens a suite's part of the table."""
    return Row(f"== {title}")


def print_table(rows: Sequence[Row]) -> None:
    cells = [HEADER, *(astuple(row) for row in rows if not row.case.startswith("== "))]
    widths = [max(len(cell[column]) for cell in cells) for column in range(len(HEADER) - 1)]
    rule = "-" * (sum(widths) + 2 * len(widths) + len(HEADER[-1]))
    print(_line(HEADER, widths))
    print(rule)
    for row in rows:
        if row.case.startswith("== "):
            print(row.case)
            continue
        print(_line(astuple(row), widths), flush=True)


def _line(cell: Sequence[str], widths: Sequence[int]) -> str:
    case, *numbers, verdict = cell
    aligned = [case.ljust(widths[0])] + [
        value.rjust(width) if index < 3 else value.ljust(width)
        for index, (value, width) in enumerate(zip(numbers, widths[1:], strict=True))
    ]
    return "  ".join(aligned + [verdict]).rstrip()
