"""Normalisation: make two fetches of the same facts compare equal, whatever their formatting.

Pure functions only. Sources call the parsers (stakes, amounts, role titles, person keys) while
mapping; the pipeline calls :func:`normalize_record` on every record before hashing and diffing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from watcher.quantities import CENT, stake_between
from watcher.quantities import parse_amount as parse_amount
from watcher.quantities import parse_stake as parse_stake
from watcher.record import (
    LISTING_SECTIONS,
    Category,
    ChangeLogEntry,
    CompanyStatus,
    Controller,
    Listing,
    ListingState,
    Money,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
    Status,
)
from watcher.text_clean import clean_text as clean_text
from watcher.text_clean import person_key as person_key
from watcher.text_clean import text_key as text_key

# -- role titles --------------------------------------------------------------------------------

_TITLE_SPLIT = re.compile(r"兼|、|/|,|;|，|；|&|\band\b|\bog\b|\bet\b", re.IGNORECASE)
# Longest, most specific phrases first: the first phrase found in a part decides its roles.
_ROLE_PHRASES: tuple[tuple[str, frozenset[Role]], ...] = tuple(
    (phrase, frozenset(roles))
    for phrase, roles in (
        ("法定代表人", {Role.LEGAL_REPRESENTATIVE}),
        ("执行事务合伙人", {Role.PARTNER, Role.LEGAL_REPRESENTATIVE}),
        ("财务负责人", {Role.FINANCE_HEAD}),
        ("财务总监", {Role.FINANCE_HEAD}),
        ("总会计师", {Role.FINANCE_HEAD}),
        ("chief financial officer", {Role.FINANCE_HEAD}),
        ("finance director", {Role.FINANCE_HEAD}),
        ("financial director", {Role.FINANCE_HEAD}),
        ("cfo", {Role.FINANCE_HEAD}),
        ("directeur financier", {Role.FINANCE_HEAD}),
        ("副董事长", {Role.DIRECTOR}),
        ("董事长", {Role.CHAIR, Role.DIRECTOR}),
        ("董事会秘书", {Role.SECRETARY}),
        ("监事会主席", {Role.SUPERVISOR}),
        ("监事", {Role.SUPERVISOR}),
        ("董事", {Role.DIRECTOR}),
        ("总经理", {Role.MANAGER}),
        ("副总经理", {Role.MANAGER}),
        ("经理", {Role.MANAGER}),
        ("总裁", {Role.MANAGER}),
        ("厂长", {Role.MANAGER}),
        ("负责人", {Role.MANAGER}),
        ("合伙人", {Role.PARTNER}),
        ("会计", {Role.ACCOUNTANT}),
        ("审计", {Role.AUDITOR}),
        ("秘书", {Role.SECRETARY}),
        ("vice-président", {Role.DIRECTOR}),
        ("président du conseil de surveillance", {Role.SUPERVISOR}),
        ("membre du conseil de surveillance", {Role.SUPERVISOR}),
        ("président du conseil", {Role.CHAIR, Role.DIRECTOR}),
        ("président-directeur général", {Role.LEGAL_REPRESENTATIVE, Role.CHAIR, Role.DIRECTOR, Role.MANAGER}),
        ("président du directoire", {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}),
        ("membre du directoire", {Role.MANAGER}),
        ("président", {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}),
        ("gérant", {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}),
        ("directeur général délégué", {Role.MANAGER}),
        ("directeur général", {Role.MANAGER}),
        ("administrateur", {Role.DIRECTOR}),
        ("commissaire aux comptes", {Role.AUDITOR}),
        ("chairman", {Role.CHAIR, Role.DIRECTOR}),
        ("chair", {Role.CHAIR, Role.DIRECTOR}),
        ("supervisory", {Role.SUPERVISOR}),
        ("secretary", {Role.SECRETARY}),
        ("auditor", {Role.AUDITOR}),
        ("accountant", {Role.ACCOUNTANT}),
        ("partner", {Role.PARTNER}),
        ("member", {Role.PARTNER}),
        ("director", {Role.DIRECTOR}),
        ("manager", {Role.MANAGER}),
        ("chief executive", {Role.MANAGER}),
        ("ceo", {Role.MANAGER}),
    )
)


def roles_from_title(title: object) -> frozenset[Role]:
    """``执行董事兼总经理`` → {director, manager}; unknown titles give {other}, never nothing."""
    text = clean_text(title).casefold()
    roles: set[Role] = set()
    for part in _TITLE_SPLIT.split(text):
        part = part.strip()
        if not part:
            continue
        for phrase, phrase_roles in _ROLE_PHRASES:
            if phrase in part:
                roles |= phrase_roles
                break
        else:
            roles.add(Role.OTHER)
    return frozenset(roles) if roles else frozenset({Role.OTHER})


# Which change categories a role puts its holder in. Roles outside the design's category list
# (secretary, auditor, accountant, other) are reported as ``manager`` changes: non-key, info.
ROLE_CATEGORY: dict[Role, Category] = {
    Role.LEGAL_REPRESENTATIVE: Category.LEGAL_REPRESENTATIVE,
    Role.CHAIR: Category.DIRECTOR,
    Role.DIRECTOR: Category.DIRECTOR,
    Role.SUPERVISOR: Category.SUPERVISOR,
    Role.MANAGER: Category.MANAGER,
    Role.FINANCE_HEAD: Category.FINANCE_HEAD,
    Role.PARTNER: Category.SHAREHOLDER,
    Role.SECRETARY: Category.MANAGER,
    Role.AUDITOR: Category.MANAGER,
    Role.ACCOUNTANT: Category.MANAGER,
    Role.OTHER: Category.MANAGER,
}


# -- change-log item labels ---------------------------------------------------------------------

_LOG_KEYWORDS: tuple[tuple[tuple[str, ...], frozenset[Category]], ...] = (
    (("财务负责人",), frozenset({Category.FINANCE_HEAD})),
    (("法定代表人", "负责人变更", "经营者", "首席代表"), frozenset({Category.LEGAL_REPRESENTATIVE})),
    (
        ("董事", "监事", "经理", "高级管理人员", "主要人员", "高管"),
        frozenset({Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER}),
    ),
    (("投资人", "股东", "出资", "合伙人", "股权"), frozenset({Category.SHAREHOLDER})),
    (("实际控制人",), frozenset({Category.ACTUAL_CONTROLLER})),
    (("受益所有人",), frozenset({Category.BENEFICIAL_OWNER})),
    (("名称",), frozenset({Category.NAME})),
    (("注册资本", "注册资金", "实收资本"), frozenset({Category.REGISTERED_CAPITAL})),
    (("住所", "地址", "经营场所"), frozenset({Category.ADDRESS})),
)


def classify_change_item(label: object) -> frozenset[Category]:
    """Categories of a Chinese change-log label, by keyword (labels vary by province and year)."""
    text = clean_text(label)
    for keywords, categories in _LOG_KEYWORDS:
        if any(keyword in text for keyword in keywords):
            return categories
    return frozenset()


# -- company status and holder kinds --------------------------------------------------------------

# First match wins: "吊销，未注销" is revoked, not deregistered.
_STATUS_WORDS: tuple[tuple[tuple[str, ...], CompanyStatus], ...] = (
    (("吊销",), CompanyStatus.REVOKED),
    (("注销",), CompanyStatus.DEREGISTERED),
    (("破产",), CompanyStatus.BANKRUPT),
    (("清算",), CompanyStatus.LIQUIDATION),
    (("经营异常",), CompanyStatus.ABNORMAL),
    (("存续", "在营", "在业", "开业", "在册"), CompanyStatus.ACTIVE),
)


def status_from_text(text: object) -> Status | None:
    """A Chinese registration status (登记状态) as vendors write it; unknown wording is ``other``."""
    raw = clean_text(text)
    if not raw:
        return None
    for words, code in _STATUS_WORDS:
        if any(word in raw for word in words):
            return Status(code, raw)
    return Status(CompanyStatus.OTHER, raw)


_COMPANY_NAME = re.compile(
    r"(公司|企业|合伙\)|集团|中心|事务所|合作社|研究院|研究所|委员会|管理局|银行|基金会|基金|厂)$|有限|"
    r"\b(co|ltd|limited|inc|llc|gmbh|plc|corp|corporation|as|asa|ab|ag|bv|nv|sa|sas|sarl|spa|lp|llp)\.?$",
    re.IGNORECASE,
)


def looks_like_company(name: object) -> bool:
    """Whether a holder's name is a company's (…有限公司, …合伙企业(有限合伙), … Ltd, … AS)."""
    return _COMPANY_NAME.search(clean_text(name)) is not None


# -- whole records ------------------------------------------------------------------------------


def _merge_people(people: Iterable[Person]) -> tuple[Person, ...]:
    """One entry per identity key, roles united; people who have resigned are not current officers."""
    merged: dict[str, Person] = {}
    texts: dict[str, set[str]] = {}
    for person in people:
        if person.resigned_on is not None:
            continue
        person = replace(
            person,
            name=clean_text(person.name),
            key=_clean_key(person.key, person.name),
            role_text=clean_text(person.role_text),
        )
        texts.setdefault(person.key, set()).update({person.role_text} - {""})
        known = merged.get(person.key)
        if known is None:
            merged[person.key] = person
        else:
            merged[person.key] = replace(
                known,
                roles=known.roles | person.roles,
                appointed_on=min((d for d in (known.appointed_on, person.appointed_on) if d), default=None),
            )
    # All titles of a person, joined once and cleaned, so that merging is order-free and idempotent.
    return tuple(
        sorted(
            (replace(p, role_text=clean_text(" / ".join(sorted(texts[p.key])))) for p in merged.values()),
            key=lambda p: p.key,
        )
    )


def _clean_key(key: str, name: str) -> str:
    key = clean_text(key).casefold()
    return key or person_key(name)


def _normalize_person(person: Person | None) -> Person | None:
    if person is None:
        return None
    return replace(
        person,
        name=clean_text(person.name),
        key=_clean_key(person.key, person.name),
        role_text=clean_text(person.role_text),
    )


def _normalize_money(money: Money | None) -> Money | None:
    if money is None:
        return None
    amount = money.amount.quantize(CENT) if money.amount is not None else None
    return Money(amount, money.currency, clean_text(money.raw))


def _merge_shareholders(holders: Iterable[Shareholder]) -> tuple[Shareholder, ...]:
    """One entry per holder. A holder listed with several different holdings (tranches) holds their
    sum; a row repeated verbatim counts once. Both rules are order-free."""
    groups: dict[str, dict[tuple, Shareholder]] = {}
    for holder in holders:
        holder = replace(
            holder,
            name=clean_text(holder.name),
            key=_clean_key(holder.key, holder.name),
            stake=stake_between(holder.stake.low, holder.stake.high) if holder.stake is not None else None,
            subscribed=_normalize_money(holder.subscribed),
        )
        # A repeated row is the same holding however it is spelt: compare what a change compares.
        groups.setdefault(holder.key, {}).setdefault(_holding_identity(holder), holder)
    merged = [_combined_holdings(sorted(group.values(), key=_holding_order)) for group in groups.values()]
    return tuple(sorted(merged, key=lambda h: h.key))


def _holding_identity(holder: Shareholder) -> tuple:
    stake = (holder.stake.low, holder.stake.high) if holder.stake else None
    money = holder.subscribed
    amount = (
        None
        if money is None
        else (money.amount, money.currency)
        if money.amount is not None
        else text_key(money.raw)
    )
    return (holder.kind.value, stake, amount)


def _holding_order(holder: Shareholder) -> tuple:
    stake = (holder.stake.low, holder.stake.high) if holder.stake else (Decimal(-1), Decimal(-1))
    amount = (
        holder.subscribed.amount
        if holder.subscribed and holder.subscribed.amount is not None
        else Decimal(-1)
    )
    return (holder.name, stake, amount, holder.kind.value)


def _combined_holdings(holdings: list[Shareholder]) -> Shareholder:
    first = holdings[0]
    if len(holdings) == 1:
        return first
    stakes = [h.stake for h in holdings if h.stake is not None]
    stake = None
    if len(stakes) == len(holdings):
        stake = stake_between(
            sum((s.low for s in stakes), Decimal(0)),
            min(Decimal(100), sum((s.high for s in stakes), Decimal(0))),
        )
    amounts = [h.subscribed for h in holdings if h.subscribed is not None]
    numbers = [m.amount for m in amounts if m.amount is not None]
    subscribed = None
    if len(numbers) == len(holdings) and len({m.currency for m in amounts}) == 1:
        subscribed = Money(sum(numbers, Decimal(0)), amounts[0].currency, " + ".join(m.raw for m in amounts))
    return replace(first, stake=stake, subscribed=subscribed)


def _merge_controllers(controllers: Iterable[Controller]) -> tuple[Controller, ...]:
    merged: dict[str, Controller] = {}
    for controller in controllers:
        controller = replace(
            controller,
            name=clean_text(controller.name),
            key=_clean_key(controller.key, controller.name),
            natures=frozenset(clean_text(n).casefold() for n in controller.natures if clean_text(n)),
        )
        known = merged.get(controller.key)
        merged[controller.key] = (
            controller if known is None else replace(known, natures=known.natures | controller.natures)
        )
    return tuple(sorted(merged.values(), key=lambda c: c.key))


def listing_identity(listing: Listing) -> tuple[str, str]:
    """A listing's identity across checks: the person it names (if any) and the vendor's key (id or
    case number). Not the person's role: a restriction naming 周明远 is the same entry whether he is
    the legal representative today or was yesterday."""
    return (text_key(listing.party_name), text_key(listing.key))


_STATE_ORDER = {ListingState.ACTIVE: 0, ListingState.REMOVED: 1, ListingState.LIFTED: 2}


def _normalize_listing(listing: Listing) -> Listing:
    return replace(
        listing,
        key=clean_text(listing.key),
        party_name=clean_text(listing.party_name),
        case_number=clean_text(listing.case_number),
        reason=clean_text(listing.reason),
        authority=clean_text(listing.authority),
        amount=_normalize_money(listing.amount),
        removal_reason=clean_text(listing.removal_reason),
        pledgor=clean_text(listing.pledgor),
        pledgee=clean_text(listing.pledgee),
    )


def _merge_listings(listings: Iterable[Listing]) -> tuple[Listing, ...]:
    """One listing per identity, in identity order. When a vendor reports the same entry twice
    (e.g. in its current and its history list at once), the active one wins: the cautious reading."""
    merged: dict[tuple[str, str], Listing] = {}
    for listing in map(_normalize_listing, listings):
        identity = listing_identity(listing)
        known = merged.get(identity)
        if known is None or _listing_preference(listing) < _listing_preference(known):
            merged[identity] = listing
    return tuple(merged[identity] for identity in sorted(merged))


def _listing_preference(listing: Listing) -> tuple:
    return (_STATE_ORDER[listing.state], json.dumps(_comparable_listing(listing), ensure_ascii=False))


def _comparable_money(money: Money | None) -> list | None:
    if money is None:
        return None
    return [str(money.amount) if money.amount is not None else text_key(money.raw), money.currency]


def _comparable_listing(listing: Listing) -> list:
    return [
        listing.party.value,
        *listing_identity(listing),
        listing.state.value,
        text_key(listing.case_number),
        text_key(listing.reason),
        text_key(listing.authority),
        _comparable_money(listing.amount),
        listing.listed_on.isoformat() if listing.listed_on else None,
        listing.removed_on.isoformat() if listing.removed_on else None,
        text_key(listing.removal_reason),
        text_key(listing.pledgor),
        text_key(listing.pledgee),
    ]


def log_entry_key(entry: ChangeLogEntry) -> tuple:
    """A change-log row's identity: case-, width- and spacing-insensitive, like the content hash."""
    return (
        entry.date.isoformat() if entry.date else "",
        text_key(entry.item),
        text_key(entry.before),
        text_key(entry.after),
        tuple(sorted(entry.categories)),
    )


