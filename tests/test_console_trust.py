"""Issue 11's doors of the review console, through the real Starlette app on real databases (SQLite,
and PostgreSQL where storage is involved); one section per point of the issue.

The console world is ``tests/test_console.py``'s: officer zhang (b-lanchao), officer li (b-fjordlys),
officer wang (no borrowers), reviewer risk (everything).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from html import escape

import pytest

from tests.test_console import (
    ConsoleWorld,
    cli,
    csv_rows,
    page_token,
    signed_in,
    xlsx_rows,
)
from watcher.console.exports import CELL_SEPARATORS, FORMULA_TRIGGERS, neutralise
from watcher.models import Borrower
from watcher.pipeline import Checker

CALC = "ACME;=cmd|' /C calc'!A0"
"""The issue's cell: harmless as one cell, a command when a spreadsheet splits it at the ``;``."""


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request, tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = ConsoleWorld(tmp_path, url)
    yield made
    made.deployment.close()


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    made = ConsoleWorld(tmp_path, sqlite_url)
    yield made
    made.deployment.close()


def with_console(world: ConsoleWorld, **settings):
    return world.config.model_copy(update={"console": world.config.console.model_copy(update=settings)})


def cookie_payload(value: str) -> dict:
    """What Starlette's signed session cookie carries: base64 JSON, then timestamp and signature."""
    data = value.split(".")[0]
    return json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))


# -- point 12: /status scoped by officer ------------------------------------------------------------


def _fail_fjordlys(world: ConsoleWorld) -> str:
    """Li's borrower b-fjordlys gets an answer that is not Brønnøysund data; returns the stored error."""
    feed = world.deployment.folder / "feed" / "no" / "927140004"
    (feed / "enhet.json").write_text('{"feilmelding": "Internal error on /enheter/927140004"}', "utf-8")
    checker = Checker(world.store, world.config)

    async def run() -> None:
        try:
            with world.store.session() as session:
                borrower = session.get(Borrower, "b-fjordlys")
            await checker.check([borrower])
        finally:
            await checker.aclose()

    asyncio.run(run())
    with world.store.session() as session:
        borrower = session.get(Borrower, "b-fjordlys")
    assert borrower.consecutive_failures == 1 and borrower.last_error
    return borrower.last_error


def test_status_shows_an_officer_only_their_own_borrowers(any_world):
    world = any_world
    shown = escape(_fail_fjordlys(world))
    reviewer = signed_in(world, "risk").get("/status").text
    assert shown in reviewer and "b-fjordlys" in reviewer
    owner = signed_in(world, "li").get("/status").text
    assert shown in owner and "b-fjordlys" in owner

    for name in ("zhang", "wang"):
        page = signed_in(world, name).get("/status").text
        assert shown not in page and "b-fjordlys" not in page, name
    assert _borrower_count(signed_in(world, "zhang").get("/status").text) == 1
    assert _borrower_count(reviewer) == 3


def _borrower_count(html: str) -> int:
    """The first card of the status page: how many borrowers the user watches."""
    match = re.search(r'<div class="num">(\d+)</div>', html)
    assert match, "no borrower count card"
    return int(match[1])


# -- point 14: formula triggers wherever a cell may start -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CALC, "ACME;'=cmd|' /C calc'!A0"),
        ("=1+1", "'=1+1"),
        ("ACME,+1", "ACME,'+1"),
        ("ACME\t@SUM(A1)", "ACME\t'@SUM(A1)"),
        ("ACME|-2+3", "ACME|'-2+3"),
        ("line one\n=HYPERLINK(\"x\")", "line one\n'=HYPERLINK(\"x\")"),
        ("line one\r\n+1", "line one\r\n'+1"),
        ("ACME; =1", "ACME; '=1"),
        ("ACME;＝1", "ACME;'＝1"),
        ("\t=1", "'\t'=1"),
        ("Solheim, Magnus", "Solheim, Magnus"),
        ("2026-03-01", "2026-03-01"),
        ("51.00%", "51.00%"),
    ],
)
def test_neutralise_cases(text, expected):
    assert neutralise(text) == expected


def test_neutralise_leaves_no_cell_start_with_a_trigger():
    from hypothesis import given
    from hypothesis import strategies as st

    alphabet = st.sampled_from(list(FORMULA_TRIGGERS + CELL_SEPARATORS + " \u3000aZ1'\"!"))

    @given(st.text(alphabet, max_size=30))
    def check(text: str) -> None:
        result = neutralise(text)
        assert result.replace("'", "") == text.replace("'", ""), "only apostrophes are added"
        for index, char in enumerate(result):
            if char not in FORMULA_TRIGGERS:
                continue
            before = result[:index].rstrip(" \u3000")
            assert before and before[-1] not in CELL_SEPARATORS, (text, result)

    check()
    assert neutralise(3) == 3 and neutralise(None) is None


def test_exports_neutralise_triggers_after_separators_and_line_breaks(world):
    ids = world.alert_ids()
    client = signed_in(world, "risk")
    note = f"{CALC}\n@SUM(1+1)"
    client.post(f"/alerts/{ids['b-fjordlys']}/ack", data={"csrf_token": page_token(client), "note": note})
    _, rows = csv_rows(client.get("/export/alerts.csv").content)
    [acked] = [row for row in rows if int(row["id"]) == ids["b-fjordlys"]]
    assert acked["note"] == "ACME;'=cmd|' /C calc'!A0\n'@SUM(1+1)"
    _, xlsx, _ = xlsx_rows(client.get("/export/alerts.xlsx").content)
    [acked] = [row for row in xlsx if row["id"] == ids["b-fjordlys"]]
    assert acked["note"] == "ACME;'=cmd|' /C calc'!A0\n'@SUM(1+1)"


def test_history_csv_on_the_command_line_neutralises_like_the_exports(world):
    with world.store.transaction() as session:
        borrower = session.get(Borrower, "b-lanchao")
        borrower.name = f"澜潮;{CALC}"
        session.add(borrower)
    result = cli(world, "history", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    lanchao = [row for row in rows if row["borrower_id"] == "b-lanchao"]
    assert lanchao
    for row in lanchao:
        assert row["borrower_name"] == "澜潮;ACME;'=cmd|' /C calc'!A0"
    assert any(row["after"].startswith("'=HYPERLINK(") for row in lanchao)
