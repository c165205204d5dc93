"""The console's pages and actions.

Every handler runs through :func:`page`: it resolves the signed-in user (the server-side session
named by the cookie's opaque id, or the trusted header when a trusted proxy sent the request), sends
anyone else to ``/login``, checks the CSRF token of every POST, and runs the handler in a worker
thread because the database calls block.
Handlers only read through :mod:`watcher.console.queries`, which scopes every query to the
borrowers the user may see; state changes go through :mod:`watcher.alerts`, as the CLI's do.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from watcher.alerts import AlertStateError, acknowledge, alert_view, close
from watcher.config import Config
from watcher.console import queries
from watcher.console.auth import (
    NAME,
    LoginThrottle,
    check_credentials,
    csrf_matches,
    csrf_token_for,
    end_session,
    find_session,
    find_user,
    new_session_id,
    record_lockout,
    record_sign_in,
    set_flash,
    start_session,
    take_flash,
)
from watcher.console.exports import (
    ALERT_FIELDS,
    CSV_MEDIA_TYPE,
    HISTORY_FIELDS,
    XLSX_MEDIA_TYPE,
    alert_records,
    history_records,
    to_csv,
    to_xlsx,
)
from watcher.console.i18n import ACTION_LABEL, CATEGORY_LABEL, LANGUAGES, SEVERITY_LABEL, STATUS_LABEL, TEXT
from watcher.models import Borrower, ConsoleSession, User, utcnow
from watcher.record import Category
from watcher.store import Store, unpack_raw
from watcher.vocabulary import AlertKind, AlertStatus, AlertStatusFilter, Language

log = logging.getLogger("watcher.console")

TEMPLATES = Path(__file__).with_name("templates")
LANGUAGE_COOKIE = "watcher_lang"
SESSION_ID = "sid"
"""The one key of the signed session cookie: an opaque id, the server-side session's or, before
signing in, only what the sign-in form's CSRF token is derived from."""
PASSWORD_SIGN_IN = "password"
PAGE_LIMIT = 500
MAX_NOTE_CHARS = 4000
ALERT_STATUSES = tuple(AlertStatusFilter)
HEARTBEAT_FRESH = timedelta(minutes=1)
"""An instance whose heartbeat is older than this is shown as not responding, as in `watcher status`."""
SEVERITIES = queries.SEVERITY_ORDER
EXPORT_FORMATS = ("csv", "xlsx")


@dataclass
class Console:
    """What every request needs: the deployment's store and config, the throttle, the templates.

    ``secure_cookies`` marks the cookies Secure (``[console] secure_cookies`` for the address served).
    """

    store: Store
    config: Config
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    clock: Callable[[], datetime] = utcnow
    secure_cookies: bool = False

    def __post_init__(self) -> None:
        settings = self.config.console
        self.secret = settings.secret_key.get_secret_value() if settings.secret_key is not None else ""
        self.proxies = settings.proxy_networks
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )


@dataclass
class Ctx:
    """One request's signed-in user and their session, language and (for POST) form."""

    console: Console
    request: Request
    user: User | None
    lang: Language
    form: FormData | None = None
    login: ConsoleSession | None = None

    def t(self, key: str, **values: Any) -> str:
        text = TEXT[self.lang][key]
        return text.format(**values) if values else text

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""


class ProxyUserRefused(Exception):
    """The trusted proxy header names a user who does not exist or is disabled."""


# -- plumbing -------------------------------------------------------------------------------------


def _console(request: Request) -> Console:
    return request.app.state.console


def choose_language(request: Request, config: Config, user: User | None) -> Language:
    """``?lang=``, then the language cookie, then the user's preference, then [watcher] language."""
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        user.language if user is not None else None,
    ):
        if candidate in LANGUAGES:
            return Language(candidate)
    return Language(config.watcher.language)


