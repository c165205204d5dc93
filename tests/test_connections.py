"""The portfolio index of people and companies (watcher/connections.py): identities, links, groups."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

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
    distinct_identities,
    ties_of,
)
from watcher.normalize import person_key
from watcher.record import (
    Controller,
    HolderKind,
    Listing,
    ListingState,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
)

USCC_A = "91330106MA2KH7Q302"
USCC_B = "91310115MA1K4LQN8X"


def _record(registry_id: str, **sections) -> RegistryRecord:
    return RegistryRecord(source="cn", registry_id=registry_id, **sections)


def _person(name: str, *roles: Role, key_id: str | None = None, birth: str | None = None) -> Person:
    return Person(name=name, key=person_key(name, registry_id=key_id, birth=birth), roles=frozenset(roles))


def _index(*parties: tuple[str, RegistryRecord], vendor: str = "qichacha") -> PortfolioIndex:
    return PortfolioIndex.build(
        (
            party,
            company_node("cn", record.registry_id),
            party,
            ties_of(party, record, jurisdiction="cn", vendor=vendor),
        )
        for party, record in parties
    )


def test_a_person_the_vendor_keys_alike_at_two_parties_connects_them_in_both_roles() -> None:
    zhao = dict(key_id="p0a1b2c3")
    index = _index(
        ("a", _record(USCC_A, legal_representative=_person("赵敏", Role.LEGAL_REPRESENTATIVE, **zhao))),
        ("b", _record(USCC_B, people=(_person("赵敏", Role.FINANCE_HEAD, Role.DIRECTOR, **zhao),))),
    )
    (link,) = index.connections("a")
    assert (link.other, link.possible, link.node.basis) == ("b", False, LinkBasis.VENDOR_KEY)
    assert link.roles_here == {TieRole.LEGAL_REPRESENTATIVE}
    assert link.roles_there == {TieRole.FINANCE_HEAD, TieRole.DIRECTOR}
    assert index.groups() == (frozenset({"a", "b"}),)


def test_the_same_vendor_key_from_two_vendors_is_not_the_same_person() -> None:
    a = ties_of(
        "a",
        _record(USCC_A, legal_representative=_person("赵敏", key_id="x1")),
        jurisdiction="cn",
        vendor="qcc",
    )
    b = ties_of(
        "b",
        _record(USCC_B, legal_representative=_person("赵敏", key_id="x1")),
        jurisdiction="cn",
        vendor="tyc",
    )
    index = PortfolioIndex.build([("a", None, "A", a), ("b", None, "B", b)])
    (link,) = index.connections("a")
    assert link.possible, "equal names from two vendors are only a possible link"
    assert index.groups() == ()


def test_equal_names_without_a_matching_identity_are_possible_links_and_never_form_a_group() -> None:
    index = _index(
        ("a", _record(USCC_A, legal_representative=_person("王伟", birth="1970-01-02"))),
        ("b", _record(USCC_B, legal_representative=_person("王伟", birth="1981-05-06"))),
        ("c", _record("91440300MA5F0XXX1Y", legal_representative=_person("王伟"))),
    )
    links = index.connections("a")
    assert {link.other for link in links} == {"c"}, "two birth dates are two people: no link to b"
    assert all(link.possible for link in links)
    assert {link.other for link in index.connections("c")} == {"a", "b"}
    assert index.groups() == ()


def test_two_keynos_of_one_vendor_are_two_people_not_a_possible_link() -> None:
    """周明远 with KeyNo p1 at a and 周明远 with KeyNo p2 at b: the vendor says they are different."""
    index = _index(
        ("a", _record(USCC_A, legal_representative=_person("周明远", key_id="p1"))),
        ("b", _record(USCC_B, legal_representative=_person("周明远", key_id="p2"))),
    )
    assert index.connections("a") == () and index.connections("b") == ()


def test_a_birth_month_and_a_date_within_it_stay_a_possible_link() -> None:
    index = _index(
        ("a", _record(USCC_A, legal_representative=_person("王伟", birth="1970-01"))),
        ("b", _record(USCC_B, legal_representative=_person("王伟", birth="1970-01-02"))),
        ("c", _record("91440300MA5F0XXX1Y", legal_representative=_person("王伟", birth="1970-02"))),
    )
    assert [(link.other, link.possible) for link in index.connections("b")] == [("a", True)]
    assert index.connections("c") == ()


def test_name_and_birth_date_identify_a_person_across_sources() -> None:
    oslo = _record("927140004", people=(_person("Hanne Strand", Role.DIRECTOR, birth="1975-04-12"),))
    other = _record("974760673", legal_representative=_person("Hanne Strand", birth="1975-04-12"))
    index = PortfolioIndex.build(
        [
            ("a", None, "A", ties_of("a", oslo, jurisdiction="no", vendor="brreg")),
            ("b", None, "B", ties_of("b", other, jurisdiction="no", vendor="json")),
        ]
    )
    (link,) = index.connections("b")
    assert (link.other, link.possible, link.node.basis) == ("a", False, LinkBasis.BIRTH_DATE)


def test_a_watched_company_holding_another_connects_them_by_registration_number() -> None:
    holder = Shareholder(
        name="上海临港澜启科技有限公司", key=person_key("x", registry_id=USCC_B), kind=HolderKind.ENTITY
    )
    index = _index(
        ("parent", _record(USCC_B, name="上海临港澜启科技有限公司")),
        ("child", _record(USCC_A, shareholders=(holder,))),
    )
    (down,) = index.connections("parent")
    (up,) = index.connections("child")
    assert (down.other, down.roles_there, down.possible) == ("child", {TieRole.SHAREHOLDER}, False)
    assert (up.other, up.roles_here, up.node) == ("parent", {TieRole.SHAREHOLDER}, company_node("cn", USCC_B))
    assert index.groups() == (frozenset({"parent", "child"}),)


def test_ties_cover_every_key_role_section_with_stakes_and_pledgees() -> None:
    record = _record(
        USCC_A,
        legal_representative=_person("黄艳", key_id="p1"),
        finance_head=_person("周明", key_id="p2"),
        people=(_person("李娜", Role.CHAIR, Role.MANAGER, key_id="p3"), _person("钱七", Role.SECRETARY)),
        shareholders=(
            Shareholder(
                "王建国",
                person_key("王建国", registry_id="p4"),
                HolderKind.PERSON,
                Stake(Decimal(40), Decimal(40)),
            ),
        ),
        actual_controllers=(Controller("王建国", person_key("王建国", registry_id="p4"), HolderKind.PERSON),),
        equity_pledges=(Listing(key="dj1", state=ListingState.ACTIVE, pledgee="杭州银行股份有限公司"),),
    )
    ties = ties_of("a", record, jurisdiction="cn", vendor="qichacha")
    by_role = {(tie.role, tie.name) for tie in ties}
    assert by_role == {
        (TieRole.LEGAL_REPRESENTATIVE, "黄艳"),
        (TieRole.FINANCE_HEAD, "周明"),
        (TieRole.DIRECTOR, "李娜"),
        (TieRole.MANAGER, "李娜"),
        (TieRole.SHAREHOLDER, "王建国"),
        (TieRole.ACTUAL_CONTROLLER, "王建国"),
        (TieRole.PLEDGEE, "杭州银行股份有限公司"),
    }
    holder = next(tie for tie in ties if tie.role is TieRole.SHAREHOLDER)
    assert holder.stake == Decimal(40)
    pledgee = next(tie for tie in ties if tie.role is TieRole.PLEDGEE)
    assert (pledgee.node.kind, pledgee.node.basis) == (NodeKind.COMPANY, LinkBasis.NAME_ONLY)


# -- properties ---------------------------------------------------------------------------------

NAMES = st.sampled_from(["王伟", "李娜", "赵敏", "Hanne Strand", "周明"])
PERSONS = st.builds(
    lambda name, key, roles: Person(
        name=name,
        key=person_key(
            name, registry_id=key[1] if key[0] == "id" else None, birth=key[1] if key[0] == "nb" else None
        ),
        roles=frozenset(roles),
    ),
    NAMES,
    st.one_of(
        st.just(("n", None)),
        st.tuples(st.just("id"), st.sampled_from(["k1", "k2"])),
        st.tuples(st.just("nb"), st.sampled_from(["1970-01-01", "1980-02-02"])),
    ),
    st.sets(
        st.sampled_from([Role.LEGAL_REPRESENTATIVE, Role.DIRECTOR, Role.MANAGER, Role.FINANCE_HEAD]),
        max_size=2,
    ),
)
HOLDERS = st.builds(
    lambda target, name, stake: Shareholder(
        name, person_key(name, registry_id=target), HolderKind.ENTITY, stake
    ),
    st.sampled_from([USCC_A, USCC_B, "kx"]),
    NAMES,
    # The same holder twice, once with a stake and once without, must still order (None vs a value).
    st.none() | st.sampled_from([Stake(Decimal(10), Decimal(10)), Stake(Decimal(25), Decimal(50))]),
)
RECORDS = st.builds(
    lambda rid, lr, people, holders: _record(
        rid, legal_representative=lr, people=tuple(people), shareholders=holders
    ),
    st.sampled_from([USCC_A, USCC_B, "91440300MA5F0XXX1Y"]),
    st.none() | PERSONS,
    st.lists(PERSONS, max_size=3),
    st.lists(HOLDERS, max_size=2).map(tuple),
)
PARTIES = st.sampled_from(["a", "b", "c", "d"])
OPERATIONS = st.lists(st.tuples(PARTIES, st.none() | RECORDS), max_size=25)


def _entry(party: str, record: RegistryRecord) -> tuple[str, object, str, frozenset[Tie]]:
    ties = ties_of(party, record, jurisdiction="cn", vendor="qichacha")
    return party, company_node("cn", record.registry_id), party.upper(), ties


@settings(max_examples=200, deadline=None)
@given(OPERATIONS)
def test_updating_party_by_party_in_any_order_equals_building_afresh(operations) -> None:
    index = PortfolioIndex()
    final: dict[str, RegistryRecord] = {}
    for party, record in operations:
        if record is None:
            index.remove_party(party)
            final.pop(party, None)
        else:
            _, own, name, ties = _entry(party, record)
            index.set_party(party, own=own, name=name, ties=ties)
            final[party] = record
    fresh = PortfolioIndex.build(_entry(party, record) for party, record in reversed(list(final.items())))
    assert index.canonical() == fresh.canonical()
    assert index.groups() == fresh.groups()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(PARTIES, RECORDS, max_size=4))
def test_links_are_symmetric_and_groups_use_strong_links_only(records) -> None:
    index = PortfolioIndex.build(_entry(party, record) for party, record in records.items())
    strong: set[tuple[str, str]] = set()
    for party in index.parties:
        for link in index.connections(party):
            assert link.other != party
            back = {(c.other, c.possible) for c in index.connections(link.other)}
            assert (party, link.possible) in back or (party, False) in back
            if not link.possible:
                strong.add((party, link.other))
    grouped = {party for group in index.groups() for party in group}
    assert grouped == {party for pair in strong for party in pair}
    for group in index.groups():
        for party in group:
            assert {o for p, o in strong if p == party} <= group
        reached, frontier = {min(group)}, [min(group)]  # a group is one component of the strong links
        while frontier:
            here = frontier.pop()
            for other in {o for p, o in strong if p == here} - reached:
                reached.add(other)
                frontier.append(other)
        assert reached == group


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(PARTIES, RECORDS, max_size=4))
def test_no_possible_link_joins_two_different_identities_of_one_scope(records) -> None:
    """A possible link stands on a pair of equal-named ties whose identities leave it open: one known
    by name only, or identities of different scopes; never two KeyNos or two birth dates that differ."""
    index = PortfolioIndex.build(_entry(party, record) for party, record in records.items())
    for party in index.parties:
        for link in index.connections(party):
            if not link.possible:
                continue
            here = [t for t in index.ties(party) if t.node == link.node]
            names = {(link.node.kind, tie.name_key) for tie in here}
            there = [t for t in index.ties(link.other) if (t.node.kind, t.name_key) in names]
            assert any(not distinct_identities(link.node, t.node) for t in there), (party, link)


def test_distinct_identities_needs_one_scope_and_different_values() -> None:
    qcc = Node(NodeKind.PERSON, "qichacha|id:p1", LinkBasis.VENDOR_KEY)
    assert distinct_identities(qcc, Node(NodeKind.PERSON, "qichacha|id:p2", LinkBasis.VENDOR_KEY))
    assert not distinct_identities(qcc, Node(NodeKind.PERSON, "tianyancha|id:p2", LinkBasis.VENDOR_KEY))
    assert not distinct_identities(qcc, qcc)
    assert not distinct_identities(qcc, Node(NodeKind.PERSON, "person|n:周明远", LinkBasis.NAME_ONLY))
    born = Node(NodeKind.PERSON, "nb:王伟|1970-01-02", LinkBasis.BIRTH_DATE)
    assert distinct_identities(born, Node(NodeKind.PERSON, "nb:王伟|1981-05-06", LinkBasis.BIRTH_DATE))
    assert not distinct_identities(born, Node(NodeKind.PERSON, "nb:王伟|1970-01", LinkBasis.BIRTH_DATE))
    assert not distinct_identities(born, qcc)
    assert distinct_identities(company_node("cn", USCC_A), company_node("cn", USCC_B))
    assert not distinct_identities(company_node("cn", USCC_A), company_node("no", USCC_B))


# -- guarantees: the bank's own records link a guarantor and the borrower it secures ------------------

GUARANTEE_ROLES = st.sampled_from([TieRole.GUARANTOR, TieRole.PLEDGOR])
SECURES = st.none() | st.tuples(GUARANTEE_ROLES, st.sets(PARTIES, max_size=3))
GUARANTEED_OPERATIONS = st.lists(st.tuples(PARTIES, st.none() | RECORDS, SECURES), max_size=25)


def _guarantees(party: str, secures: tuple[TieRole, set[str]] | None) -> frozenset[Guarantee]:
    if secures is None:
        return frozenset()
    role, borrowers = secures
    return frozenset(Guarantee(party, borrower, role) for borrower in borrowers)


def _held(party: str, record: RegistryRecord, guarantees: frozenset[Guarantee]) -> PartyTies:
    _, own, name, ties = _entry(party, record)
    return PartyTies(party, own, name, ties, guarantees)


@settings(max_examples=200, deadline=None)
@given(GUARANTEED_OPERATIONS)
def test_guarantees_and_ties_set_in_any_order_equal_building_afresh(operations) -> None:
    """A new snapshot (``secures`` None) keeps the party's guarantees; new guarantees replace them."""
    index = PortfolioIndex()
    records: dict[str, RegistryRecord] = {}
    guarantees: dict[str, frozenset[Guarantee]] = {}
    for party, record, secures in operations:
        if record is None:
            index.remove_party(party)
            records.pop(party, None)
            guarantees.pop(party, None)
            continue
        _, own, name, ties = _entry(party, record)
        given_now = None if secures is None else _guarantees(party, secures)
        index.set_party(party, own=own, name=name, ties=ties, secures=given_now)
        records[party] = record
        guarantees[party] = guarantees.get(party, frozenset()) if given_now is None else given_now
    fresh = PortfolioIndex.of(
        _held(party, record, guarantees[party]) for party, record in reversed(list(records.items()))
    )
    assert index.canonical() == fresh.canonical()
    assert index.groups() == fresh.groups()
    for party in records:
        assert index.connections(party) == fresh.connections(party)
        assert index.party(party) == fresh.party(party)
    assert fresh.copy().canonical() == fresh.canonical()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(PARTIES, st.tuples(RECORDS, SECURES), max_size=4))
