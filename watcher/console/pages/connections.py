"""The connections pages: a party's connections section (table and drawn neighbourhood, on its
timeline page) and the portfolio's groups."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from watcher.console import connection_queries, graph
from watcher.console.context import Ctx
from watcher.console.endpoint import page
from watcher.console.graphviz import Drawing, DrawingProblem, draw
from watcher.console.rendering import render
from watcher.labels import link_label, tie_roles_label
from watcher.models import Borrower


@dataclass(frozen=True, slots=True)
class ConnectionCells:
    """One row of the connections table in the reader's language."""

    other_id: str | None  # None: a party the reader may not see
    other_name: str
    via: str
    roles_here: str
    roles_there: str
    basis: str
    since: str
    possible: bool


@dataclass(frozen=True, slots=True)
class ConnectionsSection:
    rows: tuple[ConnectionCells, ...]
    svg: Markup
    notice: str
    description: str
    not_drawn: str


def _cells(ctx: Ctx, line: graph.ConnectionLine) -> ConnectionCells:
    return ConnectionCells(
        other_id=line.other.id if line.other is not None else None,
        other_name=line.other.name if line.other is not None else ctx.t("hidden_party"),
        # A direct link to a hidden party runs through that party itself: said so, not left blank.
        via=line.via_name or (ctx.t("hidden_party") if line.other is None else ""),
        roles_here=graph.roles_text(line.roles_here, line.since_here, ctx.lang),
        roles_there=graph.roles_text(line.roles_there, line.since_there, ctx.lang),
        basis=link_label(line.basis, line.possible, ctx.lang),
        since=_since(ctx, line),
        possible=line.possible,
    )


def _since(ctx: Ctx, line: graph.ConnectionLine) -> str:
    """The registry's start of the link, or the date it was first recorded by (a vendor without
    start dates), or nothing."""
    if line.since is not None:
        return line.since.isoformat()
    if line.recorded_by is not None:
        return ctx.t("link_recorded_by", date=line.recorded_by.isoformat())
    return ""


def connections_section(
    ctx: Ctx, found: connection_queries.PartyConnections, borrower: Borrower
) -> ConnectionsSection:
    """The table's rows and the drawing (or the one line saying why there is none)."""
    hood = found.neighbourhood
    description = ctx.t("neighbourhood_desc", name=borrower.name, parties=hood.parties, nodes=len(hood.nodes))
    drawing = Drawing()
    if hood.edges:
        drawing = draw(
            graph.neighbourhood_dot(hood),
            program=ctx.console.config.console.graphviz,
            layout=graph.layout_engine(hood),
            description=description,
        )
    notice = {
        None: "",
        DrawingProblem.MISSING: ctx.t("graph_missing"),
        DrawingProblem.FAILED: ctx.t("graph_failed"),
    }[drawing.problem]
    return ConnectionsSection(
        rows=tuple(_cells(ctx, line) for line in found.lines),
        svg=Markup(drawing.svg),  # noqa: S704 (sanitized_svg wrote it element by element, escaped)
        notice=notice,
        description=description,
        not_drawn=ctx.t("not_drawn", count=hood.not_drawn, limit=graph.MAX_NODES) if hood.not_drawn else "",
    )


@page
def groups_page(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    with ctx.console.store.session() as session:
        lines = connection_queries.groups(session, ctx.user)
    return render(
        ctx, "groups.html", groups=lines, roles_label=lambda roles: tie_roles_label(roles, ctx.lang)
    )
