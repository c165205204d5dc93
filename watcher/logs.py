"""Logging for the daemon: stdout for journald (priority prefixes, no timestamps), or JSON lines."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from datetime import UTC, datetime

from watcher.redaction import redact

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class RedactSecrets(logging.Filter):
    """Last line of defence for every line the daemon writes, a library's included: no secret value
    from the environment (a token apprise or httpx might print within a URL) reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = redact(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


class JournalFormatter(logging.Formatter):
    """``<N>logger: message``: journald reads the priority prefix and adds its own timestamps."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {record.getMessage()}" + (
            "\n" + self.formatException(record.exc_info) if record.exc_info else ""
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def stdout_is_journal() -> bool:
    """Whether stdout is the journal stream systemd connected, as ``JOURNAL_STREAM`` says.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` of that stream, and every child inherits it:
    ``watcher run`` started from a shell inside a unit, or with its output piped or sent to a file,
    sees the variable with a stdout that is not the journal. systemd.exec(5) says to compare it
    with stdout's own device and inode.
    """
    device, sep, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not sep:
        return False
    try:
        stat = os.fstat(sys.stdout.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (AttributeError, OSError, ValueError):
        return False


def configure(*, fmt: str, level: str) -> None:
    # Names of Chinese borrowers and instances must never make a log line fail: a locale whose
    # encoding cannot write them (LANG=en_US.ISO-8859-1) gets escapes instead of logging errors.
    if isinstance(sys.stdout, io.TextIOWrapper):
        with contextlib.suppress(ValueError):
            sys.stdout.reconfigure(errors="backslashreplace")
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RedactSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif stdout_is_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every run at INFO; apprise's own lines repeat what the outbox records.
    for noisy in ("apscheduler", "apprise", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
