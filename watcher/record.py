"""The canonical registry record: the contract between sources and the core.

Every section is ``None`` when the source did not provide it this time. ``None`` means *unknown*,
never *empty*: the diff only compares sections present on both sides, so a partial fetch can
never look like "all directors resigned".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


class Role(StrEnum):
    """Canonical roles a person can hold in a company."""

    LEGAL_REPRESENTATIVE = "legal_representative"
    CHAIR = "chair"
    DIRECTOR = "director"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    FINANCE_HEAD = "finance_head"
    SECRETARY = "secretary"
    AUDITOR = "auditor"
    ACCOUNTANT = "accountant"
    PARTNER = "partner"
    OTHER = "other"


class Category(StrEnum):
    """What a change event is about (the design's fixed list)."""

    LEGAL_REPRESENTATIVE = "legal_representative"
    SHAREHOLDER = "shareholder"
    DIRECTOR = "director"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    FINANCE_HEAD = "finance_head"
    CONTROLLER = "controller"
    NAME = "name"
    STATUS = "status"
    REGISTERED_CAPITAL = "registered_capital"
    ADDRESS = "address"
    # Chinese vendors' control and risk signals (the design's list extended; additions only).
    ACTUAL_CONTROLLER = "actual_controller"  # 实际控制人
    BENEFICIAL_OWNER = "beneficial_owner"  # 受益所有人
    ABNORMAL_OPERATION = "abnormal_operation"  # 经营异常名录
    SERIOUS_VIOLATION = "serious_violation"  # 严重违法失信
    EQUITY_PLEDGE = "equity_pledge"  # 股权出质
    CHATTEL_MORTGAGE = "chattel_mortgage"  # 动产抵押
    ENFORCEMENT = "enforcement"  # 被执行人
    DISHONEST_DEBTOR = "dishonest_debtor"  # 失信被执行人
    CONSUMPTION_RESTRICTION = "consumption_restriction"  # 限制高消费
    BANKRUPTCY = "bankruptcy"  # 破产重整
    # Across the portfolio (issue 15): another watched party shares a person or company with this one.
    CONNECTED_PARTY = "connected_party"  # 关联关系
    CONNECTED_RISK = "connected_risk"  # 关联风险
    # Who can bind the company (Brønnøysund's signatur and prokura, issue 16): 有权签字人.
    SIGNING_AUTHORITY = "signing_authority"
    # Companies House risk signals (issue 16; additions only). An insolvency case is a ``bankruptcy``.
    CHARGE = "charge"  # 抵押/押记登记 (a registered charge: mortgage, debenture, floating charge)
    FILING_OVERDUE = "filing_overdue"  # 逾期申报 (accounts or confirmation statement overdue)
    REGISTERED_OFFICE_ISSUE = "registered_office_issue"  # 注册地址异常 (in dispute, undeliverable)
    PSC_STATEMENT = "psc_statement"  # 重大控制人声明 (no PSC, PSC unidentified or unconfirmed)


KEY_PERSON_CATEGORIES: frozenset[Category] = frozenset(
    {
        Category.LEGAL_REPRESENTATIVE,
        Category.DIRECTOR,
        Category.SHAREHOLDER,
        Category.FINANCE_HEAD,
        Category.CONTROLLER,
        Category.ACTUAL_CONTROLLER,
        Category.SIGNING_AUTHORITY,
    }
)

# The record section that holds each risk listing category (a tuple of :class:`Listing`).
LISTING_SECTIONS: dict[Category, str] = {
    Category.ABNORMAL_OPERATION: "abnormal_operations",
    Category.SERIOUS_VIOLATION: "serious_violations",
    Category.EQUITY_PLEDGE: "equity_pledges",
    Category.CHATTEL_MORTGAGE: "chattel_mortgages",
    Category.ENFORCEMENT: "enforcements",
    Category.DISHONEST_DEBTOR: "dishonest_debtors",
    Category.CONSUMPTION_RESTRICTION: "consumption_restrictions",
    Category.BANKRUPTCY: "bankruptcies",
    Category.CHARGE: "charges",
    Category.FILING_OVERDUE: "filings_overdue",
    Category.REGISTERED_OFFICE_ISSUE: "registered_office_issues",
    Category.PSC_STATEMENT: "psc_statements",
}
LISTING_CATEGORIES: frozenset[Category] = frozenset(LISTING_SECTIONS)
# Listings read from fields of the registry card (Companies House's profile flags), not from a list:
# a flag the card no longer sets is the registry's explicit "no", never a list that came back empty.
FLAG_CATEGORIES: frozenset[Category] = frozenset({Category.FILING_OVERDUE, Category.REGISTERED_OFFICE_ISSUE})


class Signal(StrEnum):
    """What a source can be asked to fetch; each is billed and refreshed on its own cadence.

    ``registry`` is the registry card every source has; the others are separate lists: the Chinese
    vendors', Companies House's and France's BODACC insolvency notices (``[sources.NAME] signals``
    and ``cadence``).
    """

    REGISTRY = "registry"
    CONTROLLER = "controller"  # actual controller and beneficial owners
    ABNORMAL = "abnormal"  # abnormal-operations listings
    VIOLATIONS = "violations"  # serious-violation listings
    PLEDGES = "pledges"  # equity pledges and chattel mortgages
    JUDICIAL = "judicial"  # enforcement, dishonest debtor, consumption restriction, bankruptcy
    CHANGE_LOG = "change_log"  # the paged change log, former legal representatives, revocation dates
    CHARGES = "charges"  # Companies House: the register of charges
    # Insolvency: Companies House's insolvency cases; France's procédures collectives in the BODACC.
    INSOLVENCY = "insolvency"
    PSC_STATEMENTS = "psc_statements"  # Companies House: PSC statements (no PSC, not identified…)


# The record sections each signal fills (besides ``registry``, which fills the card's sections).
SIGNAL_SECTIONS: dict[Signal, tuple[str, ...]] = {
    Signal.CONTROLLER: ("actual_controllers", "beneficial_owners"),
    Signal.ABNORMAL: ("abnormal_operations",),
    Signal.VIOLATIONS: ("serious_violations",),
    Signal.PLEDGES: ("equity_pledges", "chattel_mortgages"),
    Signal.JUDICIAL: ("enforcements", "dishonest_debtors", "consumption_restrictions", "bankruptcies"),
    Signal.CHANGE_LOG: ("change_log",),
    Signal.CHARGES: ("charges",),
    Signal.INSOLVENCY: ("bankruptcies",),
    Signal.PSC_STATEMENTS: ("psc_statements",),
}
# The signals the Chinese vendors offer (Qichacha, Tianyancha).
CN_SIGNALS: frozenset[Signal] = frozenset(
    {
        Signal.REGISTRY,
        Signal.CONTROLLER,
        Signal.ABNORMAL,
        Signal.VIOLATIONS,
        Signal.PLEDGES,
        Signal.JUDICIAL,
        Signal.CHANGE_LOG,
    }
)


class Action(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


class CompanyStatus(StrEnum):
    """Normalised company status; the registry's own wording is kept next to it."""

    ACTIVE = "active"
    ABNORMAL = "abnormal"  # 经营异常 (listed for abnormal operation)
    LIQUIDATION = "liquidation"
    BANKRUPT = "bankrupt"
    REVOKED = "revoked"  # 吊销
    DEREGISTERED = "deregistered"  # 注销, dissolved, slettet
    OTHER = "other"


CRITICAL_STATUSES: frozenset[CompanyStatus] = frozenset(
    {
        CompanyStatus.ABNORMAL,
        CompanyStatus.LIQUIDATION,
        CompanyStatus.BANKRUPT,
        CompanyStatus.REVOKED,
        CompanyStatus.DEREGISTERED,
    }
)


class ListingState(StrEnum):
    """Where a risk listing stands: still in force, taken off the list, or lifted (obligation met)."""

    ACTIVE = "active"
    REMOVED = "removed"  # removed from the list, cancelled, no longer valid (无效, 移出)
    LIFTED = "lifted"  # obligation performed or restriction lifted (已履行, 历史失信)


class Party(StrEnum):
    """Against whom a listing is: the borrower itself or one of its key people."""

    COMPANY = "company"
    LEGAL_REPRESENTATIVE = "legal_representative"
    ACTUAL_CONTROLLER = "actual_controller"


class HolderKind(StrEnum):
    PERSON = "person"
    ENTITY = "entity"


@dataclass(frozen=True, slots=True)
class Status:
    """``since`` is the day the registry says this status took effect (konkursdato…), when it says."""

    code: CompanyStatus
    raw: str
    since: date | None = None


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in major units (yuan, kroner). ``amount`` is None when the text could not be parsed."""

    amount: Decimal | None
    currency: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class Stake:
    """A shareholding as an interval of percent: exact when ``low == high``, a band otherwise.

    Bands are half-open ``(low, high]`` as registries publish them (UK PSC: more than 25 % up to 50 %).
    """

    low: Decimal
    high: Decimal

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        if self.exact:
            return f"{_pct(self.low)}%"
        return f"{_pct(self.low)}–{_pct(self.high)}%"


def _pct(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class Person:
    """An officer. ``key`` identifies the person across checks (registry id, name + birth, or name)."""

    name: str
    key: str
    roles: frozenset[Role]
    role_text: str = ""
    appointed_on: date | None = None
    resigned_on: date | None = None


@dataclass(frozen=True, slots=True)
class Shareholder:
    name: str
    key: str
    kind: HolderKind
    stake: Stake | None = None
    subscribed: Money | None = None


@dataclass(frozen=True, slots=True)
class Controller:
    """A person with significant control or an actual controller (实际控制人)."""

    name: str
    key: str
    kind: HolderKind
    stake: Stake | None = None
    natures: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Listing:
    """One entry of a risk list (abnormal operations, pledges, court enforcement…).

    ``key`` is its stable identity (the vendor's id or the case / registration number) and, with
    ``party`` and ``party_name``, what the diff matches on; everything else may change over time.
    ``listed_on`` is the listing, registration or filing date; ``removed_on`` the removal,
    cancellation or lifting date.
    """

    key: str
    state: ListingState
    party: Party = Party.COMPANY
    party_name: str = ""
    case_number: str = ""
    reason: str = ""
    authority: str = ""
    amount: Money | None = None
    listed_on: date | None = None
    removed_on: date | None = None
    removal_reason: str = ""
    pledgor: str = ""
    pledgee: str = ""


@dataclass(frozen=True, slots=True)
class ChangeLogEntry:
    """One row of the registry's own dated change log (变更记录, appointment history)."""

    categories: frozenset[Category]
    item: str
    before: str = ""
    after: str = ""
    date: date | None = None


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    source: str
    registry_id: str
    name: str | None = None
    status: Status | None = None
    registered_capital: Money | None = None
    address: str | None = None
    legal_representative: Person | None = None
    people: tuple[Person, ...] | None = None
    shareholders: tuple[Shareholder, ...] | None = None
    controllers: tuple[Controller, ...] | None = None
    finance_head: Person | None = None
    change_log: tuple[ChangeLogEntry, ...] | None = field(default=None)
    actual_controllers: tuple[Controller, ...] | None = None
    beneficial_owners: tuple[Controller, ...] | None = None
    abnormal_operations: tuple[Listing, ...] | None = None
    serious_violations: tuple[Listing, ...] | None = None
    equity_pledges: tuple[Listing, ...] | None = None
    chattel_mortgages: tuple[Listing, ...] | None = None
    enforcements: tuple[Listing, ...] | None = None
    dishonest_debtors: tuple[Listing, ...] | None = None
    consumption_restrictions: tuple[Listing, ...] | None = None
    bankruptcies: tuple[Listing, ...] | None = None
    charges: tuple[Listing, ...] | None = None
    filings_overdue: tuple[Listing, ...] | None = None
    registered_office_issues: tuple[Listing, ...] | None = None
    psc_statements: tuple[Listing, ...] | None = None
    # Who can bind the company (signature and procuration holders); None where the registry has no
    # such list, and in snapshots stored before it was read.
    signing_authority: tuple[Person, ...] | None = None

    def listings(self, category: Category) -> tuple[Listing, ...] | None:
        """The listings of a risk category (None when unknown)."""
        return getattr(self, LISTING_SECTIONS[category])


# -- JSON round trip (snapshots are stored as this JSON) ----------------------------------------


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _money_dict(money: Money | None) -> dict | None:
    if money is None:
        return None
    return {
        "amount": None if money.amount is None else str(money.amount),
        "currency": money.currency,
        "raw": money.raw,
    }


def _money(data: dict | None) -> Money | None:
    if data is None:
        return None
    amount = data.get("amount")
    return Money(None if amount is None else Decimal(amount), data.get("currency"), data.get("raw", ""))


def _stake_dict(stake: Stake | None) -> list[str] | None:
    return None if stake is None else [str(stake.low), str(stake.high)]


def _stake(data: list[str] | None) -> Stake | None:
    return None if data is None else Stake(Decimal(data[0]), Decimal(data[1]))


def _person_dict(person: Person | None) -> dict | None:
    if person is None:
        return None
    return {
        "name": person.name,
        "key": person.key,
        "roles": sorted(person.roles),
        "role_text": person.role_text,
        "appointed_on": _iso(person.appointed_on),
        "resigned_on": _iso(person.resigned_on),
    }


def _person(data: dict | None) -> Person | None:
    if data is None:
        return None
    return Person(
        name=data["name"],
        key=data["key"],
        roles=frozenset(Role(r) for r in data["roles"]),
        role_text=data.get("role_text", ""),
        appointed_on=_day(data.get("appointed_on")),
        resigned_on=_day(data.get("resigned_on")),
    )


def _known_person(data: dict) -> Person:
    person = _person(data)
    assert person is not None
    return person


def _controller_dict(controller: Controller) -> dict:
    return {
        "name": controller.name,
        "key": controller.key,
        "kind": controller.kind.value,
        "stake": _stake_dict(controller.stake),
        "natures": sorted(controller.natures),
    }


def _controller(data: dict) -> Controller:
    return Controller(
        name=data["name"],
        key=data["key"],
        kind=HolderKind(data["kind"]),
        stake=_stake(data.get("stake")),
        natures=frozenset(data.get("natures", ())),
    )


def _listing_dict(listing: Listing) -> dict:
    return {
        "key": listing.key,
        "state": listing.state.value,
        "party": listing.party.value,
        "party_name": listing.party_name,
        "case_number": listing.case_number,
        "reason": listing.reason,
        "authority": listing.authority,
        "amount": _money_dict(listing.amount),
        "listed_on": _iso(listing.listed_on),
        "removed_on": _iso(listing.removed_on),
        "removal_reason": listing.removal_reason,
        "pledgor": listing.pledgor,
        "pledgee": listing.pledgee,
    }


def _listing(data: dict) -> Listing:
    return Listing(
        key=data["key"],
        state=ListingState(data["state"]),
        party=Party(data.get("party", Party.COMPANY.value)),
        party_name=data.get("party_name", ""),
        case_number=data.get("case_number", ""),
        reason=data.get("reason", ""),
        authority=data.get("authority", ""),
        amount=_money(data.get("amount")),
        listed_on=_day(data.get("listed_on")),
        removed_on=_day(data.get("removed_on")),
        removal_reason=data.get("removal_reason", ""),
        pledgor=data.get("pledgor", ""),
        pledgee=data.get("pledgee", ""),
    )


_CONTROL_SECTIONS = ("actual_controllers", "beneficial_owners")


def _status_dict(status: Status | None) -> dict | None:
    """The effective day only when known, so statuses without one keep the shape they always had."""
    if status is None:
        return None
    data = {"code": status.code.value, "raw": status.raw}
    return data if status.since is None else data | {"since": status.since.isoformat()}


def record_as_dict(record: RegistryRecord) -> dict:
    """A JSON-ready dict; :func:`record_from_dict` reads it back to an equal record.

    The Chinese vendors' sections, the signing authority and a status's effective day are written
    only when known, so records without them keep the shape they always had.
    """

    def many(items, convert):
        return None if items is None else [convert(item) for item in items]

    extra: dict[str, list[dict]] = {}
    for section in _CONTROL_SECTIONS:
        if getattr(record, section) is not None:
            extra[section] = [_controller_dict(c) for c in getattr(record, section)]
    for section in LISTING_SECTIONS.values():
        if getattr(record, section) is not None:
            extra[section] = [_listing_dict(item) for item in getattr(record, section)]
    if record.signing_authority is not None:
        extra["signing_authority"] = [_person_dict(person) or {} for person in record.signing_authority]
    return extra | {
        "source": record.source,
        "registry_id": record.registry_id,
        "name": record.name,
        "status": _status_dict(record.status),
        "registered_capital": _money_dict(record.registered_capital),
        "address": record.address,
        "legal_representative": _person_dict(record.legal_representative),
        "people": many(record.people, _person_dict),
        "shareholders": many(
            record.shareholders,
            lambda h: {
                "name": h.name,
                "key": h.key,
                "kind": h.kind.value,
                "stake": _stake_dict(h.stake),
                "subscribed": _money_dict(h.subscribed),
            },
        ),
        "controllers": many(record.controllers, _controller_dict),
        "finance_head": _person_dict(record.finance_head),
        "change_log": many(
            record.change_log,
            lambda e: {
                "categories": sorted(e.categories),
                "item": e.item,
                "before": e.before,
                "after": e.after,
                "date": _iso(e.date),
            },
        ),
    }


def record_from_dict(data: dict) -> RegistryRecord:
    def many(key, convert):
        items = data.get(key)
        return None if items is None else tuple(convert(item) for item in items)

    status = data.get("status")
    return RegistryRecord(
        source=data["source"],
        registry_id=data["registry_id"],
        name=data.get("name"),
        status=None
        if status is None
        else Status(CompanyStatus(status["code"]), status["raw"], _day(status.get("since"))),
        registered_capital=_money(data.get("registered_capital")),
        address=data.get("address"),
        legal_representative=_person(data.get("legal_representative")),
        people=many("people", _person),
        shareholders=many(
            "shareholders",
            lambda h: Shareholder(
                name=h["name"],
                key=h["key"],
                kind=HolderKind(h["kind"]),
                stake=_stake(h.get("stake")),
                subscribed=_money(h.get("subscribed")),
            ),
        ),
        controllers=many("controllers", _controller),
        finance_head=_person(data.get("finance_head")),
        change_log=many(
            "change_log",
            lambda e: ChangeLogEntry(
                categories=frozenset(Category(c) for c in e["categories"]),
                item=e["item"],
                before=e.get("before", ""),
                after=e.get("after", ""),
                date=_day(e.get("date")),
            ),
        ),
        actual_controllers=many("actual_controllers", _controller),
        beneficial_owners=many("beneficial_owners", _controller),
        **{section: many(section, _listing) for section in LISTING_SECTIONS.values()},
        signing_authority=many("signing_authority", _known_person),
    )
