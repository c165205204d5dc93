"""Does one ``watcher run`` on SQLite keep up with 100,000 borrowers a day? (prints a table)

(a) Throughput: a real daemon process checks a batch of borrowers (claim, fetch from the loopback
    Enhetsregisteret of ``bench/registry_stub.py`` in its own process, diff, store). Measured once
    for the first check of each borrower (baseline: snapshot and history stored) and once for the
    daily case (unchanged), then extrapolated to 100,000 checks against 24 h.
(b) Memory: peak RSS (VmHWM) of a fresh daemon process over one full cycle of 10,000 borrowers
    and of 100,000; the larger may use at most 1.3 × the smaller.
(c) Storage: an unchanged check writes no snapshot. The database file of 1,000 borrowers may grow
    by less than 100 KB over ten unchanged cycles (sizes taken after a WAL checkpoint).

A cycle is: mark every borrower due (``next_check_at`` now, ``last_checked_at`` NULL), then wait
until the daemon has checked them all. The daemon runs with the shipped defaults except a 24 h
interval without jitter and a registry rate that does not limit (we measure our side, not the
registry's). ``BrregStandIn`` (registry_stub plus a per-request delay and log) is what the daemon
tests use.

    .venv/bin/python -m bench.daemon_scale [--batch 5000] [--small 10000] [--large 100000]
                                           [--storage-borrowers 1000] [--cycles 10] [--parts abc]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.registry_stub import RegistryStub, StubProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
DAY = 24 * 3600
TARGET_BORROWERS = 100_000
MEMORY_RATIO_TARGET = 1.3
GROWTH_TARGET_BYTES = 100_000
BRREG_PUBLIC_RATE = 5  # requests/s: the shipped [sources.brreg] rate; two requests per check


# -- the registry stand-in for the daemon tests ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One request as it arrived: which company, which endpoint, when (monotonic and wall-clock seconds)."""

    orgnr: str
    endpoint: str
    at: float
    wall: float


class BrregStandIn(RegistryStub):
    """registry_stub's Enhetsregisteret with what the daemon tests need on top.

    ``delay`` seconds pass before each answer (a slow registry: checks stay in flight long enough
    to be interrupted); ``hits`` logs every request on arrival, so a test can tell how often and
    when each company was fetched. ``plant_change`` gives companies a new daglig leder.
    """

    def __init__(self, companies: int = 300, *, delay: float = 0.0, keep_hits: bool = True) -> None:
        super().__init__(companies)
        self.delay = delay
        self.keep_hits = keep_hits
        self.hits: list[Hit] = []
        self._hits_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def answered(self) -> int:
        return self.counters.requests

    def plant_change(self, orgnrs: Iterable[str]) -> None:
        self.mark_changed(orgnrs)

    def fetch_times(self, endpoint: str = "enhet") -> dict[str, list[float]]:
        """For each company, when its ``endpoint`` was requested (monotonic seconds, in order)."""
        times: dict[str, list[float]] = defaultdict(list)
        with self._hits_lock:
            for hit in self.hits:
                if hit.endpoint == endpoint:
                    times[hit.orgnr].append(hit.at)
        return dict(times)

    def _arrived(self, orgnr: str, endpoint: str) -> None:
        if self.keep_hits:
            with self._hits_lock:
                self.hits.append(Hit(orgnr, endpoint, time.monotonic(), time.time()))
        if self.delay:
            time.sleep(self.delay)

    def unit(self, orgnr: str) -> dict | None:
        self._arrived(orgnr, "enhet")
        return super().unit(orgnr)

    def roles(self, orgnr: str) -> dict | None:
        self._arrived(orgnr, "roller")
        return super().roles(orgnr)


# -- a deployment on disk ------------------------------------------------------------------------------


CONFIG = """\
[watcher]
instance_name = "bench"
timezone = "UTC"
[database]
url = "sqlite:///{database}"
[schedule]
interval = "24h"
jitter = "0s"
[logging]
level = "warning"
[sources.brreg]
type = "brreg"
base_url = "{registry}"
rate = "1000000/s"
feed = false
"""


def seed(database: Path, orgnrs: list[str]) -> None:
    """The schema (through the product's migrations) and one borrower per orgnr, inserted in bulk."""
    from sqlalchemy import insert

    from watcher.models import Borrower, utcnow
    from watcher.store import open_store

    store = open_store(f"sqlite:///{database}")
    now = utcnow()
    rows = [
        {
            "id": f"no-{index:06d}", "name": f"STUB SELSKAP {index:05d} AS", "source": "brreg",
            "registry_id": orgnr, "tags": "", "active": True, "created_at": now, "updated_at": now,
            "next_check_at": now, "consecutive_failures": 0,
        }
        for index, orgnr in enumerate(orgnrs)
    ]  # fmt: skip
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(Borrower), rows[start : start + 10_000])
    store.dispose()


