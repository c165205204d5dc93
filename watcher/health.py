"""What counts as healthy: one judgement for ``watcher status`` (its exit code and JSON) and the daemon.

Facts are read from the database, so the verdict is the same from any host. An instance is *alive*
while its last heartbeat is younger than ``DEAD_AFTER_HEARTBEATS`` heartbeat periods; older than that
it is *dead*: any live daemon frees its claims at once, and its row is forgotten a day after its last
heartbeat. A deployment is unhealthy (``watcher status`` exits 1) when any source or borrower is
failing, a borrower has been overdue for longer than ``[rules] failing_after``, deliveries are failing
(retrying or dead), or instances are registered but none of them is alive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, func, select

from sources.change_feed import FeedOptions
from watcher.config import Config
from watcher.models import Borrower, FeedState, Instance, SourceHealth, SourceSignal, utcnow
from watcher.redaction import redact, redact_optional
from watcher.store import billed_calls_in_last_day, status_summary, unavailable_signals
from watcher.units import as_utc, format_duration
from watcher.vocabulary import OutboxState

DEAD_AFTER_HEARTBEATS = 3
FORGET_AFTER = timedelta(days=1)
JSON_VERSION = 1


class InstanceState(StrEnum):
    alive = "alive"
    stopped = "stopped"
    dead = "dead"


class ProblemKind(StrEnum):
    """Why ``watcher status`` exits 1; the values are part of the JSON contract."""

    source_failing = "source_failing"
    borrowers_failing = "borrowers_failing"
    borrowers_overdue = "borrowers_overdue"
    deliveries_failing = "deliveries_failing"
    no_live_instance = "no_live_instance"
    feed_gap = "feed_gap"


def dead_after(heartbeat: timedelta) -> timedelta:
    """How long an instance may stay silent before it counts as dead."""
    return heartbeat * DEAD_AFTER_HEARTBEATS


def is_silent(instance: Instance, *, now: datetime, heartbeat: timedelta) -> bool:
    """No heartbeat for three periods: a running process would have written one (stopped or not)."""
    return instance.heartbeat_at < now - dead_after(heartbeat)


def instance_state(instance: Instance, *, now: datetime, heartbeat: timedelta) -> InstanceState:
    if instance.stopped_at is not None:
        return InstanceState.stopped
    return InstanceState.dead if is_silent(instance, now=now, heartbeat=heartbeat) else InstanceState.alive


def is_forgotten(instance: Instance, *, now: datetime) -> bool:
    """A day after its last heartbeat an instance that is not running is dropped from the table."""
    return instance.heartbeat_at < now - FORGET_AFTER


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    message: str
    subject: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "subject": self.subject, "message": self.message}


@dataclass(frozen=True, slots=True)
class InstanceView:
    name: str
    host: str
    pid: int
    version: str
    state: InstanceState
    started_at: datetime
    heartbeat_at: datetime
    last_sweep_at: datetime | None
    stopped_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedView:
    """One change feed as ``watcher status`` shows it (``watcher.feeds``)."""

    source: str
    feed: str
    state: str  # following, failing, gap (polling instead), waiting (not read yet), unfollowed
    position: str | None
    lag: timedelta | None  # how far behind the feed the follower is
    read_at: datetime | None
    follower: str | None
    entries: int
    marked: int
    error: str | None
    failing_since: datetime | None = None
    gap_since: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "feed": self.feed,
            "state": self.state,
            "position": self.position,
            "lag_seconds": None if self.lag is None else round(self.lag.total_seconds(), 1),
            "read_at": _iso(self.read_at),
            "follower": self.follower,
            "entries": self.entries,
            "marked": self.marked,
            "last_error": self.error,
            "failing_since": _iso(self.failing_since),
            "gap_since": _iso(self.gap_since),
        }


def feed_views(session: Session, config: Config, now: datetime) -> list[FeedView]:
    """The change feeds of the configured sources, as their follower last left them."""
    views: list[FeedView] = []
    for state in session.exec(select(FeedState).order_by(col(FeedState.source), col(FeedState.feed))):
        options = config.sources.get(state.source)
        if not isinstance(options, FeedOptions) or not options.feed:
            continue  # not followed any more: what it last left says nothing now
        views.append(
            FeedView(
                source=state.source,
                feed=state.feed,
                state=_feed_state(state, now),
                position=state.position,
                lag=_lag(state, now),
                read_at=state.read_at,
                follower=state.claimed_by,
                entries=state.entries,
                marked=state.marked,
                error=redact_optional(state.last_error),
                failing_since=state.failing_since,
                gap_since=state.gap_since,
            )
        )
    return views


def _feed_state(state: FeedState, now: datetime) -> str:
    """What the feed's last follower left: a gap first (it stands until a read ends it), then whether
    any live follower holds it (none: the daemon is stopped, or its instance died and no other has
    taken over yet), then failing, following or waiting."""
    if state.gap_since is not None:
        return "gap"
    lease = state.lease_until
    if state.claimed_by is None or lease is None or as_utc(lease) < now:
        return "unfollowed"
    if state.failing_since is not None:
        return "failing"
    return "following" if state.read_at is not None else "waiting"


def _lag(state: FeedState, now: datetime) -> timedelta | None:
    """Caught up at the last read: the time since it; else since the last entry read was published."""
    behind_from = state.read_at if state.caught_up else (state.published_at or state.read_at)
    if behind_from is None:
        return None
    return max(now - as_utc(behind_from), timedelta(0))


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Everything ``watcher status`` prints, and the problems that make it exit 1."""

    checked_at: datetime
    instances: list[InstanceView]
    borrowers: int
    due: int
    overdue: int
    overdue_beyond_failing_after: int
    failing_after: timedelta
    failing: int
    last_check_at: datetime | None
    failing_borrowers: list[Borrower]
    sources: list[SourceHealth]
    deliveries_pending: int
    deliveries_retrying: int
    deliveries_dead: int
    deliveries_held: int
    problems: list[Problem]
    # Mass disappearances held for a confirming fetch: normal for a few minutes, not a problem.
    awaiting_confirmation: list[Borrower] = field(default_factory=list)
    # Billed vendor calls of the last 24 hours, by source; only sources whose vendor bills are named.
    billed_calls: dict[str, int] = field(default_factory=dict)
    # Signals a source's account cannot fetch (skipped until their retry): known, not a problem.
    unavailable_signals: list[SourceSignal] = field(default_factory=list)
    # Deactivated borrowers (counted in ``borrowers``): not watched, so never a problem.
    inactive: int = 0
    # The sources' change feeds: position, lag, state.
    feeds: list[FeedView] = field(default_factory=list)

    def unavailable_of(self, source: str) -> list[SourceSignal]:
        return [row for row in self.unavailable_signals if row.source == source]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        """The ``watcher status --format json`` object (documented in README, Operations)."""
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "checked_at": _iso(self.checked_at),
            "instances": [
                {
                    "name": i.name,
                    "host": i.host,
                    "pid": i.pid,
                    "version": i.version,
                    "state": i.state.value,
                    "started_at": _iso(i.started_at),
                    "heartbeat_at": _iso(i.heartbeat_at),
                    "last_sweep_at": _iso(i.last_sweep_at),
                    "stopped_at": _iso(i.stopped_at),
                }
                for i in self.instances
            ],
            "borrowers": {
                "total": self.borrowers,
                "due": self.due,
                "overdue": self.overdue,
                "overdue_beyond_failing_after": self.overdue_beyond_failing_after,
                "failing": self.failing,
                "awaiting_confirmation": len(self.awaiting_confirmation),
                "inactive": self.inactive,
            },
            "awaiting_confirmation": [
                {"id": b.id, "source": b.source, "since": _iso(b.pending_since)}
                for b in self.awaiting_confirmation
            ],
            "failing_after": format_duration(self.failing_after),
            "last_check_at": _iso(self.last_check_at),
            "deliveries": {
                OutboxState.PENDING: self.deliveries_pending,
                OutboxState.RETRYING: self.deliveries_retrying,
                OutboxState.DEAD: self.deliveries_dead,
                OutboxState.HELD: self.deliveries_held,
            },
            "sources": [
                {
                    "source": s.source,
                    "state": "failing" if s.consecutive_failures else "ok",
                    "consecutive_failures": s.consecutive_failures,
                    "last_error_kind": s.last_error_kind,
                    "last_error": redact_optional(s.last_error),
                    "last_success_at": _iso(s.last_success_at),
                    "last_failure_at": _iso(s.last_failure_at),
                    "billed_calls_24h": self.billed_calls.get(s.source),
                    "unavailable_signals": [
                        {
                            "signal": u.signal,
                            "since": _iso(u.unavailable_since),
                            "retry_at": _iso(u.retry_at),
                            "reason": redact(u.reason),
                        }
                        for u in self.unavailable_of(s.source)
                    ],
                }
                for s in self.sources
            ],
            "failing_borrowers": [
                {
                    "id": b.id,
                    "source": b.source,
                    "consecutive_failures": b.consecutive_failures,
                    "last_error_kind": b.last_error_kind,
                    "last_error": redact_optional(b.last_error),
                    "last_success_at": _iso(b.last_success_at),
                }
                for b in self.failing_borrowers
            ],
            "problems": [problem.as_json() for problem in self.problems],
            "feeds": [feed.as_json() for feed in self.feeds],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def read_health(session: Session, config: Config, now: datetime | None = None) -> HealthReport:
    """Read the facts of ``watcher status`` and judge them with the config's thresholds."""
    now = now or utcnow()
    summary = status_summary(session, now)
    failing_after = config.rules.failing_after
    heartbeat = config.schedule.heartbeat
    count = func.count()
    active = col(Borrower.active).is_(True)
    long_overdue = session.exec(
        select(count).select_from(Borrower).where(active, col(Borrower.next_check_at) <= now - failing_after)
    ).one()
    failing = session.exec(
        select(count).select_from(Borrower).where(active, Borrower.consecutive_failures > 0)
    ).one()
    awaiting = list(
        session.exec(
            select(Borrower)
            .where(active, col(Borrower.pending_since).is_not(None))
            .order_by(col(Borrower.pending_since))
        )
    )
    instances = [
        InstanceView(
            name=i.name,
            host=i.host,
            pid=i.pid,
            version=i.version,
            state=instance_state(i, now=now, heartbeat=heartbeat),
            started_at=i.started_at,
            heartbeat_at=i.heartbeat_at,
            last_sweep_at=i.last_sweep_at,
            stopped_at=i.stopped_at,
        )
        for i in summary.instances
    ]
    problems = [
        Problem(
            ProblemKind.source_failing,
            f"source {s.source} failing ×{s.consecutive_failures} ({s.last_error_kind})",
            s.source,
        )
        for s in summary.sources
        if s.consecutive_failures
    ]
    if failing:
        problems.append(Problem(ProblemKind.borrowers_failing, f"{failing} borrower(s) failing"))
    if long_overdue:
        problems.append(
            Problem(
                ProblemKind.borrowers_overdue,
                f"{long_overdue} borrower(s) overdue by more than {format_duration(failing_after)}",
            )
        )
    if summary.deliveries_retrying or summary.deliveries_dead:
        problems.append(
            Problem(
                ProblemKind.deliveries_failing,
                f"deliveries failing: {summary.deliveries_retrying} retrying, {summary.deliveries_dead} dead",
            )
        )
    if instances and not any(i.state is InstanceState.alive for i in instances):
        problems.append(
            Problem(
                ProblemKind.no_live_instance,
                f"no daemon instance has a heartbeat younger than {format_duration(dead_after(heartbeat))} "
                f"({len(instances)} registered)",
            )
        )
    feeds = feed_views(session, config, now)
    problems += [
        Problem(
            ProblemKind.feed_gap,
            f"change feed {feed.source}/{feed.feed} fell back to polling: {feed.error or 'unknown'}",
            feed.source,
        )
        for feed in feeds
        if feed.state == "gap"
    ]
    return HealthReport(
        feeds=feeds,
        billed_calls=_billed_calls(session, config, now),
        unavailable_signals=unavailable_signals(session, now),
        checked_at=now,
        instances=instances,
        borrowers=summary.borrowers,
        due=summary.due,
        overdue=summary.overdue,
        overdue_beyond_failing_after=long_overdue,
        failing_after=failing_after,
        failing=failing,
        last_check_at=summary.last_check_at,
        failing_borrowers=summary.failing_borrowers,
        sources=summary.sources,
        deliveries_pending=summary.deliveries_pending,
        deliveries_retrying=summary.deliveries_retrying,
        deliveries_dead=summary.deliveries_dead,
        deliveries_held=summary.deliveries_held,
        problems=problems,
        awaiting_confirmation=awaiting,
        inactive=summary.inactive,
    )


