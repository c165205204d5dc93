"""The alert lifecycle compliance relies on: open → acknowledged (by, at, note) → closed, all audited.

Driven through the command line (``watcher alerts``, ``alerts ack``, ``alerts close``) on a real
database whose alerts come from the real Checker (``tests/deployment.py``: one high, one warning
and one info alert). The audit log's refusal of UPDATE/DELETE is tested in test_store; here the
rows' content and order are.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.deployment import Deployment
from watcher.alerts import AlertStateError, acknowledge
from watcher.cli import app
from watcher.labels import ALERTS_HEADERS
from watcher.models import Alert, utcnow
from watcher.vocabulary import Language

RUNNER = CliRunner()


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path, sqlite_url, "")
    deployment.baseline_then_change()
    yield deployment
    deployment.close()


def cli(world: Deployment, *args: str) -> Result:
    return RUNNER.invoke(app, ["--config", str(world.config_path), *args], catch_exceptions=False)


def listed(result: Result) -> dict[int, dict[str, str]]:
    """The rows of the ``watcher alerts`` table by alert id, in the order shown. Piped, the table is
    tab-separated: a header line, then one line per alert."""
    assert result.exit_code == 0, result.output
    columns = list(ALERTS_HEADERS[Language.EN])  # the deployment reads zh-CN: its headers, by their names
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == list(ALERTS_HEADERS[Language.ZH_CN])
    rows = [dict(zip(columns, line.split("\t"), strict=True)) for line in lines]
    return {int(row["id"]): row for row in rows}


def alert_ids(world: Deployment) -> dict[str, int]:
    return {borrower_id: alert.id for borrower_id, alert in world.alerts().items()}


def test_alerts_lists_open_ones_newest_first_and_filters_by_status(world):
    ids = alert_ids(world)
    listing = listed(cli(world, "alerts"))
    assert list(listing) == sorted(ids.values(), reverse=True)  # same check time: newest id first
    assert {row["status"] for row in listing.values()} == {"待处理"}  # [watcher] language (point 6)
    assert listing[ids["b-lanchao"]]["severity"] == "高风险"
    assert listing[ids["b-lanchao"]]["kind"] == "登记变更"
    assert listing[ids["b-lanchao"]]["borrower"] == "b-lanchao 杭州澜潮智能装备有限公司"

    assert cli(world, "alerts", "ack", str(ids["b-fjordlys"]), "--by", "张伟").exit_code == 0
    assert set(listed(cli(world, "alerts"))) == {ids["b-lanchao"], ids["b-hardanger"]}
    acknowledged = listed(cli(world, "alerts", "--status", "acknowledged"))
    assert list(acknowledged) == [ids["b-fjordlys"]]
    assert acknowledged[ids["b-fjordlys"]]["handled by"] == "张伟"
    everything = listed(cli(world, "alerts", "--status", "all"))
    assert set(everything) == set(ids.values())
    assert listed(cli(world, "alerts", "--status", "closed")) == {}


def test_acknowledge_records_who_when_and_why_once(world):
    alert_id = alert_ids(world)["b-lanchao"]
    before = utcnow()
    result = cli(world, "alerts", "ack", str(alert_id), "--by", "张伟", "--note", "已电话核实")
    after = utcnow()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"alert #{alert_id} acknowledged by 张伟"

    alert = world.alerts()["b-lanchao"]
    assert (alert.status, alert.acknowledged_by, alert.note) == ("acknowledged", "张伟", "已电话核实")
    assert before - timedelta(seconds=1) <= alert.acknowledged_at <= after + timedelta(seconds=1)
    assert (alert.closed_by, alert.closed_at) == (None, None)
    [entry] = world.audit_rows("alert.acknowledged")
    assert (entry.actor, entry.subject_type, entry.subject_id) == ("张伟", "alert", str(alert_id))
    assert json.loads(entry.detail) == {"note": "已电话核实"}
    assert entry.at == alert.acknowledged_at

    again = cli(world, "alerts", "ack", str(alert_id), "--by", "李娜")
    assert again.exit_code == 1
    assert f"alert #{alert_id} is acknowledged, only an open alert can be acknowledged" in again.stderr
    assert len(world.audit_rows("alert.acknowledged")) == 1
    unchanged = world.alerts()["b-lanchao"]
    assert (unchanged.acknowledged_by, unchanged.acknowledged_at) == ("张伟", alert.acknowledged_at)


def test_alerts_show_says_how_the_alert_was_handled_in_the_readers_language(world):
    """Issue 14 follow-up, point 6: not "status: acknowledged (张伟)" but who, when and the note."""
    alert_id = alert_ids(world)["b-lanchao"]
    opened = cli(world, "alerts", "show", str(alert_id)).stdout.splitlines()
    assert opened[-1] == "状态：待处理"
    assert cli(world, "alerts", "ack", str(alert_id), "--by", "张伟", "--note", "已电话核实").exit_code == 0
    *_, status, note = cli(world, "alerts", "show", str(alert_id)).stdout.splitlines()
    assert re.fullmatch(r"状态：已确认（张伟，20\d\d-\d\d-\d\d \d\d:\d\d \+\d\d:\d\d）", status), status
    assert note == "备注：已电话核实"
    *_, status, note = cli(world, "alerts", "show", str(alert_id), "--language", "en").stdout.splitlines()
    assert re.fullmatch(r"Status: Acknowledged \(张伟, 20\d\d-\d\d-\d\d \d\d:\d\d \+\d\d:\d\d\)", status)
    assert note == "Note: 已电话核实"


def test_close_ends_the_handling_from_acknowledged_or_straight_from_open(world):
    ids = alert_ids(world)
    lanchao, hardanger = ids["b-lanchao"], ids["b-hardanger"]
    assert cli(world, "alerts", "ack", str(lanchao), "--by", "张伟", "--note", "已电话核实").exit_code == 0
    closed = cli(world, "alerts", "close", str(lanchao), "--by", "李娜", "--note", "已提前收回")
    assert closed.exit_code == 0, closed.output
    assert closed.stdout.strip() == f"alert #{lanchao} closed by 李娜"
    alert = world.alerts()["b-lanchao"]
    assert (alert.status, alert.closed_by, alert.acknowledged_by) == ("closed", "李娜", "张伟")
    assert alert.closed_at >= alert.acknowledged_at
    assert alert.note == "已电话核实\n已提前收回"  # the acknowledgement's note is kept, not overwritten

    # An info alert may be closed without being acknowledged first.
    assert cli(world, "alerts", "close", str(hardanger), "--by", "王芳").exit_code == 0
    assert world.alerts()["b-hardanger"].status == "closed"

    twice = cli(world, "alerts", "close", str(lanchao), "--by", "李娜")
    assert twice.exit_code == 1 and f"alert #{lanchao} is already closed" in twice.stderr
    late_ack = cli(world, "alerts", "ack", str(hardanger), "--by", "张伟")
    assert late_ack.exit_code == 1 and f"alert #{hardanger} is closed" in late_ack.stderr
    assert listed(cli(world, "alerts", "--status", "closed")).keys() == {lanchao, hardanger}


@pytest.mark.parametrize(
    ("args", "exit_code", "says"),
    [
        (("alerts", "ack", "999", "--by", "张伟"), 1, "no alert #999"),
        (("alerts", "close", "999", "--by", "张伟"), 1, "no alert #999"),
        (("alerts", "ack", "{id}"), 2, "Missing option '--by'"),
        (("alerts", "close", "{id}", "--note", "x"), 2, "Missing option '--by'"),
        (("alerts", "ack", "{id}", "--by", "   "), 2, "--by must name who handles the alert"),
        (("alerts", "ack", "first", "--by", "张伟"), 2, "Invalid value for 'ID'"),
        (("alerts", "--status", "pending"), 2, "--status"),
    ],
)
def test_unknown_alerts_and_usage_errors_change_nothing(world, args, exit_code, says):
    alert_id = alert_ids(world)["b-lanchao"]
    result = cli(world, *(arg.replace("{id}", str(alert_id)) for arg in args))
    assert result.exit_code == exit_code, result.output
    assert says in " ".join(result.stderr.replace("│", " ").split())  # rich boxes wrap usage errors
    assert {alert.status for alert in world.alerts().values()} == {"open"}
    assert [entry.action for entry in world.audit_rows() if entry.action.startswith("alert.")] == [
        "alert.opened"
    ] * 3


def test_the_audit_trail_lists_every_step_in_order(world):
    ids = alert_ids(world)
    steps = [
        ("ack", "b-lanchao", "张伟", "已电话核实"),
        ("ack", "b-fjordlys", "Kari Nordmann", "called the CFO"),
        ("close", "b-lanchao", "李娜", "已提前收回"),
        ("close", "b-hardanger", "王芳", None),
    ]
    for verb, borrower, by, note in steps:
        extra = ["--note", note] if note else []
        assert cli(world, "alerts", verb, str(ids[borrower]), "--by", by, *extra).exit_code == 0

    trail = [entry for entry in world.audit_rows() if entry.subject_type == "alert"]
    opened, handled = trail[:3], trail[3:]
    assert [(e.action, e.actor) for e in opened] == [("alert.opened", "watcher")] * 3
    assert {e.subject_id for e in opened} == {str(i) for i in ids.values()}
    assert [(e.action, e.actor, e.subject_id, json.loads(e.detail)["note"]) for e in handled] == [
        ("alert.acknowledged", "张伟", str(ids["b-lanchao"]), "已电话核实"),
        ("alert.acknowledged", "Kari Nordmann", str(ids["b-fjordlys"]), "called the CFO"),
        ("alert.closed", "李娜", str(ids["b-lanchao"]), "已提前收回"),
        ("alert.closed", "王芳", str(ids["b-hardanger"]), ""),
    ]
    times = [e.at for e in trail]
    assert times == sorted(times)
    assert [e.id for e in trail] == sorted(e.id for e in trail)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_people_acknowledging_at_once_cannot_both_succeed(database, request, tmp_path):
    """The second acknowledgement must wait for the first and then see the alert no longer open,
    not overwrite it: the audit trail would otherwise say two people acknowledged it."""
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    world = Deployment(tmp_path, url, "")
    try:
        world.baseline_then_change()
        alert_id = alert_ids(world)["b-lanchao"]
        second_outcome: list[object] = []

        def second_person() -> None:
            try:
                with world.store.transaction() as session:
                    acknowledge(session, alert_id, by="李娜", note="me too", at=utcnow())
                second_outcome.append("acknowledged")
            except AlertStateError as error:
                second_outcome.append(error)

        with world.store.transaction() as session:
            acknowledge(session, alert_id, by="张伟", note="已电话核实", at=utcnow())
            session.flush()
            other = threading.Thread(target=second_person)
            other.start()
            other.join(timeout=1.0)
            assert other.is_alive(), "the second acknowledgement did not wait for the first"
        other.join(timeout=30)
        [outcome] = second_outcome
        assert isinstance(outcome, AlertStateError)
        with world.store.session() as session:
            alert = session.get(Alert, alert_id)
            assert (alert.status, alert.acknowledged_by, alert.note) == ("acknowledged", "张伟", "已电话核实")
        assert [e.actor for e in world.audit_rows("alert.acknowledged")] == ["张伟"]
    finally:
        world.close()


def test_alerts_as_json_keep_the_stored_codes_whatever_the_language(world):
    """Scripts read --format json: codes and UTC times, while the table speaks [watcher] language."""
    alert_id = alert_ids(world)["b-lanchao"]
    assert cli(world, "alerts", "ack", str(alert_id), "--by", "张伟", "--note", "已电话核实").exit_code == 0
    result = cli(world, "alerts", "--status", "all", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(alert_ids(world).values())
    acked = rows[alert_id]
    assert (acked["status"], acked["acknowledged_by"], acked["note"]) == (
        "acknowledged",
        "张伟",
        "已电话核实",
    )
    assert acked["severity"] in {"info", "warning", "high", "critical"} and acked["kind"] == "change"
    assert acked["borrower_id"] == "b-lanchao" and acked["created_at"].endswith("+00:00")
    stored = world.alerts()["b-lanchao"]
    assert datetime.fromisoformat(acked["acknowledged_at"]) == stored.acknowledged_at.replace(tzinfo=UTC)
    assert "已确认" in cli(world, "alerts", "--status", "all").stdout, "the table is in zh-CN"
