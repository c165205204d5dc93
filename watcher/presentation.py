"""How change lines read: labels in zh-CN and en, and the grouping of atomic changes into lines.

Pure. The history keeps one stored event per atomic change (the contract's columns, unchanged);
this module only decides how they read. The changes of one person at one occasion become one line
("法定代表人 黄艳 → 赵敏（兼执行董事、总经理）"), a line never repeats its subject inside its value,
stakes read "40% → 55%", statuses and role titles read in the reader's language with the registry's
own term in brackets where it adds something. Stored values are parsed in the shapes
:mod:`watcher.diff` writes them; a value of another shape (older data, a change-log row) is shown
as it is, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from watcher.normalize import roles_from_title, text_key
from watcher.record import CRITICAL_STATUSES, LISTING_CATEGORIES, Action, Category, CompanyStatus, Party, Role
from watcher.rules import LISTING_SEVERITY
from watcher.vocabulary import Language, Severity

Escape = Callable[[str], str]


def plain(text: str) -> str:
    """Text as it is, on one line (the escaper of plain-text bodies and terminals)."""
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One stored change event as the presentation reads it (one atomic change)."""

    category: Category
    action: Action
    subject: str
    before: str | None
    after: str | None
    effective_date: date | None
    party: Party | None = None
    party_name: str = ""
    first_seen: bool = False

    @classmethod
    def of(cls, stored: StoredChange) -> ChangeLine:
        """A stored change (a change event, a history row) with its strings read as vocabulary."""
        return cls(
            Category(stored.category),
            Action(stored.action),
            stored.subject,
            stored.before,
            stored.after,
            stored.effective_date,
            party=Party(stored.party) if stored.party else None,
            party_name=stored.party_name or "",
            first_seen=stored.first_seen,
        )


