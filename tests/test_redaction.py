"""Secrets from the environment are never shown or stored (issue 14, point 5): every ``${NAME}``
value the config took is ``****`` in delivery logs and errors, the outbox, the audit log,
``watcher notify test``, ``watcher status`` and a failed check's error; config URL typos get a hint.

Real parts: the CLI in-process, SQLite files, loopback HTTP receivers (a webhook answering 500, a
Qichacha stand-in whose error echoes the key)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.loopback import QuietHandler, serve
from tests.test_cli import Workspace
from tests.test_e2e_qichacha_risk import SAMPLE_USCC
from watcher.config import load_config
from watcher.errors import ConfigError
from watcher.redaction import MASK, MIN_SECRET_LENGTH, Secrets

HOOK_TOKEN = "tok-SECRET-9f"
QCC_KEY = "qcc-KEY-7d31aa"

# -- the redactor (pure) --------------------------------------------------------------------------

SECRET_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="*"),
    min_size=MIN_SECRET_LENGTH,
    max_size=40,
)
"""Any value a variable may hold; never asterisks, which the mask itself is made of."""


@settings(max_examples=200, deadline=None)
@given(secret=SECRET_TEXT, before=st.text(max_size=30), after=st.text(max_size=30))
def test_a_secret_is_masked_wherever_it_sits_in_a_text(secret: str, before: str, after: str) -> None:
    shown = Secrets().adding([secret]).redact(f"{before}{secret}{after}")
    assert secret not in shown
    assert MASK in shown


@settings(max_examples=200, deadline=None)
@given(secret=SECRET_TEXT, host=st.sampled_from(["127.0.0.1:8080", "hooks.bank.example"]))
def test_a_secret_is_masked_in_the_form_a_url_carries_it(secret: str, host: str) -> None:
    url = f"json://{host}/fail-{quote(secret, safe='')}?x={quote(secret)}"
    shown = Secrets().adding([secret]).redact(url)
    assert quote(secret, safe="") not in shown and quote(secret) not in shown
    assert shown.startswith(f"json://{host}/fail-")


@given(text=st.text(max_size=60), secret=SECRET_TEXT)
def test_text_without_a_secret_is_left_as_it_is(text: str, secret: str) -> None:
    forms = {secret, quote(secret, safe=""), quote(secret)}
    if not any(form in text for form in forms):
        assert Secrets().adding([secret]).redact(text) == text


def test_short_values_are_not_masked_and_a_longer_secret_goes_first() -> None:
    secrets = Secrets().adding(["abc", "abcd", "abcdef-long"])
    assert secrets.redact("abc abcd abcdef-long") == f"abc {MASK} {MASK}"


# -- end to end -------------------------------------------------------------------------------------


class Failing(QuietHandler):
    """A webhook that always answers 500 (and echoes the path it was called on, as servers do)."""

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_body(500, f"no hook at {self.path}".encode(), "text/plain")


@pytest.fixture
def hook():
    with serve(Failing) as url:
        yield url.removeprefix("http://")


def every_text_in(database: Path) -> str:
    """Every value of every column of every table, as text (the audit log's details included)."""
    found = []
    with sqlite3.connect(database) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                found.extend(str(value) for value in row)
    return "\n".join(found)


def alerted_workspace(tmp_path: Path, extra_config: str) -> Workspace:
    """Round 1 stored as the baseline (checked with no notifier yet), round 2 staged: 3 alerts due."""
    ws = Workspace(tmp_path / "ws")
    ws.stage(1)
    ws.import_demo_borrowers()
    assert ws.cli("check").exit_code == 0
    ws.config.write_text(ws.config.read_text("utf-8") + extra_config, encoding="utf-8")
    ws.stage(2)
    return ws


def test_check_never_shows_or_stores_a_token_from_the_environment(tmp_path, hook, monkeypatch, caplog):
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    ws = alerted_workspace(
        tmp_path,
        f'\n[notifiers.bad]\nurls = ["json://{hook}/fail-${{HOOK_TOKEN}}"]\nmax_attempts = 1\n',
    )
    caplog.set_level(logging.INFO)

    result = ws.cli("check")

    assert result.exit_code == 0, result.output
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("delivery of alert")]
    assert len(failures) == 3
    assert all(f"via json://{hook.split(':')[0]}" in line and f"/fail-{MASK}" in line for line in failures)
    stored = every_text_in(ws.root / "watcher.db")
    assert f"/fail-{MASK}" in stored  # delivery.last_error and the audit log's delivery.dead detail
    with sqlite3.connect(ws.root / "watcher.db") as connection:
        dead = connection.execute("SELECT detail FROM audit_log WHERE action = 'delivery.dead'").fetchall()
    assert len(dead) == 3 and all(f"/fail-{MASK}" in json.loads(detail)["error"] for (detail,) in dead)
    status = ws.cli("status")
    status_json = ws.cli("status", "--format", "json")
    everything = [result.stdout, result.stderr, caplog.text, stored, status.output, status_json.output]
    for text in everything:
        assert HOOK_TOKEN not in text
        assert quote(HOOK_TOKEN, safe="") not in text


