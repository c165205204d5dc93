"""The console's borrower page, inbox, history and exports for Chinese risk listings.

The data comes from the real pipeline (``tests/listings.py``): ``b-risky`` is onboarded with
listings in force (an onboarding alert), then its legal representative is listed as a dishonest
debtor and an enforcement case is lifted (a change alert).
"""

from __future__ import annotations

import html
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.deployment import BASELINE_AT, HARDANGER, Deployment
from tests.listings import (
    DISHONEST,
    ENFORCEMENT,
    EVIL_PLEDGEE,
    LEGAL_REP,
    PLEDGE,
    onboard_and_list,
)
from tests.test_cli import HISTORY_KEYS
from tests.test_console import CHANNELS, PASSWORD, csv_rows, sign_in
from watcher.console.app import create_app
from watcher.console.auth import create_user
from watcher.normalize import clean_text
from watcher.store import HISTORY_FIELDS

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client; httpx (a project dependency) still works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

STORED_PLEDGEE = clean_text(EVIL_PLEDGEE)
CONTRACT_FIELDS = HISTORY_KEYS
"""The history columns of the design's contract, which must stay first and unchanged."""


class ListingWorld:
    def __init__(self, folder: Path, url: str) -> None:
        self.deployment = Deployment(folder, url, CHANNELS)
        self.onboarding, self.listing = onboard_and_list(self.deployment)
        with self.deployment.store.transaction() as session:
            create_user(
                session,
                username="zhang",
                password=PASSWORD,
                role="officer",
                officer_id="zhang_wei",
                display_name="张伟",
                actor="test",
            )
            create_user(
                session,
                username="li",
                password=PASSWORD,
                role="officer",
                officer_id="li_na",
                display_name="李娜",
                actor="test",
            )

    def client(self, username: str = "zhang") -> TestClient:
        client = TestClient(create_app(self.deployment.store, self.deployment.config))
        assert sign_in(client, username).status_code == 303
        return client


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[ListingWorld]:
    made = ListingWorld(tmp_path, sqlite_url)
    yield made
    made.deployment.close()


def section(page: str, category: str) -> str:
    match = re.search(rf'<section class="[^"]*" id="section-{category}">(.*?)</section>', page, re.S)
    assert match, f"no section {category}"
    return match[1]


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_the_borrower_page_shows_control_and_listings_in_force_first(world):
    page = world.client().get("/borrower?id=b-risky&lang=en").text

    owners = text_of(section(page, "beneficial_owner"))
    assert "Beneficial owners" in owners and "陈静" in owners and "25%" in owners
    assert LEGAL_REP in text_of(section(page, "actual_controller"))

    abnormal = section(page, "abnormal_operation")
    rows = re.findall(r'<tr class="listing listing-(\w+)">', abnormal)
    assert rows == ["active", "removed"], "the listing in force comes first"
    assert "1 active of 2" in text_of(abnormal)
    assert "依法履行公示义务" in text_of(abnormal), "the removal reason"

    enforcement = squeeze(text_of(section(page, "enforcement")))
    assert "Lifted" in enforcement and ENFORCEMENT.case_number in enforcement
    assert "宁波市鄞州区人民法院" in enforcement and "125万元" in enforcement
    assert "2025-11-03" in enforcement and "2026-03-14" in enforcement

    dishonest = squeeze(text_of(section(page, "dishonest_debtor")))
    assert f"legal representative {LEGAL_REP}" in dishonest and DISHONEST.case_number in dishonest
    assert "Active" in dishonest

    pledge = squeeze(text_of(section(page, "equity_pledge")))
    assert "Pledgor → pledgee" in pledge and f"{LEGAL_REP} → {STORED_PLEDGEE}" in pledge
    assert PLEDGE.amount is not None and PLEDGE.amount.raw in pledge

    assert "not fetched" in text_of(section(page, "bankruptcy")), "unknown is not none"
    assert "none" in text_of(section(page, "consumption_restriction"))
    assert "not fetched" not in text_of(section(page, "consumption_restriction"))


