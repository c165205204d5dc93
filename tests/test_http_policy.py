"""The shared HTTP policy (sources/http/): retries, Retry-After, deadline, caps, charsets, redirects,
TLS, connection reuse, and the sliding-window rate limiter. Everything talks to 127.0.0.1 or respx."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import shutil
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sources.base import BASE_DIR_CONTEXT
from sources.http.charsets import Charsets, UndecodableBody, decode_body
from sources.http.limiter import SlidingWindowLimiter
from sources.http.options import HttpSourceOptions
from sources.http.policy import MAX_REDIRECTS, HttpPolicy
from sources.http.responses import HttpResponse, raise_for_status
from sources.http.timing import Timing
from sources.http.transport import KeepAliveTransport
from tests.loopback import QuietHandler, running
from tests.mocking import TRANSPORT
from watcher.errors import (
    AuthError,
    BlockedError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    TransientError,
)
from watcher.units import Rate

API = "https://registry.test"
CHINESE = "杭州澜潮智能装备有限公司 法定代表人 王建国"


def make_options(**overrides: object) -> HttpSourceOptions:
    values: dict[str, object] = {
        "type": "test",
        "base_url": API,
        "rate": "100000/s",
        "timeout": "2s",
        "deadline": "30s",
        "retries": 3,
    }
    return HttpSourceOptions.model_validate(values | overrides)


@pytest.fixture
def waits() -> list[float]:
    """Every wait of a policy made with the ``timing`` fixture (backoff and limiter), in order."""
    return []


def upper_bound(low: float, high: float) -> float:
    """Full jitter that always picks its upper bound, so backoff waits are predictable."""
    return high


@pytest.fixture
def timing(waits: list[float]) -> Timing:
    """The policy's waits recorded in ``waits`` instead of slept; jitter at its upper bound."""

    now = [1_000.0]  # virtual time: it passes only when the policy waits, so waits are exact

    async def record(seconds: float) -> None:
        waits.append(seconds)
        now[0] += max(seconds, 0.0)
        await asyncio.sleep(0)

    return Timing(sleep=record, clock=lambda: now[0], jitter=upper_bound)


@pytest.fixture
async def policy(timing: Timing):
    client = HttpPolicy("test", make_options(), timing=timing)
    yield client
    await client.aclose()


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=API, assert_all_called=False) as mock:
        yield mock


# -- a real server on 127.0.0.1 -------------------------------------------------------------------

Route = Callable[[QuietHandler], None]


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        route = self.server.routes.get(urlsplit(self.path).path)  # type: ignore[attr-defined]
        if route is None:
            reply(self, 404, b"not found")
        else:
            route(self)


class LoopbackServer(ThreadingHTTPServer):
    """Routes by path; counts accepted TCP connections to check connection reuse."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.connections = 0
        self._counting = threading.Lock()
        self.scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def process_request(self, request, client_address) -> None:
        with self._counting:
            self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up mid-body (the size cap) are expected here."""


@contextmanager
def serving(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> Iterator[LoopbackServer]:
    with running(LoopbackServer(routes, tls)) as server:
        yield server


def reply(handler: QuietHandler, status: int, body: bytes, headers: dict[str, str] | None = None):
    handler.send_body(status, body, "application/json", headers)


def chunked_stream(total: int, chunk: int = 4096) -> Route:
    """A body sent in chunks with no Content-Length, growing to ``total`` bytes."""

    def route(handler: QuietHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        sent = 0
        try:
            while sent < total:
                handler.wfile.write(f"{chunk:X}\r\n".encode() + b"x" * chunk + b"\r\n")
                sent += chunk
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            handler.close_connection = True

    return route


def slow(seconds: float) -> Route:
    def route(handler: QuietHandler) -> None:
        time.sleep(seconds)
        try:
            reply(handler, 200, b'{"late": true}')
        except OSError:
            handler.close_connection = True

    return route


# -- retries and backoff --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_retryable_status_is_retried_then_succeeds(policy, api, waits, timing, status):
    route = api.get("/doc").mock(side_effect=[httpx.Response(status), httpx.Response(200, text='{"ok": 1}')])

    response = await policy.get("/doc")

    assert response.status == 200 and response.text == '{"ok": 1}'
    assert route.call_count == 2
    assert len(waits) == 1 and 0 <= waits[0] <= 2 * timing.backoff_base


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectTimeout("connect"), httpx.ReadTimeout("read"), httpx.ConnectError("refused")],
    ids=["connect-timeout", "read-timeout", "connect-error"],
)
async def test_transport_failures_are_retried_then_succeed(policy, api, waits, failure):
    route = api.get("/doc").mock(side_effect=[failure, failure, httpx.Response(200, text="{}")])

    response = await policy.get("/doc")

    assert response.status == 200
    assert route.call_count == 3
    assert len(waits) == 2


async def test_backoff_grows_exponentially(policy, api, waits, timing):
    api.get("/doc").mock(side_effect=[httpx.Response(503)] * 3 + [httpx.Response(200, text="{}")])

    await policy.get("/doc")

    base = timing.backoff_base
    assert waits == [base * 2, base * 4, base * 8]


