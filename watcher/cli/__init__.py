"""The command line (``watcher [--config PATH] COMMAND``); the contract is in README.md.

One module per command group; :mod:`watcher.cli.base` holds what they share (``--config``, exit codes,
:func:`~watcher.cli.base.with_store`). The commands are registered here, in the order ``--help`` lists
them. Exit codes: 0 success, 1 when some of the work failed, 2 for usage and configuration errors.
"""

from __future__ import annotations

import typer

from watcher.cli import (
    alerts,
    borrowers,
    check,
    connections,
    console,
    db,
    demo,
    history,
    init,
    notify,
    run,
    signals,
    status,
    tokens,
)
from watcher.cli.base import HELP_MARKUP, main_options
from watcher.output import HistoryFormat, print_history

__all__ = ["HistoryFormat", "app", "main", "print_history"]

app = typer.Typer(
    help="Borrower Watcher: watch company registries for changes in the bank's borrowers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
)
app.callback()(main_options)
app.command()(init.init)
app.command()(check.check)
app.command()(history.history)
app.command()(run.run)
app.command()(status.status)
app.command()(console.serve)
app.command()(demo.demo)
app.command()(connections.connections)
app.add_typer(borrowers.group, name="borrowers")
app.add_typer(db.group, name="db")
app.add_typer(alerts.group, name="alerts")
app.add_typer(notify.group, name="notify")
app.add_typer(console.users, name="users")
app.add_typer(signals.group, name="signals")
app.add_typer(tokens.group, name="tokens")


def main() -> None:
    app()
