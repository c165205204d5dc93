"""The console's reads, every one scoped to what the signed-in user may see.

An officer sees the borrowers whose ``officer`` is their ``officer_id``, and the guarantors and
pledgors securing them (whose alerts reach that officer), and nothing else: their alerts, change
events, raw responses and exports. A reviewer sees every borrower. Scoping is applied
in SQL (:func:`scoped`, from :mod:`watcher.visibility`, which the API shares), so no page or export
can forget it by filtering too late.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar

from sqlalchemy import Case, Select, case, func, literal
from sqlmodel import Session, col, or_, select

from watcher import visibility
from watcher.console.risk import RiskProfile, risk_profile
from watcher.models import (
    Alert,
    AuditLog,
    Borrower,
    ChangeEvent,
    Delivery,
    SecuresLink,
    Snapshot,
    SourceHealth,
    SourceSignal,
    User,
)
from watcher.record import record_from_dict
from watcher.store import (
    OVERDUE_AFTER,
    HistoryRow,
    StatusSummary,
    billed_calls_in_last_day,
    history,
    in_outbox_state,
    latest_snapshot,
    status_summary,
    stored_id,
    unavailable_signals,
)
from watcher.visibility import can_see, scoped, sees_all
from watcher.vocabulary import AlertStatus, AlertStatusFilter, OutboxState, Severity

__all__ = ["can_see", "scoped", "sees_all"]  # the scoping, from watcher.visibility, re-exported

SEVERITY_ORDER = Severity.most_severe_first()
FAILING_AFTER = 3
"""Consecutive failed checks from which the portfolio marks a borrower: one failure is noise."""

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])
"""A SELECT that keeps its own type (entity, scalar or columns) through the conditions added to it."""


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class BorrowerFilter:
    """Portfolio filters; also choose the borrowers of the history page and its export."""

    search: str = ""
    officer: str = ""
    tag: str = ""
    severity: str = ""
    borrower_id: str = ""

    @property
    def empty(self) -> bool:
        return not (self.search or self.officer or self.tag or self.severity or self.borrower_id)


def _filtered(query: _Query, filters: BorrowerFilter) -> _Query:
    """``query`` (which involves Borrower) limited to the borrowers ``filters`` selects."""
    if filters.borrower_id:
        query = query.where(col(Borrower.id) == filters.borrower_id)
    if filters.search:
        pattern = f"%{_like_escape(filters.search.strip())}%"
        query = query.where(
            or_(
                col(Borrower.name).ilike(pattern, escape="\\"),
                col(Borrower.id).ilike(pattern, escape="\\"),
                col(Borrower.registry_id).ilike(pattern, escape="\\"),
            )
        )
    if filters.officer:
        query = query.where(col(Borrower.officer) == filters.officer)
    if filters.tag:
        tags = literal(",") + col(Borrower.tags) + literal(",")
        query = query.where(tags.like(f"%,{_like_escape(filters.tag)},%", escape="\\"))
    if filters.severity:
        query = query.where(
            col(Borrower.id).in_(
                select(Alert.borrower_id).where(
                    Alert.status == AlertStatus.OPEN, Alert.severity == filters.severity
                )
            )
        )
    return query


@dataclass(frozen=True, slots=True)
class PortfolioRow:
    borrower: Borrower
    open_alerts: int
    top_severity: str | None
    secures: tuple[Borrower, ...] = ()
    """For a party securing borrowers: those it secures that the user may see."""
    secures_hidden: int = 0
    """... and how many others it secures (named to nobody who may not see them)."""

    @property
    def failing(self) -> bool:
        """Checks keep failing; an inactive borrower is not checked, so never marked."""
        return self.borrower.active and self.borrower.consecutive_failures >= FAILING_AFTER


def portfolio(session: Session, user: User, filters: BorrowerFilter, *, limit: int) -> list[PortfolioRow]:
    query = _filtered(scoped(select(Borrower), user), filters)
    borrowers = list(session.exec(query.order_by(col(Borrower.id)).limit(limit)))
    ids = [b.id for b in borrowers]
    severities: dict[str | None, list[str]] = {}
    if ids:
        for borrower_id, severity in session.exec(
            select(Alert.borrower_id, Alert.severity).where(
                Alert.status == AlertStatus.OPEN, col(Alert.borrower_id).in_(ids)
            )
        ):
            severities.setdefault(borrower_id, []).append(severity)
    secured = _secured_of(session, user, ids)
    return [
        PortfolioRow(
            b,
            len(severities.get(b.id, ())),
            max(severities[b.id], key=lambda s: Severity(s).rank) if b.id in severities else None,
            *secured.get(b.id, ((), 0)),
        )
        for b in borrowers
    ]


def secured_by(session: Session, user: User, party_id: str) -> tuple[tuple[Borrower, ...], int]:
    """The borrowers a guarantor or pledgor secures that ``user`` may see, and how many others."""
    return _secured_of(session, user, [party_id]).get(party_id, ((), 0))


def _secured_of(
    session: Session, user: User, party_ids: Sequence[str]
) -> dict[str, tuple[tuple[Borrower, ...], int]]:
    """For each guarantor or pledgor among ``party_ids``: the secured borrowers ``user`` may see, and
    how many others it secures."""
    if not party_ids:
        return {}
    links = list(session.exec(select(SecuresLink).where(col(SecuresLink.party_id).in_(list(party_ids)))))
    wanted = sorted({link.borrower_id for link in links})
    visible = {
        b.id: b for b in session.exec(scoped(select(Borrower), user).where(col(Borrower.id).in_(wanted)))
    }
    result: dict[str, tuple[tuple[Borrower, ...], int]] = {}
    for link in sorted(links, key=lambda link: (link.party_id, link.borrower_id)):
        shown, hidden = result.get(link.party_id, ((), 0))
        if link.borrower_id in visible:
            result[link.party_id] = ((*shown, visible[link.borrower_id]), hidden)
        else:
            result[link.party_id] = (shown, hidden + 1)
    return result


def visible_officers_and_tags(session: Session, user: User) -> tuple[list[str], list[str]]:
    """Officer ids and tags present among the borrowers ``user`` sees, for the filter menus."""
    rows = session.exec(scoped(select(Borrower.officer, Borrower.tags), user).distinct())
    officers: set[str] = set()
    tags: set[str] = set()
    for officer, tag_text in rows:
        if officer:
            officers.add(officer)
        tags.update(tag for tag in (tag_text or "").split(",") if tag)
    return sorted(officers), sorted(tags)


def visible_borrower(session: Session, user: User, borrower_id: str) -> Borrower | None:
    """The borrower when ``user`` may see it; None when it is missing or someone else's."""
    borrower = session.get(Borrower, borrower_id)
    return borrower if borrower is not None and can_see(session, user, borrower) else None


