"""A party's connections as the console shows them, scoped to one reader (pure: data in, values and
DOT text out).

The neighbourhood of a party is drawn as a graph: watched parties and the people and companies
linking them as nodes, roles as labelled edges, possible (name-only) links dashed, parties with risk
listings in force marked. Scoping is applied to every node and edge here, from the set of parties the
reader may see: a party they may not see is an anonymous node (no name, id or link), a person or
company is drawn only when it is tied to a party they may see, and node ids in the DOT are opaque,
so nothing about hidden parties reaches the SVG through Graphviz's titles either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from urllib.parse import quote

from watcher.connections import Connection, LinkBasis, Node, NodeKind, PortfolioIndex, TieRole
from watcher.labels import TIE_ROLE_LABEL, WORDS, tie_roles_label
from watcher.normalize import text_key
from watcher.portfolio_graph import dot_string
from watcher.record import Category
from watcher.vocabulary import Language, Severity

MAX_NODES = 200
"""Nodes drawn at most; the rest are counted ("N more not drawn")."""
RADIUS = 2
"""Party hops from the page's party: its connections, and theirs (over strong links)."""
RISK_CATEGORIES: tuple[Category, ...] = (
    Category.DISHONEST_DEBTOR,
    Category.ENFORCEMENT,
    Category.BANKRUPTCY,
    Category.ABNORMAL_OPERATION,
)
"""Listings in force of these mark a party (or the person they name) in the drawing."""
SMALL_GRAPH = 40
"""Up to this many nodes the hierarchical layout reads best; beyond it the force-directed one."""


class Shape(StrEnum):
    PARTY = "party"
    PERSON = "person"
    COMPANY = "company"


@dataclass(frozen=True, slots=True)
class RiskMarks:
    """Risk listings in force of the drawn parties: the parties listed themselves, and (party, name
    key) of the people a party's listing names (its legal representative, its actual controller)."""

    parties: frozenset[str] = frozenset()
    people: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class GraphNode:
    key: str  # opaque ("n0", "n1"…): the DOT id, which Graphviz writes into the SVG
    shape: Shape
    label: str
    party_id: str | None = None  # set for a party the reader may see (its page is linked)
    hidden: bool = False  # a party the reader may not see
    risky: bool = False
    focus: bool = False


@dataclass(frozen=True, slots=True)
class GraphEdge:
    start: str
    end: str
    label: str
    dashed: bool
    forward: bool = False  # a direct link: from the party holding the role to the party it holds it at


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    not_drawn: int  # parties, people and companies within the radius left out by the node cap

    @property
    def parties(self) -> int:
        return sum(1 for node in self.nodes if node.shape is Shape.PARTY)


@dataclass(frozen=True, slots=True)
class PartyName:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ConnectionLine:
    """One link of the page's party to another watched party, as the connections table shows it.
    ``other`` is None for a party the reader may not see; ``via_name`` is then empty for a holding or
    guarantee of that party itself (its name is the link). Each side's start is the registry's
    (``since_*``) and when the index first held it (``seen_*``)."""

    other: PartyName | None
    via_kind: NodeKind
    via_name: str
    roles_here: frozenset[TieRole]
    roles_there: frozenset[TieRole]
    since_here: date | None
    since_there: date | None
    basis: LinkBasis
    possible: bool
    seen_here: date | None = None
    seen_there: date | None = None

    def _sides(self) -> list[tuple[date | None, date | None]]:
        """The sides that hold a role (a holding or a guarantee has one: the other is the node itself)."""
        sides = [(self.since_here, self.seen_here)] if self.roles_here else []
        return sides + ([(self.since_there, self.seen_there)] if self.roles_there else [])

    @property
    def since(self) -> date | None:
        """Since when both sides hold their roles by the registry: the later start, when known."""
        starts = [since for since, _seen in self._sides()]
        return max(starts) if starts and None not in starts else None  # type: ignore[type-var]

    @property
    def recorded_by(self) -> date | None:
        """When the link is known to have held at the latest: each side's registry start, or else when
        it was first recorded (a vendor giving no start dates); None when a side has neither."""
        starts = [since or seen for since, seen in self._sides()]
        return max(starts) if starts and None not in starts else None  # type: ignore[type-var]