class StoredChange(Protocol):
    """What a stored change row offers: the change event's columns (the history row has the same)."""

    @property
    def category(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str | None: ...
    @property
    def effective_date(self) -> date | None: ...
    @property
    def party(self) -> str | None: ...
    @property
    def party_name(self) -> str | None: ...
    @property
    def first_seen(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class DisplayLine:
    """One line people read, and which atomic changes (indices into the input) it stands for."""

    text: str
    parts: tuple[int, ...]
    severity: Severity
    effective_date: date | None


CATEGORY_LABEL = {
    Language.ZH_CN: {
        Category.LEGAL_REPRESENTATIVE: "法定代表人",
        Category.SHAREHOLDER: "股东",
        Category.DIRECTOR: "董事",
        Category.SUPERVISOR: "监事",
        Category.MANAGER: "高级管理人员",
        Category.FINANCE_HEAD: "财务负责人",
        Category.CONTROLLER: "实际控制人",
        Category.NAME: "企业名称",
        Category.STATUS: "登记状态",
        Category.REGISTERED_CAPITAL: "注册资本",
        Category.ADDRESS: "住所",
        Category.ACTUAL_CONTROLLER: "实际控制人",
        Category.BENEFICIAL_OWNER: "受益所有人",
        Category.ABNORMAL_OPERATION: "经营异常",
        Category.SERIOUS_VIOLATION: "严重违法失信",
        Category.EQUITY_PLEDGE: "股权出质",
        Category.CHATTEL_MORTGAGE: "动产抵押",
        Category.ENFORCEMENT: "被执行人",
        Category.DISHONEST_DEBTOR: "失信被执行人",
        Category.CONSUMPTION_RESTRICTION: "限制高消费",
        Category.BANKRUPTCY: "破产重整",
    },
    Language.EN: {
        Category.LEGAL_REPRESENTATIVE: "Legal representative",
        Category.SHAREHOLDER: "Shareholder",
        Category.DIRECTOR: "Director",
        Category.SUPERVISOR: "Supervisor",
        Category.MANAGER: "Manager",
        Category.FINANCE_HEAD: "Finance head",
        Category.CONTROLLER: "Controller",
        Category.NAME: "Name",
        Category.STATUS: "Status",
        Category.REGISTERED_CAPITAL: "Registered capital",
        Category.ADDRESS: "Address",
        Category.ACTUAL_CONTROLLER: "Actual controller",
        Category.BENEFICIAL_OWNER: "Beneficial owner",
        Category.ABNORMAL_OPERATION: "Abnormal operations listing",
        Category.SERIOUS_VIOLATION: "Serious violation listing",
        Category.EQUITY_PLEDGE: "Equity pledge",
        Category.CHATTEL_MORTGAGE: "Chattel mortgage",
        Category.ENFORCEMENT: "Court enforcement",
        Category.DISHONEST_DEBTOR: "Dishonest debtor",
        Category.CONSUMPTION_RESTRICTION: "Consumption restriction",
        Category.BANKRUPTCY: "Bankruptcy / reorganisation",
    },
}

# Risk listings come into force, leave it, or change; people are added and removed.
LISTING_ACTION_LABEL = {
    Language.ZH_CN: {Action.ADDED: "列入", Action.REMOVED: "移出/解除", Action.CHANGED: "变更"},
    Language.EN: {Action.ADDED: "listed", Action.REMOVED: "removed/lifted", Action.CHANGED: "changed"},
}

ACTION_LABEL = {
    Language.ZH_CN: {Action.ADDED: "新增", Action.REMOVED: "退出", Action.CHANGED: "变更"},
    Language.EN: {Action.ADDED: "added", Action.REMOVED: "removed", Action.CHANGED: "changed"},
}

PARTY_LABEL = {
    Language.ZH_CN: {
        Party.COMPANY: "企业",
        Party.LEGAL_REPRESENTATIVE: "法定代表人",
        Party.ACTUAL_CONTROLLER: "实际控制人",
    },
    Language.EN: {
        Party.COMPANY: "the company",
        Party.LEGAL_REPRESENTATIVE: "legal representative",
        Party.ACTUAL_CONTROLLER: "actual controller",
    },
}

COMPANY_STATUS_LABEL = {
    Language.ZH_CN: {
        CompanyStatus.ACTIVE: "存续",
        CompanyStatus.ABNORMAL: "经营异常",
        CompanyStatus.LIQUIDATION: "清算",
        CompanyStatus.BANKRUPT: "破产",
        CompanyStatus.REVOKED: "吊销",
        CompanyStatus.DEREGISTERED: "注销",
        CompanyStatus.OTHER: "其他",
    },
    Language.EN: {
        CompanyStatus.ACTIVE: "active",
        CompanyStatus.ABNORMAL: "abnormal operation",
        CompanyStatus.LIQUIDATION: "in liquidation",
        CompanyStatus.BANKRUPT: "bankrupt",
        CompanyStatus.REVOKED: "revoked",
        CompanyStatus.DEREGISTERED: "deregistered",
        CompanyStatus.OTHER: "other",
    },
}

ROLE_LABEL = {
    Language.ZH_CN: {
        Role.LEGAL_REPRESENTATIVE: "法定代表人",
        Role.CHAIR: "董事长",
        Role.DIRECTOR: "董事",
        Role.SUPERVISOR: "监事",
        Role.MANAGER: "经理",
        Role.FINANCE_HEAD: "财务负责人",
        Role.SECRETARY: "秘书",
        Role.AUDITOR: "审计师",
        Role.ACCOUNTANT: "会计",
        Role.PARTNER: "合伙人",
        Role.OTHER: "其他职务",
    },
    Language.EN: {
        Role.LEGAL_REPRESENTATIVE: "legal representative",
        Role.CHAIR: "chair",
        Role.DIRECTOR: "director",
        Role.SUPERVISOR: "supervisor",
        Role.MANAGER: "manager",
        Role.FINANCE_HEAD: "finance head",
        Role.SECRETARY: "secretary",
        Role.AUDITOR: "auditor",
        Role.ACCOUNTANT: "accountant",
        Role.PARTNER: "partner",
        Role.OTHER: "other role",
    },
}

# Registry titles people know by name: (zh-CN, en). Chinese and Companies House titles are shown
# as the label alone; Norwegian and French ones keep the registry's word in brackets.
_CHINESE_TITLES: dict[str, tuple[str, str]] = {
    "法定代表人": ("法定代表人", "legal representative"),
    "执行董事": ("执行董事", "executive director"),
    "董事长": ("董事长", "chair"),
    "副董事长": ("副董事长", "vice chair"),
    "董事": ("董事", "director"),
    "独立董事": ("独立董事", "independent director"),
    "职工董事": ("职工董事", "employee director"),
    "监事": ("监事", "supervisor"),
    "监事会主席": ("监事会主席", "chair of the supervisory board"),
    "职工监事": ("职工监事", "employee supervisor"),
    "职工代表监事": ("职工代表监事", "employee supervisor"),
    "经理": ("经理", "manager"),
    "总经理": ("总经理", "general manager"),
    "副总经理": ("副总经理", "deputy general manager"),
    "总裁": ("总裁", "president"),
    "财务负责人": ("财务负责人", "finance head"),
    "财务总监": ("财务总监", "finance director"),
    "总会计师": ("总会计师", "chief accountant"),
    "董事会秘书": ("董事会秘书", "board secretary"),
    "执行事务合伙人": ("执行事务合伙人", "executive partner"),
    "合伙人": ("合伙人", "partner"),
    "负责人": ("负责人", "person in charge"),
    "厂长": ("厂长", "factory director"),
}
_COMPANIES_HOUSE_TITLES: dict[str, tuple[str, str]] = {
    "director": ("董事", "director"),
    "corporate-director": ("法人董事", "corporate director"),
    "nominee-director": ("代名董事", "nominee director"),
    "corporate-nominee-director": ("法人代名董事", "corporate nominee director"),
    "member-of-an-administrative-organ": ("管理机构成员", "member of an administrative organ"),
    "corporate-member-of-an-administrative-organ": (
        "法人管理机构成员",
        "corporate member of an administrative organ",
    ),
    "secretary": ("公司秘书", "secretary"),
    "corporate-secretary": ("法人公司秘书", "corporate secretary"),
    "nominee-secretary": ("代名公司秘书", "nominee secretary"),
    "corporate-nominee-secretary": ("法人代名公司秘书", "corporate nominee secretary"),
    "llp-member": ("有限责任合伙成员", "LLP member"),
    "llp-designated-member": ("有限责任合伙指定成员", "LLP designated member"),
    "corporate-llp-member": ("法人有限责任合伙成员", "corporate LLP member"),
    "corporate-llp-designated-member": ("法人有限责任合伙指定成员", "corporate LLP designated member"),
    "general-partner-in-a-limited-partnership": ("普通合伙人", "general partner"),
    "limited-partner-in-a-limited-partnership": ("有限合伙人", "limited partner"),
    "member-of-a-supervisory-organ": ("监督机构成员", "member of a supervisory organ"),
    "corporate-member-of-a-supervisory-organ": (
        "法人监督机构成员",
        "corporate member of a supervisory organ",
    ),
    "member-of-a-management-organ": ("管理层成员", "member of a management organ"),
    "corporate-member-of-a-management-organ": ("法人管理层成员", "corporate member of a management organ"),
    "manager-of-an-eeig": ("欧洲经济利益集团经理", "manager of an EEIG"),
    "corporate-manager-of-an-eeig": ("法人欧洲经济利益集团经理", "corporate manager of an EEIG"),
    "managing-officer": ("管理人员", "managing officer"),
    "corporate-managing-officer": ("法人管理人员", "corporate managing officer"),
    "cic-manager": ("社区利益公司经理", "CIC manager"),
    "receiver-and-manager": ("接管人", "receiver and manager"),
    "judicial-factor": ("司法管理人", "judicial factor"),
    "person-authorised-to-accept": ("授权接收人", "person authorised to accept"),
    "person-authorised-to-represent": ("授权代表", "person authorised to represent"),
    "person-authorised-to-represent-and-accept": (
        "授权代表及接收人",
        "person authorised to represent and accept",
    ),
}
_FOREIGN_TITLES: dict[str, tuple[str, str]] = {
    # Brønnøysund (rolletype beskrivelse)
    "daglig leder": ("总经理", "general manager"),
    "daglig leder/ adm.direktør": ("总经理", "general manager"),
    "daglig leder/adm.direktør": ("总经理", "general manager"),
    "innehaver": ("业主", "owner"),
    "styrets leder": ("董事长", "chair"),
    "nestleder": ("副董事长", "deputy chair"),
    "styremedlem": ("董事", "director"),
    "varamedlem": ("候补董事", "deputy director"),
    "observatør": ("列席观察员", "observer"),
    "revisor": ("审计师", "auditor"),
    "regnskapsfører": ("会计", "accountant"),
    "deltaker med proratarisk ansvar": ("按份责任合伙人", "partner with pro rata liability"),
    "deltaker med delt ansvar": ("按份责任合伙人", "partner with shared liability"),
    "deltaker med solidarisk ansvar": ("连带责任合伙人", "partner with joint liability"),
    "komplementar": ("普通合伙人", "general partner"),
    "signatur": ("签字权人", "signatory"),
    "prokura": ("经理权人", "procuration holder"),
    # Recherche d'entreprises / RNE (qualité)
    "président": ("总裁", "president"),
    "président de sas": ("总裁", "president"),
    "directeur général": ("总经理", "chief executive"),
    "directeur général délégué": ("副总经理", "deputy chief executive"),
    "président-directeur général": ("董事长兼总经理", "chair and chief executive"),
    "président du conseil d'administration": ("董事长", "chair of the board"),
    "administrateur": ("董事", "director"),
    "gérant": ("经理", "managing director"),
    "co-gérant": ("共同经理", "co-managing director"),
    "président du directoire": ("管理委员会主席", "chair of the management board"),
    "membre du directoire": ("管理委员会成员", "member of the management board"),
    "président du conseil de surveillance": ("监事会主席", "chair of the supervisory board"),
    "membre du conseil de surveillance": ("监事", "member of the supervisory board"),
    "vice-président": ("副董事长", "vice chair"),
    "commissaire aux comptes titulaire": ("审计师", "statutory auditor"),
    "commissaire aux comptes suppléant": ("候补审计师", "alternate statutory auditor"),
    "commissaire aux comptes": ("审计师", "statutory auditor"),
    "associé": ("股东", "partner"),
}

_TITLE_PARTS = re.compile(r"兼|、|,|;|，|；|&")
_CJK = re.compile(r"[\u3400-\u9fff]")
_STATUS_VALUE = re.compile(r"^(?P<raw>.*) \((?P<code>[a-z_]+)\)$", re.DOTALL)

_WORDS = {
    Language.ZH_CN: {
        "open": "（",
        "close": "）",
        "list": "、",
        "also": "兼",
        "formerly": "；{name} 原兼",
        "stake": "持股",
        "subscribed": "认缴",
        "natures": "控制方式",
        "detail_sep": "，",
        "none": "（无）",
        "effective": "生效日期",
        "against": "（针对{role} {name}）",
        "first_seen": "（首次核查时已存在）",
    },
    Language.EN: {
        "open": " (",
        "close": ")",
        "list": ", ",
        "also": "also ",
        "formerly": "; {name} was also ",
        "stake": "stake",
        "subscribed": "subscribed",
        "natures": "nature of control",
        "detail_sep": ", ",
        "none": "(none)",
        "effective": "effective",
        "against": " (against the {role}, {name})",
        "first_seen": " (already in force when first checked)",
    },
}


_INNER_BRACKETS = {
    Language.ZH_CN: str.maketrans({"（": "〔", "）": "〕"}),
    Language.EN: str.maketrans({"(": "[", ")": "]"}),
}


def _bracket(language: Language, text: str) -> str:
    """``text`` in the language's brackets; brackets inside it become the nested kind, so a title
    with its registry term reads "(also general manager [Daglig leder])", not "((…))"."""
    words = _WORDS[language]
    return f"{words['open']}{text.translate(_INNER_BRACKETS[language])}{words['close']}"


_SIGNATORY = {
    Language.ZH_CN: "预留签字人 {on_file} ≠ 登记 {registry}",
    Language.EN: "Signatory on file {on_file} ≠ registry {registry}",
}


def signatory_text(on_file: str | None, registry: str, language: Language, escape: Escape = plain) -> str:
    """Both names of a signatory mismatch: "预留签字人 Anders Vik ≠ 登记 Hanne Haugland"."""
    return _SIGNATORY[language].format(
        on_file=escape(on_file) if on_file else _WORDS[language]["none"], registry=escape(registry)
    )


# -- statuses and role titles -----------------------------------------------------------------------


def status_label(value: str, language: Language, escape: Escape = plain) -> str:
    """A stored status value ("Konkurs (bankrupt)") in the reader's words: "破产（Konkurs）".

    The registry's own term is kept in brackets unless it says no more than the label. A value in
    another shape is shown as it is.
    """
    match = _STATUS_VALUE.match(value)
    code_text, raw = (match["code"], match["raw"]) if match else (value, "")
    if code_text not in CompanyStatus.__members__.values():
        return escape(value)
    code = CompanyStatus(code_text)
    raw = raw.partition(": ")[0].strip()  # older Brønnøysund values: "Aktiv: no deletion … flag"
    label = COMPANY_STATUS_LABEL[language][code]
    if not raw or text_key(raw) == text_key(label):
        return label
    if code is CompanyStatus.OTHER:
        return escape(raw)
    if language == Language.ZH_CN and raw.startswith(label):
        return escape(raw)  # "存续（在营、开业、在册）" already names the status in Chinese
    return label + _bracket(language, escape(raw))


def status_code(value: str | None) -> CompanyStatus | None:
    """The normalised status a stored status value ends with, if it has one."""
    if not value:
        return None
    match = _STATUS_VALUE.match(value)
    code_text = match["code"] if match else value
    return CompanyStatus(code_text) if code_text in CompanyStatus.__members__.values() else None


def title_label(
    title: str, language: Language, escape: Escape = plain, *, named: frozenset[str] = frozenset()
) -> str:
    """One registry title in the reader's words ("Styremedlem" → "董事（Styremedlem）"). A label the
    line already says (``named``, e.g. its category "董事") is left out: only the registry's own term
    is kept, or nothing when it says no more."""
    key = " ".join(title.split()).casefold()
    index = 0 if language == Language.ZH_CN else 1
    if key in _CHINESE_TITLES:
        return _unless_named(_CHINESE_TITLES[key][index], named)
    if key in _COMPANIES_HOUSE_TITLES:
        return _unless_named(_COMPANIES_HOUSE_TITLES[key][index], named)
    if key in _FOREIGN_TITLES:
        label = _FOREIGN_TITLES[key][index]
        return escape(title) if label.casefold() in named else label + _bracket(language, escape(title))
    if language == Language.ZH_CN and _CJK.search(title):
        return escape(title)  # a Chinese title the table does not know is still the reader's language
    labels = [ROLE_LABEL[language][role] for role in sorted(roles_from_title(title), key=list(Role).index)]
    label = _WORDS[language]["list"].join(labels)
    if text_key(label) == text_key(title.replace("-", " ")):
        return label
    return label + _bracket(language, escape(title))


def _unless_named(label: str, named: frozenset[str]) -> str:
    return "" if label.casefold() in named else label


def titles_label(
    role_text: str, language: Language, escape: Escape = plain, *, named: frozenset[str] = frozenset()
) -> str:
    """A person's titles (the registry's role text, titles of several rows joined by " / "), each in
    the reader's words, once each: "执行董事兼总经理" → "执行董事、总经理"; labels in ``named`` (what the
    line already says, case-folded) are not repeated."""
    shown: list[str] = []
    for piece in role_text.split(" / "):
        piece = piece.strip()
        if not piece:
            continue
        key = " ".join(piece.split()).casefold()
        known = key in _CHINESE_TITLES or key in _COMPANIES_HOUSE_TITLES or key in _FOREIGN_TITLES
        for title in [piece] if known else _TITLE_PARTS.split(piece):
            if title.strip():
                label = title_label(title.strip(), language, escape, named=named)
                if label and label not in shown:
                    shown.append(label)
    return _WORDS[language]["list"].join(shown)


# -- the values diff writes ------------------------------------------------------------------------


def _person_value(value: str, name: str) -> str | None:
    """The role text of a stored person value "name (role text)", or None if it is not one."""
    head = f"{name} ("
    if value.startswith(head) and value.endswith(")"):
        return value[len(head) : -1]
    return None


@dataclass(frozen=True, slots=True)
class _Holding:
    stake: str
    rest: str


def _holding_value(value: str | None, name: str) -> _Holding | None:
    """A stored holder or controller value "name 40% 20,000,000 CNY" without its name."""
    if value is None or not value.startswith(name):
        return None
    remainder = value[len(name) :].strip()
    if remainder.startswith("("):
        return None
    stake, _, rest = remainder.partition(" ")
    if stake.endswith("%") or stake == "?":
        return _Holding(stake, rest.strip())
    return _Holding("", remainder)


# -- severity ---------------------------------------------------------------------------------------

_KEY_PERSON = frozenset(
    {
        Category.LEGAL_REPRESENTATIVE,
        Category.DIRECTOR,
        Category.SHAREHOLDER,
        Category.FINANCE_HEAD,
        Category.CONTROLLER,
        Category.ACTUAL_CONTROLLER,
    }
)


def change_severity(change: ChangeLine) -> Severity:
    """The severity one stored change shows on its own (the alert's may be higher: the window)."""
    if change.category in LISTING_CATEGORIES:
        return LISTING_SEVERITY[change.category] if change.action is Action.ADDED else Severity.INFO
    if change.category is Category.BENEFICIAL_OWNER:
        return Severity.INFO if change.action is Action.REMOVED else Severity.WARNING
    if change.category is Category.STATUS:
        return Severity.CRITICAL if status_code(change.after) in CRITICAL_STATUSES else Severity.INFO
    return Severity.WARNING if change.category in _KEY_PERSON else Severity.INFO


def _max_severity(levels: Sequence[Severity]) -> Severity:
    return max(levels, key=lambda level: level.rank)


# -- one change, one line ---------------------------------------------------------------------------

_PEOPLE = frozenset({Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER})
_SCALARS = frozenset(
    {
        Category.NAME,
        Category.STATUS,
        Category.REGISTERED_CAPITAL,
        Category.ADDRESS,
        Category.LEGAL_REPRESENTATIVE,
        Category.FINANCE_HEAD,
    }
)
_HOLDINGS = frozenset(
    {Category.SHAREHOLDER, Category.CONTROLLER, Category.ACTUAL_CONTROLLER, Category.BENEFICIAL_OWNER}
)


def _value(text: str | None, language: Language, escape: Escape) -> str:
    return escape(text) if text and text.strip() else _WORDS[language]["none"]


def _entry(label: str, action: Action, detail: str, language: Language) -> str:
    """ "董事 新增 李娜" / "Director added: Li Na"."""
    verb = ACTION_LABEL[language][action]
    return f"{label} {verb} {detail}" if language == Language.ZH_CN else f"{label} {verb}: {detail}"


def _suffix(effective_date: date | None, first_seen: bool, language: Language) -> str:
    words = _WORDS[language]
    text = _bracket(language, f"{words['effective']} {effective_date.isoformat()}") if effective_date else ""
    return text + (words["first_seen"] if first_seen else "")


def _listing_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    """A risk listing: what happened, against whom, and its facts (which name its case number)."""
    words = _WORDS[language]
    label = f"{CATEGORY_LABEL[language][change.category]} {LISTING_ACTION_LABEL[language][change.action]}"
    if change.party not in (None, Party.COMPANY):
        assert change.party is not None
        label += words["against"].format(
            role=PARTY_LABEL[language][change.party], name=escape(change.party_name) or words["none"]
        )
    if change.action is Action.ADDED:
        detail = _value(change.after or change.subject, language, escape)
    elif change.action is Action.REMOVED:
        detail = _value(change.before or change.subject, language, escape)
    else:
        detail = f"{_value(change.before, language, escape)} → {_value(change.after, language, escape)}"
    return f"{label}: {detail}"


def _scalar_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    """Name, status, capital, address, legal representative, finance head: "label old → new"; the
    subject ("status", or a change-log item such as 财务负责人备案) only repeats the label."""
    label = CATEGORY_LABEL[language][change.category]
    if change.category is Category.STATUS:
        before = status_label(change.before, language, escape) if change.before else _WORDS[language]["none"]
        after = status_label(change.after, language, escape) if change.after else _WORDS[language]["none"]
    else:
        before, after = _value(change.before, language, escape), _value(change.after, language, escape)
    return f"{label} {before} → {after}"


def _holding_details(holding: _Holding, category: Category, language: Language, escape: Escape) -> list[str]:
    words = _WORDS[language]
    rest_word = words["subscribed"] if category is Category.SHAREHOLDER else words["natures"]
    details = [f"{words['stake']} {holding.stake}"] if holding.stake and holding.stake != "?" else []
    if holding.rest:
        details.append(f"{rest_word} {escape(holding.rest)}")
    return details


def _holding_text(change: ChangeLine, language: Language, escape: Escape) -> str | None:
    """A shareholder or controller: "股东 X 持股 40% → 55%", the name said once; None when the
    stored values are not in the shape diff writes."""
    words = _WORDS[language]
    label = CATEGORY_LABEL[language][change.category]
    who = escape(change.subject)
    before, after = (
        _holding_value(change.before, change.subject),
        _holding_value(change.after, change.subject),
    )
    if change.action is Action.CHANGED:
        if before is None or after is None:
            return None
        rest_word = words["subscribed"] if change.category is Category.SHAREHOLDER else words["natures"]
        parts = []
        if before.stake != after.stake or before.rest == after.rest:
            parts.append(f"{words['stake']} {before.stake or '?'} → {after.stake or '?'}")
        if before.rest != after.rest:
            was, now = _value(before.rest, language, escape), _value(after.rest, language, escape)
            parts.append(f"{rest_word} {was} → {now}")
        return f"{label} {who} {words['detail_sep'].join(parts)}"
    holding = after if change.action is Action.ADDED else before
    if holding is None:
        return None
    details = _holding_details(holding, change.category, language, escape)
    shown = who + (_bracket(language, words["detail_sep"].join(details)) if details else "")
    return _entry(label, change.action, shown, language)


def _known_titles(role_text: str) -> bool:
    """Whether a value reads as role titles (not a change-log row's free text about people)."""
    pieces = [piece for piece in re.split(r" / |" + _TITLE_PARTS.pattern, role_text) if piece.strip()]
    return (
        bool(pieces)
        and all(
            " ".join(piece.split()).casefold() in _CHINESE_TITLES
            or " ".join(piece.split()).casefold() in _COMPANIES_HOUSE_TITLES
            or " ".join(piece.split()).casefold() in _FOREIGN_TITLES
            or roles_from_title(piece) != {Role.OTHER}
            for piece in pieces
        )
        or role_text.casefold() in _FOREIGN_TITLES
    )


def _people_text(members: Sequence[ChangeLine], language: Language, escape: Escape) -> str:
    """One person's changes of one kind, in one or several categories: "董事、高级管理人员 新增
    李娜（执行董事、总经理）"; the person is named once, their titles in the reader's words."""
    first = members[0]
    categories = sorted({member.category for member in members}, key=list(Category).index)
    label = _WORDS[language]["list"].join(CATEGORY_LABEL[language][category] for category in categories)
    if first.action is Action.CHANGED:
        return f"{label} {escape(first.subject)} {_retitled(first, language, escape)}"
    role_texts = [_person_value(_side(member) or "", member.subject) for member in members]
    if any(text is None for text in role_texts):
        values = dict.fromkeys(_value(_side(member), language, escape) for member in members)
        return _entry(label, first.action, _WORDS[language]["list"].join(values), language)
    said = frozenset(CATEGORY_LABEL[language][category].casefold() for category in categories)
    role_text = " / ".join(dict.fromkeys(text for text in role_texts if text))
    titles = titles_label(role_text, language, escape, named=said)
    who = escape(first.subject) + (_bracket(language, titles) if titles else "")
    return _entry(label, first.action, who, language)


def _retitled(change: ChangeLine, language: Language, escape: Escape) -> str:
    """A person's titles before → after, in the reader's words when they read as titles."""
    before, after = change.before or "", change.after or ""
    if _known_titles(before) and _known_titles(after):
        return f"{titles_label(before, language, escape)} → {titles_label(after, language, escape)}"
    return f"{_value(before, language, escape)} → {_value(after, language, escape)}"


def _side(change: ChangeLine) -> str | None:
    """The value that shows who: after for an addition, before for a removal."""
    return change.after if change.action is Action.ADDED else change.before


def change_text(change: ChangeLine, language: Language, escape: Escape = plain, *, dated: bool = True) -> str:
    """One atomic change as one line (no grouping), with its effective date unless a column shows it."""
    if change.category in LISTING_CATEGORIES:
        text = _listing_text(change, language, escape)
    elif change.category in _SCALARS and change.action is Action.CHANGED:
        text = _scalar_text(change, language, escape)
    elif change.category in _HOLDINGS and (holding := _holding_text(change, language, escape)) is not None:
        text = holding
    elif change.category in _PEOPLE or change.category in _HOLDINGS:
        text = _people_text([change], language, escape)
    else:
        text = _generic_text(change, language, escape)
    return text + _suffix(change.effective_date if dated else None, change.first_seen, language)


def _generic_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    label = CATEGORY_LABEL[language][change.category]
    if change.action is Action.CHANGED:
        before, after = _value(change.before, language, escape), _value(change.after, language, escape)
        return f"{label} {escape(change.subject)} {before} → {after}"
    return _entry(label, change.action, _value(_side(change) or change.subject, language, escape), language)


# -- grouping ---------------------------------------------------------------------------------------


def _same_occasion(a: date | None, b: date | None) -> bool:
    return a is None or b is None or a == b


def group_changes(changes: Sequence[ChangeLine]) -> tuple[tuple[int, ...], ...]:
    """Which atomic changes (by index) read as one line, in the order of their first change.

    A legal-representative change A → B takes B's added and A's removed seats among directors,
    supervisors and managers of the same occasion; the remaining seats of one person gained (or
    lost, or retitled) at one occasion are one line; everything else is a line of its own.
    """
    used: set[int] = set()
    groups: list[tuple[int, ...]] = []
    for index, change in enumerate(changes):
        if change.category is Category.LEGAL_REPRESENTATIVE and change.action is Action.CHANGED:
            followers = _seats_following(changes, change, used)
            used.update([index, *followers])
            groups.append((index, *followers))
    by_person: dict[tuple[str, Action, date | None], list[int]] = {}
    for index, change in enumerate(changes):
        if index in used:
            continue
        if change.category in _PEOPLE:
            key = (text_key(change.subject) or change.subject, change.action, change.effective_date)
            by_person.setdefault(key, []).append(index)
        else:
            groups.append((index,))
    groups.extend(tuple(indices) for indices in by_person.values())
    return tuple(sorted((tuple(sorted(group)) for group in groups), key=lambda group: group[0]))


def _seats_following(changes: Sequence[ChangeLine], anchor: ChangeLine, used: set[int]) -> list[int]:
    """The seats the new legal representative took and the former one left, at the same occasion."""
    names = {Action.REMOVED: text_key(anchor.before), Action.ADDED: text_key(anchor.after)}
    return [
        index
        for index, seat in enumerate(changes)
        if index not in used
        and seat.category in _PEOPLE
        and seat.action in names
        and names[seat.action]
        and text_key(seat.subject) == names[seat.action]
        and _same_occasion(anchor.effective_date, seat.effective_date)
    ]


def _legal_rep_text(
    anchor: ChangeLine, followers: Sequence[ChangeLine], language: Language, escape: Escape
) -> str:
    """ "法定代表人 黄艳 → 赵敏（兼执行董事、总经理）": the new representative's other seats, and the
    former one's when they were not the same."""
    words = _WORDS[language]

    def titles(action: Action) -> str:
        """The seats' titles in the reader's words; a seat stored without its title by its category."""
        shown: list[str] = []
        for seat in followers:
            if seat.action is not action:
                continue
            role_text = _person_value(_side(seat) or "", seat.subject)
            label = (
                titles_label(role_text, language, escape)
                if role_text
                else _seat_label(seat.category, language)
            )
            if label and label not in shown:
                shown.append(label)
        return words["list"].join(shown)

    gained, lost = titles(Action.ADDED), titles(Action.REMOVED)
    notes = f"{words['also']}{gained}" if gained else ""
    if lost and lost != gained:
        former = words["formerly"].format(name=_value(anchor.before, language, escape)) + lost
        notes = notes + former if notes else former.lstrip("；; ")
    text = _scalar_text(anchor, language, escape)
    return text + (_bracket(language, notes) if notes else "")


def _seat_label(category: Category, language: Language) -> str:
    label = CATEGORY_LABEL[language][category]
    return label if language == Language.ZH_CN else label.lower()


def display_lines(
    changes: Sequence[ChangeLine], language: Language, escape: Escape = plain, *, dated: bool = True
) -> tuple[DisplayLine, ...]:
    """The lines people read for a sequence of atomic changes (one alert's, one check's); ``dated``
    False leaves the effective date to a column of its own."""
    lines = []
    for group in group_changes(changes):
        members = [changes[index] for index in group]
        dates = [member.effective_date for member in members if member.effective_date is not None]
        effective = max(dates) if dates else None
        anchor = next((m for m in members if m.category is Category.LEGAL_REPRESENTATIVE), None)
        if len(members) == 1:
            text = change_text(members[0], language, escape, dated=dated)
        else:
            if anchor is not None:
                followers = [member for member in members if member is not anchor]
                text = _legal_rep_text(anchor, followers, language, escape)
            else:
                text = _people_text(members, language, escape)
            text += _suffix(effective if dated else None, any(m.first_seen for m in members), language)
        severity = _max_severity([change_severity(member) for member in members])
        lines.append(DisplayLine(text=text, parts=group, severity=severity, effective_date=effective))
    return tuple(lines)


# -- the history table ------------------------------------------------------------------------------

HISTORY_HEADERS = {
    Language.ZH_CN: (
        "编号",
        "检测时间",
        "借款人",
        "类别",
        "变更",
        "对象",
        "针对",
        "变更前 → 变更后",
        "生效日期",
        "风险等级",
        "预警",
    ),
    Language.EN: (
        "id",
        "detected",
        "borrower",
        "category",
        "action",
        "subject",
        "party",
        "before → after",
        "effective",
        "severity",
        "alert",
    ),
}


def subject_label(change: ChangeLine, language: Language) -> str:
    """The subject column: a person's or holder's name as it is; a field's own name in the reader's
    words ("status" → 登记状态)."""
    if change.subject == change.category.value.replace("_", " "):
        return CATEGORY_LABEL[language][change.category]
    return change.subject


def value_label(change: ChangeLine, value: str | None, language: Language, escape: Escape = plain) -> str:
    """One side of an atomic change without its subject: a status, a person's titles, a stake."""
    if not value:
        return "–"
    if change.category is Category.STATUS:
        return status_label(value, language, escape)
    role_text = _person_value(value, change.subject)
    if role_text is not None and change.category not in LISTING_CATEGORIES:
        return titles_label(role_text, language, escape) or "–"
    holding = _holding_value(value, change.subject) if change.category in _HOLDINGS else None
    if holding is not None:
        details = _holding_details(holding, change.category, language, escape)
        return _WORDS[language]["detail_sep"].join(details) or escape(value)
    return escape(value)
