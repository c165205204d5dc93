"""Database tables (SQLModel). Times are timezone-aware UTC; the schema is owned by Alembic."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from watcher.vocabulary import AlertKind, AlertStatus, DeliveryStatus, PartyRole


def utcnow() -> datetime:
    return datetime.now(UTC)


class Borrower(SQLModel, table=True):
    __tablename__ = "borrower"
    __table_args__ = (
        Index("ix_borrower_due", "active", "next_check_at"),
        # A change feed names companies by registration number: found without a scan.
        Index("ix_borrower_source_registry_id", "source", "registry_id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    name: str
    source: str = Field(index=True, max_length=64)
    registry_id: str = Field(max_length=64)
    officer: str | None = Field(default=None, max_length=64)
    tags: str = ""
    interval_seconds: int | None = None
    legal_rep_on_file: str | None = None
    # A borrower, or a guarantor / pledgor securing the borrowers of its ``SecuresLink`` rows: checked
    # like a borrower, its alerts reach their officers (``routing``) and name them (``render``).
    role: str = Field(default=PartyRole.BORROWER, max_length=16)
    # A guarantor is watched while any borrower it secures is: deactivated with the last of them
    # (this flag set), it is reactivated with the first of them again. Off when deactivated by hand.
    inactive_with_borrowers: bool = False
    # An inactive borrower (its loan repaid) is never checked nor alerted on; its history and evidence
    # are kept until ``[watcher] retention`` after ``deactivated_at``, then `watcher db prune` removes them.
    active: bool = True
    deactivated_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    next_check_at: datetime | None = Field(default=None, index=True)
    last_checked_at: datetime | None = None
    last_success_at: datetime | None = None
    baseline_at: datetime | None = None
    last_content_hash: str | None = Field(default=None, max_length=64)
    # Digest of the raw answer of the last successful check (``sources.base.payload_digest``): the
    # same answer next time is not parsed again. Cleared whenever the bank's own data changes
    # (import), since a check's assessment also depends on it.
    last_payload_digest: str | None = Field(default=None, max_length=64)
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_kind: str | None = Field(default=None, max_length=32)
    signatory_mismatch: str | None = None
    claimed_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None
    # When the first check failed since the last success: a gap longer than [rules] failing_after
    # raises a monitoring-gap alert (``gap_alert_id``), and the next success a recovery notice.
    failing_since: datetime | None = Field(default=None, index=True)
    gap_alert_id: int | None = Field(default=None, index=True)
    # A mass disappearance (people or shareholders all gone) waits for a second, identical fetch at
    # least [rules] confirm_after later before it is stored: the first fetch is kept here meanwhile.
    pending_since: datetime | None = None
    pending_hash: str | None = Field(default=None, max_length=64)
    pending_raw_gz: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # When each vendor signal other than the registry card was last fetched (JSON object of signal →
    # ISO time): ``[sources.NAME] cadence`` refreshes each on its own clock.
    signals_checked: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # A change feed named the company while a check of it was running (that check may have read the
    # old answer): the feed's follower makes it due again once the claim is released.
    feed_recheck: bool = False

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]


class SecuresLink(SQLModel, table=True):
    """A guarantor or pledgor (``party_id``), or a borrower guaranteeing another, securing a borrower's
    loan (``borrower_id``)."""

    __tablename__ = "secures_link"

    party_id: str = Field(foreign_key="borrower.id", primary_key=True, max_length=64)
    borrower_id: str = Field(foreign_key="borrower.id", primary_key=True, max_length=64, index=True)
    # When the bank's records first held the link (None: before this was recorded).
    first_seen: date | None = None


class Snapshot(SQLModel, table=True):
    """A normalised record, stored only when its content hash changed; raw responses compressed."""

    __tablename__ = "snapshot"

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(foreign_key="borrower.id", index=True, max_length=64)
    source: str = Field(max_length=64)
    fetched_at: datetime = Field(default_factory=utcnow)
    content_hash: str = Field(max_length=64)
    record_json: str = Field(sa_column=Column(Text, nullable=False))
    raw_gz: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # A confirmed mass disappearance keeps both fetches as evidence: this is the first one.
    first_seen_at: datetime | None = None
    first_raw_gz: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class Alert(SQLModel, table=True):
    """``kind`` is ``change`` (registry changes, with change events), ``monitoring_gap`` or
    ``monitoring_restored``. A gap alert about a whole source has no ``borrower_id``; its borrowers
    are in ``alert_borrower``, and ``detail`` (JSON) says what failed since when."""

    __tablename__ = "alert"

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str | None = Field(default=None, foreign_key="borrower.id", index=True, max_length=64)
    kind: str = Field(default=AlertKind.CHANGE, max_length=32)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    source: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    status: str = Field(default=AlertStatus.OPEN, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    occasions_in_window: int = 0
    recommend_early_repayment: bool = False
    signatory_mismatch: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    note: str | None = Field(default=None, sa_column=Column(Text))
    closed_by: str | None = None
    closed_at: datetime | None = None


class AlertBorrower(SQLModel, table=True):
    """The borrowers a monitoring-gap alert is about (one, or many for a whole source)."""

    __tablename__ = "alert_borrower"

    alert_id: int = Field(foreign_key="alert.id", primary_key=True)
    borrower_id: str = Field(foreign_key="borrower.id", primary_key=True, max_length=64, index=True)


class ChangeEvent(SQLModel, table=True):
    """One detected change, never updated."""

    __tablename__ = "change_event"
    __table_args__ = (Index("ix_change_event_borrower_detected", "borrower_id", "detected_at"),)

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(foreign_key="borrower.id", max_length=64)
    snapshot_id: int | None = Field(default=None, foreign_key="snapshot.id")
    alert_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    source: str = Field(max_length=64)
    category: str = Field(max_length=32, index=True)
    action: str = Field(max_length=16)
    subject: str
    before: str | None = Field(default=None, sa_column=Column(Text))
    after: str | None = Field(default=None, sa_column=Column(Text))
    effective_date: date | None = None
    detected_at: datetime = Field(default_factory=utcnow)
    key_person: bool = False
    # Risk listings: against whom (``company``, ``legal_representative``, ``actual_controller``) and
    # the person's name; ``first_seen`` marks a listing already in force when its list was first read.
    party: str | None = Field(default=None, max_length=32)
    party_name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    first_seen: bool = False


class KeyPersonOccasion(SQLModel, table=True):
    """A day on which the company changed key persons; the high-risk rule counts these in a window.

    ``historical`` occasions were dated by the source before our baseline (vendor change logs,
    Brønnøysund's ``sistEndret``): they count toward the window but never alerted on their own.
    """

    __tablename__ = "key_person_occasion"
    __table_args__ = (Index("ix_occasion_borrower_day", "borrower_id", "occasion_date"),)

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(foreign_key="borrower.id", max_length=64)
    occasion_date: date
    detected_at: datetime = Field(default_factory=utcnow)
    alert_id: int | None = Field(default=None, foreign_key="alert.id")
    historical: bool = False
    evidence: str = ""


class Delivery(SQLModel, table=True):
    """Outbox: one row per alert and target URL, written with the alert in one transaction.

    ``status``: ``pending`` (due at ``next_attempt_at``), ``held`` (waits for its notifier's daily
    digest), ``sent``, ``dead`` (gave up after the notifier's ``max_attempts``). The URL itself holds
    tokens and stays in the config; ``url_fingerprint`` finds it again.
    """

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    target: str = Field(max_length=128)
    url_fingerprint: str = Field(default="", max_length=16)
    channel: str = Field(default="", max_length=32)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None


class AuditLog(SQLModel, table=True):
    """Append-only trail of who did what; database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class SourceHealth(SQLModel, table=True):
    __tablename__ = "source_health"

    source: str = Field(primary_key=True, max_length=64)
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_error_kind: str | None = Field(default=None, max_length=32)


class SourceSignal(SQLModel, table=True):
    """A vendor signal the source cannot fetch (the account has not bought it): skipped until
    ``retry_at``, shown by ``watcher status``."""

    __tablename__ = "source_signal"

    source: str = Field(primary_key=True, max_length=64)
    signal: str = Field(primary_key=True, max_length=32)
    unavailable_since: datetime = Field(default_factory=utcnow)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    retry_at: datetime = Field(default_factory=utcnow)


class SourceUsage(SQLModel, table=True):
    """Billed vendor calls per source and hour (``watcher status`` sums the last 24 hours)."""

    __tablename__ = "source_usage"

    source: str = Field(primary_key=True, max_length=64)
    hour: datetime = Field(primary_key=True)
    calls: int = 0


class Instance(SQLModel, table=True):
    """A running daemon: its heartbeat tells ``watcher status`` on any host whether it is alive."""

    __tablename__ = "instance"

    name: str = Field(primary_key=True, max_length=128)
    host: str = Field(max_length=255)
    pid: int
    version: str = Field(max_length=32)
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    last_sweep_at: datetime | None = None
    stopped_at: datetime | None = None


class User(SQLModel, table=True):
    """A console user. ``password_hash`` is salted scrypt (see ``watcher.console.auth``), never a password.

    Officers see only the borrowers whose ``officer`` is their ``officer_id`` ([officers.<id>]);
    reviewers (compliance, the risk desk) see every borrower. ``language`` is the user's preferred
    console language (None: the [watcher] language).
    """

    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=128)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    officer_id: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=8)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session. The browser's signed cookie holds only an opaque id; this row is
    the authority, so signing out, ``watcher users disable`` or a new password end it at once.

    ``id_hash`` is the SHA-256 of that id: a copy of the table does not hand out usable sessions.
    ``flash`` is a one-time message for the next page (e.g. "alert #3 acknowledged").
    """

    __tablename__ = "console_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="console_user.id", index=True)
    via: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    flash: str | None = Field(default=None, sa_column=Column(Text))


class LoginFailures(SQLModel, table=True):
    """Wrong passwords counted per user name (``kind`` "name") and per client address ("address").

    In the database so that every console process and instance sees the same counts: a guesser
    cannot spread attempts over instances, nor clear them by waiting for a restart.
    """

    __tablename__ = "console_login_failures"

    kind: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=128)
    failures: int = 0
    last_failure_at: datetime | None = None
    locked_until: datetime | None = None


class PartyTie(SQLModel, table=True):
    """A watched party names a person or company in a role (``watcher.connections.Tie``): the
    portfolio index as stored, replaced whenever the party's snapshot is (``watcher db reindex``
    rebuilds it). Looked up by node identity and by name, so one party's neighbourhood is found
    without loading the portfolio."""

    __tablename__ = "party_tie"
    __table_args__ = (
        Index("ix_party_tie_identity", "identity"),
        Index("ix_party_tie_name", "kind", "name_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(foreign_key="borrower.id", index=True, max_length=64)
    kind: str = Field(max_length=16)
    identity: str = Field(sa_column=Column(Text, nullable=False))
    basis: str = Field(max_length=16)
    role: str = Field(max_length=32)
    name: str = Field(sa_column=Column(Text, nullable=False))
    name_key: str = Field(sa_column=Column(Text, nullable=False))
    # Percent (the upper bound of a band) as decimal text: exact on every database.
    stake: str | None = Field(default=None, max_length=40)
    since: date | None = None
    # When the index first held the tie, kept while the party's snapshots keep naming it.
    first_seen: date | None = None


class PartyNode(SQLModel, table=True):
    """A watched party's own node (its registration number in its source's scope): how the index
    finds the watched parties another party holds or is held by. Written with its ties, so a party
    indexed without any tie is still known as indexed."""

    __tablename__ = "party_node"

    borrower_id: str = Field(foreign_key="borrower.id", primary_key=True, max_length=64)
    identity: str | None = Field(default=None, sa_column=Column(Text, nullable=True, index=True))
    indexed_at: datetime = Field(default_factory=utcnow)


class FeedState(SQLModel, table=True):
    """One change feed of one source (``watcher.feeds``): where reading resumes, how it went, and which
    instance follows the source's feeds (claimed like any other work, taken over when it dies)."""

    __tablename__ = "feed_state"

    source: str = Field(primary_key=True, max_length=64)
    feed: str = Field(primary_key=True, max_length=64)
    # The feed's own position text (``sources.change_feed``); None: read from now on.
    position: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    read_at: datetime | None = None  # the last successful read
    caught_up: bool = False  # that read reached the end of what the feed had
    published_at: datetime | None = None  # when the last entry read was published
    entries: int = 0  # entries read in all
    marked: int = 0  # watched parties made due in all
    failing_since: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Fallen back to polling: the feed lost entries or failed longer than ``failing_after``.
    gap_since: datetime | None = None
    gap_alert_id: int | None = None
    claimed_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A token of the integration API (``watcher tokens``). The token itself is shown once and never
    stored: ``lookup`` (its public prefix) finds the row, ``secret_hash`` (salted SHA-256 of its
    secret part, ``salt`` beside it) proves it. ``scope`` is a ``TokenScope``; ``officer_id`` limits
    what it reads to that officer's parties, like a console officer (None: everything, like a reviewer).
    """

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    lookup: str = Field(max_length=32, unique=True)
    salt: str = Field(max_length=64)
    secret_hash: str = Field(max_length=128)
    scope: str = Field(max_length=16)
    officer_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
