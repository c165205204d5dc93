"""``watcher check``: check borrowers now (fetch, diff, store, alert), then send what is due."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Annotated

import typer

from watcher import output
from watcher.cli.base import FETCHING, fail, instance_name, load, with_store
from watcher.output import echo, when

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.dispatch import DispatchReport
    from watcher.models import Borrower
    from watcher.monitoring import GapReport
    from watcher.pipeline import CheckOutcome
    from watcher.store import Store


def check(
    borrower: Annotated[
        list[str] | None, typer.Option("--borrower", help="Only this borrower (repeatable).")
    ] = None,
    no_notify: Annotated[
        bool, typer.Option("--no-notify", help="Store alerts but do not send them.")
    ] = False,
) -> None:
    """Check borrowers now: fetch, diff, store, alert; exit 1 when any check failed."""
    import asyncio

    config = load(FETCHING)
    with with_store(config) as store:
        selected = _selected(store, borrower, config.watcher.zone)
        if not selected:
            if not borrower:
                echo("no borrowers to check (import some with `watcher borrowers import FILE.csv`)")
            return
        outcomes = asyncio.run(_run_checks(store, config, selected))
        gaps = _scan_gaps(store, config)
        tally = _Tally.of(outcomes)
        echo(tally.line())
        if gaps.gaps or gaps.restored:
            echo(f"monitoring: {len(gaps.gaps)} gap alert(s), {len(gaps.restored)} recovery notice(s)")
        if not no_notify:
            _report_deliveries(asyncio.run(_dispatch(store, config)))
        elif tally.alerts or gaps.alert_ids:
            echo("alerts stored; --no-notify: nothing sent (the daemon or the next check sends them)")
    if tally.failed:
        echo(tally.failures(), err=True)
        raise typer.Exit(1)


def _selected(store: Store, wanted: list[str] | None, zone: tzinfo) -> list[Borrower]:
    """The active borrowers ``--borrower`` names (all without it); an id not on file is a usage error.

    An inactive borrower is not checked (no fetch, no alert), even when named: a line says so.
    """
    from watcher.store import borrowers

    with store.session() as session:
        selected = borrowers(session, wanted)
    unknown = sorted(set(wanted or ()) - {b.id for b in selected})
    if unknown:
        raise fail(f"unknown borrower id(s): {', '.join(unknown)}")
    for inactive in (b for b in selected if not b.active and wanted):
        echo(
            f"{inactive.id}: inactive since {when(inactive.deactivated_at, zone)}, not checked "
            f"(`watcher borrowers reactivate {inactive.id}` watches it again)"
        )
    return [b for b in selected if b.active]


@dataclass(frozen=True, slots=True)
class _Tally:
    """How a round of checks went, for the summary line and the exit code."""

    checked: int
    failed: tuple[CheckOutcome, ...]
    alerts: int
    baselines: int
    waiting: int

    @classmethod
    def of(cls, outcomes: Sequence[CheckOutcome]) -> _Tally:
        return cls(
            checked=len(outcomes),
            failed=tuple(o for o in outcomes if not o.ok),
            alerts=sum(1 for o in outcomes if o.alert_id is not None),
            baselines=sum(1 for o in outcomes if o.ok and o.baseline),
            waiting=sum(1 for o in outcomes if o.awaiting_confirmation),
        )

    def line(self) -> str:
        return (
            f"checked {self.checked}: {self.checked - len(self.failed)} ok ({self.baselines} baseline), "
            f"{len(self.failed)} failed, {self.alerts} alert(s)"
            + (f", {self.waiting} awaiting confirmation" if self.waiting else "")
        )

    def failures(self) -> str:
        return "failed: " + "; ".join(f"{o.borrower_id} ({o.error_kind}: {o.error})" for o in self.failed)


def _report_deliveries(report: DispatchReport) -> None:
    if report.sent or report.failed or report.dead:
        echo(f"deliveries: {report.sent} sent, {report.failed} failed (will retry), {report.dead} dead")


def _scan_gaps(store: Store, config: Config) -> GapReport:
    from watcher.models import utcnow
    from watcher.monitoring import scan_monitoring_gaps

    with store.transaction() as session:
        return scan_monitoring_gaps(session, config, utcnow())


async def _run_checks(store: Store, config: Config, selected: list[Borrower]) -> list[CheckOutcome]:
    """Every check, shown as a progress bar on a terminal and one line per borrower otherwise."""
    from watcher.pipeline import Checker

    checker = Checker(store, config)
    try:
        if sys.stdout.isatty():
            with output.progress_bar("checking", len(selected)) as step:

                def advance(outcome: CheckOutcome) -> None:
                    step(None if outcome.ok else f"{outcome.borrower_id}: {outcome.error_kind}")

                return await checker.check(selected, on_outcome=advance)
        return await checker.check(selected, on_outcome=lambda outcome: echo(_outcome_line(outcome)))
    finally:
        await checker.aclose()


async def _dispatch(store: Store, config: Config) -> DispatchReport:
    from watcher.dispatch import Dispatcher

    dispatcher = Dispatcher(store, config, instance=instance_name(config), lease=config.schedule.lease)
    try:
        return await dispatcher.dispatch_due()
    finally:
        dispatcher.close()


def _outcome_line(outcome: CheckOutcome) -> str:
    if not outcome.ok:
        return f"{outcome.borrower_id}: failed ({outcome.error_kind}): {outcome.error}"
    if outcome.baseline:
        line = f"{outcome.borrower_id}: baseline stored"
    elif outcome.changes:
        line = f"{outcome.borrower_id}: {outcome.changes} change(s)"
    elif outcome.awaiting_confirmation:
        gone = "people, shareholders or listings gone"
        line = f"{outcome.borrower_id}: awaiting confirmation ({gone}; checked again)"
    else:
        line = f"{outcome.borrower_id}: unchanged"
    if outcome.alert_id is not None:
        line += f", alert #{outcome.alert_id} ({outcome.severity})"
    return line
