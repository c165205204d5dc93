"""Bad files and failing databases get the one-line error and exit code of the contract (issue 11,
point 15): exit 2 when the input or the configuration is wrong (a file in no single encoding, an
unreachable database URL), exit 1 when some of the work failed (a rejected row, a full disk, a
write the database refused); never a traceback, never a password.

Real SQLite files, a real PostgreSQL server, the real ``python -m watcher`` where a process limit
plays the full disk.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from watcher.cli import app

SOURCES = """
[sources.no]
type = "replay"
format = "brreg"
folder = "feed"
"""
HEADER = "id,name,source,registry_id,legal_rep_on_file\n"
UTF8_ROWS = [
    "no-fjordlys,FJORDLYS SJØMAT AS,no,927140004,Søren Ødegård\n",
    "no-hardanger,HARDANGER BETONG AS,no,974760673,Åse Lunde\n",
]
GB_ROW = "cn-lanchao,杭州澜潮智能装备有限公司,no,927140004,王建国\n"
PASSWORD = "s3cret-pw"
RUNNER = CliRunner()


def write_config(root: Path, url: str, extra: str = "") -> Path:
    config = root / "watcher.toml"
    config.write_text(f'[database]\nurl = "{url}"\n{SOURCES}{extra}', encoding="utf-8")
    return config


def cli(config: Path, *args: str, stdin: str | None = None):
    return RUNNER.invoke(app, ["--config", str(config), *args], input=stdin, catch_exceptions=False)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    assert "Traceback" not in lines[0]
    return lines[0]


def listed(config: Path) -> list[dict]:
    result = cli(config, "borrowers", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url)


# -- one encoding per file ---------------------------------------------------------------------------


def test_utf8_file_with_one_gb18030_row_is_refused_naming_that_line(config: Path, tmp_path: Path):
    path = tmp_path / "borrowers.csv"
    path.write_bytes(
        HEADER.encode() + UTF8_ROWS[0].encode() + GB_ROW.encode("gb18030") + UTF8_ROWS[1].encode()
    )
    assert path.read_bytes().decode("gb18030")  # the trap: the whole file "decodes" as GB18030

    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(path) in line and "line 3: not UTF-8" in line
    assert listed(config) == []  # nothing garbled was stored


def test_gb18030_file_with_one_utf8_row_is_refused_naming_that_line(config: Path, tmp_path: Path):
    rows = [
        "cn-lanchao,杭州澜潮智能装备有限公司,no,927140004,王建国\n",
        "cn-lanqi,上海临港澜启科技有限公司,no,974760673,陈静\n",
    ]
    path = tmp_path / "borrowers.csv"
    path.write_bytes(
        HEADER.encode() + rows[0].encode("gb18030") + UTF8_ROWS[0].encode() + rows[1].encode("gb18030")
    )
    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert "line 3: UTF-8, unlike the rest of the file (GB18030" in line
    assert listed(config) == []


def test_file_with_a_utf8_byte_order_mark_and_a_gb18030_row_is_refused(config: Path, tmp_path: Path):
    path = tmp_path / "borrowers.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + GB_ROW.encode("gb18030"))
    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 2, result.output
    assert "line 2: not UTF-8" in one_line(result.stderr)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_a_file_in_one_encoding_imports_every_row_intact(config: Path, tmp_path: Path, encoding: str):
    path = tmp_path / "borrowers.csv"
    rows = [UTF8_ROWS[1], GB_ROW]
    path.write_bytes((HEADER + "".join(rows)).encode(encoding))
    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 0, result.output
    names = {b["id"]: (b["name"], b["legal_rep_on_file"]) for b in listed(config)}
    assert names == {
        "no-hardanger": ("HARDANGER BETONG AS", "Åse Lunde"),
        "cn-lanchao": ("杭州澜潮智能装备有限公司", "王建国"),
    }


# -- rows the database could not keep -------------------------------------------------------------------


def test_a_10_mb_field_rejects_its_row_and_the_rest_is_imported(config: Path, tmp_path: Path):
    path = tmp_path / "borrowers.csv"
    huge = "X" * 10_000_000
    path.write_text(HEADER + f"big,{huge},no,927140004,\n" + UTF8_ROWS[1], encoding="utf-8")
    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 1, result.output
    line = one_line(result.stderr)
    assert "line 2: rejected: name is 10000000 characters long" in line
    assert "1 added" in result.stdout and "1 rejected" in result.stdout
    assert [b["id"] for b in listed(config)] == ["no-hardanger"]


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_nul_character_rejects_its_row_on_every_database(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
):
    config = write_config(tmp_path, request.getfixturevalue(database))
    path = tmp_path / "borrowers.csv"
    path.write_text(HEADER + "nul,NUL\x00AS,no,927140004,\n" + UTF8_ROWS[1], encoding="utf-8")
    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 1, result.output
    assert "line 2: rejected: name contains a NUL character" in one_line(result.stderr)
    assert [b["id"] for b in listed(config)] == ["no-hardanger"]


# -- databases that cannot be reached or written ---------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1:abc", "port"),
        ("127.0.0.1:99999", "port"),
        ("127.0.0.1:0", "port"),
        ("127.0.0.1:5432@evil", "unescaped @"),
    ],
)
def test_a_bad_postgresql_address_is_a_config_error(tmp_path: Path, address: str, reason: str):
    config = write_config(tmp_path, f"postgresql+psycopg://watcher:{PASSWORD}@{address}/watcher")
    for command in (["borrowers", "list"], ["db", "upgrade"], ["run"]):
        result = cli(config, *command)
        assert result.exit_code == 2, (command, result.output)
        line = one_line(result.stderr)
        assert str(config) in line and "database.url" in line and reason in line
        assert PASSWORD not in line


DATABASE_COMMANDS = [
    ["borrowers", "import", "{csv}"],
    ["borrowers", "list"],
    ["check"],
    ["history"],
    ["status"],
    ["alerts"],
    ["alerts", "ack", "1", "--by", "zhang"],
    ["alerts", "close", "1", "--by", "zhang"],
    ["users", "add", "li", "--role", "reviewer", "--password-stdin"],
    ["serve"],
    ["db", "upgrade"],
    ["run"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_names_an_unreachable_database_on_one_line(tmp_path: Path, command: list[str]):
    console = '[console]\nsecret_key = "0123456789abcdef0123456789abcdef"\n'
    config = write_config(tmp_path, f"postgresql+psycopg://watcher:{PASSWORD}@127.0.0.1:1/watcher", console)
    path = tmp_path / "borrowers.csv"
    path.write_text(HEADER + UTF8_ROWS[0], encoding="utf-8")
    args = [arg.format(csv=path) for arg in command]
    result = cli(config, *args, stdin="a-long-enough-password\n")
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert "postgresql+psycopg://watcher:***@127.0.0.1:1/watcher" in line
    assert PASSWORD not in result.output


def test_run_with_a_sqlite_file_in_a_missing_folder_says_so_on_one_line(tmp_path: Path):
    config = write_config(tmp_path, "sqlite:///missing/watcher.db")
    result = cli(config, "run")
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(tmp_path / "missing" / "watcher.db") in line and "No such file or directory" in line


def _file_size_limit(size: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def _organisasjonsnumre(count: int) -> list[str]:
    """Distinct valid Norwegian organisation numbers (mod 11), so that no row is a duplicate."""
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    found = []
    for base in range(90000000, 100000000):
        check = 11 - sum(int(digit) * weight for digit, weight in zip(str(base), weights, strict=True)) % 11
        if check != 10:
            found.append(f"{base}{check % 11}")
            if len(found) == count:
                return found
    raise AssertionError("not enough numbers")


def test_a_full_disk_during_an_import_is_one_line_and_exit_1(config: Path, tmp_path: Path):
    """A process file-size limit plays the full disk: SQLite's writes past it fail as they would."""
    assert cli(config, "db", "upgrade").exit_code == 0
    path = tmp_path / "borrowers.csv"
    numbers = _organisasjonsnumre(2500)
    rows = "".join(f"b{number},{'N' * 900} {number},no,{orgnr},\n" for number, orgnr in enumerate(numbers))
    path.write_text(HEADER + rows, encoding="utf-8")

    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), "borrowers", "import", str(path)],
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(1 << 20),
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert line.startswith(f"watcher: database sqlite:///{tmp_path / 'watcher.db'}: OperationalError: ")
    assert listed(config) == []  # the transaction was rolled back whole


@pytest.fixture
def read_only_postgres_url(postgres_url: str, tmp_path: Path):
    """(role, URL): the test schema, migrated, seen through a role with a password that may read it
    but not write to it."""
    (tmp_path / "admin").mkdir()
    assert cli(write_config(tmp_path / "admin", postgres_url), "db", "upgrade").exit_code == 0
    schema = postgres_url.rsplit("%3D", 1)[1]
    role = f"ro_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"))
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        connection.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}'))
    try:
        yield (
            role,
            make_url(postgres_url)
            .set(username=role, password=PASSWORD)
            .render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_a_write_the_database_refuses_is_one_line_and_exit_1(tmp_path: Path, read_only_postgres_url):
    role, url = read_only_postgres_url
    config = write_config(tmp_path, url)
    path = tmp_path / "borrowers.csv"
    path.write_text(HEADER + UTF8_ROWS[0], encoding="utf-8")

    result = cli(config, "borrowers", "import", str(path))
    assert result.exit_code == 1, result.output
    line = one_line(result.stderr)
    assert f"{role}:***@" in line and "InsufficientPrivilege" in line
    assert PASSWORD not in result.output
