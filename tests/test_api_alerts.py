"""The integration API's alerts and events (issue 17, point 2), over a real server on 127.0.0.1.

Alerts and change events come from the real Checker over saved registry responses
(``tests/deployment.py``) and a real monitoring-gap scan; the API is served as ``watcher serve``
serves it (the console with the API mounted) on SQLite and PostgreSQL. What the API says is compared
with what the CLI and the signed webhook say about the same alerts.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import col, select
from starlette.routing import Match
from typer.testing import CliRunner

from tests.deployment import CHANGED_AT, FJORDLYS, HARDANGER, LANCHAO, Deployment
from tests.test_api import SECRET, bearer, console_server, new_token
from watcher.alert_event import alert_event
from watcher.api.app import API_PREFIX
from watcher.cli import app as cli_app
from watcher.console.app import ROUTES
from watcher.models import Alert, AuditLog, ChangeEvent
from watcher.monitoring import scan_monitoring_gaps
from watcher.record import Category
from watcher.vocabulary import AuditAction, TokenScope

RUNNER = CliRunner()
CHANNELS = f"""\
[console]
secret_key = "{SECRET}"

[api]
rate = "1000/s"

[officers.zhang_wei]
name = "张伟"

[officers.li_na]
name = "李娜"

[officers.wang_fang]
name = "王芳"

"""
LI_FJORDLYS = replace(FJORDLYS, officer="li_na")
ZHANG_HARDANGER = replace(HARDANGER, officer="zhang_wei")
GAP_AT = CHANGED_AT + timedelta(days=3)
ALERTS = f"{API_PREFIX}/alerts"
EVENTS = f"{API_PREFIX}/events"


def cli(world: Deployment, *args: str):
    return RUNNER.invoke(cli_app, ["--config", str(world.config_path), *args], catch_exceptions=False)


def break_feed(world: Deployment, *rows) -> None:
    """The registry answers a maintenance page for these borrowers from now on."""
    for row in rows:
        folder = world.folder / "feed" / "no" / row.registry_id
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("enhet.json", "roller.json"):
            (folder / name).write_text("<html>maintenance</html>", encoding="utf-8")


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path: Path, sqlite_url: str) -> Iterator[Deployment]:
    """Three change alerts (lanchao: zhang_wei, high; fjordlys: li_na, warning; hardanger:
    zhang_wei, info), then Brønnøysund fails for both its borrowers: one gap alert for the source."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url
    deployment = Deployment(tmp_path, url, CHANNELS)
    deployment.baseline_then_change(LANCHAO, LI_FJORDLYS, ZHANG_HARDANGER)
    break_feed(deployment, LI_FJORDLYS, ZHANG_HARDANGER)
    deployment.check(CHANGED_AT + timedelta(hours=1))
    with deployment.store.transaction() as session:
        [gap] = scan_monitoring_gaps(session, deployment.config, GAP_AT).gaps
    deployment.gap_id = gap  # type: ignore[attr-defined]
    yield deployment
    deployment.close()


def alert_ids(world: Deployment) -> dict[str, int]:
    ids = {borrower: alert.id for borrower, alert in world.alerts().items() if borrower}
    return {**ids, "gap": world.gap_id}  # type: ignore[attr-defined]


def tokens(world: Deployment) -> dict[str, str]:
    store = world.store
    return {
        "reader": new_token(store, "mart"),
        "writer": new_token(store, "loans", TokenScope.WRITE),
        "zhang": new_token(store, "zhang-feed", TokenScope.WRITE, officer="zhang_wei"),
        "li": new_token(store, "li-feed", officer="li_na"),
        "wang": new_token(store, "wang-feed", officer="wang_fang"),
    }


