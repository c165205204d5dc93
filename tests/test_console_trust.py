"""Issue 11's doors of the review console, through the real Starlette app on real databases (SQLite,
and PostgreSQL where storage is involved); one section per point of the issue.

The console world is ``tests/test_console.py``'s: officer zhang (b-lanchao), officer li (b-fjordlys),
officer wang (no borrowers), reviewer risk (everything).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import logging
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from html import escape

import pytest
from sqlmodel import select

from tests.test_console import (
    PASSWORD,
    RUNNER,
    SECRET,
    ConsoleWorld,
    TestClient,
    cli,
    csv_rows,
    page_token,
    sign_in,
    signed_in,
    xlsx_rows,
)
from tests.test_console_browser import ServedConsole
from watcher.cli import app as cli_app
from watcher.config import load_config
from watcher.console.app import SESSION_COOKIE, create_app, serve_console
from watcher.console.exports import CELL_SEPARATORS, FORMULA_TRIGGERS, neutralise
from watcher.errors import ConfigError
from watcher.models import Borrower, ConsoleSession
from watcher.pipeline import Checker
from watcher.store import open_store

CALC = "ACME;=cmd|' /C calc'!A0"
"""The issue's cell: harmless as one cell, a command when a spreadsheet splits it at the ``;``."""


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request, tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = ConsoleWorld(tmp_path, url)
    yield made
    made.deployment.close()


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    made = ConsoleWorld(tmp_path, sqlite_url)
    yield made
    made.deployment.close()


def with_console(world: ConsoleWorld, **settings):
    return world.config.model_copy(update={"console": world.config.console.model_copy(update=settings)})


def cookie_payload(value: str) -> dict:
    """What Starlette's signed session cookie carries: base64 JSON, then timestamp and signature."""
    data = value.split(".")[0]
    return json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))


# -- point 10: the trusted header, the config, the exposure warning, Secure cookies --------------


PROXIED = {"trusted_user_header": "X-Remote-User", "trusted_proxies": ["10.0.0.0/8", "fd00::/8"]}


