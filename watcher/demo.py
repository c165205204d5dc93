"""``watcher demo``: the real pipeline on bundled sample data, offline, on a throw-away database.

Three rounds of saved registry responses (two Chinese borrowers in Qichacha's shape, two
Norwegian ones in Brønnøysund's) are replayed at simulated dates, so the effective dates in the
data fall between checks as they would in production.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from watcher.alerts import alert_view, delivery_targets_of
from watcher.config import Config, load_config
from watcher.importer import parse_borrowers_csv, upsert_borrowers
from watcher.pipeline import Checker, build_sources
from watcher.render import render_alert
from watcher.store import history, open_store

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


def run_demo(*, language: str, keep: Path | None, echo: Callable[..., None], print_history: Callable) -> None:
    """``echo`` prints one line (the command line's, which keeps registry text off the terminal)."""
    workdir = Path(tempfile.mkdtemp(prefix="watcher-demo-")) if keep is None else keep
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _run(workdir, language, echo, print_history)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(workdir: Path, language: str, echo: Callable[..., None], print_history: Callable) -> None:
    from watcher.cli import HistoryFormat

    config_path = workdir / "watcher.toml"
    config_path.write_text(DEMO_CONFIG.format(language=language), encoding="utf-8")
    config = load_config(config_path)
    store = open_store(config.database.url)
    sources = build_sources(config)
    parsed = parse_borrowers_csv(DEMO_DATA / "borrowers.csv", sources=sources, officers=list(config.officers))
    with store.transaction() as session:
        upsert_borrowers(session, parsed.rows, actor="demo")
    window_days = config.rules.window.days
    source_of = {row.registry_id: row.source for row in parsed.rows}
    for number, when in enumerate(ROUND_TIMES, start=1):
        _stage_round(config, source_of, number)
        echo()
        echo(f"=== round {number}: registries as of {when:%Y-%m-%d} ===")
        checker = Checker(store, config, sources=build_sources(config), clock=lambda when=when: when)
        with store.session() as session:
            from watcher.store import borrowers

            selected = borrowers(session)
        outcomes = asyncio.run(_check(checker, selected))
        for outcome in outcomes:
            state = (
                "baseline (silent)"
                if outcome.baseline
                else f"{outcome.changes} change(s)"
                if outcome.changes
                else "unchanged"
            )
            if not outcome.ok:
                state = f"FAILED {outcome.error_kind}: {outcome.error}"
            echo(f"  {outcome.borrower_id}: {state}")
        for outcome in outcomes:
            if outcome.alert_id is None:
                continue
            with store.session() as session:
                view = alert_view(session, outcome.alert_id, window_days=window_days)
                targets = delivery_targets_of(session, outcome.alert_id)
            rendered = render_alert(view, language)
            echo()
            echo(f"--- alert #{outcome.alert_id} → {', '.join(targets) or 'no target'} ---")
            echo(rendered.title)
            for line in rendered.body.splitlines():
                echo(line)
    echo()
    echo("=== change history ===")
    with store.session() as session:
        rows = history(session)
    print_history(rows, HistoryFormat.table)
    store.dispose()


async def _check(checker: Checker, selected):
    try:
        return await checker.check(selected)
    finally:
        await checker.aclose()


def _stage_round(config: Config, source_of: dict[str, str], number: int) -> None:
    """Put round N's saved responses where the replay sources read them, as a manual upload would."""
    round_dir = DEMO_DATA / f"round{number}"
    folders = {name: Path(options.folder) for name, options in config.sources.items()}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for company_dir in sorted(p for p in round_dir.iterdir() if p.is_dir()):
        shutil.copytree(company_dir, folders[source_of[company_dir.name]] / company_dir.name)
