"""The mapping a bank configures for a feed: where each field and list section is, and the feed's options.

Generic in how a value is located (a JSON path, a CSS selector), so :mod:`sources.json_feed` and
:mod:`sources.html_page` type the same tables with their own locators. Unknown keys are errors.
"""

from __future__ import annotations

import re
import string
from typing import Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sources.http.options import HttpSourceOptions
from watcher.identifiers import normaliser_for
from watcher.normalize import text_key
from watcher.record import CompanyStatus

FieldName = Literal["name", "status", "registered_capital", "address", "legal_representative", "finance_head"]
SECTION_NAMES = ("people", "shareholders", "change_log")

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