# -- alerts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: AlertStatusFilter = AlertStatusFilter.OPEN
    severity: str = ""
    officer: str = ""
    borrower_id: str = ""


def _severity_rank() -> Case[int]:
    return case({name: rank for rank, name in enumerate(SEVERITY_ORDER)}, value=col(Alert.severity), else_=9)


def _visible_alerts(query: _Query, user: User) -> _Query:
    """``query`` (of Alert, with Borrower outer-joined) limited to the alerts ``user`` may see."""
    return visibility.visible_alerts(query, user)


def alerts(
    session: Session, user: User, filters: AlertFilter, *, limit: int | None
) -> list[tuple[Alert, Borrower | None]]:
    """Alerts with their borrower, most severe first, then newest first. An alert about a whole
    source (a monitoring gap) has no borrower; an officer sees it when it lists one of theirs."""
    query = _visible_alerts(
        select(Alert, Borrower).join(Borrower, col(Borrower.id) == col(Alert.borrower_id), isouter=True), user
    )
    if filters.status.status is not None:
        query = query.where(Alert.status == filters.status.status)
    if filters.severity:
        query = query.where(Alert.severity == filters.severity)
    if filters.officer:
        query = query.where(col(Borrower.officer) == filters.officer)
    if filters.borrower_id:
        query = query.where(col(Borrower.id) == filters.borrower_id)
    query = query.order_by(_severity_rank(), col(Alert.created_at).desc(), col(Alert.id).desc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def may_handle_alert(session: Session, user: User, alert_id: int) -> bool:
    """Whether ``user`` may acknowledge or close the alert: one they can see, and for an alert about a
    whole source (which lists other officers' borrowers too) only a reviewer."""
    alert = visible_alert(session, user, alert_id)
    return alert is not None and visibility.may_handle(user, alert)


def visible_alert(session: Session, user: User, alert_id: int) -> Alert | None:
    return visibility.visible_alert(session, user, alert_id)


# -- history --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    borrowers: BorrowerFilter = BorrowerFilter()
    categories: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    zone: tzinfo = UTC  # the reader's: "since 2026-12-06" starts at that day's midnight where they are


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time this project stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def scoped_history(session: Session, user: User, filters: HistoryFilter) -> list[HistoryRow]:
    """``watcher history`` rows of the borrowers the filters select among those ``user`` sees.

    ``store.history`` reads an empty borrower list as "all borrowers", so the visible set is
    always passed explicitly unless a reviewer asked for everything; an empty set returns nothing.
    """
    if sees_all(user) and filters.borrowers.empty:
        borrower_ids: Sequence[str] = ()
    else:
        borrower_ids = list(session.exec(_filtered(scoped(select(Borrower.id), user), filters.borrowers)))
        if not borrower_ids:
            return []
    rows = history(
        session,
        borrower_ids=borrower_ids,
        since=_start_of(filters.since, filters.zone) if filters.since else None,
        categories=filters.categories,
    )
    if filters.until is not None:
        end = _start_of(filters.until + timedelta(days=1), filters.zone)
        rows = [row for row in rows if as_utc(row.detected_at) < end]
    return rows


# -- timeline -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """A stored registry answer as the timeline lists it; its raw payload stays in the database."""

    id: int
    fetched_at: datetime
    source: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Timeline:
    borrower: Borrower
    events: list[ChangeEvent]
    alerts: dict[int, Alert]
    snapshots: list[SnapshotEntry]
    audit: list[AuditLog]
    risk: RiskProfile | None = None  # control and risk listings of the latest record, when fetched
    risk_as_of: datetime | None = None


def timeline(session: Session, borrower: Borrower) -> Timeline:
    """Every change event of ``borrower`` oldest first, with its alerts, snapshots and audit trail."""
    events = list(
        session.exec(
            select(ChangeEvent)
            .where(ChangeEvent.borrower_id == borrower.id)
            .order_by(col(ChangeEvent.detected_at), col(ChangeEvent.id))
        )
    )
    alert_rows = list(
        session.exec(select(Alert).where(Alert.borrower_id == borrower.id).order_by(col(Alert.id)))
    )
    snapshots = [
        SnapshotEntry(stored_id(snapshot_id), fetched_at, source, content_hash)
        for snapshot_id, fetched_at, source, content_hash in session.exec(
            select(Snapshot.id, Snapshot.fetched_at, Snapshot.source, Snapshot.content_hash)
            .where(Snapshot.borrower_id == borrower.id)
            .order_by(col(Snapshot.fetched_at), col(Snapshot.id))
        )
    ]
    alert_ids = [str(alert.id) for alert in alert_rows]
    trail = list(
        session.exec(
            select(AuditLog)
            .where(
                or_(
                    (col(AuditLog.subject_type) == "alert") & col(AuditLog.subject_id).in_(alert_ids),
                    (col(AuditLog.subject_type) == "borrower") & (col(AuditLog.subject_id) == borrower.id),
                )
            )
            .order_by(col(AuditLog.at), col(AuditLog.id))
        )
    )
    latest = latest_snapshot(session, borrower.id)
    risk = risk_profile(record_from_dict(json.loads(latest.record_json))) if latest else None
    return Timeline(
        borrower,
        events,
        {stored_id(alert): alert for alert in alert_rows},
        snapshots,
        trail,
        risk=risk if risk is not None and risk.known else None,
        risk_as_of=latest.fetched_at if latest else None,
    )


def visible_snapshot(session: Session, user: User, snapshot_id: int) -> tuple[Snapshot, Borrower] | None:
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None:
        return None
    borrower = session.get(Borrower, snapshot.borrower_id)
    if borrower is None or not can_see(session, user, borrower):
        return None
    return snapshot, borrower


def open_alert_count(session: Session, user: User) -> int:
    query = scoped(
        select(func.count()).select_from(Alert).join(Borrower, col(Borrower.id) == col(Alert.borrower_id)),
        user,
    ).where(Alert.status == AlertStatus.OPEN)
    return session.exec(query).one()


# -- the portfolio overview -----------------------------------------------------------------------

NO_OPEN_ALERT = "none"
"""The overview's bucket of borrowers without an open alert."""


@dataclass(frozen=True, slots=True)
class SourceOverview:
    """One source as the overview shows it: the user's borrowers on it, how many of them keep failing,
    their latest successful check, and the signals the source cannot fetch (about the account)."""

    source: str
    borrowers: int
    failing: int
    last_success_at: datetime | None
    unavailable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Overview:
    """What the portfolio page draws above its table, all of it scoped to the user's borrowers.

    ``by_severity``: borrowers by the highest severity of their open alerts (``none`` first, then
    info up to critical); ``alerts``: (creation time, severity) of the alerts created since the bound
    asked for, to be counted per week; ``sources``: per source, by name.
    """

    by_severity: dict[str, int]
    alerts: list[tuple[datetime, str]]
    sources: list[SourceOverview]

    @property
    def borrowers(self) -> int:
        return sum(self.by_severity.values())


def _highest_open_severity(session: Session, user: User) -> dict[str, int]:
    highest: dict[str, Severity | None] = {}
    query = scoped(
        select(Borrower.id, Alert.severity).join(
            Alert,
            (col(Alert.borrower_id) == col(Borrower.id)) & (col(Alert.status) == AlertStatus.OPEN),
            isouter=True,
        ),
        user,
    )
    for borrower_id, severity in session.exec(query):
        known = Severity(severity) if severity in SEVERITY_ORDER else None
        current = highest.get(borrower_id)
        if current is None or (known is not None and known.rank > current.rank):
            highest[borrower_id] = known
    counts = {NO_OPEN_ALERT: 0} | {severity.value: 0 for severity in reversed(SEVERITY_ORDER)}
    for top in highest.values():
        counts[top.value if top is not None else NO_OPEN_ALERT] += 1
    return counts


def _source_overview(session: Session, user: User, usage: VendorUsage) -> list[SourceOverview]:
    failing = func.sum(case((col(Borrower.consecutive_failures) >= FAILING_AFTER, 1), else_=0))
    query = scoped(
        select(Borrower.source, func.count(), failing, func.max(Borrower.last_success_at)).group_by(
            col(Borrower.source)
        ),
        user,
    )
    rows = session.exec(query.order_by(col(Borrower.source)))
    return [
        SourceOverview(
            source,
            borrowers,
            int(failing_count or 0),
            as_utc(last_success) if last_success is not None else None,
            tuple(signal.signal for signal in usage.unavailable.get(source, ())),
        )
        for source, borrowers, failing_count, last_success in rows
    ]


def portfolio_overview(session: Session, user: User, *, alerts_since: datetime, now: datetime) -> Overview:
    """The overview of the borrowers ``user`` sees: every number counts only those (an officer's own)."""
    created = _visible_alerts(
        select(Alert.created_at, Alert.severity)
        .join(Borrower, col(Borrower.id) == col(Alert.borrower_id), isouter=True)
        .where(col(Alert.created_at) >= alerts_since.astimezone(UTC)),
        user,
    )
    return Overview(
        by_severity=_highest_open_severity(session, user),
        alerts=[(as_utc(created_at), severity) for created_at, severity in session.exec(created)],
        sources=_source_overview(session, user, vendor_usage(session, now)),
    )


# -- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VendorUsage:
    """What the vendors' accounts cost and refuse: billed calls per source over the last 24 hours
    and the signals a source cannot fetch. About sources, not borrowers: the same for every user."""

    billed_calls: dict[str, int]
    unavailable: dict[str, list[SourceSignal]]


def vendor_usage(session: Session, now: datetime) -> VendorUsage:
    unavailable: dict[str, list[SourceSignal]] = {}
    for row in unavailable_signals(session, now):
        unavailable.setdefault(row.source, []).append(row)
    return VendorUsage(billed_calls_in_last_day(session, now), unavailable)


def scoped_status(session: Session, user: User, now: datetime) -> StatusSummary:
    """``watcher status`` for ``user``: a reviewer sees it whole; for an officer the borrower counts,
    the failing borrowers and the delivery backlog cover their own borrowers only, and a source's
    last error (the text of whichever borrower failed last, e.g. ``HTTP 500 on /enheter/<id>``)
    is reduced to its kind."""
    summary = status_summary(session, now)
    if sees_all(user):
        return summary
    count = func.count()
    active = col(Borrower.active).is_(True)
    mine = scoped(select(count).select_from(Borrower), user)
    failing = scoped(select(Borrower).where(active, Borrower.consecutive_failures > 0), user)

    def deliveries(state: OutboxState) -> int:
        query = (
            select(count)
            .select_from(Delivery)
            .join(Alert, col(Alert.id) == col(Delivery.alert_id))
            .join(Borrower, col(Borrower.id) == col(Alert.borrower_id))
        )
        return session.exec(scoped(query, user).where(in_outbox_state(state))).one()

    return replace(
        summary,
        borrowers=session.exec(mine).one(),
        inactive=session.exec(mine.where(col(Borrower.active).is_(False))).one(),
        due=session.exec(mine.where(active, col(Borrower.next_check_at) <= now)).one(),
        overdue=session.exec(mine.where(active, col(Borrower.next_check_at) <= now - OVERDUE_AFTER)).one(),
        last_check_at=session.exec(scoped(select(func.max(Borrower.last_checked_at)), user)).one(),
        failing_borrowers=list(session.exec(failing.order_by(col(Borrower.id)).limit(50))),
        sources=[
            SourceHealth(
                source=health.source,
                last_success_at=health.last_success_at,
                last_failure_at=health.last_failure_at,
                consecutive_failures=health.consecutive_failures,
                last_error=None,
                last_error_kind=health.last_error_kind,
            )
            for health in summary.sources
        ],
        deliveries_pending=deliveries(OutboxState.PENDING),
        deliveries_retrying=deliveries(OutboxState.RETRYING),
        deliveries_dead=deliveries(OutboxState.DEAD),
        deliveries_held=deliveries(OutboxState.HELD),
    )
