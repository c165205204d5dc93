"""Several ``watcher run`` instances on one PostgreSQL database: claims, leases, exactly-once alerts.

Two real daemon processes with different ``instance_name`` share one schema (the ``postgres_url``
fixture) and one loopback Brønnøysund stand-in that logs every request per orgnr. A
:class:`ClaimWatch` thread polls the claim columns every 20 ms and records any claim that changed
hands while its holder's lease was still running. Helpers are shared with ``test_daemon.py``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import col

from bench.daemon_scale import BrregStandIn
from tests.receivers import ChatReceiver
from tests.test_daemon import (
    DaemonProcess,
    add_borrowers,
    chat_robot,
    check_all_now,
    child_env,
    daemon_spawner,
    gaps,
    rows,
    slow,
    wait_until,
    watcher_command,
    write_config,
)
from watcher.config import load_config
from watcher.models import Alert, Borrower, Delivery, Instance, utcnow
from watcher.pipeline import Checker
from watcher.store import Store, open_store, status_summary

INTERVAL = 3.0
SWEEP_EVERY = 1.0


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    with daemon_spawner() as start:
        yield start


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    with chat_robot() as receiver:
        yield receiver


@dataclass(frozen=True, slots=True)
class Steal:
    borrower_id: str
    from_instance: str
    to_instance: str
    lease_left: float  # seconds the first holder's lease still had when the second was seen


class ClaimWatch:
    """Polls ``borrower.claimed_by``/``lease_until`` and notes every claim taken over early.

    A claim may pass from A to B only after A's lease ran out, or after A released it (claimed_by
    NULL in between: a finished check is not due again for ``interval``, far longer than a poll).
    """

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)
        self.steals: list[Steal] = []
        self.holders: set[str] = set()
        self.polls = 0
        self._last: dict[str, tuple[str | None, datetime | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-watch", daemon=True)

    def __enter__(self) -> ClaimWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._engine.dispose()

    def _run(self) -> None:
        with self._engine.connect() as connection:
            while not self._stop.is_set():
                seen_at = datetime.now(UTC)
                claims = connection.execute(text("SELECT id, claimed_by, lease_until FROM borrower")).all()
                connection.commit()  # a fresh snapshot for every poll
                for borrower_id, holder, lease_until in claims:
                    previous_holder, previous_lease = self._last.get(borrower_id, (None, None))
                    if holder:
                        self.holders.add(holder)
                    if holder and previous_holder and holder != previous_holder and previous_lease:
                        left = (previous_lease - seen_at).total_seconds()
                        if left > 0:
                            self.steals.append(Steal(borrower_id, previous_holder, holder, left))
                    self._last[borrower_id] = (holder, lease_until)
                self.polls += 1
                self._stop.wait(0.02)


def fetched_since(registry: BrregStandIn, orgnrs: list[str], since: float, *, times: int) -> bool:
    """Every orgnr's unit was fetched at least ``times`` times since ``since`` (monotonic seconds)."""
    fetches = registry.fetch_times("enhet")
    return all(sum(at >= since for at in fetches.get(orgnr, [])) >= times for orgnr in orgnrs)


def swept_since(store: Store, names: list[str], since: datetime) -> bool:
    """Each named instance recorded a completed sweep at or after ``since``."""
    swept = {i.name: i.last_sweep_at for i in rows(store, Instance)}
    return all(swept.get(name) is not None and swept[name] >= since for name in names)


def pg_config(folder: Path, name: str, url: str, registry: BrregStandIn, **options) -> Path:
    return write_config(
        folder,
        database_url=url,
        registry_url=registry.base_url,
        instance_name=name,
        interval=f"{int(INTERVAL)}s",
        sweep_every=f"{int(SWEEP_EVERY)}s",
        lease="4s",
        concurrency=2,
        file_name=f"{name}.toml",
        **options,
    )


# -- 5. two instances share the work -------------------------------------------------------------------


