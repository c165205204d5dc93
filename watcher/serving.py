"""Serving a Starlette app with uvicorn on the daemon's own event loop, until a stop event is set.

The console and the probes endpoint both run next to ``watcher run``: their host handles SIGTERM,
so uvicorn must not install signal handlers of its own, and a port that cannot be bound must
become one clear error, not uvicorn's ``SystemExit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

log = logging.getLogger("watcher.serving")


async def serve_until_stopped(
    app,
    stop_event: asyncio.Event,
    *,
    host: str,
    port: int,
    what: str,
    start_error: type[Exception],
    access_log: bool = True,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` (or the bound ``sock``) until ``stop_event`` is set.

    Raises ``start_error`` naming ``what`` when it cannot listen or stops by itself.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def capture_signals(self):  # the host's stop event ends us, not SIGTERM directly
            return contextlib.nullcontext()

    server = Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=access_log,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
        )
    )

    async def run() -> None:
        try:
            await server.serve(sockets=[sock] if sock is not None else None)
        except SystemExit as error:  # uvicorn exits the process when it cannot bind
            raise start_error(f"{what} could not listen on {host}:{port}") from error

    serving = asyncio.create_task(run(), name=what)
    stopping = asyncio.create_task(stop_event.wait(), name=f"{what}-stop")
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
        raise start_error(f"{what} on {host}:{port} stopped unexpectedly")
    log.debug("%s on %s:%s stopped", what, host, port)
