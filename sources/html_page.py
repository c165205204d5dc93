"""Bank-internal HTML pages (a credit portal's company page), mapped by configured CSS selectors.

A bank configures ``type = "html"``, a URL template and a selector for each field; no code. A value
is the stripped text of the first element the selector matches, or one of its attributes with
``selector@attribute``. List sections select their rows with ``items`` (within the optional
``container``) and each row's values with selectors relative to the row; ``@attribute`` alone is an
attribute of the row itself. Selectors are compiled when the config is loaded (soupsieve).

Never point this at a registry that forbids scraping (gsxt): it is for pages the bank may read.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

import soupsieve
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag, XMLParsedAsHTMLWarning
from pydantic import AfterValidator

from sources import register
from sources.base import SourceOptions, looks_like_challenge
from sources.feeds import ConfiguredFeedSource
from sources.feeds.assembly import FeedReader, assemble_record
from sources.feeds.mapping import ChangeLogMap, FeedOptions, FieldsMap, PeopleMap, SectionMap, ShareholdersMap
from sources.http.charsets import Charsets
from watcher.errors import BlockedError, ParseError
from watcher.record import RegistryRecord

_ATTRIBUTE = re.compile(r"[A-Za-z_:][-A-Za-z0-9_:.]*")


def split_selector(text: str) -> tuple[str, str | None]:
    """``"a.holder@href"`` → ``("a.holder", "href")``; an ``@`` inside the CSS (``[href*='@']``) stays."""
    css, at, attribute = text.rpartition("@")
    if at and _ATTRIBUTE.fullmatch(attribute):
        return css.strip(), attribute
    return text.strip(), None


def _compiled(css: str) -> None:
    try:
        soupsieve.compile(css)
    except (soupsieve.SelectorSyntaxError, NotImplementedError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"invalid CSS selector {css!r}: {reason}") from None


def _value_selector(text: str) -> str:
    """A page-level value: a selector, optionally with ``@attribute``."""
    css, _ = split_selector(text)
    if not css:
        raise ValueError(f"{text!r} has no CSS selector before the @attribute")
    _compiled(css)
    return text


def _row_value_selector(text: str) -> str:
    """A value within a row: a relative selector, ``selector@attribute``, or ``@attribute`` of the row."""
    css, attribute = split_selector(text)
    if not css and attribute is None:
        raise ValueError("empty selector; write a selector, selector@attribute or @attribute")
    if css:
        _compiled(css)
    return text


def _element_selector(text: str) -> str:
    """Rows and containers are elements, so an ``@attribute`` makes no sense there."""
    css, attribute = split_selector(text)
    if attribute is not None:
        raise ValueError(f"{text!r} selects elements; remove @{attribute}")
    if not css:
        raise ValueError("empty selector")
    _compiled(css)
    return text


ValueSelector = Annotated[str, AfterValidator(_value_selector)]
RowValueSelector = Annotated[str, AfterValidator(_row_value_selector)]
ElementSelector = Annotated[str, AfterValidator(_element_selector)]


class HtmlFieldsMap(FieldsMap[ValueSelector]):
    """Single values located by CSS selector (``selector`` or ``selector@attribute``)."""


class HtmlPeopleMap(PeopleMap[RowValueSelector, ElementSelector]):
    """Officers: ``items`` selects the rows, the other selectors are relative to one row."""

    container: ElementSelector | None = None


class HtmlShareholdersMap(ShareholdersMap[RowValueSelector, ElementSelector]):
    """Shareholders: ``items`` selects the rows, the other selectors are relative to one row."""

    container: ElementSelector | None = None


class HtmlChangeLogMap(ChangeLogMap[RowValueSelector, ElementSelector]):
    """Change rows: ``items`` selects the rows, the other selectors are relative to one row."""

    container: ElementSelector | None = None


class HtmlPageOptions(FeedOptions):
    """``[sources.<name>]`` with ``type = "html"``: every locator is a CSS selector."""

    # Pages declaring no charset (neither Content-Type nor <meta charset>) are read as strict UTF-8;
    # "gb18030" also accepts GB18030/GBK pages that are not valid UTF-8, as older Chinese portals send.
    undeclared_charset: Literal["utf-8", "gb18030"] = "utf-8"
    fields: HtmlFieldsMap = HtmlFieldsMap()
    people: HtmlPeopleMap | None = None
    shareholders: HtmlShareholdersMap | None = None
    change_log: HtmlChangeLogMap | None = None


class HtmlReader(FeedReader):
    """Locates values in a parsed page by CSS selector."""

    document: Tag

    def __init__(self, document: Tag) -> None:
        self.document = document

    def value(self, locator: str, scope: object) -> object | None:
        assert isinstance(scope, Tag)
        css, attribute = split_selector(locator)
        element = scope.select_one(css) if css else scope
        if element is None:
            return None
        if attribute is None:
            return element.get_text(" ", strip=True)
        value = element.get(attribute)
        if isinstance(value, list):  # multi-valued attributes such as class
            return " ".join(value)
        return value

    def rows(self, section: SectionMap, section_name: str) -> list[object] | None:
        """Rows under ``container``. Without one, no row at all cannot be told from a missing table."""
        container = getattr(section, "container", None)
        scope = self.document
        if container is not None:
            found = self.document.select_one(container)
            if found is None:
                return None
            scope = found
        rows: list[object] = list(scope.select(section.items))
        if not rows and container is None:
            raise ParseError(
                f"response missing a required section: {section_name} (no element matches items = "
                f"{section.items}; set {section_name}.container to tell an empty list from a missing one)"
            )
        return rows


def parse_html(text: str) -> BeautifulSoup:
    """The page parsed with the standard library parser; bs4's hints about odd markup are not news."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(text, "html.parser")


@register("html")
class HtmlPageSource(ConfiguredFeedSource):
    """An HTML page per company (bank-internal portal), mapped by the CSS selectors in its config."""

    Options: ClassVar[type[SourceOptions]] = HtmlPageOptions
    settings: HtmlPageOptions
    endpoints: ClassVar[tuple[str, ...]] = ("page",)
    payload_name: ClassVar[str] = "page"
    accept: ClassVar[str] = "text/html,application/xhtml+xml"

    def charsets(self) -> Charsets:
        """Pages, not JSON: read in the charset they declare, else as ``undeclared_charset`` says."""
        undeclared = ("utf-8", "gb18030") if self.settings.undeclared_charset == "gb18030" else ("utf-8",)
        return Charsets(json=False, undeclared=undeclared)

    def map_raw(self, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        """A page the mapping cannot read is blocked when it looks like a captcha, else a parse error.

        The challenge test comes only after a failed mapping: its markers ("challenge", "access
        denied") also occur on good pages, and a company page whose fields all match is data.
        """
        text = self.payload(raw)
        if not text.strip():
            raise ParseError(f"{self.payload_name}: empty response")
        try:
            return assemble_record(
                HtmlReader(parse_html(text)), self.settings, source=source, registry_id=registry_id
            )
        except ParseError as error:
            if looks_like_challenge(text):
                raise BlockedError(f"{self.payload_name}: a captcha or challenge page came back") from error
            raise
