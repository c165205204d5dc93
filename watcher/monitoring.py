"""Monitoring gaps: a borrower whose checks have all failed for longer than ``[rules] failing_after``
is not being watched, and the people who rely on the watch must hear so, once; and once more, as a
recovery notice, when its checks succeed again.

A gap alert goes through the same outbox, lifecycle and audit log as a change alert, but it is not
part of the change history (it has no change events). When most borrowers of one source fail
together (the registry is down, the key expired), one alert names the source and lists them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from watcher.config import Config
from watcher.models import Alert, AlertBorrower, Borrower
from watcher.routing import PlannedDelivery, plan_deliveries
from watcher.store import open_alert_deliveries, securer_ids, securing_party
from watcher.vocabulary import AlertKind, ErrorKind, Severity

GAP, RESTORED = AlertKind.MONITORING_GAP, AlertKind.MONITORING_RESTORED
GAP_SEVERITY, RESTORED_SEVERITY = Severity.HIGH, Severity.INFO


@dataclass(frozen=True, slots=True)
class GapReport:
    """Alerts opened by one scan: gaps and recoveries."""

    gaps: tuple[int, ...] = ()
    restored: tuple[int, ...] = ()

    @property
    def alert_ids(self) -> tuple[int, ...]:
        return self.gaps + self.restored


def scan_monitoring_gaps(session: Session, config: Config, now: datetime) -> GapReport:
    """Open gap alerts for borrowers failing longer than ``failing_after`` and recovery notices for
    borrowers whose gap alert is out and whose checks succeed again. Cheap when nothing is wrong:
    the queries read only borrowers that are failing or have a gap alert out (indexed columns)."""
    threshold = now - config.rules.failing_after
    overdue = list(
        session.exec(
            select(Borrower)
            .where(
                col(Borrower.active).is_(True),
                col(Borrower.failing_since).is_not(None),
                col(Borrower.failing_since) <= threshold,
                col(Borrower.gap_alert_id).is_(None),
            )
            .order_by(col(Borrower.id))
        )
    )
    sources = sorted({borrower.source for borrower in overdue})
    gaps = [alert_id for source in sources for alert_id in _open_gaps(session, config, source, overdue, now)]
    return GapReport(tuple(gaps), tuple(_restore(session, config, now)))


def _open_gaps(
    session: Session, config: Config, source: str, overdue: Sequence[Borrower], now: datetime
) -> list[int]:
    """Gap alerts for ``source``'s overdue borrowers: one for the source when most of it fails (every
    failing borrower of it listed, and later ones joining that alert quietly), else one each."""
    outage = _open_source_gap(session, source)
    failing = _failing(session, source)
    unalerted = [borrower for borrower in failing if borrower.gap_alert_id is None]
    if outage is not None:
        _join(session, outage, unalerted)
        return []
    if len(unalerted) >= 2 and len(failing) * 2 > _active_count(session, source):
        alert_id = _open(
            session,
            config,
            GAP,
            GAP_SEVERITY,
            source,
            unalerted,
            now,
            _gap_detail(session, source, unalerted),
        )
        _link(session, alert_id, unalerted)
        return [alert_id]
    opened = []
    for borrower in (b for b in overdue if b.source == source):
        alert_id = _open(
            session,
            config,
            GAP,
            GAP_SEVERITY,
            source,
            [borrower],
            now,
            _gap_detail(session, source, [borrower]),
        )
        _link(session, alert_id, [borrower])
        opened.append(alert_id)
    return opened


def _restore(session: Session, config: Config, now: datetime) -> list[int]:
    """One recovery notice per gap alert once every borrower it covers succeeds again: a source's
    outage ends with one notice, not one per borrower as they come back at their own slots."""
    covered = session.exec(
        select(col(Borrower.gap_alert_id)).where(
            col(Borrower.gap_alert_id).is_not(None), col(Borrower.failing_since).is_(None)
        )
    )
    recovered_gaps = sorted({gap_alert_id for gap_alert_id in covered if gap_alert_id is not None})
    restored = []
    for gap_alert_id in recovered_gaps:
        members = list(
            session.exec(
                select(Borrower).where(Borrower.gap_alert_id == gap_alert_id).order_by(col(Borrower.id))
            )
        )
        if any(borrower.failing_since is not None for borrower in members):
            continue
        source = members[0].source
        securers = securer_ids(session)
        detail = {
            "source": source,
            "gap_alert_id": gap_alert_id,
            "borrowers": [_entry(session, b, securers) for b in members],
        }
        restored.append(_open(session, config, RESTORED, RESTORED_SEVERITY, source, members, now, detail))
        _link(session, None, members)
    return restored


def _link(session: Session, gap_alert_id: int | None, borrowers: Sequence[Borrower]) -> None:
    """Point ``borrowers`` at the gap alert that covers them (None: no gap alert out)."""
    for borrower in borrowers:
        borrower.gap_alert_id = gap_alert_id
        session.add(borrower)


def _join(session: Session, outage_id: int, borrowers: Sequence[Borrower]) -> None:
    """Borrowers that start failing during a source's outage join its alert, without a new message."""
    if not borrowers:
        return
    outage = session.get(Alert, outage_id)
    assert outage is not None
    detail = json.loads(outage.detail or "{}")
    securers = securer_ids(session)
    detail["borrowers"] = [
        *detail.get("borrowers", []),
        *(_entry(session, borrower, securers) for borrower in borrowers),
    ]
    outage.detail = json.dumps(detail, ensure_ascii=False, sort_keys=True)
    session.add(outage)
    for borrower in borrowers:
        session.add(AlertBorrower(alert_id=outage_id, borrower_id=borrower.id))
    _link(session, outage_id, borrowers)


