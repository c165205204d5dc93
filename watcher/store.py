"""Persistence: the engine (SQLite in WAL mode by default, or PostgreSQL), schema upgrades, queries.

Every change to the schema goes through an Alembic migration; ``open_store`` upgrades a database
that is behind on first use, so a fresh install needs no separate step.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, event, func, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlmodel import Session, col, create_engine, delete, select, update

from watcher.change_line import ChangeLine
from watcher.models import (
    Alert,
    AuditLog,
    Borrower,
    ChangeEvent,
    Delivery,
    KeyPersonOccasion,
    SecuresLink,
    Snapshot,
    SourceHealth,
    SourceSignal,
    SourceUsage,
    utcnow,
)
from watcher.render import SecuredBorrower
from watcher.schedule import spread_out
from watcher.vocabulary import AuditAction, DeliveryStatus, ErrorKind, OutboxState, PartyRole

if TYPE_CHECKING:
    from watcher.routing import PlannedDelivery

SCHEMA_HEAD = "0015"
# Who the audit log names for what the watcher itself does (opens alerts, gives up deliveries).
SYSTEM_ACTOR = "watcher"
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(url: str) -> Engine:
    """An engine with the settings this daemon relies on (WAL, busy timeout, BEGIN IMMEDIATE on SQLite)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # SQLAlchemy's documented recipe: let it emit BEGIN itself, so BEGIN IMMEDIATE takes the write
    # lock up front and read-then-write transactions never fail on lock upgrade.
    dbapi_connection.isolation_level = None
    for pragma in (
        "journal_mode=WAL",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "synchronous=NORMAL",
        "foreign_keys=ON",
    ):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _sqlite_begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """The database of one deployment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The database URL without its password, for logs and messages."""
        return masked_database_url(self.engine.url)

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when this is SQLite on disk (None for PostgreSQL or in-memory)."""
        if self.engine.dialect.name != "sqlite" or not self.engine.url.database:
            return None
        return None if self.engine.url.database == ":memory:" else Path(self.engine.url.database)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self.session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def schema_revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):
            return None

    def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations; returns (revision before, revision after)."""
        from alembic import command
        from alembic.config import Config

        before = self.schema_revision()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before, self.schema_revision() or ""

    def ensure_schema(self) -> None:
        """Upgrade only when behind: the check is one query, Alembic is imported only when needed."""
        if self.schema_revision() != SCHEMA_HEAD:
            self.upgrade()

    def dispose(self) -> None:
        self.engine.dispose()


# Query parameters that carry a secret in a database URL (libpq and psycopg accept the password there).
_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword", "passfile"}


def masked_database_url(url: str | URL) -> str:
    """The database URL with its password masked, in the user part or the query, even when it does
    not parse: safe for logs and error messages."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        text = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", str(url))
        return re.sub(r"([?&](?:password|passwd|pwd|sslpassword)=)[^&]*", r"\1***", text, flags=re.IGNORECASE)
    secrets = {key: "***" for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS}
    return parsed.update_query_dict(secrets).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def open_store(url: str) -> Store:
    store = Store(url)
    store.ensure_schema()
    return store


class _Row(Protocol):
    """A table row with an integer primary key, None until the database assigns it."""

    @property
    def id(self) -> int | None: ...


def stored_id(row: _Row | int | None) -> int:
    """The id of a row that has been flushed or read (or that id, read as a column): the database
    gave it one (only new rows have None)."""
    value = row if row is None or isinstance(row, int) else row.id
    assert value is not None, "a row read from the database has its primary key"
    return value


# -- raw payloads -------------------------------------------------------------------------------


def pack_raw(raw: dict[str, str]) -> bytes:
    return zlib.compress(json.dumps(raw, ensure_ascii=False, sort_keys=True).encode("utf-8"), 6)


def unpack_raw(blob: bytes) -> dict[str, str]:
    return json.loads(zlib.decompress(blob).decode("utf-8"))


# -- audit --------------------------------------------------------------------------------------


def audit(
    session: Session,
    *,
    actor: str,
    action: AuditAction,
    subject_type: str,
    subject_id: object,
    detail: dict | None = None,
    at: datetime | None = None,
) -> None:
    session.add(
        AuditLog(
            at=at or utcnow(),
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        )
    )


# -- queries ------------------------------------------------------------------------------------


def open_alert_deliveries(
    session: Session, alert_id: int, planned: Sequence[PlannedDelivery], now: datetime, detail: dict
) -> None:
    """The outbox rows of a new alert and its "opened" audit row (``detail`` plus the targets), in the
    alert's own transaction: a crash can delay the alert, never lose it."""
    for delivery in planned:
        session.add(
            Delivery(
                alert_id=alert_id,
                target=delivery.target,
                url_fingerprint=delivery.url_fingerprint,
                channel=delivery.channel,
                status=DeliveryStatus.HELD if delivery.held_until else DeliveryStatus.PENDING,
                next_attempt_at=delivery.held_until or now,
                created_at=now,
            )
        )
    audit(
        session,
        actor=SYSTEM_ACTOR,
        action=AuditAction.ALERT_OPENED,
        subject_type="alert",
        subject_id=alert_id,
        detail=detail | {"targets": sorted({delivery.target for delivery in planned})},
        at=now,
    )