@pytest.mark.parametrize("address", ["127.0.0.1", "192.168.1.20", "11.0.0.1", "testclient", "fe80::1"])
def test_the_header_is_ignored_from_an_address_that_is_not_a_trusted_proxy(world, address):
    client = world.client(with_console(world, **PROXIED), address=address)
    header = {"X-Remote-User": "risk"}
    for path in ("/", "/export/history.csv", "/status"):
        response = client.get(path, headers=header, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    assert world.audit("console.signed_in") == []


@pytest.mark.parametrize("address", ["10.1.2.3", "fd00::7"])
def test_the_header_is_honoured_from_a_trusted_proxy(world, address):
    client = world.client(with_console(world, **PROXIED), address=address)
    response = client.get("/export/history.csv", headers={"X-Remote-User": "zhang"})
    assert response.status_code == 200
    _, rows = csv_rows(response.content)
    assert {row["borrower_id"] for row in rows} == {"b-lanchao"}


def test_a_real_server_ignores_the_header_from_a_client_outside_trusted_proxies(world):
    """The issue's request, over a real socket: curl -H 'X-Remote-User: rev' …/export/history.csv."""
    served = ServedConsole(world, with_console(world, **PROXIED))
    served.start()
    try:
        request = urllib.request.Request(
            f"{served.base}/export/history.csv", headers={"X-Remote-User": "risk"}
        )

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.build_opener(NoRedirect).open(request, timeout=10)
        assert answer.value.code == 303
        assert answer.value.headers["location"].startswith("/login")
    finally:
        served.close()


def test_the_header_without_trusted_proxies_is_a_config_error(tmp_path):
    path = tmp_path / "watcher.toml"
    path.write_text(f'[console]\nsecret_key = "{SECRET}"\ntrusted_user_header = "X-Remote-User"\n', "utf-8")
    with pytest.raises(ConfigError, match="console.trusted_user_header: requires trusted_proxies"):
        load_config(path)
    result = RUNNER.invoke(cli_app, ["--config", str(path), "status"])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(path) in line and "console.trusted_user_header" in line and "trusted_proxies" in line

    path.write_text('[console]\ntrusted_user_header = "X-Remote-User"\ntrusted_proxies = ["10.0.0.300"]\n')
    result = RUNNER.invoke(cli_app, ["--config", str(path), "status"])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "console.trusted_proxies[0]" in line and "'10.0.0.300'" in line

    proxies = 'trusted_proxies = ["10.0.0.0/8", "::1"]\n'
    path.write_text(f'[console]\ntrusted_user_header = "X-Remote-User"\n{proxies}')
    assert load_config(path).console.trusted_proxies == ["10.0.0.0/8", "::1"]


async def _serve_briefly(world: ConsoleWorld, config, host: str) -> None:
    """``serve_console`` as ``watcher serve --host HOST`` starts it, on a loopback socket, stopped at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    stop = asyncio.Event()
    stop.set()
    try:
        await asyncio.wait_for(serve_console(world.store, config, stop, host=host, sock=sock), 10)
    finally:
        sock.close()


async def test_serving_beyond_loopback_warns_naming_the_risk(world, caplog):
    caplog.set_level(logging.WARNING, logger="watcher.console")
    await _serve_briefly(world, world.config, "127.0.0.1")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    await _serve_briefly(world, world.config, "0.0.0.0")
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "0.0.0.0" in warning and "plain HTTP" in warning and "passwords and session cookies" in warning
    assert "trusted_proxies" in warning

    caplog.clear()
    await _serve_briefly(world, with_console(world, trusted_proxies=["10.0.0.5"]), "0.0.0.0")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == [], "a TLS proxy is declared"

    await _serve_briefly(world, with_console(world, trusted_proxies=["10.0.0.5"], secure_cookies=False), "::")
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "secure_cookies = false" in warning and "plain HTTP" in warning


def test_cookies_are_secure_and_hsts_is_sent_unless_served_on_loopback(world):
    loopback = world.client()
    response = loopback.get("/login")
    assert "secure" not in response.headers["set-cookie"].lower()
    assert "strict-transport-security" not in response.headers

    exposed = https_client(world, world.config, host="0.0.0.0")
    response = exposed.get("/login")
    assert "; secure" in response.headers["set-cookie"].lower()
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert sign_in(exposed, "risk").status_code == 303, "signing in works over HTTPS"
    cookies = exposed.get("/?lang=en").headers.get_list("set-cookie")
    assert any(cookie.startswith("watcher_lang=") for cookie in cookies)
    assert all("; secure" in cookie.lower() for cookie in cookies)

    forced = https_client(world, with_console(world, secure_cookies=True), host="127.0.0.1")
    assert "; secure" in forced.get("/login").headers["set-cookie"].lower()
    assert "strict-transport-security" in forced.get("/login").headers
    relaxed = https_client(world, with_console(world, secure_cookies=False), host="0.0.0.0")
    assert "secure" not in relaxed.get("/login").headers["set-cookie"].lower()


def https_client(world: ConsoleWorld, config, *, host: str) -> TestClient:
    """A browser on HTTPS (as behind a TLS proxy) of the console as served on ``host``."""
    app = create_app(world.store, config, host=host, clock=world.clock)
    return TestClient(app, base_url="https://testserver")


# -- point 11: server-side sessions and user management ---------------------------------------------


def test_the_cookie_carries_only_an_opaque_session_id(world):
    client = signed_in(world, "zhang")
    payload = cookie_payload(client.cookies[SESSION_COOKIE])
    assert set(payload) == {"sid"}
    with world.store.session() as session:
        [row] = session.exec(select(ConsoleSession)).all()
    assert row.id_hash != payload["sid"], "the database keeps a digest, not the id itself"


def test_a_copied_cookie_is_dead_after_sign_out(any_world):
    world = any_world
    client = signed_in(world, "zhang")
    copied = client.cookies[SESSION_COOKIE]
    thief = world.client()
    thief.cookies.set(SESSION_COOKIE, copied)
    assert thief.get("/", follow_redirects=False).status_code == 200

    assert client.post("/logout", data={"csrf_token": page_token(client)}).status_code == 200
    assert thief.get("/", follow_redirects=False).status_code == 303
    assert thief.get("/export/history.csv", follow_redirects=False).status_code == 303


def test_users_disable_signs_out_every_session_at_once(any_world):
    world = any_world
    first, second = signed_in(world, "zhang"), signed_in(world, "zhang")
    copied = first.cookies[SESSION_COOKIE]
    other = signed_in(world, "li")

    disabled = cli(world, "users", "disable", "zhang")
    assert disabled.exit_code == 0, disabled.output
    assert "2 session(s)" in disabled.stdout
    for client in (first, second):
        assert client.get("/", follow_redirects=False).status_code == 303
    assert other.get("/", follow_redirects=False).status_code == 200, "other users stay signed in"
    assert sign_in(world.client(), "zhang").status_code == 401

    assert cli(world, "users", "enable", "zhang").exit_code == 0
    thief = world.client()
    thief.cookies.set(SESSION_COOKIE, copied)
    assert thief.get("/", follow_redirects=False).status_code == 303, "enabling does not revive old sessions"
    assert sign_in(world.client(), "zhang").status_code == 303
    actions = [(row.action, row.subject_id) for row in world.audit(None) if "user_" in row.action]
    assert actions[-2:] == [("console.user_disabled", "zhang"), ("console.user_enabled", "zhang")]

    unknown = cli(world, "users", "disable", "ghost")
    assert unknown.exit_code == 2 and "ghost" in unknown.stderr


def test_users_passwd_changes_the_password_and_ends_the_sessions(any_world):
    world = any_world
    client = signed_in(world, "li")
    changed = cli(world, "users", "passwd", "li", "--password-stdin", stdin="a brand new password\n")
    assert changed.exit_code == 0, changed.output
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in(world.client(), "li", PASSWORD).status_code == 401
    assert sign_in(world.client(), "li", "a brand new password").status_code == 303
    [row] = world.audit("console.password_changed")
    assert row.subject_id == "li" and "a brand new password" not in row.detail

    short = cli(world, "users", "passwd", "li", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "at least" in short.stderr
    no_tty = cli(world, "users", "passwd", "li")
    assert no_tty.exit_code == 2 and "--password-stdin" in no_tty.stderr
    as_argument = cli(world, "users", "passwd", "li", "--password", "x" * 12)
    assert as_argument.exit_code == 2
    assert sign_in(world.client(), "li", "a brand new password").status_code == 303


def test_users_list_shows_roles_state_and_sessions(world):
    signed_in(world, "zhang")
    signed_in(world, "zhang")
    assert cli(world, "users", "disable", "wang").exit_code == 0
    listed = cli(world, "users", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    users = {user["username"]: user for user in json.loads(listed.stdout)}
    assert set(users) == {"zhang", "li", "wang", "risk"}
    assert (users["zhang"]["role"], users["zhang"]["officer"], users["zhang"]["sessions"]) == (
        "officer",
        "zhang_wei",
        2,
    )
    assert users["wang"]["active"] is False and users["risk"]["active"] is True
    assert users["risk"]["role"] == "reviewer" and users["risk"]["officer"] is None
    table = cli(world, "users", "list")
    assert table.exit_code == 0 and "disabled" in table.stdout and "张伟" in table.stdout
    assert "scrypt" not in table.stdout and "scrypt" not in listed.stdout


def test_a_session_ends_when_it_expires_on_the_server(world):
    client = signed_in(world, "risk")
    world.clock.offset += timedelta(hours=world.config.console.session_hours, seconds=1)
    assert client.get("/", follow_redirects=False).status_code == 303


# -- point 11: sign-in lockout per address, shared by every instance ---------------------------------


def test_one_address_guessing_across_many_names_is_locked_out(any_world):
    world = any_world
    attacker = world.client(address="198.51.100.7")
    answers = []
    for name in ("zhang", "li", "wang", "risk", "nobody", "admin"):
        for attempt in range(4):
            answers.append(sign_in(attacker, name, f"guess {attempt}").status_code)
    assert 429 in answers, "24 wrong passwords over 6 names from one address must lock it"
    assert answers.index(429) <= 10
    assert sign_in(attacker, "risk", PASSWORD).status_code == 429, "the address is locked, not the names"
    assert sign_in(world.client(address="203.0.113.9"), "risk").status_code == 303
    [entry] = [row for row in world.audit("console.locked_out") if row.subject_type == "console_client"]
    assert entry.subject_id == "198.51.100.7"

    world.clock.offset += timedelta(seconds=61)
    assert sign_in(attacker, "risk", PASSWORD).status_code == 303


def test_a_right_password_does_not_reset_the_address_count(world):
    attacker = world.client(address="198.51.100.8")
    for round_number in range(5):
        for name in ("li", "wang"):
            assert sign_in(attacker, name, f"guess {round_number}").status_code in (401, 429)
        sign_in(attacker, "zhang", PASSWORD)
    assert sign_in(attacker, "risk", PASSWORD).status_code == 429


def test_the_lockout_holds_across_two_console_instances(any_world):
    """Two apps, each with its own engine and connection pool, on the one database."""
    world = any_world
    other_store = open_store(world.config.database.url)
    try:
        first = world.client(address="192.0.2.10")
        second = world.client(address="192.0.2.10", store=other_store)
        for attempt in range(5):
            instance = first if attempt % 2 == 0 else second
            assert sign_in(instance, "zhang", f"guess {attempt}").status_code == 401
        for instance in (first, second, world.client(address="192.0.2.99", store=other_store)):
            assert sign_in(instance, "zhang", PASSWORD).status_code == 429

        for attempt in range(10):
            sign_in(first if attempt < 5 else second, f"name{attempt}", "guess")
        assert sign_in(world.client(address="192.0.2.10", store=other_store), "li").status_code == 429

        signed = signed_in(world, "risk")
        copied = signed.cookies[SESSION_COOKIE]
        elsewhere = world.client(store=other_store)
        elsewhere.cookies.set(SESSION_COOKIE, copied)
        assert elsewhere.get("/", follow_redirects=False).status_code == 200, "sessions are shared too"
        signed.post("/logout", data={"csrf_token": page_token(signed)})
        assert elsewhere.get("/", follow_redirects=False).status_code == 303
    finally:
        other_store.dispose()


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(world):
    config = with_console(world, trusted_proxies=["127.0.0.1"])
    first = world.client(config, address="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.1"})
    second = world.client(config, address="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.2"})
    for attempt in range(10):
        sign_in(first, f"name{attempt}", "guess")
    assert sign_in(first, "risk").status_code == 429
    assert sign_in(second, "risk").status_code == 303, "one client behind the proxy does not lock all"

    spoofing = world.client(config, address="203.0.113.5", headers={"X-Forwarded-For": "198.51.100.3"})
    for attempt in range(10):
        sign_in(spoofing, f"other{attempt}", "guess")
    third = world.client(config, address="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.3"})
    assert sign_in(third, "risk").status_code == 303, "X-Forwarded-For from an untrusted peer is ignored"
    assert sign_in(world.client(config, address="203.0.113.5"), "risk").status_code == 429


# -- point 12: /status scoped by officer ------------------------------------------------------------


def _fail_fjordlys(world: ConsoleWorld) -> str:
    """Li's borrower b-fjordlys gets an answer that is not Brønnøysund data; returns the stored error."""
    feed = world.deployment.folder / "feed" / "no" / "927140004"
    (feed / "enhet.json").write_text('{"feilmelding": "Internal error on /enheter/927140004"}', "utf-8")
    checker = Checker(world.store, world.config)

    async def run() -> None:
        try:
            with world.store.session() as session:
                borrower = session.get(Borrower, "b-fjordlys")
            await checker.check([borrower])
        finally:
            await checker.aclose()

    asyncio.run(run())
    with world.store.session() as session:
        borrower = session.get(Borrower, "b-fjordlys")
    assert borrower.consecutive_failures == 1 and borrower.last_error
    return borrower.last_error


def test_status_shows_an_officer_only_their_own_borrowers(any_world):
    world = any_world
    shown = escape(_fail_fjordlys(world))
    reviewer = signed_in(world, "risk").get("/status").text
    assert shown in reviewer and "b-fjordlys" in reviewer
    owner = signed_in(world, "li").get("/status").text
    assert shown in owner and "b-fjordlys" in owner

    for name in ("zhang", "wang"):
        page = signed_in(world, name).get("/status").text
        assert shown not in page and "b-fjordlys" not in page, name
    assert _borrower_count(signed_in(world, "zhang").get("/status").text) == 1
    assert _borrower_count(reviewer) == 3


def _borrower_count(html: str) -> int:
    """The first card of the status page: how many borrowers the user watches."""
    match = re.search(r'<div class="num">(\d+)</div>', html)
    assert match, "no borrower count card"
    return int(match[1])


# -- point 14: formula triggers wherever a cell may start -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CALC, "ACME;'=cmd|' /C calc'!A0"),
        ("=1+1", "'=1+1"),
        ("ACME,+1", "ACME,'+1"),
        ("ACME\t@SUM(A1)", "ACME\t'@SUM(A1)"),
        ("ACME|-2+3", "ACME|'-2+3"),
        ('line one\n=HYPERLINK("x")', 'line one\n\'=HYPERLINK("x")'),
        ("line one\r\n+1", "line one\r\n'+1"),
        ("ACME; =1", "ACME; '=1"),
        ("ACME;＝1", "ACME;'＝1"),
        ("\t=1", "'\t'=1"),
        ("Solheim, Magnus", "Solheim, Magnus"),
        ("2026-03-01", "2026-03-01"),
        ("51.00%", "51.00%"),
    ],
)
def test_neutralise_cases(text, expected):
    assert neutralise(text) == expected


