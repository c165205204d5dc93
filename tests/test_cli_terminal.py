"""`watcher check` shows a progress bar on an interactive terminal and plain lines when piped."""

from __future__ import annotations

import os
import pty
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