def test_check_prints_one_deliveries_summary(tmp_path, hook, monkeypatch):
    """The dispatcher's own summary warning would repeat check's line on stderr."""
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    ws = alerted_workspace(tmp_path, f'\n[notifiers.bad]\nurls = ["json://{hook}/fail-${{HOOK_TOKEN}}"]\n')
    result = ws.cli("check")
    summaries = [line for line in result.output.splitlines() if line.startswith("deliveries:")]
    assert summaries == ["deliveries: 0 sent, 3 failed (will retry), 0 dead"]


def test_notify_test_masks_the_token_and_tells_robots_apart(tmp_path, hook, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("ROBOT_A", "robot-token-a")
    monkeypatch.setenv("ROBOT_B", "robot-token-b")
    long_token = "4f1c0a9e2b7d4c6f8a0e1b3d5c7f5e2f"
    monkeypatch.setenv("ROBOT_LONG", long_token)
    relay = f"?api=http://{hook}/robot"
    ws = Workspace(
        tmp_path / "ws",
        f'[notifiers.bad]\nurls = ["json://{hook}/fail-${{HOOK_TOKEN}}", "dingtalk://${{ROBOT_A}}/{relay}",'
        f' "dingtalk://${{ROBOT_B}}/{relay}", "dingtalk://${{ROBOT_LONG}}/{relay}"]\n',
    )
    result = ws.cli("notify", "test")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all("FAILED" in line for line in lines)
    robots = sorted(line.split()[1] for line in lines if "dingtalk://" in line)
    assert len(set(robots)) == 3, robots
    assert "dingtalk://…5e2f:" in robots
    assert any(f"/fail-{MASK}" in line for line in lines)
    for secret in (HOOK_TOKEN, "robot-token-a", "robot-token-b", long_token):
        assert secret not in result.output


class EchoingVendor(QuietHandler):
    """A Qichacha stand-in that refuses the key and repeats it in its message, as vendors do."""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        key = self.headers.get("Token", "") + " " + self.path
        body = {"Status": "101", "Message": f"key {key} ({QCC_KEY}) is not valid", "Result": None}
        self.send_body(200, json.dumps(body).encode())


def test_a_vendor_error_echoing_the_key_is_stored_and_shown_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("QCC_KEY", QCC_KEY)
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    with serve(EchoingVendor) as url:
        config = tmp_path / "watcher.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///watcher.db"\n\n[sources.qcc]\ntype = "qichacha"\n'
            f'key = "${{QCC_KEY}}"\nsecret = "S"\nbase_url = "{url}"\nretries = 0\n',
            encoding="utf-8",
        )
        borrowers = tmp_path / "borrowers.csv"
        borrowers.write_text(
            f"id,name,source,registry_id,officer,tags,interval,legal_rep_on_file\n"
            f"hengyue,苏州恒岳精密机械有限公司,qcc,{SAMPLE_USCC},,,,周明远\n",
            encoding="utf-8",
        )
        ws = Workspace.__new__(Workspace)
        ws.config, ws.root = config, tmp_path
        assert ws.cli("borrowers", "import", str(borrowers)).exit_code == 0
        checked = ws.cli("check")
    assert checked.exit_code == 1
    assert "Qichacha Status 101" in checked.output and MASK in checked.output
    stored = every_text_in(tmp_path / "watcher.db")
    assert f"({MASK}) is not valid" in stored  # the borrower's and the source's last_error
    status = ws.cli("status")
    for text in (checked.output, stored, status.output):
        assert QCC_KEY not in text