def test_the_borrower_page_in_chinese_and_hostile_listing_text_is_escaped(world):
    page = world.client().get("/borrower?id=b-risky&lang=zh-CN").text
    assert "实际控制人" in page and "受益所有人" in page and "失信被执行人" in page
    assert "未获取" in text_of(section(page, "bankruptcy"))
    assert "已解除" in text_of(section(page, "enforcement"))
    assert "有效" in text_of(section(page, "dishonest_debtor"))
    assert "出质人 → 质权人" in text_of(section(page, "equity_pledge"))
    assert "<svg/onload" in STORED_PLEDGEE, "the hostile text reaches the page unstripped"
    assert "<svg/onload" not in page
    assert "&lt;svg/onload" in page and STORED_PLEDGEE in html.unescape(page)


def test_a_borrower_without_these_sections_shows_no_risk_panel(world):
    world.deployment.add(HARDANGER)
    world.deployment.stage(0, HARDANGER.id)
    world.deployment.check(BASELINE_AT)
    with world.deployment.store.transaction() as session:
        create_user(
            session,
            username="risk",
            password=PASSWORD,
            role="reviewer",
            officer_id=None,
            display_name="Risk Desk",
            actor="test",
        )
    client = world.client("risk")
    page = client.get(f"/borrower?id={HARDANGER.id}&lang=en").text
    assert 'id="risk"' not in page and "not fetched" not in page
    assert 'id="risk"' in client.get("/borrower?id=b-risky&lang=en").text


def test_the_inbox_shows_the_onboarding_kind_party_and_first_seen(world):
    client = world.client()
    page = client.get("/alerts?lang=en").text
    onboarding = re.search(rf'id="alert-{world.onboarding.alert_id}">(.*?)</article>', page, re.S)
    listing = re.search(rf'id="alert-{world.listing.alert_id}">(.*?)</article>', page, re.S)
    assert onboarding and listing
    first = squeeze(text_of(onboarding[1]))
    assert "Active at onboarding" in first
    assert "Court enforcement listed" in first and "already in force when first checked" in first
    assert "asset preservation" in first, "grave listings recommend asset preservation"
    second = squeeze(text_of(listing[1]))
    assert f"Dishonest debtor listed (against the legal representative, {LEGAL_REP})" in second
    assert "Court enforcement removed/lifted" in second
    assert "Active at onboarding" not in second and "already in force" not in second

    zh = squeeze(text_of(client.get("/alerts?lang=zh-CN").text))
    assert "纳入监控时已存在风险信息" in zh
    assert f"失信被执行人 列入（针对法定代表人 {LEGAL_REP}）" in zh
    assert "首次核查时已存在" in zh


def test_the_history_page_filters_by_a_new_category(world):
    client = world.client()
    page = client.get("/history?category=dishonest_debtor&lang=en").text
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", page)
    assert len(rows) == 1
    assert f"against the legal representative, {LEGAL_REP}" in squeeze(text_of(page))
    assert "Dishonest debtor" in page  # the category menu offers the new categories, labelled
    every = client.get("/history?lang=en").text
    assert len(re.findall(r"<tr>\s*<td>(\d+)</td>", every)) == 5


def test_history_exports_carry_party_and_first_seen_after_the_old_columns(world):
    client = world.client()
    fields, rows = csv_rows(client.get("/export/history.csv").content)
    assert fields == [*CONTRACT_FIELDS, "party", "party_name", "first_seen"]
    assert tuple(fields) == HISTORY_FIELDS
    dishonest = next(row for row in rows if row["category"] == "dishonest_debtor")
    assert (dishonest["party"], dishonest["party_name"], dishonest["first_seen"]) == (
        "legal_representative",
        LEGAL_REP,
        "False",
    )
    onboarding = [row for row in rows if row["alert_id"] == str(world.onboarding.alert_id)]
    assert onboarding and all(row["first_seen"] == "True" for row in onboarding)

    book = load_workbook(io.BytesIO(client.get("/export/history.xlsx").content))
    header = [cell.value for cell in book.active[1]]
    assert header == list(HISTORY_FIELDS)


def test_an_officer_does_not_see_another_officers_listings(world):
    assert world.client("li").get("/borrower?id=b-risky").status_code == 403
    assert LEGAL_REP not in world.client("li").get("/history").text
