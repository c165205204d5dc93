"""Tianyancha risk signals end to end: a scripted vendor stand-in on 127.0.0.1, the real
``watcher check`` through the CLI, on a SQLite file and on PostgreSQL.

One borrower goes through: a dishonest-debtor listing in force at the first check (one onboarding
alert), reordered lists (nothing), a new equity pledge and enforcement case (high), an abnormal
listing and its removal, an actual-controller change then a legal-representative change within the
window (high risk, early repayment recommended), and a 500, a captcha page and truncated JSON on a
risk endpoint (failed check, nothing stored).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from sources.tianyancha import SIGNAL_ENDPOINTS
from tests.cn_samples import SAMPLE_USCC, TIANYANCHA_RISK, TIANYANCHA_SAMPLES
from tests.loopback import QuietHandler, serve
from watcher.cli import app
from watcher.models import Alert, ChangeEvent
from watcher.record import Action, Category
from watcher.store import open_store
from watcher.vocabulary import AlertKind

RISK = TIANYANCHA_RISK
USCC = SAMPLE_USCC
EMPTY = json.dumps({"result": {"total": 0, "items": []}, "reason": "ok", "error_code": 0}).encode()
STEMS = {
    "/services/open/ic/baseinfo/normal": TIANYANCHA_SAMPLES["baseinfo"],
    **{
        call.path: TIANYANCHA_SAMPLES[key]
        for calls in SIGNAL_ENDPOINTS.values()
        for key, call in calls.items()
    },
}
PATH = {stem: path for path, stem in STEMS.items()}
RUNNER = CliRunner()


def sample(stem: str) -> dict:
    return json.loads((RISK / f"{stem}.json").read_text(encoding="utf-8"))


def body(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


class Vendor:
    """What the stand-in answers, path by path (status, body); the test changes it between checks."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {
            path: (200, (RISK / f"{stem}.json").read_bytes()) for path, stem in STEMS.items()
        }

    def serve(self, stem: str, document: dict) -> None:
        self.answers[PATH[stem]] = (200, body(document))

    def t1(self, stem: str) -> None:
        self.serve(stem, sample(f"{stem}_t1"))


@pytest.fixture
def vendor():
    state = Vendor()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            status, answer = state.answers.get(urlsplit(self.path).path, (200, EMPTY))
            self.send_body(status, answer, "application/json;charset=UTF-8")

    with serve(Handler) as url:
        state.url = url  # type: ignore[attr-defined]
        yield state


class Deployment:
    def __init__(self, root: Path, url: str, database: str) -> None:
        root.mkdir()
        self.database = database
        self.config = root / "watcher.toml"
        self.config.write_text(
            f'[database]\nurl = "{database}"\n[schedule]\njitter = "0s"\n'
            f'[sources.tyc]\ntype = "tianyancha"\ntoken = "t"\nbase_url = "{url}"\n'
            'rate = "1000/s"\ntimeout = "5s"\nretries = 0\n',
            encoding="utf-8",
        )
        csv = root / "borrowers.csv"
        csv.write_text(f"id,name,source,registry_id\ncn-hengyue,恒岳精密,tyc,{USCC}\n", encoding="utf-8")
        result = self.cli("borrowers", "import", str(csv))
        assert result.exit_code == 0, result.output

    def cli(self, *args: str):
        return RUNNER.invoke(app, ["--config", str(self.config), *args], catch_exceptions=False)

    def check(self, *, ok: bool = True) -> None:
        result = self.cli("check")
        assert (result.exit_code == 0) is ok, result.output

    def stored(self) -> tuple[list[ChangeEvent], list[Alert]]:
        store = open_store(self.database)
        try:
            with store.transaction() as session:
                events = list(session.exec(select(ChangeEvent).order_by(ChangeEvent.id)))
                alerts = list(session.exec(select(Alert).order_by(Alert.id)))
                session.expunge_all()
        finally:
            store.dispose()
        return events, alerts


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'watcher.db'}"
    return request.getfixturevalue("postgres_url")


