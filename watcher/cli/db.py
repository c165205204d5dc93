"""``watcher db upgrade|prune|reindex``: create or upgrade the schema (history is never dropped);
remove the data of borrowers deactivated longer than ``[watcher] retention``; rebuild the portfolio
index from the latest snapshots."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from watcher.cli.base import CLI_ACTOR, HELP_MARKUP, NO_SECRETS, database_errors, load, with_store
from watcher.output import echo

group = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


@group.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema (history is never dropped)."""
    config = load(NO_SECRETS)
    with with_store(config, ensure_schema=False) as store, database_errors(config.database.url, code=2):
        before, after = store.upgrade()
    if before == after:
        echo(f"database is up to date (revision {after})")
    else:
        echo(f"database upgraded from {before or 'empty'} to {after}")


@group.command("prune")
def db_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be removed.")] = False,
    by: Annotated[str, typer.Option("--by", help="Who prunes (kept in the audit trail).")] = CLI_ACTOR,
) -> None:
    """Remove every row about borrowers deactivated longer than [watcher] retention (default 10y):
    the borrower, snapshots with their raw evidence, change events, key-person occasions, alerts and
    their deliveries. The audit log is kept, with one audit row per borrower pruned. Prints the
    counts per borrower; --dry-run prints them and removes nothing."""
    from watcher.lifecycle import prune
    from watcher.models import utcnow

    config = load(NO_SECRETS)
    retention = config.watcher.retention
    with with_store(config) as store, store.transaction() as session:
        pruned = prune(session, retention=retention, now=utcnow(), actor=by, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for counts in pruned:
        echo(f"{verb} {counts.line()}")
    kept = _duration_text(retention)
    if not pruned:
        echo(f"no borrower has been inactive longer than the retention of {kept}: nothing to remove")
        return
    echo(
        f"{len(pruned)} borrower(s) inactive longer than the retention of {kept}"
        + (" (dry run: nothing removed)" if dry_run else ": data removed")
    )


@group.command("reindex")
def db_reindex() -> None:
    """Rebuild the portfolio index (who each borrower's record names, in which role) from every
    borrower's latest snapshot. Checks keep it current; this fills it on a database that predates
    it (watcher run does so once by itself), or repairs it. Borrowers whose source is no longer
    configured keep their entries as they were."""
    from watcher.models import utcnow
    from watcher.reindex import reindex, tie_scopes

    config = load(NO_SECRETS)
    scopes = tie_scopes(config)
    with with_store(config) as store:
        report = reindex(store, scopes, now=utcnow())
    echo(f"portfolio index rebuilt: {report.parties} borrower(s), {report.ties} tie(s)")
    for source, count in sorted(report.unconfigured.items()):
        echo(f"source {source!r} is not configured: {count} borrower(s) left as they were")


def _duration_text(value: timedelta) -> str:
    """A retention as it is usually written: in years when it is whole years, else in days."""
    from watcher.units import YEAR_SECONDS, format_duration

    years, rest = divmod(int(value.total_seconds()), YEAR_SECONDS)
    return f"{years}y" if years and not rest else format_duration(value)
