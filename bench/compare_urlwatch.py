"""`watcher check` side by side with urlwatch on one loopback Enhetsregisteret (issue 6, point 2).

For each N (default 1,000 and 10,000) one stand-in (bench/registry_stub.py, its own process) serves
N generated companies to both tools, which run as real command-line processes:

- ``watcher check --no-notify``: one ``brreg`` source whose base_url is the stand-in, no rate limit
  (urlwatch has none), ``concurrency = 10``, borrowers imported from a generated CSV, SQLite in a
  temporary folder;
- urlwatch (PyPI, installed by the benchmark into a throw-away venv, see bench/tool_venv.py): two
  ``url`` jobs per company (the unit and its roles), stdout the only reporter, its cache in the
  temporary folder, its default 10 worker threads.

Cycles: cold (first run, empty database/cache), unchanged, and changed (1 % of the companies get a
new daglig leder in their roles document just before the cycle; each repetition plants new ones).
Both tools run each cycle on the same documents, in alternating order. Per run: wall time, CPU
time and peak RSS of the tool's process (``wait4`` rusage), the database/cache size on disk, the
requests the stand-in answered, and whether the tool reported exactly what was planted:

- watcher: every borrower a baseline (cold) / unchanged, and after a changed cycle the changed
  borrowers are exactly the planted ones, each with one legal_representative change from the old to
  the new daglig leder in ``watcher history --format jsonl``;
- urlwatch: every URL NEW (cold), nothing reported (unchanged), exactly the planted companies' roles
  URLs CHANGED (changed).

Unchanged cycles also time the floor: a bare keep-alive client with 10 threads (bench/keepalive_floor.py).

    .venv/bin/python -m bench.compare_urlwatch [--sizes 1000 10000] [--urlwatch-sizes ...]
                                               [--unchanged-runs K] [--changed-runs K] [--fresh-urlwatch]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import ProcessRun, files_size, run_measured, sqlite_files
from bench.registry_stub import StubProcess
from bench.table import Row, print_table
from bench.tool_venv import ensure_tool, tool_version

REPO_ROOT = Path(__file__).resolve().parent.parent
CYCLES = ("cold", "unchanged", "changed")
CHANGED_SHARE = 0.01
CONCURRENCY = 10  # urlwatch's worker threads (urlwatch.worker.MAX_WORKERS)

# Issue 6 targets.
UNCHANGED_RATIO_TARGET = 0.5  # watcher wall / urlwatch wall, unchanged cycle at 1,000
LINEAR_FACTOR_TARGET = 11.0  # the 10,000 cycle at most 11 × the 1,000 cycle
RSS_TARGET_BYTES = 120_000_000  # peak RSS of `watcher check` at 10,000 borrowers
SMALL, LARGE = 1_000, 10_000

Planted = dict[str, tuple[str, str]]  # orgnr → (daglig leder before, after)

WATCHER_CONFIG = """\
[watcher]
instance_name = "bench"
timezone = "UTC"
language = "en"

[database]
url = "sqlite:///{database}"

[schedule]
concurrency = {concurrency}
jitter = "0s"

[logging]
level = "warning"

[sources.brreg]
type = "brreg"
base_url = "{registry}"
rate = "1000000/s"
feed = false
"""

# Everything else keeps urlwatch's defaults, where every reporter but stdout is disabled.
URLWATCH_CONFIG = """\
display:
  new: true
  error: true
  unchanged: false
