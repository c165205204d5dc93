"""Connected-party alerts (issue 15, point 3): ``connected_party`` when a new key person of a watched
party already holds a key role at another, ``connected_risk`` when a listing of a party or of its legal
representative or controller reaches the other parties sharing that person or company. The decision
(``watcher.connected``) as properties; end to end through real checks, the real outbox, loopback
DingTalk robots and ``watcher history`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlmodel import select

from tests.deployment import Deployment
from tests.listings import RecordSource
from tests.test_cli import history_of
from tests.test_console import PASSWORD, SECRET, sign_in
from tests.test_dispatch import DING_SECRET, DING_TOKEN, notifier, officer
from watcher.change_line import ChangeLine
from watcher.connected import (
    APPOINTED_ROLES,
    RISK_LISTINGS,
    Finding,
    already_own,
    connected_findings,
    finding_change,
    hide_other,
    may_join_by_control,
    once_per_listing,
    one_step_lower,
    read_link,
    with_groups,
)
from watcher.connections import (
    KEY_ROLES,
    LinkBasis,
    Node,
    NodeKind,
    PartyTies,
    PortfolioIndex,
    Tie,
    TieRole,
    company_node,
)
from watcher.console.app import create_app
from watcher.console.auth import create_user
from watcher.diff import Change, diff
from watcher.importer import BorrowerRow
from watcher.models import Alert, ChangeEvent, Delivery
from watcher.normalize import person_key
from watcher.pipeline import Checker, CheckOutcome
from watcher.presentation import change_severity, change_text
from watcher.record import (
    LISTING_CATEGORIES,
    Action,
    Category,
    Controller,
    HolderKind,
    Listing,
    ListingState,
    Party,
    Person,
    RegistryRecord,
    Role,
    Stake,
)
from watcher.render import AlertView, render_alert
from watcher.risk_lines import connected_value
from watcher.rules import LISTING_SEVERITY
from watcher.store import borrowers
from watcher.vocabulary import Language, PartyRole, Severity

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytest_plugins = ["tests.receivers"]

# -- the decision, as properties -------------------------------------------------------------------

PARTIES = ("p", "q1", "q2", "q3")
OWN = {party: company_node("cn", f"9133000000000000{i}X") for i, party in enumerate(PARTIES)}
PEOPLE = {
    Node(NodeKind.PERSON, "qichacha|id:pzhou", LinkBasis.VENDOR_KEY): "周明远",
    Node(NodeKind.PERSON, "qichacha|id:pli", LinkBasis.VENDOR_KEY): "李娜",
    Node(NodeKind.PERSON, "nb:王芳|1970-01", LinkBasis.BIRTH_DATE): "王芳",
    Node(NodeKind.PERSON, "person|n:周明远", LinkBasis.NAME_ONLY): "周明远",
    Node(NodeKind.PERSON, "person|n:陈静", LinkBasis.NAME_ONLY): "陈静",
}
NAMES = {**PEOPLE, **{node: f"公司{party}" for party, node in OWN.items()}}
STAKES = st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=1))


def ties_of(party: str) -> st.SearchStrategy[frozenset[Tie]]:
    nodes = st.sampled_from(sorted(node for node in NAMES if node != OWN[party]))
    tie = st.builds(
        lambda node, role, stake: Tie(party, node, role, NAMES[node], stake=stake),
        nodes,
        st.sampled_from(list(TieRole)),
        STAKES,
    )
    return st.frozensets(tie, max_size=5)


def raised_listings() -> st.SearchStrategy[tuple[Change, ...]]:
    listing = st.builds(
        lambda category, party, name, raises: Change(
            category,
            Action.ADDED,
            "（2026）浙02执123号",
            None,
            "执行标的 100,000 CNY",
            party=party,
            party_name=name if party is not Party.COMPANY else "",
            raises_listing=raises,
        ),
        st.sampled_from(sorted(LISTING_CATEGORIES)),
        st.sampled_from(list(Party)),
        st.sampled_from(["周明远", "李娜", "王芳", "陈静"]),
        st.booleans(),
    )
    return st.lists(listing, max_size=3).map(tuple)


@st.composite
def worlds(draw) -> tuple[PartyTies, frozenset[Tie], PortfolioIndex, tuple[Change, ...]]:
    """The checked party's new and old ties, the other parties' (the neighbourhood) and listings."""
    new, old = draw(ties_of("p")), draw(ties_of("p"))
    others = PortfolioIndex()
    for party in draw(st.sets(st.sampled_from(PARTIES[1:]))):
        others.set_party(party, own=OWN[party], name=f"公司{party}", ties=draw(ties_of(party)))
    return PartyTies("p", OWN["p"], "公司p", new), old, others, draw(raised_listings())


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_findings_follow_strong_links_name_existing_parties_and_take_their_severity(world) -> None:
    checked, old, others, raised = world
    findings = connected_findings(checked, old, others, raised)
    parties = others.parties | {checked.party}
    for finding in findings:
        assert finding.node.basis.strong, "a name-only (possible) link never raises anything"
        assert finding.party in parties and finding.other in parties and finding.party != finding.other
        if finding.category is Category.CONNECTED_PARTY:
            assert finding.party == checked.party and finding.severity is Severity.WARNING
            assert finding.listing is None and finding.roles_there <= KEY_ROLES
        else:
            assert finding.category is Category.CONNECTED_RISK and finding.other == checked.party
            assert finding.listing in raised and finding.listing.raises_listing
            assert finding.listing.category in RISK_LISTINGS
            assert finding.severity is one_step_lower(LISTING_SEVERITY[finding.listing.category])


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_no_finding_without_a_new_tie_or_a_new_listing(world) -> None:
    checked, _, others, raised = world
    unchanged = connected_findings(checked, checked.ties, others, raised)
    assert all(finding.category is Category.CONNECTED_RISK for finding in unchanged)
    assert connected_findings(checked, checked.ties, others, ()) == ()
    assert connected_findings(checked, None, others, ()) == (), "never indexed: nothing is known new"
    quiet = [replace(change, raises_listing=False) for change in raised]
    assert connected_findings(checked, checked.ties, others, quiet) == ()


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_a_new_key_tie_at_a_shared_strong_node_reaches_every_party_holding_it(world) -> None:
    """Symmetric: whoever is checked, each other party holding the node in a key role is named."""
    checked, _, others, _ = world
    findings = connected_findings(checked, frozenset(), others, ())
    reported = {(f.other, f.node) for f in findings}
    for tie in checked.ties:
        major = tie.role is not TieRole.SHAREHOLDER or (tie.stake is not None and tie.stake >= 5)
        if not (tie.node.basis.strong and major and tie.role in APPOINTED_ROLES):
            continue
        for other in others.ties_at(tie.node):
            if other.role in KEY_ROLES:
                assert (other.party, tie.node) in reported


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_a_company_listing_reaches_every_party_tied_to_the_company(world) -> None:
    checked, old, others, _ = world
    listing = Change(Category.DISHONEST_DEBTOR, Action.ADDED, "case", None, "text", raises_listing=True)
    findings = connected_findings(checked, old, others, (listing,))
    reached = {f.party for f in findings if f.category is Category.CONNECTED_RISK}
    assert {tie.party for tie in others.ties_at(OWN["p"])} <= reached
    holders = {party for party in others.parties if any(t.node == OWN[party] for t in checked.ties)}
    assert holders <= reached
    assert all(f.severity is Severity.HIGH for f in findings if f.category is Category.CONNECTED_RISK)


def test_one_step_lower() -> None:
    assert [one_step_lower(level) for level in Severity] == [
        Severity.INFO,
        Severity.INFO,
        Severity.WARNING,
        Severity.HIGH,
    ]


ZHOU = Node(NodeKind.PERSON, "qichacha|id:pzhou", LinkBasis.VENDOR_KEY)


@settings(max_examples=100, deadline=None)
@given(
    st.text(min_size=1, max_size=20),
    st.text(max_size=30),
    st.frozensets(st.sampled_from(list(TieRole))),
    st.frozensets(st.sampled_from(list(TieRole))),
    st.sampled_from([None, *sorted(RISK_LISTINGS)]),
    st.integers(0, 3),
)
def test_a_finding_reads_back_from_its_stored_change(name, listing_text, here, there, category, grown):
    listing = (
        None
        if category is None
        else Change(category, Action.ADDED, "c", None, listing_text or None, raises_listing=True)
    )
    finding = Finding(
        Category.CONNECTED_RISK if listing else Category.CONNECTED_PARTY,
        "b-y",
        "b-x",
        name,
        ZHOU,
        "周明远",
        here,
        there,
        Severity.WARNING,
        listing=listing,
        group_before=grown,
        group_after=grown + 2 if grown else 0,
    )
    change = finding_change(finding)
    assert change.subject == "周明远" and not change.key_person
    link = read_link(change.before, change.after)
    assert link is not None
    assert (link.other, link.roles_here, link.roles_there) == ("b-x", here, there)
    assert link.listing_category == category
    assert (link.group_before, link.group_after) == (finding.group_before, finding.group_after)


def test_a_controller_shared_by_two_groups_grows_one() -> None:
    """p gains an actual controller that q1 has: p (alone before) joins q1's group with q2."""
    shared = Node(NodeKind.PERSON, "qichacha|id:pwang", LinkBasis.VENDOR_KEY)
    index = PortfolioIndex()
    index.set_party(
        "q1", own=OWN["q1"], name="公司q1", ties=frozenset({Tie("q1", shared, TieRole.CONTROLLER, "王")})
    )
    index.set_party(
        "q2",
        own=OWN["q2"],
        name="公司q2",
        ties=frozenset({Tie("q2", OWN["q1"], TieRole.SHAREHOLDER, "公司q1")}),
    )
    new = frozenset({Tie("p", shared, TieRole.ACTUAL_CONTROLLER, "王")})
    checked = PartyTies("p", OWN["p"], "公司p", new)
    index.set_party("p", own=checked.own, name=checked.name, ties=new)
    findings = with_groups(connected_findings(checked, frozenset(), index, ()), index, checked, frozenset())
    [finding] = findings
    assert (finding.other, finding.group_before, finding.group_after) == ("q1", 2, 3)
    text = change_text(ChangeLine.of(_stored(finding_change(finding))), Language.ZH_CN)
    assert text == "关联关系：实际控制人 王 同时任 公司q1 的控制人（关联集团扩大：2 → 3 家）"
    assert finding_change(finding).after.endswith(" | group 2 -> 3")


