"""Billed vendor calls per borrower per day, for the Chinese vendors' default settings.

Every Qichacha and Tianyancha call is billed, so what the daemon's scheduled checks cost is a count,
not a time. For each vendor, a loopback stand-in answers every endpoint with the real-shaped samples
(``tests.cn_samples``, the company's credit code swapped for the one asked about) and
counts the requests. N borrowers are imported into a throw-away SQLite database and checked the way
the daemon checks them (``Checker.check(..., every_signal=False)``: each signal on its cadence) on a
simulated clock stepping one hour at a time over D days. Three settings run side by side:

- ``default``: every signal, the default cadence (registry card, abnormal and judicial lists every
  check; controller, violations, pledges and change log weekly), the default 24 h interval;
- ``every check``: every signal refreshed at every check (``cadence`` all ``"0s"``), the upper bound;
- ``registry only``: ``signals = ["registry"]``, the card alone, as before risk signals existed.

    .venv/bin/python -m bench.billed_calls [--borrowers 5] [--days 28]

Prints one table: billed calls per borrower per day, and each setting's ratio to ``every check``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlmodel import col, select

from sources.base import Source
from sources.qichacha import _INFO_PATH as QICHACHA_CARD_PATH
from sources.qichacha import BASIC_DETAILS, RISK_ENDPOINTS
from sources.tianyancha import SIGNAL_ENDPOINTS
from tests.cn_samples import (
    FIXTURES,
    QICHACHA_CARD,
    QICHACHA_RISK,
    QICHACHA_SAMPLES,
    SAMPLE_USCC,
    TIANYANCHA_RISK,
    TIANYANCHA_SAMPLES,
)
from watcher.config import Config, load_config
from watcher.identifiers import cn_uscc_check_char
from watcher.importer import parse_borrowers_csv, upsert_borrowers
from watcher.models import Borrower
from watcher.pipeline import Checker, build_sources
from watcher.store import Store, open_store

SETTINGS = ("default", "every check", "registry only")
EVERY_CHECK_CADENCE = (
    'cadence = { controller = "0s", violations = "0s", pledges = "0s", change_log = "0s" }\n'
)


@dataclass(frozen=True)
class Vendor:
    """A vendor's stand-in answers (path → sample file) and its ``[sources]`` table."""

    name: str
    answers: dict[str, Path]
    empty: bytes
    id_params: tuple[str, ...]
    source_table: str


def _qichacha() -> Vendor:
    answers = {
        endpoint.path: QICHACHA_RISK / f"{QICHACHA_SAMPLES[endpoint.name]}.json"
        for endpoint in (*RISK_ENDPOINTS, BASIC_DETAILS)
        if endpoint.name in QICHACHA_SAMPLES
    }
    answers[QICHACHA_CARD_PATH] = QICHACHA_RISK / f"{QICHACHA_CARD}.json"
    empty = {"Status": "201", "Message": "【有效请求】查询无结果", "OrderNumber": "x", "Result": None}
    return Vendor(
        "qichacha",
        answers,
        json.dumps(empty, ensure_ascii=False).encode(),
        ("searchKey", "keyWord", "keyword", "companyName"),
        'type = "qichacha"\nkey = "k"\nsecret = "s"\n',
    )


def _tianyancha() -> Vendor:
    answers = {
        call.path: TIANYANCHA_RISK / f"{TIANYANCHA_SAMPLES[key]}.json"
        for calls in SIGNAL_ENDPOINTS.values()
        for key, call in calls.items()
    }
    answers["/services/open/ic/baseinfo/normal"] = TIANYANCHA_RISK / f"{TIANYANCHA_SAMPLES['baseinfo']}.json"
    answers["/services/open/ic/holder/2.0"] = FIXTURES / "cn_tianyancha" / "ic_holder.json"
    answers["/services/open/ic/staff/2.0"] = FIXTURES / "cn_tianyancha" / "ic_staff.json"
    empty = {"result": {"total": 0, "items": []}, "reason": "ok", "error_code": 0}
    return Vendor(
        "tianyancha",
        answers,
        json.dumps(empty).encode(),
        ("keyword", "id", "name"),
        'type = "tianyancha"\ntoken = "t"\n',
    )


