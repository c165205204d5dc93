"""A borrower's lifecycle: deactivated (never fetched, never alerted, its outbox still delivered),
reactivated (checked at once, alerting on what changed meanwhile), and pruned after the retention.

Real parts only: SQLite files and a PostgreSQL schema, the loopback Brønnøysund stand-in of
``bench/daemon_scale.py`` (which logs every request) behind the real ``brreg`` source and the
daemon's own sweep, the replayed registries of ``tests/deployment.py``, a loopback chat robot for
deliveries, the command line through its runner and the console through Starlette's client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, col, select, update

from bench.daemon_scale import BrregStandIn
from tests.deployment import BASELINE_AT, CHANGED_AT, FJORDLYS, HARDANGER, LANCHAO, Deployment
from tests.receivers import ChatReceiver
from tests.test_daemon import add_borrowers, write_config
from watcher.config import load_config
from watcher.daemon import Daemon
from watcher.importer import BorrowerRow
from watcher.lifecycle import deactivate, prune, reactivate
from watcher.models import (
    Alert,
    AlertBorrower,
    AuditLog,
    Borrower,
    ChangeEvent,
    Delivery,
    KeyPersonOccasion,
    Snapshot,
    utcnow,
)
from watcher.monitoring import scan_monitoring_gaps
from watcher.pipeline import Checker
from watcher.store import Store, open_store
from watcher.units import YEAR_SECONDS
from watcher.vocabulary import AlertKind, AlertStatus, AuditAction, DeliveryStatus

TEN_YEARS = timedelta(seconds=10 * YEAR_SECONDS)


def rows(store: Store, model, *where) -> list:
    with store.session() as session:
        return list(session.exec(select(model).where(*where)))


def borrower(store: Store, borrower_id: str) -> Borrower:
    with store.session() as session:
        found = session.get(Borrower, borrower_id)
    assert found is not None
    return found


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make_due(store: Store) -> None:
    """Time passes: every borrower's next check has come (the clock is not moved by sleeping)."""
    with store.transaction() as session:
        session.exec(update(Borrower).values(next_check_at=utcnow() - timedelta(seconds=1)))


def sweep(store: Store, config) -> None:
    """One sweep of the real daemon, in this process: claim what is due, check it, scan for gaps."""

    async def run() -> None:
        daemon = Daemon(store, config, instance="lifecycle-test")
        try:
            await daemon._sweep()
        finally:
            daemon.dispatcher.close()
            await daemon.checker.aclose()

    asyncio.run(run())


def change_of(store: Store, actor: str, ids: list[str], *, active: bool, at: datetime | None = None) -> None:
    with store.transaction() as session:
        if active:
            reactivate(session, ids, actor=actor, now=at or utcnow())
        else:
            deactivate(session, ids, actor=actor, now=at or utcnow(), reason="loan repaid")


# -- the daemon: no fetch, no alert; checked again once reactivated ------------------------------


@pytest.fixture
def registry() -> Iterator[BrregStandIn]:
    with BrregStandIn(companies=3) as stand_in:
        yield stand_in


@pytest.fixture
def brreg_world(tmp_path: Path, sqlite_url: str, registry: BrregStandIn) -> Iterator[tuple[Store, object]]:
    config = load_config(
        write_config(tmp_path, database_url=sqlite_url, registry_url=registry.base_url, interval="1h")
    )
    store = open_store(config.database.url)
    yield store, config
    store.dispose()


def test_the_daemon_never_fetches_an_inactive_borrower_and_checks_it_at_once_when_reactivated(
    brreg_world, registry: BrregStandIn
):
    store, config = brreg_world
    kept, stopped = add_borrowers(store, registry.orgnrs[:2])
    kept_orgnr, stopped_orgnr = registry.orgnrs[:2]
    sweep(store, config)
    assert set(registry.fetch_times()) == {kept_orgnr, stopped_orgnr}  # both baselined
    baseline_snapshots = len(rows(store, Snapshot, Snapshot.borrower_id == stopped))

    registry.plant_change([kept_orgnr, stopped_orgnr])  # a new daglig leder at both
    change_of(store, "kari", [stopped], active=False)
    make_due(store)
    fetched_before = {orgnr: len(times) for orgnr, times in registry.fetch_times().items()}
    sweep(store, config)
    fetched = {orgnr: len(times) for orgnr, times in registry.fetch_times().items()}
    assert fetched[kept_orgnr] == fetched_before[kept_orgnr] + 1
    assert fetched[stopped_orgnr] == fetched_before[stopped_orgnr], "an inactive borrower was fetched"
    assert [a.borrower_id for a in rows(store, Alert)] == [kept]
    assert len(rows(store, Snapshot, Snapshot.borrower_id == stopped)) == baseline_snapshots
    assert rows(store, ChangeEvent, ChangeEvent.borrower_id == stopped) == []

    change_of(store, "kari", [stopped], active=True)
    reactivated = borrower(store, stopped)
    assert reactivated.active and reactivated.deactivated_at is None
    assert reactivated.next_check_at is not None and as_utc(reactivated.next_check_at) <= utcnow()
    sweep(store, config)  # only the reactivated borrower is due
    assert len(registry.fetch_times()[stopped_orgnr]) == fetched[stopped_orgnr] + 1
    assert len(registry.fetch_times()[kept_orgnr]) == fetched[kept_orgnr]
    # What changed while it was inactive is alerted: the officer must learn of it.
    [alert] = rows(store, Alert, Alert.borrower_id == stopped)
    categories = {e.category for e in rows(store, ChangeEvent, ChangeEvent.borrower_id == stopped)}
    assert "legal_representative" in categories and alert.kind == AlertKind.CHANGE
    actions = [(a.action, a.actor) for a in rows(store, AuditLog, AuditLog.subject_id == stopped)]
    assert actions[-2:] == [
        (AuditAction.BORROWER_DEACTIVATED, "kari"),
        (AuditAction.BORROWER_REACTIVATED, "kari"),
    ]


