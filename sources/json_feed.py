"""Bank-internal or vendor JSON feeds, mapped to the canonical record by configured field paths.

A bank configures ``type = "json"``, a URL template and the path of each field; no code. This module
also holds what every configured feed shares (options, fetching, record assembly from located
values), which :mod:`sources.html_page` reuses with CSS selectors in place of paths.

Paths are dotted keys with list indexes: ``data.company.name``, ``capital[0].percent``, ``[0].name``,
and ``[*]`` for every element of a list (``data.groups[*].members``). Keys may hold any character but
``.``, ``[`` and ``]``. A path is parsed when the config is loaded, so a typo is a config error.
"""

from __future__ import annotations

import re
import string
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Annotated, ClassVar, Generic, Literal, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sources import register
from sources.base import SourceOptions, as_list, load_json
from sources.http import HttpSource
from sources.http.options import HttpSourceOptions
from sources.http.responses import raise_for_status
from watcher.errors import ParseError
from watcher.identifiers import normaliser_for
from watcher.normalize import (
    classify_change_item,
    clean_text,
    looks_like_company,
    parse_amount,
    parse_stake,
    person_key,
    roles_from_title,
    text_key,
)
from watcher.record import (
    ChangeLogEntry,
    CompanyStatus,
    HolderKind,
    Money,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
    Status,
)

FieldName = Literal["name", "status", "registered_capital", "address", "legal_representative", "finance_head"]
SECTION_NAMES = ("people", "shareholders", "change_log")

# -- JSON paths -----------------------------------------------------------------------------------


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


# -- the mapping a bank configures ----------------------------------------------------------------

L = TypeVar("L")  # how a value is located: a JSON path, a CSS selector
R = TypeVar("R")  # how a section's rows are located


class MappingTable(BaseModel):
    """A mapping table of the config: unknown keys are errors, so a misspelt field is never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class FieldsMap(MappingTable, Generic[L]):
    """``[sources.<name>.fields]``: where each single value is. Unmapped fields stay unknown (None)."""

    name: L | None = None
    status: L | None = None
    registered_capital: L | None = None
    address: L | None = None
    legal_representative: L | None = None
    finance_head: L | None = None

    def mapped(self) -> dict[str, str]:
        return {name: locator for name, locator in self if isinstance(locator, str)}


class SectionMap(MappingTable, Generic[L, R]):
    """A list section: ``items`` locates the rows, the other keys locate values within one row."""

    items: R


class PeopleMap(SectionMap[L, R], Generic[L, R]):
    """``[sources.<name>.people]``: officers; ``role`` is the title text (执行董事兼总经理, Director)."""

    name: L
    role: L | None = None
    key: L | None = None
    birth: L | None = None


class ShareholdersMap(SectionMap[L, R], Generic[L, R]):
    """``[sources.<name>.shareholders]``: ``kind`` text with person/自然人 means a natural person."""

    name: L
    stake: L | None = None
    kind: L | None = None
    key: L | None = None
    subscribed: L | None = None


class ChangeLogMap(SectionMap[L, R], Generic[L, R]):
    """``[sources.<name>.change_log]``: the registry's own dated change rows (变更记录)."""

    item: L
    before: L | None = None
    after: L | None = None
    date: L | None = None


class JsonFieldsMap(FieldsMap[JsonPath]):
    """Single values located by JSON path."""


class JsonPeopleMap(PeopleMap[JsonPath, JsonPath]):
    """Officers: ``items`` is the path of the list, the other paths are relative to one item."""


class JsonShareholdersMap(ShareholdersMap[JsonPath, JsonPath]):
    """Shareholders: ``items`` is the path of the list, the other paths are relative to one item."""


class JsonChangeLogMap(ChangeLogMap[JsonPath, JsonPath]):
    """Change rows: ``items`` is the path of the list, the other paths are relative to one item."""


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _error(loc: tuple[str | int, ...], message: str, value: object) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("feed_mapping", message), loc=loc, input=value)


