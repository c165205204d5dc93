"""The command line of a borrower's lifecycle (README, "Using it"): `borrowers deactivate|reactivate`,
`borrowers import --deactivate-missing`, how `borrowers list`, `check` and `status` show inactive
borrowers, and `db prune`. Real SQLite files and the replayed demo registries of ``tests/test_cli``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select, update

from tests.test_cli import DEMO_BORROWERS, RUNNER, Workspace, one_line
from watcher.cli import app
from watcher.config import load_config
from watcher.models import AuditLog, Borrower, Snapshot, utcnow
from watcher.store import open_store


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient config, and a working directory that is no config's folder."""
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """The four demo borrowers imported and baselined against round 1."""
    made = Workspace(tmp_path / "ws")
    made.import_demo_borrowers()
    made.stage(1)
    made.check()
    return made


def audit(ws: Workspace, action: str) -> list[AuditLog]:
    store = open_store(load_config(ws.config).database.url)
    try:
        with store.session() as session:
            return list(session.exec(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))
    finally:
        store.dispose()


def states(ws: Workspace) -> dict[str, bool]:
    return {item["id"]: item["active"] for item in ws.borrowers()}


def test_deactivate_names_each_borrower_reports_unknown_ids_and_exits_1(ws: Workspace):
    result = ws.cli(
        "borrowers", "deactivate", "cn-lanqi", "nope", "no-hardanger", "--by", "张伟", "--reason", "已结清"
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["deactivated cn-lanqi", "deactivated no-hardanger"]
    assert one_line(result.stderr) == "watcher: unknown borrower id 'nope'"
    assert states(ws) == {"cn-lanchao": True, "cn-lanqi": False, "no-fjordlys": True, "no-hardanger": False}
    rows = audit(ws, "borrower.deactivated")
    assert [(r.subject_id, r.actor, json.loads(r.detail)) for r in rows] == [
        ("cn-lanqi", "张伟", {"reason": "已结清"}),
        ("no-hardanger", "张伟", {"reason": "已结清"}),
    ]
    listed = {item["id"]: item for item in ws.borrowers()}
    assert listed["cn-lanqi"]["deactivated_at"] is not None and listed["cn-lanchao"]["deactivated_at"] is None

    again = ws.cli("borrowers", "deactivate", "cn-lanqi")
    assert again.exit_code == 0 and again.stdout.startswith("cn-lanqi: already inactive since ")
    assert len(audit(ws, "borrower.deactivated")) == 2

    table = RUNNER.invoke(
        app, ["--config", str(ws.config), "borrowers", "list"], env={"COLUMNS": "250"}, catch_exceptions=False
    )
    rows_of = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.count("│") > 2}
    assert rows_of["cn-lanqi"].rstrip(" │").split("│")[-1].strip().startswith("inactive since 20")
    assert rows_of["cn-lanchao"].rstrip(" │").split("│")[-1].strip() == "active"


def test_check_skips_inactive_borrowers_and_says_so_when_one_is_named(ws: Workspace):
    ws.cli("borrowers", "deactivate", "no-fjordlys")
    ws.stage(2)  # round 2 changes no-fjordlys, among others
    everyone = ws.check("--no-notify")
    assert "checked 3" in everyone.stdout and "no-fjordlys" not in everyone.stdout
    assert {e["borrower_id"] for e in ws.history()} == {"cn-lanchao", "no-hardanger"}

    named = ws.check("--borrower", "no-fjordlys")
    assert named.stdout.startswith("no-fjordlys: inactive since ") and "not checked" in named.stdout
    assert "checked" not in named.stdout.replace("not checked", "")
    assert {e["borrower_id"] for e in ws.history()} == {"cn-lanchao", "no-hardanger"}

    back = ws.cli("borrowers", "reactivate", "no-fjordlys", "cn-lanchao", "--by", "kari")
    assert back.exit_code == 0
    assert back.stdout.splitlines() == [
        "reactivated no-fjordlys: due for a check now",
        "cn-lanchao: already active",
    ]
    ws.check("--borrower", "no-fjordlys", "--no-notify")
    # Its change of daglig leder while it was inactive is alerted now, compared with its last snapshot.
    fjordlys = [e for e in ws.history() if e["borrower_id"] == "no-fjordlys"]
    assert any(e["category"] == "legal_representative" and e["alert_id"] for e in fjordlys)
    [row] = audit(ws, "borrower.reactivated")
    assert (row.subject_id, row.actor) == ("no-fjordlys", "kari")

    unknown = ws.cli("borrowers", "reactivate", "ghost")
    assert unknown.exit_code == 1 and one_line(unknown.stderr) == "watcher: unknown borrower id 'ghost'"


