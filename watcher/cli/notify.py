"""``watcher notify test``: a test message to every configured channel, each result on its own line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from watcher.cli.base import HELP_MARKUP, fail, load
from watcher.output import echo
from watcher.vocabulary import SecretScope

if TYPE_CHECKING:
    from watcher.config import Config

group = typer.Typer(help="Notification channels.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


@group.command("test")
def notify_test(
    notifier: Annotated[
        str | None, typer.Option("--notifier", help="Only this notifier (or officer id).")
    ] = None,
) -> None:
    """Send a test message to every target URL and report each one's result (exit 1 if any failed)."""
    import asyncio

    from watcher.notify_test import run_notify_test

    # One notifier's test needs that notifier's variables only (an officer may share its id).
    config = load({SecretScope.CHANNELS}, channels=None if notifier is None else [notifier])
    targets = _targets(config, notifier)
    results = asyncio.run(run_notify_test(config, targets))
    for result in results:
        mark = "ok" if result.ok else "FAILED"
        echo(f"{result.target} {result.channel}: {mark}{': ' + result.detail if result.detail else ''}")
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def _targets(config: Config, notifier: str | None) -> list[str]:
    """The targets to test: all of them, or the one ``--notifier`` names; none is a usage error."""
    from watcher.notify_test import probe_targets

    targets = probe_targets(config)
    if notifier:
        targets = [t for t in targets if t.split(":", 1)[1] == notifier]
        if not targets:
            known = ", ".join(sorted([*config.notifiers, *config.officers])) or "none configured"
            raise fail(f"--notifier {notifier!r}: no such notifier or officer (known: {known})")
    if not targets:
        raise fail("no notifiers or officers with urls are configured")
    return targets