@slow
def test_two_instances_check_each_borrower_once_per_interval_and_deliver_each_alert_once(
    tmp_path, spawn, chat, postgres_url
):
    """30 borrowers, two instances, interval 3 s: within 10 s every orgnr is fetched twice, none twice
    within less than interval − sweep_every, no claim changes hands while its lease runs, both
    instances do work; then five planted changes give five alerts, each arriving at the officer's
    robot exactly once, still once after two more sweep periods of both instances."""
    with BrregStandIn() as registry:
        orgnrs = registry.orgnrs[:30]
        configs = [
            pg_config(tmp_path, name, postgres_url, registry, officer_url=chat.dingtalk_url("tok"))
            for name in ("pg-a", "pg-b")
        ]
        store = open_store(postgres_url)
        ids = add_borrowers(store, orgnrs, officer="kari")
        changed = dict(zip(orgnrs[:5], ids[:5], strict=True))

        with ClaimWatch(postgres_url) as watch:
            daemons = [spawn(config) for config in configs]
            for daemon in daemons:
                daemon.wait_ready()
            observed_from = time.monotonic()
            wait_until(
                lambda: fetched_since(registry, orgnrs, observed_from, times=2),
                10,
                "every orgnr fetched twice in 10 s with interval 3 s",
            )
            registry.plant_change(changed)
            wait_until(
                lambda: (
                    len(rows(store, Delivery, Delivery.status == "sent")) == 5
                    and len(rows(store, Alert)) == 5
                ),
                30,
                "five alerts delivered",
            )
            observed_until, delivered_at = time.monotonic(), utcnow()
            # Room for a duplicate send to show up: both instances sweep (and run their outbox jobs)
            # for two more sweep periods.
            quiet_until = delivered_at + timedelta(seconds=2 * SWEEP_EVERY)
            wait_until(lambda: swept_since(store, ["pg-a", "pg-b"], quiet_until), 30, "two sweep periods")
            for daemon in daemons:
                code, _ = daemon.stop()
                assert code == 0, daemon.output

    fetches = registry.fetch_times("enhet")
    assert set(fetches) == set(orgnrs)
    shortest = min(gap for times in fetches.values() for gap in gaps(times))
    assert shortest >= INTERVAL - SWEEP_EVERY, f"an orgnr was fetched again after {shortest:.2f}s"
    for orgnr, times in fetches.items():
        in_window = [t for t in times if observed_from <= t <= observed_until]
        assert len(in_window) >= 2, f"{orgnr} fetched {len(in_window)}× in 10 s with interval 3 s"
    assert watch.steals == [], watch.steals
    assert watch.holders == {"pg-a", "pg-b"}, f"both instances should claim work, saw {watch.holders}"
    assert not rows(store, Borrower, col(Borrower.claimed_by).is_not(None))

    alerts = rows(store, Alert)
    assert sorted(a.borrower_id for a in alerts) == sorted(changed.values())
    deliveries = rows(store, Delivery)
    assert [(d.status, d.attempts) for d in deliveries] == [("sent", 1)] * 5
    assert len(chat.accepted) == 5, chat.texts()
    for borrower_id in changed.values():
        assert chat.count(f"（{borrower_id}）", token="tok") == 1, (borrower_id, chat.texts())
    with store.session() as session:
        instances = {i.name: i for i in status_summary(session).instances}
    assert set(instances) == {"pg-a", "pg-b"}
    assert all(i.stopped_at is not None and i.last_sweep_at is not None for i in instances.values())
    store.dispose()


# -- 6. an instance killed mid-sweep --------------------------------------------------------------------


