"""The scheduler's promises, for any sequence of checks: property tests of the pure schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.record import Signal
from watcher.schedule import (
    SPREAD_FROM,
    due_signals,
    next_check_at,
    read_signals_checked,
    signals_checked_after,
    spread_out,
)

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


# -- vendor signals: each on its own cadence ------------------------------------------------------

signal_sets = st.frozensets(st.sampled_from(list(Signal)))
cadences = st.dictionaries(
    st.sampled_from(list(Signal)), st.integers(0, 30 * 86400).map(lambda s: timedelta(seconds=s))
)


@given(signal_sets, cadences, st.integers(1, 2 * 86400), st.lists(fractions, min_size=2, max_size=60))
@settings(max_examples=300)
def test_on_the_daemon_path_each_signal_keeps_its_cadence(enabled, cadence, interval_s, gaps):
    """Checks at most one interval apart, each fetching what is due and stamping it: a signal is
    fetched at the first check, never again before its cadence has passed, and always by the first
    check after it has (so within its cadence plus one interval); the registry card at every check."""
    interval = timedelta(seconds=interval_s)
    checked: str | None = None
    fetches: dict[Signal, list[datetime]] = {}
    checks: list[datetime] = []
    now = START
    for step, gap in enumerate(gaps):
        if step:
            now += max(timedelta(seconds=1), min(interval, interval * gap))
        due = due_signals(enabled, cadence, read_signals_checked(checked), now)
        assert Signal.REGISTRY in due and due <= enabled | {Signal.REGISTRY}
        for signal in due:
            fetches.setdefault(signal, []).append(now)
        checked = signals_checked_after(checked, due, now)
        checks.append(now)
    assert fetches[Signal.REGISTRY] == checks
    for signal in enabled - {Signal.REGISTRY}:
        times = fetches[signal]
        every = cadence.get(signal, timedelta(0))
        assert times[0] == START
        for earlier, later in pairwise(times):
            assert every <= later - earlier <= every + interval
        # Skipped only while its cadence had not passed since its last fetch.
        for check in checks:
            if check not in times:
                last = max(t for t in times if t < check)
                assert check - last < every


@given(signal_sets, cadences, st.integers(-86400, 40 * 86400))
def test_a_signal_never_fetched_or_without_cadence_is_always_due(enabled, cadence, offset):
    now = START + timedelta(seconds=offset)
    never = due_signals(enabled, cadence, {}, now)
    assert never == enabled | {Signal.REGISTRY}
    just_now = {signal: now for signal in enabled}
    due = due_signals(enabled, cadence, just_now, now)
    assert due == {Signal.REGISTRY} | {s for s in enabled if cadence.get(s, timedelta(0)) == timedelta(0)}


def test_a_timestamp_from_the_future_does_not_starve_a_signal():
    cadence = {Signal.CONTROLLER: timedelta(days=7)}
    later = {Signal.CONTROLLER: START + timedelta(days=3)}
    assert Signal.CONTROLLER in due_signals(frozenset({Signal.CONTROLLER}), cadence, later, START)


def test_signals_checked_round_trips_and_ignores_what_it_cannot_read():
    stamped = signals_checked_after(None, frozenset({Signal.REGISTRY, Signal.JUDICIAL}), START)
    assert stamped is not None and Signal.REGISTRY.value not in stamped
    later = START + timedelta(hours=5)
    both = signals_checked_after(stamped, frozenset({Signal.PLEDGES}), later)
    assert read_signals_checked(both) == {Signal.JUDICIAL: START, Signal.PLEDGES: later}
    assert signals_checked_after(None, frozenset({Signal.REGISTRY}), START) is None
    future = '{"judicial": "2026-01-01T00:00:00+00:00", "satellite": "2026-01-01", "pledges": 3}'
    assert read_signals_checked(future) == {Signal.JUDICIAL: START}
    assert read_signals_checked("not json") == {} and read_signals_checked("[1]") == {}