def every_page(client: httpx.Client, url: str, token: str, **params: Any) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(url, params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


# -- alerts: the list --------------------------------------------------------------------------------


def test_alerts_are_listed_by_filter_and_by_the_tokens_officer(world):
    ids = alert_ids(world)
    token = tokens(world)
    with console_server(world.store, world.config) as client:

        def listed(who: str = "reader", **params: Any) -> list[int]:
            return [item["id"] for item in every_page(client, ALERTS, token[who], limit=2, **params)]

        def newest(*names: str) -> list[int]:
            return sorted((ids[name] for name in names), reverse=True)

        newest_first = sorted(ids.values(), reverse=True)
        assert listed() == newest_first
        assert listed(status="open") == newest_first
        assert listed(status="closed") == []
        assert listed(severity="warning") == newest("gap", "b-fjordlys", "b-lanchao")
        assert listed(severity="high") == newest("gap", "b-lanchao")
        assert listed(officer="zhang_wei") == newest("gap", "b-hardanger", "b-lanchao")
        assert listed(officer="li_na") == newest("gap", "b-fjordlys")
        assert listed(officer="wang_fang") == []
        assert listed(party="b-fjordlys") == newest("gap", "b-fjordlys")
        assert listed(since=GAP_AT.isoformat()) == newest("gap")
        assert listed(since=(GAP_AT + timedelta(seconds=1)).isoformat()) == []

        # An officer's token: their parties' alerts, and the source's gap alert listing one of theirs.
        assert listed("zhang") == newest("gap", "b-hardanger", "b-lanchao")
        assert listed("li") == newest("gap", "b-fjordlys")
        assert listed("wang") == []
        assert listed("zhang", party="b-fjordlys") == []  # another officer's party names nothing
        assert listed("zhang", officer="li_na") == newest("gap")

        first = client.get(ALERTS, params={"limit": 1}, headers=bearer(token["reader"])).json()
        assert first["items"][0] == {
            **first["items"][0],
            "id": ids["gap"],
            "kind": "monitoring_gap",
            "borrower_id": None,
            "status": "open",
            "acknowledged_by": None,
        }
        assert first["next_cursor"] and base64.urlsafe_b64decode(first["next_cursor"] + "==")


def test_alert_list_errors(world):
    token = tokens(world)
    with console_server(world.store, world.config) as client:
        assert client.get(ALERTS).status_code == 401
        assert client.get(ALERTS, headers=bearer(token["reader"] + "x")).status_code == 401
        for params, field in (
            ({"status": "pending"}, "status"),
            ({"severity": "urgent"}, "severity"),
            ({"since": "yesterday"}, "since"),
            ({"limit": 0}, "limit"),
            ({"limit": 1001}, "limit"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"cursor": base64.urlsafe_b64encode(b"ev1:5").decode()}, "cursor"),  # an events cursor
            ({"party": "x" * 65}, "party"),
            ({"party": "b-\x00"}, "party"),  # PostgreSQL stores no NUL: refused here, not a 500 there
            ({"officer": "zhang\x00"}, "officer"),
            ({"since": "0001-01-01T00:00:00+14:00"}, "since"),  # before year 1 in UTC
        ):
            response = client.get(ALERTS, params=params, headers=bearer(token["reader"]))
            assert response.status_code == 422, params
            assert response.json()["detail"][0]["loc"] == ["query", field], params


# -- alerts: one, with its changes and evidence -----------------------------------------------------


def test_an_alert_reads_as_the_signed_webhook_and_its_changes_as_history(world):
    ids = alert_ids(world)
    token = tokens(world)
    history = [json.loads(line) for line in cli(world, "history", "--format", "jsonl").stdout.splitlines()]
    with console_server(world.store, world.config) as client:
        got = client.get(f"{ALERTS}/{ids['b-lanchao']}", headers=bearer(token["reader"])).json()
    with world.store.session() as session:
        document = alert_event(session, ids["b-lanchao"], "any")
        snapshots = set(
            session.exec(select(ChangeEvent.snapshot_id).where(ChangeEvent.alert_id == ids["b-lanchao"]))
        )
    for key, value in document["alert"].items():
        assert _same(got[key], value), key
    assert len(got["changes"]) == len(document["changes"]) > 3
    for change, pushed in zip(got["changes"], document["changes"], strict=True):
        assert set(change) == set(pushed)
        assert all(_same(change[key], pushed[key]) for key in pushed), change
    mine = [row for row in history if row["alert_id"] == ids["b-lanchao"]]
    assert [c["id"] for c in got["changes"]] == [row["id"] for row in mine]
    assert got["gap"] is None and got["acknowledged_by"] is None

    links = {(link["rel"], link["href"]) for link in got["evidence"]}
    assert ("timeline", "/borrower?id=b-lanchao") in links
    assert ("history_csv", "/export/history.csv?borrower=b-lanchao") in links
    [snapshot_id] = snapshots
    assert ("snapshot", f"/snapshots/{snapshot_id}") in links
    assert ("raw_answers", f"/snapshots/{snapshot_id}/raw.json") in links
    for _rel, href in links:  # every link is a page the console serves
        path, _, query = href.partition("?")
        scope = {"type": "http", "path": path, "method": "GET", "query_string": query.encode()}
        assert any(route.matches(scope)[0] is Match.FULL for route in ROUTES), href


