"""The path language of ``json`` feeds: where a value sits in a JSON answer.

Paths are dotted keys with list indexes: ``data.company.name``, ``capital[0].percent``, ``[0].name``,
and ``[*]`` for every element of a list (``data.groups[*].members``). Keys may hold any character but
``.``, ``[`` and ``]``. A path is parsed when the config is loaded (:data:`JsonPath`), so a typo is a
config error.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

from watcher.errors import ParseError


class _Wildcard:
    """The ``[*]`` step: every element of a list."""

    def __repr__(self) -> str:
        return "[*]"


WILDCARD = _Wildcard()
PathStep = str | int | _Wildcard
_INDEX = re.compile(r"\[(\*|-?[0-9]+)\]")


@lru_cache(maxsize=1024)
def parse_json_path(text: str) -> tuple[PathStep, ...]:
    """The steps of a path (keys, list indexes, wildcards); ValueError saying where it is malformed."""
    if not text:
        raise ValueError("empty path")
    if text != text.strip():
        raise ValueError(f"path {text!r} has spaces at its start or end")
    steps: list[PathStep] = []
    position = 0
    expect_key = not text.startswith("[")
    while True:
        if expect_key:
            end = position
            while end < len(text) and text[end] not in ".[]":
                end += 1
            if end == position:
                raise ValueError(f"path {text!r} has an empty key at character {position + 1}")
            steps.append(text[position:end])
            position = end
        while position < len(text) and text[position] == "[":
            match = _INDEX.match(text, position)
            if match is None:
                raise ValueError(f"path {text!r} needs [number] or [*] at character {position + 1}")
            steps.append(WILDCARD if match[1] == "*" else int(match[1]))
            position = match.end()
        if position == len(text):
            return tuple(steps)
        if text[position] != ".":
            raise ValueError(
                f"path {text!r} has an unexpected {text[position]!r} at character {position + 1}"
            )
        position += 1
        expect_key = True


def format_path(steps: tuple[PathStep, ...]) -> str:
    """Steps back to path text, for error messages about a prefix of a configured path."""
    text = ""
    for step in steps:
        if isinstance(step, str):
            text += f".{step}" if text else step
        else:
            text += f"[{'*' if step is WILDCARD else step}]"
    return text or "the response"


class PathMissing(LookupError):
    """A key or index of the path is absent (or null): the value is unknown, not empty."""


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "text" if isinstance(value, str) else "a scalar"


def resolve_json_path(steps: tuple[PathStep, ...], document: object, path: str) -> list[object]:
    """Every value the path reaches (one without ``[*]``). PathMissing when a step finds nothing;
    ParseError when the response has another shape than the path expects (a list for an object)."""
    current = [document]
    for position, step in enumerate(steps):
        reached: list[object] = []
        for value in current:
            if value is None:
                raise PathMissing(format_path(steps[:position]))
            if isinstance(step, str):
                if not isinstance(value, dict):
                    where = format_path(steps[:position])
                    raise ParseError(f"path {path}: {where} is {_json_kind(value)}, not an object")
                if step not in value:
                    raise PathMissing(format_path(steps[: position + 1]))
                reached.append(value[step])
                continue
            if not isinstance(value, list):
                where = format_path(steps[:position])
                raise ParseError(f"path {path}: {where} is {_json_kind(value)}, not a list")
            if step is WILDCARD:
                reached.extend(value)
                continue
            assert isinstance(step, int)
            if not -len(value) <= step < len(value):
                raise PathMissing(format_path(steps[: position + 1]))
            reached.append(value[step])
        current = reached
    return current


def _valid_json_path(text: str) -> str:
    parse_json_path(text)
    return text


JsonPath = Annotated[str, AfterValidator(_valid_json_path)]
