"""The scheduler's promises, for any sequence of checks: property tests of the pure schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.schedule import next_check_at, phase_of

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
    st.lists(st.tuples(st.integers(0, 40 * 86400), fractions), min_size=1, max_size=30),
)
@settings(max_examples=300)
def test_after_any_check_the_next_is_at_most_one_interval_and_jitter_away(
    borrower_id, schedule, first_due, checks
):
    """Manual checks, backlogs, early and late checks in any order: never pushed further out."""
    interval, jitter = schedule
    scheduled = None if first_due is None else START + timedelta(seconds=first_due)
    now = START
    for gap, draw in checks:
        now += timedelta(seconds=gap)
        scheduled = next_check_at(borrower_id, now, interval, scheduled=scheduled, jitter=jitter, draw=draw)
        assert now < scheduled <= now + interval + jitter


@given(
    borrower_ids,
    settings_(),
    st.one_of(st.none(), st.integers(-40 * 86400, 400 * 86400)),
    st.lists(fractions, min_size=3, max_size=30),
)
@settings(max_examples=300)
def test_checked_when_due_a_borrower_keeps_its_phase_and_its_interval(
    borrower_id, schedule, first_due, draws
):
    """When nothing intervenes (each check runs when due), checks are an interval apart, give or take
    the jitter, on the borrower's own phase: after the first due check, which joins the phase."""
    interval, jitter = schedule
    scheduled = None if first_due is None else START + timedelta(seconds=first_due)
    now = START
    times = []
    for draw in draws:
        scheduled = next_check_at(borrower_id, now, interval, scheduled=scheduled, jitter=jitter, draw=draw)
        now = scheduled
        times.append(now)
    period, phase = interval.total_seconds(), phase_of(borrower_id, interval)
    on_phase = times[1:]
    for earlier, later in zip(on_phase, on_phase[1:], strict=False):
        assert later - earlier >= interval - jitter - timedelta(milliseconds=1)
    for moment in on_phase:
        offset = (moment.timestamp() - phase) % period
        assert offset <= jitter.total_seconds() + 0.01 or offset >= period - 0.01


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
