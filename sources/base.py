"""What every source provides: validated options, identifier checks, and ``fetch``."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from watcher import __version__
from watcher.errors import BlockedError, ParseError, SourceError
from watcher.record import RegistryRecord

# Key of the validation context that carries the config file's folder: options resolve relative
# paths against it, as operators expect of paths written in a config file.
BASE_DIR_CONTEXT = "base_dir"


class SourceOptions(BaseModel):
    """Options of a ``[sources.<name>]`` table. Unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    type: str


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful fetch: the mapped record and the raw responses behind it (kept for audit).

    ``payload_digest`` identifies the raw answer (see :func:`payload_digest`); None when the source
    cannot tell, and then the next check always maps its answer again.
    """

    record: RegistryRecord
    raw: dict[str, str] = field(default_factory=dict)
    payload_digest: str | None = None


@dataclass(frozen=True, slots=True)
class SamePayload:
    """The registry answered exactly what it answered before: not mapped again, so nothing changed."""

    payload_digest: str


def payload_digest(mapping: str, registry_id: str, raw: Mapping[str, str]) -> str:
    """A digest of a raw answer together with what maps it (``mapping``: the source's type, the
    software version and any configured mapping), so an upgrade or a new mapping maps again."""
    digest = hashlib.blake2b(digest_size=20)
    for part in (mapping, registry_id, *(text for item in sorted(raw.items()) for text in item)):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class Source(ABC):
    """A registry adapter. ``fetch`` returns a valid record or raises a ``SourceError`` subclass."""

    type_name: ClassVar[str] = ""
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, name: str, options: SourceOptions) -> None:
        self.name = name
        self.options = options

    # The registry's identifier scheme (a ``watcher.identifiers`` kind such as "no_orgnr"), checked
    # with its real algorithm; None accepts any non-empty identifier.
    id_kind: ClassVar[str | None] = None

    def normalise_id(self, registry_id: str) -> str:
        """The registry's canonical form of an identifier; ValueError saying why when it is invalid."""
        return canonical_id(type(self), registry_id)

    async def fetch(self, registry_id: str) -> Fetched:
        """Fetch and map one company. Raises a ``watcher.errors.SourceError`` subclass on failure."""
        fetched = await self.fetch_if_changed(registry_id, None)
        assert isinstance(fetched, Fetched)  # nothing to compare with: always mapped
        return fetched

    @abstractmethod
    async def fetch_if_changed(self, registry_id: str, last_payload: str | None) -> Fetched | SamePayload:
        """Like :meth:`fetch`, but an answer whose :func:`payload_digest` is ``last_payload`` is not
        mapped again: :class:`SamePayload` comes back instead.

        Nearly every check of a portfolio finds its registry answer as it was; skipping the mapping,
        normalising and hashing of those is most of an unchanged cycle's work after the network.
        """

    def unless_same(
        self,
        registry_id: str,
        raw: dict[str, str],
        last_payload: str | None,
        mapping: Callable[[], RegistryRecord],
    ) -> Fetched | SamePayload:
        """``raw`` mapped by ``mapping``, or :class:`SamePayload` when its digest is ``last_payload``."""
        digest = payload_digest(self.mapping_fingerprint, registry_id, raw)
        if digest == last_payload:
            return SamePayload(digest)
        return Fetched(record=mapping(), raw=raw, payload_digest=digest)

    @property
    def mapping_fingerprint(self) -> str:
        """What maps this source's answers besides the answer itself: part of every payload digest."""
        return f"{self.type_name}\0{__version__}"

    async def aclose(self) -> None:
        """Release connections. Sources without any keep the default."""


def canonical_id(source_class: type[Source], registry_id: str) -> str:
    """``registry_id`` checked and normalised as ``source_class``'s registry writes it.

    A function of the class, not an instance, so the replay source applies its format's check.
    """
    value = registry_id.strip()
    if not value:
        raise ValueError("registry_id is empty")
    if source_class.id_kind is None:
        return value
    from watcher.identifiers import normaliser_for

    return normaliser_for(source_class.id_kind)(value)


