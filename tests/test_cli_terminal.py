"""`watcher check` shows a progress bar on an interactive terminal and plain lines when piped; tables
fit the terminal (issue 14, point 10) and show times in the configured zone (point 1)."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watcher.cli import app
from watcher.labels import CATEGORY_LABEL, HISTORY_HEADERS
from watcher.record import Category
from watcher.vocabulary import Language

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
    return deploy(tmp_path)


def deploy(tmp_path: Path) -> Path:
    """Two Norwegian borrowers imported, their round-1 answers saved for the replay source."""
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


def run_in_terminal(args: list[str], cwd: Path, columns: int = 100) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal, as an operator at a console would."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
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


# -- tables that fit (issue 14) --------------------------------------------------------------------

WATCHER = [sys.executable, "-m", "watcher"]
STYLE = re.compile(r"\x1b\[[0-9;]*m")
DATE = re.compile(r"20\d\d-\d\d-\d\d")


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both borrowers checked twice, round 2 of the demo data changing them: a change history.
    Made once for the module; the tests only read it."""
    deployment = deploy(tmp_path_factory.mktemp("changed"))
    subprocess.run([*WATCHER, "check"], cwd=deployment, check=True, capture_output=True)
    for orgnr in ("927140004", "974760673"):
        shutil.rmtree(deployment / "feed" / orgnr)
        shutil.copytree(DEMO_DATA / "round2" / orgnr, deployment / "feed" / orgnr)
    subprocess.run([*WATCHER, "check", "--no-notify"], cwd=deployment, check=True, capture_output=True)
    return deployment


def piped(args: list[str], cwd: Path, config: str = "watcher.toml", **env: str) -> str:
    """What a command prints to a pipe (in-process: stdout is not a terminal), COLUMNS unset unless given."""
    environment: dict[str, str | None] = {"COLUMNS": None} | env
    result = CliRunner().invoke(app, ["--config", str(cwd / config), *args], env=environment)
    assert result.exit_code == 0, result.output
    return result.stdout


def history_events(cwd: Path) -> list[dict]:
    return [json.loads(line) for line in piped(["history", "--format", "jsonl"], cwd).splitlines()]


def table_rows(screen: str) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a rich table as printed, each cell's lines joined by a space."""
    lines = [STYLE.sub("", line).rstrip("\r") for line in screen.splitlines()]
    header: list[str] = []
    rows: list[list[str]] = []
    for line in lines:
        if line[:1] not in ("│", "┃"):
            continue
        cells = [cell.strip() for cell in line[1:-1].split(line[0])]
        if line[0] == "┃":
            header = joined(header, cells) if header else cells
        elif DATE.match(cells[0]) or not rows:  # a row starts with its date; later lines continue it
            rows.append(cells)
        else:
            rows[-1] = joined(rows[-1], cells)
    return header, rows


def joined(cells: list[str], continued: list[str]) -> list[str]:
    return [f"{kept} {more}".strip() for kept, more in zip(cells, continued, strict=True)]


# The demo config reads zh-CN: the history table's headers in that language, by their English names.
HEADER = dict(zip(HISTORY_HEADERS[Language.EN], HISTORY_HEADERS[Language.ZH_CN], strict=True))


def piped_history(cwd: Path) -> list[dict[str, str]]:
    """``watcher history`` piped: tab-separated, one unwrapped line per row, as header → cell."""
    header, *lines = piped(["history"], cwd).splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]


def squeezed(text: str) -> str:
    """The text without its spaces: a word folded across lines reads as it was."""
    return "".join(text.split())


