"""``watcher signals retry``: try a vendor signal again now, once the account has bought it."""

from __future__ import annotations

from typing import Annotated

import typer

from watcher.cli.base import HELP_MARKUP, NO_SECRETS, fail, load, with_store
from watcher.output import echo
from watcher.record import Signal

group = typer.Typer(
    help="Vendor signals a source's account could not fetch.",
    no_args_is_help=True,
    rich_markup_mode=HELP_MARKUP,
)


@group.command("retry")
def signals_retry(
    source: Annotated[str, typer.Argument(help="The source, as named in [sources.NAME].")],
    signal: Annotated[
        list[Signal] | None,
        typer.Argument(help="The signals to try again (all of the source's unavailable ones when none)."),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who asks (kept in the audit trail).")] = "operator",
) -> None:
    """Forget that SOURCE could not fetch these signals, so the next checks try them again (a
    running daemon takes it up within 5 minutes) instead of waiting out the 24-hour retry."""
    from watcher.models import utcnow  # the database layer loads only for commands that use it
    from watcher.store import retry_unavailable_signals

    config = load(NO_SECRETS)
    if source not in config.sources:
        configured = ", ".join(sorted(config.sources)) or "none"
        raise fail(f"unknown source {source!r} (configured: {configured})", code=2)
    wanted = [item.value for item in signal or ()]
    with with_store(config) as store, store.transaction() as session:
        forgotten = retry_unavailable_signals(session, source, wanted, actor=by, now=utcnow())
    if not forgotten:
        echo(f"{source}: no signal marked unavailable{' among ' + ', '.join(wanted) if wanted else ''}")
        return
    echo(f"{source}: will try {', '.join(forgotten)} again at the next checks")
