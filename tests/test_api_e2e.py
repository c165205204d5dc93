"""The integration API end to end (issue 17): a loan system feeds 10,000 parties in one bulk upsert,
``watcher check`` finds their changes on a loopback Enhetsregisteret, and a data mart follows
``/api/v1/events`` from a cursor across a restart of the server, or of the daemon serving the API,
without a gap or a duplicate; an officer's token follows only that officer's parties.

Everything is real and in its own process, as a bank runs it: ``watcher serve`` (the API in the
console's server) or ``watcher run`` with the console on, and ``watcher check``, are
``python -m watcher`` children over one SQLite file; the
registry is ``bench/registry_stub.py``'s RegistryStub on 127.0.0.1, reached by the real ``brreg``
source. The mart keeps only the cursor between reads, as a follower does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from bench.registry_stub import RegistryStub
from tests.test_api import SECRET, bearer, new_token
from watcher.api.app import API_PREFIX
from watcher.models import Borrower, ChangeEvent, Snapshot
from watcher.store import open_store
from watcher.vocabulary import TokenScope

REPO_ROOT = Path(__file__).resolve().parent.parent
OFFICERS = ("zhang_wei", "li_na", None)
EVENTS = f"{API_PREFIX}/events"

CONFIG = """\
[watcher]
timezone = "UTC"
language = "en"

[database]
url = "sqlite:///{database}"

[schedule]
interval = "24h"
jitter = "0s"

[logging]
level = "warning"

[sources.brreg]
type = "brreg"
base_url = "{registry}"
rate = "1000000/s"

[console]
enabled = true
host = "127.0.0.1"
port = {port}
secret_key = "{secret}"

[api]
rate = "100000/s"

[officers.zhang_wei]
name = "张伟"

