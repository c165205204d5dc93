"""How change lines read: statuses and role titles of every source in zh-CN and en, one line per
person and occasion, the subject said once, and grouping that never loses or invents a change."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.change_line import ChangeLine
from watcher.diff import diff
from watcher.labels import FOREIGN_TITLES, signatory_text, status_label, titles_label
from watcher.presentation import (
    change_severity,
    display_lines,
    group_changes,
    subject_label,
    value_label,
)
from watcher.record import (
    Action,
    Category,
    CompanyStatus,
    HolderKind,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
    Status,
)
from watcher.render import AlertView, render_alert
from watcher.vocabulary import Language, Severity

ZH, EN = Language.ZH_CN, Language.EN
FEB26, JAN9 = date(2026, 2, 26), date(2026, 1, 9)


def texts(changes, language):
    return [line.text for line in display_lines(changes, language)]


# -- statuses -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "zh", "en"),
    [
        # Brønnøysund, as stored before and after its raw wording became the register's own term
        ("Aktiv: no deletion, bankruptcy or liquidation flag (active)", "存续（Aktiv）", "active (Aktiv)"),
        ("Konkurs (bankrupt)", "破产（Konkurs）", "bankrupt (Konkurs)"),
        ("Under avvikling (liquidation)", "清算（Under avvikling）", "in liquidation (Under avvikling)"),
        # Companies House: the code is the label in English
        ("active (active)", "存续（active）", "active"),
        ("dissolved (deregistered)", "注销（dissolved）", "deregistered (dissolved)"),
        # Recherche d'entreprises
        (
            "C (cessée le 2025-06-30) (deregistered)",
            "注销（C (cessée le 2025-06-30)）",
            "deregistered (C [cessée le 2025-06-30])",
        ),
        # Chinese vendors: the vendor's words already say it in Chinese
        (
            "存续（在营、开业、在册） (active)",
            "存续（在营、开业、在册）",
            "active (存续（在营、开业、在册）)",
        ),
        ("吊销 (revoked)", "吊销", "revoked (吊销)"),
        ("迁出 (other)", "迁出", "迁出"),
        ("deregistered", "注销", "deregistered"),
        ("存续", "存续", "存续"),  # not in diff's shape: shown as it is
    ],
)
def test_statuses_read_in_the_readers_language_with_the_registrys_term(stored, zh, en):
    assert status_label(stored, ZH) == zh
    assert status_label(stored, EN) == en


def test_the_status_change_of_the_issue_reads_in_chinese_and_english():
    change = ChangeLine(
        Category.STATUS,
        Action.CHANGED,
        "status",
        "Aktiv: no deletion, bankruptcy or liquidation flag (active)",
        "Konkurs: bankrupt (bankrupt)",
        None,
    )
    assert texts([change], ZH) == ["登记状态 存续（Aktiv） → 破产（Konkurs）"]
    assert texts([change], EN) == ["Status active (Aktiv) → bankrupt (Konkurs)"]
    assert display_lines([change], ZH)[0].severity is Severity.CRITICAL


def test_a_status_diff_from_brreg_records_reads_with_labels():
    old = RegistryRecord(source="brreg", registry_id="1", status=Status(CompanyStatus.ACTIVE, "Aktiv"))
    new = RegistryRecord(source="brreg", registry_id="1", status=Status(CompanyStatus.BANKRUPT, "Konkurs"))
    [change] = diff(old, new)
    line = ChangeLine(change.category, change.action, change.subject, change.before, change.after, None)
    assert texts([line], ZH) == ["登记状态 存续（Aktiv） → 破产（Konkurs）"]


# -- role titles of every source ---------------------------------------------------------------------

ROLE_TITLES = [
    # Brønnøysund rolletype descriptions
    ("Daglig leder", "总经理（Daglig leder）", "general manager (Daglig leder)"),
    (
        "Daglig leder/ adm.direktør",
        "总经理（Daglig leder/ adm.direktør）",
        "general manager (Daglig leder/ adm.direktør)",
    ),
    ("Styrets leder", "董事长（Styrets leder）", "chair (Styrets leder)"),
    ("Styremedlem", "董事（Styremedlem）", "director (Styremedlem)"),
    ("Varamedlem", "候补董事（Varamedlem）", "deputy director (Varamedlem)"),
    ("Nestleder", "副董事长（Nestleder）", "deputy chair (Nestleder)"),
    ("Revisor", "审计师（Revisor）", "auditor (Revisor)"),
    ("Regnskapsfører", "会计（Regnskapsfører）", "accountant (Regnskapsfører)"),
    # Companies House officer_role values
    ("director", "董事", "director"),
    ("corporate-director", "法人董事", "corporate director"),
    ("secretary", "公司秘书", "secretary"),
    ("llp-designated-member", "有限责任合伙指定成员", "LLP designated member"),
    # Recherche d'entreprises qualité
    ("Président de SAS", "总裁（Président de SAS）", "president (Président de SAS)"),
    ("Directeur Général", "总经理（Directeur Général）", "chief executive (Directeur Général)"),
    (
        "Commissaire aux comptes titulaire",
        "审计师（Commissaire aux comptes titulaire）",
        "statutory auditor (Commissaire aux comptes titulaire)",
    ),
    ("Gérant", "经理（Gérant）", "managing director (Gérant)"),
    # Chinese titles: the registry's word is the reader's in Chinese
    ("执行董事兼总经理", "执行董事、总经理", "executive director, general manager"),
    ("董事长", "董事长", "chair"),
    ("监事", "监事", "supervisor"),
    ("财务负责人", "财务负责人", "finance head"),
    ("执行事务合伙人", "执行事务合伙人", "executive partner"),
]


@pytest.mark.parametrize(("title", "zh", "en"), ROLE_TITLES)
def test_role_titles_of_every_source_read_in_both_languages(title, zh, en):
    assert titles_label(title, ZH) == zh
    assert titles_label(title, EN) == en


def test_unknown_titles_fall_back_to_the_canonical_role_with_the_registrys_word():
    assert titles_label("Chief Executive Officer", ZH) == "经理（Chief Executive Officer）"
    assert titles_label("首席技术官", ZH) == "首席技术官"
    assert titles_label("首席技术官", EN) == "other role (首席技术官)"


def test_merged_titles_of_one_person_are_each_labelled_once():
    assert (
        titles_label("Daglig leder / Styremedlem", EN)
        == "general manager (Daglig leder), director (Styremedlem)"
    )
    assert titles_label("董事 / 董事", ZH) == "董事"


# -- the Chinese sample of the issue -----------------------------------------------------------------


def qichacha_planted() -> list[ChangeLine]:
    """What tests/test_pipeline.py plants from Qichacha's t0/t1 fixtures, as stored."""
    return [
        ChangeLine(
            Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "legal representative", "王建国", "李娜", FEB26
        ),
        ChangeLine(Category.DIRECTOR, Action.ADDED, "李娜", None, "李娜 (执行董事兼总经理)", FEB26),
        ChangeLine(Category.DIRECTOR, Action.REMOVED, "王建国", "王建国 (执行董事兼总经理)", None, FEB26),
        ChangeLine(Category.MANAGER, Action.ADDED, "李娜", None, "李娜 (执行董事兼总经理)", FEB26),
        ChangeLine(Category.MANAGER, Action.REMOVED, "王建国", "王建国 (执行董事兼总经理)", None, FEB26),
        ChangeLine(
            Category.SHAREHOLDER,
            Action.CHANGED,
            "上海临港澜启科技有限公司",
            "上海临港澜启科技有限公司 40% 20,000,000 CNY",
            "上海临港澜启科技有限公司 55% 20,000,000 CNY",
            JAN9,
        ),
        ChangeLine(Category.FINANCE_HEAD, Action.CHANGED, "财务负责人备案", "赵磊", "周明", FEB26),
    ]