class FeedOptions(HttpSourceOptions):
    """Options every configured feed shares; the subclasses type the mapping tables by locator kind.

    Errors never quote the input: header values carry secrets from ``${ENV}``.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    url: str
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    id_kind: str | None = None
    required: list[FieldName] = ["name"]
    status_map: dict[str, CompanyStatus] = Field(default_factory=dict)
    fields: FieldsMap = FieldsMap()
    people: PeopleMap | None = None
    shareholders: ShareholdersMap | None = None
    change_log: ChangeLogMap | None = None

    @field_validator("url")
    @classmethod
    def _url_template(cls, url: str) -> str:
        """A path under base_url with one ``{id}``: a full URL here would send the headers elsewhere."""
        try:
            names = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(url)]
        except ValueError as error:
            raise ValueError(
                f"invalid URL template ({error}); write {{{{ and }}}} for literal braces"
            ) from None
        placeholders = [entry for entry in names if entry[0] is not None]
        if not any(name == "id" for name, _, _ in placeholders):
            raise ValueError("must contain {id} where the company identifier goes, e.g. /companies/{id}")
        if any(name != "id" or spec or conversion for name, spec, conversion in placeholders):
            raise ValueError("only {id} may stand in braces; write {{ and }} for literal braces")
        target = urlsplit(url.format(id="x"))
        if target.scheme or target.netloc or url.startswith("//"):
            raise ValueError("must be a path relative to base_url (e.g. /companies/{id}), not a full URL")
        return url

    @field_validator("headers")
    @classmethod
    def _header_syntax(cls, headers: dict[str, str]) -> dict[str, str]:
        """Values often carry secrets from ${ENV}: messages name the header, never its value."""
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if any(char in value for char in "\r\n\0"):
                raise ValueError(f"the value of header {name} contains a line break or NUL")
        return headers

    @field_validator("id_kind")
    @classmethod
    def _known_id_kind(cls, kind: str | None) -> str | None:
        if kind is not None:
            try:
                normaliser_for(kind)
            except KeyError as error:
                raise ValueError(str(error.args[0])) from None
        return kind

    @field_validator("status_map")
    @classmethod
    def _distinct_status_texts(cls, status_map: dict[str, CompanyStatus]) -> dict[str, CompanyStatus]:
        seen: dict[str, str] = {}
        for text in status_map:
            key = text_key(text)
            if not key:
                raise ValueError(f"status text {text!r} is empty once cleaned")
            if key in seen:
                raise ValueError(f"status texts {seen[key]!r} and {text!r} are the same once cleaned")
            seen[key] = text
        return status_map

    @model_validator(mode="after")
    def _mapping_is_complete(self) -> FeedOptions:
        mapped = self.fields.mapped()
        problems = [
            _error(
                ("required", index),
                f"required field {name} is not mapped; add fields.{name} or drop it from required",
                name,
            )
            for index, name in enumerate(self.required)
            if name not in mapped
        ]
        if self.status_map and "status" not in mapped:
            problems.append(_error(("status_map",), "needs fields.status to be mapped", "status_map"))
        if not mapped and all(getattr(self, section) is None for section in SECTION_NAMES):
            problems.append(
                _error(("fields",), "maps nothing; map at least one field or a list section", "fields")
            )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


# -- record assembly ------------------------------------------------------------------------------


class FeedReader(ABC):
    """One response as a mapping sees it; subclasses locate values by path or by selector.

    ``document`` is the whole response; a row of a list section is the scope of that row's values.
    """

    document: object

    @abstractmethod
    def value(self, locator: str, scope: object) -> object | None:
        """The value located under ``scope``; None when it is absent (unknown)."""

    @abstractmethod
    def rows(self, section: SectionMap, section_name: str) -> list[object] | None:
        """The section's rows; None when the section is absent from the response."""


