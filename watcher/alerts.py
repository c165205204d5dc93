"""Alerts as people see them: views for rendering, and (later) their lifecycle."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from watcher.connected import read_link
from watcher.models import Alert, Borrower, ChangeEvent, Delivery, SecuresLink
from watcher.render import AlertView, ChangeLine, GapLine
from watcher.risk_lines import CONNECTED
from watcher.store import SecuringParty, audit
from watcher.vocabulary import AlertKind, AlertStatus, AuditAction, Language, PartyRole, Severity

SourceName = Callable[[str, Language], str]
"""How people read a source's config key in a language (``Config.source_display_name``)."""


def alert_view(
    session: Session, alert_id: int, *, window_days: int, source_name: SourceName | None = None
) -> AlertView:
    """The alert as renderers read it; with ``source_name``, its source by its display name."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise KeyError(f"no alert #{alert_id}")
    view = _view(session, alert, window_days)
    if source_name is None:
        return view
    names = tuple((language, source_name(alert.source, language)) for language in Language)
    return replace(view, source_names=names)


def _view(session: Session, alert: Alert, window_days: int) -> AlertView:
    alert_id = alert.id
    if not AlertKind(alert.kind).about_changes:
        return _monitoring_view(session, alert, window_days)
    borrower = session.get(Borrower, alert.borrower_id)
    assert borrower is not None
    events = session.exec(
        select(ChangeEvent).where(ChangeEvent.alert_id == alert_id).order_by(col(ChangeEvent.id))
    )
    party = SecuringParty.from_detail(json.loads(alert.detail or "{}").get("party") or {})
    changes = tuple(change_line_of(event) for event in events)
    return AlertView(
        alert_id=alert.id,
        borrower_id=borrower.id,
        borrower_name=borrower.name,
        severity=Severity(alert.severity),
        source=alert.source,
        detected_at=alert.created_at,
        changes=changes,
        occasions_in_window=alert.occasions_in_window,
        window_days=window_days,
        recommend_early_repayment=alert.recommend_early_repayment,
        signatory_mismatch=alert.signatory_mismatch,
        legal_rep_on_file=borrower.legal_rep_on_file,
        kind=AlertKind(alert.kind),
        party_role=party.role if party else PartyRole.BORROWER,
        secures=party.secures if party else (),
        other_readers=_other_readers(session, changes),
    )


def _other_readers(
    session: Session, changes: tuple[ChangeLine, ...]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The officers who may see each other party the connected lines name, as the console scopes
    them (``console.queries``): the party's own officer, and the officers of the borrowers it secures
    (as a guarantor, a pledgor or a borrower guaranteeing them)."""
    others = sorted(
        {
            link.other
            for change in changes
            if change.category in CONNECTED
            and (link := read_link(change.before, change.after)) is not None
            and link.other
        }
    )
    if not others:
        return ()
    readers: dict[str, set[str]] = {other: set() for other in others}
    for party_id, officer in session.exec(
        select(Borrower.id, Borrower.officer).where(col(Borrower.id).in_(others))
    ):
        if officer:
            readers[party_id].add(officer)
    secured = (
        select(SecuresLink.party_id, Borrower.officer)
        .join(Borrower, col(Borrower.id) == col(SecuresLink.borrower_id))
        .where(col(SecuresLink.party_id).in_(others))
    )
    for party_id, officer in session.exec(secured):
        if officer:
            readers[party_id].add(officer)
    return tuple((other, tuple(sorted(readers[other]))) for other in others)


def change_line_of(event: ChangeEvent) -> ChangeLine:
    """A stored change event as an alert line."""
    return ChangeLine.of(event)


def _monitoring_view(session: Session, alert: Alert, window_days: int) -> AlertView:
    """A monitoring-gap or recovery alert: its borrowers as they were when it was raised."""
    detail = json.loads(alert.detail or "{}")
    lines = tuple(
        GapLine(
            borrower_id=entry["id"],
            name=entry.get("name") or entry["id"],
            officer=entry.get("officer"),
            since=datetime.fromisoformat(entry["since"]) if entry.get("since") else None,
            error_kind=entry.get("error_kind"),
            readers=tuple(s.get("officer") for s in entry.get("secures", []) if s.get("officer")),
        )
        for entry in detail.get("borrowers", [])
    )
    borrower = session.get(Borrower, alert.borrower_id) if alert.borrower_id else None
    entries = detail.get("borrowers", [])
    party = SecuringParty.from_detail(entries[0]) if borrower is not None and len(entries) == 1 else None
    return AlertView(
        alert_id=alert.id,
        borrower_id=borrower.id if borrower else "",
        borrower_name=borrower.name if borrower else "",
        severity=Severity(alert.severity),
        source=alert.source,
        detected_at=alert.created_at,
        changes=(),
        occasions_in_window=0,
        window_days=window_days,
        recommend_early_repayment=False,
        kind=AlertKind(alert.kind),
        gap=lines,
        party_role=party.role if party else PartyRole.BORROWER,
        secures=party.secures if party else (),
        **_feed_fields(detail),
    )