def _side(
    index: PortfolioIndex, party: str, link: Connection, roles: frozenset[TieRole]
) -> tuple[date | None, date | None]:
    """``party``'s side of ``link``: the earliest registry start and first-recorded date of its roles."""
    ties = [t for t in index.ties(party) if t.node == link.node and t.role in roles]
    since = min((t.since for t in ties if t.since is not None), default=None)
    seen = [t.first_seen for t in ties if t.first_seen is not None]
    pair = {link.party, link.other}
    seen += [
        g.first_seen
        for g in index.guarantees(party)
        if {g.party, g.borrower} == pair and g.role in roles and g.first_seen is not None
    ]
    return since, min(seen, default=None)


def connection_lines(index: PortfolioIndex, party: str, visible: Set[str]) -> tuple[ConnectionLine, ...]:
    """``party``'s connections (strong first), the other party named only when ``visible``."""
    lines = []
    for link in index.connections(party):
        shown = link.other in visible
        since_here, seen_here = _side(index, party, link, link.roles_here)
        since_there, seen_there = _side(index, link.other, link, link.roles_there)
        lines.append(
            ConnectionLine(
                other=PartyName(link.other, index.name(link.other)) if shown else None,
                via_kind=link.node.kind,
                # A direct link runs through one of the two parties: hidden when it is the other.
                via_name=link.name if shown or not (link.direct and link.roles_here) else "",
                roles_here=link.roles_here,
                roles_there=link.roles_there,
                since_here=since_here,
                since_there=since_there,
                basis=link.basis,
                possible=link.possible,
                seen_here=seen_here,
                seen_there=seen_there,
            )
        )
    return tuple(lines)


# -- the drawn neighbourhood ---------------------------------------------------------------------


def reach(index: PortfolioIndex, party: str, radius: int = RADIUS) -> dict[str, int]:
    """The parties within ``radius`` hops of ``party`` with their distance: its own connections
    (possible ones too), then further over strong links only (names alone would flood the picture)."""
    distance = {party: 0}
    frontier = [party]
    for hop in range(1, radius + 1):
        reached: list[str] = []
        for current in frontier:
            for link in index.connections(current):
                if link.other in distance or (link.possible and hop > 1):
                    continue
                distance[link.other] = hop
                reached.append(link.other)
        frontier = sorted(reached)
    return distance


@dataclass
class _Draft:
    """The neighbourhood before scoping and the cap: node ids are identities and party ids."""

    rank: dict[str, float] = field(default_factory=dict)
    via: dict[str, tuple[NodeKind, str]] = field(default_factory=dict)  # "node:…" → (kind, name)
    edges: dict[tuple[str, str, str], bool] = field(default_factory=dict)  # (party, end, label) → dashed
    forward: set[tuple[str, str, str]] = field(default_factory=set)  # direct edges, holder first

    def place(self, key: str, rank: float) -> None:
        self.rank[key] = min(self.rank.get(key, rank), rank)

    def edge(self, start: str, end: str, label: str, *, dashed: bool) -> None:
        key = (start, end, label)
        self.edges[key] = self.edges.get(key, True) and dashed  # solid wins


def _party_key(party: str) -> str:
    return f"party:{party}"


