"""The words people read: labels of categories, actions, parties, statuses, role titles in zh-CN and
en, the registries' own titles mapped to them, the small words lines are built from, and how a
stored status or a registry's title reads in them (pure).

Kept apart from ``presentation``, which builds whole lines from these words.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from watcher.connections import LinkBasis, TieRole
from watcher.normalize import roles_from_title, text_key
from watcher.record import Action, Category, CompanyStatus, Party, Role, Signal
from watcher.vocabulary import AlertKind, AlertStatus, Language

CATEGORY_LABEL = {
    Language.ZH_CN: {
        Category.LEGAL_REPRESENTATIVE: "法定代表人",
        Category.SHAREHOLDER: "股东",
        Category.DIRECTOR: "董事",
        Category.SUPERVISOR: "监事",
        Category.MANAGER: "高级管理人员",
        Category.FINANCE_HEAD: "财务负责人",
        Category.CONTROLLER: "重大控制人（PSC）",
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
        Category.CONNECTED_PARTY: "关联关系",
        Category.CONNECTED_RISK: "关联风险",
        Category.SIGNING_AUTHORITY: "有权签字人",
        Category.CHARGE: "抵押/押记登记",
        Category.FILING_OVERDUE: "逾期申报",
        Category.REGISTERED_OFFICE_ISSUE: "注册地址异常",
        Category.PSC_STATEMENT: "重大控制人声明",
    },
    Language.EN: {
        Category.LEGAL_REPRESENTATIVE: "Legal representative",
        Category.SHAREHOLDER: "Shareholder",
        Category.DIRECTOR: "Director",
        Category.SUPERVISOR: "Supervisor",
        Category.MANAGER: "Manager",
        Category.FINANCE_HEAD: "Finance head",
        Category.CONTROLLER: "Person with significant control",
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
        Category.CONNECTED_PARTY: "Connected party",
        Category.CONNECTED_RISK: "Connected risk",
        Category.SIGNING_AUTHORITY: "Signing authority",
        Category.CHARGE: "Charge",
        Category.FILING_OVERDUE: "Filing overdue",
        Category.REGISTERED_OFFICE_ISSUE: "Registered office issue",
        Category.PSC_STATEMENT: "PSC statement",
    },
}

# Risk listings come into force, leave it, or change; people are added and removed.
LISTING_ACTION_LABEL = {
    Language.ZH_CN: {Action.ADDED: "列入", Action.REMOVED: "移出/解除", Action.CHANGED: "变更"},
    Language.EN: {Action.ADDED: "listed", Action.REMOVED: "removed/lifted", Action.CHANGED: "changed"},
}

# A category whose coming and going have words of their own: a charge is registered, then satisfied.
CATEGORY_ACTION_LABEL = {
    Language.ZH_CN: {Category.CHARGE: {Action.ADDED: "登记", Action.REMOVED: "解除（已清偿）"}},
    Language.EN: {Category.CHARGE: {Action.ADDED: "registered", Action.REMOVED: "satisfied"}},
}

# What Companies House writes as a listing's reason (insolvency case types, the profile's flags), in
# each language; the registry's word follows in brackets where it adds something.
REGISTRY_TERM_LABEL = {
    Language.ZH_CN: {
        "compulsory-liquidation": "强制清算",
        "creditors-voluntary-liquidation": "债权人自愿清算",
        "members-voluntary-liquidation": "股东自愿清算",
        "in-administration": "破产管理",
        "administration-order": "破产管理令",
        "corporate-voluntary-arrangement": "公司自愿安排",
        "corporate-voluntary-arrangement-moratorium": "公司自愿安排（暂停期）",
        "administrative-receiver": "管理接管",
        "receiver-manager": "接管人",
        "receivership": "接管",
        "foreign-insolvency": "境外破产程序",
        "moratorium": "暂停偿债期",
        "accounts overdue": "年度账目逾期",
        "confirmation statement overdue": "确认声明逾期",
        "registered office in dispute": "注册地址存在争议",
        "undeliverable registered office address": "注册地址无法送达",
    },
    Language.EN: {
        "compulsory-liquidation": "compulsory liquidation",
        "creditors-voluntary-liquidation": "creditors' voluntary liquidation",
        "members-voluntary-liquidation": "members' voluntary liquidation",
        "in-administration": "in administration",
        "administration-order": "administration order",
        "corporate-voluntary-arrangement": "company voluntary arrangement",
        "corporate-voluntary-arrangement-moratorium": "company voluntary arrangement (moratorium)",
        "administrative-receiver": "administrative receiver",
        "receiver-manager": "receiver manager",
        "receivership": "receivership",
        "foreign-insolvency": "foreign insolvency",
        "moratorium": "moratorium",
    },
}

# France's collective proceedings (the BODACC): the procedure words the source writes as a bankruptcy
# listing's reason, and how a line names them ("破产程序（Redressement judiciaire）立案").
INSOLVENCY_PROCEDURES = (
    "Sauvegarde",
    "Redressement judiciaire",
    "Liquidation judiciaire",
    "Plan de cession",
    "Résolution du plan",
    "Traitement de sortie de crise",
    "Procédure collective",
)
INSOLVENCY_LABEL = {
    Language.ZH_CN: "破产程序",
    Language.EN: "Insolvency proceedings",
}
INSOLVENCY_ACTION_LABEL = {
    Language.ZH_CN: {Action.ADDED: "立案", Action.REMOVED: "终结", Action.CHANGED: "变更"},
    Language.EN: {Action.ADDED: "opened", Action.REMOVED: "closed", Action.CHANGED: "changed"},
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
CHINESE_TITLES: dict[str, tuple[str, str]] = {
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
COMPANIES_HOUSE_TITLES: dict[str, tuple[str, str]] = {
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
FOREIGN_TITLES: dict[str, tuple[str, str]] = {
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
    "signatur i fellesskap": ("共同签字权人", "joint signatory"),
    "signatur hver for seg": ("单独签字权人", "sole signatory"),
    "prokura": ("经理权人", "procuration holder"),
    "prokura i fellesskap": ("共同经理权人", "joint procuration holder"),
    "prokura hver for seg": ("单独经理权人", "sole procuration holder"),
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


WORDS = {
    Language.ZH_CN: {
        "open": "（",
        "close": "）",
        "list": "、",
        "also": "兼",
        "formerly": "原任",
        "former_also": "{name} 原兼",
        "former_now": "{name} 现任",
        "clause_sep": "；",
        "stake": "持股",
        "subscribed": "认缴",
        "natures": "控制方式",
        "detail_sep": "，",
        "none": "（无）",
        "effective": "生效日期",
        "against": "（针对{role} {name}）",
        "first_seen": "（首次核查时已存在）",
        "link": "{category}：{roles_here}{name} 同时任 {other} 的{roles_there}",
        "link_itself": "{category}：{name}（受监控主体）为本主体的{roles_here}",
        "link_holder": "{category}：本主体同时任 {other} 的{roles_there}",
        "group_formed": "（形成关联集团，共 {after} 家）",
        "group_grown": "（关联集团扩大：{before} → {after} 家）",
        "listing_of": "，{other} {listing}",
        "hidden_party": "另一关联方（无权查看）",
    },
    Language.EN: {
        "open": " (",
        "close": ")",
        "list": ", ",
        "also": "also ",
        "formerly": "formerly ",
        "former_also": "{name} was also ",
        "former_now": "{name} now ",
        "clause_sep": "; ",
        "stake": "stake",
        "subscribed": "subscribed",
        "natures": "nature of control",
        "detail_sep": ", ",
        "none": "(none)",
        "effective": "effective",
        "against": " (against the {role}, {name})",
        "first_seen": " (already in force when first checked)",
        "link": "{category}: {roles_here}{name} is also {roles_there} of {other}",
        "link_itself": "{category}: {name} (a watched party) is this party's {roles_here}",
        "link_holder": "{category}: this party is also {roles_there} of {other}",
        "group_formed": " (forms a group of {after})",
        "group_grown": " (group grows from {before} to {after})",
        "listing_of": "; {other}: {listing}",
        "hidden_party": "a party you may not see",
    },
}


# What a source fetches (record.Signal): the console's unavailable signals and `watcher status`.
SIGNAL_LABEL = {
    Language.ZH_CN: {
        Signal.REGISTRY: "登记信息",
        Signal.CONTROLLER: "实际控制人与受益所有人",
        Signal.ABNORMAL: "经营异常名录",
        Signal.VIOLATIONS: "严重违法失信名单",
        Signal.PLEDGES: "股权出质与动产抵押",
        Signal.JUDICIAL: "司法风险",
        Signal.CHANGE_LOG: "变更记录",
        Signal.CHARGES: "抵押/押记登记簿",
        Signal.INSOLVENCY: "破产程序（BODACC 公告 / Companies House 案件）",
        Signal.PSC_STATEMENTS: "重大控制人声明",
    },
    Language.EN: {
        Signal.REGISTRY: "registry card",
        Signal.CONTROLLER: "controllers and beneficial owners",
        Signal.ABNORMAL: "abnormal operations list",
        Signal.VIOLATIONS: "serious violations list",
        Signal.PLEDGES: "pledges and mortgages",
        Signal.JUDICIAL: "court lists",
        Signal.CHANGE_LOG: "change log",
        Signal.CHARGES: "register of charges",
        Signal.INSOLVENCY: "insolvency (BODACC notices / Companies House cases)",
        Signal.PSC_STATEMENTS: "PSC statements",
    },
}

ALERT_STATUS_LABEL = {
    Language.ZH_CN: {
        AlertStatus.OPEN: "待处理",
        AlertStatus.ACKNOWLEDGED: "已确认",
        AlertStatus.CLOSED: "已关闭",
    },
    Language.EN: {
        AlertStatus.OPEN: "Open",
        AlertStatus.ACKNOWLEDGED: "Acknowledged",
        AlertStatus.CLOSED: "Closed",
    },
}

ALERT_KIND_LABEL = {
    Language.ZH_CN: {
        AlertKind.CHANGE: "登记变更",
        AlertKind.ONBOARDING: "纳入监控时已存在风险信息",
        AlertKind.MONITORING_GAP: "监控中断",
        AlertKind.MONITORING_RESTORED: "监控恢复",
    },
    Language.EN: {
        AlertKind.CHANGE: "Registry change",
        AlertKind.ONBOARDING: "Active at onboarding",
        AlertKind.MONITORING_GAP: "Monitoring gap",
        AlertKind.MONITORING_RESTORED: "Monitoring restored",
    },
}

# `watcher alerts`: the table's columns, by their English names (the column names of old).
ALERTS_HEADERS = {
    Language.ZH_CN: ("编号", "生成时间", "风险等级", "状态", "类型", "借款人", "来源", "处理人", "备注"),
    Language.EN: (
        "id",
        "created",
        "severity",
        "status",
        "kind",
        "borrower",
        "source",
        "handled by",
        "note",
    ),
}

# `watcher alerts show`: how the alert has been handled, after its body.
ALERT_HANDLING = {
    Language.ZH_CN: {
        "status": "状态：{status}",
        "by": "（{by}，{at}）",
        "note": "备注：{note}",
    },
    Language.EN: {
        "status": "Status: {status}",
        "by": " ({by}, {at})",
        "note": "Note: {note}",
    },
}


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


Escape = Callable[[str], str]


def plain(text: str) -> str:
    """Text as it is, on one line (the escaper of plain-text bodies and terminals)."""
    return " ".join(text.split())


_TITLE_PARTS = re.compile(r"兼|、|,|;|，|；|&")
_CJK = re.compile(r"[\u3400-\u9fff]")
_STATUS_VALUE = re.compile(r"^(?P<raw>.*) \((?P<code>[a-z_]+)\)$", re.DOTALL)

_INNER_BRACKETS = {
    Language.ZH_CN: str.maketrans({"（": "〔", "）": "〕"}),
    Language.EN: str.maketrans({"(": "[", ")": "]"}),
}


def shown_value(text: str | None, language: Language, escape: Escape = plain) -> str:
    """A stored value as a line shows it: escaped, or the reader's word for none when it is empty."""
    return escape(text) if text and text.strip() else WORDS[language]["none"]


