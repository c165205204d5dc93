"""``watcher alerts [ack|close]``: list alerts and work through them, each step in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Annotated

import typer

from watcher import output
from watcher.cli.base import HELP_MARKUP, NO_SECRETS, ListFormat, fail, load, with_store
from watcher.output import echo, when
from watcher.vocabulary import AlertKind, AlertStatus, AlertStatusFilter, Language, Severity

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.models import Alert, Borrower

group = typer.Typer(
    help="List alerts and work through them (acknowledge, close).", rich_markup_mode=HELP_MARKUP
)


@group.callback(invoke_without_command=True)
def alerts_list(
    ctx: typer.Context,
    status: Annotated[
        AlertStatusFilter, typer.Option(help="open, acknowledged, closed or all")
    ] = AlertStatusFilter.OPEN,
    output_format: Annotated[
        ListFormat, typer.Option("--format", help="table (for people, in [watcher] language) or json")
    ] = ListFormat.table,
) -> None:
    """List alerts (open ones by default), newest first; json keeps the stored values for scripts."""
    if ctx.invoked_subcommand is not None:
        return
    from watcher.alerts import list_alerts

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        rows = list_alerts(session, status=status.status)
    if output_format is ListFormat.json:
        from watcher.console.exports import alert_records

        output.echo_json(alert_records(rows), indent=2)
        return
    output.print_table(_alerts_table(rows, config))


def _alerts_table(rows: list[tuple[Alert, Borrower | None]], config: Config) -> output.Table:
    """The alerts for people, in [watcher] language: headers, severities, statuses, kinds, sources."""
    from watcher.labels import ALERT_KIND_LABEL, ALERT_STATUS_LABEL, ALERTS_HEADERS
    from watcher.render import SEVERITY_LABEL

    language = config.watcher.language
    header = dict(zip(ALERTS_HEADERS[Language.EN], ALERTS_HEADERS[language], strict=True))
    table = output.table(
        *ALERTS_HEADERS[language],
        text=[header[c] for c in ("borrower", "handled by", "note")],
        keep=[header[c] for c in ("id", "severity", "status", "kind")],
        drop_first=[header[c] for c in ("source", "kind", "handled by", "status", "note")],
    )
    for alert, borrower in rows:
        handled = alert.closed_by or alert.acknowledged_by or ""
        source = config.source_display_name(alert.source, language)
        kind = ALERT_KIND_LABEL[language].get(AlertKind(alert.kind), alert.kind)
        table.add_row(
            str(alert.id),
            when(alert.created_at, config.watcher.zone),
            SEVERITY_LABEL[language].get(Severity(alert.severity), alert.severity),
            ALERT_STATUS_LABEL[language].get(AlertStatus(alert.status), alert.status),
            kind,
            f"{borrower.id} {borrower.name}" if borrower else f"{kind}: {source}",
            source,
            handled,
            alert.note or "",
        )
    return table


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
            view = alert_view(
                session,
                alert_id,
                window_days=config.rules.window.days,
                source_name=config.source_display_name,
            )
        except KeyError:
            raise fail(f"no alert #{alert_id}", 1) from None
        alert = session.get(models.Alert, alert_id)
        assert alert is not None
    reader = language or config.watcher.language
    rendered = render_alert(view, reader, zone=config.watcher.zone)
    echo(rendered.title)
    for line in rendered.body.splitlines():
        echo(line)
    for line in _handling(alert, reader, config.watcher.zone):
        echo(line)


def _handling(alert: Alert, language: Language, zone: tzinfo) -> list[str]:
    """How the alert has been handled, in ``language``: its status, who and when, and the note."""
    from watcher.labels import ALERT_HANDLING, ALERT_STATUS_LABEL

    words = ALERT_HANDLING[language]
    status = ALERT_STATUS_LABEL[language].get(AlertStatus(alert.status), alert.status)
    line = words["status"].format(status=status)
    by, at = (
        (alert.closed_by, alert.closed_at)
        if alert.closed_by
        else (alert.acknowledged_by, alert.acknowledged_at)
    )
    if by:
        line += words["by"].format(by=by, at=when(at, zone) or "–")
    lines = [line]
    if alert.note:
        lines.extend(words["note"].format(note=note) for note in alert.note.splitlines() if note.strip())
    return lines


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
