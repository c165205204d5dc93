"""A borrower with Chinese risk listings, checked by the real pipeline, for the faces' tests.

``RecordSource`` is a test source that answers with a stored record's JSON (``record_as_dict``) and
maps it back with ``record_from_dict``: everything after the fetch (normalising, diff, rules,
onboarding alerts, change events, snapshots) is the project's own code. ``RISKY`` is onboarded with
listings in force (an onboarding alert), then round 1 lists the legal representative as a dishonest
debtor and lifts an enforcement case (a change alert). One pledge's pledgee is hostile registry text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar

from sources.base import Source, SourceOptions
from tests.deployment import Deployment
from watcher.importer import BorrowerRow
from watcher.pipeline import Checker, CheckOutcome
from watcher.record import (
    Controller,
    HolderKind,
    Listing,
    ListingState,
    Money,
    Party,
    RegistryRecord,
    Signal,
    Stake,
    record_as_dict,
    record_from_dict,
)
from watcher.store import borrowers

RISKY = BorrowerRow(
    id="b-risky",
    name="宁波恒远港务物流有限公司",
    source="cn",
    registry_id="91330201MA2H8Q0X1K",
    officer="zhang_wei",
    legal_rep_on_file="周明远",
)
LEGAL_REP = "周明远"
EVIL_PLEDGEE = '鑫源担保**粗体** #标题 <svg/onload=alert("pledgee")'
"""Hostile registry text: markdown emphasis and heading, and an unclosed tag the normaliser keeps."""
ONBOARDED_AT = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
LISTED_AT = datetime(2026, 3, 17, 2, 0, tzinfo=UTC)


def _yuan(amount: str, raw: str) -> Money:
    return Money(Decimal(amount), "CNY", raw)


ENFORCEMENT = Listing(
    key="(2025)浙0212执1234号",
    state=ListingState.ACTIVE,
    case_number="(2025)浙0212执1234号",
    authority="宁波市鄞州区人民法院",
    amount=_yuan("1250000", "125万元"),
    listed_on=date(2025, 11, 3),
)
ABNORMAL_REMOVED = Listing(
    key="abnormal-2023-1",
    state=ListingState.REMOVED,
    reason="通过登记的住所或者经营场所无法联系的",
    authority="宁波市市场监督管理局",
    listed_on=date(2023, 5, 8),
    removed_on=date(2023, 9, 1),
    removal_reason="依法履行公示义务",
)
ABNORMAL_ACTIVE = Listing(
    key="abnormal-2026-1",
    state=ListingState.ACTIVE,
    reason="未依照规定报送年度报告",
    authority="宁波市市场监督管理局",
    listed_on=date(2025, 7, 15),
)
PLEDGE = Listing(
    key="330200-2025-0088",
    state=ListingState.ACTIVE,
    case_number="330200-2025-0088",
    pledgor=LEGAL_REP,
    pledgee=EVIL_PLEDGEE,
    amount=_yuan("5000000", "500万人民币"),
    listed_on=date(2025, 6, 20),
)
DISHONEST = Listing(
    key="(2026)浙0212执恢88号",
    state=ListingState.ACTIVE,
    party=Party.LEGAL_REPRESENTATIVE,
    party_name=LEGAL_REP,
    case_number="(2026)浙0212执恢88号",
    reason="有履行能力而拒不履行生效法律文书确定义务",
    authority="宁波市鄞州区人民法院",
    listed_on=date(2026, 3, 12),
)
CONTROLLERS = (Controller(LEGAL_REP, "zhou", HolderKind.PERSON, Stake(Decimal("62.5"), Decimal("62.5"))),)
OWNERS = (
    Controller(LEGAL_REP, "zhou", HolderKind.PERSON, Stake(Decimal("62.5"), Decimal("62.5"))),
    Controller("陈静", "chen", HolderKind.PERSON, Stake(Decimal("25"), Decimal("25"))),
)


def round_record(round_number: int) -> RegistryRecord:
    """Round 0: listings in force at onboarding. Round 1: the legal representative becomes a
    dishonest debtor and the enforcement case is lifted. Bankruptcy is never fetched (unknown);
    consumption restrictions are fetched and empty."""
    enforcement = ENFORCEMENT
    dishonest: tuple[Listing, ...] = ()
    if round_number >= 1:
        enforcement = Listing(
            **{**_fields(ENFORCEMENT), "state": ListingState.LIFTED, "removed_on": date(2026, 3, 14)}
        )
        dishonest = (DISHONEST,)
    return RegistryRecord(
        source="cn",
        registry_id=RISKY.registry_id,
        name=RISKY.name,
        actual_controllers=CONTROLLERS,
        beneficial_owners=OWNERS,
        abnormal_operations=(ABNORMAL_REMOVED, ABNORMAL_ACTIVE),
        serious_violations=(),
        equity_pledges=(PLEDGE,),
        chattel_mortgages=(),
        enforcements=(enforcement,),
        dishonest_debtors=dishonest,
        consumption_restrictions=(),
        bankruptcies=None,
    )


def _fields(listing: Listing) -> dict:
    return {name: getattr(listing, name) for name in Listing.__slots__}


class RecordSource(Source):
    """Answers with the JSON of ``records[registry_id]``; mapping reads it back into the record."""

    type_name = "record-json"
    endpoints = ("record.json",)
    supported_signals: ClassVar[frozenset[Signal]] = frozenset(Signal)

    def __init__(self, name: str, records: Mapping[str, RegistryRecord]) -> None:
        super().__init__(name, SourceOptions(type="replay"))
        self.records = records

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        record = self.records[registry_id]
        return {"record.json": json.dumps(record_as_dict(record), ensure_ascii=False, sort_keys=True)}

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        return record_from_dict(json.loads(raw["record.json"]))


def check_risky(deployment: Deployment, round_number: int, when: datetime) -> CheckOutcome:
    """Check ``RISKY`` alone with the record of ``round_number``, through the real Checker."""
    source = RecordSource("cn", {RISKY.registry_id: round_record(round_number)})
    checker = Checker(deployment.store, deployment.config, sources={"cn": source}, clock=lambda: when)

    async def run() -> list[CheckOutcome]:
        try:
            with deployment.store.session() as session:
                selected = [b for b in borrowers(session) if b.id == RISKY.id]
            return await checker.check(selected)
        finally:
            await checker.aclose()

    [outcome] = asyncio.run(run())
    return outcome


def onboard_and_list(deployment: Deployment) -> tuple[CheckOutcome, CheckOutcome]:
    """Add ``RISKY``, onboard it (round 0), then check round 1."""
    deployment.add(RISKY)
    return check_risky(deployment, 0, ONBOARDED_AT), check_risky(deployment, 1, LISTED_AT)