async def test_backoff_is_capped(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=4), timing=replace(timing, backoff_cap=1.5))
    api.get("/doc").mock(side_effect=[httpx.Response(503)] * 4 + [httpx.Response(200, text="{}")])
    await client.get("/doc")
    await client.aclose()
    assert waits == [1.0, 1.5, 1.5, 1.5]


async def test_retries_exhausted_is_a_transient_error(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=2), timing=timing)
    route = api.get("/doc").respond(503)

    with pytest.raises(TransientError, match="HTTP 503.*after 3 attempts") as raised:
        await client.get("/doc", registry_id="42")
    await client.aclose()

    assert type(raised.value) is TransientError
    assert raised.value.source == "test" and raised.value.registry_id == "42"
    assert route.call_count == 3 and len(waits) == 2


async def test_timeouts_exhausted_are_transient(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=1), timing=timing)
    api.get("/doc").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="ReadTimeout.*after 2 attempts"):
        await client.get("/doc")
    await client.aclose()


async def test_no_retries_means_one_attempt(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=0), timing=timing)
    route = api.get("/doc").respond(500)
    with pytest.raises(TransientError):
        await client.get("/doc")
    await client.aclose()
    assert route.call_count == 1 and waits == []


async def test_final_statuses_are_returned_not_retried(policy, api, waits):
    route = api.get("/doc").respond(404, text="nope")
    response = await policy.get("/doc")
    assert response.status == 404 and response.text == "nope"
    assert route.call_count == 1 and waits == []


async def test_header_callable_is_evaluated_on_every_attempt(policy, api, waits):
    counter = itertools.count(1)
    route = api.get("/doc").mock(
        side_effect=[httpx.Response(500), httpx.Response(429), httpx.Response(200, text="{}")]
    )

    await policy.get("/doc", headers=lambda: {"X-Attempt": str(next(counter))})

    assert [call.request.headers["X-Attempt"] for call in route.calls] == ["1", "2", "3"]


async def test_default_headers(policy, api):
    route = api.get("/doc").respond(200, text="{}")
    await policy.get("/doc", params={"q": "x"})
    request = route.calls.last.request
    assert request.headers["User-Agent"].startswith("borrower-watcher/")
    assert request.headers["Accept-Encoding"] == "gzip, deflate"
    assert request.url.params["q"] == "x"


# -- 429 and Retry-After --------------------------------------------------------------------------


async def test_429_with_retry_after_seconds_waits_then_succeeds(policy, api, waits):
    route = api.get("/doc").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, text="{}")]
    )

    response = await policy.get("/doc")

    assert response.status == 200 and route.call_count == 2
    assert len(waits) == 1 and waits[0] == pytest.approx(1.0, abs=0.05)


async def test_429_with_retry_after_http_date_waits_until_then(policy, api, waits):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    api.get("/doc").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, text="{}")]
    )

    response = await policy.get("/doc")

    assert response.status == 200
    # The date has whole seconds, so "in 3 s" is between 2 and 3 s away.
    assert len(waits) == 1 and 1.9 <= waits[0] <= 3.0


async def test_503_with_retry_after_is_honoured(policy, api, waits):
    api.get("/doc").mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(200, text="{}")]
    )
    await policy.get("/doc")
    assert len(waits) == 1 and waits[0] == pytest.approx(2.0, abs=0.05)


async def test_429_without_retry_after_backs_off(policy, api, waits, timing):
    api.get("/doc").mock(side_effect=[httpx.Response(429), httpx.Response(200, text="{}")])
    await policy.get("/doc")
    assert waits == [2 * timing.backoff_base]


async def test_429_forever_is_rate_limited_with_retry_after(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=2), timing=timing)
    route = api.get("/doc").respond(429, headers={"Retry-After": "7"})

    with pytest.raises(RateLimitedError) as raised:
        await client.get("/doc")
    await client.aclose()

    assert raised.value.retry_after == 7.0 and raised.value.retryable
    assert route.call_count == 3
    assert len(waits) == 2 and all(wait == pytest.approx(7.0, abs=0.05) for wait in waits)


async def test_retry_after_pauses_every_request_of_the_source(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=0), timing=timing)
    api.get("/doc").respond(429, headers={"Retry-After": "5"})
    with pytest.raises(RateLimitedError):
        await client.get("/doc")
    assert client.limiter.delay() == pytest.approx(5.0, abs=0.05)
    await client.aclose()


async def test_a_pause_longer_than_the_deadline_fails_fast_without_asking(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=0), timing=timing)
    route = api.get("/doc").respond(429, headers={"Retry-After": "60"})
    with pytest.raises(RateLimitedError):
        await client.get("/doc")

    with pytest.raises(RateLimitedError, match="Retry-After.*5s deadline") as raised:
        async with client.deadline(timedelta(seconds=5)):
            await client.get("/doc")
    await client.aclose()

    assert raised.value.retry_after == pytest.approx(60, abs=0.5)
    assert route.call_count == 1 and waits == []


def cap_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if "max_pause" in record.getMessage()]


