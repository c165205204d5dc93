"""End to end: the real ``watcher check`` against a loopback stand-in serving both recherche-entreprises
and the BODACC on 127.0.0.1, with the insolvency signal on, on SQLite and on PostgreSQL. A redressement
judiciaire appears: the borrower's officer hears it (critical); failures of the BODACC are failed
checks, never a lifting; a clôture lifts it (info)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sources.fr_bodacc import DATASET_PATH
from tests.e2e_cli import check, events, importing_cli
from tests.loopback import QuietHandler, serve
from tests.test_dispatch import DING_SECRET, DING_TOKEN

pytest_plugins = ["tests.receivers"]

ROOT = Path(__file__).parent / "fixtures" / "registries"
SIREN = "834217655"
SEARCH = (ROOT / "fr_recherche_entreprises" / "search_by_siren.json").read_text("utf-8")
SAMPLE = (ROOT / "fr_bodacc" / "records_by_siren.json").read_text("utf-8")
NONE = json.dumps({"total_count": 0, "results": []})


class Registries:
    """What each path answers; the test edits the BODACC's answer between checks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodacc: tuple[int, str] = (200, NONE)
        self.asked: list[str] = []

    def answer(self, path: str) -> tuple[int, str]:
        with self.lock:
            self.asked.append(path)
            if path == "/search":
                return 200, SEARCH
            if path == DATASET_PATH:
                return self.bodacc
            return 404, '{"erreur": "not found"}'


@pytest.fixture
def registries():
    state = Registries()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            status, body = state.answer(urlsplit(self.path).path)
            self.send_body(status, body.encode("utf-8"))

    with serve(Handler) as url:
        state.url = url  # type: ignore[attr-defined]
        yield state


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def robot(chat_receiver_factory):
    return chat_receiver_factory(dingtalk_secret=DING_SECRET)


@pytest.fixture
def watcher(registries, robot, database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    config = tmp_path / "watcher.toml"
    config.write_text(
        f"""
[database]
url = "{database_url}"

[sources.fr]
type = "fr_recherche"
base_url = "{registries.url}"
bodacc_base_url = "{registries.url}"
retries = 0
rate = "1000/s"
signals = ["registry", "insolvency"]

[officers.zhang_wei]
name = "张伟"
language = "zh-CN"
urls = ["{robot.dingtalk_url(DING_TOKEN, DING_SECRET)}"]
""",
        encoding="utf-8",
    )
    borrowers = tmp_path / "borrowers.csv"
    borrowers.write_text(
        f"id,name,source,registry_id,officer,tags,interval,legal_rep_on_file\n"
        f"lumiere,ATELIERS LUMIERE DU RHONE,fr,{SIREN},zhang_wei,,,\n",
        encoding="utf-8",
    )
    return importing_cli(config, borrowers)


def test_a_redressement_judiciaire_reaches_the_officer_as_critical(registries, robot, watcher):
    # Baseline: no proceedings. Both hosts were asked; nothing to tell anyone.
    check(watcher)
    assert events(watcher) == []
    assert registries.asked.count(DATASET_PATH) == 1 and "/search" in registries.asked
    assert robot.texts(DING_TOKEN) == []

    # The BODACC publishes the opening of a redressement judiciaire: one critical alert.
    registries.bodacc = (200, SAMPLE)
    check(watcher)
    [opened] = events(watcher)
    assert (opened["category"], opened["action"], opened["severity"]) == ("bankruptcy", "added", "critical")
    assert opened["subject"] == "Redressement judiciaire"
    [message] = robot.texts(DING_TOKEN)
    assert message.startswith("【严重】") and "破产程序（Redressement judiciaire）立案" in message
    assert "TRIBUNAL DE COMMERCE DE LYON" in message and "2026-03-01" in message
    english = watcher("alerts", "show", str(opened["alert_id"]), "--language", "en").stdout
    assert "[Critical]" in english and "Insolvency proceedings (Redressement judiciaire) opened" in english

    # The BODACC failing in every way: failed checks, never a change, nothing more sent.
    for broken in (
        (500, "oops"),
        (200, ""),
        (200, '{"total_count": 2, "resu'),
        (400, '{"error_code": "ODSQLError", "message": "Unknown field"}'),
        (200, json.dumps({"total_count": 5, "results": json.loads(SAMPLE)["results"]})),
    ):
        registries.bodacc = broken
        check(watcher, ok=False)
        assert len(events(watcher)) == 1
    assert len(robot.texts(DING_TOKEN)) == 1

    # Back, unchanged: nothing. Then the clôture: the proceeding is lifted (info).
    registries.bodacc = (200, SAMPLE)
    check(watcher)
    assert len(events(watcher)) == 1
    document = json.loads(SAMPLE)
    closing = dict(document["results"][0], id="A202700120001", dateparution="2027-01-20")
    closing["jugement"] = json.dumps(
        {
            "type": "initial",
            "famille": "Jugement de clôture",
            "nature": "Jugement de clôture pour insuffisance d'actif",
            "date": "2027-01-10",
        },
        ensure_ascii=False,
    )
    document["results"].append(closing)
    document["total_count"] = 3
    registries.bodacc = (200, json.dumps(document, ensure_ascii=False))
    check(watcher)
    lifted = events(watcher)[1:]
    assert [(e["category"], e["action"], e["severity"]) for e in lifted] == [
        ("bankruptcy", "removed", "info")
    ]