def test_one_legal_representative_change_is_one_line_not_five():
    changes = qichacha_planted()
    assert texts(changes, ZH) == [
        "法定代表人 王建国 → 李娜（兼执行董事、总经理）（生效日期 2026-02-26）",
        "股东 上海临港澜启科技有限公司 持股 40% → 55%（生效日期 2026-01-09）",
        "财务负责人 赵磊 → 周明（生效日期 2026-02-26）",
    ]
    assert texts(changes, EN) == [
        "Legal representative 王建国 → 李娜 (also executive director, general manager)"
        " (effective 2026-02-26)",
        "Shareholder 上海临港澜启科技有限公司 stake 40% → 55% (effective 2026-01-09)",
        "Finance head 赵磊 → 周明 (effective 2026-02-26)",
    ]
    assert display_lines(changes, ZH)[0].parts == (0, 1, 2, 3, 4)


def test_the_former_representatives_other_seats_are_named_when_they_differ():
    changes = [
        ChangeLine(
            Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "legal representative", "黄艳", "赵敏", None
        ),
        ChangeLine(Category.DIRECTOR, Action.REMOVED, "黄艳", "黄艳 (董事长)", None, None),
        ChangeLine(Category.DIRECTOR, Action.ADDED, "赵敏", None, "赵敏 (执行董事兼总经理)", None),
        ChangeLine(Category.MANAGER, Action.ADDED, "赵敏", None, "赵敏 (执行董事兼总经理)", None),
    ]
    assert texts(changes, ZH) == ["法定代表人 黄艳 → 赵敏（兼执行董事、总经理；黄艳 原兼董事长）"]


