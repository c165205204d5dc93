"""The console's connections (issue 15, point 4): a party's connections table and its neighbourhood
drawn by Graphviz on the server, and the groups page, scoped to the reader, through real checks of
records that share people by vendor key (``ConnectionWorld``), on SQLite and PostgreSQL.

``ConnectionWorld``: 阿尔法 (b-alpha, officer 张伟) and 贝塔 (b-beta, officer 李娜) share their legal
representative 王建国 by vendor key; 贝塔's finance head 李娜 (by key) is a director of 伽马 (b-gamma,
张伟's); 贝塔 and 艾普西隆 (b-epsilon, 李娜's) share 赵敏; 德尔塔 (b-delta, no officer) has a supervisor
陈丽 known by name only, like 阿尔法's: a possible link. 贝塔 is a dishonest debtor and 伽马 is listed
for abnormal operation, both in force. So 张伟 sees 阿尔法 and 伽马 and must learn nothing of 贝塔,
德尔塔 or 艾普西隆 but that they exist, and never of 赵敏, who ties only parties he may not see.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import col, func, select

from tests.deployment import Deployment
from tests.listings import RecordSource
from tests.test_console import CHANNELS, PASSWORD, sign_in
from tests.test_party_ties import _portfolio
from watcher.connections import (
    Guarantee,
    LinkBasis,
    Node,
    NodeKind,
    PartyTies,
    PortfolioIndex,
    Tie,
    TieRole,
    company_node,
)
from watcher.console import graph
from watcher.console.app import create_app
from watcher.console.auth import create_user
from watcher.console.graphviz import DrawingProblem, draw, sanitized_svg
from watcher.importer import BorrowerRow
from watcher.models import Alert, Borrower
from watcher.pipeline import Checker
from watcher.record import Listing, ListingState, Person, RegistryRecord, Role
from watcher.store import borrowers
from watcher.vocabulary import Language, Severity

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CHECKED_AT = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
HIDDEN_ZH = "另一关联方（无权查看）"

PARTIES = {
    "b-alpha": ("阿尔法精密机械有限公司", "zhang_wei"),
    "b-beta": ("贝塔贸易有限公司", "li_na"),
    "b-gamma": ("伽马物流有限公司", "zhang_wei"),
    "b-delta": ("德尔塔建材有限公司", None),
    "b-epsilon": ("艾普西隆科技有限公司", "li_na"),
}
HIDDEN_FROM_ZHANG = ("b-beta", "b-delta", "b-epsilon")


def _person(name: str, key: str, *roles: Role, since: date | None = None) -> Person:
    return Person(name, key, frozenset(roles), appointed_on=since)


def _listing(key: str) -> Listing:
    return Listing(key=key, state=ListingState.ACTIVE, reason="test", listed_on=date(2026, 1, 5))


WANG_ALPHA = _person("王建国", "id:wang", Role.LEGAL_REPRESENTATIVE, since=date(2020, 5, 1))
WANG_BETA = _person("王建国", "id:wang", Role.LEGAL_REPRESENTATIVE, since=date(2021, 3, 15))

RECORDS = {
    "b-alpha": RegistryRecord(
        source="cn",
        registry_id="b-alpha",
        name=PARTIES["b-alpha"][0],
        legal_representative=WANG_ALPHA,
        people=(WANG_ALPHA, _person("陈丽", "n:陈丽", Role.SUPERVISOR)),
    ),
    "b-beta": RegistryRecord(
        source="cn",
        registry_id="b-beta",
        name=PARTIES["b-beta"][0],
        legal_representative=WANG_BETA,
        people=(
            WANG_BETA,
            _person("李娜", "id:lina", Role.FINANCE_HEAD),
            _person("赵敏", "id:zhao", Role.DIRECTOR),
        ),
        dishonest_debtors=(_listing("dishonest-1"),),
    ),
    "b-gamma": RegistryRecord(
        source="cn",
        registry_id="b-gamma",
        name=PARTIES["b-gamma"][0],
        people=(_person("李娜", "id:lina", Role.DIRECTOR),),
        abnormal_operations=(_listing("abnormal-1"),),
    ),
    "b-delta": RegistryRecord(
        source="cn",
        registry_id="b-delta",
        name=PARTIES["b-delta"][0],
        people=(_person("陈丽", "n:陈丽", Role.SUPERVISOR),),
    ),
    "b-epsilon": RegistryRecord(
        source="cn",
        registry_id="b-epsilon",
        name=PARTIES["b-epsilon"][0],
        people=(_person("赵敏", "id:zhao", Role.MANAGER),),
    ),
}
USERS = {"zhang": "zhang_wei", "li": "li_na", "wang": "wang_fang", "risk": None}


class ConnectionWorld:
    def __init__(self, folder: Path, url: str, channels: str = CHANNELS) -> None:
        self.deployment = Deployment(folder, url, channels)
        self.store = self.deployment.store
        self.deployment.add(
            *(
                BorrowerRow(id=party, name=name, source="cn", registry_id=party, officer=officer)
                for party, (name, officer) in PARTIES.items()
            )
        )
        checker = Checker(
            self.store,
            self.deployment.config,
            sources={"cn": RecordSource("cn", RECORDS)},
            clock=lambda: CHECKED_AT,
        )

        async def run() -> None:
            try:
                with self.store.session() as session:
                    selected = borrowers(session)
                outcomes = await checker.check(selected)
                assert all(outcome.ok for outcome in outcomes), outcomes
            finally:
                await checker.aclose()

        asyncio.run(run())
        with self.store.transaction() as session:
            for username, officer in USERS.items():
                create_user(
                    session,
                    username=username,
                    password=PASSWORD,
                    role="officer" if officer else "reviewer",
                    officer_id=officer,
                    display_name=username,
                    actor="test",
                )

    def client(self, username: str, config=None) -> TestClient:
        client = TestClient(create_app(self.store, config or self.deployment.config))
        assert sign_in(client, username).status_code == 303
        return client

    def close(self) -> None:
        self.deployment.close()


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[ConnectionWorld]:
    made = ConnectionWorld(tmp_path, sqlite_url)
    yield made
    made.close()


def _svg(page: str) -> str:
    match = re.search(r'<div class="graph-scroll">(<svg.*?</svg>)</div>', page, re.S)
    assert match, "the page draws no neighbourhood"
    return match[1]


def _table(page: str) -> list[str]:
    match = re.search(r'<table class="data" id="connections-table">(.*?)</table>', page, re.S)
    assert match, "the page has no connections table"
    rows = re.findall(r"<tr class=\"connection[^\"]*\">(.*?)</tr>", match[1], re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def _node_labels(svg: str) -> dict[str, list[str]]:
    """Node labels by class ("party focus", "person", "party hidden risky"…)."""
    labels: dict[str, list[str]] = {}
    for classes, body in re.findall(
        r'<g class="node ([^"]+)">(.*?)</g>\s*(?=<g class="node|</g></svg>)', svg, re.S
    ):
        text = "".join(re.findall(r"<text[^>]*>([^<]*)</text>", body))
        labels.setdefault(classes, []).append(text)
    return labels


# -- the party page -------------------------------------------------------------------------------


def test_an_officer_sees_the_connections_of_their_party_without_the_parties_of_others(world):
    page = world.client("zhang").get("/borrower?id=b-alpha").text
    for hidden in HIDDEN_FROM_ZHANG:
        assert hidden not in page and PARTIES[hidden][0] not in page, hidden
    assert "赵敏" not in page, "a person tying only parties he may not see stays unknown"

    rows = _table(page)
    assert rows == [
        f"{HIDDEN_ZH} 王建国 法定代表人（2020-05-01 起） 法定代表人（2021-03-15 起） "
        "数据商主体标识 2021-03-15",
        # No start dates from the registry: the link held by the day it was first recorded.
        f"{HIDDEN_ZH} 陈丽 监事 监事 可能关联（仅姓名） 不晚于 {CHECKED_AT.date()}（首次记录）",
    ]

    labels = _node_labels(_svg(page))
    assert labels["party focus"] == ["阿尔法精密机械有限公司 (b-alpha)"]
    assert labels["party risky"] == ["伽马物流有限公司 (b-gamma)"], "hop 2, listed in force: marked"
    assert labels["party hidden risky"] == [HIDDEN_ZH], "贝塔: anonymous, its listing still marked"
    assert labels["party hidden"] == [HIDDEN_ZH], "德尔塔, by a possible link"
    assert sorted(labels["person"]) == ["李娜", "王建国", "陈丽"]
    assert 'href="/borrower?id=b-gamma"' in page and "stroke-dasharray" in _svg(page), "possible link dashed"


def test_a_reviewer_sees_the_whole_neighbourhood_and_the_drawing_is_inert(world):
    page = world.client("risk").get("/borrower?id=b-alpha&lang=en").text
    svg = _svg(page)
    labels = _node_labels(svg)
    assert "party hidden" not in labels and "party hidden risky" not in labels
    assert sorted(labels["party risky"]) == ["伽马物流有限公司 (b-gamma)", "贝塔贸易有限公司 (b-beta)"]
    assert sorted(labels["person"]) == ["李娜", "王建国", "赵敏", "陈丽"]
    assert "艾普西隆科技有限公司 (b-epsilon)" in labels["party"], "two hops, over 赵敏"
    # What the console embeds: no script, style, event handler or outside reference, no node ids.
    assert not re.search(r"<script|<style|style=|\son\w+=|<title>n\d|xlink:|<foreignObject|url\(", svg)
    assert set(re.findall(r"<(\w+)", svg)) <= {
        "svg",
        "title",
        "g",
        "a",
        "polygon",
        "ellipse",
        "path",
        "text",
        "polyline",
    }
    assert "Connections" in page and "vendor id" in page and "a party you may not see" not in page


def test_the_groups_page_counts_hidden_members_and_their_alerts_but_names_none(world):
    with world.store.session() as session:
        members = ("b-alpha", "b-beta", "b-gamma", "b-epsilon")
        total = session.exec(
            select(func.count()).select_from(Alert).where(col(Alert.borrower_id).in_(members))
        ).one()
        severities = session.exec(select(Alert.severity).where(col(Alert.borrower_id).in_(members))).all()
    assert total >= 2, "the listings in force raised onboarding alerts"
    highest = max((Severity(s) for s in severities), key=lambda s: s.rank)

    page = world.client("zhang").get("/groups").text
    assert "关联集团" in page
    [group] = re.findall(r'<tr class="group" data-size="(\d+)">(.*?)</tr>', page, re.S)
    size, row = group
    text = " ".join(re.sub(r"<[^>]+>", " ", row).split())
    assert size == "4"
    assert "阿尔法精密机械有限公司" in text and "伽马物流有限公司" in text and "另有 2 家（无权查看）" in text
    assert f" {total} " in f" {text} " and f"sev-{highest.value}" in row
    assert "王建国" in text and "李娜" in text and "赵敏" not in text and "、另有 1 个（无权查看）" in text
    for hidden in HIDDEN_FROM_ZHANG:
        assert hidden not in page and PARTIES[hidden][0] not in page

    assert "没有您可查看的关联集团" in world.client("wang").get("/groups").text
    everything = world.client("risk").get("/groups?lang=en").text
    assert (
        "赵敏" in everything
        and "艾普西隆科技有限公司" in everything
        and "more you may not see" not in everything
    )
    assert 'href="/groups"' in everything and ">Groups<" in everything, "the nav links the page"


def test_without_graphviz_the_page_shows_the_table_and_one_line_saying_why(world, tmp_path):
    config = world.deployment.config
    missing = config.model_copy(
        update={"console": config.console.model_copy(update={"graphviz": str(tmp_path / "no-dot")})}
    )
    page = world.client("zhang", missing).get("/borrower?id=b-alpha").text
    assert (
        'id="connections-table"' in page and "<svg" not in page.split('id="connections"')[1].split("<h2>")[0]
    )
    assert re.findall(r'<p class="small warn-text" id="graph-notice">([^<]*)</p>', page) == [
        "服务器未安装 Graphviz（dot），关联图无法绘制；上表列出全部关联关系。"
    ]


def test_a_party_without_connections_says_so(tmp_path, sqlite_url):
    made = ConnectionWorld(tmp_path, sqlite_url)
    try:
        with made.store.transaction() as session:
            session.add(Borrower(id="b-alone", name="孤立公司", source="cn", registry_id="b-alone"))
        page = made.client("risk").get("/borrower?id=b-alone").text
        assert 'id="connections-none"' in page and "graph-scroll" not in page and "graph-notice" not in page
    finally:
        made.close()


@pytest.mark.parametrize("username", ["zhang", "risk"])
def test_connections_on_postgresql(tmp_path, postgres_url, username):
    made = ConnectionWorld(tmp_path, postgres_url)
    try:
        page = made.client(username).get("/borrower?id=b-gamma").text
        rows = _table(page)
        assert len(rows) == 1 and "李娜" in rows[0]
        assert ("贝塔贸易有限公司" in rows[0]) is (username == "risk")
        assert 'data-size="4"' in made.client(username).get("/groups").text
    finally:
        made.close()


# -- the pure neighbourhood and the drawing -------------------------------------------------------


def _crowd(fans: int, second: int) -> PortfolioIndex:
    """A party sharing one person with ``fans`` parties, each sharing another with ``second`` more."""
    parties: list[tuple[str, Node | None, str, frozenset[Tie]]] = []
    boss = Node(NodeKind.PERSON, "v|id:boss", LinkBasis.VENDOR_KEY)
    parties.append(
        (
            "p-focus",
            company_node("cn", "focus"),
            "Focus",
            frozenset({Tie("p-focus", boss, TieRole.LEGAL_REPRESENTATIVE, "Boss")}),
        )
    )
    for fan in range(fans):
        party = f"p-{fan:03d}"
        deputy = Node(NodeKind.PERSON, f"v|id:d{fan}", LinkBasis.VENDOR_KEY)
        ties = {
            Tie(party, boss, TieRole.DIRECTOR, "Boss"),
            Tie(party, deputy, TieRole.LEGAL_REPRESENTATIVE, f"Deputy {fan}"),
        }
        parties.append((party, None, f"Fan {fan}", frozenset(ties)))
        for far in range(second):
            other = f"p-{fan:03d}-{far}"
            parties.append(
                (
                    other,
                    None,
                    f"Far {fan}.{far}",
                    frozenset({Tie(other, deputy, TieRole.SHAREHOLDER, f"Deputy {fan}")}),
                )
            )
    return PortfolioIndex.build(parties)


def test_a_guarantee_is_drawn_from_the_guarantor_and_names_the_group_it_holds_together():
    """A direct link says who holds the role (an arrow from the guarantor), and a group held together
    by a guarantee names it in "linked by" (no shared person or company would): scoped like any name."""
    index = PortfolioIndex()
    guarantees = frozenset(Guarantee("g-1", b, TieRole.GUARANTOR) for b in ("b-1", "b-2"))
    index.add(
        PartyTies(
            "g-1",
            company_node("cn", "91310115MA1K4LQ07P"),
            "上海临港澜启科技有限公司",
            frozenset(),
            guarantees,
        )
    )
    index.add(
        PartyTies("b-1", company_node("cn", "91330106MA2KH7Q302"), "杭州澜潮智能装备有限公司", frozenset())
    )
    index.add(PartyTies("b-2", company_node("cn", "91330201MA2H8Q0X1K"), "宁波星河港务有限公司", frozenset()))
    hood = graph.neighbourhood(
        index,
        "b-1",
        visible={"b-1", "g-1"},
        risk=graph.RiskMarks(),
        language=Language.ZH_CN,
        hidden_label="?",
    )
    key = {node.party_id: node.key for node in hood.nodes if node.party_id}
    assert graph.GraphEdge(key["g-1"], key["b-1"], "保证人", False, forward=True) in hood.edges
    dot = graph.neighbourhood_dot(hood)
    assert f'  {key["g-1"]} -- {key["b-1"]} [label="保证人", dir=forward];' in dot
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=dot.encode(), check=True, capture_output=True)
    [line] = [line for line in graph.connection_lines(index, "b-1", {"b-1", "g-1"}) if line.other]
    assert (line.via_name, line.roles_here, line.roles_there) == (
        "上海临港澜启科技有限公司",
        frozenset({TieRole.GUARANTOR}),
        frozenset(),
    ), "the guarantor holds its role at b-1"
    [group] = graph.group_lines(index, {"b-1", "g-1"}, {})
    assert (group.size, group.guarantors, group.linking, group.linking_hidden) == (
        3,
        ("上海临港澜启科技有限公司",),
        (),
        0,
    )
    [unnamed] = graph.group_lines(index, {"b-2"}, {})
    assert (unnamed.guarantors, unnamed.linking_hidden) == ((), 1), "a guarantor the reader may not see"


def test_a_crowded_neighbourhood_is_capped_and_drawn_whole():
    index = _crowd(fans=80, second=2)  # 1 + 80 + 160 parties, 81 people: 322 nodes within reach
    hood = graph.neighbourhood(
        index,
        "p-focus",
        visible=index.parties,
        risk=graph.RiskMarks(),
        language=Language.EN,
        hidden_label="?",
    )
    assert len(hood.nodes) <= graph.MAX_NODES and hood.not_drawn == 322 - len(hood.nodes)
    assert hood.nodes[0].focus and sum(1 for n in hood.nodes if n.label.startswith("Fan")) == 80, (
        "nearest first"
    )
    # Within the renderer's own timeout; how long a drawing takes is a benchmark's question, not a test's.
    drawing = draw(
        graph.neighbourhood_dot(hood), program="dot", layout=graph.layout_engine(hood), description="d"
    )
    assert drawing.problem is None
    assert drawing.svg.count('<g class="node ') == len(hood.nodes)
    assert drawing.svg.count('<g class="edge') == len(hood.edges)


def test_a_missing_or_failing_program_is_reported_not_raised(tmp_path):
    assert (
        draw("graph g { a }", program=str(tmp_path / "dot"), layout="dot", description="d").problem
        is DrawingProblem.MISSING
    )
    assert (
        draw("graph g { a -- }", program="dot", layout="dot", description="d").problem
        is DrawingProblem.FAILED
    )


def test_the_sanitizer_keeps_shapes_and_local_links_only():
    hostile = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" height="10pt" onload="alert(1)">'
        '<script>alert(2)</script><g class="node party" style="x"><title>n0</title>'
        '<a xlink:href="javascript:alert(3)"><text x="1" y="2" fill="url(#x)">&lt;b&gt;</text></a>'
        '<a xlink:href="/borrower?id=b-1"><polygon points="1,2 3,4"/></a>'
        "<foreignObject><p>x</p></foreignObject></g></svg>"
    )
    clean = sanitized_svg(hostile, 'A "graph"')
    assert clean == (
        '<svg width="10pt" height="10pt" role="img" xmlns="http://www.w3.org/2000/svg">'
        "<title>A &quot;graph&quot;</title>"
        '<g class="node party"><g><text x="1" y="2">&lt;b&gt;</text></g>'
        '<a href="/borrower?id=b-1"><polygon points="1,2 3,4"></polygon></a></g></svg>'
    )
    with pytest.raises(ValueError):
        sanitized_svg('<!DOCTYPE x [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg"/>', "d")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), shown=st.sets(st.integers(0, 19)), limit=st.integers(2, 60))
def test_a_reader_learns_no_name_or_id_of_a_party_they_may_not_see(seed, shown, limit):
    parties = _portfolio(seed, parties=20)
    index = PortfolioIndex.of(parties)
    focus = parties[seed % 20].party
    visible = {parties[number].party for number in shown} | {focus}
    hood = graph.neighbourhood(
        index,
        focus,
        visible=visible,
        risk=graph.RiskMarks(),
        language=Language.ZH_CN,
        hidden_label="HIDDEN",
        max_nodes=limit,
    )
    dot = graph.neighbourhood_dot(hood)
    hidden = index.parties - visible
    for party in hidden:
        assert f"({party})" not in dot and f"id={party}" not in dot and f"%3D{party}" not in dot
    by_key = {node.key: node for node in hood.nodes}
    assert len(hood.nodes) <= max(limit, 1)
    assert all(node.party_id in visible for node in hood.nodes if node.party_id is not None)
    for node in hood.nodes:
        ends = [
            by_key[e.end if e.start == node.key else e.start]
            for e in hood.edges
            if node.key in (e.start, e.end)
        ]
        if node.shape is not graph.Shape.PARTY:
            assert any(not end.hidden for end in ends), "a person or company is drawn for a visible party"
            assert len(ends) >= 2
        elif node.hidden:
            assert ends, "an anonymous party is drawn only where it links to something shown"
    assert {node.party_id for node in hood.nodes if node.focus} == {focus}
