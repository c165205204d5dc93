"""A deployment in a temporary folder for notification tests: config, database, replay feeds, checks.

Like ``tests/test_pipeline.py``'s World, but the notifier URLs come from the test (pointing at the
loopback receivers of ``tests/receivers.py``) and it can dispatch the outbox at any simulated time.
Three borrowers give one alert of each lower severity when round 1 follows the round-0 baseline:

- ``b-lanchao`` (Qichacha, officer ``zhang_wei``, tag ``zhejiang``): legal representative, directors,
  shareholder and finance head change on two dated occasions → **high**;
- ``b-fjordlys`` (Brønnøysund, no officer): a new daglig leder and board member → **warning**;
- ``b-hardanger`` (Brønnøysund, no officer): the business address moves → **info**.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from watcher.config import Config, load_config
from watcher.dispatch import Dispatcher, DispatchReport
from watcher.importer import BorrowerRow, upsert_borrowers
from watcher.models import Alert, AuditLog, Delivery
from watcher.pipeline import Checker, CheckOutcome
from watcher.store import StatusSummary, Store, borrowers, open_store, status_summary

TESTS = Path(__file__).parent
REGISTRIES = TESTS / "fixtures" / "registries"
DEMO_DATA = TESTS.parent / "watcher" / "demo_data"

BASELINE_AT = datetime(2025, 12, 30, 2, 0, tzinfo=UTC)
CHANGED_AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai

LANCHAO = BorrowerRow(
    id="b-lanchao",
    name="杭州澜潮智能装备有限公司",
    source="cn",
    registry_id="91330106MA2KH7Q302",
    officer="zhang_wei",
    tags=("zhejiang",),
    legal_rep_on_file="王建国",
)
FJORDLYS = BorrowerRow(
    id="b-fjordlys",
    name="FJORDLYS SJØMAT AS",
    source="no",
    registry_id="927140004",
    legal_rep_on_file="Magnus Solheim",
)
HARDANGER = BorrowerRow(
    id="b-hardanger",
    name="HARDANGER BETONG AS",
    source="no",
    registry_id="974760673",
    legal_rep_on_file="Erik Lunde",
)
ALL_BORROWERS = (LANCHAO, FJORDLYS, HARDANGER)
SEVERITY_IN_ROUND_1 = {"b-lanchao": "high", "b-fjordlys": "warning", "b-hardanger": "info"}

# (source folder, registry id) → per round: {file name in the feed: file to copy}
_FEEDS: dict[str, tuple[str, dict[int, dict[str, Path]]]] = {
    "b-lanchao": (
        "cn",
        {
            0: {"getinfo.json": REGISTRIES / "cn_qichacha" / "eci_info_verify_getinfo_t0.json"},
            1: {"getinfo.json": REGISTRIES / "cn_qichacha" / "eci_info_verify_getinfo_t1.json"},
        },
    ),
    "b-fjordlys": (
        "no",
        {
            0: {
                "enhet.json": REGISTRIES / "no_brreg" / "enhet.json",
                "roller.json": REGISTRIES / "no_brreg" / "roller_t0.json",
            },
            1: {
                "enhet.json": REGISTRIES / "no_brreg" / "enhet.json",
                "roller.json": REGISTRIES / "no_brreg" / "roller_t1.json",
            },
        },
    ),
    "b-hardanger": (
        "no",
        {
            0: {name: DEMO_DATA / "round1" / "974760673" / name for name in ("enhet.json", "roller.json")},
            1: {name: DEMO_DATA / "round2" / "974760673" / name for name in ("enhet.json", "roller.json")},
        },
    ),
}

CONFIG_HEAD = """\
[watcher]
language = "{language}"
timezone = "Asia/Shanghai"

[database]
url = "{url}"

[schedule]
interval = "24h"
jitter = "0s"

[sources.cn]
type = "replay"
format = "qichacha"
folder = "feed/cn"

[sources.no]
type = "replay"
format = "brreg"
folder = "feed/no"

