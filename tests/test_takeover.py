"""A dead instance's claims are freed at once by a live one, not after the lease; old rows are forgotten.

Real ``watcher run`` processes (the helpers of ``test_daemon.py``) against a loopback Brønnøysund
stand-in that logs when each company was fetched. The lease is a full minute everywhere here, so a
borrower or delivery checked or sent again within seconds of a SIGKILL can only have been freed by
the dead-instance rule: an instance silent for three heartbeat periods is dead.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col

from bench.daemon_scale import BrregStandIn
from tests.receivers import ChatReceiver
from tests.test_daemon import (
    DaemonProcess,
    add_borrowers,
    chat_robot,
    child_env,
    daemon_spawner,
    rows,
    slow,
    wait_until,
    watcher_command,
    write_config,
)
from watcher.config import load_config
from watcher.daemon import Daemon
from watcher.health import DEAD_AFTER_HEARTBEATS
from watcher.models import Borrower, Delivery, Instance, utcnow
from watcher.store import claim_due_borrowers, heartbeat, open_store

LEASE = timedelta(minutes=1)


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    with daemon_spawner() as start:
        yield start


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    with chat_robot() as receiver:
        yield receiver


def config_with_heartbeat(folder: Path, heartbeat_every: str, **options) -> Path:
    """``write_config`` with a long lease and ``[schedule] heartbeat``."""
    path = write_config(folder, lease=f"{int(LEASE.total_seconds())}s", **options)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[schedule]\n", f'[schedule]\nheartbeat = "{heartbeat_every}"\n'), "utf-8")
    return path


def first_fetches_after(registry: BrregStandIn, orgnrs: set[str], moment: datetime) -> dict[str, float]:
    """For each company, the wall-clock time of its first ``enhet`` request after ``moment``."""
    after: dict[str, float] = {}
    for hit in registry.hits:
        if hit.endpoint == "enhet" and hit.orgnr in orgnrs and hit.wall > moment.timestamp():
            after.setdefault(hit.orgnr, hit.wall)
    return after


# -- PostgreSQL: two instances, one killed ---------------------------------------------------------------


@slow
def test_claims_of_an_instance_killed_mid_sweep_are_checked_by_the_other_within_three_heartbeats(
    tmp_path, spawn, postgres_url
):
    """pg-a claims all 16 borrowers and is killed while its first checks wait on a slow registry
    (5 s per request); pg-b idles, since nothing is claimable. Heartbeat 2 s, so pg-a is dead 6 s
    after its last heartbeat: pg-b must not touch pg-a's borrowers before that, and must have
    started checking every one of them within three heartbeats after it, long before the 60 s lease."""
    period = 2.0
    with BrregStandIn(delay=5.0) as registry:
        orgnrs = registry.orgnrs[:16]
        configs = [
            config_with_heartbeat(
                tmp_path, f"{int(period)}s", database_url=postgres_url, registry_url=registry.base_url,
                instance_name=name, interval="1h", concurrency=8, file_name=f"{name}.toml",
            )
            for name in ("pg-a", "pg-b")
        ]  # fmt: skip
        store = open_store(postgres_url)
        add_borrowers(store, orgnrs)
        by_id = {b.id: b.registry_id for b in rows(store, Borrower)}

        victim = spawn(configs[0])
        victim.wait_ready()
        claims_of_a = (Borrower.claimed_by == "pg-a",)
        wait_until(lambda: len(rows(store, Borrower, *claims_of_a)) == 16, 20, "pg-a's claims")
        survivor = spawn(configs[1])
        survivor.wait_ready()
        wait_until(lambda: len(registry.hits) >= 2, 20, "pg-a's first checks to reach the registry")
        victim.kill()
        killed_at = datetime.now(UTC)
        registry.delay = 0.0
        held = {b.id: b.lease_until for b in rows(store, Borrower, Borrower.claimed_by == "pg-a")}
        [dead] = rows(store, Instance, Instance.name == "pg-a")
        dead_at = dead.heartbeat_at + timedelta(seconds=DEAD_AFTER_HEARTBEATS * period)

        def all_checked_again() -> bool:
            return all((b.last_success_at or killed_at) > killed_at for b in rows(store, Borrower))

        wait_until(all_checked_again, 40, "every borrower of pg-a checked by pg-b")
        code, _ = survivor.stop()
        assert code == 0, survivor.output

    assert len(held) == 16, f"pg-a should hold every claim when killed, held {len(held)}"
    fetched = first_fetches_after(registry, {by_id[b] for b in held}, killed_at)
    assert set(fetched) == {by_id[b] for b in held}
    earliest, latest = min(fetched.values()), max(fetched.values())
    assert earliest >= dead_at.timestamp() - 0.05, (
        f"pg-b took a borrower {dead_at.timestamp() - earliest:.2f}s before pg-a counted as dead"
    )
    assert latest <= dead_at.timestamp() + 3 * period, (
        f"pg-a's last borrower was first fetched {latest - dead_at.timestamp():.2f}s after pg-a was dead"
    )
    assert latest < min(held.values()).timestamp() - 30, "taken up only near the lease's end"
    assert "freed 16 borrower and 0 delivery claim(s) of dead instance(s) pg-a" in survivor.output
    assert not rows(store, Borrower, col(Borrower.claimed_by).is_not(None))
    store.dispose()


@slow
def test_a_delivery_claimed_by_an_instance_killed_mid_send_is_sent_by_the_other_soon(
    tmp_path, spawn, postgres_url, chat
):
    """pg-a finds a change and is killed while its alert is being sent (the robot kills it on the
    first message, before answering). pg-b, started after, frees the delivery once pg-a is dead and
    sends it: the alert arrives a second time (a crash between send and commit may resend once)
    within a few heartbeats, where the 60 s lease would have held it for a minute."""
    period = 1.0
    with BrregStandIn() as registry:
        configs = [
            config_with_heartbeat(
                tmp_path, f"{int(period)}s", database_url=postgres_url, registry_url=registry.base_url,
                instance_name=name, interval="3s", officer_url=chat.dingtalk_url("tok"),
                file_name=f"{name}.toml",
            )
            for name in ("pg-a", "pg-b")
        ]  # fmt: skip
        store = open_store(postgres_url)
        [borrower_id] = add_borrowers(store, registry.orgnrs[:1], officer="kari")
        chat.kill_client_on_first_message()

        victim = spawn(configs[0])
        chat.set_client_pid(victim.pid)
        wait_until(lambda: rows(store, Borrower)[0].baseline_at is not None, 30, "pg-a's baseline")
        registry.plant_change(registry.orgnrs[:1])
        assert chat.killed.wait(30), victim.output
        victim.process.wait(timeout=10)
        killed_at = datetime.now(UTC)
        [delivery] = rows(store, Delivery)
        assert (delivery.claimed_by, delivery.status) == ("pg-a", "pending")
        survivor = spawn(configs[1])
        survivor.wait_ready()
        wait_until(lambda: rows(store, Delivery)[0].status == "sent", 30, "pg-b to send the alert")
        sent_at = rows(store, Delivery)[0].sent_at
        assert survivor.stop()[0] == 0, survivor.output

    assert len(chat.accepted) == 2 and chat.count(f"（{borrower_id}）", token="tok") == 2
    assert sent_at is not None and delivery.lease_until is not None
    assert (sent_at - killed_at).total_seconds() < 15
    assert sent_at < delivery.lease_until - timedelta(seconds=30)
    freed = r"freed \d+ borrower and 1 delivery claim\(s\) of dead instance\(s\) pg-a"
    assert re.search(freed, survivor.output), survivor.output
    store.dispose()


@slow
def test_a_starting_instance_frees_a_dead_ones_claims_and_forgets_instances_silent_for_a_day(
    tmp_path, spawn, postgres_url
):
    """Left in the database by crashed hosts: ``old-a`` (silent for 25 hours, holding three claims)
    and ``old-b`` (silent for an hour). A new instance frees old-a's claims at once and deletes its
    row; old-b stays, shown as not responding; `watcher status` no longer lists old-a."""
    with BrregStandIn() as registry:
        config = config_with_heartbeat(
            tmp_path, "15s", database_url=postgres_url, registry_url=registry.base_url,
            instance_name="watcher-new", interval="1h",
        )  # fmt: skip
        store = open_store(postgres_url)
        add_borrowers(store, registry.orgnrs[:5])
        with store.transaction() as session:
            for name, silent in (("old-a", timedelta(hours=25)), ("old-b", timedelta(hours=1))):
                heartbeat(
                    session, name=name, host="gone", pid=1, version="0", now=utcnow() - silent, started=True
                )
        with store.transaction() as session:
            claimed = claim_due_borrowers(session, instance="old-a", now=utcnow(), lease=LEASE, limit=3)
        assert len(claimed) == 3

        daemon = spawn(config)
        daemon.wait_ready()
        wait_until(lambda: all(b.last_success_at for b in rows(store, Borrower)), 20, "every check")
        status = subprocess.run(
            watcher_command(config, "status"), cwd=tmp_path, env=child_env(), capture_output=True,
            text=True, encoding="utf-8", timeout=60,
        )  # fmt: skip
        assert daemon.stop()[0] == 0, daemon.output

    assert {i.name for i in rows(store, Instance)} == {"old-b", "watcher-new"}
    assert "forgot instance(s) not heard from for a day: old-a" in daemon.output
    assert "instance old-a " not in status.stdout
    assert "instance old-b (gone, pid 1, 0): NOT RESPONDING since" in status.stdout
    assert status.returncode == 0, status  # watcher-new was alive: one live instance is enough
    store.dispose()


# -- a restart: the predecessor's heartbeat is still fresh ---------------------------------------------


@slow
@pytest.mark.parametrize(
    ("database", "instance_name"),
    [("sqlite", None), ("sqlite", "watcher-a"), ("postgres", "watcher-a")],
    ids=["sqlite-host-pid-names", "sqlite-fixed-name", "postgres-fixed-name"],
)
def test_a_restarted_instance_frees_its_dead_predecessors_claims_at_start(
    tmp_path, spawn, request, database, instance_name
):
    """SIGKILL mid-sweep with eight borrowers claimed for a minute, then a restart at once (as
    systemd's Restart= does): the predecessor's heartbeat is still fresh (the default 15 s period),
    yet the new daemon checks all of them at once. On SQLite the instance lock proves the predecessor
    dead, whatever its name; on PostgreSQL, a predecessor under the same fixed name on this host
    whose process is gone."""
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    with BrregStandIn(delay=1.0) as registry:
        config = config_with_heartbeat(
            tmp_path, "15s", database_url=url, registry_url=registry.base_url,
            instance_name=instance_name, interval="1h",
        )  # fmt: skip
        store = open_store(load_config(config).database.url)
        add_borrowers(store, registry.orgnrs[:8])
        by_id = {b.id: b.registry_id for b in rows(store, Borrower)}

        first = spawn(config)
        first.wait_ready()
        wait_until(lambda: len(registry.hits) >= 1, 20, "the first check to reach the registry")
        first.kill()
        killed_at = datetime.now(UTC)
        claimed = rows(store, Borrower, col(Borrower.claimed_by).is_not(None))
        held = {b.id: (b.claimed_by, b.lease_until) for b in claimed}
        registry.delay = 0.0
        second = spawn(config)
        second.wait_ready()
        wait_until(
            lambda: all((b.last_success_at or killed_at) > killed_at for b in rows(store, Borrower)),
            20,
            "every borrower checked by the restarted daemon",
        )
        assert second.stop()[0] == 0, second.output

    assert len(held) == 8, held
    fetched = first_fetches_after(registry, set(by_id.values()), killed_at)
    earliest_lease_end = min(lease for _, lease in held.values())
    assert max(fetched.values()) < earliest_lease_end.timestamp() - 30
    holders = {holder for holder, _ in held.values()}
    assert f"freed 8 borrower and 0 delivery claim(s) of dead instance(s) {holders.pop()}" in second.output
    store.dispose()


def test_a_restart_under_a_fixed_name_frees_nothing_while_its_namesake_on_another_host_lives(
    tmp_path, postgres_url
):
    """Two hosts configured with the same instance_name (a mistake) must not free each other's claims:
    only a namesake on this host whose process is gone counts as a dead predecessor."""
    path = config_with_heartbeat(
        tmp_path, "15s", database_url=postgres_url, registry_url="http://127.0.0.1:9", instance_name="twin"
    )
    config = load_config(path)
    store = open_store(postgres_url)
    add_borrowers(store, ["974760673", "927140004"])
    finished = subprocess.Popen(["true"])
    finished.wait()
    gone_pid = finished.pid  # a process of this host that has exited

    def restart_frees(host: str, pid: int) -> bool:
        with store.transaction() as session:
            heartbeat(session, name="twin", host=host, pid=pid, version="0", now=utcnow())
            claim_due_borrowers(session, instance="twin", now=utcnow(), lease=LEASE, limit=2)
        daemon = Daemon(store, config, instance="twin")
        try:
            daemon._free_dead_claims(starting=True)
        finally:
            daemon.dispatcher.close()
            asyncio.run(daemon.checker.aclose())
        return rows(store, Borrower, col(Borrower.claimed_by).is_not(None)) == []

    assert not restart_frees("other-host", gone_pid)
    assert not restart_frees(socket.gethostname(), os.getppid())  # a live process
    assert restart_frees(socket.gethostname(), gone_pid)
    store.dispose()