def _same(got: Any, expected: Any) -> bool:
    """``…+00:00`` (the webhook) and ``…Z`` (pydantic) are the same moment."""
    if isinstance(got, str) and isinstance(expected, str) and got.endswith("Z"):
        return got[:-1] + "+00:00" == expected or got[:-1] == expected
    return got == expected


def test_an_officer_reads_only_their_parties_of_a_gap_alert_about_a_whole_source(world):
    ids = alert_ids(world)
    token = tokens(world)
    with console_server(world.store, world.config) as client:
        whole = client.get(f"{ALERTS}/{ids['gap']}", headers=bearer(token["reader"])).json()
        zhang = client.get(f"{ALERTS}/{ids['gap']}", headers=bearer(token["zhang"])).json()
        li = client.get(f"{ALERTS}/{ids['gap']}", headers=bearer(token["li"])).json()
        wang = client.get(f"{ALERTS}/{ids['gap']}", headers=bearer(token["wang"]))
    assert {b["borrower_id"] for b in whole["gap"]["borrowers"]} == {"b-fjordlys", "b-hardanger"}
    assert whole["gap"]["borrowers_hidden"] == 0 and whole["gap"]["source"] == "no"
    assert [b["borrower_id"] for b in zhang["gap"]["borrowers"]] == ["b-hardanger"]
    assert [b["borrower_id"] for b in li["gap"]["borrowers"]] == ["b-fjordlys"]
    assert zhang["gap"]["borrowers_hidden"] == li["gap"]["borrowers_hidden"] == 1
    assert whole["evidence"] == [{"rel": "status", "href": "/status", "snapshot_id": None}]
    assert wang.status_code == 404


def test_a_connected_line_names_its_other_party_only_to_whom_may_see_it(world):
    """As in the messages pushed to officers: zhang_wei reads that lanchao's legal representative is
    also at another party, but not which one (li_na's fjordlys)."""
    ids = alert_ids(world)
    token = tokens(world)
    after = f"{LI_FJORDLYS.name} [b-fjordlys]: director"
    with world.store.transaction() as session:
        session.add(
            ChangeEvent(
                borrower_id="b-lanchao",
                alert_id=ids["b-lanchao"],
                source="cn",
                category=Category.CONNECTED_PARTY.value,
                action="added",
                subject="王建国",
                before="legal_representative",
                after=after,
            )
        )
    with console_server(world.store, world.config) as client:
        reviewer = client.get(f"{ALERTS}/{ids['b-lanchao']}", headers=bearer(token["reader"])).json()
        zhang = client.get(f"{ALERTS}/{ids['b-lanchao']}", headers=bearer(token["zhang"])).json()
        zhang_feed = client.get(EVENTS, params={"limit": 1000}, headers=bearer(token["zhang"])).json()
    assert reviewer["changes"][-1]["after"] == after
    for line in (zhang["changes"][-1], zhang_feed["items"][-1]):
        assert line["subject"] == "王建国" and line["category"] == "connected_party"
        assert "fjordlys" not in line["after"].lower() and LI_FJORDLYS.name not in line["after"]
        assert line["after"].endswith(": director")


def test_one_alert_errors(world):
    ids = alert_ids(world)
    token = tokens(world)
    with console_server(world.store, world.config) as client:
        assert client.get(f"{ALERTS}/{ids['b-lanchao']}").status_code == 401
        for alert_id in (999_999, ids["b-fjordlys"]):  # unknown, and another officer's: the same 404
            hidden = client.get(f"{ALERTS}/{alert_id}", headers=bearer(token["zhang"]))
            assert hidden.status_code == 404
            assert hidden.json() == {"detail": f"no alert #{alert_id} this token may see"}
        for bad in ("abc", "0", "-1", str(2**63)):
            invalid = client.get(f"{ALERTS}/{bad}", headers=bearer(token["reader"]))
            assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["path", "alert_id"]


