"""Tianyancha's risk lists and control data mapped to listings, controllers and change-log rows.

The adapter (:mod:`sources.tianyancha`) unwraps each answer's envelope and pages; these functions map
the items, with no I/O. Every list item gets a stable key (the vendor's id, else the case or
registration number, else a digest of the fields that date the listing), so a list that comes back
reordered or with dates written differently makes the same record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sources.base import as_list, as_object, as_text
from sources.cn_common import cn_date, cn_money, cn_text, listing_state, status_dates
from watcher.errors import ParseError
from watcher.normalize import clean_text, parse_stake, person_key, text_key
from watcher.record import (
    Category,
    ChangeLogEntry,
    Controller,
    HolderKind,
    Listing,
    ListingState,
    Party,
)

# actualControllerList ``type``: 1 a person, 2 a company [C S8].
_CONTROLLER_KINDS = {"1": HolderKind.PERSON, "2": HolderKind.ENTITY}
# jr/dishonest ``type``: "0" a person, "1" a company [C S4].
_PERSON_DEBTOR = "0"
# jr/bankruptcy ``status``: 0 historic, 1 current [C S4, S8].
_HISTORIC_BANKRUPTCY = "0"
# The keys of an ic/humanholding item as the only sample has them (UNVERIFIED, research §945).
_HUMANHOLDING_KEYS = frozenset({"name", "id", "type", "percent", "chainList"})
_HUMANHOLDING_KINDS = {"human": HolderKind.PERSON}
_FORMER_LEGAL_REPRESENTATIVE = "法定代表人变更（历史法定代表人）"


@dataclass(frozen=True, slots=True)
class KeyPeople:
    """Whom a listing naming a person is against: the legal representative (from the base facts) and
    the actual controllers (when that signal was fetched)."""

    legal_representative: str
    actual_controllers: frozenset[str] = frozenset()

    def party_of(self, name: str) -> Party:
        """A person named on the company's list. Courts restrict and list the company's legal
        representative at the time of the order, so a person who is an actual controller but not the
        current legal representative is the controller, anyone else the (then) legal representative.
        A later change of legal representative therefore does not change the listing's identity."""
        key = text_key(name)
        if key != text_key(self.legal_representative) and key in self.actual_controllers:
            return Party.ACTUAL_CONTROLLER
        return Party.LEGAL_REPRESENTATIVE


_text = cn_text


def _digest_key(*parts: str) -> str:
    """A key for an entry without id or number: the fields that date and explain its listing."""
    digest = hashlib.blake2b("\0".join(text_key(part) for part in parts).encode(), digest_size=8)
    return f"digest:{digest.hexdigest()}"


def _id_key(value: object, what: str) -> str:
    text = clean_text(as_text(value, what))
    return f"id:{text}" if text else ""


def _rows(items: Iterable[object], what: str) -> Iterable[tuple[str, dict[str, object]]]:
    for index, item in enumerate(items):
        label = f"{what}[{index}]"
        yield label, as_object(item, label)


# -- market regulator lists (mr/*) ------------------------------------------------------------------


def put_and_remove_listings(items: list[object], what: str) -> tuple[Listing, ...]:
    """mr/abnormal/2.0 and mr/illegalinfo/2.0: listed (put*) and maybe removed (remove*).

    No vendor id: the key is the listing date, reason and authority, which a removal leaves as they
    were. A removeDate (any format) means removed.
    """
    listings = []
    for label, row in _rows(items, what):
        put_reason = _text(row, "putReason", label)
        put_department = _text(row, "putDepartment", label)
        listed_on = cn_date(row.get("putDate"), f"{label}.putDate")
        removed_on = cn_date(row.get("removeDate"), f"{label}.removeDate")
        removed = removed_on is not None or bool(_text(row, "removeDate", label))
        listings.append(
            Listing(
                key=_id_key(row.get("id"), f"{label}.id")
                or _digest_key(listed_on.isoformat() if listed_on else "", put_reason, put_department),
                state=ListingState.REMOVED if removed else ListingState.ACTIVE,
                reason=put_reason,
                authority=put_department,
                listed_on=listed_on,
                removed_on=removed_on,
                removal_reason=_text(row, "removeReason", label),
            )
        )
    return tuple(listings)


