"""One hardened HTTP policy shared by every HTTP source.

Per-source rate limit that saturates but never exceeds the configured rate; retries with
exponential backoff and full jitter on transient failures, honouring ``Retry-After`` up to the
source's ``max_pause``; a deadline for the whole check; a response size cap; strict decoding (a body
must be valid in the charset it declares, JSON is always UTF-8, see :func:`decode_body`); redirects
followed only within the same host; TLS verification always on. Every failure ends as a
``SourceError`` subclass, never as a response the mapping could mistake for data.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import codecs
import contextvars
import json
import logging
import random
import re
import ssl
import time
import urllib.request
import zlib
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import httpx
from pydantic import Field, ValidationInfo, field_validator

from sources.base import (
    BASE_DIR_CONTEXT,
    Fetched,
    MappedSource,
    SamePayload,
    SourceOptions,
    load_json,
    looks_like_challenge,
    retry_after_seconds,
)
from sources.transport import KeepAliveTransport
from watcher import __version__
from watcher.errors import (
    AuthError,
    BlockedError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    SourceError,
    TransientError,
)
from watcher.record import RegistryRecord
from watcher.units import Duration, Rate, RateSpec

USER_AGENT = f"borrower-watcher/{__version__} (post-loan monitoring)"
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_CONNECTIONS = 32  # per source

log = logging.getLogger("watcher.sources")

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Timing:
    """Where the policy's waits, clocks and chance come from: the real ones, unless a test passes fakes.

    ``clock`` (monotonic seconds) times the rate limit and the deadline; ``wall`` (Unix seconds) reads
    Retry-After dates and stamps signed requests; ``jitter(low, high)`` picks each backoff wait, which
    doubles from ``backoff_base`` per attempt up to ``backoff_cap`` seconds.
    """

    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    jitter: Callable[[float, float], float] = random.uniform
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many borrowers apart."""
        return self.jitter(0, min(self.backoff_cap, self.backoff_base * 2**attempt))