def _open_source_gap(session: Session, source: str) -> int | None:
    """The source's gap alert about many borrowers that still covers some of them, if any."""
    return session.exec(
        select(Alert.id)
        .join(Borrower, col(Borrower.gap_alert_id) == col(Alert.id))
        .where(Alert.kind == GAP, col(Alert.borrower_id).is_(None), Alert.source == source)
        .limit(1)
    ).first()


def _failing(session: Session, source: str) -> list[Borrower]:
    """The source's active borrowers whose last checks failed, however long ago that began."""
    return list(
        session.exec(
            select(Borrower)
            .where(
                col(Borrower.active).is_(True),
                Borrower.source == source,
                col(Borrower.failing_since).is_not(None),
            )
            .order_by(col(Borrower.id))
        )
    )


def _active_count(session: Session, source: str) -> int:
    return session.exec(
        select(func.count())
        .select_from(Borrower)
        .where(col(Borrower.active).is_(True), Borrower.source == source)
    ).one()


def _entry(session: Session, borrower: Borrower, securers: Collection[str]) -> dict:
    """One party of a gap alert; a guarantor's or pledgor's also names the borrowers it secures."""
    return {
        "id": borrower.id,
        "name": borrower.name,
        "officer": borrower.officer,
        "since": borrower.failing_since.isoformat() if borrower.failing_since else None,
        "error_kind": borrower.last_error_kind,
        **(party.as_detail() if (party := securing_party(session, borrower, securers=securers)) else {}),
    }


def _gap_detail(session: Session, source: str, group: Sequence[Borrower]) -> dict:
    kinds = Counter(borrower.last_error_kind or ErrorKind.UNKNOWN for borrower in group)
    since = min(borrower.failing_since for borrower in group if borrower.failing_since is not None)
    securers = securer_ids(session)
    return {
        "source": source,
        "since": since.isoformat(),
        "error_kind": kinds.most_common(1)[0][0],
        "borrowers": [_entry(session, borrower, securers) for borrower in group],
    }


def _open(
    session: Session,
    config: Config,
    kind: AlertKind,
    severity: Severity,
    source: str,
    group: Sequence[Borrower],
    now: datetime,
    detail: dict,
) -> int:
    """One alert about ``group`` (one borrower, or several of one source), with its outbox rows;
    returns its id."""
    alert = Alert(
        borrower_id=group[0].id if len(group) == 1 else None,
        source=source,
        severity=severity.value,
        kind=kind,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True),
        created_at=now,
    )
    session.add(alert)
    session.flush()
    assert alert.id is not None
    for borrower in group:
        session.add(AlertBorrower(alert_id=alert.id, borrower_id=borrower.id))
    planned: dict[tuple[str, str], PlannedDelivery] = {}
    securers = securer_ids(session)
    for borrower in group:
        party = securing_party(session, borrower, securers=securers)
        for delivery in plan_deliveries(
            config,
            officer=borrower.officer,
            tags=borrower.tag_list,
            source=source,
            severity=severity,
            now=now,
            secured_officers=party.officers if party else (),
        ):
            planned.setdefault((delivery.target, delivery.url_fingerprint), delivery)
    detail = {
        "kind": kind,
        "source": source,
        "borrowers": [borrower.id for borrower in group],
        "severity": severity.value,
    }
    open_alert_deliveries(session, alert.id, list(planned.values()), now, detail)
    return alert.id


def open_source_alert(
    session: Session,
    config: Config,
    kind: AlertKind,
    severity: Severity,
    source: str,
    now: datetime,
    detail: dict,
) -> int:
    """An alert about a source as a whole (its change feed fell back to polling, or follows again),
    with its outbox rows: it reaches whoever the source's alerts reach without an officer (the risk
    desk, the source's channels). Returns its id."""
    alert = Alert(
        borrower_id=None,
        source=source,
        severity=severity.value,
        kind=kind,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True),
        created_at=now,
    )
    session.add(alert)
    session.flush()
    assert alert.id is not None
    planned = plan_deliveries(config, officer=None, tags=(), source=source, severity=severity, now=now)
    summary = {"kind": kind, "source": source, "borrowers": [], "severity": severity.value}
    open_alert_deliveries(session, alert.id, planned, now, summary)
    return alert.id
