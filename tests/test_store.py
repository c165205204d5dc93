"""Schema and storage behaviour on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import select

from watcher.models import AuditLog
from watcher.store import SCHEMA_HEAD, Store, audit, open_store, pack_raw, unpack_raw

TABLES = {
    "borrower",
    "api_token",
    "snapshot",
    "change_event",
    "alert",
    "delivery",
    "audit_log",
    "source_health",
    "key_person_occasion",
    "alembic_version",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, sqlite_url):
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("postgres_url")


def test_first_use_creates_the_schema_through_migrations(any_url):
    store = open_store(any_url)
    assert store.schema_revision() == SCHEMA_HEAD
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    store.dispose()


def test_the_migrations_build_exactly_the_tables_the_models_describe(any_url):
    """A column added to a model but not to a migration (or the other way round) would work in
    tests that create tables from the models and fail on an upgraded bank database."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import watcher.models  # noqa: F401 (registers the tables)

    store = open_store(any_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    store.dispose()
    assert differences == []


def test_upgrade_is_idempotent(any_url):
    store = Store(any_url)
    before, after = store.upgrade()
    assert (before, after) == (None, SCHEMA_HEAD)
    assert store.upgrade() == (SCHEMA_HEAD, SCHEMA_HEAD)
    store.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url):
    store = open_store(sqlite_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def test_audit_log_is_append_only(any_url):
    store = open_store(any_url)
    with store.transaction() as session:
        audit(
            session,
            actor="tester",
            action="alert.acknowledged",
            subject_type="alert",
            subject_id=1,
            detail={"note": "called the client"},
        )
    with store.session() as session:
        assert len(session.exec(select(AuditLog)).all()) == 1
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    with store.session() as session:
        row = session.exec(select(AuditLog)).one()
        assert row.actor == "tester"
    store.dispose()


def test_raw_responses_are_compressed_and_round_trip():
    raw = {"getinfo": '{"Status": "200", "Result": {"Name": "杭州澜潮智能装备有限公司"}}' * 50}
    packed = pack_raw(raw)
    assert len(packed) < len(raw["getinfo"].encode()) / 5
    assert unpack_raw(packed) == raw


def test_upgrade_keeps_history_and_backfills_the_borrowers_content_hash(any_url):
    """A database from before 0005 keeps its snapshots, and each borrower learns its latest hash."""
    from alembic import command
    from alembic.config import Config

    from watcher.models import Borrower, Snapshot
    from watcher.store import MIGRATIONS

    store = Store(any_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO borrower (id, name, source, registry_id, tags, active, created_at, updated_at, "
                "consecutive_failures) VALUES ('b1', 'A', 'no', '927140004', '', true, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, 0)"
            )
        )
        for digest in ("old", "new"):
            connection.execute(
                text(
                    "INSERT INTO snapshot (borrower_id, source, fetched_at, content_hash, record_json, "
                    "raw_gz) VALUES ('b1', 'no', CURRENT_TIMESTAMP, :digest, '{}', :raw)"
                ),
                {"digest": digest, "raw": pack_raw({})},
            )
    assert store.upgrade() == ("0004", SCHEMA_HEAD)
    with store.session() as session:
        assert session.get(Borrower, "b1").last_content_hash == "new"
        assert len(session.exec(select(Snapshot)).all()) == 2
    store.dispose()