def _draft(index: PortfolioIndex, distance: dict[str, int], language: Language) -> _Draft:
    draft = _Draft()
    own_parties = {index.own(p): p for p in distance if index.own(p) is not None}
    for party, hop in sorted(distance.items(), key=lambda item: (item[1], item[0])):
        draft.place(_party_key(party), hop)
        for link in index.connections(party):
            if link.other not in distance or (distance[link.other], link.other) < (hop, party):
                continue  # each pair once, from the nearer party (its side of a possible link is solid)
            if link.possible and hop > 0:
                continue  # possible links of the page's party only: names alone would flood the picture
            here, there = _party_key(party), _party_key(link.other)
            if link.direct:  # the other party holds roles_here at this one, or this one roles_there there
                holder, holding = (there, here) if link.roles_here else (here, there)
                label = tie_roles_label(link.roles_here or link.roles_there, language)
                draft.edge(holder, holding, label, dashed=False)
                draft.forward.add((holder, holding, label))
                continue
            held = own_parties.get(link.node)
            via = _party_key(held) if held is not None else f"node:{link.node.identity}"
            if held is None:
                draft.via[via] = (link.node.kind, link.name)
            draft.place(via, max(hop, distance[link.other]) - 0.5)
            draft.edge(here, via, tie_roles_label(link.roles_here, language), dashed=False)
            draft.edge(there, via, tie_roles_label(link.roles_there, language), dashed=link.possible)
    return draft


def _scoped_edges(draft: _Draft, visible: Set[str], focus: str) -> dict[tuple[str, str, str], bool]:
    """The draft's edges a reader seeing ``visible`` may see: a person or company only when tied to
    a visible party; a link between two hidden parties never."""

    def seen(key: str) -> bool:
        return key.removeprefix("party:") in visible or key == _party_key(focus)

    tied_to_visible = {end for (start, end, _label) in draft.edges if seen(start)}

    def shown(start: str, end: str) -> bool:
        return end in tied_to_visible if end in draft.via else seen(start) or seen(end)

    return {key: dashed for key, dashed in draft.edges.items() if shown(key[0], key[1])}


def _capped(
    keys: list[str], edges: dict[tuple[str, str, str], bool], focus: str, limit: int, visible: Set[str]
) -> set[str]:
    """The first ``limit`` nodes by rank, then without what lost its reason to be drawn: a person
    or company needs two parties, one of them visible; a party needs one edge."""
    kept = set(keys[:limit]) | {_party_key(focus)}
    while True:
        neighbours: dict[str, set[str]] = defaultdict(set)
        for start, end, _label in edges:
            if start in kept and end in kept:
                neighbours[start].add(end)
                neighbours[end].add(start)
        pruned = {
            key for key in kept if key != _party_key(focus) and not _placed(key, neighbours[key], visible)
        }
        if not pruned:
            return kept
        kept -= pruned


def _placed(key: str, neighbours: set[str], visible: Set[str]) -> bool:
    if key.startswith("party:"):
        return bool(neighbours)
    return len(neighbours) >= 2 and any(n.removeprefix("party:") in visible for n in neighbours)


def neighbourhood(
    index: PortfolioIndex,
    party: str,
    *,
    visible: Set[str],
    risk: RiskMarks,
    language: Language,
    hidden_label: str,
    max_nodes: int = MAX_NODES,
    radius: int = RADIUS,
) -> Neighbourhood:
    """``party``'s neighbourhood as the reader seeing ``visible`` may see it, at most ``max_nodes``."""
    distance = reach(index, party, radius)
    draft = _draft(index, distance, language)
    edges = _scoped_edges(draft, visible, party)
    candidates = {party_key for edge in edges for party_key in edge[:2]} | {_party_key(party)}
    order = sorted(candidates, key=lambda key: (draft.rank.get(key, radius + 1), key))
    kept = _capped(order, edges, party, max_nodes, visible | {party})
    keys = {key: f"n{number}" for number, key in enumerate(k for k in order if k in kept)}
    people = _risky_people(index, risk, distance)
    shown = set(visible) | {party}
    nodes = [
        _via_node(opaque, draft.via[key], risky=key.removeprefix("node:") in people)
        if key in draft.via
        else _party_node(index, opaque, key.removeprefix("party:"), party, shown, risk, hidden_label)
        for key, opaque in keys.items()
    ]
    drawn = tuple(
        GraphEdge(keys[start], keys[end], label, dashed, forward=(start, end, label) in draft.forward)
        for (start, end, label), dashed in sorted(edges.items())
        if start in keys and end in keys
    )
    return Neighbourhood(tuple(nodes), drawn, not_drawn=max(0, len(candidates) - len(kept)))


