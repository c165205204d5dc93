"""The check pipeline end to end: replayed registry responses, a real database, no stand-ins.

Qichacha's t0/t1 fixtures plant: legal representative 王建国 → 李娜 (2026-02-26), the executive
director and manager replaced with him, shareholder 澜川 → 澜启 (2026-01-09), and a finance-head
filing (财务负责人备案) seen only in the change log.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from watcher.config import load_config
from watcher.importer import BorrowerRow, upsert_borrowers
from watcher.models import Alert, AuditLog, Borrower, ChangeEvent, Delivery, KeyPersonOccasion, Snapshot
from watcher.pipeline import Checker
from watcher.schedule import SPREAD_FROM, spread_out
from watcher.store import open_store, unpack_raw

FIXTURES = Path(__file__).parent / "fixtures" / "registries"
CN_ID = "91330106MA2KH7Q302"
NO_ID = "927140004"
T0 = datetime(2025, 12, 30, 2, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
T2 = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)

CONFIG = """\
[database]
url = "{url}"
[schedule]
interval = "24h"
jitter = "0s"
[rules]
window = "365d"
frequent_after = {frequent_after}
[sources.cn]
type = "replay"
format = "qichacha"
folder = "feed/cn"
[sources.no]
type = "replay"
format = "brreg"
folder = "feed/no"
[notifiers.risk_desk]
urls = ["mailto://alerts@bank.example?to=risk@bank.example"]
min_severity = "high"
[notifiers.zhejiang_team]
urls = ["mailto://alerts@bank.example?to=zj@bank.example"]
tags = ["zhejiang"]
[notifiers.norway_only]
urls = ["mailto://alerts@bank.example?to=no@bank.example"]
sources = ["no"]
[officers.zhang_wei]
name = "张伟"
urls = ["mailto://alerts@bank.example?to=zw@bank.example"]
"""


class World:
    """A deployment in a temporary folder: config, database, and the replay folders to feed."""

    def __init__(self, folder: Path, url: str, frequent_after: int = 1) -> None:
        self.folder = folder
        (folder / "watcher.toml").write_text(
            CONFIG.format(url=url, frequent_after=frequent_after), encoding="utf-8"
        )
        self.config = load_config(folder / "watcher.toml")
        self.store = open_store(self.config.database.url)

    def add(self, *rows: BorrowerRow) -> None:
        with self.store.transaction() as session:
            upsert_borrowers(session, rows, actor="test")

    def feed_qichacha(
        self, registry_id: str, fixture: str | None = None, *, text_body: str | None = None
    ) -> None:
        target = self.folder / "feed" / "cn" / registry_id
        target.mkdir(parents=True, exist_ok=True)
        body = text_body if text_body is not None else (FIXTURES / "cn_qichacha" / fixture).read_text("utf-8")
        (target / "getinfo.json").write_text(body, encoding="utf-8")

    def feed_brreg(self, registry_id: str, unit: str, roles: str) -> None:
        target = self.folder / "feed" / "no" / registry_id
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / "no_brreg" / unit, target / "enhet.json")
        shutil.copy(FIXTURES / "no_brreg" / roles, target / "roller.json")

    def check(self, when: datetime, ids: list[str] | None = None):
        checker = Checker(self.store, self.config, clock=lambda: when)

        async def run():
            try:
                with self.store.session() as session:
                    from watcher.store import borrowers

                    selected = borrowers(session, ids)
                return await checker.check(selected)
            finally:
                await checker.aclose()

        return {outcome.borrower_id: outcome for outcome in asyncio.run(run())}

    def rows(self, model, *where):
        with self.store.session() as session:
            return list(session.exec(select(model).where(*where)))


CN1 = BorrowerRow(
    id="cn1",
    name="杭州澜潮智能装备有限公司",
    source="cn",
    registry_id=CN_ID,
    officer="zhang_wei",
    tags=("zhejiang",),
    legal_rep_on_file="王建国",
)
NO1 = BorrowerRow(
    id="no1", name="FJORDLYS SJØMAT AS", source="no", registry_id=NO_ID, legal_rep_on_file="Magnus Solheim"
)


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


def planted(events: list[ChangeEvent]) -> set[tuple]:
    return {(e.category, e.action, e.before, e.after, e.effective_date) for e in events}


def test_first_check_is_a_silent_baseline_with_the_raw_response_kept(world):
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    outcome = world.check(T0)["cn1"]
    assert (outcome.ok, outcome.baseline, outcome.alert_id) == (True, True, None)
    assert world.rows(ChangeEvent) == [] and world.rows(Alert) == []
    [snapshot] = world.rows(Snapshot)
    raw = unpack_raw(snapshot.raw_gz)
    assert json.loads(raw["getinfo"])["Result"]["Name"] == "杭州澜潮智能装备有限公司"
    assert json.loads(snapshot.record_json)["legal_representative"]["name"] == "王建国"


def test_an_unchanged_check_writes_no_snapshot_and_no_event(world):
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    # Volatile fields change on every call; they must not count as content.
    body = json.loads((FIXTURES / "cn_qichacha" / "eci_info_verify_getinfo_t0.json").read_text("utf-8"))
    body["OrderNumber"] = "ECIINFOVERIFY-another-order"
    body["Result"]["UpdatedDate"] = "2026-01-15 08:00:00"
    body["Result"]["Partners"].reverse()
    world.feed_qichacha(CN_ID, text_body=json.dumps(body, ensure_ascii=False))
    outcome = world.check(T1)["cn1"]
    assert (outcome.ok, outcome.baseline, outcome.changes, outcome.alert_id) == (True, False, 0, None)
    assert len(world.rows(Snapshot)) == 1
    [borrower] = world.rows(Borrower)
    assert borrower.last_success_at == T1


def test_planted_changes_become_one_high_alert_with_routed_deliveries(world):
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t1.json")
    outcome = world.check(T1)["cn1"]
    events = world.rows(ChangeEvent)
    feb26, jan9 = date(2026, 2, 26), date(2026, 1, 9)
    assert planted(events) == {
        ("legal_representative", "changed", "王建国", "李娜", feb26),
        ("director", "removed", "王建国 (执行董事兼总经理)", None, feb26),
        ("director", "added", None, "李娜 (执行董事兼总经理)", feb26),
        ("manager", "removed", "王建国 (执行董事兼总经理)", None, feb26),
        ("manager", "added", None, "李娜 (执行董事兼总经理)", feb26),
        ("shareholder", "removed", "杭州澜川投资管理合伙企业(有限合伙) 40% 20,000,000 CNY", None, jan9),
        ("shareholder", "added", None, "上海临港澜启科技有限公司 40% 20,000,000 CNY", jan9),
        ("finance_head", "changed", "赵磊", "周明", feb26),
    }
    [alert] = world.rows(Alert)
    assert {e.alert_id for e in events} == {alert.id} == {outcome.alert_id}
    # Two differently dated occasions in one check: more than frequent_after = 1 → high.
    assert (alert.severity, alert.occasions_in_window, alert.recommend_early_repayment) == ("high", 2, True)
    assert alert.signatory_mismatch == "李娜"
    targets = sorted(d.target for d in world.rows(Delivery))
    assert targets == ["notifier:risk_desk", "notifier:zhejiang_team", "officer:zhang_wei"]
    assert {d.status for d in world.rows(Delivery)} == {"pending"}
    assert [a.action for a in world.rows(AuditLog, AuditLog.action == "alert.opened")] == ["alert.opened"]


def test_a_failed_fetch_never_becomes_a_change(world):
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    bad_bodies = [
        '{"Status": "200", "Res',
        "",
        "<html><body>请输入验证码</body></html>",
        (FIXTURES / "cn_qichacha" / "error_112_quota.json").read_text("utf-8"),
        json.dumps({"Status": "200", "Message": "ok", "Result": {}}),
    ]
    kinds = []
    for when_day, body in enumerate(bad_bodies, start=1):
        world.feed_qichacha(CN_ID, text_body=body)
        outcome = world.check(T0 + timedelta(days=when_day))["cn1"]
        assert not outcome.ok
        kinds.append(outcome.error_kind)
    assert kinds[0] == "parse_error" and "auth" in kinds
    assert world.rows(ChangeEvent) == [] and world.rows(Alert) == [] and len(world.rows(Snapshot)) == 1
    [borrower] = world.rows(Borrower)
    assert borrower.consecutive_failures == len(bad_bodies)
    with world.store.session() as session:
        health = session.exec(text("SELECT consecutive_failures, last_error_kind FROM source_health")).one()
    assert health[0] == len(bad_bodies)
    # Recovery: the next good response is compared with the last good snapshot.
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t1.json")
    assert world.check(T1)["cn1"].changes == 8
    with world.store.session() as session:
        recovered = session.exec(
            text("SELECT consecutive_failures, last_success_at FROM source_health")
        ).one()
    assert recovered[0] == 0 and recovered[1] is not None


def test_a_missing_company_is_a_not_found_failure(world):
    world.add(CN1)
    outcome = world.check(T0)["cn1"]
    assert (outcome.ok, outcome.error_kind) == (False, "not_found")


def test_change_alert_and_deliveries_are_stored_in_one_transaction(sqlite_world):
    world = sqlite_world
    world.add(CN1)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t1.json")
    # The database refuses the outbox row, as a full disk or a crash mid-transaction would.
    with world.store.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse_delivery BEFORE INSERT ON delivery "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        )
    refused = world.check(T1)["cn1"]
    # Nothing of the change is stored, and the check is a failure of this borrower, not a crash.
    assert (refused.ok, refused.error_kind) == (False, "storage") and "disk full" in refused.error
    [borrower] = world.rows(Borrower)
    assert borrower.last_error_kind == "storage" and borrower.consecutive_failures == 1
    assert world.rows(ChangeEvent) == [] and world.rows(Alert) == [] and len(world.rows(Snapshot)) == 1
    assert world.rows(KeyPersonOccasion) == []
    with world.store.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse_delivery"))
    outcome = world.check(T1)["cn1"]
    assert outcome.changes == 8 and outcome.severity == "high"
    assert len(world.rows(Delivery)) == 3


def test_key_person_changes_on_separate_occasions_escalate_to_high(tmp_path, sqlite_url):
    world = World(tmp_path, sqlite_url, frequent_after=1)
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t1.json")
    first = world.check(T1)["no1"]
    assert first.severity == "warning"
    roles = json.loads((FIXTURES / "no_brreg" / "roller_t1.json").read_text("utf-8"))
    board = next(group for group in roles["rollegrupper"] if group["type"]["kode"] == "STYR")
    board["sistEndret"] = "2026-03-30"
    board["roller"] = [role for role in board["roller"] if role["type"]["kode"] != "VARA"]
    (tmp_path / "feed" / "no" / NO_ID / "roller.json").write_text(json.dumps(roles), encoding="utf-8")
    second = world.check(T2)["no1"]
    assert second.severity == "high"
    alerts = {a.id: a for a in world.rows(Alert)}
    assert alerts[second.alert_id].occasions_in_window == 2
    assert alerts[second.alert_id].recommend_early_repayment
    world.store.dispose()


def test_frequent_after_two_keeps_the_second_occasion_a_warning(tmp_path, sqlite_url):
    world = World(tmp_path, sqlite_url, frequent_after=2)
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t1.json")
    assert world.check(T1)["no1"].severity == "warning"
    world.store.dispose()


def test_signatory_mismatch_warns_once_when_it_appears(sqlite_world):
    world = sqlite_world
    row = BorrowerRow(
        id="no1", name="FJORDLYS SJØMAT AS", source="no", registry_id=NO_ID, legal_rep_on_file="Someone Else"
    )
    world.add(row)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    first = world.check(T0)["no1"]
    assert first.baseline and first.severity == "warning"
    [alert] = world.rows(Alert)
    assert alert.signatory_mismatch == "Magnus Solheim"
    assert world.check(T1)["no1"].alert_id is None
    # The bank corrects its file: the mismatch clears, and nothing is raised.
    world.add(_with(row, legal_rep_on_file="magnus  SOLHEIM"))
    assert world.check(T2)["no1"].alert_id is None
    [borrower] = world.rows(Borrower)
    assert borrower.signatory_mismatch is None


def _with(row: BorrowerRow, **changes) -> BorrowerRow:
    return replace(row, **changes)


def test_status_turning_bankrupt_is_critical(sqlite_world):
    world = sqlite_world
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    unit = json.loads((FIXTURES / "no_brreg" / "enhet.json").read_text("utf-8"))
    unit["konkurs"] = True
    unit["konkursdato"] = "2026-02-20"
    (world.folder / "feed" / "no" / NO_ID / "enhet.json").write_text(json.dumps(unit), encoding="utf-8")
    outcome = world.check(T1)["no1"]
    assert outcome.severity == "critical"
    [event] = world.rows(ChangeEvent)
    assert (event.category, event.action) == ("status", "changed")
    assert sorted(d.target for d in world.rows(Delivery)) == ["notifier:norway_only", "notifier:risk_desk"]


def test_borrower_without_officer_still_reaches_matching_notifiers(sqlite_world):
    world = sqlite_world
    world.add(_with(CN1, officer=None))
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T0)
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t1.json")
    world.check(T1)
    assert sorted(d.target for d in world.rows(Delivery)) == ["notifier:risk_desk", "notifier:zhejiang_team"]


def test_dated_changes_from_before_the_baseline_count_toward_the_window(sqlite_world):
    world = sqlite_world
    world.add(CN1)
    body = json.loads((FIXTURES / "cn_qichacha" / "eci_info_verify_getinfo_t0.json").read_text("utf-8"))
    body["Result"]["ChangeRecords"].append(
        {"ProjectName": "董事备案", "BeforeContent": "甲", "AfterContent": "乙", "ChangeDate": "2025-10-01"}
    )
    world.feed_qichacha(CN_ID, text_body=json.dumps(body, ensure_ascii=False))
    assert world.check(T0)["cn1"].alert_id is None
    [occasion] = world.rows(KeyPersonOccasion)
    assert (occasion.occasion_date, occasion.historical) == (date(2025, 10, 1), True)
    # One later key-person change (a new supervisor is not key; the legal rep is).
    t1 = json.loads(json.dumps(body))
    t1["Result"]["OperName"] = "李娜"
    t1["Result"]["OperId"] = "p-new"
    world.feed_qichacha(CN_ID, text_body=json.dumps(t1, ensure_ascii=False))
    outcome = world.check(T1)["cn1"]
    assert outcome.severity == "high"


def test_next_check_is_scheduled_after_success_and_sooner_after_failure(sqlite_world):
    world = sqlite_world
    world.add(CN1)
    world.check(T0)
    [borrower] = world.rows(Borrower)
    assert T0 < borrower.next_check_at <= T0 + world.config.schedule.retry_after_failure
    world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
    world.check(T1)
    [borrower] = world.rows(Borrower)
    interval, jitter = world.config.schedule.interval, world.config.schedule.jitter
    assert T1 < borrower.next_check_at <= T1 + interval + jitter
    # From then on the borrower keeps its slot: one interval (plus its jitter) between checks.
    world.check(borrower.next_check_at)
    [again] = world.rows(Borrower)
    assert interval <= again.next_check_at - borrower.next_check_at <= interval + jitter


def test_a_check_that_runs_late_keeps_its_slot(world):
    """A sweep or a backlog may start a check well after its slot: the next one still comes one
    interval after the slot, not a whole interval later (once every two intervals)."""
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    [borrower] = world.rows(Borrower)
    slot, interval = borrower.next_check_at, world.config.schedule.interval
    jitter = world.config.schedule.jitter
    world.check(slot + interval * 0.5)
    [late] = world.rows(Borrower)
    assert slot + interval <= late.next_check_at <= slot + interval + jitter
    # Later than a whole interval (a backlog): spread out again, within an interval.
    now = late.next_check_at + interval * 1.5
    world.check(now)
    [backlogged] = world.rows(Borrower)
    assert backlogged.next_check_at == spread_out("no1", now, interval)
    assert interval * SPREAD_FROM <= backlogged.next_check_at - now <= interval


def test_checks_of_many_borrowers_spread_evenly_after_their_first_check():
    """100,000 borrowers imported at once must not all fall due at the same moment every day."""
    interval = timedelta(hours=24)
    offsets = [(spread_out(f"borrower-{n}", T1, interval) - T1) / interval for n in range(24_000)]
    assert all(SPREAD_FROM <= offset <= 1 for offset in offsets)
    window = 1 - SPREAD_FROM
    minutes = [0] * 24  # the spread window in 24 equal parts
    for offset in offsets:
        minutes[min(int((offset - SPREAD_FROM) / window * 24), 23)] += 1
    assert min(minutes) > 800 and max(minutes) < 1200  # about 1,000 a part, no rush hour


# -- unchanged checks: identical answers are not mapped again, and are written in batches ---------


def _count_mappings(monkeypatch) -> list[str]:
    """Registry ids the Brønnøysund mapping was run for (the real mapping still runs)."""
    from sources.brreg import BrregSource

    mapped: list[str] = []
    real = BrregSource.map_raw.__func__

    def counting(cls, raw, *, source, registry_id):
        mapped.append(registry_id)
        return real(cls, raw, source=source, registry_id=registry_id)

    monkeypatch.setattr(BrregSource, "map_raw", classmethod(counting))
    return mapped


def test_an_identical_answer_is_not_mapped_again_but_a_reformatted_one_is(world, monkeypatch):
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    mapped = _count_mappings(monkeypatch)
    world.check(T0)
    assert mapped == [NO_ID]
    [baseline] = world.rows(Borrower)
    assert baseline.last_payload_digest

    outcome = world.check(T1)["no1"]
    assert mapped == [NO_ID]  # byte-identical answer: not mapped again
    assert (outcome.ok, outcome.changes, outcome.alert_id) == (True, 0, None)
    [borrower] = world.rows(Borrower)
    assert (borrower.last_checked_at, borrower.last_success_at) == (T1, T1)
    assert borrower.next_check_at > T1 and borrower.claimed_by is None
    assert borrower.last_payload_digest == baseline.last_payload_digest

    # Same content, other bytes: mapped, found unchanged, and the new answer's digest remembered.
    roles = world.folder / "feed" / "no" / NO_ID / "roller.json"
    roles.write_text(json.dumps(json.loads(roles.read_text("utf-8")), indent=4), encoding="utf-8")
    assert world.check(T2)["no1"].changes == 0
    assert mapped == [NO_ID, NO_ID]
    [after] = world.rows(Borrower)
    assert after.last_payload_digest not in (None, baseline.last_payload_digest)
    assert after.last_success_at == T2
    assert len(world.rows(Snapshot)) == 1 and world.rows(ChangeEvent) == []


def test_a_change_after_identical_answers_is_still_found(world):
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    world.check(T1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t1.json")
    outcome = world.check(T2)["no1"]
    assert outcome.changes > 0 and outcome.alert_id is not None
    assert len(world.rows(Snapshot)) == 2


def test_a_new_signatory_on_file_is_assessed_even_when_the_answer_is_identical(sqlite_world, monkeypatch):
    """The answer alone does not decide a check: the bank's own file changed, so it is mapped again."""
    world = sqlite_world
    world.add(NO1)  # on file: Magnus Solheim, as the registry says
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    assert world.rows(Alert) == []
    world.add(_with(NO1, legal_rep_on_file="Kari Nordmann"))
    mapped = _count_mappings(monkeypatch)
    outcome = world.check(T1)["no1"]
    assert mapped == [NO_ID]
    assert outcome.severity == "warning"
    [alert] = world.rows(Alert)
    assert alert.signatory_mismatch == "Magnus Solheim"


