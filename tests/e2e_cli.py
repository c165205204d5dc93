"""The command line as the end-to-end tests drive it: one config, a borrowers file imported, `check`
and `history --format jsonl` read back (shared by the Chinese, UK and French end-to-end tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from watcher.cli import app

Cli = Callable[..., Result]


def importing_cli(config: Path, borrowers: Path) -> Cli:
    """``watcher --config CONFIG …`` as a function, after the borrowers file has been imported."""
    runner = CliRunner()

    def cli(*args: str) -> Result:
        return runner.invoke(app, ["--config", str(config), *args], catch_exceptions=False)

    imported = cli("borrowers", "import", str(borrowers))
    assert imported.exit_code == 0, imported.output
    return cli


def events(cli: Cli) -> list[dict]:
    """The change history as `watcher history --format jsonl` writes it."""
    result = cli("history", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def check(cli: Cli, *, ok: bool = True) -> str:
    """`watcher check`, which must succeed (``ok``) or fail; its output."""
    result = cli("check")
    assert (result.exit_code == 0) is ok, result.output
    return result.output
