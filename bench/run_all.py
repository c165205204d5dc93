"""The whole benchmark suite in one command, printed as one table (issue 6).

1. watcher check vs urlwatch (bench/compare_urlwatch.py): N = 1,000 and 10,000, cold, unchanged and
   1 %-changed cycles, wall, CPU, peak RSS, database/cache size, exactness, and issue 6's targets;
2. rate saturation of the shared HTTP policy (bench/rate_saturation.py, sources issue: at least
   0.9 R achieved, no 429);
3. daemon scale (bench/daemon_scale.py, daemon issue, when that file is present): throughput of
   ``watcher run``, memory of a small against a large full cycle, storage growth over unchanged cycles;
4. change feeds (bench/change_feeds.py, issue 16): ``watcher run`` following brreg's update feeds at
   N = 10,000 (requests, wall, CPU and change → alert latency per cycle), its 1 %-changed cycle beside
   urlwatch's, and the daemon's peak RSS following the feed for 100,000 companies;
5. the integration API (bench/api.py, issue 17): ``watcher serve`` on SQLite, a bulk upsert of 10,000
   parties (new, unchanged, all updated) and 100,000 events read through the feed: wall time, server
   CPU and peak RSS, the feed client's peak RSS, every event once and in order.

Each suite runs on its own loopback stand-in (bench/registry_stub.py); progress goes to stderr, the
table to stdout. A suite that fails becomes a FAILED row; the others still run.

Runtime on a 2-core machine: ``--quick`` (N = 1,000 only, short rate and daemon cases) about 3 min.
The full run takes about 17-20 min, 8 of them urlwatch at N = 10,000, whose cache lookups scan its
whole cache table for every job (no index on the job id), so each of its cycles there takes minutes;
``--urlwatch-sizes 1000`` leaves those out (about 10 min in all). The change feeds add about 25 min
(the daemon's 10,000 baselines, urlwatch's two cycles at 10,000, 100,000 companies seeded for the
memory run), about 10 min when ``--urlwatch-sizes`` leaves 10,000 out (their comparison then runs at
the largest size given, for both tools), about 3 min to ``--quick``. The API adds about 2 min
(``--quick``: 1,000 parties, 10,000 events, seconds).

    .venv/bin/python -m bench.run_all [--quick] [--sizes 1000 10000] [--urlwatch-sizes 1000]
                                      [--skip compare rate daemon feeds api] [--fresh-urlwatch] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import api, change_feeds, compare_urlwatch, rate_saturation
from bench.registry_stub import StubProcess
from bench.table import Row, print_table, section

SATURATION_TARGET = 0.9  # sources issue: achieved rate at least 0.9 R, and no 429


@dataclass(frozen=True)
class Preset:
    """How big each suite's cases are."""

    sizes: tuple[int, ...]
    rates: tuple[int, ...]
    rate_runs: int
    rate_seconds: float
    daemon_batch: int
    daemon_small: int
    daemon_large: int
    storage_borrowers: int
    storage_cycles: int
    feed_companies: int
    feed_cycles: int
    feed_rss_companies: int
    api_parties: int
    api_events: int