class MappedSource(Source):
    """A source whose responses are mapped by a pure classmethod, so replay can map saved files offline.

    Subclasses name the payloads they need in ``endpoints`` and implement :meth:`map_payloads`;
    :meth:`parse` wraps it so that nothing but a ``SourceError`` ever escapes a mapping.
    """

    endpoints: ClassVar[tuple[str, ...]] = ()
    # Charsets tried, strictly and in order, for an answer (or saved file) that declares none: UTF-8,
    # and GB18030 after it only for the Chinese vendors, whose pages come in it.
    undeclared_charsets: ClassVar[tuple[str, ...]] = ("utf-8",)
    # False for sources whose mapping needs their configured options (the json and html feeds):
    # the replay source maps saved files with the class alone, so it cannot offer them as formats.
    replayable: ClassVar[bool] = True

    @classmethod
    def parse(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        """Map raw response texts (keyed by endpoint name) to a record, or raise a ``SourceError``."""
        return guarded_parse(cls.map_payloads, raw, source=source, registry_id=registry_id)

    @classmethod
    @abstractmethod
    def map_payloads(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        """The mapping itself; :meth:`parse` turns anything else it raises into a ParseError."""


def guarded_parse(
    mapping: Callable[..., RegistryRecord], raw: Mapping[str, str], *, source: str, registry_id: str
) -> RegistryRecord:
    """Run ``mapping(raw, source=, registry_id=)`` so that nothing but a ``SourceError`` escapes it.

    Shared by :meth:`MappedSource.parse` and the sources whose mapping is an instance method.
    """
    try:
        return mapping(raw, source=source, registry_id=registry_id)
    except SourceError as error:
        error.source = error.source or source
        error.registry_id = error.registry_id or registry_id
        raise
    except RecursionError:
        raise ParseError("response nested too deeply", source=source, registry_id=registry_id) from None
    except Exception as error:  # the contract: a mapping bug or odd payload is a parse failure
        reason = f"unexpected response shape ({type(error).__name__}: {error})"
        raise ParseError(_shorten(reason), source=source, registry_id=registry_id) from error


# -- helpers shared by the mapped sources --------------------------------------------------------

_CHALLENGE_MARKERS = (
    "captcha",
    "challenge",
    "cf-chl",
    "cf_chl",
    "are you a robot",
    "are you human",
    "access denied",
    "验证码",
    "滑动验证",
    "安全验证",
    "人机验证",
    "访问过于频繁",
)


def looks_like_challenge(text: str) -> bool:
    """True for captcha / WAF / anti-bot pages, which must be reported as blocked, not as bad data."""
    head = text[:20_000].casefold()
    return any(marker in head for marker in _CHALLENGE_MARKERS)


def _reject_json_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str, *, what: str, source: str | None = None, registry_id: str | None = None) -> object:
    """Decode a JSON response, telling empty, HTML, challenge and truncated payloads apart.

    ``what`` names the payload in error messages (an endpoint name or a file name).
    """
    body = text.lstrip("\ufeff").strip()
    context = {"source": source, "registry_id": registry_id}
    if not body:
        raise ParseError(f"{what}: empty response", **context)
    if body[0] not in "{[":
        if looks_like_challenge(body):
            raise BlockedError(f"{what}: a captcha or challenge page came back instead of JSON", **context)
        if body.startswith("<"):
            raise ParseError(f"{what}: HTML where JSON was expected", **context)
    try:
        return json.loads(body, parse_constant=_reject_json_constant)
    except json.JSONDecodeError as error:
        opened = body[0] in "{["
        truncated = opened and (error.pos >= len(body) - 1 or body[-1] not in "}]")
        reason = "truncated JSON" if truncated else f"not JSON ({error.msg} at char {error.pos})"
        raise ParseError(f"{what}: {reason}", **context) from None
    except (ValueError, RecursionError) as error:
        raise ParseError(f"{what}: not JSON ({_shorten(str(error))})", **context) from None


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_object(value: object, what: str) -> dict[str, object]:
    """The JSON object at ``what``, or ParseError: registries change shapes without notice."""
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def as_list(value: object, what: str) -> list[object]:
    """The JSON array at ``what``, or ParseError."""
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def as_text(value: object, what: str) -> str:
    """A scalar as text ("" for null); ParseError for objects and arrays where text was expected."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ParseError(f"{what} is not text")


def as_date(value: object, what: str) -> date | None:
    """An ISO date (a time part is ignored); None when empty or not a date, as dates are only evidence."""
    text = as_text(value, what).strip()
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None
