"""``${NAME}`` in config values, replaced from the environment, and kept out of every error message.

Values that came from the environment are secrets (keys, passwords, webhook tokens): a reason quotes
the ``${NAME}`` the file says, never the text it stood for. A variable is required only where the
command uses it: in a :class:`~watcher.vocabulary.SecretScope` the command does not need, a value
naming an unset variable is *deferred*: kept as written, its ``${NAME}`` unreplaced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from watcher.vocabulary import SecretScope

Loc = tuple[str | int, ...]
"""Where a value sits in the file: table names, keys and array indexes from the top."""

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file: where (``loc``) and the reason an operator reads.

    ``kind`` is the validator's error kind, when a validator found it.
    """

    loc: Loc
    reason: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Substitution:
    """One string value that took text from the environment: what to show instead of it."""

    loc: Loc
    original: str
    value: str
    variables: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Deferred:
    """A value of a scope the command does not need that names unset variables: kept as written."""

    loc: Loc
    original: str
    variables: tuple[str, ...]


DEFERRED_CONTEXT = "watcher_deferred_values"
"""Validation context key: the deferred values as written, which validators of secrets let pass."""

_SCOPED = (SecretScope.SOURCES, SecretScope.CHANNELS, SecretScope.CONSOLE)


def secret_scope(loc: Loc) -> SecretScope | None:
    """The scope a value belongs to; None for values every command needs (the database URL)."""
    top = loc[0] if loc else None
    if top == "sources":
        return SecretScope.SOURCES
    if top == "notifiers" or (top == "officers" and len(loc) > 2 and loc[2] == "urls"):
        return SecretScope.CHANNELS
    if top == "console":
        return SecretScope.CONSOLE
    return None


def unneeded_scopes(raw: Mapping[str, Any], needs: Collection[SecretScope]) -> frozenset[SecretScope]:
    """The scopes whose unset variables may be deferred: those the command does not need.

    ``console_when_enabled`` needs the console's scope when the file enables it (or leaves that to
    a ``${…}``, which cannot be judged before substitution).
    """
    needed = set(needs)
    console = raw.get("console")
    enabled = console.get("enabled", False) if isinstance(console, dict) else False
    if SecretScope.CONSOLE_WHEN_ENABLED in needed and (enabled is True or isinstance(enabled, str)):
        needed.add(SecretScope.CONSOLE)
    return frozenset(scope for scope in _SCOPED if scope not in needed)


def _related(a: Loc, b: Loc) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


class Redactor:
    """Keeps text that came from the environment out of messages: it shows ``${NAME}`` instead."""

    _MIN_GLOBAL = 4

    def __init__(self, substitutions: list[Substitution]) -> None:
        self._substitutions = substitutions

    def from_environment(self, loc: Loc) -> bool:
        """Whether the value at ``loc``, or any value under it, took text from the environment."""
        return any(sub.loc[: len(loc)] == loc for sub in self._substitutions)

    def shown(self, loc: Loc, value: object) -> str:
        """How an offending value is quoted in a reason: its source text when it came from the environment."""
        for sub in self._substitutions:
            if sub.loc == loc:
                return repr(sub.original)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            return "a table"
        if isinstance(value, list):
            return "an array"
        return repr(value) if isinstance(value, str) else str(value)

    def redact(self, loc: Loc, text: str) -> str:
        """Last line of defence: replace any environment text still present, longest first."""
        pairs: list[tuple[str, str]] = []
        for sub in self._substitutions:
            near = _related(sub.loc, loc)
            if sub.value and (near or len(sub.value) >= self._MIN_GLOBAL):
                pairs.append((sub.value, sub.original))
            pairs.extend(
                (secret, f"${{{name}}}")
                for name, secret in sub.variables
                if secret and (near or len(secret) >= self._MIN_GLOBAL)
            )
        for secret, replacement in sorted(pairs, key=lambda pair: len(pair[0]), reverse=True):
            text = text.replace(secret, replacement)
        return text


@dataclass(slots=True)
class Substituted:
    """The file's data with every reference replaced, what was replaced where, and what could not be."""

    data: Any = None
    substitutions: list[Substitution] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    deferrable: frozenset[SecretScope] = frozenset()
    channels: frozenset[str] | None = None
    """The notifiers and officers whose URLs the command uses when it uses only some (``notify test
    --notifier``); the other channels' unset variables are deferred. None: every channel's."""

    def may_defer(self, loc: Loc) -> bool:
        """Whether an unset variable at ``loc`` is deferred rather than an error."""
        scope = secret_scope(loc)
        if scope in self.deferrable:
            return True
        return scope is SecretScope.CHANNELS and self.channels is not None and loc[1] not in self.channels

    def deferred_at(self, loc: Loc) -> Deferred | None:
        """The deferred value at ``loc`` or above it (a problem of a table names the table)."""
        return next((item for item in self.deferred if loc[: len(item.loc)] == item.loc), None)

    @property
    def redactor(self) -> Redactor:
        return Redactor(self.substitutions)


def substitute_environment(
    raw: dict[str, Any],
    deferrable: frozenset[SecretScope] = frozenset(),
    channels: frozenset[str] | None = None,
) -> Substituted:
    """``raw`` with ``${NAME}`` replaced from the environment throughout; only values, never keys.

    An unset variable is a problem, except in the ``deferrable`` scopes and in the URLs of channels
    other than ``channels`` (when given): there its value is deferred.
    """
    result = Substituted(deferrable=deferrable, channels=channels)
    result.data = _substitute(raw, (), result)
    return result


def _substitute(value: Any, loc: Loc, result: Substituted) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, (*loc, key), result) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, (*loc, index), result) for index, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    used: dict[str, str] = {}
    unset: list[str] = []
    deferrable = result.may_defer(loc)

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$${":
            return "${"
        name = match[1]
        if name is None:
            result.problems.append(Problem(loc, "malformed ${...}; write ${NAME}, or $${ for a literal ${"))
            return match[0]
        if name not in os.environ:
            if deferrable:
                unset.append(name)
            else:
                result.problems.append(Problem(loc, f"environment variable {name} is not set"))
            return match[0]
        used[name] = os.environ[name]
        return used[name]

    replaced = _REFERENCE.sub(replace, value)
    if unset:  # kept as written: no part of it, set or not, is taken from the environment
        result.deferred.append(Deferred(loc, value, tuple(dict.fromkeys(unset))))
        return value
    if used:
        result.substitutions.append(Substitution(loc, value, replaced, tuple(used.items())))
    return replaced