def equity_pledges(items: list[object], what: str) -> tuple[Listing, ...]:
    """mr/equityInfo/2.0: the company's shares pledged; ``state`` 有效 / 无效."""
    listings = []
    for label, row in _rows(items, what):
        registration = _text(row, "regNumber", label)
        listed_on = cn_date(row.get("regDate"), f"{label}.regDate")
        pledgor, pledgee = _text(row, "pledgor", label), _text(row, "pledgee", label)
        state = listing_state(row.get("state"), f"{label}.state")
        listings.append(
            Listing(
                key=_id_key(row.get("id"), f"{label}.id")
                or registration
                or _digest_key(str(listed_on or ""), pledgor, pledgee),
                state=ListingState.REMOVED if state is ListingState.LIFTED else state,
                case_number=registration,
                amount=cn_money(row.get("equityAmount"), f"{label}.equityAmount"),
                listed_on=listed_on,
                removed_on=cn_date(row.get("cancelDate"), f"{label}.cancelDate"),
                removal_reason=_text(row, "cancelReason", label),
                pledgor=pledgor,
                pledgee=pledgee,
            )
        )
    return tuple(listings)


def chattel_mortgages(items: list[object], what: str) -> tuple[Listing, ...]:
    """mr/mortgageInfo/2.0: ``baseInfo`` with the registration, ``peopleInfo`` the mortgagees."""
    listings = []
    for label, row in _rows(items, what):
        base = as_object(row.get("baseInfo"), f"{label}.baseInfo")
        where = f"{label}.baseInfo"
        registration = _text(base, "regNum", where)
        listed_on = cn_date(base.get("regDate"), f"{where}.regDate")
        people = row.get("peopleInfo")
        mortgagees = sorted(
            _text(person, "peopleName", person_label)
            for person_label, person in _rows([] if people is None else as_list(people, label), label)
        )
        state = listing_state(base.get("status"), f"{where}.status")
        listings.append(
            Listing(
                key=_id_key(base.get("id"), f"{where}.id")
                or registration
                or _digest_key(str(listed_on or ""), *mortgagees),
                state=ListingState.REMOVED if state is ListingState.LIFTED else state,
                case_number=registration,
                reason=_text(base, "type", where),
                authority=_text(base, "regDepartment", where),
                amount=cn_money(base.get("amount"), f"{where}.amount"),
                listed_on=listed_on,
                removed_on=cn_date(base.get("cancelDate"), f"{where}.cancelDate"),
                removal_reason=_text(base, "cancelReason", where),
                pledgee="、".join(name for name in mortgagees if name),
            )
        )
    return tuple(listings)


# -- courts (jr/*, hi/dishonest) --------------------------------------------------------------------


def enforcements(items: list[object], what: str) -> tuple[Listing, ...]:
    """jr/zhixinginfo/2.0: the company as a party subject to enforcement (被执行人)."""
    listings = []
    for label, row in _rows(items, what):
        case = _text(row, "caseCode", label)
        listed_on = cn_date(row.get("caseCreateTime"), f"{label}.caseCreateTime")
        court = _text(row, "execCourtName", label)
        listings.append(
            Listing(
                key=case or _digest_key(str(listed_on or ""), court, _text(row, "execMoney", label)),
                state=ListingState.ACTIVE,
                case_number=case,
                authority=court,
                amount=cn_money(row.get("execMoney"), f"{label}.execMoney"),
                listed_on=listed_on,
            )
        )
    return tuple(listings)