class HttpSourceOptions(SourceOptions):
    """Options every HTTP source accepts."""

    base_url: str
    rate: RateSpec = "5/s"
    timeout: Duration = "20s"
    deadline: Duration = "2m"
    retries: int = Field(default=3, ge=0, le=10)
    max_response_bytes: int = Field(default=10_000_000, ge=1_000)
    ca_bundle: str | None = None
    proxy: str | None = None
    # The longest pause a Retry-After may impose on the whole source; longer requests are capped.
    max_pause: Duration = "15m"

    @field_validator("timeout", "deadline", "max_pause")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _readable_ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Resolve against the config file's folder and load it now: a bad bundle is a config error,
        not a crash on the first check."""
        if value is None:
            return None
        path = Path(value).expanduser()
        base_dir = (info.context or {}).get(BASE_DIR_CONTEXT)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        try:
            ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot load CA bundle {path}: {error}") from None
        return str(path)


# -- rate limiting --------------------------------------------------------------------------------


class SlidingWindowLimiter:
    """At most ``count`` requests in any window of ``per``, evenly spaced: saturates, never exceeds.

    A token bucket lets a full bucket burst on top of the steady rate, which a registry counting
    requests per second answers with 429. Here the n-th request waits until the (n - count)-th is
    ``per`` old, so the limit is reached (saturated) and never exceeded; and requests are paced
    ``per / count`` apart, so a window fills one request at a time rather than in a burst (kinder to
    the server, and no queue at its door to delay the arrivals it counts). ``margin`` widens the
    window slightly to absorb network jitter between our clock and the server's.
    """

    def __init__(
        self,
        rate: Rate,
        *,
        margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.count = rate.count
        self.window = rate.per.total_seconds() * (1 + margin)
        self.spacing = self.window / self.count
        self._sent: list[float] = []  # ascending
        # Where the pace put the latest slot. Spacing counts from there rather than from when the
        # request went out (see ``confirm``) or when the sleep before it ended (a little late,
        # always), so neither the client's overhead nor timer lateness slows the pace down. The
        # count per window, which is what the server checks, is always kept on actual times.
        self._paced = float("-inf")
        self._lock = asyncio.Lock()
        self._clock = clock
        self._sleep = sleep
        # The end of the last completed wait. A sleep may return a hair before its target (the
        # event loop's clock resolution) or at once (a test's fake sleep); time never runs behind it.
        self._reached = float("-inf")
        self._pause = (float("-inf"), float("-inf"))  # (began, ends) of the latest pause

    def _now(self) -> float:
        return max(self._clock(), self._reached)

    def _expire(self, now: float) -> None:
        expired = 0
        while expired < len(self._sent) and self._sent[expired] + self.window <= now:
            expired += 1
        del self._sent[:expired]

    def delay(self) -> float:
        """Seconds until the next request may go (0 when it may go now)."""
        now = self._now()
        self._expire(now)
        wait = self._paced + self.spacing - now
        if len(self._sent) >= self.count:
            # Usually ``count`` slots are held at most; a request sent after its slot lapsed holds one more.
            wait = max(wait, self._sent[len(self._sent) - self.count] + self.window - now)
        return max(0.0, wait)

    async def acquire(self, before_wait: Callable[[float], None] | None = None) -> float:
        """Wait for a slot and take it; returns the slot's time, for :meth:`confirm`.

        Waiters are served one at a time, in arrival order. ``before_wait`` sees every wait before it
        starts and may raise to give up instead (a pause that began while this request queued).
        """
        async with self._lock:
            while True:
                wait = self.delay()
                if wait <= 0:
                    stamp = self._now()
                    bisect.insort(self._sent, stamp)
                    due = self._paced + self.spacing
                    self._paced = due if stamp - due < self.spacing else stamp
                    return stamp
                if before_wait is not None:
                    before_wait(wait)
                target = self._now() + wait
                await self._sleep(wait)
                self._reached = max(self._reached, target)

    async def confirm(self, slot: float, before_wait: Callable[[float], None] | None = None) -> float:
        """The request of ``slot`` is being sent only now: count it from now. Returns its slot.

        Opening a connection (TCP, TLS) or waiting for a free one delays a request past its slot's
        time; counted from the slot, the next window would open early and the server would see more
        than ``count`` requests in one of its windows. A slot still within its window moves to now
        (decisions taken meanwhile saw it as taken either way); a slot that lapsed while the request
        waited may already have let another request go, so the request takes a fresh one, as it does
        when a pause began after its slot. Slots only ever move later, so this never loosens the limit.
        ``before_wait`` is as for :meth:`acquire`.
        """
        now = self._now()
        if now <= slot:
            return slot
        began, ends = self._pause
        if slot + self.window <= now or slot <= began <= now < ends:
            return await self.acquire(before_wait)
        index = bisect.bisect_left(self._sent, slot)
        if index < len(self._sent) and self._sent[index] == slot:
            del self._sent[index]
        bisect.insort(self._sent, now)
        return now

    def paused_for(self) -> float:
        """Seconds left of the latest pause (0 when none is running)."""
        return max(0.0, self._pause[1] - self._now())

    def pause(self, seconds: float) -> None:
        """After a 429 or a Retry-After: no request for ``seconds``. Never loosens the window: a short
        pause after a burst still leaves the burst's slots taken."""
        now = self._now()
        self._expire(now)
        self._pause = (now, max(self._pause[1], now + seconds))
        until = now + seconds - self.window
        held = [*self._sent, *[until] * (self.count - len(self._sent))]
        self._sent = sorted(max(sent, until) for sent in held)


