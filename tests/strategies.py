"""Hypothesis strategies for canonical registry records, and formatting noise over them.

Records are built the way sources build them: person keys through ``normalize.person_key``, roles
through ``normalize.roles_from_title`` (or picked from ``Role``), stakes through ``parse_stake`` and
amounts through ``parse_amount`` from realistic spellings. Every section is independently unknown
(None) or present. Keys are unique within a section (the core merges duplicates; generating unique
keys keeps "planted change" tests exact).

``formatting_noise(record)`` draws a record that says the same things in different formatting:
shuffled lists, full-width ASCII, extra / odd whitespace (inside CJK names, at the ends), Chinese
brackets, case changes, decomposed accents, and stakes / amounts spelt differently.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import strategies as st

from watcher.normalize import classify_change_item, parse_amount, parse_stake, person_key, roles_from_title
from watcher.record import (
    Category,
    ChangeLogEntry,
    CompanyStatus,
    Controller,
    HolderKind,
    Money,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
    Status,
)

# -- names --------------------------------------------------------------------------------------

CJK_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
CJK_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂建国华文志红英玉兰春海鹏飞宇婷雪晨"
LATIN_FIRST = (
    "John",
    "Mary",
    "Ole",
    "Kari",
    "Jean",
    "Marie",
    "Anne",
    "Lars",
    "Émile",
    "Søren",
    "Åse",
    "Peter",
    "Ingrid",
    "Claire",
    "David",
    "Sarah",
    "Hélène",
    "Bjørn",
)
LATIN_LAST = (
    "Smith",
    "Hansen",
    "Dupont",
    "Olsen",
    "Martin",
    "Berg",
    "Øvergård",
    "Jones",
    "Müller",
    "Larsen",
    "Lefèvre",
    "Taylor",
    "Nilsen",
    "Brown",
    "Moreau",
    "Dahl",
)

CITIES = ("北京", "上海", "深圳", "杭州", "广州", "成都", "苏州", "武汉", "天津", "南京")
WORDS = ("星辰", "华信", "恒达", "远航", "金石", "中泰", "鼎盛", "瑞丰", "新元", "长城", "东方", "海天")
TRADES = ("科技", "贸易", "实业", "投资", "建设", "医药", "物流", "电子", "能源", "食品")
LATIN_WORDS = (
    "Acme",
    "Nordic",
    "Fjord",
    "Atlas",
    "Pioneer",
    "Blue",
    "Ocean",
    "Granite",
    "Solar",
    "Delta",
    "Polar",
    "Summit",
    "Harbor",
    "Crown",
)
LATIN_SUFFIXES = ("AS", "ASA", "Ltd", "Limited", "SAS", "SA", "Co Ltd", "Holdings AS", "Group Ltd")
STREETS = ("建国路", "人民路", "中山路", "解放大道", "科技园南路", "滨江大道", "长安街")
DISTRICTS = ("朝阳区", "浦东新区", "南山区", "西湖区", "天河区", "高新区")
LATIN_STREETS = (
    "Karl Johans gate",
    "Rue de Rivoli",
    "High Street",
    "Storgata",
    "Avenue Foch",
    "Bryggen",
    "Baker Street",
)
LATIN_TOWNS = ("0154 Oslo", "75001 Paris", "London EC1A 1BB", "5003 Bergen", "69002 Lyon")

cjk_person_names = st.builds(
    lambda surname, given: surname + "".join(given),
    st.sampled_from(CJK_SURNAMES),
    st.lists(st.sampled_from(CJK_GIVEN), min_size=1, max_size=2),
)
latin_person_names = st.builds(
    lambda first, middle, last: " ".join([first, *middle, last]),
    st.sampled_from(LATIN_FIRST),
    st.lists(st.sampled_from(LATIN_FIRST), max_size=1),
    st.sampled_from(LATIN_LAST),
)
person_names = st.one_of(cjk_person_names, latin_person_names)

cjk_company_names = st.builds(
    lambda city, word, trade, branch: (
        f"{word}{trade}({branch})有限公司" if branch else f"{city}{word}{trade}有限公司"
    ),
    st.sampled_from(CITIES),
    st.sampled_from(WORDS),
    st.sampled_from(TRADES),
    st.one_of(st.none(), st.sampled_from(CITIES)),
)
latin_company_names = st.builds(
    lambda words, suffix, branch: " ".join(words) + (f" ({branch})" if branch else "") + f" {suffix}",
    st.lists(st.sampled_from(LATIN_WORDS), min_size=1, max_size=3),
    st.sampled_from(LATIN_SUFFIXES),
    st.one_of(st.none(), st.sampled_from(("Beijing", "Norway", "Europe", "UK"))),
)
company_names = st.one_of(cjk_company_names, latin_company_names)

addresses = st.one_of(
    st.builds(
        lambda city, district, street, number, room: f"{city}市{district}{street}{number}号{room}",
        st.sampled_from(CITIES),
        st.sampled_from(DISTRICTS),
        st.sampled_from(STREETS),
        st.integers(1, 999),
        st.sampled_from(("", "3层301室", "A座12层", "(园区)1号楼")),
    ),
    st.builds(
        lambda street, number, town: f"{street} {number}, {town}",
        st.sampled_from(LATIN_STREETS),
        st.integers(1, 200),
        st.sampled_from(LATIN_TOWNS),
    ),
)

registry_ids = st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXYabcdef", min_size=4, max_size=12)
births = st.one_of(
    st.dates(date(1940, 1, 1), date(2002, 12, 31)).map(date.isoformat),
    st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(1940, 2002), st.integers(1, 12)),
)


@st.composite
def identity_keys(draw, name: str) -> str:
    """A key the way sources make one: registry id, else name + birth, else the bare name."""
    how = draw(st.sampled_from(("id", "birth", "name")))
    if how == "id":
        return person_key(name, registry_id=draw(registry_ids))
    if how == "birth":
        return person_key(name, birth=draw(births))
    return person_key(name)


# -- roles --------------------------------------------------------------------------------------

TITLES = (
    "执行董事兼总经理",
    "董事长",
    "董事长兼总经理",
    "董事",
    "执行董事",
    "监事",
    "监事会主席",
    "财务负责人",
    "总经理",
    "经理",
    "副总经理",
    "董事会秘书",
    "Director",
    "Secretary",
    "Chairman",
    "Director and Secretary",
    "Managing Director",
    "CFO",
    "Auditor",
    "Member",
)
KEY_ROLES = (Role.CHAIR, Role.DIRECTOR, Role.FINANCE_HEAD, Role.PARTNER)

role_sets = st.frozensets(
    st.sampled_from([role for role in Role if role is not Role.LEGAL_REPRESENTATIVE]),
    min_size=1,
    max_size=3,
)


@st.composite
def role_choices(draw) -> tuple[frozenset[Role], str]:
    """(roles, role_text): parsed from a title, or picked from ``Role`` with no title."""
    if draw(st.booleans()):
        title = draw(st.sampled_from(TITLES))
        return roles_from_title(title), title
    return draw(role_sets), ""


# -- people, holders, controllers -----------------------------------------------------------------


@st.composite
def persons(draw, roles: frozenset[Role] | None = None, name: str | None = None) -> Person:
    name = draw(person_names) if name is None else name
    if roles is None:
        roles, role_text = draw(role_choices())
    else:
        role_text = ""
    return Person(
        name=name,
        key=draw(identity_keys(name)),
        roles=roles,
        role_text=role_text,
        appointed_on=draw(st.one_of(st.none(), st.dates(date(1995, 1, 1), date(2024, 12, 31)))),
    )


SIGNING_TITLES = (
    "Signatur",
    "Signatur i fellesskap",
    "Signatur hver for seg",
    "Prokura",
    "Prokura i fellesskap",
    "Prokura hver for seg",
)


def signatories() -> st.SearchStrategy[Person]:
    """Signature and procuration holders as Brønnøysund's mapping makes them."""
    return st.builds(
        lambda person, title: replace(person, role_text=title),
        persons(roles=frozenset({Role.OTHER})),
        st.sampled_from(SIGNING_TITLES),
    )


