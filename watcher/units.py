"""Durations ("24h", "1h30m") and rates ("5/s", "600/5m") as written in the config and the CSV;
moments as people read them ("2026-12-06 09:41 +08:00").

Pure: no I/O. Text is parsed once, at load time, into ``timedelta`` and :class:`Rate`; the rest of
the program never sees the string forms. ``Duration`` and ``RateSpec`` are the pydantic field types
that do this parsing inside models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "DURATION_FORMS",
    "MOMENT_FORM",
    "RATE_FORMS",
    "Duration",
    "Rate",
    "RateSpec",
    "format_duration",
    "format_moment",
    "parse_duration",
    "parse_rate",
]

_UNIT_SECONDS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
YEAR_SECONDS = 31_557_600
"""A year as written in durations (``10y``): the Julian year of 365¼ days, the mean calendar year,
so that a retention of ten years is never shorter than ten calendar years by more than half a day."""
_PARSE_UNIT_SECONDS: dict[str, int] = {"y": YEAR_SECONDS, **_UNIT_SECONDS}
_UNIT_ORDER = list(_PARSE_UNIT_SECONDS)
_PART = re.compile(r"([0-9]+)([a-zA-Z]*)")
DURATION_FORMS = "a duration like 10s, 30m, 24h, 365d, 10y or 1h30m"
RATE_FORMS = "a rate like 5/s, 600/5m or 10/1h"
MOMENT_FORM = "YYYY-MM-DD HH:MM ±HH:MM"


def _duration_error(text: object, problem: str) -> ValueError:
    return ValueError(f"expected {DURATION_FORMS}, got {text!r} ({problem})")


def parse_duration(text: str) -> timedelta:
    """Parse ``"10s"``, ``"30m"``, ``"24h"``, ``"365d"``, ``"10y"`` or a combination such as ``"1h30m"``.

    Units appear at most once each, largest first. A year (``y``) is :data:`YEAR_SECONDS` long; it
    is accepted but never written by :func:`format_duration`, which spells years in days. Zero
    (``"0s"``) is allowed; negative, fractional and unit-less values are not. ValueError says why.
    """
    stripped = text.strip()
    if not stripped:
        raise _duration_error(text, "empty")
    if stripped.startswith("-"):
        raise _duration_error(text, "negative durations are not allowed")
    if re.search(r"[0-9][.,][0-9]", stripped):
        raise _duration_error(text, "fractions are not allowed; write 1h30m rather than 1.5h")
    if re.search(r"\s", stripped):
        raise _duration_error(text, "spaces are not allowed")
    total = 0
    position = 0
    previous_rank = -1
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        number, unit = match.groups()
        if len(number) > 12:
            raise _duration_error(text, "too large")
        if not unit:
            raise _duration_error(text, f"missing unit after {number}; use s, m, h, d or y")
        if unit not in _PARSE_UNIT_SECONDS:
            raise _duration_error(text, f"unknown unit {unit!r}; use s, m, h, d or y")
        rank = _UNIT_ORDER.index(unit)
        if rank <= previous_rank:
            raise _duration_error(text, "each unit at most once, largest first, as in 1h30m")
        previous_rank = rank
        total += int(number) * _PARSE_UNIT_SECONDS[unit]
        position = match.end()
    if position != len(stripped):
        raise _duration_error(text, "not a whole number followed by a unit")
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise _duration_error(text, "too large") from None


def format_duration(value: timedelta) -> str:
    """The canonical text of ``value``: largest units first, zero parts left out (86400 s is ``"1d"``).

    The inverse of :func:`parse_duration`. ValueError for negative or sub-second durations, which
    have no text form.
    """
    if value < timedelta(0):
        raise ValueError(f"negative duration {value!r} has no text form")
    if value.microseconds:
        raise ValueError(f"duration {value!r} is not a whole number of seconds")
    remaining = value.days * 86_400 + value.seconds
    parts: list[str] = []
    for unit, seconds in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Rate:
    """At most ``count`` requests per ``per``: what a source's rate limiter is built from."""

    count: int
    per: timedelta

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"rate count must be at least 1, got {self.count}")
        if self.per <= timedelta(0) or self.per.microseconds:
            raise ValueError(f"rate period must be a positive whole number of seconds, got {self.per!r}")

    @property
    def per_second(self) -> float:
        return self.count / self.per.total_seconds()

    def __str__(self) -> str:
        period = format_duration(self.per)
        if period in {f"1{unit}" for unit in _UNIT_SECONDS}:
            period = period[1:]
        return f"{self.count}/{period}"


