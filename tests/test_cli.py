"""The command line contract (README.md, "Using it"; docs/architecture.md), end to end.

Real pipeline, real SQLite files in tmp_path, replay sources reading the bundled demo data: no mocks
of our own code. Most commands go through ``typer.testing.CliRunner``; one test starts the real
``python -m watcher`` process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from watcher.cli import app
from watcher.config import STARTER_CONFIG, Config, load_config
from watcher.demo import ROUND_TIMES
from watcher.units import parse_duration

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO_ROOT / "watcher" / "demo_data"
DEMO_BORROWERS = DEMO_DATA / "borrowers.csv"

HISTORY_KEYS = [
    "id",
    "detected_at",
    "borrower_id",
    "borrower_name",
    "source",
    "category",
    "action",
    "subject",
    "before",
    "after",
    "effective_date",
    "severity",
    "alert_id",
]
"""The design's jsonl contract: these keys first, exactly as they are."""
LISTING_KEYS = ["party", "party_name", "first_seen"]
"""Added for risk listings (additions only: after the contract's keys)."""
LIST_KEYS = {"id", "name", "source", "registry_id", "officer", "tags", "interval", "legal_rep_on_file"}
LIFECYCLE_KEYS = {"active", "deactivated_at"}
"""Added to `borrowers list --format json` with deactivation (additions only)."""
PARTY_KEYS = {"role", "secures"}
"""Added with guarantors and pledgors (additions only)."""
BORROWER_IDS = ("cn-lanchao", "cn-lanqi", "no-fjordlys", "no-hardanger")
FOLDER_OF = {
    "cn-lanchao": ("cn", "91330106MA2KH7Q302"),
    "cn-lanqi": ("cn", "91310115MA1K4QRT94"),
    "no-fjordlys": ("no", "927140004"),
    "no-hardanger": ("no", "974760673"),
}

BASE_CONFIG = """\
[database]
url = "sqlite:///watcher.db"

[sources.cn]
type = "replay"
format = "qichacha"
folder = "feed/cn"

[sources.no]
type = "replay"
format = "brreg"
folder = "feed/no"
"""

# Round 2's planted changes (watcher/demo_data/README.md): (borrower, category, action, subject) for
# added/removed; for "changed", subject is None and (before, after) must appear in the event.
ROUND2_PLANTED = [
    ("cn-lanchao", "legal_representative", "changed", None, ("王建国", "李娜")),
    ("cn-lanchao", "director", "added", "李娜", None),
    ("cn-lanchao", "director", "removed", "王建国", None),
    ("cn-lanchao", "manager", "added", "李娜", None),
    ("cn-lanchao", "manager", "removed", "王建国", None),
    ("cn-lanchao", "shareholder", "added", "上海临港澜启科技有限公司", None),
    ("cn-lanchao", "shareholder", "removed", "杭州澜川投资管理合伙企业(有限合伙)", None),
    ("cn-lanchao", "finance_head", "changed", None, ("赵磊", "周明")),
    ("cn-lanchao", "enforcement", "added", "(2026)浙0106执1533号", None),
    ("no-fjordlys", "legal_representative", "changed", None, ("Magnus Solheim", "Hanne Strand")),
    ("no-fjordlys", "director", "removed", "Lars Erik Nygaard", None),
    ("no-fjordlys", "director", "added", "Thomas Vik", None),
    ("no-fjordlys", "manager", "added", "Hanne Strand", None),
    ("no-fjordlys", "manager", "removed", "Magnus Solheim", None),
    (
        "no-hardanger",
        "address",
        "changed",
        None,
        ("Sjøvegen 14, 5600 NORHEIMSUND", "Industrivegen 7, 5610 ØYSTESE"),
    ),
]

MISSING_VAR_SOURCE = """
[sources.qcc]
type = "qichacha"
key = "${WATCHER_TEST_MISSING_VAR}"
secret = "s"
"""

RUNNER = CliRunner()


def invoke(*args: str):
    """Run the app in-process; exceptions that are not exits propagate so a crash is a test error."""
    return RUNNER.invoke(app, list(args), catch_exceptions=False)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    return lines[0]