def _in_networks(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(parsed, "ipv4_mapped", None)
    return any(parsed in network or (mapped is not None and mapped in network) for network in networks)


def from_trusted_proxy(console: Console, request: Request) -> bool:
    """Whether the peer that sent this request is one of ``[console] trusted_proxies``."""
    peer = request.client.host if request.client is not None else None
    return peer is not None and _in_networks(peer, console.proxies)


def client_address(console: Console, request: Request) -> str | None:
    """Who is signing in, for the sign-in throttle: the peer, or behind a trusted proxy the nearest
    address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    peer = request.client.host if request.client is not None else None
    if peer is None or not from_trusted_proxy(console, request):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, console.proxies):
            return hop
    return hops[0] if hops else peer


def _session_id(request: Request) -> str | None:
    value = request.session.get(SESSION_ID)
    return value if isinstance(value, str) and value else None


def _begin(request: Request, session_id: str) -> None:
    """Replace whatever the cookie held by ``session_id`` (a new id at every sign-in: no fixation)."""
    request.session.clear()
    request.session[SESSION_ID] = session_id


def _proxy_user(console: Console, request: Request, header: str, name: str) -> tuple[User, ConsoleSession]:
    now = console.clock()
    current = _session_id(request)
    with console.store.session() as session:
        user = find_user(session, name.strip())
        found = find_session(session, current, now=now) if current else None
    if user is None or not user.active:
        raise ProxyUserRefused(name)
    if found is not None and found[1].id == user.id:
        return found[1], found[0]
    with console.store.transaction() as session:
        session_id = start_session(
            session, user, via=f"header {header}", now=now, hours=console.config.console.session_hours
        )
        record_sign_in(session, user, via=f"header {header}")
    _begin(request, session_id)
    with console.store.session() as session:
        signed = find_session(session, session_id, now=now)
    assert signed is not None
    return signed[1], signed[0]


def _session_user(console: Console, request: Request) -> tuple[User, ConsoleSession] | None:
    """The signed-in user and their session row; None when nobody (still) is."""
    header = console.config.console.trusted_user_header
    if header and from_trusted_proxy(console, request):
        name = request.headers.get(header)
        if name is not None:
            return _proxy_user(console, request, header, name)
    session_id = _session_id(request)
    if session_id is None:
        return None
    with console.store.session() as session:
        found = find_session(session, session_id, now=console.clock())
    if found is None or found[0].via != PASSWORD_SIGN_IN:
        # An ended session's id stays in the cookie, harmless: only the sign-in form's CSRF token is
        # derived from it, and signing in issues a new id. A session the proxy's header opened lasts
        # only while the proxy keeps sending that header.
        return None
    row, user = found
    return user, row


def ensure_csrf(request: Request) -> str:
    """The CSRF token of this browser's session id, giving a browser without one an id first."""
    session_id = _session_id(request)
    if session_id is None:
        session_id = new_session_id()
        _begin(request, session_id)
    return csrf_token_for(_console(request).secret, session_id)


def csrf_valid(ctx: Ctx) -> bool:
    session_id = _session_id(ctx.request)
    expected = csrf_token_for(ctx.console.secret, session_id) if session_id else None
    return csrf_matches(expected, ctx.field("csrf_token"))


def _take_flash(ctx: Ctx) -> str | None:
    session_id = _session_id(ctx.request)
    if ctx.login is None or ctx.login.flash is None or session_id is None:
        return None
    with ctx.console.store.transaction() as session:
        return take_flash(session, session_id)


def local_path(target: str | None) -> str:
    """A redirect target only if it stays on this site (no scheme, no host, no ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def href(path: str, **params: Any) -> str:
    query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
    return f"{path}?{query}" if query else path


def render(ctx: Ctx, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    request, console = ctx.request, ctx.console
    zone = console.config.watcher.zone
    lang = ctx.lang

    def when(value: datetime | None) -> str:
        if value is None:
            return ""
        return queries.as_utc(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def switch_language(target: str) -> str:
        params = dict(request.query_params)
        params["lang"] = target
        return href(request.url.path, **params)

    def category_label(value: str) -> str:
        return CATEGORY_LABEL[lang].get(value, value)

    def generic_subject(category: str, subject: str) -> bool:
        return subject == category.replace("_", " ")

    html = console.templates.get_template(template).render(
        t=ctx.t,
        lang=lang,
        languages=LANGUAGES,
        user=ctx.user,
        sees_all=ctx.user is not None and queries.sees_all(ctx.user),
        csrf_token=ensure_csrf(request),
        flash=_take_flash(ctx),
        path=request.url.path,
        when=when,
        href=href,
        switch_language=switch_language,
        severity_label=lambda value: SEVERITY_LABEL[lang].get(value, value),
        category_label=category_label,
        action_label=lambda value: ACTION_LABEL[lang].get(value, value),
        status_label=lambda value: STATUS_LABEL[lang].get(value, value),
        generic_subject=generic_subject,
        officer_name=lambda officer_id: (
            console.config.officers[officer_id].name if officer_id in console.config.officers else ""
        ),
        zone=console.config.watcher.timezone,
        AlertKind=AlertKind,
        AlertStatus=AlertStatus,
        AlertStatusFilter=AlertStatusFilter,
        Language=Language,
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


def error_page(ctx: Ctx, status_code: int, message: str) -> HTMLResponse:
    return render(ctx, "error.html", status_code, code=status_code, message=message)


def _remember_language(request: Request, response: Response) -> None:
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=_console(request).secure_cookies,
        )


Handler = Callable[[Request, Ctx], Response]


def page(handler: Handler) -> Callable[[Request], Any]:
    """Sign-in required, CSRF checked on POST, the handler run in a worker thread."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        form = await _read_form(request)
        return await run_in_threadpool(_guarded, handler, request, form)

    return endpoint


async def _read_form(request: Request) -> FormData | None:
    """The POST form; a malformed or oversized one is empty, so its CSRF check fails (403)."""
    if request.method != "POST":
        return None
    try:
        return await request.form(max_files=0, max_fields=50)
    except Exception:
        return FormData()


def _guarded(handler: Handler, request: Request, form: FormData | None) -> Response:
    console = _console(request)
    try:
        signed_in = _session_user(console, request)
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
    _remember_language(request, response)
    return response


def _param(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> str:
    value = request.query_params.get(name, "").strip()
    if allowed is not None and value not in allowed:
        return ""
    return value


def _day(request: Request, name: str) -> date | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _BadRequest(f"{name}: expected a date like 2026-01-31") from None


class _BadRequest(Exception):
    pass


# -- sign-in --------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    return await run_in_threadpool(_login, request, await _read_form(request))


def _login(request: Request, form: FormData | None) -> Response:
    console = _console(request)
    ctx = Ctx(console, request, None, choose_language(request, console.config, None), form)
    next_target = local_path(ctx.field("next") if form is not None else request.query_params.get("next"))
    if form is None:
        try:
            if _session_user(console, request) is not None:
                return RedirectResponse(next_target, 303)
        except ProxyUserRefused:
            return error_page(ctx, 403, ctx.t("forbidden"))
        response = render(ctx, "login.html", next_target=next_target, error=None, username="")
        _remember_language(request, response)
        return response
    if not csrf_valid(ctx):
        return error_page(ctx, 403, ctx.t("csrf"))
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
        with console.store.transaction() as session:
            for kind in throttle.failed(session, username=username, address=address, now=now):
                seconds = throttle.lockout.total_seconds()
                log.warning("console sign-in locked for %ds after repeated failures (by %s)", seconds, kind)
                if kind != NAME:
                    record_lockout(session, kind, address or "", seconds=seconds)
                elif find_user(session, username) is not None:
                    record_lockout(session, kind, username, seconds=seconds)
        message = ctx.t("wrong_credentials")
        return render(ctx, "login.html", 401, next_target=next_target, error=message, username=username)
    with console.store.transaction() as session:
        throttle.succeeded(session, username=username)
        session_id = start_session(
            session, user, via=PASSWORD_SIGN_IN, now=now, hours=console.config.console.session_hours
        )
        record_sign_in(session, user, via=PASSWORD_SIGN_IN)
    _begin(request, session_id)
    return RedirectResponse(next_target, 303)


@page
def logout(request: Request, ctx: Ctx) -> Response:
    session_id = _session_id(request)
    if session_id is not None:
        with ctx.console.store.transaction() as session:
            end_session(session, session_id)
    request.session.clear()
    return RedirectResponse("/login", 303)


# -- portfolio ------------------------------------------------------------------------------------


def _borrower_filter(request: Request, user: User) -> queries.BorrowerFilter:
    return queries.BorrowerFilter(
        search=_param(request, "q"),
        officer=_param(request, "officer") if queries.sees_all(user) else "",
        tag=_param(request, "tag"),
        severity=_param(request, "severity", SEVERITIES),
        borrower_id=_param(request, "borrower"),
    )


@page
def portfolio(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    filters = _borrower_filter(request, ctx.user)
    with ctx.console.store.session() as session:
        rows = queries.portfolio(session, ctx.user, filters, limit=PAGE_LIMIT)
        officers, tags = queries.visible_officers_and_tags(session, ctx.user)
    return render(
        ctx,
        "portfolio.html",
        rows=rows,
        filters=filters,
        officers=officers,
        tags=tags,
        severities=SEVERITIES,
        limited=len(rows) >= PAGE_LIMIT,
        limit=PAGE_LIMIT,
    )


# -- alerts ---------------------------------------------------------------------------------------


def _alert_filter(request: Request, user: User) -> queries.AlertFilter:
    return queries.AlertFilter(
        status=AlertStatusFilter(_param(request, "status", ALERT_STATUSES) or AlertStatusFilter.OPEN),
        severity=_param(request, "severity", SEVERITIES),
        officer=_param(request, "officer") if queries.sees_all(user) else "",
        borrower_id=_param(request, "borrower"),
    )


@page
def alerts_inbox(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    filters = _alert_filter(request, ctx.user)
    window_days = ctx.console.config.rules.window.days
    with ctx.console.store.session() as session:
        rows = queries.alerts(session, ctx.user, filters, limit=PAGE_LIMIT)
        views = {alert.id: alert_view(session, alert.id, window_days=window_days) for alert, _ in rows}
        if not queries.sees_all(ctx.user) and ctx.user.officer_id:
            views = {alert_id: view.for_officer(ctx.user.officer_id) for alert_id, view in views.items()}
        officers, _tags = queries.visible_officers_and_tags(session, ctx.user)
    return render(
        ctx,
        "alerts.html",
        rows=rows,
        views=views,
        filters=filters,
        statuses=ALERT_STATUSES,
        severities=SEVERITIES,
        officers=officers,
        limited=len(rows) >= PAGE_LIMIT,
        limit=PAGE_LIMIT,
        back=local_path(request.url.path + (f"?{request.url.query}" if request.url.query else "")),
    )


def _lifecycle(request: Request, ctx: Ctx, step, done_key: str) -> Response:
    """Acknowledge or close through watcher.alerts, by the user's display name: the CLI's audit rows."""
    assert ctx.user is not None
    alert_id = request.path_params["alert_id"]
    note = ctx.field("note").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        return error_page(ctx, 400, ctx.t("bad_request"))
    try:
        with ctx.console.store.transaction() as session:
            if not queries.may_handle_alert(session, ctx.user, alert_id):
                return error_page(ctx, 403, ctx.t("forbidden"))
            step(session, alert_id, by=ctx.user.display_name, note=note, at=ctx.console.clock())
    except AlertStateError as error:
        return error_page(ctx, 409, f"{ctx.t('conflict')}: {error}")
    log.info("alert #%s %s by %s in the console", alert_id, step.__name__, ctx.user.username)
    session_id = _session_id(request)
    if session_id is not None:
        with ctx.console.store.transaction() as session:
            set_flash(session, session_id, ctx.t(done_key, id=alert_id))
    return RedirectResponse(local_path(ctx.field("next") or "/alerts"), 303)


@page
def alert_ack(request: Request, ctx: Ctx) -> Response:
    return _lifecycle(request, ctx, acknowledge, "done_ack")


@page
def alert_close(request: Request, ctx: Ctx) -> Response:
    return _lifecycle(request, ctx, close, "done_close")


# -- timeline and raw responses ---------------------------------------------------------------------


@page
def borrower_timeline(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    borrower_id = _param(request, "id")
    with ctx.console.store.session() as session:
        borrower = queries.visible_borrower(session, ctx.user, borrower_id)
        if borrower is None:
            exists = session.get(Borrower, borrower_id) is not None
            if exists or not queries.sees_all(ctx.user):
                return error_page(ctx, 403, ctx.t("forbidden"))
            return error_page(ctx, 404, ctx.t("not_found"))
        data = queries.timeline(session, borrower)
    return render(ctx, "timeline.html", tl=data, borrower=borrower, audit_detail=_audit_detail)


def _audit_detail(detail: str) -> str:
    """An audit entry's JSON detail as ``key: value`` text (escaped by the template like all text)."""
    try:
        parsed = json.loads(detail)
    except ValueError:
        return detail
    if not isinstance(parsed, dict):
        return detail
    return "; ".join(f"{key}: {value}" for key, value in parsed.items() if value not in ("", None))


def _raw_payload(request: Request, ctx: Ctx):
    assert ctx.user is not None
    snapshot_id = request.path_params["snapshot_id"]
    with ctx.console.store.session() as session:
        found = queries.visible_snapshot(session, ctx.user, snapshot_id)
    if found is None:
        return None
    snapshot, borrower = found
    return snapshot, borrower, unpack_raw(snapshot.raw_gz)


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), ensure_ascii=False, indent=2)
    except (ValueError, TypeError):
        return body


@page
def snapshot_raw(request: Request, ctx: Ctx) -> Response:
    found = _raw_payload(request, ctx)
    if found is None:
        return error_page(ctx, 403, ctx.t("forbidden"))
    snapshot, borrower, raw = found
    parts = [(name, _pretty(body)) for name, body in sorted(raw.items())]
    return render(ctx, "raw.html", snapshot=snapshot, borrower=borrower, parts=parts)


@page
def snapshot_raw_json(request: Request, ctx: Ctx) -> Response:
    found = _raw_payload(request, ctx)
    if found is None:
        return error_page(ctx, 403, ctx.t("forbidden"))
    snapshot, _borrower, raw = found
    return Response(
        json.dumps(raw, ensure_ascii=False, indent=2, sort_keys=True),
        media_type="application/json; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="snapshot-{snapshot.id}.json"'},
    )


# -- history and exports --------------------------------------------------------------------------


def _history_filter(request: Request, user: User) -> queries.HistoryFilter:
    known = {category.value for category in Category}
    categories = tuple(c for c in request.query_params.getlist("category") if c in known)
    return queries.HistoryFilter(
        borrowers=_borrower_filter(request, user),
        categories=categories,
        since=_day(request, "since"),
        until=_day(request, "until"),
    )


@page
def history_page(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    try:
        filters = _history_filter(request, ctx.user)
    except _BadRequest as error:
        return error_page(ctx, 400, f"{ctx.t('bad_request')} {error}")
    with ctx.console.store.session() as session:
        rows = queries.scoped_history(session, ctx.user, filters)
        officers, tags = queries.visible_officers_and_tags(session, ctx.user)
    return render(
        ctx,
        "history.html",
        rows=rows[:PAGE_LIMIT],
        total=len(rows),
        limited=len(rows) > PAGE_LIMIT,
        limit=PAGE_LIMIT,
        filters=filters,
        officers=officers,
        tags=tags,
        categories=[category.value for category in Category],
        query=request.url.query,
    )


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _stamp(ctx: Ctx) -> str:
    return ctx.console.clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@page
def export_history(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    fmt = request.path_params["fmt"]
    if fmt not in EXPORT_FORMATS:
        return error_page(ctx, 404, ctx.t("not_found"))
    try:
        filters = _history_filter(request, ctx.user)
    except _BadRequest as error:
        return error_page(ctx, 400, f"{ctx.t('bad_request')} {error}")
    with ctx.console.store.session() as session:
        records = history_records(queries.scoped_history(session, ctx.user, filters))
    name = f"watcher-history-{_stamp(ctx)}"
    if fmt == "csv":
        return _download(to_csv(HISTORY_FIELDS, records), CSV_MEDIA_TYPE, f"{name}.csv")
    return _download(to_xlsx("history", HISTORY_FIELDS, records), XLSX_MEDIA_TYPE, f"{name}.xlsx")


@page
def export_alerts(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    fmt = request.path_params["fmt"]
    if fmt not in EXPORT_FORMATS:
        return error_page(ctx, 404, ctx.t("not_found"))
    filters = _alert_filter(request, ctx.user)
    if not request.query_params.get("status"):
        filters = queries.AlertFilter(
            AlertStatusFilter.ALL, filters.severity, filters.officer, filters.borrower_id
        )
    with ctx.console.store.session() as session:
        records = alert_records(queries.alerts(session, ctx.user, filters, limit=None))
    name = f"watcher-alerts-{_stamp(ctx)}"
    if fmt == "csv":
        return _download(to_csv(ALERT_FIELDS, records), CSV_MEDIA_TYPE, f"{name}.csv")
    return _download(to_xlsx("alerts", ALERT_FIELDS, records), XLSX_MEDIA_TYPE, f"{name}.xlsx")


# -- status ---------------------------------------------------------------------------------------


@page
def status_page(request: Request, ctx: Ctx) -> Response:
    """`watcher status` as a page, scoped like every page: an officer's counts, failing borrowers and
    deliveries are their own, and no error text of someone else's borrower reaches them."""
    assert ctx.user is not None
    now = ctx.console.clock()
    with ctx.console.store.session() as session:
        summary = queries.scoped_status(session, ctx.user, now)
    failing = summary.failing_borrowers
    instances = []
    for instance in summary.instances:
        if instance.stopped_at is not None:
            state = "stopped"
        elif queries.as_utc(instance.heartbeat_at) >= now - HEARTBEAT_FRESH:
            state = "alive"
        else:
            state = "not_responding"
        instances.append((instance, state))
    return render(ctx, "status.html", summary=summary, failing=failing, instances=instances)
