"""Untrusted text on the command line (issue 11, point 13): registry, CSV and note text can neither
crash a command (rich markup such as ``[/bar]``) nor reach the terminal as escape sequences or
control characters; machine formats keep the data exactly and stay valid.

The hostile text is stored the way it arrives in production: through the real importer, the real
pipeline reading replayed registry answers, and the real alert lifecycle, in a real SQLite file.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from watcher.cli import app
from watcher.output import json_text, printable

DEMO_DATA = Path(__file__).resolve().parents[1] / "watcher" / "demo_data"
FJORDLYS, HARDANGER = "927140004", "974760673"

OSC_TITLE = "\x1b]0;pwned\x07"  # retitles the terminal window
CSI_CLEAR = "\x1b[2J\x1b[31m"  # clears the screen, turns the text red
C1_CSI = "\u009b2J"  # the same as one 8-bit C1 character
BIDI = "\u202e"  # shows what follows right to left
HOSTILE_NAME = f"Broken [/bar] markup {OSC_TITLE}{CSI_CLEAR}Evil{C1_CSI}{BIDI} AS"
HOSTILE_ID = "evil[/x]"
HOSTILE_NOTE = f"checked [/x] {OSC_TITLE}ok{C1_CSI}"
HOSTILE_BY = f"[bold]zhang{CSI_CLEAR}"
REGISTRY_NAME = f"FJORDLYS [/i] SJØMAT {OSC_TITLE}AS\u009d0;title\u009c"
REGISTRY_ORGNR = f"[/x]{OSC_TITLE}{C1_CSI}"

# Anything a terminal acts on: C0 but tab and newline, DEL, C1, bidi overrides (ESC and BEL are C0).
TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

CONFIG = """\
[database]
url = "sqlite:///watcher.db"

