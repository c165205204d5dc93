"""The portfolio index in the database: each watched party's ties (``party_tie``) and own node
(``party_node``), written with its snapshot and read back as a :class:`~watcher.connections.PortfolioIndex`.

Reads come in three sizes: the whole portfolio, one party's neighbourhood (the parties sharing a node
or a name with it, or holding it, found by SQL on node identity and name key, so an alert about one
party never loads the portfolio), and one party's group (neighbourhoods followed over strong links).
Deactivated parties keep their ties as history; reads for alerts and people skip them by default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, delete, select
from sqlmodel.sql.expression import SelectOfScalar

from watcher.connections import (
    Guarantee,
    LinkBasis,
    Node,
    NodeKind,
    PartyTies,
    PortfolioIndex,
    Tie,
    TieRole,
)
from watcher.models import Borrower, PartyNode, PartyTie, SecuresLink
from watcher.vocabulary import PartyRole

_T = TypeVar("_T")
_CHUNK = 500  # ids per IN list: well inside every database's limit on bound parameters


def replace_party_ties(session: Session, party: PartyTies, *, now: datetime) -> None:
    """Make the stored index of ``party`` exactly ``party``, in the caller's transaction; a tie held
    before keeps its first-seen date, a new one is first seen ``now``."""
    held = session.exec(
        select(PartyTie.kind, PartyTie.identity, PartyTie.role, col(PartyTie.first_seen)).where(
            col(PartyTie.borrower_id) == party.party
        )
    ).all()
    first_seen = {(kind, identity, role): seen for kind, identity, role, seen in held}
    session.exec(delete(PartyTie).where(col(PartyTie.borrower_id) == party.party))
    node = session.get(PartyNode, party.party)
    if node is None:
        node = PartyNode(borrower_id=party.party)
    node.identity = party.own.identity if party.own is not None else None
    node.indexed_at = now
    session.add(node)
    session.add_all(_rows(party, first_seen, now.date()))


def _rows(
    party: PartyTies, first_seen: dict[tuple[str, str, str], date | None], today: date
) -> Iterator[PartyTie]:
    for tie in party.ties:
        key = (tie.node.kind.value, tie.node.identity, tie.role.value)
        yield PartyTie(
            borrower_id=party.party,
            kind=tie.node.kind.value,
            identity=tie.node.identity,
            basis=tie.node.basis.value,
            role=tie.role.value,
            name=tie.name,
            name_key=tie.name_key,
            stake=None if tie.stake is None else str(tie.stake),
            since=tie.since,
            first_seen=first_seen.get(key, today),
        )


def delete_party_ties(session: Session, party_ids: Collection[str]) -> tuple[int, int]:
    """Remove the stored index of ``party_ids`` (pruned borrowers): (ties, own nodes) removed."""
    ids = sorted(party_ids)
    ties = nodes = 0
    for chunk in _chunks(ids):
        ties += session.exec(delete(PartyTie).where(col(PartyTie.borrower_id).in_(chunk))).rowcount
        nodes += session.exec(delete(PartyNode).where(col(PartyNode.borrower_id).in_(chunk))).rowcount
    return ties, nodes


def indexed_parties(session: Session) -> int:
    """How many parties have been indexed (each indexed party has its own-node row)."""
    return session.exec(select(func.count()).select_from(PartyNode)).one()


# -- reading -----------------------------------------------------------------------------------------


def load_index(session: Session, *, active_only: bool = True) -> PortfolioIndex:
    """Every indexed party (only the active ones unless ``active_only`` is False)."""
    return PortfolioIndex.of(_load(session, None, active_only=active_only))


def load_parties(
    session: Session, party_ids: Collection[str], *, active_only: bool = True
) -> list[PartyTies]:
    """The stored index of ``party_ids`` (those indexed, and active unless asked otherwise)."""
    return _load(session, party_ids, active_only=active_only)


def load_neighbourhood(
    session: Session, party_id: str, *, active_only: bool = True, names: bool = True
) -> PortfolioIndex:
    """``party_id`` and every party it could be connected to: ``connections(party_id)`` on this index
    equals the one on the whole portfolio's. Without ``names`` only its strong links are (equal names
    alone can link thousands of parties, and alerts never follow them)."""
    index = PortfolioIndex()
    found = neighbour_ids(session, [party_id], names=names)
    _add(index, session, {party_id} | found, active_only=active_only)
    return index


def load_group(
    session: Session, party_id: str, *, active_only: bool = True, names: bool = True
) -> PortfolioIndex:
    """``party_id``'s group over strong links with each member's neighbourhood: the group and every
    member's connections are as on the whole portfolio's index (without ``names``: the group and the
    members' strong links only)."""
    index = PortfolioIndex()
    expanded: set[str] = set()
    todo = {party_id}
    while todo:
        expanded |= todo
        _add(
            index, session, todo | neighbour_ids(session, sorted(todo), names=names), active_only=active_only
        )
        reached = {c.other for party in todo for c in index.connections(party) if not c.possible}
        todo = reached - expanded
    return index


def _add(index: PortfolioIndex, session: Session, party_ids: set[str], *, active_only: bool) -> None:
    for party in _load(session, party_ids - index.parties, active_only=active_only):
        index.add(party)


def neighbour_ids(session: Session, party_ids: Sequence[str], *, names: bool = True) -> set[str]:
    """Parties sharing a node (a strong one, or a name) with ``party_ids``, holding them, held by them,
    guaranteeing their loans or guaranteed by them."""
    found = _node_neighbours(session, party_ids, names=names)
    found |= _secures_neighbours(session, list(party_ids))
    return found - set(party_ids)


def _node_neighbours(session: Session, party_ids: Sequence[str], *, names: bool) -> set[str]:
    """Parties tied to the same nodes as ``party_ids``, tied to their own nodes, or owning a node
    they are tied to: the ownership and shared-officer half of the neighbourhood."""
    ties = [tie for party in _load(session, party_ids, active_only=False) for tie in party.ties]
    strong = sorted({tie.node.identity for tie in ties if tie.node.basis.strong})
    named = sorted({(tie.node.kind.value, tie.name_key) for tie in ties})
    own_rows = session.exec(
        select(PartyNode.identity).where(col(PartyNode.borrower_id).in_(list(party_ids)))
    ).all()
    own = sorted({identity for identity in own_rows if identity is not None})
    found: set[str] = set()
    naming = select(PartyTie.borrower_id).distinct()
    found |= _ids(session, naming, [col(PartyTie.identity).in_(c) for c in _chunks(strong)])
    if names:
        found |= _ids(session, naming, [_name_match(c) for c in _chunks(named)])
    found |= _ids(session, naming, [col(PartyTie.identity).in_(c) for c in _chunks(own)])
    every = sorted({tie.node.identity for tie in ties})
    named_as = select(PartyNode.borrower_id)
    found |= _ids(session, named_as, [col(PartyNode.identity).in_(c) for c in _chunks(every)])
    return found


def _secures_neighbours(session: Session, ids: list[str]) -> set[str]:
    """The borrowers ``ids`` secure and the parties securing them: the guarantee half."""
    found = _ids(
        session, select(SecuresLink.borrower_id), [col(SecuresLink.party_id).in_(c) for c in _chunks(ids)]
    )
    found |= _ids(
        session, select(SecuresLink.party_id), [col(SecuresLink.borrower_id).in_(c) for c in _chunks(ids)]
    )
    return found


def _name_match(keys: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, key in keys:
        by_kind[kind].append(key)
    return or_(
        *(
            and_(col(PartyTie.kind) == kind, col(PartyTie.name_key).in_(names))
            for kind, names in sorted(by_kind.items())
        )
    )


def _ids(session: Session, query: SelectOfScalar[str], conditions: Iterable[ColumnElement[bool]]) -> set[str]:
    found: set[str] = set()
    for condition in conditions:
        found |= set(session.exec(query.where(condition)).all())
    return found


def _load(session: Session, party_ids: Collection[str] | None, *, active_only: bool) -> list[PartyTies]:
    """Parties with their own node and ties, by id; ``None``: every indexed party."""
    node_query = select(PartyNode.borrower_id, PartyNode.identity, Borrower.name).join(
        Borrower, col(Borrower.id) == col(PartyNode.borrower_id)
    )
    tie_query = sa_select(
        col(PartyTie.borrower_id),
        col(PartyTie.kind),
        col(PartyTie.identity),
        col(PartyTie.basis),
        col(PartyTie.role),
        col(PartyTie.name),
        col(PartyTie.stake),
        col(PartyTie.since),
        col(PartyTie.first_seen),
    )
    if active_only:
        node_query = node_query.where(col(Borrower.active).is_(True))
        tie_query = tie_query.join(Borrower, col(Borrower.id) == col(PartyTie.borrower_id)).where(
            col(Borrower.active).is_(True)
        )
    if party_ids is None:
        nodes = list(session.exec(node_query).all())
        tie_rows = list(session.connection().execute(tie_query).all())
    else:
        ids = sorted(party_ids)
        nodes = [
            row
            for c in _chunks(ids)
            for row in session.exec(node_query.where(col(PartyNode.borrower_id).in_(c)))
        ]
        tie_rows = [
            row
            for c in _chunks(ids)
            for row in session.connection().execute(tie_query.where(col(PartyTie.borrower_id).in_(c)))
        ]
    ties: dict[str, set[Tie]] = defaultdict(set)
    for row in tie_rows:
        ties[row[0]].add(_tie(*row))
    secures = _guarantees(session, [party for party, _identity, _name in nodes])
    return [
        PartyTies(
            party,
            None if identity is None else Node(NodeKind.COMPANY, identity, LinkBasis.REGISTRY_ID),
            name,
            frozenset(ties.get(party, ())),
            frozenset(secures.get(party, ())),
        )
        for party, identity, name in sorted(nodes)
    ]


_GUARANTEE_ROLE = {
    PartyRole.GUARANTOR: TieRole.GUARANTOR,
    PartyRole.PLEDGOR: TieRole.PLEDGOR,
    PartyRole.BORROWER: TieRole.GUARANTOR,  # a borrower guaranteeing another (互保, a guarantee circle)
}


def _guarantees(session: Session, guarantors: Sequence[str]) -> dict[str, list[Guarantee]]:
    """The guarantees each of ``guarantors`` gives, by the watch list (a borrower's ``secures`` are
    guarantees too: borrowers guaranteeing each other form a guarantee circle)."""
    found: dict[str, list[Guarantee]] = defaultdict(list)
    query = select(
        SecuresLink.party_id, SecuresLink.borrower_id, col(SecuresLink.first_seen), Borrower.role
    ).join(Borrower, col(Borrower.id) == col(SecuresLink.party_id))
    for chunk in _chunks(sorted(guarantors)):
        for party, borrower, first_seen, role in session.exec(
            query.where(col(SecuresLink.party_id).in_(chunk))
        ):
            if role in _GUARANTEE_ROLE:
                found[party].append(Guarantee(party, borrower, _GUARANTEE_ROLE[PartyRole(role)], first_seen))
    return found


def _tie(
    party: str,
    kind: str,
    identity: str,
    basis: str,
    role: str,
    name: str,
    stake: str | None,
    since: object,
    first_seen: object,
) -> Tie:
    return Tie(
        party,
        Node(NodeKind(kind), identity, LinkBasis(basis)),
        TieRole(role),
        name,
        stake=None if stake is None else Decimal(stake),
        since=since,  # type: ignore[arg-type]
        first_seen=first_seen,  # type: ignore[arg-type]
    )


def _chunks(values: Sequence[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])