def parse_rate(text: str) -> Rate:
    """Parse ``"5/s"``, ``"600/5m"`` or ``"10/1h"``: a positive count, a slash, and a period.

    A bare unit after the slash means one of it (``"5/s"`` is ``"5/1s"``).
    """
    count_text, slash, period_text = text.partition("/")
    count_text, period_text = count_text.strip(), period_text.strip()
    if not slash:
        raise ValueError(f"expected {RATE_FORMS}, got {text!r} (missing '/')")
    if not re.fullmatch(r"[0-9]{1,12}", count_text) or int(count_text) < 1:
        raise ValueError(f"expected {RATE_FORMS}, got {text!r} (the count must be a whole number >= 1)")
    if period_text in _UNIT_SECONDS:
        period_text = f"1{period_text}"
    try:
        period = parse_duration(period_text)
    except ValueError:
        raise ValueError(f"expected {RATE_FORMS}, got {text!r} (the period is not a duration)") from None
    if not period:
        raise ValueError(f"expected {RATE_FORMS}, got {text!r} (the period must be longer than 0s)")
    return Rate(int(count_text), period)


def _validate_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise PydanticCustomError("duration", "negative durations are not allowed")
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise PydanticCustomError("duration", "{message}", {"message": str(exc)}) from None
    if isinstance(value, int) and not isinstance(value, bool):
        message = str(_duration_error(value, "a number needs a unit, and must be quoted"))
        raise PydanticCustomError("duration", "{message}", {"message": message})
    raise PydanticCustomError("duration", "expected {forms} (a quoted string)", {"forms": DURATION_FORMS})


def _validate_rate(value: object) -> Rate:
    if isinstance(value, Rate):
        return value
    if isinstance(value, str):
        try:
            return parse_rate(value)
        except ValueError as exc:
            raise PydanticCustomError("rate", "{message}", {"message": str(exc)}) from None
    raise PydanticCustomError("rate", "expected {forms} (a quoted string)", {"forms": RATE_FORMS})


Duration = Annotated[
    timedelta,
    PlainValidator(_validate_duration, json_schema_input_type=str),
    PlainSerializer(format_duration, return_type=str),
]
"""A model field holding a duration; accepts its text form or a ``timedelta``, dumps as text."""

RateSpec = Annotated[
    Rate,
    PlainValidator(_validate_rate, json_schema_input_type=str),
    PlainSerializer(str, return_type=str),
]
"""A model field holding a :class:`Rate`; accepts its text form or a ``Rate``, dumps as text."""


def format_moment(moment: datetime, zone: tzinfo) -> str:
    """``moment`` as people read it: to the minute, in ``zone``, with that zone's UTC offset then.

    One form for alerts, tables and the console (:data:`MOMENT_FORM`): the offset makes the time
    unambiguous wherever it is read (an abbreviation such as CST names three zones). Naive times
    are UTC, as the database gives them back.
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    local = aware.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {_offset_text(local.utcoffset())}"


def _offset_text(offset: timedelta | None) -> str:
    """``+08:00``, ``-03:30``, ``+00:00``; seconds only for the odd historical offset that has them."""
    total = int((offset or timedelta(0)).total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC time: the database keeps UTC, and SQLite gives it back naive."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