def legal_representatives() -> st.SearchStrategy[Person]:
    return persons(roles=frozenset({Role.LEGAL_REPRESENTATIVE}))


def finance_heads() -> st.SearchStrategy[Person]:
    return st.builds(
        lambda person: replace(person, role_text="财务负责人"),
        persons(roles=frozenset({Role.FINANCE_HEAD})),
    )


PERCENT = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)
BANDS = ((25, 50), (50, 75), (75, 100), (Decimal("0"), Decimal("25")))


def stake_spellings(stake: Stake) -> list[object]:
    """Different spellings of one stake, all of which ``parse_stake`` must read as ``stake``."""
    low, high = stake.low, stake.high
    if low == high:
        plain = _plain(low)
        spellings: list[object] = [f"{plain}%", f"{low:.2f}%", f"{plain} %", f"{low:.4f}%"]
        fraction = low / 100
        spellings += [_plain(fraction), float(fraction), Decimal(_plain(fraction))]
        if low > 1:
            spellings += [plain, f"{low:.2f}"]
        return spellings
    lo, hi = _plain(low), _plain(high)
    return [
        f"{lo}-{hi}%",
        f"{lo}%-{hi}%",
        f"{lo}–{hi}%",
        f"{lo} ~ {hi}%",
        f"{lo} to {hi}%",
        f"{low:.2f}-{high:.2f}%",
    ]


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@st.composite
def stakes(draw) -> Stake | None:
    if draw(st.booleans()):
        percent = draw(PERCENT)
        base = Stake(percent, percent)
    else:
        low, high = draw(st.sampled_from(BANDS))
        base = Stake(Decimal(low), Decimal(high))
    stake = parse_stake(draw(st.sampled_from(stake_spellings(base))))
    assert stake is not None
    return stake


