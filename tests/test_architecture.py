"""The house rules of docs/architecture.md that code review alone would let slip."""

from __future__ import annotations

import subprocess
import sys

PURE_CORE = (
    "watcher.record",
    "watcher.normalize",
    "watcher.diff",
    "watcher.rules",
    "watcher.identifiers",
    "watcher.render",
    "watcher.presentation",
    "watcher.change_line",
    "watcher.risk_lines",
    "watcher.borrower_rows",
    "watcher.change",
    "watcher.listing_diff",
    "watcher.text_clean",
    "watcher.quantities",
    "watcher.labels",
    "watcher.connections",
    "watcher.connected",
    "watcher.redaction",
    "watcher.portfolio_graph",
)
IO_MODULES = (
    "httpx",
    "sqlalchemy",
    "sqlmodel",
    "apprise",
    "alembic",
    "apscheduler",
    "bs4",
    "socket",
    "sources",
)


def test_pure_core_imports_nothing_that_does_io():
    probe = (
        "import sys\n"
        f"for name in {PURE_CORE!r}: __import__(name)\n"
        f"loaded = sorted(m for m in {IO_MODULES!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_command_line_start_up_does_not_import_heavy_modules():
    """`watcher --help` must stay quick: the database, HTTP and notification stacks load on use."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from watcher.cli import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "print(','.join(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'httpx', 'apprise', 'alembic') "
        "if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_layering_contracts_hold():
    """import-linter's contracts in pyproject.toml: the pure core does no I/O and knows nothing above
    it, sources and notifiers never reach the layers above them, no import cycle inside watcher."""
    from pathlib import Path

    lint_imports = Path(sys.executable).with_name("lint-imports")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([str(lint_imports)], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
