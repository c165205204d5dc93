"""``watcher connections``: which watched parties share people or companies, from the stored
portfolio index (``watcher db reindex`` rebuilds it)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from watcher.cli.base import NO_SECRETS, fail, load, with_store
from watcher.output import echo, echo_document, echo_json, print_table, table

if TYPE_CHECKING:
    from watcher.portfolio_graph import ConnectionReport
    from watcher.vocabulary import Language


class ConnectionsFormat(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"


def connections(
    party: Annotated[
        str | None, typer.Option("--party", help="Only this party's group and connections (its id).")
    ] = None,
    output_format: Annotated[
        ConnectionsFormat, typer.Option("--format", help="table, json or dot (Graphviz input)")
    ] = ConnectionsFormat.table,
) -> None:
    """Groups of watched parties linked by the same people or companies (strong links only) and each
    connection: the person or company, the roles on both sides, how the link was established.
    Links by equal names alone are listed as possible, never grouped. Inactive parties are left out.
    The table is in [watcher] language."""
    from watcher.models import Borrower
    from watcher.party_ties import load_group, load_index
    from watcher.portfolio_graph import connection_report, report_dot, report_json

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        if party is not None:
            borrower = session.get(Borrower, party)
            if borrower is None:
                raise fail(f"--party {party!r}: no such borrower")
            if not borrower.active:
                raise fail(f"--party {party!r}: the borrower is inactive (its connections are not shown)")
            index = load_group(session, party)
        else:
            index = load_index(session)
    report = connection_report(index, party)
    if output_format is ConnectionsFormat.json:
        echo_json(report_json(report), indent=2)
    elif output_format is ConnectionsFormat.dot:
        echo_document(report_dot(report, config.watcher.language))
    else:
        _print_report(report, config.watcher.language)


def _print_report(report: ConnectionReport, language: Language) -> None:
    from watcher.labels import CONNECTION_HEADERS, CONNECTION_WORDS, GROUP_HEADERS, WORDS
    from watcher.portfolio_graph import party_label, row_cells

    words = CONNECTION_WORDS[language]
    echo(words["groups"])
    if report.groups:
        groups = table(
            *GROUP_HEADERS[language], text=GROUP_HEADERS[language][2:], keep=GROUP_HEADERS[language][:2]
        )
        for number, group in enumerate(report.groups, start=1):
            groups.add_row(number, len(group), WORDS[language]["list"].join(party_label(p) for p in group))
        print_table(groups)
    else:
        echo(words["no_groups"])
    echo()
    echo(words["connections"])
    if not report.connections:
        echo(words["no_connections"])
        return
    headers = CONNECTION_HEADERS[language]
    rows = table(*headers, text=headers[:3], drop_first=(headers[4], headers[3]))
    for row in report.connections:
        rows.add_row(*row_cells(row, language))
    print_table(rows)
