"""The starter config, shipped as ``starter.toml`` in this package: every key with its default and why.

``watcher init`` writes it with the example source, notifier and officer tables commented out, so the
file loads as written (the examples name environment variables and sources a new install lacks);
``config.example.toml`` in the repository is the same file as shipped, with the examples live.
"""

from __future__ import annotations

import re
from importlib.resources import files

_EXAMPLE_TABLE = re.compile(r"\[(sources|notifiers|officers)\.")


def _commented_from_first_example(text: str) -> str:
    """``text`` with every line from the first example table on commented out (comments stay as they are)."""
    lines = text.splitlines(keepends=True)
    first = next((number for number, line in enumerate(lines) if _EXAMPLE_TABLE.match(line)), len(lines))
    tail = [line if not line.strip() or line.startswith("#") else f"# {line}" for line in lines[first:]]
    return "".join(lines[:first] + tail)


EXAMPLE_CONFIG: str = files(__package__).joinpath("starter.toml").read_text(encoding="utf-8")
"""The starter with its examples live: the content of ``config.example.toml``, documenting every key."""

STARTER_CONFIG: str = _commented_from_first_example(EXAMPLE_CONFIG)
"""What ``watcher init`` writes: loads as is; the source, notifier and officer examples are commented."""
