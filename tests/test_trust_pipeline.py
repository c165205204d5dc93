"""Trust in the check pipeline: a mass disappearance waits for confirmation, control characters never
reach the database, and a check the database refuses is a failed check of that borrower only."""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.test_pipeline import CN1, CN_ID, FIXTURES, NO1, NO_ID, T0, T1, World
from watcher.models import Alert, Borrower, ChangeEvent, Snapshot
from watcher.store import unpack_raw

CONFIRM_AFTER = timedelta(minutes=10)  # the default of [rules] confirm_after


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path, sqlite_url) -> World:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = World(tmp_path, url)
    yield made
    made.store.dispose()


@pytest.fixture
def sqlite_world(tmp_path, sqlite_url) -> World:
    made = World(tmp_path, sqlite_url)
    yield made
    made.store.dispose()


def _feed_empty_roles(world: World) -> None:
    target = world.folder / "feed" / "no" / NO_ID
    (target / "roller.json").write_text('{"rollegrupper": []}', encoding="utf-8")


def _qichacha(**changes) -> str:
    body = json.loads((FIXTURES / "cn_qichacha" / "eci_info_verify_getinfo_t0.json").read_text("utf-8"))
    body["Result"].update(changes)
    return json.dumps(body, ensure_ascii=False)


def test_everyone_gone_is_held_until_a_second_fetch_confirms_it(world):
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    _feed_empty_roles(world)

    first = world.check(T1)["no1"]
    assert first.ok and first.awaiting_confirmation and first.alert_id is None
    [borrower] = world.rows(Borrower)
    assert borrower.pending_since == T1 and borrower.next_check_at == T1 + CONFIRM_AFTER
    # Too soon: the same answer again is still not enough.
    early = world.check(T1 + CONFIRM_AFTER / 2)["no1"]
    assert early.awaiting_confirmation
    assert world.rows(ChangeEvent) == [] and world.rows(Alert) == [] and len(world.rows(Snapshot)) == 1

    confirmed = world.check(T1 + CONFIRM_AFTER)["no1"]
    assert not confirmed.awaiting_confirmation and confirmed.alert_id is not None
    removed = world.rows(ChangeEvent)
    assert removed and all(event.action == "removed" for event in removed)
    latest = max(world.rows(Snapshot), key=lambda snapshot: snapshot.id)
    # Both fetches are kept as evidence.
    assert latest.first_seen_at == T1 and latest.fetched_at == T1 + CONFIRM_AFTER
    assert json.loads(unpack_raw(latest.first_raw_gz)["roller"]) == {"rollegrupper": []}
    [borrower] = world.rows(Borrower)
    assert borrower.pending_since is None and borrower.pending_raw_gz is None


def test_an_empty_answer_that_recovers_raises_nothing(world):
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    _feed_empty_roles(world)
    assert world.check(T1)["no1"].awaiting_confirmation
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")  # the registry is back to normal
    again = world.check(T1 + CONFIRM_AFTER * 2)["no1"]
    assert again.ok and not again.awaiting_confirmation
    assert world.rows(ChangeEvent) == [] and world.rows(Alert) == []
    [borrower] = world.rows(Borrower)
    assert borrower.pending_since is None and borrower.pending_hash is None
    # A later empty answer starts a new wait, it does not confirm the old one.
    _feed_empty_roles(world)
    assert world.check(T1 + CONFIRM_AFTER * 3)["no1"].awaiting_confirmation


def test_qichacha_without_employees_and_partners_waits_too(sqlite_world):
    world = sqlite_world
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    world.feed_qichacha(CN_ID, text_body=_qichacha(Employees=[], Partners=[]))
    assert world.check(T1)["cn1"].awaiting_confirmation
    assert world.rows(Alert) == []
    assert world.check(T1 + CONFIRM_AFTER)["cn1"].alert_id is not None


def test_a_change_that_leaves_people_in_place_is_stored_at_once(sqlite_world):
    world = sqlite_world
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t1.json")
    outcome = world.check(T1)["no1"]
    assert not outcome.awaiting_confirmation and outcome.alert_id is not None


def test_control_characters_from_a_registry_never_reach_the_database(world):
    """A NUL in a Qichacha company name made PostgreSQL refuse the check."""
    world.add(CN1)
    name = "杭州澜潮\x00智能装备有限公司"
    world.feed_qichacha(CN_ID, text_body=_qichacha(Name=name, OperName="王建\x00国"))
    baseline = world.check(T0)["cn1"]
    assert baseline.ok, baseline.error
    world.feed_qichacha(CN_ID, text_body=_qichacha(Name="杭州澜潮\x00智能装备有限公司", OperName="李\x1b娜"))
    changed = world.check(T1)["cn1"]
    assert changed.ok and changed.alert_id is not None, changed.error
    # Same person (same vendor key), new spelling: the signatory on file no longer matches.
    [alert] = world.rows(Alert)
    assert alert.signatory_mismatch == "李娜"
    latest = max(world.rows(Snapshot), key=lambda snapshot: snapshot.id)
    record = json.loads(latest.record_json)
    assert record["name"] == "杭州澜潮智能装备有限公司" and record["legal_representative"]["name"] == "李娜"
    assert not any(ord(char) < 0x20 and char not in "\t\n" for char in latest.record_json)
    # The raw answer is evidence and kept as it came, compressed: NUL and all.
    assert "\x00" in zlib.decompress(latest.raw_gz).decode("utf-8") or "\\u0000" in zlib.decompress(
        latest.raw_gz
    ).decode("utf-8")