def dishonest_debtors(
    items: list[object], what: str, people: KeyPeople, *, lifted: bool
) -> tuple[Listing, ...]:
    """jr/dishonest/2.0 (in force: being on the current list is the fact) and hi/dishonest/2.0
    (``lifted``: taken off the list). A person-type entry (``type`` "0") is against a key person."""
    listings = []
    for label, row in _rows(items, what):
        case = _text(row, "casecode", label)
        debtor = _text(row, "iname", label)
        person = clean_text(as_text(row.get("type"), f"{label}.type")) == _PERSON_DEBTOR
        listed_on = cn_date(row.get("regdate"), f"{label}.regdate")
        court = _text(row, "courtname", label)
        amount = row.get("amountInvolved")
        listings.append(
            Listing(
                key=case or _digest_key(str(listed_on or ""), court, _text(row, "gistid", label)),
                state=ListingState.LIFTED if lifted else ListingState.ACTIVE,
                party=people.party_of(debtor) if person else Party.COMPANY,
                party_name=debtor if person else "",
                case_number=case,
                reason=_text(row, "disrupttypename", label),
                authority=court,
                amount=None if amount is None else cn_money(amount, f"{label}.amountInvolved"),
                listed_on=listed_on,
            )
        )
    return tuple(listings)


def consumption_restrictions(
    items: list[object], what: str, company: str, people: KeyPeople
) -> tuple[Listing, ...]:
    """jr/consumptionRestriction/2.0: ``xname`` is whom the order restricts; when it is not the
    company itself, it is one of the company's key people."""
    listings = []
    for label, row in _rows(items, what):
        case = _text(row, "caseCode", label)
        restricted = _text(row, "xname", label)
        person = bool(restricted) and text_key(restricted) not in {
            text_key(company),
            text_key(_text(row, "qyinfo", label)),
        }
        listed_on = cn_date(row.get("caseCreateTime"), f"{label}.caseCreateTime")
        amount = row.get("amountInvolved")
        listings.append(
            Listing(
                key=_id_key(row.get("id"), f"{label}.id")
                or case
                or _digest_key(str(listed_on or ""), restricted, _text(row, "applicant", label)),
                state=ListingState.ACTIVE,
                party=people.party_of(restricted) if person else Party.COMPANY,
                party_name=restricted if person else "",
                case_number=case,
                reason=_text(row, "applicant", label),
                amount=None if amount is None else cn_money(amount, f"{label}.amountInvolved"),
                listed_on=listed_on,
            )
        )
    return tuple(listings)


def bankruptcies(items: list[object], what: str) -> tuple[Listing, ...]:
    """jr/bankruptcy/2.0: bankruptcy review / reorganisation cases; ``status`` 0 is historic."""
    listings = []
    for label, row in _rows(items, what):
        case = _text(row, "caseNo", label)
        listed_on = cn_date(row.get("submitTime"), f"{label}.submitTime")
        applicants = row.get("applicant")
        names = sorted(
            _text(applicant, "applicantName", applicant_label)
            for applicant_label, applicant in _rows(
                [] if applicants is None else as_list(applicants, f"{label}.applicant"), f"{label}.applicant"
            )
        )
        historic = clean_text(as_text(row.get("status"), f"{label}.status")) == _HISTORIC_BANKRUPTCY
        listings.append(
            Listing(
                key=_text(row, "uuid", label) or case or _digest_key(str(listed_on or ""), *names),
                state=ListingState.REMOVED if historic else ListingState.ACTIVE,
                case_number=case,
                # The case type and who applied: a bankruptcy has applicants, not a pledgee.
                reason=" · ".join(
                    part for part in (_text(row, "caseType", label), "、".join(n for n in names if n)) if part
                ),
                listed_on=listed_on,
            )
        )
    return tuple(listings)


# -- control ----------------------------------------------------------------------------------------


