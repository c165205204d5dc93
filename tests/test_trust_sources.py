"""Issue 11, points 1, 2 and 5, end to end: answers that are not data never become changes.

A scripted Brønnøysund stand-in on 127.0.0.1, the real ``watcher check`` through the CLI, a real
SQLite file read back through the store. A bare HTTP 410 (a captcha page, an empty body, other JSON)
and a body that is not valid in its charset store no change and no alert; the register's own
removed-unit answer still stores the deregistration; a Retry-After of a day pauses the source for
``max_pause`` at most, logged once.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tests.loopback import QuietHandler, serve
from watcher.cli import app
from watcher.models import Alert, ChangeEvent, Snapshot
from watcher.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "registries" / "no_brreg"
ORGNR = "927140004"
SECOND_ORGNR = "974760673"
API = "/enhetsregisteret/api"
UNIT = f"{API}/enheter/{ORGNR}"
ROLES = f"{API}/enheter/{ORGNR}/roller"
CAPTCHA_PAGE = (
    b"<!DOCTYPE html><html><head><title>Access denied</title></head><body><h1>Access denied</h1>"
    b"<p>Please complete the captcha to continue to data.brreg.no.</p></body></html>"
)
RUNNER = CliRunner()


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Registry:
    """What the stand-in answers, path by path; the test changes it between checks."""

    def __init__(self) -> None:
        self.url = ""  # set once it is serving
        self.answers: dict[str, Answer] = {}
        self.hits: Counter[str] = Counter()

    def company(self, roles: bytes | None = None, content_type: str = "application/json") -> None:
        """The unit and its roles as Brønnøysund serves them (UTF-8 JSON)."""
        self.answers[UNIT] = Answer(200, (FIXTURES / "enhet.json").read_bytes(), content_type)
        roles = roles if roles is not None else (FIXTURES / "roller_t0.json").read_bytes()
        self.answers[ROLES] = Answer(200, roles, content_type)


@pytest.fixture
def registry():
    state = Registry()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = urlsplit(self.path).path
            state.hits[path] += 1
            answer = state.answers.get(path)
            if answer is None:
                self.send_body(404, b'{"status": 404, "error": "Not Found"}')
            else:
                self.send_body(answer.status, answer.body, answer.content_type, answer.headers)

    with serve(Handler) as url:
        state.url = url
        yield state


class Deployment:
    """A config, its SQLite file and the borrowers, in one folder; ``watcher`` run in-process."""

    def __init__(self, root: Path, registry_url: str, borrowers: list[tuple[str, str]]) -> None:
        root.mkdir()
        self.config = root / "watcher.toml"
        self.database = root / "watcher.db"
        self.config.write_text(
            "\n".join(
                [
                    "[database]",
                    'url = "sqlite:///watcher.db"',
                    "[schedule]",
                    'jitter = "0s"',
                    "[sources.brreg]",
                    'type = "brreg"',
                    f'base_url = "{registry_url}{API}"',
                    'rate = "1000/s"',
                    'timeout = "5s"',
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        csv = root / "borrowers.csv"
        rows = [f"{borrower_id},NORSK LÅNTAKER AS,brreg,{orgnr}" for borrower_id, orgnr in borrowers]
        csv.write_text("id,name,source,registry_id\n" + "\n".join(rows) + "\n", encoding="utf-8")
        imported = self.cli("borrowers", "import", str(csv))
        assert imported.exit_code == 0, imported.output

    def cli(self, *args: str):
        return RUNNER.invoke(app, ["--config", str(self.config), *args], catch_exceptions=False)

    def check(self, *, expect: int):
        result = self.cli("check")
        assert result.exit_code == expect, result.output
        return result

    def stored(self) -> tuple[list[ChangeEvent], list[Alert], int]:
        """Change events, alerts and the number of snapshots in the SQLite file."""
        store = open_store(f"sqlite:///{self.database}")
        try:
            with store.transaction() as session:
                events = list(session.exec(select(ChangeEvent).order_by(ChangeEvent.id)))
                alerts = list(session.exec(select(Alert).order_by(Alert.id)))
                snapshots = len(list(session.exec(select(Snapshot))))
                session.expunge_all()
        finally:
            store.dispose()
        return events, alerts, snapshots


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture
def deployment(tmp_path: Path, registry: Registry) -> Deployment:
    return Deployment(tmp_path / "deployment", registry.url, [("no-fjordlys", ORGNR)])


def removed_unit_answer() -> bytes:
    """The register's 410 body for a unit removed for legal reasons: its orgnr and slettedato only."""
    deleted = json.loads((FIXTURES / "enhet_deleted.json").read_text(encoding="utf-8"))
    return json.dumps({"organisasjonsnummer": ORGNR, "slettedato": deleted["slettedato"]}).encode()


