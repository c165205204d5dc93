"""``watcher status``: exit 1 for each condition that needs attention, 0 otherwise; ``--format json``.

Every fact comes from the real pipeline on SQLite and PostgreSQL: replay sources read saved registry
responses (``tests/deployment.py``), failing checks are real failures of those sources, deliveries go
to a loopback DingTalk-like robot that accepts or rejects them, and instances register through the
same ``heartbeat`` the daemon writes. ``status`` judges against the real clock, so the checks here
run at the real time (or a stated distance from it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deployment import FJORDLYS, HARDANGER, LANCHAO, Deployment
from tests.receivers import ChatReceiver
from watcher.cli import app
from watcher.models import Borrower, utcnow
from watcher.pipeline import Checker, CheckOutcome
from watcher.store import borrowers, heartbeat

JSON_KEYS = {
    "version",
    "ok",
    "checked_at",
    "instances",
    "borrowers",
    "failing_after",
    "last_check_at",
    "deliveries",
    "sources",
    "failing_borrowers",
    "awaiting_confirmation",
    "problems",
    "feeds",
}
INSTANCE_KEYS = {
    "name",
    "host",
    "pid",
    "version",
    "state",
    "started_at",
    "heartbeat_at",
    "last_sweep_at",
    "stopped_at",
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def robot() -> Iterator[ChatReceiver]:
    receiver = ChatReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def deployment(folder: Path, url: str, robot: ChatReceiver, extra: str = "") -> Deployment:
    channels = f'[officers.zhang_wei]\nname = "张伟"\nurls = ["{robot.dingtalk_url("tok")}"]\n' + extra
    return Deployment(folder, url, channels)


@pytest.fixture
def world(tmp_path: Path, database_url: str, robot: ChatReceiver) -> Iterator[Deployment]:
    """Three borrowers with a fresh, successful baseline: a healthy deployment without a daemon."""
    world = deployment(tmp_path, database_url, robot)
    world.add(LANCHAO, FJORDLYS, HARDANGER)
    world.stage(0)
    outcomes = world.check(utcnow())
    assert all(outcome.ok for outcome in outcomes.values())
    yield world
    world.close()


def status(world: Deployment, *args: str):
    return CliRunner().invoke(app, ["--config", str(world.config_path), "status", *args])


def status_json(world: Deployment) -> tuple[int, dict]:
    result = status(world, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def kinds(report: dict) -> list[str]:
    return sorted(problem["kind"] for problem in report["problems"])


def check_only(world: Deployment, *borrower_ids: str) -> list[CheckOutcome]:
    """Check these borrowers now with the real pipeline (a source's health is its latest check)."""
    checker = Checker(world.store, world.config)
    with world.store.session() as session:
        selected = borrowers(session, borrower_ids)

    async def run() -> list[CheckOutcome]:
        try:
            return await checker.check(selected)
        finally:
            await checker.aclose()

    return asyncio.run(run())


def register(world: Deployment, name: str, *, silent_for: timedelta, stopped: bool = False) -> None:
    """An instance whose last heartbeat is ``silent_for`` old, written as the daemon writes it."""
    with world.store.transaction() as session:
        heartbeat(
            session,
            name=name,
            host="host-a",
            pid=4242,
            version="test",
            now=utcnow() - silent_for,
            started=True,
            stopped=stopped,
        )


# -- healthy ---------------------------------------------------------------------------------------------


def test_a_healthy_deployment_exits_0_with_every_fact_in_json(world: Deployment):
    register(world, "watcher-a", silent_for=timedelta(seconds=1))

    table = status(world)
    code, report = status_json(world)

    assert table.exit_code == 0, table.output
    assert "borrowers: 3 (0 due, 0 overdue)" in table.stdout
    assert table.stdout.splitlines()[-1] == "health: ok"
    assert code == 0
    assert set(report) == JSON_KEYS
    assert report["ok"] is True and report["problems"] == []
    assert report["borrowers"] == {
        "total": 3,
        "due": 0,
        "overdue": 0,
        "overdue_beyond_failing_after": 0,
        "failing": 0,
        "awaiting_confirmation": 0,
        "inactive": 0,
    }
    assert report["failing_after"] == "1d"
    assert report["deliveries"] == {"pending": 0, "retrying": 0, "dead": 0, "held": 0}
    assert {s["source"]: s["state"] for s in report["sources"]} == {"cn": "ok", "no": "ok"}
    [instance] = report["instances"]
    assert set(instance) == INSTANCE_KEYS
    assert (instance["name"], instance["state"], instance["pid"]) == ("watcher-a", "alive", 4242)
    assert report["failing_borrowers"] == []
    assert report["last_check_at"] is not None


def test_no_instances_registered_is_no_problem(world: Deployment):
    """`watcher check` from cron runs no daemon: status must not demand one."""
    code, report = status_json(world)
    assert (code, report["instances"], report["problems"]) == (0, [], [])


# -- failing sources and borrowers -----------------------------------------------------------------------


def test_a_failing_borrower_and_its_source_exit_1_until_a_check_succeeds(world: Deployment):
    shutil.rmtree(world.folder / "feed" / "no" / FJORDLYS.registry_id)
    [outcome] = check_only(world, FJORDLYS.id)
    assert not outcome.ok

    table = status(world)
    code, report = status_json(world)

    assert table.exit_code == 1, table.output
    assert any(line.startswith("problem: source no failing ×1") for line in table.stdout.splitlines())
    assert table.stdout.splitlines()[-1] == "health: 2 problem(s)"
    assert code == 1 and report["ok"] is False
    assert kinds(report) == ["borrowers_failing", "source_failing"]
    [source_problem] = [p for p in report["problems"] if p["kind"] == "source_failing"]
    assert source_problem["subject"] == "no"
    assert report["borrowers"]["failing"] == 1
    [failing] = report["failing_borrowers"]
    assert (failing["id"], failing["source"], failing["consecutive_failures"]) == (FJORDLYS.id, "no", 1)
    assert failing["last_error_kind"] and failing["last_error"]
    [no_source] = [s for s in report["sources"] if s["source"] == "no"]
    assert (no_source["state"], no_source["consecutive_failures"]) == ("failing", 1)

    world.stage(0, FJORDLYS.id)
    assert [outcome.ok for outcome in check_only(world, FJORDLYS.id)] == [True]
    assert status_json(world)[0] == 0


# -- overdue ---------------------------------------------------------------------------------------------


def test_borrowers_overdue_by_more_than_failing_after_exit_1(tmp_path: Path, database_url, robot):
    """A baseline three days ago with a 24 h interval is due about two days ago: more than the
    default failing_after of 24 h. The same database judged with failing_after = 100d is healthy."""
    world = deployment(tmp_path, database_url, robot)
    world.add(LANCHAO, FJORDLYS, HARDANGER)
    world.stage(0)
    assert all(outcome.ok for outcome in world.check(utcnow() - timedelta(days=3)).values())

    code, report = status_json(world)
    assert code == 1
    assert kinds(report) == ["borrowers_overdue"]
    assert report["borrowers"]["overdue_beyond_failing_after"] == 3
    assert report["problems"][0]["message"] == "3 borrower(s) overdue by more than 1d"

    patient = deployment(tmp_path, database_url, robot, extra='[rules]\nfailing_after = "100d"\n')
    code, report = status_json(patient)
    assert (code, report["problems"], report["failing_after"]) == (0, [], "100d")
    assert report["borrowers"]["overdue"] == 3  # still shown as overdue, just not a probe failure
    world.close()
    patient.close()


def test_an_overdue_borrower_counts_only_while_active(world: Deployment):
    with world.store.transaction() as session:
        borrower = session.get(Borrower, LANCHAO.id)
        borrower.next_check_at = utcnow() - timedelta(days=2)
        session.add(borrower)
    assert kinds(status_json(world)[1]) == ["borrowers_overdue"]
    with world.store.transaction() as session:
        borrower = session.get(Borrower, LANCHAO.id)
        borrower.active = False
        session.add(borrower)
    assert status_json(world)[0] == 0


# -- deliveries ------------------------------------------------------------------------------------------


def test_retrying_and_dead_deliveries_exit_1_and_sent_ones_do_not(tmp_path, database_url, robot):
    world = deployment(tmp_path, database_url, robot)
    world.add(LANCHAO)
    world.stage(0, LANCHAO.id)
    world.check(utcnow() - timedelta(minutes=5))
    world.stage(1, LANCHAO.id)
    assert world.check(utcnow())[LANCHAO.id].alert_id is not None
    robot.reject_with(310000, "keywords not in content")
    assert world.dispatch(utcnow()).failed == 1

    code, report = status_json(world)
    assert code == 1
    assert kinds(report) == ["deliveries_failing"]
    assert report["deliveries"]["retrying"] == 1
    assert report["problems"][0]["message"] == "deliveries failing: 1 retrying, 0 dead"

    robot.accept()
    assert world.dispatch(utcnow() + timedelta(hours=1)).sent == 1
    assert status_json(world)[0] == 0
    world.close()


def test_a_dead_delivery_exits_1(tmp_path, database_url, robot):
    extra = f'[notifiers.desk]\nurls = ["{robot.dingtalk_url("desk")}"]\nmax_attempts = 1\n'
    world = deployment(tmp_path, database_url, robot, extra=extra)
    world.add(FJORDLYS)
    world.stage(0, FJORDLYS.id)
    world.check(utcnow() - timedelta(minutes=5))
    world.stage(1, FJORDLYS.id)
    assert world.check(utcnow())[FJORDLYS.id].alert_id is not None
    robot.fail_with_http(500)
    assert world.dispatch(utcnow()).dead == 1

    code, report = status_json(world)
    assert code == 1 and kinds(report) == ["deliveries_failing"]
    assert report["deliveries"] == {"pending": 0, "retrying": 0, "dead": 1, "held": 0}
    world.close()


# -- instances -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("silent_for", "stopped", "state", "code"),
    [
        (timedelta(seconds=5), False, "alive", 0),
        (timedelta(seconds=44), False, "alive", 0),
        (timedelta(seconds=46), False, "dead", 1),
        (timedelta(hours=3), False, "dead", 1),
        (timedelta(seconds=5), True, "stopped", 1),
    ],
)
def test_no_instance_with_a_fresh_heartbeat_exits_1(world: Deployment, silent_for, stopped, state, code):
    """Fresh means younger than three heartbeat periods (3 × 15 s by default); a stopped one is not."""
    register(world, "watcher-a", silent_for=silent_for, stopped=stopped)

    result = status(world)
    exit_code, report = status_json(world)

    assert result.exit_code == exit_code == code, result.output
    assert [i["state"] for i in report["instances"]] == [state]
    assert kinds(report) == ([] if code == 0 else ["no_live_instance"])
    if state == "dead":
        assert "instance watcher-a (host-a, pid 4242, test): NOT RESPONDING since" in result.stdout