def test_unchanged_checks_are_written_in_a_few_transactions(sqlite_world):
    from sqlalchemy import event

    from watcher.pipeline import SETTLE_BATCH

    world = sqlite_world
    count = SETTLE_BATCH + 44
    rows = [_with(NO1, id=f"no{n}", legal_rep_on_file=None) for n in range(count)]
    world.add(*rows)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    commits: list[int] = []
    event.listen(world.store.engine, "commit", lambda connection: commits.append(1))
    outcomes = world.check(T1)
    assert len(outcomes) == count and all(o.ok and not o.baseline for o in outcomes.values())
    assert len(commits) <= 3  # two batches (and at most one health row), not one per borrower
    checked = world.rows(Borrower)
    assert {b.last_success_at for b in checked} == {T1}
    assert all(b.next_check_at > T1 and b.claimed_by is None for b in checked)


def test_an_unchanged_result_yields_to_a_change_stored_meanwhile(world):
    """A lapsed lease let another check store a change while this one ran: this one compared against
    an outdated record, so it stores nothing and the borrower is checked again at once."""
    world.add(NO1)
    world.feed_brreg(NO_ID, "enhet.json", "roller_t0.json")
    world.check(T0)
    checker = Checker(world.store, world.config, clock=lambda: T1)

    async def run():
        try:
            with world.store.session() as session:
                [stale] = list(session.exec(select(Borrower)))
            with world.store.transaction() as session:  # the other check's change
                session.get(Borrower, "no1").last_content_hash = "f" * 64
            return await checker.check([stale])
        finally:
            await checker.aclose()

    [outcome] = asyncio.run(run())
    assert outcome.ok
    [borrower] = world.rows(Borrower)
    assert borrower.last_content_hash == "f" * 64
    assert borrower.last_checked_at == T0 and borrower.next_check_at == T1
    assert borrower.last_payload_digest is None


