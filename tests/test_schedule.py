"""The scheduler's promises, for any sequence of checks: property tests of the pure schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.schedule import SPREAD_FROM, next_check_at, spread_out

START = datetime(2026, 1, 1, tzinfo=UTC)

intervals = st.integers(min_value=60, max_value=30 * 86400).map(lambda s: timedelta(seconds=s))
fractions = st.floats(min_value=0, max_value=1, exclude_max=True, allow_nan=False)
borrower_ids = st.text(min_size=1, max_size=12)


@st.composite
def settings_(draw):
    interval = draw(intervals)
    jitter = interval * draw(st.floats(min_value=0, max_value=0.5, allow_nan=False))
    return interval, timedelta(seconds=round(jitter.total_seconds(), 3))


@given(
    borrower_ids,
    settings_(),
    st.one_of(st.none(), st.integers(-40 * 86400, 400 * 86400)),
    st.lists(st.tuples(st.integers(0, 40 * 86400), fractions, st.booleans()), min_size=1, max_size=30),
)
@settings(max_examples=300)
def test_after_any_check_the_next_is_at_most_one_interval_and_jitter_away(
    borrower_id, schedule, first_due, checks
):
    """Manual checks, backlogs, early and late checks, first checks and recoveries in any order:
    the next check is never pushed further out than one interval plus jitter."""
    interval, jitter = schedule
    scheduled = None if first_due is None else START + timedelta(seconds=first_due)
    now = START
    for gap, draw, settle in checks:
        now += timedelta(seconds=gap)
        scheduled = next_check_at(
            borrower_id, now, interval, scheduled=scheduled, jitter=jitter, draw=draw, settle=settle
        )
        assert now < scheduled <= now + interval + jitter


@given(
    borrower_ids,
    settings_(),
    st.one_of(st.none(), st.integers(-40 * 86400, 400 * 86400)),
    st.lists(fractions, min_size=2, max_size=30),
    st.lists(st.floats(min_value=0, max_value=0.99, allow_nan=False), min_size=30, max_size=30),
)
@settings(max_examples=300)
def test_checked_when_due_a_borrower_is_checked_once_per_interval(
    borrower_id, schedule, first_due, draws, lateness
):
    """When nothing intervenes (each check runs when due, or late by less than an interval), checks
    are at least an interval apart, and each is due one interval (plus jitter) after the last."""
    interval, jitter = schedule
    scheduled = None if first_due is None else START + timedelta(seconds=first_due)
    now = START
    due_times = []
    for draw, late in zip(draws, lateness, strict=False):
        scheduled = next_check_at(borrower_id, now, interval, scheduled=scheduled, jitter=jitter, draw=draw)
        due_times.append(scheduled)
        now = scheduled + interval * late * 0.5  # the sweep comes a little after the due time
    settled = due_times[1:]  # the first may be a manual check's or a spread-out one
    for earlier, later in zip(settled, settled[1:], strict=False):
        assert interval <= later - earlier <= interval + jitter


@given(borrower_ids, intervals)
def test_a_spread_out_borrower_is_due_within_the_spread_window(borrower_id, interval):
    spread = spread_out(borrower_id, START, interval)
    assert START + interval * SPREAD_FROM <= spread <= START + interval


def test_three_manual_checks_do_not_push_the_next_automatic_one():
    """The reported case: three manual checks moved a 24h borrower's next check 3 days 9 hours out."""
    interval, jitter = timedelta(hours=24), timedelta(minutes=30)
    due = START + timedelta(hours=9)
    scheduled = due
    for hours in (1, 2, 3):
        scheduled = next_check_at(
            "cn-1", START + timedelta(hours=hours), interval, scheduled=scheduled, jitter=jitter, draw=0.5
        )
    assert scheduled == due


def test_a_shortened_interval_brings_a_far_check_within_the_new_interval():
    scheduled = START + timedelta(days=7)
    following = next_check_at("no-1", START, timedelta(hours=24), scheduled=scheduled)
    assert START < following <= START + timedelta(hours=24)
