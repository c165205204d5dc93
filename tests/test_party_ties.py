"""The portfolio index in the database: stored ties round-trip on SQLite and PostgreSQL, the pipeline
writes them with each snapshot, `watcher db reindex` rebuilds the same, prune removes them, and
`watcher connections` shows groups and (possible) links as a table, JSON and Graphviz DOT."""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, delete, select
from typer.testing import CliRunner

from tests.deployment import BASELINE_AT, LANCHAO, REGISTRIES, Deployment
from watcher.cli import app
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
from watcher.identifiers import cn_uscc_check_char
from watcher.importer import BorrowerRow
from watcher.lifecycle import deactivate, prune
from watcher.models import PartyNode, PartyTie, SecuresLink
from watcher.party_ties import (
    indexed_parties,
    load_group,
    load_index,
    load_neighbourhood,
    replace_party_ties,
)
from watcher.reindex import reindex_if_unindexed, tie_scopes
from watcher.store import open_store
from watcher.vocabulary import PartyRole

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RUNNER = CliRunner()


# -- the store: a round trip, replacement, neighbourhoods --------------------------------------------


def _portfolio(seed: int, parties: int = 40) -> list[PartyTies]:
    """Parties naming people from a small pool, keyed as strongly as a source might: vendor keys,
    name and birth, names alone, shared companies; some hold each other by registration number."""
    rng = random.Random(seed)
    names = ["王建国", "陈丽", "Li Na", 'O"Brien \\N', "张伟", "Anna Berg"]
    made = []
    for number in range(parties):
        party = f"p{number:03d}"
        ties = set()
        for _ in range(rng.randint(0, 5)):
            name = rng.choice(names)
            identity, basis = rng.choice(
                [
                    (f"qichacha|id:k{names.index(name)}", LinkBasis.VENDOR_KEY),
                    (f"nb:{name.casefold()}|1970-0{rng.randint(1, 3)}", LinkBasis.BIRTH_DATE),
                    (f"person|n:{name.casefold()}", LinkBasis.NAME_ONLY),
                ]
            )
            role = rng.choice(list(TieRole))
            # Stake and date follow from the role, so that no two ties differ only by them.
            stake = [None, Decimal("33.3333"), Decimal("5"), Decimal("0.0001")][len(role.value) % 4]
            since = date(2020, 1, 31) if len(role.value) % 2 else None
            ties.add(Tie(party, Node(NodeKind.PERSON, identity, basis), role, name, stake, since))
        if rng.random() < 0.2:
            held = rng.randrange(parties)
            ties.add(Tie(party, company_node("cn", f"reg{held:03d}"), TieRole.SHAREHOLDER, f"Company {held}"))
        secures: set[Guarantee] = set()
        if rng.random() < 0.15:  # a guarantor or pledgor, securing one or two others
            role = rng.choice([TieRole.GUARANTOR, TieRole.PLEDGOR])
            for _ in range(rng.randint(1, 2)):
                secured = rng.randrange(parties)
                if secured != number:
                    secures.add(Guarantee(party, f"p{secured:03d}", role, first_seen=NOW.date()))
        made.append(
            PartyTies(
                party,
                company_node("cn", f"reg{number:03d}"),
                f"Company {number}",
                frozenset(ties),
                frozenset(secures),
            )
        )
    return made


def _seed_borrowers(store, parties: list[PartyTies]) -> None:
    from watcher.models import Borrower

    roles = {TieRole.GUARANTOR: PartyRole.GUARANTOR, TieRole.PLEDGOR: PartyRole.PLEDGOR}
    with store.transaction() as session:
        for party in parties:
            role = next((roles[g.role] for g in party.secures), PartyRole.BORROWER)
            session.add(
                Borrower(id=party.party, name=party.name, source="cn", registry_id=party.party, role=role)
            )
        session.flush()
        for party in parties:
            replace_party_ties(session, party, now=NOW)
            for guarantee in party.secures:
                session.add(
                    SecuresLink(party_id=party.party, borrower_id=guarantee.borrower, first_seen=NOW.date())
                )


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, sqlite_url):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_store(url)
    yield store
    store.dispose()


def test_stored_ties_read_back_as_the_index_they_were_built_from(any_store):
    parties = _portfolio(seed=7)
    _seed_borrowers(any_store, parties)
    with any_store.session() as session:
        loaded = load_index(session)
    assert loaded.canonical() == PortfolioIndex.of(parties).canonical()
    assert loaded.groups() == PortfolioIndex.of(parties).groups()