def _via_node(key: str, via: tuple[NodeKind, str], *, risky: bool) -> GraphNode:
    kind, name = via
    return GraphNode(key, Shape.PERSON if kind is NodeKind.PERSON else Shape.COMPANY, name, risky=risky)


def _party_node(
    index: PortfolioIndex,
    key: str,
    member: str,
    focus: str,
    shown: Set[str],
    risk: RiskMarks,
    hidden_label: str,
) -> GraphNode:
    """A party's node: named and linked when the reader may see it, else anonymous."""
    seen = member in shown
    return GraphNode(
        key,
        Shape.PARTY,
        _party_label(index, member) if seen else hidden_label,
        party_id=member if seen else None,
        hidden=not seen,
        risky=member in risk.parties,
        focus=member == focus,
    )


def _party_label(index: PortfolioIndex, party: str) -> str:
    name = index.name(party)
    return f"{name} ({party})" if name else party


def _risky_people(index: PortfolioIndex, risk: RiskMarks, distance: dict[str, int]) -> set[str]:
    """Identities of the people a drawn party's listing in force names (by name, at that party)."""
    return {
        tie.node.identity
        for party in distance
        for tie in index.ties(party)
        if tie.node.kind is NodeKind.PERSON and (party, tie.name_key) in risk.people
    }


def person_key(name: str) -> str:
    """How a listing's party name is matched to a person tied to the party (the index's name key)."""
    return text_key(name)


# -- DOT -----------------------------------------------------------------------------------------

_RISK_COLOUR = "#b00020"
_HIDDEN_FILL = "#e6e6e6"
_FOCUS_FILL = "#e8f0fb"


def layout_engine(hood: Neighbourhood) -> str:
    """Graphviz's layout for this many nodes: ``dot`` reads best when small, ``sfdp`` scales."""
    return "dot" if len(hood.nodes) <= SMALL_GRAPH else "sfdp"


def party_href(party_id: str) -> str:
    """The page of a party, percent-encoded whole: Graphviz copies URLs into the SVG unescaped."""
    return "/borrower?id=" + quote(party_id, safe="")


def _node_attributes(node: GraphNode) -> str:
    shape = {Shape.PARTY: "box", Shape.PERSON: "ellipse", Shape.COMPANY: "folder"}[node.shape]
    classes = [node.shape.value]
    attributes = [f"label={dot_string(node.label)}", f"shape={shape}"]
    styles = []
    if node.focus:
        classes.append("focus")
        styles += ["filled", "bold"]
        attributes.append(f'fillcolor="{_FOCUS_FILL}"')
    if node.hidden:
        classes.append("hidden")
        styles.append("filled")
        attributes.append(f'fillcolor="{_HIDDEN_FILL}"')
    if node.risky:
        classes.append("risky")
        attributes += [f'color="{_RISK_COLOUR}"', "penwidth=2.5", "peripheries=2"]
    if styles:
        attributes.append(f'style="{",".join(styles)}"')
    if node.party_id is not None and not node.focus:
        attributes.append(f"URL={dot_string(party_href(node.party_id))}")
    attributes.append(f'class="{" ".join(classes)}"')
    return ", ".join(attributes)


