"""How a console page is served: :func:`page` resolves the signed-in user, sends anyone else to
``/login``, checks the CSRF token of every POST, and runs the handler in a worker thread because the
database calls block."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from watcher.console.context import Ctx, choose_language, console_of
from watcher.console.identity import ProxyUserRefused, csrf_valid, signed_in_user
from watcher.console.rendering import error_page, href, remember_language

log = logging.getLogger("watcher.console")

PAGE_LIMIT = 500
"""Rows a page shows at most; the page says so when there are more."""

Handler = Callable[[Request, Ctx], Response]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Sign-in required, CSRF checked on POST, the handler run in a worker thread."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(_guarded, handler, request, form)

    return endpoint


async def read_form(request: Request) -> FormData | None:
    """The POST form; a malformed or oversized one is empty, so its CSRF check fails (403)."""
    if request.method != "POST":
        return None
    try:
        return await request.form(max_files=0, max_fields=50)
    except Exception:
        return FormData()


def _guarded(handler: Handler, request: Request, form: FormData | None) -> Response:
    console = console_of(request)
    try:
        signed_in = signed_in_user(console, request)
    except ProxyUserRefused:
        ctx = Ctx(console, request, None, choose_language(request, console.config, None), form)
        return error_page(ctx, 403, ctx.t("forbidden"))
    if signed_in is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(href("/login", next=target if request.method == "GET" else None), 303)
    user, login = signed_in
    ctx = Ctx(console, request, user, choose_language(request, console.config, user), form, login)
    if request.method == "POST" and not csrf_valid(ctx):
        log.warning("refused POST %s by %s: CSRF token missing or wrong", request.url.path, user.username)
        return error_page(ctx, 403, ctx.t("csrf"))
    response = handler(request, ctx)
    remember_language(request, response)
    return response