# -- decoding -------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-]+)""", re.IGNORECASE)
_DECLARED_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^;\"'\s]+)", re.IGNORECASE)
_JSON_MEDIA_TYPE = re.compile(r"(?:application|text)/(?:[\w.-]+\+)?json", re.IGNORECASE)
_JSON_START = re.compile(rb"[ \t\r\n]*[\[{]")
# Chinese pages declare gb2312 or gbk and use characters only GB18030 has; it is a superset of both,
# so reading them as GB18030 is reading them in the charset they declare, not guessing another one.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030"}
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True, slots=True)
class Charsets:
    """How one source's answers are decoded (see :func:`decode_body`).

    ``json``: the source answers JSON, so a body that starts like JSON is JSON whatever its
    Content-Type says. ``undeclared``: the charsets tried, strictly and in this order, for a body that
    declares none: UTF-8 only, except for sources whose registries are known to send GB18030.
    """

    json: bool = False
    undeclared: tuple[str, ...] = ("utf-8",)

    def __post_init__(self) -> None:
        if not self.undeclared:
            raise ValueError("at least one charset for bodies that declare none")


class UndecodableBody(ValueError):
    """A body that is not valid text in the charset it declares (or, declaring none, in any allowed one).

    ``preview`` is the body with the bad bytes replaced: for recognising challenge pages and quoting
    error messages, never for data.
    """

    def __init__(self, reason: str, preview: str) -> None:
        super().__init__(reason)
        self.preview = preview


def _codec(name: str) -> str | None:
    name = _CHARSET_ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _bad_byte(content: bytes, offset: int) -> str:
    return f"byte 0x{content[offset : offset + 1].hex()} at offset {offset}"


def _strict(content: bytes, encoding: str, why: str, *, skip: int = 0) -> str:
    """``content[skip:]`` decoded as ``encoding`` without any replacement, or UndecodableBody."""
    try:
        return content[skip:].decode(encoding)
    except UnicodeDecodeError as error:
        reason = f"body is not valid {encoding} ({why}): {_bad_byte(content, skip + error.start)}"
        raise UndecodableBody(reason, content[skip:].decode(encoding, errors="replace")) from None
    except LookupError:  # a codec that is no text encoding (base64, zlib…)
        raise UndecodableBody(
            f"body declares {encoding!r}, which is not a text charset ({why})",
            content.decode("utf-8", errors="replace"),
        ) from None


def decode_body(content: bytes, content_type: str | None, charsets: Charsets = Charsets()) -> str:
    """The text of a response body, decoded strictly; UndecodableBody when it is not valid text.

    Never guesses a charset other than the one a body declares: a wrong guess turns "Søren Ødegård"
    into "S鴕en脴deg氓rd", and every name looks changed.

    - JSON (a JSON Content-Type, or a JSON source's body starting with ``{`` or ``[``) is UTF-8 by
      RFC 8259, whatever it declares (every byte string is valid Latin-1, so a label proves nothing);
      a UTF-8 byte-order mark is allowed.
    - Otherwise a byte-order mark, else the Content-Type's charset, else an HTML ``<meta charset>``
      says which charset the body is in, and it must be valid in that one (gb2312 and gbk are read as
      their superset GB18030). An unknown charset is a failure too.
    - A body that declares nothing is tried in ``charsets.undeclared``, strictly, in order.
    """
    media_type = (content_type or "").split(";", 1)[0].strip()
    skip = len(codecs.BOM_UTF8) if content.startswith(codecs.BOM_UTF8) else 0
    if _JSON_MEDIA_TYPE.fullmatch(media_type) or (charsets.json and _JSON_START.match(content, skip)):
        return _strict(content, "utf-8", "JSON is always UTF-8", skip=skip)
    for bom, encoding in _BYTE_ORDER_MARKS:
        if content.startswith(bom):
            return _strict(content, encoding, "as its byte-order mark says", skip=len(bom))
    declared = _DECLARED_CHARSET.search(content_type or "")
    label, where = (declared.group(1), "its Content-Type") if declared else (None, "")
    if label is None:
        meta = _META_CHARSET.search(content[:4096])
        label, where = (meta.group(1).decode("ascii"), "its <meta charset>") if meta else (None, "")
    if label is not None:
        encoding = _codec(label)
        if encoding is None:
            shown = label if len(label) <= 40 else label[:39] + "…"
            reason = f"body declares an unknown charset {shown!r} in {where}"
            raise UndecodableBody(reason, content.decode("utf-8", errors="replace"))
        return _strict(content, encoding, f"as {where} declares")
    failures = []
    for encoding in charsets.undeclared:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError as error:
            failures.append(f"{encoding}: {_bad_byte(content, error.start)}")
    tried = " nor ".join(charsets.undeclared)
    reason = f"body declares no charset and is not valid {tried} ({'; '.join(failures)})"
    raise UndecodableBody(reason, content.decode("utf-8", errors="replace"))


