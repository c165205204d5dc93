"""`watcher check` shows a progress bar on an interactive terminal and plain lines when piped."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMO_DATA = Path(__file__).parents[1] / "watcher" / "demo_data"
CONFIG = """\
[database]
url = "sqlite:///watcher.db"
[sources.no]
type = "replay"
format = "brreg"
folder = "feed"
"""
CSV = (
    "id,name,source,registry_id\nno1,FJORDLYS SJØMAT AS,no,927140004\nno2,HARDANGER BETONG AS,no,974760673\n"
)


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    (tmp_path / "watcher.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "borrowers.csv").write_text(CSV, encoding="utf-8")
    for orgnr in ("927140004", "974760673"):
        shutil.copytree(DEMO_DATA / "round1" / orgnr, tmp_path / "feed" / orgnr)
    subprocess.run(
        [sys.executable, "-m", "watcher", "borrowers", "import", "borrowers.csv"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return tmp_path


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal, as an operator at a console would."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm-256color"}
    process = subprocess.Popen(args, cwd=cwd, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal(deployment: Path):
    code, output = run_in_terminal([sys.executable, "-m", "watcher", "check"], deployment)
    assert code == 0
    assert "checking" in output and "━" in output
    assert "checked 2: 2 ok" in output


def test_plain_lines_when_piped(deployment: Path):
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check"], cwd=deployment, capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "━" not in result.stdout and "\x1b[" not in result.stdout
    assert "no1: baseline stored" in result.stdout.splitlines()
    assert "no2: baseline stored" in result.stdout.splitlines()


def test_untrusted_text_on_a_terminal_is_shown_inert(deployment: Path):
    """Markup and escape sequences from the CSV and registries neither crash the progress bar or the
    table nor act on the terminal (issue 11, point 13)."""
    hostile = (
        "id,name,source,registry_id\n"
        '"evil[/x]","Broken [/bar] markup \x1b]0;pwned\x07\x1b[2J\u009b2J AS",no,912345602\n'
    )
    (deployment / "hostile.csv").write_text(hostile, encoding="utf-8")
    imported = subprocess.run(
        [sys.executable, "-m", "watcher", "borrowers", "import", "hostile.csv"],
        cwd=deployment,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr

    code, output = run_in_terminal([sys.executable, "-m", "watcher", "check"], deployment)
    assert code == 1, output  # evil[/x] has no saved responses: its check fails, printed above the bar
    assert "Traceback" not in output and "evil[/x]: " in output
    listed_code, listed = run_in_terminal([sys.executable, "-m", "watcher", "borrowers", "list"], deployment)
    assert listed_code == 0, listed
    assert "[/bar]" in listed and "evil[/x]" in listed  # shown as they are (the name column wraps)
    for screen in (output, listed):
        assert "\x1b]" not in screen and "\x07" not in screen and "\x1b[2J" not in screen
        assert not re.search("[\u0080-\u009f]", screen)