def _feed_fields(detail: dict) -> dict[str, Any]:
    """A change feed's gap or recovery (``watcher.feeds``): which feed, since when, what failed."""
    if not detail.get("feed"):
        return {}
    since = detail.get("since")
    return {
        "feed": str(detail["feed"]),
        "feed_since": datetime.fromisoformat(since) if since else None,
        "feed_error": str(detail.get("error") or ""),
    }


def delivery_targets_of(session: Session, alert_id: int) -> list[str]:
    return list(
        session.exec(select(Delivery.target).where(Delivery.alert_id == alert_id).order_by(col(Delivery.id)))
    )


class AlertStateError(Exception):
    """The requested lifecycle step does not apply to the alert's current state."""


def list_alerts(
    session: Session, *, status: AlertStatus | None = AlertStatus.OPEN
) -> list[tuple[Alert, Borrower | None]]:
    """Alerts with their borrower, newest first; ``status=None`` for all. An alert about a whole
    source (a monitoring gap of many borrowers) has no single borrower."""
    query = select(Alert, Borrower).join(Borrower, col(Borrower.id) == col(Alert.borrower_id), isouter=True)
    if status is not None:
        query = query.where(Alert.status == status)
    return list(session.exec(query.order_by(col(Alert.created_at).desc(), col(Alert.id).desc())))


def acknowledge(
    session: Session,
    alert_id: int,
    *,
    by: str,
    note: str | None,
    at: datetime,
    actor: str | None = None,
) -> Alert:
    """open → acknowledged, recording who, when and why in the alert and the audit log."""
    alert = _get(session, alert_id)
    if alert.status != AlertStatus.OPEN:
        raise AlertStateError(f"alert #{alert_id} is {alert.status}, only an open alert can be acknowledged")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by, alert.acknowledged_at, alert.note = by, at, note
    session.add(alert)
    _audit_step(session, AuditAction.ALERT_ACKNOWLEDGED, alert_id, by=by, note=note, at=at, actor=actor)
    return alert


def close(
    session: Session,
    alert_id: int,
    *,
    by: str,
    note: str | None,
    at: datetime,
    actor: str | None = None,
) -> Alert:
    """open or acknowledged → closed; closing is the end of the alert's handling."""
    alert = _get(session, alert_id)
    if alert.status == AlertStatus.CLOSED:
        raise AlertStateError(f"alert #{alert_id} is already closed")
    alert.status, alert.closed_by, alert.closed_at = AlertStatus.CLOSED, by, at
    if note:
        alert.note = f"{alert.note}\n{note}" if alert.note else note
    session.add(alert)
    _audit_step(session, AuditAction.ALERT_CLOSED, alert_id, by=by, note=note, at=at, actor=actor)
    return alert


def _audit_step(
    session: Session,
    action: AuditAction,
    alert_id: int,
    *,
    by: str,
    note: str | None,
    at: datetime,
    actor: str | None,
) -> None:
    """The step's audit row: by the person (CLI, console), or by ``actor`` (an API token, which acts
    for someone else) with the person it named as ``by`` in the detail."""
    detail = {"note": note or ""} if actor is None else {"note": note or "", "by": by}
    audit(
        session,
        actor=actor or by,
        action=action,
        subject_type="alert",
        subject_id=alert_id,
        detail=detail,
        at=at,
    )


def _get(session: Session, alert_id: int) -> Alert:
    """The alert, locked until the transaction ends: two people handling it at once cannot both
    see it open and both record their step (PostgreSQL: FOR UPDATE; SQLite: BEGIN IMMEDIATE)."""
    alert = session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
    if alert is None:
        raise KeyError(f"no alert #{alert_id}")
    return alert
