"""The named error hierarchy. Callers catch classes, never match on message strings."""

from __future__ import annotations

from typing import ClassVar

from watcher.vocabulary import ErrorKind


class WatcherError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(WatcherError):
    """Configuration is unreadable or invalid. Carries where (file, key) and why."""

    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None) -> None:
        self.reason = reason
        self.file = file
        self.key = key
        where = ", ".join(part for part in (file, f"key {key}" if key else None) if part)
        super().__init__(f"{where}: {reason}" if where else reason)


class SourceError(WatcherError):
    """A fetch did not yield a valid record. Never reaches the diff."""

    kind: ClassVar[ErrorKind] = ErrorKind.SOURCE_ERROR
    retryable = False

    def __init__(self, message: str, *, source: str | None = None, registry_id: str | None = None) -> None:
        self.source = source
        self.registry_id = registry_id
        super().__init__(message)


class TransientError(SourceError):
    """Network failure, timeout, 5xx: worth retrying soon."""

    kind = ErrorKind.TRANSIENT
    retryable = True


class RateLimitedError(TransientError):
    """The source said slow down (429 or a vendor's quota-per-second code)."""

    kind = ErrorKind.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: str | None) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class NotFoundError(SourceError):
    """The registry has no such company (or it was removed)."""

    kind = ErrorKind.NOT_FOUND


class BlockedError(SourceError):
    """A captcha, WAF challenge or anti-bot page came back instead of data."""

    kind = ErrorKind.BLOCKED


class ParseError(SourceError):
    """The response was not the expected shape: empty, truncated, HTML for JSON, missing a section."""

    kind = ErrorKind.PARSE_ERROR


class AuthError(SourceError):
    """Key invalid, balance exhausted, quota exceeded: the operator must act."""

    kind = ErrorKind.AUTH


class CheckStorageError(WatcherError):
    """A check's result could not be written (the database refused it): recorded as a failed check
    of that borrower, retried like any failure, while the rest of the sweep goes on."""

    kind: ClassVar[ErrorKind] = ErrorKind.STORAGE
