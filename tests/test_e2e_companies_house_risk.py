"""Companies House risk signals end to end: the real ``watcher check`` through the CLI against a
loopback stand-in for the Companies House API, on SQLite and on PostgreSQL, delivering to the
officer's chat robot on 127.0.0.1 in the officer's language (zh-CN).

One borrower goes through: an outstanding charge and a PSC statement in force at the first check
(one onboarding alert), the same answers reformatted (nothing), a 500, a non-registry 404 and
truncated JSON on the insolvency call (failed checks, nothing stored), a new charge (high, read in
Chinese by the officer), an insolvency case (critical), and overdue accounts coming into force
(warning) and clearing (info).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e_cli import check, events, importing_cli
from tests.loopback import QuietHandler, serve
from tests.receivers import ChatReceiver

FIXTURES = Path(__file__).parent / "fixtures" / "registries" / "uk_companies_house"
NUMBER = "SC612345"
COMPANY = f"/company/{NUMBER}"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class Registry:
    """What the stand-in answers, path by path (status, body); the test changes it between checks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: dict[str, tuple[int, str]] = {
            COMPANY: (200, fixture("company_profile.json")),
            f"{COMPANY}/officers": (200, fixture("officers_t0.json")),
            f"{COMPANY}/persons-with-significant-control": (200, fixture("psc.json")),
            f"{COMPANY}/charges": (200, fixture("charges.json")),
            f"{COMPANY}/insolvency": (404, fixture("error_404_insolvency_not_found.json")),
            f"{COMPANY}/persons-with-significant-control-statements": (200, fixture("psc_statements.json")),
        }
        self.url = ""

    def set(self, path: str, status: int, body: str) -> None:
        with self.lock:
            self.answers[path] = (status, body)

    def answer(self, path: str) -> tuple[int, str]:
        with self.lock:
            return self.answers.get(path, (404, fixture("error_404_company_not_found.json")))


@pytest.fixture
def registry() -> Iterator[Registry]:
    state = Registry()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            status, body = state.answer(urlsplit(self.path).path)
            self.send_body(status, body.encode("utf-8"), "application/json")

    with serve(Handler) as url:
        state.url = url
        yield state


@pytest.fixture
def robot() -> Iterator[ChatReceiver]:
    receiver = ChatReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def watcher(registry, robot, database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    config = tmp_path / "watcher.toml"
    config.write_text(
        f"""
[watcher]
language = "en"

[database]
url = "{database_url}"

[sources.uk]
type = "companies_house"
api_key = "test-key"
base_url = "{registry.url}"
retries = 0
rate = "1000/s"
signals = ["registry", "charges", "insolvency", "psc_statements"]

[officers.li_na]
name = "李娜"
language = "zh-CN"
urls = [{json.dumps(robot.dingtalk_url("li-na-robot"))}]
""",
        encoding="utf-8",
    )
    borrowers = tmp_path / "borrowers.csv"
    borrowers.write_text(
        "id,name,source,registry_id,officer,tags,interval,legal_rep_on_file\n"
        f"northwind,Northwind Harbour Logistics,uk,{NUMBER},li_na,,,\n",
        encoding="utf-8",
    )
    return importing_cli(config, borrowers)


def triples(found: list[dict]) -> set[tuple[str, str, str]]:
    return {(e["category"], e["action"], e["severity"]) for e in found}


def test_companies_house_risk_signals_end_to_end(registry, robot, watcher):
    # Onboarding: an outstanding charge and an unconfirmed-PSC statement are in force already.
    check(watcher)
    first = events(watcher)
    # Each event carries its check's severity: the charge's (high) is the highest.
    assert triples(first) == {("charge", "added", "high"), ("psc_statement", "added", "high")}
    assert all(e["first_seen"] for e in first) and len({e["alert_id"] for e in first}) == 1
    seen = len(first)
    delivered = len(robot.accepted)
    assert delivered == 1 and "抵押/押记登记" in robot.accepted[0].text

    # The same answers reformatted: nothing.
    for path in (f"{COMPANY}/charges", f"{COMPANY}/persons-with-significant-control-statements"):
        _, body = registry.answer(path)
        registry.set(path, 200, json.dumps(json.loads(body), indent=3))
    check(watcher)
    assert events(watcher)[seen:] == []

    # The insolvency call fails: a failed check, no alert, no case read as "none" or as new.
    insolvency = f"{COMPANY}/insolvency"
    saved = registry.answer(insolvency)
    for status, body in (
        (500, "oops"),
        (404, "<html>Not Found</html>"),
        (200, '{"cases": [{"type": "compul'),
    ):
        registry.set(insolvency, status, body)
        check(watcher, ok=False)
        assert events(watcher)[seen:] == []
    registry.set(insolvency, *saved)

    # A new charge: high, and the officer reads it in Chinese.
    registry.set(f"{COMPANY}/charges", 200, fixture("charges_t1.json"))
    check(watcher)
    fresh = events(watcher)[seen:]
    assert triples(fresh) == {("charge", "added", "high")}
    assert fresh[0]["subject"] == "SC6123450003"
    seen += len(fresh)
    assert len(robot.accepted) == delivered + 1
    message = robot.accepted[-1].text
    assert "抵押/押记登记 登记" in message and "SC6123450003" in message
    assert "Forth Valley Trade Finance Limited" in message
    assert message.startswith("【高风险】") and "来源：英国 Companies House" in message
    delivered += 1

    # An insolvency case is opened: critical, its case type in the reader's words.
    registry.set(insolvency, 200, fixture("insolvency.json"))
    check(watcher)
    fresh = events(watcher)[seen:]
    assert triples(fresh) == {("bankruptcy", "added", "critical")}
    seen += len(fresh)
    assert "债权人自愿清算（creditors-voluntary-liquidation）" in robot.accepted[-1].text

    # The accounts fall overdue (warning), then are filed (info).
    profile = json.loads(fixture("company_profile.json"))
    profile["accounts"]["overdue"] = True
    registry.set(COMPANY, 200, json.dumps(profile))
    check(watcher)
    fresh = events(watcher)[seen:]
    assert triples(fresh) == {("filing_overdue", "added", "warning")}
    seen += len(fresh)
    assert "逾期申报 列入: 年度账目逾期" in robot.accepted[-1].text
    registry.set(COMPANY, 200, fixture("company_profile.json"))
    check(watcher)
    assert triples(events(watcher)[seen:]) == {("filing_overdue", "removed", "info")}
