"""How tables fit a terminal (watcher.table_fit): the least useful columns go first, nothing is cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watcher.table_fit import TEXT_COMFORTABLE, ColumnNeeds, Fit, fit_columns, frame_width


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
def test_a_layout_keeps_order_drops_only_as_told_and_fits_when_it_can(
    needs: list[ColumnNeeds], width: int, data: st.DataObject
) -> None:
    names = [column.name for column in needs]
    drop_first = data.draw(st.permutations(names).flatmap(lambda order: st.just(order[: len(order) // 2])))
    layout = fit_columns(needs, width, drop_first)

    assert list(layout.kept) == sorted(layout.kept) and layout.kept  # table order; never empty
    dropped = [names[index] for index in range(len(needs)) if index not in layout.kept]
    assert set(dropped) == set(drop_first[: len(dropped)])  # only listed columns, in the listed order
    total = sum(layout.widths) + frame_width(len(layout.kept))
    least = sum(needs[index].least for index in layout.kept) + frame_width(len(layout.kept))
    for index, column_width in zip(layout.kept, layout.widths, strict=True):
        column = needs[index]
        assert column.least <= column_width <= column.natural
        if column.fit is Fit.KEEP:
            assert column_width == column.natural  # ids and categories never wrap
    if least <= width:
        assert total <= width
    else:  # nothing more may be dropped: every column at its narrowest, the terminal folds the rest
        assert len(dropped) == len(drop_first) or len(layout.kept) == 1
        assert list(layout.widths) == [needs[index].least for index in layout.kept]
    if sum(column.natural for column in needs) + frame_width(len(needs)) <= width:
        assert layout.widths == tuple(column.natural for column in needs)  # room for all: as it is


def test_history_at_80_columns_keeps_the_time_the_borrower_the_category_and_the_change() -> None:
    history = [
        ColumnNeeds("id", Fit.KEEP, 3, 3),
        ColumnNeeds("detected", Fit.WORDS, 23, 10, 12),
        ColumnNeeds("borrower", Fit.TEXT, 40, 20),
        ColumnNeeds("category", Fit.KEEP, 20, 20),
        ColumnNeeds("action", Fit.KEEP, 7, 7),
        ColumnNeeds("subject", Fit.TEXT, 30, 12),
        ColumnNeeds("party", Fit.TEXT, 5, 5),
        ColumnNeeds("before → after", Fit.TEXT, 70, 14),
        ColumnNeeds("effective", Fit.KEEP, 10, 10),
        ColumnNeeds("severity", Fit.KEEP, 8, 8),
        ColumnNeeds("alert", Fit.KEEP, 5, 5),
    ]
    drop = ("alert", "id", "subject", "action", "party", "effective", "severity")
    narrow = fit_columns(history, 80, drop)
    assert [history[index].name for index in narrow.kept] == [
        "detected",
        "borrower",
        "category",
        "before → after",
    ]
    assert narrow.widths[0] == 12  # the date above the time and its offset, never "2026…"
    assert sum(narrow.widths) + frame_width(4) == 80
    wide = fit_columns(history, 120, drop)
    kept = [history[index].name for index in wide.kept]
    assert kept == ["detected", "borrower", "category", "before → after", "effective", "severity"]
    shown = dict(zip(kept, wide.widths, strict=True))
    assert shown["detected"] >= 12 and shown["borrower"] >= TEXT_COMFORTABLE
    assert shown["before → after"] >= TEXT_COMFORTABLE
    assert sum(wide.widths) + frame_width(6) == 120
    wider = fit_columns(history, 160, drop)
    assert wider.widths[wider.kept.index(1)] == 23  # the time on one line
