"""``watcher db upgrade``: create or upgrade the schema; history is never dropped."""

from __future__ import annotations

import typer

from watcher.cli.base import HELP_MARKUP, NO_SECRETS, database_errors, load, with_store
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
