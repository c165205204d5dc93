"""A borrower's life after its loan: deactivated (no checks, no alerts, its data kept), reactivated,
and, once ``[watcher] retention`` has passed since it was deactivated, pruned.

Deactivating stops the watch, nothing else: its open alerts stay open and its undelivered outbox
rows are still sent (an alert already raised is never lost). Reactivating makes it due at once; its
next check compares against the last stored snapshot, so what changed while it was inactive is
alerted like any change. Pruning removes the borrower and every row about it (snapshots with their
raw evidence, change events, key-person occasions, its alerts and their deliveries, its ties in the
portfolio index); the audit log
is kept whole: it records who did what, its rows name their subject by id as plain text (no
reference to break), and the database refuses to delete them anyway.

A guarantor or pledgor is watched while any borrower it secures is active: it is deactivated with the
last of them (``inactive_with_borrowers``) and reactivated with the first of them again
(:func:`follow_secured`). One deactivated by hand stays inactive until reactivated by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, func, select, update

from watcher.models import (
    Alert,
    AlertBorrower,
    Borrower,
    ChangeEvent,
    Delivery,
    KeyPersonOccasion,
    PartyTie,
    SecuresLink,
    Snapshot,
)
from watcher.party_ties import delete_party_ties
from watcher.store import audit, secured_borrowers, securing_parties, stored_id
from watcher.vocabulary import AuditAction, PartyRole

WITH_BORROWERS = "every borrower it secures is inactive"
"""The reason recorded when a guarantor or pledgor is deactivated with the last of its borrowers."""


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    """What a deactivation or reactivation of some ids came to, id by id."""

    changed: list[Borrower] = field(default_factory=list)
    already: list[Borrower] = field(default_factory=list)
    """Already in the state asked for: left as they were, not audited again."""
    unknown: list[str] = field(default_factory=list)
    followers: list[Borrower] = field(default_factory=list)
    """Guarantors and pledgors deactivated or reactivated along with the borrowers they secure."""


def _lookup(session: Session, ids: Iterable[str]) -> tuple[list[Borrower], list[str]]:
    """The borrowers of ``ids`` in the order given (each once) and the ids not on file."""
    wanted = list(dict.fromkeys(ids))
    found = {b.id: b for b in session.exec(select(Borrower).where(col(Borrower.id).in_(wanted)))}
    return [found[i] for i in wanted if i in found], [i for i in wanted if i not in found]


def deactivate(
    session: Session, ids: Iterable[str], *, actor: str, now: datetime, reason: str | None = None
) -> LifecycleChange:
    """Stop watching ``ids``: never claimed nor checked again, no alerts, data kept for retention.

    A check in flight is released (the pipeline stores nothing for an inactive borrower); a wait for
    confirmation is dropped. Its link to a monitoring-gap alert is cut, so that alert stays as it is
    (open, no recovery notice for a watch stopped on purpose) and a source's outage alert recovers
    without it.
    """
    borrowers, unknown = _lookup(session, ids)
    result = LifecycleChange(unknown=unknown)
    for borrower in borrowers:
        if not borrower.active:
            result.already.append(borrower)
            continue
        _stop(session, borrower, actor=actor, now=now, reason=reason)
        result.changed.append(borrower)
    result.followers.extend(follow_secured(session, [b.id for b in result.changed], actor=actor, now=now))
    return result


def _stop(session: Session, borrower: Borrower, *, actor: str, now: datetime, reason: str | None) -> None:
    borrower.active, borrower.deactivated_at, borrower.updated_at = False, now, now
    borrower.inactive_with_borrowers = False
    borrower.claimed_by = borrower.lease_until = None
    borrower.pending_since = borrower.pending_hash = borrower.pending_raw_gz = None
    borrower.gap_alert_id = None
    session.add(borrower)
    audit(
        session,
        actor=actor,
        action=AuditAction.BORROWER_DEACTIVATED,
        subject_type="borrower",
        subject_id=borrower.id,
        detail={"reason": reason} if reason else {},
        at=now,
    )


def reactivate(
    session: Session, ids: Iterable[str], *, actor: str, now: datetime, reason: str | None = None
) -> LifecycleChange:
    """Watch ``ids`` again, due at once. The baseline and last snapshot stay: the first check compares
    against them and alerts on what changed while the borrower was inactive. Failures from before
    are forgotten, so an old failing streak does not raise a monitoring gap on the first sweep."""
    borrowers, unknown = _lookup(session, ids)
    result = LifecycleChange(unknown=unknown)
    for borrower in borrowers:
        if borrower.active:
            result.already.append(borrower)
            continue
        _resume(session, borrower, actor=actor, now=now, reason=reason)
        result.changed.append(borrower)
    result.followers.extend(follow_secured(session, [b.id for b in result.changed], actor=actor, now=now))
    return result


def _resume(
    session: Session, borrower: Borrower, *, actor: str, now: datetime, reason: str | None = None
) -> None:
    inactive_since = borrower.deactivated_at
    borrower.active, borrower.deactivated_at, borrower.updated_at = True, None, now
    borrower.inactive_with_borrowers = False
    borrower.next_check_at = now
    borrower.last_payload_digest = None  # parsed and assessed in full, not skipped as "same answer"
    borrower.consecutive_failures = 0
    borrower.failing_since = borrower.last_error = borrower.last_error_kind = None
    session.add(borrower)
    audit(
        session,
        actor=actor,
        action=AuditAction.BORROWER_REACTIVATED,
        subject_type="borrower",
        subject_id=borrower.id,
        detail={
            "inactive_since": inactive_since.isoformat() if inactive_since else None,
            **({"reason": reason} if reason else {}),
        },
        at=now,
    )


def follow_secured(session: Session, ids: Iterable[str], *, actor: str, now: datetime) -> list[Borrower]:
    """Bring the guarantors and pledgors among ``ids``, and those securing any of ``ids``, in line with
    their borrowers: deactivated when none they secure is active, reactivated (when that is what
    stopped them) once one is. A borrower guaranteeing others is watched for its own loan: never
    deactivated here. Returns the parties changed, by id."""
    wanted = set(ids)
    session.flush()
    candidates = {party.id: party for party in securing_parties(session, wanted)}
    candidates.update((b.id, b) for b in _lookup(session, wanted)[0])
    changed = []
    for party in sorted(candidates.values(), key=lambda b: b.id):
        watched = not PartyRole(party.role).secures or bool(secured_borrowers(session, party.id))
        if party.active and not watched:
            _stop(session, party, actor=actor, now=now, reason=WITH_BORROWERS)
            party.inactive_with_borrowers = True
            changed.append(party)
        elif not party.active and party.inactive_with_borrowers and watched:
            _resume(session, party, actor=actor, now=now)
            changed.append(party)
    return changed


def inactive_among(session: Session, ids: Iterable[str]) -> list[Borrower]:
    """The inactive borrowers among ``ids``, by id. Reads the inactive ones and filters here: an
    import may list more ids than one statement may bind."""
    wanted = set(ids)
    query = select(Borrower).where(col(Borrower.active).is_(False)).order_by(col(Borrower.id))
    return [borrower for borrower in session.exec(query) if borrower.id in wanted]


def active_ids_not_in(session: Session, ids: Iterable[str]) -> list[str]:
    """Active borrowers whose id is not among ``ids`` (a borrowers file that no longer lists them)."""
    listed = set(ids)
    query = select(Borrower.id).where(col(Borrower.active).is_(True)).order_by(col(Borrower.id))
    active = session.exec(query)
    return [borrower_id for borrower_id in active if borrower_id not in listed]


# -- retention ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """The rows `watcher db prune` removes for one borrower (the borrower row itself besides)."""

    borrower_id: str
    deactivated_at: datetime
    snapshots: int = 0
    change_events: int = 0
    occasions: int = 0
    alerts: int = 0
    deliveries: int = 0
    alert_links: int = 0
    ties: int = 0  # the party's ties in the portfolio index (and its own node besides)

    def as_detail(self) -> dict[str, object]:
        """For the audit row and ``--format json``."""
        return {
            "deactivated_at": self.deactivated_at.isoformat(),
            "snapshots": self.snapshots,
            "change_events": self.change_events,
            "key_person_occasions": self.occasions,
            "alerts": self.alerts,
            "deliveries": self.deliveries,
            "alert_borrower_links": self.alert_links,
            "party_ties": self.ties,
        }

    def line(self) -> str:
        return (
            f"{self.borrower_id} (inactive since {self.deactivated_at:%Y-%m-%d}): "
            f"{self.snapshots} snapshot(s), "
            f"{self.change_events} change event(s), {self.occasions} key-person occasion(s), "
            f"{self.alerts} alert(s) with {self.deliveries} deliveries, {self.alert_links} alert link(s), "
            f"{self.ties} portfolio tie(s)"
        )


def expired_borrowers(session: Session, *, retention: timedelta, now: datetime) -> list[Borrower]:
    """Borrowers deactivated longer than ``retention`` ago, by id."""
    return list(
        session.exec(
            select(Borrower)
            .where(
                col(Borrower.active).is_(False),
                col(Borrower.deactivated_at).is_not(None),
                col(Borrower.deactivated_at) <= now - retention,
            )
            .order_by(col(Borrower.id))
        )
    )


def prune(
    session: Session, *, retention: timedelta, now: datetime, actor: str, dry_run: bool
) -> list[PruneCounts]:
    """Remove the data of every borrower deactivated longer than ``retention`` ago, one audit row
    each; with ``dry_run`` only count what would go. Runs in the caller's transaction."""
    expired = expired_borrowers(session, retention=retention, now=now)
    pruned_ids = {b.id for b in expired}
    shared = _shared_alerts_of(session, pruned_ids)
    plans = [_counts(session, borrower, shared.get(borrower.id, [])) for borrower in expired]
    if dry_run:
        return [plan for plan, _alerts in plans]
    for plan, alert_ids in plans:
        _remove(session, plan.borrower_id, alert_ids)
        audit(
            session,
            actor=actor,
            action=AuditAction.BORROWER_PRUNED,
            subject_type="borrower",
            subject_id=plan.borrower_id,
            detail=plan.as_detail(),
            at=now,
        )
    return [plan for plan, _alerts in plans]