def test_joining_a_group_by_its_shared_controller_says_grown_once() -> None:
    """q1 and q2 share 周明远; p gains him too: one note 2 → 3 on the first link, none on the second.
    A new party q3 then forms a group of 2 with nobody grouped before: 形成."""
    zhou = Node(NodeKind.PERSON, "qichacha|id:pzhou", LinkBasis.VENDOR_KEY)
    index = PortfolioIndex()
    for party in ("q1", "q2"):
        ties = frozenset({Tie(party, zhou, TieRole.ACTUAL_CONTROLLER, "周明远")})
        index.set_party(party, own=OWN[party], name=f"公司{party}", ties=ties)
    new = frozenset({Tie("p", zhou, TieRole.ACTUAL_CONTROLLER, "周明远")})
    checked = PartyTies("p", OWN["p"], "公司p", new)
    index.set_party("p", own=checked.own, name=checked.name, ties=new)
    findings = with_groups(connected_findings(checked, frozenset(), index, ()), index, checked, frozenset())
    assert [(f.other, f.group_before, f.group_after) for f in findings] == [("q1", 2, 3), ("q2", 0, 0)]
    texts = [change_text(ChangeLine.of(_stored(finding_change(f))), Language.ZH_CN) for f in findings]
    assert texts[0].endswith("（关联集团扩大：2 → 3 家）") and "关联集团" not in texts[1]

    alone = PortfolioIndex()
    alone.set_party(
        "q3", own=OWN["q3"], name="公司q3", ties=frozenset({Tie("q3", zhou, TieRole.CONTROLLER, "周明远")})
    )
    alone.set_party("p", own=checked.own, name=checked.name, ties=new)
    [formed] = with_groups(connected_findings(checked, frozenset(), alone, ()), alone, checked, frozenset())
    assert (formed.group_before, formed.group_after) == (0, 2)
    text = change_text(ChangeLine.of(_stored(finding_change(formed))), Language.ZH_CN)
    assert text.endswith("（形成关联集团，共 2 家）")


