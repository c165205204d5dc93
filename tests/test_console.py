"""The review console through Starlette's test client, on a real SQLite database filled by the real pipeline.

``ConsoleWorld`` is ``tests/deployment.py``'s three-borrower deployment (one high, one warning, one
info alert) with console users: officer 张伟 (borrower b-lanchao), officer 李娜 (b-fjordlys), officer
王芳 (no borrowers) and the reviewer "Risk Desk" (everything; b-hardanger has no officer). The
Qichacha response of round 1 is planted with registry text that must stay inert: a new legal
representative that starts like a spreadsheet formula and carries an unclosed ``<svg onload>`` (the
normaliser strips whole tags, not a tag left open) and a ``<script>`` element in the raw response.
The b-lanchao borrower's own name, from the bank's CSV, carries a ``<script>`` too.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pydantic import SecretStr
from sqlmodel import select
from typer.testing import CliRunner

from tests.deployment import (
    BASELINE_AT,
    CHANGED_AT,
    FJORDLYS,
    HARDANGER,
    LANCHAO,
    REGISTRIES,
    Deployment,
)
from watcher.cli import app as cli_app
from watcher.config.schema import OfficerConfig
from watcher.console.app import FAVICON, ROUTES, SESSION_COOKIE, create_app
from watcher.console.auth import create_user
from watcher.console.exports import ALERT_FIELDS
from watcher.models import Alert, AuditLog, Borrower, Snapshot, User
from watcher.store import HISTORY_FIELDS

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client; httpx (a project dependency) still works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"
SECRET = "console-test-secret-0123456789abcdefghij"
EVIL_LEGAL_REP = '=HYPERLINK("http://evil.example","<script>alert(1)</script>")<svg/onload=alert(2)'
STORED_LEGAL_REP = '=HYPERLINK("http://evil.example","alert(1)")<svg/onload=alert(2)'
"""What the normaliser keeps of it: whole tags go, the unclosed ``<svg`` stays, and must be escaped."""
EVIL_NAME = '<script>alert("name")</script>杭州澜潮智能装备有限公司'
UNSAFE_MARKERS = ("<script>alert", "<svg/onload")

CHANNELS = f"""\
[officers.zhang_wei]
name = "张伟"

[officers.li_na]
name = "李娜"

[officers.wang_fang]
name = "王芳"