def test_the_new_representatives_former_seat_and_the_former_ones_new_seat_join_the_line():
    """陈丽 leaves the supervisory seat to become legal representative; 李娜 stays on as director:
    one person's changes at one occasion are one line (issue 14 follow-up, point 8)."""
    changes = [
        ChangeLine(
            Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "legal representative", "李娜", "陈丽", FEB26
        ),
        ChangeLine(Category.DIRECTOR, Action.ADDED, "陈丽", None, "陈丽 (执行董事)", FEB26),
        ChangeLine(Category.MANAGER, Action.ADDED, "陈丽", None, "陈丽 (总经理)", FEB26),
        ChangeLine(Category.SUPERVISOR, Action.REMOVED, "陈丽", "陈丽 (监事)", None, FEB26),
        ChangeLine(Category.DIRECTOR, Action.ADDED, "李娜", None, "李娜 (董事)", FEB26),
        ChangeLine(Category.SUPERVISOR, Action.REMOVED, "赵敏", "赵敏 (监事)", None, FEB26),
    ]
    assert texts(changes, ZH) == [
        "法定代表人 李娜 → 陈丽（兼执行董事、总经理；原任监事；李娜 现任董事）（生效日期 2026-02-26）",
        "监事 退出 赵敏（生效日期 2026-02-26）",
    ]
    assert texts(changes, EN) == [
        "Legal representative 李娜 → 陈丽 (also executive director, general manager; formerly supervisor;"
        " 李娜 now director) (effective 2026-02-26)",
        "Supervisor removed: 赵敏 (effective 2026-02-26)",
    ]
    assert [line.parts for line in display_lines(changes, ZH)] == [(0, 1, 2, 3, 4), (5,)]
    a_day_later = [
        *changes[:3],
        ChangeLine(Category.SUPERVISOR, Action.REMOVED, "陈丽", "陈丽 (监事)", None, JAN9),
    ]
    assert len(texts(a_day_later, ZH)) == 2  # another occasion is another line


def test_a_retitled_person_reads_in_the_readers_words_in_the_history_table():
    """`watcher history` "changed" rows: "Styrets leder → Styremedlem" in labels (point 3)."""
    retitled = ChangeLine(
        Category.DIRECTOR, Action.CHANGED, "Kristin Aas", "Styrets leder", "Styremedlem", None
    )
    assert value_label(retitled, retitled.before, ZH) == "董事长（Styrets leder）"
    assert value_label(retitled, retitled.after, ZH) == "董事（Styremedlem）"
    assert value_label(retitled, retitled.before, EN) == "chair (Styrets leder)"
    assert value_label(retitled, retitled.after, EN) == "director (Styremedlem)"
    free_text = ChangeLine(Category.DIRECTOR, Action.CHANGED, "董事备案", "张三、李四", "张三、王五", None)
    assert value_label(free_text, free_text.after, EN) == "张三、王五"  # not titles: as it is


def test_a_change_log_item_about_a_field_reads_as_the_fields_label():
    logged = ChangeLine(Category.FINANCE_HEAD, Action.CHANGED, "财务负责人备案", "赵磊", "周明", FEB26)
    assert subject_label(logged, EN) == "Finance head" and subject_label(logged, ZH) == "财务负责人"
    holder = ChangeLine(Category.SHAREHOLDER, Action.CHANGED, "李娜", "李娜 15%", "李娜 30%", None)
    assert subject_label(holder, EN) == "李娜"