def roles_with_daily_manager(first: str, last: str) -> dict:
    document = json.loads((FIXTURES / "roller_t0.json").read_text(encoding="utf-8"))
    (manager,) = [group for group in document["rollegrupper"] if group["type"]["kode"] == "DAGL"]
    manager["roller"][0]["person"]["navn"] = {"fornavn": first, "etternavn": last}
    return document


# -- 1. a status code alone is never data -----------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(410, b"<html><body><h1>Gone</h1>Maintenance</body></html>", "text/html"), "parse_error"),
        (Answer(404, b"", "text/html"), "transient"),
    ],
    ids=["html-page", "empty-body"],
)
def test_a_roles_page_that_is_not_the_registers_answer_fails_the_check(deployment, registry, answer, kind):
    """In place of the roles, a page that is not Brønnøysund's own answer is no fact: the check fails
    (before, the roles became unknown and the next real board change was compared with nothing)."""
    registry.company()
    deployment.check(expect=0)
    registry.answers[ROLES] = answer
    failed = deployment.check(expect=1)
    assert f"no-fjordlys ({kind}:" in failed.stderr and "roller" in failed.stderr
    registry.company(roles=(FIXTURES / "roller_t1.json").read_bytes())
    changed = deployment.check(expect=0)
    events, alerts, _ = deployment.stored()
    assert events and len(alerts) == 1, changed.output


def test_roles_the_register_says_it_has_none_of_are_unknown_and_the_last_known_ones_kept(
    deployment, registry
):
    """The register's own 404 for the roles leaves them unknown, not empty: the last known roles are
    kept, so a board change seen later is still reported against them."""
    registry.company()
    deployment.check(expect=0)
    registry.answers[ROLES] = Answer(404, b'{"status": 404, "error": "Not Found", "path": "/roller"}')
    unknown = deployment.check(expect=0)
    assert "no-fjordlys: unchanged" in unknown.output
    registry.company(roles=(FIXTURES / "roller_t1.json").read_bytes())
    deployment.check(expect=0)
    events, alerts, _ = deployment.stored()
    assert {event.category for event in events} >= {"director", "legal_representative"} and len(alerts) == 1


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(410, CAPTCHA_PAGE, "text/html; charset=utf-8"), "blocked"),
        (Answer(410, b"", "text/html"), "transient"),
        (Answer(410, b'{"status": 410, "error": "Gone", "path": "/enheter"}'), "parse_error"),
    ],
    ids=["captcha-page", "empty-body", "other-json"],
)
def test_a_410_that_is_not_the_registers_answer_stores_nothing(deployment, registry, answer, kind):
    registry.company()
    deployment.check(expect=0)  # the silent baseline
    assert deployment.stored() == ([], [], 1)

    registry.answers[UNIT] = answer
    failed = deployment.check(expect=1)
    assert f"no-fjordlys ({kind}:" in failed.stderr and "410" in failed.stderr

    registry.company()  # the registry recovers
    deployment.check(expect=0)
    # No "deregistered" alert, and no second one when the registry answered normally again.
    assert deployment.stored() == ([], [], 1)


