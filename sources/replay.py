"""Offline source: saved registry responses in a folder, mapped by a real source's own parser.

Layout: ``<folder>/<registry_id>/<endpoint>.json`` (or ``.html``) for each endpoint of the format's
source class. Used by ``watcher demo``, tests, and manual uploads of responses fetched elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import ValidationInfo, field_validator

from sources import available_types, register, source_class
from sources.base import (
    BASE_DIR_CONTEXT,
    RawMapping,
    Source,
    SourceOptions,
    canonical_id,
    class_mapping,
)
from sources.http.charsets import Charsets, UndecodableBody, decode_body
from watcher.connections import TieScope
from watcher.errors import NotFoundError, ParseError
from watcher.record import RegistryRecord
from watcher.vocabulary import Language

_EXTENSIONS = (".json", ".html")
_REPLAYED = {Language.ZH_CN: "{name}（回放）", Language.EN: "{name} (replay)"}


class ReplayOptions(SourceOptions):
    folder: str
    format: str

    @field_validator("folder")
    @classmethod
    def _relative_to_config(cls, folder: str, info: ValidationInfo) -> str:
        base_dir = (info.context or {}).get(BASE_DIR_CONTEXT)
        path = Path(folder).expanduser()
        return str(Path(base_dir) / path) if base_dir is not None and not path.is_absolute() else str(path)


def mapped_source_types() -> list[str]:
    """Type names whose saved answers can be replayed: sources whose class alone maps them."""
    known = []
    for type_name in available_types():
        try:
            cls = source_class(type_name)
        except Exception:  # a sibling module that fails to import is simply not listed here
            continue
        if class_mapping(cls) is not None:
            known.append(type_name)
    return known


@register("replay")
class ReplaySource(Source):
    """Reads each company's saved responses and maps them as the ``format`` source would."""

    Options: ClassVar[type[SourceOptions]] = ReplayOptions

    @classmethod
    def display_name(cls, options: SourceOptions, language: Language) -> str | None:
        """The replayed registry's name, marked as a replay: saved answers are not the registry live."""
        if options.display_name or not isinstance(options, ReplayOptions):
            return options.display_name
        try:
            replayed = source_class(options.format)
        except KeyError:
            return None
        name = replayed.display_name(SourceOptions(type=options.format), language)
        return _REPLAYED[language].format(name=name) if name else None

    @classmethod
    def tie_scope(cls, name: str, options: SourceOptions) -> TieScope:
        """Saved answers are the replayed registry's: its jurisdiction and its vendor's ids."""
        settings = (
            options
            if isinstance(options, ReplayOptions)
            else ReplayOptions.model_validate(options.model_dump())
        )
        replayed, _mapping = _format(settings.format)
        return replayed.tie_scope(name, SourceOptions(type=settings.format))

    def __init__(self, name: str, options: SourceOptions) -> None:
        super().__init__(name, options)
        self.settings = (
            options
            if isinstance(options, ReplayOptions)
            else ReplayOptions.model_validate(options.model_dump())
        )
        self.format, self._format_mapping = _format(self.settings.format)

    def normalise_id(self, registry_id: str) -> str:
        """Checked as its format's registry checks ids; a plain folder name that stays inside the folder."""
        value = canonical_id(self.format, registry_id)
        if value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
            raise ValueError(f"registry_id {registry_id!r} is not a plain folder name")
        return value

    @property
    def mapping_fingerprint(self) -> str:
        return f"{super().mapping_fingerprint}\0{self.settings.format}"

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        context = {"source": self.name, "registry_id": registry_id}
        company_folder = Path(self.settings.folder) / registry_id
        if not company_folder.is_dir():
            raise NotFoundError(f"no saved responses in {company_folder}", **context)
        charsets = self.format.undeclared_charsets
        saved = {
            endpoint: _read_payload(company_folder, endpoint, charsets, context)
            for endpoint in self.format.endpoints
        }
        for endpoint in self.format.optional_endpoints:
            if any((company_folder / f"{endpoint}{extension}").is_file() for extension in _EXTENSIONS):
                saved[endpoint] = _read_payload(company_folder, endpoint, charsets, context)
        return saved

    def map_raw(self, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        return self._format_mapping(raw, source=source, registry_id=registry_id)


def _format(type_name: str) -> tuple[type[Source], RawMapping]:
    """The source class a replay ``format`` names, and its mapping; ValueError listing the formats."""
    try:
        cls = source_class(type_name)
    except KeyError:
        cls = None
    mapping = None if cls is None else class_mapping(cls)
    if cls is None or mapping is None:
        known = ", ".join(mapped_source_types())
        raise ValueError(f"unknown replay format {type_name!r} (known formats: {known})")
    return cls, mapping


def _read_payload(
    company_folder: Path, endpoint: str, charsets: tuple[str, ...], context: dict[str, str]
) -> str:
    """The saved response text, decoded strictly as the HTTP policy decodes an answer that declares no
    charset: a byte-order mark or an HTML ``<meta charset>``, else ``charsets`` in order (UTF-8, and
    GB18030 after it for the Chinese vendors' formats). Never garbled: a file valid in none fails."""
    candidates = [company_folder / f"{endpoint}{extension}" for extension in _EXTENSIONS]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        raise ParseError(f"missing saved response {candidates[0]} (or .html)", **context)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ParseError(f"cannot read {path}: {error.strerror or error}", **context) from None
    try:
        return decode_body(data, None, Charsets(undeclared=charsets))
    except UndecodableBody as error:
        raise ParseError(f"{path}: {error}", **context) from None
