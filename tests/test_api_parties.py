"""``/api/v1/parties`` (issue 17): the watch list over HTTP, with the borrowers file's rules.

Real servers on 127.0.0.1 (the console's, as ``watcher serve`` runs it), real SQLite and PostgreSQL
stores, the real import, lifecycle and CLI: what the API writes is compared with what
``watcher borrowers import`` and ``deactivate`` write for the same rows.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from tests.test_api import SECRET, bearer, console_server, new_token
from watcher.api.app import API_PREFIX
from watcher.cli import app as cli_app
from watcher.config import Config
from watcher.identifiers import cn_uscc_check_char
from watcher.importer import parse_borrowers_csv, reject_bad_secures
from watcher.models import Alert, AuditLog, Borrower, SecuresLink, utcnow
from watcher.pipeline import build_sources
from watcher.store import Store, open_store
from watcher.vocabulary import AuditAction, TokenScope

RUNNER = CliRunner()
OFFICERS = {"zhang_wei": {"name": "张伟"}, "li_na": {"name": "李娜"}}
SOURCES = {"cn": {"type": "replay", "format": "qichacha", "folder": "feed/cn"}, "no": {"type": "brreg"}}
PARTIES = f"{API_PREFIX}/parties"


def uscc(number: int) -> str:
    body = f"91330106{number:09d}"
    return body + cn_uscc_check_char(body)


def make_config(url: str) -> Config:
    return Config.model_validate(
        {
            "database": {"url": url},
            "console": {"secret_key": SECRET},
            "officers": OFFICERS,
            "sources": SOURCES,
        }
    )


@pytest.fixture
def store(sqlite_url) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    yield opened
    opened.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, sqlite_url) -> Iterator[Store]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = open_store(url)
    yield opened
    opened.dispose()


@contextmanager
def served(store: Store) -> Iterator[httpx.Client]:
    url = store.engine.url.render_as_string(hide_password=False)
    with console_server(store, make_config(url)) as client:
        yield client


def party(number: int, **fields: Any) -> dict[str, Any]:
    """A valid body: a Chinese borrower of zhang_wei's."""
    return {
        "name": f"杭州澜潮{number}号有限公司",
        "source": "cn",
        "registry_id": uscc(number),
        "officer": "zhang_wei",
        **fields,
    }


def trail(store: Store, subject_id: str | None = None) -> list[tuple[str, str, str, dict[str, Any]]]:
    with store.session() as session:
        query = select(AuditLog).where(col(AuditLog.subject_type) == "borrower").order_by(col(AuditLog.id))
        if subject_id is not None:
            query = query.where(col(AuditLog.subject_id) == subject_id)
        return [(r.actor, r.action, r.subject_id, json.loads(r.detail or "{}")) for r in session.exec(query)]


def add_parties(store: Store, *rows: tuple[str, str | None, str], links: tuple[tuple[str, str], ...] = ()):
    """(id, officer, role) rows straight into the store, and (party, borrower) links."""
    with store.transaction() as session:
        for number, (party_id, officer, role) in enumerate(rows, 900):
            session.add(
                Borrower(
                    id=party_id,
                    name=party_id,
                    source="cn",
                    registry_id=uscc(number),
                    officer=officer,
                    role=role,
                )
            )
        session.flush()
        for party_id, borrower_id in links:
            session.add(SecuresLink(party_id=party_id, borrower_id=borrower_id))


# -- create or update ------------------------------------------------------------------------------


def test_put_creates_then_is_idempotent_and_audited_like_an_import(any_store):
    writer = new_token(any_store, "loans", TokenScope.WRITE)
    body = party(1, tags=["制造", "重点"], interval="12h", legal_rep_on_file="王建国")
    with served(any_store) as client:
        created = client.put(f"{PARTIES}/b-1", json=body, headers=bearer(writer))
        again = client.put(f"{PARTIES}/b-1", json=body, headers=bearer(writer))
        changed = client.put(f"{PARTIES}/b-1", json={**body, "tags": ["制造"]}, headers=bearer(writer))
        fetched = client.get(f"{PARTIES}/b-1", headers=bearer(writer))
    assert created.status_code == 200, created.text
    assert created.json()["outcome"] == "added" and again.json()["outcome"] == "unchanged"
    assert changed.json()["outcome"] == "updated"
    got = fetched.json()
    assert {
        key: got[key] for key in ("id", "name", "registry_id", "officer", "tags", "interval", "role")
    } == {
        "id": "b-1",
        "name": body["name"],
        "registry_id": uscc(1),
        "officer": "zhang_wei",
        "tags": ["制造"],
        "interval": "12h",
        "role": "borrower",
    }
    assert got["legal_rep_on_file"] == "王建国" and got["health"] == "unchecked" and got["active"] is True
    assert got["secures"] == [] and got["severity"] is None
    rows = trail(any_store, "b-1")
    assert [(actor, action) for actor, action, _id, _detail in rows] == [
        ("api:loans", AuditAction.BORROWER_ADDED),
        ("api:loans", AuditAction.BORROWER_UPDATED),
    ]  # the unchanged PUT wrote nothing, as an import of an unchanged row
    assert rows[1][3] == {"tags": "制造"}
    assert rows[0][3]["registry_id"] == uscc(1) and rows[0][3]["interval_seconds"] == 12 * 3600


