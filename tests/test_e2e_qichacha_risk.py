"""End to end: the real ``watcher check`` against a loopback stand-in for Qichacha's API, with every
risk signal bought, on SQLite and on PostgreSQL. The stand-in answers each path (and person) from a
table the test edits between checks."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from sources.qichacha import PATHS_BY_NAME
from tests.cn_samples import QICHACHA_CARD, QICHACHA_RISK, QICHACHA_SAMPLES, SAMPLE_USCC
from tests.e2e_cli import check, events, importing_cli
from tests.loopback import QuietHandler, serve

RISK = QICHACHA_RISK
USCC = SAMPLE_USCC
EMPTY = json.dumps({"Status": "200", "Message": "ok", "Result": {"VerifyResult": 0, "Data": []}})
SAMPLES = QICHACHA_SAMPLES


def sample(key: str, t1: bool = False) -> str:
    return (RISK / f"{SAMPLES[key]}{'_t1' if t1 else ''}.json").read_text("utf-8")


class Vendor:
    """The answers by raw key; person-level answers by (raw key of the legal representative's, person)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: dict[str, str | tuple[int, str]] = {
            "getinfo": (RISK / f"{QICHACHA_CARD}.json").read_text("utf-8"),
            **{key: sample(key) for key in SAMPLES},
        }
        self.people: dict[tuple[str, str], str] = {}

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str]:
        person = query.get("personName", [""])[0]
        with self.lock:
            name = PATHS_BY_NAME.get(path, "")
            if person:
                found = self.people.get((name, person), EMPTY)
            else:
                found = self.answers.get(name, (404, "not found"))
        return found if isinstance(found, tuple) else (200, found)


@pytest.fixture
def vendor():
    state = Vendor()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            parts = urlsplit(self.path)
            status, body = state.answer(parts.path, parse_qs(parts.query))
            self.send_body(status, body.encode("utf-8"))

    with serve(Handler) as url:
        state.url = url  # type: ignore[attr-defined]
        yield state


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def watcher(vendor, database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    config = tmp_path / "watcher.toml"
    config.write_text(
        f"""
[database]
url = "{database_url}"

[sources.qcc]
type = "qichacha"
key = "K"
secret = "S"
base_url = "{vendor.url}"
retries = 0
rate = "1000/s"
signals = ["registry", "controller", "abnormal", "violations", "pledges", "judicial", "change_log"]
""",
        encoding="utf-8",
    )
    borrowers = tmp_path / "borrowers.csv"
    borrowers.write_text(
        f"id,name,source,registry_id,officer,tags,interval,legal_rep_on_file\n"
        f"hengyue,苏州恒岳精密机械有限公司,qcc,{USCC},,,,周明远\n",
        encoding="utf-8",
    )
    return importing_cli(config, borrowers)


def new_events(cli, seen: int) -> list[dict]:
    return events(cli)[seen:]


def alert_text(cli, alert_id: int, language: str = "en") -> str:
    """The alert as its notification reads (``watcher alerts show``)."""
    result = cli("alerts", "show", str(alert_id), "--language", language)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_risk_signals_end_to_end(vendor, watcher):
    # Onboarding: the borrower is already a dishonest debtor (740), among other listings in force.
    check(watcher)
    first = events(watcher)
    assert {e["category"] for e in first} >= {"dishonest_debtor", "abnormal_operation", "enforcement"}
    assert len({e["alert_id"] for e in first}) == 1  # one onboarding alert
    assert all(e["first_seen"] for e in first)
    onboarding = alert_text(watcher, first[0]["alert_id"])
    assert "[Critical]" in onboarding and "risk listings active at onboarding" in onboarding
    assert "applying for asset preservation" in onboarding
    seen = len(first)

    # The same answers reordered and reformatted: nothing.
    for key in ("zhixing", "equity_pledged", "exception"):
        document = json.loads(vendor.answers[key])
        document["Result"]["Data"].reverse()
        vendor.answers[key] = json.dumps(document, ensure_ascii=False, indent=3)
    check(watcher)
    assert new_events(watcher, seen) == []

    # Failures on a risk endpoint: a failed check, no alert, no removals.
    for broken in (
        (500, "oops"),
        (200, "<html>请完成安全验证 captcha</html>"),
        (200, '{"Status": "200", "Res'),
        (200, json.dumps({"Status": "112", "Message": "额度不足", "Result": None})),
    ):
        saved = vendor.answers["exception"]
        vendor.answers["exception"] = broken
        check(watcher, ok=False)
        vendor.answers["exception"] = saved
        assert new_events(watcher, seen) == []

    # A new equity pledge (high) and a new enforcement case against the legal representative.
    vendor.answers["equity_pledged"] = sample("equity_pledged", True)
    zhixing = json.loads(sample("zhixing", True))
    zhixing["Result"]["Data"] = zhixing["Result"]["Data"][2:]
    zhixing["Paging"]["TotalRecords"] = 1
    vendor.people[("person_zhixing_legal_representative", "周明远")] = json.dumps(zhixing, ensure_ascii=False)
    check(watcher)
    fresh = new_events(watcher, seen)
    assert {(e["category"], e["action"], e["severity"]) for e in fresh} == {
        ("equity_pledge", "added", "high"),
        ("enforcement", "added", "high"),
    }
    against = [e for e in fresh if e["category"] == "enforcement"]
    assert [(e["party"], e["party_name"]) for e in against] == [("legal_representative", "周明远")]
    assert "（针对法定代表人 周明远）" in alert_text(watcher, against[0]["alert_id"], "zh-CN")
    assert "(against the legal representative, 周明远)" in alert_text(watcher, against[0]["alert_id"])
    seen += len(fresh)

    # A new abnormal listing (critical), then its removal (info).
    listed = json.loads(sample("exception", True))
    vendor.answers["exception"] = json.dumps(listed, ensure_ascii=False)
    check(watcher)
    fresh = new_events(watcher, seen)
    assert [(e["category"], e["action"], e["severity"]) for e in fresh] == [
        ("abnormal_operation", "added", "critical")
    ]
    seen += 1
    listed["Result"]["Data"][2].update(RemoveDate="2026-06-01", RomoveReason="已更正")
    vendor.answers["exception"] = json.dumps(listed, ensure_ascii=False)
    check(watcher)
    fresh = new_events(watcher, seen)
    assert [(e["category"], e["action"], e["severity"]) for e in fresh] == [
        ("abnormal_operation", "removed", "info")
    ]
    seen += 1

    # The actual controller changes, then the legal representative: high risk.
    vendor.answers["actual_control"] = sample("actual_control", True)
    check(watcher)
    seen = len(events(watcher))
    vendor.answers["getinfo"] = (RISK / f"{QICHACHA_CARD}_t1.json").read_text("utf-8")
    vendor.answers["change_log"] = sample("change_log", True)
    vendor.answers["history_oper"] = sample("history_oper", True)
    check(watcher)
    fresh = new_events(watcher, seen)
    legal = [e for e in fresh if e["category"] == "legal_representative"]
    assert legal and {e["severity"] for e in legal} == {"high"}
    text = alert_text(watcher, legal[0]["alert_id"])
    assert "[High risk]" in text and "consider calling the loan early" in text