[sources.no]
type = "replay"
format = "brreg"
folder = "feed"
"""
RUNNER = CliRunner()


def assert_inert(text: str) -> None:
    found = sorted({f"U+{ord(char):04X}" for char in TERMINAL_CONTROLS.findall(text)})
    assert not found, f"control characters reached the output: {found}\n{text!r}"
    assert "Traceback" not in text and "MarkupError" not in text


class Deployment:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.alert_id = 0
        self.config = root / "watcher.toml"
        self.config.write_text(CONFIG, encoding="utf-8")

    def cli(self, *args: str, expect: int = 0):
        result = RUNNER.invoke(app, ["--config", str(self.config), *args], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    def stage(self, number: int) -> None:
        feed = self.root / "feed"
        shutil.rmtree(feed, ignore_errors=True)
        for orgnr in (FJORDLYS, HARDANGER):
            shutil.copytree(DEMO_DATA / f"round{number}" / orgnr, feed / orgnr)

    def edit_unit(self, orgnr: str, **fields: str) -> None:
        path = self.root / "feed" / orgnr / "enhet.json"
        unit = json.loads(path.read_text(encoding="utf-8"))
        unit.update(fields)
        path.write_text(json.dumps(unit, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def hostile(tmp_path: Path) -> Deployment:
    """Hostile borrower fields from the CSV, a hostile registry name change that raised an alert
    acknowledged with a hostile note, and a borrower failing with registry text in its error."""
    deployment = Deployment(tmp_path)
    borrowers_csv = tmp_path / "borrowers.csv"
    with borrowers_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "source", "registry_id", "tags", "legal_rep_on_file"])
        writer.writerow(["no-fjordlys", HOSTILE_NAME, "no", FJORDLYS, f"a[/b],{OSC_TITLE}", HOSTILE_NAME])
        writer.writerow([HOSTILE_ID, "HARDANGER BETONG AS", "no", HARDANGER, "", ""])
    deployment.cli("borrowers", "import", str(borrowers_csv))
    deployment.stage(1)
    deployment.cli("check", "--no-notify")
    deployment.stage(1)
    deployment.edit_unit(FJORDLYS, navn=REGISTRY_NAME)
    deployment.edit_unit(HARDANGER, organisasjonsnummer=REGISTRY_ORGNR)
    deployment.cli("check", "--no-notify", expect=1)
    (event,) = [e for e in history_events(deployment) if e["category"] == "name"]
    deployment.alert_id = event["alert_id"]
    deployment.cli("alerts", "ack", str(deployment.alert_id), "--by", HOSTILE_BY, "--note", HOSTILE_NOTE)
    return deployment


def history_events(deployment: Deployment) -> list[dict]:
    result = deployment.cli("history", "--format", "jsonl")
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_hostile_text_is_stored_as_it_came(hostile: Deployment):
    """The premise of the other tests: the database holds the hostile text, unchanged by the CLI."""
    listed = {b["id"]: b for b in json.loads(hostile.cli("borrowers", "list", "--format", "json").stdout)}
    assert listed["no-fjordlys"]["name"] == HOSTILE_NAME
    assert listed["no-fjordlys"]["legal_rep_on_file"] == HOSTILE_NAME
    assert HOSTILE_ID in listed
    (event,) = [e for e in history_events(hostile) if e["category"] == "name"]
    # Normalisation turns the registry's square brackets into round ones and drops its control
    # characters; the bank's own CSV text above keeps them, so the CLI still has to neutralise them.
    assert "SJØMAT" in event["after"] and "\x1b" not in event["after"] and "\u009d" not in event["after"]


def test_borrowers_list_table_shows_the_text_inert(hostile: Deployment):
    out = hostile.cli("borrowers", "list").stdout
    assert_inert(out)
    # The markup is shown as it is; of the escapes, only the text of the window title is left.
    assert "Broken [/bar] markup 0;pwnedEvil AS" in out
    assert HOSTILE_ID in out and "a[/b]" in out


def test_json_keeps_the_data_and_stays_valid_and_inert(hostile: Deployment):
    out = hostile.cli("borrowers", "list", "--format", "json").stdout
    assert_inert(out)
    assert {b["name"] for b in json.loads(out)} == {HOSTILE_NAME, "HARDANGER BETONG AS"}

    jsonl = hostile.cli("history", "--format", "jsonl").stdout
    assert_inert(jsonl)
    lines = jsonl.splitlines()  # str.splitlines also splits at U+0085, U+2028 and U+2029
    assert [json.loads(line) for line in lines] == history_events(hostile)
    assert any("\x1b" in json.loads(line)["borrower_name"] for line in lines)  # the bank's own text


def test_history_csv_keeps_the_data_as_it_is(hostile: Deployment):
    out = hostile.cli("history", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["after"] for row in rows] == [e["after"] or "" for e in history_events(hostile)]


def test_history_table_shows_the_registry_text_inert(hostile: Deployment):
    out = hostile.cli("history").stdout
    assert_inert(out)
    assert "FJORDLYS(/i)SJØMAT" in out and "AS0;title" in out


def test_alerts_table_with_a_hostile_note_works_for_everyone(hostile: Deployment):
    out = hostile.cli("alerts", "--status", "all").stdout
    assert_inert(out)
    assert "checked [/x] 0;pwnedok" in out
    assert "[bold]zhang" in out
    closed = hostile.cli("alerts", "close", str(hostile.alert_id), "--by", HOSTILE_BY).stdout
    assert_inert(closed)
    assert "[bold]zhang" in closed


def test_check_lines_and_failure_summary_show_registry_errors_inert(hostile: Deployment):
    result = hostile.cli("check", "--no-notify", expect=1)
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert f"{HOSTILE_ID}: failed (parse_error)" in result.stdout
    (failed,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert failed.startswith("failed: ") and HOSTILE_ID in failed and "[/x]" in failed


def test_status_shows_failing_registry_errors_inert(hostile: Deployment):
    out = hostile.cli("status", expect=1).stdout  # a failing borrower is a problem: exit 1
    assert_inert(out)
    assert f"failing borrower {HOSTILE_ID}" in out
    assert "enhet is for [/x]0;pwned, not 974760673" in out


def test_the_command_line_prints_only_through_watcher_output():
    """One place keeps untrusted text inert: a new command printing by itself would bypass it."""
    root = Path(__file__).resolve().parents[1]
    for module in (*sorted((root / "watcher" / "cli").glob("*.py")), root / "watcher" / "demo.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                assert called not in {"print", "typer.echo", "click.echo", "Console"}, (module, node.lineno)
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("rich"), (module, node.lineno)


# -- the output helper itself ----------------------------------------------------------------------


@given(st.text())
def test_printable_leaves_nothing_a_terminal_acts_on_and_one_line_is_one_line(text: str):
    shown = printable(text)
    assert not TERMINAL_CONTROLS.search(shown) and "\n" not in shown
    assert not TERMINAL_CONTROLS.search(printable(text, one_line=False))


ORDINARY_TEXT = st.text(
    alphabet=st.characters(
        exclude_categories=("Cc",),
        exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029",
    )
)
JSON_VALUES = st.recursive(
    st.none() | st.text() | st.integers(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(ORDINARY_TEXT)
def test_printable_keeps_ordinary_text_as_it_is(text: str):
    assert printable(text) == text


@given(JSON_VALUES)
def test_json_text_round_trips_and_is_one_inert_line(value):
    text = json_text(value)
    assert json.loads(text) == value
    assert not TERMINAL_CONTROLS.search(text)
    assert len(text.splitlines()) <= 1


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (OSC_TITLE + "x", "0;pwnedx"),  # the title's text is shown, not acted on
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "8;;https://evil.examplelink8;;"),
        ("a\x1b[1;31mred\x1b[0m b\u009b2Jc", "ared bc"),
        ("a\x1b]0;unterminated, then more", "a0;unterminated, then more"),
        ("tab\tand\r\nnew\nline", "tab\tand new line"),
        ("bell\x07 nul\x00 del\x7f c1\u0085", "bell nul del c1 "),
    ],
)
def test_printable_examples(raw: str, shown: str):
    assert printable(raw) == shown