def test_a_check_in_flight_when_its_borrower_is_deactivated_stores_and_alerts_nothing(
    brreg_world, registry: BrregStandIn
):
    store, config = brreg_world
    changed, unchanged = add_borrowers(store, registry.orgnrs[:2])
    sweep(store, config)
    registry.plant_change([registry.orgnrs[0]])
    loaded = [borrower(store, changed), borrower(store, unchanged)]  # what the claim handed the check
    change_of(store, "kari", [changed, unchanged], active=False)
    snapshots, checked_at = len(rows(store, Snapshot)), borrower(store, unchanged).last_checked_at

    async def run():
        checker = Checker(store, config)
        try:
            return [await checker.check_one(b) for b in loaded]
        finally:
            await checker.aclose()

    outcomes = asyncio.run(run())
    assert outcomes[0].inactive and outcomes[0].alert_id is None
    assert len(rows(store, Snapshot)) == snapshots
    assert rows(store, Alert) == [] and rows(store, ChangeEvent) == []
    after = borrower(store, unchanged)
    assert after.last_checked_at == checked_at and not after.active  # the batched write left it alone
    assert borrower(store, changed).claimed_by is None


# -- alerts already raised, and monitoring gaps ---------------------------------------------------


def test_an_alert_raised_before_deactivation_stays_open_and_is_still_delivered(tmp_path, sqlite_url):
    receiver = ChatReceiver().start()
    try:
        channels = f'[notifiers.desk]\nurls = ["{receiver.dingtalk_url("desk")}"]\nmin_severity = "info"\n'
        deployment = Deployment(tmp_path, sqlite_url, channels)
        deployment.baseline_then_change(FJORDLYS)
        change_of(deployment.store, "kari", [FJORDLYS.id], active=False)
        report = deployment.dispatch(CHANGED_AT + timedelta(minutes=1))
        assert report.sent == 1 and receiver.count("FJORDLYS") == 1
        [delivery] = deployment.deliveries()
        assert delivery.status == DeliveryStatus.SENT
        assert deployment.alerts()[FJORDLYS.id].status == AlertStatus.OPEN
        deployment.close()
    finally:
        receiver.stop()


def test_monitoring_gaps_ignore_inactive_borrowers_and_a_stopped_watch_is_not_restored(tmp_path, sqlite_url):
    deployment = Deployment(tmp_path, sqlite_url, "")
    deployment.add(FJORDLYS, HARDANGER)  # nothing staged: every check fails
    deployment.check(BASELINE_AT)
    store, config = deployment.store, deployment.config
    change_of(store, "kari", [HARDANGER.id], active=False, at=BASELINE_AT)
    with store.transaction() as session:
        report = scan_monitoring_gaps(session, config, BASELINE_AT + timedelta(days=2))
    [gap] = [session_alert for session_alert in rows(store, Alert)]
    assert report.gaps == (gap.id,) and gap.kind == AlertKind.MONITORING_GAP
    assert [link.borrower_id for link in rows(store, AlertBorrower)] == [FJORDLYS.id]

    change_of(store, "kari", [FJORDLYS.id], active=False, at=BASELINE_AT + timedelta(days=3))
    assert borrower(store, FJORDLYS.id).gap_alert_id is None
    with store.transaction() as session:
        quiet = scan_monitoring_gaps(session, config, BASELINE_AT + timedelta(days=4))
    assert quiet.alert_ids == () and [a.id for a in rows(store, Alert)] == [gap.id]
    assert rows(store, Alert)[0].status == AlertStatus.OPEN

    # Reactivated: the old failing streak is forgotten, so no gap is raised before it is checked.
    change_of(store, "kari", [FJORDLYS.id, HARDANGER.id], active=True, at=BASELINE_AT + timedelta(days=5))
    with store.transaction() as session:
        assert scan_monitoring_gaps(session, config, BASELINE_AT + timedelta(days=9)).alert_ids == ()
    deployment.close()


