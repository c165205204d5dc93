"""What an officer's API token may write: its own officer's parties only, and nothing that tells it of
other officers' parties (a ``secures`` naming one reads as missing; a "did you mean" names only ids it
sees). Used by :mod:`watcher.api.parties`' create, update and bulk upsert alike."""

from __future__ import annotations

from sqlmodel import Session, col, select

from watcher.api.tokens import Principal
from watcher.borrower_rows import ParsedBorrowers
from watcher.models import Borrower
from watcher.visibility import scoped, sees_all


def keep_to_officer(session: Session, who: Principal, parsed: ParsedBorrowers) -> None:
    """Reject the rows an officer's token may not write: another officer's (or none), an existing
    party not that officer's, and a ``secures`` naming a borrower the token cannot see (told as a
    missing one, so it learns nothing of other officers' parties)."""
    officer = who.officer_id
    if officer is None or not parsed.rows:
        return
    _reject_other_officers(session, who, officer, parsed)
    _reject_hidden_secures(session, who, parsed)


def _reject_other_officers(session: Session, who: Principal, officer: str, parsed: ParsedBorrowers) -> None:
    """Rows naming another officer, or updating a party another officer owns, are not this token's."""
    ids = [row.id for row in parsed.rows]
    stored = session.exec(select(Borrower.id, Borrower.officer).where(col(Borrower.id).in_(ids)))
    owners = {party_id: owner for party_id, owner in stored}
    for row in list(parsed.rows):
        if row.officer != officer:
            message = (
                f"officer {row.officer!r}: token {who.name} writes only the parties of officer {officer!r}"
            )
            parsed.reject(row, message, "officer")
        elif row.id in owners and owners[row.id] != officer:
            parsed.reject(row, not_yours(who, row.id), "id")


def _reject_hidden_secures(session: Session, who: Principal, parsed: ParsedBorrowers) -> None:
    """A ``secures`` target that exists but the token cannot see reads as missing, so nothing leaks."""
    kept = {row.id for row in parsed.rows}
    targets = sorted({target for row in parsed.rows for target in row.secures or ()} - kept)
    if not targets:
        return
    existing = set(session.exec(select(Borrower.id).where(col(Borrower.id).in_(targets))))
    seen = set(session.exec(scoped(select(Borrower.id), who).where(col(Borrower.id).in_(targets))))
    hidden = existing - seen
    for row in list(parsed.rows):
        target = next((t for t in row.secures or () if t in hidden), None)
        if target is not None:
            message = f"secures {target!r}: no such borrower in the {parsed.whole} or the database"
            parsed.reject(row, message, "secures")


def hintable(session: Session, who: Principal) -> set[str] | None:
    """The ids a "did you mean" may name to ``who``: those it sees (None: any)."""
    if sees_all(who):
        return None
    return set(session.exec(scoped(select(Borrower.id), who)))


def not_yours(who: Principal, party_id: str) -> str:
    """Why an officer's token may not change another officer's party (its id only: nothing else)."""
    officer = who.officer_id
    return (
        f"party {party_id!r} belongs to another officer than {officer!r}: token {who.name} may not change it"
    )