# -- one notifier's variables; typos ----------------------------------------------------------------

TWO_NOTIFIERS = """
[notifiers.hook]
urls = ["json://{hook}/fail-${{HOOK_TOKEN}}"]

[notifiers.desk]
urls = ["dingtalk://${{WT_UNSET_DESK_TOKEN}}/"]
"""


def test_notify_test_of_one_notifier_needs_only_its_variables(tmp_path, hook, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.delenv("WT_UNSET_DESK_TOKEN", raising=False)
    ws = Workspace(tmp_path / "ws", TWO_NOTIFIERS.format(hook=hook))

    one = ws.cli("notify", "test", "--notifier", "hook")
    assert one.exit_code == 1, one.output  # it ran: the hook answers 500
    assert one.stdout.startswith("notifier:hook json://") and "FAILED" in one.stdout
    assert "WT_UNSET_DESK_TOKEN" not in one.output

    unknown = ws.cli("notify", "test", "--notifier", "nope")
    assert unknown.exit_code == 2
    assert "--notifier 'nope': no such notifier or officer" in unknown.stderr
    assert "WT_UNSET_DESK_TOKEN" not in unknown.output

    every = ws.cli("notify", "test")
    assert every.exit_code == 2
    assert "notifiers.desk.urls[0]: environment variable WT_UNSET_DESK_TOKEN is not set" in every.stderr


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("wecom://0123456789abcdef0123", "did you mean wecombot://?"),
        ("ding://0123456789abcdef0123/", "did you mean dingtalk://?"),
        ("fieshu://0123456789abcdef0123/", "did you mean feishu://?"),
        ("larks://0123456789abcdef0123/", "did you mean lark://?"),
        ("mailto://smtp.bank.example?to=risk@bank.example", "expected mailtos://user:password@smtp.host"),
    ],
)
def test_a_scheme_typo_close_to_ours_gets_a_hint(tmp_path, url: str, hint: str) -> None:
    config = tmp_path / "watcher.toml"
    config.write_text(f'[notifiers.desk]\nurls = ["{url}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "notifiers.desk.urls[0]" in str(caught.value)
    assert hint in str(caught.value)
    assert "0123456789abcdef0123" not in str(caught.value)


def test_the_daemon_log_masks_a_secret_in_any_logger_s_line() -> None:
    """The daemon's handler filter: a library's own line (apprise's, httpx's) is redacted too."""
    from watcher.logs import RedactSecrets
    from watcher.redaction import remember_secrets

    remember_secrets([HOOK_TOKEN])
    record = logging.LogRecord(
        "apprise", logging.WARNING, __file__, 1, "POST to %s failed", ("/fail-" + HOOK_TOKEN,), None
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == f"POST to /fail-{MASK} failed"


def test_the_console_status_page_masks_secrets_in_errors_stored_before(tmp_path, sqlite_url) -> None:
    """Rows written before redaction existed (or by an instance without this config) still hold the
    key: the status page shows each error through the redactor."""
    from datetime import timedelta

    from tests.test_console import ConsoleWorld, signed_in
    from watcher.redaction import remember_secrets
    from watcher.store import mark_signal_unavailable, record_source_health
    from watcher.vocabulary import ErrorKind

    world = ConsoleWorld(tmp_path, sqlite_url)
    try:
        remember_secrets([QCC_KEY])
        now = world.clock()
        with world.store.transaction() as session:
            record_source_health(session, "cn", ok=False, error=f"key {QCC_KEY} refused", kind=ErrorKind.AUTH)
            mark_signal_unavailable(
                session,
                "cn",
                "violations",
                f"not bought by {QCC_KEY}",
                now=now,
                retry_at=now + timedelta(days=1),
            )
        page = signed_in(world, "risk").get("/status?lang=en").text
        assert f"key {MASK} refused" in page and f"not bought by {MASK}" in page
        assert QCC_KEY not in page
    finally:
        world.deployment.close()
