"""``watcher borrowers import|list|deactivate|reactivate``: the watched borrowers, from the bank's CSV."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watcher import output
from watcher.cli.base import CLI_ACTOR, HELP_MARKUP, ListFormat, fail, load, with_store
from watcher.output import echo, when

if TYPE_CHECKING:
    from sqlmodel import Session

    from watcher.importer import ParsedBorrowers, RowProblem
    from watcher.lifecycle import LifecycleChange
    from watcher.models import Borrower

group = typer.Typer(help="Manage the watched borrowers.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


@group.command("import")
def borrowers_import(
    file: Annotated[Path, typer.Argument(help="CSV: id,name,source,registry_id[,...]")],
    deactivate_missing: Annotated[
        bool,
        typer.Option(
            "--deactivate-missing",
            help="Deactivate the active borrowers the file does not list (not done when a row is rejected).",
        ),
    ] = False,
) -> None:
    """Upsert borrowers from a CSV file; bad rows are reported and skipped (exit 1).

    A registry entity that another borrower (in the file or the database) already has is imported with
    a warning. Warnings and rejections are printed in line order. Borrowers the file does not list are
    left as they are, unless --deactivate-missing; an inactive borrower the file lists stays inactive
    (with a warning) until `watcher borrowers reactivate`.
    """
    from watcher.importer import (
        BorrowerFileError,
        parse_borrowers_csv,
        registry_id_warnings,
        upsert_borrowers,
    )
    from watcher.pipeline import build_sources

    config = load()
    sources = build_sources(config)
    try:
        parsed = parse_borrowers_csv(file, sources=sources, officers=list(config.officers))
    except BorrowerFileError as error:
        raise fail(str(error)) from None
    with with_store(config) as store, store.transaction() as session:
        warnings = [*parsed.warnings, *registry_id_warnings(session, parsed)]
        warnings += _inactive_warnings(session, parsed)
        reports = [(problem.line, f"warning: {problem.message}") for problem in warnings]
        reports += [(problem.line, f"rejected: {problem.message}") for problem in parsed.rejected]
        for line, report in sorted(reports, key=lambda item: item[0]):
            echo(f"{file}: line {line}: {report}", err=True)
        counts = upsert_borrowers(session, parsed.rows, actor=CLI_ACTOR)
        if deactivate_missing:
            _deactivate_missing(session, file, parsed)
    echo(
        f"imported {len(parsed.rows)} borrower(s): {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged; {len(parsed.rejected)} rejected"
    )
    if parsed.rejected:
        raise typer.Exit(1)


def _inactive_warnings(session: Session, parsed: ParsedBorrowers) -> list[RowProblem]:
    """A warning for each row of an inactive borrower: its data is updated, but it stays unwatched."""
    from watcher.importer import RowProblem
    from watcher.lifecycle import inactive_among

    return [
        RowProblem(
            parsed.lines[borrower.id],
            f"borrower {borrower.id!r} is inactive (since {when(borrower.deactivated_at)}); updated but "
            f"not watched: `watcher borrowers reactivate {borrower.id}` watches it again",
        )
        for borrower in inactive_among(session, [row.id for row in parsed.rows])
    ]


def _deactivate_missing(session: Session, file: Path, parsed: ParsedBorrowers) -> None:
    """Deactivate the active borrowers ``file`` does not list, each named; none when a row was
    rejected, since a rejected row's borrower would look missing."""
    from watcher.lifecycle import active_ids_not_in, deactivate
    from watcher.models import utcnow

    if parsed.rejected:
        rejected = len(parsed.rejected)
        echo(f"{file}: --deactivate-missing: nothing deactivated, as {rejected} row(s) were rejected")
        return
    missing = active_ids_not_in(session, [row.id for row in parsed.rows])
    reason = f"not in {file.name}"
    for borrower in deactivate(session, missing, actor=CLI_ACTOR, now=utcnow(), reason=reason).changed:
        echo(f"deactivated {borrower.id} ({reason})")