def latest_snapshot(session: Session, borrower_id: str) -> Snapshot | None:
    return session.exec(
        select(Snapshot).where(Snapshot.borrower_id == borrower_id).order_by(col(Snapshot.id).desc()).limit(1)
    ).first()


def latest_hash(session: Session, borrower_id: str) -> str | None:
    return session.exec(
        select(Snapshot.content_hash)
        .where(Snapshot.borrower_id == borrower_id)
        .order_by(col(Snapshot.id).desc())
        .limit(1)
    ).first()


def occasion_days_since(session: Session, borrower_id: str, since: date) -> list[date]:
    return list(
        session.exec(
            select(col(KeyPersonOccasion.occasion_date))
            .where(
                KeyPersonOccasion.borrower_id == borrower_id,
                col(KeyPersonOccasion.occasion_date) >= since,
            )
            .distinct()
        )
    )


def borrowers(session: Session, ids: Sequence[str] | None = None) -> list[Borrower]:
    query = select(Borrower).order_by(Borrower.id)
    if ids:
        query = query.where(col(Borrower.id).in_(list(ids)))
    return list(session.exec(query))


def secured_ids(session: Session) -> dict[str, tuple[str, ...]]:
    """Every securing party's secured borrower ids (sorted), by the party's id: guarantors', pledgors'
    and those of borrowers that guarantee other borrowers."""
    links: dict[str, list[str]] = {}
    query = select(SecuresLink.party_id, SecuresLink.borrower_id).order_by(
        col(SecuresLink.party_id), col(SecuresLink.borrower_id)
    )
    for party_id, borrower_id in session.exec(query):
        links.setdefault(party_id, []).append(borrower_id)
    return {party_id: tuple(ids) for party_id, ids in links.items()}


def secured_borrowers(session: Session, party_id: str, *, active_only: bool = True) -> list[Borrower]:
    """The borrowers ``party_id`` secures, by id; only those still watched unless ``active_only`` is off:
    a repaid loan's officer no longer hears of its guarantor."""
    query = (
        select(Borrower)
        .join(SecuresLink, col(SecuresLink.borrower_id) == col(Borrower.id))
        .where(SecuresLink.party_id == party_id)
        .order_by(col(Borrower.id))
    )
    if active_only:
        query = query.where(col(Borrower.active).is_(True))
    return list(session.exec(query))


@dataclass(frozen=True, slots=True)
class SecuringParty:
    """What an alert keeps of a guarantor or pledgor, or of a borrower guaranteeing other borrowers
    (role borrower): its role and the watched borrowers it secures, with their officers, as they were
    when the alert was raised (stored in ``Alert.detail``)."""

    role: PartyRole
    secures: tuple[SecuredBorrower, ...]

    @property
    def officers(self) -> list[str]:
        """The officers of the secured borrowers, each once, in the borrowers' order."""
        return list(dict.fromkeys(b.officer for b in self.secures if b.officer))

    def as_detail(self) -> dict[str, object]:
        return {
            "role": self.role.value,
            "secures": [{"id": b.borrower_id, "name": b.name, "officer": b.officer} for b in self.secures],
        }

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> SecuringParty | None:
        """The party stored by :meth:`as_detail`; None for a borrower's (no role stored)."""
        if not detail.get("role"):
            return None
        secures = tuple(
            SecuredBorrower(entry["id"], entry.get("name") or entry["id"], entry.get("officer"))
            for entry in detail.get("secures", [])
        )
        return cls(PartyRole(detail["role"]), secures)