def test_the_registers_removed_unit_answer_is_still_a_deregistration(deployment, registry):
    registry.company()
    deployment.check(expect=0)

    registry.answers[UNIT] = Answer(410, removed_unit_answer())
    deployment.check(expect=0)

    events, alerts, _ = deployment.stored()
    assert [(event.category, event.action) for event in events] == [("status", "changed")]
    assert "deregistered" in (events[0].after or "")
    assert [alert.severity for alert in alerts] == ["critical"]
    assert registry.hits[ROLES] == 1  # a removed unit's roles are not asked for


# -- 2. a body not valid in its charset is never read in another ------------------------------------


def test_charsets_never_garble_a_name(deployment, registry):
    registry.company()
    deployment.check(expect=0)  # baseline: daglig leder Magnus Solheim

    # A real change, in UTF-8 JSON that the server labels ISO-8859-1: JSON is UTF-8 whatever the label.
    new_manager = json.dumps(roles_with_daily_manager("Søren", "Ødegård"), ensure_ascii=False).encode()
    registry.company(new_manager, content_type="application/json; charset=ISO-8859-1")
    deployment.check(expect=0)
    events, alerts, _ = deployment.stored()
    (legal_rep,) = [event for event in events if event.category == "legal_representative"]
    assert (legal_rep.before, legal_rep.after) == ("Magnus Solheim", "Søren Ødegård")
    seen = (len(events), len(alerts))

    # The same answer declared UTF-8 with one stray Latin-1 byte (0xF8 for the "ø" of Søren).
    stray = new_manager.replace("Søren".encode(), b"S\xf8ren", 1)
    registry.company(stray, content_type="application/json; charset=utf-8")
    failed = deployment.check(expect=1)
    assert "no-fjordlys (parse_error:" in failed.stderr and "byte 0xf8" in failed.stderr
    events, alerts, _ = deployment.stored()
    assert (len(events), len(alerts)) == seen

    # Served correctly again: nothing changed, so nothing is stored.
    registry.company(new_manager, content_type="application/json; charset=utf-8")
    deployment.check(expect=0)
    events, alerts, _ = deployment.stored()
    assert (len(events), len(alerts)) == seen
    assert all("鴕" not in f"{event.before}{event.after}{event.subject}" for event in events)


# -- 5. a Retry-After of a day pauses the source for max_pause at most ------------------------------


def test_a_day_long_retry_after_is_capped_at_max_pause_and_logged_once(tmp_path, registry, caplog):
    deployment = Deployment(
        tmp_path / "paused",
        registry.url,
        [("no-fjordlys", ORGNR), ("no-hardanger", SECOND_ORGNR)],
    )
    for orgnr in (ORGNR, SECOND_ORGNR):
        registry.answers[f"{API}/enheter/{orgnr}"] = Answer(429, b"{}", headers={"Retry-After": "86400"})

    with caplog.at_level(logging.WARNING, logger="watcher.sources"):
        failed = deployment.check(expect=1)

    # Both borrowers fail as rate limited (the first told of the pause, the other refused at once or
    # answered the same), each with the pause cut to 900 s (15m, the default max_pause), longer than
    # the check's 2-minute deadline: nobody waits a day, nor sits out the deadline.
    # The summary line only: stderr may also carry log records of handlers other tests left behind.
    [summary] = [line for line in failed.stderr.splitlines() if line.startswith("failed: ")]
    assert summary.count("(rate_limited:") == 2
    pauses = [float(seconds) for seconds in re.findall(r"([0-9.]+)s (?:left|would pass)", summary)]
    assert "86400" not in summary and pauses and all(895 <= pause <= 900 for pause in pauses)
    cap_lines = [record.getMessage() for record in caplog.records if "max_pause" in record.getMessage()]
    assert len(cap_lines) == 1
    assert cap_lines[0].startswith(
        "brreg asked for a pause of 86400s (Retry-After); pausing 900s, its max_pause"
    )
    assert deployment.stored() == ([], [], 0)
