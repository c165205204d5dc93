"""The borrower pages: the portfolio with its overview, one borrower's timeline, a stored raw answer."""

from __future__ import annotations

import json

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from watcher.console import connection_queries, queries
from watcher.console.chart import (
    STACK_ORDER,
    ChartText,
    WeekCounts,
    first_instant,
    weekly_alerts_svg,
    weekly_counts,
)
from watcher.console.context import Ctx
from watcher.console.endpoint import PAGE_LIMIT, page
from watcher.console.filters import SEVERITIES, borrower_filter, param
from watcher.console.i18n import SEVERITY_LABEL
from watcher.console.pages.connections import connections_section
from watcher.console.rendering import error_page, render
from watcher.models import Borrower, Snapshot
from watcher.store import unpack_raw
from watcher.vocabulary import Severity


@page
def portfolio(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    filters = borrower_filter(request, ctx.user)
    now, zone = ctx.console.clock(), ctx.console.config.watcher.zone
    with ctx.console.store.session() as session:
        rows = queries.portfolio(session, ctx.user, filters, limit=PAGE_LIMIT)
        officers, tags = queries.visible_officers_and_tags(session, ctx.user)
        since = first_instant(now, zone)
        overview = queries.portfolio_overview(session, ctx.user, alerts_since=since, now=now)
    weeks = weekly_counts(overview.alerts, now, zone)
    return render(
        ctx,
        "portfolio.html",
        overview=overview,
        weeks=weeks,
        severities_stacked=STACK_ORDER,
        chart=Markup(weekly_alerts_svg(weeks, _chart_text(ctx, weeks))),
        rows=rows,
        filters=filters,
        officers=officers,
        tags=tags,
        severities=SEVERITIES,
        limited=len(rows) >= PAGE_LIMIT,
        limit=PAGE_LIMIT,
    )


def _chart_text(ctx: Ctx, weeks: list[WeekCounts]) -> ChartText:
    return ChartText(
        title=ctx.t("weekly_alerts"),
        description=ctx.t(
            "weekly_alerts_desc",
            first=weeks[0].iso_label,
            last=weeks[-1].iso_label,
            total=sum(week.total for week in weeks),
        ),
        empty=ctx.t("no_alerts_weeks"),
        severity={severity: SEVERITY_LABEL[ctx.lang][severity] for severity in Severity},
    )


@page
def borrower_timeline(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    borrower_id = param(request, "id")
    with ctx.console.store.session() as session:
        borrower = queries.visible_borrower(session, ctx.user, borrower_id)
        if borrower is None:
            exists = session.get(Borrower, borrower_id) is not None
            if exists or not queries.sees_all(ctx.user):
                return error_page(ctx, 403, ctx.t("forbidden"))
            return error_page(ctx, 404, ctx.t("not_found"))
        data = queries.timeline(session, borrower)
        secures, secures_hidden = queries.secured_by(session, ctx.user, borrower.id)
        linked = connection_queries.party_connections(
            session, ctx.user, borrower.id, language=ctx.lang, hidden_label=ctx.t("hidden_party")
        )
    return render(
        ctx,
        "timeline.html",
        tl=data,
        borrower=borrower,
        secures=secures,
        secures_hidden=secures_hidden,
        connections=connections_section(ctx, linked, borrower),
    )


def _raw_payload(request: Request, ctx: Ctx) -> tuple[Snapshot, Borrower, dict[str, str]] | None:
    """The snapshot of the path with its borrower and raw answer(s); None when the user may not see it."""
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