def csv_reason(tmp_path: Path, row: dict[str, str]) -> str:
    """What ``watcher borrowers import`` rejects the row with (the file's own check)."""
    path = tmp_path / "one.csv"
    header = list(row)
    path.write_text(",".join(header) + "\n" + ",".join(row[c] for c in header) + "\n", encoding="utf-8")
    parsed = parse_borrowers_csv(path, sources=build_sources(make_config("sqlite://")))
    assert len(parsed.rejected) == 1, parsed
    return parsed.rejected[0].message


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"registry_id": "91330106MA2KH7Q30X"}, "registry_id", "check character"),
        ({"source": "nowhere"}, "source", "unknown source 'nowhere'"),
        ({"interval": "soon"}, "interval", "interval 'soon'"),
        ({"interval": "0s"}, "interval", "must be longer than 0s"),
        ({"role": "lender"}, "role", "expected borrower, guarantor, pledgor"),
        ({"role": "guarantor", "secures": []}, "secures", "secures is empty"),
        ({"role": "guarantor", "secures": ["b-1"]}, "secures", "cannot secure itself"),
        ({"name": " "}, "name", "name is empty"),
        ({"officer": "o" * 65}, "officer", "officer is 65 characters long (at most 64)"),
        ({"legal_rep_on_file": "x" * 1001}, "legal_rep_on_file", "at most 1000"),
        ({"name": "a\x00b"}, "name", "NUL"),
    ],
)
def test_a_bad_field_is_422_with_its_path_and_the_importers_reason(store, tmp_path, change, field, reason):
    writer = new_token(store, "loans", TokenScope.WRITE)
    body = {**party(1), **change}
    with served(store) as client:
        response = client.put(f"{PARTIES}/b-1", json=body, headers=bearer(writer))
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", field] and reason in problem["msg"]
    cells = {"id": "b-1", **{k: ",".join(v) if isinstance(v, list) else v or "" for k, v in body.items()}}
    assert problem["msg"] == csv_reason(tmp_path, cells)
    assert trail(store) == []


def test_malformed_bodies_unknown_fields_and_bad_ids_are_422(store):
    writer = new_token(store, "loans", TokenScope.WRITE)
    headers = bearer(writer)
    with served(store) as client:
        unknown = client.put(f"{PARTIES}/b-1", json={**party(1), "colour": "red"}, headers=headers)
        missing = client.put(f"{PARTIES}/b-1", json={"name": "x"}, headers=headers)
        separator = client.put(f"{PARTIES}/b-1", json=party(1, tags=["a,b"]), headers=headers)
        long_id = client.put(f"{PARTIES}/{'b' * 65}", json=party(1), headers=headers)
        malformed = client.put(
            f"{PARTIES}/b-1", content=b'{"name": ', headers={**headers, "Content-Type": "application/json"}
        )
        as_number = client.put(f"{PARTIES}/b-1", json=party(1, registry_id=913301060), headers=headers)
    assert [e["loc"] for e in unknown.json()["detail"]] == [["body", "colour"]]
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "source"),
        ("body", "registry_id"),
    }
    assert separator.status_code == 422 and separator.json()["detail"][0]["loc"] == ["body", "tags"]
    assert "separate" in separator.json()["detail"][0]["msg"]
    assert long_id.status_code == 422 and long_id.json()["detail"][0]["loc"] == ["path", "party_id"]
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["type"] == "json_invalid"
    assert as_number.status_code == 422 and as_number.json()["detail"][0]["loc"] == ["body", "registry_id"]
    assert trail(store) == []