AMOUNT_SPELLINGS: dict[str | None, tuple[str, ...]] = {
    "CNY": (
        "{n}元人民币",
        "人民币{n}元",
        "{w}万元人民币",
        "{w}万元",
        "{y}亿元",
        "RMB {c}",
        "CNY {n}",
        "{n}元",
        "{c}元人民币",
        "人民币{w}万元",
    ),
    "USD": ("{n}美元", "{w}万美元", "USD {c}"),
    "EUR": ("{w}万欧元", "EUR {n}"),
    "HKD": ("{w}万港元", "{w}万港币"),
    "NOK": ("NOK {n}", "NOK {c}"),
    "GBP": ("GBP {c}",),
    None: ("{n}", "{c}"),
}


def amount_spellings(amount: Decimal, currency: str | None) -> list[str]:
    values = {
        "n": _plain(amount),
        "c": f"{amount:,}",
        "w": _plain(amount / 10_000),
        "y": _plain(amount / 100_000_000),
    }
    return [pattern.format(**values) for pattern in AMOUNT_SPELLINGS[currency]]


@st.composite
def moneys(draw) -> Money:
    if draw(st.integers(0, 9)) == 0:
        money = parse_amount(draw(st.sampled_from(("未公示", "不详", "see filing"))))
        assert money is not None
        return money
    currency = draw(st.sampled_from(list(AMOUNT_SPELLINGS)))
    if draw(st.booleans()):
        amount = Decimal(draw(st.integers(1, 200_000))) * 10_000  # whole 万, as registries state it
    else:
        amount = draw(st.decimals(min_value=1, max_value=10**10, places=2))
    money = parse_amount(draw(st.sampled_from(amount_spellings(amount, currency))))
    assert money is not None and money.amount == amount.quantize(Decimal("0.01")), (money, amount)
    return money


@st.composite
def shareholders(draw) -> Shareholder:
    if draw(st.booleans()):
        name, kind = draw(person_names), HolderKind.PERSON
    else:
        name, kind = draw(company_names), HolderKind.ENTITY
    return Shareholder(
        name=name,
        key=draw(identity_keys(name)),
        kind=kind,
        stake=draw(st.one_of(st.none(), stakes())),
        subscribed=draw(st.one_of(st.none(), moneys())),
    )


