"""``watcher run``: the daemon. APScheduler drives the sweep, the outbox, heartbeats and housekeeping.

Each instance keeps its own in-memory scheduler; the *work* is made exactly-once in the database
(claims with leases), so several instances can share one PostgreSQL database. SQLite stays
single-instance: a second daemon on the same file is refused. While a check runs, its claim's lease
is renewed, so a slow registry never lets another instance check the same borrower at the same time;
a killed instance stops renewing and its claims return after the lease. SIGTERM/SIGINT stop the
claiming of new work, let in-flight checks and sends finish within ``stop_timeout``, release the
claims of checks that did not run, and exit 0.

An instance silent for three heartbeat periods is dead (``watcher.health``): on every heartbeat a live
instance frees a dead one's claims at once, well before their lease, and forgets instances not heard
from for a day. On SQLite the instance lock proves every other registered instance dead, so a
restarted daemon frees its predecessor's claims at start. With ``[metrics] enabled`` the daemon
serves ``/healthz`` and Prometheus ``/metrics`` (``watcher.metrics``).

Sources with change feeds are followed too (``watcher.feeds``): one follower per source across all
instances, claimed like any other work; what it reads makes watched companies due, and a sweep starts
at once to check them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import partial
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import text
from sqlmodel import col, select

from watcher import __version__, sdnotify
from watcher.config import Config
from watcher.dispatch import Dispatcher
from watcher.feeds import FeedFollower, Followers, free_feed_claims_of, healthy_feed_sources
from watcher.health import Liveness, is_forgotten, is_silent, read_health, scheduler_state
from watcher.metrics import DaemonMetrics
from watcher.models import Alert, Borrower, ChangeEvent, Instance, utcnow
from watcher.monitoring import GapReport, scan_monitoring_gaps
from watcher.pipeline import Checker, CheckOutcome
from watcher.store import (
    Store,
    claim_due_borrowers,
    forget_instances,
    free_claims_of,
    heartbeat,
    release_claims,
    renew_claims,
    reschedule_beyond_interval,
)
from watcher.units import format_duration

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("watcher.daemon")

HOUSEKEEPING_EVERY = timedelta(hours=1)
PING_TIMEOUT = 3.0  # seconds /healthz waits for the database


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """What the log says of one alert a check raised: enough to find it without the database."""

    alert_id: int
    borrower_id: str
    borrower_name: str
    kind: str
    severity: str
    categories: tuple[str, ...]

    def line(self) -> str:
        categories = ", ".join(self.categories) or "none"  # a monitoring gap has no change of its own
        name = " ".join(self.borrower_name.split())  # a line break in a name must not forge a log line
        return (
            f"alert #{self.alert_id} raised: borrower {self.borrower_id} ({name}), {self.kind}, "
            f"severity {self.severity}, categories {categories}"
        )


def raised_alerts(store: Store, alert_ids: Sequence[int]) -> list[RaisedAlert]:
    """The alerts of a batch of checks, with their borrowers' names and their change categories."""
    with store.session() as session:
        rows = session.exec(
            select(Alert, Borrower)
            .join(Borrower, col(Borrower.id) == col(Alert.borrower_id))
            .where(col(Alert.id).in_(alert_ids))
            .order_by(col(Alert.id))
        ).all()
        categories: dict[int, set[str]] = {}
        for alert_id, category in session.exec(
            select(ChangeEvent.alert_id, ChangeEvent.category).where(col(ChangeEvent.alert_id).in_(alert_ids))
        ):
            if alert_id is not None:
                categories.setdefault(alert_id, set()).add(category)
    return [
        RaisedAlert(
            alert_id=alert.id or 0,
            borrower_id=borrower.id,
            borrower_name=borrower.name,
            kind=alert.kind,
            severity=alert.severity,
            categories=tuple(sorted(categories.get(alert.id or 0, ())))
            + (("signatory_mismatch",) if alert.signatory_mismatch else ()),
        )
        for alert, borrower in rows
    ]


class InstanceLockError(Exception):
    """Another daemon already runs against this SQLite database."""


