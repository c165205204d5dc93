"""Bank-internal or vendor JSON feeds, mapped to the canonical record by configured field paths.

A bank configures ``type = "json"``, a URL template and the JSON path of each field
(:mod:`sources.feeds.json_path`); no code. What feeds share is in :mod:`sources.feeds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from sources import register
from sources.base import SourceOptions, as_list, load_json
from sources.feeds import ConfiguredFeedSource
from sources.feeds.assembly import FeedReader, assemble_record
from sources.feeds.json_path import WILDCARD, JsonPath, PathMissing, parse_json_path, resolve_json_path
from sources.feeds.mapping import ChangeLogMap, FeedOptions, FieldsMap, PeopleMap, SectionMap, ShareholdersMap
from watcher.record import RegistryRecord


class JsonFieldsMap(FieldsMap[JsonPath]):
    """Single values located by JSON path."""


class JsonPeopleMap(PeopleMap[JsonPath, JsonPath]):
    """Officers: ``items`` is the path of the list, the other paths are relative to one item."""


class JsonShareholdersMap(ShareholdersMap[JsonPath, JsonPath]):
    """Shareholders: ``items`` is the path of the list, the other paths are relative to one item."""


class JsonChangeLogMap(ChangeLogMap[JsonPath, JsonPath]):
    """Change rows: ``items`` is the path of the list, the other paths are relative to one item."""


class JsonFeedOptions(FeedOptions):
    """``[sources.<name>]`` with ``type = "json"``: every locator is a JSON path."""

    fields: JsonFieldsMap = JsonFieldsMap()
    people: JsonPeopleMap | None = None
    shareholders: JsonShareholdersMap | None = None
    change_log: JsonChangeLogMap | None = None


class JsonReader(FeedReader):
    """Locates values in a decoded JSON document by path."""

    def __init__(self, document: object) -> None:
        self.document = document

    def value(self, locator: str, scope: object) -> object | None:
        steps = parse_json_path(locator)
        try:
            matches = resolve_json_path(steps, scope, locator)
        except PathMissing:
            return None
        return matches if WILDCARD in steps else matches[0]

    def rows(self, section: SectionMap, section_name: str) -> list[object] | None:
        """The list at ``items`` (a null list counts as absent); with a final ``[*]``, its matches."""
        steps = parse_json_path(section.items)
        try:
            matches = resolve_json_path(steps, self.document, section.items)
        except PathMissing:
            return None
        if steps[-1] is WILDCARD:
            return matches
        rows: list[object] = []
        for match in matches:
            if match is None:
                return None
            rows.extend(as_list(match, f"{section_name}.items ({section.items})"))
        return rows


@register("json")
class JsonFeedSource(ConfiguredFeedSource):
    """A JSON feed (bank-internal service, vendor API) mapped by the field paths in its config."""

    Options: ClassVar[type[SourceOptions]] = JsonFeedOptions
    settings: JsonFeedOptions
    endpoints: ClassVar[tuple[str, ...]] = ("feed",)
    payload_name: ClassVar[str] = "feed"
    accept: ClassVar[str] = "application/json"

    def map_raw(self, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        document = load_json(self.payload(raw), what=self.payload_name)
        return assemble_record(JsonReader(document), self.settings, source=source, registry_id=registry_id)
