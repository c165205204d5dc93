"""Vendor signals around the pipeline: cadence, stamps, unavailable signals, billed calls, status.

A real registered source (``tests/signal_source.py``, ``type = "signal_stub"``) serves canned
answers per signal and bills a call per answer; checks run through the real ``Checker`` against
real SQLite files and PostgreSQL schemas.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tests import signal_source
from tests.signal_source import ANSWERS, ASKED, NOT_BOUGHT, Company
from watcher.cli import app
from watcher.config import load_config
from watcher.importer import BorrowerRow, upsert_borrowers
from watcher.models import Borrower, ChangeEvent, SourceSignal, SourceUsage, utcnow
from watcher.pipeline import RETRY_UNAVAILABLE_AFTER, Checker, CheckOutcome
from watcher.record import CN_SIGNALS, Action, Category, Signal
from watcher.schedule import read_signals_checked
from watcher.store import Store, open_store

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
DAY = timedelta(days=1)
EVERY = CN_SIGNALS  # what the stub offers, as a Chinese vendor does

CONFIG = """\
[database]
url = "{url}"
[schedule]
interval = "24h"
jitter = "0s"
[sources.vendor]
type = "signal_stub"
base_url = "http://127.0.0.1:9"
cadence = {{ abnormal = "7d" }}
"""


class World:
    """A deployment with the stub vendor: config, database, borrowers, and checks at chosen times."""

    def __init__(self, folder: Path, url: str) -> None:
        self.config_path = folder / "watcher.toml"
        self.config_path.write_text(CONFIG.format(url=url), encoding="utf-8")
        self.config = load_config(self.config_path)
        self.store: Store = open_store(self.config.database.url)

    def add(self, *ids: str) -> None:
        rows = [BorrowerRow(id=i, name=f"公司{i}", source="vendor", registry_id=f"R{i}") for i in ids]
        with self.store.transaction() as session:
            upsert_borrowers(session, rows, actor="test")

    def checker(self, clock: list[datetime]) -> Checker:
        """A checker (one process's worth of state) whose clock reads ``clock[0]``."""
        return Checker(self.store, self.config, clock=lambda: clock[0])

    def check(
        self, when: datetime, *, daemon: bool = True, checker: Checker | None = None
    ) -> list[CheckOutcome]:
        """Check every borrower at ``when``: as the daemon does (cadence kept) or as ``watcher check``."""
        own = checker is None
        used = checker or self.checker([when])

        async def run() -> list[CheckOutcome]:
            try:
                with self.store.session() as session:
                    selected = list(session.exec(select(Borrower).order_by(Borrower.id)))
                return await used.check(selected, every_signal=not daemon)
            finally:
                if own:
                    await used.aclose()

        return asyncio.run(run())

    def rows(self, model, *where):
        with self.store.session() as session:
            return list(session.exec(select(model).where(*where)))

    def stamps(self, borrower_id: str) -> dict[Signal, datetime]:
        [borrower] = self.rows(Borrower, Borrower.id == borrower_id)
        return read_signals_checked(borrower.signals_checked)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path, sqlite_url) -> Iterator[World]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    signal_source.reset()
    made = World(tmp_path, url)
    yield made
    made.store.dispose()
    signal_source.reset()


@pytest.fixture
def sqlite_world(tmp_path, sqlite_url) -> Iterator[World]:
    signal_source.reset()
    made = World(tmp_path, sqlite_url)
    yield made
    made.store.dispose()
    signal_source.reset()


# -- cadence ---------------------------------------------------------------------------------------


def test_scheduled_checks_fetch_each_signal_on_its_cadence_and_watcher_check_fetches_all(world):
    ANSWERS["Ra"] = Company("甲公司", abnormal=["list-1"])
    world.add("a")
    world.check(T0)
    assert ASKED[-1] == EVERY  # nothing fetched yet: everything is due
    assert world.stamps("a") == dict.fromkeys(EVERY - {Signal.REGISTRY}, T0)

    world.check(T0 + DAY)  # abnormal and the default 7-day signals wait; judicial follows every check
    assert ASKED[-1] == {Signal.REGISTRY, Signal.JUDICIAL}
    stamps = world.stamps("a")
    assert stamps[Signal.JUDICIAL] == T0 + DAY and stamps[Signal.ABNORMAL] == T0

    world.check(T0 + DAY + timedelta(hours=1), daemon=False)  # an explicit `watcher check`: all
    assert ASKED[-1] == EVERY
    assert world.stamps("a")[Signal.ABNORMAL] == T0 + DAY + timedelta(hours=1)

    world.check(T0 + 8 * DAY + timedelta(hours=1))  # a week after the last: all due again
    assert ASKED[-1] == EVERY