def test_a_nul_in_an_id_a_filter_or_a_cursor_is_422_not_a_database_error(any_store):
    """PostgreSQL refuses a NUL in a parameter outright: it must never reach a query."""
    writer = new_token(any_store, "loans", TokenScope.WRITE)
    cursor = base64.urlsafe_b64encode(b"b-\x00").decode().rstrip("=")
    with served(any_store) as client:
        answers = {
            ("path", "party_id"): client.get(f"{PARTIES}/b%001", headers=bearer(writer)),
            ("query", "officer"): client.get(PARTIES, params={"officer": "z\x00"}, headers=bearer(writer)),
            ("query", "tag"): client.get(PARTIES, params={"tag": "z\x00"}, headers=bearer(writer)),
            ("query", "cursor"): client.get(PARTIES, params={"cursor": cursor}, headers=bearer(writer)),
            ("body", "secures"): client.put(
                f"{PARTIES}/g-1", json=party(1, role="guarantor", secures=["b\x00"]), headers=bearer(writer)
            ),
        }
        for where in ("deactivate", "reactivate"):
            refused = client.post(f"{PARTIES}/b%001/{where}", headers=bearer(writer))
            assert refused.status_code == 422, refused.text
    for loc, response in answers.items():
        assert response.status_code == 422, (loc, response.text)
        assert response.json()["detail"][0]["loc"] == list(loc)
    for loc in (("query", "officer"), ("query", "tag")):  # in words, not as a regular expression
        assert answers[loc].json()["detail"][0]["msg"] == "contains a NUL character"


def test_guarantors_and_their_links_as_the_file_sets_them(any_store):
    writer = new_token(any_store, "loans", TokenScope.WRITE)
    with served(any_store) as client:
        client.put(f"{PARTIES}/b-1", json=party(1), headers=bearer(writer))
        guarantor = client.put(
            f"{PARTIES}/g-1", json=party(2, role="guarantor", secures=["b-1"]), headers=bearer(writer)
        )
        no_role = client.put(f"{PARTIES}/g-1", json=party(2, name="renamed"), headers=bearer(writer))
        missing_borrower = client.put(
            f"{PARTIES}/g-2", json=party(3, role="pledgor", secures=["b-404"]), headers=bearer(writer)
        )
        near_miss = client.put(
            f"{PARTIES}/g-2", json=party(3, role="pledgor", secures=["B-1"]), headers=bearer(writer)
        )
        secures_without_role = client.put(
            f"{PARTIES}/g-3", json=party(4, secures=["b-1"]), headers=bearer(writer)
        )
        listed = client.get(PARTIES, params={"role": "guarantor"}, headers=bearer(writer))
    assert guarantor.json()["party"]["role"] == "guarantor" and guarantor.json()["party"]["secures"] == [
        "b-1"
    ]
    kept = no_role.json()["party"]
    assert (kept["name"], kept["role"], kept["secures"]) == ("renamed", "guarantor", ["b-1"])
    assert missing_borrower.status_code == 422
    assert missing_borrower.json()["detail"] == [
        {
            "loc": ["body", "secures"],
            "msg": "secures 'b-404': no such borrower in the request or the database",
            "type": "value_error",
        }
    ]
    assert near_miss.json()["detail"][0]["msg"] == (
        "secures 'B-1': no such borrower in the request or the database (did you mean 'b-1'?)"
    )
    assert secures_without_role.status_code == 422
    assert "secures needs role" in secures_without_role.json()["detail"][0]["msg"]
    assert [p["id"] for p in listed.json()["items"]] == ["g-1"]


# -- bulk ------------------------------------------------------------------------------------------