CONTROLLERS = tuple(Node(NodeKind.PERSON, f"qichacha|id:c{i}", LinkBasis.VENDOR_KEY) for i in range(3))
GROUP_PARTIES = ("m1", "m2", "m3", "m4", "m5")


def _control_ties(party: str, nodes: frozenset[Node]) -> frozenset[Tie]:
    return frozenset(Tie(party, node, TieRole.ACTUAL_CONTROLLER, node.identity) for node in nodes)


def _components(ties: dict[str, frozenset[Node]]) -> list[set[str]]:
    """Connected components of parties sharing a controller (an oracle independent of the index)."""
    components: list[set[str]] = []
    for party, nodes in ties.items():
        joined = [c for c in components if any(ties[other] & nodes for other in c)]
        merged = {party}.union(*joined)
        components = [c for c in components if c not in joined] + [merged]
    return components


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.sampled_from(GROUP_PARTIES), st.frozensets(st.sampled_from(CONTROLLERS), max_size=2)),
    st.frozensets(st.sampled_from(CONTROLLERS), max_size=2),
    st.frozensets(st.sampled_from(CONTROLLERS), max_size=3),
)
def test_group_sizes_are_the_largest_group_joined_before_and_the_group_after(portfolio, old, new) -> None:
    """Whatever the portfolio: one note at most per check; before is the largest group the party's
    group after was made of (0 when all were alone: formed), after its size; a note exactly when a
    controller link was gained and the group is larger than every part it was made of."""
    index = PortfolioIndex()
    for party, nodes in portfolio.items():
        index.set_party(party, own=None, name=party, ties=_control_ties(party, nodes))
    old_ties = _control_ties("p", old)
    index.set_party("p", own=None, name="p", ties=old_ties)
    checked = PartyTies("p", None, "p", _control_ties("p", new))
    # As the pipeline reads them: the group before the new ties replace the old (only when a
    # controller was gained), and afterwards the party's group alone (load_group), not the portfolio.
    group_before = index.group_of("p") if may_join_by_control(checked, old_ties) else frozenset()
    index.set_party("p", own=None, name="p", ties=checked.ties)
    after_only = PortfolioIndex.of(index.party(party) for party in index.group_of("p") | {"p"})
    findings = with_groups(
        connected_findings(checked, old_ties, index, ()), after_only, checked, old_ties, group_before
    )

    after = next(c for c in _components({**portfolio, "p": new}) if "p" in c)
    parts = [c for c in _components({**portfolio, "p": old}) if c & after]
    largest = max(len(c) for c in parts)
    expected_before = largest if largest >= 2 else 0
    marked = [f for f in findings if f.group_after]
    gained = any(f.joins_by_control for f in findings)
    if gained and len(after) > largest:
        assert [(f.group_before, f.group_after) for f in marked] == [(expected_before, len(after))]
        assert marked[0] is next(f for f in findings if f.joins_by_control)
    else:
        assert marked == []


class _Stored:
    def __init__(self, change: Change) -> None:
        self.category, self.action = change.category.value, change.action.value
        self.subject, self.before, self.after = change.subject, change.before, change.after
        self.effective_date, self.first_seen = change.effective_date, change.first_seen
        self.party = change.party.value if change.party else None
        self.party_name = change.party_name or None


def _stored(change: Change) -> _Stored:
    return _Stored(change)