def test_a_signal_skipped_by_cadence_never_produces_a_removal(world):
    """The abnormal list empties between two fetches of it: checks that skip it compare nothing
    against "unknown"; the first check that fetches it again finds the listing gone."""
    ANSWERS["Ra"] = Company("甲公司", abnormal=["list-1"])
    world.add("a")
    world.check(T0)
    ANSWERS["Ra"].abnormal = []
    for day in range(1, 7):
        [outcome] = world.check(T0 + day * DAY)
        assert outcome.ok and outcome.changes == 0
        assert Signal.ABNORMAL not in ASKED[-1]
    assert world.rows(ChangeEvent, ChangeEvent.detected_at > T0) == []  # after the onboarding one

    # Every listing in force gone without a trace waits for a second fetch (a vendor's "no result"
    # glitch must not read as "lifted"); the held check stamps nothing, so the next one asks again.
    [held] = world.check(T0 + 7 * DAY)
    assert Signal.ABNORMAL in ASKED[-1] and held.awaiting_confirmation
    assert world.rows(ChangeEvent, ChangeEvent.detected_at > T0) == []
    [outcome] = world.check(T0 + 7 * DAY + world.config.rules.confirm_after)
    assert Signal.ABNORMAL in ASKED[-1]
    [event] = world.rows(ChangeEvent, ChangeEvent.detected_at > T0)
    assert event.category == Category.ABNORMAL_OPERATION and event.action == Action.REMOVED
    assert outcome.changes == 1 and event.subject == "listed list-1"


def test_unchanged_checks_written_in_a_batch_stamp_their_signals(sqlite_world):
    """Three borrowers whose answers repeat: the third check is the same payload as the second
    (the batched path), and still stamps judicial, in one transaction for all three."""
    from sqlalchemy import event

    world = sqlite_world
    for name in ("a", "b", "c"):
        ANSWERS[f"R{name}"] = Company(f"{name}公司")
    world.add("a", "b", "c")
    world.check(T0)
    world.check(T0 + DAY)  # fewer signals than the baseline: a new payload, mapped and compared
    commits: list[int] = []
    event.listen(world.store.engine, "commit", lambda connection: commits.append(1))
    outcomes = world.check(T0 + 2 * DAY)
    assert [o.ok and o.changes == 0 for o in outcomes] == [True] * 3
    assert len(commits) <= 2  # the batch (with the billed calls), and perhaps the health row
    for name in ("a", "b", "c"):
        stamps = world.stamps(name)
        assert stamps[Signal.JUDICIAL] == T0 + 2 * DAY and stamps[Signal.ABNORMAL] == T0


# -- unavailable signals ---------------------------------------------------------------------------


def test_an_unavailable_signal_is_stored_once_skipped_after_a_restart_and_retried_after_a_day(world, caplog):
    NOT_BOUGHT[Signal.PLEDGES] = "未开通该接口权限"
    ANSWERS["Ra"], ANSWERS["Rb"] = Company("甲公司"), Company("乙公司")
    world.add("a", "b")
    caplog.set_level(logging.WARNING, logger="watcher.sources")
    clock = [T0]
    checker = world.checker(clock)
    world.check(T0, checker=checker, daemon=False)
    assert [Signal.PLEDGES in asked for asked in ASKED] == [True, False]  # the second borrower skips it
    [row] = world.rows(SourceSignal)
    assert (row.source, row.signal, row.reason) == ("vendor", "pledges", "未开通该接口权限")
    assert row.unavailable_since == T0 and row.retry_at == T0 + RETRY_UNAVAILABLE_AFTER
    assert len([r for r in caplog.records if "pledges" in r.getMessage()]) == 1  # one warning
    # The covered signals leave pledges out, so it is not stamped as fetched.
    assert Signal.PLEDGES not in world.stamps("a") and Signal.JUDICIAL in world.stamps("a")

    asyncio.run(checker.aclose())
    ASKED.clear()
    world.check(T0 + timedelta(hours=2), daemon=False)  # a restart: the stored mark is taken up
    assert ASKED and not any(Signal.PLEDGES in asked for asked in ASKED)

    ASKED.clear()
    del NOT_BOUGHT[Signal.PLEDGES]  # the bank bought it meanwhile
    world.check(T0 + RETRY_UNAVAILABLE_AFTER + timedelta(minutes=1), daemon=False)
    assert all(Signal.PLEDGES in asked for asked in ASKED)
    assert world.rows(SourceSignal) == []