def history_of(config: Path, *args: str) -> list[dict]:
    """``watcher history --format jsonl`` parsed, one dict per line."""
    result = invoke("--config", str(config), "history", "--format", "jsonl", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class Workspace:
    """A config file, its database and the replay folders, all under one directory."""

    def __init__(self, root: Path, extra_config: str = "") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "watcher.toml"
        self.config.write_text(BASE_CONFIG + extra_config, encoding="utf-8")
        self.feed = root / "feed"

    def cli(self, *args: str):
        return invoke("--config", str(self.config), *args)

    def stage(self, number: int) -> None:
        """Put round N's saved responses in feed/cn (USCC folders) and feed/no (orgnr folders)."""
        for name in ("cn", "no"):
            target = self.feed / name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
        for company in sorted(p for p in (DEMO_DATA / f"round{number}").iterdir() if p.is_dir()):
            shutil.copytree(company, self.feed / ("no" if company.name.isdigit() else "cn") / company.name)

    def company_folder(self, borrower_id: str) -> Path:
        source, registry_id = FOLDER_OF[borrower_id]
        return self.feed / source / registry_id

    def import_demo_borrowers(self) -> None:
        result = self.cli("borrowers", "import", str(DEMO_BORROWERS))
        assert result.exit_code == 0, result.output
        assert "4 added" in result.stdout

    def history(self, *args: str) -> list[dict]:
        return history_of(self.config, *args)

    def borrowers(self) -> list[dict]:
        result = self.cli("borrowers", "list", "--format", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def check(self, *args: str, expect: int = 0):
        result = self.cli("check", *args)
        assert result.exit_code == expect, result.output
        return result


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient config, and a working directory that is neither the repo nor any config's folder."""
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    monkeypatch.delenv("WATCHER_TEST_MISSING_VAR", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def baselined(ws: Workspace) -> Workspace:
    """The four demo borrowers imported and checked once against round 1."""
    ws.import_demo_borrowers()
    ws.stage(1)
    ws.check()
    return ws


def assert_planted(events: list[dict], planted=ROUND2_PLANTED) -> None:
    got = sorted(
        (e["borrower_id"], e["category"], e["action"], None if e["action"] == "changed" else e["subject"])
        for e in events
    )
    want = sorted((b, c, a, s) for b, c, a, s, _ in planted)
    assert got == want
    for borrower, category, action, _, values in planted:
        key = (borrower, category, action)
        if action != "changed":
            continue
        (event,) = [e for e in events if (e["borrower_id"], e["category"], e["action"]) == key[:3]]
        before, after = values
        assert before in (event["before"] or ""), event
        assert after in (event["after"] or ""), event


# -- 1. init ------------------------------------------------------------------------------------


def test_init_writes_a_loadable_config_and_refuses_to_overwrite_without_force(tmp_path: Path):
    path = tmp_path / "etc" / "watcher.toml"
    path.parent.mkdir()

    result = invoke("init", str(path))
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG
    assert isinstance(load_config(path), Config)

    path.write_text("# edited by the operator\n", encoding="utf-8")
    again = invoke("init", str(path))
    assert again.exit_code != 0
    assert str(path) in again.stderr and "--force" in again.stderr
    assert path.read_text(encoding="utf-8") == "# edited by the operator\n"

    forced = invoke("init", "--force", str(path))
    assert forced.exit_code == 0, forced.output
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG
    load_config(path)


# -- 2. configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[schedule]\nintervall = "1h"\n', "schedule.intervall", "unknown key"),
        ('[schedule]\nconcurrency = "many"\n', "schedule.concurrency", "many"),
    ],
    ids=["unknown-key", "wrong-type"],
)
def test_config_error_exits_2_with_one_line_naming_file_and_key(tmp_path: Path, text, key, reason):
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    result = invoke("--config", str(config), "borrowers", "list")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert str(config) in line
    assert key in line
    assert reason in line
    assert result.stdout == ""


def test_missing_environment_variable_is_a_config_error(ws: Workspace):
    ws.config.write_text(
        BASE_CONFIG + MISSING_VAR_SOURCE,
        encoding="utf-8",
    )
    result = ws.cli("check")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert str(ws.config) in line
    assert "sources.qcc.key" in line
    assert "WATCHER_TEST_MISSING_VAR" in line


def test_missing_config_file_exits_2_and_points_at_init(tmp_path: Path):
    missing = tmp_path / "nowhere" / "watcher.toml"
    for command in (["borrowers", "list"], ["check"], ["history"], ["db", "upgrade"]):
        result = invoke("--config", str(missing), *command)
        assert result.exit_code == 2, (command, result.output)
        line = one_line(result.stderr)
        assert str(missing) in line
        assert "watcher init" in line


def test_watcher_config_environment_variable_is_used_without_config_option(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
):
    # Without --config and without $WATCHER_CONFIG the default is ./watcher.toml, absent here.
    result = invoke("borrowers", "list")
    assert result.exit_code == 2
    assert "watcher.toml" in one_line(result.stderr)

    monkeypatch.setenv("WATCHER_CONFIG", str(ws.config))
    imported = invoke("borrowers", "import", str(DEMO_BORROWERS))
    assert imported.exit_code == 0, imported.output
    assert (ws.root / "watcher.db").is_file()  # relative database path resolved against the config
    assert not (Path.cwd() / "watcher.db").exists()
    listed = invoke("borrowers", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert [b["id"] for b in json.loads(listed.stdout)] == list(BORROWER_IDS)

    # --config wins over the environment.
    override = invoke("--config", str(ws.root / "other.toml"), "borrowers", "list")
    assert override.exit_code == 2
    assert "other.toml" in one_line(override.stderr)


def test_python_dash_m_watcher_runs_the_real_entry_point(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHER_CONFIG", "WATCHER_TEST_MISSING_VAR")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    config = tmp_path / "watcher.toml"
    config.write_text(
        BASE_CONFIG + MISSING_VAR_SOURCE,
        encoding="utf-8",
    )
    process = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert process.returncode == 2, (process.stdout, process.stderr)
    line = one_line(process.stderr)
    assert "WATCHER_TEST_MISSING_VAR" in line
    assert "sources.qcc.key" in line
    assert str(config) in line
    assert process.stdout == ""


SECRETS_ELSEWHERE = """
[sources.qcc]
type = "qichacha"
key = "${WT_QCC_KEY}"
secret = "${WT_QCC_SECRET}"

[notifiers.desk]
urls = ["dingtalk://${WT_DESK_TOKEN}/"]

[officers.zhang_wei]
name = "张伟"
urls = ["mailtos://alerts:${WT_SMTP_PASSWORD}@smtp.bank.example?to=zw@bank.example"]

[console]
enabled = %s
secret_key = "${WT_CONSOLE_KEY}"
"""
SECRET_VARIABLES = ("WT_QCC_KEY", "WT_QCC_SECRET", "WT_DESK_TOKEN", "WT_SMTP_PASSWORD", "WT_CONSOLE_KEY")


@pytest.fixture
def secrets_unset(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A deployment whose every secret comes from a variable this shell does not set."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    ws.config.write_text(BASE_CONFIG + SECRETS_ELSEWHERE % "true", encoding="utf-8")
    return ws


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["history"],
        ["alerts"],
        ["borrowers", "list"],
        ["borrowers", "import", str(DEMO_BORROWERS)],
        ["db", "upgrade"],
        ["users", "list"],
        ["signals", "retry", "qcc"],
    ],
    ids=" ".join,
)
def test_read_only_commands_need_none_of_the_secrets(secrets_unset: Workspace, command: list[str]):
    result = secrets_unset.cli(*command)
    assert result.exit_code == 0, result.output
    assert "is not set" not in result.output


def test_check_needs_the_sources_and_channels_secrets_but_not_the_console_key(
    secrets_unset: Workspace, monkeypatch: pytest.MonkeyPatch
):
    result = secrets_unset.cli("check")
    assert result.exit_code == 2
    line = one_line(result.stderr)  # the first problem, then "also key …" for each other one
    assert str(secrets_unset.config) in line
    first, _, rest = line.partition("also key")
    assert first.strip().endswith("key sources.qcc.key: environment variable WT_QCC_KEY is not set")
    rest = "also key" + rest
    for key, name in [
        ("sources.qcc.secret", "WT_QCC_SECRET"),
        ("notifiers.desk.urls[0]", "WT_DESK_TOKEN"),
        ("officers.zhang_wei.urls[0]", "WT_SMTP_PASSWORD"),
    ]:
        assert f"also key {key}: environment variable {name} is not set" in rest
    assert "WT_CONSOLE_KEY" not in result.stderr


def test_notify_test_needs_the_channels_secrets_only(secrets_unset: Workspace):
    result = secrets_unset.cli("notify", "test")
    assert result.exit_code == 2
    assert "key notifiers.desk.urls[0]: environment variable WT_DESK_TOKEN is not set" in result.stderr
    assert "WT_QCC_KEY" not in result.stderr and "WT_CONSOLE_KEY" not in result.stderr


def test_serve_needs_the_console_key_only(secrets_unset: Workspace):
    result = secrets_unset.cli("serve")
    assert result.exit_code == 2
    assert one_line(result.stderr).endswith(
        "key console.secret_key: environment variable WT_CONSOLE_KEY is not set"
    )


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_run_needs_the_console_key_only_with_the_console_enabled(ws: Workspace, enabled: str):
    """``watcher run`` with every other secret set: it fails at once naming the console key when the
    console is enabled; when it is not, the config loads (the loader as ``run`` calls it)."""
    from watcher.cli.base import FETCHING
    from watcher.errors import ConfigError
    from watcher.vocabulary import SecretScope

    ws.config.write_text(BASE_CONFIG + SECRETS_ELSEWHERE % enabled, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHER_CONFIG", "WT_CONSOLE_KEY")}
    env |= {name: f"{name.lower()}-value" for name in SECRET_VARIABLES if name != "WT_CONSOLE_KEY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if enabled == "true":
        process = subprocess.run(
            [sys.executable, "-m", "watcher", "--config", str(ws.config), "run"],
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )
        assert process.returncode == 2, process.stderr
        assert one_line(process.stderr).endswith(
            "key console.secret_key: environment variable WT_CONSOLE_KEY is not set"
        )
        return
    needs = FETCHING | {SecretScope.CONSOLE_WHEN_ENABLED}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("WT_CONSOLE_KEY", raising=False)
        config = load_config(ws.config, needs)
        assert config.sources["qcc"].key == "wt_qcc_key-value"
        with pytest.raises(ConfigError, match="WT_CONSOLE_KEY is not set"):
            load_config(ws.config, needs | {SecretScope.CONSOLE})


# -- 3. borrowers import --------------------------------------------------------------------------

MIXED_CSV = """\
id,name,source,registry_id,officer,tags,interval,legal_rep_on_file
good-cn,杭州澜潮智能装备有限公司,cn,91330106MA2KH7Q302,zhang_wei,"manufacturing,zhejiang",12h,王建国
bad-source,Nowhere Ltd,xx,91330106MA2KH7Q302,,,,
bad-uscc,坏码有限公司,qcc,91330106MA2KH7Q30X,,,,
bad-orgnr,FEIL AS,brreg,123456789,,,,
empty-name,,no,927140004,,,,
bad-interval,FJORDLYS SJØMAT AS,no,927140004,,,5x,
good-no,FJORDLYS SJØMAT AS,no,927140004,kari,,24h,Magnus Solheim
good-cn,重复的名字,cn,91310115MA1K4QRT94,,,,
too-many,HARDANGER BETONG AS,no,974760673,,,,,extra
good-no2,HARDANGER BETONG AS,no,974760673,,"construction; vestland",,
"""
# line -> what the reason must mention
EXPECTED_REJECTIONS = {
    3: "xx",
    4: "91330106MA2KH7Q30X",
    5: "123456789",
    6: "name",
    7: "5x",
    9: "duplicate",
    10: "fields",
}
# Real (non-replay) sources, so that identifiers are checked: constructing them needs no network.
REAL_SOURCES = """
[sources.qcc]
type = "qichacha"
key = "k"
secret = "s"

[sources.brreg]
type = "brreg"
"""


def test_import_reports_each_bad_row_and_keeps_every_good_row(tmp_path: Path):
    ws = Workspace(tmp_path / "ws", extra_config=REAL_SOURCES)
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_text(MIXED_CSV, encoding="utf-8")

    result = ws.cli("borrowers", "import", str(csv_path))
    assert result.exit_code == 1, result.output
    rejected = {}
    for line in result.stderr.splitlines():
        match = re.search(r"line (\d+): rejected: (.+)", line)
        if match:
            assert str(csv_path) in line
            rejected[int(match[1])] = match[2]
    assert set(rejected) == set(EXPECTED_REJECTIONS), result.stderr
    for line, mention in EXPECTED_REJECTIONS.items():
        assert mention in rejected[line], (line, rejected[line])
    assert "3 added" in result.stdout and "7 rejected" in result.stdout

    stored = {b["id"]: b for b in ws.borrowers()}
    assert set(stored) == {"good-cn", "good-no", "good-no2"}
    assert stored["good-cn"]["name"] == "杭州澜潮智能装备有限公司"  # the duplicate row did not win
    assert stored["good-cn"]["registry_id"] == "91330106MA2KH7Q302"
    assert stored["good-no"]["legal_rep_on_file"] == "Magnus Solheim"
    assert sorted(stored["good-no2"]["tags"]) == ["construction", "vestland"]

    again = ws.cli("borrowers", "import", str(csv_path))
    assert again.exit_code == 1
    assert "0 added" in again.stdout and "0 updated" in again.stdout and "3 unchanged" in again.stdout
    assert {b["id"] for b in ws.borrowers()} == {"good-cn", "good-no", "good-no2"}


def test_replay_sources_check_identifiers_like_their_format(ws: Workspace, tmp_path: Path):
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_text(
        "id,name,source,registry_id\n"
        "bad-uscc,坏码有限公司,cn,91330106MA2KH7Q30X\n"
        "bad-orgnr,FEIL AS,no,123456789\n"
        "lower-uscc,杭州澜潮智能装备有限公司,cn,91330106ma2kh7q302\n",
        encoding="utf-8",
    )
    result = ws.cli("borrowers", "import", str(csv_path))
    assert result.exit_code == 1, result.output
    assert re.search(r"line 2: rejected: .*91330106MA2KH7Q30X", result.stderr)
    assert re.search(r"line 3: rejected: .*123456789", result.stderr)
    stored = {b["id"]: b for b in ws.borrowers()}
    assert set(stored) == {"lower-uscc"}
    assert stored["lower-uscc"]["registry_id"] == "91330106MA2KH7Q302"


def test_rejected_multiline_row_is_reported_at_its_first_line(ws: Workspace, tmp_path: Path):
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_text(
        'id,name,source,registry_id\n"multi-line","FJORDLYS\nSJØMAT AS",nowhere,927140004\n',
        encoding="utf-8",
    )
    result = ws.cli("borrowers", "import", str(csv_path))
    assert result.exit_code == 1
    assert re.search(r"line 2: rejected: .*nowhere", result.stderr), result.stderr


def _problems(stderr: str) -> list[tuple[int, str, str]]:
    """(line, warning|rejected, message) of each ``FILE: line N: KIND: message`` line, in printed order."""
    found = re.findall(r"^.*?: line (\d+): (warning|rejected): (.*)$", stderr, flags=re.MULTILINE)
    return [(int(line), kind, message) for line, kind, message in found]


def test_same_registry_id_twice_in_a_file_is_imported_with_a_warning_in_line_order(
    ws: Workspace, tmp_path: Path
):
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_text(
        "id,name,source,registry_id,officer\n"
        "a-cn,杭州澜潮智能装备有限公司,cn,91330106MA2KH7Q302,\n"
        "bad-source,Nowhere Ltd,xx,927140004,\n"
        "b-cn,杭州澜潮智能装备,cn,91330106ma2kh7q302,\n"  # the same code once normalised
        "c-no,FJORDLYS SJØMAT AS,no,927140004,\n"
        "empty-name,,no,974760673,\n"
        "d-no,FJORDLYS AS,no,927140004,\n"
        "e-no,HARDANGER BETONG AS,no,974760673,ghost\n",
        encoding="utf-8",
    )
    result = ws.cli("borrowers", "import", str(csv_path))
    assert result.exit_code == 1, result.output
    problems = _problems(result.stderr)
    assert [(line, kind) for line, kind, _ in problems] == [
        (3, "rejected"),
        (4, "warning"),
        (6, "rejected"),
        (7, "warning"),
        (8, "warning"),
    ], result.stderr
    assert len(result.stderr.strip().splitlines()) == 5  # one line each, nothing else
    assert all(line.startswith(f"{csv_path}: line ") for line in result.stderr.strip().splitlines())
    for line, ids, registry_id in (
        (4, ("b-cn", "a-cn"), "91330106MA2KH7Q302"),
        (7, ("d-no", "c-no"), "927140004"),
    ):
        message = next(message for number, _, message in problems if number == line)
        assert registry_id in message, message
        assert all(repr(borrower_id) in message for borrower_id in ids), message
    assert "officer 'ghost'" in problems[4][2]
    assert "5 added" in result.stdout and "2 rejected" in result.stdout
    assert {b["id"] for b in ws.borrowers()} == {"a-cn", "b-cn", "c-no", "d-no", "e-no"}


def test_registry_id_of_another_borrower_in_the_database_is_imported_with_a_warning(
    ws: Workspace, tmp_path: Path
):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(
        "id,name,source,registry_id\n"
        "x-no,FJORDLYS SJØMAT AS,no,927140004\n"
        "w-cn,杭州澜潮智能装备有限公司,cn,91330106MA2KH7Q302\n",
        encoding="utf-8",
    )
    second.write_text(
        "id,name,source,registry_id\n"
        "y-no,FJORDLYS AS,no,927140004\n"
        "w-cn,杭州澜潮智能装备,cn,91330106ma2kh7q302\n"  # the same borrower again: no warning
        "v-no,HARDANGER BETONG AS,no,974760673\n",
        encoding="utf-8",
    )
    assert ws.cli("borrowers", "import", str(first)).stderr == ""

    result = ws.cli("borrowers", "import", str(second))
    assert result.exit_code == 0, result.output
    [(line, kind, message)] = _problems(result.stderr)
    assert (line, kind) == (2, "warning")
    assert result.stderr.strip().startswith(f"{second}: line 2: warning: ")
    assert "'y-no'" in message and "'x-no'" in message and "927140004" in message
    assert "2 added, 1 updated" in result.stdout
    assert {b["id"] for b in ws.borrowers()} == {"x-no", "y-no", "w-cn", "v-no"}

    # x-no's own row is no duplicate of itself, but y-no now holds its registry id too.
    again = ws.cli("borrowers", "import", str(first))
    assert again.exit_code == 0, again.output
    [(line, kind, message)] = _problems(again.stderr)
    assert (line, kind) == (2, "warning")
    assert "'x-no'" in message and "'y-no'" in message


def test_import_without_a_required_column_exits_2(ws: Workspace, tmp_path: Path):
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_text("id,name,source\ncn-lanchao,杭州澜潮智能装备有限公司,cn\n", encoding="utf-8")
    result = ws.cli("borrowers", "import", str(csv_path))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert str(csv_path) in line and "registry_id" in line
    assert ws.borrowers() == []

    missing = ws.cli("borrowers", "import", str(tmp_path / "absent.csv"))
    assert missing.exit_code == 2
    assert "absent.csv" in one_line(missing.stderr)


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"], ids=["gb18030", "utf8-bom"])
def test_import_reads_gb18030_and_utf8_with_bom(ws: Workspace, tmp_path: Path, encoding: str):
    text = DEMO_BORROWERS.read_text(encoding="utf-8")
    data = text.encode(encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    else:
        assert data.startswith(b"\xef\xbb\xbf")
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_bytes(data)

    result = ws.cli("borrowers", "import", str(csv_path))
    assert result.exit_code == 0, result.output
    assert "4 added" in result.stdout
    stored = {b["id"]: b for b in ws.borrowers()}
    assert stored["cn-lanchao"]["name"] == "杭州澜潮智能装备有限公司"
    assert stored["cn-lanchao"]["legal_rep_on_file"] == "王建国"
    assert stored["cn-lanqi"]["name"] == "上海临港澜启科技有限公司"
    assert stored["no-fjordlys"]["name"] == "FJORDLYS SJØMAT AS"

    again = ws.cli("borrowers", "import", str(csv_path))
    assert again.exit_code == 0
    assert "0 added" in again.stdout and "0 updated" in again.stdout


# -- 4. borrowers list ----------------------------------------------------------------------------


def _tags(value) -> list[str]:
    items = value if isinstance(value, list) else (value or "").replace(";", ",").split(",")
    return sorted(item.strip() for item in items if item.strip())


def test_borrowers_list_json_has_the_csv_fields_and_values(ws: Workspace):
    ws.import_demo_borrowers()
    listed = ws.borrowers()
    assert isinstance(listed, list) and len(listed) == 4
    with DEMO_BORROWERS.open(encoding="utf-8", newline="") as handle:
        expected = {row["id"]: row for row in csv.DictReader(handle)}
    for item in listed:
        assert set(item) == LIST_KEYS | LIFECYCLE_KEYS | PARTY_KEYS
        assert (item["active"], item["deactivated_at"]) == (True, None)
        assert (item["role"], item["secures"]) == ("borrower", [])
        row = expected[item["id"]]
        for key in ("id", "name", "source", "registry_id", "officer", "legal_rep_on_file"):
            assert item[key] == row[key], key
        assert _tags(item["tags"]) == _tags(row["tags"])
        assert parse_duration(item["interval"]) == parse_duration(row["interval"])
        if row["interval"] == "12h":
            assert item["interval"] == "12h"
    assert {item["id"] for item in listed} == set(expected)

    table = ws.cli("borrowers", "list")
    assert table.exit_code == 0
    assert "cn-lanchao" in table.stdout and "not checked yet" in table.stdout


# -- 5. check -------------------------------------------------------------------------------------


def test_check_baseline_is_silent_then_round2_alerts(ws: Workspace):
    ws.import_demo_borrowers()
    ws.stage(1)
    first = ws.check()
    summary = first.stdout.strip().splitlines()[-1]
    assert "checked 4" in summary and "4 baseline" in summary and "0 alert" in summary
    empty = ws.cli("history", "--format", "jsonl")
    assert empty.exit_code == 0 and empty.stdout == ""

    ws.stage(2)
    second = ws.check("--no-notify")
    summary = [line for line in second.stdout.splitlines() if line.startswith("checked ")][0]
    assert "checked 4" in summary and "0 failed" in summary and "3 alert(s)" in summary
    assert "cn-lanqi: unchanged" in second.stdout
    events = ws.history()
    assert_planted(events)
    legal_rep = [e for e in events if e["category"] == "legal_representative"]
    assert {e["borrower_id"] for e in legal_rep} == {"cn-lanchao", "no-fjordlys"}
    assert all(e["alert_id"] is not None for e in legal_rep)

    # The same data again: nothing new.
    third = ws.check()
    assert "0 alert(s)" in third.stdout
    assert len(ws.history()) == len(events)


def test_check_borrower_option_limits_the_check(baselined: Workspace):
    ws = baselined
    ws.stage(2)
    only = ws.check("--borrower", "no-hardanger")
    assert "checked 1" in only.stdout
    for other in ("cn-lanchao", "cn-lanqi", "no-fjordlys"):
        assert other not in only.stdout
    assert {e["borrower_id"] for e in ws.history()} == {"no-hardanger"}

    two = ws.check("--borrower", "cn-lanqi", "--borrower", "no-fjordlys")
    assert "checked 2" in two.stdout
    assert {e["borrower_id"] for e in ws.history()} == {"no-hardanger", "no-fjordlys"}

    unknown = ws.cli("check", "--borrower", "cn-lanchao", "--borrower", "no-such-borrower")
    assert unknown.exit_code == 2
    assert "no-such-borrower" in one_line(unknown.stderr)
    assert {e["borrower_id"] for e in ws.history()} == {"no-hardanger", "no-fjordlys"}

    ws.check()
    assert_planted(ws.history())


def test_check_with_a_missing_folder_fails_that_borrower_only(baselined: Workspace):
    ws = baselined
    ws.stage(2)
    shutil.rmtree(ws.company_folder("no-hardanger"))
    result = ws.check(expect=1)
    assert "1 failed" in result.stdout
    failed_line = one_line(result.stderr)
    assert "no-hardanger" in failed_line and "not_found" in failed_line
    for other in ("cn-lanchao", "cn-lanqi", "no-fjordlys"):
        assert other not in failed_line
    events = ws.history()
    assert_planted(events, [p for p in ROUND2_PLANTED if p[0] != "no-hardanger"])

    ws.stage(2)
    ws.check()
    assert_planted(ws.history())


GARBAGE = '{"Status": "200", "Res'


@pytest.mark.parametrize(
    ("borrower_id", "file_name", "payload"),
    [
        ("cn-lanchao", "getinfo.json", GARBAGE),
        ("no-fjordlys", "enhet.json", GARBAGE),
        ("no-fjordlys", "roller.json", GARBAGE),
        ("cn-lanchao", "getinfo.json", "<html><body>502 Bad Gateway</body></html>"),
        ("cn-lanchao", "getinfo.json", ""),
        ("cn-lanchao", "getinfo.json", '{"Status": "200", "Message": "OK", "Result": null}'),
        ("no-fjordlys", "roller.json", "[]"),
    ],
    ids=[
        "cn-truncated",
        "no-enhet-truncated",
        "no-roller-truncated",
        "cn-html",
        "cn-empty",
        "cn-null-result",
        "no-roller-array",
    ],
)
def test_garbage_response_is_a_failure_never_a_change(baselined: Workspace, borrower_id, file_name, payload):
    ws = baselined
    ws.stage(2)
    (ws.company_folder(borrower_id) / file_name).write_text(payload, encoding="utf-8")
    for _ in range(2):  # a second failure in a row changes nothing either
        result = ws.check(expect=1)
        failed_line = one_line(result.stderr)
        assert borrower_id in failed_line
        assert "parse_error" in failed_line
        events = ws.history()
        assert [e for e in events if e["borrower_id"] == borrower_id] == []
        assert_planted(events, [p for p in ROUND2_PLANTED if p[0] != borrower_id])

    ws.stage(2)
    ws.check()
    assert_planted(ws.history())


def test_roles_document_without_role_groups_is_not_a_change(baselined: Workspace):
    ws = baselined
    ws.stage(1)
    (ws.company_folder("no-fjordlys") / "roller.json").write_text("{}", encoding="utf-8")
    ws.cli("check", "--borrower", "no-fjordlys")
    assert ws.history("--borrower", "no-fjordlys") == []


# -- 6. history -----------------------------------------------------------------------------------


def test_history_formats_and_filters(baselined: Workspace):
    ws = baselined
    ws.stage(2)
    ws.check()

    jsonl = ws.cli("history", "--format", "jsonl")
    assert jsonl.exit_code == 0
    events = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(events) == len(ROUND2_PLANTED)
    for event in events:
        assert list(event) == [*HISTORY_KEYS, *LISTING_KEYS]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {e["borrower_name"] for e in events} >= {"杭州澜潮智能装备有限公司", "FJORDLYS SJØMAT AS"}

    as_csv = ws.cli("history", "--format", "csv")
    assert as_csv.exit_code == 0
    reader = csv.DictReader(io.StringIO(as_csv.stdout))
    assert reader.fieldnames == [*HISTORY_KEYS, *LISTING_KEYS]
    rows = list(reader)
    assert len(rows) == len(events)
    by_id = {int(row["id"]): row for row in rows}
    for event in events:
        row = by_id[event["id"]]
        for key in [*HISTORY_KEYS, *LISTING_KEYS]:
            expected = "" if event[key] is None else str(event[key])
            assert row[key] == expected, (key, row[key], expected)
    assert any(row["after"] == "李娜" for row in rows)

    lanchao = ws.history("--borrower", "cn-lanchao")
    assert lanchao and {e["borrower_id"] for e in lanchao} == {"cn-lanchao"}
    assert len(lanchao) == sum(1 for p in ROUND2_PLANTED if p[0] == "cn-lanchao")

    legal = ws.history("--category", "legal_representative")
    assert {e["borrower_id"] for e in legal} == {"cn-lanchao", "no-fjordlys"}
    assert {e["category"] for e in legal} == {"legal_representative"}

    both = ws.history("--borrower", "no-fjordlys", "--category", "director", "--category", "manager")
    assert len(both) == 4 and {e["category"] for e in both} == {"director", "manager"}

    assert ws.history("--since", "2999-01-01") == []
    assert len(ws.history("--since", "2000-01-01")) == len(events)

    # --since without a zone is in [watcher] timezone (Asia/Shanghai), as every time people read is.
    latest = max(datetime.fromisoformat(e["detected_at"]) for e in events)
    local = latest.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    newest = max(events, key=lambda e: datetime.fromisoformat(e["detected_at"]))
    just_before = (local - timedelta(minutes=1)).isoformat(timespec="minutes")
    assert newest["id"] in {e["id"] for e in ws.history("--since", just_before)}
    assert ws.history("--since", (local + timedelta(minutes=1)).isoformat(timespec="minutes")) == []

    bad = ws.cli("history", "--category", "ceo")
    assert bad.exit_code == 2
    assert "ceo" in one_line(bad.stderr)
    bad_date = ws.cli("history", "--since", "yesterday")
    assert bad_date.exit_code == 2
    assert "yesterday" in one_line(bad_date.stderr)

    table = ws.cli("history")  # people's table: in [watcher] language (zh-CN by default)
    assert table.exit_code == 0 and "法定代表人" in table.stdout and "变更前 → 变更后" in table.stdout
    assert "legal_representative" not in table.stdout and "Aktiv: no deletion" not in table.stdout


# -- 7. demo --------------------------------------------------------------------------------------


def _rounds(output: str) -> dict[int, str]:
    parts = re.split(r"=== round (\d+)", output)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_demo_runs_offline_and_prints_rounds_alerts_and_history(tmp_path: Path):
    keep = tmp_path / "demo"
    result = invoke("demo", "--keep", str(keep))
    assert result.exit_code == 0, result.output
    out = result.stdout
    rounds = _rounds(out)
    assert set(rounds) == {1, 2, 3}
    for number, text in rounds.items():
        for borrower_id in BORROWER_IDS:
            assert f"  {borrower_id}: " in text, (number, borrower_id)
    assert "baseline" in rounds[1]
    assert "FAILED" not in out
    assert re.search(r"【高风险】.*（cn-lanchao）", rounds[2])
    assert re.search(r"【警示】.*（no-fjordlys）", rounds[2])
    assert re.search(r"【提示】.*（no-hardanger）", rounds[2])
    assert "cn-lanqi: unchanged" in rounds[2]
    assert re.search(r"【严重】.*（cn-lanqi）", rounds[3])
    assert re.search(r"【严重】.*（no-hardanger）", rounds[3])
    assert any("提前收回" in line for line in out.splitlines() if "建议" in line)
    assert "=== change history ===" in out
    history_part = out.split("=== change history ===", 1)[1]
    assert "法定代表人" in history_part and "legal_representative" not in history_part

    # The kept database holds what README.md promises.
    rows = history_of(keep / "watcher.toml")
    severity: dict[tuple[str, str], set] = defaultdict(set)
    for row in rows:
        severity[(row["detected_at"][:10], row["borrower_id"])].add(row["severity"])
    round2, round3 = (f"{when:%Y-%m-%d}" for when in ROUND_TIMES[1:])
    assert severity[(round2, "cn-lanchao")] == {"high"}
    assert severity[(round2, "no-fjordlys")] == {"warning"}
    assert severity[(round2, "no-hardanger")] == {"info"}
    assert (round2, "cn-lanqi") not in severity
    assert severity[(round3, "cn-lanqi")] == {"critical"}
    assert severity[(round3, "no-hardanger")] == {"critical"}
    assert severity[(round3, "no-fjordlys")] == {"high"}  # second key-person occasion
    assert severity[(round3, "cn-lanchao")] == {"high"}
    statuses = {
        row["borrower_id"]: row["after"]
        for row in rows
        if row["category"] == "status" and row["detected_at"].startswith(round3)
    }
    assert "revoked" in statuses["cn-lanqi"]
    assert "bankrupt" in statuses["no-hardanger"]
    round2_events = [row for row in rows if row["detected_at"].startswith(round2)]
    assert_planted(round2_events)


def test_demo_in_english(tmp_path: Path):
    result = invoke("demo", "--language", "en")
    assert result.exit_code == 0, result.output
    assert "High risk" in result.stdout
    assert "Critical" in result.stdout
    assert "=== change history ===" in result.stdout

    bad = invoke("demo", "--language", "fr")
    assert bad.exit_code == 2
    assert "fr" in one_line(bad.stderr)


# -- 8. db upgrade --------------------------------------------------------------------------------


def test_db_upgrade_on_a_fresh_database_then_up_to_date(tmp_path: Path):
    config = tmp_path / "etc" / "watcher.toml"
    config.parent.mkdir()
    assert invoke("init", str(config)).exit_code == 0

    first = invoke("--config", str(config), "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "upgraded" in first.stdout
    assert (config.parent / "watcher.db").is_file()

    second = invoke("--config", str(config), "db", "upgrade")
    assert second.exit_code == 0, second.output
    assert "up to date" in second.stdout
    assert first.stdout.split()[-1] in second.stdout  # same head revision


def test_durations_round_trip_in_list(ws: Workspace, tmp_path: Path):
    csv_path = tmp_path / "borrowers.csv"
    csv_path.write_text(
        "id,name,source,registry_id,interval\na,A AS,no,927140004,1h30m\nb,B AS,no,974760673,\n",
        encoding="utf-8",
    )
    assert ws.cli("borrowers", "import", str(csv_path)).exit_code == 0
    stored = {b["id"]: b for b in ws.borrowers()}
    assert parse_duration(stored["a"]["interval"]) == timedelta(hours=1, minutes=30)
    assert stored["b"]["interval"] is None


def test_version_is_the_installed_packages():
    """Operators quote it in a support ticket: the version pip installed, as pyproject names it."""
    import tomllib

    expected = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"watcher {expected}\n"