@slow
def test_claims_of_a_killed_instance_are_checked_by_the_other_after_the_lease(tmp_path, spawn, postgres_url):
    """A slow registry (0.6 s per request): pg-a's batch of eight takes ~5 s, longer than the 4 s lease,
    while pg-b idles; pg-a renews its leases, so pg-b never checks a borrower pg-a is still checking.
    Then SIGKILL pg-a mid-batch: pg-b checks its borrowers only after their lease ran out, every
    borrower gets a successful check after the kill, and `watcher status` from a third process shows
    both instances, the dead one's heartbeat frozen while the survivor's moves on."""
    with BrregStandIn(delay=0.6) as registry:
        orgnrs = registry.orgnrs[:10]
        configs = [pg_config(tmp_path, name, postgres_url, registry) for name in ("pg-a", "pg-b")]
        store = open_store(postgres_url)
        add_borrowers(store, orgnrs)
        by_id = {b.id: b.registry_id for b in rows(store, Borrower)}

        with ClaimWatch(postgres_url) as watch:
            victim = spawn(configs[0])
            victim.wait_ready()
            wait_until(lambda: bool(rows(store, Borrower, Borrower.claimed_by == "pg-a")), 20, "claims")
            first_lease = max(b.lease_until for b in rows(store, Borrower, Borrower.claimed_by == "pg-a"))
            survivor = spawn(configs[1])
            survivor.wait_ready()
            wait_until(lambda: datetime.now(UTC) > first_lease, 20, "pg-a's first lease to run out")
            wait_until(lambda: bool(rows(store, Borrower, Borrower.claimed_by == "pg-a")), 20, "more claims")
            victim.kill()
            killed_at = datetime.now(UTC)
            held = {b.id: b.lease_until for b in rows(store, Borrower, Borrower.claimed_by == "pg-a")}
            assert held, "pg-a held no claims when it was killed; nothing to take over"

            def checked_since_kill() -> bool:
                return all((b.last_success_at or killed_at) > killed_at for b in rows(store, Borrower))

            def survivor_beat_since_kill() -> bool:
                return any(i.name == "pg-b" and i.heartbeat_at > killed_at for i in rows(store, Instance))

            wait_until(checked_since_kill, 40, "every borrower checked after the kill")
            wait_until(survivor_beat_since_kill, 20, "a heartbeat of pg-b after the kill")
            status = subprocess.run(
                watcher_command(configs[1], "status"),
                cwd=tmp_path,
                env=child_env(),
                capture_output=True,
                text=True,
                encoding="utf-8",
                timeout=60,
            )
            with store.session() as session:
                instances = {i.name: i for i in status_summary(session).instances}
            code, _ = survivor.stop(signal.SIGTERM)
            assert code == 0, survivor.output

    assert watch.steals == [], watch.steals
    assert watch.holders == {"pg-a", "pg-b"}
    fetches = [hit for hit in registry.hits if hit.endpoint == "enhet"]
    while_both_ran = {}
    for hit in fetches:
        if hit.wall < killed_at.timestamp():
            while_both_ran.setdefault(hit.orgnr, []).append(hit.at)
    shortest = min((gap for times in while_both_ran.values() for gap in gaps(times)), default=INTERVAL)
    assert shortest >= INTERVAL - SWEEP_EVERY, f"an orgnr was fetched again after {shortest:.2f}s"
    for borrower_id, lease_until in held.items():
        orgnr = by_id[borrower_id]
        after_kill = [hit.wall for hit in fetches if hit.orgnr == orgnr and hit.wall > killed_at.timestamp()]
        assert after_kill, f"{borrower_id}, claimed by the dead pg-a, was never checked again"
        early = lease_until.timestamp() - after_kill[0]
        assert early <= 0.05, f"{borrower_id} was fetched {early:.2f}s before pg-a's lease ran out"
    assert "pg-a" not in {b.claimed_by for b in rows(store, Borrower)}

    dead, alive = instances["pg-a"], instances["pg-b"]
    assert dead.stopped_at is None and dead.heartbeat_at <= killed_at
    assert alive.heartbeat_at > killed_at >= dead.heartbeat_at
    assert status.returncode == 0, status
    lines = status.stdout.splitlines()
    [dead_line] = [line for line in lines if line.startswith("instance pg-a (")]
    [alive_line] = [line for line in lines if line.startswith("instance pg-b (")]
    assert f"pid {victim.pid}," in dead_line
    assert f"pid {survivor.pid}," in alive_line and ": alive; last sweep " in alive_line
    assert "borrowers: 10 (" in status.stdout
    store.dispose()


# -- a check stored twice --------------------------------------------------------------------------------


def test_two_overlapping_checks_of_one_changed_borrower_store_one_alert(tmp_path, postgres_url):
    """Two instances' checks of the same borrower with overlapping transactions: a third session
    holds the borrower row, so both checks read the old snapshot and then wait (the snapshot insert's
    foreign-key check needs that row) until it lets go. One registry change must give one alert."""
    with BrregStandIn() as registry:
        config_path = pg_config(tmp_path, "pg-a", postgres_url, registry)
        store = open_store(postgres_url)
        [borrower_id] = add_borrowers(store, registry.orgnrs[:1])
        check_all_now(config_path)
        registry.plant_change(registry.orgnrs[:1])
        config = load_config(config_path)
        [borrower] = rows(store, Borrower)
        outcomes: list = []

        def check_as_another_instance() -> None:
            checker = Checker(store, config)

            async def run() -> None:
                try:
                    outcomes.append(await checker.check_one(borrower))
                finally:
                    await checker.aclose()

            asyncio.run(run())

        blocker = create_engine(postgres_url)
        with blocker.connect() as connection:
            connection.execute(text("SELECT id FROM borrower WHERE id = :id FOR UPDATE"), {"id": borrower_id})
            checks = [threading.Thread(target=check_as_another_instance) for _ in range(2)]
            for check in checks:
                check.start()

            def both_waiting() -> bool:
                with blocker.connect() as probe:
                    return probe.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )).scalar() == 2  # fmt: skip

            wait_until(both_waiting, 20, "both checks waiting at the borrower row")
            connection.commit()
        for check in checks:
            check.join(timeout=30)
        blocker.dispose()

    assert [outcome.ok for outcome in outcomes] == [True, True]
    assert len(rows(store, Alert)) == 1
    store.dispose()