def test_a_check_the_database_refuses_fails_that_borrower_and_the_sweep_goes_on(sqlite_world):
    world = sqlite_world
    world.add(CN1, NO1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t1.json")
    world.feed_brreg(NO_ID, "enhet.json", "roller_t1.json")
    with world.store.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse_cn1 BEFORE INSERT ON snapshot WHEN NEW.borrower_id = 'cn1' "
                "BEGIN SELECT RAISE(ABORT, 'row refused'); END"
            )
        )
    outcomes = world.check(T1)
    assert (outcomes["cn1"].ok, outcomes["cn1"].error_kind) == (False, "storage")
    assert outcomes["no1"].ok and outcomes["no1"].alert_id is not None
    cn1 = next(b for b in world.rows(Borrower) if b.id == "cn1")
    assert cn1.last_error_kind == "storage" and cn1.failing_since == T1
    assert cn1.next_check_at <= T1 + world.config.schedule.retry_after_failure  # retried soon


def test_manual_checks_do_not_push_the_next_automatic_check(world):
    """Three manual checks before a 24h borrower fell due moved its next check days away."""
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    [borrower] = world.rows(Borrower)
    due = borrower.next_check_at
    for hours in (1, 2, 3):
        world.check(T0 + timedelta(hours=hours))
    [borrower] = world.rows(Borrower)
    assert borrower.next_check_at == due


def test_a_shortened_interval_takes_effect_at_the_next_sweep(world):
    from watcher.importer import upsert_borrowers
    from watcher.store import reschedule_beyond_interval

    world.add(NO1, replace(NO1, id="no2", interval_seconds=7 * 86400))
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    # The default interval was 7 days when no1 was last checked: its next check is far out.
    with world.store.transaction() as session:
        session.get(Borrower, "no1").next_check_at = T0 + timedelta(days=7)
    interval, jitter = world.config.schedule.interval, world.config.schedule.jitter
    with world.store.transaction() as session:
        moved = reschedule_beyond_interval(session, interval=interval, jitter=jitter, now=T0)
    assert moved == 1
    no1 = next(b for b in world.rows(Borrower) if b.id == "no1")
    assert T0 < no1.next_check_at <= T0 + interval + jitter
    # A re-imported CSV with a shorter interval for no2: due at the next sweep.
    with world.store.transaction() as session:
        upsert_borrowers(session, [replace(NO1, id="no2", interval_seconds=3600)], actor="test")
    no2 = next(b for b in world.rows(Borrower) if b.id == "no2")
    assert no2.next_check_at <= datetime.now(UTC)


def test_the_command_line_shows_a_borrower_awaiting_confirmation(sqlite_world):
    from typer.testing import CliRunner

    from watcher.cli import app

    world = sqlite_world
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    config = str(world.folder / "watcher.toml")
    runner = CliRunner()
    assert runner.invoke(app, ["--config", config, "check"]).exit_code == 0
    _feed_empty_roles(world)
    checked = runner.invoke(app, ["--config", config, "check"])
    assert checked.exit_code == 0, checked.output
    assert "0 alert(s), 1 awaiting confirmation" in checked.output
    listed = runner.invoke(app, ["--config", config, "borrowers", "list"], env={"COLUMNS": "200"})
    assert "awaiting confirmation since" in listed.output
    assert world.rows(Alert) == []


def test_status_lists_a_borrower_awaiting_confirmation_without_calling_it_a_problem(world):
    from typer.testing import CliRunner

    from watcher.cli import app

    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    _feed_empty_roles(world)
    assert world.check(datetime.now(UTC))["no1"].awaiting_confirmation
    config = str(world.folder / "watcher.toml")
    table = CliRunner().invoke(app, ["--config", config, "status"])
    assert "awaiting confirmation: no1" in table.output and table.exit_code == 0, table.output
    report = json.loads(CliRunner().invoke(app, ["--config", config, "status", "--format", "json"]).output)
    assert report["borrowers"]["awaiting_confirmation"] == 1
    assert [entry["id"] for entry in report["awaiting_confirmation"]] == ["no1"]


def test_a_password_in_the_database_url_query_is_masked_in_messages():
    from watcher.store import masked_database_url

    shown = masked_database_url(
        "postgresql+psycopg://postgres@127.0.0.1:5999/x?password=s3cretQ&sslmode=require"
    )
    assert "s3cretQ" not in shown and "password=***" in shown and "sslmode=require" in shown
    assert (
        "pw" not in masked_database_url("postgresql+psycopg://u:pw@h:99999999/x").split("@")[0].split(":")[-1]
    )
    assert "zz" not in masked_database_url("not a url://u:zz@h/x?password=zz")


def test_a_lone_surrogate_in_a_registry_answer_is_dropped_not_a_crash(world):
    """JSON may escape half a character ("\\ud800"): it crashed the content hash and the sweep."""
    world.add(CN1)
    body = _qichacha(Name="PLACEHOLDER").replace("PLACEHOLDER", "\\ud800杭州澜潮智能装备有限公司")
    world.feed_qichacha(CN_ID, text_body=body)
    outcome = world.check(T0)["cn1"]
    assert outcome.ok, outcome.error
    [snapshot] = world.rows(Snapshot)
    assert json.loads(snapshot.record_json)["name"] == "杭州澜潮智能装备有限公司"