@pytest.mark.parametrize("columns", [60, 80, 120, 140])
def test_history_fits_the_terminal_and_cuts_nothing_short(changed: Path, columns: int):
    code, screen = run_in_terminal([*WATCHER, "history"], changed, columns=columns)
    assert code == 0, screen
    lines = [STYLE.sub("", line).rstrip("\r") for line in screen.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= columns
    assert "…" not in screen  # no "2026…", no "lega…"
    header, rows = table_rows(screen)
    assert header[:3] == [HEADER["detected"], HEADER["borrower"], HEADER["category"]]
    if columns <= 80:  # the least useful columns give way first; the change and its time stay
        assert not {HEADER["alert"], HEADER["id"], HEADER["action"]} & set(header)
    if columns >= 80:  # and whom it is about: "持股 15% → 30%" alone cannot tell two holders apart
        assert header[3] == HEADER["subject"]
    unwrapped = piped_history(changed)  # the same table, one line per row
    assert len(rows) == len(unwrapped) == len(history_events(changed))
    change = header.index(HEADER["before → after"])
    for row, whole in zip(rows, unwrapped, strict=True):
        assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d \+08:00", row[0])  # whole, never mid-date
        assert squeezed(row[2]) == whole[HEADER["category"]]
        assert squeezed(row[change]) == squeezed(whole[HEADER["before → after"]])  # wrapped, intact
        if HEADER["subject"] in header:
            assert squeezed(row[3]) == squeezed(whole[HEADER["subject"]])


def test_a_terminal_too_narrow_for_a_table_gets_plain_rows(changed: Path):
    """At 40 columns no table fits: tab-separated rows, never a header one letter a line."""
    code, screen = run_in_terminal([*WATCHER, "history"], changed, columns=40)
    assert code == 0, screen
    assert "┃" not in screen and "│" not in screen
    text = STYLE.sub("", screen).replace("\r", "")
    assert text.splitlines()[0].split("\t") == list(HISTORY_HEADERS[Language.ZH_CN])
    assert len(text.strip().splitlines()) == len(history_events(changed)) + 1


def test_history_piped_is_tab_separated_with_times_in_the_zone(changed: Path):
    """Piped without COLUMNS: one line per change under a header line; jsonl and csv keep ISO 8601 UTC."""
    header, *lines = piped(["history"], changed).splitlines()
    columns = header.split("\t")
    assert columns == list(HISTORY_HEADERS[Language.ZH_CN]), "the headers follow [watcher] language"
    events = history_events(changed)
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        cells = dict(zip(columns, line.split("\t"), strict=True))
        assert cells[HEADER["id"]] == str(event["id"])
        assert cells[HEADER["category"]] == CATEGORY_LABEL[Language.ZH_CN][Category(event["category"])]
        assert event["detected_at"].endswith("+00:00")  # the machine formats stay as they were
        assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d \+08:00", cells[HEADER["detected"]])
    assert "│" not in header and all("│" not in line for line in lines)
    csv_header = piped(["history", "--format", "csv"], changed).splitlines()[0]
    assert csv_header.startswith("id,detected_at,")


def test_piped_tables_honour_columns(changed: Path):
    out = piped(["history"], changed, COLUMNS="90")
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("┏") and max(len(line) for line in lines) <= 90
    assert "…" not in out and "\t" not in out


@pytest.mark.parametrize("command", [["alerts", "--status", "all"], ["borrowers", "list"]])
def test_other_tables_fit_too_and_are_tab_separated_when_piped(changed: Path, command: list[str]):
    code, screen = run_in_terminal([*WATCHER, *command], changed, columns=80)
    assert code == 0, screen
    lines = [STYLE.sub("", line).rstrip("\r") for line in screen.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= 80 and "…" not in screen
    assert "+08:00" in screen
    header, *rows = piped(command, changed).splitlines()
    assert len(rows) == 2 and all(len(row.split("\t")) == len(header.split("\t")) for row in rows)
    assert all(re.search(r"\t20\d\d-\d\d-\d\d \d\d:\d\d \+08:00\t", row) for row in rows)


def test_status_says_the_zone_of_its_times(changed: Path):
    oslo = changed / "oslo.toml"
    oslo.write_text('[watcher]\ntimezone = "Europe/Oslo"\n' + CONFIG, encoding="utf-8")
    out = piped(["status"], changed, config=oslo.name)
    assert re.search(r"^last check: 20\d\d-\d\d-\d\d \d\d:\d\d \+0[12]:00$", out, re.MULTILINE), out
    assert re.search(r"last success 20\d\d-\d\d-\d\d \d\d:\d\d \+0[12]:00", out)
    raw = json.loads(piped(["status", "--format", "json"], changed))
    assert raw["last_check_at"].endswith("+00:00")
