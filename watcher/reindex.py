"""Rebuild the stored portfolio index from every party's latest snapshot (`watcher db reindex`, and
once at `watcher run`'s start on a database whose snapshots predate the index).

The pipeline keeps the index current as it stores snapshots; this is the backfill, and the repair.
Each party is indexed as the pipeline would index it: its record as stored, scoped by its source's
jurisdiction and vendor (:meth:`sources.base.Source.tie_scope`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import Session, col, delete, select

from sources import source_class
from watcher.config import Config
from watcher.connections import TieScope, party_ties
from watcher.models import Borrower, PartyNode, PartyTie, Snapshot
from watcher.party_ties import indexed_parties, replace_party_ties
from watcher.record import record_from_dict
from watcher.store import Store

log = logging.getLogger("watcher.reindex")

_BATCH = 200  # snapshots parsed at a time: memory stays flat however large the portfolio


@dataclass(frozen=True, slots=True)
class ReindexReport:
    parties: int = 0
    ties: int = 0
    # Parties left as they were because their source is no longer configured, by source name.
    unconfigured: Mapping[str, int] = field(default_factory=dict)


def tie_scopes(config: Config) -> dict[str, TieScope]:
    """Each configured source's scope for the index, by config key."""
    return {
        name: source_class(options.type).tie_scope(name, options) for name, options in config.sources.items()
    }


def reindex(store: Store, scopes: Mapping[str, TieScope], *, now: datetime) -> ReindexReport:
    """Rebuild every party's ties from its latest snapshot, in one transaction."""
    with store.transaction() as session:
        _lock_index(session)
        return _rebuild(session, scopes, now)


def reindex_if_unindexed(
    store: Store, scopes: Mapping[str, TieScope], *, now: datetime
) -> ReindexReport | None:
    """Rebuild when snapshots exist but no party is indexed yet (a database upgraded to the index);
    None when there was nothing to do. Safe when several instances start at once."""
    with store.transaction() as session:
        _lock_index(session)
        has_snapshots = session.exec(select(Snapshot.id).limit(1)).first() is not None
        if indexed_parties(session) or not has_snapshots:
            return None
        report = _rebuild(session, scopes, now)
    log.info(
        "portfolio index built from the latest snapshots: %d parties, %d ties%s",
        report.parties,
        report.ties,
        _unconfigured_text(report),
    )
    return report


def _unconfigured_text(report: ReindexReport) -> str:
    if not report.unconfigured:
        return ""
    named = ", ".join(f"{source} ({count})" for source, count in sorted(report.unconfigured.items()))
    return f"; left as they were, their source not configured: {named}"


def _lock_index(session: Session) -> None:
    """PostgreSQL: one rebuild at a time, and no pipeline write in between (SQLite's writes are
    serialised by its immediate transactions already). The tables are locked in the order a check
    writes them (``party_ties.replace_party_ties``: ties, then the party's node): the other order
    deadlocks with an instance checking while this one starts."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("LOCK TABLE party_tie, party_node IN SHARE ROW EXCLUSIVE MODE"))  # type: ignore[call-overload]


def _rebuild(session: Session, scopes: Mapping[str, TieScope], now: datetime) -> ReindexReport:
    latest = session.exec(
        select(func.max(Snapshot.id), Snapshot.borrower_id).group_by(col(Snapshot.borrower_id))
    ).all()
    parties = {
        row[0]: (row[1], row[2]) for row in session.exec(select(Borrower.id, Borrower.name, Borrower.source))
    }
    unconfigured: Counter[str] = Counter()
    wanted: list[int] = []
    for snapshot_id, borrower_id in sorted(latest, key=lambda row: row[1]):
        source = parties[borrower_id][1]
        if source in scopes and snapshot_id is not None:
            wanted.append(snapshot_id)
        else:
            unconfigured[source] += 1
    session.exec(delete(PartyTie).where(~col(PartyTie.borrower_id).in_(select(Snapshot.borrower_id))))
    session.exec(delete(PartyNode).where(~col(PartyNode.borrower_id).in_(select(Snapshot.borrower_id))))
    count = ties = 0
    for start in range(0, len(wanted), _BATCH):
        rows = session.exec(
            select(Snapshot.borrower_id, Snapshot.record_json).where(
                col(Snapshot.id).in_(wanted[start : start + _BATCH])
            )
        ).all()
        for borrower_id, record_json in rows:
            name, source = parties[borrower_id]
            record = record_from_dict(json.loads(record_json))
            indexed = party_ties(borrower_id, name, record, scopes[source])
            replace_party_ties(session, indexed, now=now)
            count, ties = count + 1, ties + len(indexed.ties)
        session.flush()
    return ReindexReport(parties=count, ties=ties, unconfigured=dict(unconfigured))