def test_a_connected_risk_reads_in_both_languages_naming_parties_person_and_listing() -> None:
    listing = Change(
        Category.DISHONEST_DEBTOR,
        Action.ADDED,
        "（2026）浙02执123号",
        None,
        "（2026）浙02执123号 · 未履行 <b>",
        party=Party.ACTUAL_CONTROLLER,
        party_name="周明远",
        raises_listing=True,
    )
    finding = Finding(
        Category.CONNECTED_RISK,
        "b-y",
        "b-x",
        "星河公司",
        ZHOU,
        "周明远",
        frozenset({TieRole.LEGAL_REPRESENTATIVE}),
        frozenset({TieRole.ACTUAL_CONTROLLER}),
        Severity.HIGH,
        listing=listing,
    )
    line = ChangeLine.of(_stored(finding_change(finding)))
    assert change_severity(line) is Severity.HIGH
    assert change_text(line, Language.ZH_CN) == (
        "关联风险：法定代表人 周明远 同时任 星河公司 的实际控制人，星河公司 失信被执行人 列入"
        "（针对实际控制人 周明远）: （2026）浙02执123号 · 未履行 <b>"
    )
    english = change_text(line, Language.EN, escape=lambda text: text.replace("<", "&lt;"))
    assert english.startswith(
        "Connected risk: legal representative 周明远 is also actual controller of 星河公司; 星河公司: "
    )
    assert "&lt;b>" in english and "<b>" not in english


def test_a_connected_line_names_the_most_significant_role_on_each_side_and_history_keeps_all():
    """ "法定代表人、董事、高级管理人员 赵强 同时任 … 的法定代表人、董事、高级管理人员" told the reader
    nothing the first role did not; the history's cells keep every role."""
    every = frozenset({TieRole.DIRECTOR, TieRole.MANAGER, TieRole.LEGAL_REPRESENTATIVE})
    finding = Finding(
        Category.CONNECTED_RISK,
        "b-y",
        "b-x",
        "星河公司",
        ZHOU,
        "赵强",
        every,
        frozenset({TieRole.DIRECTOR, TieRole.SHAREHOLDER, TieRole.ACTUAL_CONTROLLER}),
        Severity.HIGH,
        listing=Change(Category.ENFORCEMENT, Action.ADDED, "（2026）执1号", None, "（2026）执1号"),
    )
    line = ChangeLine.of(_stored(finding_change(finding)))
    assert change_text(line, Language.ZH_CN).startswith(
        "关联风险：法定代表人 赵强 同时任 星河公司 的实际控制人，"
    )
    assert change_text(line, Language.EN).startswith(
        "Connected risk: legal representative 赵强 is also actual controller of 星河公司; "
    )
    assert connected_value(line, line.before or "", Language.ZH_CN, str) == "法定代表人、董事、高级管理人员"
    assert connected_value(line, line.after or "", Language.ZH_CN, str).startswith(
        "星河公司（董事、股东、实际控制人）"
    )


def test_an_officers_view_hides_the_other_party_unless_it_is_theirs_or_secures_theirs():
    """``AlertView.for_officer`` reads the readers ``alerts.alert_view`` stored per other party."""
    finding = Finding(
        Category.CONNECTED_PARTY,
        "b-y",
        "b-x",
        "星河公司",
        ZHOU,
        "周明远",
        frozenset({TieRole.LEGAL_REPRESENTATIVE}),
        frozenset({TieRole.ACTUAL_CONTROLLER}),
        Severity.WARNING,
    )
    line = ChangeLine.of(_stored(finding_change(finding)))
    view = AlertView(
        alert_id=1,
        borrower_id="b-y",
        borrower_name="远大",
        severity=Severity.WARNING,
        source="cn",
        detected_at=T0,
        changes=(line,),
        occasions_in_window=0,
        window_days=365,
        recommend_early_repayment=False,
        other_readers=(("b-x", ("kari", "zhang_wei")),),
    )
    for reader, shown in (("kari", True), ("zhang_wei", True), ("li_na", False)):
        text = render_alert(view.for_officer(reader), Language.ZH_CN).body
        assert ("星河公司" in text) is shown, reader
        assert ("另一关联方（无权查看）" in text) is not shown, reader
        assert "周明远" in text and "实际控制人" in text, "who links them, and how, is always said"
    assert "星河公司" in render_alert(view, Language.EN).body, "a notifier (the risk desk) reads every name"
    assert hide_other(line.before, line.after, "?") == "? []: actual_controller"


# -- end to end --------------------------------------------------------------------------------------

KARI_TOKEN = "0d4e1c7a2b9f3e6d8c5a1f4b7e0d3c6a9f2e5b8d1c4a7f0e3b6d9c2a5f8e1b4d"
XINGHE = BorrowerRow(
    id="b-xinghe",
    name="宁波星河港务有限公司",
    source="cn",
    registry_id="91330201MA2H8Q0X1K",
    officer="zhang_wei",
)
YUANDA = BorrowerRow(
    id="b-yuanda", name="杭州远大物流有限公司", source="cn", registry_id="91330106MA2KH7Q302", officer="kari"
)
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=7)


def _person(name: str, key_no: str | None, *roles: Role) -> Person:
    return Person(name, person_key(name, registry_id=key_no), frozenset(roles or {Role.LEGAL_REPRESENTATIVE}))