[officers.li_na]
name = "李娜"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def watcher(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@contextmanager
def served(config: Path, port: int, command: str) -> Iterator[httpx.Client]:
    """``watcher serve`` (or ``watcher run`` with the console on) in its own process until SIGTERM;
    a client once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", "--config", str(config), command],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                client.get("/favicon.ico")
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    raise AssertionError(f"watcher {command} did not come up: {output}") from None
                time.sleep(0.1)
        yield client
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 0, f"watcher {command} exited {process.returncode}: {output}"


def party_id(index: int) -> str:
    return f"p-{index:05d}"


def read_on(client: httpx.Client, token: str, cursor: str | None, *, limit: int) -> tuple[list[dict], str]:
    """Every page from ``cursor`` until a short one: the events and the cursor to keep."""
    events: list[dict] = []
    while True:
        params: dict[str, str | int] = {"limit": limit, **({"after": cursor} if cursor else {})}
        response = client.get(EVENTS, params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["items"]
        cursor = page["next"]
        if not page["more"]:
            return events, cursor


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "parties"),
    [("serve", 10_000), ("run", 300)],
    ids=["serve-10000", "daemon-300"],
)
def test_bulk_upsert_check_and_follow_the_feed_across_a_restart(tmp_path, command, parties):
    """The daemon (``watcher run``, console on) checks every party itself when it starts, beside the
    command line's checks: 300 parties keep that short; ``watcher serve`` takes the issue's 10,000."""
    database = tmp_path / "watcher.db"
    port = free_port()
    with RegistryStub(parties) as registry:
        config = tmp_path / "watcher.toml"
        config.write_text(
            CONFIG.format(database=database, registry=registry.url, port=port, secret=SECRET),
            encoding="utf-8",
        )
        assert watcher(config, "db", "upgrade").returncode == 0
        store = open_store(f"sqlite:///{database}")
        try:
            loans = new_token(store, "loans", TokenScope.WRITE)
            mart = new_token(store, "mart")
            zhang = new_token(store, "zhang-feed", officer="zhang_wei")
        finally:
            store.dispose()
        officer_of = {party_id(n): OFFICERS[n % 3] for n in range(parties)}
        items = [
            {
                "id": party_id(n),
                "name": f"STUB SELSKAP {n:05d} AS",
                "source": "brreg",
                "registry_id": orgnr,
                **({"officer": officer_of[party_id(n)]} if officer_of[party_id(n)] else {}),
                "tags": ["e2e"],
            }
            for n, orgnr in enumerate(registry.orgnrs)
        ]
        # Twelve parties are checked: four of each officer (and none), spread over the list.
        checked = [n * 811 % parties for n in range(12)]
        assert {OFFICERS[n % 3] for n in checked} == set(OFFICERS)
        first_half, second_half = checked[:6], checked[6:]

        def check(indexes: list[int]) -> None:
            flags = [arg for n in indexes for arg in ("--borrower", party_id(n))]
            done = watcher(config, "check", "--no-notify", *flags)
            assert done.returncode == 0, done.stdout + done.stderr

        def change(indexes: list[int]) -> None:
            registry.mark_changed([registry.orgnrs[n] for n in indexes])
            check(indexes)

        with served(config, port, command) as client:
            started = time.monotonic()
            bulk = client.post(f"{API_PREFIX}/parties:bulk", json={"items": items}, headers=bearer(loans))
            took = time.monotonic() - started
            assert bulk.status_code == 200, bulk.text[:500]
            result = bulk.json()
            assert (result["added"], result["rejected"]) == (parties, 0)
            assert took < 60, f"bulk upsert of {parties} took {took:.1f} s"
            listed = client.get(
                f"{API_PREFIX}/parties", params={"tag": "e2e", "limit": 1}, headers=bearer(mart)
            )
            assert listed.status_code == 200 and listed.json()["items"][0]["id"] == party_id(0)

            check(checked)  # the baseline
            change(first_half)
            mart_events, mart_cursor = read_on(client, mart, None, limit=3)
            zhang_events, zhang_cursor = read_on(client, zhang, None, limit=2)
            read_before_restart = (len(mart_events), len(zhang_events))
            change(first_half[:3])  # before the restart, not yet read

        change(second_half)  # while no server runs
        with served(config, port, command) as client:
            change(first_half[3:])
            more, mart_cursor = read_on(client, mart, mart_cursor, limit=3)
            mart_events += more
            more, zhang_cursor = read_on(client, zhang, zhang_cursor, limit=2)
            zhang_events += more
            # Nothing new: the kept cursors read an empty page and stay where they are.
            assert read_on(client, mart, mart_cursor, limit=3) == ([], mart_cursor)
            assert read_on(client, zhang, zhang_cursor, limit=2) == ([], zhang_cursor)
            # A zhang_wei token sees its own parties only, everywhere it reads.
            zhang_parties = client.get(f"{API_PREFIX}/parties", params={"limit": 1000}, headers=bearer(zhang))
            assert {p["officer"] for p in zhang_parties.json()["items"]} == {"zhang_wei"}
            other = next(party_id(n) for n in checked if officer_of[party_id(n)] != "zhang_wei")
            assert client.get(f"{API_PREFIX}/parties/{other}", headers=bearer(zhang)).status_code == 404

    store = open_store(f"sqlite:///{database}")
    try:
        with store.session() as session:
            stored = list(
                session.exec(select(ChangeEvent.id, ChangeEvent.borrower_id).order_by(col(ChangeEvent.id)))
            )
            active = len(session.exec(select(Borrower.id).where(col(Borrower.active))).all())
            snapshotted = set(session.exec(select(Snapshot.borrower_id).distinct()))
    finally:
        store.dispose()
    assert active == parties
    # The daemon checked parties of its own beside the command line's; the server alone none.
    assert (len(snapshotted) > len(checked)) == (command == "run"), len(snapshotted)
    changed_parties = {party_id(n) for n in checked}
    assert {borrower for _id, borrower in stored} == changed_parties, "every change was stored"
    # Both followers had read some events before the restart and read the rest after it.
    assert 0 < read_before_restart[0] < len(mart_events) and 0 < read_before_restart[1] < len(zhang_events)
    mart_ids = [event["id"] for event in mart_events]
    assert mart_ids == [event_id for event_id, _ in stored], "the mart read each event once, in order"
    zhang_ids = [event["id"] for event in zhang_events]
    assert zhang_ids == [i for i, borrower in stored if officer_of[borrower] == "zhang_wei"]
    assert {event["borrower_id"] for event in zhang_events} == {
        p for p in changed_parties if officer_of[p] == "zhang_wei"
    }
