"""Validation errors as an operator reads them: one :class:`ConfigError` naming file, dotted key and reason.

pydantic's own messages are long, quote the value and vary between releases; each error kind is
translated here into a short, stable reason, with the offending value quoted only through
:meth:`Redactor.shown` so that text taken from the environment never appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from watcher.config.environment import Loc, Problem, Redactor
from watcher.errors import ConfigError
from watcher.units import DURATION_FORMS, RATE_FORMS

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

_APPEND_GOT = {"clock", "active_hours", "timezone", "unknown_source", "source_type", "positive"}
"""The schema's own error kinds whose message leaves the offending value out, for ``_reason`` to add
(at ``{value}`` when the message has that placeholder, else at the end)."""

_OWN_KINDS = _APPEND_GOT | {
    "missing_type",
    "table",
    "blank",
    "database_url",
    "source_name",
    "console_secret",
    "console_header",
    "channel_url",
    "notifier_event",
    "change_feed",
}
_ECHOING_KINDS = {"duration": DURATION_FORMS, "rate": RATE_FORMS}
"""Kinds from ``watcher.units`` whose message quotes the value; replaced when that value is secret."""

_FIXED_REASONS = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}
_TYPE_REASONS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "an array",
    "tuple_type": "an array",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("greater than", "gt"),
    "less_than": ("less than", "lt"),
}


def dotted(loc: Sequence[str | int]) -> str | None:
    """``loc`` as the key an operator looks for: ``notifiers.desk.urls[0]``, quoted where TOML would."""
    parts: list[str] = []
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        elif _BARE_KEY.fullmatch(part):
            parts.append(part)
        else:
            parts.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ".".join(parts) or None


def _limit_reason(kind: str, ctx: Mapping[str, Any], got: str) -> str | None:
    """The reason for a value outside the allowed choices, range or length; None for other kinds."""
    if kind in ("literal_error", "enum"):
        return f"expected {ctx.get('expected')}, got {got}"
    if kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}, got {got}"
    minimum = ctx.get("min_length")
    if kind == "string_too_short":
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters long"
    if kind == "too_short":
        return "must not be empty" if minimum == 1 else f"needs at least {minimum} items"
    if kind == "too_long":
        return f"may have at most {ctx.get('max_length')} items"
    return None


def _reason(error: ErrorDetails, loc: Loc, redactor: Redactor) -> str:
    """A short operator-facing reason for one pydantic error; the offending value only via ``shown``."""
    kind = error["type"]
    got = redactor.shown(loc, error.get("input"))
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    if kind in _TYPE_REASONS:
        return f"expected {_TYPE_REASONS[kind]}, got {got}"
    limit = _limit_reason(kind, error.get("ctx") or {}, got)
    if limit is not None:
        return limit
    message = error["msg"]
    if kind in _APPEND_GOT:
        return message.replace("{value}", got) if "{value}" in message else f"{message}, got {got}"
    if kind in _OWN_KINDS:
        return message
    if redactor.from_environment(loc):
        forms = _ECHOING_KINDS.get(kind)
        return f"expected {forms}, got {got}" if forms else f"invalid value {got}"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def problems_from(exc: ValidationError, redactor: Redactor) -> Iterator[Problem]:
    """One problem per validation error, at its key."""
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        yield Problem(loc, _reason(error, loc, redactor), error["type"])


def config_error(file: str, problems: list[Problem], redactor: Redactor) -> ConfigError:
    """One error for all problems: the first on the first line (file, key, reason), the rest below it."""
    first, *rest = problems
    reason = redactor.redact(first.loc, first.reason)
    for problem in rest:
        key = dotted(problem.loc) or "(top level)"
        reason += f"\n  also key {key}: {redactor.redact(problem.loc, problem.reason)}"
    return ConfigError(reason, file=file, key=dotted(first.loc))