def feed_text(value: object, where: str) -> str:
    """A located value as text: scalars as written, lists joined with commas, objects refused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list):
        return ", ".join(text for text in (feed_text(item, where) for item in value) if text)
    raise ParseError(f"{where} is an object, not text; point the path at a value inside it")


_DATE = re.compile(r"\s*([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})")


def feed_date(value: object, where: str) -> date | None:
    """``2024-03-05``, ``2024/3/5``, ``2024年03月05日``; None otherwise, as dates are only evidence."""
    match = _DATE.match(unicodedata.normalize("NFKC", feed_text(value, where)))
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


# Entity words are checked first: 非自然人 and legal-person-person-with-significant-control are entities.
_ENTITY_KIND_WORDS = (
    "非自然人",
    "法人",
    "企业",
    "entity",
    "corporate",
    "company",
    "legal-person",
    "legal person",
)
_PERSON_KIND_WORDS = ("自然人", "person", "individual")


def holder_kind(name: str, kind_text: str) -> HolderKind:
    """From the configured kind text when there is one, else from the name (…有限公司, … Ltd)."""
    text = clean_text(kind_text).casefold()
    if text:
        if any(word in text for word in _ENTITY_KIND_WORDS):
            return HolderKind.ENTITY
        return HolderKind.PERSON if any(word in text for word in _PERSON_KIND_WORDS) else HolderKind.ENTITY
    return HolderKind.ENTITY if looks_like_company(name) else HolderKind.PERSON


def _scalar(value: object, where: str) -> object:
    """A number stays a number (0.51 is a fraction to parse_stake); anything else becomes text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return feed_text(value, where)


class _Assembler:
    """Builds one record from one response, naming the configured key in every error."""

    def __init__(self, reader: FeedReader, options: FeedOptions) -> None:
        self.reader = reader
        self.options = options

    def text(self, locator: str | None, scope: object, where: str) -> str:
        if locator is None:
            return ""
        return clean_text(feed_text(self.reader.value(locator, scope), f"{where} ({locator})"))

    def record(self, *, source: str, registry_id: str) -> RegistryRecord:
        fields = self.options.fields
        found = {
            name: self.text(locator, self.reader.document, f"fields.{name}")
            for name, locator in fields.mapped().items()
        }
        missing = [name for name in self.options.required if not found.get(name)]
        if missing:
            shown = ", ".join(f"{name} ({fields.mapped()[name]})" for name in missing)
            raise ParseError(f"required field missing from the response: {shown}")
        sections_configured = any(getattr(self.options, section) is not None for section in SECTION_NAMES)
        if not any(found.values()) and not sections_configured:
            raise ParseError("none of the configured fields is in the response")

        people = self.people()
        legal_representative = (
            _named_person(found["legal_representative"], Role.LEGAL_REPRESENTATIVE)
            if "legal_representative" in found
            else _holder_of(Role.LEGAL_REPRESENTATIVE, people)
        )
        finance_head = (
            _named_person(found["finance_head"], Role.FINANCE_HEAD)
            if "finance_head" in found
            else _holder_of(Role.FINANCE_HEAD, people)
        )
        return RegistryRecord(
            source=source,
            registry_id=registry_id,
            name=found.get("name") or None,
            status=self.status(found.get("status", "")),
            registered_capital=self.capital(),
            address=found.get("address") or None,
            legal_representative=legal_representative,
            people=people,
            shareholders=self.shareholders(),
            controllers=None,
            finance_head=finance_head,
            change_log=self.change_log(),
        )

    def status(self, raw: str) -> Status | None:
        if not raw:
            return None
        codes = {text_key(text): code for text, code in self.options.status_map.items()}
        return Status(codes.get(text_key(raw), CompanyStatus.OTHER), raw)

    def capital(self) -> Money | None:
        locator = self.options.fields.registered_capital
        if locator is None:
            return None
        value = self.reader.value(locator, self.reader.document)
        return parse_amount(feed_text(value, f"fields.registered_capital ({locator})"))

    def rows(self, section: SectionMap, section_name: str) -> list[object]:
        rows = self.reader.rows(section, section_name)
        if rows is None:
            raise ParseError(f"response missing a required section: {section_name} (items = {section.items})")
        return rows

    def people(self) -> tuple[Person, ...] | None:
        section = self.options.people
        if section is None:
            return None
        people = []
        for index, row in enumerate(self.rows(section, "people")):
            where = f"people[{index}]"
            name = self.text(section.name, row, f"{where}.name")
            if not name:
                raise ParseError(f"{where} has no name ({section.name})")
            title = self.text(section.role, row, f"{where}.role")
            key = person_key(
                name,
                registry_id=self.text(section.key, row, f"{where}.key"),
                birth=self.text(section.birth, row, f"{where}.birth"),
            )
            people.append(Person(name=name, key=key, roles=roles_from_title(title), role_text=title))
        return tuple(people)

    def shareholders(self) -> tuple[Shareholder, ...] | None:
        section = self.options.shareholders
        if section is None:
            return None
        holders = []
        for index, row in enumerate(self.rows(section, "shareholders")):
            where = f"shareholders[{index}]"
            name = self.text(section.name, row, f"{where}.name")
            if not name:
                raise ParseError(f"{where} has no name ({section.name})")
            holders.append(
                Shareholder(
                    name=name,
                    key=person_key(name, registry_id=self.text(section.key, row, f"{where}.key")),
                    kind=holder_kind(name, self.text(section.kind, row, f"{where}.kind")),
                    stake=self.stake(section.stake, row, f"{where}.stake"),
                    subscribed=parse_amount(self.text(section.subscribed, row, f"{where}.subscribed")),
                )
            )
        return tuple(holders)

    def stake(self, locator: str | None, row: object, where: str) -> Stake | None:
        if locator is None:
            return None
        return parse_stake(_scalar(self.reader.value(locator, row), f"{where} ({locator})"))

    def change_log(self) -> tuple[ChangeLogEntry, ...] | None:
        section = self.options.change_log
        if section is None:
            return None
        entries = []
        for index, row in enumerate(self.rows(section, "change_log")):
            where = f"change_log[{index}]"
            item = self.text(section.item, row, f"{where}.item")
            when = None
            if section.date is not None:
                when = feed_date(self.reader.value(section.date, row), f"{where}.date ({section.date})")
            entries.append(
                ChangeLogEntry(
                    categories=classify_change_item(item),
                    item=item,
                    before=self.text(section.before, row, f"{where}.before"),
                    after=self.text(section.after, row, f"{where}.after"),
                    date=when,
                )
            )
        return tuple(entries)