def _normalize_log(entries: Iterable[ChangeLogEntry]) -> tuple[ChangeLogEntry, ...]:
    """One row per identity (rows differing only in formatting are one), in identity order."""
    merged: dict[tuple, ChangeLogEntry] = {}
    for entry in entries:
        entry = ChangeLogEntry(
            categories=entry.categories,
            item=clean_text(entry.item),
            before=clean_text(entry.before),
            after=clean_text(entry.after),
            date=entry.date,
        )
        key = log_entry_key(entry)
        known = merged.get(key)
        if known is None or _log_sort_key(entry) < _log_sort_key(known):
            merged[key] = entry
    return tuple(merged[key] for key in sorted(merged))


def _log_sort_key(entry: ChangeLogEntry) -> tuple:
    return (
        entry.date.isoformat() if entry.date else "",
        entry.item,
        entry.before,
        entry.after,
        sorted(entry.categories),
    )


def normalize_record(record: RegistryRecord) -> RegistryRecord:
    """The canonical form: idempotent, order-free, formatting-free. Unknown sections stay None."""
    listings: dict[str, Any] = {
        section: None if getattr(record, section) is None else _merge_listings(getattr(record, section))
        for section in LISTING_SECTIONS.values()
    }
    return replace(
        record,
        registry_id=clean_text(record.registry_id),
        name=clean_text(record.name) if record.name is not None else None,
        status=Status(record.status.code, clean_text(record.status.raw), record.status.since)
        if record.status
        else None,
        registered_capital=_normalize_money(record.registered_capital),
        address=clean_text(record.address) if record.address is not None else None,
        legal_representative=_normalize_person(record.legal_representative),
        people=_merge_people(record.people) if record.people is not None else None,
        shareholders=_merge_shareholders(record.shareholders) if record.shareholders is not None else None,
        controllers=_merge_controllers(record.controllers) if record.controllers is not None else None,
        finance_head=_normalize_person(record.finance_head),
        change_log=_normalize_log(record.change_log) if record.change_log is not None else None,
        actual_controllers=None
        if record.actual_controllers is None
        else _merge_controllers(record.actual_controllers),
        beneficial_owners=None
        if record.beneficial_owners is None
        else _merge_controllers(record.beneficial_owners),
        **listings,
        signing_authority=None
        if record.signing_authority is None
        else _merge_people(record.signing_authority),
    )