def _shared_alerts_of(session: Session, pruned_ids: set[str]) -> dict[str, list[int]]:
    """Alerts about a whole source (no single borrower) every one of whose borrowers is pruned now,
    each given to the first of them by id. One that also lists a borrower kept stays: it belongs to
    that borrower's record too; only the pruned borrower's link to it goes."""
    if not pruned_ids:
        return {}
    links = session.exec(
        select(AlertBorrower.alert_id, AlertBorrower.borrower_id)
        .join(Alert, col(Alert.id) == col(AlertBorrower.alert_id))
        .where(
            col(Alert.borrower_id).is_(None),
            col(AlertBorrower.alert_id).in_(
                select(AlertBorrower.alert_id).where(col(AlertBorrower.borrower_id).in_(sorted(pruned_ids)))
            ),
        )
    )
    listed: dict[int, set[str]] = {}
    for alert_id, borrower_id in links:
        listed.setdefault(alert_id, set()).add(borrower_id)
    owned: dict[str, list[int]] = {}
    for alert_id, borrower_ids in sorted(listed.items()):
        if borrower_ids <= pruned_ids:
            owned.setdefault(min(borrower_ids), []).append(alert_id)
    return owned


def _counts(session: Session, borrower: Borrower, shared: Sequence[int]) -> tuple[PruneCounts, list[int]]:
    """What pruning ``borrower`` removes, and the ids of the alerts among it."""
    own = select(Alert.id).where(Alert.borrower_id == borrower.id)
    alert_ids = sorted({stored_id(alert_id) for alert_id in session.exec(own)} | set(shared))

    def count(model: type, *where) -> int:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()

    assert borrower.deactivated_at is not None
    return (
        PruneCounts(
            borrower_id=borrower.id,
            deactivated_at=borrower.deactivated_at,
            snapshots=count(Snapshot, Snapshot.borrower_id == borrower.id),
            change_events=count(ChangeEvent, ChangeEvent.borrower_id == borrower.id),
            occasions=count(KeyPersonOccasion, KeyPersonOccasion.borrower_id == borrower.id),
            alerts=len(alert_ids),
            deliveries=count(Delivery, col(Delivery.alert_id).in_(alert_ids)) if alert_ids else 0,
            alert_links=count(AlertBorrower, AlertBorrower.borrower_id == borrower.id),
            ties=count(PartyTie, PartyTie.borrower_id == borrower.id),
        ),
        alert_ids,
    )