def test_a_partys_ties_are_replaced_not_added_to(any_store):
    parties = _portfolio(seed=8, parties=5)
    _seed_borrowers(any_store, parties)
    first = parties[0]
    fewer = PartyTies(first.party, None, first.name, frozenset(sorted(first.ties, key=Tie.sort_key)[:1]))
    with any_store.transaction() as session:
        replace_party_ties(session, fewer, now=NOW)
    with any_store.session() as session:
        loaded = load_index(session)
        assert indexed_parties(session) == 5
    assert loaded.ties(first.party) == fewer.ties and loaded.own(first.party) is None
    kept = PartyTies(fewer.party, None, fewer.name, fewer.ties, first.secures)  # a snapshot leaves them
    assert loaded.canonical() == PortfolioIndex.of([kept, *parties[1:]]).canonical()


def test_a_tie_keeps_the_day_it_was_first_recorded_while_the_party_keeps_naming_it(any_store):
    [party] = _portfolio(seed=5, parties=1)
    party = PartyTies(party.party, party.own, party.name, party.ties | {_tie(party.party, "k1", "王建国")})
    _seed_borrowers(any_store, [party])
    later = NOW + timedelta(days=30)
    renamed = PartyTies(
        party.party,
        party.own,
        party.name,
        frozenset({_tie(party.party, "k1", "王建国"), _tie(party.party, "k2", "陈丽")}),
    )
    with any_store.transaction() as session:
        replace_party_ties(session, renamed, now=later)
    with any_store.session() as session:
        seen = {tie.node.identity: tie.first_seen for tie in load_index(session).ties(party.party)}
    assert seen == {"qichacha|id:k1": NOW.date(), "qichacha|id:k2": later.date()}