# -- alerts: acknowledge and close -------------------------------------------------------------------


def _audit(world: Deployment, alert_id: int) -> list[AuditLog]:
    """The alert's lifecycle rows (acknowledged, closed)."""
    with world.store.session() as session:
        return list(
            session.exec(
                select(AuditLog)
                .where(col(AuditLog.subject_type) == "alert", col(AuditLog.subject_id) == str(alert_id))
                .where(col(AuditLog.action).in_([AuditAction.ALERT_ACKNOWLEDGED, AuditAction.ALERT_CLOSED]))
                .order_by(col(AuditLog.id))
            )
        )


def test_acknowledge_and_close_are_the_clis_steps_with_the_tokens_name(world):
    ids = alert_ids(world)
    token = tokens(world)
    lanchao, hardanger = ids["b-lanchao"], ids["b-hardanger"]
    # The CLI handles one alert ...
    assert cli(world, "alerts", "ack", str(hardanger), "--by", "王芳", "--note", "已致电").exit_code == 0
    assert cli(world, "alerts", "close", str(hardanger), "--by", "王芳", "--note", "已核实").exit_code == 0
    again = cli(world, "alerts", "close", str(hardanger), "--by", "王芳")
    assert again.exit_code == 1
    # ... the API the other, the same way.
    with console_server(world.store, world.config) as client:
        headers = bearer(token["writer"])
        ack = client.post(
            f"{ALERTS}/{lanchao}/acknowledge", json={"by": "王芳", "note": "已致电"}, headers=headers
        )
        assert ack.status_code == 200, ack.text
        assert (ack.json()["status"], ack.json()["acknowledged_by"]) == ("acknowledged", "王芳")
        twice = client.post(f"{ALERTS}/{lanchao}/acknowledge", json={"by": "王芳"}, headers=headers)
        assert twice.status_code == 409
        assert (
            twice.json()["detail"]
            == f"alert #{lanchao} is acknowledged, only an open alert can be acknowledged"
        )
        closed = client.post(
            f"{ALERTS}/{lanchao}/close", json={"by": "王芳", "note": "已核实"}, headers=headers
        )
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert closed.json()["closed_by"] == "王芳" and closed.json()["note"] == "已致电\n已核实"
        after_close = client.post(f"{ALERTS}/{lanchao}/close", json={"by": "王芳"}, headers=headers)
        assert after_close.status_code == 409
        assert after_close.json()["detail"] == f"alert #{lanchao} is already closed"
        assert again.stderr.strip().endswith(f"alert #{hardanger} is already closed")
        listed = client.get(ALERTS, params={"status": "closed"}, headers=headers).json()["items"]
        assert [item["id"] for item in listed] == sorted([hardanger, lanchao], reverse=True)

    with world.store.session() as session:
        by_cli, by_api = session.get(Alert, hardanger), session.get(Alert, lanchao)
        assert by_cli is not None and by_api is not None
        for field in ("status", "acknowledged_by", "closed_by", "note"):
            assert getattr(by_cli, field) == getattr(by_api, field), field
    cli_rows, api_rows = _audit(world, hardanger), _audit(world, lanchao)
    assert [(r.action, r.actor) for r in cli_rows] == [
        (AuditAction.ALERT_ACKNOWLEDGED, "王芳"),
        (AuditAction.ALERT_CLOSED, "王芳"),
    ]
    assert [(r.action, r.actor) for r in api_rows] == [
        (AuditAction.ALERT_ACKNOWLEDGED, "api:loans"),
        (AuditAction.ALERT_CLOSED, "api:loans"),
    ]
    for by_cli_row, by_api_row in zip(cli_rows, api_rows, strict=True):
        assert json.loads(by_api_row.detail or "{}") == {
            **json.loads(by_cli_row.detail or "{}"),
            "by": "王芳",
        }


