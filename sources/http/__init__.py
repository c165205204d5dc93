"""What every HTTP source shares: :class:`HttpSource`, the base the registry adapters inherit.

The machinery lives in the modules of this package: :mod:`.options` (the options every HTTP source
accepts), :mod:`.policy` (retries, backoff, Retry-After, deadline, size cap, redirects, TLS, proxy),
:mod:`.limiter` (the rate limit), :mod:`.charsets` (body decoding), :mod:`.responses` (what a final
status means), :mod:`.timing` (sleep, clocks and jitter, injectable) and :mod:`.transport` (keep-alive
connections).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import ClassVar

from sources.base import Source, SourceOptions
from sources.http.charsets import Charsets
from sources.http.options import HttpSourceOptions
from sources.http.policy import HttpPolicy
from sources.http.timing import Timing


class HttpSource(Source):
    """A source fetched over HTTP through the shared policy (:attr:`http`), each fetch bounded by the
    source's ``deadline``. Adapters implement ``fetch_raw`` and ``map_raw`` (see :class:`Source`)."""

    Options: ClassVar[type[SourceOptions]] = HttpSourceOptions
    settings: HttpSourceOptions

    def __init__(self, name: str, options: SourceOptions, *, timing: Timing = Timing()) -> None:
        super().__init__(name, options)
        if not isinstance(options, self.Options):
            options = self.Options.model_validate(options.model_dump())
        assert isinstance(options, HttpSourceOptions)  # every HTTP source's Options extends them
        self.settings = options
        self.timing = timing
        self._http: HttpPolicy | None = None
        self._answered_taken = 0

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

    def deadline(self) -> AbstractAsyncContextManager[object]:
        return self.http.deadline()

    def take_billed_calls(self) -> int:
        """HTTP 200 answers since the last take, for a source whose vendor bills every call."""
        if not self.billed or self._http is None:
            return 0
        calls = self._http.answered - self._answered_taken
        self._answered_taken = self._http.answered
        return calls

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._answered_taken = 0