NATURES = (
    "ownership-of-shares-25-to-50-percent",
    "voting-rights-25-to-50-percent",
    "right-to-appoint-and-remove-directors",
    "实际控制人",
    "最终受益人",
    "Significant Influence",
)


@st.composite
def controllers(draw) -> Controller:
    if draw(st.integers(0, 3)):
        name, kind = draw(person_names), HolderKind.PERSON
    else:
        name, kind = draw(company_names), HolderKind.ENTITY
    return Controller(
        name=name,
        key=draw(identity_keys(name)),
        kind=kind,
        stake=draw(st.one_of(st.none(), stakes())),
        natures=draw(st.frozensets(st.sampled_from(NATURES), max_size=2)),
    )


STATUS_WORDING: dict[CompanyStatus, tuple[str, ...]] = {
    CompanyStatus.ACTIVE: ("存续", "在业", "存续(在营、开业、在册)", "Active", "Registered"),
    CompanyStatus.ABNORMAL: ("经营异常", "列入经营异常名录"),
    CompanyStatus.LIQUIDATION: ("清算", "Liquidation", "Under Liquidation"),
    CompanyStatus.BANKRUPT: ("破产", "Konkurs"),
    CompanyStatus.REVOKED: ("吊销", "吊销,未注销"),
    CompanyStatus.DEREGISTERED: ("注销", "Dissolved", "Slettet"),
    CompanyStatus.OTHER: ("迁出", "停业", "其他"),
}


def statuses(codes: st.SearchStrategy[CompanyStatus] | None = None) -> st.SearchStrategy[Status]:
    codes = st.sampled_from(list(CompanyStatus)) if codes is None else codes
    since = st.one_of(st.none(), st.dates(date(2015, 1, 1), date(2026, 6, 30)))
    return codes.flatmap(
        lambda code: st.builds(Status, st.just(code), st.sampled_from(STATUS_WORDING[code]), since)
    )


LOG_ITEMS = (
    "法定代表人变更",
    "投资人(股权)变更",
    "董事备案",
    "监事备案",
    "高级管理人员备案",
    "注册资本变更",
    "住所变更",
    "名称变更",
    "财务负责人备案",
    "经营范围变更",
)
LATIN_LOG_ITEMS = (
    ("Appointment of director", Category.DIRECTOR),
    ("Termination of appointment of secretary", Category.MANAGER),
    ("Change of registered office address", Category.ADDRESS),
    ("Notification of a person with significant control", Category.CONTROLLER),
)


@st.composite
def change_log_entries(draw) -> ChangeLogEntry:
    if draw(st.booleans()):
        item = draw(st.sampled_from(LOG_ITEMS))
        categories = classify_change_item(item)
        before, after = draw(person_names), draw(person_names)
    else:
        item, category = draw(st.sampled_from(LATIN_LOG_ITEMS))
        categories = frozenset({category})
        before, after = "", draw(st.one_of(latin_person_names, addresses))
    return ChangeLogEntry(
        categories=categories,
        item=item,
        before=before,
        after=after,
        date=draw(st.one_of(st.none(), st.dates(date(2015, 1, 1), date(2025, 6, 30)))),
    )


def unique_list(elements: st.SearchStrategy, max_size: int) -> st.SearchStrategy[tuple]:
    from watcher.normalize import text_key

    return st.lists(elements, max_size=max_size, unique_by=lambda item: text_key(item.key)).map(tuple)


def _maybe(strategy: st.SearchStrategy, present: bool) -> st.SearchStrategy:
    return strategy if present else st.one_of(st.none(), strategy)


SOURCES = ("qichacha", "tianyancha", "brreg", "companies_house", "fr_recherche", "replay")


