"""The alerts inbox and the two steps of an alert's lifecycle a user takes in it: acknowledge, close."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from watcher.alerts import AlertStateError, acknowledge, alert_view, close
from watcher.console import queries
from watcher.console.auth import set_flash
from watcher.console.context import Ctx
from watcher.console.endpoint import PAGE_LIMIT, page
from watcher.console.filters import ALERT_STATUSES, SEVERITIES, alert_filter
from watcher.console.identity import session_id_of
from watcher.console.rendering import error_page, local_path, render
from watcher.models import Alert, Borrower
from watcher.render import AlertView
from watcher.store import stored_id

log = logging.getLogger("watcher.console")

MAX_NOTE_CHARS = 4000


def _alert_views(
    session: Session, ctx: Ctx, rows: list[tuple[Alert, Borrower | None]]
) -> dict[int, AlertView]:
    """Each alert as the notifications tell it; an officer's lists only their own borrowers."""
    assert ctx.user is not None
    config = ctx.console.config
    officer = None if queries.sees_all(ctx.user) else ctx.user.officer_id
    views: dict[int, AlertView] = {}
    for alert, _borrower in rows:
        alert_id = stored_id(alert)
        view = alert_view(
            session, alert_id, window_days=config.rules.window.days, source_name=config.source_display_name
        )
        views[alert_id] = view.for_officer(officer) if officer else view
    return views


@page
def alerts_inbox(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    filters = alert_filter(request, ctx.user)
    with ctx.console.store.session() as session:
        rows = queries.alerts(session, ctx.user, filters, limit=PAGE_LIMIT)
        views = _alert_views(session, ctx, rows)
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


class LifecycleStep(Protocol):
    """:func:`watcher.alerts.acknowledge` or :func:`watcher.alerts.close`."""

    __name__: str

    def __call__(
        self, session: Session, alert_id: int, *, by: str, note: str | None, at: datetime
    ) -> Alert: ...


def _lifecycle(request: Request, ctx: Ctx, step: LifecycleStep, done_key: str) -> Response:
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
    session_id = session_id_of(request)
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
