"""The project's vocabularies, one StrEnum each, defined here once and used everywhere.

A member equals, hashes and formats as its value, and the values are the strings already stored in
the database, written to jsonl, csv and JSON and read from the config: they never change, so a
database written before these enums existed reads the same. Pure: imports nothing that does I/O.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How much an alert matters to the bank; ordered, so ``>=`` and ``max`` mean "more severe"."""

    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def most_severe_first(cls) -> tuple[Severity, ...]:
        """The order of the console's filter menus and of its alert list."""
        return tuple(sorted(cls, reverse=True))

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Language(StrEnum):
    """The languages of alerts and of the console."""

    ZH_CN = "zh-CN"
    EN = "en"


class AlertKind(StrEnum):
    """What an alert is about: registry changes (with change events), or the watch itself."""

    CHANGE = "change"
    ONBOARDING = "onboarding"  # risk listings already in force at a borrower's first check
    MONITORING_GAP = "monitoring_gap"
    MONITORING_RESTORED = "monitoring_restored"

    @property
    def about_changes(self) -> bool:
        """An alert about the borrower's registry facts (with change events), not about the watch."""
        return self in (AlertKind.CHANGE, AlertKind.ONBOARDING)


class AlertStatus(StrEnum):
    """Where an alert is in its handling: open → acknowledged → closed (or open → closed)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class AlertStatusFilter(StrEnum):
    """Which alerts a list shows (``watcher alerts --status``, the console's tabs): one status, or all."""

    OPEN = AlertStatus.OPEN.value
    ACKNOWLEDGED = AlertStatus.ACKNOWLEDGED.value
    CLOSED = AlertStatus.CLOSED.value
    ALL = "all"

    @property
    def status(self) -> AlertStatus | None:
        """The one status listed; None for all of them."""
        return None if self is AlertStatusFilter.ALL else AlertStatus(self.value)


class DeliveryStatus(StrEnum):
    """An outbox row's state: due now (pending), waiting for the daily digest (held), or done."""

    PENDING = "pending"
    HELD = "held"
    SENT = "sent"
    DEAD = "dead"


class OutboxState(StrEnum):
    """How ``watcher status``, the metrics and the console count undelivered rows. Never stored:
    a pending row that has been tried before is retrying."""

    PENDING = DeliveryStatus.PENDING.value
    RETRYING = "retrying"
    HELD = DeliveryStatus.HELD.value
    DEAD = DeliveryStatus.DEAD.value


class AuditAction(StrEnum):
    """What an audit-log row records; the subject (alert, borrower, user) is named beside it."""

    ALERT_OPENED = "alert.opened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_CLOSED = "alert.closed"
    BORROWER_ADDED = "borrower.added"
    BORROWER_UPDATED = "borrower.updated"
    BORROWER_DEACTIVATED = "borrower.deactivated"
    BORROWER_REACTIVATED = "borrower.reactivated"
    BORROWER_PRUNED = "borrower.pruned"
    DELIVERY_DEAD = "delivery.dead"
    SIGNALS_RETRIED = "source.signals_retried"
    USER_ADDED = "console.user_added"
    USER_ENABLED = "console.user_enabled"
    USER_DISABLED = "console.user_disabled"
    PASSWORD_CHANGED = "console.password_changed"
    SIGNED_IN = "console.signed_in"
    LOCKED_OUT = "console.locked_out"
    API_TOKEN_ADDED = "api.token_added"
    API_TOKEN_REVOKED = "api.token_revoked"


class ErrorKind(StrEnum):
    """Why a check failed, as kept on the borrower and the source (``last_error_kind``)."""

    SOURCE_ERROR = "source_error"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    BLOCKED = "blocked"
    PARSE_ERROR = "parse_error"
    AUTH = "auth"
    STORAGE = "storage"
    UNKNOWN = "unknown"
    """Only in a gap alert's detail: a failing borrower whose failure was stored without a kind."""


class PartyRole(StrEnum):
    """What a watched party is to the bank's loans: the borrower itself, or a company securing a
    borrower's loan (a guarantor, 保证人; a pledgor of shares or assets, 出质人). Stored on the party."""

    BORROWER = "borrower"
    GUARANTOR = "guarantor"
    PLEDGOR = "pledgor"

    @property
    def secures(self) -> bool:
        """A party whose role is to secure borrowers (it is watched for them, and with them). A borrower
        may secure other borrowers too (its ``secures`` links); its role stays borrower."""
        return self is not PartyRole.BORROWER


class TokenScope(StrEnum):
    """What an API token may do (``watcher tokens add --scope``): read, or read and write. Stored on
    the token."""

    READ = "read"
    WRITE = "write"


class SecretScope(StrEnum):
    """Parts of the config file whose ``${ENV}`` values only some commands use; never stored.

    A command names the scopes it needs; a variable unset in a scope it does not need is no error
    (``watcher status`` runs without the registry keys). ``console_when_enabled`` is the console's
    scope when ``[console] enabled = true`` (``watcher run``), ``console`` whatever it says (``serve``).
    """

    SOURCES = "sources"  # [sources.*]: the registries' keys
    CHANNELS = "channels"  # [notifiers.*] and [officers.*] urls: webhook tokens, mail passwords
    CONSOLE = "console"  # [console]: the cookie-signing key
    CONSOLE_WHEN_ENABLED = "console_when_enabled"