FULL = Preset(
    sizes=(1_000, 10_000),
    rates=(20, 50),
    rate_runs=3,
    rate_seconds=10.0,
    daemon_batch=2_000,
    daemon_small=2_000,
    daemon_large=10_000,
    storage_borrowers=1_000,
    storage_cycles=10,
    feed_companies=10_000,
    feed_cycles=3,
    feed_rss_companies=100_000,
    api_parties=10_000,
    api_events=100_000,
)
QUICK = Preset(
    sizes=(1_000,),
    rates=(20, 50),
    rate_runs=1,
    rate_seconds=5.0,
    daemon_batch=1_000,
    daemon_small=1_000,
    daemon_large=3_000,
    storage_borrowers=1_000,
    storage_cycles=3,
    feed_companies=1_000,
    feed_cycles=1,
    feed_rss_companies=10_000,
    api_parties=1_000,
    api_events=10_000,
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def compare_rows(
    preset: Preset, urlwatch_sizes: set[int] | None, fresh_urlwatch: bool, keep: Path | None
) -> list[Row]:
    plan = compare_urlwatch.Plan(sizes=list(preset.sizes), urlwatch_sizes=urlwatch_sizes)
    results, version = compare_urlwatch.compare(
        plan, fresh_urlwatch=fresh_urlwatch, progress=say, keep=keep / "compare" if keep else None
    )
    return [section(compare_urlwatch.headline(version, plan)), *compare_urlwatch.table_rows(results)]


def rate_rows(preset: Preset) -> list[Row]:
    rows = [
        section(
            f"rate saturation (bench/rate_saturation.py): BrregSource, 10 checks in flight, "
            f"stand-in answering 429 above R/s, {preset.rate_runs} run(s) of ≥ {preset.rate_seconds:g} s "
            "per R"
        )
    ]
    for rate in preset.rates:
        say(f"rate saturation at {rate}/s ...")
        results = rate_saturation.measure(
            rate, preset.rate_runs, preset.rate_seconds, concurrency=10, in_process=False
        )
        median = statistics.median(result.achieved_rate for result in results)
        rejected = sum(result.rejected for result in results)
        failures = sum(result.failures for result in results)
        mismatches = sum(result.mismatches for result in results)
        met = median >= SATURATION_TARGET * rate and rejected == 0 and failures == 0 and mismatches == 0
        each = ", ".join(f"{result.achieved_rate:.2f}" for result in results)
        rows.append(
            Row(
                f"rate {rate}/s: achieved req/s (median of {len(results)})",
                f"{median:.2f} = {median / rate:.3f} R",
                target=f"≥ {SATURATION_TARGET} R, 0 × 429",
                verdict=f"{'ok' if met else 'MISSED'}: 429s {rejected}, failed {failures}, wrong records "
                f"{mismatches}; runs {each}",
            )
        )
    return rows


def daemon_rows(preset: Preset, keep: Path | None) -> list[Row]:
    try:
        from bench import daemon_scale
    except ImportError as error:
        skipped = Row("daemon scale", verdict=f"skipped: bench/daemon_scale.py not importable ({error})")
        return [section("daemon scale"), skipped]
    rows = [
        section(
            f"daemon scale (bench/daemon_scale.py): watcher run on SQLite; (a) {preset.daemon_batch:,} "
            f"borrowers, (b) full cycles of {preset.daemon_small:,} and {preset.daemon_large:,}, "
            f"(c) {preset.storage_cycles} unchanged cycles of {preset.storage_borrowers:,}"
        )
    ]
    companies = max(preset.daemon_batch, preset.daemon_large, preset.storage_borrowers)
    with tempfile.TemporaryDirectory(prefix="watcher-bench-daemon-") as temporary:
        folder = keep / "daemon" if keep else Path(temporary)
        for part in ("a", "c", f"b/m{preset.daemon_small}", f"b/m{preset.daemon_large}"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        with StubProcess(companies) as stub:
            say(f"daemon scale (a): throughput over {preset.daemon_batch:,} borrowers ...")
            found = daemon_scale.throughput(folder / "a", stub, preset.daemon_batch)
            say(f"daemon scale (b): memory at {preset.daemon_small:,} and {preset.daemon_large:,} ...")
            found += daemon_scale.memory(folder / "b", stub, preset.daemon_small, preset.daemon_large)
            say(f"daemon scale (c): storage over {preset.storage_cycles} unchanged cycles ...")
            found += daemon_scale.storage(folder / "c", stub, preset.storage_borrowers, preset.storage_cycles)
    return rows + [Row(row.measure, row.value, target=row.target, verdict=row.verdict) for row in found]


def feed_rows(
    preset: Preset, urlwatch_sizes: set[int] | None, fresh_urlwatch: bool, keep: Path | None
) -> list[Row]:
    """The change feeds' suite; urlwatch at the feed N unless ``--urlwatch-sizes`` leaves it out, then at
    the largest size given that is not larger (both tools at that N), or not at all."""
    urlwatch_at: int | None = preset.feed_companies
    if urlwatch_sizes is not None:
        smaller = [size for size in urlwatch_sizes if size <= preset.feed_companies]
        urlwatch_at = max(smaller, default=0)
    plan = change_feeds.Plan(
        companies=preset.feed_companies,
        cycles=preset.feed_cycles,
        rss_companies=preset.feed_rss_companies,
        rss_cycles=preset.feed_cycles,
        urlwatch_companies=urlwatch_at,
        fresh_urlwatch=fresh_urlwatch,
    )
    results = change_feeds.run(plan, progress=say, keep=keep / "feeds" if keep else None)
    return [section(change_feeds.headline(results)), *change_feeds.table_rows(results)]


def api_rows(preset: Preset, keep: Path | None) -> list[Row]:
    say(f"integration API: {preset.api_parties:,} parties, {preset.api_events:,} events ...")
    results = api.run(preset.api_parties, preset.api_events, keep=keep / "api" if keep else None)
    return api.table_rows(results)


def guarded(name: str, build: Callable[[], list[Row]]) -> list[Row]:
    """A suite's rows, or one FAILED row saying why (with the traceback on stderr)."""
    try:
        return build()
    except Exception as error:  # one broken suite must not lose the others' results
        traceback.print_exc()
        return [section(name), Row(f"{name} FAILED", verdict=f"{type(error).__name__}: {error}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only and short rate/daemon cases")
    parser.add_argument("--sizes", type=int, nargs="+", help="N for the comparison (default 1,000 10,000)")
    parser.add_argument("--urlwatch-sizes", type=int, nargs="*", help="run urlwatch only at these N")
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=("compare", "rate", "daemon", "feeds", "api")
    )
    parser.add_argument("--fresh-urlwatch", action="store_true", help="reinstall urlwatch's throw-away venv")
    parser.add_argument("--keep", type=Path, help="keep every database, cache and output in this folder")
    arguments = parser.parse_args()
    preset = QUICK if arguments.quick else FULL
    if arguments.sizes:
        preset = Preset(**{**preset.__dict__, "sizes": tuple(arguments.sizes)})
    urlwatch_sizes = None if arguments.urlwatch_sizes is None else set(arguments.urlwatch_sizes)

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    if "compare" not in arguments.skip:
        rows += guarded(
            "compare",
            lambda: compare_rows(preset, urlwatch_sizes, arguments.fresh_urlwatch, arguments.keep),
        )
    if "rate" not in arguments.skip:
        rows += guarded("rate saturation", lambda: rate_rows(preset))
    if "daemon" not in arguments.skip:
        rows += guarded("daemon scale", lambda: daemon_rows(preset, arguments.keep))
    if "feeds" not in arguments.skip:
        rows += guarded(
            "change feeds",
            lambda: feed_rows(preset, urlwatch_sizes, arguments.fresh_urlwatch, arguments.keep),
        )
    if "api" not in arguments.skip:
        rows += guarded("integration API", lambda: api_rows(preset, arguments.keep))
    minutes = (time.monotonic() - started) / 60
    print(
        f"Borrower Watcher benchmark suite ({'quick' if arguments.quick else 'full'}); "
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {minutes:.1f} min; 1-min load average "
        f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (other work on the machine "
        "skews wall times; ratios within one run are fairer)"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
