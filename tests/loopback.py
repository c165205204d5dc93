"""A real HTTP server on 127.0.0.1 for the source tests: a quiet handler base and a serving context."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer
from typing import TypeVar

ServerT = TypeVar("ServerT", bound=BaseServer)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers small complete bodies and keeps access logs out of test output."""

    disable_nagle_algorithm = True

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send ``status`` and ``body`` with its Content-Type and Content-Length; ``headers`` may override."""
        self.send_response(status)
        for name, value in {"Content-Type": content_type, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's signature)
        """Quiet: the test output is not the place for access logs."""


@contextmanager
def running(server: ServerT) -> Iterator[ServerT]:
    """Serve ``server`` from a daemon thread; shut it down and close it on exit."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve(handler_class: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler_class`` on an ephemeral loopback port; yield the base URL, without a trailing slash."""
    with running(ThreadingHTTPServer(("127.0.0.1", 0), handler_class)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"
