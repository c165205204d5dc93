"""The portfolio's connections as people read them: groups and links of one party or all, as rows,
as JSON and as Graphviz DOT (pure).

A link by equal names alone is only *possible* (可能关联): listed, drawn dashed, never grouped. A
party holding another watched party links the two directly; any other link runs through the person
or company both name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from watcher.connections import Connection, LinkBasis, NodeKind, PortfolioIndex, TieRole
from watcher.labels import TIE_ROLE_LABEL, WORDS, link_label, tie_roles_label
from watcher.vocabulary import Language


@dataclass(frozen=True, slots=True)
class PartyRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """One link between two watched parties, as shown."""

    party: PartyRef
    other: PartyRef
    via_kind: NodeKind
    via_identity: str
    via_name: str
    roles_here: tuple[TieRole, ...]
    roles_there: tuple[TieRole, ...]
    basis: LinkBasis
    possible: bool
    # The link is the holding itself (one party names the other's registration number).
    direct: bool


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    groups: tuple[tuple[PartyRef, ...], ...]
    connections: tuple[ConnectionRow, ...]


def connection_report(index: PortfolioIndex, party: str | None = None) -> ConnectionReport:
    """Groups and connections of ``party`` (its own group and links), or of the whole index, each
    pair of parties once (from the party first by id)."""
    groups: tuple[frozenset[str], ...]
    if party is not None:
        group = index.group_of(party)
        groups = (group,) if group else ()
        links = index.connections(party)
    else:
        groups = index.groups()
        links = tuple(c for p in sorted(index.parties) for c in index.connections(p) if c.party < c.other)
    return ConnectionReport(
        groups=tuple(tuple(_ref(index, p) for p in sorted(g)) for g in groups),
        connections=tuple(_row(index, link) for link in links),
    )


def _ref(index: PortfolioIndex, party: str) -> PartyRef:
    return PartyRef(party, index.name(party))


def _row(index: PortfolioIndex, link: Connection) -> ConnectionRow:
    return ConnectionRow(
        party=_ref(index, link.party),
        other=_ref(index, link.other),
        via_kind=link.node.kind,
        via_identity=link.node.identity,
        via_name=link.name,
        roles_here=tuple(role for role in TieRole if role in link.roles_here),
        roles_there=tuple(role for role in TieRole if role in link.roles_there),
        basis=link.basis,
        possible=link.possible,
        direct=link.direct,
    )


def report_json(report: ConnectionReport) -> dict[str, object]:
    """The report for scripts: stored words (``TieRole``, ``LinkBasis`` values), names as they are."""
    return {
        "groups": [
            {"size": len(group), "parties": [{"id": p.id, "name": p.name} for p in group]}
            for group in report.groups
        ],
        "connections": [
            {
                "party": row.party.id,
                "party_name": row.party.name,
                "other": row.other.id,
                "other_name": row.other.name,
                "via": {"kind": row.via_kind.value, "identity": row.via_identity, "name": row.via_name},
                "roles_here": [role.value for role in row.roles_here],
                "roles_there": [role.value for role in row.roles_there],
                "basis": row.basis.value,
                "possible": row.possible,
            }
            for row in report.connections
        ],
    }


def party_label(party: PartyRef) -> str:
    return f"{party.name} ({party.id})" if party.name else party.id


def row_cells(row: ConnectionRow, language: Language) -> tuple[str, ...]:
    """A connection as the table's cells in ``language``."""
    return (
        party_label(row.party),
        party_label(row.other),
        row.via_name,
        tie_roles_label(frozenset(row.roles_here), language),
        tie_roles_label(frozenset(row.roles_there), language),
        link_label(row.basis, row.possible, language),
    )


# -- Graphviz ------------------------------------------------------------------------------------

_DOT_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dot_string(text: str) -> str:
    """``text`` as a DOT double-quoted string that reads as itself: quotes and backslashes escaped
    (Graphviz would read ``\\N`` or ``\\l`` as its own escapes), control characters dropped."""
    cleaned = _DOT_CONTROL.sub(" ", text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def report_dot(report: ConnectionReport, language: Language) -> str:
    """The report as a Graphviz graph: watched parties as boxes, people as ellipses and other
    companies as folders, roles as edge labels, possible links dashed; a direct link (a holding, a
    guarantee) is an arrow from the party holding the role to the party it holds it at."""
    lines = ["graph connections {", '  graph [rankdir="LR"];', '  node [fontname="sans-serif"];']
    nodes: dict[str, str] = {}
    edges: dict[tuple[str, str, str, bool], bool] = {}
    for group in report.groups:
        for party in group:
            nodes[_party_id(party)] = f"label={dot_string(party_label(party))}, shape=box"
    for row in report.connections:
        here, there = _party_id(row.party), _party_id(row.other)
        nodes.setdefault(here, f"label={dot_string(party_label(row.party))}, shape=box")
        nodes.setdefault(there, f"label={dot_string(party_label(row.other))}, shape=box")
        if row.direct:  # drawn from the party holding the role to the party it holds it at
            holder, held = (there, here) if row.roles_here else (here, there)
            _edge(edges, holder, held, _direct_label(row, language), dashed=False, forward=True)
            continue
        via = f"node:{row.via_identity}"
        shape = "ellipse" if row.via_kind is NodeKind.PERSON else "folder"
        nodes.setdefault(via, f"label={dot_string(row.via_name)}, shape={shape}")
        _edge(edges, here, via, tie_roles_label(frozenset(row.roles_here), language), dashed=False)
        _edge(edges, there, via, tie_roles_label(frozenset(row.roles_there), language), dashed=row.possible)
    for node_id, attributes in nodes.items():
        lines.append(f"  {dot_string(node_id)} [{attributes}];")
    for (start, end, label, forward), dashed in edges.items():
        style = ", style=dashed" if dashed else ""
        style += ", dir=forward" if forward else ""  # an arrow in an undirected graph: who holds the role
        lines.append(f"  {dot_string(start)} -- {dot_string(end)} [label={dot_string(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _party_id(party: PartyRef) -> str:
    return f"party:{party.id}"


def _direct_label(row: ConnectionRow, language: Language) -> str:
    roles = row.roles_here or row.roles_there
    return WORDS[language]["list"].join(TIE_ROLE_LABEL[language][role] for role in roles)


def _edge(
    edges: dict[tuple[str, str, str, bool], bool],
    start: str,
    end: str,
    label: str,
    *,
    dashed: bool,
    forward: bool = False,
) -> None:
    """One edge per pair and label; solid wins over dashed (a strong link drawn once is enough);
    ``forward`` draws an arrow from ``start``, the holder of the role, to ``end``."""
    key = (start, end, label, forward)
    edges[key] = edges.get(key, True) and dashed
