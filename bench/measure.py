"""Run one command as a child process and measure it: wall time, CPU time, peak resident memory.

CPU time and peak RSS come from ``wait4``'s rusage of that very child (and whatever it waited for),
not from ``RUSAGE_CHILDREN`` of the benchmark, which would also count the registry stand-in.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """What one run of a command cost; ``peak_rss_kib`` is ``ru_maxrss`` (KiB on Linux)."""

    wall_seconds: float
    user_seconds: float
    system_seconds: float
    peak_rss_kib: int
    returncode: int

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_kib / 1024


def run_measured(
    argv: Sequence[str],
    *,
    stdout: Path,
    stderr: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRun:
    """Run ``argv`` to its end with its output in files (a pipe nobody reads could stall it)."""
    with open(stdout, "wb") as out, open(stderr or stdout.with_suffix(".err"), "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return ProcessRun(
        wall_seconds=wall,
        user_seconds=usage.ru_utime,
        system_seconds=usage.ru_stime,
        peak_rss_kib=usage.ru_maxrss,
        returncode=process.returncode,
    )


def files_size(paths: Sequence[Path]) -> int:
    """Bytes on disk of the files that exist among ``paths`` (a database and its -wal/-shm/-journal)."""
    return sum(path.stat().st_size for path in paths if path.exists())


def sqlite_files(database: Path) -> list[Path]:
    return [
        database,
        *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal")),
    ]