def securing_party(
    session: Session, party: Borrower, *, securers: Collection[str] | None = None
) -> SecuringParty | None:
    """``party`` as a guarantor or pledgor of the watched borrowers it secures; a borrower only when it
    guarantees a watched borrower (互保, a guarantee circle), else None: a plain borrower's alert.
    ``securers`` (:func:`securer_ids`) spares a query per plain borrower when asking about many."""
    if securers is not None and party.id not in securers and not PartyRole(party.role).secures:
        return None
    secured = secured_borrowers(session, party.id)
    if not PartyRole(party.role).secures and not secured:
        return None
    return SecuringParty(
        PartyRole(party.role), tuple(SecuredBorrower(b.id, b.name, b.officer) for b in secured)
    )


def securer_ids(session: Session) -> frozenset[str]:
    """The ids of every party that secures any borrower (by ``secures_link``)."""
    return frozenset(session.exec(select(SecuresLink.party_id).distinct()))


def securing_parties(session: Session, borrower_ids: Iterable[str]) -> list[Borrower]:
    """The parties securing any of ``borrower_ids`` (guarantors, pledgors, and borrowers guaranteeing
    them), by id, each once."""
    wanted = sorted(set(borrower_ids))
    if not wanted:
        return []
    query = (
        select(Borrower)
        .where(
            col(Borrower.id).in_(select(SecuresLink.party_id).where(col(SecuresLink.borrower_id).in_(wanted)))
        )
        .order_by(col(Borrower.id))
    )
    return list(session.exec(query))


def record_source_health(
    session: Session,
    source: str,
    *,
    ok: bool,
    error: str | None = None,
    kind: ErrorKind | None = None,
    at: datetime | None = None,
) -> None:
    at = at or utcnow()
    health = session.get(SourceHealth, source) or SourceHealth(source=source)
    if ok:
        health.last_success_at = at
        health.consecutive_failures = 0
    else:
        health.last_failure_at = at
        health.consecutive_failures += 1
        health.last_error = error
        health.last_error_kind = kind
    session.add(health)


# -- vendor signals the account cannot fetch, and billed calls ------------------------------------


def unavailable_signals(
    session: Session, now: datetime, *, forget_expired: bool = False
) -> list[SourceSignal]:
    """Signals some source's account could not fetch and not yet due for another try at ``now``;
    with ``forget_expired`` the marks whose retry time has come are deleted first."""
    if forget_expired:
        session.exec(delete(SourceSignal).where(col(SourceSignal.retry_at) <= now))
    query = select(SourceSignal).where(col(SourceSignal.retry_at) > now)
    return list(session.exec(query.order_by(col(SourceSignal.source), col(SourceSignal.signal))))


def mark_signal_unavailable(
    session: Session, source: str, signal: str, reason: str, *, now: datetime, retry_at: datetime
) -> None:
    """Record (or renew) that ``source`` cannot fetch ``signal``: skipped by every instance until
    ``retry_at``."""
    row = session.get(SourceSignal, (source, signal)) or SourceSignal(source=source, signal=signal)
    row.reason, row.unavailable_since, row.retry_at = reason, now, retry_at
    session.add(row)


def forget_unavailable_signal(session: Session, source: str, signal: str, *, now: datetime) -> None:
    """Drop the mark once its ``retry_at`` has passed (a mark renewed meanwhile by another instance
    stays)."""
    session.exec(
        delete(SourceSignal).where(
            col(SourceSignal.source) == source,
            col(SourceSignal.signal) == signal,
            col(SourceSignal.retry_at) <= now,
        )
    )


def retry_unavailable_signals(
    session: Session, source: str, signals: Sequence[str], *, actor: str, now: datetime
) -> list[str]:
    """An operator's "try it again now" (the account bought the signal): ``source``'s marks of
    ``signals`` (all when empty) are deleted, with an audit row. Returns the signals forgotten."""
    query = select(SourceSignal).where(col(SourceSignal.source) == source)
    if signals:
        query = query.where(col(SourceSignal.signal).in_(list(signals)))
    rows = list(session.exec(query))
    for row in rows:
        session.delete(row)
    forgotten = sorted(row.signal for row in rows)
    if forgotten:
        audit(
            session,
            actor=actor,
            action=AuditAction.SIGNALS_RETRIED,
            subject_type="source",
            subject_id=source,
            detail={"signals": forgotten},
            at=now,
        )
    return forgotten


