"""One hardened HTTP policy shared by every HTTP source.

Per-source rate limit that saturates but never exceeds the configured rate (:mod:`.limiter`); retries
with exponential backoff and full jitter on transient failures, honouring ``Retry-After`` up to the
source's ``max_pause``; a deadline for the whole check; a response size cap; strict decoding
(:mod:`.charsets`); redirects followed only within the same host; TLS verification always on. Every
failure ends as a ``SourceError`` subclass, never as a response the mapping could mistake for data.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import math
import ssl
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime

import httpx

from sources.http.charsets import Charsets, UndecodableBody, decode_body
from sources.http.limiter import SlidingWindowLimiter
from sources.http.options import HttpSourceOptions
from sources.http.responses import HttpResponse
from sources.http.timing import Timing
from sources.http.transport import KeepAliveTransport
from watcher import __version__
from watcher.errors import (
    BlockedError,
    ParseError,
    RateLimitedError,
    SourceError,
    TransientError,
)

USER_AGENT = f"borrower-watcher/{__version__} (post-loan monitoring)"
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_CONNECTIONS = 32  # per source

log = logging.getLogger("watcher.sources")


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
        # HTTP 200 answers received: what a vendor that bills per call charges for (its business
        # errors come as 200 too, and some of them are billed; counting them all errs on the high side).
        self.answered = 0
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
        """One request, sent when its slot (confirmed as the first byte goes out) allows; the whole
        body read within the size cap and decoded. Transport failures become SourceErrors."""
        timeout = self._request_timeout(context)
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
            response = await self._open(request)
            try:
                content = await self._body(response, context)
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
        if response.status_code == 200:
            self.answered += 1
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

    def _request_timeout(self, context: dict) -> float:
        """The per-request timeout, cut to what is left of the check's deadline."""
        timeout = self.options.timeout.total_seconds()
        current = _deadline.get()
        if current is None:
            return timeout
        remaining = current.end - self.timing.clock()
        if remaining <= 0:
            raise TransientError(f"the check's {current.budget:g}s deadline passed", **context)
        return min(timeout, remaining)

    async def _open(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return once the response head is in; the body is still to be read."""
        if self.proxied is not None:
            return await self.proxied.send(request, stream=True)
        assert self.transport is not None
        response = await self.transport.handle_async_request(request)
        response.request = request
        return response

    async def _body(self, response: httpx.Response, context: dict) -> bytes:
        """The whole body, decompressed; a ParseError as soon as it grows beyond the size cap."""
        cap = self.options.max_response_bytes
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise ParseError(f"response of {declared} bytes is larger than the {cap}-byte cap", **context)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > cap:
                raise ParseError(f"response larger than the {cap}-byte cap", **context)
            chunks.append(chunk)
        return _decompress(response.headers, b"".join(chunks), cap, context)

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


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None when absent.

    ``now`` is the wall clock (Unix seconds) an HTTP date is counted from.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _environment_proxies() -> bool:
    """Whether HTTP_PROXY, HTTPS_PROXY or ALL_PROXY is set (httpx honours them)."""
    return any(urllib.request.getproxies().get(scheme) for scheme in ("http", "https", "all"))


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
