"""The borrowers list as a spreadsheet (issue 14, point 8): ``borrowers import`` reads XLSX beside CSV,
``borrowers list --format csv|xlsx`` writes what it reads back unchanged.

Real workbooks built with openpyxl in tmp_path (a formula's cached value written into the sheet's XML,
as Excel saves it), real SQLite, the real command line.
"""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from tests.test_cli import REAL_SOURCES, Workspace, one_line
from watcher.importer import COLUMNS
from watcher.spreadsheet import CELL_SEPARATORS, FORMULA_TRIGGERS, neutralise, restore

DIGITS_USCC = 914403001234567849
"""A valid unified social credit code of digits only: what Excel turns into a number."""
HEADER = list(COLUMNS)
EVIL_NAME = '=HYPERLINK("http://evil.example","ACME")'


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", extra_config=REAL_SOURCES)


def rewrite_sheet(path: Path, edit: Callable[[str], str]) -> None:
    """Edit the first sheet's XML in place, to store what openpyxl does not write but Excel does."""
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    parts["xl/worksheets/sheet1.xml"] = edit(parts["xl/worksheets/sheet1.xml"].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)


def cached_value(ref: str, value: str) -> Callable[[str], str]:
    """The value Excel stores beside a formula (openpyxl writes the formula alone): text unless digits."""
    kind = "" if value.isdigit() else ' t="str"'

    def edit(sheet: str) -> str:
        formula = rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v ?/>'
        edited, count = re.subn(formula, rf'<c r="{ref}"\1{kind}><f>\2</f><v>{value}</v>', sheet)
        assert count == 1, ref
        return edited

    return edit


def exact_integer(ref: str, value: int) -> Callable[[str], str]:
    """A numeric cell as the exact integer some writers store (openpyxl writes a long one as a float)."""

    def edit(sheet: str) -> str:
        edited, count = re.subn(rf'(<c r="{ref}"[^>]*><v>)[^<]*(</v>)', rf"\g<1>{value}\g<2>", sheet)
        assert count == 1, ref
        return edited

    return edit