def test_every_category_label_is_unique_in_each_language():
    """实际控制人 once: a person with significant control (PSC) is not the actual controller (point 7)."""
    from watcher.console.i18n import SECTION_LABEL
    from watcher.labels import CATEGORY_LABEL

    for language in Language:
        for labels in (CATEGORY_LABEL[language], SECTION_LABEL[language]):
            assert len(set(labels.values())) == len(labels), language
            assert set(labels) <= set(Category)
        assert set(CATEGORY_LABEL[language]) == set(Category)
    assert CATEGORY_LABEL[ZH][Category.CONTROLLER] != CATEGORY_LABEL[ZH][Category.ACTUAL_CONTROLLER]


def test_subscribed_capital_is_shown_only_when_it_changed_and_bands_read_as_ranges():
    holder = ChangeLine(
        Category.SHAREHOLDER,
        Action.CHANGED,
        "X 有限公司",
        "X 有限公司 40% 1,000 CNY",
        "X 有限公司 40% 2,000 CNY",
        None,
    )
    assert texts([holder], ZH) == ["股东 X 有限公司 认缴 1,000 CNY → 2,000 CNY"]
    band = ChangeLine(
        Category.CONTROLLER, Action.CHANGED, "JANE DOE", "JANE DOE 25–50%", "JANE DOE 50–75%", None
    )
    assert texts([band], EN) == ["Person with significant control JANE DOE stake 25–50% → 50–75%"]


def test_a_diff_of_real_records_reads_without_repeating_the_holder():
    def holder(percent: str) -> RegistryRecord:
        stake = Stake(Decimal(percent), Decimal(percent))
        item = Shareholder(name="上海临港澜启科技有限公司", key="澜启", kind=HolderKind.ENTITY, stake=stake)
        return RegistryRecord(source="qcc", registry_id="1", shareholders=(item,))

    [change] = diff(holder("40"), holder("55"))
    line = ChangeLine(change.category, change.action, change.subject, change.before, change.after, None)
    [text] = texts([line], ZH)
    assert text == "股东 上海临港澜启科技有限公司 持股 40% → 55%"
    assert text.count("上海临港澜启科技有限公司") == 1
    assert value_label(line, line.after, ZH) == "持股 55%"


def test_brreg_people_read_with_labels_and_the_norwegian_title():
    """Brønnøysund's MEDL (Styremedlem) is a director, as sources/brreg.py maps it."""
    old = RegistryRecord(source="brreg", registry_id="1", people=())
    new = RegistryRecord(
        source="brreg",
        registry_id="1",
        people=(
            Person(
                name="Thomas Vik", key="thomas vik", roles=frozenset({Role.DIRECTOR}), role_text="Styremedlem"
            ),
        ),
    )
    lines = [ChangeLine(c.category, c.action, c.subject, c.before, c.after, None) for c in diff(old, new)]
    # The line says "director" already: the registry's own word is all the brackets add.
    assert texts(lines, ZH) == ["董事 新增 Thomas Vik（Styremedlem）"]
    assert texts(lines, EN) == ["Director added: Thomas Vik (Styremedlem)"]


def test_a_person_with_several_seats_is_one_line_added_and_one_removed():
    changes = [
        ChangeLine(
            Category.DIRECTOR,
            Action.ADDED,
            "Jean Dupont",
            None,
            "Jean Dupont (Président-directeur général)",
            None,
        ),
        ChangeLine(
            Category.MANAGER,
            Action.ADDED,
            "Jean Dupont",
            None,
            "Jean Dupont (Président-directeur général)",
            None,
        ),
        ChangeLine(Category.DIRECTOR, Action.REMOVED, "JOHN SMITH", "JOHN SMITH (director)", None, None),
        ChangeLine(
            Category.SUPERVISOR,
            Action.REMOVED,
            "JOHN SMITH",
            "JOHN SMITH (member-of-a-supervisory-organ)",
            None,
            None,
        ),
    ]
    assert texts(changes, EN) == [
        "Director, Manager added: Jean Dupont (chair and chief executive [Président-directeur général])",
        "Director, Supervisor removed: JOHN SMITH (member of a supervisory organ)",
    ]


