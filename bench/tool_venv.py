"""Throw-away virtual environments for the tools a benchmark compares against or profiles with.

urlwatch and py-spy are not dependencies of the project: each goes into its own venv under a cache
folder (``$WATCHER_BENCH_CACHE``, else ``$XDG_CACHE_HOME/borrower-watcher-bench``, else
``~/.cache/borrower-watcher-bench``), installed once with pip and reused by later runs. Delete the
folder, or pass ``fresh=True``, to start again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_COMPLETE_MARKER = ".installed"


class ToolInstallError(RuntimeError):
    """pip could not install the tool (no network, no matching wheel, ...)."""


def cache_root() -> Path:
    explicit = os.environ.get("WATCHER_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "borrower-watcher-bench"


def ensure_tool(requirement: str, executable: str, *, fresh: bool = False, root: Path | None = None) -> Path:
    """The path of ``executable`` in a venv that has ``requirement`` installed (created when missing).

    A venv whose install did not finish lacks the marker file and is rebuilt rather than trusted.
    """
    folder = (root or cache_root()) / f"{_slug(requirement)}-venv"
    tool = folder / "bin" / executable
    if fresh or not (folder / _COMPLETE_MARKER).exists() or not tool.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        print(f"installing {requirement} into {folder} ...", file=sys.stderr, flush=True)
        _run([sys.executable, "-m", "venv", str(folder)], f"python -m venv {folder}")
        _run(
            [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             requirement],
            f"pip install {requirement}",
        )  # fmt: skip
        if not tool.exists():
            raise ToolInstallError(f"pip installed {requirement} but {tool} does not exist")
        (folder / _COMPLETE_MARKER).write_text(requirement + "\n", encoding="utf-8")
    return tool


def tool_version(tool: Path) -> str:
    """``tool --version``'s first line, e.g. ``urlwatch 2.29``."""
    result = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=False)
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "?"
    )


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: Location")]
        raise ToolInstallError(f"{what} failed (exit {result.returncode}): {' '.join(errors[-3:])}")


def _slug(requirement: str) -> str:
    return "".join(
        character if character.isalnum() or character in "._-" else "_" for character in requirement
    )
