"""Where does `watcher check` spend an unchanged cycle? A sampling profile with py-spy.

Sets up what bench/compare_urlwatch.py measures (loopback Enhetsregisteret, one ``brreg`` source,
concurrency 10, SQLite), runs the cold cycle unprofiled to store the baselines, then per N prints:

- an unprofiled unchanged cycle's wall, CPU and peak RSS;
- start-up: a one-borrower check's wall time and its imports under ``-X importtime`` by package;
- the fetch side alone (BrregSource over every company, 10 in flight, no database, in this process);
- an unchanged cycle under py-spy (installed into a throw-away venv, see bench/tool_venv.py): time by
  activity (each sample counted once, first matching rule), the project functions by inclusive
  share, and the hottest functions by self time (file:function).

py-spy samples the thread holding the GIL by default: the check is one process whose event loop and
database thread take turns on it, so that is where its time goes. ``--all-threads`` samples every
running thread instead, which also shows time outside the GIL (SQLite, syscalls) but counts a thread
waiting for the GIL as busy in its last call. ``--profiler cprofile`` (also the fallback when py-spy
cannot be installed or attach) uses ``python -m cProfile``, which sees only the main thread.

    .venv/bin/python -m bench.profile_check [--sizes 1000 10000] [--all-threads] [--top 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.compare_urlwatch import WatcherSubject
from bench.measure import run_measured
from bench.registry_stub import StubProcess
from bench.tool_venv import ToolInstallError, ensure_tool
from sources.brreg import BrregOptions, BrregSource
from watcher.errors import SourceError

# Activities, first match wins: (label, markers, leaf_only). A sample is the activity whose marker
# appears in one of its frames (only in its innermost frame when leaf_only).
ACTIVITIES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("module imports (start-up and lazy)", ("_find_and_load (<frozen importlib._bootstrap>",), False),
    ("start-up: config load + validation", ("load_config (watcher/config/loading.py",), False),
    (
        "start-up: open store, schema check, load borrowers",
        ("with_store (watcher/cli/base.py", "open_store (watcher/store.py", "borrowers (watcher/store.py"),
        False,
    ),
    ("DB thread: normalize_record + content_hash", ("normalize_record (", "content_hash ("), False),
    (
        "DB thread: diff, rules, snapshot, alert",
        ("diff (watcher/diff.py", "assess (", "Checker._snapshot ("),
        False,
    ),
    ("DB thread: SQLite commit", ("do_commit (",), False),
    ("DB thread: SQLite executing statements", ("DefaultDialect.do_execute (",), True),
    (
        "DB thread: SQLAlchemy ORM/Core per-borrower transaction overhead",
        ("Checker._record_success (", "Checker._record_failure ("),
        False,
    ),
    ("source: map raw answers", ("record_of (", "map_raw ("), False),
    ("source: rate limiter", ("SlidingWindowLimiter.",), False),
    (
        "HTTP: socket syscalls (send, recv, getpeername)",
        ("_SelectorSocketTransport.write (", "getpeername (", "sock_recv", ".recv ("),
        True,
    ),
    ("HTTP: keep-alive transport (h11)", ("KeepAliveTransport.", "_ResponseStream."), False),
    (
        "HTTP: policy per-request work (httpx models, decoding)",
        ("HttpPolicy.get (", "HttpPolicy._send ("),
        False,
    ),
    ("source: payload digest", ("payload_digest (",), False),
    (
        "unchanged checks: queue and batched writes",
        ("Checker._settle (", "Checker._write_unchanged ("),
        False,
    ),
    ("per-borrower output line (typer.echo)", ("echo (typer", "_outcome_line ("), False),
    ("asyncio loop + thread hand-off", ("asyncio/", "concurrent/futures/"), False),
)
# Innermost frames that are a thread waiting for work, which py-spy does not always see as idle.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "EpollSelector.select (")


@dataclass
class Profile:
    """Samples aggregated three ways; counts are samples, ``total`` all on-CPU samples."""

    total: int = 0
    idle: int = 0
    activities: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)


def read_raw(path: Path) -> Profile:
    """py-spy's ``--format raw`` (collapsed stacks ``frame;frame;... count``, first frame the thread)."""
    profile = Profile()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith("thread ("):
            frames = frames[1:]
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            profile.idle += count
            continue
        profile.total += count
        profile.threads[_thread_kind(frames)] += count
        profile.activities[_activity(frames)] += count
        for name in {_function(frame) for frame in frames if _is_project(frame)}:
            profile.inclusive[name] += count
        if frames:
            profile.self_time[_function(frames[-1])] += count
    return profile


