"""The integration API under load (issue 17): bulk upsert of 10,000 parties, 100,000 events read
through the feed; wall time, server CPU and peak RSS, the feed client's peak memory (prints a table).

A real ``watcher serve`` process (console secret from the environment, SQLite in a temporary folder,
or with ``--postgres`` a fresh database on 127.0.0.1:5432) on a free loopback port; a write token
made with ``watcher tokens add``; the per-token rate lifted so it does not limit (we measure the
server, not its budget).

1. ``POST /api/v1/parties:bulk`` with N parties in one request: first as new (added), then the same
   body again (unchanged, 3 times), then every party with a new name (updated, 3 times, a new name
   each). Per request: wall time at the client, the server's CPU (utime + stime from
   ``/proc/<pid>/stat``) and its peak RSS over that request (VmHWM from ``/proc/<pid>/status``,
   reset before each request through ``/proc/<pid>/clear_refs``; where that is refused, the peak
   so far). Each result must count exactly N of its outcome and no rejection.
   The server is then restarted, so the feed's peak is its own, not what the bulk requests left.
2. E change events, E / N per party, bulk-inserted straight into ``change_event`` (what a daemon
   would have stored over time, written the fastest honest way), then read from the start of the
   feed in pages of 1,000 (``GET /api/v1/events?after=&limit=1000``) by a client in its own process
   (``python -m bench.api --read-feed``), whose peak RSS is its own VmHWM at its end. Every seeded id
   must come exactly once, in increasing order.

    .venv/bin/python -m bench.api [--parties 10000] [--events 100000] [--repeat 3] [--postgres]
                                  [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.measure import ProcessRun, run_measured
from bench.registry_stub import valid_orgnrs
from bench.table import Row, print_table, section

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE = 1_000
POSTGRES_ADMIN_URL = os.environ.get(
    "WATCHER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TOKEN_VARIABLE = "WATCHER_BENCH_TOKEN"
"""How the feed client gets the token (not on its command line, where ps shows it)."""
CATEGORIES = ("legal_representative", "director", "shareholder", "supervisor", "manager")

CONFIG = """\
[watcher]
instance_name = "bench"
timezone = "UTC"
[database]
url = "{database}"
[logging]
level = "warning"
[console]
host = "127.0.0.1"
port = {port}
secret_key = "${{WATCHER_CONSOLE_KEY}}"
[api]
rate = "1000000/s"
[sources.brreg]
type = "brreg"
base_url = "http://127.0.0.1:9/"
rate = "1000000/s"
feed = false
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` value in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _written(pid: int) -> int:
    """Bytes the process caused to be written to storage (``/proc/<pid>/io``; 0 where not readable)."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("write_bytes:")), 0)


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+, our own child): a phase's peak is then its own."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# -- the deployment --------------------------------------------------------------------------------


@dataclass
class Server:
    """``watcher serve`` on a config, with the environment its console secret comes from."""

    config: Path
    env: dict[str, str]
    base: str
    process: subprocess.Popen | None = None

    def watcher(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "watcher", "--config", str(self.config), *args],
            env=self.env, cwd=self.config.parent, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"watcher {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def start(self, token: str) -> None:
        import httpx

        log = open(self.config.parent / "serve.log", "wb")  # noqa: SIM115 (lives as long as the server)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "--config", str(self.config), "serve"],
            env=self.env, cwd=self.config.parent, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"watcher serve exited with {self.process.returncode}; see {log.name}")
            try:
                answer = httpx.get(f"{self.base}/api/v1/status", headers=_auth(token), timeout=5)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("watcher serve did not answer within 60 s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def _database(folder: Path, postgres: bool) -> Iterator[str]:
    """SQLite in ``folder``, or a fresh PostgreSQL database dropped afterwards."""
    if not postgres:
        yield f"sqlite:///{folder / 'watcher.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"bench_api_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- measurements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One measured request: client wall time, server CPU over it, server peak RSS over it (KiB),
    bytes the server wrote to storage over it, the server's RSS when it started (KiB)."""

    wall: float
    cpu: float
    peak_kib: int
    written: int
    before_kib: int


@dataclass
class Results:
    parties: int
    events: int
    database: str
    peak_reset: bool = True
    bulk: dict[str, list[Request]] = field(default_factory=dict)
    body_bytes: int = 0
    seed_seconds: float = 0.0
    feed_wall: float = 0.0
    feed_cpu: float = 0.0
    feed_peak_kib: int = 0
    feed_before_kib: int = 0
    feed_pages: int = 0
    client_peak_kib: int = 0
    client_start_kib: int = 0
    client_rusage_kib: int = 0
    client_cpu: float = 0.0
    feed_exact: str = ""


def _measured(server: Server, call: Callable[[], None], results: Results) -> Request:
    results.peak_reset = _reset_peak(server.pid) and results.peak_reset
    cpu = _cpu_seconds(server.pid)
    written = _written(server.pid)
    before = _proc_status(server.pid, "VmRSS")
    started = time.monotonic()
    call()
    wall = time.monotonic() - started
    return Request(
        wall,
        _cpu_seconds(server.pid) - cpu,
        _proc_status(server.pid, "VmHWM"),
        _written(server.pid) - written,
        before,
    )


def _parties(count: int, suffix: str) -> list[dict]:
    orgnrs = valid_orgnrs(count)
    return [
        {"id": f"no-{index:06d}", "name": f"STUB SELSKAP {index:05d} AS{suffix}", "source": "brreg",
         "registry_id": orgnr, "tags": ["bench"], "legal_rep_on_file": f"Person {index}"}
        for index, orgnr in enumerate(orgnrs)
    ]  # fmt: skip


def bulk_phase(server: Server, token: str, results: Results, repeat: int) -> None:
    import httpx

    n = results.parties
    with httpx.Client(base_url=server.base, headers=_auth(token), timeout=600) as client:

        def post(items: list[dict], outcome: str) -> Callable[[], None]:
            body = json.dumps({"items": items}).encode()
            results.body_bytes = len(body)

            def call() -> None:
                answer = client.post(
                    "/api/v1/parties:bulk", content=body, headers={"Content-Type": "application/json"}
                )
                if answer.status_code != 200:
                    raise RuntimeError(f"bulk {outcome}: HTTP {answer.status_code}: {answer.text[:300]}")
                got = answer.json()
                if got[outcome] != n or got["rejected"] != 0:
                    counts = {key: got[key] for key in ("added", "updated", "unchanged", "rejected")}
                    raise RuntimeError(f"bulk {outcome}: expected {n} {outcome}, got {counts}")

            return call

        items = _parties(n, "")
        say(f"bulk upsert of {n:,} new parties ...")
        results.bulk["added"] = [_measured(server, post(items, "added"), results)]
        say(f"... the same body again, {repeat}× ...")
        same = post(items, "unchanged")
        results.bulk["unchanged"] = [_measured(server, same, results) for _ in range(repeat)]
        say(f"... every party renamed, {repeat}× ...")
        results.bulk["updated"] = [
            _measured(server, post(_parties(n, f" v{run + 2}"), "updated"), results) for run in range(repeat)
        ]


def seed_events(database: str, parties: int, events: int) -> tuple[int, int]:
    """``events`` change events, round-robin over the parties, inserted in bulk; their id range.

    On PostgreSQL the tables are then analysed, as autovacuum does within a minute or so of such
    growth: without statistics the planner hash-joins every event after the cursor and sorts them for
    each page (19.0 s for the whole read against 7.5 s analysed, in one run of each)."""
    from sqlalchemy import create_engine, func, insert, select, text

    from watcher.models import ChangeEvent

    engine = create_engine(database)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"borrower_id": f"no-{index % parties:06d}", "source": "brreg",
         "category": CATEGORIES[index % len(CATEGORIES)], "action": "changed",
         "subject": f"Person {index}", "before": f"Old Person {index}", "after": f"New Person {index}",
         "detected_at": start + timedelta(seconds=index), "key_person": index % 2 == 0,
         "first_seen": False}
        for index in range(events)
    ]  # fmt: skip
    with engine.begin() as connection:
        for first in range(0, len(rows), 10_000):
            connection.execute(insert(ChangeEvent), rows[first : first + 10_000])
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("ANALYZE change_event"))
            connection.execute(text("ANALYZE borrower"))
            connection.commit()
    with engine.connect() as connection:
        low, high = connection.execute(select(func.min(ChangeEvent.id), func.max(ChangeEvent.id))).one()
    engine.dispose()
    return int(low or 0), int(high or 0)


def read_feed(base: str, token: str, out: Path) -> None:
    """The feed client (its own process): read every page from the start, check ids, write a summary."""
    import httpx

    start_kib = _proc_status(os.getpid(), "VmRSS")
    ids_in_order = True
    count = 0
    pages = 0
    last = 0
    first: int | None = None
    after: str | None = None
    started = time.monotonic()
    with httpx.Client(base_url=base, headers=_auth(token), timeout=120) as client:
        while True:
            params: dict[str, str | int] = {"limit": PAGE}
            if after is not None:
                params["after"] = after
            answer = client.get("/api/v1/events", params=params)
            answer.raise_for_status()
            page = answer.json()
            pages += 1
            for item in page["items"]:
                if item["id"] <= last:
                    ids_in_order = False
                last = item["id"]
                first = item["id"] if first is None else first
                count += 1
            after = page["next"]
            if not page["more"]:
                break
    wall = time.monotonic() - started
    summary = {"count": count, "pages": pages, "first": first, "last": last, "in_order": ids_in_order,
               "wall": wall, "start_kib": start_kib,
               "peak_kib": _proc_status(os.getpid(), "VmHWM")}  # fmt: skip
    out.write_text(json.dumps(summary))


def feed_phase(server: Server, token: str, database: str, results: Results, folder: Path) -> None:
    say(f"seeding {results.events:,} change events ...")
    started = time.monotonic()
    low, high = seed_events(database, results.parties, results.events)
    results.seed_seconds = time.monotonic() - started
    say(f"reading them through the feed, pages of {PAGE:,} ...")
    summary = folder / "feed.json"
    holder: dict[str, ProcessRun] = {}

    def call() -> None:
        holder["run"] = run_measured(
            [sys.executable, "-m", "bench.api", "--read-feed", server.base, str(summary)],
            stdout=folder / "feed.out",
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), TOKEN_VARIABLE: token},
            cwd=REPO_ROOT,
        )  # fmt: skip

    measured = _measured(server, call, results)
    run = holder["run"]
    if run.returncode != 0:
        raise RuntimeError(f"the feed client failed ({run.returncode}); see {folder / 'feed.err'}")
    got = json.loads(summary.read_text())
    results.feed_wall = got["wall"]  # the reading alone, without the client's start-up
    results.feed_cpu = measured.cpu
    results.feed_peak_kib = measured.peak_kib
    results.feed_before_kib = measured.before_kib
    results.feed_pages = got["pages"]
    # Its own VmHWM, not wait4's ru_maxrss: a child exec'd from this (larger) process inherits the
    # parent's high-water mark into ru_maxrss, so that would report the benchmark's memory.
    results.client_peak_kib = got["peak_kib"]
    results.client_rusage_kib = run.peak_rss_kib
    results.client_start_kib = got["start_kib"]
    results.client_cpu = run.cpu_seconds
    exact = got["count"] == results.events and got["in_order"] and (got["first"], got["last"]) == (low, high)
    results.feed_exact = (
        f"{'yes' if exact else 'NO'}: {got['count']:,} ids {got['first']}..{got['last']} "
        f"({'in order' if got['in_order'] else 'OUT OF ORDER'}), seeded {high - low + 1:,} ids {low}..{high}"
    )


def run(
    parties: int, events: int, *, repeat: int = 3, postgres: bool = False, keep: Path | None = None
) -> Results:
    with tempfile.TemporaryDirectory(prefix="watcher-bench-api-") as temporary:
        folder = keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        with _database(folder, postgres) as database:
            port = _free_port()
            config = folder / "watcher.toml"
            config.write_text(CONFIG.format(database=database, port=port))
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "WATCHER_CONSOLE_KEY": secrets.token_urlsafe(32),
            }
            server = Server(config, env, f"http://127.0.0.1:{port}")
            results = Results(parties, events, "PostgreSQL" if postgres else "SQLite")
            server.watcher("db", "upgrade")
            token = server.watcher("tokens", "add", "bench", "--scope", "write").strip()
            try:
                server.start(token)
                bulk_phase(server, token, results, repeat)
                # A fresh server for the feed: the bulk requests leave ~100 MiB the allocator keeps,
                # which would be the feed's "peak" otherwise.
                server.stop()
                server.start(token)
                feed_phase(server, token, database, results, folder)
            finally:
                server.stop()
    return results


# -- the table -------------------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def _each(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def table_rows(results: Results) -> list[Row]:
    n = results.parties
    peak = "peak" if results.peak_reset else "peak so far (VmHWM not resettable)"
    rows = [
        section(
            f"integration API (bench/api.py): watcher serve on {results.database}, 127.0.0.1; "
            f"bulk upsert of {n:,} parties in one request ({results.body_bytes / 1e6:.1f} MB), "
            f"{results.events:,} events read in pages of {PAGE:,}"
        )
    ]
    added = results.bulk["added"][0]
    for outcome in ("added", "unchanged", "updated"):
        runs = results.bulk[outcome]
        wall = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        label = "new" if outcome == "added" else outcome
        rows.append(
            Row(
                f"bulk {n:,} {label}: wall (×{len(runs)})",
                f"{wall:.2f} s",
                ratio=f"{wall / added.wall:.2f}" if outcome != "added" else "1",
                verdict=f"{n / wall:,.0f} parties/s; server CPU {cpu:.2f} s; {peak} RSS "
                f"{_mib(max(r.peak_kib for r in runs))} (from {_mib(runs[0].before_kib)}); server wrote "
                f"{statistics.median(r.written for r in runs) / 1e6:.1f} MB; "
                f"runs {_each([r.wall for r in runs])} s",
            )
        )
    rows += [
        Row(
            f"seed {results.events:,} change events (bulk insert)",
            f"{results.seed_seconds:.2f} s",
            verdict="straight into change_event, not through the API",
        ),
        Row(
            f"feed: read {results.events:,} events, {results.feed_pages} pages",
            f"{results.feed_wall:.2f} s",
            verdict=f"{results.events / results.feed_wall:,.0f} events/s; "
            f"server CPU {results.feed_cpu:.2f} s",
        ),
        Row(
            "feed: server peak RSS",
            _mib(results.feed_peak_kib),
            verdict=f"a server restarted after the bulk requests: RSS {_mib(results.feed_before_kib)} "
            "before the read",
        ),
        Row(
            "feed: client peak RSS (its own process)",
            _mib(results.client_peak_kib),
            verdict=f"{_mib(results.client_start_kib)} at its start (imports done); "
            f"its CPU {results.client_cpu:.2f} s (start-up and parsing every page); wait4's ru_maxrss "
            f"says {_mib(results.client_rusage_kib)}, the benchmark's own high-water mark inherited at exec",
        ),
        Row("feed: every id once, in order", verdict=results.feed_exact),
    ]
    return rows


def headline(results: Results) -> str:
    return f"integration API on {results.database}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the unchanged and updated requests")
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL on 127.0.0.1:5432 instead of SQLite"
    )
    parser.add_argument("--keep", type=Path, help="keep the database, configuration and logs here")
    parser.add_argument("--read-feed", nargs=2, metavar=("BASE", "OUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.read_feed:
        base, out = arguments.read_feed
        read_feed(base, os.environ[TOKEN_VARIABLE], Path(out))
        return
    started = time.monotonic()
    results = run(
        arguments.parties,
        arguments.events,
        repeat=arguments.repeat,
        postgres=arguments.postgres,
        keep=arguments.keep,
    )
    print(
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"{(time.monotonic() - started) / 60:.1f} min; "
        f"1-min load average {os.getloadavg()[0]:.2f} at the end"
    )
    print_table(table_rows(results))


if __name__ == "__main__":
    main()