def _tie(party: str, key: str, name: str) -> Tie:
    return Tie(
        party, Node(NodeKind.PERSON, f"qichacha|id:{key}", LinkBasis.VENDOR_KEY), TieRole.DIRECTOR, name
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_names_the_strong_links_and_groups_are_still_the_whole_indexs(sqlite_url, seed):
    """What alerts read (``names=False``): equal names are not looked up, strong links and groups are
    as on the whole index, and no party reached only by a name is loaded."""
    store = open_store(sqlite_url)
    parties = _portfolio(seed=seed)
    _seed_borrowers(store, parties)
    whole = PortfolioIndex.of(parties)
    fewer = 0
    with store.session() as session:
        for party in parties[:12]:
            around = load_neighbourhood(session, party.party, names=False)
            strong = [c for c in whole.connections(party.party) if not c.possible]
            assert [c for c in around.connections(party.party) if not c.possible] == strong
            assert {c.other for c in strong} | {party.party} <= around.parties
            fewer += len(load_neighbourhood(session, party.party).parties) - len(around.parties)
            group = load_group(session, party.party, names=False)
            assert group.group_of(party.party) == whole.group_of(party.party)
    assert fewer > 0, "names would have loaded more parties"
    store.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_neighbourhood_and_a_group_read_by_sql_give_what_the_whole_index_gives(sqlite_url, seed):
    store = open_store(sqlite_url)
    parties = _portfolio(seed=seed)
    _seed_borrowers(store, parties)
    whole = PortfolioIndex.of(parties)
    with store.session() as session:
        for party in parties[:12]:
            around = load_neighbourhood(session, party.party)
            assert around.connections(party.party) == whole.connections(party.party)
            assert len(around.parties) <= len(whole.parties)
            group = load_group(session, party.party)
            assert group.group_of(party.party) == whole.group_of(party.party)
            for member in group.group_of(party.party):
                assert group.connections(member) == whole.connections(member)
    store.dispose()


def test_inactive_parties_keep_their_ties_but_lookups_skip_them(sqlite_url):
    store = open_store(sqlite_url)
    parties = _portfolio(seed=11, parties=10)
    _seed_borrowers(store, parties)
    with store.transaction() as session:
        deactivate(session, [parties[0].party], actor="test", now=NOW)
    with store.session() as session:
        active = load_index(session)
        everyone = load_index(session, active_only=False)
        around = load_neighbourhood(session, parties[1].party)
    assert parties[0].party not in active.parties and parties[0].party not in around.parties
    assert everyone.canonical() == PortfolioIndex.of(parties).canonical()
    store.dispose()


# -- the pipeline, reindex, prune and the command line, on saved Qichacha answers --------------------


def _uscc(body: str) -> str:
    return body + cn_uscc_check_char(body)


XIHU = BorrowerRow(
    id="b-xihu", name="苏州西湖精密机械有限公司", source="cn", registry_id="91320506MA1WQ3K565"
)
QIANTANG = BorrowerRow(
    id="b-qiantang", name="宁波钱塘贸易有限公司", source="cn", registry_id=_uscc("91330201MA2H7K3Q4")
)
WANG_KEY = "p5a8ef899114677ea39258ce1d927601"  # 王建国's Qichacha KeyNo, legal representative of 澜潮


def _card(row: BorrowerRow, *, oper: tuple[str, str], partners, employees) -> dict:
    card = json.loads((REGISTRIES / "cn_qichacha" / "eci_info_verify_getinfo_t0.json").read_text("utf-8"))
    result = copy.deepcopy(card["Result"])
    result.update(
        Name=row.name, CreditCode=row.registry_id, KeyNo=f"k-{row.id}", OperName=oper[0], OperId=oper[1]
    )
    result["Partners"] = [
        dict(result["Partners"][0], StockName=name, KeyNo=key, StockPercent=percent, StockType="自然人股东")
        for name, key, percent in partners
    ]
    result["Employees"] = [{"Name": name, "KeyNo": key, "Job": job} for name, key, job in employees]
    return dict(card, Result=result)


@pytest.fixture
def world(tmp_path: Path, sqlite_url: str):
    """澜潮 and 西湖 share 王建国 by his Qichacha KeyNo (a group); 钱塘's supervisor 陈丽 has no key,
    like 澜潮's 陈丽 by name only (a possible link, no group)."""
    deployment = Deployment(tmp_path, sqlite_url, "")
    feed = tmp_path / "feed" / "cn"
    (feed / LANCHAO.registry_id).mkdir(parents=True)
    shutil.copy(
        REGISTRIES / "cn_qichacha" / "eci_info_verify_getinfo_t0.json",
        feed / LANCHAO.registry_id / "getinfo.json",
    )
    cards = {
        XIHU: _card(
            XIHU,
            oper=("王建国", WANG_KEY),
            partners=[("王建国", WANG_KEY, "70%"), ("李娜", "p-lina", "30%")],
            employees=[("王建国", WANG_KEY, "执行董事"), ("李娜", "p-lina", "监事")],
        ),
        QIANTANG: _card(
            QIANTANG,
            oper=("赵敏", "p-zhaomin"),
            partners=[("赵敏", "p-zhaomin", "100%")],
            employees=[("赵敏", "p-zhaomin", "执行董事兼总经理"), ("陈丽", "", "监事")],
        ),
    }
    for row, card in cards.items():
        (feed / row.registry_id).mkdir(parents=True)
        (feed / row.registry_id / "getinfo.json").write_text(json.dumps(card, ensure_ascii=False), "utf-8")
    deployment.add(LANCHAO, XIHU, QIANTANG)
    outcomes = deployment.check(BASELINE_AT)
    assert all(outcome.ok and outcome.baseline for outcome in outcomes.values()), outcomes
    yield deployment
    deployment.close()


def _cli(deployment: Deployment, *args: str):
    result = RUNNER.invoke(app, ["--config", str(deployment.config_path), *args], catch_exceptions=False)
    return result


def _connections_json(deployment: Deployment, *args: str) -> dict:
    result = _cli(deployment, "connections", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_two_borrowers_sharing_a_qichacha_person_form_a_group_and_a_name_alone_is_only_possible(world):
    shown = _connections_json(world)
    assert [[p["id"] for p in group["parties"]] for group in shown["groups"]] == [["b-lanchao", "b-xihu"]]
    strong = [c for c in shown["connections"] if not c["possible"]]
    assert [(c["party"], c["other"], c["via"]["name"], c["basis"]) for c in strong] == [
        ("b-lanchao", "b-xihu", "王建国", "vendor_key")
    ]
    assert strong[0]["roles_here"] == ["legal_representative", "director", "manager", "shareholder"]
    assert strong[0]["roles_there"] == ["legal_representative", "director", "shareholder"]
    assert strong[0]["via"]["identity"] == f"qichacha|id:{WANG_KEY}"
    possible = [c for c in shown["connections"] if c["possible"]]
    assert [(c["party"], c["other"], c["via"]["name"], c["basis"]) for c in possible] == [
        ("b-lanchao", "b-qiantang", "陈丽", "name_only")
    ]
    assert (possible[0]["roles_here"], possible[0]["roles_there"]) == (["supervisor"], ["supervisor"])


def test_one_partys_connections_and_group(world):
    qiantang = _connections_json(world, "--party", "b-qiantang")
    assert qiantang["groups"] == []
    assert [(c["other"], c["possible"]) for c in qiantang["connections"]] == [("b-lanchao", True)]
    xihu = _connections_json(world, "--party", "b-xihu")
    assert [group["size"] for group in xihu["groups"]] == [2]
    assert [(c["other"], c["basis"]) for c in xihu["connections"]] == [("b-lanchao", "vendor_key")]
    missing = _cli(world, "connections", "--party", "b-nobody")
    assert missing.exit_code == 2 and "b-nobody" in missing.output


def test_the_table_reads_in_the_configured_language(world, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = _cli(world, "connections")
    assert result.exit_code == 0, result.output
    assert "关联集团" in result.stdout and "关联关系" in result.stdout
    assert "可能关联（仅姓名）" in result.stdout and "数据商主体标识" in result.stdout
    line = next(line for line in result.stdout.splitlines() if "b-qiantang" in line and "陈丽" in line)
    assert "监事" in line
    # The role columns say whose role it is: the linking person's or company's, at each party.
    assert "其在主体的角色" in result.stdout and "其在关联主体的角色" in result.stdout


DOT_STRING = r'"(?:[^"\\]|\\.)*"'
DOT_NODE = re.compile(rf"^  {DOT_STRING} \[label={DOT_STRING}, shape=(box|ellipse|folder)\];$")
DOT_EDGE = re.compile(
    rf"^  ({DOT_STRING}) -- ({DOT_STRING}) \[label={DOT_STRING}(, style=dashed)?(, dir=forward)?\];$"
)


def _check_dot(text: str) -> list[tuple[str, str, bool]]:
    """Every line a node or an edge of an undirected graph; the edges as (start, end, dashed)."""
    lines = text.splitlines()
    assert lines[0] == "graph connections {" and lines[-1] == "}"
    edges = []
    for line in lines[3:-1]:
        edge = DOT_EDGE.match(line)
        assert edge or DOT_NODE.match(line), line
        if edge:
            edges.append((json.loads(edge[1]), json.loads(edge[2]), bool(edge[3])))
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=text.encode(), check=True, capture_output=True)
    return edges


def test_dot_draws_parties_and_people_with_possible_links_dashed(world):
    result = _cli(world, "connections", "--format", "dot")
    assert result.exit_code == 0, result.output
    edges = _check_dot(result.stdout)
    wang = f"node:qichacha|id:{WANG_KEY}"
    assert ("party:b-lanchao", wang, False) in edges and ("party:b-xihu", wang, False) in edges
    assert [edge for edge in edges if edge[2]] == [
        ("party:b-qiantang", "node:qichacha|id:p0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5", True)
    ]


def test_reindex_rebuilds_what_the_pipeline_wrote(world):
    with world.store.session() as session:
        written = load_index(session, active_only=False).canonical()
        assert indexed_parties(session) == 3
    result = _cli(world, "db", "reindex")
    assert result.exit_code == 0, result.output
    assert "3 borrower(s)" in result.stdout
    with world.store.session() as session:
        assert load_index(session, active_only=False).canonical() == written
    with world.store.transaction() as session:
        session.exec(delete(PartyTie))
        session.exec(delete(PartyNode))
    scopes = tie_scopes(world.config)
    assert reindex_if_unindexed(world.store, scopes, now=NOW) is not None
    assert reindex_if_unindexed(world.store, scopes, now=NOW) is None  # once only
    with world.store.session() as session:
        assert load_index(session, active_only=False).canonical() == written


def test_a_changed_record_replaces_the_partys_ties(world):
    card = json.loads((world.folder / "feed" / "cn" / XIHU.registry_id / "getinfo.json").read_text("utf-8"))
    card["Result"].update(OperName="李娜", OperId="p-lina")
    card["Result"]["Employees"] = [{"Name": "李娜", "KeyNo": "p-lina", "Job": "执行董事"}]
    card["Result"]["Partners"] = card["Result"]["Partners"][1:]
    (world.folder / "feed" / "cn" / XIHU.registry_id / "getinfo.json").write_text(
        json.dumps(card, ensure_ascii=False), "utf-8"
    )
    outcomes = world.check(BASELINE_AT + timedelta(days=1))
    assert outcomes["b-xihu"].changes > 0
    assert _connections_json(world)["groups"] == []
    with world.store.session() as session:
        names = set(session.exec(select(PartyTie.name).where(col(PartyTie.borrower_id) == "b-xihu")))
    assert names == {"李娜"}


def test_deactivated_parties_drop_out_and_prune_removes_their_ties(world):
    long_ago = NOW - timedelta(days=365 * 11)
    with world.store.transaction() as session:
        deactivate(session, ["b-xihu"], actor="test", now=long_ago)
    assert _connections_json(world)["groups"] == []
    with world.store.session() as session:
        kept = session.exec(select(PartyTie).where(col(PartyTie.borrower_id) == "b-xihu")).all()
    assert kept  # history: an inactive party keeps its ties
    with world.store.transaction() as session:
        pruned = prune(session, retention=timedelta(days=3653), now=NOW, actor="test", dry_run=False)
    assert [(p.borrower_id, p.ties) for p in pruned] == [("b-xihu", len(kept))]
    assert f"{len(kept)} portfolio tie(s)" in pruned[0].line()
    with world.store.session() as session:
        assert not session.exec(select(PartyTie).where(col(PartyTie.borrower_id) == "b-xihu")).all()
        assert session.get(PartyNode, "b-xihu") is None


def test_each_source_scopes_its_ids_by_jurisdiction_and_vendor_a_feed_by_its_config_key():
    from sources import source_class
    from sources.base import SourceOptions
    from sources.replay import ReplayOptions
    from watcher.connections import TieScope

    def scope(type_name: str, name: str = "key") -> TieScope:
        return source_class(type_name).tie_scope(name, SourceOptions(type=type_name))

    assert scope("brreg") == TieScope("no", "brreg")
    assert scope("companies_house") == TieScope("gb", "companies_house")
    assert scope("fr_recherche") == TieScope("fr", "fr_recherche")
    assert scope("qichacha") == TieScope("cn", "qichacha")
    assert scope("tianyancha") == TieScope("cn", "tianyancha")
    assert scope("json", "core_bank") == TieScope("core_bank", "core_bank")
    assert scope("html", "intranet") == TieScope("intranet", "intranet")
    replayed = ReplayOptions(type="replay", folder="feed", format="tianyancha")
    assert source_class("replay").tie_scope("cn", replayed) == TieScope("cn", "tianyancha")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0013_dates_indexed_ties_by_their_indexing_and_leaves_old_guarantees_undated(
    backend: str, request, sqlite_url: str
):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from watcher.store import MIGRATIONS, SCHEMA_HEAD, Store

    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = Store(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0012")
    with store.engine.begin() as connection:
        for party in ("b1", "g1"):
            connection.execute(
                text(
                    "INSERT INTO borrower (id, name, source, registry_id, tags, active, created_at, "
                    "updated_at, consecutive_failures, role) VALUES "
                    f"('{party}', 'A', 'cn', '{party}', '', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                    "0, 'borrower')"
                )
            )
        connection.execute(
            text("INSERT INTO party_node (borrower_id, identity, indexed_at) VALUES ('b1', NULL, :at)"),
            {"at": datetime(2026, 2, 27, 23, 59, 58)},
        )
        connection.execute(
            text(
                "INSERT INTO party_tie (borrower_id, kind, identity, basis, role, name, name_key) "
                "VALUES ('b1', 'person', 'qichacha|id:k1', 'vendor_key', 'director', '王建国', '王建国')"
            )
        )
        connection.execute(text("INSERT INTO secures_link (party_id, borrower_id) VALUES ('g1', 'b1')"))
    assert store.upgrade() == ("0012", SCHEMA_HEAD)
    with store.engine.begin() as connection:
        [tie_seen] = connection.execute(text("SELECT first_seen FROM party_tie")).one()
        [link_seen] = connection.execute(text("SELECT first_seen FROM secures_link")).one()
    assert str(tie_seen) == "2026-02-27" and link_seen is None
    store.dispose()