def _environment_proxies() -> bool:
    """Whether HTTP_PROXY, HTTPS_PROXY or ALL_PROXY is set (httpx honours them)."""
    return any(urllib.request.getproxies().get(scheme) for scheme in ("http", "https", "all"))


# -- the policy -----------------------------------------------------------------------------------


class HttpResponse:
    """A response that passed the policy: complete, within the size cap, decoded.

    ``text`` is the body for mapping: it raises a ParseError when the body is not valid in its charset
    (``charset_error``), so such a body can never become data. ``preview`` is the same text with bad
    bytes replaced, for diagnostics only (challenge pages, error messages of failed requests).
    """

    __slots__ = ("status", "url", "headers", "preview", "charset_error", "_context")

    def __init__(
        self,
        status: int,
        url: str,
        headers: httpx.Headers,
        text: str,
        *,
        charset_error: str | None = None,
        context: Mapping[str, str | None] | None = None,
    ) -> None:
        self.status = status
        self.url = url
        self.headers = headers
        self.preview = text
        self.charset_error = charset_error
        self._context = dict(context or {})

    @property
    def text(self) -> str:
        if self.charset_error is not None:
            raise ParseError(self.charset_error, **self._context)
        return self.preview

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, url={self.url!r})"


@dataclass(frozen=True, slots=True)
class _Deadline:
    end: float
    budget: float


_deadline: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "watcher_http_deadline", default=None
)


@dataclass(frozen=True, slots=True)
class _Failure:
    """An attempt that failed in a way worth retrying; ``pause`` is the (capped) Retry-After it asked for."""

    error: SourceError
    pause: float | None = None


def _with_note(error: SourceError, note: str) -> SourceError:
    """The same kind of error with a note appended, keeping ``retry_after`` for rate limits."""
    context = {"source": error.source, "registry_id": error.registry_id}
    if isinstance(error, RateLimitedError):
        return RateLimitedError(f"{error}{note}", retry_after=error.retry_after, **context)
    return type(error)(f"{error}{note}", **context)


