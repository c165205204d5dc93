"""``watcher run`` as a systemd service: real child processes, real SQLite files, a loopback registry.

Every daemon here is ``python -m watcher --config X run`` in its own process. A fake systemd (an
AF_UNIX datagram socket named by ``NOTIFY_SOCKET``) hears its READY/STATUS/WATCHDOG/STOPPING, and
doubles as the readiness signal for the other tests. The registry is ``BrregStandIn`` of
``bench/daemon_scale.py``: the Enhetsregisteret of ``bench/registry_stub.py`` (a stdlib HTTP server
on 127.0.0.1) plus a per-request delay and a log of which company was fetched when, reached through
the real ``brreg`` source. The PostgreSQL multi-instance tests are in
``test_daemon_postgres.py`` and reuse the helpers below.

The slow tests carry ``@pytest.mark.slow`` so they can be picked out (``-m slow``); nothing skips
them, so ``.ci/run`` runs them all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, func, select

from bench.daemon_scale import BrregStandIn
from tests.receivers import ChatReceiver
from watcher import sdnotify
from watcher.config import ScheduleSection, load_config
from watcher.daemon import in_active_hours
from watcher.importer import BorrowerRow, upsert_borrowers
from watcher.logs import stdout_is_journal
from watcher.models import Alert, Borrower, ChangeEvent, Delivery, Instance, Snapshot, utcnow
from watcher.pipeline import Checker
from watcher.store import Store, borrowers, open_store

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 45.0
STOP_TIMEOUT = 5.0  # the stop_timeout every config here uses
STOP_MARGIN = 3.0  # interpreter exit, closing clients, the last heartbeat
CHINESE_NAME = "风控监控-上海一号"
SWEPT = "STATUS=running: "  # what every completed sweep tells systemd, with the checks so far

# Registered in pyproject.toml; marked tests run everywhere, CI included: nothing skips them.
slow = pytest.mark.slow


# -- a fake systemd -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    at: float  # time.monotonic() on arrival
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


class FakeSystemd:
    """The notify end of systemd: binds ``address`` (a path, or ``@name`` for the abstract namespace)
    and keeps every datagram, decoded as the UTF-8 systemd expects."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.notifications: list[Notification] = []
        self._changed = threading.Condition()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + address[1:] if address.startswith("@") else address)
        self._socket.settimeout(0.1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="fake-systemd", daemon=True)
        self._thread.start()

    @classmethod
    def abstract(cls) -> FakeSystemd:
        return cls(f"@watcher-test-{uuid.uuid4().hex}")

    def env(self, watchdog_usec: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = f"<not UTF-8: {data!r}>"
            with self._changed:
                self.notifications.append(Notification(time.monotonic(), text))
                self._changed.notify_all()

    def wait_for(
        self, line: str, timeout: float, *, prefix: bool = False, count: int = 1
    ) -> Notification | None:
        """The ``count``-th notification having ``line`` (or a line starting with it), waiting up to
        ``timeout``; ``count`` > 1 waits for that many of them (sweeps done, watchdog pings)."""

        def find() -> Notification | None:
            matching = (
                notification
                for notification in self.notifications
                if any(got.startswith(line) if prefix else got == line for got in notification.lines)
            )
            return next(itertools.islice(matching, count - 1, None), None)

        with self._changed:
            self._changed.wait_for(lambda: find() is not None, timeout=timeout)
            return find()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self._socket.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)


# -- daemon processes -----------------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything systemd or a developer's shell could have set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "WATCHER_CONFIG"}
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def watcher_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "watcher", "--config", str(config), *args]


