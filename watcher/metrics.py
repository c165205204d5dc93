"""Prometheus metrics of one daemon and the small HTTP server for ``/healthz`` and ``/metrics``.

Each daemon keeps its own :class:`~prometheus_client.CollectorRegistry` (never the process-wide
default), so several daemons in one process (tests) never mix their numbers. Counters and the
check-duration histogram are fed by the daemon as work happens; the gauges mirror the database
(the same :class:`~watcher.health.HealthReport` as ``watcher status``) and are refreshed on every
heartbeat, so a scrape never waits for a database query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from watcher.dispatch import DispatchReport
from watcher.health import HealthReport, InstanceState, Liveness, ProblemKind
from watcher.pipeline import CheckOutcome
from watcher.serving import serve_until_stopped
from watcher.vocabulary import DeliveryStatus, OutboxState

log = logging.getLogger("watcher.metrics")

CHECK_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class MetricsStartError(RuntimeError):
    """The metrics endpoint could not listen (typically: the port is taken)."""


def check_outcome_label(outcome: CheckOutcome) -> str:
    """``failed``, ``baseline``, ``changed`` or ``unchanged``: the ``outcome`` label of a check."""
    if not outcome.ok:
        return "failed"
    if outcome.baseline:
        return "baseline"
    return "changed" if outcome.changes else "unchanged"


class DaemonMetrics:
    """The metrics one ``watcher run`` exposes; see README, Operations, for the list."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.checks = Counter(
            "watcher_checks",
            "Checks run by this instance, by source and outcome.",
            ["source", "outcome"],
            registry=r,
        )
        self.check_seconds = Histogram(
            "watcher_check_duration_seconds",
            "How long one check took (fetch, parse, store), by source.",
            ["source"],
            buckets=CHECK_SECONDS_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "watcher_deliveries",
            "Delivery attempts by this instance, by result (sent, failed: will retry, dead: gave up).",
            ["result"],
            registry=r,
        )
        self.borrowers = Gauge("watcher_borrowers", "Borrowers in the database.", registry=r)
        self.borrowers_due = Gauge(
            "watcher_borrowers_due", "Active borrowers due for a check now.", registry=r
        )
        self.borrowers_overdue = Gauge(
            "watcher_borrowers_overdue", "Active borrowers due for more than an hour.", registry=r
        )
        self.borrowers_failing = Gauge(
            "watcher_borrowers_failing", "Active borrowers whose last check failed.", registry=r
        )
        self.outbox = Gauge(
            "watcher_outbox_deliveries",
            "Outbox rows not yet sent, by state (pending, retrying, held for a digest, dead).",
            ["state"],
            registry=r,
        )
        self.source_failures = Gauge(
            "watcher_source_consecutive_failures",
            "Consecutive failed checks of each source.",
            ["source"],
            registry=r,
        )
        self.instances = Gauge(
            "watcher_instances",
            "Daemon instances registered in the database, by state.",
            ["state"],
            registry=r,
        )
        self.problems = Gauge(
            "watcher_health_problems",
            "Problems that make `watcher status` exit 1, by kind (0 everywhere when healthy).",
            ["kind"],
            registry=r,
        )
        self.last_sweep = Gauge(
            "watcher_last_sweep_timestamp_seconds", "When this instance last completed a sweep.", registry=r
        )
        self.heartbeat = Gauge(
            "watcher_heartbeat_timestamp_seconds",
            "When this instance last recorded its heartbeat.",
            registry=r,
        )
        for outbox_state in OutboxState:
            self.outbox.labels(outbox_state.value)
        for kind in ProblemKind:
            self.problems.labels(kind.value)
        for state in InstanceState:
            self.instances.labels(state.value)

    def checked(self, source: str, outcome: CheckOutcome, seconds: float) -> None:
        self.checks.labels(source, check_outcome_label(outcome)).inc()
        self.check_seconds.labels(source).observe(seconds)

    def delivered(self, report: DispatchReport) -> None:
        for result, count in (
            (DeliveryStatus.SENT, report.sent),
            ("failed", report.failed),  # to be retried: not a status of its own
            (DeliveryStatus.DEAD, report.dead),
        ):
            if count:
                self.deliveries.labels(result).inc(count)

    def swept(self, at: datetime) -> None:
        self.last_sweep.set(at.timestamp())

    def beat(self, at: datetime) -> None:
        self.heartbeat.set(at.timestamp())

    def observe_health(self, report: HealthReport) -> None:
        """Mirror the database's state, as ``watcher status`` reads it, in the gauges."""
        self.borrowers.set(report.borrowers)
        self.borrowers_due.set(report.due)
        self.borrowers_overdue.set(report.overdue)
        self.borrowers_failing.set(report.failing)
        for outbox_state, count in (
            (OutboxState.PENDING, report.deliveries_pending),
            (OutboxState.RETRYING, report.deliveries_retrying),
            (OutboxState.HELD, report.deliveries_held),
            (OutboxState.DEAD, report.deliveries_dead),
        ):
            self.outbox.labels(outbox_state.value).set(count)
        self.source_failures.clear()
        for health in report.sources:
            self.source_failures.labels(health.source).set(health.consecutive_failures)
        for state in InstanceState:
            self.instances.labels(state.value).set(sum(1 for i in report.instances if i.state is state))
        for kind in ProblemKind:
            self.problems.labels(kind.value).set(sum(1 for p in report.problems if p.kind is kind))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def probe_app(metrics: DaemonMetrics, liveness: Callable[[], Awaitable[Liveness]]):
    """``GET /healthz``: 200 or 503 with a short JSON body; ``GET /metrics``: the Prometheus text format."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def healthz(_request: Request) -> Response:
        answer = await liveness()
        return JSONResponse(answer.as_json(), status_code=200 if answer.ok else 503)

    async def scrape(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", scrape, methods=["GET", "HEAD"]),
        ]
    )


async def serve_probes(
    metrics: DaemonMetrics,
    liveness: Callable[[], Awaitable[Liveness]],
    stop_event: asyncio.Event,
    *,
    host: str,
    port: int,
) -> None:
    """Serve ``/healthz`` and ``/metrics`` on ``host:port`` until ``stop_event`` is set.

    Runs on the daemon's event loop: a loop that hangs stops answering, which a probe counts as down.
    Raises :class:`MetricsStartError` when it cannot listen.
    """
    await serve_until_stopped(
        probe_app(metrics, liveness),
        stop_event,
        host=host,
        port=port,
        what="metrics endpoint",
        start_error=MetricsStartError,
        access_log=False,
    )