async def test_a_huge_retry_after_pauses_only_max_pause_then_resumes(api, waits, timing, caplog):
    """One 429 asking for a day (or for ever) pauses the source for max_pause, logged once, then resumes."""
    client = HttpPolicy("qcc", make_options(max_pause="15m", retries=3), timing=timing)
    route = api.get("/doc").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "86400"}),
            httpx.Response(429, headers={"Retry-After": "999999999"}),
            httpx.Response(200, text="{}"),
            httpx.Response(503, headers={"Retry-After": "86400"}),
            httpx.Response(200, text="{}"),
        ]
    )
    with caplog.at_level("WARNING", logger="watcher.sources"):
        first = await client.get("/doc")
        second = await client.get("/doc")
    await client.aclose()

    assert first.status == 200 and second.status == 200 and route.call_count == 5
    # Every pause was cut to 15 minutes; the limiter's sleep was observed, not waited for.
    assert [round(wait) for wait in waits if wait > 1] == [900, 900, 900]
    (line,) = cap_lines(caplog)
    assert "qcc asked for a pause of 86400s (Retry-After); pausing 900s" in line


async def test_retry_after_within_max_pause_is_honoured_in_full(api, waits, timing, caplog):
    client = HttpPolicy("test", make_options(max_pause="1m"), timing=timing)
    api.get("/doc").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "60"}), httpx.Response(200, text="{}")]
    )
    with caplog.at_level("WARNING", logger="watcher.sources"):
        await client.get("/doc")
    await client.aclose()
    assert [round(wait) for wait in waits if wait > 1] == [60] and cap_lines(caplog) == []


async def test_a_capped_pause_is_what_the_rate_limit_error_and_the_limiter_carry(api, waits, timing):
    client = HttpPolicy("test", make_options(max_pause="10m", retries=0), timing=timing)
    api.get("/doc").respond(429, headers={"Retry-After": "86400"})
    with pytest.raises(RateLimitedError) as raised:
        await client.get("/doc")
    assert raised.value.retry_after == 600.0
    assert client.limiter.paused_for() == pytest.approx(600.0, abs=1.0)
    await client.aclose()


async def test_a_pause_that_begins_while_a_request_waits_for_its_slot_fails_it_fast(api):
    """A request queued behind the rate limit when another one's 429 starts a pause does not sit out
    the check's deadline (and fail as a slow check): it fails at once as rate limited, unsent."""
    paused: list[float] = []

    async def another_request_gets_a_429(seconds: float) -> None:
        if not paused:
            paused.append(seconds)
            client.limiter.pause(600)

    timing = Timing(sleep=another_request_gets_a_429)
    client = HttpPolicy("test", make_options(rate="1/s", retries=0), timing=timing)
    route = api.get("/doc").respond(200, text="{}")
    await client.get("/doc")  # takes this second's only slot
    with pytest.raises(RateLimitedError, match="asked for a pause .*5s deadline") as raised:
        async with client.deadline(timedelta(seconds=5)):
            await client.get("/doc")
    await client.aclose()

    assert paused and route.call_count == 1
    assert raised.value.retry_after is not None and 590 <= raised.value.retry_after <= 600


async def test_a_pause_that_begins_after_a_request_took_its_slot_fails_it_unsent():
    """Through the real transport: the pause begins between the slot and the first byte (here, while the
    request's headers are made); the request fails as rate limited at once instead of waiting."""
    hits: list[str] = []

    def record(handler: QuietHandler) -> None:
        hits.append(handler.path)
        reply(handler, 200, b"{}")

    with serving({"/doc": record}) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, retries=2))

        def headers_while_another_request_gets_a_429() -> dict[str, str]:
            client.limiter.pause(600)
            return {}

        with pytest.raises(RateLimitedError, match="asked for a pause .*5s deadline"):
            async with client.deadline(timedelta(seconds=5)):
                await client.get("/doc", headers=headers_while_another_request_gets_a_429)
        await client.aclose()
    assert hits == []


def test_max_pause_option():
    assert make_options().max_pause == timedelta(minutes=15)
    assert make_options(max_pause="1h").max_pause == timedelta(hours=1)
    with pytest.raises(ValidationError, match="longer than 0s"):
        make_options(max_pause="0s")
    with pytest.raises(ValidationError, match="duration"):
        make_options(max_pause=900)


# -- the per-check deadline -----------------------------------------------------------------------


async def test_deadline_stops_retries_before_a_wait_that_would_pass_it(api, waits, timing):
    client = HttpPolicy("test", make_options(retries=10), timing=timing)
    route = api.get("/doc").respond(503)

    with pytest.raises(TransientError, match="would pass the check's 4s deadline"):
        async with client.deadline(timedelta(seconds=4)):
            await client.get("/doc")
    await client.aclose()

    # Waits of 1 s and 2 s fit (3 s of the 4 pass); the next one (4 s) would not.
    assert waits == [1.0, 2.0] and route.call_count == 3


async def test_retry_after_beyond_the_deadline_is_rate_limited_at_once(policy, api, waits):
    route = api.get("/doc").respond(429, headers={"Retry-After": "60"})

    with pytest.raises(RateLimitedError, match="5s deadline") as raised:
        async with policy.deadline(timedelta(seconds=5)):
            await policy.get("/doc")

    assert raised.value.retry_after == 60.0
    assert route.call_count == 1 and waits == []


async def test_deadline_cuts_a_slow_response_short():
    with serving({"/slow": slow(3.0)}) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, timeout="20s"))
        started = time.monotonic()
        with pytest.raises(TransientError, match="deadline"):
            async with client.deadline(timedelta(milliseconds=500)):
                await client.get("/slow")
        elapsed = time.monotonic() - started
        await client.aclose()
    assert 0.4 <= elapsed < 1.5


