"""Monitoring gaps: a borrower whose checks have all failed for longer than ``[rules] failing_after``
is not being watched, and the people who rely on the watch must hear so, once; and once more, as a
recovery notice, when its checks succeed again.

A gap alert goes through the same outbox, lifecycle and audit log as a change alert, but it is not
part of the change history (it has no change events). When most borrowers of one source fail
together (the registry is down, the key expired), one alert names the source and lists them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from watcher.config import Config
from watcher.models import Alert, AlertBorrower, Borrower
from watcher.routing import PlannedDelivery, plan_deliveries
from watcher.store import add_deliveries, audit
from watcher.vocabulary import AlertKind, AuditAction, ErrorKind, Severity

SYSTEM_ACTOR = "watcher"
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
    both queries read only borrowers that are failing or have a gap alert out (indexed columns)."""
    threshold = now - config.rules.failing_after
    gapped = list(
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
    recovered = list(
        session.exec(
            select(Borrower)
            .where(col(Borrower.gap_alert_id).is_not(None), col(Borrower.failing_since).is_(None))
            .order_by(col(Borrower.id))
        )
    )
    gaps = []
    by_source: dict[str, list[Borrower]] = defaultdict(list)
    for borrower in gapped:
        by_source[borrower.source].append(borrower)
    for source, failing in sorted(by_source.items()):
        if len(failing) >= 2 and _most_of_source_failing(session, source, threshold):
            groups = [failing]
        else:
            groups = [[borrower] for borrower in failing]
        for group in groups:
            alert = _open(session, config, GAP, GAP_SEVERITY, source, group, now, _gap_detail(source, group))
            for borrower in group:
                borrower.gap_alert_id = alert.id
                session.add(borrower)
            gaps.append(alert.id)
    restored = []
    by_gap: dict[int, list[Borrower]] = defaultdict(list)
    for borrower in recovered:
        assert borrower.gap_alert_id is not None
        by_gap[borrower.gap_alert_id].append(borrower)
    for gap_alert_id, group in sorted(by_gap.items()):
        source = group[0].source
        detail = {"source": source, "gap_alert_id": gap_alert_id, "borrowers": [_entry(b) for b in group]}
        alert = _open(session, config, RESTORED, RESTORED_SEVERITY, source, group, now, detail)
        for borrower in group:
            borrower.gap_alert_id = None
            session.add(borrower)
        restored.append(alert.id)
    return GapReport(tuple(gaps), tuple(restored))


def _most_of_source_failing(session: Session, source: str, threshold: datetime) -> bool:
    """More than half of the source's active borrowers have failed for longer than ``failing_after``."""
    active = (col(Borrower.active).is_(True), Borrower.source == source)
    total = session.exec(select(func.count()).select_from(Borrower).where(*active)).one()
    failing = session.exec(
        select(func.count())
        .select_from(Borrower)
        .where(*active, col(Borrower.failing_since).is_not(None), col(Borrower.failing_since) <= threshold)
    ).one()
    return failing * 2 > total


def _entry(borrower: Borrower) -> dict:
    return {
        "id": borrower.id,
        "name": borrower.name,
        "officer": borrower.officer,
        "since": borrower.failing_since.isoformat() if borrower.failing_since else None,
        "error_kind": borrower.last_error_kind,
    }


def _gap_detail(source: str, group: Sequence[Borrower]) -> dict:
    kinds = Counter(borrower.last_error_kind or ErrorKind.UNKNOWN for borrower in group)
    since = min(borrower.failing_since for borrower in group if borrower.failing_since is not None)
    return {
        "source": source,
        "since": since.isoformat(),
        "error_kind": kinds.most_common(1)[0][0],
        "borrowers": [_entry(borrower) for borrower in group],
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
) -> Alert:
    """One alert about ``group`` (one borrower, or several of one source), with its outbox rows."""
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
    for borrower in group:
        for delivery in plan_deliveries(
            config,
            officer=borrower.officer,
            tags=borrower.tag_list,
            source=source,
            severity=severity,
            now=now,
        ):
            planned.setdefault((delivery.target, delivery.url_fingerprint), delivery)
    add_deliveries(session, alert.id, planned.values(), now)
    audit(
        session,
        actor=SYSTEM_ACTOR,
        action=AuditAction.ALERT_OPENED,
        subject_type="alert",
        subject_id=alert.id,
        detail={
            "kind": kind,
            "source": source,
            "borrowers": [borrower.id for borrower in group],
            "severity": severity.value,
            "targets": sorted({target for target, _ in planned}),
        },
        at=now,
    )
    return alert
