"""``watcher borrowers import|list``: the watched borrowers, from the bank's CSV."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watcher import output
from watcher.cli.base import CLI_ACTOR, HELP_MARKUP, ListFormat, fail, load, with_store
from watcher.output import echo, when

if TYPE_CHECKING:
    from watcher.models import Borrower

group = typer.Typer(help="Manage the watched borrowers.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


@group.command("import")
def borrowers_import(
    file: Annotated[Path, typer.Argument(help="CSV: id,name,source,registry_id[,...]")],
) -> None:
    """Upsert borrowers from a CSV file; bad rows are reported and skipped (exit 1).

    A registry entity that another borrower (in the file or the database) already has is imported with
    a warning. Warnings and rejections are printed in line order.
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
        reports = [(problem.line, f"warning: {problem.message}") for problem in warnings]
        reports += [(problem.line, f"rejected: {problem.message}") for problem in parsed.rejected]
        for line, report in sorted(reports, key=lambda item: item[0]):
            echo(f"{file}: line {line}: {report}", err=True)
        counts = upsert_borrowers(session, parsed.rows, actor=CLI_ACTOR)
    echo(
        f"imported {len(parsed.rows)} borrower(s): {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged; {len(parsed.rejected)} rejected"
    )
    if parsed.rejected:
        raise typer.Exit(1)


@group.command("list")
def borrowers_list(
    output_format: Annotated[ListFormat, typer.Option("--format", help="table or json")] = ListFormat.table,
) -> None:
    """List the watched borrowers."""
    from watcher.store import borrowers

    config = load()
    with with_store(config) as store, store.session() as session:
        rows = borrowers(session)
    if output_format is ListFormat.json:
        output.echo_json([_as_json(b) for b in rows], indent=2)
        return
    zone = config.watcher.zone
    table = output.table(
        "id",
        "name",
        "source",
        "registry_id",
        "officer",
        "tags",
        "last success",
        "status",
        text=("name", "tags", "status"),
        keep=("registry_id",),
        drop_first=("tags", "registry_id", "officer", "source", "last success"),
    )
    for b in rows:
        table.add_row(
            b.id,
            b.name,
            b.source,
            b.registry_id,
            b.officer or "",
            ",".join(b.tag_list),
            when(b.last_success_at, zone),
            _health(b, zone),
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
    }


def _health(borrower: Borrower, zone: tzinfo) -> str:
    """The status column: not checked yet, awaiting confirmation, failing (how often, why) or ok."""
    if not borrower.last_checked_at:
        return "not checked yet"
    if borrower.pending_since is not None:
        return f"awaiting confirmation since {when(borrower.pending_since, zone)}"
    if borrower.consecutive_failures:
        return f"failing ×{borrower.consecutive_failures}: {borrower.last_error_kind}"
    return "ok"