async def test_deadline_bounds_limiter_waits(api):
    client = HttpPolicy("test", make_options(rate="1/5s"))
    api.get("/doc").respond(200, text="{}")
    await client.get("/doc")
    with pytest.raises(TransientError, match="check took longer than its 0.3s deadline"):
        async with client.deadline(timedelta(milliseconds=300)):
            await client.get("/doc")
    await client.aclose()


async def test_nested_deadline_never_extends_the_outer_one(policy, api, waits):
    api.get("/doc").respond(503)
    with pytest.raises(TransientError, match="2s deadline"):
        async with policy.deadline(timedelta(seconds=2)), policy.deadline(timedelta(seconds=60)):
            await policy.get("/doc")
    assert waits == [1.0]


async def test_default_deadline_comes_from_the_options(api, waits, timing):
    client = HttpPolicy("test", make_options(deadline="3s", retries=10), timing=timing)
    api.get("/doc").respond(502)
    with pytest.raises(TransientError, match="3s deadline"):
        async with client.deadline():
            await client.get("/doc")
    await client.aclose()


async def test_other_timeouts_inside_a_deadline_are_not_relabelled(policy):
    with pytest.raises(TimeoutError):
        async with policy.deadline(timedelta(seconds=30)):
            raise TimeoutError("not ours")


# -- size cap and content encoding ----------------------------------------------------------------


async def test_content_length_above_the_cap_is_refused(api):
    client = HttpPolicy("test", make_options(max_response_bytes=10_000))
    api.get("/doc").respond(200, content=b"x" * 10_001)
    with pytest.raises(ParseError, match="10001 bytes is larger than the 10000-byte cap"):
        await client.get("/doc")
    await client.aclose()


async def test_chunked_body_growing_beyond_the_cap_is_refused():
    with serving(
        {"/stream": chunked_stream(total=1_000_000), "/small": chunked_stream(total=8192)}
    ) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, max_response_bytes=50_000))
        small = await client.get("/small")
        assert len(small.text) == 8192
        with pytest.raises(ParseError, match="larger than the 50000-byte cap"):
            await client.get("/stream")
        await client.aclose()


async def test_gzip_body_is_decompressed(policy, api):
    body = CHINESE.encode()
    api.get("/doc").respond(200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert (await policy.get("/doc")).text == CHINESE


@pytest.mark.parametrize(
    "compress", [zlib.compress, lambda data: zlib.compress(data)[2:-4]], ids=["zlib", "raw-deflate"]
)
async def test_deflate_body_is_decompressed(policy, api, compress):
    api.get("/doc").respond(200, content=compress(b'{"a": 1}'), headers={"Content-Encoding": "deflate"})
    assert (await policy.get("/doc")).text == '{"a": 1}'


async def test_gzip_bomb_above_the_cap_is_refused():
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000

    def route(handler: QuietHandler) -> None:
        reply(handler, 200, bomb, {"Content-Encoding": "gzip"})

    with serving({"/bomb": route}) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, max_response_bytes=10_000))
        with pytest.raises(ParseError, match="decompressed response larger than the 10000-byte cap"):
            await client.get("/bomb")
        await client.aclose()


@pytest.mark.parametrize(
    ("content", "encoding", "message"),
    [
        (gzip.compress(b'{"a": 1}' * 50, mtime=0)[:-20], "gzip", "truncated gzip"),
        (b"not gzip at all", "gzip", "corrupt gzip"),
        (b"{}", "br", "unsupported Content-Encoding 'br'"),
    ],
)
async def test_bad_content_encoding_is_a_parse_error(content, encoding, message):
    def route(handler: QuietHandler) -> None:
        reply(handler, 200, content, {"Content-Encoding": encoding})

    with serving({"/doc": route}) as server:
        client = HttpPolicy("test", make_options(base_url=server.url))
        with pytest.raises(ParseError, match=message):
            await client.get("/doc")
        await client.aclose()


# -- charsets -------------------------------------------------------------------------------------

GB18030_ONLY = "𠮷堃"  # outside GB2312 (堃 is GBK, 𠮷 needs GB18030's four-byte form)
NORWEGIAN = "Søren Ødegård"
CHINESE_ANSWERS = Charsets(json=True, undeclared=("utf-8", "gb18030"))


def with_stray_latin1_byte(text: str) -> bytes:
    """UTF-8 with its first "ø" written as the single Latin-1 byte 0xF8, as a mixed-up export does."""
    return text.encode().replace("ø".encode(), b"\xf8", 1)


def test_gbk_declared_in_content_type():
    page = f"<html><body>{CHINESE}</body></html>"
    assert decode_body(page.encode("gbk"), "text/html; charset=GBK") == page


def test_gb2312_declared_only_in_meta_decodes_as_gb18030():
    page = f'<html><head><meta charset="gb2312"></head><body>{CHINESE}{GB18030_ONLY}</body></html>'
    assert decode_body(page.encode("gb18030"), "text/html") == page


def test_gbk_declared_in_http_equiv_meta():
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"></head>'
        f"<body>{CHINESE}</body></html>"
    )
    assert decode_body(page.encode("gbk"), None) == page