def _controller(name: str, key_no: str | None) -> tuple[Controller, ...]:
    return (
        Controller(
            name, person_key(name, registry_id=key_no), HolderKind.PERSON, Stake(Decimal(60), Decimal(60))
        ),
    )


def _record(
    row: BorrowerRow, rep: Person, controller: tuple[Controller, ...], dishonest=()
) -> RegistryRecord:
    return RegistryRecord(
        source="cn",
        registry_id=row.registry_id,
        name=row.name,
        legal_representative=rep,
        people=(rep,),
        actual_controllers=controller,
        dishonest_debtors=tuple(dishonest),
    )


def _check(world: Deployment, records: dict[str, RegistryRecord], when: datetime) -> dict[str, CheckOutcome]:
    source = RecordSource("cn", records)
    checker = Checker(world.store, world.config, sources={"cn": source}, clock=lambda: when)

    async def run() -> list[CheckOutcome]:
        try:
            with world.store.session() as session:
                selected = borrowers(session)
            return await checker.check(selected)
        finally:
            await checker.aclose()

    return {outcome.borrower_id: outcome for outcome in asyncio.run(run())}


def _events(world: Deployment, party: str) -> list[ChangeEvent]:
    with world.store.session() as session:
        query = select(ChangeEvent).where(ChangeEvent.borrower_id == party).order_by(ChangeEvent.id)
        return list(session.exec(query))


@pytest.fixture
def ding(chat_receiver_factory):
    return chat_receiver_factory(dingtalk_secret=DING_SECRET)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path, sqlite_url, ding):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    channels = officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)]) + officer(
        "Kari", [ding.dingtalk_url(KARI_TOKEN, DING_SECRET)], language="en", officer_id="kari"
    )
    made = Deployment(tmp_path, url, channels)
    made.add(XINGHE, YUANDA)
    yield made
    made.close()


def test_a_new_legal_representative_leading_another_watched_company_raises_connected_party(world, ding):
    zhou = _person("周明远", "p7c2e1")
    rounds = [
        {
            XINGHE.registry_id: _record(XINGHE, zhou, _controller("周明远", "p7c2e1")),
            YUANDA.registry_id: _record(YUANDA, _person("李娜", "p0b9d4"), ()),
        }
    ]
    rounds.append({**rounds[0], YUANDA.registry_id: _record(YUANDA, zhou, ())})
    _check(world, rounds[0], T0)
    outcomes = _check(world, rounds[1], T1)
    assert outcomes["b-yuanda"].severity is Severity.WARNING and outcomes["b-xinghe"].alert_id is None
    [connected] = [e for e in _events(world, "b-yuanda") if e.category == Category.CONNECTED_PARTY]
    assert connected.alert_id == outcomes["b-yuanda"].alert_id and connected.subject == "周明远"
    assert not connected.key_person
    assert _events(world, "b-xinghe") == []
    world.dispatch(T1 + timedelta(seconds=1))
    [english] = ding.texts(KARI_TOKEN)
    # 星河 is 张伟's borrower: Kari reads who links them, not whom (issue 15 follow-up).
    assert (
        "Connected party: legal representative 周明远 is also legal representative of a party you may not see"
        in english
    )
    assert XINGHE.name not in english and "b-xinghe" not in english
    assert english.startswith("[Warning] 杭州远大物流有限公司 (b-yuanda): registry record changed"), "its own"
    assert ding.texts(DING_TOKEN) == []
    # A re-check finding the same ties raises nothing again.
    assert _check(world, rounds[1], T1 + timedelta(days=1))["b-yuanda"].alert_id is None


def test_a_dishonest_listing_of_a_shared_controller_reaches_both_officers(world, ding):
    controller = _controller("周明远", "p7c2e1")
    records = {
        XINGHE.registry_id: _record(XINGHE, _person("周明远", "p7c2e1"), controller),
        YUANDA.registry_id: _record(YUANDA, _person("李娜", "p0b9d4"), controller),
    }
    _check(world, records, T0)
    dishonest = Listing(
        "（2026）浙0206执1234号",
        ListingState.ACTIVE,
        party=Party.ACTUAL_CONTROLLER,
        party_name="周明远",
        case_number="（2026）浙0206执1234号",
        reason="有履行能力而拒不履行",
        listed_on=date(2026, 3, 5),
    )
    listed = {
        **records,
        XINGHE.registry_id: _record(
            XINGHE, records[XINGHE.registry_id].legal_representative, controller, [dishonest]
        ),
    }
    outcomes = _check(world, listed, T1)
    assert outcomes["b-xinghe"].severity is Severity.CRITICAL
    alerts = world.alerts()
    assert alerts["b-yuanda"].severity == Severity.HIGH and alerts["b-yuanda"].kind == "change"
    with world.store.session() as session:
        targets = session.exec(
            select(Delivery.target).where(Delivery.alert_id == alerts["b-yuanda"].id)
        ).all()
    assert list(targets) == ["officer:kari"]
    world.dispatch(T1 + timedelta(seconds=1))
    [chinese] = ding.texts(DING_TOKEN)
    assert "失信被执行人" in chinese and "宁波星河港务有限公司" in chinese
    [english] = ding.texts(KARI_TOKEN)
    assert english.startswith("[High risk] 杭州远大物流有限公司 (b-yuanda): connected risk")
    assert (
        "Connected risk: actual controller 周明远 is also legal representative of a party you may not see"
        in english
    )
    assert XINGHE.name not in english and "b-xinghe" not in english
    assert "Dishonest debtor listed (against the actual controller, 周明远): (2026)浙0206执1234号" in english
    history = history_of(world.config_path, "--borrower", "b-yuanda", "--category", "connected_risk")
    [row] = history
    assert (row["category"], row["action"], row["subject"]) == ("connected_risk", "added", "周明远")
    assert row["alert_id"] == alerts["b-yuanda"].id and row["party"] == "actual_controller"
    assert row["after"].startswith(
        "宁波星河港务有限公司 [b-xinghe]: legal_representative,actual_controller | dishonest_debtor: "
    )
    # The listing is raised once: a re-check reaches nobody again.
    again = _check(world, listed, T1 + timedelta(days=1))
    assert again["b-xinghe"].alert_id is None and len(_events(world, "b-yuanda")) == 1


