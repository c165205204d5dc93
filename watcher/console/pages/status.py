"""`watcher status` as a page."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from watcher.console import queries
from watcher.console.context import Ctx
from watcher.console.endpoint import page
from watcher.console.rendering import render

HEARTBEAT_FRESH = timedelta(minutes=1)
"""An instance whose heartbeat is older than this is shown as not responding, as in `watcher status`."""


@page
def status_page(request: Request, ctx: Ctx) -> Response:
    """`watcher status` as a page, scoped like every page: an officer's counts, failing borrowers and
    deliveries are their own, and no error text of someone else's borrower reaches them."""
    assert ctx.user is not None
    now = ctx.console.clock()
    with ctx.console.store.session() as session:
        summary = queries.scoped_status(session, ctx.user, now)
        usage = queries.vendor_usage(session, now)
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
    return render(ctx, "status.html", summary=summary, failing=failing, instances=instances, usage=usage)