def test_a_running_checker_forgets_an_unavailable_signal_when_its_retry_time_comes(world):
    NOT_BOUGHT[Signal.CONTROLLER] = "no permission"
    ANSWERS["Ra"] = Company("甲公司")
    world.add("a")
    clock = [T0]
    checker = world.checker(clock)
    try:
        world.check(T0, checker=checker, daemon=False)
        clock[0] = T0 + DAY / 2
        world.check(clock[0], checker=checker, daemon=False)
        assert Signal.CONTROLLER not in ASKED[-1]
        clock[0] = T0 + RETRY_UNAVAILABLE_AFTER
        world.check(clock[0], checker=checker, daemon=False)
        assert Signal.CONTROLLER in ASKED[-1]  # tried again, and still refused: marked anew
        [row] = world.rows(SourceSignal)
        assert row.unavailable_since == clock[0] and row.retry_at == clock[0] + RETRY_UNAVAILABLE_AFTER
    finally:
        asyncio.run(checker.aclose())


def test_an_operator_retries_a_bought_signal_without_waiting_a_day(world):
    """`watcher signals retry` forgets the mark in the database (audited); a daemon already running
    takes that up at its next reload, within RELOAD_UNAVAILABLE_EVERY, and asks for the signal again."""
    from watcher.models import AuditLog
    from watcher.pipeline import RELOAD_UNAVAILABLE_EVERY

    NOT_BOUGHT[Signal.PLEDGES] = "未开通该接口权限"
    ANSWERS["Ra"] = Company("甲公司")
    world.add("a")
    clock = [T0]
    checker = world.checker(clock)
    runner = CliRunner()
    try:
        world.check(T0, checker=checker, daemon=False)
        assert world.rows(SourceSignal) and Signal.PLEDGES in checker.sources["vendor"].unavailable_signals
        del NOT_BOUGHT[Signal.PLEDGES]  # the bank buys it
        result = runner.invoke(
            app, ["--config", str(world.config_path), "signals", "retry", "vendor", "pledges", "--by", "ops"]
        )
        assert result.exit_code == 0, result.output
        assert "will try pledges again" in result.stdout
        assert world.rows(SourceSignal) == []
        [audit] = world.rows(AuditLog, AuditLog.action == "source.signals_retried")
        assert (audit.actor, audit.subject_id) == ("ops", "vendor")

        clock[0] = T0 + RELOAD_UNAVAILABLE_EVERY / 2  # before the reload: still skipped
        world.check(clock[0], checker=checker, daemon=False)
        assert Signal.PLEDGES not in ASKED[-1]
        clock[0] = T0 + RELOAD_UNAVAILABLE_EVERY + timedelta(seconds=1)
        world.check(clock[0], checker=checker, daemon=False)
        assert Signal.PLEDGES in ASKED[-1] and world.rows(SourceSignal) == []
    finally:
        asyncio.run(checker.aclose())

    unknown = runner.invoke(app, ["--config", str(world.config_path), "signals", "retry", "nosuch"])
    assert unknown.exit_code == 2 and "unknown source 'nosuch'" in unknown.output
    nothing = runner.invoke(app, ["--config", str(world.config_path), "signals", "retry", "vendor"])
    assert nothing.exit_code == 0 and "no signal marked unavailable" in nothing.stdout


# -- billed calls ----------------------------------------------------------------------------------