class DaemonProcess:
    """``python -m watcher --config X run`` with its own fake systemd; output goes to a log file."""

    def __init__(self, config: Path, *, systemd: FakeSystemd, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.systemd = systemd
        self.log_path = config.parent / f"daemon-{uuid.uuid4().hex[:8]}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                watcher_command(config, "run"),
                cwd=config.parent,
                env=child_env(**systemd.env(), **(env or {})),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.process.pid

    @property
    def output(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Notification:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.systemd.wait_for("READY=1", timeout=0.2)
            if ready is not None:
                return ready
            if self.process.poll() is not None:
                break
        pytest.fail(f"daemon never became ready (exit {self.process.poll()}):\n{self.output}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, float]:
        """Send ``signum``; the exit code and how long the process took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            name = signal.Signals(signum).name
            pytest.fail(f"daemon did not exit within {timeout}s of {name}:\n{self.output}")
        return code, time.monotonic() - sent

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def rss_kib(self) -> int:
        """Resident set size now, from /proc/<pid>/status (VmRSS, in KiB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")


@contextmanager
def daemon_spawner() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons; whatever still runs at the end is killed by its pid, never by name."""
    started: list[DaemonProcess] = []
    systemds: list[FakeSystemd] = []

    def start(config: Path, *, systemd: FakeSystemd | None = None, env: dict[str, str] | None = None):
        if systemd is None:
            systemd = FakeSystemd.abstract()
            systemds.append(systemd)
        daemon = DaemonProcess(config, systemd=systemd, env=env)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.kill()
        for systemd in systemds:
            systemd.close()


@contextmanager
def chat_robot() -> Iterator[ChatReceiver]:
    receiver = ChatReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    with daemon_spawner() as start:
        yield start


@pytest.fixture
def registry() -> Iterator[BrregStandIn]:
    with BrregStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    with chat_robot() as receiver:
        yield receiver


# -- deployments ----------------------------------------------------------------------------------------


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_config(
    folder: Path,
    *,
    database_url: str,
    registry_url: str,
    instance_name: str | None = None,
    interval: str = "3s",
    sweep_every: str = "1s",
    lease: str = "4s",
    concurrency: int = 2,
    active_hours: str | None = None,
    heartbeat: str | None = None,
    timezone: str = "UTC",
    officer_url: str | None = None,
    extra: str = "",
    file_name: str = "watcher.toml",
    feed: bool = False,
) -> Path:
    """A deployment's config: short schedule, the stand-in as ``brreg``, optionally officer ``kari``.
    The stand-in's update feeds are followed only with ``feed`` (these tests are about polling)."""
    lines = ["[watcher]", f"timezone = {toml_string(timezone)}"]
    if instance_name is not None:
        lines.append(f"instance_name = {toml_string(instance_name)}")
    lines += [
        "[database]",
        f"url = {toml_string(database_url)}",
        "[schedule]",
        f'interval = "{interval}"',
        'jitter = "0s"',
        f'sweep_every = "{sweep_every}"',
        f'lease = "{lease}"',
        f'stop_timeout = "{int(STOP_TIMEOUT)}s"',
        'retry_after_failure = "1m"',
        f"concurrency = {concurrency}",
    ]
    if active_hours is not None:
        lines.append(f'active_hours = "{active_hours}"')
    if heartbeat is not None:
        lines.append(f'heartbeat = "{heartbeat}"')
    lines += [
        "[logging]",
        'level = "info"',
        "[sources.brreg]",
        'type = "brreg"',
        f"base_url = {toml_string(registry_url)}",
        'rate = "1000/s"',
        'timeout = "30s"',
        "retries = 0",
        f"feed = {'true' if feed else 'false'}",
    ]
    if officer_url is not None:
        lines += ["[officers.kari]", 'name = "Kari Nordmann"', f"urls = [{toml_string(officer_url)}]"]
    path = folder / file_name
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def add_borrowers(
    store: Store, orgnrs: list[str], *, source: str = "brreg", officer: str | None = None, prefix: str = "no"
) -> list[str]:
    """One borrower per orgnr, due at once; returns their ids."""
    rows = [
        BorrowerRow(
            id=f"{prefix}-{index:03d}",
            name=f"NORD {prefix} {index} AS",
            source=source,
            registry_id=orgnr,
            officer=officer,
        )
        for index, orgnr in enumerate(orgnrs)
    ]
    with store.transaction() as session:
        upsert_borrowers(session, rows, actor="test")
    return [row.id for row in rows]


def check_all_now(config_path: Path) -> None:
    """Every borrower checked once in this process with the real pipeline (baselines, say)."""
    config = load_config(config_path)
    store = open_store(config.database.url)
    checker = Checker(store, config)

    async def run() -> None:
        try:
            with store.session() as session:
                selected = borrowers(session)
            outcomes = await checker.check(selected)
            assert all(outcome.ok for outcome in outcomes), outcomes
        finally:
            await checker.aclose()

    asyncio.run(run())
    store.dispose()


def rows(store: Store, model, *where) -> list:
    with store.session() as session:
        return list(session.exec(select(model).where(*where)))


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def assert_check_atomic(store: Store, borrower_id: str, baseline_at: datetime) -> bool:
    """Either the check after ``baseline_at`` is stored whole, or nothing of it is. True if stored.

    Stored whole: ``last_checked_at`` moved on, the changed record is a second snapshot taken at that
    moment, every change event points at it and at one alert, and the alert has its outbox row.
    Nothing stored: one snapshot, no events, no alert, and the claim is not left behind for a lease.
    """
    with store.session() as session:
        borrower = session.get(Borrower, borrower_id)
        assert borrower is not None
        snapshots = list(session.exec(select(Snapshot).where(Snapshot.borrower_id == borrower_id)))
        events = list(session.exec(select(ChangeEvent).where(ChangeEvent.borrower_id == borrower_id)))
        alerts = list(session.exec(select(Alert).where(Alert.borrower_id == borrower_id)))
        deliveries = list(
            session.exec(select(Delivery).where(col(Delivery.alert_id).in_([a.id for a in alerts])))
        )
    assert borrower.last_checked_at is not None
    if borrower.last_checked_at == baseline_at:
        assert (len(snapshots), events, alerts) == (1, [], []), borrower_id
        assert borrower.claimed_by is None and borrower.lease_until is None, (
            f"{borrower_id}: claim by {borrower.claimed_by} left until {borrower.lease_until}"
        )
        return False
    assert borrower.last_success_at == borrower.last_checked_at, borrower_id
    assert borrower.claimed_by is None, borrower_id
    assert len(snapshots) == 2, borrower_id
    changed = max(snapshots, key=lambda snapshot: snapshot.id)
    assert changed.fetched_at == borrower.last_checked_at
    assert len(alerts) == 1, borrower_id
    assert events and {(e.snapshot_id, e.alert_id) for e in events} == {(changed.id, alerts[0].id)}
    assert [d.target for d in deliveries] == ["officer:kari"]
    return True


# -- 1. readiness, status, watchdog, stopping ------------------------------------------------------------


def test_notify_without_systemd_or_with_a_dead_socket_never_raises(tmp_path: Path, monkeypatch):
    """systemd's own sd_notify reports, never throws: a vanished socket must not stop the checks."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.notify("WATCHDOG=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", f"@watcher-test-nobody-{uuid.uuid4().hex}")
    assert sdnotify.notify("STATUS=x") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("1000000", None, 0.5),
        ("30000000", "self", 15.0),
        ("1000000", "1", None),
        ("0", None, None),
        ("-4", None, None),
        ("soon", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only(monkeypatch, usec, pid, expected):
    """``WATCHDOG_PID`` naming another process (a child of ours) means the watchdog is not ours."""
    watchdog_pid = str(os.getpid()) if pid == "self" else pid
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", watchdog_pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert sdnotify.watchdog_interval() == expected


def test_journal_priority_prefixes_only_when_stdout_is_the_journal_stream(tmp_path: Path, monkeypatch):
    """JOURNAL_STREAM is inherited by children whose stdout is a pipe or file: compare device and inode."""
    with open(tmp_path / "stdout.txt", "w") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        stat = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        assert stdout_is_journal()
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")
        assert not stdout_is_journal()
        monkeypatch.setenv("JOURNAL_STREAM", "garbage")
        assert not stdout_is_journal()


def test_ready_status_watchdog_and_stopping_reach_systemd(tmp_path, registry, spawn, sqlite_url):
    """A fake systemd hears READY=1 with a UTF-8 STATUS naming the instance in Chinese, a WATCHDOG=1
    at least every WATCHDOG_USEC (while sweeps run, and while stopping), then STOPPING=1; exit 0."""
    config = write_config(
        tmp_path, database_url=sqlite_url, registry_url=registry.base_url, instance_name=CHINESE_NAME
    )
    store = open_store(load_config(config).database.url)
    add_borrowers(store, registry.orgnrs[:6])
    systemd = FakeSystemd(str(tmp_path / "notify.sock"))
    try:
        # A JOURNAL_STREAM that is not our stdout (we write to a file) must not switch to <N> prefixes.
        daemon = spawn(config, systemd=systemd, env={"WATCHDOG_USEC": "1000000", "JOURNAL_STREAM": "1:2"})
        ready = daemon.wait_ready()
        assert ready.lines == ["READY=1", f"STATUS=running as {CHINESE_NAME}"]
        assert systemd.wait_for(f"{SWEPT}6 checks", timeout=20, prefix=True) is not None
        # Sweeps go on (three done) and the watchdog is fed all the while (six pings) before the stop.
        assert systemd.wait_for(SWEPT, timeout=20, prefix=True, count=3) is not None
        assert systemd.wait_for("WATCHDOG=1", timeout=20, count=6) is not None
        signalled = time.monotonic()
        code, _ = daemon.stop(signal.SIGTERM)
        pings = [n.at for n in systemd.notifications if n.text == "WATCHDOG=1"]
        stopping = systemd.wait_for("STOPPING=1", timeout=2)
    finally:
        systemd.close()

    assert code == 0, daemon.output
    assert not [n.text for n in systemd.notifications if n.text.startswith("<not UTF-8")]
    assert stopping is not None and stopping.at >= signalled
    assert "STATUS=finishing in-flight checks and sends" in stopping.lines
    assert len(pings) >= 6
    intervals = gaps([ready.at, *pings])
    assert max(intervals) < 1.0, f"watchdog gaps {intervals} exceed WATCHDOG_USEC"
    output = daemon.output
    assert f"running as {CHINESE_NAME}" in output and "stopped cleanly" in output
    assert not any(line.startswith("<") for line in output.splitlines())
    [instance] = rows(store, Instance)
    assert instance.name == CHINESE_NAME and instance.pid == daemon.pid
    assert instance.stopped_at is not None and instance.last_sweep_at is not None
    store.dispose()


def test_log_lines_survive_a_locale_that_cannot_write_chinese(tmp_path, registry, spawn, sqlite_url):
    """Under an ASCII stdout (a server's LANG=C without UTF-8 mode, a log shipper's pipe) the Chinese
    instance name becomes escapes; it must not turn every log line into a "Logging error" traceback."""
    config = write_config(
        tmp_path, database_url=sqlite_url, registry_url=registry.base_url, instance_name=CHINESE_NAME
    )
    daemon = spawn(config, env={"PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"})
    daemon.wait_ready()
    assert daemon.stop()[0] == 0, daemon.output
    output = daemon.output
    assert "Logging error" not in output and "UnicodeEncodeError" not in output, output
    escaped = CHINESE_NAME.encode("ascii", errors="backslashreplace").decode("ascii")
    assert f"running as {escaped}" in output and "stopped cleanly" in output


# -- 2. stopping in the middle of a sweep -----------------------------------------------------------------


@slow
@pytest.mark.parametrize(
    ("signum", "delay", "finishes_in_flight"),
    [(signal.SIGTERM, 1.0, True), (signal.SIGINT, 2 * STOP_TIMEOUT, False)],
    ids=["sigterm-drains", "sigint-drain-times-out"],
)
def test_stop_during_a_slow_sweep_leaves_no_borrower_half_written(
    tmp_path, registry, spawn, sqlite_url, chat, signum, delay, finishes_in_flight
):
    """Eight borrowers whose registry records changed, answered one second per request (SIGTERM: the
    two checks in flight finish) or slower than stop_timeout (SIGINT: they are cancelled). Either way
    the exit is 0 within stop_timeout, each borrower's check is stored whole or not at all, with its
    claim released rather than left to a lease, and the watchdog is fed until the drain is over."""
    config = write_config(
        tmp_path,
        database_url=sqlite_url,
        registry_url=registry.base_url,
        officer_url=chat.dingtalk_url("tok"),
        lease="1m",
    )
    store = open_store(load_config(config).database.url)
    ids = add_borrowers(store, registry.orgnrs[:8], officer="kari")
    check_all_now(config)
    baselines = {b.id: b.last_checked_at for b in rows(store, Borrower)}
    registry.plant_change(registry.orgnrs[:8])
    registry.delay = delay
    before = len(registry.hits)

    daemon = spawn(config, env={"WATCHDOG_USEC": "1000000"})
    daemon.wait_ready()
    wait_until(lambda: len(registry.hits) >= before + 2, 20, "the first checks to reach the registry")
    code, took = daemon.stop(signum)

    assert code == 0, daemon.output
    assert took < STOP_TIMEOUT + STOP_MARGIN, f"took {took:.1f}s to stop:\n{daemon.output}"
    stopping = daemon.systemd.wait_for("STOPPING=1", timeout=2)
    assert stopping is not None
    draining = [n.at for n in daemon.systemd.notifications if n.text == "WATCHDOG=1" and n.at > stopping.at]
    assert len(draining) >= (1 if finishes_in_flight else 4), "no watchdog pings while draining"
    assert max(gaps([stopping.at, *draining])) < 1.0
    # A sweep that outlasts sweep_every is no overlap to warn about, and a cancelled one no error.
    assert "maximum number of running instances" not in daemon.output
    assert "Traceback" not in daemon.output, daemon.output
    stored = {borrower: assert_check_atomic(store, borrower, baselines[borrower]) for borrower in ids}
    if finishes_in_flight:
        assert 1 <= sum(stored.values()) <= 4, stored  # the in-flight pair, not the whole batch of eight
        assert "stopped cleanly" in daemon.output
    else:
        assert not any(stored.values()), stored
        assert "were cancelled" in daemon.output
    assert not rows(store, Borrower, col(Borrower.claimed_by).is_not(None))
    [instance] = rows(store, Instance)
    assert instance.stopped_at is not None
    store.dispose()


# -- 3. one instance per SQLite file --------------------------------------------------------------------


def test_a_second_daemon_on_the_same_sqlite_file_is_refused_until_the_first_stops(
    tmp_path, registry, spawn, sqlite_url
):
    config = write_config(tmp_path, database_url=sqlite_url, registry_url=registry.base_url)
    database = Path(load_config(config).database.url.removeprefix("sqlite:///"))
    first = spawn(config)
    first.wait_ready()

    second = subprocess.run(
        watcher_command(config, "run"),
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )

    assert second.returncode == 2, second
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    holder = f"(pid {first.pid} on {socket.gethostname()})"
    assert lines[0].startswith(f"watcher: another watcher instance {holder} is running against ")
    assert str(database) in lines[0] and "PostgreSQL" in lines[0]
    assert first.process.poll() is None
    assert f"pid {first.pid} " in (tmp_path / "watcher.db.lock").read_text()

    assert first.stop()[0] == 0, first.output
    third = spawn(config)
    third.wait_ready()
    assert third.stop()[0] == 0, third.output


# -- 4. active hours ------------------------------------------------------------------------------------


def at(clock: str, zone: str = "Asia/Shanghai") -> datetime:
    hour, minute, *second = (int(part) for part in clock.split(":"))
    return datetime(2026, 3, 2, hour, minute, second[0] if second else 0, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("window", "clock", "expected"),
    [
        ("08:00-20:00", "07:59:59", False),
        ("08:00-20:00", "08:00", True),
        ("08:00-20:00", "19:59:59", True),
        ("08:00-20:00", "20:00", False),
        ("22:00-06:00", "21:59:59", False),
        ("22:00-06:00", "22:00", True),
        ("22:00-06:00", "23:59:59", True),
        ("22:00-06:00", "00:00", True),
        ("22:00-06:00", "05:59:59", True),
        ("22:00-06:00", "06:00", False),
        ("22:00-06:00", "12:00", False),
        ("23:30-00:30", "00:15", True),
        ("23:30-00:30", "23:15", False),
        ("00:00-00:01", "00:00:30", True),
        ("00:00-00:01", "23:59:59", False),
    ],
)
def test_in_active_hours_including_windows_past_midnight(window, clock, expected):
    schedule = ScheduleSection(active_hours=window)
    assert in_active_hours(schedule.active_window, at(clock)) is expected


def test_no_active_hours_means_always():
    assert in_active_hours(ScheduleSection().active_window, at("03:00")) is True


def test_active_hours_are_local_time_of_the_configured_zone():
    """08:00–20:00 in Shanghai: 01:00 UTC is 09:00 there (active), 13:00 UTC is 21:00 (not)."""
    window = ScheduleSection(active_hours="08:00-20:00").active_window
    shanghai = ZoneInfo("Asia/Shanghai")
    assert in_active_hours(window, at("01:00", "UTC").astimezone(shanghai)) is True
    assert in_active_hours(window, at("13:00", "UTC").astimezone(shanghai)) is False


def hours_window(local_now: datetime, start_after: timedelta, length: timedelta) -> str:
    start, end = local_now + start_after, local_now + start_after + length
    return f"{start:%H:%M}-{end:%H:%M}"


def ran_for(store: Store, span: timedelta) -> bool:
    """The instance's own heartbeats cover ``span`` since it started: its scheduler ran that long.

    A sweep outside active hours leaves no trace (no status, no log line); the heartbeat job of the
    same scheduler does, so this proves how many sweep periods went by.
    """
    return any(instance.heartbeat_at - instance.started_at >= span for instance in rows(store, Instance))


@slow
def test_a_daemon_outside_its_active_hours_checks_nothing(tmp_path, registry, spawn, sqlite_url):
    """Now ±1 h checks (the control); a window two hours ahead, in Shanghai time, checks nothing
    through the sweep at start and at least two more, which the daemon's heartbeats prove."""
    zone = "Asia/Shanghai"
    local_now = datetime.now(ZoneInfo(zone))
    store = open_store(sqlite_url)
    add_borrowers(store, registry.orgnrs[:3])
    closed = write_config(
        tmp_path,
        database_url=sqlite_url,
        registry_url=registry.base_url,
        timezone=zone,
        active_hours=hours_window(local_now, timedelta(hours=2), timedelta(hours=2)),
        heartbeat="1s",
    )
    daemon = spawn(closed)
    daemon.wait_ready()
    sweep_every = load_config(closed).schedule.sweep_every
    wait_until(lambda: ran_for(store, 3 * sweep_every), 20, "three sweep periods of heartbeats")
    assert daemon.stop()[0] == 0, daemon.output
    assert registry.hits == []
    assert all(b.last_checked_at is None for b in rows(store, Borrower))
    [instance] = rows(store, Instance)
    assert instance.last_sweep_at is None

    open_now = write_config(
        tmp_path,
        database_url=sqlite_url,
        registry_url=registry.base_url,
        timezone=zone,
        active_hours=hours_window(local_now, -timedelta(hours=1), timedelta(hours=2)),
    )
    daemon = spawn(open_now)
    daemon.wait_ready()
    wait_until(lambda: all(b.last_checked_at for b in rows(store, Borrower)), 20, "checks inside the window")
    assert daemon.stop()[0] == 0, daemon.output
    store.dispose()


# -- 7. `watcher status` from another process ------------------------------------------------------------


def test_status_from_another_process_shows_instances_sweeps_backlog_and_failures(
    tmp_path, registry, spawn, sqlite_url, chat
):
    """While a daemon runs: two borrowers whose claim a crashed instance still holds are overdue,
    a source on a closed port fails, and alerts whose robot rejects them wait for a retry."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = f'[sources.brreg_down]\ntype = "brreg"\nbase_url = "http://127.0.0.1:{closed_port}"\nretries = 0\n'
    config = write_config(
        tmp_path,
        database_url=sqlite_url,
        registry_url=registry.base_url,
        instance_name="watcher-a",
        interval="1h",
        officer_url=chat.dingtalk_url("tok"),
        extra=down,
    )
    store = open_store(load_config(config).database.url)
    orgnrs = registry.orgnrs[:7]
    changed = add_borrowers(store, orgnrs[:2], officer="kari", prefix="chg")
    add_borrowers(store, orgnrs[2:4], prefix="stuck")
    add_borrowers(store, orgnrs[5:], prefix="ok")
    check_all_now(config)
    add_borrowers(store, orgnrs[4:5], source="brreg_down", prefix="down")
    registry.plant_change(orgnrs[:2])
    long_ago = utcnow() - timedelta(hours=3)
    with store.transaction() as session:
        for borrower in session.exec(select(Borrower)):
            borrower.next_check_at = long_ago
            if borrower.id.startswith("stuck"):
                borrower.claimed_by, borrower.lease_until = "crashed-host:4242", utcnow() + timedelta(hours=1)
            session.add(borrower)
    chat.reject_with(310000, "keywords not in content")

    daemon = spawn(config)
    daemon.wait_ready()
    wait_until(
        lambda: len(rows(store, Delivery, Delivery.attempts == 1)) == 2, 30, "the rejected first attempts"
    )
    wait_until(lambda: rows(store, Instance)[0].last_sweep_at is not None, 10, "a completed sweep")
    status = subprocess.run(
        watcher_command(config, "status"),
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert daemon.stop()[0] == 0, daemon.output

    assert status.returncode == 1, status  # a failing source and borrower, deliveries retrying
    lines = status.stdout.splitlines()
    assert "problem: source brreg_down failing ×1 (transient)" in lines
    assert "problem: deliveries failing: 2 retrying, 0 dead" in lines
    [instance_line] = [line for line in lines if line.startswith("instance ")]
    assert instance_line.startswith(f"instance watcher-a ({socket.gethostname()}, pid {daemon.pid}, ")
    assert ": alive; last sweep 20" in instance_line
    assert "borrowers: 7 (2 due, 2 overdue)" in lines
    assert "deliveries: 0 pending, 2 retrying, 0 dead, 0 held for digests" in lines
    [down_line] = [line for line in lines if line.startswith("source brreg_down: ")]
    assert "FAILING ×1 (transient)" in down_line and "last success never" in down_line
    assert any(line.startswith("source brreg: ok; last success 20") for line in lines), lines
    assert any(line.startswith("failing borrower down-000: ×1 (transient)") for line in lines), lines
    assert any(line.startswith("last check: 20") for line in lines), lines
    assert {d.alert_id for d in rows(store, Delivery)} == {a.id for a in rows(store, Alert)}
    assert {a.borrower_id for a in rows(store, Alert)} == set(changed)
    store.dispose()


# -- 8. memory --------------------------------------------------------------------------------------------


@slow
def test_resident_memory_stays_flat_over_many_sweeps(tmp_path, spawn, sqlite_url):
    """200 borrowers due every second, RSS sampled after each of 20 sweeps (~20 s, ~4000 checks): the
    last quarter within 10 % (or 8 MiB) of the RSS after warm-up (first quarter). A leak per check
    (sessions, responses, tasks) would show."""
    with BrregStandIn(keep_hits=False) as registry:
        config = write_config(
            tmp_path,
            database_url=sqlite_url,
            registry_url=registry.base_url,
            interval="1s",
            sweep_every="1s",
            concurrency=8,
        )
        store = open_store(load_config(config).database.url)
        add_borrowers(store, registry.orgnrs[:200])
        daemon = spawn(config)
        daemon.wait_ready()
        samples: list[int] = []
        for sweep in range(1, 21):
            done = daemon.systemd.wait_for(SWEPT, timeout=30, prefix=True, count=sweep)
            assert done is not None, f"sweep {sweep} never completed:\n{daemon.output}"
            samples.append(daemon.rss_kib())
        answered = registry.answered
        assert daemon.stop()[0] == 0, daemon.output
    quarter = len(samples) // 4
    warm, late = max(samples[:quarter]), max(samples[-quarter:])
    assert answered >= 2 * 200 * 3, f"only {answered} requests: too few sweeps to say anything"
    assert late <= max(warm * 1.10, warm + 8 * 1024), f"RSS grew from {warm} to {late} KiB: {samples}"
    checked = rows(store, Borrower, col(Borrower.last_checked_at).is_not(None))
    assert len(checked) == 200
    with store.session() as session:
        assert session.exec(select(func.count()).select_from(Snapshot)).one() == 200  # unchanged: no more
    store.dispose()


def test_run_serves_the_console_when_enabled_and_stops_it_with_the_daemon(
    tmp_path, registry, spawn, sqlite_url
):
    """`[console] enabled = true`: `watcher run` serves the review console and stops it on SIGTERM."""
    import socket as socket_module
    import urllib.request

    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console = (
        f'[console]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        'secret_key = "${WATCHER_TEST_CONSOLE_KEY}"\n'
    )
    config = write_config(tmp_path, database_url=sqlite_url, registry_url=registry.url, extra=console)
    daemon = spawn(config, env={"WATCHER_TEST_CONSOLE_KEY": "k" * 40})
    daemon.wait_ready()

    def login_page() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
            return response.status

    wait_until(lambda: _answers(login_page), timeout=20, what="the console to answer")
    code, _ = daemon.stop()
    assert code == 0
    assert not _answers(login_page)


def _answers(request: Callable[[], int]) -> bool:
    try:
        return request() == 200
    except OSError:
        return False


def test_run_serves_the_integration_api_with_the_console(tmp_path, registry, spawn, sqlite_url):
    """The API lives in the console's server: `watcher run` with the console answers /api/v1/status
    for a token, from the same process whose heartbeat the answer reports."""
    import json as json_module
    import socket as socket_module
    import urllib.request

    from watcher.api.tokens import add_token
    from watcher.store import open_store
    from watcher.vocabulary import TokenScope

    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console = (
        f'[console]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        'secret_key = "${WATCHER_TEST_CONSOLE_KEY}"\n'
    )
    config = write_config(tmp_path, database_url=sqlite_url, registry_url=registry.url, extra=console)
    daemon = spawn(config, env={"WATCHER_TEST_CONSOLE_KEY": "k" * 40})
    daemon.wait_ready()
    store = open_store(sqlite_url)
    with store.transaction() as session:
        _row, token = add_token(session, name="monitor", scope=TokenScope.READ, officer_id=None, actor="test")
    store.dispose()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/status", headers={"Authorization": f"Bearer {token}"}
    )

    def status() -> int:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status

    wait_until(lambda: _answers(status), timeout=20, what="the API to answer")
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json_module.loads(response.read())
    assert [instance["state"] for instance in body["instances"]] == ["alive"]
    code, _ = daemon.stop()
    assert code == 0
    assert not _answers(status)
