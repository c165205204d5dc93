"""How tables fit a terminal (watcher.table_fit): the least useful columns go first, nothing is cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watcher.table_fit import TEXT_COMFORTABLE, ColumnNeeds, Fit, Layout, fit_columns, frame_width


@st.composite
def columns(draw: st.DrawFn) -> list[ColumnNeeds]:
    count = draw(st.integers(min_value=1, max_value=9))
    made = []
    for index in range(count):
        fit = draw(st.sampled_from(list(Fit)))
        natural = draw(st.integers(min_value=1, max_value=60))
        longest_word = draw(st.integers(min_value=1, max_value=natural))
        two_lines = draw(st.integers(min_value=longest_word, max_value=natural))
        made.append(ColumnNeeds(f"c{index}", fit, natural, longest_word, two_lines))
    return made


@given(columns(), st.integers(min_value=10, max_value=250), st.data())
def test_a_layout_keeps_order_drops_only_as_told_and_fits_or_is_none(
    needs: list[ColumnNeeds], width: int, data: st.DataObject
) -> None:
    names = [column.name for column in needs]
    order = data.draw(st.permutations(names))
    drop_first, drop_to_fit = order[: len(order) // 3], order[len(order) // 3 : 2 * len(order) // 3]
    layout = fit_columns(needs, width, drop_first, drop_to_fit)

    droppable = [*drop_first, *drop_to_fit]
    if layout is None:  # too narrow for any table: even without every droppable column
        rest = [column for column in needs if column.name not in droppable]
        rest = rest or [column for column in needs if column.name == droppable[-1]]  # one always stays
        assert sum(column.least for column in rest) + frame_width(len(rest)) > width
        return
    assert list(layout.kept) == sorted(layout.kept) and layout.kept  # table order; never empty
    dropped = [names[index] for index in range(len(needs)) if index not in layout.kept]
    assert set(dropped) == set(droppable[: len(dropped)])  # only listed columns, in the listed order
    if set(dropped) & set(drop_to_fit):
        assert set(drop_first) <= set(dropped)  # the more useful columns go last
    total = sum(layout.widths) + frame_width(len(layout.kept))
    assert total <= width  # a table always fits: the terminal never folds it
    for index, column_width in zip(layout.kept, layout.widths, strict=True):
        column = needs[index]
        assert column.least <= column_width <= column.natural  # a date or a word is never split
        if column.fit is Fit.KEEP:
            assert column_width == column.natural  # ids and severities never wrap
    if sum(column.natural for column in needs) + frame_width(len(needs)) <= width:
        assert layout.widths == tuple(column.natural for column in needs)  # room for all: as it is


HISTORY = [
    ColumnNeeds("id", Fit.KEEP, 3, 3),
    ColumnNeeds("detected", Fit.WORDS, 23, 10, 12),
    ColumnNeeds("borrower", Fit.TEXT, 40, 20),
    ColumnNeeds("category", Fit.WORDS, 20, 14, 14),
    ColumnNeeds("action", Fit.KEEP, 7, 7),
    ColumnNeeds("subject", Fit.TEXT, 30, 12),
    ColumnNeeds("party", Fit.TEXT, 5, 5),
    ColumnNeeds("before → after", Fit.TEXT, 70, 14),
    ColumnNeeds("effective", Fit.KEEP, 10, 10),
    ColumnNeeds("severity", Fit.KEEP, 8, 8),
    ColumnNeeds("alert", Fit.KEEP, 5, 5),
]
DROP_FIRST = ("alert", "id", "action", "party", "effective", "severity")


def kept(layout: Layout | None) -> list[str]:
    assert layout is not None
    return [HISTORY[index].name for index in layout.kept]


def test_history_keeps_whom_a_change_is_about_longer_than_action_party_effective_severity() -> None:
    """Issue 14 follow-up, point 4: "stake 15% → 30%" must say whose stake, at 80 columns and at 140."""
    narrow = fit_columns(HISTORY, 80, DROP_FIRST, ("subject",))
    assert kept(narrow) == ["detected", "borrower", "category", "subject", "before → after"]
    assert narrow is not None and sum(narrow.widths) + frame_width(5) == 80
    assert narrow.widths[0] >= 10  # the date whole, never "2026-1" / "2-06"
    wide = fit_columns(HISTORY, 140, DROP_FIRST, ("subject",))
    assert kept(wide)[:5] == ["detected", "borrower", "category", "subject", "before → after"]
    shown = dict(zip(kept(wide), wide.widths, strict=True)) if wide else {}
    assert shown["detected"] >= 12 and shown["borrower"] >= TEXT_COMFORTABLE
    assert shown["before → after"] >= TEXT_COMFORTABLE
    wider = fit_columns(HISTORY, 200, DROP_FIRST, ("subject",))
    assert wider is not None and wider.widths[wider.kept.index(1)] == 23  # the time on one line


def test_history_gives_up_the_subject_only_to_fit_and_then_gives_up_the_table() -> None:
    at_61 = fit_columns(HISTORY, 61, DROP_FIRST, ("subject",))
    assert kept(at_61) == ["detected", "borrower", "category", "before → after"]
    assert at_61 is not None and at_61.widths[0] == 10  # "2026-03-03" above "10:00" above "+08:00"
    assert fit_columns(HISTORY, 40, DROP_FIRST, ("subject",)) is None  # plain rows, not a letter a line