class HttpPolicy:
    """The HTTP client of one source: connection reuse, rate limit, retries, deadline, caps."""

    def __init__(
        self,
        source: str,
        options: HttpSourceOptions,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        charsets: Charsets = Charsets(),
        timing: Timing = Timing(),
    ) -> None:
        self.source = source
        self.options = options
        self.charsets = charsets
        self.timing = timing
        self.limiter = SlidingWindowLimiter(options.rate, clock=timing.clock, sleep=timing.sleep)
        self._pause_cap_logged = False
        fixed = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "User-Agent": USER_AGENT}
        self.headers = httpx.Headers({**fixed, **(headers or {})})
        base = httpx.URL(options.base_url)
        self.base_url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + b"/")
        self._base_text = str(self.base_url)
        bank_ca = ssl.create_default_context(cafile=options.ca_bundle) if options.ca_bundle else None
        # Requests go straight to a transport: httpx's client machinery (URL and header merging,
        # auth and redirect flows, hooks) cost a third of an unchanged cycle, and the policy does its
        # own redirects. Behind a proxy (configured, or HTTP(S)_PROXY in the environment, with
        # NO_PROXY) httpx's client routes the requests; without a bank CA, the keep-alive transport
        # loads the default trust store on its first https connection.
        self.proxied: httpx.AsyncClient | None = None
        self.transport: httpx.AsyncBaseTransport | None = transport
        if transport is None and (options.proxy is not None or _environment_proxies()):
            self.proxied = httpx.AsyncClient(
                proxy=options.proxy,
                verify=bank_ca or True,
                timeout=options.timeout.total_seconds(),
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
                ),
            )
        elif transport is None:
            self.transport = KeepAliveTransport(ssl_context=bank_ca, max_connections=MAX_CONNECTIONS)

    def request(
        self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str] | None, extensions: dict
    ) -> httpx.Request:
        """A GET of ``url`` (relative to ``base_url`` unless absolute) with the policy's headers."""
        absolute = url.startswith(("http://", "https://"))  # redirect targets; paths are relative
        target = httpx.URL(url if absolute else self._base_text + url.lstrip("/"))
        if params:
            target = target.copy_merge_params(params)
        merged = self.headers
        if headers:
            merged = merged.copy()
            merged.update(headers)
        return httpx.Request("GET", target, headers=merged, extensions=extensions)

    @asynccontextmanager
    async def deadline(self, budget: timedelta | None = None) -> AsyncIterator[None]:
        """Bound everything inside (requests, retries, waits) by one total time budget.

        Nested deadlines never extend an outer one.
        """
        seconds = (budget if budget is not None else self.options.deadline).total_seconds()
        end = self.timing.clock() + seconds
        outer = _deadline.get()
        if outer is not None and outer.end < end:
            end, seconds = outer.end, outer.budget
        token = _deadline.set(_Deadline(end, seconds))
        try:
            async with asyncio.timeout(max(0.0, end - self.timing.clock())) as scope:
                yield
        except TimeoutError:
            if not scope.expired():
                raise
            raise TransientError(
                f"check took longer than its {seconds:g}s deadline", source=self.source
            ) from None
        finally:
            _deadline.reset(token)

    def _within_deadline(self, wait: float, error: SourceError) -> None:
        """Give up now, with ``error``'s kind, when waiting ``wait`` seconds would pass the deadline."""
        current = _deadline.get()
        if current is not None and wait >= current.end - self.timing.clock():
            note = f"; retrying in {wait:.1f}s would pass the check's {current.budget:g}s deadline"
            raise _with_note(error, note)

    def _refuse_a_long_pause(self, wait: float, context: dict) -> None:
        """Fail fast, rather than wait out the check's deadline, while the source asked us to stay
        away: before a request queues for its slot, and when a pause begins while it waits to go."""
        paused = self.limiter.paused_for()
        if paused > 0:
            reason = f"{self.source} asked for a pause (Retry-After), {paused:.1f}s left"
            self._within_deadline(max(wait, paused), RateLimitedError(reason, retry_after=paused, **context))

    def _capped_pause(self, seconds: float | None) -> float | None:
        """A Retry-After of at most ``max_pause``: one answer asking for a day (or for ever) must not
        silence the whole source that long. The first cap of this source is logged, later ones not."""
        cap = self.options.max_pause.total_seconds()
        if seconds is None or seconds <= cap:
            return seconds
        if not self._pause_cap_logged:
            self._pause_cap_logged = True
            log.warning(
                "%s asked for a pause of %.0fs (Retry-After); pausing %.0fs, its max_pause, then resuming"
                " (longer pauses it asks for later are capped the same way without this line)",
                self.source,
                seconds,
                cap,
            )
        return cap

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        registry_id: str | None = None,
    ) -> HttpResponse:
        """GET with the whole policy. Returns any final status; raises on transport failures, on
        retryable statuses that outlast the retries, on oversize bodies and on foreign redirects.

        ``headers`` may be a callable so signed headers (timestamps) are fresh on every attempt.
        A ``Retry-After`` pauses the whole source (every request of it waits), a backoff only this one.
        """
        context = {"source": self.source, "registry_id": registry_id}
        url = path
        redirects = 0
        attempt = 0
        while True:
            outcome = await self._attempt(url, params, headers, path, context)
            if isinstance(outcome, _Failure):
                attempt += 1
                await self._before_retry(outcome, attempt)
            elif outcome.status in REDIRECT_STATUSES:
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise BlockedError(f"more than {MAX_REDIRECTS} redirects from {path}", **context)
                url = self._same_host_redirect(outcome, context)
                params = None
            else:
                return outcome

    async def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None,
        path: str,
        context: dict,
    ) -> HttpResponse | _Failure:
        """One request in its rate-limit slot: a response to hand on, or a failure worth retrying."""
        self._refuse_a_long_pause(0.0, context)
        slot = await self.limiter.acquire(lambda wait: self._refuse_a_long_pause(wait, context))
        request_headers = headers() if callable(headers) else headers
        try:
            response = await self._send(url, params, request_headers, slot, context)
        except RateLimitedError:
            raise  # a pause began before the request went out: not a network failure to retry
        except TransientError as error:
            return _Failure(error)
        if response.status not in RETRYABLE_STATUSES:
            return response
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), now=self.timing.wall)
        pause = self._capped_pause(retry_after)
        if response.status == 429:
            return _Failure(RateLimitedError(f"HTTP 429 on {path}", retry_after=pause, **context), pause)
        return _Failure(TransientError(f"HTTP {response.status} on {path}", **context), pause)

    async def _before_retry(self, failure: _Failure, attempt: int) -> None:
        """Wait before the next attempt, or raise ``failure`` when no attempt is left or the wait
        would pass the deadline. A Retry-After pauses the whole source (the wait happens in the
        limiter, where every request of this source waits); otherwise this request backs off."""
        if failure.pause is not None:
            self.limiter.pause(failure.pause)
        if attempt > self.options.retries:
            raise _with_note(failure.error, f" (after {attempt} attempts)")
        if failure.pause is not None:
            self._within_deadline(self.limiter.delay(), failure.error)
            return
        wait = self.timing.backoff(attempt)
        self._within_deadline(wait, failure.error)
        await self.timing.sleep(wait)

    async def _send(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        slot: float,
        context: dict,
    ) -> HttpResponse:
        timeout = self.options.timeout.total_seconds()
        current = _deadline.get()
        if current is not None:
            remaining = current.end - self.timing.clock()
            if remaining <= 0:
                raise TransientError(f"the check's {current.budget:g}s deadline passed", **context)
            timeout = min(timeout, remaining)
        cap = self.options.max_response_bytes

        refused: list[RateLimitedError] = []

        def refuse_a_long_pause(wait: float) -> None:
            try:
                self._refuse_a_long_pause(wait, context)
            except RateLimitedError as error:
                refused.append(error)  # the transport wraps it in a TransportError; raised as is below
                raise

        async def trace(event: str, info: dict) -> None:
            """httpcore's hook, called as the request's first bytes are about to go out."""
            if event.endswith(".send_request_headers.started"):
                await self.limiter.confirm(slot, refuse_a_long_pause)

        timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        try:
            request = self.request(url, params, headers, {"trace": trace, "timeout": timeouts})
            if self.proxied is not None:
                response = await self.proxied.send(request, stream=True)
            else:
                assert self.transport is not None
                response = await self.transport.handle_async_request(request)
                response.request = request
            try:
                declared = response.headers.get("Content-Length", "").strip()
                if declared.isdigit() and int(declared) > cap:
                    raise ParseError(
                        f"response of {declared} bytes is larger than the {cap}-byte cap", **context
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > cap:
                        raise ParseError(f"response larger than the {cap}-byte cap", **context)
                    chunks.append(chunk)
                content = _decompress(response.headers, b"".join(chunks), cap, context)
                try:
                    text = decode_body(content, response.headers.get("Content-Type"), self.charsets)
                    charset_error = None
                except UndecodableBody as error:
                    text, charset_error = error.preview, f"HTTP {response.status_code} on {url}: {error}"
                return HttpResponse(
                    response.status_code,
                    str(request.url),
                    response.headers,
                    text,
                    charset_error=charset_error,
                    context=context,
                )
            finally:
                await response.aclose()
        except httpx.TimeoutException as error:
            raise TransientError(f"timeout ({type(error).__name__}) on {url}", **context) from None
        except httpx.HTTPError as error:
            if refused:
                raise refused[0] from None
            reason = f"network error ({type(error).__name__}: {error}) on {url}"
            raise TransientError(reason, **context) from None
        except httpx.InvalidURL as error:
            raise ParseError(f"invalid URL {url!r}: {error}", **context) from None

    def _same_host_redirect(self, response: HttpResponse, context: dict) -> str:
        location = response.headers.get("Location")
        if not location:
            raise ParseError(f"HTTP {response.status} without a Location header", **context)
        try:
            target = httpx.URL(response.url).join(location)
        except httpx.InvalidURL as error:
            raise ParseError(f"HTTP {response.status} to an invalid Location ({error})", **context) from None
        origin = httpx.URL(response.url)
        # httpx leaves default ports out, so http://host → https://host (an upgrade) is the same host.
        if (target.host, target.port) != (origin.host, origin.port):
            raise BlockedError(f"redirect to another host ({target.host}) refused", **context)
        if origin.scheme == "https" and target.scheme != "https":
            raise BlockedError(f"redirect from https to {target.scheme} refused", **context)
        return str(target)

    async def aclose(self) -> None:
        if self.proxied is not None:
            await self.proxied.aclose()
        if self.transport is not None:
            await self.transport.aclose()


def basic_auth(username: str, password: str) -> str:
    """An ``Authorization`` header value for HTTP Basic authentication."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _decompress(headers: httpx.Headers, content: bytes, cap: int, context: dict) -> bytes:
    """Undo Content-Encoding with the same cap, so a small gzip bomb cannot blow memory up."""
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return content
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise ParseError(f"unsupported Content-Encoding {encoding!r}", **context)
    # wbits 47 detects a gzip or zlib header; some servers send "deflate" as a raw stream (-15).
    failure = f"corrupt {encoding} body"
    for wbits in (47, -15) if encoding == "deflate" else (47,):
        decompressor = zlib.decompressobj(wbits=wbits)
        try:
            data = decompressor.decompress(content, cap + 1)
        except zlib.error as error:
            failure = f"corrupt {encoding} body ({error})"
            continue
        if len(data) > cap:
            raise ParseError(f"decompressed response larger than the {cap}-byte cap", **context)
        if not decompressor.eof:
            raise ParseError(f"truncated {encoding} body", **context)
        return data
    raise ParseError(failure, **context)


def raise_for_status(
    response: HttpResponse, *, what: str, context: dict, not_found: str | None = None
) -> None:
    """The common meaning of final statuses; sources handle their own special cases first."""
    status = response.status
    if 200 <= status < 300:
        if not response.text.strip():
            raise ParseError(f"{what}: empty body with HTTP {status}", **context)
        return
    if looks_like_challenge(response.preview):
        raise BlockedError(f"{what}: HTTP {status} with a captcha or challenge page", **context)
    if status in (401, 403):
        raise AuthError(f"{what}: HTTP {status}: the source refused our credentials", **context)
    if status in (404, 410):
        raise NotFoundError(not_found or f"{what}: HTTP {status}", **context)
    raise ParseError(f"{what}: unexpected HTTP {status}", **context)


def registry_answer(response: HttpResponse, *, what: str, context: dict) -> object:
    """The JSON body of a non-2xx answer that states a fact (a removed unit, "no such list").

    A status code alone is never a fact: in place of the registry's own body, an empty answer is a
    transient failure, a captcha or challenge page is blocked, anything else that is not JSON is a
    parse error. The caller then checks that the JSON is the registry's answer it expects.
    """
    label = f"{what} (HTTP {response.status})"
    if not response.preview.strip():
        raise TransientError(f"{label}: empty body instead of the registry's answer", **context)
    return load_json(response.text, what=label, **context)


def error_message(response: HttpResponse) -> str:
    """The ``message`` of a JSON error body, or the status's reason phrase when there is none."""
    reason = httpx.codes.get_reason_phrase(response.status) or f"HTTP {response.status}"
    try:
        body = json.loads(response.preview)
    except ValueError:
        return reason
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(message.split()) if isinstance(message, str) and message.strip() else reason


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