def _remove(session: Session, borrower_id: str, alert_ids: Sequence[int]) -> None:
    """Delete in the order the foreign keys allow: what points at alerts and snapshots first."""
    alerts = list(alert_ids)
    if alerts:
        session.exec(delete(Delivery).where(col(Delivery.alert_id).in_(alerts)))
    session.exec(delete(ChangeEvent).where(col(ChangeEvent.borrower_id) == borrower_id))
    session.exec(delete(KeyPersonOccasion).where(col(KeyPersonOccasion.borrower_id) == borrower_id))
    session.exec(delete(AlertBorrower).where(col(AlertBorrower.borrower_id) == borrower_id))
    session.exec(
        delete(SecuresLink).where(
            (col(SecuresLink.borrower_id) == borrower_id) | (col(SecuresLink.party_id) == borrower_id)
        )
    )
    if alerts:
        session.exec(delete(AlertBorrower).where(col(AlertBorrower.alert_id).in_(alerts)))
        session.exec(update(Borrower).where(col(Borrower.gap_alert_id).in_(alerts)).values(gap_alert_id=None))
        session.exec(delete(Alert).where(col(Alert.id).in_(alerts)))
    session.exec(delete(Snapshot).where(col(Snapshot.borrower_id) == borrower_id))
    delete_party_ties(session, [borrower_id])
    session.exec(delete(Borrower).where(col(Borrower.id) == borrower_id))