@st.composite
def registry_records(draw, all_present: bool = False, max_items: int = 6) -> RegistryRecord:
    """A realistic record; each section independently None (unknown) unless ``all_present``.

    ``max_items`` caps the people list; holders, controllers and log rows are capped a little lower.
    """
    return RegistryRecord(
        source=draw(st.sampled_from(SOURCES)),
        registry_id=draw(registry_ids),
        name=draw(_maybe(company_names, all_present)),
        status=draw(_maybe(statuses(), all_present)),
        registered_capital=draw(_maybe(moneys(), all_present)),
        address=draw(_maybe(addresses, all_present)),
        legal_representative=draw(_maybe(legal_representatives(), all_present)),
        people=draw(_maybe(unique_list(persons(), max_items), all_present)),
        shareholders=draw(_maybe(unique_list(shareholders(), max(max_items - 1, 0)), all_present)),
        controllers=draw(_maybe(unique_list(controllers(), min(max_items, 3)), all_present)),
        finance_head=draw(_maybe(finance_heads(), all_present)),
        change_log=draw(
            _maybe(st.lists(change_log_entries(), max_size=min(max_items, 4)).map(tuple), all_present)
        ),
        signing_authority=draw(_maybe(unique_list(signatories(), min(max_items, 3)), all_present)),
    )


# -- formatting noise -----------------------------------------------------------------------------

_FULL_WIDTH_OFFSET = 0xFEE0
_SPACES = (" ", "  ", "\u3000", "\u00a0", "\t", " \u3000 ")
_OPEN = ("(", "（", "【", "〔", "〖", "［", "[")
_CLOSE = (")", "）", "】", "〕", "〗", "］", "]")


def _cjk_or_bracket(char: str) -> bool:
    return (
        "\u3000" <= char <= "\u303f"
        or "\u3400" <= char <= "\u4dbf"
        or "\u4e00" <= char <= "\u9fff"
        or "\uf900" <= char <= "\ufaff"
        or char in "()"
    )


def noisy_text(text: str, rnd: random.Random, *, case: bool = True) -> str:
    """The same text as a different registry (or the same one on another day) might format it.

    Never inserts whitespace between two Latin characters: that would change the words.
    """
    if rnd.random() < 0.2:
        text = unicodedata.normalize("NFD", text)
    if case:
        text = rnd.choice((str, str.upper, str.lower, str.swapcase, str.title))(text)
    out: list[str] = []
    for index, char in enumerate(text):
        previous = text[index - 1] if index else ""
        if (_cjk_or_bracket(char) or (previous and _cjk_or_bracket(previous))) and rnd.random() < 0.3:
            out.append(rnd.choice(_SPACES))
        if char == " ":
            out.append(rnd.choice(_SPACES))
        elif char == "(":
            out.append(rnd.choice(_OPEN))
        elif char == ")":
            out.append(rnd.choice(_CLOSE))
        elif "!" <= char <= "~" and rnd.random() < 0.4:
            out.append(chr(ord(char) + _FULL_WIDTH_OFFSET))
        else:
            out.append(char)
    result = "".join(out)
    if rnd.random() < 0.3:
        result = rnd.choice(_SPACES) + result
    if rnd.random() < 0.3:
        result = result + rnd.choice(_SPACES)
    return result


def _noisy_key(key: str, name: str, noisy_name: str, rnd: random.Random) -> str:
    """Rebuild the key from the re-formatted inputs, the way the source would."""
    prefix, _, rest = key.partition(":")
    if prefix == "id":
        return person_key(noisy_name, registry_id=noisy_text(rest, rnd))
    if prefix == "nb" and key == person_key(name, birth=rest.rpartition("|")[2]):
        return person_key(noisy_name, birth=noisy_text(rest.rpartition("|")[2], rnd))
    if prefix == "n" and key == person_key(name):
        return person_key(noisy_name)
    return noisy_text(key, rnd)


def _noisy_roles(roles: frozenset[Role], role_text: str, noisy_title: str) -> frozenset[Role]:
    if role_text and roles == roles_from_title(role_text):
        return roles_from_title(noisy_title)  # the source parses the title it sees
    return roles