[console]
secret_key = "{SECRET}"
"""

USERS = {
    # username: (role, officer_id, display name)
    "zhang": ("officer", "zhang_wei", "张伟"),
    "li": ("officer", "li_na", "李娜"),
    "wang": ("officer", "wang_fang", "王芳"),
    "risk": ("reviewer", None, "Risk Desk"),
}

RUNNER = CliRunner()


class FakeClock:
    """The console's clock: the real time plus ``offset``, moved by the test instead of by sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class ConsoleWorld:
    def __init__(self, folder: Path, url: str) -> None:
        self.deployment = Deployment(folder, url, CHANNELS)
        self.store = self.deployment.store
        self.config = self.deployment.config
        lanchao = replace(LANCHAO, name=EVIL_NAME)
        fjordlys = replace(FJORDLYS, officer="li_na")
        self.deployment.add(lanchao, fjordlys, HARDANGER)
        self.deployment.stage(0)
        self.deployment.check(BASELINE_AT)
        self.deployment.stage(1)
        planted = (REGISTRIES / "cn_qichacha" / "eci_info_verify_getinfo_t1.json").read_text("utf-8")
        planted = planted.replace("李娜", json.dumps(EVIL_LEGAL_REP, ensure_ascii=False)[1:-1])
        (folder / "feed" / "cn" / LANCHAO.registry_id / "getinfo.json").write_text(planted, "utf-8")
        outcomes = self.deployment.check(CHANGED_AT)
        assert {o.borrower_id: o.severity for o in outcomes.values()} == {
            "b-lanchao": "high",
            "b-fjordlys": "warning",
            "b-hardanger": "info",
        }
        with self.store.transaction() as session:
            for username, (role, officer_id, display_name) in USERS.items():
                create_user(
                    session,
                    username=username,
                    password=PASSWORD,
                    role=role,
                    officer_id=officer_id,
                    display_name=display_name,
                    actor="test",
                )
        self.clock = FakeClock()

    def client(self, config=None, *, address: str = "testclient", store=None, **options) -> TestClient:
        """A browser at ``address`` (the peer address the console sees), on ``store`` (default: the
        deployment's; another Store on the same database is another console instance)."""
        app = create_app(store or self.store, config or self.config, clock=self.clock)
        return TestClient(app, client=(address, 50000), **options)

    def alert_ids(self) -> dict[str, int]:
        return {borrower_id: alert.id for borrower_id, alert in self.deployment.alerts().items()}

    def snapshot_of(self, borrower_id: str) -> int:
        with self.store.session() as session:
            return session.exec(select(Snapshot.id).where(Snapshot.borrower_id == borrower_id)).first()

    def audit(self, action: str) -> list[AuditLog]:
        return self.deployment.audit_rows(action)

    def alert(self, alert_id: int) -> Alert:
        with self.store.session() as session:
            return session.get(Alert, alert_id)


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    made = ConsoleWorld(tmp_path, sqlite_url)
    yield made
    made.deployment.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request, tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    """For the queries that scope, sort and export: they must mean the same on both databases."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = ConsoleWorld(tmp_path, url)
    yield made
    made.deployment.close()


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "page has no CSRF token"
    return match[1]


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/"):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )


def signed_in(world: ConsoleWorld, username: str) -> TestClient:
    client = world.client()
    response = sign_in(client, username)
    assert response.status_code == 303, response.text
    return client


def page_token(client: TestClient) -> str:
    return csrf_of(client.get("/alerts").text)


def csv_rows(body: bytes) -> tuple[list[str], list[dict[str, str]]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff"), "CSV should carry a BOM so Excel reads UTF-8"
    reader = csv.DictReader(io.StringIO(text[1:], newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def xlsx_rows(body: bytes) -> tuple[list[str], list[dict[str, object]], list]:
    sheet = load_workbook(io.BytesIO(body)).active
    grid = list(sheet.iter_rows())
    header = [cell.value for cell in grid[0]]
    rows = [{key: cell.value for key, cell in zip(header, row, strict=True)} for row in grid[1:]]
    return header, rows, grid[1:]


def _concrete(path: str) -> str:
    return path.replace("{alert_id:int}", "1").replace("{snapshot_id:int}", "1").replace("{fmt:str}", "csv")


# -- signing in -----------------------------------------------------------------------------------


def test_every_route_requires_signing_in(world):
    client = world.client()
    checked = 0
    for route in ROUTES:
        methods = getattr(route, "methods", None)
        if not methods or route.path in ("/login", FAVICON):
            continue
        path = _concrete(route.path)
        for method in sorted(methods - {"HEAD"}):
            response = client.request(method, path, data={"note": "x"}, follow_redirects=False)
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login"), (method, path)
            checked += 1
    assert checked >= 12
    assert client.get("/alerts?status=all", follow_redirects=False).headers["location"] == (
        "/login?next=%2Falerts%3Fstatus%3Dall"
    )
    assert world.alert(world.alert_ids()["b-lanchao"]).status == "open"
    assert world.audit("alert.acknowledged") == [] and world.audit("alert.closed") == []
    # The stylesheet is not a page: the sign-in form needs it.
    assert client.get("/static/console.css").status_code == 200
    assert client.get(FAVICON).status_code == 200, "nor is the icon browsers ask for"


def test_wrong_password_and_unknown_user_are_refused_alike(world):
    client = world.client()
    wrong = sign_in(client, "risk", "not the password")
    unknown = sign_in(client, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert world.audit("console.signed_in") == []

    right = sign_in(client, "risk", next_path="/status")
    assert (right.status_code, right.headers["location"]) == (303, "/status")
    assert client.get("/").status_code == 200
    [entry] = world.audit("console.signed_in")
    assert (entry.actor, entry.subject_id) == ("Risk Desk", "risk")


def test_sign_in_never_redirects_off_site(world):
    client = world.client()
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = sign_in(client, "risk", next_path=target)
        assert response.headers["location"] == "/", target


def test_five_failures_lock_the_name_for_a_minute(world):
    client = world.client()
    for _ in range(5):
        assert sign_in(client, "zhang", "guess").status_code == 401
    locked = sign_in(client, "zhang", PASSWORD)
    assert locked.status_code == 429
    assert "60 秒" in locked.text or "61 秒" in locked.text
    assert sign_in(client, "ZHANG ", PASSWORD).status_code == 429, "the name is case- and space-folded"
    assert sign_in(world.client(), "risk").status_code == 303, "other names are not locked"
    [entry] = world.audit("console.locked_out")
    assert entry.subject_id == "zhang"

    world.clock.offset += timedelta(seconds=59)
    assert sign_in(client, "zhang", PASSWORD).status_code == 429
    world.clock.offset += timedelta(seconds=2)
    assert sign_in(client, "zhang", PASSWORD).status_code == 303


def test_a_disabled_user_and_an_expired_session_are_signed_out(world):
    client = signed_in(world, "zhang")
    assert client.get("/", follow_redirects=False).status_code == 200
    world.clock.offset += timedelta(hours=8, seconds=5)
    assert client.get("/", follow_redirects=False).status_code == 303
    world.clock.offset = timedelta(0)

    client = signed_in(world, "zhang")
    with world.store.transaction() as session:
        user = session.exec(select(User).where(User.username == "zhang")).one()
        user.active = False
        session.add(user)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in(client, "zhang").status_code == 401


def test_a_cookie_signed_with_another_key_is_not_a_session(world, tmp_path):
    other = world.config.model_copy(
        update={"console": world.config.console.model_copy(update={"secret_key": SecretStr("y" * 40)})}
    )
    forger = TestClient(create_app(world.store, other))
    sign_in(forger, "risk")
    forged = forger.cookies.get(SESSION_COOKIE)
    assert forged
    client = world.client()
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/", follow_redirects=False).status_code == 303


# -- scoping --------------------------------------------------------------------------------------


def test_an_officer_sees_and_handles_only_their_own_borrowers(any_world):
    world = any_world
    ids = world.alert_ids()
    client = signed_in(world, "zhang")

    portfolio = client.get("/").text
    assert "b-lanchao" in portfolio and "b-fjordlys" not in portfolio and "b-hardanger" not in portfolio
    assert "b-fjordlys" not in client.get("/?officer=li_na").text, "officers cannot widen their scope"
    inbox = client.get("/alerts?status=all").text
    assert f"alert-{ids['b-lanchao']}" in inbox
    assert f"alert-{ids['b-fjordlys']}" not in inbox and f"alert-{ids['b-hardanger']}" not in inbox

    assert client.get("/borrower?id=b-fjordlys").status_code == 403
    assert client.get("/borrower?id=no-such-borrower").status_code == 403, "existence is not revealed"
    foreign_snapshot = world.snapshot_of("b-fjordlys")
    assert client.get(f"/snapshots/{foreign_snapshot}").status_code == 403
    assert client.get(f"/snapshots/{foreign_snapshot}/raw.json").status_code == 403
    assert client.get(f"/snapshots/{world.snapshot_of('b-lanchao')}/raw.json").status_code == 200

    token = page_token(client)
    for step in ("ack", "close"):
        refused = client.post(
            f"/alerts/{ids['b-fjordlys']}/{step}", data={"csrf_token": token, "note": "not mine"}
        )
        assert refused.status_code == 403
    assert world.alert(ids["b-fjordlys"]).status == "open"
    assert world.audit("alert.acknowledged") == [] and world.audit("alert.closed") == []

    for query in ("", "?borrower=b-fjordlys", "?officer=li_na"):
        _, history = csv_rows(client.get(f"/export/history.csv{query}").content)
        assert {row["borrower_id"] for row in history} <= {"b-lanchao"}, query
    _, history = csv_rows(client.get("/export/history.csv").content)
    assert {row["borrower_id"] for row in history} == {"b-lanchao"}
    _, alerts = csv_rows(client.get("/export/alerts.csv?status=all").content)
    assert [row["borrower_id"] for row in alerts] == ["b-lanchao"]
    _, xlsx_alerts, _ = xlsx_rows(client.get("/export/alerts.xlsx").content)
    assert [row["borrower_id"] for row in xlsx_alerts] == ["b-lanchao"]
    foreign_history = client.get("/history?borrower=b-fjordlys").text
    assert 'id="history"' not in foreign_history and "尚无变更记录" in foreign_history


def test_an_officer_without_borrowers_sees_nothing_not_everything(world):
    """``store.history`` treats "no borrower ids" as all: the console must never pass that for an officer."""
    client = signed_in(world, "wang")
    portfolio = client.get("/").text
    assert not any(borrower in portfolio for borrower in ("b-lanchao", "b-fjordlys", "b-hardanger"))
    _, rows = csv_rows(client.get("/export/history.csv").content)
    assert rows == []
    header, xlsx, _ = xlsx_rows(client.get("/export/history.xlsx").content)
    assert header == list(HISTORY_FIELDS) and xlsx == []
    _, alerts = csv_rows(client.get("/export/alerts.csv").content)
    assert alerts == []


def test_a_reviewer_sees_every_borrower_most_severe_alert_first(any_world):
    world = any_world
    ids = world.alert_ids()
    client = signed_in(world, "risk")
    portfolio = client.get("/").text
    assert all(borrower in portfolio for borrower in ("b-lanchao", "b-fjordlys", "b-hardanger"))
    only_li = client.get("/?officer=li_na").text
    assert "b-fjordlys" in only_li and "b-lanchao" not in only_li
    assert (
        "b-lanchao" in client.get("/?tag=zhejiang").text
        and "b-hardanger" not in client.get("/?tag=zhejiang").text
    )
    only_high = client.get("/?severity=high").text
    assert "b-lanchao" in only_high and "b-fjordlys" not in only_high
    assert "b-hardanger" in client.get("/?q=HARDANGER").text
    assert "b-hardanger" not in client.get("/?q=FJORD").text

    inbox = client.get("/alerts").text
    positions = [inbox.index(f'id="alert-{ids[b]}"') for b in ("b-lanchao", "b-fjordlys", "b-hardanger")]
    assert positions == sorted(positions), "high, then warning, then info"
    for borrower in ("b-lanchao", "b-fjordlys", "b-hardanger"):
        assert client.get(f"/borrower?id={borrower}").status_code == 200
    assert client.get("/borrower?id=no-such-borrower").status_code == 404
    status = client.get("/status").text
    assert "cn" in status and "no" in status


def test_the_portfolio_marks_borrowers_whose_checks_keep_failing(world):
    from watcher.models import Borrower

    with world.store.transaction() as session:
        for borrower_id, failures in (("b-hardanger", 3), ("b-fjordlys", 2)):
            borrower = session.get(Borrower, borrower_id)
            borrower.consecutive_failures, borrower.last_error_kind = failures, "unavailable"
            session.add(borrower)
    client = signed_in(world, "risk")
    row_start = re.compile(r'<tr class="[^"]*">\s*<td><a href="/borrower\?id=([^"]+)">')
    rows = {match[1]: match[0] for match in row_start.finditer(client.get("/").text)}
    assert 'class="failing"' in rows["b-hardanger"]
    assert 'class="failing"' not in rows["b-fjordlys"], "fewer than 3 failures is not marked"


# -- the lifecycle --------------------------------------------------------------------------------


def test_ack_and_close_in_the_console_write_what_the_cli_writes(any_world):
    world = any_world
    ids = world.alert_ids()
    by_cli = RUNNER.invoke(
        cli_app,
        [
            "--config",
            str(world.deployment.config_path),
            "alerts",
            "ack",
            str(ids["b-hardanger"]),
            "--by",
            "Risk Desk",
            "--note",
            "已电话核实",
        ],
        catch_exceptions=False,
    )
    assert by_cli.exit_code == 0, by_cli.output

    client = signed_in(world, "risk")
    token = page_token(client)
    acked = client.post(
        f"/alerts/{ids['b-fjordlys']}/ack",
        data={"csrf_token": token, "note": "已电话核实", "next": "/alerts"},
        follow_redirects=False,
    )
    assert (acked.status_code, acked.headers["location"]) == (303, "/alerts")
    assert f"预警 #{ids['b-fjordlys']} 已确认" in client.get("/alerts").text

    cli_row, console_row = world.audit("alert.acknowledged")
    assert cli_row.subject_id == str(ids["b-hardanger"]) and console_row.subject_id == str(ids["b-fjordlys"])
    for row in (cli_row, console_row):
        assert (row.actor, row.subject_type, json.loads(row.detail)) == (
            "Risk Desk",
            "alert",
            {"note": "已电话核实"},
        )
    console_alert = world.alert(ids["b-fjordlys"])
    assert (console_alert.status, console_alert.acknowledged_by, console_alert.note) == (
        "acknowledged",
        "Risk Desk",
        "已电话核实",
    )

    again = client.post(f"/alerts/{ids['b-fjordlys']}/ack", data={"csrf_token": token})
    assert again.status_code == 409 and "only an open alert can be acknowledged" in again.text

    closed = client.post(
        f"/alerts/{ids['b-fjordlys']}/close", data={"csrf_token": token, "note": "风险已排除"}
    )
    assert closed.status_code == 200
    console_alert = world.alert(ids["b-fjordlys"])
    assert (console_alert.status, console_alert.closed_by, console_alert.note) == (
        "closed",
        "Risk Desk",
        "已电话核实\n风险已排除",
    )
    [close_row] = world.audit("alert.closed")
    assert (close_row.actor, close_row.subject_id, json.loads(close_row.detail)) == (
        "Risk Desk",
        str(ids["b-fjordlys"]),
        {"note": "风险已排除"},
    )

    timeline = client.get("/borrower?id=b-fjordlys").text
    assert "确认人 <strong>Risk Desk</strong>" in timeline
    assert "关闭人 <strong>Risk Desk</strong>" in timeline
    assert "确认预警" in timeline and "关闭预警" in timeline, "audit actions read as words"
    assert "备注: 风险已排除" in timeline, "audit details too"
    assert "alert.acknowledged" not in timeline and "alert.closed" not in timeline


def test_an_officer_acknowledges_under_their_display_name(world):
    lanchao = world.alert_ids()["b-lanchao"]
    client = signed_in(world, "zhang")
    token = page_token(client)
    response = client.post(f"/alerts/{lanchao}/ack", data={"csrf_token": token, "note": "已核实"})
    assert response.status_code == 200
    assert world.alert(lanchao).acknowledged_by == "张伟"
    [row] = world.audit("alert.acknowledged")
    assert row.actor == "张伟"


def test_posts_without_the_sessions_csrf_token_are_refused(world):
    lanchao = world.alert_ids()["b-lanchao"]
    client = signed_in(world, "risk")
    other = signed_in(world, "zhang")
    foreign_token = page_token(other)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}, {"csrf_token": foreign_token}):
        for step in ("ack", "close"):
            response = client.post(f"/alerts/{lanchao}/{step}", data={**data, "note": "x"})
            assert response.status_code == 403, (data, step)
    assert world.alert(lanchao).status == "open"
    assert world.audit("alert.acknowledged") == [] and world.audit("alert.closed") == []

    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200, "still signed in"
    signed_out = client.post("/logout", data={"csrf_token": page_token(client)}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303

    fresh = world.client()
    fresh.get("/login")
    refused = fresh.post("/login", data={"username": "risk", "password": PASSWORD}, follow_redirects=False)
    assert refused.status_code == 403, "sign-in forms carry a token too (login CSRF)"


# -- escaping -------------------------------------------------------------------------------------


def test_registry_and_borrower_text_is_escaped_on_every_page(world):
    client = signed_in(world, "risk")
    snapshot = max(_snapshot_ids(world, "b-lanchao"))  # round 1's response, with the planted text
    pages = {
        "portfolio": client.get("/").text,
        "inbox": client.get("/alerts").text,
        "timeline": client.get("/borrower?id=b-lanchao").text,
        "history": client.get("/history").text,
        "raw": client.get(f"/snapshots/{snapshot}").text,
    }
    for name, html in pages.items():
        for marker in UNSAFE_MARKERS:
            assert marker not in html, (name, marker)
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html, name
    for name in ("inbox", "timeline", "history"):
        assert "&lt;svg/onload=alert(2)" in pages[name], name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["raw"], "the raw response is shown as text"
    raw_json = client.get(f"/snapshots/{snapshot}/raw.json")
    assert raw_json.headers["content-type"].startswith("application/json")
    assert raw_json.headers["content-disposition"].startswith("attachment")
    assert "<script>alert(1)</script>" in "".join(json.loads(raw_json.text).values())


def _snapshot_ids(world: ConsoleWorld, borrower_id: str) -> list[int]:
    with world.store.session() as session:
        return list(session.exec(select(Snapshot.id).where(Snapshot.borrower_id == borrower_id)))


def test_every_response_carries_the_security_headers_and_a_strict_cookie(world):
    client = world.client()
    login = client.get("/login")
    cookie = login.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    client = signed_in(world, "risk")
    for path in ("/login", "/", "/alerts", "/borrower?id=b-lanchao", "/export/history.csv", "/nowhere"):
        response = client.get(path, follow_redirects=False)
        headers = response.headers
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
    assert client.get("/").headers["cache-control"] == "no-store"


# -- exports --------------------------------------------------------------------------------------


def test_history_exports_follow_the_history_contract_and_neutralise_formulas(any_world):
    world = any_world
    client = signed_in(world, "risk")
    filtered = "?category=legal_representative&since=2026-03-01"
    header, rows = csv_rows(client.get(f"/export/history.csv{filtered}").content)
    assert header == list(HISTORY_FIELDS)
    assert {row["category"] for row in rows} == {"legal_representative"}

    jsonl = RUNNER.invoke(
        cli_app,
        [
            "--config",
            str(world.deployment.config_path),
            "history",
            "--category",
            "legal_representative",
            "--since",
            "2026-03-01",
            "--format",
            "jsonl",
        ],
        catch_exceptions=False,
    )
    expected = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert expected and [int(row["id"]) for row in rows] == [item["id"] for item in expected]

    [lanchao] = [row for row in rows if row["borrower_id"] == "b-lanchao"]
    assert lanchao["after"] == "'" + STORED_LEGAL_REP, "a formula-looking cell gets a leading apostrophe"
    assert lanchao["before"] == "王建国"
    cli_lanchao = next(item for item in expected if item["borrower_id"] == "b-lanchao")
    for key in HISTORY_FIELDS:
        shown = "" if cli_lanchao[key] is None else str(cli_lanchao[key])
        assert lanchao[key].removeprefix("'") == shown, key

    header, xlsx, cells = xlsx_rows(client.get(f"/export/history.xlsx{filtered}").content)
    assert header == list(HISTORY_FIELDS)
    assert [row["id"] for row in xlsx] == [item["id"] for item in expected]
    index = header.index("after")
    [evil_cell] = [row[index] for row in cells if row[header.index("borrower_id")].value == "b-lanchao"]
    assert evil_cell.value == "'" + STORED_LEGAL_REP and evil_cell.data_type == "s"

    nothing = client.get("/export/history.csv?since=2026-03-04")
    assert csv_rows(nothing.content)[1] == []
    assert client.get("/export/history.csv?since=yesterday").status_code == 400
    assert client.get("/export/history.pdf").status_code == 404


def test_alert_exports_carry_the_lifecycle(world):
    ids = world.alert_ids()
    client = signed_in(world, "risk")
    client.post(f"/alerts/{ids['b-fjordlys']}/ack", data={"csrf_token": page_token(client), "note": "=1+1"})
    header, rows = csv_rows(client.get("/export/alerts.csv").content)
    assert header == list(ALERT_FIELDS)
    by_id = {int(row["id"]): row for row in rows}
    assert set(by_id) == set(ids.values())
    acked = by_id[ids["b-fjordlys"]]
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "Risk Desk")
    assert acked["note"] == "'=1+1"
    assert acked["acknowledged_at"] and not acked["closed_at"]
    assert by_id[ids["b-lanchao"]]["borrower_name"] == EVIL_NAME

    _, open_only = csv_rows(client.get("/export/alerts.csv?status=open").content)
    assert {int(row["id"]) for row in open_only} == {ids["b-lanchao"], ids["b-hardanger"]}
    header, xlsx, _ = xlsx_rows(client.get("/export/alerts.xlsx?severity=warning").content)
    assert header == list(ALERT_FIELDS)
    assert [(row["id"], row["note"]) for row in xlsx] == [(ids["b-fjordlys"], "'=1+1")]


# -- languages ------------------------------------------------------------------------------------


def test_pages_speak_the_configured_language_and_switch_on_request(world):
    client = signed_in(world, "risk")
    default = client.get("/alerts").text
    assert "预警处理" in default and "高风险" in default and "法定代表人" in default and "变更" in default

    english = client.get("/alerts?lang=en")
    assert "Alerts" in english.text and "High risk" in english.text and "Legal representative" in english.text
    assert "watcher_lang=en" in english.headers["set-cookie"]
    assert "Portfolio" in client.get("/").text, "the choice is remembered"
    assert "借款人总览" in client.get("/?lang=zh-CN").text


def test_a_users_preferred_language_is_their_default(world):
    with world.store.transaction() as session:
        create_user(
            session,
            username="eva",
            password=PASSWORD,
            role="reviewer",
            display_name="Eva",
            language="en",
            actor="test",
        )
    client = signed_in(world, "eva")
    assert "Portfolio" in client.get("/").text
    assert "Sign in" in world.client().get("/login?lang=en").text


def test_an_officers_configured_language_is_their_default_and_the_switch_still_wins(world):
    """Issue 14 follow-up, point 11: `[officers.li_na] language = "en"` was ignored by the console."""
    officers = dict(world.config.officers)
    officers["li_na"] = OfficerConfig(name="李娜", language="en")
    config = world.config.model_copy(update={"officers": officers})
    client = world.client(config)
    assert sign_in(client, "li").status_code == 303
    assert "Portfolio" in client.get("/").text
    assert "借款人总览" in client.get("/?lang=zh-CN").text
    assert "借款人总览" in client.get("/").text, "the chosen language (its cookie) wins"
    other = world.client(config)
    assert sign_in(other, "zhang").status_code == 303
    assert "借款人总览" in other.get("/").text  # no language of their own: [watcher] language


def test_audit_details_read_as_words_with_times_in_the_readers_zone():
    """Not "severity: high; targets: ['notifier:bad']" nor a UTC ISO time (point 6)."""
    from zoneinfo import ZoneInfo

    from watcher.console.rendering import audit_detail
    from watcher.lifecycle import WITH_BORROWERS
    from watcher.vocabulary import Language

    opened = json.dumps({"borrower_id": "b-1", "severity": "high", "targets": ["notifier:bad", "officer:li"]})
    assert audit_detail(opened, Language.ZH_CN, ZoneInfo("Asia/Shanghai")) == (
        "借款人: b-1; 风险等级: 高风险; 通知对象: notifier:bad、officer:li"
    )
    assert audit_detail(opened, Language.EN, ZoneInfo("Asia/Shanghai")) == (
        "borrower: b-1; severity: High risk; notified: notifier:bad, officer:li"
    )
    resumed = json.dumps({"inactive_since": "2026-12-06T09:20:15.143214+00:00"})
    assert (
        audit_detail(resumed, Language.ZH_CN, ZoneInfo("Asia/Shanghai"))
        == "停止监控时间: 2026-12-06 17:20 +08:00"
    )
    gap = json.dumps({"kind": "monitoring_gap", "source": "cn", "signals": ["judicial"]})
    names = {"cn": "企查查"}.get
    assert audit_detail(gap, Language.ZH_CN, ZoneInfo("UTC"), lambda key: names(key, key)) == (
        "类型: 监控中断; 来源: 企查查; 信号: 司法风险"
    )
    assert audit_detail("not json", Language.EN, ZoneInfo("UTC")) == "not json"
    # The watcher's own reason reads in the reader's language; a person's as they typed it.
    stopped = json.dumps({"reason": WITH_BORROWERS})
    assert audit_detail(stopped, Language.ZH_CN, ZoneInfo("UTC")) == "原因: 所担保的借款人均已停止监控"
    assert audit_detail(stopped, Language.EN, ZoneInfo("UTC")) == f"reason: {WITH_BORROWERS}"
    typed = json.dumps({"reason": "loan repaid early"})
    assert audit_detail(typed, Language.ZH_CN, ZoneInfo("UTC")) == "原因: loan repaid early"


# -- the trusted proxy header ---------------------------------------------------------------------


def test_the_proxy_header_is_ignored_unless_configured(world):
    client = world.client()
    response = client.get("/", headers={"X-Remote-User": "risk"}, follow_redirects=False)
    assert response.status_code == 303


def test_the_proxy_header_signs_in_existing_users_only(world):
    console = {"trusted_user_header": "X-Remote-User", "trusted_proxies": ["127.0.0.1"]}
    config = world.config.model_copy(update={"console": world.config.console.model_copy(update=console)})
    client = world.client(config, address="127.0.0.1")
    page = client.get("/", headers={"X-Remote-User": "zhang"})
    assert page.status_code == 200 and 'id="current-user">张伟<' in page.text
    assert "b-fjordlys" not in page.text, "scoping applies to proxy users too"
    assert client.get("/", headers={"X-Remote-User": "mallory"}).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303, "no header: sign in as usual"

    lanchao = world.alert_ids()["b-lanchao"]
    header = {"X-Remote-User": "zhang"}
    assert client.post(f"/alerts/{lanchao}/ack", data={"note": "x"}, headers=header).status_code == 403
    token = csrf_of(client.get("/alerts", headers=header).text)
    response = client.post(f"/alerts/{lanchao}/ack", data={"csrf_token": token}, headers=header)
    assert response.status_code == 200 and world.alert(lanchao).acknowledged_by == "张伟"

    with world.store.transaction() as session:
        user = session.exec(select(User).where(User.username == "zhang")).one()
        user.active = False
        session.add(user)
    assert client.get("/", headers=header).status_code == 403


# -- users on the command line --------------------------------------------------------------------


def cli(world: ConsoleWorld, *args: str, stdin: str | None = None):
    return RUNNER.invoke(cli_app, ["--config", str(world.deployment.config_path), *args], input=stdin)


def test_users_add_reads_the_password_from_stdin_and_checks_the_officer(world):
    added = cli(
        world,
        "users",
        "add",
        "chen",
        "--role",
        "officer",
        "--officer",
        "li_na",
        "--password-stdin",
        stdin="another long password\n",
    )
    assert added.exit_code == 0, added.output
    assert "李娜" in added.stdout, "the officer's configured name is the default display name"
    assert sign_in(world.client(), "chen", "another long password").status_code == 303
    with world.store.session() as session:
        user = session.exec(select(User).where(User.username == "chen")).one()
    assert user.password_hash.startswith("scrypt$") and "another long password" not in user.password_hash

    no_tty = cli(world, "users", "add", "dora", "--role", "reviewer")
    assert no_tty.exit_code == 2 and "--password-stdin" in no_tty.output
    unknown = cli(
        world,
        "users",
        "add",
        "dora",
        "--role",
        "officer",
        "--officer",
        "ghost",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert unknown.exit_code == 2 and "ghost" in unknown.output
    no_officer = cli(
        world,
        "users",
        "add",
        "dora",
        "--role",
        "officer",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert no_officer.exit_code == 2 and "--officer" in no_officer.output
    short = cli(world, "users", "add", "dora", "--role", "reviewer", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "at least" in short.output
    duplicate = cli(
        world,
        "users",
        "add",
        "risk",
        "--role",
        "reviewer",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert duplicate.exit_code == 2 and "already exists" in duplicate.output
    as_argument = cli(world, "users", "add", "dora", "--role", "reviewer", "--password", "x" * 12)
    assert as_argument.exit_code == 2, "there is no way to pass a password as an argument"


def test_serve_refuses_to_start_without_a_secret_key(tmp_path, sqlite_url):
    config = tmp_path / "watcher.toml"
    config.write_text(f'[database]\nurl = "{sqlite_url}"\n', encoding="utf-8")
    result = RUNNER.invoke(cli_app, ["--config", str(config), "serve"])
    assert result.exit_code == 2 and "console.secret_key" in result.output


def test_config_requires_a_secret_key_when_the_console_is_enabled(tmp_path):
    from watcher.config import load_config
    from watcher.errors import ConfigError

    path = tmp_path / "watcher.toml"
    path.write_text("[console]\nenabled = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="console.secret_key: required when enabled"):
        load_config(path)
    path.write_text('[console]\nenabled = true\nsecret_key = "short"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="at least 32 characters") as raised:
        load_config(path)
    assert "short" not in str(raised.value), "the key's value is never echoed"


def test_times_are_shown_in_the_configured_zone(world):
    assert datetime(2026, 3, 3, 2, 0, tzinfo=UTC) == CHANGED_AT
    client = signed_in(world, "risk")
    timeline = client.get("/borrower?id=b-hardanger").text
    assert "2026-03-03 10:00" in timeline and "Asia/Shanghai" in timeline
    assert "2026-03-03 02:00" not in timeline


async def test_serve_console_reports_a_port_it_cannot_listen_on(world):
    import asyncio
    import socket

    from watcher.console.app import ConsoleStartError, serve_console

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(ConsoleStartError, match="could not listen"):
            await asyncio.wait_for(
                serve_console(world.store, world.config, asyncio.Event(), port=taken.getsockname()[1]), 10
            )
    finally:
        taken.close()


def test_the_status_page_shows_billed_calls_and_signals_a_source_cannot_fetch(world):
    """What `watcher status` says about the vendors' accounts, for the people who read the console:
    the calls billed over the last day and a signal the account has not bought (vendor text escaped)."""
    from watcher.store import add_billed_calls, mark_signal_unavailable, usage_hour

    now = world.clock()
    with world.store.transaction() as session:
        add_billed_calls(session, {"cn": 40}, usage_hour(now))
        add_billed_calls(session, {"cn": 2}, usage_hour(now - timedelta(hours=3)))
        add_billed_calls(session, {"cn": 500}, usage_hour(now - timedelta(hours=30)))  # a day ago
        mark_signal_unavailable(
            session,
            "cn",
            "violations",
            "Status 214: <b>您还未购买过该接口</b>",
            now=now,
            retry_at=now + timedelta(hours=24),
        )
    client = signed_in(world, "risk")
    english = client.get("/status?lang=en").text
    row = english[english.index('<span class="muted">cn</span></td>') :]
    row = row[: row.index("</tr>")]
    assert row.rstrip().endswith("<td>42</td>"), "the last 24 hours only"
    assert "signal serious violations list unavailable (not bought by the account)" in english
    assert "&lt;b&gt;您还未购买过该接口&lt;/b&gt;" in english and "<b>您还未购买" not in english
    chinese = client.get("/status?lang=zh-CN").text
    assert "计费调用（24 小时）" in chinese and "信号 严重违法失信名单 不可用" in chinese


# -- the alert card, the status page, the icon, source names -----------------------------------------


def _card(html: str, alert_id: int) -> str:
    start = html.index(f'id="alert-{alert_id}"')
    return html[start : html.index("</article>", start)]


def test_an_alert_card_has_one_note_box_for_acknowledging_and_closing(world):
    """One form: the note typed once goes with whichever button is pressed, under the same CSRF token."""
    ids = world.alert_ids()
    client = signed_in(world, "risk")
    card = _card(client.get("/alerts").text, ids["b-fjordlys"])
    assert card.count("<textarea") == 1 and card.count("<form") == 1
    assert card.count('name="csrf_token"') == 1
    actions = re.findall(r'<button type="submit" formaction="([^"]+)"', card)
    assert actions == [f"/alerts/{ids['b-fjordlys']}/ack", f"/alerts/{ids['b-fjordlys']}/close"]

    token = csrf_of(card)
    acked = client.post(actions[0], data={"csrf_token": token, "note": "已电话核实"}, follow_redirects=False)
    assert acked.status_code == 303 and world.alert(ids["b-fjordlys"]).note == "已电话核实"

    card = _card(client.get("/alerts?status=acknowledged").text, ids["b-fjordlys"])
    assert card.count("<textarea") == 1, "an acknowledged alert keeps the note box for closing"
    [close_action] = re.findall(r'<button type="submit" formaction="([^"]+)"', card)
    assert close_action == f"/alerts/{ids['b-fjordlys']}/close"
    closed = client.post(
        close_action, data={"csrf_token": token, "note": "风险已排除"}, follow_redirects=False
    )
    assert closed.status_code == 303
    stored = world.alert(ids["b-fjordlys"])
    assert (stored.status, stored.note) == ("closed", "已电话核实\n风险已排除")
    [close_row] = world.audit("alert.closed")
    assert json.loads(close_row.detail) == {"note": "风险已排除"}
    assert f'id="alert-{ids["b-fjordlys"]}"' in client.get("/alerts?status=closed").text
    assert "<textarea" not in _card(client.get("/alerts?status=closed").text, ids["b-fjordlys"])


def test_every_column_of_the_instances_table_has_a_name(world):
    from watcher.models import Instance

    with world.store.transaction() as session:
        session.add(Instance(name="node-a", host="app-1", pid=4242, version="1.0"))
    client = signed_in(world, "risk")
    for lang, expected in (
        ("zh-CN", ["实例名称", "主机 · 进程号 · 版本", "状态", "最近巡检"]),
        ("en", ["Instance", "Host · PID · version", "Status", "Last sweep"]),
    ):
        html = client.get(f"/status?lang={lang}").text
        table = html[html.index('id="instances"') : html.index("</table>", html.index('id="instances"'))]
        headers = re.findall(r"<th>([^<]*)</th>", table)
        assert headers == expected, lang
        assert "node-a" in table and "pid 4242" in table


def test_the_icon_is_served_with_the_security_headers_and_linked_from_every_page(world):
    client = world.client()
    icon = client.get(FAVICON)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00", "an ICO file"
    assert icon.headers["content-security-policy"].startswith("default-src 'self'")
    assert icon.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in icon.headers.get("cache-control", ""), "an icon may be cached"
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    login = client.get("/login").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login
    assert f'<link rel="icon" href="{FAVICON}"' in login


def test_source_columns_show_the_sources_display_name(world, tmp_path):
    """Replayed Qichacha answers read as Qichacha (replayed), the config key beside it; a configured
    display_name wins; every page that names a source does so."""
    client = signed_in(world, "risk")
    lanchao_alert = world.alert_ids()["b-lanchao"]
    snapshot = world.snapshot_of("b-lanchao")
    chinese = {
        "portfolio": client.get("/?lang=zh-CN").text,
        "timeline": client.get("/borrower?id=b-lanchao").text,
        "alerts": _card(client.get("/alerts").text, lanchao_alert),
        "raw": client.get(f"/snapshots/{snapshot}").text,
        "status": client.get("/status").text,
    }
    for name, html in chinese.items():
        assert '<span class="source-name">企查查（回放）</span> <span class="muted">cn</span>' in html, name
    english = client.get("/?lang=en").text
    assert (
        '<span class="source-name">Brønnøysundregistrene (replay)</span> <span class="muted">no</span>'
        in english
    )
    assert '<span class="source-name">Qichacha 企查查 (replay)</span>' in english

    text = world.deployment.config_path.read_text("utf-8").replace(
        'format = "brreg"\n', 'format = "brreg"\ndisplay_name = "Brreg <Norge>"\n'
    )
    world.deployment.config_path.write_text(text, "utf-8")
    from watcher.config import load_config

    renamed = world.client(load_config(world.deployment.config_path))
    assert sign_in(renamed, "risk").status_code == 303
    html = renamed.get("/?lang=en").text
    assert '<span class="source-name">Brreg &lt;Norge&gt;</span> <span class="muted">no</span>' in html


# -- the portfolio overview -----------------------------------------------------------------------


def _overview_numbers(html: str) -> tuple[dict[str, int], list[int], dict[str, tuple[int, int]]]:
    """The overview as a reader finds it: borrowers per highest open severity, alerts per week (the
    chart's bars), and per source its borrowers and failing ones."""
    tiles = dict(re.findall(r'data-severity="(\w+)">\s*<div class="num">(\d+)</div>', html))
    weekly = [
        int(total) for total in re.findall(r'<g class="week" data-week="[^"]+" data-total="(\d+)">', html)
    ]
    section = html[
        html.index('id="source-overview"') : html.index("</section>", html.index('id="source-overview"'))
    ]
    sources = {
        source: (int(borrowers), int(failing))
        for source, borrowers, failing in re.findall(
            r'data-source="([^"]+)">.*?<td class="num-cell">(\d+)</td>\s*'
            r'<td class="num-cell[^"]*">(\d+)</td>',
            section,
            re.S,
        )
    }
    return {key: int(count) for key, count in tiles.items()}, weekly, sources


def test_the_overview_counts_only_the_officers_own_borrowers(any_world):
    world = any_world
    world.clock.offset = CHANGED_AT + timedelta(days=2) - datetime.now(UTC)  # Thursday of the alerts' week
    reviewer = signed_in(world, "risk").get("/?lang=en").text
    tiles, weekly, sources = _overview_numbers(reviewer)
    assert tiles == {"none": 0, "info": 1, "warning": 1, "high": 1, "critical": 0}
    assert len(weekly) == 12 and weekly[-1] == 3 and sum(weekly) == 3
    assert sources == {"cn": (1, 0), "no": (2, 0)}

    officer = signed_in(world, "zhang").get("/?lang=en").text
    tiles, weekly, sources = _overview_numbers(officer)
    assert tiles == {"none": 0, "info": 0, "warning": 0, "high": 1, "critical": 0}
    assert weekly[-1] == 1 and sum(weekly) == 1
    assert sources == {"cn": (1, 0)}, "no word of sources with none of the officer's borrowers"
    assert "FJORDLYS" not in officer and "HARDANGER" not in officer

    nobody = signed_in(world, "wang").get("/?lang=en").text
    tiles, weekly, sources = _overview_numbers(nobody)
    assert set(tiles.values()) == {0} and sum(weekly) == 0 and sources == {}
    assert "No alerts in the last 12 weeks" in nobody


def test_the_overview_follows_alerts_through_their_lifecycle_and_the_weeks(world):
    ids = world.alert_ids()
    world.clock.offset = CHANGED_AT + timedelta(days=2) - datetime.now(UTC)
    client = signed_in(world, "risk")
    token = page_token(client)
    client.post(f"/alerts/{ids['b-lanchao']}/close", data={"csrf_token": token})
    client.post(f"/alerts/{ids['b-hardanger']}/ack", data={"csrf_token": token})
    with world.store.transaction() as session:
        fjordlys = session.get(Borrower, "b-fjordlys")
        fjordlys.consecutive_failures = 4
        session.add(fjordlys)
    tiles, weekly, sources = _overview_numbers(client.get("/").text)
    assert tiles == {"none": 2, "info": 0, "warning": 1, "high": 0, "critical": 0}, "open alerts only"
    assert weekly[-1] == 3, "the chart counts every alert created that week, whatever became of it"
    assert sources["no"] == (2, 1)

    world.clock.offset += timedelta(weeks=12)
    client = signed_in(world, "risk")
    tiles, weekly, _sources = _overview_numbers(client.get("/").text)
    assert sum(weekly) == 0 and len(weekly) == 12, "twelve weeks on, the alerts have left the chart"
    assert tiles["warning"] == 1, "an alert still open is still counted"
    table = client.get("/?lang=zh-CN").text
    assert "近 12 周没有新增预警" in table and 'id="weekly-table"' in table


def test_times_are_shown_in_the_readers_zone_with_its_offset(world):
    """Issue 14: the console showed 09:41 with no zone. An officer with their own [officers.<id>]
    timezone reads it; everyone else reads [watcher] timezone; every time says its offset."""
    officers = dict(world.config.officers)
    officers["li_na"] = OfficerConfig(name="李娜", timezone="Europe/Oslo")
    config = world.config.model_copy(update={"officers": officers})
    pages = {}
    for username in ("li", "risk"):
        client = world.client(config)
        assert sign_in(client, username).status_code == 303
        paths = ("/borrower?id=b-fjordlys", "/history", "/alerts")
        pages[username] = [client.get(path).text for path in paths]
    # CHANGED_AT is 2026-03-03 02:00 UTC: 03:00 in Oslo (winter), 10:00 in Shanghai.
    for page in pages["li"]:
        assert "2026-03-03 03:00 +01:00" in page and "2026-03-03 10:00 +08:00" not in page
        assert "Europe/Oslo" in page  # the footer names the zone
    for page in pages["risk"]:
        assert "2026-03-03 10:00 +08:00" in page and "+01:00" not in page
        assert "Asia/Shanghai" in page


def test_history_dates_are_whole_days_in_the_readers_zone(world):
    """CHANGED_AT is 2026-03-03 02:00 UTC: still 2 March in New York, already 3 March in Shanghai. The
    history's date range means the reader's days, as the times the page shows them are."""
    officers = dict(world.config.officers)
    officers["li_na"] = OfficerConfig(name="李娜", timezone="America/New_York")
    config = world.config.model_copy(update={"officers": officers})
    days = {}
    for username in ("li", "risk"):
        client = world.client(config)
        assert sign_in(client, username).status_code == 303
        days[username] = {
            query: {
                row["borrower_id"] for row in csv_rows(client.get(f"/export/history.csv?{query}").content)[1]
            }
            for query in ("until=2026-03-02", "since=2026-03-03")
        }
    assert days["li"] == {"until=2026-03-02": {"b-fjordlys"}, "since=2026-03-03": set()}
    assert days["risk"]["until=2026-03-02"] == set()
    assert days["risk"]["since=2026-03-03"] >= {"b-fjordlys", "b-lanchao"}