def loan_book(path: Path) -> None:
    """The bank's loan book as Excel users keep it: numbers, dates, formulas, gaps, a bad row."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(["cn-digits", "深圳数字有限公司", "qcc", DIGITS_USCC, None, None, timedelta(hours=12)])  # 2
    sheet.append([])  # 3
    sheet.append(["no-number", "FJORDLYS SJØMAT AS", "brreg", 927140004, "", True, None, "Magnus Solheim"])
    sheet.append(["007", date(2026, 3, 1), "brreg", 974760673.0])  # 5: a text id with a leading zero
    sheet.append(["bad-source", "Nowhere Ltd", "xx", 927140004])  # 6
    sheet.append(["formula", '=CONCAT("HARDANGER ","BETONG AS")', "brreg", "=974760673", None, "a;b"])  # 7
    sheet.append([None, "   ", None])  # 8: blank but for spaces
    sheet.append(["rounded", "ROUNDED AS", "qcc", 9.14403001234567e17])  # 9: what Excel keeps of a long id
    sheet.append(["error", "#REF!", "brreg", 974760673])  # 10: an error value, written below
    sheet.append([])  # 11
    sheet.append([42, "ZEROS AS", "brreg", 974760673, None, None, None, None])  # 12
    sheet["A12"].number_format = "0000"  # shown as 0042: the id is 0042
    sheet["K2"].font = Font(bold=True)  # a formatted empty cell past the header: no extra field
    sheet["B10"].data_type = "e"
    sheet["M14"].font = Font(bold=True)  # a formatted empty row at the end
    workbook.save(path)
    for edit in (
        cached_value("B7", "HARDANGER BETONG AS"),
        cached_value("D7", "974760673"),
        exact_integer("D2", DIGITS_USCC),
    ):
        rewrite_sheet(path, edit)


@pytest.mark.parametrize("name", ["loan-book.xlsx", "loan-book.csv"])
def test_xlsx_import_reads_cells_as_their_text_and_names_excel_rows(ws: Workspace, tmp_path: Path, name: str):
    """Known by content: the same workbook saved under a .csv name is read as a workbook."""
    path = tmp_path / name
    loan_book(path)

    result = ws.cli("borrowers", "import", str(path))
    assert result.exit_code == 1, result.output
    problems = result.stderr.strip().splitlines()
    assert all(line.startswith(f"{path}: row ") for line in problems), problems
    assert [re.match(r".*?: row (\d+): (\w+)", line).groups() for line in problems] == [
        ("6", "rejected"),
        ("7", "warning"),
        ("9", "rejected"),
        ("10", "rejected"),
        ("12", "warning"),
    ]
    assert "'xx'" in problems[0]
    assert "'formula'" in problems[1] and "'007' (row 5)" in problems[1]
    assert "cell D9 holds the number 9.14403001234567E+17" in problems[2] and "Text" in problems[2]
    assert "cell B10" in problems[3] and "#REF!" in problems[3]
    assert "5 added" in result.stdout and "3 rejected" in result.stdout

    stored = {borrower["id"]: borrower for borrower in ws.borrowers()}
    assert set(stored) == {"cn-digits", "no-number", "007", "formula", "0042"}
    assert stored["cn-digits"]["registry_id"] == str(DIGITS_USCC)
    assert stored["cn-digits"]["interval"] == "12h"
    assert stored["no-number"]["registry_id"] == "927140004"
    assert stored["no-number"]["tags"] == ["TRUE"] and stored["no-number"]["officer"] is None
    assert stored["007"]["name"] == "2026-03-01" and stored["007"]["registry_id"] == "974760673"
    assert stored["formula"]["name"] == "HARDANGER BETONG AS"
    assert stored["formula"]["registry_id"] == "974760673"
    assert stored["formula"]["tags"] == ["a", "b"]
    assert stored["0042"]["name"] == "ZEROS AS"


def test_xlsx_header_problem_names_row_1(ws: Workspace, tmp_path: Path):
    workbook = Workbook()
    workbook.active.append(["id", "name", "source"])
    workbook.active.append(["no-x", "FJORDLYS SJØMAT AS", "brreg"])
    path = tmp_path / "short.xlsx"
    workbook.save(path)
    result = ws.cli("borrowers", "import", str(path))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert f"{path}: row 1: header lacks registry_id" in line


def _ole_file(path: Path) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))


def _truncated_workbook(path: Path) -> None:
    workbook = Workbook()
    workbook.active.append(HEADER)
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.write_bytes(buffer.getvalue()[:700])


def _zip_of_something_else(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("content.xml", "<office:document/>")


def _csv_named_xlsx(path: Path) -> None:
    path.write_text("id,name,source,registry_id\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("old.xls", _ole_file, "Excel 97-2003"),
        ("locked.xlsx", _ole_file, "password"),
        ("cut.xlsx", _truncated_workbook, "not a readable .xlsx workbook"),
        ("book.ods", _zip_of_something_else, "not a readable .xlsx workbook"),
        ("text.xlsx", _csv_named_xlsx, "not an Excel workbook"),
    ],
)
def test_unreadable_workbook_is_one_line_and_exit_2(ws: Workspace, tmp_path: Path, name, make, says):
    path = tmp_path / name
    make(path)
    result = ws.cli("borrowers", "import", str(path))
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(path) in line and says in line, line
    assert "Traceback" not in result.output
    assert ws.borrowers() == []


NASTY_CSV = f"""\
id,name,source,registry_id,officer,tags,interval,legal_rep_on_file
cn-evil,"{EVIL_NAME.replace('"', '""')}",qcc,91330106MA2KH7Q302,,"-risk,manufacturing",12h,@王建国
-minus,+47 FJORDLYS SJØMAT AS,brreg,927140004,kari,seafood,7d,Magnus Solheim
no-plain,HARDANGER BETONG AS,brreg,974760673,,,,
quoted,'=already quoted AS,brreg,974760673,,,1h30m,
"""


def test_csv_list_imports_back_unchanged_and_neutralises_formulas(ws: Workspace, tmp_path: Path):
    original = tmp_path / "borrowers.csv"
    original.write_text(NASTY_CSV, encoding="utf-8")
    imported = ws.cli("borrowers", "import", str(original))
    assert imported.exit_code == 0, imported.output
    before = ws.borrowers()

    listed = ws.cli("borrowers", "list", "--format", "csv")
    assert listed.exit_code == 0, listed.output
    assert not listed.stdout.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(listed.stdout)))
    assert rows[0] == HEADER
    by_id = {row[0]: dict(zip(HEADER, row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {"cn-evil", "'-minus", "no-plain", "quoted"}
    assert by_id["cn-evil"]["name"] == "'" + EVIL_NAME
    assert by_id["cn-evil"]["tags"] == "'-risk,manufacturing"
    assert by_id["cn-evil"]["legal_rep_on_file"] == "'@王建国"
    assert by_id["'-minus"]["name"] == "'+47 FJORDLYS SJØMAT AS"
    # An apostrophe before a formula trigger is a spreadsheet's "this is text" mark, read as such.
    assert {b["id"]: b["name"] for b in before}["quoted"] == "=already quoted AS"
    assert by_id["quoted"]["name"] == "'=already quoted AS"

    exported = tmp_path / "exported.csv"
    exported.write_text(listed.stdout, encoding="utf-8")
    again = ws.cli("borrowers", "import", str(exported))
    assert again.exit_code == 0, again.output
    assert "0 added, 0 updated, 4 unchanged" in again.stdout
    assert ws.borrowers() == before
    assert ws.cli("borrowers", "list", "--format", "csv").stdout == listed.stdout

    to_file = tmp_path / "for-excel.csv"
    written = ws.cli("borrowers", "list", "--format", "csv", "--output", str(to_file))
    assert written.exit_code == 0 and written.stdout == ""
    data = to_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").replace("\r\n", "\n") == listed.stdout
    assert "4 unchanged" in ws.cli("borrowers", "import", str(to_file)).stdout


def test_xlsx_list_imports_back_unchanged_with_ids_as_text(ws: Workspace, tmp_path: Path):
    book = tmp_path / "loan-book.xlsx"
    loan_book(book)
    ws.cli("borrowers", "import", str(book))
    nasty = tmp_path / "nasty.csv"
    nasty.write_text(NASTY_CSV, encoding="utf-8")
    ws.cli("borrowers", "import", str(nasty))
    before = ws.borrowers()

    exported = tmp_path / "exported.xlsx"
    result = ws.cli("borrowers", "list", "--format", "xlsx", "--output", str(exported))
    assert result.exit_code == 0, result.output
    sheet = load_workbook(exported).worksheets[0]
    cells = list(sheet.iter_rows())
    assert [cell.value for cell in cells[0]] == HEADER
    by_id = {row[0].value: row for row in cells[1:]}
    registry_id = by_id["cn-digits"][HEADER.index("registry_id")]
    assert registry_id.value == str(DIGITS_USCC) and registry_id.data_type == "s"
    assert registry_id.number_format == "@", "the cell is formatted as Text, not General"
    assert by_id["007"][0].value == "007"
    evil = by_id["cn-evil"][HEADER.index("name")]
    assert evil.value == "'" + EVIL_NAME and evil.data_type == "s"

    again = ws.cli("borrowers", "import", str(exported))
    assert again.exit_code == 0, again.output
    assert f"0 added, 0 updated, {len(before)} unchanged" in again.stdout
    assert ws.borrowers() == before

    piped = ws.cli("borrowers", "list", "--format", "xlsx")
    assert piped.exit_code == 0
    assert piped.stdout_bytes.startswith(b"PK\x03\x04")
    from_stdout = tmp_path / "piped.xlsx"
    from_stdout.write_bytes(piped.stdout_bytes)
    assert f"{len(before)} unchanged" in ws.cli("borrowers", "import", str(from_stdout)).stdout


def test_output_is_for_the_file_formats_only(ws: Workspace, tmp_path: Path):
    result = ws.cli("borrowers", "list", "--format", "json", "--output", str(tmp_path / "x.json"))
    assert result.exit_code == 2
    assert "--output" in one_line(result.stderr)
    unwritable = ws.cli("borrowers", "list", "--format", "csv", "--output", str(tmp_path / "no" / "x.csv"))
    assert unwritable.exit_code == 2
    assert "x.csv" in one_line(unwritable.stderr)


def test_xlsx_is_not_written_to_a_terminal(tmp_path: Path):
    controller, terminal = pty.openpty()
    process = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(tmp_path / "absent.toml"), "borrowers", "list"]
        + ["--format", "xlsx"],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        timeout=60,
    )
    os.close(terminal)
    os.close(controller)
    assert process.returncode == 2
    line = one_line(process.stderr.decode())
    assert "--output" in line and "binary" in line


_CELL_TEXT = st.text(st.sampled_from(list(FORMULA_TRIGGERS + CELL_SEPARATORS + " \u3000aZ1'\"")), max_size=30)


@given(_CELL_TEXT)
def test_restore_gives_back_what_neutralise_was_given(text: str):
    neutralised = neutralise(text)
    assert isinstance(neutralised, str)
    assert restore(neutralised) == text
    assert neutralise(restore(neutralised)) == neutralised