def test_lifecycle_errors(world):
    ids = alert_ids(world)
    token = tokens(world)
    step = {"by": "王芳"}
    with console_server(world.store, world.config) as client:
        for path in ("acknowledge", "close"):
            url = f"{ALERTS}/{ids['b-lanchao']}/{path}"
            assert client.post(url, json=step).status_code == 401
            refused = client.post(url, json=step, headers=bearer(token["reader"]))
            assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
            for body, field in (
                ({}, "by"),
                ({"by": ""}, "by"),
                ({"by": "   "}, "by"),
                ({"by": "王芳", "note": "x" * 4001}, "note"),
                ({"by": "王\x00芳"}, "by"),
                ({"by": "王芳", "note": "a\x00"}, "note"),
                ({"by": "王芳", "colour": "red"}, "colour"),
            ):
                bad = client.post(url, json=body, headers=bearer(token["writer"]))
                assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", field], body
            hidden = client.post(
                f"{ALERTS}/{ids['b-fjordlys']}/{path}", json=step, headers=bearer(token["zhang"])
            )
            assert hidden.status_code == 404
            missing = client.post(f"{ALERTS}/999999/{path}", json=step, headers=bearer(token["writer"]))
            assert missing.status_code == 404
            # zhang_wei sees the source's gap alert but it lists li_na's party too: a reviewer's to handle.
            whole = client.post(f"{ALERTS}/{ids['gap']}/{path}", json=step, headers=bearer(token["zhang"]))
            assert whole.status_code == 403 and "other officers" in whole.json()["detail"]
        mine = client.post(
            f"{ALERTS}/{ids['b-hardanger']}/acknowledge", json=step, headers=bearer(token["zhang"])
        )
        assert mine.status_code == 200 and mine.json()["acknowledged_by"] == "王芳"
    assert [r.actor for r in _audit(world, ids["b-hardanger"])] == ["api:zhang-feed"]
    assert _audit(world, ids["b-lanchao"]) == [] and _audit(world, ids["gap"]) == []


# -- events ------------------------------------------------------------------------------------------