"""


def toml_strings(values: Iterable[str]) -> str:
    """A TOML array of basic strings (JSON's string escapes are valid TOML)."""
    return json.dumps(list(values), ensure_ascii=False)


class Deployment:
    """One bank's installation: ``channels`` is the TOML of its [notifiers.*] and [officers.*] tables."""

    def __init__(self, folder: Path, database_url: str, channels: str, *, language: str = "zh-CN") -> None:
        self.folder = folder
        self.config_path = folder / "watcher.toml"
        self.config_path.write_text(
            CONFIG_HEAD.format(language=language, url=database_url) + channels, encoding="utf-8"
        )
        self.config: Config = load_config(self.config_path)
        self.store: Store = open_store(self.config.database.url)

    def close(self) -> None:
        self.store.dispose()

    # -- borrowers and their registries -------------------------------------------------------------

    def add(self, *rows: BorrowerRow) -> None:
        with self.store.transaction() as session:
            upsert_borrowers(session, rows, actor="test")

    def stage(self, round_number: int, *borrower_ids: str) -> None:
        """Put a round's saved registry responses where the replay sources read them."""
        for borrower_id in borrower_ids or tuple(_FEEDS):
            folder_name, rounds = _FEEDS[borrower_id]
            row = next(row for row in ALL_BORROWERS if row.id == borrower_id)
            target = self.folder / "feed" / folder_name / row.registry_id
            target.mkdir(parents=True, exist_ok=True)
            for name, source in rounds[round_number].items():
                shutil.copy(source, target / name)

    def baseline_then_change(self, *rows: BorrowerRow, changed_at: datetime = CHANGED_AT) -> dict:
        """Add the borrowers, check round 0 (silent baseline), then round 1: one alert per borrower."""
        rows = rows or ALL_BORROWERS
        self.add(*rows)
        self.stage(0, *(row.id for row in rows))
        self.check(BASELINE_AT)
        self.stage(1, *(row.id for row in rows))
        outcomes = self.check(changed_at)
        assert {o.borrower_id: o.severity for o in outcomes.values()} == {
            row.id: SEVERITY_IN_ROUND_1[row.id] for row in rows
        }
        return outcomes

    def check(self, when: datetime) -> dict[str, CheckOutcome]:
        checker = Checker(self.store, self.config, clock=lambda: when)

        async def run() -> list[CheckOutcome]:
            try:
                with self.store.session() as session:
                    selected = borrowers(session)
                return await checker.check(selected)
            finally:
                await checker.aclose()

        return {outcome.borrower_id: outcome for outcome in asyncio.run(run())}

    # -- the outbox ---------------------------------------------------------------------------------

    def dispatch(self, when: datetime, *, instance: str = "test-dispatcher", **options) -> DispatchReport:
        """One ``dispatch_due`` pass with the clock standing at ``when``."""
        dispatcher = Dispatcher(self.store, self.config, instance=instance, clock=lambda: when, **options)

        async def run() -> DispatchReport:
            return await dispatcher.dispatch_due()

        try:
            return asyncio.run(run())
        finally:
            dispatcher.close()

    def deliveries(self, *where) -> list[Delivery]:
        with self.store.session() as session:
            return list(session.exec(select(Delivery).where(*where).order_by(Delivery.id)))

    def alerts(self) -> dict[str, Alert]:
        """Alerts by borrower id (each borrower has at most one in these tests)."""
        with self.store.session() as session:
            return {alert.borrower_id: alert for alert in session.exec(select(Alert).order_by(Alert.id))}

    def audit_rows(self, action: str | None = None) -> list[AuditLog]:
        with self.store.session() as session:
            query = select(AuditLog).order_by(AuditLog.id)
            if action is not None:
                query = query.where(AuditLog.action == action)
            return list(session.exec(query))

    def summary(self, now: datetime = CHANGED_AT) -> StatusSummary:
        with self.store.session() as session:
            return status_summary(session, now)