def test_bulk_accepts_the_good_items_and_rejects_the_bad_with_the_files_reasons(any_store, tmp_path):
    writer = new_token(any_store, "loans", TokenScope.WRITE)
    with served(any_store) as client:
        client.put(f"{PARTIES}/b-old", json=party(50), headers=bearer(writer))
        client.put(f"{PARTIES}/b-same", json=party(51), headers=bearer(writer))
        items = [
            {"id": "b-new", **party(1)},
            {"id": "b-old", **party(50, name="新名字")},
            {"id": "b-same", **party(51)},
            {"id": "b-bad", **party(2, registry_id="123")},
            {"id": "b-new", **party(3)},
            {"id": "g-1", **party(4, role="guarantor", secures=["b-bad"])},
            {"id": "g-2", **party(5, role="guarantor", secures=["b-new"], officer="wang")},
            {"id": "b-twin", **party(1)},
        ]
        response = client.post(f"{PARTIES}:bulk", json={"items": items}, headers=bearer(writer))
        listed = client.get(PARTIES, headers=bearer(writer)).json()
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["added"], result["updated"], result["unchanged"], result["rejected"]) == (3, 1, 1, 3)
    got = [(i["index"], i["id"], i["accepted"], i["outcome"], i["field"]) for i in result["items"]]
    assert got == [
        (0, "b-new", True, "added", None),
        (1, "b-old", True, "updated", None),
        (2, "b-same", True, "unchanged", None),
        (3, "b-bad", False, None, "registry_id"),
        (4, "b-new", False, None, "id"),
        (5, "g-1", False, None, "secures"),
        (6, "g-2", True, "added", None),
        (7, "b-twin", True, "added", None),
    ]
    reasons = [i["reason"] for i in result["items"]]
    assert reasons[4] == "duplicate id 'b-new' (first on item 0)"
    assert reasons[5] == "secures 'b-bad': borrower 'b-bad' was rejected (item 3)"
    assert any("'wang' is not in [officers]" in w for w in result["items"][6]["warnings"])
    assert any("registry_id" in w and "b-new" in w for w in result["items"][7]["warnings"])
    assert [p["id"] for p in listed["items"]] == ["b-new", "b-old", "b-same", "b-twin", "g-2"]
    # The same rows as a borrowers file: the same rejections, numbered by line instead of item.
    csv_path = tmp_path / "bulk.csv"
    columns = ["id", "name", "source", "registry_id", "officer", "role", "secures"]
    csv_path.write_text(
        "\n".join(_csv_line(item, columns) for item in [None, *items]) + "\n", encoding="utf-8"
    )
    parsed = parse_borrowers_csv(csv_path, sources=build_sources(make_config("sqlite://")))
    with any_store.session() as session:
        reject_bad_secures(session, parsed)
    from_file = sorted(
        (p.line - 2, re.sub(r"line (\d+)", lambda m: f"item {int(m[1]) - 2}", p.message))
        for p in parsed.rejected
    )
    from_api = [(i["index"], i["reason"]) for i in result["items"] if not i["accepted"]]
    assert from_file == from_api


def _csv_line(item: dict[str, Any] | None, columns: list[str]) -> str:
    if item is None:
        return ",".join(columns)
    cells = []
    for column in columns:
        value = item.get(column)
        text = ",".join(value) if isinstance(value, list) else value or ""
        cells.append(f'"{text}"' if "," in text else text)
    return ",".join(cells)


def test_concurrent_upserts_of_the_same_new_ids_both_succeed(postgres_url):
    """On PostgreSQL two requests adding the same ids race to the insert; the loser runs again and
    finds them added (create or update), instead of failing on the primary key."""
    store = open_store(postgres_url)
    writers = [new_token(store, f"loans-{n}", TokenScope.WRITE) for n in range(2)]
    items = [{"id": f"b-{n:04d}", **party(n)} for n in range(3000)]
    answers: list[httpx.Response] = []
    try:
        with served(store) as client:

            def post(token: str) -> None:
                answers.append(client.post(f"{PARTIES}:bulk", json={"items": items}, headers=bearer(token)))

            threads = [threading.Thread(target=post, args=(token,)) for token in writers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        added = len(trail(store))
        store.dispose()
    assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
    results = sorted((a.json()["added"], a.json()["unchanged"]) for a in answers)
    assert results == [(0, 3000), (3000, 0)]
    assert added == 3000


def test_a_tag_with_a_separator_rejects_its_item_not_the_whole_bulk_request(store):
    """A loan system copying a CSV cell "a,b" into one tag loses that item, not its whole batch."""
    writer = new_token(store, "loans", TokenScope.WRITE)
    items = [{"id": f"b-{n}", **party(n)} for n in range(3)]
    items[1]["tags"] = ["manufacturing,zhejiang"]
    with served(store) as client:
        response = client.post(f"{PARTIES}:bulk", json={"items": items}, headers=bearer(writer))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["added"], result["rejected"]) == (2, 1)
    bad = result["items"][1]
    assert (bad["accepted"], bad["field"]) == (False, "tags") and "may not contain , or ;" in bad["reason"]


