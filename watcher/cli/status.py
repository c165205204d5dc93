"""``watcher status``: the health of the deployment for people or scripts; exit 1 when it needs attention.

What counts as healthy is :mod:`watcher.health`'s judgement; this module only prints it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo
from typing import TYPE_CHECKING, Annotated

import typer

from watcher import output
from watcher.cli.base import NO_SECRETS, ListFormat, load, with_store
from watcher.output import echo, when
from watcher.redaction import redact, redact_optional
from watcher.vocabulary import Language

if TYPE_CHECKING:
    from watcher.health import FeedView, HealthReport, InstanceView
    from watcher.models import SourceHealth


def status(
    output_format: Annotated[
        ListFormat, typer.Option("--format", help="table (for people) or json (for scripts)")
    ] = ListFormat.table,
) -> None:
    """Health: instances, last check, due and overdue borrowers, failing sources, delivery backlog.

    Exit 1 when anything needs attention (the problems are listed), 0 when all is well.
    """
    from watcher.health import read_health

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        report = read_health(session, config)
    if output_format is ListFormat.json:
        output.echo_json(report.as_json(), indent=2)
        raise typer.Exit(0 if report.ok else 1)
    for line in _lines(report, config.watcher.zone, config.watcher.language):
        echo(line)
    if not report.ok:
        raise typer.Exit(1)


def _lines(report: HealthReport, zone: tzinfo, language: Language) -> Iterator[str]:
    """The report for people, times in ``zone`` with their offset, signals named in ``language``."""

    for instance in report.instances:
        yield _instance_line(instance, zone)
    inactive = f", {report.inactive} inactive" if report.inactive else ""
    yield f"borrowers: {report.borrowers} ({report.due} due, {report.overdue} overdue{inactive})"
    yield f"last check: {when(report.last_check_at, zone) or 'never'}"
    yield (
        f"deliveries: {report.deliveries_pending} pending, {report.deliveries_retrying} retrying, "
        f"{report.deliveries_dead} dead, {report.deliveries_held} held for digests"
    )
    for health in report.sources:
        yield _source_line(health, report.billed_calls.get(health.source), zone)
        for unavailable in report.unavailable_of(health.source):
            since = when(unavailable.unavailable_since, zone)
            yield (
                f"  signal {unavailable.signal}{_signal_label(unavailable.signal, language)} unavailable "
                f"since {since} "
                f"(retried {when(unavailable.retry_at, zone)}): {redact(unavailable.reason)}"
            )
    for feed in report.feeds:
        yield _feed_line(feed, zone)
    for borrower in report.failing_borrowers:
        yield (
            f"failing borrower {borrower.id}: ×{borrower.consecutive_failures} "
            f"({borrower.last_error_kind}) {redact_optional(borrower.last_error)}"
        )
    for borrower in report.awaiting_confirmation:
        seen = when(borrower.pending_since, zone)
        yield f"awaiting confirmation: {borrower.id} (a mass disappearance seen {seen})"
    for problem in report.problems:
        yield f"problem: {problem.message}"
    yield "health: ok" if report.ok else f"health: {len(report.problems)} problem(s)"


def _feed_line(feed: FeedView, zone: tzinfo) -> str:
    from datetime import timedelta

    from watcher.units import format_duration

    lag = "–" if feed.lag is None else format_duration(timedelta(seconds=int(feed.lag.total_seconds())))
    state = {
        "gap": f"GAP since {when(feed.gap_since, zone)}, polling instead",
        "failing": f"FAILING since {when(feed.failing_since, zone)}",
        "unfollowed": "NOT FOLLOWED (no live `watcher run` holds it)",
    }.get(feed.state, feed.state)
    error = f": {feed.error}" if feed.error and feed.state in ("gap", "failing") else ""
    return (
        f"  feed {feed.source}/{feed.feed}: {state}{error}; position {feed.position or '–'}, lag {lag}, "
        f"last read {when(feed.read_at, zone) or 'never'}, follower {feed.follower or '–'}; "
        f"entries read {feed.entries}, companies made due {feed.marked}"
    )


def _signal_label(signal: str, language: Language) -> str:
    """ " (司法风险)": what the signal is, in the reader's words (a signal of another version: nothing)."""
    from watcher.labels import SIGNAL_LABEL
    from watcher.record import Signal

    known = {member.value: member for member in Signal}
    return f" ({SIGNAL_LABEL[language][known[signal]]})" if signal in known else ""


def _instance_line(instance: InstanceView, zone: tzinfo) -> str:
    from watcher.health import InstanceState

    if instance.state is InstanceState.stopped:
        state = f"stopped {when(instance.stopped_at, zone)}"
    elif instance.state is InstanceState.alive:
        state = "alive"
    else:
        state = f"NOT RESPONDING since {when(instance.heartbeat_at, zone)}"
    return (
        f"instance {instance.name} ({instance.host}, pid {instance.pid}, {instance.version}): {state}; "
        f"last sweep {when(instance.last_sweep_at, zone) or 'never'}"
    )


def _source_line(health: SourceHealth, billed_calls: int | None, zone: tzinfo) -> str:
    error = redact_optional(health.last_error)
    state = (
        f"FAILING ×{health.consecutive_failures} ({health.last_error_kind}): {error}"
        if health.consecutive_failures
        else "ok"
    )
    usage = "" if billed_calls is None else f"; {billed_calls} billed call(s) in 24h"
    last_success = when(health.last_success_at, zone) or "never"
    return f"source {health.source}: {state}; last success {last_success}{usage}"
