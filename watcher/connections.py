"""The portfolio's people and companies, and the watched parties they tie together (pure).

Every watched party's latest record names people and companies in roles (legal representative,
director, finance head, shareholder, controller, pledgee…). Each becomes a *tie* from the party to
a *node*: the person or company, identified as strongly as the source allows. Two parties sharing
a node are connected. Identities are never guessed: a person known only by name is a node of its
own, and equal names without a matching identity are only a *possible* link, never a merge.

The index is updated one party at a time (``set_party``), so a changed party costs its own ties,
not a rebuild; it equals an index built afresh from the same records (property-tested).

Guarantees come from the bank's own records, not a registry: a watched guarantor or pledgor securing a
watched borrower (:class:`Guarantee`) links the two directly, so guarantee circles (担保圈) form groups
like shared controllers do. They are kept apart from the record's ties (a new snapshot does not touch
them) and raise no connected-party alert: a guarantor's own alerts already reach the officers of the
borrowers it secures.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from watcher.normalize import text_key
from watcher.record import Controller, Person, RegistryRecord, Role, Shareholder, Stake


class NodeKind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


class LinkBasis(StrEnum):
    """How a node's identity was established, strongest first."""

    REGISTRY_ID = "registry_id"  # a company's registration number in its jurisdiction
    VENDOR_KEY = "vendor_key"  # the registry's or vendor's own id for a person or company
    BIRTH_DATE = "birth_date"  # name and date (or month) of birth
    NAME_ONLY = "name_only"
    LOAN_RECORD = "loan_record"  # the bank's own records: a guarantee of a watched borrower's loan

    @property
    def strong(self) -> bool:
        return self is not LinkBasis.NAME_ONLY


class TieRole(StrEnum):
    LEGAL_REPRESENTATIVE = "legal_representative"
    DIRECTOR = "director"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    FINANCE_HEAD = "finance_head"
    SHAREHOLDER = "shareholder"
    CONTROLLER = "controller"
    ACTUAL_CONTROLLER = "actual_controller"
    BENEFICIAL_OWNER = "beneficial_owner"
    PLEDGEE = "pledgee"
    GUARANTOR = "guarantor"  # of a watched borrower's loan (the watch list's ``secures``)
    PLEDGOR = "pledgor"  # whose shares or assets secure a watched borrower's loan


# Roles that make a person or company one of the party's decision makers or owners.
KEY_ROLES: frozenset[TieRole] = frozenset(
    {
        TieRole.LEGAL_REPRESENTATIVE,
        TieRole.DIRECTOR,
        TieRole.FINANCE_HEAD,
        TieRole.SHAREHOLDER,
        TieRole.CONTROLLER,
        TieRole.ACTUAL_CONTROLLER,
    }
)

# The roles from most to least significant to a lender: a line naming one role per side names the first.
ROLE_SIGNIFICANCE: tuple[TieRole, ...] = (
    TieRole.LEGAL_REPRESENTATIVE,
    TieRole.ACTUAL_CONTROLLER,
    TieRole.CONTROLLER,
    TieRole.FINANCE_HEAD,
    TieRole.SHAREHOLDER,
    TieRole.DIRECTOR,
    TieRole.BENEFICIAL_OWNER,
    TieRole.MANAGER,
    TieRole.SUPERVISOR,
    TieRole.GUARANTOR,
    TieRole.PLEDGOR,
    TieRole.PLEDGEE,
)


def most_significant(roles: frozenset[TieRole]) -> frozenset[TieRole]:
    """The one role of ``roles`` an alert line names (empty stays empty): the full set is history's."""
    return frozenset(next(([role] for role in ROLE_SIGNIFICANCE if role in roles), []))


_PERSON_ROLES: dict[Role, TieRole] = {
    Role.LEGAL_REPRESENTATIVE: TieRole.LEGAL_REPRESENTATIVE,
    Role.CHAIR: TieRole.DIRECTOR,
    Role.DIRECTOR: TieRole.DIRECTOR,
    Role.SUPERVISOR: TieRole.SUPERVISOR,
    Role.MANAGER: TieRole.MANAGER,
    Role.FINANCE_HEAD: TieRole.FINANCE_HEAD,
}