@contextmanager
def stand_in(vendor: Vendor) -> Iterator[tuple[str, Counter[str]]]:
    """The vendor on 127.0.0.1: each sample with the asked-for credit code in it; requests counted."""
    bodies = {path: file.read_bytes() for path, file in vendor.answers.items()}
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            asked = next((query[name][0] for name in vendor.id_params if name in query), SAMPLE_USCC)
            with lock:
                calls[url.path] += 1
            body = bodies.get(url.path, vendor.empty).replace(SAMPLE_USCC.encode(), asked.encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's signature)
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def credit_codes(count: int) -> list[str]:
    """``count`` valid unified social credit codes (GB 32100 check character)."""
    codes = []
    for number in range(count):
        first17 = f"91320506MA{number:07d}"
        codes.append(first17 + cn_uscc_check_char(first17))
    return codes


def _config(folder: Path, vendor: Vendor, url: str, setting: str) -> Path:
    table = vendor.source_table + f'base_url = "{url}"\nrate = "1000/s"\nretries = 0\n'
    if setting == "every check":
        table += EVERY_CHECK_CADENCE
    elif setting == "registry only":
        table += 'signals = ["registry"]\n'
    path = folder / "watcher.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{folder / "bench.db"}"\n[schedule]\nconcurrency = 4\n'
        f"[sources.cn]\n{table}",
        encoding="utf-8",
    )
    return path


def simulate(vendor: Vendor, setting: str, borrowers: int, days: int) -> tuple[int, int]:
    """Billed calls and failed checks of ``borrowers`` over ``days`` of scheduled checks."""
    with (
        tempfile.TemporaryDirectory(prefix="watcher-bench-billed-") as name,
        stand_in(vendor) as (url, calls),
    ):
        folder = Path(name)
        config = load_config(_config(folder, vendor, url, setting))
        store = open_store(config.database.url)
        csv = folder / "borrowers.csv"
        rows = "".join(
            f"b{index},Borrower {index},cn,{code}\n" for index, code in enumerate(credit_codes(borrowers))
        )
        csv.write_text("id,name,source,registry_id\n" + rows, encoding="utf-8")
        sources = build_sources(config)
        parsed = parse_borrowers_csv(csv, sources=sources, officers=[])
        with store.transaction() as session:
            upsert_borrowers(session, parsed.rows, actor="bench")
        failures = asyncio.run(_scheduled_checks(store, config, sources, days))
        store.dispose()
        return sum(calls.values()), failures


async def _scheduled_checks(store: Store, config: Config, sources: dict[str, Source], days: int) -> int:
    """The daemon's checks over ``days`` on a clock stepping an hour at a time; failed checks."""
    start = now = datetime.now(UTC) + timedelta(minutes=1)  # after the import made them due
    checker = Checker(store, config, sources=sources, clock=lambda: now)
    failures = 0
    while now < start + timedelta(days=days):
        with store.session() as session:
            due = list(session.exec(select(Borrower).where(col(Borrower.next_check_at) <= now)))
        if due:
            outcomes = await checker.check(due, every_signal=False)
            failures += sum(not outcome.ok for outcome in outcomes)
        now += timedelta(hours=1)
    await checker.aclose()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--borrowers", type=int, default=5)
    parser.add_argument("--days", type=int, default=28)
    args = parser.parse_args()
    print(f"billed calls per borrower per day ({args.borrowers} borrowers, {args.days} simulated days)")
    print("| vendor | setting | calls / borrower / day | ratio to every check | failed checks |")
    print("|---|---|---|---|---|")
    for vendor in (_qichacha(), _tianyancha()):
        results = {setting: simulate(vendor, setting, args.borrowers, args.days) for setting in SETTINGS}
        upper = results["every check"][0]
        for setting in SETTINGS:
            calls, failures = results[setting]
            per_day = calls / args.borrowers / args.days
            print(f"| {vendor.name} | {setting} | {per_day:.2f} | {calls / upper:.2f} | {failures} |")


if __name__ == "__main__":
    main()