def _thread_kind(frames: Sequence[str]) -> str:
    joined = ";".join(frames)
    if "_run_module_as_main" in joined:
        return "main thread (event loop, HTTP, parsing)"
    if "watcher/pipeline.py" in joined:
        return "watcher-db thread (normalize, hash, queries, commits)"
    return "other threads (e.g. getaddrinfo executor)"


def _activity(frames: Sequence[str]) -> str:
    for label, markers, leaf_only in ACTIVITIES:
        searched = frames[-1:] if leaf_only else frames
        if any(marker in frame for frame in searched for marker in markers):
            return label
    return "other"


def _function(frame: str) -> str:
    """``Class.method (path/file.py:123)`` → ``path/file.py:Class.method``."""
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    return f"{path}:{name}"


def _is_project(frame: str) -> bool:
    return any(f"({package}/" in frame for package in ("watcher", "sources", "notifiers"))


def print_profile(profile: Profile, top: int) -> None:
    def share(count: int) -> str:
        return f"{100 * count / max(profile.total, 1):5.1f} %"

    print(f"  {profile.total:,} on-CPU samples ({profile.idle:,} more of threads waiting for work left out)")
    print("  by thread:")
    for name, count in profile.threads.most_common():
        print(f"    {share(count)}  {name}")
    print("  by activity (each sample once, first matching rule):")
    for name, count in profile.activities.most_common():
        print(f"    {share(count)}  {name}")
    print(f"  project functions, inclusive (top {top}):")
    for name, count in profile.inclusive.most_common(top):
        print(f"    {share(count)}  {name}")
    print(f"  hottest functions, self time (top {top}):")
    for name, count in profile.self_time.most_common(top):
        print(f"    {share(count)}  {name}")


def print_import_costs(subject: WatcherSubject, top: int) -> None:
    """Start-up: a one-borrower check under ``-X importtime``, imports summed by top-level package."""
    first = subject.borrower_id(subject.orgnrs[0])
    command = subject.command("check", "--no-notify", "--borrower", first)
    stderr = subject.folder / "importtime.err"
    run = run_measured(
        [command[0], "-X", "importtime", *command[1:]],
        stdout=subject.folder / "importtime.out",
        stderr=stderr,
        cwd=subject.folder,
    )
    plain = run_measured(command, stdout=subject.folder / "one.out", cwd=subject.folder)
    packages: Counter[str] = Counter()
    for line in stderr.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        if own.strip().isdigit() and name.strip():
            packages[name.strip().split(".")[0]] += int(own)
    total = sum(packages.values())
    print(
        f"start-up: a one-borrower check takes {plain.wall_seconds:.2f} s wall, "
        f"{plain.cpu_seconds:.2f} s CPU "
        f"(exit {plain.returncode}); its imports take {total / 1e6:.2f} s under -X importtime "
        f"(that run {run.wall_seconds:.2f} s); own import time by package:"
    )
    for name, micros in packages.most_common(top):
        print(f"    {micros / 1e6:6.3f} s  {name}")