def test_declared_latin1_page_is_read_as_latin1():
    page = f"<p>{NORWEGIAN}</p>"
    assert decode_body(page.encode("latin-1"), "text/html; charset=ISO-8859-1") == page


def test_undeclared_gb18030_only_for_sources_that_allow_it():
    text = f"{CHINESE} {GB18030_ONLY}"
    assert decode_body(text.encode("gb18030"), "text/plain", CHINESE_ANSWERS) == text
    with pytest.raises(UndecodableBody, match="declares no charset and is not valid utf-8"):
        decode_body(text.encode("gb18030"), "text/plain")


def test_utf8_with_bom_wins_over_a_wrong_declaration():
    body = "\ufeff".encode() + CHINESE.encode()
    assert decode_body(body, "text/html; charset=iso-8859-1") == CHINESE


def test_utf16_with_bom():
    assert decode_body(CHINESE.encode("utf-16"), None) == CHINESE


def test_undeclared_utf8():
    assert decode_body(f'{{"navn": "FJORDLYS SJØMAT AS", "x": "{CHINESE}"}}'.encode(), None) == (
        f'{{"navn": "FJORDLYS SJØMAT AS", "x": "{CHINESE}"}}'
    )


@pytest.mark.parametrize("charsets", [Charsets(), CHINESE_ANSWERS], ids=["default", "chinese"])
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "text/plain; charset=UTF-8"])
def test_a_body_invalid_in_its_declared_charset_is_never_read_as_another(content_type, charsets):
    with pytest.raises(UndecodableBody, match="not valid utf-8 .*declares"):
        decode_body(CHINESE.encode("gb18030"), content_type, charsets)
    with pytest.raises(UndecodableBody, match="byte 0xf8 at offset 4"):
        decode_body(with_stray_latin1_byte(f"<p>{NORWEGIAN}</p>"), content_type, charsets)


def test_an_unknown_declared_charset_is_undecodable():
    with pytest.raises(UndecodableBody, match="unknown charset 'x-no-such-codec'"):
        decode_body(CHINESE.encode(), "text/html; charset=x-no-such-codec")
    with pytest.raises(UndecodableBody, match="not a text charset"):
        decode_body(b"<p>abc</p>", "text/html; charset=base64")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=ISO-8859-1",
        "application/json; charset=gbk",
        "text/plain; charset=latin1",
        None,
    ],
)
def test_json_is_utf8_whatever_it_declares(content_type):
    document = f'{{"navn": "{NORWEGIAN}", "x": "{CHINESE}"}}'
    assert decode_body(document.encode(), content_type, Charsets(json=True)) == document
    assert decode_body(b"\xef\xbb\xbf" + document.encode(), content_type, Charsets(json=True)) == document


@pytest.mark.parametrize(
    ("body", "content_type", "charsets"),
    [
        (with_stray_latin1_byte(f'{{"navn": "{NORWEGIAN}"}}'), "application/json; charset=utf-8", Charsets()),
        (f'{{"Name": "{CHINESE}"}}'.encode("gbk"), "application/json; charset=GBK", Charsets()),
        (f'{{"Name": "{CHINESE}"}}'.encode("gb18030"), None, CHINESE_ANSWERS),
        (
            f'  [{{"navn": "{NORWEGIAN}"}}]'.encode("latin-1"),
            "text/html; charset=ISO-8859-1",
            Charsets(json=True),
        ),
        (f'{{"navn": "{NORWEGIAN}"}}'.encode("utf-16"), "application/json", Charsets(json=True)),
    ],
    ids=["stray-byte", "gbk-label", "undeclared-gb18030", "latin1-label", "utf16"],
)
def test_json_that_is_not_utf8_is_undecodable(body, content_type, charsets):
    with pytest.raises(UndecodableBody, match=r"not valid utf-8 \(JSON is always UTF-8\)"):
        decode_body(body, content_type, charsets)


def test_a_page_of_a_json_source_is_read_in_the_charset_it_declares():
    """A JSON source may get a challenge page instead: it is no JSON, so its own label holds."""
    page = "<html><body>请完成安全验证</body></html>"
    assert decode_body(page.encode("gbk"), "text/html; charset=gbk", Charsets(json=True)) == page


async def test_policy_decodes_a_gbk_page(policy, api):
    api.get("/doc").respond(
        200, content=CHINESE.encode("gbk"), headers={"Content-Type": "text/html; charset=gbk"}
    )
    assert (await policy.get("/doc")).text == CHINESE