def usage_hour(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in: the bucket billed calls are counted in."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def add_billed_calls(session: Session, calls: Mapping[str, int], hour: datetime) -> None:
    """Add each source's billed ``calls`` to its row of ``hour``: one upsert statement, on SQLite and
    PostgreSQL alike, so concurrent instances add up instead of overwriting each other."""
    rows = [{"source": source, "hour": hour, "calls": count} for source, count in calls.items() if count]
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    table = SourceUsage.metadata.tables[SourceUsage.__tablename__]
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.source, table.c.hour],
            set_={"calls": table.c.calls + statement.excluded.calls},
        ),
        rows,
    )


def billed_calls_in_last_day(session: Session, now: datetime) -> dict[str, int]:
    """Billed calls per source in the 24 hourly buckets up to ``now``'s (the current hour counts)."""
    first = usage_hour(now) - timedelta(hours=23)
    query = (
        select(col(SourceUsage.source), func.sum(col(SourceUsage.calls)))
        .where(col(SourceUsage.hour) >= first)
        .group_by(col(SourceUsage.source))
    )
    return {source: int(total or 0) for source, total in session.exec(query)}


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One line of ``watcher history``; field names are the jsonl contract."""

    id: int
    detected_at: datetime
    borrower_id: str
    borrower_name: str
    source: str
    category: str
    action: str
    subject: str
    before: str | None
    after: str | None
    effective_date: date | None
    severity: str | None
    alert_id: int | None
    # Risk listings (additions to the contract): against whom, the person's name, and whether the
    # listing was already in force when its list was first read.
    party: str | None = None
    party_name: str | None = None
    first_seen: bool = False

    @classmethod
    def of(cls, event: ChangeEvent, borrower_name: str, severity: str | None) -> HistoryRow:
        """A stored change event as a history row (``severity``: its alert's, if it raised one)."""
        return cls(
            id=stored_id(event),
            detected_at=event.detected_at,
            borrower_id=event.borrower_id,
            borrower_name=borrower_name,
            source=event.source,
            category=event.category,
            action=event.action,
            subject=event.subject,
            before=event.before,
            after=event.after,
            effective_date=event.effective_date,
            severity=severity,
            alert_id=event.alert_id,
            party=event.party,
            party_name=event.party_name,
            first_seen=event.first_seen,
        )

    def change_line(self) -> ChangeLine:
        """The row as the presentation reads it (labels, values without their subject)."""
        return ChangeLine.of(self)

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "detected_at": self.detected_at.isoformat(),
            "borrower_id": self.borrower_id,
            "borrower_name": self.borrower_name,
            "source": self.source,
            "category": self.category,
            "action": self.action,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "severity": self.severity,
            "alert_id": self.alert_id,
            "party": self.party,
            "party_name": self.party_name,
            "first_seen": self.first_seen,
        }


HISTORY_FIELDS = tuple(HistoryRow.__dataclass_fields__)


def history(
    session: Session,
    *,
    borrower_ids: Iterable[str] = (),
    since: datetime | None = None,
    categories: Iterable[str] = (),
) -> list[HistoryRow]:
    query = (
        select(ChangeEvent, Borrower.name, Alert.severity)
        .join(Borrower, col(Borrower.id) == col(ChangeEvent.borrower_id))
        .outerjoin(Alert, col(Alert.id) == col(ChangeEvent.alert_id))
        .order_by(col(ChangeEvent.detected_at), col(ChangeEvent.id))
    )
    borrower_ids, categories = list(borrower_ids), list(categories)
    if borrower_ids:
        query = query.where(col(ChangeEvent.borrower_id).in_(borrower_ids))
    if categories:
        query = query.where(col(ChangeEvent.category).in_(categories))
    if since is not None:
        query = query.where(col(ChangeEvent.detected_at) >= since)
    return [HistoryRow.of(event_row, name, severity) for event_row, name, severity in session.exec(query)]