def actual_controllers(result: object, what: str) -> tuple[Controller, ...]:
    """ic/actualControl/3.0 ``actualControllerList``. ``ratio`` is a number whose scale the vendor
    does not document (UNVERIFIED): a bare number up to 1 is read as a fraction, above 1 as percent,
    a string with "%" as written; anything else leaves the stake unknown, never the controller."""
    body = as_object(result, f"{what} result")
    listed = body.get("actualControllerList")
    controllers = []
    for label, row in _rows([] if listed is None else as_list(listed, f"{what}.actualControllerList"), what):
        name = _text(row, "name", label)
        if not name:
            raise ParseError(f"{label} has no name")
        kind_text = clean_text(as_text(row.get("type"), f"{label}.type"))
        kind = _CONTROLLER_KINDS.get(kind_text)
        if kind is None:
            raise ParseError(f"{label}.type {kind_text!r} is neither a person (1) nor a company (2)")
        vendor_id = row.get("hId") if kind is HolderKind.PERSON else row.get("gId")
        ratio = row.get("ratio")
        stake = None if isinstance(ratio, bool) else parse_stake(as_text(ratio, f"{label}.ratio") or None)
        if stake is not None and not (0 <= stake.low <= stake.high <= 100):
            stake = None
        controllers.append(
            Controller(
                name=name,
                key=person_key(name, registry_id=as_text(vendor_id, f"{label}.id")),
                kind=kind,
                stake=stake,
                natures=frozenset({"实际控制人"}),
            )
        )
    return tuple(controllers)


def beneficial_owners(items: list[object], what: str) -> tuple[Controller, ...]:
    """ic/humanholding/2.0 items. The item shape is UNVERIFIED (one illustrative sample): mapped
    strictly as that sample has it, and any other shape fails the check rather than reading as
    "no beneficial owners"."""
    owners = []
    for label, row in _rows(items, what):
        missing = _HUMANHOLDING_KEYS - set(row)
        if missing:
            raise ParseError(f"{label}: unknown beneficial-owner shape (no {', '.join(sorted(missing))})")
        name = _text(row, "name", label)
        if not name:
            raise ParseError(f"{label} has no name")
        kind_text = clean_text(as_text(row.get("type"), f"{label}.type"))
        kind = _HUMANHOLDING_KINDS.get(kind_text.casefold())
        if kind is None:
            raise ParseError(f"{label}.type {kind_text!r}: unknown beneficial-owner kind")
        as_list(row.get("chainList"), f"{label}.chainList")
        percent = _text(row, "percent", label)
        stake = parse_stake(percent) if percent else None
        if percent and stake is None:
            raise ParseError(f"{label}.percent {percent!r} is not a percentage")
        owners.append(
            Controller(
                name=name,
                key=person_key(name, registry_id=as_text(row.get("id"), f"{label}.id")),
                kind=kind,
                stake=stake,
                natures=frozenset({"受益所有人"}),
            )
        )
    return tuple(owners)


# -- change log extras ------------------------------------------------------------------------------


def former_legal_representatives(result: object, what: str) -> tuple[ChangeLogEntry, ...]:
    """hi/ic/2.0 ``pastLegalPersonList``: each former legal representative as a dated change-log row
    (``time``: when they stopped, as the samples read; its meaning is UNVERIFIED)."""
    body = as_object(result, f"{what} result")
    listed = body.get("pastLegalPersonList")
    entries = []
    for label, row in _rows([] if listed is None else as_list(listed, f"{what}.pastLegalPersonList"), what):
        name = _text(row, "name", label)
        if not name:
            raise ParseError(f"{label} has no name")
        entries.append(
            ChangeLogEntry(
                categories=frozenset({Category.LEGAL_REPRESENTATIVE}),
                item=_FORMER_LEGAL_REPRESENTATIVE,
                before=name,
                date=cn_date(row.get("time"), f"{label}.time"),
            )
        )
    return tuple(entries)


def base_status_dates(company: dict[str, object]) -> tuple[ChangeLogEntry, ...]:
    """The base facts' revocation and deregistration as dated log rows."""
    return status_dates(company, ("revokeDate", "revokeReason"), ("cancelDate", "cancelReason"), "baseinfo")
