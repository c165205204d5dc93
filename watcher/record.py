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


KEY_PERSON_CATEGORIES: frozenset[Category] = frozenset(
    {
        Category.LEGAL_REPRESENTATIVE,
        Category.DIRECTOR,
        Category.SHAREHOLDER,
        Category.FINANCE_HEAD,
        Category.CONTROLLER,
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


class HolderKind(StrEnum):
    PERSON = "person"
    ENTITY = "entity"


@dataclass(frozen=True, slots=True)
class Status:
    code: CompanyStatus
    raw: str


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


def record_as_dict(record: RegistryRecord) -> dict:
    """A JSON-ready dict; :func:`record_from_dict` reads it back to an equal record."""

    def many(items, convert):
        return None if items is None else [convert(item) for item in items]

    return {
        "source": record.source,
        "registry_id": record.registry_id,
        "name": record.name,
        "status": None
        if record.status is None
        else {"code": record.status.code.value, "raw": record.status.raw},
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
        "controllers": many(
            record.controllers,
            lambda c: {
                "name": c.name,
                "key": c.key,
                "kind": c.kind.value,
                "stake": _stake_dict(c.stake),
                "natures": sorted(c.natures),
            },
        ),
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
        status=None if status is None else Status(CompanyStatus(status["code"]), status["raw"]),
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
        controllers=many(
            "controllers",
            lambda c: Controller(
                name=c["name"],
                key=c["key"],
                kind=HolderKind(c["kind"]),
                stake=_stake(c.get("stake")),
                natures=frozenset(c.get("natures", ())),
            ),
        ),
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
    )