@group.command("deactivate")
def borrowers_deactivate(
    ids: Annotated[
        list[str], typer.Argument(help="The borrowers no longer to watch (loan repaid).", metavar="ID...")
    ],
    by: Annotated[str, typer.Option("--by", help="Who decided (kept in the audit trail).")] = CLI_ACTOR,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit trail).")] = None,
) -> None:
    """Stop watching borrowers: no checks, no alerts; history and evidence are kept for
    [watcher] retention, then `watcher db prune` removes them. Open alerts stay open and alerts
    already raised are still delivered. Exit 1 if an id is unknown (the others are deactivated)."""
    from watcher.lifecycle import deactivate
    from watcher.models import utcnow

    with with_store(load()) as store, store.transaction() as session:
        result = deactivate(session, ids, actor=by, now=utcnow(), reason=reason)
    for borrower in result.changed:
        echo(f"deactivated {borrower.id}")
    for borrower in result.already:
        echo(f"{borrower.id}: already inactive since {when(borrower.deactivated_at)}")
    _report_unknown(result)


@group.command("reactivate")
def borrowers_reactivate(
    ids: Annotated[list[str], typer.Argument(help="The borrowers to watch again.", metavar="ID...")],
    by: Annotated[str, typer.Option("--by", help="Who decided (kept in the audit trail).")] = CLI_ACTOR,
) -> None:
    """Watch deactivated borrowers again, checked at once. The first check compares with the last
    stored snapshot and alerts on whatever changed while they were inactive. Exit 1 if an id is
    unknown (the others are reactivated)."""
    from watcher.lifecycle import reactivate
    from watcher.models import utcnow

    with with_store(load()) as store, store.transaction() as session:
        result = reactivate(session, ids, actor=by, now=utcnow())
    for borrower in result.changed:
        echo(f"reactivated {borrower.id}: due for a check now")
    for borrower in result.already:
        echo(f"{borrower.id}: already active")
    _report_unknown(result)


def _report_unknown(result: LifecycleChange) -> None:
    for borrower_id in result.unknown:
        echo(f"watcher: unknown borrower id {borrower_id!r}", err=True)
    if result.unknown:
        raise typer.Exit(1)


@group.command("list")
def borrowers_list(
    output_format: Annotated[ListFormat, typer.Option("--format", help="table or json")] = ListFormat.table,
) -> None:
    """List the watched borrowers."""
    from watcher.store import borrowers

    with with_store(load()) as store, store.session() as session:
        rows = borrowers(session)
    if output_format is ListFormat.json:
        output.echo_json([_as_json(b) for b in rows], indent=2)
        return
    table = output.table(
        "id", "name", "source", "registry_id", "officer", "tags", "last success", "status", "state"
    )
    for b in rows:
        table.add_row(
            b.id,
            b.name,
            b.source,
            b.registry_id,
            b.officer or "",
            ",".join(b.tag_list),
            when(b.last_success_at),
            _health(b),
            "active" if b.active else f"inactive since {when(b.deactivated_at)}",
        )
    output.print_table(table)


def _as_json(borrower: Borrower) -> dict[str, Any]:
    from datetime import timedelta

    from watcher.units import format_duration

    interval = borrower.interval_seconds
    return {
        "id": borrower.id,
        "name": borrower.name,
        "source": borrower.source,
        "registry_id": borrower.registry_id,
        "officer": borrower.officer,
        "tags": borrower.tag_list,
        "interval": format_duration(timedelta(seconds=interval)) if interval else None,
        "legal_rep_on_file": borrower.legal_rep_on_file,
        "active": borrower.active,
        "deactivated_at": borrower.deactivated_at.isoformat() if borrower.deactivated_at else None,
    }


def _health(borrower: Borrower) -> str:
    """The status column: not checked yet, awaiting confirmation, failing (how often, why) or ok."""
    if not borrower.last_checked_at:
        return "not checked yet"
    if borrower.pending_since is not None:
        return f"awaiting confirmation since {when(borrower.pending_since)}"
    if borrower.consecutive_failures:
        return f"failing ×{borrower.consecutive_failures}: {borrower.last_error_kind}"
    return "ok"
