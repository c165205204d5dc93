"""`watcher run` following Brønnøysund's update feeds, side by side with urlwatch (issue 16, point 5).

One loopback Enhetsregisteret (bench/registry_stub.py, its own process) serves N companies and their
update feeds. Borrower Watcher runs as a real daemon (`watcher run`, SQLite, ``feed = true``,
``feed_every`` 5 s, ``interval = "24h"``, no registry rate limit as in the other benchmarks) with
every company a borrower of one officer whose channel is a json:// webhook receiver on 127.0.0.1 in
this process. The daemon itself stores the N baselines first (the sweep of freshly imported
borrowers), then the benchmark runs cycles. A cycle starts right after a feed read and is one
``feed_every`` period plus the checks it triggers:

- unchanged: nothing is published; the cycle ends when the next feed read is over;
- changed: 1 % of the companies get a new daglig leder, spread over the first 80 % of the period,
  each published in both feeds, with 5 × as many entries about companies the bank does not watch;
  the cycle ends when every planted change has reached the webhook.

Per cycle: requests the stand-in answered (feed / unit + roles), wall time (changed: from the start
of the period until every planted change has its alert), the daemon's CPU time (``/proc/<pid>/stat``
utime + stime), per change the latency from publication to ``alert.created_at`` and to delivery at
the webhook; exactness: each planted company one change alert and one delivery, no other alert.

urlwatch (bench/compare_urlwatch.py's subject: two url jobs per company, its throw-away venv) then
runs a cold cycle and a 1 %-changed cycle on the same stand-in; its changed cycle's wall time is the
denominator of the ratio. It scans its whole cache for every job, so at 10,000 a cycle takes minutes:
``--urlwatch-companies`` runs it (and a watcher daemon of its own) at a smaller N, the ratio then
taken at that N for both.

Memory: a second daemon follows the feed with ``--rss-companies`` watched companies (bulk-inserted,
next check far ahead, as bench/daemon_scale.py seeds them) through a few 1 %-changed cycles; its peak
RSS is VmHWM from ``/proc/<pid>/status``. Those companies have no snapshot yet, so the checks the
feed triggers there store baselines (no alerts).

    .venv/bin/python -m bench.change_feeds [--companies 10000] [--cycles K] [--rss-companies 100000]
                                           [--urlwatch-companies N] [--skip-urlwatch] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.compare_urlwatch import UrlwatchSubject
from bench.daemon_scale import DaemonRun, _connect, _cpu_seconds, _proc_status
from bench.measure import ProcessRun
from bench.registry_stub import StubProcess
from bench.table import Row, print_table, section
from bench.tool_venv import ensure_tool, tool_version

CHANGED_SHARE = 0.01
UNWATCHED_PER_CHANGE = 5  # a real feed names mostly companies the bank does not lend to
FEED_EVERY = 5.0  # seconds
PLANT_SPAN = 0.8  # changes are published over this share of the period after a feed read
BRREG_PUBLIC_RATE = 5  # requests/s: the shipped [sources.brreg] rate

# Issue 16 point 5 targets.
UNCHANGED_REQUESTS_TARGET = 10
CHANGED_REQUESTS_SLACK = 10  # the changed cycle: at most 2 × changed + this
RATIO_TARGET = 0.05  # watcher changed-cycle wall / urlwatch changed-cycle wall
LATENCY_SLACK = 30.0  # every change alerted within feed_every + this
RSS_TARGET_BYTES = 150_000_000

CONFIG = """\
[watcher]
instance_name = "bench"
timezone = "UTC"
language = "en"
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
feed = true
feed_every = "{feed_every}s"
[officers.bench]
name = "Bench Officer"
urls = ["{webhook}"]
"""

_NAME = re.compile(r"STUB SELSKAP (\d{5,}) AS")


def borrower_name(index: int) -> str:
    """The stand-in's own name for company ``index``, so an alert's text names the borrower either way."""
    return f"STUB SELSKAP {index:05d} AS"


def borrower_id(index: int) -> str:
    return f"no-{index:06d}"


# -- the officer's webhook -----------------------------------------------------------------------------


class WebhookReceiver:
    """apprise's json:// POSTs on 127.0.0.1: when each arrived and which borrower it names."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (time.time(), borrower id or "")
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._record(arrived, body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
                """The table is the output."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self._server.server_address[1]}/alerts"

    def _record(self, arrived: float, body: bytes) -> None:
        try:
            payload = json.loads(body)
            text = f"{payload.get('title', '')}\n{payload.get('message', '')}"
        except (ValueError, AttributeError):
            text = body.decode("utf-8", errors="replace")
        match = _NAME.search(text)
        with self._lock:
            self.arrivals.append((arrived, borrower_id(int(match[1])) if match else ""))

    def since(self, moment: float) -> list[tuple[float, str]]:
        with self._lock:
            return [arrival for arrival in self.arrivals if arrival[0] >= moment]


# -- a deployment --------------------------------------------------------------------------------------


def deployment(
    folder: Path, registry_url: str, orgnrs: Sequence[str], webhook: str, *, due: bool
) -> tuple[Path, Path]:
    """Config and database: one borrower per orgnr, all of officer ``bench``; ``due`` now (the daemon
    stores their baselines) or, for the memory run, next checked in 20 h."""
    from sqlalchemy import insert

    from watcher.models import Borrower, utcnow
    from watcher.store import open_store

    folder.mkdir(parents=True, exist_ok=True)
    database, config = folder / "watcher.db", folder / "watcher.toml"
    config.write_text(
        CONFIG.format(
            database=database, registry=registry_url, feed_every=f"{FEED_EVERY:g}", webhook=webhook
        ),
        encoding="utf-8",
    )
    store = open_store(f"sqlite:///{database}")
    now = utcnow()
    first_check = now if due else now + timedelta(hours=20)
    rows = [
        {
            "id": borrower_id(index), "name": borrower_name(index), "source": "brreg", "registry_id": orgnr,
            "officer": "bench", "tags": "", "active": True, "created_at": now, "updated_at": now,
            "next_check_at": first_check, "consecutive_failures": 0,
        }
        for index, orgnr in enumerate(orgnrs)
    ]  # fmt: skip
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(Borrower), rows[start : start + 10_000])
    store.dispose()
    return config, database


def _sql_time(moment: float) -> str:
    """A Unix time as SQLAlchemy stores UTC times in SQLite, for comparisons in SQL."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def unchecked(database: Path) -> int:
    with _connect(database) as connection:
        return connection.execute("SELECT count(*) FROM borrower WHERE last_checked_at IS NULL").fetchone()[0]


def change_alerts_since(database: Path, moment: float) -> list[tuple[str, float]]:
    """(borrower id, created_at as Unix time) of every alert created since ``moment``."""
    with _connect(database) as connection:
        rows = connection.execute(
            "SELECT borrower_id, kind, created_at FROM alert WHERE created_at >= ?", (_sql_time(moment),)
        ).fetchall()
    return [
        (f"{kind}:{borrower}" if kind != "change" else borrower, _unix(created))
        for borrower, kind, created in rows
    ]


def checked_since(database: Path, ids: Sequence[str], moment: float) -> int:
    with _connect(database) as connection:
        found = 0
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found += connection.execute(
                f"SELECT count(*) FROM borrower WHERE last_checked_at >= ? AND id IN ({marks})",  # noqa: S608
                (_sql_time(moment), *chunk),
            ).fetchone()[0]
    return found


# -- cycles --------------------------------------------------------------------------------------------


@dataclass
class Cycle:
    """One ``feed_every`` period and the checks it triggered, as the stand-in and the daemon saw it."""

    kind: str  # unchanged | changed
    wall: float  # unchanged: the period; changed: start → every planted change has its alert
    delivered_wall: float | None
    cpu: float
    feed_requests: int
    check_requests: int
    planted: int = 0
    alert_latencies: list[float] = field(default_factory=list)
    delivery_latencies: list[float] = field(default_factory=list)
    exact: bool = True
    detail: str = ""

    @property
    def requests(self) -> int:
        return self.feed_requests + self.check_requests


class FeedBench:
    """Drives one daemon on one stand-in: aligns on feed reads, plants changes, times what follows."""

    def __init__(
        self, stub: StubProcess, daemon: DaemonRun, database: Path, receiver: WebhookReceiver
    ) -> None:
        self.stub, self.daemon, self.database, self.receiver = stub, daemon, database, receiver

    def _alive(self) -> None:
        if self.daemon.process is not None and self.daemon.process.poll() is not None:
            raise RuntimeError(f"the daemon exited with {self.daemon.process.returncode}")

    def after_feed_read(self, timeout: float = FEED_EVERY * 4 + 30) -> None:
        """Return once the follower has read both feeds and been quiet for a moment: a period's start."""
        _, first = self.stub.request_counts()
        deadline = time.monotonic() + timeout
        last_change, last = time.monotonic(), first
        while True:
            self._alive()
            _, feed = self.stub.request_counts()
            now = time.monotonic()
            if feed != last:
                last, last_change = feed, now
            if feed >= first + 2 and now - last_change >= 0.3:
                return
            if now > deadline:
                raise RuntimeError(f"no feed read within {timeout:.0f} s ({feed - first} feed requests)")
            time.sleep(0.02)

    def unchanged(self) -> Cycle:
        self.after_feed_read()
        started, cpu, (requests, feed) = (
            time.monotonic(),
            _cpu_seconds(self.daemon.pid),
            self.stub.request_counts(),
        )
        self.after_feed_read()
        after_requests, after_feed = self.stub.request_counts()
        return Cycle(
            "unchanged",
            time.monotonic() - started,
            None,
            _cpu_seconds(self.daemon.pid) - cpu,
            after_feed - feed,
            (after_requests - requests) - (after_feed - feed),
        )

    def changed(self, count: int, *, alerts: bool = True, timeout: float = FEED_EVERY * 3 + 120) -> Cycle:
        """Plant ``count`` changes over the period; wait for their alerts and deliveries (``alerts``) or,
        for borrowers without a baseline, for their checks."""
        chosen = self.stub.pick(count)
        index = {orgnr: i for i, orgnr in enumerate(self.stub.orgnrs)}
        slices = min(count, 20)
        self.after_feed_read()
        started_mono, started = time.monotonic(), time.time()
        cpu, (requests, feed) = _cpu_seconds(self.daemon.pid), self.stub.request_counts()
        planted: dict[str, float] = {}
        for part in range(slices):
            time.sleep(max(0.0, started_mono + part * PLANT_SPAN * FEED_EVERY / slices - time.monotonic()))
            these = chosen[part::slices]
            published = time.time()
            self.stub.mark_changed(these)
            self.stub.publish_unwatched(len(these) * UNWATCHED_PER_CHANGE)
            planted.update({borrower_id(index[orgnr]): published for orgnr in these})
        ids = sorted(planted)
        alerted: dict[str, float] = {}
        delivered: dict[str, float] = {}
        while True:
            self._alive()
            if alerts:
                alerted = {}
                for borrower, created in change_alerts_since(self.database, started):
                    alerted.setdefault(borrower, created)
                delivered = {}
                for arrived, borrower in self.receiver.since(started):
                    delivered.setdefault(borrower, arrived)
                if set(ids) <= set(alerted) and set(ids) <= set(delivered):
                    break
            elif checked_since(self.database, ids, started) == len(ids):
                break
            if time.monotonic() - started_mono > timeout:
                break
            time.sleep(0.05)
        ended = time.monotonic()
        cpu_used = _cpu_seconds(self.daemon.pid) - cpu
        after_requests, after_feed = self.stub.request_counts()
        cycle = Cycle(
            "changed",
            ended - started_mono,
            None,
            cpu_used,
            after_feed - feed,
            (after_requests - requests) - (after_feed - feed),
            planted=len(planted),
        )
        if not alerts:
            done = checked_since(self.database, ids, started)
            cycle.exact = done == len(ids)
            cycle.detail = f"{done}/{len(ids)} planted companies checked"
            return cycle
        cycle.alert_latencies = [alerted[b] - planted[b] for b in ids if b in alerted]
        cycle.delivery_latencies = [delivered[b] - planted[b] for b in ids if b in delivered]
        if len(cycle.alert_latencies) == len(ids):
            cycle.wall = max(alerted[b] for b in ids) - started
        if len(cycle.delivery_latencies) == len(ids):
            cycle.delivered_wall = max(delivered[b] for b in ids) - started
        alerts_seen = change_alerts_since(self.database, started)
        per_borrower = {b: sum(1 for a, _ in alerts_seen if a == b) for b in ids}
        deliveries = self.receiver.since(started)
        strangers = {a for a, _ in alerts_seen} - set(ids)
        unnamed = sum(1 for _, b in deliveries if b not in planted)
        cycle.exact = (
            all(n == 1 for n in per_borrower.values())
            and not strangers
            and len(deliveries) == len(ids)
            and unnamed == 0
        )
        cycle.detail = (
            f"{sum(1 for n in per_borrower.values() if n)}/{len(ids)} planted alerted, "
            f"{len(delivered.keys() & set(ids))}/{len(ids)} delivered, {len(alerts_seen)} alerts "
            f"({len(strangers)} others), {len(deliveries)} deliveries"
        )
        return cycle


@dataclass
class WatcherSide:
    companies: int
    baseline_seconds: float
    cycles: list[Cycle]
    peak_rss_kib: int

    def of(self, kind: str) -> list[Cycle]:
        return [cycle for cycle in self.cycles if cycle.kind == kind]


def watcher_side(
    stub: StubProcess,
    folder: Path,
    receiver: WebhookReceiver,
    cycles: int,
    say: Callable[[str], None],
) -> WatcherSide:
    """A daemon that baselines every company, then ``cycles`` unchanged and ``cycles`` changed cycles."""
    companies = len(stub.orgnrs)
    config, database = deployment(folder, stub.url, stub.orgnrs, receiver.url, due=True)
    changed = max(1, round(companies * CHANGED_SHARE))
    with DaemonRun(config) as daemon:
        bench = FeedBench(stub, daemon, database, receiver)
        started = time.monotonic()
        while unchecked(database):
            bench._alive()
            time.sleep(0.2)
        baseline = time.monotonic() - started
        say(f"N={companies:,}: the daemon stored {companies:,} baselines in {baseline:.1f} s")
        done: list[Cycle] = []
        for kind in ("unchanged", "changed"):
            for repetition in range(cycles):
                cycle = bench.unchanged() if kind == "unchanged" else bench.changed(changed)
                done.append(cycle)
                say(
                    f"N={companies:,} {kind} {repetition + 1}/{cycles}: {cycle.wall:.2f} s, "
                    f"{cycle.cpu:.2f} s CPU, requests {cycle.feed_requests} feed + {cycle.check_requests} "
                    f"unit/roles{_latency_text(cycle)}; {cycle.detail}"
                )
        peak = daemon.peak_rss_kib()
    return WatcherSide(companies, baseline, done, peak)


def _latency_text(cycle: Cycle) -> str:
    if not cycle.delivery_latencies:
        return ""
    return (
        f", latency to alert median {statistics.median(cycle.alert_latencies):.2f} s "
        f"max {max(cycle.alert_latencies):.2f} s, to delivery max {max(cycle.delivery_latencies):.2f} s"
    )


@dataclass
class UrlwatchSide:
    companies: int
    version: str
    cold: ProcessRun
    changed: ProcessRun
    changed_requests: int
    exact: bool
    detail: str


def urlwatch_side(
    stub: StubProcess, folder: Path, urlwatch: Path, say: Callable[[str], None]
) -> UrlwatchSide:
    """urlwatch's cold cycle (its cache), then a 1 %-changed cycle on the same stand-in."""
    subject = UrlwatchSubject(folder, stub.url, stub.orgnrs, urlwatch)
    subject.prepare()
    companies = len(stub.orgnrs)
    say(f"N={companies:,} urlwatch: cold cycle ...")
    cold, cold_verdict = subject.run_cycle("cold", {})
    say(f"N={companies:,} urlwatch cold: {cold.wall_seconds:.1f} s; {cold_verdict.detail}")
    chosen = stub.pick(max(1, round(companies * CHANGED_SHARE)))
    stub.mark_changed(chosen)
    stub.publish_unwatched(len(chosen) * UNWATCHED_PER_CHANGE)
    before, _ = stub.request_counts()
    changed, verdict = subject.run_cycle("changed", {orgnr: ("", "") for orgnr in chosen})
    after, _ = stub.request_counts()
    say(f"N={companies:,} urlwatch changed: {changed.wall_seconds:.1f} s; {verdict.detail}")
    return UrlwatchSide(
        companies,
        tool_version(urlwatch),
        cold,
        changed,
        after - before,
        verdict.exact and cold_verdict.exact,
        verdict.detail,
    )


@dataclass
class MemorySide:
    companies: int
    cycles: list[Cycle]
    peak_rss_kib: int


def memory_side(
    companies: int,
    cycles: int,
    folder: Path,
    receiver: WebhookReceiver,
    say: Callable[[str], None],
    own_people: bool = True,
) -> MemorySide:
    """A daemon following the feed for ``companies`` watched companies through ``cycles`` changed cycles."""
    with StubProcess(companies, own_people=own_people) as stub:
        config, database = deployment(folder, stub.url, stub.orgnrs, receiver.url, due=False)
        with DaemonRun(config) as daemon:
            bench = FeedBench(stub, daemon, database, receiver)
            done = []
            for repetition in range(cycles):
                cycle = bench.changed(max(1, round(companies * CHANGED_SHARE)), alerts=False)
                done.append(cycle)
                say(
                    f"memory N={companies:,} changed {repetition + 1}/{cycles}: {cycle.wall:.2f} s, "
                    f"{cycle.cpu:.2f} s CPU, requests {cycle.feed_requests} feed + {cycle.check_requests} "
                    f"unit/roles, VmHWM {daemon.peak_rss_kib() / 1024:.1f} MiB; {cycle.detail}"
                )
            peak = _proc_status(daemon.pid, "VmHWM")
    return MemorySide(companies, done, peak)


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Plan:
    companies: int = 10_000
    cycles: int = 3
    rss_companies: int = 100_000
    rss_cycles: int = 3
    urlwatch_companies: int | None = None  # None: at ``companies``; 0: urlwatch not run
    fresh_urlwatch: bool = False
    shared_people: bool = False  # the stand-in's default portfolio: one group of connected parties

    @property
    def urlwatch_at(self) -> int | None:
        if self.urlwatch_companies == 0:
            return None
        return self.urlwatch_companies or self.companies


@dataclass
class Results:
    plan: Plan
    watcher: dict[int, WatcherSide] = field(default_factory=dict)
    urlwatch: UrlwatchSide | None = None
    memory: MemorySide | None = None
    version: str = "urlwatch not run"


def run(plan: Plan, *, progress: Callable[[str], None] | None = None, keep: Path | None = None) -> Results:
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    results = Results(plan)
    urlwatch = ensure_tool("urlwatch", "urlwatch", fresh=plan.fresh_urlwatch) if plan.urlwatch_at else None
    sizes = sorted({plan.companies, *([plan.urlwatch_at] if plan.urlwatch_at else [])})
    with tempfile.TemporaryDirectory(prefix="watcher-feeds-") as temporary, WebhookReceiver() as receiver:
        scratch = keep or Path(temporary)
        for size in sizes:
            with StubProcess(size, own_people=not plan.shared_people) as stub:
                cycles = plan.cycles if size == plan.companies else max(1, min(plan.cycles, 2))
                results.watcher[size] = watcher_side(
                    stub, scratch / f"n{size}" / "watcher", receiver, cycles, say
                )
                if urlwatch is not None and size == plan.urlwatch_at:
                    results.urlwatch = urlwatch_side(stub, scratch / f"n{size}" / "urlwatch", urlwatch, say)
                    results.version = results.urlwatch.version
        if plan.rss_companies:
            results.memory = memory_side(
                plan.rss_companies, plan.rss_cycles, scratch / "memory", receiver, say, not plan.shared_people
            )
    return results


# -- the table -----------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _judged(met: bool, detail: str) -> str:
    return f"{'ok' if met else 'MISSED'}: {detail}"


def table_rows(results: Results) -> list[Row]:
    rows: list[Row] = []
    theirs = results.urlwatch
    for size, side in sorted(results.watcher.items()):
        unchanged, changed = side.of("unchanged"), side.of("changed")
        planted = changed[0].planted if changed else 0
        label = f"N={size:,}"
        rows.append(Row(f"{label} baselines stored by the daemon", f"{side.baseline_seconds:.1f} s",
                        verdict=f"{size / side.baseline_seconds:,.0f} first checks/s"))  # fmt: skip
        if unchanged:
            rows.append(
                Row(
                    f"{label} unchanged cycle (×{len(unchanged)}): requests",
                    f"{_median([c.requests for c in unchanged]):.0f}",
                    verdict="feed / unit+roles per cycle: "
                    + ", ".join(f"{c.feed_requests}/{c.check_requests}" for c in unchanged)
                    + f"; period {_median([c.wall for c in unchanged]):.2f} s, daemon CPU "
                    f"{_median([c.cpu for c in unchanged]):.3f} s",
                )
            )
        if not changed:
            continue
        same = theirs is not None and theirs.companies == size
        wall = _median([c.wall for c in changed])
        cpu = _median([c.cpu for c in changed])
        alert = [latency for c in changed for latency in c.alert_latencies]
        delivery = [latency for c in changed for latency in c.delivery_latencies]
        rows += [
            Row(
                f"{label} {CHANGED_SHARE:.0%} changed ({planted:,}) cycle (×{len(changed)}): requests",
                f"{_median([c.requests for c in changed]):.0f}",
                f"{theirs.changed_requests:,}" if same and theirs else "",
                verdict="feed / unit+roles per cycle: "
                + ", ".join(f"{c.feed_requests}/{c.check_requests}" for c in changed),
            ),
            Row(
                f"{label} changed cycle: wall s (to every alert)",
                f"{wall:.2f}",
                f"{theirs.changed.wall_seconds:.2f}" if same and theirs else "",
                f"{wall / theirs.changed.wall_seconds:.3f}" if same and theirs else "",
                verdict="runs w: "
                + ", ".join(f"{c.wall:.2f}" for c in changed)
                + f"; to every delivery: {_median([c.delivered_wall or math.nan for c in changed]):.2f} s"
                + (f"; urlwatch cold {theirs.cold.wall_seconds:.1f} s" if same and theirs else ""),
            ),
            Row(
                f"{label} changed cycle: CPU s (daemon / urlwatch process)",
                f"{cpu:.2f}",
                f"{theirs.changed.cpu_seconds:.2f}" if same and theirs else "",
                f"{cpu / theirs.changed.cpu_seconds:.3f}" if same and theirs else "",
            ),
            Row(
                f"{label} latency publication → alert (created_at)",
                f"{_median(alert):.2f} s",
                verdict=f"median of {len(alert)}; max {max(alert, default=math.nan):.2f} s",
            ),
            Row(
                f"{label} latency publication → webhook delivery",
                f"{_median(delivery):.2f} s",
                verdict=f"median of {len(delivery)}; max {max(delivery, default=math.nan):.2f} s",
            ),
            Row(
                f"{label} exactly the planted changes alerted",
                f"{sum(c.exact for c in changed)}/{len(changed)}",
                "yes" if same and theirs and theirs.exact else ("NO" if same and theirs else ""),
                target="every cycle",
                verdict=_judged(all(c.exact for c in changed), changed[-1].detail)
                + (f" | u: {theirs.detail}" if same and theirs else ""),
            ),
            Row(
                f"{label} at brreg's shipped rate ({BRREG_PUBLIC_RATE}/s)",
                f"{2 * planted / BRREG_PUBLIC_RATE:.0f} s",
                verdict=f"the {2 * planted:,} unit+roles requests of one changed cycle alone, were the rate "
                "not lifted as in every benchmark here",
            ),
        ]
        rows.append(Row(f"{label} daemon peak RSS (VmHWM)", f"{side.peak_rss_kib / 1024:.1f} MiB"))
    if results.memory is not None:
        memory = results.memory
        rows.append(
            Row(
                f"memory N={memory.companies:,}: {len(memory.cycles)} changed cycles",
                f"{_median([c.wall for c in memory.cycles]):.2f} s",
                verdict="feed / unit+roles per cycle: "
                + ", ".join(f"{c.feed_requests}/{c.check_requests}" for c in memory.cycles)
                + f"; CPU {_median([c.cpu for c in memory.cycles]):.2f} s; {memory.cycles[-1].detail}",
            )
        )
    return rows + target_rows(results)


def target_rows(results: Results) -> list[Row]:
    plan = results.plan
    side = results.watcher.get(plan.companies)
    rows: list[Row] = []
    at = f"N={plan.companies:,}"
    if side is None:
        return [Row("TARGETS", verdict=f"not judged: no watcher run at {at}")]
    unchanged, changed = side.of("unchanged"), side.of("changed")
    worst = max((c.requests for c in unchanged), default=None)
    rows.append(
        Row(
            f"TARGET {at} unchanged cycle: requests",
            "" if worst is None else f"{worst}",
            target=f"≤ {UNCHANGED_REQUESTS_TARGET}",
            verdict="not judged"
            if worst is None
            else _judged(worst <= UNCHANGED_REQUESTS_TARGET, "the most of any cycle"),
        )
    )
    if changed:
        planted = changed[0].planted
        limit = 2 * planted + CHANGED_REQUESTS_SLACK
        most = max(c.requests for c in changed)
        rows.append(
            Row(
                f"TARGET {at} {CHANGED_SHARE:.0%} changed cycle: requests",
                f"{most:,}",
                target=f"≤ 2 × {planted:,} + {CHANGED_REQUESTS_SLACK} = {limit:,}",
                verdict=_judged(most <= limit, "the most of any cycle"),
            )
        )
    theirs = results.urlwatch
    ratio_case = "TARGET changed cycle: wall watcher / urlwatch"
    if theirs is None:
        rows.append(Row(ratio_case, target=f"≤ {RATIO_TARGET}", verdict="not judged: urlwatch not run"))
    else:
        ours = results.watcher[theirs.companies]
        wall = _median([c.wall for c in ours.of("changed")])
        ratio = wall / theirs.changed.wall_seconds
        where = f"at N={theirs.companies:,} for both"
        if theirs.companies != plan.companies:
            where += f" (urlwatch not run at {at}: --urlwatch-companies)"
        rows.append(
            Row(
                f"{ratio_case} (N={theirs.companies:,})",
                f"{wall:.2f} s",
                f"{theirs.changed.wall_seconds:.2f} s",
                f"{ratio:.3f}",
                f"≤ {RATIO_TARGET}",
                _judged(ratio <= RATIO_TARGET, f"median watcher cycle vs urlwatch's one cycle, {where}"),
            )
        )
    if changed:
        latency_limit = FEED_EVERY + LATENCY_SLACK
        delivery = [latency for c in changed for latency in c.delivery_latencies]
        expected = sum(c.planted for c in changed)
        worst_latency = max(delivery, default=math.inf)
        rows.append(
            Row(
                f"TARGET {at} every change delivered within feed_every + {LATENCY_SLACK:g} s",
                f"{worst_latency:.2f} s",
                target=f"≤ {latency_limit:g} s",
                verdict=_judged(
                    worst_latency <= latency_limit and len(delivery) == expected,
                    f"the latest of {len(delivery)}/{expected} deliveries (publication → webhook)",
                ),
            )
        )
    memory = results.memory
    if memory is None:
        rows.append(
            Row("TARGET peak RSS following the feed", target="< 150 MB", verdict="not judged: not run")
        )
    else:
        peak = memory.peak_rss_kib * 1024
        rows.append(
            Row(
                f"TARGET peak RSS following the feed, N={memory.companies:,}",
                f"{memory.peak_rss_kib / 1024:.1f} MiB",
                target=f"< {RSS_TARGET_BYTES / 1e6:.0f} MB",
                verdict=_judged(
                    peak < RSS_TARGET_BYTES and all(c.exact for c in memory.cycles),
                    f"{peak / 1e6:.1f} MB, VmHWM of the daemon after {len(memory.cycles)} changed cycles",
                ),
            )
        )
    return rows


def headline(results: Results) -> str:
    plan = results.plan
    people = (
        "people shared by ~1 % of companies each" if plan.shared_people else "each company its own people"
    )
    return (
        f"watcher run following brreg's update feeds vs {results.version} on a loopback Enhetsregisteret "
        f"(own process); N = {plan.companies:,}, feed_every {FEED_EVERY:g} s, {CHANGED_SHARE:.0%} changed "
        f"+ {UNWATCHED_PER_CHANGE}× unwatched feed entries per changed cycle; {people}; "
        f"{os.cpu_count()} CPUs; "
        f"Python {sys.version.split()[0]}; {datetime.now(UTC):%Y-%m-%d}; medians; ratio = watcher / urlwatch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=10_000, help="watched companies (N)")
    parser.add_argument("--cycles", type=int, default=3, help="unchanged and changed cycles each")
    parser.add_argument(
        "--rss-companies", type=int, default=100_000, help="companies of the memory run (0: skip)"
    )
    parser.add_argument("--rss-cycles", type=int, default=3, help="changed cycles of the memory run")
    parser.add_argument(
        "--urlwatch-companies", type=int, help="run urlwatch (and a watcher of its own) at this N"
    )
    parser.add_argument("--skip-urlwatch", action="store_true", help="no urlwatch, no ratio")
    parser.add_argument("--fresh-urlwatch", action="store_true", help="reinstall urlwatch's throw-away venv")
    parser.add_argument(
        "--shared-people",
        action="store_true",
        help="the stand-in's shared people (one connected group) instead of each company its own",
    )
    parser.add_argument("--keep", type=Path, help="keep databases, configs and outputs in this folder")
    arguments = parser.parse_args()
    plan = Plan(
        companies=arguments.companies,
        cycles=arguments.cycles,
        rss_companies=arguments.rss_companies,
        rss_cycles=arguments.rss_cycles,
        urlwatch_companies=0 if arguments.skip_urlwatch else arguments.urlwatch_companies,
        fresh_urlwatch=arguments.fresh_urlwatch,
        shared_people=arguments.shared_people,
    )
    started = time.monotonic()
    results = run(plan, keep=arguments.keep)
    print(headline(results))
    print_table([section(headline(results)), *table_rows(results)][1:])
    print(f"\n{math.ceil(time.monotonic() - started)} s in all")


if __name__ == "__main__":
    main()