def test_the_digest_covers_the_configured_mapping_but_not_its_secrets():
    from sources.base import payload_digest
    from sources.json_feed import JsonFeedSource

    def feed(**changes):
        options = {
            "type": "json",
            "base_url": "https://feed.bank.example",
            "url": "/companies/{id}",
            "headers": {"Authorization": "Bearer one"},
            "fields": {"name": "data.name"},
        } | changes
        return JsonFeedSource("feed", JsonFeedSource.Options.model_validate(options))

    raw = {"response": '{"data": {"name": "X"}}'}
    base = payload_digest(feed().mapping_fingerprint, "1", raw)
    assert payload_digest(feed(headers={"Authorization": "Bearer two"}).mapping_fingerprint, "1", raw) == base
    assert payload_digest(feed(display_name="核心系统").mapping_fingerprint, "1", raw) == base, (
        "a name maps nothing"
    )
    assert payload_digest(feed(fields={"name": "data.title"}).mapping_fingerprint, "1", raw) != base
    assert payload_digest(feed().mapping_fingerprint, "2", raw) != base
    assert payload_digest(feed().mapping_fingerprint, "1", {"response": raw["response"] + " "}) != base
    # Parts are length-prefixed: moving text between endpoints changes the digest.
    assert payload_digest("m", "1", {"a": "bc"}) != payload_digest("m", "1", {"ab": "c"})