def bracket(language: Language, text: str) -> str:
    """``text`` in the language's brackets; brackets inside it become the nested kind, so a title
    with its registry term reads "(also general manager [Daglig leder])", not "((…))"."""
    words = WORDS[language]
    return f"{words['open']}{text.translate(_INNER_BRACKETS[language])}{words['close']}"


_SIGNATORY = {
    Language.ZH_CN: "预留签字人 {on_file} ≠ 登记 {registry}",
    Language.EN: "Signatory on file {on_file} ≠ registry {registry}",
}


def signatory_text(on_file: str | None, registry: str, language: Language, escape: Escape = plain) -> str:
    """Both names of a signatory mismatch: "预留签字人 Anders Vik ≠ 登记 Hanne Haugland"."""
    return _SIGNATORY[language].format(
        on_file=escape(on_file) if on_file else WORDS[language]["none"], registry=escape(registry)
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
    return label + bracket(language, escape(raw))


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
    if key in CHINESE_TITLES:
        return _unless_named(CHINESE_TITLES[key][index], named)
    if key in COMPANIES_HOUSE_TITLES:
        return _unless_named(COMPANIES_HOUSE_TITLES[key][index], named)
    if key in FOREIGN_TITLES:
        label = FOREIGN_TITLES[key][index]
        return escape(title) if label.casefold() in named else label + bracket(language, escape(title))
    if language == Language.ZH_CN and _CJK.search(title):
        return escape(title)  # a Chinese title the table does not know is still the reader's language
    labels = [ROLE_LABEL[language][role] for role in sorted(roles_from_title(title), key=list(Role).index)]
    label = WORDS[language]["list"].join(labels)
    if text_key(label) == text_key(title.replace("-", " ")):
        return label
    return label + bracket(language, escape(title))


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
        known = key in CHINESE_TITLES or key in COMPANIES_HOUSE_TITLES or key in FOREIGN_TITLES
        for title in [piece] if known else _TITLE_PARTS.split(piece):
            if title.strip():
                label = title_label(title.strip(), language, escape, named=named)
                if label and label not in shown:
                    shown.append(label)
    return WORDS[language]["list"].join(shown)


def known_titles(role_text: str) -> bool:
    """Whether a value reads as role titles (not a change-log row's free text about people)."""
    pieces = [piece for piece in re.split(r" / |" + _TITLE_PARTS.pattern, role_text) if piece.strip()]
    return (
        bool(pieces)
        and all(
            " ".join(piece.split()).casefold() in CHINESE_TITLES
            or " ".join(piece.split()).casefold() in COMPANIES_HOUSE_TITLES
            or " ".join(piece.split()).casefold() in FOREIGN_TITLES
            or roles_from_title(piece) != {Role.OTHER}
            for piece in pieces
        )
        or role_text.casefold() in FOREIGN_TITLES
    )


# -- the portfolio index (``watcher.connections``): roles a tie names, how a link was established --

TIE_ROLE_LABEL = {
    Language.ZH_CN: {
        TieRole.LEGAL_REPRESENTATIVE: "法定代表人",
        TieRole.DIRECTOR: "董事",
        TieRole.SUPERVISOR: "监事",
        TieRole.MANAGER: "高级管理人员",
        TieRole.FINANCE_HEAD: "财务负责人",
        TieRole.SHAREHOLDER: "股东",
        TieRole.CONTROLLER: "控制人",
        TieRole.ACTUAL_CONTROLLER: "实际控制人",
        TieRole.BENEFICIAL_OWNER: "受益所有人",
        TieRole.PLEDGEE: "质权人",
        TieRole.GUARANTOR: "保证人",
        TieRole.PLEDGOR: "出质人",
    },
    Language.EN: {
        TieRole.LEGAL_REPRESENTATIVE: "legal representative",
        TieRole.DIRECTOR: "director",
        TieRole.SUPERVISOR: "supervisor",
        TieRole.MANAGER: "manager",
        TieRole.FINANCE_HEAD: "finance head",
        TieRole.SHAREHOLDER: "shareholder",
        TieRole.CONTROLLER: "controller",
        TieRole.ACTUAL_CONTROLLER: "actual controller",
        TieRole.BENEFICIAL_OWNER: "beneficial owner",
        TieRole.PLEDGEE: "pledgee",
        TieRole.GUARANTOR: "guarantor",
        TieRole.PLEDGOR: "pledgor",
    },
}

LINK_BASIS_LABEL = {
    Language.ZH_CN: {
        LinkBasis.REGISTRY_ID: "统一社会信用代码/注册号",
        LinkBasis.VENDOR_KEY: "数据商主体标识",
        LinkBasis.BIRTH_DATE: "姓名及出生日期",
        LinkBasis.NAME_ONLY: "仅姓名",
        LinkBasis.LOAN_RECORD: "本行担保记录",
    },
    Language.EN: {
        LinkBasis.REGISTRY_ID: "registration number",
        LinkBasis.VENDOR_KEY: "vendor id",
        LinkBasis.BIRTH_DATE: "name and birth date",
        LinkBasis.NAME_ONLY: "name only",
        LinkBasis.LOAN_RECORD: "the bank's loan records",
    },
}

# A link by equal names alone: never a merge, never grouped, shown as only possible.
POSSIBLE_LINK_LABEL = {Language.ZH_CN: "可能关联", Language.EN: "possible"}

CONNECTION_WORDS = {
    Language.ZH_CN: {
        "groups": "关联集团（强关联，两家及以上）",
        "connections": "关联关系",
        "no_groups": "（无关联集团）",
        "no_connections": "（无关联关系）",
        "holds": "持有",
    },
    Language.EN: {
        "groups": "Groups (strong links, two or more parties)",
        "connections": "Connections",
        "no_groups": "(no group)",
        "no_connections": "(no connection)",
        "holds": "holds",
    },
}

GROUP_HEADERS = {
    Language.ZH_CN: ("集团", "成员数", "成员"),
    Language.EN: ("group", "size", "parties"),
}

# The role columns say whose role: the linking person's or company's ("linked by"), at each party.
CONNECTION_HEADERS = {
    Language.ZH_CN: ("主体", "关联主体", "关联人/企业", "其在主体的角色", "其在关联主体的角色", "关联依据"),
    Language.EN: (
        "party",
        "connected party",
        "linked by",
        "its role at party",
        "its role at connected party",
        "basis",
    ),
}


def tie_roles_label(roles: frozenset[TieRole], language: Language) -> str:
    """Roles in the index's order (``TieRole``), joined as a list in ``language``."""
    return WORDS[language]["list"].join(TIE_ROLE_LABEL[language][role] for role in TieRole if role in roles)


def link_label(basis: LinkBasis, possible: bool, language: Language) -> str:
    """How a link reads: its basis, or "possible (name only)" for a link by equal names."""
    if possible:
        named = LINK_BASIS_LABEL[language][LinkBasis.NAME_ONLY]
        return f"{POSSIBLE_LINK_LABEL[language]}{WORDS[language]['open']}{named}{WORDS[language]['close']}"
    return LINK_BASIS_LABEL[language][basis]
