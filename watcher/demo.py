"""``watcher demo``: the real pipeline on bundled sample data, offline, on a throw-away database.

Three rounds of saved registry responses (two Chinese borrowers in Qichacha's shape, two
Norwegian ones in Brønnøysund's) are replayed at simulated dates, so the effective dates in the
data fall between checks as they would in production.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sources.replay import ReplayOptions
from watcher.alerts import alert_view, delivery_targets_of
from watcher.config import Config, load_config
from watcher.importer import parse_borrowers_csv, upsert_borrowers
from watcher.models import Borrower
from watcher.output import HistoryFormat, echo, print_history
from watcher.pipeline import Checker, CheckOutcome, build_sources
from watcher.render import render_alert
from watcher.store import Store, borrowers, history, open_store
from watcher.vocabulary import Language

DEMO_DATA = Path(__file__).with_name("demo_data")
ROUND_TIMES = (
    datetime(2025, 12, 30, 2, 0, tzinfo=UTC),
    datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
    datetime(2026, 6, 20, 2, 0, tzinfo=UTC),
)
DEMO_CONFIG = """\
[watcher]
language = "{language}"

[database]
url = "sqlite:///demo.db"

[schedule]
concurrency = 4

[sources.cn]
type = "replay"
format = "qichacha"
folder = "feed/cn"

[sources.no]
type = "replay"
format = "brreg"
folder = "feed/no"

[notifiers.risk_desk]
urls = ["mailto://alerts@bank.example?to=risk@bank.example"]
min_severity = "high"

[officers.zhang_wei]
name = "张伟"
urls = ["dingtalk://demo-token/"]

[officers.li_na]
name = "李娜"
urls = ["wecombot://demo-key"]

[officers.kari]
name = "Kari Nordmann"
urls = ["mailto://alerts@bank.example?to=kari@bank.example"]
language = "en"
"""


def run_demo(*, language: Language, keep: Path | None) -> None:
    """The three rounds in ``keep`` (a throw-away folder without it), printed via :mod:`watcher.output`."""
    workdir = Path(tempfile.mkdtemp(prefix="watcher-demo-")) if keep is None else keep
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _run(workdir, language)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(workdir: Path, language: Language) -> None:
    config_path = workdir / "watcher.toml"
    config_path.write_text(DEMO_CONFIG.format(language=language), encoding="utf-8")
    config = load_config(config_path)
    store = open_store(config.database.url)
    sources = build_sources(config)
    parsed = parse_borrowers_csv(DEMO_DATA / "borrowers.csv", sources=sources, officers=list(config.officers))
    with store.transaction() as session:
        upsert_borrowers(session, parsed.rows, actor="demo")
    source_of = {row.registry_id: row.source for row in parsed.rows}
    for number, when in enumerate(ROUND_TIMES, start=1):
        _stage_round(config, source_of, number)
        echo()
        echo(f"=== round {number}: registries as of {when:%Y-%m-%d} ===")
        checker = Checker(store, config, sources=build_sources(config), clock=_fixed(when))
        with store.session() as session:
            selected = borrowers(session)
        outcomes = asyncio.run(_check(checker, selected))
        for outcome in outcomes:
            echo(f"  {outcome.borrower_id}: {_state(outcome)}")
        _show_alerts(store, config, outcomes, language)
    echo()
    echo("=== change history ===")
    with store.session() as session:
        rows = history(session)
    print_history(rows, HistoryFormat.table, config.watcher.zone, language)
    store.dispose()


def _fixed(when: datetime) -> Callable[[], datetime]:
    """The clock of one round: every check in it happens at the round's simulated date."""
    return lambda: when


def _state(outcome: CheckOutcome) -> str:
    if not outcome.ok:
        return f"FAILED {outcome.error_kind}: {outcome.error}"
    if outcome.baseline:
        return "baseline (silent)"
    return f"{outcome.changes} change(s)" if outcome.changes else "unchanged"


def _show_alerts(store: Store, config: Config, outcomes: Sequence[CheckOutcome], language: Language) -> None:
    """Each alert of the round in the demo's ``--language`` (each target receives it in its own), with
    the targets its deliveries go to."""
    for outcome in outcomes:
        if outcome.alert_id is None:
            continue
        with store.session() as session:
            view = alert_view(
                session,
                outcome.alert_id,
                window_days=config.rules.window.days,
                source_name=config.source_display_name,
            )
            targets = delivery_targets_of(session, outcome.alert_id)
        rendered = render_alert(view, language, zone=config.watcher.zone)
        echo()
        echo(f"--- alert #{outcome.alert_id} → {', '.join(targets) or 'no target'} ---")
        echo(rendered.title)
        for line in rendered.body.splitlines():
            echo(line)


async def _check(checker: Checker, selected: Sequence[Borrower]) -> list[CheckOutcome]:
    try:
        return await checker.check(selected)
    finally:
        await checker.aclose()


def _stage_round(config: Config, source_of: dict[str, str], number: int) -> None:
    """Put round N's saved responses where the replay sources read them, as a manual upload would."""
    round_dir = DEMO_DATA / f"round{number}"
    folders = {
        name: Path(options.folder)
        for name, options in config.sources.items()
        if isinstance(options, ReplayOptions)
    }
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for company_dir in sorted(p for p in round_dir.iterdir() if p.is_dir()):
        shutil.copytree(company_dir, folders[source_of[company_dir.name]] / company_dir.name)