# Registration numbers that identify a company within a jurisdiction, whatever source reports them:
# China's unified social credit code, Norway's organisasjonsnummer, a French SIREN.
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_ORGNR = re.compile(r"\d{9}")


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """A person or company as the index knows it. ``identity`` is unique within the portfolio."""

    kind: NodeKind
    identity: str
    basis: LinkBasis


@dataclass(frozen=True, slots=True)
class Tie:
    """A watched party names a node in a role (``stake`` in percent for holders, upper bound)."""

    party: str
    node: Node
    role: TieRole
    name: str
    stake: Decimal | None = None
    since: date | None = None
    # When the index first held this tie (kept across snapshots): a start the registry does not give
    # is at latest this. Not part of the tie's identity.
    first_seen: date | None = field(default=None, compare=False)

    @property
    def name_key(self) -> str:
        return text_key(self.name)

    def sort_key(self) -> tuple:
        """A total order (a stake or a date may be unknown, and None does not compare with a value)."""
        return (
            self.party,
            self.node,
            self.role,
            self.name,
            self.stake is not None,
            self.stake or Decimal(0),
            self.since is not None,
            self.since or date.min,
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """Two watched parties share ``node`` (or equal names when ``possible``)."""

    party: str
    other: str
    node: Node
    name: str
    roles_here: frozenset[TieRole]
    roles_there: frozenset[TieRole]
    possible: bool
    # The node is one of the two parties itself: a holding of a watched party, or a guarantee.
    direct: bool = False
    guarantee: bool = False  # the link is (or includes) a guarantee from the bank's records

    @property
    def basis(self) -> LinkBasis:
        """How the link was established, as shown: name only for a possible link, the bank's records
        for a guarantee, else the shared node's identity."""
        if self.possible:
            return LinkBasis.NAME_ONLY
        return LinkBasis.LOAN_RECORD if self.guarantee else self.node.basis

    def merged(self, other: Connection) -> Connection:
        """This link and ``other`` (same parties, node and strength) as one, with both sides' roles."""
        return Connection(
            self.party,
            self.other,
            self.node,
            min(self.name, other.name),  # ties may spell one node differently: any order, one name
            self.roles_here | other.roles_here,
            self.roles_there | other.roles_there,
            self.possible,
            self.direct or other.direct,
            self.guarantee or other.guarantee,
        )


@dataclass(frozen=True, slots=True, order=True)
class Guarantee:
    """A watched guarantor or pledgor (``party``, in ``role``) secures a watched borrower's loan, as
    the watch list says; ``first_seen`` is when the bank's records first held it."""

    party: str
    borrower: str
    role: TieRole
    first_seen: date | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TieScope:
    """Where a source's identifiers mean something: ``jurisdiction`` scopes bare registration numbers
    ("no", "gb", "fr", "cn"; a feed's config key when the source is no registry), ``vendor`` the
    source's own ids (its type name; a feed's config key)."""

    jurisdiction: str
    vendor: str


@dataclass(frozen=True, slots=True)
class PartyTies:
    """What the index holds of one watched party: its own node (by its registration number), its
    name, and the ties its latest record establishes."""

    party: str
    own: Node | None
    name: str
    ties: frozenset[Tie]
    secures: frozenset[Guarantee] = frozenset()  # the borrowers it guarantees or secures


def company_node(jurisdiction: str, registry_id: str) -> Node:
    """The node of a company by its registration number (a watched party's own node)."""
    return Node(
        NodeKind.COMPANY, f"{jurisdiction}|reg:{registry_id.strip().casefold()}", LinkBasis.REGISTRY_ID
    )


def _node_for(key: str, name: str, kind: NodeKind, *, jurisdiction: str, vendor: str) -> Node:
    """The node a record's identity key names; ids are scoped to the vendor that issued them."""
    scheme, _, value = key.partition(":")
    if scheme == "id":
        if kind is NodeKind.COMPANY:
            number = value.removeprefix("siren:").upper()
            if _USCC.fullmatch(number):
                return company_node("cn", number)
            if _ORGNR.fullmatch(number):
                return company_node(jurisdiction, number)
        return Node(kind, f"{vendor}|{key}", LinkBasis.VENDOR_KEY)
    if scheme == "nb":
        return Node(kind, key, LinkBasis.BIRTH_DATE)
    return Node(kind, f"{kind}|n:{text_key(name)}", LinkBasis.NAME_ONLY)


def _identity_scope(node: Node) -> str | None:
    """Where a strong identity is unique: a registration number within its jurisdiction, a vendor's
    id within that vendor, name and birth within the one scheme; None for a name alone."""
    if node.basis is LinkBasis.NAME_ONLY:
        return None
    if node.basis is LinkBasis.BIRTH_DATE:
        return LinkBasis.BIRTH_DATE.value
    return f"{node.basis.value}|{node.identity.partition('|')[0]}"


def distinct_identities(one: Node, other: Node) -> bool:
    """Whether two nodes are proven different: strong identities from the same scope that differ (two
    Qichacha KeyNos, two USCCs, two birth dates). A birth month and a birth date within it may be the
    same person, and ids of two vendors may name one person: neither proves anything."""
    scope = _identity_scope(one)
    if scope is None or scope != _identity_scope(other) or one.identity == other.identity:
        return False
    if one.basis is LinkBasis.BIRTH_DATE:
        born, born_other = one.identity.rpartition("|")[2], other.identity.rpartition("|")[2]
        return not (born.startswith(born_other) or born_other.startswith(born))
    return True


def _stake_percent(stake: Stake | None) -> Decimal | None:
    return None if stake is None else stake.high


class _TieBuilder:
    def __init__(self, party: str, jurisdiction: str, vendor: str) -> None:
        self.party, self.jurisdiction, self.vendor = party, jurisdiction, vendor
        self.ties: set[Tie] = set()

    def node(self, key: str, name: str, kind: NodeKind) -> Node:
        return _node_for(key, name, kind, jurisdiction=self.jurisdiction, vendor=self.vendor)

    def person(self, person: Person, *roles: TieRole) -> None:
        node = self.node(person.key, person.name, NodeKind.PERSON)
        for role in roles:
            self.ties.add(Tie(self.party, node, role, person.name, since=person.appointed_on))

    def officers(self, record: RegistryRecord) -> None:
        if record.legal_representative is not None:
            self.person(record.legal_representative, TieRole.LEGAL_REPRESENTATIVE)
        if record.finance_head is not None:
            self.person(record.finance_head, TieRole.FINANCE_HEAD)
        for person in record.people or ():
            self.person(person, *sorted({_PERSON_ROLES[r] for r in person.roles if r in _PERSON_ROLES}))

    def holders(self, record: RegistryRecord) -> None:
        for holders, role in (
            (record.shareholders, TieRole.SHAREHOLDER),
            (record.controllers, TieRole.CONTROLLER),
            (record.actual_controllers, TieRole.ACTUAL_CONTROLLER),
            (record.beneficial_owners, TieRole.BENEFICIAL_OWNER),
        ):
            for holder in holders or ():
                self.holder(holder, role)

    def pledgees(self, record: RegistryRecord) -> None:
        """A pledgee is named, never identified: a name-only company node."""
        for pledge in record.equity_pledges or ():
            if pledge.pledgee:
                node = Node(NodeKind.COMPANY, f"company|n:{text_key(pledge.pledgee)}", LinkBasis.NAME_ONLY)
                self.ties.add(Tie(self.party, node, TieRole.PLEDGEE, pledge.pledgee, since=pledge.listed_on))

    def holder(self, holder: Shareholder | Controller, role: TieRole) -> None:
        kind = NodeKind.PERSON if holder.kind == "person" else NodeKind.COMPANY
        node = self.node(holder.key, holder.name, kind)
        self.ties.add(Tie(self.party, node, role, holder.name, stake=_stake_percent(holder.stake)))


def ties_of(party: str, record: RegistryRecord, *, jurisdiction: str, vendor: str) -> frozenset[Tie]:
    """Every tie a party's record establishes. ``jurisdiction`` scopes bare registration numbers
    ("no", "gb", "fr", "cn"), ``vendor`` scopes the source's own ids (a Qichacha KeyNo means nothing
    to Tianyancha)."""
    build = _TieBuilder(party, jurisdiction, vendor)
    build.officers(record)
    build.holders(record)
    build.pledgees(record)
    return frozenset(build.ties)


def party_ties(party: str, name: str, record: RegistryRecord, scope: TieScope) -> PartyTies:
    """A party as the index holds it, from its record as stored and its source's scope."""
    own = company_node(scope.jurisdiction, record.registry_id) if record.registry_id.strip() else None
    ties = ties_of(party, record, jurisdiction=scope.jurisdiction, vendor=scope.vendor)
    return PartyTies(party, own, name, ties)


class PortfolioIndex:
    """Ties of every watched party, looked up by node, by name and by party; updated per party."""

    def __init__(self) -> None:
        self._ties: dict[str, frozenset[Tie]] = {}
        self._own: dict[str, Node] = {}
        self._own_name: dict[str, str] = {}
        self._parties_of_own: dict[Node, set[str]] = defaultdict(set)
        self._by_node: dict[Node, set[Tie]] = defaultdict(set)
        self._by_name: dict[tuple[NodeKind, str], set[Tie]] = defaultdict(set)
        self._secures: dict[str, frozenset[Guarantee]] = {}  # by guarantor
        self._secured_by: dict[str, set[Guarantee]] = defaultdict(set)  # by borrower

    @classmethod
    def build(cls, parties: Iterable[tuple[str, Node | None, str, frozenset[Tie]]]) -> PortfolioIndex:
        index = cls()
        for party, own, name, ties in parties:
            index.set_party(party, own=own, name=name, ties=ties)
        return index

    @classmethod
    def of(cls, parties: Iterable[PartyTies]) -> PortfolioIndex:
        """An index of ``parties`` (as stored or as just built)."""
        index = cls()
        for party in parties:
            index.add(party)
        return index

    def add(self, party: PartyTies) -> None:
        """Hold ``party`` as given, its guarantees included (replacing what was held of it)."""
        self.set_party(party.party, own=party.own, name=party.name, ties=party.ties, secures=party.secures)

    def copy(self) -> PortfolioIndex:
        return PortfolioIndex.of(self.party(p) for p in self.parties)

    def party(self, party: str) -> PartyTies:
        """What the index holds of ``party`` (empty when it holds nothing)."""
        return PartyTies(
            party, self.own(party), self.name(party), self.ties(party), self._secures.get(party, frozenset())
        )

    def set_party(
        self,
        party: str,
        *,
        own: Node | None,
        name: str,
        ties: frozenset[Tie],
        secures: frozenset[Guarantee] | None = None,
    ) -> None:
        """Replace what the index knows of one party: its own node and name, its ties, and (unless
        ``secures`` is None: kept as they are, a new snapshot does not change them) its guarantees."""
        kept = self._secures.get(party, frozenset()) if secures is None else secures
        self.remove_party(party)
        self._ties[party] = ties
        self._own_name[party] = name
        if own is not None:
            self._own[party] = own
            self._parties_of_own[own].add(party)
        for tie in ties:
            self._by_node[tie.node].add(tie)
            self._by_name[tie.node.kind, tie.name_key].add(tie)
        mine = frozenset(g for g in kept if g.party == party)
        if mine:
            self._secures[party] = mine
        for guarantee in mine:
            self._secured_by[guarantee.borrower].add(guarantee)

    def remove_party(self, party: str) -> None:
        for tie in self._ties.pop(party, frozenset()):
            _discard(self._by_node, tie.node, tie)
            _discard(self._by_name, (tie.node.kind, tie.name_key), tie)
        own = self._own.pop(party, None)
        if own is not None:
            _discard(self._parties_of_own, own, party)
        self._own_name.pop(party, None)
        for guarantee in self._secures.pop(party, frozenset()):
            _discard(self._secured_by, guarantee.borrower, guarantee)

    @property
    def parties(self) -> frozenset[str]:
        return frozenset(self._ties)

    def name(self, party: str) -> str:
        return self._own_name.get(party, "")

    def own(self, party: str) -> Node | None:
        return self._own.get(party)

    def ties(self, party: str) -> frozenset[Tie]:
        return self._ties.get(party, frozenset())

    def ties_at(self, node: Node) -> frozenset[Tie]:
        return frozenset(self._by_node.get(node, ()))

    def nodes(self) -> frozenset[Node]:
        return frozenset(self._by_node)

    def connections(self, party: str) -> tuple[Connection, ...]:
        """Every other watched party this one shares a node with, strong links first."""
        found: dict[tuple[str, Node, bool], Connection] = {}
        for link in self._links(party):
            current = found.get((link.other, link.node, link.possible))
            if current is not None:
                link = link.merged(current)
            found[link.other, link.node, link.possible] = link
        strong = {(c.other, c.node.identity) for c in found.values() if not c.possible}
        kept = [c for c in found.values() if not c.possible or (c.other, c.node.identity) not in strong]
        return tuple(sorted(kept, key=lambda c: (c.possible, c.other, c.node.identity)))

    def _links(self, party: str) -> Iterator[Connection]:
        for tie in self._ties.get(party, ()):
            yield from self._shared_node(party, tie)
            yield from self._same_name(party, tie)
            yield from self._holding_of_watched(party, tie)
        yield from self._holdings_in_others(party)
        yield from self._guarantee_links(party)

    def _shared_node(self, party: str, tie: Tie) -> Iterator[Connection]:
        if not tie.node.basis.strong:
            return
        for other in self._by_node.get(tie.node, ()):
            if other.party != party:
                yield _tie_link(tie, other, possible=False)

    def _same_name(self, party: str, tie: Tie) -> Iterator[Connection]:
        """Equal names are a possible link unless the identities settle it: the same strong node is a
        strong link (see ``_shared_node``), two identities that :func:`distinct_identities` tells apart
        are two people or companies and no link at all."""
        for other in self._by_name.get((tie.node.kind, tie.name_key), ()):
            if other.party == party or distinct_identities(tie.node, other.node):
                continue
            if not (tie.node == other.node and tie.node.basis.strong):
                yield _tie_link(tie, other, possible=True)

    def _holding_of_watched(self, party: str, tie: Tie) -> Iterator[Connection]:
        """This party names another watched party (a shareholder or controller that is watched itself)."""
        for other in self._parties_of_own.get(tie.node, ()):
            if other != party:
                yield Connection(
                    party, other, tie.node, tie.name, frozenset({tie.role}), frozenset(), False, direct=True
                )

    def _holdings_in_others(self, party: str) -> Iterator[Connection]:
        own = self._own.get(party)
        if own is None:
            return
        for other in self._by_node.get(own, ()):
            if other.party != party:
                yield Connection(
                    party,
                    other.party,
                    own,
                    other.name,
                    frozenset(),
                    frozenset({other.role}),
                    False,
                    direct=True,
                )

    def guarantees(self, party: str) -> frozenset[Guarantee]:
        """The guarantees ``party`` gives or its loan receives, between parties the index holds."""
        given = self._secures.get(party, frozenset())
        received = self._secured_by.get(party, set())
        return frozenset(
            g
            for g in given | received
            if g.party != g.borrower and {g.party, g.borrower} <= self._ties.keys()
        )

    def _guarantee_node(self, guarantor: str) -> Node:
        """The node a guarantee runs through: the guarantor's own, or (no registration number known) one
        standing for the watched party itself."""
        return self._own.get(guarantor) or Node(
            NodeKind.COMPANY, f"watched|{guarantor}", LinkBasis.REGISTRY_ID
        )

    def _guarantee_links(self, party: str) -> Iterator[Connection]:
        """A guarantor and the borrower it secures, linked directly: the guarantor holds its role at
        the borrower (as a watched shareholder holds its stake)."""
        for guarantee in sorted(self.guarantees(party)):
            role = frozenset({guarantee.role})
            node = self._guarantee_node(guarantee.party)
            if guarantee.party == party:
                yield Connection(
                    party, guarantee.borrower, node, self.name(party), frozenset(), role, False, True, True
                )
            else:
                yield Connection(
                    party,
                    guarantee.party,
                    node,
                    self.name(guarantee.party),
                    role,
                    frozenset(),
                    False,
                    True,
                    True,
                )

    def groups(self) -> tuple[frozenset[str], ...]:
        """Connected components of two or more parties over strong links (largest first)."""
        seen: set[str] = set()
        components: list[frozenset[str]] = []
        for start in sorted(self._ties):
            if start in seen:
                continue
            component = self._component(start)
            seen |= component
            if len(component) > 1:
                components.append(frozenset(component))
        return tuple(sorted(components, key=lambda c: (-len(c), sorted(c))))

    def group_of(self, party: str) -> frozenset[str]:
        """The group ``party`` belongs to over strong links (empty when it is linked to none)."""
        component = self._component(party) if party in self._ties else set()
        return frozenset(component) if len(component) > 1 else frozenset()

    def _component(self, start: str) -> set[str]:
        component, frontier = {start}, [start]
        while frontier:
            for other in self._strong_others(frontier.pop()) - component:
                component.add(other)
                frontier.append(other)
        return component

    def _strong_others(self, party: str) -> set[str]:
        """The parties ``connections(party)`` links strongly, without working out the possible links
        (equal names can be many: the groups of a large portfolio would spend most of their time there)."""
        others: set[str] = set()
        for tie in self._ties.get(party, ()):
            if tie.node.basis.strong:
                others.update(other.party for other in self._by_node.get(tie.node, ()))
            others.update(self._parties_of_own.get(tie.node, ()))
        own = self._own.get(party)
        if own is not None:
            others.update(other.party for other in self._by_node.get(own, ()))
        for guarantee in self.guarantees(party):
            others.update((guarantee.party, guarantee.borrower))
        others.discard(party)
        return others

    def canonical(self) -> tuple:
        """Everything the index holds, in a canonical order (for comparing two indexes)."""
        return (
            tuple(sorted((party, _in_order(ties)) for party, ties in self._ties.items())),
            tuple(sorted(self._own.items())),
            tuple(sorted(self._own_name.items())),
            tuple(sorted((node, _in_order(ties)) for node, ties in self._by_node.items())),
            tuple(sorted((key, _in_order(ties)) for key, ties in self._by_name.items())),
            tuple(sorted((node, tuple(sorted(parties))) for node, parties in self._parties_of_own.items())),
            tuple(sorted((party, tuple(sorted(given))) for party, given in self._secures.items())),
            tuple(sorted((party, tuple(sorted(got))) for party, got in self._secured_by.items())),
        )


def _tie_link(tie: Tie, other: Tie, *, possible: bool) -> Connection:
    """The connection two ties of different parties make, seen from ``tie``'s party."""
    return Connection(
        tie.party, other.party, tie.node, tie.name, frozenset({tie.role}), frozenset({other.role}), possible
    )


def _in_order(ties: Iterable[Tie]) -> tuple[Tie, ...]:
    return tuple(sorted(ties, key=Tie.sort_key))


def _discard(mapping: dict, key: object, value: object) -> None:
    """Remove ``value`` from the set at ``key``, and the key with its last value (no empty sets left)."""
    values = mapping.get(key)
    if values is None:
        return
    values.discard(value)
    if not values:
        del mapping[key]
