"""When a borrower is checked next: pure time arithmetic, no I/O.

Two promises, whatever happens in between (manual checks, imports, outages, backlogs, a new interval):

- after any check the next automatic one is at most one interval plus jitter away;
- a borrower checked when it falls due is next due one interval (plus jitter) after that, so it is
  never checked more often than its interval asks.

Each borrower keeps its own slot: one interval after the last one. Where a borrower has no slot to
keep (its first check, its first success after failures, a backlog longer than an interval, a
shortened interval) it is spread out: next due between three quarters of an interval and a whole
interval later, at a point fixed by a hash of its id. A portfolio imported at once, or back from a
registry's outage, is spread over a quarter of the interval instead of falling due at one moment
every day, and no borrower is checked again sooner than three quarters of an interval after its
first check (a vendor bills every call).

Within a check, a vendor's signals (:class:`~watcher.record.Signal`) keep clocks of their own: the
registry card is fetched at every check, every other signal only once its ``cadence`` has passed
since it was last fetched (:func:`due_signals`), so slow lists cost one call a week, not one a day.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from watcher.record import Signal

SPREAD_FROM = 0.75  # of the interval: the earliest a spread-out borrower is due again


def spread_fraction(borrower_id: str) -> float:
    """A fixed number in [0, 1) for the borrower: where within the spread window it falls."""
    return int.from_bytes(hashlib.blake2b(borrower_id.encode(), digest_size=8).digest()) / 2**64


def spread_out(borrower_id: str, now: datetime, interval: timedelta) -> datetime:
    """Between ``SPREAD_FROM`` and a whole interval after ``now``, at the borrower's own point."""
    fraction = SPREAD_FROM + (1 - SPREAD_FROM) * spread_fraction(borrower_id)
    return _aware(now) + interval * fraction


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # stored times are UTC


def next_check_at(
    borrower_id: str,
    now: datetime,
    interval: timedelta,
    *,
    scheduled: datetime | None,
    jitter: timedelta = timedelta(0),
    draw: float = 0.0,
    settle: bool = False,
) -> datetime:
    """The next automatic check after a check at ``now`` of a borrower that was due at ``scheduled``.

    ``draw`` in [0, 1) picks the jitter (the caller's randomness, so this stays pure). ``settle``
    says the borrower has no slot worth keeping yet (its first check, or its first success after
    failures, whose retries bunch borrowers together): it is spread out.

    - A check before the borrower fell due (a manual ``watcher check``) leaves its schedule alone,
      unless that lies further ahead than one interval plus jitter (the interval was shortened).
    - A check at or after its due time, less than an interval late, is next due one interval after
      that due time, plus jitter: a late check keeps its slot.
    - Anything else is spread out.
    """
    now = _aware(now)
    if scheduled is not None:
        due = _aware(scheduled)
        if now < due <= now + interval + jitter:
            return due
        if due <= now < due + interval and not settle:
            return due + interval + jitter * draw
    return spread_out(borrower_id, now, interval)


def due_signals(
    enabled: frozenset[Signal],
    cadence: Mapping[Signal, timedelta],
    checked_at: Mapping[Signal, datetime],
    now: datetime,
) -> frozenset[Signal]:
    """The signals of ``enabled`` a scheduled check fetches at ``now``: the registry card always;
    any other signal when it was never fetched, or its ``cadence`` has passed since ``checked_at``
    (no cadence, or zero: every check). A clock set in the future (a changed system time) counts
    as due, so a signal is never starved by a bad timestamp."""
    now = _aware(now)
    due = {Signal.REGISTRY}
    for signal in enabled - {Signal.REGISTRY}:
        last = checked_at.get(signal)
        every = cadence.get(signal, timedelta(0))
        if last is None or every <= timedelta(0) or not (timedelta(0) <= now - _aware(last) < every):
            due.add(signal)
    return frozenset(due)


def read_signals_checked(stored: str | None) -> dict[Signal, datetime]:
    """``Borrower.signals_checked`` (JSON: signal -> ISO time) as times by signal; names this
    version does not know, and anything unreadable, are left out (then fetched again: harmless)."""
    try:
        loaded = json.loads(stored) if stored else {}
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    known = {signal.value: signal for signal in Signal}
    times: dict[Signal, datetime] = {}
    for name, value in loaded.items():
        if name in known and isinstance(value, str):
            try:
                times[known[name]] = _aware(datetime.fromisoformat(value))
            except ValueError:
                continue
    return times


def signals_checked_after(stored: str | None, fetched: frozenset[Signal], now: datetime) -> str | None:
    """The new ``Borrower.signals_checked`` after a successful check at ``now`` that fetched
    ``fetched``: those signals stamped ``now``, the others kept. The registry card needs no stamp
    (it is fetched at every check); None while no other signal was ever fetched."""
    times = read_signals_checked(stored)
    times.update(dict.fromkeys(fetched - {Signal.REGISTRY}, _aware(now)))
    if not times:
        return None
    return json.dumps({signal.value: times[signal].isoformat() for signal in sorted(times)})
