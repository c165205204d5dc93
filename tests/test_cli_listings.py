"""``watcher history`` and ``watcher alerts`` with Chinese risk listings, on alerts and change events
the real pipeline made (``tests/listings.py``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from tests.deployment import Deployment
from tests.listings import DISHONEST, LEGAL_REP, onboard_and_list
from tests.test_cli import HISTORY_KEYS, invoke
from watcher.pipeline import CheckOutcome


class Listed:
    def __init__(self, deployment: Deployment, onboarding: CheckOutcome, listing: CheckOutcome) -> None:
        self.deployment, self.onboarding, self.listing = deployment, onboarding, listing

    def cli(self, *args: str):
        return invoke("--config", str(self.deployment.config_path), *args)


@pytest.fixture
def listed(tmp_path, sqlite_url) -> Iterator[Listed]:
    deployment = Deployment(tmp_path, sqlite_url, "", language="en")
    try:
        yield Listed(deployment, *onboard_and_list(deployment))
    finally:
        deployment.close()


def test_history_filters_by_a_listing_category_and_shows_the_party(listed):
    table = listed.cli("history", "--category", "dishonest_debtor")
    assert table.exit_code == 0, table.output
    # the table reads in [watcher] language (en here): the party column names the role in words
    assert "party" in table.stdout and f"legal representative {LEGAL_REP}" in table.stdout
    assert "Dishonest debtor" in table.stdout and "legal_representative" not in table.stdout
    assert "enforcement" not in table.stdout

    lines = listed.cli("history", "--format", "jsonl", "--category", "dishonest_debtor").stdout.splitlines()
    [event] = [json.loads(line) for line in lines]
    assert list(event)[: len(HISTORY_KEYS)] == HISTORY_KEYS
    assert (event["subject"], event["party"], event["party_name"], event["first_seen"]) == (
        DISHONEST.case_number,
        "legal_representative",
        LEGAL_REP,
        False,
    )
    onboarding = [
        json.loads(line)
        for line in listed.cli("history", "--format", "jsonl").stdout.splitlines()
        if json.loads(line)["alert_id"] == listed.onboarding.alert_id
    ]
    assert len(onboarding) == 3 and all(e["first_seen"] and e["party"] == "company" for e in onboarding)


def test_history_csv_adds_the_listing_columns_after_the_contracts(listed):
    out = listed.cli(
        "history", "--format", "csv", "--category", "dishonest_debtor", "--category", "enforcement"
    )
    reader = csv.DictReader(io.StringIO(out.stdout))
    assert reader.fieldnames == [*HISTORY_KEYS, "party", "party_name", "first_seen"]
    rows = list(reader)
    assert {row["category"] for row in rows} == {"dishonest_debtor", "enforcement"}
    dishonest = next(row for row in rows if row["category"] == "dishonest_debtor")
    assert dishonest["party_name"] == LEGAL_REP


def test_an_unknown_category_is_still_refused(listed):
    result = listed.cli("history", "--category", "dishonest")
    assert result.exit_code == 2
    assert "dishonest_debtor" in result.output, "the known categories, new ones included, are listed"


def test_alerts_list_shows_the_kind_and_show_renders_an_onboarding_alert(listed):
    table = listed.cli("alerts").stdout
    rows = [line for line in table.splitlines() if "b-risky" in line]
    assert len(rows) == 2
    assert any("onboarding" in row for row in rows) and any("change" in row for row in rows)

    shown = listed.cli("alerts", "show", str(listed.onboarding.alert_id))
    assert shown.exit_code == 0, shown.output
    first, *body = shown.stdout.splitlines()
    assert "risk listings active at onboarding" in first
    assert sum("already in force when first checked" in line for line in body) == 3
    assert "asset preservation" in shown.stdout and body[-1] == "Status: Open"

    zh = listed.cli("alerts", "show", str(listed.listing.alert_id), "--language", "zh-CN").stdout
    assert f"（针对法定代表人 {LEGAL_REP}）" in zh and "登记信息变更" in zh

    missing = listed.cli("alerts", "show", "999")
    assert missing.exit_code == 1 and "no alert #999" in missing.output
