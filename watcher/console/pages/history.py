"""The change history page and the audit exports of history and alerts (CSV, XLSX)."""

from __future__ import annotations

from datetime import UTC

from starlette.requests import Request
from starlette.responses import Response

from watcher.console import queries
from watcher.console.context import Ctx
from watcher.console.endpoint import PAGE_LIMIT, page
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
from watcher.console.filters import BadRequest, alert_filter, history_filter
from watcher.console.rendering import error_page, party_scope, reader_zone, render
from watcher.record import Category
from watcher.vocabulary import AlertStatusFilter

EXPORT_FORMATS = ("csv", "xlsx")


@page
def history_page(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    try:
        filters = history_filter(request, ctx.user, reader_zone(ctx))
    except BadRequest as error:
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
        filters = history_filter(request, ctx.user, reader_zone(ctx))
    except BadRequest as error:
        return error_page(ctx, 400, f"{ctx.t('bad_request')} {error}")
    with ctx.console.store.session() as session:
        rows = queries.scoped_history(session, ctx.user, filters)
    scope = party_scope(ctx)
    records = history_records(scope.row(row) for row in rows)
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
    filters = alert_filter(request, ctx.user)
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