def reordered(stem: str) -> dict:
    document = sample(stem)
    document["result"]["items"].reverse()
    return document


def test_risk_signals_end_to_end(tmp_path: Path, vendor: Vendor, database: str) -> None:
    deployment = Deployment(tmp_path / "deployment", vendor.url, database)  # type: ignore[attr-defined]

    # 1. Dishonest-debtor entries in force at the first check: one onboarding alert.
    deployment.check()
    events, alerts = deployment.stored()
    assert [(alert.kind, alert.severity) for alert in alerts] == [(AlertKind.ONBOARDING, "critical")]
    assert any(event.category == Category.DISHONEST_DEBTOR and event.first_seen for event in events)

    # 2. The same lists in another order: nothing.
    for stem in ("mr_abnormal_2.0", "jr_dishonest_2.0", "mr_equityInfo_2.0", "jr_bankruptcy_2.0"):
        vendor.serve(stem, reordered(stem))
    deployment.check()
    assert deployment.stored() == (events, alerts)

    # 3. A new equity pledge and a new enforcement case: high.
    vendor.t1("mr_equityInfo_2.0")
    vendor.t1("jr_zhixinginfo_2.0")
    deployment.check()
    new_events, alerts = deployment.stored()
    fresh = [(event.category, event.action) for event in new_events[len(events) :]]
    assert sorted(fresh) == [
        (Category.ENFORCEMENT, Action.ADDED),
        (Category.EQUITY_PLEDGE, Action.ADDED),
    ]
    assert (len(alerts), alerts[-1].severity) == (2, "high")
    events = new_events

    # 4. An abnormal-operations listing, then its removal.
    vendor.t1("mr_abnormal_2.0")
    deployment.check()
    events, alerts = deployment.stored()
    assert (events[-1].category, events[-1].action) == (Category.ABNORMAL_OPERATION, Action.ADDED)
    assert (len(alerts), alerts[-1].severity) == (3, "critical")
    removed = sample("mr_abnormal_2.0_t1")
    removed["result"]["items"][0].update(removeDate="2026-06-30", removeReason="已移出")
    vendor.serve("mr_abnormal_2.0", removed)
    deployment.check()
    events, alerts = deployment.stored()
    assert (events[-1].category, events[-1].action) == (Category.ABNORMAL_OPERATION, Action.REMOVED)

    # 5. The actual controller changes, then the legal representative: high, early repayment.
    vendor.t1("ic_actualControl_3.0")
    deployment.check()
    events, alerts = deployment.stored()
    assert events[-1].category == Category.ACTUAL_CONTROLLER
    alert_count = len(alerts)
    base = sample("ic_baseinfo_normal")
    base["result"]["legalPersonName"] = "顾嘉禾"
    vendor.serve("ic_baseinfo_normal", base)
    log = sample("ic_changeinfo_2.0_t1")
    log["result"]["items"][0]["changeTime"] = (date.today() - timedelta(days=10)).isoformat()
    vendor.serve("ic_changeinfo_2.0", log)
    deployment.check()
    events, alerts = deployment.stored()
    assert len(alerts) == alert_count + 1
    assert (alerts[-1].severity, alerts[-1].recommend_early_repayment) == ("high", True)
    assert any(event.category == Category.LEGAL_REPRESENTATIVE for event in events)

    # 6. A failed risk call fails the check and stores nothing.
    for status, answer in (
        (500, b'{"error": "internal"}'),
        (200, "<html><body>请完成滑动验证 captcha</body></html>".encode()),
        (200, body(sample("jr_dishonest_2.0"))[:-40]),
    ):
        vendor.answers[PATH["jr_dishonest_2.0"]] = (status, answer)
        deployment.check(ok=False)
        assert deployment.stored() == (events, alerts)