def test_deactivating_and_reactivating_report_unknown_and_unchanged_ids(tmp_path, sqlite_url):
    deployment = Deployment(tmp_path, sqlite_url, "")
    deployment.add(FJORDLYS, HARDANGER)
    with deployment.store.transaction() as session:
        first = deactivate(session, ["nope", FJORDLYS.id, FJORDLYS.id], actor="kari", now=BASELINE_AT)
    with deployment.store.transaction() as session:
        again = deactivate(session, [FJORDLYS.id, HARDANGER.id], actor="kari", now=CHANGED_AT)
    assert ([b.id for b in first.changed], first.unknown) == ([FJORDLYS.id], ["nope"])
    assert [b.id for b in again.already] == [FJORDLYS.id] and [b.id for b in again.changed] == [HARDANGER.id]
    assert as_utc(borrower(deployment.store, FJORDLYS.id).deactivated_at) == BASELINE_AT
    deactivations = deployment.audit_rows(AuditAction.BORROWER_DEACTIVATED)
    assert [(a.subject_id, json.loads(a.detail)) for a in deactivations] == [
        (FJORDLYS.id, {}),
        (HARDANGER.id, {}),
    ]
    with deployment.store.transaction() as session:
        back = reactivate(session, [HARDANGER.id, LANCHAO.id], actor="kari", now=CHANGED_AT)
    assert [b.id for b in back.changed] == [HARDANGER.id] and back.unknown == [LANCHAO.id]
    deployment.close()


# -- retention: prune ------------------------------------------------------------------------------

MAIL_DESK = """\
[notifiers.desk]
urls = ["mailto://alerts@bank.example?to=risk@bank.example"]
min_severity = "info"
"""
PRUNED_TABLES = (Borrower, Snapshot, ChangeEvent, KeyPersonOccasion, Alert, AlertBorrower, Delivery, AuditLog)
TWIN = BorrowerRow(  # an active borrower of the same company as b-lanchao: its data must all stay
    id="b-twin", name="杭州澜潮智能装备有限公司（二）", source="cn", registry_id=LANCHAO.registry_id
)


def keys(store: Store) -> dict[str, set[tuple]]:
    """Every row of every table the prune may touch, by primary key."""
    with store.session() as session:
        connection = session.connection()
        return {
            model.__tablename__: {
                tuple(row)
                for row in connection.execute(
                    select(*SQLModel.metadata.tables[model.__tablename__].primary_key.columns)
                )
            }
            for model in PRUNED_TABLES
        }


def ids_of(session, model, *where) -> set[tuple]:
    return {(row_id,) for row_id in session.exec(select(model.id).where(*where))}


def gap_alert(store: Store, borrower_ids: list[str], source: str) -> int:
    """A monitoring-gap alert about a whole source listing ``borrower_ids``, with a delivery."""
    with store.transaction() as session:
        alert = Alert(borrower_id=None, kind=AlertKind.MONITORING_GAP, source=source, severity="high")
        session.add(alert)
        session.flush()
        for borrower_id in borrower_ids:
            session.add(AlertBorrower(alert_id=alert.id, borrower_id=borrower_id))
        session.add(Delivery(alert_id=alert.id, target="notifier:desk", status=DeliveryStatus.SENT))
        return alert.id