def test_the_signatory_mismatch_names_both_people():
    assert signatory_text("Anders Vik", "Hanne Haugland", ZH) == "预留签字人 Anders Vik ≠ 登记 Hanne Haugland"
    assert (
        signatory_text("Anders Vik", "Hanne Haugland", EN)
        == "Signatory on file Anders Vik ≠ registry Hanne Haugland"
    )
    view = AlertView(
        alert_id=3,
        borrower_id="no-1",
        borrower_name="FJORDLYS AS",
        severity=Severity.WARNING,
        source="no",
        detected_at=datetime(2026, 3, 3),
        changes=(),
        occasions_in_window=0,
        window_days=365,
        recommend_early_repayment=False,
        signatory_mismatch="Hanne Haugland",
        legal_rep_on_file="Anders Vik",
    )
    assert "预留签字人 Anders Vik ≠ 登记 Hanne Haugland" in render_alert(view, ZH).body
    assert "Signatory on file Anders Vik ≠ registry Hanne Haugland" in render_alert(view, EN).body


# -- grouping properties ------------------------------------------------------------------------------

NAMES = ["王建国", "李娜", "黄艳", "赵敏", "Kari Nordmann", "JOHN SMITH"]
TITLES = ["执行董事兼总经理", "董事", "监事", "Styremedlem", "director", "Président"]
DAYS = [None, JAN9, FEB26]


@st.composite
def atomic_changes(draw: st.DrawFn) -> ChangeLine:
    category = draw(st.sampled_from(list(Category)))
    action = draw(st.sampled_from(list(Action)))
    day = draw(st.sampled_from(DAYS))
    name = draw(st.sampled_from(NAMES))
    if category is Category.LEGAL_REPRESENTATIVE and action is Action.CHANGED:
        return ChangeLine(category, action, "legal representative", name, draw(st.sampled_from(NAMES)), day)
    value = f"{name} ({draw(st.sampled_from(TITLES))})"
    before = value if action is not Action.ADDED else None
    after = value if action is not Action.REMOVED else None
    return ChangeLine(category, action, name, before, after, day)


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(atomic_changes(), max_size=12), language=st.sampled_from(list(Language)))
def test_grouping_never_loses_or_duplicates_a_change(changes, language):
    lines = display_lines(changes, language)
    parts = [index for line in lines for index in line.parts]
    assert sorted(parts) == list(range(len(changes)))
    assert group_changes(changes) == tuple(line.parts for line in lines)
    assert all(line.text and "\n" not in line.text for line in lines)


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(atomic_changes(), max_size=12), language=st.sampled_from(list(Language)))
def test_lines_of_distinct_people_never_merge_and_severity_is_the_max_of_the_parts(changes, language):
    for line in display_lines(changes, language):
        members = [changes[index] for index in line.parts]
        levels = [change_severity(member) for member in members]
        assert line.severity == max(levels, key=lambda level: level.rank)
        anchors = [m for m in members if m.category is Category.LEGAL_REPRESENTATIVE]
        if len(members) == 1:
            continue
        assert len(anchors) <= 1
        if anchors:
            anchor = anchors[0]
            for seat in members:
                if seat is anchor:
                    continue
                assert seat.subject in (anchor.before, anchor.after)  # either representative
                assert seat.category in (Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER)
                assert seat.effective_date in (None, anchor.effective_date) or anchor.effective_date is None
        else:
            assert len({m.subject for m in members}) == 1, "one line, one person"
            assert len({m.action for m in members}) == 1 and len({m.effective_date for m in members}) == 1


@pytest.mark.parametrize("language", [ZH, EN])
@given(
    title=st.sampled_from(sorted(FOREIGN_TITLES)),
    category=st.sampled_from([Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER]),
)
@settings(max_examples=60, deadline=None)
def test_a_registry_title_inside_a_bracket_never_doubles_the_brackets(language, title, category):
    """ "(also general manager [Daglig leder])", never "(also general manager (Daglig leder))"."""
    seat = ChangeLine(category, Action.ADDED, "Hanne Strand", None, f"Hanne Strand ({title})", None)
    legal = ChangeLine(
        Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "法定代表人", "Magnus Solheim", "Hanne Strand", None
    )
    for changes in ([seat], [legal, seat]):
        [line] = texts(changes, language)
        assert "))" not in line and "））" not in line, line
        assert line.count(title) == 1, line
