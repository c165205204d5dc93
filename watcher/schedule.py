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
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

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
