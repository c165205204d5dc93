"""What a page's query string asks for, read into the filters of :mod:`watcher.console.queries`.

A parameter outside its allowed values is ignored (the page shows everything instead); only a
malformed date is an error (:class:`BadRequest`, answered with 400)."""

from __future__ import annotations

from datetime import date, tzinfo

from starlette.requests import Request

from watcher.console import queries
from watcher.models import User
from watcher.record import Category
from watcher.vocabulary import AlertStatusFilter

SEVERITIES = queries.SEVERITY_ORDER
ALERT_STATUSES = tuple(AlertStatusFilter)


class BadRequest(Exception):
    """A query parameter the page cannot read."""


def param(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> str:
    """A query parameter, stripped; empty when missing or not one of ``allowed``."""
    value = request.query_params.get(name, "").strip()
    if allowed is not None and value not in allowed:
        return ""
    return value


def day(request: Request, name: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter; None when empty."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: expected a date like 2026-01-31") from None


def borrower_filter(request: Request, user: User) -> queries.BorrowerFilter:
    """The portfolio's filters; only a reviewer may filter by officer."""
    return queries.BorrowerFilter(
        search=param(request, "q"),
        officer=param(request, "officer") if queries.sees_all(user) else "",
        tag=param(request, "tag"),
        severity=param(request, "severity", SEVERITIES),
        borrower_id=param(request, "borrower"),
    )


def alert_filter(request: Request, user: User) -> queries.AlertFilter:
    """The inbox's filters (open alerts by default); only a reviewer may filter by officer."""
    return queries.AlertFilter(
        status=AlertStatusFilter(param(request, "status", ALERT_STATUSES) or AlertStatusFilter.OPEN),
        severity=param(request, "severity", SEVERITIES),
        officer=param(request, "officer") if queries.sees_all(user) else "",
        borrower_id=param(request, "borrower"),
    )


def history_filter(request: Request, user: User, zone: tzinfo) -> queries.HistoryFilter:
    """The history page's and its export's filters: the portfolio's, categories, and a date range
    (whole days in ``zone``, the reader's)."""
    known = {category.value for category in Category}
    categories = tuple(c for c in request.query_params.getlist("category") if c in known)
    return queries.HistoryFilter(
        borrowers=borrower_filter(request, user),
        categories=categories,
        since=day(request, "since"),
        until=day(request, "until"),
        zone=zone,
    )
