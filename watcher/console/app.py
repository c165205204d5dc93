"""The review console as an ASGI app (Starlette), and how to serve it on its own or inside ``watcher run``;
the integration API (:mod:`watcher.api`) is mounted in it at ``/api/v1``, behind the same headers.

Sessions live in the database; the browser's cookie, signed with ``[console] secret_key`` (HttpOnly,
SameSite=Lax, Secure unless served on loopback), carries only an opaque session id, so signing out
ends a session everywhere. Every response carries a strict Content-Security-Policy: the pages load
only their own stylesheet and run no script at all, so registry text that slipped past escaping
still could not execute; with Secure cookies it also carries HSTS.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.api.app import API_PREFIX, ASSETS_PREFIX, DOCS_CSP, DOCS_PATH, create_api
from watcher.config import Config, ConsoleSection, is_loopback_host
from watcher.console.auth import LoginThrottle
from watcher.console.context import Console
from watcher.console.pages import borrowers, connections, history, inbox, sign_in, status
from watcher.models import utcnow
from watcher.serving import serve_until_stopped
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
HSTS = (b"strict-transport-security", b"max-age=31536000")
FAVICON = "/favicon.ico"
PUBLIC_FILES = frozenset({FAVICON})
"""Files outside /static/ served to anyone, cached like static files: browsers ask for the icon there."""


class SecurityHeaders:
    """Adds the security headers to every response (the console's and the API's), and ``no-store`` to
    all but static files: pages and API answers hold borrower data that must not linger in shared
    caches or the browser's back button. With ``hsts``, browsers are told to reach the console over
    HTTPS only from then on. ``policies`` gives a path its own Content-Security-Policy instead of the
    console's (the API docs page, which runs Swagger UI's script from 'self')."""

    def __init__(
        self, app: ASGIApp, *, hsts: bool = False, policies: Mapping[str, bytes] | None = None
    ) -> None:
        self.app = app
        self.headers = (*SECURITY_HEADERS, HSTS) if hsts else SECURITY_HEADERS
        self.policies = {
            path: tuple(
                (name, policy if name == b"content-security-policy" else value)
                for name, value in self.headers
            )
            for path, policy in (policies or {}).items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        static = path in PUBLIC_FILES or path.startswith(("/static/", ASSETS_PREFIX))
        added = self.policies.get(path, self.headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() != b"server"
                ]
                headers.extend(added)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ConsoleSessions(SessionMiddleware):
    """The console's signed session cookie, for the console's pages only: the API under
    ``/api/v1/`` authenticates by bearer token alone, so it neither reads nor sets a cookie."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def favicon(request: Request) -> FileResponse:
    """The icon browsers ask for at ``/favicon.ico`` whatever the pages link to; the pages link the SVG."""
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")


ROUTES = [
    Route("/login", sign_in.login, methods=["GET", "POST"], name="login"),
    Route("/logout", sign_in.logout, methods=["POST"], name="logout"),
    Route("/", borrowers.portfolio, methods=["GET"], name="portfolio"),
    Route("/alerts", inbox.alerts_inbox, methods=["GET"], name="alerts"),
    Route("/alerts/{alert_id:int}/ack", inbox.alert_ack, methods=["POST"], name="alert_ack"),
    Route("/alerts/{alert_id:int}/close", inbox.alert_close, methods=["POST"], name="alert_close"),
    Route("/borrower", borrowers.borrower_timeline, methods=["GET"], name="timeline"),
    Route("/snapshots/{snapshot_id:int}", borrowers.snapshot_raw, methods=["GET"], name="snapshot"),
    Route("/snapshots/{snapshot_id:int}/raw.json", borrowers.snapshot_raw_json, methods=["GET"], name="raw"),
    Route("/groups", connections.groups_page, methods=["GET"], name="groups"),
    Route("/history", history.history_page, methods=["GET"], name="history"),
    Route("/export/history.{fmt:str}", history.export_history, methods=["GET"], name="export_history"),
    Route("/export/alerts.{fmt:str}", history.export_alerts, methods=["GET"], name="export_alerts"),
    Route("/status", status.status_page, methods=["GET"], name="status"),
    Route(FAVICON, favicon, methods=["GET"], name="favicon"),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


class ApiMount(Mount):
    """The API's mount, matching any path under its prefix: Starlette's ``{path:path}`` is ``.*``,
    which stops at a newline (``%0A`` in a party id), and the console then answered a plain-text 404."""

    def __init__(self, path: str, app: ASGIApp, name: str) -> None:
        super().__init__(path, app, name=name)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def create_app(
    store: Store,
    config: Config,
    *,
    host: str | None = None,
    throttle: LoginThrottle | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Starlette:
    """The console for one deployment, served on ``host`` (default ``[console] host``), with the
    integration API mounted at ``/api/v1``; raises ValueError when ``[console] secret_key`` is missing."""
    settings = config.console
    if settings.secret_key is None:
        raise ValueError("[console] secret_key is required to serve the console")
    secure = settings.cookies_secure(host)
    api = create_api(store, config, clock=clock)
    app = Starlette(
        routes=[*ROUTES, ApiMount(API_PREFIX, api, name="api")],
        middleware=[
            Middleware(SecurityHeaders, hsts=secure, policies={DOCS_PATH: DOCS_CSP}),
            Middleware(
                ConsoleSessions,
                secret_key=settings.secret_key.get_secret_value(),
                session_cookie=SESSION_COOKIE,
                max_age=settings.session_hours * 3600,
                same_site="lax",
                https_only=secure,
            ),
        ],
    )
    app.state.console = Console(store, config, throttle or LoginThrottle(), clock, secure)
    return app


def exposure_warnings(settings: ConsoleSection, host: str, port: int) -> list[str]:
    """What is risky about serving on ``host``: the console speaks plain HTTP, so beyond loopback
    only a TLS-terminating reverse proxy in front (``trusted_proxies``) keeps passwords and session
    cookies off the wire in clear text."""
    if is_loopback_host(host):
        return []
    warnings = []
    if not settings.trusted_proxies:
        warnings.append(
            f"console listens on {host}:{port}, reachable from other machines, over plain HTTP and "
            "with no [console] trusted_proxies: passwords and session cookies can be read and replayed "
            "by anyone on the network path; keep host = 127.0.0.1 behind a TLS-terminating reverse "
            "proxy and list that proxy in trusted_proxies"
        )
    if not settings.cookies_secure(host):
        warnings.append(
            f"console listens on {host}:{port} with secure_cookies = false: browsers will also send "
            "the session cookie over plain HTTP, where it can be stolen and replayed"
        )
    return warnings


class ConsoleStartError(RuntimeError):
    """The console could not start serving (typically: the port is taken)."""


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
    host = host or config.console.host
    port = port if port is not None else config.console.port
    for warning in exposure_warnings(config.console, host, port):
        log.warning("%s", warning)
    await serve_until_stopped(
        create_app(store, config, host=host),
        stop_event,
        host=host,
        port=port,
        what="console",
        start_error=ConsoleStartError,
        sock=sock,
    )