# -- serialisation and hashing ------------------------------------------------------------------


def comparable_content(record: RegistryRecord) -> dict:
    """What a change can be made of: the normalised facts without raw texts or display names' casing."""
    record = normalize_record(record)

    def person(p: Person | None) -> list | None:
        if p is None:
            return None
        return [p.key, text_key(p.name), sorted(p.roles)]

    money = _comparable_money

    stake = _stake_pair
    controllers = _comparable_controllers
    return _comparable_vendor_sections(record) | {
        "name": text_key(record.name) if record.name is not None else None,
        "status": record.status.code.value if record.status else None,
        "status_raw": text_key(record.status.raw) if record.status else None,
        "capital": money(record.registered_capital),
        "address": text_key(record.address) if record.address is not None else None,
        "legal_representative": person(record.legal_representative),
        "people": None if record.people is None else [person(p) for p in record.people],
        "shareholders": None
        if record.shareholders is None
        else [
            [h.key, text_key(h.name), h.kind.value, stake(h.stake), money(h.subscribed)]
            for h in record.shareholders
        ],
        "controllers": None if record.controllers is None else controllers(record.controllers),
        "finance_head": person(record.finance_head),
        "change_log": None
        if record.change_log is None
        else [
            [
                sorted(e.categories),
                text_key(e.item),
                text_key(e.before),
                text_key(e.after),
                e.date.isoformat() if e.date else None,
            ]
            for e in record.change_log
        ],
    }


