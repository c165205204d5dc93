"""``watcher history``: the change history, filtered, as a table, CSV or JSON lines."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from watcher.cli.base import NO_SECRETS, fail, load, with_store
from watcher.output import HistoryFormat, print_history


def history(
    borrower: Annotated[
        list[str] | None, typer.Option("--borrower", help="Only this borrower (repeatable).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only changes detected on or after this date (YYYY-MM-DD).")
    ] = None,
    category: Annotated[list[str] | None, typer.Option(help="Only this category (repeatable).")] = None,
    output_format: Annotated[
        HistoryFormat, typer.Option("--format", help="table, csv or jsonl")
    ] = HistoryFormat.table,
) -> None:
    """The change history, oldest first (the table in [watcher] language; csv and jsonl as stored)."""
    from watcher.store import history as query_history

    since_at = _since(since) if since else None
    _check_categories(category or ())
    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        rows = query_history(session, borrower_ids=borrower or (), since=since_at, categories=category or ())
    print_history(rows, output_format, config.watcher.zone, config.watcher.language)


def _since(since: str) -> datetime:
    """``--since`` as a moment: a date or a time, UTC unless it names its zone."""
    from datetime import UTC

    try:
        since_at = datetime.fromisoformat(since)
    except ValueError:
        raise fail(f"--since {since!r}: expected a date like 2026-01-31") from None
    return since_at if since_at.tzinfo else since_at.replace(tzinfo=UTC)


def _check_categories(categories: list[str] | tuple[()]) -> None:
    from watcher.record import Category

    known = {c.value for c in Category}
    bad = sorted(set(categories) - known)
    if bad:
        raise fail(f"--category {', '.join(bad)}: unknown (known: {', '.join(sorted(known))})")