async def test_policy_never_hands_out_a_body_invalid_in_its_charset(api):
    client = HttpPolicy("test", make_options(), charsets=Charsets(json=True))
    body = with_stray_latin1_byte(f'{{"navn": "{NORWEGIAN}"}}')
    api.get("/doc").respond(200, content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    response = await client.get("/doc", registry_id="42")
    await client.aclose()

    with pytest.raises(ParseError, match=r"HTTP 200 on /doc: body is not valid utf-8.*byte 0xf8") as raised:
        _ = response.text
    assert (raised.value.source, raised.value.registry_id) == ("test", "42")
    assert "S\ufffdren" in response.preview  # for diagnostics only
    with pytest.raises(ParseError, match="not valid utf-8"):
        raise_for_status(response, what="doc", context={})


async def test_an_undecodable_error_answer_is_still_retried(policy, api, waits):
    route = api.get("/doc").mock(
        side_effect=[
            httpx.Response(
                503, content=b"\xff\xfe\xfa", headers={"Content-Type": "text/html; charset=utf-8"}
            ),
            httpx.Response(200, text='{"ok": true}'),
        ]
    )
    response = await policy.get("/doc")
    assert response.text == '{"ok": true}' and route.call_count == 2


# -- redirects ------------------------------------------------------------------------------------


async def test_same_host_redirect_is_followed(policy, api):
    api.get("/old").respond(301, headers={"Location": "/new?page=2"})
    new = api.get("/new").respond(200, text="{}")

    response = await policy.get("/old", params={"page": "1"})

    assert response.status == 200 and response.url == f"{API}/new?page=2"
    assert new.calls.last.request.url.params["page"] == "2"


async def test_relative_redirect_is_resolved_against_the_response_url(policy, api):
    api.get("/a/b").respond(302, headers={"Location": "c"})
    api.get("/a/c").respond(200, text="{}")
    assert (await policy.get("/a/b")).url == f"{API}/a/c"


async def test_http_to_https_upgrade_on_the_same_host_is_followed():
    client = HttpPolicy("test", make_options(base_url="http://registry.test"))
    with respx.mock(using=TRANSPORT, assert_all_called=False) as mock:
        mock.get("http://registry.test/doc").respond(301, headers={"Location": "https://registry.test/doc"})
        mock.get("https://registry.test/doc").respond(200, text="{}")
        assert (await client.get("/doc")).url == "https://registry.test/doc"
    await client.aclose()


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("https://elsewhere.test/doc", "another host"),
        ("https://registry.test:8443/doc", "another host"),
        ("//elsewhere.test/doc", "another host"),
        ("http://registry.test/doc", "from https to http"),
    ],
)
async def test_foreign_or_downgrading_redirect_is_blocked(policy, api, location, message):
    api.get("/doc").respond(302, headers={"Location": location})
    with pytest.raises(BlockedError, match=message):
        await policy.get("/doc")


async def test_redirect_loop_is_blocked(policy, api):
    route = api.get("/loop").respond(307, headers={"Location": "/loop"})
    with pytest.raises(BlockedError, match=f"more than {MAX_REDIRECTS} redirects"):
        await policy.get("/loop")
    assert route.call_count == MAX_REDIRECTS + 1


async def test_redirect_without_a_location_is_a_parse_error(policy, api):
    api.get("/doc").respond(302)
    with pytest.raises(ParseError, match="without a Location"):
        await policy.get("/doc")


async def test_redirect_to_an_invalid_location_is_a_source_error(api):
    client = HttpPolicy("test", make_options(retries=0))
    api.get("/doc").respond(302, headers={"Location": "http://[::1"})
    with pytest.raises(ParseError, match="invalid Location"):
        await client.get("/doc")
    await client.aclose()


# -- TLS ------------------------------------------------------------------------------------------


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[LoopbackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving({"/doc": lambda handler: reply(handler, 200, b'{"tls": true}')}, tls=context) as server:
        yield server


async def test_tls_certificate_is_verified(self_signed):
    cert, key = self_signed
    with tls_server(cert, key) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, retries=0))
        with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get("/doc")
        await client.aclose()


async def test_tls_with_the_ca_bundle_succeeds(self_signed):
    cert, key = self_signed
    with tls_server(cert, key) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, retries=0, ca_bundle=str(cert)))
        response = await client.get("/doc")
        await client.aclose()
    assert response.status == 200 and response.text == '{"tls": true}'


# -- connection reuse -----------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection():
    with serving({"/doc": lambda handler: reply(handler, 200, b'{"n": 1}')}) as server:
        client = HttpPolicy("test", make_options(base_url=server.url))
        for _ in range(20):
            assert (await client.get("/doc")).status == 200
        await client.aclose()
    assert server.connections == 1


@pytest.mark.parametrize(
    ("proxy", "environment", "expected"),
    [
        (None, {}, KeepAliveTransport),
        ("http://127.0.0.1:3128", {}, httpx.AsyncHTTPTransport),
        (None, {"HTTPS_PROXY": "http://127.0.0.1:3128"}, httpx.AsyncHTTPTransport),
    ],
    ids=["direct", "configured-proxy", "environment-proxy"],
)
async def test_the_keep_alive_transport_unless_a_proxy_is_in_play(monkeypatch, proxy, environment, expected):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    policy = HttpPolicy("test", make_options(proxy=proxy))
    url = httpx.URL(f"{API}/doc")
    transport = policy.proxied._transport_for_url(url) if policy.proxied else policy.transport
    await policy.aclose()
    assert type(transport) is expected


# -- the rate limit against a server that enforces it ---------------------------------------------


def rate_enforcing(limit: int, log: dict[str, list[float]]) -> Route:
    """429 to the (limit+1)-th request that arrived within the last second, as registries do."""
    lock = threading.Lock()

    def route(handler: QuietHandler) -> None:
        now = time.monotonic()
        with lock:
            log["arrived"].append(now)
            rejected = len([t for t in log["arrived"] if t > now - 1.0]) > limit
            if rejected:
                log["rejected"].append(now)
        if rejected:
            reply(handler, 429, b"{}", {"Retry-After": "1"})
        else:
            reply(handler, 200, b'{"ok": true}')

    return route