def _stake_pair(stake: Stake | None) -> list | None:
    return None if stake is None else [str(stake.low), str(stake.high)]


def _comparable_controllers(items: tuple[Controller, ...]) -> list:
    return [[c.key, text_key(c.name), c.kind.value, _stake_pair(c.stake), sorted(c.natures)] for c in items]


def _comparable_vendor_sections(record: RegistryRecord) -> dict[str, list]:
    """The Chinese vendors' sections, the signing authority and a status's effective day, each only
    when known: the content hash of every record without them is what it was before they existed
    (no snapshot churn on upgrade)."""
    extra: dict[str, list] = {}
    for section in ("actual_controllers", "beneficial_owners"):
        if getattr(record, section) is not None:
            extra[section] = _comparable_controllers(getattr(record, section))
    for section in LISTING_SECTIONS.values():
        if getattr(record, section) is not None:
            extra[section] = [_comparable_listing(item) for item in getattr(record, section)]
    if record.signing_authority is not None:
        # The role text is part of the fact here: "Signatur i fellesskap" binds less than "Signatur".
        extra["signing_authority"] = [
            [p.key, text_key(p.name), text_key(p.role_text)] for p in record.signing_authority
        ]
    if record.status is not None and record.status.since is not None:
        extra["status_since"] = [record.status.since.isoformat()]
    return extra


def content_hash(record: RegistryRecord) -> str:
    """SHA-256 of the comparable content: equal hashes mean nothing worth a snapshot changed."""
    payload = json.dumps(
        comparable_content(record), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