RISK_TOKEN = "3c8e1f5a7b2d9e4c6a0f8b3d5e7c1a9f2b4d6e8a0c3f5b7d9e1a4c6f8b0d2e5a"
LANQI = BorrowerRow(
    id="g-lanqi",
    name="上海临港澜启科技有限公司",
    source="cn",
    registry_id="91310115MA1K4LQ07P",
    role=PartyRole.GUARANTOR,
    secures=("b-yuanda",),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def desk_world(request, tmp_path, sqlite_url, ding):
    """张伟 (zh) handles 星河, Kari (en) 远大, which 澜启 guarantees; the risk desk (a notifier, no
    officer) hears everything."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    channels = (
        officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)])
        + officer("Kari", [ding.dingtalk_url(KARI_TOKEN, DING_SECRET)], language="en", officer_id="kari")
        + notifier("risk_desk", [ding.dingtalk_url(RISK_TOKEN, DING_SECRET)])
    )
    made = Deployment(tmp_path, url, channels)
    made.add(XINGHE, YUANDA, LANQI)
    yield made
    made.close()


def _about(texts: list[str], party_id: str) -> str:
    """The messages whose title is about ``party_id`` (one per checked party its news came from)."""
    found = [text for text in texts if f"({party_id})" in text.splitlines()[0]]
    found += [text for text in texts if f"（{party_id}）" in text.splitlines()[0]]
    assert found, texts
    return "\n".join(found)


def test_a_pushed_connected_line_names_the_other_party_only_to_an_officer_who_may_see_it(desk_world, ding):
    """The console's scope in IM too: a party of another officer reads as "a party you may not see"
    (the person linking them named), a guarantor securing the officer's own borrower by name, and
    the risk desk reads every name."""
    controller = _controller("周明远", "p7c2e1")
    rep = _person("周明远", "p7c2e1")
    records = {
        XINGHE.registry_id: _record(XINGHE, rep, controller),
        YUANDA.registry_id: _record(YUANDA, _person("李娜", "p0b9d4"), controller),
        LANQI.registry_id: _record(LANQI, _person("孙立", "p3f8a6"), controller),
    }
    _check(desk_world, records, T0)

    def listing(case: str) -> Listing:
        return Listing(
            case, ListingState.ACTIVE, party=Party.ACTUAL_CONTROLLER, party_name="周明远", case_number=case
        )

    records[XINGHE.registry_id] = _record(XINGHE, rep, controller, [listing("（2026）浙0206执1号")])
    records[LANQI.registry_id] = _record(
        LANQI, _person("孙立", "p3f8a6"), controller, [listing("（2026）沪0115执2号")]
    )
    _check(desk_world, records, T1)
    desk_world.dispatch(T1 + timedelta(seconds=1))

    kari = _about(ding.texts(KARI_TOKEN), "b-yuanda")
    assert kari.startswith("[High risk] 杭州远大物流有限公司 (b-yuanda): connected risk")
    assert "actual controller 周明远 is also legal representative of a party you may not see" in kari
    assert XINGHE.name not in kari and "b-xinghe" not in kari, "张伟's borrower"
    assert "is also actual controller of 上海临港澜启科技有限公司" in kari, "it guarantees Kari's borrower"
    zhang = _about(ding.texts(DING_TOKEN), "b-xinghe")
    assert "同时任 另一关联方（无权查看） 的实际控制人" in zhang and LANQI.name not in zhang
    desk = _about(ding.texts(RISK_TOKEN), "b-yuanda")
    assert XINGHE.name in desk and LANQI.name in desk and "无权查看" not in desk


ZHIHE = BorrowerRow(
    id="b-zhihe", name="温州致和贸易有限公司", source="cn", registry_id="91330302MA2AXK4E7B", officer="kari"
)


def test_one_listing_read_from_two_listed_parties_reaches_a_third_party_once(world, ding):
    """星河 and 远大 both read the same case against their shared controller in the same round; 致和
    (sharing him too, its own lists not updated yet) hears of it once, not once per listed party."""
    world.add(ZHIHE)
    controller = _controller("周明远", "p7c2e1")
    rows = (XINGHE, YUANDA, ZHIHE)
    records = {
        row.registry_id: _record(row, _person(f"法人{row.id}", f"k-{row.id}"), controller) for row in rows
    }
    _check(world, records, T0)
    dishonest = Listing(
        "（2026）浙0206执1234号",
        ListingState.ACTIVE,
        party=Party.ACTUAL_CONTROLLER,
        party_name="周明远",
        case_number="（2026）浙0206执1234号",
        listed_on=date(2026, 3, 5),
    )
    listed = dict(records)
    for row in (XINGHE, YUANDA):
        listed[row.registry_id] = _record(
            row, records[row.registry_id].legal_representative, controller, [dishonest]
        )
    _check(world, listed, T1)
    told = [e for e in _events(world, "b-zhihe") if e.category == Category.CONNECTED_RISK]
    assert len(told) == 1, [e.after for e in told]
    assert "(2026)浙0206执1234号" in (told[0].after or "")
    _check(world, listed, T1 + timedelta(days=1))
    assert len([e for e in _events(world, "b-zhihe") if e.category == Category.CONNECTED_RISK]) == 1


def test_findings_for_one_party_and_listing_are_kept_once_and_not_again_once_heard() -> None:
    shared = Node(NodeKind.PERSON, "qichacha|id:pzhou", LinkBasis.VENDOR_KEY)
    listing = Change(Category.DISHONEST_DEBTOR, Action.ADDED, "case-1", None, "case-1 text")
    other = Change(Category.ENFORCEMENT, Action.ADDED, "case-2", None, "case-2 text")

    def finding(party: str, change: Change, via: str) -> Finding:
        empty: frozenset[TieRole] = frozenset()
        return Finding(
            Category.CONNECTED_RISK,
            party,
            via,
            via,
            shared,
            "周明远",
            empty,
            empty,
            Severity.HIGH,
            listing=change,
        )

    found = [
        finding("p", listing, "a"),
        finding("p", listing, "b"),
        finding("q", listing, "a"),
        finding("p", other, "a"),
    ]
    kept = once_per_listing(found, set())
    assert [(f.party, f.other, f.listing.subject if f.listing else "") for f in kept] == [
        ("p", "a", "case-1"),
        ("q", "a", "case-1"),
        ("p", "a", "case-2"),
    ]
    assert once_per_listing(found, {("p", "dishonest_debtor", "case-1 text")}) == [found[2], found[3]]


def test_a_shared_name_without_identity_raises_nothing(world, ding):
    wang_x, wang_y = _person("王建国", None), _person("王建国", None)
    records = {
        XINGHE.registry_id: _record(XINGHE, wang_x, ()),
        YUANDA.registry_id: _record(YUANDA, _person("李娜", "p0b9d4"), ()),
    }
    _check(world, records, T0)
    dishonest = Listing(
        "（2026）浙0206执9号", ListingState.ACTIVE, party=Party.LEGAL_REPRESENTATIVE, party_name="王建国"
    )
    changed = {
        XINGHE.registry_id: _record(XINGHE, wang_x, (), [dishonest]),
        YUANDA.registry_id: _record(YUANDA, wang_y, ()),
    }
    outcomes = _check(world, changed, T1)
    assert outcomes["b-yuanda"].severity is Severity.WARNING  # its own legal-representative change only
    categories = {e.category for party in ("b-xinghe", "b-yuanda") for e in _events(world, party)}
    assert not categories & {Category.CONNECTED_PARTY, Category.CONNECTED_RISK}
    with world.store.session() as session:
        assert len(session.exec(select(Alert)).all()) == 2


def test_a_listing_the_party_holds_itself_is_its_own_news_not_a_connected_risk():
    listing = Listing(
        key="sx-1",
        state=ListingState.ACTIVE,
        party=Party.ACTUAL_CONTROLLER,
        party_name="周明远",
        case_number="(2026)浙0212执恢88号",
    )
    raised = next(
        change
        for change in diff(
            RegistryRecord(source="cn", registry_id="1", dishonest_debtors=()),
            RegistryRecord(source="cn", registry_id="1", dishonest_debtors=(listing,)),
        )
    )
    finding = Finding(
        Category.CONNECTED_RISK,
        "b-y",
        "b-x",
        "星河公司",
        ZHOU,
        "周明远",
        frozenset({TieRole.ACTUAL_CONTROLLER}),
        frozenset({TieRole.ACTUAL_CONTROLLER}),
        Severity.HIGH,
        listing=raised,
    )
    own = RegistryRecord(source="cn", registry_id="2", dishonest_debtors=(listing,))
    assert already_own(finding, own)
    lifted = RegistryRecord(
        source="cn", registry_id="2", dishonest_debtors=(replace(listing, state=ListingState.LIFTED),)
    )
    assert not already_own(finding, lifted), "a lifted entry on its own record is no news of today"
    other_person = replace(listing, party_name="王建国")
    assert not already_own(
        finding, RegistryRecord(source="cn", registry_id="2", dishonest_debtors=(other_person,))
    )
    assert not already_own(finding, None) and not already_own(replace(finding, listing=None), own)


# -- the console: a party the reader may not see is not named (issue 15, point 4) -------------------

SCOPED_CHANNELS = f"""\
[officers.zhang_wei]
name = "张伟"

[officers.kari]
name = "Kari"
language = "en"

[console]
secret_key = "{SECRET}"
"""
GUARANTOR = BorrowerRow(
    id="g-hengtai",
    name="恒泰融资担保有限公司",
    source="cn",
    registry_id="91330100MA2GUAR01X",
    role=PartyRole.GUARANTOR,
    secures=("b-xinghe", "b-yuanda"),
)


@pytest.fixture
def scoped_world(tmp_path, sqlite_url):
    """远大 (Kari's) gets a connected party, then a connected risk, both naming 星河 (张伟's); a
    guarantor secures both. Kari may see 远大 and the guarantor, the reviewer everything."""
    made = Deployment(tmp_path, sqlite_url, SCOPED_CHANNELS)
    made.add(XINGHE, YUANDA, GUARANTOR)
    zhou, controller = _person("周明远", "p7c2e1"), _controller("周明远", "p7c2e1")
    records = {
        XINGHE.registry_id: _record(XINGHE, zhou, controller),
        YUANDA.registry_id: _record(YUANDA, _person("李娜", "p0b9d4"), ()),
        GUARANTOR.registry_id: _record(GUARANTOR, _person("孙立", "p3f8a6"), ()),
    }
    _check(made, records, T0)
    records[YUANDA.registry_id] = _record(YUANDA, zhou, ())
    _check(made, records, T1)
    dishonest = Listing(
        "（2026）浙0206执1234号",
        ListingState.ACTIVE,
        party=Party.ACTUAL_CONTROLLER,
        party_name="周明远",
        case_number="（2026）浙0206执1234号",
        listed_on=date(2026, 3, 5),
    )
    records[XINGHE.registry_id] = _record(XINGHE, zhou, controller, [dishonest])
    _check(made, records, T1 + timedelta(days=1))
    with made.store.transaction() as session:
        for username, officer_id in (("kari", "kari"), ("risk", None)):
            create_user(
                session,
                username=username,
                password=PASSWORD,
                role="officer" if officer_id else "reviewer",
                officer_id=officer_id,
                display_name=username,
                actor="test",
            )
    yield made
    made.close()


def _console_texts(world: Deployment, username: str) -> dict[str, str]:
    client = TestClient(create_app(world.store, world.config))
    assert sign_in(client, username).status_code == 303
    pages = {
        path: client.get(path).text
        for path in (
            "/borrower?id=b-yuanda&lang=en",
            "/borrower?id=g-hengtai",
            "/alerts",
            "/history?category=connected_risk",
            "/history",
            "/borrower?id=b-yuanda&lang=zh-CN",  # the language is kept for the pages after it
            "/borrower?id=g-hengtai&lang=zh-CN",
            "/alerts?lang=zh-CN",
        )
    }
    pages["csv"] = client.get("/export/history.csv").text
    workbook = load_workbook(io.BytesIO(client.get("/export/history.xlsx").content))
    pages["xlsx"] = "\n".join(
        str(cell.value) for sheet in workbook for row in sheet.iter_rows() for cell in row if cell.value
    )
    return pages


def test_the_console_names_a_connected_party_only_to_a_reader_who_may_see_it(scoped_world):
    events = [e.category for e in _events(scoped_world, "b-yuanda")]
    assert Category.CONNECTED_PARTY in events and Category.CONNECTED_RISK in events
    kari = _console_texts(scoped_world, "kari")
    for where, text in kari.items():
        assert XINGHE.name not in text and "b-xinghe" not in text, where
    english = (
        "Connected party: legal representative 周明远 is also legal representative of a party you may not see"
    )
    for where in ("/borrower?id=b-yuanda&lang=en", "/alerts", "/history"):
        assert english in kari[where], where
    risk_line = "Connected risk: legal representative 周明远 is also legal representative"
    assert (
        f"{risk_line} of a party you may not see; a party you may not see: Dishonest debtor"
        in (kari["/history?category=connected_risk"])
    )
    assert (
        "关联关系：法定代表人 周明远 同时任 另一关联方（无权查看） 的法定代表人"
        in (kari["/borrower?id=b-yuanda&lang=zh-CN"])
    )
    assert "另一关联方（无权查看）" in kari["/alerts?lang=zh-CN"]
    assert "另一借款人" not in kari["/alerts?lang=zh-CN"], "the hidden party may be a guarantor too"
    for export in ("csv", "xlsx"):  # the label alone: no empty id brackets in a spreadsheet
        assert "另一关联方（无权查看）: legal_representative,actual_controller" in kari[export], export
        assert "[]" not in kari[export], export
    assert "secures: b-yuanda, and 1 more (other officers&#39;)" in kari["/borrower?id=g-hengtai"]
    guarantor_zh = kari["/borrower?id=g-hengtai&lang=zh-CN"]
    assert "所担保借款人: b-yuanda、另有 1 家（其他客户经理负责）" in guarantor_zh
    assert "角色: 保证人" in guarantor_zh, "audit values read as words"

    risk = _console_texts(scoped_world, "risk")
    assert "同时任 宁波星河港务有限公司 的法定代表人" in risk["/borrower?id=b-yuanda&lang=zh-CN"]
    assert (
        f"{risk_line} of 宁波星河港务有限公司; 宁波星河港务有限公司: Dishonest debtor"
        in (risk["/history?category=connected_risk"])
    )
    assert XINGHE.name in risk["/alerts"]
    assert "宁波星河港务有限公司 [b-xinghe]: legal_representative,actual_controller" in risk["csv"]
    assert "宁波星河港务有限公司 [b-xinghe]" in risk["xlsx"]
    assert "b-xinghe, b-yuanda" in risk["/borrower?id=g-hengtai"]
    assert "b-xinghe、b-yuanda" in risk["/borrower?id=g-hengtai&lang=zh-CN"]
