"""The portfolio index at bank scale: build it for 100,000 parties with 5 people each, update one
changed party, and load it from SQLite.

    .venv/bin/python -m bench.connections_index [--parties 100000] [--repeat 3]

Synthetic records with a realistic mix of identity keys: half the people carry a vendor key (a
Qichacha KeyNo), a fifth name and birth month, the rest only a name (from a pool large enough that
equal names are a minority: possible links, not a hairball); about 2 % of the parties share a
person (legal representative or shareholder) with another party, and every tenth party has a
company shareholder by registration number, a fifth of them a watched party. Side by side in one
run, medians of ``--repeat``: ``ties_of`` over every record, the index built from those ties,
one changed party updated (``set_party``) against a full rebuild (the ratio is the point), one
party's connections, the groups; peak memory of the build under tracemalloc; and the stored index
(``party_tie``) read back from a SQLite file, whole and as one party's neighbourhood. Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from watcher.connections import PartyTies, PortfolioIndex, TieScope, party_ties
from watcher.identifiers import cn_uscc_check_char
from watcher.record import (
    CompanyStatus,
    HolderKind,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
    Status,
)

SCOPE = TieScope(jurisdiction="cn", vendor="qichacha")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏宇浩凯晨欣怡子轩梓涵一诺思远嘉"


def _uscc(number: int) -> str:
    body = f"913301{number:09d}MA"[:17]
    return body + cn_uscc_check_char(body)


class _People:
    """Synthetic people: a name (two or three characters), a key of the chosen strength."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0

    def name(self) -> str:
        rng = self.rng
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2, 2, 2))))

    def person(self, role: Role) -> Person:
        self.count += 1
        name, draw = self.name(), self.rng.random()
        if draw < 0.5:
            key = f"id:p{self.count:012x}"
        elif draw < 0.7:
            key = f"nb:{name}|19{self.rng.randint(50, 99)}-{self.rng.randint(1, 12):02d}"
        else:
            key = f"n:{name}"
        return Person(name=name, key=key, roles=frozenset({role}))


