"""Record assembly: the canonical record a configured mapping makes of one answer.

A :class:`FeedReader` locates values (by JSON path or CSS selector); the assembler turns them into
people, shareholders and change-log rows, naming the configured key in every error.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from datetime import date

from sources.feeds.mapping import SECTION_NAMES, FeedOptions, SectionMap
from watcher.errors import ParseError
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