def test_bulk_of_more_than_10000_items_is_422(store):
    writer = new_token(store, "loans", TokenScope.WRITE)
    items = [{"id": f"b-{n}", **party(n)} for n in range(10_001)]
    with served(store) as client:
        response = client.post(f"{PARTIES}:bulk", json={"items": items}, headers=bearer(writer))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "items"]
    assert trail(store) == []


@pytest.mark.slow
def test_bulk_upsert_of_10000_parties_well_under_a_minute(any_store):
    writer = new_token(any_store, "loans", TokenScope.WRITE)
    items = [{"id": f"b-{n:05d}", **party(n, tags=["制造", "重点"])} for n in range(10_000)]
    with served(any_store) as client:
        started = time.monotonic()
        first = client.post(f"{PARTIES}:bulk", json={"items": items}, headers=bearer(writer))
        added_in = time.monotonic() - started
        for item in items[::2]:
            item["tags"] = ["制造"]
        started = time.monotonic()
        second = client.post(f"{PARTIES}:bulk", json={"items": items}, headers=bearer(writer))
        updated_in = time.monotonic() - started
    assert first.status_code == 200 and first.json()["added"] == 10_000, first.text[:500]
    assert (second.json()["updated"], second.json()["unchanged"]) == (5_000, 5_000)
    assert added_in < 30 and updated_in < 30, (added_in, updated_in)
    with any_store.session() as session:
        assert len(session.exec(select(Borrower.id)).all()) == 10_000
    assert len(trail(any_store)) == 15_000


# -- reading ---------------------------------------------------------------------------------------