def print_source_only(registry_url: str, orgnrs: Sequence[str], concurrency: int) -> None:
    """The fetch side alone, in this process: BrregSource (httpx, parsing, mapping) over every company
    with ``concurrency`` in flight, no database, no start-up. What is left of a cycle is the rest."""
    source = BrregSource("bench", BrregOptions(type="brreg", base_url=registry_url, rate="1000000/s"))

    async def fetch_all() -> int:
        limit = asyncio.Semaphore(concurrency)

        async def one(orgnr: str) -> bool:
            async with limit:
                try:
                    await source.fetch(orgnr)
                except SourceError:
                    return False
                return True

        try:
            return sum(await asyncio.gather(*(one(orgnr) for orgnr in orgnrs)))
        finally:
            await source.aclose()

    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    fetched = asyncio.run(fetch_all())
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - started
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(
        f"source only (BrregSource.fetch of {len(orgnrs):,} companies, {concurrency} in flight, "
        f"no database): {wall:.2f} s wall, {cpu:.2f} s CPU, {fetched:,} fetched"
    )


def profile_size(size: int, *, rate: int, top: int, profiler: str, gil: bool, scratch: Path) -> None:
    with StubProcess(size) as stub:
        subject = WatcherSubject(scratch / f"n{size}", stub.url, stub.orgnrs)
        subject.prepare()
        cold, verdict = subject.run_cycle("cold", {})
        if not verdict.exact:
            raise RuntimeError(f"cold cycle at N={size} did not store every baseline: {verdict.detail}")
        plain, verdict = subject.run_cycle("unchanged", {})
        print(
            f"\nN={size:,} unchanged cycle, unprofiled: {plain.wall_seconds:.2f} s wall, "
            f"{plain.cpu_seconds:.2f} s CPU ({plain.user_seconds:.2f} user + "
            f"{plain.system_seconds:.2f} sys), "
            f"{plain.peak_rss_mib:.1f} MiB peak RSS; cold cycle {cold.wall_seconds:.2f} s wall"
        )
        print_import_costs(subject, top)
        print_source_only(stub.url, stub.orgnrs, subject.concurrency)
        command = subject.command("check", "--no-notify")
        if profiler == "py-spy":
            try:
                py_spy = ensure_tool("py-spy", "py-spy")
                raw = subject.folder / "unchanged.pyspy.txt"
                argv = [str(py_spy), "record", "--rate", str(rate), "--threads", "--format", "raw",
                        "--output", str(raw), *(["--gil"] if gil else []), "--", *command]  # fmt: skip
                recorded = run_measured(argv, stdout=subject.folder / "py-spy.out", cwd=subject.folder)
                if recorded.returncode == 0 and raw.exists():
                    sampled = "the thread holding the GIL" if gil else "every running thread"
                    print(f"py-spy at {rate} Hz, {sampled}; profiled run {recorded.wall_seconds:.2f} s wall:")
                    print_profile(read_raw(raw), top)
                    return
                errors = (subject.folder / "py-spy.err").read_text(encoding="utf-8", errors="replace")
                print(f"py-spy failed (exit {recorded.returncode}): {errors.strip()[-300:]}; using cProfile")
            except ToolInstallError as error:
                print(f"py-spy unavailable ({error}); using cProfile")
        stats_file = subject.folder / "unchanged.cprofile"
        argv = [sys.executable, "-m", "cProfile", "-o", str(stats_file), *command[1:]]
        run_measured(argv, stdout=subject.folder / "cprofile.out", cwd=subject.folder)
        print("cProfile (main thread only: the watcher-db thread's work is not in these numbers):")
        stats = pstats.Stats(str(stats_file))
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--profiler", choices=("py-spy", "cprofile"), default="py-spy")
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every running thread (default: only the one holding the GIL, which is where the "
        "process's Python time goes; threads waiting for the GIL then show as busy in their last call)",
    )
    parser.add_argument("--keep", type=Path, help="keep databases, outputs and raw profiles in this folder")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="watcher-profile-") as temporary:
        scratch = arguments.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        for size in arguments.sizes:
            profile_size(
                size,
                rate=arguments.rate,
                top=arguments.top,
                profiler=arguments.profiler,
                gil=not arguments.all_threads,
                scratch=scratch,
            )


if __name__ == "__main__":
    main()