class SqliteInstanceLock:
    """An exclusive lock file next to the SQLite database; the kernel frees it if the process dies."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._file: TextIO | None = None

    def acquire(self) -> None:
        import fcntl

        handle = open(self.path, "a+")  # noqa: SIM115 (held open for the daemon's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise InstanceLockError(
                f"another watcher instance ({holder}) is running against {self.path.with_suffix('')}; "
                "SQLite supports one instance: stop it, or use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def in_active_hours(window: tuple[time, time] | None, local_now: datetime) -> bool:
    """Whether checks may run now; a window whose end is before its start runs past midnight."""
    if window is None:
        return True
    start, end = window
    now = local_now.time()
    return start <= now < end if start < end else (now >= start or now < end)


def _log_freed(borrowers: int, deliveries: int, feeds: int, dead: Sequence[str], gone: Sequence[str]) -> None:
    if borrowers or deliveries or feeds:
        log.warning(
            "freed %d borrower and %d delivery claim(s) of dead instance(s) %s%s",
            borrowers,
            deliveries,
            ", ".join(dead),
            f"; and the change feeds it followed ({feeds} feed(s))" if feeds else "",
        )
    if gone:
        log.info("forgot instance(s) not heard from for a day: %s", ", ".join(sorted(gone)))


class Daemon:
    def __init__(self, store: Store, config: Config, *, instance: str) -> None:
        self.store = store
        self.config = config
        self.instance = instance
        self.host = socket.gethostname()
        self.checker = Checker(store, config)
        self.dispatcher = Dispatcher(store, config, instance=instance, lease=config.schedule.lease)
        self.stopping = asyncio.Event()
        self._busy: set[asyncio.Task] = set()
        self._running: dict[str, asyncio.Task] = {}
        # Borrowers this process claimed and has not finished checking: their leases are renewed
        # while they run, and whatever is left at stop is released.
        self._held: set[str] = set()
        self._scheduler: AsyncIOScheduler | None = None
        self.sweeps = 0
        self.checked = 0
        self.metrics = DaemonMetrics()
        self._last_tick: float | None = None  # monotonic time the heartbeat job last fired
        # Dead instances whose claims this process freed, by name and last heartbeat: freed once each.
        self._freed: set[tuple[str, datetime]] = set()
        self._ping: asyncio.Task[None] | None = None  # the database probe of /healthz, while one runs
        # One follower per source with a change feed to follow (``watcher.feeds``).
        self.followers = Followers(store, config, self.checker.sources, instance=instance)

    # -- jobs ----------------------------------------------------------------------------------------

    def _start(self, name: str, work: Callable[[], Coroutine]) -> None:
        """Run ``work`` as a tracked task unless one of that name still runs or we are stopping.

        Scheduler jobs only start tasks and return at once: a sweep of many borrowers may take
        hours, and a job still running when its next run falls due would log a "skipped: maximum
        number of running instances" warning every ``sweep_every``. Tracked tasks are what
        shutdown waits for instead of cancelling them.
        """
        if self.stopping.is_set() or (name in self._running and not self._running[name].done()):
            return
        task = asyncio.get_running_loop().create_task(work(), name=name)
        self._running[name] = task
        self._busy.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._busy.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s failed: %s: %s", task.get_name(), type(error).__name__, error, exc_info=error)

    async def sweep(self) -> None:
        self._start("sweep", self._sweep)

    async def _sweep(self) -> None:
        """Claim due borrowers batch by batch and check them, until none is due or we are stopping."""
        schedule = self.config.schedule
        if not in_active_hours(schedule.active_window, utcnow().astimezone(self.config.watcher.zone)):
            return
        batch = schedule.concurrency * 4
        self.checker.feed_mode = await asyncio.to_thread(self._feed_mode)
        moved = await asyncio.to_thread(self._reschedule)
        if moved:
            log.info(
                "%d borrower(s) rescheduled within the interval of %s (a source followed by a change feed: "
                "its full_interval)",
                moved,
                format_duration(schedule.interval),
            )
        while not self.stopping.is_set():
            claimed = await asyncio.to_thread(self._claim, batch)
            if not claimed:
                break
            self.checker.feed_mode = await asyncio.to_thread(self._feed_mode)
            outcomes = await self._check(claimed)
            if outcomes:
                await self._report(outcomes)
        if self.stopping.is_set():
            return  # cut short: not a completed sweep; the final heartbeat records the stop
        await self._raise_monitoring_gaps()
        self.sweeps += 1
        await asyncio.to_thread(self._beat, True)
        self.metrics.swept(utcnow())
        sdnotify.notify(f"STATUS=running: {self.checked} checks, last sweep {utcnow():%H:%M:%S} UTC")

    async def _report(self, outcomes: Sequence[CheckOutcome]) -> None:
        """Log a batch's outcomes, one line per alert raised, and start delivering at once when any was."""
        self.checked += len(outcomes)
        failed = [o for o in outcomes if not o.ok]
        alert_ids = [o.alert_id for o in outcomes if o.alert_id is not None]
        log.info("checked %d borrower(s): %d failed, %d alert(s)", len(outcomes), len(failed), len(alert_ids))
        for outcome in failed:
            log.warning("check of %s failed (%s): %s", outcome.borrower_id, outcome.error_kind, outcome.error)
        if not alert_ids:
            return
        try:
            for alert in await asyncio.to_thread(raised_alerts, self.store, alert_ids):
                log.info("%s", alert.line())
        except Exception as error:  # the alerts are stored; a failed look-up must not stop their delivery
            log.warning(
                "alert(s) %s raised; reading them for the log failed: %s", alert_ids, type(error).__name__
            )
        self._start("dispatch", self._dispatch)

    async def _raise_monitoring_gaps(self) -> None:
        gaps = await asyncio.to_thread(self._scan_gaps)
        for alert_id in gaps.gaps:
            log.warning("monitoring gap: alert #%d opened", alert_id)
        for alert_id in gaps.restored:
            log.info("monitoring restored: alert #%d opened", alert_id)
        if gaps.alert_ids:
            self._start("dispatch", self._dispatch)

    async def _check(self, claimed: Sequence[Borrower]) -> list[CheckOutcome]:
        """Check a claimed batch, ``concurrency`` at a time, like ``Checker.check``, but stop-aware.

        Once stopping, checks that have not started are skipped and their claims released at once,
        so that a stop waits for at most ``concurrency`` checks, not the whole batch, and the other
        instances (or the next start) need not wait for the lease. A check cancelled after
        ``stop_timeout`` stays in ``_held`` and is released once the database thread is idle.
        """
        self._held.update(borrower.id for borrower in claimed)
        limit = asyncio.Semaphore(self.config.schedule.concurrency)
        skipped: list[str] = []

        async def one(borrower: Borrower) -> CheckOutcome | None:
            async with limit:
                if self.stopping.is_set():
                    skipped.append(borrower.id)
                    return None
                started = monotonic()
                try:
                    outcome = await self.checker.check_one(borrower)
                except asyncio.CancelledError:
                    raise
                except BaseException:
                    self._held.discard(borrower.id)  # not renewed: retried after the lease
                    raise
                self.metrics.checked(borrower.source, outcome, monotonic() - started)
                return outcome

        results = await asyncio.gather(*(one(borrower) for borrower in claimed), return_exceptions=True)
        # Unchanged checks are written in batches: their claims stay held (and renewed) until then.
        try:
            await self.checker.flush()
        finally:
            self._held.difference_update(borrower.id for borrower in claimed)
        if skipped:
            await asyncio.to_thread(self._release, skipped)
        outcomes = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            if result is not None:
                outcomes.append(result)
        return outcomes

    def _scan_gaps(self) -> GapReport:
        with self.store.transaction() as session:
            return scan_monitoring_gaps(session, self.config, utcnow())

    def _reschedule(self) -> int:
        """Borrowers scheduled beyond their source's polling interval (shortened, or a feed that fell
        back to polling) are brought within it."""
        schedule, feed_mode = self.config.schedule, self.checker.feed_mode
        now = utcnow()
        with self.store.transaction() as session:
            moved = reschedule_beyond_interval(
                session, interval=schedule.interval, jitter=schedule.jitter, now=now, other_than=feed_mode
            )
            for source in sorted(feed_mode):
                interval = self.checker.polling_interval(source)
                moved += reschedule_beyond_interval(
                    session, interval=interval, jitter=schedule.jitter, now=now, sources=[source]
                )
            return moved

    def _feed_mode(self) -> frozenset[str]:
        with self.store.session() as session:
            return healthy_feed_sources(session, self.config, utcnow())

    # -- change feeds ----------------------------------------------------------------------------------

    async def follow_feeds(self) -> None:
        """Start each source's follower whose ``feed_every`` has passed since its last run."""
        for follower in self.followers.due(monotonic()):
            self._start(f"feed:{follower.source.name}", partial(self._follow, follower))

    async def _follow(self, follower: FeedFollower) -> None:
        run = await follower.follow()
        if run.entries or run.marked:
            log.info(
                "%s feeds: %d entries read, %d watched companies due now", run.source, run.entries, run.marked
            )
        if run.marked:
            self._start("sweep", self._sweep)
        if run.alerts:
            self._start("dispatch", self._dispatch)

    def _claim(self, batch: int) -> list[Borrower]:
        with self.store.transaction() as session:
            return claim_due_borrowers(
                session, instance=self.instance, now=utcnow(), lease=self.config.schedule.lease, limit=batch
            )

    def _release(self, borrower_ids: Sequence[str]) -> None:
        with self.store.transaction() as session:
            release_claims(session, instance=self.instance, borrower_ids=borrower_ids)
        self._held.difference_update(borrower_ids)

    async def _renew_claims(self) -> None:
        """While checks run, extend their leases every third of a lease.

        Rate limits, ``Retry-After`` pauses and retries can make a batch outlast the lease; a lapsed
        claim lets another instance check the same borrower at the same time (twice the registry
        calls, and two transactions diffing against the same snapshot). A killed instance stops
        renewing, so its claims still come back after one lease.
        """
        every = max(self.config.schedule.lease.total_seconds() / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            held = list(self._held)
            if not held:
                continue
            try:
                await asyncio.to_thread(self._renew, held)
            except Exception as error:  # the database may be back by the next renewal
                log.warning("renewing %d claim(s) failed: %s: %s", len(held), type(error).__name__, error)

    def _renew(self, borrower_ids: Sequence[str]) -> None:
        with self.store.transaction() as session:
            renew_claims(
                session,
                instance=self.instance,
                borrower_ids=borrower_ids,
                now=utcnow(),
                lease=self.config.schedule.lease,
            )

    async def dispatch(self) -> None:
        self._start("dispatch", self._dispatch)

    async def _dispatch(self) -> None:
        if self.stopping.is_set():
            return
        report = await self.dispatcher.dispatch_due()
        self.metrics.delivered(report)
        # One summary line per dispatch that did anything (`watcher check` prints its own instead);
        # each failed send has had its own line from the dispatcher.
        if report.sent or report.failed or report.dead:
            log.log(
                logging.WARNING if report.failed or report.dead else logging.INFO,
                "deliveries: %d sent, %d failed (will retry), %d dead",
                report.sent,
                report.failed,
                report.dead,
            )

    async def beat(self) -> None:
        self._last_tick = monotonic()
        self._start("heartbeat", self._periodic_beat)

    async def _periodic_beat(self) -> None:
        await asyncio.to_thread(self._beat, False)
        await asyncio.to_thread(self._free_dead_claims)
        if self.config.metrics.enabled:
            await asyncio.to_thread(self._observe_health)

    def _beat(self, swept: bool, stopped: bool = False, started: bool = False) -> None:
        now = utcnow()
        with self.store.transaction() as session:
            heartbeat(
                session,
                name=self.instance,
                host=self.host,
                pid=os.getpid(),
                version=__version__,
                now=now,
                swept=swept,
                stopped=stopped,
                started=started,
            )
        self.metrics.beat(now)

    def _free_dead_claims(self, starting: bool = False) -> None:
        """Free the claims of dead instances at once, rather than after their lease; forget old ones.

        Dead: silent for three heartbeat periods. At start on SQLite every registered instance is
        dead, this one's own name included (the instance lock admits one daemon per file); on
        PostgreSQL so is a predecessor under this instance's own name on this host whose process is
        gone (a restart under a fixed ``instance_name``). Claims held by names never registered
        (``watcher check`` sending the outbox) wait for their lease.
        """
        now = utcnow()
        period = self.config.schedule.heartbeat
        single = starting and self.store.sqlite_path is not None

        def is_dead(instance: Instance) -> bool:
            silent = single or is_silent(instance, now=now, heartbeat=period)
            if instance.name != self.instance:
                return silent
            return starting and (silent or self._gone(instance))

        with self.store.transaction() as session:
            instances = list(session.exec(select(Instance)))
            dead = [i for i in instances if is_dead(i) and (i.name, i.heartbeat_at) not in self._freed]
            borrowers, deliveries = free_claims_of(session, [i.name for i in dead])
            feeds = free_feed_claims_of(session, [i.name for i in dead])
            gone = [i.name for i in instances if i.name != self.instance and is_forgotten(i, now=now)]
            forget_instances(session, gone)
        self._freed.update((i.name, i.heartbeat_at) for i in dead)
        _log_freed(borrowers, deliveries, feeds, sorted(i.name for i in dead), gone)

    def _gone(self, instance: Instance) -> bool:
        """Whether ``instance`` ran on this host as a process that no longer exists (or is this one)."""
        if instance.host != self.host or instance.stopped_at is not None:
            return False
        if instance.pid == os.getpid():
            return True
        try:
            os.kill(instance.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, as another user
            return False
        return False

    def _observe_health(self) -> None:
        with self.store.session() as session:
            self.metrics.observe_health(read_health(session, self.config))

    async def liveness(self) -> Liveness:
        """``/healthz``: the scheduler runs (its heartbeat job fires) and the database answers."""
        since = None if self._last_tick is None else monotonic() - self._last_tick
        state = scheduler_state(
            started=self._scheduler is not None and self._scheduler.running,
            stopping=self.stopping.is_set(),
            since_last_tick=since,
            heartbeat=self.config.schedule.heartbeat,
        )
        error = await self._ping_database()
        return Liveness(self.instance, state, error is None, error)

    async def _ping_database(self) -> str | None:
        """None when ``SELECT 1`` answers within a few seconds, else what went wrong, in a word or two.

        One ping at a time: probes arriving while the database hangs share it rather than piling up
        threads (the daemon's own work needs the default executor).
        """
        if self._ping is None or self._ping.done():
            self._ping = asyncio.get_running_loop().create_task(asyncio.to_thread(self._select_one))
        try:
            await asyncio.wait_for(asyncio.shield(self._ping), timeout=PING_TIMEOUT)
        except TimeoutError:
            return f"no answer within {PING_TIMEOUT:g}s"
        except Exception as error:
            return type(error).__name__
        return None

    def _select_one(self) -> None:
        with self.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def _watchdog(self, interval: float) -> None:
        """Pinged from the event loop: a blocked loop misses pings and systemd restarts us.

        Pings go on while stopping, until the drain is over: a long drain must not look like a hang.
        """
        while True:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # -- lifecycle -----------------------------------------------------------------------------------

    def _schedule(self) -> AsyncIOScheduler:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        every = self.config.schedule.sweep_every.total_seconds()
        # A daemon's loop can stall for seconds; the 1 s default grace would drop runs. Coalesce
        # backlogged runs into one. Jobs only start tracked tasks (``_start``), so they never overlap.
        scheduler = AsyncIOScheduler(
            timezone=self.config.watcher.zone,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(30, int(every * 6)),
            },
        )
        scheduler.add_job(
            self.sweep,
            IntervalTrigger(seconds=every),
            id="sweep",
            next_run_time=datetime.now(self.config.watcher.zone),
        )
        scheduler.add_job(self.dispatch, IntervalTrigger(seconds=every * 2), id="dispatch")
        scheduler.add_job(
            self.beat, IntervalTrigger(seconds=self.config.schedule.heartbeat.total_seconds()), id="heartbeat"
        )
        scheduler.add_job(
            self.housekeeping, IntervalTrigger(seconds=HOUSEKEEPING_EVERY.total_seconds()), id="housekeeping"
        )
        if self.followers:
            scheduler.add_job(
                self.follow_feeds,
                IntervalTrigger(seconds=self.followers.every()),
                id="feeds",
                next_run_time=datetime.now(self.config.watcher.zone),
            )
        return scheduler

    async def housekeeping(self) -> None:
        self._start("housekeeping", self._housekeeping)

    async def _housekeeping(self) -> None:
        """Reclaiming needs no job (expired leases are claimable); this only reports stale claims."""
        stale = await asyncio.to_thread(self._stale_claims)
        if stale:
            log.warning("%d borrower claim(s) outlived their lease; they are being checked again", stale)

    def _stale_claims(self) -> int:
        from sqlmodel import col, func, select

        with self.store.session() as session:
            return session.exec(
                select(func.count()).select_from(Borrower).where(col(Borrower.lease_until) < utcnow())
            ).one()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        await asyncio.to_thread(self._free_dead_claims, True)
        await asyncio.to_thread(self._beat, False, False, True)
        scheduler = self._scheduler = self._schedule()
        scheduler.start()
        self._last_tick = monotonic()
        probes = None
        probes_stop = asyncio.Event()
        if self.config.metrics.enabled:
            from watcher.metrics import serve_probes

            on = self.config.metrics
            serving = serve_probes(self.metrics, self.liveness, probes_stop, host=on.host, port=on.port)
            probes = loop.create_task(serving, name="metrics")
            probes.add_done_callback(self._finished)  # a start failure (port taken) is logged at once
        console = None
        if self.config.console.enabled:
            from watcher.console.app import serve_console

            console = loop.create_task(serve_console(self.store, self.config, self.stopping), name="console")
            console.add_done_callback(self._finished)  # a start failure (port taken) is logged at once
        renewals = loop.create_task(self._renew_claims(), name="renew-claims")
        watchdog = sdnotify.watchdog_interval()
        watchdog_task = loop.create_task(self._watchdog(watchdog), name="watchdog") if watchdog else None
        sdnotify.notify("READY=1", f"STATUS=running as {self.instance}")
        log.info("watcher %s running as %s (database %s)", __version__, self.instance, self.store.safe_url)
        await self.stopping.wait()

        sdnotify.notify("STOPPING=1", "STATUS=finishing in-flight checks and sends")
        scheduler.pause()
        timeout = self.config.schedule.stop_timeout.total_seconds()
        if self._busy:
            log.info("stopping: waiting up to %gs for %d in-flight job(s)", timeout, len(self._busy))
            done, pending = await asyncio.wait(set(self._busy), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "stopping: %d job(s) did not finish in %gs and were cancelled; their claims are released",
                    len(pending),
                    timeout,
                )
                await asyncio.gather(*pending, return_exceptions=True)
        scheduler.shutdown(wait=False)
        # Closing the checker waits for its database thread, so a cancelled check's transaction has
        # either committed (and cleared its claim) or never started before the rest is released.
        await self.checker.aclose()
        await self.followers.aclose()
        self.dispatcher.close()
        renewals.cancel()
        await asyncio.gather(renewals, return_exceptions=True)
        try:
            if self._held:
                log.info("stopping: releasing %d claim(s) of checks that did not run", len(self._held))
                await asyncio.to_thread(self._release, sorted(self._held))
            if self.followers:
                await asyncio.to_thread(self.followers.release)
            await asyncio.to_thread(self._beat, False, True)
        except Exception as error:  # the database is gone: leases run out on their own
            log.warning("stopping: could not record the stop: %s: %s", type(error).__name__, error)
        if console is not None:
            await asyncio.gather(console, return_exceptions=True)
        probes_stop.set()
        if probes is not None:
            await asyncio.gather(probes, return_exceptions=True)
        if watchdog_task:
            watchdog_task.cancel()
            await asyncio.gather(watchdog_task, return_exceptions=True)
        log.info("stopped cleanly")
        return 0

    def _request_stop(self, signum: int) -> None:
        if not self.stopping.is_set():
            log.info("%s received: no new work is claimed", signal.Signals(signum).name)
            self.stopping.set()
