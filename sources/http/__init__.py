"""What every HTTP source shares: :class:`HttpSource`, the base the registry adapters inherit.

The machinery lives in the modules of this package: :mod:`.options` (the options every HTTP source
accepts), :mod:`.policy` (retries, backoff, Retry-After, deadline, size cap, redirects, TLS, proxy),
:mod:`.limiter` (the rate limit), :mod:`.charsets` (body decoding), :mod:`.responses` (what a final
status means), :mod:`.timing` (sleep, clocks and jitter, injectable) and :mod:`.transport` (keep-alive
connections).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from sources.base import Fetched, MappedSource, SamePayload, SourceOptions
from sources.http.charsets import Charsets
from sources.http.options import HttpSourceOptions
from sources.http.policy import HttpPolicy
from sources.http.timing import Timing
from watcher.errors import NotFoundError, SourceError
from watcher.record import RegistryRecord


class HttpSource(MappedSource):
    """A mapped source fetched over HTTP: ``fetch_raw`` gets the payloads, ``parse`` maps them."""

    Options: ClassVar[type[SourceOptions]] = HttpSourceOptions
    # How error messages name the registry's identifier ("orgnr", "SIREN"...).
    identifier_name: ClassVar[str] = "identifier"
    settings: HttpSourceOptions

    def __init__(self, name: str, options: SourceOptions, *, timing: Timing = Timing()) -> None:
        super().__init__(name, options)
        self.settings = (
            options
            if isinstance(options, self.Options)
            else self.Options.model_validate(options.model_dump())
        )  # type: ignore[assignment]
        self.timing = timing
        self._http: HttpPolicy | None = None

    def charsets(self) -> Charsets:
        """How this source's answers are decoded: JSON, so UTF-8 whatever they declare."""
        return Charsets(json=True, undeclared=self.undeclared_charsets)

    def headers(self) -> dict[str, str]:
        """Headers of every request besides the policy's own (Accept, credentials); none by default."""
        return {}

    @property
    def http(self) -> HttpPolicy:
        """The source's client, made on first use with the source's headers, charsets and timing."""
        if self._http is None:
            self._http = HttpPolicy(
                self.name, self.settings, headers=self.headers(), charsets=self.charsets(), timing=self.timing
            )
        return self._http

    async def fetch_if_changed(self, registry_id: str, last_payload: str | None) -> Fetched | SamePayload:
        try:
            normalised = self.normalise_id(registry_id)
        except ValueError as error:
            raise NotFoundError(
                f"invalid {self.identifier_name}: {error}", source=self.name, registry_id=registry_id
            ) from None
        try:
            async with self.http.deadline():
                raw = await self.fetch_raw(normalised)
        except SourceError as error:
            error.registry_id = error.registry_id or normalised
            raise
        return self.unless_same(
            normalised, raw, last_payload, lambda: self.map_raw(raw, registry_id=normalised)
        )

    def map_raw(self, raw: Mapping[str, str], *, registry_id: str) -> RegistryRecord:
        """The record of fetched payloads; only a ``SourceError`` escapes."""
        return self.parse(raw, source=self.name, registry_id=registry_id)

    @abstractmethod
    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        """The raw payload texts, keyed by endpoint name, or a ``SourceError``."""

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
