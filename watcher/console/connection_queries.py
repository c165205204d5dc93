"""The console's reads of the portfolio index (connections, groups, the graph), scoped like every query.

Split from :mod:`watcher.console.queries`, whose scoping (:func:`~watcher.console.queries.scoped`)
they use, so that which parties a reader may see is decided in one place.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from watcher.connections import PortfolioIndex
from watcher.console import graph
from watcher.console.queries import SEVERITY_ORDER, scoped, sees_all
from watcher.models import Alert, Borrower, Snapshot, User
from watcher.party_ties import load_index, load_neighbourhood, load_parties, neighbour_ids
from watcher.record import ListingState, Party, record_from_dict
from watcher.vocabulary import AlertStatus, Language, Severity

_CHUNK = 500  # ids per IN list


def _chunked(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[start : start + _CHUNK]) for start in range(0, len(ids), _CHUNK)]


def visible_party_ids(session: Session, user: User, party_ids: Collection[str]) -> frozenset[str]:
    """Those of ``party_ids`` that ``user`` may see (every one for a reviewer)."""
    if sees_all(user):
        return frozenset(party_ids)
    found: set[str] = set()
    for chunk in _chunked(sorted(party_ids)):
        found |= set(session.exec(scoped(select(Borrower.id), user).where(col(Borrower.id).in_(chunk))))
    return frozenset(found)


def neighbourhood_index(session: Session, party_id: str, radius: int = graph.RADIUS) -> PortfolioIndex:
    """``party_id``'s neighbourhood read from the stored index: every party within ``radius`` hops
    (further hops over strong links only) with what it may be linked to, so that the connections of
    every party short of the radius are as on the whole portfolio's index."""
    index = load_neighbourhood(session, party_id)
    reached = {party_id}
    frontier = sorted({c.other for c in index.connections(party_id) if not c.possible})
    for _hop in range(1, radius):
        reached |= set(frontier)
        for party in load_parties(session, neighbour_ids(session, frontier) - index.parties):
            index.add(party)
        frontier = sorted(
            {c.other for p in frontier for c in index.connections(p) if not c.possible} - reached
        )
    return index


def risk_marks(session: Session, party_ids: Collection[str]) -> graph.RiskMarks:
    """The risk listings in force (``graph.RISK_CATEGORIES``) in the latest record of ``party_ids``:
    the parties listed themselves and the people their listings name."""
    parties: set[str] = set()
    people: set[tuple[str, str]] = set()
    for chunk in _chunked(sorted(party_ids)):
        latest = (
            select(func.max(Snapshot.id))
            .where(col(Snapshot.borrower_id).in_(chunk))
            .group_by(col(Snapshot.borrower_id))
        )
        rows = session.exec(
            select(Snapshot.borrower_id, Snapshot.record_json).where(col(Snapshot.id).in_(latest))
        )
        for party_id, record_json in rows:
            record = record_from_dict(json.loads(record_json))
            for category in graph.RISK_CATEGORIES:
                for listing in record.listings(category) or ():
                    if listing.state is not ListingState.ACTIVE:
                        continue
                    if listing.party is Party.COMPANY:
                        parties.add(party_id)
                    elif listing.party_name:
                        people.add((party_id, graph.person_key(listing.party_name)))
    return graph.RiskMarks(frozenset(parties), frozenset(people))


@dataclass(frozen=True, slots=True)
class PartyConnections:
    """A party page's connections section, scoped to the reader."""

    lines: tuple[graph.ConnectionLine, ...]
    neighbourhood: graph.Neighbourhood


def party_connections(
    session: Session,
    user: User,
    party_id: str,
    *,
    language: Language,
    hidden_label: str,
    max_nodes: int = graph.MAX_NODES,
) -> PartyConnections:
    """``party_id``'s connections and drawn neighbourhood as ``user`` may see them."""
    index = neighbourhood_index(session, party_id)
    reached = graph.reach(index, party_id)
    visible = visible_party_ids(session, user, index.parties) | {party_id}
    hood = graph.neighbourhood(
        index,
        party_id,
        visible=visible,
        risk=risk_marks(session, reached),
        language=language,
        hidden_label=hidden_label,
        max_nodes=max_nodes,
    )
    return PartyConnections(graph.connection_lines(index, party_id, visible), hood)


def party_alerts(session: Session, party_ids: Collection[str]) -> dict[str, graph.PartyAlerts]:
    """Per party: its alerts (every status) and the highest severity still open."""
    totals: dict[str, int] = defaultdict(int)
    tops: dict[str, Severity] = {}
    for chunk in _chunked(sorted(party_ids)):
        counted = (
            select(Alert.borrower_id, func.count())
            .where(col(Alert.borrower_id).in_(chunk))
            .group_by(col(Alert.borrower_id))
        )
        for party_id, count in session.exec(counted):
            if party_id is not None:
                totals[party_id] += count
        open_severities = select(Alert.borrower_id, Alert.severity).where(
            col(Alert.borrower_id).in_(chunk), Alert.status == AlertStatus.OPEN
        )
        for party_id, severity in session.exec(open_severities.distinct()):
            if party_id is None or severity not in SEVERITY_ORDER:
                continue
            if party_id not in tops or Severity(severity).rank > tops[party_id].rank:
                tops[party_id] = Severity(severity)
    return {
        party_id: graph.PartyAlerts(totals.get(party_id, 0), tops.get(party_id))
        for party_id in set(totals) | set(tops)
    }


def groups(session: Session, user: User) -> tuple[graph.GroupLine, ...]:
    """The portfolio's groups holding a party ``user`` may see; their alerts cover every member."""
    index = load_index(session)
    members = {party for group in index.groups() for party in group}
    return graph.group_lines(index, visible_party_ids(session, user, members), party_alerts(session, members))
