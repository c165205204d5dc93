"""Alert text for Chinese risk listings: who a listing is against, "already in force when first
checked", the onboarding title, the recommended actions, escaping of hostile listing text, digests.

The end-to-end cases render the alerts the real pipeline raised for ``tests/listings.py``'s borrower
(read back with ``watcher.alerts.alert_view``); the line-level cases render ``ChangeLine`` values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from tests.deployment import Deployment
from tests.listings import DISHONEST, EVIL_PLEDGEE, LEGAL_REP, onboard_and_list
from tests.test_render import HTML_TEMPLATE_TAGS, collapsed, read_html
from watcher.alerts import alert_view
from watcher.normalize import clean_text
from watcher.record import Action, Category, Party
from watcher.render import AlertView, BodyFormat, ChangeLine, change_line, render_alert, render_digest
from watcher.vocabulary import AlertKind, Language, Severity

DETECTED = datetime(2026, 3, 17, 2, 0, tzinfo=UTC)
EVIL = "<script>alert(1)</script> [click](http://evil.example) **粗体** # 标题 |表|"

LISTED = ChangeLine(
    Category.DISHONEST_DEBTOR,
    Action.ADDED,
    DISHONEST.case_number,
    None,
    f"{DISHONEST.case_number} · 宁波市鄞州区人民法院",
    date(2026, 3, 12),
    party=Party.LEGAL_REPRESENTATIVE,
    party_name=LEGAL_REP,
)
LIFTED = ChangeLine(
    Category.ENFORCEMENT,
    Action.REMOVED,
    "(2025)浙0212执1234号",
    "(2025)浙0212执1234号 · 1,250,000 CNY",
    None,
    date(2026, 3, 14),
    party=Party.COMPANY,
)
IN_FORCE = ChangeLine(
    Category.EQUITY_PLEDGE,
    Action.ADDED,
    "330200-2025-0088",
    None,
    "330200-2025-0088 · 周明远 → 鑫源担保",
    date(2025, 6, 20),
    party=Party.COMPANY,
    first_seen=True,
)


def view_of(*changes: ChangeLine, kind: AlertKind = AlertKind.CHANGE, recommend: bool = True) -> AlertView:
    return AlertView(
        alert_id=12,
        borrower_id="b-risky",
        borrower_name="宁波恒远港务物流有限公司",
        severity=Severity.CRITICAL,
        source="cn",
        detected_at=DETECTED,
        changes=changes,
        occasions_in_window=0,
        window_days=365,
        recommend_early_repayment=recommend,
        kind=kind,
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (Language.ZH_CN, f"失信被执行人 列入（针对法定代表人 {LEGAL_REP}）: {DISHONEST.case_number}"),
        (Language.EN, f"Dishonest debtor listed (against the legal representative, {LEGAL_REP}):"),
    ],
)
def test_a_listing_against_a_key_person_names_the_role_and_the_person(language, expected) -> None:
    assert change_line(LISTED, language).startswith(expected)


@pytest.mark.parametrize(
    ("language", "lifted"),
    [(Language.ZH_CN, "被执行人 移出/解除: "), (Language.EN, "Court enforcement removed/lifted: ")],
)
def test_a_listing_against_the_company_names_nobody_and_is_lifted_not_removed(language, lifted) -> None:
    line = change_line(LIFTED, language)
    assert line.startswith(lifted)
    assert "针对" not in line and "against" not in line


@pytest.mark.parametrize(
    ("language", "marker"),
    [(Language.ZH_CN, "（首次核查时已存在）"), (Language.EN, " (already in force when first checked)")],
)
def test_first_seen_says_the_listing_was_already_in_force(language, marker) -> None:
    assert change_line(IN_FORCE, language).endswith(marker)
    assert marker not in change_line(replace(IN_FORCE, first_seen=False), language)


@pytest.mark.parametrize(
    ("language", "title", "not_title"),
    [
        (
            Language.ZH_CN,
            "【严重】宁波恒远港务物流有限公司（b-risky）纳入监控时已存在风险信息",
            "登记信息变更",
        ),
        (
            Language.EN,
            "[Critical] 宁波恒远港务物流有限公司 (b-risky): risk listings active at onboarding",
            "registry record changed",
        ),
    ],
)
def test_an_onboarding_alert_has_its_own_title(language, title, not_title) -> None:
    rendered = render_alert(view_of(IN_FORCE, kind=AlertKind.ONBOARDING), language)
    assert rendered.title == title
    assert not_title not in rendered.title
    assert not_title in render_alert(view_of(IN_FORCE), language).title


@pytest.fixture
def pipeline_alerts(tmp_path, sqlite_url) -> Iterator[tuple[AlertView, AlertView]]:
    """The onboarding alert and the change alert the real pipeline raised, as notifications read them."""
    deployment = Deployment(tmp_path, sqlite_url, "")
    try:
        onboarding, listing = onboard_and_list(deployment)
        with deployment.store.session() as session:
            yield (
                alert_view(session, onboarding.alert_id, window_days=365),
                alert_view(session, listing.alert_id, window_days=365),
            )
    finally:
        deployment.close()


@pytest.mark.parametrize(
    ("language", "onboarding_title", "against", "in_force", "preservation"),
    [
        (
            Language.ZH_CN,
            "纳入监控时已存在风险信息",
            f"（针对法定代表人 {LEGAL_REP}）",
            "首次核查时已存在",
            "申请财产保全",
        ),
        (
            Language.EN,
            "risk listings active at onboarding",
            f"(against the legal representative, {LEGAL_REP})",
            "already in force when first checked",
            "asset preservation",
        ),
    ],
)
def test_the_pipelines_listing_alerts_read_right(
    pipeline_alerts, language, onboarding_title, against, in_force, preservation
) -> None:
    onboarding, listing = pipeline_alerts
    assert onboarding.kind is AlertKind.ONBOARDING and listing.kind is AlertKind.CHANGE
    first = render_alert(onboarding, language)
    assert onboarding_title in first.title
    assert [line.startswith("- ") and in_force in line for line in first.body.splitlines()[:3]] == [True] * 3
    assert preservation in first.body, "listings in force at onboarding are grave: say what to do"
    second = render_alert(listing, language)
    assert onboarding_title not in second.title
    assert against in second.body and in_force not in second.body
    assert preservation in second.body, "a dishonest-debtor listing is critical"


@pytest.mark.parametrize("language", list(Language))
def test_hostile_listing_text_stays_text_in_html(pipeline_alerts, language) -> None:
    onboarding, _listing = pipeline_alerts
    stored = clean_text(EVIL_PLEDGEE)
    assert "<svg/onload" in stored
    body = render_alert(onboarding, language, BodyFormat.HTML).body
    reader = read_html(body)
    assert set(reader.tags) <= HTML_TEMPLATE_TAGS, reader.tags
    assert stored in collapsed("".join(reader.texts))
    evil = replace(LISTED, party_name=EVIL, after=EVIL)
    reader = read_html(render_alert(view_of(evil), language, BodyFormat.HTML).body)
    assert set(reader.tags) <= HTML_TEMPLATE_TAGS, reader.tags
    assert collapsed("".join(reader.texts)).count("<script>alert(1)</script>") == 2


@pytest.mark.parametrize("language", list(Language))
def test_hostile_listing_text_is_inert_in_markdown(pipeline_alerts, language) -> None:
    onboarding, _listing = pipeline_alerts
    body = render_alert(onboarding, language, BodyFormat.MARKDOWN).body
    assert "<svg" not in body and "**粗体**" not in body and "＊＊粗体＊＊" in body
    evil = replace(LISTED, party_name=EVIL, after=EVIL)
    body = render_alert(view_of(evil), language, BodyFormat.MARKDOWN).body
    changes = [line for line in body.splitlines() if line.startswith("- ")]
    assert len(changes) == 1
    for forbidden in ("[", "](", "<", "|", "`"):
        assert forbidden not in changes[0], forbidden
    assert changes[0].count("＜script＞alert(1)＜/script＞") == 2, "the person's name and the listing"


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        (Language.ZH_CN, ("失信被执行人", "被执行人", "股权出质")),
        (Language.EN, ("Dishonest debtor", "Court enforcement", "Equity pledge")),
    ],
)
def test_digest_lines_name_the_new_categories(language, labels) -> None:
    views = [view_of(LISTED, LIFTED), view_of(IN_FORCE, kind=AlertKind.ONBOARDING)]
    body = render_digest(views, language, date(2026, 3, 17)).body
    first, second = body.splitlines()
    assert labels[0] in first and labels[1] in first
    assert labels[2] in second
    assert ("2 项变更" if language is Language.ZH_CN else "2 change(s)") in first


def test_companies_house_words_read_in_the_readers_language():
    """A charge is registered and satisfied (not listed and lifted); case types and flags are words."""
    from watcher.change_line import ChangeLine
    from watcher.record import Action, Category
    from watcher.risk_lines import listing_text

    def line(category: Category, action: Action, facts: str) -> ChangeLine:
        before, after = (facts, None) if action is Action.REMOVED else (None, facts)
        return ChangeLine(category, action, "k", before, after, None)

    def plain(text: str) -> str:
        return text

    satisfied = line(Category.CHARGE, Action.REMOVED, "SC6123450003 · Forth Valley Trade Finance Limited")
    assert listing_text(satisfied, Language.ZH_CN, plain).startswith(
        "抵押/押记登记 解除（已清偿）: SC6123450003"
    )
    assert listing_text(satisfied, Language.EN, plain).startswith("Charge satisfied: SC6123450003")
    case = line(Category.BANKRUPTCY, Action.ADDED, "1 · creditors-voluntary-liquidation · Alasdair Munro")
    assert "1 · 债权人自愿清算（creditors-voluntary-liquidation） · Alasdair Munro" in listing_text(
        case, Language.ZH_CN, plain
    )
    assert "1 · creditors' voluntary liquidation · Alasdair Munro" in listing_text(case, Language.EN, plain)
    overdue = line(Category.FILING_OVERDUE, Action.ADDED, "accounts overdue · 2026-09-30")
    assert listing_text(overdue, Language.ZH_CN, plain) == "逾期申报 列入: 年度账目逾期 · 2026-09-30"