report:
  stdout:
    enabled: true
    color: false
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Did the tool report exactly what the cycle should show; ``detail`` says what it reported."""

    exact: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ToolRun:
    tool: str
    size: int
    cycle: str
    process: ProcessRun
    store_bytes: int
    requests: int
    connections: int
    verdict: Verdict


# -- the tools ---------------------------------------------------------------------------------------


class WatcherSubject:
    """A `watcher` deployment in ``folder``: config, imported borrowers, SQLite database."""

    tool = "watcher"

    def __init__(
        self, folder: Path, registry_url: str, orgnrs: Sequence[str], concurrency: int = CONCURRENCY
    ) -> None:
        self.folder = folder
        self.registry_url = registry_url
        self.orgnrs = list(orgnrs)
        self.concurrency = concurrency
        self.database = folder / "watcher.db"
        self.config = folder / "watcher.toml"
        self._runs = 0

    @staticmethod
    def borrower_id(orgnr: str) -> str:
        return f"NO{orgnr}"

    def command(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "watcher", "--config", str(self.config), *arguments]

    def prepare(self) -> None:
        """Write the config and the borrowers CSV and import it (the schema is created on the way)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            WATCHER_CONFIG.format(
                database=self.database, concurrency=self.concurrency, registry=self.registry_url
            ),
            encoding="utf-8",
        )
        borrowers_csv = self.folder / "borrowers.csv"
        lines = ["id,name,source,registry_id"] + [
            f"{self.borrower_id(orgnr)},STUB SELSKAP {index:05d} AS,brreg,{orgnr}"
            for index, orgnr in enumerate(self.orgnrs)
        ]
        borrowers_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = subprocess.run(
            self.command("borrowers", "import", str(borrowers_csv)),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or f"imported {len(self.orgnrs)} borrower(s)" not in result.stdout:
            raise RuntimeError(f"watcher borrowers import failed: {result.stdout}{result.stderr}")

    def store_bytes(self) -> int:
        return files_size(sqlite_files(self.database))

    def run_cycle(self, cycle: str, planted: Planted) -> tuple[ProcessRun, Verdict]:
        self._runs += 1
        stdout = self.folder / f"check-{self._runs:02d}-{cycle}.out"
        started = datetime.now(UTC)
        run = run_measured(self.command("check", "--no-notify"), stdout=stdout, cwd=self.folder)
        if run.returncode != 0:
            errors = stdout.with_suffix(".err").read_text(encoding="utf-8", errors="replace").strip()
            return run, Verdict(False, f"exit {run.returncode}: {errors[:200]}")
        outcomes = _watcher_outcomes(stdout.read_text(encoding="utf-8"))
        return run, self._verify(cycle, planted, outcomes, started)

    def _verify(self, cycle: str, planted: Planted, outcomes: dict[str, str], started: datetime) -> Verdict:
        expected_ids = {self.borrower_id(orgnr) for orgnr in self.orgnrs}
        kinds = Counter(outcomes.values())
        summary = ", ".join(f"{count:,} {kind}" for kind, count in sorted(kinds.items()))
        if set(outcomes) != expected_ids:
            return Verdict(
                False, f"{len(outcomes):,} outcomes for {len(expected_ids):,} borrowers ({summary})"
            )
        if cycle == "cold":
            return Verdict(kinds["baseline"] == len(expected_ids), summary)
        if cycle == "unchanged":
            return Verdict(kinds["unchanged"] == len(expected_ids), summary)
        changed_ids = {borrower for borrower, kind in outcomes.items() if kind == "changed"}
        planted_ids = {self.borrower_id(orgnr): names for orgnr, names in planted.items()}
        rows = self._history_since(started)
        if rows is None:
            return Verdict(False, "`watcher history --format jsonl` failed")
        representative = {
            row["borrower_id"]: (row["before"], row["after"])
            for row in rows
            if row["category"] == "legal_representative"
        }
        representative_rows = sum(1 for row in rows if row["category"] == "legal_representative")
        matching = sum(1 for borrower, names in planted_ids.items() if representative.get(borrower) == names)
        strangers = {row["borrower_id"] for row in rows} - set(planted_ids)
        categories = Counter(row["category"] for row in rows)
        exact = (
            changed_ids == set(planted_ids)
            and matching == len(planted_ids)
            and representative_rows == len(planted_ids)
            and not strangers
            and kinds.get("failed", 0) == 0
        )
        detail = (
            f"{len(changed_ids & set(planted_ids))}/{len(planted_ids)} planted changed, "
            f"{len(changed_ids - set(planted_ids))} others; legal rep before→after right for "
            f"{matching}/{len(planted_ids)}; history: "
            + ", ".join(f"{count} {category}" for category, count in sorted(categories.items()))
        )
        return Verdict(exact, detail)

    def _history_since(self, started: datetime) -> list[dict] | None:
        """History rows detected by the cycle that began at ``started`` (untimed); None if it failed."""
        result = subprocess.run(
            self.command("history", "--format", "jsonl", "--since", started.date().isoformat()),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return None
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return [row for row in rows if _as_utc(row["detected_at"]) >= started.replace(microsecond=0)]


_WATCHER_LINE = re.compile(r"^(?P<id>\S+): (?P<what>baseline stored|unchanged|\d+ change\(s\)|failed)")


def _watcher_outcomes(text: str) -> dict[str, str]:
    """``borrower id → baseline | unchanged | changed | failed`` from `watcher check`'s lines."""
    outcomes: dict[str, str] = {}
    for line in text.splitlines():
        match = _WATCHER_LINE.match(line)
        if match is None:
            continue
        what = match["what"]
        outcomes[match["id"]] = (
            "baseline" if what.startswith("baseline") else "changed" if what.endswith("change(s)") else what
        )
    return outcomes


def _as_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class UrlwatchSubject:
    """An urlwatch set-up in ``folder``: urls.yaml with two jobs per company, urlwatch.yaml, cache.db."""

    tool = "urlwatch"

    def __init__(self, folder: Path, registry_url: str, orgnrs: Sequence[str], urlwatch: Path) -> None:
        self.folder = folder
        self.registry_url = registry_url.rstrip("/")
        self.orgnrs = list(orgnrs)
        self.urlwatch = urlwatch
        self.urls = folder / "urls.yaml"
        self.config = folder / "urlwatch.yaml"
        self.cache = folder / "cache.db"
        self.home = folder / "home"
        self._runs = 0

    def unit_url(self, orgnr: str) -> str:
        return f"{self.registry_url}/enheter/{orgnr}"

    def roles_url(self, orgnr: str) -> str:
        return f"{self.registry_url}/enheter/{orgnr}/roller"

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        jobs = [
            f"url: {url}\n" for orgnr in self.orgnrs for url in (self.unit_url(orgnr), self.roles_url(orgnr))
        ]
        self.urls.write_text("---\n".join(jobs), encoding="utf-8")
        self.config.write_text(URLWATCH_CONFIG, encoding="utf-8")

    def store_bytes(self) -> int:
        return files_size(sqlite_files(self.cache))

    def run_cycle(self, cycle: str, planted: Planted) -> tuple[ProcessRun, Verdict]:
        self._runs += 1
        stdout = self.folder / f"urlwatch-{self._runs:02d}-{cycle}.out"
        # HOME and XDG folders in the scratch folder: no user config, hooks or cache can leak in.
        env = dict(
            os.environ,
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
        )
        argv = [
            str(self.urlwatch), "--urls", str(self.urls), "--config", str(self.config),
            "--cache", str(self.cache), "--hooks", str(self.folder / "hooks.py"),
        ]  # fmt: skip
        run = run_measured(argv, stdout=stdout, env=env, cwd=self.folder)
        if run.returncode != 0:
            errors = stdout.with_suffix(".err").read_text(encoding="utf-8", errors="replace").strip()
            return run, Verdict(False, f"exit {run.returncode}: {errors[-200:]}")
        return run, self._verify(cycle, planted, _urlwatch_report(stdout.read_text(encoding="utf-8")))

    def _verify(self, cycle: str, planted: Planted, report: dict[str, set[str]]) -> Verdict:
        every_url = {url for orgnr in self.orgnrs for url in (self.unit_url(orgnr), self.roles_url(orgnr))}
        expected = {verb: set() for verb in ("NEW", "CHANGED", "ERROR")}
        if cycle == "cold":
            expected["NEW"] = every_url
        elif cycle == "changed":
            expected["CHANGED"] = {self.roles_url(orgnr) for orgnr in planted}
        reported = {verb: report.get(verb, set()) for verb in {*expected, *report}}
        exact = all(reported[verb] == expected.get(verb, set()) for verb in reported)
        detail = (
            ", ".join(f"{len(urls):,} {verb}" for verb, urls in sorted(reported.items()) if urls) or "nothing"
        )
        if cycle == "changed":
            hits = len(reported["CHANGED"] & expected["CHANGED"])
            detail += f" ({hits}/{len(planted)} planted roles URLs)"
        return Verdict(exact, detail)


_URLWATCH_SUMMARY = re.compile(r"^\d+\. (?P<verb>[A-Z]+): (?P<location>\S+)")


def _urlwatch_report(text: str) -> dict[str, set[str]]:
    """``verb → locations`` from the numbered summary of urlwatch's text report."""
    report: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _URLWATCH_SUMMARY.match(line)
        if match is not None:
            report.setdefault(match["verb"], set()).add(match["location"])
    return report


class FloorSubject:
    """The keep-alive floor client (bench/keepalive_floor.py), for unchanged cycles only."""

    tool = "floor"

    def __init__(self, folder: Path, registry_url: str, orgnrs: Sequence[str]) -> None:
        self.folder = folder
        self.registry_url = registry_url
        self.orgnrs = list(orgnrs)
        self._runs = 0

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "orgnrs.txt").write_text("\n".join(self.orgnrs) + "\n", encoding="utf-8")

    def store_bytes(self) -> int:
        return 0

    def run_cycle(self, cycle: str, planted: Planted) -> tuple[ProcessRun, Verdict]:
        self._runs += 1
        stdout = self.folder / f"floor-{self._runs:02d}.out"
        argv = [
            sys.executable, "-m", "bench.keepalive_floor", "--base-url", self.registry_url,
            "--orgnrs", str(self.folder / "orgnrs.txt"), "--threads", str(CONCURRENCY),
        ]  # fmt: skip
        run = run_measured(argv, stdout=stdout, cwd=REPO_ROOT)
        line = stdout.read_text(encoding="utf-8").strip()
        return run, Verdict(line == f"ok={2 * len(self.orgnrs)} failed=0", line)


# -- the comparison ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """Which sizes, how many repetitions per cycle, and where urlwatch runs."""

    sizes: list[int] = field(default_factory=lambda: [SMALL, LARGE])
    urlwatch_sizes: set[int] | None = None  # None: every size
    unchanged_runs: int | None = None  # None: by size (3 up to 2,000 borrowers, else 1)
    changed_runs: int | None = None
    floor: bool = True
    concurrency: int = CONCURRENCY

    def runs(self, cycle: str, size: int) -> int:
        if cycle == "cold":
            return 1
        chosen = self.unchanged_runs if cycle == "unchanged" else self.changed_runs
        return chosen if chosen is not None else (3 if size <= 2_000 else 1)

    def with_urlwatch(self, size: int) -> bool:
        return self.urlwatch_sizes is None or size in self.urlwatch_sizes


def plant_changes(stub: StubProcess, share: float = CHANGED_SHARE) -> Planted:
    """Give ``share`` of the companies a new daglig leder; returns who, with the names before and after."""
    chosen = stub.pick(max(1, round(len(stub.orgnrs) * share)))
    before = stub.daglig_ledere()
    stub.mark_changed(chosen)
    after = stub.daglig_ledere()
    return {orgnr: (before[orgnr], after[orgnr]) for orgnr in chosen}


def compare_size(
    size: int, plan: Plan, urlwatch: Path | None, scratch: Path, progress: Callable[[str], None]
) -> list[ToolRun]:
    """Every cycle of one N, both tools on one stand-in; returns every run."""
    results: list[ToolRun] = []
    with StubProcess(size) as stub:
        folder = scratch / f"n{size}"
        subjects: list[WatcherSubject | UrlwatchSubject] = [
            WatcherSubject(folder / "watcher", stub.url, stub.orgnrs, plan.concurrency)
        ]
        if urlwatch is not None and plan.with_urlwatch(size):
            subjects.append(UrlwatchSubject(folder / "urlwatch", stub.url, stub.orgnrs, urlwatch))
        floor = FloorSubject(folder / "floor", stub.url, stub.orgnrs) if plan.floor else None
        for subject in [*subjects, *([floor] if floor else [])]:
            subject.prepare()
        for cycle in CYCLES:
            repetitions = plan.runs(cycle, size)
            for repetition in range(repetitions):
                planted = plant_changes(stub) if cycle == "changed" else {}
                order = subjects if repetition % 2 == 0 else list(reversed(subjects))
                if cycle == "unchanged" and floor is not None:
                    order = [*order, floor]
                for subject in order:
                    stub.reset_counters()
                    run, verdict = subject.run_cycle(cycle, planted)
                    seen = stub.reset_counters()
                    result = ToolRun(
                        subject.tool,
                        size,
                        cycle,
                        run,
                        subject.store_bytes(),
                        seen.requests,
                        seen.connections,
                        verdict,
                    )
                    results.append(result)
                    progress(
                        f"N={size:,} {cycle} {repetition + 1}/{repetitions} {subject.tool}: "
                        f"{run.wall_seconds:.2f} s wall, {run.cpu_seconds:.2f} s CPU, "
                        f"{run.peak_rss_mib:.1f} MiB, {'exact' if verdict.exact else 'NOT EXACT'}: "
                        f"{verdict.detail}"
                    )
    return results


def compare(
    plan: Plan,
    *,
    fresh_urlwatch: bool = False,
    progress: Callable[[str], None] | None = None,
    keep: Path | None = None,
) -> tuple[list[ToolRun], str]:
    """Run the whole comparison; returns every run and the urlwatch version (or why it is missing)."""
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    urlwatch: Path | None = None
    if any(plan.with_urlwatch(size) for size in plan.sizes):
        urlwatch = ensure_tool("urlwatch", "urlwatch", fresh=fresh_urlwatch)
        version = tool_version(urlwatch)
    else:
        version = "urlwatch not run"
    results: list[ToolRun] = []
    with tempfile.TemporaryDirectory(prefix="watcher-vs-urlwatch-") as temporary:
        scratch = keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        for size in plan.sizes:
            results += compare_size(size, plan, urlwatch, scratch, say)
    return results, version


# -- summaries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The runs of one tool in one cycle at one N: medians, the last store size, exactness."""

    runs: list[ToolRun]

    @property
    def wall(self) -> float:
        return statistics.median(run.process.wall_seconds for run in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(run.process.cpu_seconds for run in self.runs)

    @property
    def rss_mib(self) -> float:
        return statistics.median(run.process.peak_rss_mib for run in self.runs)

    @property
    def max_rss_kib(self) -> int:
        return max(run.process.peak_rss_kib for run in self.runs)

    @property
    def store_mib(self) -> float:
        return self.runs[-1].store_bytes / 2**20

    @property
    def requests(self) -> float:
        return statistics.median(run.requests for run in self.runs)

    @property
    def connections(self) -> float:
        return statistics.median(run.connections for run in self.runs)

    @property
    def exact_runs(self) -> int:
        return sum(1 for run in self.runs if run.verdict.exact)

    def walls(self) -> str:
        return ", ".join(f"{run.process.wall_seconds:.2f}" for run in self.runs)


def summarise(results: Iterable[ToolRun]) -> dict[tuple[int, str, str], Summary]:
    grouped: dict[tuple[int, str, str], list[ToolRun]] = {}
    for run in results:
        grouped.setdefault((run.size, run.cycle, run.tool), []).append(run)
    return {key: Summary(runs) for key, runs in grouped.items()}


def table_rows(results: Sequence[ToolRun]) -> list[Row]:
    """Rows for the suite's table: per N and cycle wall, CPU, RSS, store, exactness; then the targets."""
    summaries = summarise(results)
    rows: list[Row] = []
    for size in sorted({run.size for run in results}):
        for cycle in CYCLES:
            ours = summaries.get((size, cycle, "watcher"))
            if ours is None:
                continue
            theirs = summaries.get((size, cycle, "urlwatch"))
            floor = summaries.get((size, cycle, "floor"))
            rows += _cycle_rows(f"N={size:,} {cycle} (×{len(ours.runs)})", ours, theirs, floor)
    return rows + target_rows(summaries)


def _cycle_rows(label: str, ours: Summary, theirs: Summary | None, floor: Summary | None) -> list[Row]:
    walls = f"runs w: {ours.walls()}" + (f" | u: {theirs.walls()}" if theirs else "")
    if floor is not None:
        walls += f" | floor (keep-alive client) {floor.wall:.2f} s, {floor.cpu:.2f} s CPU"
    requests = f"requests (TCP connections) per run: w {ours.requests:,.0f} ({ours.connections:,.0f})" + (
        f" | u {theirs.requests:,.0f} ({theirs.connections:,.0f})" if theirs else ""
    )
    all_exact = ours.exact_runs == len(ours.runs) and (
        theirs is None or theirs.exact_runs == len(theirs.runs)
    )
    reported = (
        "w: " + ours.runs[-1].verdict.detail + (" | u: " + theirs.runs[-1].verdict.detail if theirs else "")
    )
    return [
        _metric_row(f"{label}: wall s", ours, theirs, lambda s: s.wall, "{:.2f}", walls),
        _metric_row(f"{label}: CPU s (user+sys)", ours, theirs, lambda s: s.cpu, "{:.2f}"),
        _metric_row(f"{label}: peak RSS MiB", ours, theirs, lambda s: s.rss_mib, "{:.1f}"),
        _metric_row(f"{label}: DB / cache MiB", ours, theirs, lambda s: s.store_mib, "{:.1f}", requests),
        Row(
            f"{label}: exact planted changes",
            _exact_text(ours),
            _exact_text(theirs),
            target="every run",
            verdict=f"{'ok' if all_exact else 'MISSED'}: {reported}",
        ),
    ]


def _metric_row(
    case: str,
    ours: Summary,
    theirs: Summary | None,
    metric: Callable[[Summary], float],
    pattern: str,
    detail: str = "",
) -> Row:
    mine = metric(ours)
    other = metric(theirs) if theirs is not None else None
    return Row(
        case,
        pattern.format(mine),
        "" if other is None else pattern.format(other),
        "" if not other else f"{mine / other:.2f}",
        verdict=detail,
    )


def _exact_text(summary: Summary | None) -> str:
    if summary is None:
        return ""
    word = "yes" if summary.exact_runs == len(summary.runs) else "NO"
    return f"{word} {summary.exact_runs}/{len(summary.runs)}"


def target_rows(summaries: dict[tuple[int, str, str], Summary]) -> list[Row]:
    """The four targets of issue 6, each with its verdict (or why it could not be judged)."""
    return [
        _unchanged_ratio_target(summaries),
        _linear_target(summaries),
        _memory_target(summaries),
        _exactness_target(summaries),
    ]


def _judged(met: bool, detail: str) -> str:
    return f"{'ok' if met else 'MISSED'}: {detail}"


def _unchanged_ratio_target(summaries: dict[tuple[int, str, str], Summary]) -> Row:
    case = f"TARGET unchanged N={SMALL:,}: wall watcher / urlwatch"
    target = f"≤ {UNCHANGED_RATIO_TARGET}"
    ours = summaries.get((SMALL, "unchanged", "watcher"))
    theirs = summaries.get((SMALL, "unchanged", "urlwatch"))
    if ours is None or theirs is None:
        return Row(case, target=target, verdict="not judged: needs watcher and urlwatch at N=1,000")
    ratio = ours.wall / theirs.wall
    detail = f"medians of {len(ours.runs)} and {len(theirs.runs)} runs in this one run of the suite"
    return Row(
        case,
        f"{ours.wall:.2f} s",
        f"{theirs.wall:.2f} s",
        f"{ratio:.2f}",
        target,
        _judged(ratio <= UNCHANGED_RATIO_TARGET, detail),
    )


def _linear_target(summaries: dict[tuple[int, str, str], Summary]) -> Row:
    case = f"TARGET linear: unchanged N={LARGE:,} / N={SMALL:,} wall"
    target = f"≤ {LINEAR_FACTOR_TARGET:g}×"
    factors: dict[tuple[str, str], float] = {}
    for tool in ("watcher", "urlwatch"):
        for cycle in CYCLES:
            small, large = summaries.get((SMALL, cycle, tool)), summaries.get((LARGE, cycle, tool))
            if small is not None and large is not None:
                factors[tool, cycle] = large.wall / small.wall
    if ("watcher", "unchanged") not in factors:
        return Row(case, target=target, verdict="not judged: needs N=1,000 and N=10,000")
    factor = factors["watcher", "unchanged"]
    theirs = factors.get(("urlwatch", "unchanged"))
    others = ", ".join(f"{tool} {cycle} {value:.1f}×" for (tool, cycle), value in factors.items())
    return Row(
        case,
        f"{factor:.1f}×",
        "" if theirs is None else f"{theirs:.1f}×",
        target=target,
        verdict=_judged(factor <= LINEAR_FACTOR_TARGET, f"watcher; all: {others}"),
    )


def _memory_target(summaries: dict[tuple[int, str, str], Summary]) -> Row:
    case = f"TARGET peak RSS of watcher check at N={LARGE:,}"
    target = f"< {RSS_TARGET_BYTES / 1e6:.0f} MB"
    large = [summary for (size, _, tool), summary in summaries.items() if size == LARGE and tool == "watcher"]
    if not large:
        return Row(case, target=target, verdict="not judged: N=10,000 not run")
    peak_kib = max(summary.max_rss_kib for summary in large)
    peak_bytes = peak_kib * 1024
    detail = f"{peak_bytes / 1e6:.1f} MB: the highest run of every cycle at N={LARGE:,}"
    return Row(
        case,
        f"{peak_kib / 1024:.1f} MiB",
        target=target,
        verdict=_judged(peak_bytes < RSS_TARGET_BYTES, detail),
    )


def _exactness_target(summaries: dict[tuple[int, str, str], Summary]) -> Row:
    counts: dict[str, tuple[int, int]] = {}
    for tool in ("watcher", "urlwatch"):
        mine = [summary for (_, _, name), summary in summaries.items() if name == tool]
        counts[tool] = (sum(s.exact_runs for s in mine), sum(len(s.runs) for s in mine))
    exact, total = counts["watcher"]
    theirs_exact, theirs_total = counts["urlwatch"]
    return Row(
        "TARGET exactly the planted changes, every run",
        f"{exact}/{total} runs",
        f"{theirs_exact}/{theirs_total} runs" if theirs_total else "",
        target="every run",
        verdict=_judged(
            exact == total,
            "cold: every borrower a baseline; unchanged: nothing; changed: only the planted companies, "
            "each with its legal representative before → after",
        ),
    )


def headline(version: str, plan: Plan) -> str:
    return (
        f"watcher check vs {version} on a loopback Enhetsregisteret (bench/registry_stub.py, own process); "
        f"N = {', '.join(f'{size:,}' for size in plan.sizes)}; concurrency {plan.concurrency}; "
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; changed cycle: "
        f"{CHANGED_SHARE:.0%} new daglig leder; medians; ratio = watcher / urlwatch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[SMALL, LARGE], help="numbers of borrowers")
    parser.add_argument("--urlwatch-sizes", type=int, nargs="*", help="run urlwatch only at these N")
    parser.add_argument("--unchanged-runs", type=int, help="repetitions (default 3 up to 2,000, else 1)")
    parser.add_argument("--changed-runs", type=int, help="repetitions (default 3 up to 2,000, else 1)")
    parser.add_argument("--no-floor", action="store_true", help="skip the keep-alive floor client")
    parser.add_argument("--fresh-urlwatch", action="store_true", help="reinstall urlwatch's throw-away venv")
    parser.add_argument("--keep", type=Path, help="keep databases, caches and outputs in this folder")
    arguments = parser.parse_args()
    plan = Plan(
        sizes=arguments.sizes,
        urlwatch_sizes=None if arguments.urlwatch_sizes is None else set(arguments.urlwatch_sizes),
        unchanged_runs=arguments.unchanged_runs,
        changed_runs=arguments.changed_runs,
        floor=not arguments.no_floor,
    )
    started = time.monotonic()
    results, version = compare(plan, fresh_urlwatch=arguments.fresh_urlwatch, keep=arguments.keep)
    print(headline(version, plan))
    print_table(table_rows(results))
    print(f"\n{math.ceil(time.monotonic() - started)} s in all")


if __name__ == "__main__":
    main()
