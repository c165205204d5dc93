"""How a table for people fits a terminal: which columns to leave out, and how wide each one is.

Pure: takes each column's needs in terminal cells and the width to fit, returns the columns kept and
their widths. Nothing is ever cut short: a column narrower than its text wraps it, the least useful
columns (the table's own ``drop_first`` order, then ``drop_to_fit``) are left out before anything
else gives way, and a terminal too narrow for the narrowest layout gets no table at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

TEXT_LEAST = 12
"""The narrowest a free-text column becomes when no column is left to leave out."""
TEXT_COMFORTABLE = 24
"""A free-text column narrower than this (and than its text) reads badly: a column is left out first."""


class Fit(StrEnum):
    """How a column gives way when the terminal is narrow."""

    KEEP = "keep"  # never wraps: ids, categories, severities
    WORDS = "words"  # wraps between words, never inside one: "2026-12-06" above "09:41 +08:00"
    TEXT = "text"  # free text: wraps between words, and folds a word too long for the column


@dataclass(frozen=True, slots=True)
class ColumnNeeds:
    """One column's widths in terminal cells: its widest line (header included), its longest word,
    and the width at which no cell of it takes more than two lines (a time: date above clock)."""

    name: str
    fit: Fit
    natural: int
    longest_word: int
    two_lines: int = 0

    @property
    def least(self) -> int:
        """The narrowest this column may be made without cutting or folding what it holds."""
        if self.fit is Fit.KEEP:
            return self.natural
        if self.fit is Fit.WORDS:
            return min(self.natural, self.longest_word)
        return min(self.natural, TEXT_LEAST)

    @property
    def comfortable(self) -> int:
        """The width this column should have before less useful columns are kept."""
        if self.fit is Fit.KEEP:
            return self.natural
        if self.fit is Fit.WORDS:
            return min(self.natural, max(self.longest_word, self.two_lines))
        return min(self.natural, TEXT_COMFORTABLE)


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns kept (their positions in the table, in order) and the width of each."""

    kept: tuple[int, ...]
    widths: tuple[int, ...]


def frame_width(columns: int) -> int:
    """What the box adds around ``columns`` columns: a border at each side and between columns,
    and one cell of padding either side of every column."""
    return 3 * columns + 1


def fit_columns(
    needs: Sequence[ColumnNeeds], width: int, drop_first: Sequence[str] = (), drop_to_fit: Sequence[str] = ()
) -> Layout | None:
    """The widest layout of ``needs`` within ``width`` cells, or None when even the narrowest one
    is too wide (the caller then prints plain rows: a table squeezed further would split dates
    mid-token and print headers one letter a line).

    Columns named in ``drop_first`` are left out, in that order, while the columns cannot all have a
    comfortable width (times on two lines at most, free text at least ``TEXT_COMFORTABLE`` wide);
    those in ``drop_to_fit`` (the more useful ones) only while the columns do not fit at their
    narrowest. Every column starts at its narrowest width; spare cells bring the columns to their
    comfortable width first, then let word-wrapped columns (times) fit on one line, then widen
    free-text columns evenly.
    """
    kept = list(range(len(needs)))
    position = {column.name: index for index, column in enumerate(needs)}
    for names, comfortable in ((drop_first, True), (drop_to_fit, False)):
        for name in names:
            if _total(needs, kept, comfortable=comfortable) <= width:
                break
            index = position.get(name)
            if index in kept and len(kept) > 1:
                kept.remove(index)
    spare = width - _total(needs, kept, comfortable=False)
    if spare < 0:
        return None
    widths = {index: needs[index].least for index in kept}
    spare = _grow_words(needs, widths, spare, lambda column: column.comfortable)
    spare = _share_among_text(needs, widths, spare, lambda column: column.comfortable)
    spare = _grow_words(needs, widths, spare, lambda column: column.natural)
    _share_among_text(needs, widths, spare, lambda column: column.natural)
    return Layout(tuple(kept), tuple(widths[index] for index in kept))


def _total(needs: Sequence[ColumnNeeds], kept: Sequence[int], *, comfortable: bool) -> int:
    widths = (needs[index].comfortable if comfortable else needs[index].least for index in kept)
    return sum(widths) + frame_width(len(kept))


def _grow_words(
    needs: Sequence[ColumnNeeds], widths: dict[int, int], spare: int, target: Callable[[ColumnNeeds], int]
) -> int:
    """Widen each word-wrapped column to ``target`` if the spare cells allow it all (a time on one
    line, or two, not three); return the cells left."""
    for index in widths:
        growth = target(needs[index]) - widths[index]
        if needs[index].fit is Fit.WORDS and 0 < growth <= spare:
            widths[index] += growth
            spare -= growth
    return spare


def _share_among_text(
    needs: Sequence[ColumnNeeds], widths: dict[int, int], spare: int, target: Callable[[ColumnNeeds], int]
) -> int:
    """Widen the free-text columns toward ``target`` by up to ``spare`` cells in all, one cell each
    in turn (the narrowest first); return the cells left."""
    growing = [index for index in widths if needs[index].fit is Fit.TEXT]
    while spare > 0:
        short = [index for index in growing if widths[index] < target(needs[index])]
        if not short:
            break
        for index in sorted(short, key=lambda i: widths[i])[:spare]:
            widths[index] += 1
            spare -= 1
    return spare