def synthetic_records(parties: int, seed: int = 15) -> list[tuple[str, str, RegistryRecord]]:
    """(party id, name, record) for ``parties`` companies with five people each."""
    rng = random.Random(seed)
    people = _People(rng)
    shared = [people.person(Role.LEGAL_REPRESENTATIVE) for _ in range(max(1, parties // 100))]
    made = []
    for number in range(parties):
        legal = rng.choice(shared) if rng.random() < 0.01 else people.person(Role.LEGAL_REPRESENTATIVE)
        director, supervisor = people.person(Role.DIRECTOR), people.person(Role.SUPERVISOR)
        holder = rng.choice(shared) if rng.random() < 0.01 else people.person(Role.DIRECTOR)
        holders = [Shareholder(holder.name, holder.key, HolderKind.PERSON, Stake(Decimal(60), Decimal(60)))]
        if number % 10 == 0:
            held = rng.randrange(parties) if rng.random() < 0.2 else parties + number
            holders.append(
                Shareholder(
                    f"投资公司{held}", f"id:{_uscc(held)}", HolderKind.ENTITY, Stake(Decimal(40), Decimal(40))
                )
            )
        else:
            other = people.person(Role.DIRECTOR)
            holders.append(
                Shareholder(other.name, other.key, HolderKind.PERSON, Stake(Decimal(40), Decimal(40)))
            )
        record = RegistryRecord(
            source="cn",
            registry_id=_uscc(number),
            name=f"公司{number}",
            status=Status(CompanyStatus.ACTIVE, "存续"),
            legal_representative=legal,
            people=(
                replace(legal, roles=frozenset({Role.LEGAL_REPRESENTATIVE, Role.DIRECTOR})),
                director,
                supervisor,
            ),
            shareholders=tuple(holders),
        )
        made.append((f"b{number:06d}", f"公司{number}", record))
    return made


def _median(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _peak_mib(function: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _sqlite_reads(parties: list[PartyTies], repeat: int) -> tuple[float, float, float]:
    """Seconds to load the stored index whole, one party's neighbourhood, and to write it (once)."""
    from sqlalchemy import insert

    from watcher.models import Borrower, PartyNode, PartyTie
    from watcher.party_ties import load_index, load_neighbourhood
    from watcher.store import open_store

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
        started = time.perf_counter()
        with store.transaction() as session:
            connection = session.connection()
            connection.execute(
                insert(Borrower),
                [{"id": p.party, "name": p.name, "source": "cn", "registry_id": p.party} for p in parties],
            )
            connection.execute(
                insert(PartyNode),
                [
                    {"borrower_id": p.party, "identity": p.own.identity if p.own else None, "indexed_at": now}
                    for p in parties
                ],
            )
            connection.execute(
                insert(PartyTie),
                [
                    {
                        "borrower_id": t.party,
                        "kind": t.node.kind.value,
                        "identity": t.node.identity,
                        "basis": t.node.basis.value,
                        "role": t.role.value,
                        "name": t.name,
                        "name_key": t.name_key,
                        "stake": None if t.stake is None else str(t.stake),
                        "since": t.since,
                    }
                    for p in parties
                    for t in p.ties
                ],
            )
        written = time.perf_counter() - started

        def whole() -> None:
            with store.session() as session:
                load_index(session)

        def around() -> None:
            with store.session() as session:
                load_neighbourhood(session, parties[len(parties) // 2].party)

        results = (_median(whole, repeat), _median(around, max(repeat, 11)), written)
        store.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite part")
    options = parser.parse_args()
    n, repeat = options.parties, options.repeat

    records = synthetic_records(n)
    tie_sets: list[PartyTies] = []

    def map_ties() -> None:
        tie_sets[:] = [party_ties(party, name, record, SCOPE) for party, name, record in records]

    def build() -> PortfolioIndex:
        return PortfolioIndex.of(tie_sets)

    map_seconds = _median(map_ties, repeat)
    build_seconds = _median(build, repeat)
    peak = _peak_mib(build)
    index = build()
    ties = sum(len(p.ties) for p in tie_sets)
    rng = random.Random(1)
    changed = [rng.choice(tie_sets) for _ in range(101)]
    changed_records = {party: record for party, _name, record in records}

    def update_one() -> None:
        party = changed.pop() if changed else tie_sets[0]
        fresh = party_ties(party.party, party.name, changed_records[party.party], SCOPE)
        index.set_party(fresh.party, own=fresh.own, name=fresh.name, ties=fresh.ties)

    update_seconds = _median(update_one, 101)
    sample = [p.party for p in tie_sets[:: max(1, n // 1000)]]
    connections_seconds = _median(lambda: index.connections(rng.choice(sample)), 1001)
    groups_seconds = _median(index.groups, 1)
    groups = index.groups()
    possible = sum(1 for party in sample for c in index.connections(party) if c.possible)

    print(f"portfolio index, {n:,} parties, {ties:,} ties (median of {repeat}; one run, side by side)")
    print(f"  ties_of over every record             {map_seconds:9.3f} s")
    print(
        f"  full build from the ties              {build_seconds:9.3f} s   peak {peak:,.0f} MiB (tracemalloc)"
    )
    print(f"  update of one changed party           {update_seconds * 1e6:9.1f} µs  (median of 101)")
    print(f"  full rebuild / one update             {build_seconds / update_seconds:9,.0f} ×")
    print(f"  connections of one party              {connections_seconds * 1e6:9.1f} µs  (median of 1001)")
    print(f"  groups of the whole portfolio         {groups_seconds:9.3f} s   ({len(groups):,} groups)")
    print(f"  possible links of {len(sample):,} sampled parties: {possible:,}")
    if not options.no_sqlite:
        whole, around, written = _sqlite_reads(tie_sets, repeat)
        print(f"  SQLite: bulk write of the stored index {written:8.3f} s")
        print(f"  SQLite: load_index (every party)      {whole:9.3f} s")
        print(f"  SQLite: load_neighbourhood (one)      {around * 1e3:9.1f} ms")
        print(f"  load_index / full build from ties     {whole / build_seconds:9.1f} ×")


if __name__ == "__main__":
    main()