def test_billed_calls_are_added_per_hour_by_every_checker(world):
    for name in ("a", "b"):
        ANSWERS[f"R{name}"] = Company(f"{name}公司")
    world.add("a", "b")
    world.check(T0)  # every signal: the card and six lists, for two borrowers
    world.check(T0 + timedelta(minutes=20))  # another process, the same hour: card and judicial
    world.check(T0 + timedelta(hours=1))
    usage = {(row.hour.replace(tzinfo=row.hour.tzinfo or UTC), row.calls) for row in world.rows(SourceUsage)}
    hour = T0.replace(minute=0)
    assert usage == {(hour, 2 * 7 + 2 * 2), (hour + timedelta(hours=1), 2 * 2)}


# -- watcher status --------------------------------------------------------------------------------


def test_status_shows_billed_calls_and_unavailable_signals(world):
    NOT_BOUGHT[Signal.VIOLATIONS] = "套餐未包含严重违法"
    ANSWERS["Ra"] = Company("甲公司")
    world.add("a")
    now = utcnow()
    world.check(now - timedelta(days=2))  # outside the last 24 hours: not counted
    world.check(now, daemon=False)  # the mark of two days ago has expired: asked, refused, marked anew
    runner = CliRunner()
    table = runner.invoke(app, ["--config", str(world.config_path), "status"])
    report = json.loads(
        runner.invoke(app, ["--config", str(world.config_path), "status", "--format", "json"]).stdout
    )

    [vendor] = report["sources"]
    assert vendor["billed_calls_24h"] == 6  # the card and five lists: violations is refused
    [unavailable] = vendor["unavailable_signals"]
    assert unavailable["signal"] == "violations" and unavailable["reason"] == "套餐未包含严重违法"
    assert datetime.fromisoformat(unavailable["since"]) == now
    assert report["ok"] is True  # an unbought signal is known, not a problem
    assert "6 billed call(s) in 24h" in table.stdout
    # for people: the signal in [watcher] language too (the json above is for scripts)
    assert "signal violations (严重违法失信名单) unavailable since" in table.stdout
    assert "套餐未包含严重违法" in table.stdout


# -- config ----------------------------------------------------------------------------------------

VENDOR_TABLE = '[sources.vendor]\ntype = "signal_stub"\nbase_url = "http://127.0.0.1:9"\n'


@pytest.mark.parametrize(
    ("keys", "key_path", "reason"),
    [
        (
            'signals = ["abnormal", "satellite"]',
            "sources.vendor.signals[1]",
            "expected 'registry', 'controller', 'abnormal', 'violations', 'pledges', 'judicial', "
            "'change_log', 'charges', 'insolvency' or 'psc_statements', got 'satellite'",
        ),
        ('signals = "judicial"', "sources.vendor.signals", "expected an array, got 'judicial'"),
        ('cadence = "7d"', "sources.vendor.cadence", "expected a table, got '7d'"),
        ('cadence = { pledges = "weekly" }', "sources.vendor.cadence.pledges", "expected a duration like"),
        ('cadence = { judicial = "-1d" }', "sources.vendor.cadence.judicial", "negative durations"),
        (
            'cadence = { satellite = "1d" }',
            "sources.vendor.cadence.satellite",
            "expected 'registry', 'controller',",
        ),
        (
            'cadence = { registry = "1d" }',
            "sources.vendor.cadence",
            "cadence applies to controller, abnormal",
        ),
    ],
)
def test_bad_signals_and_cadence_are_one_clear_line_each(tmp_path, keys, key_path, reason):
    from watcher.errors import ConfigError

    path = tmp_path / "watcher.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/w.db"\n{VENDOR_TABLE}{keys}\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [line] = str(caught.value).splitlines()
    assert line.startswith(f"{path}, key {key_path}: ") and reason in line


def test_signals_and_cadence_as_configured(tmp_path):
    path = tmp_path / "watcher.toml"
    keys = 'signals = ["judicial", "abnormal"]\ncadence = { abnormal = "0s", judicial = "12h" }\n'
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/w.db"\n{VENDOR_TABLE}{keys}', "utf-8")
    options = load_config(path).sources["vendor"]
    source = signal_source.SignalStubSource("vendor", options)
    assert source.enabled_signals == {Signal.REGISTRY, Signal.JUDICIAL, Signal.ABNORMAL}
    assert options.cadence[Signal.JUDICIAL] == timedelta(hours=12)
    assert options.cadence[Signal.ABNORMAL] == timedelta(0)
    assert options.cadence[Signal.CONTROLLER] == timedelta(days=7)  # the default stays
