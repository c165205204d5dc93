"""``watcher borrowers import|list|deactivate|reactivate``: the watched borrowers, from the bank's CSV or XLSX
file, and back."""

from __future__ import annotations

import sys
from datetime import tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watcher import output
from watcher.cli.base import CLI_ACTOR, HELP_MARKUP, NO_SECRETS, fail, load, with_store
from watcher.output import echo, when
from watcher.vocabulary import PartyRole

if TYPE_CHECKING:
    from sqlmodel import Session

    from watcher.importer import ParsedBorrowers, RowProblem
    from watcher.lifecycle import LifecycleChange
    from watcher.models import Borrower


class BorrowersFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


FILE_FORMATS = (BorrowersFormat.csv, BorrowersFormat.xlsx)
"""The formats of the borrowers file itself: what they list, ``borrowers import`` reads back unchanged."""

group = typer.Typer(help="Manage the watched borrowers.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


@group.command("import")
def borrowers_import(
    file: Annotated[
        Path, typer.Argument(help="CSV, or XLSX (its first sheet): id,name,source,registry_id[,...]")
    ],
    deactivate_missing: Annotated[
        bool,
        typer.Option(
            "--deactivate-missing",
            help="Deactivate the active borrowers the file does not list (not done when a row is rejected).",
        ),
    ] = False,
) -> None:
    """Upsert borrowers from a CSV or XLSX file; bad rows are reported and skipped (exit 1).

    An XLSX workbook is known by its content; its first sheet is read, row 1 the header, and problems
    name its row numbers as Excel shows them.

    A registry entity that another borrower (in the file or the database) already has is imported with
    a warning. Warnings and rejections are printed in line order. Borrowers the file does not list are
    left as they are, unless --deactivate-missing; an inactive borrower the file lists stays inactive
    (with a warning) until `watcher borrowers reactivate`.
    """
    from watcher.importer import (
        BorrowerFileError,
        parse_borrowers_file,
        registry_id_warnings,
        reject_bad_secures,
        upsert_borrowers,
    )
    from watcher.pipeline import build_sources

    config = load(NO_SECRETS)
    sources = build_sources(config)
    try:
        parsed = parse_borrowers_file(file, sources=sources, officers=list(config.officers))
    except BorrowerFileError as error:
        raise fail(str(error)) from None
    with with_store(config) as store, store.transaction() as session:
        reject_bad_secures(session, parsed)
        warnings = [*parsed.warnings, *registry_id_warnings(session, parsed)]
        warnings += _inactive_warnings(session, parsed, config.watcher.zone)
        reports = [(problem.line, f"warning: {problem.message}") for problem in warnings]
        reports += [(problem.line, f"rejected: {problem.message}") for problem in parsed.rejected]
        for line, report in sorted(reports, key=lambda item: item[0]):
            echo(f"{file}: {parsed.unit} {line}: {report}", err=True)
        counts = upsert_borrowers(session, parsed.rows, actor=CLI_ACTOR)
        if deactivate_missing:
            _deactivate_missing(session, file, parsed)
        _follow_secured(session, parsed)
    echo(
        f"imported {len(parsed.rows)} borrower(s): {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged; {len(parsed.rejected)} rejected"
    )
    if parsed.rejected:
        raise typer.Exit(1)


def _inactive_warnings(session: Session, parsed: ParsedBorrowers, zone: tzinfo) -> list[RowProblem]:
    """A warning for each row of an inactive borrower: its data is updated, but it stays unwatched."""
    from watcher.importer import RowProblem
    from watcher.lifecycle import inactive_among

    return [
        RowProblem(
            parsed.lines[borrower.id],
            f"borrower {borrower.id!r} is inactive (since {when(borrower.deactivated_at, zone)}); "
            f"updated but not watched: `watcher borrowers reactivate {borrower.id}` watches it again",
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
    result = deactivate(session, missing, actor=CLI_ACTOR, now=utcnow(), reason=reason)
    for borrower in result.changed:
        echo(f"deactivated {borrower.id} ({reason})")
    _report_followers(result.followers)


def _follow_secured(session: Session, parsed: ParsedBorrowers) -> None:
    """Guarantors and pledgors of the file whose borrowers are all inactive stop being watched; those
    stopped that way whose borrowers are watched again resume."""
    from watcher.lifecycle import follow_secured
    from watcher.models import utcnow

    _report_followers(follow_secured(session, [row.id for row in parsed.rows], actor=CLI_ACTOR, now=utcnow()))


def _report_followers(followers: list[Borrower]) -> None:
    from watcher.lifecycle import WITH_BORROWERS

    for party in followers:
        if party.active:
            echo(f"reactivated {party.role} {party.id}: a borrower it secures is watched again")
        else:
            echo(f"deactivated {party.role} {party.id} ({WITH_BORROWERS})")


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

    config = load(NO_SECRETS)
    with with_store(config) as store, store.transaction() as session:
        result = deactivate(session, ids, actor=by, now=utcnow(), reason=reason)
    for borrower in result.changed:
        echo(f"deactivated {borrower.id}")
    _report_followers(result.followers)
    for borrower in result.already:
        echo(f"{borrower.id}: already inactive since {when(borrower.deactivated_at, config.watcher.zone)}")
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

    with with_store(load(NO_SECRETS)) as store, store.transaction() as session:
        result = reactivate(session, ids, actor=by, now=utcnow())
    for borrower in result.changed:
        echo(f"reactivated {borrower.id}: due for a check now")
    _report_followers(result.followers)
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
    output_format: Annotated[
        BorrowersFormat, typer.Option("--format", help="table, json, csv or xlsx")
    ] = BorrowersFormat.table,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the csv or xlsx to this file.")
    ] = None,
) -> None:
    """List the watched borrowers.

    csv and xlsx hold the columns of the borrowers file, in its order: `borrowers import` reads them back
    unchanged. xlsx is binary: it needs --output or a stdout that is not a terminal.
    """
    from watcher.store import borrowers, secured_ids

    if output_file is not None and output_format not in FILE_FORMATS:
        raise fail("--output writes --format csv or xlsx")
    if output_format is BorrowersFormat.xlsx and output_file is None and sys.stdout.isatty():
        raise fail(
            "--format xlsx writes a binary workbook: name a file with --output FILE or redirect stdout"
        )
    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        rows = borrowers(session)
        links = secured_ids(session)
    if output_format in FILE_FORMATS:
        _write_borrowers_file(rows, links, output_format, output_file)
        return
    if output_format is BorrowersFormat.json:
        output.echo_json([_as_json(b, links.get(b.id, ())) for b in rows], indent=2)
        return
    zone = config.watcher.zone
    table = output.table(
        "id",
        "name",
        "role",
        "source",
        "registry_id",
        "officer",
        "tags",
        "last success",
        "status",
        "state",
        text=("name", "tags", "status", "state", "role"),
        keep=("registry_id",),
        drop_first=("tags", "registry_id", "officer", "source", "last success"),
    )
    for b in rows:
        table.add_row(
            b.id,
            b.name,
            _role_cell(b, links.get(b.id, ())),
            b.source,
            b.registry_id,
            b.officer or "",
            ",".join(b.tag_list),
            when(b.last_success_at, zone),
            _health(b, zone),
            "active" if b.active else f"inactive since {when(b.deactivated_at, zone)}",
        )
    output.print_table(table)


def _role_cell(borrower: Borrower, secures: tuple[str, ...]) -> str:
    """``borrower``, ``guarantor of b-1, b-2`` (whom a guarantor or pledgor secures), or ``borrower,
    guarantees b-2`` (a borrower guaranteeing other borrowers)."""
    if not secures:
        return borrower.role
    if not PartyRole(borrower.role).secures:
        return f"{borrower.role}, guarantees {', '.join(secures)}"
    return f"{borrower.role} of {', '.join(secures)}"


def _write_borrowers_file(
    rows: list[Borrower],
    links: dict[str, tuple[str, ...]],
    output_format: BorrowersFormat,
    output_file: Path | None,
) -> None:
    """CSV or XLSX of the import's columns, formulas neutralised. A file gets a UTF-8 byte order mark
    so Excel reads Chinese names right; CSV on stdout has none, like ``watcher history``."""
    from watcher.importer import COLUMNS, file_record
    from watcher.spreadsheet import csv_rows, to_csv, to_xlsx

    records = [file_record(borrower, links.get(borrower.id, ())) for borrower in rows]
    if output_format is BorrowersFormat.csv and output_file is None:
        csv_rows(COLUMNS, records, sys.stdout)
        return
    if output_format is BorrowersFormat.csv:
        data = to_csv(COLUMNS, records)
    else:
        data = to_xlsx("borrowers", COLUMNS, records)
    if output_file is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        output_file.write_bytes(data)
    except OSError as error:
        raise fail(f"{output_file}: cannot write ({error.strerror or error})") from None


def _as_json(borrower: Borrower, secures: tuple[str, ...]) -> dict[str, Any]:
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
        "role": borrower.role,
        "secures": list(secures),
        "active": borrower.active,
        "deactivated_at": borrower.deactivated_at.isoformat() if borrower.deactivated_at else None,
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