def test_neutralise_leaves_no_cell_start_with_a_trigger():
    from hypothesis import given
    from hypothesis import strategies as st

    alphabet = st.sampled_from(list(FORMULA_TRIGGERS + CELL_SEPARATORS + " \u3000aZ1'\"!"))

    @given(st.text(alphabet, max_size=30))
    def check(text: str) -> None:
        result = neutralise(text)
        assert result.replace("'", "") == text.replace("'", ""), "only apostrophes are added"
        for index, char in enumerate(result):
            if char not in FORMULA_TRIGGERS:
                continue
            before = result[:index].rstrip(" \u3000")
            assert before and before[-1] not in CELL_SEPARATORS, (text, result)

    check()
    assert neutralise(3) == 3 and neutralise(None) is None


def test_exports_neutralise_triggers_after_separators_and_line_breaks(world):
    ids = world.alert_ids()
    client = signed_in(world, "risk")
    note = f"{CALC}\n@SUM(1+1)"
    client.post(f"/alerts/{ids['b-fjordlys']}/ack", data={"csrf_token": page_token(client), "note": note})
    _, rows = csv_rows(client.get("/export/alerts.csv").content)
    [acked] = [row for row in rows if int(row["id"]) == ids["b-fjordlys"]]
    assert acked["note"] == "ACME;'=cmd|' /C calc'!A0\n'@SUM(1+1)"
    _, xlsx, _ = xlsx_rows(client.get("/export/alerts.xlsx").content)
    [acked] = [row for row in xlsx if row["id"] == ids["b-fjordlys"]]
    assert acked["note"] == "ACME;'=cmd|' /C calc'!A0\n'@SUM(1+1)"


def test_history_csv_on_the_command_line_neutralises_like_the_exports(world):
    with world.store.transaction() as session:
        borrower = session.get(Borrower, "b-lanchao")
        borrower.name = f"澜潮;{CALC}"
        session.add(borrower)
    result = cli(world, "history", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    lanchao = [row for row in rows if row["borrower_id"] == "b-lanchao"]
    assert lanchao
    for row in lanchao:
        assert row["borrower_name"] == "澜潮;ACME;'=cmd|' /C calc'!A0"
    assert any(row["after"].startswith("'=HYPERLINK(") for row in lanchao)