@pytest.fixture(params=["sqlite", "postgresql"])
def portfolio(request, tmp_path, sqlite_url) -> Iterator[Deployment]:
    """Four borrowers with a baseline and a change each (snapshots, change events, alerts and their
    deliveries, b-lanchao's key-person occasions); b-fjordlys and b-hardanger deactivated eleven years
    ago, b-lanchao a day ago, b-twin active; three gap alerts about a whole source."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    channels = MAIL_DESK
    deployment = Deployment(tmp_path, url, channels)
    deployment.add(LANCHAO, FJORDLYS, HARDANGER, TWIN)
    deployment.stage(0)
    deployment.check(BASELINE_AT)
    deployment.stage(1)
    deployment.check(CHANGED_AT)
    now = utcnow()
    store = deployment.store
    change_of(store, "kari", [FJORDLYS.id, HARDANGER.id], active=False, at=now - timedelta(days=11 * 366))
    change_of(store, "kari", [LANCHAO.id], active=False, at=now - timedelta(days=1))
    deployment.only_pruned = gap_alert(store, [FJORDLYS.id, HARDANGER.id], "no")  # type: ignore[attr-defined]
    deployment.shared = gap_alert(store, [HARDANGER.id, TWIN.id], "no")  # type: ignore[attr-defined]
    deployment.kept = gap_alert(store, [LANCHAO.id, TWIN.id], "cn")  # type: ignore[attr-defined]
    yield deployment
    deployment.close()


def test_prune_removes_exactly_the_long_inactive_borrowers_data_and_a_dry_run_nothing(portfolio):
    store = portfolio.store
    gone = {FJORDLYS.id, HARDANGER.id}
    before = keys(store)
    # Everything the pruned borrowers own, read independently of the code under test.
    with store.session() as session:
        own_alerts = set(session.exec(select(Alert.id).where(col(Alert.borrower_id).in_(gone))))
        alerts_gone = own_alerts | {portfolio.only_pruned}
        expected = {
            "borrower": {(b,) for b in gone},
            "snapshot": ids_of(session, Snapshot, col(Snapshot.borrower_id).in_(gone)),
            "change_event": ids_of(session, ChangeEvent, col(ChangeEvent.borrower_id).in_(gone)),
            "key_person_occasion": ids_of(
                session, KeyPersonOccasion, col(KeyPersonOccasion.borrower_id).in_(gone)
            ),
            "alert": {(i,) for i in alerts_gone},
            "alert_borrower": {
                key for key in before["alert_borrower"] if key[0] in alerts_gone or key[1] in gone
            },
            "delivery": ids_of(session, Delivery, col(Delivery.alert_id).in_(alerts_gone)),
            "audit_log": set(),
        }
    assert len(expected["snapshot"]) == 4 and len(expected["change_event"]) >= 4
    assert len(expected["alert"]) == 3 and len(expected["delivery"]) == 3

    with store.transaction() as session:
        planned = prune(session, retention=TEN_YEARS, now=utcnow(), actor="ops", dry_run=True)
    assert keys(store) == before, "a dry run removed something"
    assert [p.borrower_id for p in planned] == sorted(gone)

    with store.transaction() as session:
        done = prune(session, retention=TEN_YEARS, now=utcnow(), actor="ops", dry_run=False)
    assert done == planned
    after = keys(store)
    for table, present in before.items():
        if table == "audit_log":
            assert present < after[table]
            continue
        assert after[table] == present - expected[table], table
    fjordlys, hardanger = done
    assert (fjordlys.alerts, hardanger.alerts) == (2, 1)  # the source alert of both goes with the first
    assert sum(p.snapshots for p in done) == 4 and sum(p.deliveries for p in done) == 3
    assert fjordlys.alert_links == 1 and hardanger.alert_links == 2
    pruned_rows = rows(store, AuditLog, AuditLog.action == AuditAction.BORROWER_PRUNED)
    assert [(r.subject_id, r.actor, json.loads(r.detail)["snapshots"]) for r in pruned_rows] == [
        (FJORDLYS.id, "ops", 2),
        (HARDANGER.id, "ops", 2),
    ]
    # The audit trail of who did what stays whole, including the pruned borrowers' own entries.
    assert {
        r.subject_id for r in rows(store, AuditLog, AuditLog.action == AuditAction.BORROWER_ADDED)
    } >= gone
    # The gap alert that also lists a kept borrower stays, without the pruned borrower's link.
    assert [
        link.borrower_id for link in rows(store, AlertBorrower, AlertBorrower.alert_id == portfolio.shared)
    ] == [TWIN.id]

    with store.transaction() as session:
        assert prune(session, retention=TEN_YEARS, now=utcnow(), actor="ops", dry_run=False) == []
    with store.transaction() as session:
        shorter = prune(session, retention=timedelta(hours=1), now=utcnow(), actor="ops", dry_run=True)
    assert [p.borrower_id for p in shorter] == [LANCHAO.id]


def test_the_audit_log_still_refuses_deletes_after_a_prune(tmp_path, sqlite_url):
    """Pruning never needs to touch the audit log: the database keeps refusing to delete from it."""
    deployment = Deployment(tmp_path, sqlite_url, "")
    deployment.add(FJORDLYS)
    change_of(deployment.store, "kari", [FJORDLYS.id], active=False, at=utcnow() - timedelta(days=4000))
    with deployment.store.transaction() as session:
        [done] = prune(session, retention=TEN_YEARS, now=utcnow(), actor="ops", dry_run=False)
    assert done.borrower_id == FJORDLYS.id
    with pytest.raises(Exception, match="append-only|audit"), deployment.store.transaction() as session:
        session.connection().execute(text("DELETE FROM audit_log"))
    assert len(deployment.audit_rows()) == 3  # added, deactivated, pruned
    deployment.close()
