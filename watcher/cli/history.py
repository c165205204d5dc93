"""``watcher history``: the change history, filtered, as a table, CSV or JSON lines."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated

import typer

from watcher.cli.base import NO_SECRETS, fail, load, with_store
from watcher.output import HistoryFormat, print_history


def history(
    borrower: Annotated[
        list[str] | None, typer.Option("--borrower", help="Only this borrower (repeatable).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only changes detected on or after this date (YYYY-MM-DD, in [watcher] timezone)."),
    ] = None,
    category: Annotated[list[str] | None, typer.Option(help="Only this category (repeatable).")] = None,
    output_format: Annotated[
        HistoryFormat, typer.Option("--format", help="table, csv or jsonl")
    ] = HistoryFormat.table,
) -> None:
    """The change history, oldest first (the table in [watcher] language; csv and jsonl as stored)."""
    from watcher.store import history as query_history

    _check_categories(category or ())
    config = load(NO_SECRETS)
    since_at = _since(since, config.watcher.zone) if since else None
    with with_store(config) as store, store.session() as session:
        rows = query_history(session, borrower_ids=borrower or (), since=since_at, categories=category or ())
    print_history(rows, output_format, config.watcher.zone, config.watcher.language)


def _since(since: str, zone: tzinfo) -> datetime:
    """``--since`` as a moment: a date (its midnight) or a time, in ``zone`` unless it names its own."""
    try:
        since_at = datetime.fromisoformat(since)
    except ValueError:
        raise fail(f"--since {since!r}: expected a date like 2026-01-31") from None
    return since_at if since_at.tzinfo else since_at.replace(tzinfo=zone)


def _check_categories(categories: list[str] | tuple[()]) -> None:
    from watcher.record import Category

    known = {c.value for c in Category}
    bad = sorted(set(categories) - known)
    if bad:
        raise fail(f"--category {', '.join(bad)}: unknown (known: {', '.join(sorted(known))})")
