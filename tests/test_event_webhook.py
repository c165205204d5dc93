"""Signed JSON events (``[notifiers.NAME] format = "event"``): what a loan system's endpoint receives.

Alerts come from the real Checker over saved registry responses (``tests/deployment.py``) and go
through the real outbox to ``EventReceiver`` on 127.0.0.1, which verifies each request's HMAC
signature and timestamp with its own copy of the secret, as the README tells receivers to.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tests.deployment import BASELINE_AT, CHANGED_AT, FJORDLYS, LANCHAO, Deployment
from tests.receivers import EVENT_REPLAY_WINDOW_SECONDS, EventReceiver, event_signature_ok
from watcher.cli import app
from watcher.dispatch import DispatchReport
from watcher.errors import ConfigError
from watcher.models import ChangeEvent
from watcher.monitoring import scan_monitoring_gaps

SECRET = "whsec-7c1e9a4f2b8d6e3a0f5c9b1d7e2a4c8f"
OTHER_SECRET = "whsec-0000aaaa1111bbbb2222cccc3333dddd"
SOON = CHANGED_AT + timedelta(seconds=1)
RUNNER = CliRunner()
HISTORY_FIELDS = (
    "id",
    "detected_at",
    "borrower_id",
    "borrower_name",
    "source",
    "category",
    "action",
    "subject",
    "before",
    "after",
    "effective_date",
    "severity",
    "alert_id",
    "party",
    "party_name",
    "first_seen",
)


def event_notifier(url: str, **settings) -> str:
    lines = [
        "[notifiers.loan_system]",
        'format = "event"',
        f"urls = {json.dumps([url])}",
        'signing_secret = "${WEBHOOK_SECRET}"',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n\n"


@pytest.fixture
def deploy(tmp_path: Path, sqlite_url: str, monkeypatch) -> Iterator[Callable[..., Deployment]]:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    made: list[Deployment] = []

    def make(channel_tables: str, database_url: str | None = None) -> Deployment:
        deployment = Deployment(tmp_path, database_url or sqlite_url, channel_tables)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


@pytest.fixture
def event_receiver_factory() -> Iterator[Callable[[str], EventReceiver]]:
    """Start receivers, each with its own copy of a secret."""
    started: list[EventReceiver] = []

    def make(secret: str) -> EventReceiver:
        receiver = EventReceiver(secret).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


def cli(config: Path, *args: str):
    return RUNNER.invoke(app, ["--config", str(config), *args], catch_exceptions=False)


# -- the document -------------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_change_alert_arrives_signed_with_its_changes_as_history_rows(
    deploy, event_receiver_factory, request, database
):
    receiver: EventReceiver = event_receiver_factory(SECRET)
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = deploy(event_notifier(receiver.url), url)
    world.baseline_then_change(LANCHAO)
    before = time.time()
    assert world.dispatch(SOON) == DispatchReport(sent=1)

    [request] = receiver.requests
    assert request.verified and request.status == 204
    timestamp = int(request.headers["x-watcher-timestamp"])
    assert before - 1 <= timestamp <= time.time() + 1
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    document = request.document
    assert request.headers["x-watcher-event-id"] == document["event_id"]
    alert = world.alerts()["b-lanchao"]
    assert (document["schema_version"], document["type"], document["gap"]) == (1, "alert", None)
    assert document["alert"] == {
        "id": alert.id,
        "kind": "change",
        "severity": "high",
        "status": "open",
        "created_at": CHANGED_AT.isoformat(),
        "source": "cn",
        "borrower_id": "b-lanchao",
        "borrower_name": "杭州澜潮智能装备有限公司",
        "party_role": "borrower",
        "officer": "zhang_wei",
        "secures": [],
        "occasions_in_window": alert.occasions_in_window,
        "recommend_early_repayment": alert.recommend_early_repayment,
        "signatory_mismatch": alert.signatory_mismatch,
    }

    # Each change is the row `watcher history --format jsonl` prints, plus key_person.
    history = cli(world.config_path, "history", "--format", "jsonl")
    assert history.exit_code == 0, history.output
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    expected = [row for row in rows if row["alert_id"] == alert.id]
    assert expected and [tuple(change)[: len(HISTORY_FIELDS)] for change in document["changes"]] == [
        HISTORY_FIELDS
    ] * len(expected)
    assert [{k: v for k, v in c.items() if k != "key_person"} for c in document["changes"]] == expected
    with world.store.session() as session:
        events = session.exec(select(ChangeEvent).where(ChangeEvent.alert_id == alert.id))
        key_people = {event.id: event.key_person for event in events}
    assert {c["id"]: c["key_person"] for c in document["changes"]} == key_people
    assert any(key_people.values())

    # Registry text is data: UTF-8 as stored, neither \u-escaped nor HTML-escaped.
    texts = [c[field] for c in document["changes"] for field in ("subject", "before", "after") if c[field]]
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in texts)
    for text in texts:
        assert json.dumps(text, ensure_ascii=False).encode() in request.body
    assert b"\\u" not in request.body and b"&amp;" not in request.body and b"&lt;" not in request.body


def test_a_gap_alert_carries_its_borrowers_and_no_changes(deploy, event_receiver_factory, tmp_path):
    receiver = event_receiver_factory(SECRET)
    world = deploy(event_notifier(receiver.url))
    world.add(FJORDLYS)
    folder = tmp_path / "feed" / "no" / FJORDLYS.registry_id
    folder.mkdir(parents=True)
    for name in ("enhet.json", "roller.json"):
        (folder / name).write_text("<html>maintenance</html>", encoding="utf-8")
    assert not world.check(BASELINE_AT)["b-fjordlys"].ok
    later = BASELINE_AT + timedelta(hours=48)
    with world.store.transaction() as session:
        [gap_id] = scan_monitoring_gaps(session, world.config, later).gaps
    assert world.dispatch(later) == DispatchReport(sent=1)

    [request] = receiver.accepted
    document = request.document
    assert document["changes"] == []
    assert document["alert"]["id"] == gap_id
    assert (document["alert"]["kind"], document["alert"]["severity"]) == ("monitoring_gap", "high")
    assert (document["alert"]["borrower_id"], document["alert"]["borrower_name"]) == (
        "b-fjordlys",
        FJORDLYS.name,
    )
    gap = document["gap"]
    assert (gap["source"], gap["since"], gap["feed"]) == ("no", BASELINE_AT.isoformat(), None)
    assert gap["error_kind"]
    assert gap["borrowers"] == [
        {
            "borrower_id": "b-fjordlys",
            "borrower_name": "FJORDLYS SJØMAT AS",
            "officer": None,
            "failing_since": BASELINE_AT.isoformat(),
            "error_kind": gap["error_kind"],
            "party_role": "borrower",
            "secures": [],
        }
    ]
    assert "FJORDLYS SJØMAT AS".encode() in request.body


# -- retries -------------------------------------------------------------------------------------------


def test_a_503_is_retried_with_the_same_body_and_event_id_and_a_fresh_signature(
    deploy, event_receiver_factory
):
    receiver = event_receiver_factory(SECRET)
    world = deploy(event_notifier(receiver.url))
    world.baseline_then_change(LANCHAO)
    receiver.answer_with(503)
    assert world.dispatch(SOON) == DispatchReport(failed=1)
    [row] = world.deliveries()
    assert (row.status, row.attempts, row.last_error) == (
        "pending",
        1,
        "http://…@127.0.0.1/…: HTTP 503 Service Unavailable",
    )
    assert row.next_attempt_at > SOON  # backed off

    first = receiver.requests[0]
    deadline = time.monotonic() + 5
    while int(time.time()) <= int(first.headers["x-watcher-timestamp"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # the next second: the retry's timestamp must be a new one
    assert world.dispatch(row.next_attempt_at) == DispatchReport(sent=1)
    failed, retried = receiver.requests
    assert retried.verified and failed.verified  # the 503 was the receiver's choice, not a bad signature
    assert retried.body == failed.body
    assert retried.headers["x-watcher-event-id"] == failed.headers["x-watcher-event-id"]
    assert int(retried.headers["x-watcher-timestamp"]) > int(failed.headers["x-watcher-timestamp"])
    assert retried.headers["x-watcher-signature"] != failed.headers["x-watcher-signature"]
    [row] = world.deliveries()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(deploy, event_receiver_factory):
    receiver = event_receiver_factory(SECRET)
    world = deploy(event_notifier(receiver.url))
    world.baseline_then_change(LANCHAO)
    receiver.delay = 3.0
    assert world.dispatch(SOON, lease=timedelta(seconds=2)) == DispatchReport(failed=1)  # 1 s to send
    [row] = world.deliveries()
    assert (row.status, row.attempts) == ("pending", 1) and "no answer within 1 s" in (row.last_error or "")
    receiver.delay = 0.0
    assert world.dispatch(row.next_attempt_at) == DispatchReport(sent=1)
    late, retried = [r for r in receiver.requests if r.verified]
    assert retried.body == late.body


@pytest.mark.parametrize(
    ("status", "retried"), [(408, True), (429, True), (500, True), (400, False), (410, False)]
)
def test_408_429_and_5xx_are_retried_and_other_4xx_are_permanent(
    deploy, event_receiver_factory, status, retried
):
    receiver = event_receiver_factory(SECRET)
    world = deploy(event_notifier(receiver.url))
    world.baseline_then_change(LANCHAO)
    receiver.answer_with(status)
    expected = DispatchReport(failed=1) if retried else DispatchReport(dead=1)
    assert world.dispatch(SOON) == expected
    [row] = world.deliveries()
    assert (row.status, row.attempts) == ("pending" if retried else "dead", 1)
    assert f"HTTP {status}" in (row.last_error or "")
    assert len(world.audit_rows("delivery.dead")) == (0 if retried else 1)


# -- the signature --------------------------------------------------------------------------------------


def test_a_receiver_with_another_secret_refuses_and_the_delivery_is_dead_at_once(
    deploy, event_receiver_factory
):
    receiver = event_receiver_factory(OTHER_SECRET)
    world = deploy(event_notifier(receiver.url))
    world.baseline_then_change(LANCHAO)
    assert world.dispatch(SOON) == DispatchReport(dead=1)
    [request] = receiver.requests
    assert not request.verified and request.status == 401
    [row] = world.deliveries()
    assert (row.status, row.attempts) == ("dead", 1) and "HTTP 401" in (row.last_error or "")

    # The same request verifies with the right secret, but not once the replay window has passed
    # nor with a byte of the body changed.
    timestamp, sign = request.headers["x-watcher-timestamp"], request.headers["x-watcher-signature"]
    assert sign.startswith("sha256=") and len(sign) == len("sha256=") + 64
    sent_at = int(timestamp)
    assert event_signature_ok(SECRET, timestamp, sign, request.body, sent_at + 1)
    assert not event_signature_ok(
        SECRET, timestamp, sign, request.body, sent_at + EVENT_REPLAY_WINDOW_SECONDS + 1
    )
    assert not event_signature_ok(SECRET, str(sent_at + 1), sign, request.body, sent_at + 1)
    assert not event_signature_ok(
        SECRET, timestamp, sign, request.body.replace(b'"high"', b'"info"'), sent_at
    )


def test_the_secret_is_never_logged_stored_or_shown(deploy, event_receiver_factory, caplog):
    receiver = event_receiver_factory(OTHER_SECRET)  # every request fails: a 503, then a 401
    world = deploy(event_notifier(receiver.url, max_attempts=3))
    world.baseline_then_change(LANCHAO, FJORDLYS)
    receiver.answer_with(503)
    with caplog.at_level(logging.DEBUG):
        assert world.dispatch(SOON) == DispatchReport(failed=1, dead=1)
    assert "delivery of alert" in caplog.text and "HTTP 401" in caplog.text and "HTTP 503" in caplog.text
    assert SECRET not in caplog.text

    for row in world.deliveries():
        assert row.last_error and SECRET not in row.last_error
    assert all(SECRET not in entry.detail for entry in world.audit_rows())
    for args in (("status",), ("status", "--format", "json")):
        shown = cli(world.config_path, *args)
        assert "HTTP 401" in shown.output or "dead" in shown.output.lower(), shown.output
        assert SECRET not in shown.output
    probe = cli(world.config_path, "notify", "test", "--notifier", "loan_system")
    assert "FAILED" in probe.output and SECRET not in probe.output


def _readme_verify(now: float | None = None) -> Callable[..., bool]:
    """The receiver's snippet from the README's Notifications section, run as printed; ``now``
    stands in for the receiver's clock."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    [snippet] = [block for block in readme.split("```python\n")[1:] if "def verify(" in block.split("```")[0]]
    namespace: dict = {}
    exec(snippet.split("```")[0], namespace)  # noqa: S102 (our own README)
    if now is not None:
        namespace["time"] = SimpleNamespace(time=lambda: now)
    return namespace["verify"]