def test_guarantee_links_are_direct_symmetric_and_group_their_parties(parties) -> None:
    index = PortfolioIndex.of(
        _held(p, record, _guarantees(p, secures)) for p, (record, secures) in parties.items()
    )
    for party in index.parties:
        for link in index.connections(party):
            if not link.guarantee:
                continue
            back = [c for c in index.connections(link.other) if c.other == party and c.node == link.node]
            assert [(c.guarantee, c.roles_here, c.roles_there) for c in back] == [
                (True, link.roles_there, link.roles_here)
            ]
        for guarantee in index.guarantees(party):
            assert {guarantee.party, guarantee.borrower} <= index.group_of(party), "both in one group"
            assert any(
                c.other == guarantee.borrower
                and c.direct
                and c.basis is LinkBasis.LOAN_RECORD
                and guarantee.role in c.roles_there
                for c in index.connections(guarantee.party)
            )


def test_a_guarantee_circle_is_one_group_and_each_side_reads_its_role() -> None:
    """A guarantees B, B guarantees C, C pledges for A: a guarantee circle (担保圈)."""
    record = _record(USCC_A)
    index = PortfolioIndex.of(
        [
            PartyTies(
                "a",
                company_node("cn", USCC_A),
                "A",
                frozenset(),
                frozenset({Guarantee("a", "b", TieRole.GUARANTOR)}),
            ),
            PartyTies(
                "b",
                company_node("cn", USCC_B),
                "B",
                frozenset(),
                frozenset({Guarantee("b", "c", TieRole.GUARANTOR)}),
            ),
            PartyTies("c", None, "C", frozenset(), frozenset({Guarantee("c", "a", TieRole.PLEDGOR)})),
            PartyTies("d", None, "D", ties_of("d", record, jurisdiction="cn", vendor="qichacha")),
        ]
    )
    assert index.groups() == (frozenset({"a", "b", "c"}),)
    from_b = {c.other: c for c in index.connections("b")}
    assert from_b["a"].roles_here == {TieRole.GUARANTOR} and from_b["a"].roles_there == frozenset()
    assert from_b["c"].roles_there == {TieRole.GUARANTOR} and from_b["c"].node == company_node("cn", USCC_B)
    [to_c] = [c for c in index.connections("a") if c.other == "c"]
    assert to_c.roles_here == {TieRole.PLEDGOR} and to_c.node.identity == "watched|c", "C has no number"
    assert to_c.name == "C" and to_c.direct


