"""The keep-alive transport (sources/http/transport.py) against scripted servers on 127.0.0.1: connection
reuse and its cap, bodies, timeouts, TLS, the trace hook, and that only httpx exceptions come out."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.http.transport import KeepAliveTransport
from tests.loopback import running

# -- a scripted server ----------------------------------------------------------------------------


@dataclass
class Exchange:
    """What the server does with one request: send ``answer``, then keep the connection or hang up.

    ``answer`` None hangs up without answering; ``delay`` is waited before answering.
    """

    answer: bytes | None
    keep_open: bool = True
    delay: float = 0.0


@dataclass
class Seen:
    connection: int  # 1 for the first connection the server accepted
    index: int  # 0 for the first request on that connection
    head: bytes
    body: bytes


Script = Callable[[Seen], Exchange]


def ok(body: bytes = b'{"ok": true}', headers: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def keep_answering(body: bytes = b'{"ok": true}', delay: float = 0.0) -> Script:
    return lambda seen: Exchange(ok(body), delay=delay)


class ScriptedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = script
        self.tls = tls
        self.lock = threading.Lock()
        self.connections = 0
        self.closed = 0  # connections the client closed (EOF while waiting for a request)
        self.requests: list[Seen] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        """Failed handshakes and reset connections are part of the tests."""


def _read_request(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(head, body, rest) of the next request, or None when the client closed the connection."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < length:
        buffer += sock.recv(65536)
    return head, buffer[:length], buffer[length:]


class _ScriptedHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: ScriptedServer = self.server  # type: ignore[assignment]
        if server.tls is None:
            self.serve(server, self.request)
        else:
            with server.tls.wrap_socket(self.request, server_side=True) as sock:
                self.serve(server, sock)

    def serve(self, server: ScriptedServer, sock: socket.socket) -> None:
        with server.lock:
            server.connections += 1
            number = server.connections
        buffer = b""
        index = 0
        while True:
            request = _read_request(sock, buffer)
            if request is None:
                with server.lock:
                    server.closed += 1
                return
            head, body, buffer = request
            seen = Seen(number, index, head, body)
            with server.lock:
                server.requests.append(seen)
            exchange = server.script(seen)
            time.sleep(exchange.delay)
            if exchange.answer is None:
                return
            sock.sendall(exchange.answer)
            if not exchange.keep_open:
                return
            index += 1


@contextmanager
def scripted(script: Script, tls: ssl.SSLContext | None = None) -> Iterator[ScriptedServer]:
    with running(ScriptedServer(script, tls)) as server:
        yield server


def client(server: ScriptedServer, timeout: httpx.Timeout | float = 5.0, **options) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=timeout, transport=KeepAliveTransport(**options))


async def eventually(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


# -- keep-alive and the pool ----------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection():
    with scripted(lambda seen: Exchange(ok(b"%d" % seen.index))) as server:
        async with client(server) as http:
            bodies = [(await http.get("/doc")).content for _ in range(20)]
    assert bodies == [b"%d" % n for n in range(20)]
    assert server.connections == 1


async def test_concurrent_requests_open_at_most_one_connection_each_and_reuse_them():
    with scripted(keep_answering(delay=0.1)) as server:
        async with client(server) as http:
            first = await asyncio.gather(*(http.get("/doc") for _ in range(10)))
            opened = server.connections
            second = await asyncio.gather(*(http.get("/doc") for _ in range(10)))
    assert all(response.status_code == 200 for response in first + second)
    assert opened <= 10
    assert server.connections == opened


async def test_the_cap_on_open_connections_holds_under_concurrency():
    with scripted(keep_answering(delay=0.05)) as server:
        async with client(server, max_connections=2) as http:
            responses = await asyncio.gather(*(http.get("/doc") for _ in range(5)))
    assert [response.status_code for response in responses] == [200] * 5
    assert server.connections <= 2


async def test_a_request_waiting_for_a_connection_longer_than_the_pool_timeout_fails():
    with scripted(keep_answering(delay=0.5)) as server:
        async with client(server, httpx.Timeout(5.0, pool=0.1), max_connections=1) as http:
            slow = asyncio.create_task(http.get("/slow"))
            await eventually(lambda: len(server.requests) == 1)
            with pytest.raises(httpx.PoolTimeout):
                await http.get("/waits")
            assert (await slow).status_code == 200
            assert (await http.get("/after")).status_code == 200
    assert server.connections == 1


async def test_a_connection_is_shared_between_origins_under_the_cap():
    with scripted(keep_answering()) as one, scripted(keep_answering()) as other:
        async with httpx.AsyncClient(transport=KeepAliveTransport(max_connections=1)) as http:
            for _ in range(3):
                assert (await http.get(f"{one.url}/doc")).status_code == 200
                assert (await http.get(f"{other.url}/doc")).status_code == 200
    assert (one.connections, other.connections) == (3, 3)


async def test_connection_close_from_the_server_means_a_new_connection_next():
    with scripted(lambda seen: Exchange(ok(headers="Connection: close\r\n"), keep_open=False)) as server:
        async with client(server) as http:
            for _ in range(3):
                assert (await http.get("/doc")).status_code == 200
    assert server.connections == 3


async def test_an_http_1_0_response_is_not_kept_alive():
    answer = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    with scripted(lambda seen: Exchange(answer, keep_open=False)) as server:
        async with client(server) as http:
            responses = [await http.get("/doc") for _ in range(2)]
    assert [response.http_version for response in responses] == ["HTTP/1.0", "HTTP/1.0"]
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_reused():
    with scripted(lambda seen: Exchange(ok(), keep_open=False)) as server:
        async with client(server) as http:
            assert (await http.get("/doc")).status_code == 200
            await eventually(lambda: server.connections == 1 and len(server.requests) == 1)
            await asyncio.sleep(0.05)
            assert (await http.get("/doc")).status_code == 200
    assert server.connections == 2


def hang_up_on_second_request(seen: Seen) -> Exchange:
    """Answers the first request of each connection, then hangs up as the next one arrives: a server
    closing an idle connection just as the client reuses it."""
    return Exchange(ok() if seen.index == 0 else None)


async def test_a_get_on_a_reused_connection_closed_under_it_is_sent_again_on_a_new_one():
    with scripted(hang_up_on_second_request) as server:
        async with client(server) as http:
            assert (await http.get("/doc")).status_code == 200
            assert (await http.get("/doc")).status_code == 200
    assert server.connections == 2
    assert [(seen.connection, seen.index) for seen in server.requests] == [(1, 0), (1, 1), (2, 0)]


async def test_a_post_on_a_reused_connection_closed_under_it_is_not_sent_again():
    with scripted(hang_up_on_second_request) as server:
        async with client(server) as http:
            assert (await http.post("/doc", content=b"1")).status_code == 200
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await http.post("/doc", content=b"2")
    assert len(server.requests) == 2


async def test_a_fresh_connection_that_fails_is_not_retried():
    with scripted(lambda seen: Exchange(None)) as server:
        async with client(server) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get("/doc")
    assert server.connections == 1


async def test_the_retry_happens_once():
    def only_the_first_request(seen: Seen) -> Exchange:
        return Exchange(ok() if (seen.connection, seen.index) == (1, 0) else None)

    with scripted(only_the_first_request) as server:
        async with client(server) as http:
            await http.get("/doc")
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get("/doc")
    assert server.connections == 2


async def test_a_connection_with_unsolicited_bytes_after_a_response_is_not_reused():
    forged = ok(b"{}") + ok(b"forged")
    with scripted(lambda seen: Exchange(forged if seen.connection == 1 else ok(b"real"))) as server:
        async with client(server) as http:
            assert (await http.get("/doc")).content == b"{}"
            assert (await http.get("/doc")).content == b"real"
    assert server.connections == 2


async def test_idle_connections_expire():
    with scripted(keep_answering()) as server:
        async with client(server, keepalive_expiry=0.1) as http:
            await http.get("/doc")
            await eventually(lambda: server.closed == 1)
            await http.get("/doc")
    assert server.connections == 2


async def test_aclose_closes_every_connection():
    with scripted(keep_answering(delay=0.05)) as server:
        http = client(server)
        await asyncio.gather(*(http.get("/doc") for _ in range(3)))
        await http.aclose()
        await eventually(lambda: server.closed == server.connections)


async def test_closing_a_response_mid_body_closes_its_connection():
    with scripted(keep_answering(b"x" * 1_000_000)) as server:
        async with client(server) as http:
            async with http.stream("GET", "/big") as response:
                async for _chunk in response.aiter_raw():
                    break
            assert len((await http.get("/big")).content) == 1_000_000
    assert server.connections == 2


# -- bodies ---------------------------------------------------------------------------------------


def chunked(*chunks: bytes) -> bytes:
    body = b"".join(b"%X\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"


async def test_content_length_body_and_headers():
    answer = b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Case: Kept\r\n\r\nhello"
    with scripted(lambda seen: Exchange(answer)) as server:
        async with client(server) as http:
            response = await http.get("/doc")
    assert (response.status_code, response.content, response.reason_phrase) == (201, b"hello", "Created")
    assert response.http_version == "HTTP/1.1"
    assert (b"X-Case", b"Kept") in response.headers.raw


async def test_chunked_body_is_streamed_chunk_by_chunk():
    with scripted(lambda seen: Exchange(chunked(b"a" * 10, b"b" * 20_000, b"c"))) as server:
        async with client(server) as http:
            async with http.stream("GET", "/doc") as response:
                body = b"".join([chunk async for chunk in response.aiter_raw()])
            assert (await http.get("/doc")).content == body
    assert body == b"a" * 10 + b"b" * 20_000 + b"c"
    assert server.connections == 1


async def test_a_body_delimited_by_closing_the_connection():
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
    with scripted(lambda seen: Exchange(answer, keep_open=False)) as server:
        async with client(server) as http:
            assert (await http.get("/doc")).content == b"until the end"
            assert (await http.get("/doc")).content == b"until the end"
    assert server.connections == 2


async def test_head_responses_have_no_body_and_keep_the_connection():
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    with scripted(lambda seen: Exchange(answer)) as server:
        async with client(server) as http:
            for _ in range(3):
                response = await http.head("/doc")
                assert response.content == b"" and response.headers["Content-Length"] == "1000"
    assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n",
    ],
    ids=["content-length", "chunked", "head"],
)
async def test_a_truncated_response_is_an_error_never_a_short_body(answer):
    with scripted(lambda seen: Exchange(answer, keep_open=False)) as server:
        async with client(server) as http:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await http.get("/doc")


async def test_request_body_is_sent_with_its_length():
    with scripted(lambda seen: Exchange(ok(seen.body))) as server:
        async with client(server) as http:
            response = await http.post("/echo", content=b"payload")
            assert (await http.get("/echo")).content == b""
    assert response.content == b"payload"
    assert b"content-length: 7" in server.requests[0].head.lower()
    assert server.connections == 1


async def test_the_request_line_and_headers():
    with scripted(keep_answering()) as server:
        async with client(server) as http:
            await http.get("/a/b", params={"q": "æ ø"}, headers={"X-Token": "t"})
    request_line, *headers = server.requests[0].head.decode().split("\r\n")
    assert request_line == "GET /a/b?q=%C3%A6+%C3%B8 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.server_address[1]}" in headers and "X-Token: t" in headers


# -- timeouts and failures ------------------------------------------------------------------------


async def test_a_slow_answer_is_a_read_timeout():
    with scripted(keep_answering(delay=1.0)) as server:
        async with client(server, httpx.Timeout(5.0, read=0.1)) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/doc")


async def test_a_refused_connection_is_a_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/doc")
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/doc")


async def test_an_unsupported_scheme_is_refused():
    async with httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/doc")


async def test_a_cancelled_request_frees_its_connection():
    with scripted(keep_answering(delay=0.3)) as server:
        async with client(server, max_connections=1) as http:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await http.get("/doc")
            assert (await http.get("/doc")).status_code == 200
    assert server.connections == 2


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server_context(self_signed) -> ssl.SSLContext:
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_tls_with_the_test_ca_is_verified_and_kept_alive(self_signed, tls_server_context):
    cert, _ = self_signed
    with scripted(keep_answering(b"secret"), tls=tls_server_context) as server:
        trusted = ssl.create_default_context(cafile=str(cert))
        async with client(server, ssl_context=trusted) as http:
            bodies = [(await http.get("/doc")).content for _ in range(3)]
    assert bodies == [b"secret"] * 3
    assert server.connections == 1


async def test_tls_with_another_ca_is_a_connect_error(tls_server_context):
    with scripted(keep_answering(), tls=tls_server_context) as server:
        async with client(server, ssl_context=ssl.create_default_context()) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get("/doc")


# -- the trace extension --------------------------------------------------------------------------


async def test_trace_is_called_once_per_request_before_its_bytes_go_out():
    events: list[tuple[str, int]] = []
    with scripted(keep_answering()) as server:

        async def trace(name: str, info: dict) -> None:
            events.append((name, len(server.requests)))

        async with client(server) as http:
            for _ in range(3):
                await http.get("/doc", extensions={"trace": trace})
    started = [arrived for name, arrived in events if name == "http11.send_request_headers.started"]
    assert started == [0, 1, 2]
    assert [name for name, _ in events] == [
        "http11.send_request_headers.started",
        "http11.send_request_headers.complete",
    ] * 3


# -- only httpx exceptions ------------------------------------------------------------------------

GARBAGE = {
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "binary": bytes(range(256)),
    "empty": b"",
    "status-only": b"HTTP/1.1 200 OK\r\n",
    "bad-status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "bad-version": b"HTTP/9 200 OK\r\n\r\n",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "huge-header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
    "negative-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "conflicting-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
    "huge-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"F" * 40 + b"\r\nab",
    "chunk-without-crlf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd0\r\n\r\n",
    "unknown-transfer-encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "endless-informational": b"HTTP/1.1 100 Continue\r\n\r\n" * 50,
}


async def only_httpx_errors(http: httpx.AsyncClient) -> None:
    try:
        async with http.stream("GET", "/doc") as response:
            async for _chunk in response.aiter_raw():
                pass
    except httpx.HTTPError:
        pass


@pytest.mark.parametrize("answer", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_answers_raise_only_httpx_errors(answer):
    with scripted(lambda seen: Exchange(answer, keep_open=False)) as server:
        async with client(server, httpx.Timeout(2.0)) as http:
            await only_httpx_errors(http)
            await only_httpx_errors(http)


async def test_a_reset_mid_body_is_a_read_error():
    class Resetting(ScriptedServer):
        def shutdown_request(self, request: socket.socket) -> None:
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            request.close()

    server = Resetting(
        lambda seen: Exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", keep_open=False)
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        async with client(server) as http:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await http.get("/doc")
    finally:
        server.shutdown()
        server.server_close()


_status_lines = st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 404 Not Found\r\n"])
_headers = st.sampled_from(
    [b"", b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n"]
)


@pytest.fixture
def any_answer_server() -> Iterator[ScriptedServer]:
    """One server for every example; each example sets its ``script``."""
    with scripted(lambda seen: Exchange(None)) as server:
        yield server


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=_status_lines,
    headers=st.lists(_headers, max_size=3),
    blank=st.booleans(),
    tail=st.binary(max_size=60),
)
def test_arbitrary_answers_raise_only_httpx_errors(any_answer_server, status, headers, blank, tail):
    answer = status + b"".join(headers) + (b"\r\n" if blank else b"") + tail
    any_answer_server.script = lambda seen: Exchange(answer, keep_open=False)

    async def run() -> None:
        async with client(any_answer_server, httpx.Timeout(2.0)) as http:
            await only_httpx_errors(http)
            await only_httpx_errors(http)

    asyncio.run(run())
