"""When a borrower is checked next: pure time arithmetic, no I/O.

Two promises, whatever happens in between (manual checks, imports, backlogs, a new interval):

- after any check the next automatic one is at most one interval plus jitter away;
- a borrower checked when it falls due is next due one interval (give or take the jitter) after its
  slot, so it is not checked more often than its interval asks.

Each borrower has a fixed phase within its interval (a hash of its id), so 100,000 borrowers imported
together are spread evenly over the interval instead of falling due at the same moment every day.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

_EPSILON = 0.001  # seconds: stored times round to microseconds


def phase_of(borrower_id: str, interval: timedelta) -> float:
    """Seconds into each interval (counted from the epoch) at which the borrower's slot lies."""
    fraction = int.from_bytes(hashlib.blake2b(borrower_id.encode(), digest_size=8).digest()) / 2**64
    return fraction * interval.total_seconds()


def _seconds(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def next_check_at(
    borrower_id: str,
    now: datetime,
    interval: timedelta,
    *,
    scheduled: datetime | None,
    jitter: timedelta = timedelta(0),
    draw: float = 0.0,
) -> datetime:
    """The next automatic check after a check at ``now`` of a borrower that was due at ``scheduled``.

    ``draw`` in [0, 1) picks the jitter (the caller's randomness, so this stays pure).

    - A check before the borrower fell due (a manual ``watcher check``) leaves its schedule alone,
      unless that lies further ahead than one interval plus jitter (the interval was shortened).
    - A check that was due on its slot is next due one interval after that slot, however late it
      ran, plus jitter.
    - Any other check (the first after an import, a retry after failures, a new interval, a
      backlog longer than an interval) is next due on the first of its slots at least
      ``min(jitter, interval)`` from now: soon enough to keep the first promise, and from then on
      on its own phase.
    """
    period = interval.total_seconds()
    spread = jitter.total_seconds()
    zone = now.tzinfo or UTC
    at = _seconds(now)
    if scheduled is not None:
        due = _seconds(scheduled)
        if at < due <= at + period + spread:  # not due yet: a manual check leaves the schedule alone
            return scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=UTC)
        phase = phase_of(borrower_id, interval)
        slot = ((due - phase + _EPSILON) // period) * period + phase  # the slot at or just before due
        following = slot + period
        if due <= at and due - slot <= spread + _EPSILON and following > at:
            return datetime.fromtimestamp(following + draw * spread, tz=zone)
    return datetime.fromtimestamp(first_slot_after(borrower_id, at + min(spread, period), interval), tz=zone)


def first_slot_after(borrower_id: str, seconds: float, interval: timedelta) -> float:
    """The borrower's first slot strictly after ``seconds`` (epoch seconds)."""
    period = interval.total_seconds()
    phase = phase_of(borrower_id, interval)
    return ((seconds - phase) // period + 1) * period + phase


def beyond_interval(next_due: datetime | None, now: datetime, interval: timedelta, jitter: timedelta) -> bool:
    """True when a stored due time lies further ahead than a (new, shorter) interval allows."""
    return next_due is not None and _seconds(next_due) > _seconds(now) + (interval + jitter).total_seconds()