@dataclass(frozen=True, slots=True)
class StatusSummary:
    """Health as `watcher status` shows it, read from the database so it works from any host."""

    borrowers: int
    due: int
    overdue: int
    last_check_at: datetime | None
    failing_borrowers: list[Borrower]
    sources: list[SourceHealth]
    deliveries_pending: int
    deliveries_retrying: int
    deliveries_dead: int
    deliveries_held: int = 0
    instances: list = field(default_factory=list)
    inactive: int = 0
    """Deactivated borrowers (counted in ``borrowers``; never due, overdue or failing)."""


OVERDUE_AFTER = timedelta(hours=1)


def in_outbox_state(state: OutboxState) -> ColumnElement[bool]:
    """The outbox rows counted as ``state``; the one place that says a pending row tried before is
    retrying."""
    if state is OutboxState.PENDING:
        return and_(col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.attempts) == 0)
    if state is OutboxState.RETRYING:
        return and_(col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.attempts) > 0)
    return col(Delivery.status) == DeliveryStatus(state.value)


def status_summary(session: Session, now: datetime | None = None) -> StatusSummary:
    now = now or utcnow()
    count = func.count()
    borrowers_total = session.exec(select(count).select_from(Borrower)).one()
    active = col(Borrower.active).is_(True)
    due = session.exec(
        select(count).select_from(Borrower).where(active, col(Borrower.next_check_at) <= now)
    ).one()
    overdue = session.exec(
        select(count).select_from(Borrower).where(active, col(Borrower.next_check_at) <= now - OVERDUE_AFTER)
    ).one()
    last_check = session.exec(select(func.max(Borrower.last_checked_at))).one()
    inactive = session.exec(select(count).select_from(Borrower).where(col(Borrower.active).is_(False))).one()
    failing = list(
        session.exec(
            select(Borrower)
            .where(active, Borrower.consecutive_failures > 0)
            .order_by(col(Borrower.id))
            .limit(50)
        )
    )
    health = list(session.exec(select(SourceHealth).order_by(col(SourceHealth.source))))

    def backlog(state: OutboxState) -> int:
        return session.exec(select(count).select_from(Delivery).where(in_outbox_state(state))).one()

    pending, retrying = backlog(OutboxState.PENDING), backlog(OutboxState.RETRYING)
    dead, held = backlog(OutboxState.DEAD), backlog(OutboxState.HELD)
    from watcher.models import Instance

    instances = list(session.exec(select(Instance).order_by(col(Instance.name))))
    return StatusSummary(
        borrowers_total,
        due,
        overdue,
        last_check,
        failing,
        health,
        pending,
        retrying,
        dead,
        held,
        instances,
        inactive,
    )


# -- claims (several instances on PostgreSQL; one on SQLite) -------------------------------------


def reschedule_beyond_interval(
    session: Session,
    *,
    interval: timedelta,
    jitter: timedelta,
    now: datetime,
    limit: int = 1000,
    sources: Collection[str] | None = None,
    other_than: Collection[str] = (),
) -> int:
    """Bring the next checks of borrowers on the default interval within that interval (plus jitter),
    spread out: a shortened ``[schedule] interval`` takes effect at the next sweep instead of after
    the old, longer one, and a source whose change feed fell back to polling is polled at the normal
    interval again. ``sources`` limits it to those sources, ``other_than`` leaves those out (sources
    followed by a feed, on their longer ``full_interval``). Normally finds nothing (an index range
    scan); returns how many moved.
    """
    query = select(Borrower.id).where(
        col(Borrower.active).is_(True),
        col(Borrower.next_check_at) > now + interval + jitter,
        col(Borrower.interval_seconds).is_(None),
    )
    if sources is not None:
        query = query.where(col(Borrower.source).in_(list(sources)))
    if other_than:
        query = query.where(col(Borrower.source).not_in(list(other_than)))
    far = list(session.exec(query.limit(limit)))
    if far:  # one statement, executed for every borrower found
        table = Borrower.metadata.tables[Borrower.__tablename__]
        session.connection().execute(
            update(table).where(table.c.id == bindparam("b_id")).values(next_check_at=bindparam("b_next")),
            [{"b_id": borrower_id, "b_next": spread_out(borrower_id, now, interval)} for borrower_id in far],
        )
    return len(far)