def test_status_counts_inactive_borrowers_apart_and_never_as_failing(ws: Workspace):
    ws.cli("borrowers", "deactivate", "no-hardanger", "cn-lanqi")
    store = open_store(load_config(ws.config).database.url)
    with store.transaction() as session:  # failing and long overdue when it was deactivated
        session.exec(
            update(Borrower)
            .where(Borrower.id == "no-hardanger")
            .values(
                consecutive_failures=9,
                last_error_kind="transient",
                next_check_at=utcnow() - timedelta(days=9),
            )
        )
    store.dispose()
    table = ws.cli("status")
    assert table.exit_code == 0, table.stdout
    assert "borrowers: 4 (0 due, 0 overdue, 2 inactive)" in table.stdout
    assert "no-hardanger" not in table.stdout
    report = json.loads(ws.cli("status", "--format", "json").stdout)
    assert report["ok"] is True
    assert report["borrowers"]["inactive"] == 2 and report["borrowers"]["failing"] == 0


def _csv(path: Path, ids: list[str]) -> Path:
    lines = DEMO_BORROWERS.read_text(encoding="utf-8").splitlines()
    path.write_text(
        "\n".join([lines[0], *(line for line in lines[1:] if line.split(",")[0] in ids)]) + "\n", "utf-8"
    )
    return path


def test_import_leaves_unlisted_borrowers_alone_unless_asked_to_deactivate_them(
    ws: Workspace, tmp_path: Path
):
    three = _csv(tmp_path / "three.csv", ["cn-lanchao", "cn-lanqi", "no-fjordlys"])
    plain = ws.cli("borrowers", "import", str(three))
    assert plain.exit_code == 0 and "deactivated" not in plain.stdout
    assert all(states(ws).values())

    flagged = ws.cli("borrowers", "import", str(three), "--deactivate-missing")
    assert flagged.exit_code == 0
    assert "deactivated no-hardanger (not in three.csv)" in flagged.stdout.splitlines()
    assert states(ws) == {"cn-lanchao": True, "cn-lanqi": True, "no-fjordlys": True, "no-hardanger": False}
    [row] = audit(ws, "borrower.deactivated")
    assert (row.subject_id, json.loads(row.detail)) == ("no-hardanger", {"reason": "not in three.csv"})

    # Listed again while inactive: updated, but stays unwatched until reactivated, with a warning.
    everyone = ws.cli("borrowers", "import", str(DEMO_BORROWERS), "--deactivate-missing")
    assert everyone.exit_code == 0
    [warning] = [line for line in everyone.stderr.splitlines() if "inactive" in line]
    assert (
        "line 5: warning: borrower 'no-hardanger' is inactive" in warning
        and "reactivate no-hardanger" in warning
    )
    assert states(ws)["no-hardanger"] is False and "deactivated" not in everyone.stdout

    # A rejected row's borrower would look missing: nothing is deactivated then.
    broken = tmp_path / "broken.csv"
    broken.write_text(three.read_text("utf-8") + "cn-broken,Broken,cn,not-a-code\n", encoding="utf-8")
    refused = ws.cli("borrowers", "import", str(broken), "--deactivate-missing")
    assert refused.exit_code == 1
    assert "--deactivate-missing: nothing deactivated, as 1 row(s) were rejected" in refused.stdout
    assert states(ws) == {"cn-lanchao": True, "cn-lanqi": True, "no-fjordlys": True, "no-hardanger": False}


def test_db_prune_dry_run_removes_nothing_and_the_real_run_removes_and_audits(ws: Workspace):
    ws.stage(2)
    ws.check("--no-notify")
    ws.cli("borrowers", "deactivate", "no-fjordlys", "cn-lanqi")
    nothing = ws.cli("db", "prune")
    assert nothing.exit_code == 0
    assert nothing.stdout.splitlines() == [
        "no borrower has been inactive longer than the retention of 10y: nothing to remove"
    ]

    store = open_store(load_config(ws.config).database.url)
    with store.transaction() as session:  # eleven years pass for one of them
        session.exec(
            update(Borrower)
            .where(Borrower.id == "no-fjordlys")
            .values(deactivated_at=utcnow() - timedelta(days=4100))
        )
    dry = ws.cli("db", "prune", "--dry-run")
    assert dry.exit_code == 0
    [line, summary] = dry.stdout.splitlines()
    assert line.startswith("would remove no-fjordlys (inactive since ")
    assert "2 snapshot(s)" in line and "1 alert(s) with 0 deliveries" in line
    assert summary == "1 borrower(s) inactive longer than the retention of 10y (dry run: nothing removed)"
    assert "no-fjordlys" in {b["id"] for b in ws.borrowers()} and audit(ws, "borrower.pruned") == []

    real = ws.cli("db", "prune", "--by", "ops")
    assert real.exit_code == 0
    assert real.stdout.splitlines()[0] == line.replace("would remove", "removed")
    assert {b["id"] for b in ws.borrowers()} == {"cn-lanchao", "cn-lanqi", "no-hardanger"}
    assert "no-fjordlys" not in {e["borrower_id"] for e in ws.history()}
    with store.session() as session:
        assert session.exec(select(Snapshot).where(Snapshot.borrower_id == "no-fjordlys")).all() == []
    store.dispose()
    [row] = audit(ws, "borrower.pruned")
    assert (row.subject_id, row.actor, json.loads(row.detail)["snapshots"]) == ("no-fjordlys", "ops", 2)