def test_one_live_instance_among_dead_ones_is_enough(world: Deployment):
    register(world, "watcher-a", silent_for=timedelta(hours=2))
    register(world, "watcher-b", silent_for=timedelta(seconds=3))
    code, report = status_json(world)
    assert code == 0
    assert {i["name"]: i["state"] for i in report["instances"]} == {"watcher-a": "dead", "watcher-b": "alive"}


def test_the_heartbeat_period_comes_from_the_config(tmp_path, database_url, robot):
    world = deployment(tmp_path, database_url, robot)
    register(world, "watcher-a", silent_for=timedelta(seconds=20))
    assert status_json(world)[0] == 0
    fast = tmp_path / "fast.toml"
    text = world.config_path.read_text(encoding="utf-8")
    fast.write_text(text.replace('jitter = "0s"', 'jitter = "0s"\nheartbeat = "5s"'), encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(fast), "status", "--format", "json"])
    assert result.exit_code == 1
    assert kinds(json.loads(result.stdout)) == ["no_live_instance"]
    world.close()


# -- change feeds ----------------------------------------------------------------------------------------


def test_each_change_feed_shows_its_state_position_and_lag_and_a_gap_exits_1(world: Deployment):
    """As the follower leaves them (``watcher.feeds``): one feed following, one fallen back to polling."""
    from sources.change_feed import FeedBatch, FeedEntry, FeedGapError
    from watcher.feeds import advance, claim_feeds, fail, release_feeds

    with world.config_path.open("a", encoding="utf-8") as config:
        config.write('\n[sources.live]\ntype = "brreg"\n')  # a source with change feeds, followed
    now = utcnow()
    lease = timedelta(minutes=1)
    with world.store.transaction() as session:
        assert claim_feeds(session, "live", ["enheter", "roller"], instance="pg-a", now=now, lease=lease)
        batch = FeedBatch((FeedEntry(FJORDLYS.registry_id),), "id:28734003", True)
        advance(session, world.config, "live", "enheter", batch, instance="pg-a", now=now, lease=lease)
        gap = FeedGapError("roller: HTTP 400: for gammel")
        fail(session, world.config, "live", "roller", gap, instance="pg-a", now=now)
    table = status(world)
    code, report = status_json(world)
    assert table.exit_code == 1 and code == 1
    lines = [line.strip() for line in table.stdout.splitlines() if "feed live/" in line]
    assert lines[0].startswith("feed live/enheter: following; position id:28734003, lag ")
    assert lines[0].endswith("follower pg-a; entries read 1, companies made due 0"), (
        "watched through source no"
    )
    assert lines[1].startswith("feed live/roller: GAP since ")
    assert "polling instead: roller: HTTP 400: for gammel; position –" in lines[1]
    feeds = {feed["feed"]: feed for feed in report["feeds"]}
    assert (feeds["enheter"]["state"], feeds["enheter"]["position"], feeds["enheter"]["entries"]) == (
        "following",
        "id:28734003",
        1,
    )
    assert feeds["enheter"]["lag_seconds"] is not None and feeds["enheter"]["lag_seconds"] < 60
    assert feeds["roller"]["state"] == "gap" and feeds["roller"]["gap_since"] is not None
    with world.store.transaction() as session:
        release_feeds(session, "live", instance="pg-a")  # the daemon stopped
    _code, stopped = status_json(world)
    assert {f["feed"]: f["state"] for f in stopped["feeds"]} == {"enheter": "unfollowed", "roller": "gap"}
    assert [problem["kind"] for problem in report["problems"]] == ["feed_gap"]
