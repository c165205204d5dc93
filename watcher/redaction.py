"""Secrets out of every text shown or stored: each value the config took from the environment.

Every ``${NAME}`` substituted into the config is a secret (a webhook token in a URL's path, an API
key, a password). The config loader remembers those values here, process-wide, and every text about
a delivery or a failed check that is shown, logged or stored passes through :func:`redact`: a
channel's error may echo its URL, a registry's error page may echo the API key, and the audit log
keeps what it is given for ever.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import quote

MASK = "****"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked in free text: a two-letter value would blank out ordinary words."""

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
"""Every remembered secret and its URL-encoded forms, longest first (a secret containing another)."""


def remember_secrets(values: Iterable[str]) -> None:
    """Add values taken from the environment; once remembered, a value is masked for the process's life."""
    global _secrets
    fresh = {form for value in values if len(value) >= MIN_SECRET_LENGTH for form in _forms(value)}
    with _lock:
        _secrets = tuple(sorted(fresh.union(_secrets), key=lambda secret: (-len(secret), secret)))


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced by ``****``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_optional(text: str | None) -> str | None:
    """:func:`redact` for a column that may be empty."""
    return None if text is None else redact(text)


def _forms(value: str) -> set[str]:
    """The value as written and as a URL carries it (apprise quotes a URL's parts when it shows one)."""
    return {value, quote(value, safe=""), quote(value)}
