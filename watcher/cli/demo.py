"""``watcher demo``: the real pipeline on bundled sample data, offline (see :mod:`watcher.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watcher.cli.base import database_errors, fail
from watcher.vocabulary import Language


def demo(
    language: Annotated[str, typer.Option(help="zh-CN or en")] = Language.ZH_CN.value,
    keep: Annotated[Path | None, typer.Option(help="Keep the demo database in this folder.")] = None,
) -> None:
    """Run the real pipeline on bundled sample data (three rounds of registry changes), offline."""
    from watcher.demo import run_demo

    if language not in tuple(Language):
        raise fail(f"--language {language!r}: expected zh-CN or en")
    with database_errors(None):
        run_demo(language=Language(language), keep=keep)