def test_list_filters_by_officer_tag_role_health_and_highest_open_severity(any_store):
    reader = new_token(any_store, "mart")
    now = utcnow()
    add_parties(
        any_store,
        ("b-ok", "zhang_wei", "borrower"),
        ("b-failing", "zhang_wei", "borrower"),
        ("b-new", "li_na", "borrower"),
        ("b-gone", "li_na", "borrower"),
        ("b-pending", None, "borrower"),
        ("g-1", None, "guarantor"),
        links=(("g-1", "b-ok"),),
    )
    with any_store.transaction() as session:
        for b in session.exec(select(Borrower)):
            b.tags = "制造,重点" if b.id in ("b-ok", "b-new") else "零售"
            if b.id != "b-new":
                b.last_checked_at = now
            if b.id == "b-failing":
                b.consecutive_failures, b.last_error_kind = 2, "network"
            if b.id == "b-gone":
                b.active, b.deactivated_at = False, now
            if b.id == "b-pending":
                b.pending_since = now
            session.add(b)
        for borrower_id, severity, status in (
            ("b-ok", "warning", "open"),
            ("b-ok", "high", "open"),
            ("b-failing", "critical", "closed"),
            ("b-failing", "warning", "open"),
            ("b-new", "critical", "open"),
        ):
            session.add(Alert(borrower_id=borrower_id, source="cn", severity=severity, status=status))

    def ids(client: httpx.Client, **params: Any) -> list[str]:
        response = client.get(PARTIES, params=params, headers=bearer(reader))
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    with served(any_store) as client:
        assert ids(client) == ["b-failing", "b-gone", "b-new", "b-ok", "b-pending", "g-1"]
        assert ids(client, officer="li_na") == ["b-gone", "b-new"]
        assert ids(client, tag="重点") == ["b-new", "b-ok"]
        assert ids(client, tag="重") == []
        assert ids(client, role="guarantor") == ["g-1"]
        assert ids(client, health="ok") == ["b-ok", "g-1"]
        assert ids(client, health="failing") == ["b-failing"]
        assert ids(client, health="inactive") == ["b-gone"]
        assert ids(client, health="unchecked") == ["b-new"]
        assert ids(client, health="awaiting_confirmation") == ["b-pending"]
        assert ids(client, severity="high") == ["b-ok"]
        assert ids(client, severity="warning") == ["b-failing"]
        assert ids(client, severity="critical") == ["b-new"]
        assert ids(client, severity="high", officer="li_na") == []
        one = client.get(f"{PARTIES}/b-ok", headers=bearer(reader)).json()
        assert (one["severity"], one["open_alerts"], one["health"]) == ("high", 2, "ok")
        assert client.get(f"{PARTIES}/g-1", headers=bearer(reader)).json()["secures"] == ["b-ok"]
        pages, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get(PARTIES, params=params, headers=bearer(reader)).json()
            pages.append([p["id"] for p in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == [["b-failing", "b-gone"], ["b-new", "b-ok"], ["b-pending", "g-1"]]
        for bad in ({"health": "great"}, {"severity": "dire"}, {"role": "lender"}, {"cursor": "%%%"}):
            refused = client.get(PARTIES, params=bad, headers=bearer(reader))
            assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", *bad]


# -- deactivate and reactivate ---------------------------------------------------------------------


def test_deactivate_and_reactivate_write_what_the_cli_writes(any_store):
    writer = new_token(any_store, "loans", TokenScope.WRITE)
    add_parties(
        any_store,
        ("b-1", "zhang_wei", "borrower"),
        ("g-1", "zhang_wei", "guarantor"),
        links=(("g-1", "b-1"),),
    )
    with served(any_store) as client:
        stopped = client.post(
            f"{PARTIES}/b-1/deactivate", json={"reason": "loan repaid"}, headers=bearer(writer)
        )
        again = client.post(f"{PARTIES}/b-1/deactivate", headers=bearer(writer))
        listed = client.get(PARTIES, params={"health": "inactive"}, headers=bearer(writer))
        resumed = client.post(
            f"{PARTIES}/b-1/reactivate", json={"reason": "new loan"}, headers=bearer(writer)
        )
        unknown = client.post(f"{PARTIES}/b-404/deactivate", headers=bearer(writer))
        extra = client.post(f"{PARTIES}/b-1/deactivate", json={"note": "x"}, headers=bearer(writer))
    assert stopped.status_code == 200 and stopped.json()["changed"] is True
    assert stopped.json()["party"]["health"] == "inactive"
    assert stopped.json()["followers"] == [{"id": "g-1", "role": "guarantor", "active": False}]
    assert again.json()["changed"] is False
    assert [p["id"] for p in listed.json()["items"]] == ["b-1", "g-1"]
    assert resumed.json()["changed"] is True and resumed.json()["party"]["active"] is True
    assert resumed.json()["followers"] == [{"id": "g-1", "role": "guarantor", "active": True}]
    assert unknown.status_code == 404 and extra.status_code == 422
    rows = [(actor, action, subject, detail) for actor, action, subject, detail in trail(any_store)]
    assert [(a, action, s) for a, action, s, _d in rows] == [
        ("api:loans", AuditAction.BORROWER_DEACTIVATED, "b-1"),
        ("api:loans", AuditAction.BORROWER_DEACTIVATED, "g-1"),
        ("api:loans", AuditAction.BORROWER_REACTIVATED, "b-1"),
        ("api:loans", AuditAction.BORROWER_REACTIVATED, "g-1"),
    ]
    assert rows[0][3] == {"reason": "loan repaid"}
    assert rows[1][3] == {"reason": "every borrower it secures is inactive"}
    assert set(rows[2][3]) == {"inactive_since", "reason"} and rows[2][3]["reason"] == "new loan"
    assert set(rows[3][3]) == {"inactive_since"}  # reactivated with it: no reason of its own


# -- tokens: 401, 403 and officers -----------------------------------------------------------------

ENDPOINTS = [
    ("GET", PARTIES, None),
    ("GET", f"{PARTIES}/b-zhang", None),
    ("PUT", f"{PARTIES}/b-zhang", party(1)),
    ("POST", f"{PARTIES}:bulk", {"items": []}),
    ("POST", f"{PARTIES}/b-zhang/deactivate", None),
    ("POST", f"{PARTIES}/b-zhang/reactivate", None),
]


def test_every_endpoint_needs_a_token_and_writes_need_scope_write(store):
    reader = new_token(store, "mart")
    add_parties(store, ("b-zhang", "zhang_wei", "borrower"))
    with served(store) as client:
        for method, url, body in ENDPOINTS:
            anonymous = client.request(method, url, json=body)
            assert anonymous.status_code == 401, (method, url)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            bad = client.request(method, url, json=body, headers=bearer("bwt_nope"))
            assert bad.status_code == 401, (method, url)
            as_reader = client.request(method, url, json=body, headers=bearer(reader))
            assert as_reader.status_code == (200 if method == "GET" else 403), (method, url)
    assert trail(store) == []


def test_an_officers_token_sees_and_writes_only_that_officers_parties(any_store):
    """zhang_wei's token: its own parties and those securing them; writes only its own, and learns
    nothing of li_na's (404 as for no party; a borrower it cannot see is "no such borrower")."""
    add_parties(
        any_store,
        ("b-zhang", "zhang_wei", "borrower"),
        ("b-li", "li_na", "borrower"),
        ("g-both", "li_na", "guarantor"),
        ("g-li", None, "guarantor"),
        links=(("g-both", "b-zhang"), ("g-both", "b-li"), ("g-li", "b-li")),
    )
    zhang = new_token(any_store, "zhang", TokenScope.WRITE, "zhang_wei")
    zhang_reads = new_token(any_store, "zhang-read", TokenScope.READ, "zhang_wei")
    headers = bearer(zhang)
    with served(any_store) as client:
        listed = client.get(PARTIES, headers=headers).json()
        assert [p["id"] for p in listed["items"]] == ["b-zhang", "g-both"]
        both = listed["items"][1]
        assert (both["secures"], both["secures_hidden"]) == (["b-zhang"], 1)
        assert client.get(PARTIES, params={"officer": "li_na"}, headers=headers).json()["items"] == [{**both}]
        hidden = client.get(f"{PARTIES}/b-li", headers=headers)
        missing = client.get(f"{PARTIES}/b-none", headers=headers)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {"detail": "no party 'b-li'"}
        assert client.get(f"{PARTIES}/g-both", headers=bearer(zhang_reads)).status_code == 200

        other_officer = client.put(f"{PARTIES}/b-new", json=party(1, officer="li_na"), headers=headers)
        no_officer = client.put(f"{PARTIES}/b-new", json=party(1, officer=None), headers=headers)
        taken = client.put(f"{PARTIES}/b-li", json=party(2), headers=headers)
        visible_not_own = client.put(f"{PARTIES}/g-both", json=party(3), headers=headers)
        secures_hidden = client.put(
            f"{PARTIES}/g-new", json=party(4, role="guarantor", secures=["b-li"]), headers=headers
        )
        secures_missing = client.put(
            f"{PARTIES}/g-new", json=party(4, role="guarantor", secures=["b-none"]), headers=headers
        )
        own = client.put(
            f"{PARTIES}/g-new", json=party(4, role="guarantor", secures=["b-zhang"]), headers=headers
        )
        read_only = client.put(f"{PARTIES}/b-zhang", json=party(5), headers=bearer(zhang_reads))
        near_miss = client.put(
            f"{PARTIES}/g-near", json=party(6, role="guarantor", secures=["B-LI"]), headers=headers
        )
        assert near_miss.json()["detail"][0]["msg"] == (
            "secures 'B-LI': no such borrower in the request or the database"
        )  # no "did you mean 'b-li'?": li_na's borrower is not named to zhang_wei's token
        assert other_officer.status_code == no_officer.status_code == 403
        assert "zhang_wei" in other_officer.json()["detail"]
        assert taken.status_code == visible_not_own.status_code == 403
        assert secures_hidden.status_code == secures_missing.status_code == 422
        assert secures_hidden.json()["detail"][0]["msg"] == secures_missing.json()["detail"][0][
            "msg"
        ].replace("b-none", "b-li")
        assert own.status_code == 200 and own.json()["outcome"] == "added"
        assert read_only.status_code == 403

        bulk = client.post(
            f"{PARTIES}:bulk",
            json={
                "items": [
                    {"id": "b-a", **party(10)},
                    {"id": "b-b", **party(11, officer="li_na")},
                    {"id": "b-li", **party(12)},
                    {"id": "g-x", **party(13, role="pledgor", secures=["b-li"])},
                    {"id": "g-y", **party(14, role="pledgor", secures=["b-a"])},
                ]
            },
            headers=headers,
        ).json()
        assert [(i["id"], i["accepted"], i["field"]) for i in bulk["items"]] == [
            ("b-a", True, None),
            ("b-b", False, "officer"),
            ("b-li", False, "id"),
            ("g-x", False, "secures"),
            ("g-y", True, None),
        ]
        assert bulk["items"][3]["reason"] == "secures 'b-li': no such borrower in the request or the database"

        assert client.post(f"{PARTIES}/b-li/deactivate", headers=headers).status_code == 404
        assert client.post(f"{PARTIES}/g-li/reactivate", headers=headers).status_code == 404
        assert client.post(f"{PARTIES}/g-both/deactivate", headers=headers).status_code == 403
        assert client.post(f"{PARTIES}/b-zhang/deactivate", headers=bearer(zhang_reads)).status_code == 403
        mine = client.post(f"{PARTIES}/b-zhang/deactivate", headers=headers)
        assert mine.status_code == 200 and mine.json()["changed"] is True
    with any_store.session() as session:
        assert session.get(Borrower, "b-li").name == "b-li"
        assert session.get(Borrower, "g-both").active  # still secures li_na's active borrower
    actors = {actor for actor, _action, _subject, _detail in trail(any_store)}
    assert actors == {"api:zhang"}


# -- parity with the borrowers file ----------------------------------------------------------------


def _config_file(tmp_path: Path, name: str, url: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n\n[officers.zhang_wei]\nname = "张伟"\n\n'
        '[sources.cn]\ntype = "replay"\nformat = "qichacha"\nfolder = "feed/cn"\n\n'
        '[sources.no]\ntype = "brreg"\n',
        encoding="utf-8",
    )
    return path


def test_a_party_put_through_the_api_exports_as_the_csv_import_of_the_same_rows(store, tmp_path):
    """`watcher borrowers list --format csv` after the API's PUTs equals it after importing the rows."""
    writer = new_token(store, "loans", TokenScope.WRITE)
    bodies = {
        "cn-1": party(1, tags=["重点", "制造"], interval="1d", legal_rep_on_file="王建国", role=""),
        "no-1": {
            "name": "Fjordlys AS",
            "source": "no",
            "registry_id": "927 140 004",
            "tags": ["fisk"],
            "role": "",
        },
        "g-1": party(2, role="Guarantor", secures=["no-1", "cn-1"], officer=None),
    }
    with served(store) as client:
        for party_id, body in bodies.items():
            assert client.put(f"{PARTIES}/{party_id}", json=body, headers=bearer(writer)).status_code == 200
    csv_file = tmp_path / "borrowers.csv"
    csv_file.write_text(
        "id,name,source,registry_id,officer,tags,interval,legal_rep_on_file,role,secures\n"
        f'cn-1,{bodies["cn-1"]["name"]},cn,{uscc(1)},zhang_wei,"重点,制造",1d,王建国,,\n'
        "no-1,Fjordlys AS,no,927 140 004,,fisk,,,,\n"
        f'g-1,{bodies["g-1"]["name"]},cn,{uscc(2)},,,,,Guarantor,"no-1,cn-1"\n',
        encoding="utf-8",
    )
    api_config = _config_file(tmp_path, "api", str(store.engine.url))
    file_config = _config_file(tmp_path, "file", f"sqlite:///{tmp_path / 'from-file.db'}")
    assert RUNNER.invoke(cli_app, ["--config", str(file_config), "db", "upgrade"]).exit_code == 0
    imported = RUNNER.invoke(cli_app, ["--config", str(file_config), "borrowers", "import", str(csv_file)])
    assert imported.exit_code == 0, imported.output
    exports = [
        RUNNER.invoke(cli_app, ["--config", str(path), "borrowers", "list", "--format", "csv"])
        for path in (api_config, file_config)
    ]
    assert exports[0].exit_code == exports[1].exit_code == 0
    assert exports[0].stdout == exports[1].stdout
    assert "g-1," in exports[0].stdout and 'guarantor,"cn-1,no-1"' in exports[0].stdout
    # And the audit rows: the same actions and details, only the actor differs.
    from_file = open_store(f"sqlite:///{tmp_path / 'from-file.db'}")
    file_rows = [(action, subject, detail) for _a, action, subject, detail in trail(from_file)]
    from_file.dispose()
    api_rows = [(action, subject, detail) for _a, action, subject, detail in trail(store)]
    assert sorted(api_rows, key=lambda r: r[1]) == sorted(file_rows, key=lambda r: r[1])


def test_the_openapi_document_lists_the_parties_endpoints(store):
    from openapi_spec_validator import OpenAPIV31SpecValidator

    with served(store) as client:
        document = client.get(f"{API_PREFIX}/openapi.json").json()
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []
    paths = document["paths"]
    assert set(paths["/parties"]) == {"get"} and set(paths["/parties/{party_id}"]) == {"get", "put"}
    assert set(paths["/parties:bulk"]) == {"post"}
    assert {"/parties/{party_id}/deactivate", "/parties/{party_id}/reactivate"} <= set(paths)
    assert {"401", "403", "404", "422"} <= set(paths["/parties/{party_id}"]["put"]["responses"])
    health = document["components"]["schemas"]["Health"]["enum"]
    assert health == ["inactive", "failing", "awaiting_confirmation", "unchecked", "ok"]
