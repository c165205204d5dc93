"""Monitoring gaps: a borrower whose checks all fail for longer than failing_after raises one alert, a
whole failing source one alert listing its borrowers, and a recovery sends one notice."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.test_pipeline import CN1, CN_ID, NO1, NO_ID, T0, T1, World
from watcher.alerts import alert_view, list_alerts
from watcher.importer import BorrowerRow
from watcher.models import Alert, AlertBorrower, AuditLog, Borrower, ChangeEvent, Delivery
from watcher.monitoring import scan_monitoring_gaps
from watcher.render import BodyFormat, render_alert

FAILING_AFTER = timedelta(hours=24)  # the default of [rules] failing_after


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path, sqlite_url) -> World:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = World(tmp_path, url)
    yield made
    made.store.dispose()


def _break(world: World, source: str, registry_id: str) -> None:
    """The registry answers garbage for this company: every check of it fails (a parse error)."""
    folder = world.folder / "feed" / source / registry_id
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("getinfo.json", "enhet.json", "roller.json"):
        (folder / name).write_text("<html>maintenance</html>", encoding="utf-8")


def _repair(world: World, orgnr: str) -> None:
    """The registry answers for ``orgnr`` again (the Brønnøysund fixture, renumbered)."""
    world.feed_brreg(orgnr, "enhet.json", "roller_t0.json")
    unit_file = world.folder / "feed" / "no" / orgnr / "enhet.json"
    unit = json.loads(unit_file.read_text("utf-8"))
    unit["organisasjonsnummer"] = orgnr
    unit_file.write_text(json.dumps(unit, ensure_ascii=False), encoding="utf-8")


def _scan(world: World, when):
    with world.store.transaction() as session:
        return scan_monitoring_gaps(session, world.config, when)


def test_a_borrower_failing_longer_than_failing_after_raises_one_gap_alert_and_one_recovery(world):
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    _break(world, "cn", CN_ID)
    assert not world.check(T1)["cn1"].ok
    assert _scan(world, T1 + FAILING_AFTER / 2).alert_ids == ()  # not long enough yet
    world.check(T1 + FAILING_AFTER / 2)
    report = _scan(world, T1 + FAILING_AFTER + timedelta(minutes=1))
    [gap_id] = report.gaps
    # Once: the next scans while it still fails raise nothing more.
    world.check(T1 + FAILING_AFTER * 2)
    assert _scan(world, T1 + FAILING_AFTER * 2).alert_ids == ()
    [alert] = world.rows(Alert)
    assert (alert.kind, alert.severity, alert.borrower_id, alert.status) == (
        "monitoring_gap",
        "high",
        "cn1",
        "open",
    )
    detail = json.loads(alert.detail)
    assert detail["source"] == "cn" and detail["error_kind"] == "parse_error"
    assert detail["borrowers"][0]["since"].startswith(T1.date().isoformat())
    # Its officer and the notifiers its severity and tags reach; not part of the change history.
    targets = {delivery.target for delivery in world.rows(Delivery)}
    assert targets == {"officer:zhang_wei", "notifier:risk_desk", "notifier:zhejiang_team"}
    assert world.rows(ChangeEvent) == []
    assert any(
        entry.action == "alert.opened" and entry.subject_id == str(gap_id) for entry in world.rows(AuditLog)
    )

    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")  # the registry answers again
    assert world.check(T1 + FAILING_AFTER * 3)["cn1"].ok
    [restored_id] = _scan(world, T1 + FAILING_AFTER * 3).restored
    restored = next(alert for alert in world.rows(Alert) if alert.id == restored_id)
    assert (restored.kind, restored.severity, restored.borrower_id) == ("monitoring_restored", "info", "cn1")
    assert _scan(world, T1 + FAILING_AFTER * 4).alert_ids == ()
    [borrower] = world.rows(Borrower)
    assert borrower.gap_alert_id is None and borrower.failing_since is None


def test_a_whole_failing_source_raises_one_alert_listing_its_borrowers(world):
    more = [
        BorrowerRow(id=f"no{n}", name=f"SELSKAP {n} AS", source="no", registry_id=NO_ID, officer=officer)
        for n, officer in ((2, "zhang_wei"), (3, None))
    ]
    world.add(NO1, *more, CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    _break(world, "no", NO_ID)
    world.check(T0)
    report = _scan(world, T0 + FAILING_AFTER * 2)
    [alert_id] = report.gaps
    [alert] = world.rows(Alert)
    assert alert.borrower_id is None and alert.source == "no"
    assert sorted(link.borrower_id for link in world.rows(AlertBorrower)) == ["no1", "no2", "no3"]
    assert sorted(b.id for b in world.rows(Borrower) if b.gap_alert_id == alert_id) == ["no1", "no2", "no3"]
    with world.store.session() as session:
        view = alert_view(session, alert_id, window_days=365)
        listed = list_alerts(session, status=None)
    assert [borrower for _, borrower in listed] == [None]  # an alert about a source is listed too
    body = render_alert(view, "zh-CN").body
    assert "监控中断" in render_alert(view, "zh-CN").title and all(f"no{n}" in body for n in (1, 2, 3))
    # An officer reads only about their own borrowers; the others are counted, not named.
    own = render_alert(view.for_officer("zhang_wei"), "en")
    assert "no2" in own.body and "no1" not in own.body and "no3" not in own.body
    assert "2 more borrower(s) of other officers" in own.body
    # One recovery notice when the source answers again.
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0 + FAILING_AFTER * 3)
    assert len(_scan(world, T0 + FAILING_AFTER * 3).restored) == 1


def test_a_few_failing_borrowers_of_a_healthy_source_are_alerted_one_by_one(world):
    broken = [
        BorrowerRow(id=f"no{n}", name=f"SELSKAP {n} AS", source="no", registry_id=f"9{n:08d}") for n in (2, 3)
    ]
    healthy = [
        BorrowerRow(id=f"no{n}", name=f"SELSKAP {n} AS", source="no", registry_id=NO_ID) for n in (4, 5)
    ]
    world.add(NO1, *broken, *healthy)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    for row in broken:
        _break(world, "no", row.registry_id)
    outcomes = world.check(T0)
    assert sorted(id for id, outcome in outcomes.items() if not outcome.ok) == ["no2", "no3"]
    report = _scan(world, T0 + FAILING_AFTER * 2)
    assert len(report.gaps) == 2
    assert sorted(alert.borrower_id for alert in world.rows(Alert)) == ["no2", "no3"]


def test_gap_alert_text_names_borrower_source_since_and_error(sqlite_world_monitor):
    world = sqlite_world_monitor
    world.add(NO1)
    _break(world, "no", NO_ID)
    world.check(T0)
    [gap_id] = _scan(world, T0 + FAILING_AFTER * 2).gaps
    with world.store.session() as session:
        view = alert_view(session, gap_id, window_days=365)
    zh = render_alert(view, "zh-CN", BodyFormat.MARKDOWN, zone=ZoneInfo("Asia/Shanghai"))
    en = render_alert(view, "en", BodyFormat.HTML, zone=ZoneInfo("Europe/Oslo"))
    assert zh.title == "【高风险】FJORDLYS SJØMAT AS（no1）监控中断"
    assert "自 2025-12-30 10:00 +08:00 起检查全部失败" in zh.body and "parse_error" in zh.body
    assert en.title == "[High risk] FJORDLYS SJØMAT AS (no1): monitoring gap"
    assert "every check has failed since 2025-12-30 03:00 +01:00" in en.body and "Source: no" in en.body


@pytest.fixture
def sqlite_world_monitor(tmp_path, sqlite_url) -> World:
    made = World(tmp_path, sqlite_url)
    yield made
    made.store.dispose()


def test_console_shows_a_source_gap_to_reviewers_and_to_officers_of_listed_borrowers(tmp_path, sqlite_url):
    from tests.test_console import ConsoleWorld, page_token, signed_in

    console = ConsoleWorld(tmp_path, sqlite_url)
    try:
        for answer in (tmp_path / "feed" / "no").glob("*/*.json"):
            answer.write_text("<html>maintenance</html>", encoding="utf-8")
        since = T1 + timedelta(days=400)
        outcomes = console.deployment.check(since)
        assert [o.ok for o in outcomes.values()].count(False) == 2
        with console.store.transaction() as session:
            [gap_id] = scan_monitoring_gaps(session, console.config, since + FAILING_AFTER * 2).gaps
        card = re.compile(rf'<article[^>]*id="alert-{gap_id}".*?</article>', re.S)

        reviewer = card.search(signed_in(console, "risk").get("/alerts").text)
        assert reviewer and "监控中断" in reviewer[0]
        assert "b-fjordlys" in reviewer[0] and "b-hardanger" in reviewer[0]
        li = signed_in(console, "li")
        own = card.search(li.get("/alerts").text)
        assert own and "b-fjordlys" in own[0] and "b-hardanger" not in own[0] and "另有 1 家借款人" in own[0]
        for other in ("zhang", "wang"):
            assert not card.search(signed_in(console, other).get("/alerts").text)
        # It lists other officers' borrowers too, so only a reviewer handles it (same lifecycle and
        # audit as any alert); an officer sees it without the buttons and is refused a POST.
        assert f'action="/alerts/{gap_id}/ack"' not in own[0]
        for officer in ("li", "zhang"):
            client = signed_in(console, officer)
            refused = client.post(
                f"/alerts/{gap_id}/ack",
                data={"csrf_token": page_token(client), "note": "x", "next": "/alerts"},
                follow_redirects=False,
            )
            assert refused.status_code == 403 and console.alert(gap_id).status == "open"
        risk = signed_in(console, "risk")
        response = risk.post(
            f"/alerts/{gap_id}/ack",
            data={"csrf_token": page_token(risk), "note": "数据源维护", "next": "/alerts"},
            follow_redirects=False,
        )
        assert response.status_code == 303 and console.alert(gap_id).status == "acknowledged"
    finally:
        console.deployment.close()


def test_the_daemon_raises_a_gap_alert_and_delivers_it(tmp_path, sqlite_url):
    """`watcher run` against a registry that refuses every connection: after failing_after, the officer
    hears of the gap once, in the configured language."""
    import socket

    from tests.test_daemon import add_borrowers, chat_robot, daemon_spawner, rows, wait_until, write_config
    from watcher.config import load_config
    from watcher.store import open_store

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/enhetsregisteret/api"
    with chat_robot() as chat, daemon_spawner() as spawn:
        config = write_config(
            tmp_path,
            database_url=sqlite_url,
            registry_url=closed,
            officer_url=chat.dingtalk_url("tok"),
            extra='[rules]\nfailing_after = "2s"\n',
        )
        store = open_store(load_config(config).database.url)
        add_borrowers(store, ["927140004"], officer="kari")
        daemon = spawn(config)
        daemon.wait_ready()
        wait_until(lambda: chat.count("监控中断", "tok") >= 1, 30, "the gap alert to reach the officer")
        [alert] = rows(store, Alert)
        assert (alert.kind, alert.severity, alert.borrower_id) == ("monitoring_gap", "high", "no-000")
        assert "monitoring gap: alert #" in daemon.output
        daemon.stop()
        store.dispose()
    assert chat.count("监控中断", "tok") == 1


def test_a_source_failing_borrower_by_borrower_still_raises_one_alert_and_one_recovery(world):
    """Each borrower fails at its own slot, so they pass failing_after one by one: still one alert for
    the source (later ones join it quietly), and one recovery notice when the outage is over. (With
    failing_after at least one interval, every borrower has been checked by the time the first one
    is overdue.)"""
    healthy = [BorrowerRow(id=f"ok{n}", name=f"OK {n} AS", source="no", registry_id=NO_ID) for n in range(6)]
    from bench.registry_stub import valid_orgnrs

    broken = [
        BorrowerRow(id=f"bad{n:02d}", name=f"BAD {n} AS", source="no", registry_id=orgnr)
        for n, orgnr in enumerate(valid_orgnrs(14))
    ]
    world.add(*healthy, *broken)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    for row in broken:
        _break(world, "no", row.registry_id)
    world.check(T0, [row.id for row in healthy])
    batches = [broken[0:3], broken[3:8], broken[8:14]]
    for hour, batch in enumerate(batches):
        world.check(T0 + timedelta(hours=hour), [row.id for row in batch])
    gaps = []
    for hour, _batch in enumerate(batches):
        gaps += _scan(world, T0 + FAILING_AFTER + timedelta(hours=hour, minutes=1)).gaps
    assert len(gaps) == 1
    [alert] = world.rows(Alert)
    assert alert.borrower_id is None
    assert sorted(entry["id"] for entry in json.loads(alert.detail)["borrowers"]) == [
        row.id for row in broken
    ]
    assert len(world.rows(AlertBorrower)) == 14
    # They recover one batch at a time: one notice, once most of the source works again.
    notices = []
    for hour, batch in enumerate([broken[0:5], broken[5:10], broken[10:14]]):
        when = T0 + FAILING_AFTER * 2 + timedelta(hours=hour)
        for row in batch:
            _repair(world, row.registry_id)
        outcomes = world.check(when, [row.id for row in batch])
        assert all(outcome.ok for outcome in outcomes.values()), [o.error for o in outcomes.values()]
        notices += _scan(world, when).restored
    assert len(notices) == 1
    assert sorted(world.rows(Alert), key=lambda a: a.id)[-1].kind in ("monitoring_restored", "monitoring_gap")
