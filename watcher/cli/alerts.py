"""``watcher alerts [ack|close]``: list alerts and work through them, each step in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from watcher import output
from watcher.cli.base import HELP_MARKUP, NO_SECRETS, fail, load, with_store
from watcher.output import echo, when
from watcher.vocabulary import AlertStatus, AlertStatusFilter, Language

if TYPE_CHECKING:
    from watcher.models import Alert

group = typer.Typer(
    help="List alerts and work through them (acknowledge, close).", rich_markup_mode=HELP_MARKUP
)


@group.callback(invoke_without_command=True)
def alerts_list(
    ctx: typer.Context,
    status: Annotated[
        AlertStatusFilter, typer.Option(help="open, acknowledged, closed or all")
    ] = AlertStatusFilter.OPEN,
) -> None:
    """List alerts (open ones by default), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from watcher.alerts import list_alerts

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        rows = list_alerts(session, status=status.status)
    table = output.table(
        "id",
        "created",
        "severity",
        "status",
        "kind",
        "borrower",
        "source",
        "handled by",
        "note",
        text=("borrower", "handled by", "note"),
        keep=("id", "severity", "status", "kind"),
        drop_first=("source", "kind", "handled by", "status", "note"),
    )
    for alert, borrower in rows:
        handled = alert.closed_by or alert.acknowledged_by or ""
        table.add_row(
            str(alert.id),
            when(alert.created_at, config.watcher.zone),
            alert.severity,
            alert.status,
            alert.kind,
            f"{borrower.id} {borrower.name}" if borrower else f"{alert.kind}: {alert.source}",
            alert.source,
            handled,
            alert.note or "",
        )
    output.print_table(table)


@group.command("show")
def alerts_show(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id.")],
    language: Annotated[
        Language | None, typer.Option("--language", help="zh-CN or en (default: [watcher] language).")
    ] = None,
) -> None:
    """Show one alert as its notification reads: title, every change, recommendation."""
    from watcher import models
    from watcher.alerts import alert_view
    from watcher.render import render_alert

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        try:
            view = alert_view(session, alert_id, window_days=config.rules.window.days)
        except KeyError:
            raise fail(f"no alert #{alert_id}", 1) from None
        alert = session.get(models.Alert, alert_id)
        assert alert is not None
        status, handled = alert.status, alert.closed_by or alert.acknowledged_by
    rendered = render_alert(view, language or config.watcher.language, zone=config.watcher.zone)
    echo(rendered.title)
    for line in rendered.body.splitlines():
        echo(line)
    echo(f"status: {status}" + (f" ({handled})" if handled else ""))


def _lifecycle(step: Callable[..., Alert], alert_id: int, by: str, note: str | None, verb: str) -> None:
    """One step of an alert's life (``step`` from :mod:`watcher.alerts`), by a named person."""
    from watcher.alerts import AlertStateError
    from watcher.models import utcnow

    if not by.strip():
        raise fail("--by must name who handles the alert")
    with with_store(load(NO_SECRETS)) as store:
        try:
            with store.transaction() as session:
                alert = step(session, alert_id, by=by.strip(), note=note, at=utcnow())
        except KeyError:
            raise fail(f"no alert #{alert_id}", 1) from None
        except AlertStateError as error:
            raise fail(str(error), 1) from None
    echo(f"alert #{alert.id} {verb} by {by.strip()}")


@group.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id.")],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges it.")],
    note: Annotated[str | None, typer.Option("--note", help="What was done or decided.")] = None,
) -> None:
    """Acknowledge an open alert (recorded in the audit log)."""
    from watcher.alerts import acknowledge

    _lifecycle(acknowledge, alert_id, by, note, AlertStatus.ACKNOWLEDGED)


@group.command("close")
def alerts_close(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id.")],
    by: Annotated[str, typer.Option("--by", help="Who closes it.")],
    note: Annotated[str | None, typer.Option("--note", help="How it was resolved.")] = None,
) -> None:
    """Close an open or acknowledged alert (recorded in the audit log)."""
    from watcher.alerts import close

    _lifecycle(close, alert_id, by, note, AlertStatus.CLOSED)
