"""The rows a stored check's news leaves (alerts, change events, occasions), apart from pipeline's flow.

A check's own alert and the connected-party alerts it raises for other watched parties are opened
the same way (one alert, one outbox row per delivery target, in the check's transaction), so both
live here; :mod:`watcher.pipeline` loads, evaluates and calls them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from watcher.config import Config
from watcher.connected import (
    Finding,
    already_own,
    finding_change,
    once_per_listing,
    read_link,
    risk_assessment,
)
from watcher.diff import Change
from watcher.evaluate import Evaluation
from watcher.models import Alert, Borrower, ChangeEvent, KeyPersonOccasion, Snapshot
from watcher.record import Category, RegistryRecord, record_from_dict
from watcher.routing import plan_deliveries
from watcher.rules import Assessment
from watcher.store import latest_snapshot, open_alert_deliveries, securing_party
from watcher.vocabulary import AlertKind


def change_event(
    party: str, source: str, change: Change, snapshot: Snapshot | None, alert_id: int | None, now: datetime
) -> ChangeEvent:
    """One atomic change of ``party``'s history as stored (``source``: where the fact was read)."""
    return ChangeEvent(
        borrower_id=party,
        snapshot_id=snapshot.id if snapshot is not None else None,
        alert_id=alert_id,
        source=source,
        category=change.category.value,
        action=change.action.value,
        subject=change.subject,
        before=change.before,
        after=change.after,
        effective_date=change.effective_date,
        detected_at=now,
        key_person=change.key_person,
        party=change.party.value if change.party else None,
        party_name=change.party_name or None,
        first_seen=change.first_seen,
    )


def key_person_occasions(
    party: str, assessment: Assessment, evaluation: Evaluation, alert_id: int | None, now: datetime
) -> list[KeyPersonOccasion]:
    """This check's key-person occasions (with its alert) and the late history's (without)."""
    found = [
        KeyPersonOccasion(borrower_id=party, occasion_date=day, detected_at=now, alert_id=alert_id)
        for day in assessment.occasions
    ]
    found += [
        KeyPersonOccasion(
            borrower_id=party,
            occasion_date=occasion.day,
            detected_at=now,
            historical=True,
            evidence=occasion.evidence,
        )
        for occasion in evaluation.historical
    ]
    return found


def open_alert(
    session: Session,
    config: Config,
    borrower: Borrower,
    assessment: Assessment,
    now: datetime,
    kind: AlertKind,
) -> Alert:
    """``borrower``'s alert of ``assessment``, with one outbox row per delivery target."""
    assert assessment.severity is not None
    party = securing_party(session, borrower)
    alert = Alert(
        borrower_id=borrower.id,
        kind=kind,
        detail=json.dumps({"party": party.as_detail()}, ensure_ascii=False, sort_keys=True)
        if party
        else None,
        source=borrower.source,
        severity=assessment.severity.value,
        created_at=now,
        occasions_in_window=assessment.occasions_in_window,
        recommend_early_repayment=assessment.recommend_early_repayment,
        signatory_mismatch=assessment.signatory_mismatch if assessment.signatory_warning else None,
    )
    session.add(alert)
    session.flush()
    assert alert.id is not None
    planned = plan_deliveries(
        config,
        officer=borrower.officer,
        tags=borrower.tag_list,
        source=borrower.source,
        severity=assessment.severity,
        now=now,
        secured_officers=party.officers if party else (),
    )
    detail = {"borrower_id": borrower.id, "severity": alert.severity}
    open_alert_deliveries(session, alert.id, planned, now, detail)
    return alert


def _own_record(session: Session, party_id: str) -> RegistryRecord | None:
    snapshot = latest_snapshot(session, party_id)
    return record_from_dict(json.loads(snapshot.record_json)) if snapshot else None


def heard_listings(session: Session, party_id: str) -> set[tuple[str, str, str]]:
    """(party, category, listing text) of every connected-risk line ``party_id`` has been told."""
    stored = session.exec(
        select(ChangeEvent.before, ChangeEvent.after).where(
            ChangeEvent.borrower_id == party_id, ChangeEvent.category == Category.CONNECTED_RISK.value
        )
    )
    heard = set()
    for before, after in stored:
        link = read_link(before, after)
        if link is not None and link.listing_category is not None:
            heard.add((party_id, link.listing_category.value, link.listing))
    return heard


def alert_connected_parties(
    session: Session, config: Config, listed: Borrower, findings: Sequence[Finding], now: datetime
) -> None:
    """Each other party sharing a listed person or company: a change event on its history and one
    alert (kind change, routed as its own alerts), in the listed party's transaction. A listing the
    other party already holds on its own record is its own news, alerted already, and a listing it has
    been told of (through another shared person or listed party) is told once: neither is repeated."""
    by_party: dict[str, list[Finding]] = {}
    for finding in findings:
        by_party.setdefault(finding.party, []).append(finding)
    for party_id, all_found in sorted(by_party.items()):
        other = session.get(Borrower, party_id)
        if other is None or not other.active:
            continue
        own = _own_record(session, party_id)
        fresh = once_per_listing(all_found, heard_listings(session, party_id))
        found = [finding for finding in fresh if not already_own(finding, own)]
        if not found:
            continue
        severity = max((f.severity for f in found), key=lambda level: level.rank)
        alert = open_alert(session, config, other, risk_assessment(severity), now, AlertKind.CHANGE)
        for finding in found:
            change = finding_change(finding)
            session.add(change_event(party_id, listed.source, change, None, alert.id, now))
