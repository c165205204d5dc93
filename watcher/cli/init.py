"""``watcher init``: the commented starter config, where the operator asks for it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watcher.cli.base import fail
from watcher.output import echo


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("watcher.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config."""
    from watcher.config import STARTER_CONFIG

    if path.exists() and not force:
        raise fail(f"{path}: already exists (use --force to overwrite)")
    try:
        path.write_text(STARTER_CONFIG, encoding="utf-8")
    except OSError as error:
        raise fail(f"{path}: cannot write ({error.strerror or error})") from None
    echo(f"wrote {path}")
