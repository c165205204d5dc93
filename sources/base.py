"""The Source contract: a source fetches its raw answers and maps them to a record.

Adapters implement :meth:`Source.fetch_raw` and :meth:`Source.map_raw`; :meth:`Source.fetch` checks
the identifier, bounds the fetch by the source's deadline, skips an answer identical to the last one
(:func:`payload_digest`) and maps the rest so that only a ``SourceError`` escapes. Below the contract,
the helpers the mappings share to read JSON answers.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, ClassVar, Protocol, cast, overload

from pydantic import BaseModel, ConfigDict

from watcher import __version__
from watcher.connections import TieScope
from watcher.errors import BlockedError, NotFoundError, ParseError, SourceError
from watcher.record import RegistryRecord, Signal
from watcher.vocabulary import Language

if TYPE_CHECKING:
    from sources.change_feed import ChangeFeed

log = logging.getLogger("watcher.sources")

# Key of the validation context that carries the config file's folder: options resolve relative
# paths against it, as operators expect of paths written in a config file.
BASE_DIR_CONTEXT = "base_dir"


class SourceOptions(BaseModel):
    """Options of a ``[sources.<name>]`` table. Unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    type: str
    # How people read this source's name (the console's source columns) instead of the config key;
    # None: the registry's own name (``Source.display_names``), or the key for the json/html feeds.
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful fetch: the mapped record and the raw responses behind it (kept for audit).

    ``payload_digest`` identifies the raw answer (see :func:`payload_digest`); None when the source
    cannot tell, and then the next check always maps its answer again. ``signals`` are the signals
    this fetch covered: the ones asked for, less those the account turned out not to have.
    """

    record: RegistryRecord
    raw: dict[str, str] = field(default_factory=dict)
    payload_digest: str | None = None
    signals: frozenset[Signal] = frozenset({Signal.REGISTRY})


@dataclass(frozen=True, slots=True)
class SamePayload:
    """The registry answered exactly what it answered before: not mapped again, so nothing changed."""

    payload_digest: str
    signals: frozenset[Signal] = frozenset({Signal.REGISTRY})


def payload_digest(mapping: str, registry_id: str, raw: Mapping[str, str]) -> str:
    """A digest of a raw answer together with what maps it (``mapping``: the source's type, the
    software version and any configured mapping), so an upgrade or a new mapping maps again."""
    digest = hashlib.blake2b(digest_size=20)
    for part in (mapping, registry_id, *(text for item in sorted(raw.items()) for text in item)):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class RawMapping(Protocol):
    """A source's mapping: raw answer texts, keyed by endpoint name, to the record of ``registry_id``."""

    def __call__(self, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord: ...


class Source(ABC):
    """A registry adapter: :meth:`fetch_raw` gets the registry's answers, :meth:`map_raw` makes the
    record of them. Callers use :meth:`fetch`, which does everything else, in this one place.

    A registry's answers are mapped by the answers alone, so adapters write ``map_raw`` as a
    classmethod and replay maps saved answers with the class (:func:`class_mapping`); the json and
    html feeds map by their configured fields, so theirs is an instance method.
    """

    type_name: ClassVar[str] = ""
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    # The registry's identifier scheme (a ``watcher.identifiers`` kind such as "no_orgnr"), checked
    # with its real algorithm; None accepts any non-empty identifier.
    id_kind: ClassVar[str | None] = None
    # How error messages name the registry's identifier ("orgnr", "SIREN"...).
    identifier_name: ClassVar[str] = "identifier"
    # The answers one check fetches, by name: the keys of ``fetch_raw``'s result, and the saved
    # files replay reads.
    endpoints: ClassVar[tuple[str, ...]] = ()
    # Answers a check has only when their signal was fetched (the Chinese vendors' risk lists):
    # replay reads them when saved, and mapping leaves their sections unknown when absent.
    optional_endpoints: ClassVar[tuple[str, ...]] = ()
    # Charsets tried, strictly and in order, for an answer (or saved file) that declares none: UTF-8,
    # and GB18030 after it only for the Chinese vendors, whose pages come in it.
    undeclared_charsets: ClassVar[tuple[str, ...]] = ("utf-8",)
    # What the source can fetch (:class:`~watcher.record.Signal`); every source has the registry card.
    supported_signals: ClassVar[frozenset[Signal]] = frozenset({Signal.REGISTRY})
    # Whether the vendor bills every call (``watcher status`` counts them, see :attr:`billed_calls`).
    billed: ClassVar[bool] = False
    # The registry's name as people read it, per language (English first: the fallback); empty for
    # sources that are not one registry (the json and html feeds), named by their config key.
    display_names: ClassVar[Mapping[Language, str]] = {}
    # Whose registration numbers the registry's companies carry ("no", "gb", "fr", "cn"), for the
    # portfolio index (``watcher.connections``); None for the json and html feeds, which are no
    # registry: their ids mean something only within their own config key.
    jurisdiction: ClassVar[str | None] = None

    @classmethod
    def tie_scope(cls, name: str, options: SourceOptions) -> TieScope:
        """Where the ids of ``[sources.NAME]`` (with ``options``) mean something in the portfolio
        index: a registry's jurisdiction and its type (a Qichacha KeyNo is the same person for two
        Qichacha accounts); a feed's own config key for both."""
        if cls.jurisdiction is None:
            return TieScope(jurisdiction=name, vendor=name)
        return TieScope(jurisdiction=cls.jurisdiction, vendor=cls.type_name)

    @classmethod
    def display_name(cls, options: SourceOptions, language: Language) -> str | None:
        """What people call a ``[sources.NAME]`` table with ``options`` in ``language``: the
        configured ``display_name``, else the registry's name; None when neither is known."""
        if options.display_name:
            return options.display_name
        return cls.display_names.get(language) or next(iter(cls.display_names.values()), None)

    def __init__(self, name: str, options: SourceOptions) -> None:
        self.name = name
        self.options = options
        # Signals the account cannot fetch (not bought, no permission), with the vendor's words:
        # skipped until the pipeline forgets them (it retries them after a while).
        self.unavailable_signals: dict[Signal, str] = {}
        # Requests the vendor answered since the pipeline last took the count (billed sources).
        self.billed_calls = 0

    @property
    def enabled_signals(self) -> frozenset[Signal]:
        """The signals configured (``[sources.NAME] signals``; all the source supports by default),
        always with the registry card."""
        configured = getattr(self.options, "signals", None)
        chosen = self.supported_signals if configured is None else frozenset(configured)
        return (chosen & self.supported_signals) | {Signal.REGISTRY}

    def mark_unavailable(self, signal: Signal, reason: str) -> None:
        """The vendor says the account may not fetch ``signal``: one warning, then it is skipped and
        the rest of the source keeps working."""
        if signal not in self.unavailable_signals:
            log.warning(
                "%s cannot fetch signal %r: %s; the signal is skipped, the rest of the source keeps working",
                self.name,
                signal.value,
                _shorten(reason),
            )
        self.unavailable_signals[signal] = reason

    def change_feeds(self) -> tuple[ChangeFeed, ...]:
        """The registry's change feeds this source follows (``[sources.NAME] feed``); none by default."""
        return ()

    def take_billed_calls(self) -> int:
        """The billed calls counted since the last take (the pipeline stores them per hour)."""
        calls, self.billed_calls = self.billed_calls, 0
        return calls

    def normalise_id(self, registry_id: str) -> str:
        """The registry's canonical form of an identifier; ValueError saying why when it is invalid."""
        return canonical_id(type(self), registry_id)

    @overload
    async def fetch(self, registry_id: str, *, signals: frozenset[Signal] | None = None) -> Fetched: ...

    @overload
    async def fetch(
        self, registry_id: str, last_payload: str | None, *, signals: frozenset[Signal] | None = None
    ) -> Fetched | SamePayload: ...

    async def fetch(
        self, registry_id: str, last_payload: str | None = None, *, signals: frozenset[Signal] | None = None
    ) -> Fetched | SamePayload:
        """The record of one company, or :class:`SamePayload` when the registry's answer has the
        :func:`payload_digest` ``last_payload``: then it is not mapped again.

        ``signals`` are the signals due (None: every enabled one); the registry card is always
        fetched, and the sections of signals not fetched stay unknown (None) in the record.

        Nearly every check of a portfolio finds its registry answer as it was; skipping the mapping,
        normalising and hashing of those is most of an unchanged cycle's work after the network.
        Only a ``SourceError`` subclass escapes (an invalid identifier is a NotFoundError).
        """
        try:
            normalised = self.normalise_id(registry_id)
        except ValueError as error:
            reason = f"invalid {self.identifier_name}: {error}"
            raise NotFoundError(reason, source=self.name, registry_id=registry_id) from None
        wanted = self.enabled_signals if signals is None else (signals & self.enabled_signals)
        wanted = (wanted | {Signal.REGISTRY}) - set(self.unavailable_signals)
        try:
            async with self.deadline():
                raw = await self.fetch_signals(normalised, wanted)
        except SourceError as error:
            _attribute(error, self.name, normalised)
            raise
        covered = self.signals_covered(wanted, raw)
        digest = payload_digest(self.mapping_fingerprint, normalised, raw)
        if digest == last_payload:
            return SamePayload(digest, signals=covered)
        record = self.configured_record(
            record_of(self.map_raw, raw, source=self.name, registry_id=normalised), raw
        )
        return Fetched(record=record, raw=raw, payload_digest=digest, signals=covered)

    @abstractmethod
    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        """The registry's answer texts for a normalised identifier, keyed by endpoint name, or a
        ``SourceError`` when there is no answer to map (not found, refused, rate limited…)."""

    async def fetch_signals(self, registry_id: str, signals: frozenset[Signal]) -> dict[str, str]:
        """The answers for ``signals`` (always including the registry card). Sources with a single
        signal keep this default; the Chinese vendors fetch each signal's endpoints, leave out the
        endpoints of a signal the account cannot fetch (:meth:`mark_unavailable`), and map only the
        answers present, so a signal not fetched leaves its sections unknown."""
        return await self.fetch_raw(registry_id)

    def signals_covered(self, wanted: frozenset[Signal], raw: Mapping[str, str]) -> frozenset[Signal]:
        """The signals a fetch of ``wanted`` covered: those asked for, less those found unavailable."""
        return wanted - set(self.unavailable_signals)

    def configured_record(self, record: RegistryRecord, raw: Mapping[str, str]) -> RegistryRecord:
        """The mapped record as this source's configuration reads it (a vendor may leave a section
        unknown that its answers alone would fill); the mapping itself stays a function of the answers."""
        return record

    @abstractmethod
    def map_raw(self, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        """The record of ``raw`` (answer texts keyed by endpoint name), with no I/O: the same answers
        always make the same record. A ``SourceError`` for answers that are not data; anything else
        it raises is a parse failure (see :func:`record_of`)."""

    def deadline(self) -> AbstractAsyncContextManager[object]:
        """What bounds one fetch (its requests, retries and waits); sources without a network have none."""
        return nullcontext()

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


def class_mapping(source_class: type[Source]) -> RawMapping | None:
    """``source_class``'s mapping when the class alone maps its answers (``map_raw`` is a classmethod),
    as replay needs; None when mapping takes the configured options (the json and html feeds)."""
    if isinstance(inspect.getattr_static(source_class, "map_raw"), classmethod):
        return cast(RawMapping, source_class.map_raw)
    return None


def record_of(
    map_raw: RawMapping, raw: Mapping[str, str], *, source: str, registry_id: str
) -> RegistryRecord:
    """``map_raw(raw, source=, registry_id=)``, so that nothing but a ``SourceError`` escapes a mapping:
    a mapping bug or an answer of an odd shape is a parse failure of that check, never a crash."""
    try:
        return map_raw(raw, source=source, registry_id=registry_id)
    except SourceError as error:
        _attribute(error, source, registry_id)
        raise
    except RecursionError:
        raise ParseError("response nested too deeply", source=source, registry_id=registry_id) from None
    except Exception as error:  # the contract: a mapping bug or odd payload is a parse failure
        reason = f"unexpected response shape ({type(error).__name__}: {error})"
        raise ParseError(_shorten(reason), source=source, registry_id=registry_id) from error


def _attribute(error: SourceError, source: str, registry_id: str) -> None:
    """Name the source and the company in ``error`` when it does not yet."""
    error.source = error.source or source
    error.registry_id = error.registry_id or registry_id


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