def follow(client: httpx.Client, token: str, cursor: str | None, *, limit: int) -> tuple[list[dict], str]:
    """Read the feed from ``cursor`` until a page is not full; the events and the cursor to go on from."""
    events: list[dict] = []
    while True:
        params: dict[str, Any] = {"limit": limit, **({"after": cursor} if cursor else {})}
        response = client.get(EVENTS, params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["items"]
        assert page["next"]
        cursor = page["next"]
        if not page["more"]:
            return events, cursor


def test_the_feed_is_the_history_in_id_order_followed_across_pages_and_restarts(world):
    token = tokens(world)
    history = [json.loads(line) for line in cli(world, "history", "--format", "jsonl").stdout.splitlines()]
    with console_server(world.store, world.config) as client:
        events, cursor = follow(client, token["reader"], None, limit=2)
        empty = client.get(EVENTS, params={"after": cursor}, headers=bearer(token["reader"])).json()
    assert len(events) == len(history) > 6
    assert [e["id"] for e in events] == sorted(row["id"] for row in history)
    by_id = {row["id"]: row for row in history}
    for event in events:
        expected = by_id[event["id"]]
        assert all(_same(event[key], expected[key]) for key in expected), event
        assert set(event) == {*expected, "key_person"}
    assert empty == {"items": [], "next": cursor, "more": False}

    # New changes while the server is down; a new server goes on from the stored cursor.
    world.stage(0, "b-lanchao")
    world.check(CHANGED_AT + timedelta(days=4))
    with console_server(world.store, world.config) as client:
        more, _ = follow(client, token["reader"], cursor, limit=3)
        replayed, _ = follow(client, token["reader"], None, limit=1000)
    assert more and min(e["id"] for e in more) > max(e["id"] for e in events)
    assert [e["id"] for e in replayed] == [e["id"] for e in events + more]  # no gap, no duplicate


def test_an_officers_feed_holds_only_their_parties(world):
    token = tokens(world)
    with world.store.session() as session:
        owners = dict(session.exec(select(ChangeEvent.id, ChangeEvent.borrower_id)).all())
    with console_server(world.store, world.config) as client:
        zhang, zhang_next = follow(client, token["zhang"], None, limit=1)
        li, _ = follow(client, token["li"], None, limit=1000)
        wang, wang_next = follow(client, token["wang"], None, limit=1000)
    assert [e["id"] for e in zhang] == sorted(
        i for i, b in owners.items() if b in {"b-lanchao", "b-hardanger"}
    )
    assert [e["id"] for e in li] == sorted(i for i, b in owners.items() if b == "b-fjordlys")
    assert wang == []
    assert wang_next == zhang_next  # an officer with nothing to read still moves on to the horizon


def test_event_feed_errors(world):
    token = tokens(world)
    with console_server(world.store, world.config) as client:
        assert client.get(EVENTS).status_code == 401
        for params, field in (
            ({"after": "garbage!"}, "after"),
            ({"after": base64.urlsafe_b64encode(b"al1:5").decode()}, "after"),  # an alerts cursor
            ({"after": base64.urlsafe_b64encode(b"ev1:-5").decode()}, "after"),
            ({"after": base64.urlsafe_b64encode(b"ev1:1" + b"0" * 30).decode()}, "after"),
            ({"limit": 0}, "limit"),
            ({"limit": 1001}, "limit"),
        ):
            response = client.get(EVENTS, params=params, headers=bearer(token["reader"]))
            assert response.status_code == 422, params
            assert response.json()["detail"][0]["loc"] == ["query", field]


def test_an_event_committed_late_with_a_lower_id_is_not_skipped(postgres_url, tmp_path):
    """PostgreSQL hands out ids when rows are inserted, not when they commit: a follower must not
    move past an id whose transaction is still open."""
    world = Deployment(tmp_path, postgres_url, CHANNELS)
    try:
        world.baseline_then_change(LANCHAO)
        token = new_token(world.store, "mart")
        with console_server(world.store, world.config) as client:
            before, cursor = follow(client, token, None, limit=1000)
            assert before
            late = world.store.engine.connect()
            try:
                slow = late.begin()
                late.execute(_insert_event("slow"))  # takes the lower id, commits last
                with world.store.transaction() as session:
                    session.execute(_insert_event("quick"))
                while_open, held = follow(client, token, cursor, limit=1000)
                assert while_open == [] and held == cursor  # "quick" waits for "slow"
                slow.commit()
            finally:
                late.close()
            after, _ = follow(client, token, held, limit=1000)
    finally:
        world.close()
    assert [e["subject"] for e in after] == ["slow", "quick"]
    assert after[0]["id"] < after[1]["id"]


def _insert_event(subject: str):
    return text(
        "INSERT INTO change_event (borrower_id, source, category, action, subject, detected_at, key_person,"
        " first_seen) VALUES ('b-lanchao', 'cn', 'address', 'changed', :subject, now(), false, false)"
    ).bindparams(subject=subject)


def test_a_follower_misses_no_event_while_writers_commit_out_of_order(postgres_url, tmp_path):
    """Four writers insert events and commit after random pauses (so ids become visible out of
    order) while a follower polls the feed: it ends with every event exactly once, in id order."""
    world = Deployment(tmp_path, postgres_url, CHANNELS)
    try:
        world.add(LANCHAO)
        token = new_token(world.store, "mart")
        written: list[str] = []
        lock = threading.Lock()

        def write(writer: int) -> None:
            chance = random.Random(writer)
            for n in range(15):
                subject = f"w{writer}-{n}"
                with world.store.transaction() as session:
                    session.execute(_insert_event(subject))
                    time.sleep(chance.uniform(0, 0.03))
                with lock:
                    written.append(subject)

        writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        seen: list[dict] = []
        with console_server(world.store, world.config) as client:
            for thread in writers:
                thread.start()
            cursor = None
            while any(thread.is_alive() for thread in writers):
                events, cursor = follow(client, token, cursor, limit=7)
                seen += events
                time.sleep(0.01)
            for thread in writers:
                thread.join()
            events, _ = follow(client, token, cursor, limit=7)
            seen += events
    finally:
        world.close()
    assert len(written) == 60
    assert sorted(e["subject"] for e in seen) == sorted(written)  # none missed, none twice
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids)


def test_a_cursor_beyond_the_feed_is_refused_rather_than_skipping_events(world):
    """A cursor for an id the feed has not reached (another deployment's, a restored database's) would
    sit "caught up" past events still to come: 422, at its field."""
    import base64

    token = tokens(world)
    beyond = base64.urlsafe_b64encode(b"ev1:999999").decode().rstrip("=")
    with console_server(world.store, world.config) as client:
        answer = client.get(EVENTS, params={"after": beyond}, headers=bearer(token["reader"]))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", "after"]