def _noisy_person(person: Person | None, rnd: random.Random) -> Person | None:
    if person is None:
        return None
    name = noisy_text(person.name, rnd)
    title = noisy_text(person.role_text, rnd) if person.role_text else person.role_text
    return replace(
        person,
        name=name,
        key=_noisy_key(person.key, person.name, name, rnd),
        roles=_noisy_roles(person.roles, person.role_text, title),
        role_text=title,
    )


def _noisy_stake(stake: Stake | None, rnd: random.Random) -> Stake | None:
    if stake is None:
        return None
    spelling = rnd.choice(stake_spellings(stake))
    if isinstance(spelling, str):
        spelling = noisy_text(spelling, rnd, case=False)
    noisy = parse_stake(spelling)
    assert noisy == stake, (spelling, noisy, stake)
    return noisy


def _noisy_money(money: Money | None, rnd: random.Random) -> Money | None:
    if money is None:
        return None
    if money.amount is None or money.currency not in AMOUNT_SPELLINGS:
        return Money(money.amount, money.currency, noisy_text(money.raw, rnd))
    spelling = noisy_text(rnd.choice(amount_spellings(money.amount, money.currency)), rnd, case=False)
    noisy = parse_amount(spelling)
    assert noisy is not None and (noisy.amount, noisy.currency) == (money.amount, money.currency), (
        spelling,
        noisy,
        money,
    )
    return noisy


def shuffled(items: tuple | None, rnd: random.Random) -> tuple | None:
    if items is None:
        return None
    items = list(items)
    rnd.shuffle(items)
    return tuple(items)


def _maybe_text(text: str | None, rnd: random.Random) -> str | None:
    return None if text is None else noisy_text(text, rnd)


def apply_noise(record: RegistryRecord, rnd: random.Random) -> RegistryRecord:
    """``record`` re-formatted by ``rnd``: same facts, different text, order and spellings."""

    def holder(h: Shareholder) -> Shareholder:
        name = noisy_text(h.name, rnd)
        return replace(
            h,
            name=name,
            key=_noisy_key(h.key, h.name, name, rnd),
            stake=_noisy_stake(h.stake, rnd),
            subscribed=_noisy_money(h.subscribed, rnd),
        )

    def controller(c: Controller) -> Controller:
        name = noisy_text(c.name, rnd)
        return replace(
            c,
            name=name,
            key=_noisy_key(c.key, c.name, name, rnd),
            stake=_noisy_stake(c.stake, rnd),
            natures=frozenset(noisy_text(n, rnd) for n in sorted(c.natures)),
        )

    def log(entry: ChangeLogEntry) -> ChangeLogEntry:
        return replace(
            entry,
            item=noisy_text(entry.item, rnd),
            before=noisy_text(entry.before, rnd),
            after=noisy_text(entry.after, rnd),
        )

    def many(items, convert):
        return None if items is None else shuffled(tuple(convert(item) for item in items), rnd)

    return replace(
        record,
        registry_id=noisy_text(record.registry_id, rnd, case=False),
        name=_maybe_text(record.name, rnd),
        status=None
        if record.status is None
        else Status(record.status.code, noisy_text(record.status.raw, rnd), record.status.since),
        registered_capital=_noisy_money(record.registered_capital, rnd),
        address=_maybe_text(record.address, rnd),
        legal_representative=_noisy_person(record.legal_representative, rnd),
        people=many(record.people, lambda p: _noisy_person(p, rnd)),
        shareholders=many(record.shareholders, holder),
        controllers=many(record.controllers, controller),
        finance_head=_noisy_person(record.finance_head, rnd),
        change_log=many(record.change_log, log),
        signing_authority=many(record.signing_authority, lambda p: _noisy_person(p, rnd)),
    )


@st.composite
def formatting_noise(draw, record: RegistryRecord) -> RegistryRecord:
    """A record equivalent to ``record`` that differs only in formatting."""
    return apply_noise(record, draw(st.randoms(use_true_random=False)))
