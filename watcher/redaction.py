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
from dataclasses import dataclass
from urllib.parse import quote

MASK = "****"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked in free text: a two-letter value would blank out ordinary words."""


@dataclass(frozen=True, slots=True)
class Secrets:
    """Values to mask, with the forms a URL carries them in, longest first (a secret inside another)."""

    forms: tuple[str, ...] = ()

    def adding(self, values: Iterable[str]) -> Secrets:
        """These secrets and ``values`` (those of at least :data:`MIN_SECRET_LENGTH` characters)."""
        fresh = {form for value in values if len(value) >= MIN_SECRET_LENGTH for form in _forms(value)}
        return Secrets(tuple(sorted(fresh.union(self.forms), key=lambda form: (-len(form), form))))

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``****``."""
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


_lock = threading.Lock()
_known = Secrets()


def remember_secrets(values: Iterable[str]) -> None:
    """Add values taken from the environment; once remembered, a value is masked for the process's life."""
    global _known
    with _lock:
        _known = _known.adding(values)


def forget_secrets() -> None:
    """Forget every remembered value: for tests, which load many configs in one process."""
    global _known
    with _lock:
        _known = Secrets()


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced by ``****``."""
    return _known.redact(text)


def redact_optional(text: str | None) -> str | None:
    """:func:`redact` for a column that may be empty."""
    return None if text is None else _known.redact(text)


def _forms(value: str) -> set[str]:
    """The value as written and as a URL carries it (apprise quotes a URL's parts when it shows one)."""
    return {value, quote(value, safe=""), quote(value)}