def test_the_readme_snippet_verifies_a_real_request_and_refuses_replays_and_other_secrets(
    deploy, event_receiver_factory
):
    verify = _readme_verify()
    receiver = event_receiver_factory(SECRET)
    world = deploy(event_notifier(receiver.url))
    world.baseline_then_change(LANCHAO)
    assert world.dispatch(SOON) == DispatchReport(sent=1)
    [request] = receiver.accepted
    headers = {
        "X-Watcher-Timestamp": request.headers["x-watcher-timestamp"],
        "X-Watcher-Signature": request.headers["x-watcher-signature"],
    }
    assert verify(SECRET, headers, request.body)
    assert not verify(OTHER_SECRET, headers, request.body)
    assert not verify(SECRET, headers, request.body + b" ")
    forged = {**headers, "X-Watcher-Timestamp": str(int(headers["X-Watcher-Timestamp"]) + 60)}
    assert not verify(SECRET, forged, request.body)  # the timestamp is signed: it cannot be moved
    sent_at = int(headers["X-Watcher-Timestamp"])
    assert _readme_verify(now=sent_at + 299)(SECRET, headers, request.body)
    assert not _readme_verify(now=sent_at + 301)(SECRET, headers, request.body)  # a replay, too late


def test_a_secret_written_into_the_file_is_masked_too(tmp_path, sqlite_url, event_receiver_factory):
    """Not from ${ENV} as the README asks, and echoed back by a careless receiver: still never stored."""
    receiver = event_receiver_factory(OTHER_SECRET)
    receiver.reason = f"bad signature, expected key {OTHER_SECRET} not {SECRET}"
    table = event_notifier(receiver.url).replace("${WEBHOOK_SECRET}", SECRET)
    world = Deployment(tmp_path, sqlite_url, table)
    try:
        world.baseline_then_change(LANCHAO)
        assert world.dispatch(SOON) == DispatchReport(dead=1)
        [row] = world.deliveries()
        assert row.last_error and "HTTP 401 bad signature" in row.last_error
        assert SECRET not in row.last_error and "****" in row.last_error
        shown = cli(world.config_path, "status")
        assert SECRET not in shown.output
    finally:
        world.close()


