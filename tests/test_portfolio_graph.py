"""How the portfolio's connections read (pure): DOT text that Graphviz reads as the names
themselves, holdings drawn as direct edges, labels in both languages."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from watcher.connections import (
    LinkBasis,
    Node,
    NodeKind,
    PartyTies,
    PortfolioIndex,
    Tie,
    TieRole,
    company_node,
)
from watcher.labels import LINK_BASIS_LABEL, TIE_ROLE_LABEL
from watcher.portfolio_graph import connection_report, dot_string, report_dot, report_json, row_cells
from watcher.vocabulary import Language

DOT_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@given(st.text())
def test_a_dot_string_is_one_quoted_string_that_reads_back_as_the_text(text):
    quoted = dot_string(text)
    assert DOT_STRING.fullmatch(quoted)
    assert "\n" not in quoted and "\r" not in quoted
    # DOT's escapes for '"' and '\' are JSON's: what Graphviz reads back is the text, controls blanked.
    back = json.loads(quoted)
    assert len(back) == len(text)
    assert all(a == b or b == " " for a, b in zip(text, back, strict=True))


def _holding_portfolio() -> PortfolioIndex:
    """A holds 60 % of B (by B's registration number); A and C share a person by name only."""
    b_node = company_node("cn", "91320506MA1WQ3K565")
    a_ties = frozenset(
        {
            Tie("a", b_node, TieRole.SHAREHOLDER, 'B "Holdings" \\N'),
            Tie("a", Node(NodeKind.PERSON, "person|n:li na", LinkBasis.NAME_ONLY), TieRole.DIRECTOR, "Li Na"),
        }
    )
    c_ties = frozenset(
        {
            Tie(
                "c",
                Node(NodeKind.PERSON, "qichacha|id:k1", LinkBasis.VENDOR_KEY),
                TieRole.FINANCE_HEAD,
                "Li Na",
            )
        }
    )
    return PortfolioIndex.of(
        [
            PartyTies("a", company_node("cn", "91330106MA2KH7Q302"), "A Co", a_ties),
            PartyTies("b", b_node, 'B "Holdings" \\N', frozenset()),
            PartyTies("c", None, "C Co", c_ties),
        ]
    )


def test_a_holding_of_a_watched_party_is_a_direct_edge_and_a_name_alone_a_dashed_one():
    report = connection_report(_holding_portfolio())
    assert [[p.id for p in group] for group in report.groups] == [["a", "b"]]
    direct = [row for row in report.connections if row.direct]
    assert [(row.party.id, row.other.id, row.roles_here) for row in direct] == [
        ("a", "b", (TieRole.SHAREHOLDER,))
    ]
    dot = report_dot(report, Language.EN)
    # b holds its stake at a: the arrow runs from the holder (the graph stays undirected).
    assert '"party:b" -- "party:a" [label="shareholder", dir=forward];' in dot
    assert '"party:c" -- "node:person|n:li na" [label="finance head", style=dashed];' in dot
    assert 'label="B \\"Holdings\\" \\\\N (b)"' in dot  # the name reads as itself, \N is no escape
    shown = report_json(report)
    assert [(c["other"], c["possible"], c["basis"]) for c in shown["connections"]] == [
        ("b", False, "registry_id"),
        ("c", True, "name_only"),
    ]


def test_one_partys_report_is_its_group_and_its_own_links():
    report = connection_report(_holding_portfolio(), "c")
    assert report.groups == ()
    assert [(row.party.id, row.other.id, row.possible) for row in report.connections] == [("c", "a", True)]


def test_rows_read_in_both_languages():
    row = next(r for r in connection_report(_holding_portfolio()).connections if r.possible)
    assert row_cells(row, Language.EN)[3:] == ("director", "finance head", "possible (name only)")
    assert row_cells(row, Language.ZH_CN)[3:] == ("董事", "财务负责人", "可能关联（仅姓名）")


def test_every_role_and_basis_has_a_label_in_every_language():
    for language in Language:
        assert set(TIE_ROLE_LABEL[language]) == set(TieRole)
        assert set(LINK_BASIS_LABEL[language]) == set(LinkBasis)