def _billed_calls(session: Session, config: Config, now: datetime) -> dict[str, int]:
    """Calls of the last 24 hours for each configured source whose vendor bills them (0 when none)."""
    from sources import source_class

    counted = billed_calls_in_last_day(session, now)
    billed = [name for name, options in config.sources.items() if source_class(options.type).billed]
    return {name: counted.get(name, 0) for name in billed}


class SchedulerState(StrEnum):
    running = "running"
    stalled = "stalled"  # running, but its heartbeat job has not fired for three periods
    stopping = "stopping"
    stopped = "stopped"


def scheduler_state(
    *, started: bool, stopping: bool, since_last_tick: float | None, heartbeat: timedelta
) -> SchedulerState:
    """Judge a daemon's own scheduler from whether it runs and when its heartbeat job last fired."""
    if not started:
        return SchedulerState.stopped
    if stopping:
        return SchedulerState.stopping
    if since_last_tick is None or since_last_tick > dead_after(heartbeat).total_seconds():
        return SchedulerState.stalled
    return SchedulerState.running


@dataclass(frozen=True, slots=True)
class Liveness:
    """The answer of ``/healthz``: this instance can work (its scheduler runs, its database answers)."""

    instance: str
    scheduler: SchedulerState
    database_reachable: bool
    database_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.scheduler is SchedulerState.running and self.database_reachable

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "instance": self.instance,
            "scheduler": self.scheduler.value,
            "database": "reachable" if self.database_reachable else "unreachable",
            "database_error": self.database_error,
        }
