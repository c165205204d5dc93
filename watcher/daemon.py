"""``watcher run``: the daemon. APScheduler drives the sweep, the outbox, heartbeats and housekeeping.

Each instance keeps its own in-memory scheduler; the *work* is made exactly-once in the database
(claims with leases), so several instances can share one PostgreSQL database. SQLite stays
single-instance: a second daemon on the same file is refused. SIGTERM/SIGINT stop the claiming of
new work, let in-flight checks and sends finish within ``stop_timeout``, and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from datetime import datetime, time, timedelta
from pathlib import Path

from watcher import __version__, sdnotify
from watcher.config import Config
from watcher.dispatch import Dispatcher
from watcher.models import utcnow
from watcher.pipeline import Checker
from watcher.store import Store, claim_due_borrowers, heartbeat

log = logging.getLogger("watcher.daemon")

HEARTBEAT_EVERY = timedelta(seconds=15)
HOUSEKEEPING_EVERY = timedelta(hours=1)


class InstanceLockError(Exception):
    """Another daemon already runs against this SQLite database."""


class SqliteInstanceLock:
    """An exclusive lock file next to the SQLite database; the kernel frees it if the process dies."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._file = None

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
        self._scheduler = None
        self.sweeps = 0
        self.checked = 0

    # -- jobs ----------------------------------------------------------------------------------------

    def _track(self, coroutine) -> asyncio.Task:
        """Jobs run as tracked tasks so that shutdown can wait for them instead of cancelling them."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._busy.add(task)
        task.add_done_callback(self._busy.discard)
        return task

    async def sweep(self) -> None:
        await asyncio.shield(self._track(self._sweep()))

    async def _sweep(self) -> None:
        """Claim due borrowers batch by batch and check them, until none is due or we are stopping."""
        schedule = self.config.schedule
        if not in_active_hours(schedule.active_window, utcnow().astimezone(self.config.watcher.zone)):
            return
        batch = schedule.concurrency * 4
        while not self.stopping.is_set():
            claimed = await asyncio.to_thread(self._claim, batch)
            if not claimed:
                break
            outcomes = await self.checker.check(claimed)
            self.checked += len(outcomes)
            failed = [o for o in outcomes if not o.ok]
            alerts = [o for o in outcomes if o.alert_id is not None]
            log.info(
                "checked %d borrower(s): %d failed, %d alert(s)", len(outcomes), len(failed), len(alerts)
            )
            for outcome in failed:
                log.warning(
                    "check of %s failed (%s): %s", outcome.borrower_id, outcome.error_kind, outcome.error
                )
            if alerts:
                await self._dispatch()
        self.sweeps += 1
        await asyncio.to_thread(self._beat, True)
        sdnotify.notify(f"STATUS=running: {self.checked} checks, last sweep {utcnow():%H:%M:%S} UTC")

    def _claim(self, batch: int):
        with self.store.transaction() as session:
            return claim_due_borrowers(
                session, instance=self.instance, now=utcnow(), lease=self.config.schedule.lease, limit=batch
            )

    async def dispatch(self) -> None:
        await asyncio.shield(self._track(self._dispatch()))

    async def _dispatch(self) -> None:
        if self.stopping.is_set():
            return
        report = await self.dispatcher.dispatch_due()
        if report.sent or report.failed or report.dead:
            log.info(
                "deliveries: %d sent, %d failed (will retry), %d dead",
                report.sent,
                report.failed,
                report.dead,
            )

    async def beat(self) -> None:
        await asyncio.to_thread(self._beat, False)

    def _beat(self, swept: bool, stopped: bool = False) -> None:
        with self.store.transaction() as session:
            heartbeat(
                session,
                name=self.instance,
                host=self.host,
                pid=os.getpid(),
                version=__version__,
                now=utcnow(),
                swept=swept,
                stopped=stopped,
            )

    async def _watchdog(self, interval: float) -> None:
        """Pinged from the event loop: a blocked loop misses pings and systemd restarts us."""
        while not self.stopping.is_set():
            sdnotify.notify("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)

    # -- lifecycle -----------------------------------------------------------------------------------

    def _schedule(self):
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        every = self.config.schedule.sweep_every.total_seconds()
        # A daemon's loop can stall for seconds; the 1 s default grace would drop runs. Coalesce
        # backlogged runs into one, and never run two sweeps at once.
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
        scheduler.add_job(self.beat, IntervalTrigger(seconds=HEARTBEAT_EVERY.total_seconds()), id="heartbeat")
        scheduler.add_job(
            self.housekeeping, IntervalTrigger(seconds=HOUSEKEEPING_EVERY.total_seconds()), id="housekeeping"
        )
        return scheduler

    async def housekeeping(self) -> None:
        """Reclaiming needs no job (expired leases are claimable); this only reports stale claims."""
        stale = await asyncio.to_thread(self._stale_claims)
        if stale:
            log.warning("%d borrower claim(s) outlived their lease; they are being checked again", stale)

    def _stale_claims(self) -> int:
        from sqlmodel import func, select

        from watcher.models import Borrower

        with self.store.session() as session:
            return session.exec(
                select(func.count()).select_from(Borrower).where(Borrower.lease_until < utcnow())
            ).one()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        await asyncio.to_thread(self._beat, False)
        self._scheduler = self._schedule()
        self._scheduler.start()
        watchdog = sdnotify.watchdog_interval()
        watchdog_task = loop.create_task(self._watchdog(watchdog)) if watchdog else None
        sdnotify.notify("READY=1", f"STATUS=running as {self.instance}")
        log.info("watcher %s running as %s (database %s)", __version__, self.instance, self.store.safe_url)
        await self.stopping.wait()

        sdnotify.notify("STOPPING=1", "STATUS=finishing in-flight checks and sends")
        self._scheduler.pause()
        timeout = self.config.schedule.stop_timeout.total_seconds()
        if self._busy:
            log.info("stopping: waiting up to %gs for %d in-flight job(s)", timeout, len(self._busy))
            done, pending = await asyncio.wait(set(self._busy), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "stopping: %d job(s) did not finish in %gs and were cancelled; their claims "
                    "return after the lease",
                    len(pending),
                    timeout,
                )
                await asyncio.gather(*pending, return_exceptions=True)
        self._scheduler.shutdown(wait=False)
        if watchdog_task:
            watchdog_task.cancel()
        await self.checker.aclose()
        self.dispatcher.close()
        await asyncio.to_thread(self._beat, False, True)
        log.info("stopped cleanly")
        return 0

    def _request_stop(self, signum: int) -> None:
        if not self.stopping.is_set():
            log.info("%s received: no new work is claimed", signal.Signals(signum).name)
            self.stopping.set()