def _named_person(name: str, role: Role) -> Person | None:
    """A person known only by name (the legal representative field); None when the field is empty."""
    if not name:
        return None
    return Person(name=name, key=person_key(name), roles=frozenset({role}))


def _holder_of(role: Role, people: tuple[Person, ...] | None) -> Person | None:
    """The first officer holding ``role``; None (unknown) when there is none or people are unknown."""
    return next((person for person in people or () if role in person.roles), None)


def assemble_record(
    reader: FeedReader, options: FeedOptions, *, source: str, registry_id: str
) -> RegistryRecord:
    """The record a configured mapping makes of one response, or a ParseError naming the key."""
    return _Assembler(reader, options).record(source=source, registry_id=registry_id)


# -- the shared source ----------------------------------------------------------------------------


class ConfiguredFeedSource(HttpSource):
    """A feed mapped by its options, so ``map_raw`` is an instance method, not a classmethod.

    Replay maps saved files with a class alone, so these sources are not replay formats.
    """

    settings: FeedOptions
    payload_name: ClassVar[str] = "response"
    accept: ClassVar[str] = "*/*"

    def normalise_id(self, registry_id: str) -> str:
        """Checked by ``id_kind`` when the bank set one; otherwise any non-empty identifier."""
        if self.settings.id_kind is None:
            return super().normalise_id(registry_id)
        return normaliser_for(self.settings.id_kind)(unicodedata.normalize("NFKC", registry_id))

    def headers(self) -> dict[str, str]:
        return {"Accept": self.accept, **self.settings.headers}

    @property
    def mapping_fingerprint(self) -> str:
        """The configured mapping maps the answers too; headers (secrets) play no part in it."""
        return f"{super().mapping_fingerprint}\0{self.settings.model_dump_json(exclude={'headers'})}"

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        context = {"source": self.name, "registry_id": registry_id}
        path = self.settings.url.format(id=quote(registry_id, safe=""))
        response = await self.http.get(path, registry_id=registry_id)
        raise_for_status(
            response, what=self.payload_name, context=context, not_found=f"no company {registry_id} at {path}"
        )
        return {self.payload_name: response.text}

    def payload(self, raw: Mapping[str, str]) -> str:
        """The one answer text a feed fetches."""
        if self.payload_name not in raw:
            raise ParseError(f"no {self.payload_name} in the raw responses")
        return raw[self.payload_name]


# -- JSON -----------------------------------------------------------------------------------------


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