def claim_due_borrowers(
    session: Session, *, instance: str, now: datetime, lease: timedelta, limit: int
) -> list[Borrower]:
    """Claim up to ``limit`` due borrowers for this instance and return them.

    PostgreSQL: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``, so two
    instances never claim the same borrower; a claim whose lease has run out (its instance died)
    can be taken again. SQLite ignores SKIP LOCKED; its BEGIN IMMEDIATE serialises the claim.
    """
    due = (
        select(Borrower.id)
        .where(
            col(Borrower.active).is_(True),
            col(Borrower.next_check_at) <= now,
            col(Borrower.lease_until).is_(None) | (col(Borrower.lease_until) < now),
        )
        .order_by(col(Borrower.next_check_at), col(Borrower.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = list(
        session.exec(
            update(Borrower)
            .where(col(Borrower.id).in_(due.scalar_subquery()))
            .values(claimed_by=instance, lease_until=now + lease)
            .returning(col(Borrower.id))
        ).scalars()
    )
    if not claimed:
        return []
    return list(
        session.exec(select(Borrower).where(col(Borrower.id).in_(claimed)).order_by(col(Borrower.id)))
    )


def release_claims(session: Session, *, instance: str, borrower_ids: Sequence[str]) -> int:
    """Give back claims this instance will not check (it is stopping); they stay due as they were.

    Only claims still held by ``instance`` are touched: one whose lease ran out and that another
    instance took over stays with that instance.
    """
    if not borrower_ids:
        return 0
    result = session.exec(
        update(Borrower)
        .where(col(Borrower.id).in_(list(borrower_ids)), col(Borrower.claimed_by) == instance)
        .values(claimed_by=None, lease_until=None)
    )
    return result.rowcount


def renew_claims(
    session: Session, *, instance: str, borrower_ids: Sequence[str], now: datetime, lease: timedelta
) -> int:
    """Extend the leases of claims this instance still holds while their checks run."""
    if not borrower_ids:
        return 0
    result = session.exec(
        update(Borrower)
        .where(col(Borrower.id).in_(list(borrower_ids)), col(Borrower.claimed_by) == instance)
        .values(lease_until=now + lease)
    )
    return result.rowcount


def heartbeat(
    session: Session,
    *,
    name: str,
    host: str,
    pid: int,
    version: str,
    now: datetime,
    swept: bool = False,
    stopped: bool = False,
    started: bool = False,
) -> None:
    """Record that instance ``name`` is alive; ``started`` on start-up, ``stopped`` on a clean stop.

    A restart under the same name (a fixed ``instance_name``) gets a new ``started_at``, so
    ``watcher status`` shows when the running process started, not the first start ever.
    """
    from watcher.models import Instance

    row = session.get(Instance, name)
    if row is None:
        row = Instance(name=name, host=host, pid=pid, version=version, started_at=now, heartbeat_at=now)
    elif started:
        row.started_at = now
    row.host, row.pid, row.version, row.heartbeat_at = host, pid, version, now
    if swept:
        row.last_sweep_at = now
    row.stopped_at = now if stopped else None
    session.add(row)


def free_claims_of(session: Session, holders: Sequence[str]) -> tuple[int, int]:
    """Free every borrower and outbox claim held by ``holders`` (dead instances); returns both counts.

    The borrowers stay due as they were and the deliveries keep their attempt count, so the next
    sweep or dispatch of any live instance takes them up at once instead of after the lease.
    """
    if not holders:
        return 0, 0
    borrowers_freed = session.exec(
        update(Borrower)
        .where(col(Borrower.claimed_by).in_(list(holders)))
        .values(claimed_by=None, lease_until=None)
    ).rowcount
    deliveries_freed = session.exec(
        update(Delivery)
        .where(
            col(Delivery.claimed_by).in_(list(holders)),
            col(Delivery.status).in_((DeliveryStatus.PENDING, DeliveryStatus.HELD)),
        )
        .values(claimed_by=None, lease_until=None)
    ).rowcount
    return borrowers_freed, deliveries_freed


def forget_instances(session: Session, names: Sequence[str]) -> int:
    """Delete instance rows (instances not heard from for a day): they leave ``watcher status``."""
    if not names:
        return 0
    from watcher.models import Instance

    return session.exec(delete(Instance).where(col(Instance.name).in_(list(names)))).rowcount
