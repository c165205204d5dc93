"""Every ``--help`` page shows its texts as written (issue 14, point 11).

Help texts name config tables in square brackets (``[officers.<id>]``, ``[console] host``): they
must appear literally, never be swallowed as rich markup, and flags are flags, not ``<bool>``.
The pages are rendered by the real app through ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from watcher.cli import app

WIDE = 240
RUNNER = CliRunner(env={"COLUMNS": str(WIDE), "TERMINAL_WIDTH": str(WIDE)})
BRACKETED = re.compile(r"\[[^\[\]]*\]")
SWALLOWED_GAP = re.compile(r"[a-z,;:]  +[a-z]")
"""Two spaces inside a sentence, where markup between two words was swallowed ("The  this")."""


def _commands(command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _texts(command) -> list[str]:
    """The command's own help and every parameter's help, as written in the source."""
    texts = [command.help or ""]
    texts += [getattr(param, "help", None) or "" for param in command.params]
    return [text for text in texts if text.strip()]


def _flat(text: str) -> str:
    """Whitespace collapsed, and a word the help formatter broke after its hyphen joined again."""
    return " ".join(re.sub(r"-\n\s*", "-", text).split())


def _page(path: tuple[str, ...]) -> str:
    result = RUNNER.invoke(app, [*path, "--help"], terminal_width=WIDE, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_and_group_is_walked():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "users", "users add", "alerts", "alerts ack", "signals retry", "borrowers import"} <= paths
    assert any(BRACKETED.search(text) for _, command in COMMANDS for text in _texts(command))


@pytest.mark.parametrize(
    ("path", "command"), [pytest.param(*item, id=" ".join(("watcher", *item[0]))) for item in COMMANDS]
)
def test_help_page_shows_every_text_literally(path: tuple[str, ...], command):
    page = _page(path)
    flat = _flat(page)
    for text in _texts(command):
        for bracketed in BRACKETED.findall(text):
            assert _flat(bracketed) in flat, (bracketed, page)
        assert _flat(text) in flat, (text, page)
    assert "<bool>" not in page, page
    gaps = [line for line in page.splitlines() if SWALLOWED_GAP.search(line.strip())]
    assert not gaps, gaps


def test_users_add_names_the_officers_table():
    page = _page(("users", "add"))
    assert "The [officers.<id>] this officer is (role officer)." in _flat(page)
    assert re.search(r"--password-stdin\s+Read the password", page), page