async def test_concurrent_requests_saturate_but_never_trip_a_server_rate_limit():
    log: dict[str, list[float]] = {"arrived": [], "rejected": []}
    with serving({"/doc": rate_enforcing(5, log)}) as server:
        client = HttpPolicy("test", make_options(base_url=server.url, rate="5/s"))
        confirmed: list[float] = []
        confirm = client.limiter.confirm

        async def spy(slot: float, before_wait: Callable[[float], None] | None = None) -> float:
            confirmed.append(slot)
            return await confirm(slot, before_wait)

        client.limiter.confirm = spy  # type: ignore[method-assign]
        started = time.monotonic()
        await asyncio.gather(*(client.get("/doc") for _ in range(15)))
        elapsed = time.monotonic() - started
        await client.aclose()

    assert log["rejected"] == [] and len(log["arrived"]) == 15
    # Every request over a real connection is confirmed as it goes out (new connections included).
    assert len(confirmed) == 15
    # 15 at 5/s, evenly spaced: 14 gaps of 1.02 s / 5.
    assert 14 * 0.204 <= elapsed < 3.3


# -- raise_for_status -----------------------------------------------------------------------------


def _response(status: int, text: str = "{}") -> HttpResponse:
    return HttpResponse(status=status, url=f"{API}/doc", headers=httpx.Headers(), text=text)


@pytest.mark.parametrize(
    ("status", "text", "error", "message"),
    [
        (200, "", ParseError, "doc: empty body with HTTP 200"),
        (204, "  \n", ParseError, "empty body"),
        (401, "{}", AuthError, "HTTP 401"),
        (403, "{}", AuthError, "HTTP 403"),
        (404, "{}", NotFoundError, "no such company"),
        (410, "{}", NotFoundError, "no such company"),
        (403, "<html>请完成安全验证</html>", BlockedError, "captcha"),
        (418, "{}", ParseError, "unexpected HTTP 418"),
        (500, "{}", ParseError, "unexpected HTTP 500"),
    ],
)
def test_raise_for_status(status, text, error, message):
    context = {"source": "test", "registry_id": "42"}
    with pytest.raises(error, match=message) as raised:
        raise_for_status(_response(status, text), what="doc", context=context, not_found="no such company")
    assert type(raised.value) is error
    assert raised.value.source == "test" and raised.value.registry_id == "42"


def test_raise_for_status_passes_a_2xx_with_a_body():
    raise_for_status(_response(200, '{"a": 1}'), what="doc", context={})


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["timeout", "deadline"])
def test_zero_timeout_or_deadline_is_refused(field):
    with pytest.raises(ValidationError, match="longer than 0s"):
        make_options(**{field: "0s"})


def test_missing_ca_bundle_is_a_config_error(tmp_path):
    with pytest.raises(ValidationError, match="cannot load CA bundle"):
        make_options(ca_bundle=str(tmp_path / "missing.pem"))


def test_relative_ca_bundle_is_resolved_against_the_config_folder(tmp_path, self_signed):
    cert, _ = self_signed
    shutil.copy(cert, tmp_path / "bank-ca.pem")
    values = {"type": "test", "base_url": API, "ca_bundle": "bank-ca.pem"}
    options = HttpSourceOptions.model_validate(values, context={BASE_DIR_CONTEXT: str(tmp_path)})
    assert options.ca_bundle == str(tmp_path / "bank-ca.pem")


# -- the sliding-window limiter -------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def fake_limiter(count: int, per_seconds: int, fake: FakeTime) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(
        Rate(count, timedelta(seconds=per_seconds)), clock=fake.clock, sleep=fake.sleep
    )


def assert_window_respected(times: list[float], count: int, per_seconds: float) -> None:
    ordered = sorted(times)
    for first, later in zip(ordered, ordered[count:], strict=False):
        assert later - first >= per_seconds - 1e-9, (first, later)


actions = st.one_of(
    st.tuples(st.just("idle"), st.floats(0, 3, allow_nan=False)),
    st.tuples(st.just("pause"), st.floats(0, 3, allow_nan=False)),
    st.tuples(st.just("acquire"), st.integers(1, 6)),
    st.tuples(st.just("acquire, send later"), st.integers(1, 3)),
    st.tuples(st.just("send the late ones"), st.floats(0, 3, allow_nan=False)),
)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 8), per_seconds=st.integers(1, 4), pattern=st.lists(actions, max_size=30))
def test_limiter_never_exceeds_the_rate_in_any_window(count, per_seconds, pattern):
    """Requests go at their slot's time, or later (connection set-up) after ``confirm``; either way
    no window of ``per`` sees more than ``count`` of them go out, and none goes out during a pause."""
    fake = FakeTime()
    limiter = fake_limiter(count, per_seconds, fake)
    sent: list[float] = []
    late: list[float] = []
    pauses: list[tuple[float, float]] = []

    async def send_now() -> None:
        await limiter.acquire()
        sent.append(fake.now)

    async def send_late() -> None:
        late.append(await limiter.acquire())

    async def send_the_late_ones() -> None:
        while late:
            await limiter.confirm(late.pop(0))
            sent.append(fake.now)

    async def run() -> None:
        for action, amount in pattern:
            if action == "idle":
                fake.now += amount
            elif action == "pause":
                limiter.pause(amount)
                pauses.append((fake.now, amount))
            elif action == "acquire":
                await asyncio.gather(*(send_now() for _ in range(amount)))
            elif action == "acquire, send later":
                await asyncio.gather(*(send_late() for _ in range(amount)))
            else:
                fake.now += amount
                await send_the_late_ones()
        await send_the_late_ones()

    asyncio.run(run())

    assert_window_respected(sent, count, per_seconds)
    for paused_at, seconds in pauses:
        assert not [t for t in sent if paused_at < t < paused_at + seconds - 1e-9]


