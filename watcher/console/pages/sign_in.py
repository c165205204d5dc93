"""Signing in with a password (behind the sign-in throttle) and signing out."""

from __future__ import annotations

import logging
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from watcher.console.auth import (
    NAME,
    check_credentials,
    end_session,
    find_user,
    record_lockout,
    record_sign_in,
    start_session,
)
from watcher.console.context import Console, Ctx, choose_language, console_of
from watcher.console.endpoint import page, read_form
from watcher.console.identity import (
    PASSWORD_SIGN_IN,
    ProxyUserRefused,
    begin_session,
    client_address,
    csrf_valid,
    session_id_of,
    signed_in_user,
)
from watcher.console.rendering import error_page, local_path, remember_language, render

log = logging.getLogger("watcher.console")


async def login(request: Request) -> Response:
    return await run_in_threadpool(_login, request, await read_form(request))


def _login(request: Request, form: FormData | None) -> Response:
    console = console_of(request)
    ctx = Ctx(console, request, None, choose_language(request, console.config, None), form)
    next_target = local_path(ctx.field("next") if form is not None else request.query_params.get("next"))
    if form is None:
        return _login_form(ctx, next_target)
    if not csrf_valid(ctx):
        return error_page(ctx, 403, ctx.t("csrf"))
    return _sign_in(ctx, next_target)


def _login_form(ctx: Ctx, next_target: str) -> Response:
    """The sign-in form, or straight on to ``next_target`` for someone already signed in."""
    try:
        if signed_in_user(ctx.console, ctx.request) is not None:
            return RedirectResponse(next_target, 303)
    except ProxyUserRefused:
        return error_page(ctx, 403, ctx.t("forbidden"))
    response = render(ctx, "login.html", next_target=next_target, error=None, username="")
    remember_language(ctx.request, response)
    return response


def _sign_in(ctx: Ctx, next_target: str) -> Response:
    """Check the posted name and password against the throttle and the users; a new session on success."""
    console, request = ctx.console, ctx.request
    username, password = ctx.field("username").strip(), ctx.field("password")
    throttle, now = console.throttle, console.clock()
    address = client_address(console, request)
    with console.store.session() as session:
        wait = throttle.locked_for(session, username=username, address=address, now=now)
    if wait > 0:
        message = ctx.t("locked", seconds=int(wait) + 1)
        return render(ctx, "login.html", 429, next_target=next_target, error=message, username=username)
    with console.store.session() as session:
        user = check_credentials(session, username, password) if username and password else None
    if user is None:
        _count_failure(console, username, address, now)
        message = ctx.t("wrong_credentials")
        return render(ctx, "login.html", 401, next_target=next_target, error=message, username=username)
    with console.store.transaction() as session:
        throttle.succeeded(session, username=username)
        session_id = start_session(
            session, user, via=PASSWORD_SIGN_IN, now=now, hours=console.config.console.session_hours
        )
        record_sign_in(session, user, via=PASSWORD_SIGN_IN)
    begin_session(request, session_id)
    return RedirectResponse(next_target, 303)


def _count_failure(console: Console, username: str, address: str | None, now: datetime) -> None:
    """A wrong name or password counts against the name and the address; a lockout it starts is
    audited (a name's only when that user exists, so the log does not collect guessed names)."""
    throttle = console.throttle
    with console.store.transaction() as session:
        for kind in throttle.failed(session, username=username, address=address, now=now):
            seconds = throttle.lockout.total_seconds()
            log.warning("console sign-in locked for %ds after repeated failures (by %s)", seconds, kind)
            if kind != NAME:
                record_lockout(session, kind, address or "", seconds=seconds)
            elif find_user(session, username) is not None:
                record_lockout(session, kind, username, seconds=seconds)


@page
def logout(request: Request, ctx: Ctx) -> Response:
    session_id = session_id_of(request)
    if session_id is not None:
        with ctx.console.store.transaction() as session:
            end_session(session, session_id)
    request.session.clear()
    return RedirectResponse("/login", 303)
