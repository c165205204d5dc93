"""The review console as an ASGI app (Starlette), and how to serve it on its own or inside ``watcher run``.

Sessions are signed cookies (``[console] secret_key``; HttpOnly, SameSite=Lax, expiring after
``session_hours``). Every response carries a strict Content-Security-Policy: the pages load only
their own stylesheet and run no script at all, so registry text that slipped past escaping still
could not execute.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.config import Config
from watcher.console import views
from watcher.console.auth import LoginThrottle
from watcher.models import utcnow
from watcher.store import Store

log = logging.getLogger("watcher.console")

STATIC = Path(__file__).with_name("static")
SESSION_COOKIE = "watcher_console"

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds the security headers to every response, and ``no-store`` to all but static files:
    pages hold borrower data that must not linger in shared caches or the browser's back button."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() != b"server"
                ]
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


ROUTES = [
    Route("/login", views.login, methods=["GET", "POST"], name="login"),
    Route("/logout", views.logout, methods=["POST"], name="logout"),
    Route("/", views.portfolio, methods=["GET"], name="portfolio"),
    Route("/alerts", views.alerts_inbox, methods=["GET"], name="alerts"),
    Route("/alerts/{alert_id:int}/ack", views.alert_ack, methods=["POST"], name="alert_ack"),
    Route("/alerts/{alert_id:int}/close", views.alert_close, methods=["POST"], name="alert_close"),
    Route("/borrower", views.borrower_timeline, methods=["GET"], name="timeline"),
    Route("/snapshots/{snapshot_id:int}", views.snapshot_raw, methods=["GET"], name="snapshot"),
    Route("/snapshots/{snapshot_id:int}/raw.json", views.snapshot_raw_json, methods=["GET"], name="raw"),
    Route("/history", views.history_page, methods=["GET"], name="history"),
    Route("/export/history.{fmt:str}", views.export_history, methods=["GET"], name="export_history"),
    Route("/export/alerts.{fmt:str}", views.export_alerts, methods=["GET"], name="export_alerts"),
    Route("/status", views.status_page, methods=["GET"], name="status"),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


def create_app(
    store: Store,
    config: Config,
    *,
    throttle: LoginThrottle | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Starlette:
    """The console for one deployment; raises ValueError when ``[console] secret_key`` is missing."""
    settings = config.console
    if settings.secret_key is None:
        raise ValueError("[console] secret_key is required to serve the console")
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key.get_secret_value(),
                session_cookie=SESSION_COOKIE,
                max_age=settings.session_hours * 3600,
                same_site="lax",
                https_only=False,
            ),
        ],
    )
    app.state.console = views.Console(store, config, throttle or LoginThrottle(), clock)
    return app


class ConsoleStartError(RuntimeError):
    """The console could not start serving (typically: the port is taken)."""


class _EmbeddedServer:
    """A uvicorn server that leaves signal handling to its host (``watcher run``, ``watcher serve``)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            def capture_signals(self):  # the host's stop event ends us, not SIGTERM directly
                import contextlib

                return contextlib.nullcontext()

        self.server = Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=True,
                lifespan="off",
                server_header=False,
                proxy_headers=False,
            )
        )


async def serve_console(
    store: Store,
    config: Config,
    stop_event: asyncio.Event,
    *,
    host: str | None = None,
    port: int | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve the console until ``stop_event`` is set; ``sock`` is an already bound socket (tests).

    Runs on the caller's event loop next to the daemon; database work runs in worker threads.
    Raises :class:`ConsoleStartError` when it cannot listen.
    """
    app = create_app(store, config)
    host = host or config.console.host
    port = port if port is not None else config.console.port
    embedded = _EmbeddedServer(app, host, port)
    server = embedded.server

    async def run() -> None:
        try:
            await server.serve(sockets=[sock] if sock is not None else None)
        except SystemExit as error:  # uvicorn exits the process when it cannot bind
            raise ConsoleStartError(f"console could not listen on {host}:{port}") from error

    serving = asyncio.create_task(run(), name="console")
    stopping = asyncio.create_task(stop_event.wait(), name="console-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        await asyncio.gather(stopping, serving, return_exceptions=True)
    error = serving.exception()
    if error is not None:
        raise error
    if not stop_event.is_set():
        raise ConsoleStartError(f"console on {host}:{port} stopped unexpectedly")