async def test_saturated_limiter_reaches_the_full_rate():
    fake = FakeTime()
    limiter = fake_limiter(5, 1, fake)
    times: list[float] = []

    async def worker(jobs: int) -> None:
        for _ in range(jobs):
            await limiter.acquire()
            times.append(fake.now)

    await asyncio.gather(*(worker(10) for _ in range(10)))

    assert len(times) == 100
    assert_window_respected(times, 5, 1)
    # 100 acquisitions at 5/s take 20 s (99 gaps of 0.2 s), give or take the 2% margin.
    assert 19.8 <= max(times) <= 19.8 * 1.02 + 1e-9
    rate = (len(times) - 1) / max(times)
    assert 5 / 1.02 - 1e-9 <= rate <= 5.0


async def test_requests_are_evenly_spaced():
    fake = FakeTime()
    limiter = fake_limiter(3, 1, fake)
    times = []
    for _ in range(4):
        await limiter.acquire()
        times.append(fake.now)
    assert times == [0, pytest.approx(0.34), pytest.approx(0.68), pytest.approx(1.02)]


async def test_pause_blocks_for_that_long():
    fake = FakeTime()
    limiter = fake_limiter(5, 1, fake)
    await limiter.acquire()
    fake.now = 10.0
    limiter.pause(3.0)
    assert limiter.delay() == pytest.approx(3.0)
    await limiter.acquire()
    assert fake.now == pytest.approx(13.0)


async def test_a_short_pause_never_frees_taken_slots():
    fake = FakeTime()
    limiter = fake_limiter(4, 1, fake)
    for _ in range(4):
        await limiter.acquire()
    before = limiter.delay()
    limiter.pause(0.0)
    assert before > 0 and limiter.delay() == pytest.approx(before)


async def test_confirm_moves_a_delayed_slot_to_its_send_time():
    fake = FakeTime()
    limiter = fake_limiter(2, 1, fake)
    first = await limiter.acquire()
    await limiter.acquire()
    assert fake.now == pytest.approx(0.51)
    fake.now = 0.8  # the first request waited 0.8 s for its connection
    assert await limiter.confirm(first) == 0.8
    times = []
    for _ in range(2):
        await limiter.acquire()
        times.append(fake.now)
    # Counted from 0 it would have been 1.02 and 1.53.
    assert times == [pytest.approx(0.51 + 1.02), pytest.approx(0.51 + 1.02 + 0.51)]


async def test_confirm_on_time_changes_nothing():
    fake = FakeTime()
    limiter = fake_limiter(1, 1, fake)
    slot = await limiter.acquire()
    assert await limiter.confirm(slot) == slot
    assert limiter.delay() == pytest.approx(1.02)


async def test_confirm_after_the_slot_lapsed_takes_a_fresh_slot():
    fake = FakeTime()
    limiter = fake_limiter(1, 1, fake)
    stale = await limiter.acquire()
    fake.now = 2.0
    await limiter.acquire()  # another request went meanwhile, on the lapsed slot's room
    await limiter.confirm(stale)
    assert fake.now == pytest.approx(3.02)


async def test_a_request_delayed_into_a_pause_waits_for_its_end():
    fake = FakeTime()
    limiter = fake_limiter(5, 1, fake)
    slot = await limiter.acquire()
    fake.now = 0.1
    limiter.pause(4.0)  # another request got a 429 with Retry-After: 4
    fake.now = 0.2
    await limiter.confirm(slot)
    assert fake.now == pytest.approx(4.1)


async def test_limiter_trusts_a_sleep_that_returns_early():
    """A sleep that does not move the clock (a test's fake sleep) ends the wait anyway."""
    slept: list[float] = []

    async def instant(seconds: float) -> None:
        slept.append(seconds)

    limiter = SlidingWindowLimiter(Rate(2, timedelta(seconds=1)), sleep=instant)
    for _ in range(6):
        await limiter.acquire()
    # Five gaps of 0.51 s (less the microseconds the real clock moved meanwhile).
    assert sum(slept) == pytest.approx(2.55, abs=0.01)
    assert len([wait for wait in slept if wait > 0.4]) == 5


async def test_limiter_holds_the_rate_in_real_time():
    limiter = SlidingWindowLimiter(Rate(4, timedelta(seconds=1)), margin=0.0)
    started = time.monotonic()
    times = []
    for _ in range(9):
        await limiter.acquire()
        times.append(time.monotonic() - started)
    assert_window_respected(times, 4, 1.0 - 0.002)
    assert 1.99 <= times[-1] < 2.3