def neighbourhood_dot(hood: Neighbourhood) -> str:
    """The neighbourhood as Graphviz input: every string escaped, node ids opaque."""
    lines = [
        "graph neighbourhood {",
        '  graph [rankdir="LR", overlap=false, splines=true, outputorder=edgesfirst, pad=0.2, '
        'nodesep=0.25, ranksep=0.5, bgcolor="transparent"];',
        '  node [fontname="sans-serif", fontsize=10, margin="0.08,0.04", height=0.3];',
        '  edge [fontname="sans-serif", fontsize=8, fontcolor="#555555", color="#7a7a7a"];',
    ]
    lines += [f"  {node.key} [{_node_attributes(node)}];" for node in hood.nodes]
    for edge in hood.edges:
        style = ', style=dashed, class="possible"' if edge.dashed else ""
        style += ", dir=forward" if edge.forward else ""  # an arrow: who holds the role
        lines.append(f"  {edge.start} -- {edge.end} [label={dot_string(edge.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- groups ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartyAlerts:
    """A party's alerts as a group adds them up: how many, and the highest severity still open."""

    total: int = 0
    top_open: Severity | None = None


@dataclass(frozen=True, slots=True)
class GroupLine:
    """One group (connected component of two or more watched parties over strong links) as a reader
    sees it: the members they may see named, the others counted; alerts over every member."""

    size: int
    members: tuple[PartyName, ...]
    hidden: int
    total_alerts: int
    top_open: Severity | None
    linking: tuple[str, ...]  # people and companies tying two members, tied to a visible one
    linking_hidden: int
    guarantors: tuple[str, ...] = ()  # visible guarantors and pledgors securing a member's loan


def _guarantors(
    index: PortfolioIndex, group: frozenset[str], visible: Set[str]
) -> tuple[tuple[str, ...], int]:
    """The guarantees holding the group together (a direct link: no shared node names them): the
    guarantors the reader may see by name, the others counted."""
    given = {g.party for member in group for g in index.guarantees(member) if {g.party, g.borrower} <= group}
    return tuple(sorted(index.name(p) or p for p in given & visible)), len(given - visible)


def _linking(index: PortfolioIndex, group: frozenset[str], visible: Set[str]) -> tuple[tuple[str, ...], int]:
    by_node: dict[Node, set[str]] = defaultdict(set)
    names: dict[Node, str] = {}
    for party in sorted(group, key=lambda member: (member not in visible, member)):  # visible names first
        for tie in index.ties(party):
            if tie.node.basis.strong:
                by_node[tie.node].add(party)
                names.setdefault(tie.node, tie.name)
    linking = [node for node, parties in by_node.items() if len(parties) > 1]
    shown = sorted({names[node] for node in linking if by_node[node] & visible})
    return tuple(shown), sum(1 for node in linking if not by_node[node] & visible)


def group_lines(
    index: PortfolioIndex, visible: Set[str], alerts: dict[str, PartyAlerts]
) -> tuple[GroupLine, ...]:
    """The groups holding a party the reader may see, largest first."""
    lines = []
    for group in index.groups():
        members = sorted(group & visible)
        if not members:
            continue
        stats = [alerts.get(party, PartyAlerts()) for party in group]
        tops = [s.top_open for s in stats if s.top_open is not None]
        linking, linking_hidden = _linking(index, group, visible)
        guarantors, guarantors_hidden = _guarantors(index, group, visible)
        lines.append(
            GroupLine(
                size=len(group),
                members=tuple(PartyName(p, index.name(p)) for p in members),
                hidden=len(group) - len(members),
                total_alerts=sum(s.total for s in stats),
                top_open=max(tops, key=lambda s: s.rank) if tops else None,
                linking=linking,
                linking_hidden=linking_hidden + guarantors_hidden,
                guarantors=guarantors,
            )
        )
    return tuple(lines)


def roles_text(roles: Iterable[TieRole], since: date | None, language: Language) -> str:
    """Roles as a table cell reads them, with the start of the earliest when known."""
    text = WORDS[language]["list"].join(
        TIE_ROLE_LABEL[language][role] for role in TieRole if role in set(roles)
    )
    if since is None:
        return text
    start = f"{since.isoformat()} 起" if language is Language.ZH_CN else f"since {since.isoformat()}"
    return f"{text}{WORDS[language]['open']}{start}{WORDS[language]['close']}"