def test_notify_test_posts_a_signed_test_event(deploy, event_receiver_factory):
    receiver = event_receiver_factory(SECRET)
    world = deploy(event_notifier(receiver.url))
    result = cli(world.config_path, "notify", "test", "--notifier", "loan_system")
    assert result.exit_code == 0, result.output
    assert "notifier:loan_system" in result.stdout and result.stdout.rstrip().endswith(": ok")
    [request] = receiver.accepted
    document = request.document
    assert document["type"] == "test" and document["event_id"] == request.headers["x-watcher-event-id"]
    assert "测试" in document["title"]


# -- configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ('format = "event"\nurls = ["https://loans.bank.example/hook"]\n', "signing_secret", "required"),
        (
            'urls = ["mailto://risk@bank.example"]\nsigning_secret = "${WEBHOOK_SECRET}"\n',
            "signing_secret",
            'only to format = "event"',
        ),
        (
            'format = "event"\nurls = ["dingtalk://abc"]\nsigning_secret = "${WEBHOOK_SECRET}"\n',
            "urls[0]",
            "https://",
        ),
        (
            'format = "event"\nurls = ["https://loans.bank.example/hook"]\n'
            'signing_secret = "${WEBHOOK_SECRET}"\ndigest = "09:00"\n',
            "digest",
            "own document",
        ),
        (
            'format = "event"\nurls = ["https://loans.bank.example/hook"]\nsigning_secret = "short"\n',
            "signing_secret",
            "at least 16",
        ),
        ('format = "events"\nurls = ["https://loans.bank.example/hook"]\n', "format", "event"),
    ],
)
def test_event_notifier_settings_are_checked_at_load(tmp_path, monkeypatch, table, key, words):
    from watcher.config import load_config

    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    path = tmp_path / "watcher.toml"
    path.write_text(f"[notifiers.loan_system]\n{table}", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    first_line = str(caught.value).splitlines()[0]
    assert f"notifiers.loan_system.{key}" in first_line and words in first_line, first_line
    assert SECRET not in str(caught.value)


def test_an_event_notifier_loads_and_its_secret_is_hidden(tmp_path, monkeypatch):
    from watcher.config import NotifierFormat, load_config
    from watcher.redaction import redact

    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    path = tmp_path / "watcher.toml"
    path.write_text(event_notifier("https://loans.bank.example/hooks/watcher"), encoding="utf-8")
    config = load_config(path)
    notifier = config.notifiers["loan_system"]
    assert notifier.format is NotifierFormat.EVENT and notifier.event_secret == SECRET
    assert SECRET not in repr(config) and SECRET not in config.model_dump_json()
    assert redact(f"oops {SECRET}") == "oops ****"
