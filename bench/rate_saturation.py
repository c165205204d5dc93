"""Does the shared HTTP policy saturate a registry's rate limit without ever tripping it?

Runs ``BrregSource`` against a loopback Enhetsregisteret (bench/registry_stub.py) that answers 429
to the (R+1)-th request within any second, with ``rate = "R/s"`` configured and 10 checks in
flight, over enough companies to last at least ``--seconds``. Between runs some companies get a new
daglig leder, and every fetched record is checked against the stub, so the numbers are for real
work. Reports the median of ``--runs`` runs per rate.

The achieved rate is measured at the server: ``(requests - 1) / (last arrival - first arrival)``.

    .venv/bin/python -m bench.rate_saturation [--rates 20 50] [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from dataclasses import dataclass

from bench.registry_stub import RegistryStub, StubProcess
from sources.brreg import BrregOptions, BrregSource
from watcher.errors import SourceError

CHANGED_PER_RUN = 0.05


@dataclass(frozen=True)
class RunResult:
    requests: int
    rejected: int
    connections: int
    failures: int
    mismatches: int
    elapsed: float
    achieved_rate: float


async def _one_run(stub: RegistryStub | StubProcess, rate: int, concurrency: int) -> RunResult:
    source = BrregSource("bench", BrregOptions(type="brreg", base_url=stub.url, rate=f"{rate}/s"))
    limit = asyncio.Semaphore(concurrency)
    failures = 0
    seen_managers: dict[str, str | None] = {}

    async def check(orgnr: str) -> None:
        nonlocal failures
        async with limit:
            try:
                fetched = await source.fetch(orgnr)
            except SourceError:
                failures += 1
                return
        representative = fetched.record.legal_representative
        seen_managers[orgnr] = None if representative is None else representative.name

    stub.reset_counters()
    started = time.monotonic()
    await asyncio.gather(*(check(orgnr) for orgnr in stub.orgnrs))
    elapsed = time.monotonic() - started
    await source.aclose()
    seen = stub.reset_counters()
    expected = stub.daglig_ledere()
    mismatches = sum(1 for orgnr, name in seen_managers.items() if name != expected[orgnr])
    arrivals = sorted(seen.arrivals or [])
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else math.inf
    return RunResult(
        requests=seen.requests,
        rejected=seen.rejected,
        connections=seen.connections,
        failures=failures,
        mismatches=mismatches,
        elapsed=elapsed,
        achieved_rate=(seen.requests - 1) / span,
    )


def _companies_for(rate: int, seconds: float) -> int:
    """Two requests per company, going 1.02 s / R apart (the limiter's 2% margin)."""
    return math.ceil(seconds * rate / 1.02 / 2) + rate // 2


def measure(rate: int, runs: int, seconds: float, concurrency: int, in_process: bool) -> list[RunResult]:
    results = []
    stub_class = RegistryStub if in_process else StubProcess
    with stub_class(_companies_for(rate, seconds), rate_limit=rate) as stub:
        for run in range(runs):
            if run:
                stub.mark_changed(stub.pick(max(1, int(len(stub.orgnrs) * CHANGED_PER_RUN))))
            results.append(asyncio.run(_one_run(stub, rate, concurrency)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[20, 50], help="R, requests per second")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="minimum length of one run")
    parser.add_argument("--concurrency", type=int, default=10, help="checks in flight")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the stub in this process (its arrival times then share the GIL with the client)",
    )
    arguments = parser.parse_args()

    header = (
        f"{'R/s':>5} {'companies':>9} {'requests':>8} {'secs':>6} {'req/s':>7} {'ratio':>6} "
        f"{'429s':>5} {'conns':>5} {'failed':>6} {'wrong':>5}  runs (req/s)"
    )
    print(header)
    print("-" * len(header))
    for rate in arguments.rates:
        results = measure(
            rate, arguments.runs, arguments.seconds, arguments.concurrency, arguments.in_process
        )
        median = sorted(results, key=lambda result: result.achieved_rate)[len(results) // 2]
        each = ", ".join(f"{result.achieved_rate:.2f}" for result in results)
        print(
            f"{rate:>5} {_companies_for(rate, arguments.seconds):>9} {median.requests:>8} "
            f"{median.elapsed:>6.2f} {median.achieved_rate:>7.2f} {median.achieved_rate / rate:>6.3f} "
            f"{sum(r.rejected for r in results):>5} {statistics.median(r.connections for r in results):>5g} "
            f"{sum(r.failures for r in results):>6} {sum(r.mismatches for r in results):>5}  {each}"
        )
    print(
        "\nreq/s and ratio: median run; 429s, failed (SourceError) and wrong (record differs from the stub):"
        " totals over all runs."
    )


if __name__ == "__main__":
    main()
