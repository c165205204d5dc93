"""Following the registries' change feeds (`watcher run`): one follower per source across all instances.

A source with change feeds (``Source.change_feeds``) is followed by whichever instance claims its
``feed_state`` rows, like any other work: a lease renewed while it follows, taken over when its
instance dies. Each read's entries that name a watched, active company of the source make that company
due now (``next_check_at``), in the same transaction that stores the new position: a crash re-reads,
never skips. Entries about other companies cost nothing more. The check itself is the normal pipeline's.

While every feed of a source is healthy the periodic full poll of its companies becomes a safety net at
``full_interval`` (:func:`healthy_feed_sources`, read by the checker and the sweep's reschedule). A feed
that cannot continue from its position, or fails for longer than ``[rules] failing_after``, falls back:
a ``monitoring_gap`` alert names the source and feed, its companies are polled at their normal interval
again, and the feed is read from now on; its first successful read ends the gap with a
``monitoring_restored`` notice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sources.base import Source
from sources.change_feed import ChangeFeed, FeedBatch, FeedGapError, FeedOptions
from watcher.config import Config
from watcher.errors import AuthError, SourceError
from watcher.models import Alert, Borrower, FeedState, utcnow
from watcher.monitoring import open_source_alert
from watcher.redaction import redact
from watcher.store import Store
from watcher.units import as_utc
from watcher.vocabulary import AlertKind, Severity

log = logging.getLogger("watcher.feeds")

READS_PER_RUN = 20  # reads of one feed per run at most: the position is committed after each
_CHUNK = 500  # registration numbers per IN list


class LostFeedClaim(Exception):
    """Another instance follows the source now (this one's lease ran out): stop, commit nothing."""


@dataclass
class FeedRun:
    """What one run of a source's follower did."""

    source: str
    held: bool = False
    entries: int = 0
    marked: int = 0
    alerts: list[int] = field(default_factory=list)


def feed_options(source: Source) -> FeedOptions | None:
    """The source's feed options when it has a feed and following it is on."""
    options = source.options
    return options if isinstance(options, FeedOptions) and options.feed else None


def healthy_feed_sources(session: Session, config: Config, now: datetime) -> frozenset[str]:
    """Sources whose every feed has been read lately (see :data:`STALE_READS`) and is neither in a gap
    nor failing longer than ``failing_after``: their companies are polled in full only every
    ``full_interval``."""
    states: dict[str, list[FeedState]] = {}
    for state in session.exec(select(FeedState)):
        states.setdefault(state.source, []).append(state)
    healthy: set[str] = set()
    for source, rows in states.items():
        options = config.sources.get(source)
        if not isinstance(options, FeedOptions) or not options.feed:
            continue
        stale_after = STALE_READS * options.feed_every + config.schedule.lease
        if all(_healthy(row, config.rules.failing_after, stale_after, now) for row in rows):
            healthy.add(source)
    return frozenset(healthy)


STALE_READS = 10
"""A feed not read for this many ``feed_every`` periods (plus a lease, the time another instance takes
to follow it) is not healthy: its follower stopped, and its source must not sit on the long full poll."""


def _healthy(state: FeedState, failing_after: timedelta, stale_after: timedelta, now: datetime) -> bool:
    if state.read_at is None or state.gap_since is not None or now - as_utc(state.read_at) > stale_after:
        return False
    return state.failing_since is None or now - as_utc(state.failing_since) < failing_after


# -- the database side -------------------------------------------------------------------------------


def claim_feeds(
    session: Session, source: str, feeds: Sequence[str], *, instance: str, now: datetime, lease: timedelta
) -> bool:
    """Make ``instance`` the follower of ``source`` (every feed row at once), or renew its claim;
    False when another live instance holds it."""
    known = set(session.exec(select(FeedState.feed).where(FeedState.source == source)))
    for name in sorted(set(feeds) - known):
        try:
            with session.begin_nested():  # another instance may insert it at the same moment
                session.add(FeedState(source=source, feed=name))
        except IntegrityError:
            pass
    dropped = known - set(feeds)
    # Streams no longer configured: their state would keep the source's health forever.
    table = FeedState.metadata.tables[FeedState.__tablename__]
    if dropped:
        session.connection().execute(
            delete(table).where(table.c.source == source, table.c.feed.in_(sorted(dropped)))
        )
    claimed = session.connection().execute(
        update(table)
        .where(
            table.c.source == source,
            table.c.feed.in_(list(feeds)),
            or_(table.c.claimed_by.is_(None), table.c.claimed_by == instance, table.c.lease_until < now),
        )
        .values(claimed_by=instance, lease_until=now + lease)
    )
    if claimed.rowcount == len(feeds):
        return True
    release_feeds(session, source, instance=instance)  # a partial claim (a race) is no claim
    return False


def release_feeds(session: Session, source: str | None, *, instance: str) -> int:
    """Give up ``instance``'s claim on ``source``'s feeds (every source's when None)."""
    table = FeedState.metadata.tables[FeedState.__tablename__]
    condition = table.c.claimed_by == instance
    if source is not None:
        condition = and_(condition, table.c.source == source)
    return (
        session.connection()
        .execute(update(table).where(condition).values(claimed_by=None, lease_until=None))
        .rowcount
    )


def free_feed_claims_of(session: Session, holders: Sequence[str]) -> int:
    """Free the feed claims of dead instances, so a live one takes the follower role over at once."""
    if not holders:
        return 0
    table = FeedState.metadata.tables[FeedState.__tablename__]
    return (
        session.connection()
        .execute(
            update(table)
            .where(table.c.claimed_by.in_(list(holders)))
            .values(claimed_by=None, lease_until=None)
        )
        .rowcount
    )


def mark_due(session: Session, source: str, registry_ids: Sequence[str], now: datetime) -> int:
    """Make the active companies of ``source`` with these registration numbers due now, for a full
    check (every signal, whatever its cadence: the feed may be about a charge or a case); one being
    checked right now is marked to be checked again once released. Returns how many were watched."""
    table = Borrower.metadata.tables[Borrower.__tablename__]
    wanted = sorted(set(registry_ids))
    watched = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        ours = and_(table.c.source == source, table.c.active.is_(True), table.c.registry_id.in_(chunk))
        connection = session.connection()
        free = connection.execute(
            update(table)
            .where(ours, table.c.claimed_by.is_(None))
            .values(next_check_at=now, signals_checked=None)
        ).rowcount
        busy = connection.execute(
            update(table).where(ours, table.c.claimed_by.is_not(None)).values(feed_recheck=True)
        ).rowcount
        watched += free + busy
    return watched


def recheck_released(session: Session, source: str, now: datetime) -> int:
    """Companies a feed named while they were being checked, whose check has ended: due now."""
    table = Borrower.metadata.tables[Borrower.__tablename__]
    return (
        session.connection()
        .execute(
            update(table)
            .where(table.c.source == source, table.c.feed_recheck.is_(True), table.c.claimed_by.is_(None))
            .values(feed_recheck=False, next_check_at=now, signals_checked=None)
        )
        .rowcount
    )


def _other_gaps(session: Session, source: str, feed: str) -> list[FeedState]:
    """The source's other feeds in a gap: one alert covers the source, one notice ends it."""
    return list(
        session.exec(
            select(FeedState).where(
                FeedState.source == source, FeedState.feed != feed, col(FeedState.gap_since).is_not(None)
            )
        )
    )


def _held_state(session: Session, source: str, feed: str, instance: str) -> FeedState:
    state = session.get(FeedState, (source, feed), with_for_update=True)
    if state is None or state.claimed_by != instance:
        raise LostFeedClaim(f"{source} {feed}: followed by {state.claimed_by if state else 'nobody'} now")
    return state


def advance(
    session: Session,
    config: Config,
    source: str,
    feed: str,
    batch: FeedBatch,
    *,
    instance: str,
    now: datetime,
    lease: timedelta,
) -> tuple[int, int | None]:
    """Mark the batch's watched companies due and store the new position, in one transaction; end a
    gap when the feed was in one. Returns (watched companies marked, recovery alert id or None)."""
    state = _held_state(session, source, feed, instance)
    marked = mark_due(session, source, [entry.registry_id for entry in batch.entries], now)
    state.position = batch.position
    state.read_at, state.caught_up = now, batch.caught_up
    state.published_at = batch.published_at or state.published_at
    state.entries += len(batch.entries)
    state.marked += marked
    state.failing_since, state.last_error = None, None
    state.lease_until = now + lease
    restored = None
    if state.gap_since is not None and not _other_gaps(session, source, feed):
        gap = session.get(Alert, state.gap_alert_id) if state.gap_alert_id is not None else None
        gap_detail = json.loads(gap.detail or "{}") if gap is not None else {}
        restored = open_source_alert(
            session,
            config,
            AlertKind.MONITORING_RESTORED,
            Severity.INFO,
            source,
            now,
            {
                "source": source,
                "feed": gap_detail.get("feed") or feed,  # every feed the gap alert named
                "since": gap_detail.get("since") or as_utc(state.gap_since).isoformat(),
                "gap_alert_id": state.gap_alert_id,
            },
        )
    state.gap_since, state.gap_alert_id = None, None
    session.add(state)
    return marked, restored


def fail(
    session: Session,
    config: Config,
    source: str,
    feed: str,
    error: SourceError,
    *,
    instance: str,
    now: datetime,
) -> int | None:
    """Record a failed read; open the gap (alert, polling again) when the feed lost entries (then it
    is read from now on), its key was refused (no waiting a day for ``failing_after`` to tell), or it
    has failed longer than ``failing_after``. Returns the gap alert's id if one was opened."""
    state = _held_state(session, source, feed, instance)
    message = redact(str(error))
    state.failing_since = state.failing_since or now
    state.last_error = message
    lost = isinstance(error, FeedGapError)
    if lost:
        state.position = None  # read from now on: the polling fallback covers what was lost
    overdue = now - as_utc(state.failing_since) >= config.rules.failing_after
    opened = None
    if state.gap_since is None and (lost or overdue or isinstance(error, AuthError)):
        state.gap_since = now
        joined = _other_gaps(session, source, feed)
        if joined and joined[0].gap_alert_id is not None:  # the source's alert says it: name this feed too
            state.gap_alert_id = joined[0].gap_alert_id
            _name_feed(session, state.gap_alert_id, feed)
        else:
            opened = state.gap_alert_id = open_source_alert(
                session,
                config,
                AlertKind.MONITORING_GAP,
                Severity.HIGH,
                source,
                now,
                {
                    "source": source,
                    "feed": feed,
                    "since": as_utc(state.failing_since).isoformat(),
                    "error_kind": error.kind.value,
                    "error": message,
                },
            )
    session.add(state)
    return opened


def _name_feed(session: Session, alert_id: int, feed: str) -> None:
    """Another feed of the source joins its gap alert (no second message): the alert names both."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return
    detail = json.loads(alert.detail or "{}")
    named = [name for name in str(detail.get("feed") or "").split(", ") if name]
    if feed not in named:
        detail["feed"] = ", ".join([*named, feed])
        alert.detail = json.dumps(detail, ensure_ascii=False, sort_keys=True)
        session.add(alert)


# -- the follower ------------------------------------------------------------------------------------


class FeedFollower:
    """Follows every feed of one source for the instance that holds its claim."""

    def __init__(self, store: Store, config: Config, source: Source, *, instance: str) -> None:
        self.store = store
        self.config = config
        self.source = source
        self.instance = instance
        self.feeds: tuple[ChangeFeed, ...] = source.change_feeds()
        self.clock = utcnow
        self.failing: set[str] = set()  # feeds whose last read failed (logged once)

    @property
    def lease(self) -> timedelta:
        return self.config.schedule.lease

    async def follow(self) -> FeedRun:
        """One run: claim (or renew), read every feed until caught up (bounded), mark, commit."""
        run = FeedRun(self.source.name)
        names = [feed.name for feed in self.feeds]
        if not names:
            return run
        run.held = await asyncio.to_thread(self._claim, names)
        if not run.held:
            return run
        try:
            for feed in self.feeds:
                await self._follow_feed(feed, run)
            rechecked = await asyncio.to_thread(self._recheck)
        except LostFeedClaim as lost:
            log.warning("%s: stopped following: %s", self.source.name, lost)
            run.held = False
            return run
        run.marked += rechecked
        return run

    async def _follow_feed(self, feed: ChangeFeed, run: FeedRun) -> None:
        for _ in range(READS_PER_RUN):
            position = await asyncio.to_thread(self._position, feed.name)
            try:
                batch = await feed.read(position, now=self.clock())
            except SourceError as error:
                opened = await asyncio.to_thread(self._fail, feed.name, error)
                # One warning when a feed starts failing (and when it falls back), not one per read.
                level = logging.DEBUG if feed.name in self.failing else logging.WARNING
                self.failing.add(feed.name)
                log.log(
                    level,
                    "%s %s feed: %s: %s",
                    self.source.name,
                    feed.name,
                    type(error).__name__,
                    redact(str(error)),
                )
                if opened is not None:
                    log.warning(
                        "%s %s feed: monitoring gap: alert #%d opened; polling instead",
                        self.source.name,
                        feed.name,
                        opened,
                    )
                    run.alerts.append(opened)
                return
            if feed.name in self.failing:
                self.failing.discard(feed.name)
                log.info("%s %s feed: read again", self.source.name, feed.name)
            marked, restored = await asyncio.to_thread(self._advance, feed.name, batch)
            run.entries += len(batch.entries)
            run.marked += marked
            if restored is not None:
                log.info(
                    "%s %s feed: following again: alert #%d opened", self.source.name, feed.name, restored
                )
                run.alerts.append(restored)
            if batch.caught_up:
                return

    def _claim(self, names: Sequence[str]) -> bool:
        with self.store.transaction() as session:
            return claim_feeds(
                session, self.source.name, names, instance=self.instance, now=self.clock(), lease=self.lease
            )

    def _position(self, feed: str) -> str | None:
        with self.store.session() as session:
            state = session.get(FeedState, (self.source.name, feed))
            return None if state is None else state.position

    def _advance(self, feed: str, batch: FeedBatch) -> tuple[int, int | None]:
        with self.store.transaction() as session:
            return advance(
                session,
                self.config,
                self.source.name,
                feed,
                batch,
                instance=self.instance,
                now=self.clock(),
                lease=self.lease,
            )

    def _fail(self, feed: str, error: SourceError) -> int | None:
        with self.store.transaction() as session:
            return fail(
                session, self.config, self.source.name, feed, error, instance=self.instance, now=self.clock()
            )

    def _recheck(self) -> int:
        with self.store.transaction() as session:
            return recheck_released(session, self.source.name, self.clock())

    async def aclose(self) -> None:
        for feed in self.feeds:
            await feed.aclose()


class Followers:
    """The followers of one daemon: one per source with a change feed to follow, each run when its
    ``feed_every`` has passed (the daemon's scheduler job asks :meth:`due`)."""

    def __init__(self, store: Store, config: Config, sources: Mapping[str, Source], *, instance: str) -> None:
        self.store, self.instance = store, instance
        self.by_source: dict[str, FeedFollower] = {}
        for name, source in sources.items():
            if feed_options(source) is not None:
                follower = FeedFollower(store, config, source, instance=instance)
                if follower.feeds:
                    self.by_source[name] = follower
        self._ran_at: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self.by_source)

    def every(self) -> float:
        """How often the daemon's job should look: the shortest ``feed_every``, between 1 s and 30 s."""
        periods = [_period(follower) for follower in self.by_source.values()]
        return max(1.0, min([*periods, 30.0]))

    def due(self, monotonic_now: float) -> list[FeedFollower]:
        """The followers whose ``feed_every`` has passed since their last run (now marked as run). The
        job that asks runs every :meth:`every`, never exactly on time: a follower whose period ends
        within half a tick runs now, rather than one whole tick late."""
        due = []
        slack = self.every() / 2
        for name, follower in self.by_source.items():
            last = self._ran_at.get(name)
            if last is None or monotonic_now - last >= _period(follower) - slack:
                self._ran_at[name] = monotonic_now
                due.append(follower)
        return due

    def release(self) -> None:
        """Give up every claim of this instance (at stop): another instance follows at once."""
        with self.store.transaction() as session:
            release_feeds(session, None, instance=self.instance)

    async def aclose(self) -> None:
        for follower in self.by_source.values():
            await follower.aclose()


def _period(follower: FeedFollower) -> float:
    options = feed_options(follower.source)
    return options.feed_every.total_seconds() if options is not None else 60.0