def _connect(database: Path) -> sqlite3.Connection:
    """A plain reader/writer beside the daemon: autocommit, WAL-aware, patient with its write lock."""
    connection = sqlite3.connect(database, timeout=60, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=60000")
    return connection


def mark_all_due(database: Path) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores UTC times in SQLite
    with _connect(database) as connection:
        connection.execute("UPDATE borrower SET next_check_at = ?, last_checked_at = NULL", (now,))


def unchecked(database: Path) -> int:
    with _connect(database) as connection:
        return connection.execute("SELECT count(*) FROM borrower WHERE last_checked_at IS NULL").fetchone()[0]


def count(database: Path, table: str) -> int:
    with _connect(database) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (our names)


def checkpointed_size(database: Path) -> int:
    """The main database file's size once the WAL is folded into it and truncated."""
    with _connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return database.stat().st_size


# -- the daemon process ------------------------------------------------------------------------------


def _proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` value in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Cycle:
    borrowers: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.borrowers / self.seconds


@dataclass
class DaemonRun:
    """``python -m watcher run`` on a config, ready when it says READY=1 on its notify socket."""

    config: Path
    cycles: list[Cycle] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def __enter__(self) -> DaemonRun:
        address = f"@watcher-bench-{uuid.uuid4().hex}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind("\0" + address[1:])
            notify.settimeout(120)
            env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "JOURNAL_STREAM")}
            env.update(NOTIFY_SOCKET=address, PYTHONPATH=str(REPO_ROOT))
            self.process = subprocess.Popen(
                [sys.executable, "-m", "watcher", "--config", str(self.config), "run"],
                cwd=self.config.parent,
                env=env,
            )
            while b"READY=1" not in notify.recv(4096).split(b"\n"):
                pass
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cycle(self, database: Path, borrowers: int, *, mark_due: bool = True) -> Cycle:
        """Mark everything due (unless the seed just did) and wait until all of it is checked.

        The clock starts at the first check seen, not at marking: the wait for the next sweep
        (up to ``sweep_every``) is latency, not throughput.
        """
        if mark_due:
            mark_all_due(database)
        cpu_before = _cpu_seconds(self.pid)
        started = None
        while left := unchecked(database):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.process.returncode}")
            if started is None and left < borrowers:
                started = time.monotonic()
            time.sleep(0.1)
        finished = time.monotonic()
        result = Cycle(borrowers, finished - (started or finished - 0.1), _cpu_seconds(self.pid) - cpu_before)
        self.cycles.append(result)
        return result

    def peak_rss_kib(self) -> int:
        return _proc_status(self.pid, "VmHWM")

    def __exit__(self, *exc_info) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)


def deployment(folder: Path, registry_url: str, orgnrs: list[str]) -> tuple[Path, Path]:
    database = folder / "watcher.db"
    config = folder / "watcher.toml"
    config.write_text(CONFIG.format(database=database, registry=registry_url), encoding="utf-8")
    seed(database, orgnrs)
    return config, database


# -- the three measurements ------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    value: str
    target: str = ""
    verdict: str = ""


def throughput(folder: Path, stub: StubProcess, batch: int) -> list[Row]:
    config, database = deployment(folder, stub.url, stub.orgnrs[:batch])
    with DaemonRun(config) as daemon:
        baseline = daemon.cycle(database, batch, mark_due=False)
        unchanged = daemon.cycle(database, batch)
    day = TARGET_BORROWERS / unchanged.per_second
    onboarding = TARGET_BORROWERS / baseline.per_second
    registry_bound = TARGET_BORROWERS * 2 / BRREG_PUBLIC_RATE
    bound_verdict = "ok: the registry sets the pace, not us" if registry_bound <= DAY else "MISSED"
    return [
        Row(f"(a) first checks (baseline) of {batch:,}", f"{baseline.per_second:,.0f} checks/s",
            "", f"{baseline.borrowers / max(baseline.cpu_seconds, 1e-9):,.0f} per daemon CPU-second"),
        Row(f"(a) daily checks (unchanged) of {batch:,}", f"{unchanged.per_second:,.0f} checks/s",
            "", f"{unchanged.borrowers / max(unchanged.cpu_seconds, 1e-9):,.0f} per daemon CPU-second"),
        Row(f"(a) {TARGET_BORROWERS:,} daily checks take", f"{day / 60:,.1f} min", "≤ 24 h",
            f"{'ok' if day <= DAY else 'MISSED'}: margin ×{DAY / day:,.0f}"),
        Row(f"(a) onboarding {TARGET_BORROWERS:,} (all baselines)", f"{onboarding / 60:,.1f} min"),
        Row(f"(a) at brreg's {BRREG_PUBLIC_RATE}/s (2 requests a check)", f"{registry_bound / 3600:,.1f} h",
            "≤ 24 h", bound_verdict),
    ]  # fmt: skip


def memory(folder: Path, stub: StubProcess, small: int, large: int) -> list[Row]:
    peaks: dict[int, int] = {}
    cycles: dict[int, Cycle] = {}
    for size in (small, large):
        config, database = deployment(folder / f"m{size}", stub.url, stub.orgnrs[:size])
        with DaemonRun(config) as daemon:
            cycles[size] = daemon.cycle(database, size, mark_due=False)
            peaks[size] = daemon.peak_rss_kib()
    ratio = peaks[large] / peaks[small]
    return [
        *(
            Row(f"(b) peak RSS, full cycle of {size:,}", f"{peaks[size] / 1024:,.1f} MiB", "",
                f"{cycles[size].seconds:,.0f} s, {cycles[size].per_second:,.0f} checks/s")
            for size in (small, large)
        ),
        Row(f"(b) peak RSS {large:,} / {small:,}", f"{ratio:.2f}", f"≤ {MEMORY_RATIO_TARGET}",
            "ok" if ratio <= MEMORY_RATIO_TARGET else "MISSED"),
    ]  # fmt: skip


def storage(folder: Path, stub: StubProcess, borrowers: int, cycles: int) -> list[Row]:
    config, database = deployment(folder, stub.url, stub.orgnrs[:borrowers])
    with DaemonRun(config) as daemon:
        daemon.cycle(database, borrowers, mark_due=False)  # baselines
        snapshots_before, size_before = count(database, "snapshot"), checkpointed_size(database)
        for _ in range(cycles):
            daemon.cycle(database, borrowers)
        snapshots_after, size_after = count(database, "snapshot"), checkpointed_size(database)
    growth = size_after - size_before
    return [
        Row(f"(c) snapshots written by {cycles} unchanged cycles", f"{snapshots_after - snapshots_before}",
            "0", "ok" if snapshots_after == snapshots_before else "MISSED"),
        Row(f"(c) DB growth, {cycles} unchanged cycles of {borrowers:,}", f"{growth:,} bytes",
            f"< {GROWTH_TARGET_BYTES:,}",
            f"{'ok' if growth < GROWTH_TARGET_BYTES else 'MISSED'} ({size_before:,} → {size_after:,} bytes)"),
    ]  # fmt: skip


def print_rows(rows: list[Row]) -> None:
    """Rows as they are measured: a run at 100,000 borrowers takes a quarter of an hour."""
    for row in rows:
        print(f"{row.measure:<48}  {row.value:>15}  {row.target:<10}  {row.verdict}".rstrip(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=5_000, help="borrowers for (a)")
    parser.add_argument("--small", type=int, default=10_000, help="the smaller full cycle for (b)")
    parser.add_argument("--large", type=int, default=100_000, help="the larger full cycle for (b)")
    parser.add_argument("--storage-borrowers", type=int, default=1_000, help="borrowers for (c)")
    parser.add_argument("--cycles", type=int, default=10, help="unchanged cycles for (c)")
    parser.add_argument("--parts", default="abc", help="which of a, b, c to run")
    arguments = parser.parse_args()
    companies = max(arguments.batch, arguments.large, arguments.storage_borrowers)
    print(
        f"watcher run on SQLite, one instance, concurrency 8, Enhetsregisteret stand-in in its own "
        f"process (bench/registry_stub.py); {os.cpu_count()} CPUs; Python {sys.version.split()[0]}",
        flush=True,
    )
    print_rows([Row("measure", "value", "target", "verdict / detail")])
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as scratch, StubProcess(companies) as stub:
        folder = Path(scratch)
        if "a" in arguments.parts:
            (folder / "a").mkdir()
            print_rows(throughput(folder / "a", stub, arguments.batch))
        if "b" in arguments.parts:
            (folder / "b").mkdir()
            for size in (arguments.small, arguments.large):
                (folder / "b" / f"m{size}").mkdir()
            print_rows(memory(folder / "b", stub, arguments.small, arguments.large))
        if "c" in arguments.parts:
            (folder / "c").mkdir()
            print_rows(storage(folder / "c", stub, arguments.storage_borrowers, arguments.cycles))


if __name__ == "__main__":
    main()
