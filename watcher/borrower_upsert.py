"""Writing checked borrower rows to the database: insert new parties (due at once), update known ones,
replace their ``secures`` links, and audit each change. The importer's parsing comes before this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from watcher.borrower_rows import BorrowerRow
from watcher.models import Borrower, SecuresLink, utcnow
from watcher.store import audit, secured_ids
from watcher.vocabulary import AuditAction


def _stored_fields(row: BorrowerRow) -> dict[str, Any]:
    """The borrower columns a row sets (its role only when the file has a ``role`` column)."""
    fields: dict[str, Any] = {
        "name": row.name,
        "source": row.source,
        "registry_id": row.registry_id,
        "officer": row.officer,
        "tags": ",".join(row.tags),
        "interval_seconds": row.interval_seconds,
        "legal_rep_on_file": row.legal_rep_on_file,
    }
    if row.role is not None:
        fields["role"] = row.role
    return fields


def _added_detail(fields: dict[str, Any], links: Sequence[str]) -> dict[str, Any]:
    """A new party's audit detail: its columns, and whom it secures when it secures anyone."""
    return {**fields, "secures": list(links)} if links else fields


Outcome = Literal["added", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    added: int
    updated: int
    unchanged: int
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    """What became of each row, by id (the API's per-item result)."""


def upsert_borrowers(session: Session, rows: Sequence[BorrowerRow], *, actor: str) -> UpsertCounts:
    """Insert new borrowers (due at once), update known ones; a new registry entity restarts the baseline."""
    now = utcnow()
    outcomes: dict[str, Outcome] = {}
    added = updated = unchanged = 0
    stored_links = secured_ids(session)
    stored = _stored_borrowers(session, [row.id for row in rows])
    for row in rows:
        fields = _stored_fields(row)
        links = stored_links.get(row.id, ())
        new_links = row.secures if row.secures is not None else links
        borrower = stored.get(row.id)
        if borrower is None:
            _add_borrower(session, row.id, fields, new_links, actor=actor, now=now)
            outcomes[row.id] = "added"
            added += 1
            continue
        differences = {key: value for key, value in fields.items() if getattr(borrower, key) != value}
        if tuple(new_links) != tuple(links):
            differences["secures"] = list(new_links)
        if not differences:
            outcomes[row.id] = "unchanged"
            unchanged += 1
            continue
        _update_borrower(session, borrower, differences, actor=actor, now=now)
        outcomes[row.id] = "updated"
        updated += 1
    session.flush()  # every party of the file exists before a link to it is written
    _replace_links(session, [row for row in rows if row.secures is not None], stored_links, now=now)
    return UpsertCounts(added, updated, unchanged, outcomes)


def _add_borrower(
    session: Session,
    borrower_id: str,
    fields: dict[str, Any],
    links: Sequence[str],
    *,
    actor: str,
    now: datetime,
) -> None:
    """A new party, due at once so its baseline is taken at the next sweep, and audited."""
    session.add(Borrower(id=borrower_id, created_at=now, updated_at=now, next_check_at=now, **fields))
    audit(
        session,
        actor=actor,
        action=AuditAction.BORROWER_ADDED,
        subject_type="borrower",
        subject_id=borrower_id,
        detail=_added_detail(fields, links),
        at=now,
    )


def _update_borrower(
    session: Session, borrower: Borrower, differences: dict[str, Any], *, actor: str, now: datetime
) -> None:
    """Apply what changed (links are written later) and audit it; a new registry entity restarts the
    baseline and a new entity or interval makes the party due at once."""
    if "source" in differences or "registry_id" in differences:
        borrower.baseline_at = None
        borrower.next_check_at = now
    if "interval_seconds" in differences:
        borrower.next_check_at = now  # a new interval takes effect at the next sweep
    for key, value in differences.items():
        if key != "secures":
            setattr(borrower, key, value)
    # The next check parses and assesses in full: its outcome may depend on what changed here.
    borrower.last_payload_digest = None
    borrower.updated_at = now
    session.add(borrower)
    audit(
        session,
        actor=actor,
        action=AuditAction.BORROWER_UPDATED,
        subject_type="borrower",
        subject_id=borrower.id,
        detail=differences,
        at=now,
    )


LOAD_CHUNK = 1000
"""Ids per statement when loading the rows an upsert touches: well within every database's limit."""


def _stored_borrowers(session: Session, ids: Sequence[str]) -> dict[str, Borrower]:
    """The stored borrowers among ``ids``, loaded a chunk at a time rather than one query per row:
    an API bulk upsert of 10,000 parties would otherwise spend most of its time here."""
    found: dict[str, Borrower] = {}
    for start in range(0, len(ids), LOAD_CHUNK):
        chunk = ids[start : start + LOAD_CHUNK]
        found.update((b.id, b) for b in session.exec(select(Borrower).where(col(Borrower.id).in_(chunk))))
    return found


def _replace_links(
    session: Session,
    rows: Sequence[BorrowerRow],
    stored_links: Mapping[str, tuple[str, ...]],
    *,
    now: datetime,
) -> None:
    """Each row's ``secures`` becomes the party's whole set of links (an empty cell: none)."""
    for row in rows:
        wanted = set(row.secures or ())
        stored = set(stored_links.get(row.id, ()))
        for borrower_id in sorted(stored - wanted):
            link = session.get(SecuresLink, (row.id, borrower_id))
            if link is not None:
                session.delete(link)
        for borrower_id in sorted(wanted - stored):
            session.add(SecuresLink(party_id=row.id, borrower_id=borrower_id, first_seen=now.date()))
    session.flush()