def test_a_guarantee_to_a_party_the_index_does_not_hold_links_nothing() -> None:
    index = PortfolioIndex.of(
        [PartyTies("a", None, "A", frozenset(), frozenset({Guarantee("a", "gone", TieRole.GUARANTOR)}))]
    )
    assert index.connections("a") == () and index.groups() == () and index.guarantees("a") == frozenset()


def test_a_guarantor_that_also_holds_shares_reads_as_one_link_with_both_roles() -> None:
    borrower = _record(
        USCC_B,
        shareholders=(Shareholder(name="阿尔法", key=f"id:{USCC_A}", kind=HolderKind.ENTITY),),
    )
    index = PortfolioIndex.of(
        [
            PartyTies(
                "g",
                company_node("cn", USCC_A),
                "阿尔法",
                frozenset(),
                frozenset({Guarantee("g", "b", TieRole.GUARANTOR)}),
            ),
            PartyTies(
                "b",
                company_node("cn", USCC_B),
                "B",
                ties_of("b", borrower, jurisdiction="cn", vendor="qichacha"),
            ),
        ]
    )
    [link] = index.connections("b")
    assert link.roles_here == {TieRole.SHAREHOLDER, TieRole.GUARANTOR} and link.guarantee and link.direct
    [back] = index.connections("g")
    assert back.roles_there == {TieRole.SHAREHOLDER, TieRole.GUARANTOR}
