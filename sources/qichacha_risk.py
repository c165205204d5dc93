"""Qichacha's risk answers mapped to record sections: control (643, 1003), the public risk lists
(739, 748, 751, 747, the court lists 741/740/926/742/761 and their person-level twins 764/765/766) and
the dated change log (734, 922, 410).

Pure functions of saved answer texts, used by :class:`sources.qichacha.QichachaSource`'s mapping.
Every list answer is ``{Status, Message, Paging?, Result: {VerifyResult, Data: [...]}}`` (734's
``Result`` is the array itself); "no result" (Status 201, or VerifyResult 0 with no Data) is an empty
list, an unknown shape a ParseError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sources.base import as_list, as_object, as_text, load_json
from sources.cn_common import cn_date, cn_money, cn_text, listing_state, status_dates
from watcher.errors import AuthError, ParseError, RateLimitedError, SourceError, TransientError
from watcher.normalize import (
    classify_change_item,
    clean_text,
    listing_identity,
    looks_like_company,
    parse_stake,
    person_key,
    text_key,
)
from watcher.record import (
    Category,
    ChangeLogEntry,
    Controller,
    HolderKind,
    Listing,
    ListingState,
    Party,
)

OK = "200"
NO_RESULT = "201"
_CONCURRENCY_LIMIT = "122"
# 110 same query failing (wait 2h), 120 traffic, 124 maintenance, 199 unknown, 203 query error,
# 205 processing.
_RETRY_LATER = frozenset({"110", "120", "124", "199", "203", "205"})
# 101-116: key, arrears, IP/signature, daily quota; 121: data may not leave China (host onshore).
_OPERATOR_MUST_ACT = frozenset({str(code) for code in range(101, 117)} | {"121", "214"})
# The account has not bought (or lost) this one interface: 111 not granted, 113 deleted, 114 disabled,
# 214 not purchased. On a signal's endpoint the signal is skipped; the registry card stays AuthError.
NOT_PURCHASED = frozenset({"111", "113", "114", "214"})


class NotPurchased(AuthError):
    """An endpoint the account may not call (:data:`NOT_PURCHASED`): its signal becomes unavailable."""


def error_class(status: str) -> type[SourceError]:
    """The error class of a non-success ``Status`` (201 is decided by the caller)."""
    if status in NOT_PURCHASED:
        return NotPurchased
    if status == _CONCURRENCY_LIMIT:
        return RateLimitedError
    if status in _RETRY_LATER:
        return TransientError
    if status in _OPERATOR_MUST_ACT:
        return AuthError
    return ParseError


@dataclass(frozen=True, slots=True)
class Answer:
    """One decoded envelope: its ``Result`` (None for "no result") and the paging it reported."""

    result: object
    total: int | None


def read_envelope(text: str, what: str) -> Answer:
    """The envelope of one answer; raises the classified error for anything but 200 and 201."""
    envelope = as_object(load_json(text, what=what), what)
    status = clean_text(as_text(envelope.get("Status"), f"{what}.Status"))
    if status == NO_RESULT:
        return Answer(None, 0)
    if status != OK:
        message = as_text(envelope.get("Message"), f"{what}.Message").strip()
        raise error_class(status)(f"{what}: Qichacha Status {status or '(none)'}: {message or 'no message'}")
    total = None
    paging = envelope.get("Paging")
    if paging is not None:
        total = _count(as_object(paging, f"{what}.Paging").get("TotalRecords"), f"{what}.Paging.TotalRecords")
    return Answer(envelope.get("Result"), total)


def _count(value: object, what: str) -> int:
    text = as_text(value, what).strip()
    if not text.isdigit():
        raise ParseError(f"{what} {text!r} is not a count")
    return int(text)


def list_items(answer: Answer, what: str, *, bare: bool = False) -> list[object]:
    """The rows of a list answer: ``Result.Data`` (``Result`` itself when ``bare``, as 734).

    A list shorter than the ``Paging.TotalRecords`` it reports is partial and fails: never a list
    with entries missing, which would look like removals.
    """
    if answer.result is None and answer.total == 0:
        return []
    if bare:
        items = as_list(answer.result, f"{what}.Result")
    else:
        result = as_object(answer.result, f"{what}.Result")
        data = result.get("Data")
        verified = as_text(result.get("VerifyResult"), f"{what}.VerifyResult").strip()
        if data is None and verified == "0":
            return []
        items = as_list(data, f"{what}.Result.Data")
    if answer.total is not None and answer.total != len(items):
        raise ParseError(f"{what}: {len(items)} rows where Paging.TotalRecords says {answer.total}")
    return items


def rows(text: str, what: str, *, bare: bool = False) -> list[dict[str, object]]:
    """The rows of a saved list answer, each checked to be an object."""
    items = list_items(read_envelope(text, what), what, bare=bare)
    return [as_object(item, f"{what}[{index}]") for index, item in enumerate(items)]


_field = cn_text


def _first(row: Mapping[str, object], names: Iterable[str], what: str) -> str:
    """The first non-empty of several spellings (the vendor's casing differs between endpoints)."""
    for name in names:
        value = _field(row, name, what)
        if value:
            return value
    return ""


def _digest_key(*parts: str) -> str:
    """A deterministic key for a list without ids (739, 748): a digest of its dated fields."""
    digest = hashlib.blake2b(digest_size=10)
    for part in parts:
        data = text_key(part).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(4, "big") + data)
    return f"h:{digest.hexdigest()}"


def _key(row: Mapping[str, object], what: str, *fields: str) -> str:
    """The stable key: the first of ``fields`` present (vendor id, case or registration number)."""
    key = _first(row, fields, what)
    if not key:
        raise ParseError(f"{what} has none of {', '.join(fields)}")
    return key


# -- control -------------------------------------------------------------------------------------


def _kind(key_no: str, name: str) -> HolderKind:
    """Qichacha person KeyNos start with ``p``; without one, a company-like name is an entity."""
    if key_no:
        return HolderKind.PERSON if key_no.startswith("p") else HolderKind.ENTITY
    return HolderKind.ENTITY if looks_like_company(name) else HolderKind.PERSON


def actual_controllers(text: str) -> tuple[Controller, ...] | None:
    """643: ``ControllerDataList`` entries with IsActual "1", else ``ActualControl.PersonList``.

    "No result" leaves the controllers unknown: the vendor found none, which is not "nobody".
    """
    answer = read_envelope(text, "actual_control")
    if answer.result is None:
        return None
    result = as_object(answer.result, "actual_control.Result")
    if result.get("ControllerDataList") is None and result.get("ActualControl") is None:
        raise ParseError("actual_control.Result has neither ControllerDataList nor ActualControl")
    controllers = _judged_controllers(result)
    if not controllers and result.get("ActualControl") is not None:
        controllers = _listed_controllers(as_object(result.get("ActualControl"), "ActualControl"))
    return tuple(controllers.values())


def _judged_controllers(result: Mapping[str, object]) -> dict[str, Controller]:
    """``ControllerDataList`` rows the vendor judges actual (IsActual "1"), with the main
    controller's control percentage, or a row's own voting percentage."""
    main = result.get("ControllerData")
    main_data = {} if main is None else as_object(main, "actual_control.ControllerData")
    main_key = _field(main_data, "KeyNo", "ControllerData")
    main_stake = _first(main_data, ("ControlPercent", "PercentTotal"), "ControllerData")
    controllers: dict[str, Controller] = {}
    listed = result.get("ControllerDataList")
    for index, item in enumerate(as_list(listed, "ControllerDataList") if listed is not None else []):
        what = f"ControllerDataList[{index}]"
        row = as_object(item, what)
        if _field(row, "IsActual", what) != "1":
            continue
        name, key_no = _named(row, what)
        stake_text = main_stake if key_no and key_no == main_key else ""
        if not stake_text and row.get("ConInfo") is not None:
            stake_text = _field(as_object(row.get("ConInfo"), f"{what}.ConInfo"), "VotePercent", what)
        controller = Controller(
            name, person_key(name, registry_id=key_no), _kind(key_no, name), parse_stake(stake_text)
        )
        controllers.setdefault(controller.key, controller)
    return controllers


def _listed_controllers(block: Mapping[str, object]) -> dict[str, Controller]:
    """``ActualControl.PersonList``; its ``StockPercent`` is the stake only when one person holds it."""
    people = as_list(block.get("PersonList") or [], "ActualControl.PersonList")
    stake = parse_stake(_field(block, "StockPercent", "ActualControl")) if len(people) == 1 else None
    controllers: dict[str, Controller] = {}
    for index, item in enumerate(people):
        what = f"ActualControl.PersonList[{index}]"
        name, key_no = _named(as_object(item, what), what)
        controller = Controller(name, person_key(name, registry_id=key_no), _kind(key_no, name), stake)
        controllers.setdefault(controller.key, controller)
    return controllers


def _named(row: Mapping[str, object], what: str) -> tuple[str, str]:
    """A controller row's Name (required) and KeyNo."""
    name, key_no = _field(row, "Name", what), _field(row, "KeyNo", what)
    if not name:
        raise ParseError(f"{what} has no Name")
    return name, key_no


def controlling_person(text: str | None) -> str:
    """The name of the first actual controller who is a person ("" when none or not fetched)."""
    if text is None:
        return ""
    for controller in actual_controllers(text) or ():
        if controller.kind is HolderKind.PERSON:
            return controller.name
    return ""


def beneficial_owners(text: str) -> tuple[Controller, ...] | None:
    """1003: ``BreakThroughList`` with their total (direct and indirect) stake."""
    answer = read_envelope(text, "beneficial_owner")
    if answer.result is None:
        return None
    result = as_object(answer.result, "beneficial_owner.Result")
    listed = result.get("BreakThroughList")
    owners: dict[str, Controller] = {}
    for index, item in enumerate(as_list(listed, "BreakThroughList") if listed is not None else []):
        what = f"BreakThroughList[{index}]"
        row = as_object(item, what)
        name, key_no = _field(row, "Name", what), _field(row, "KeyNo", what)
        if not name:
            raise ParseError(f"{what} has no Name")
        nature = _field(row, "BenifitType", what)
        owner = Controller(
            name,
            person_key(name, registry_id=key_no),
            _kind(key_no, name),
            parse_stake(_field(row, "TotalStockPercent", what)),
            frozenset({nature} if nature else ()),
        )
        owners.setdefault(owner.key, owner)
    return tuple(owners.values())


# -- risk lists ----------------------------------------------------------------------------------


def _removed_when_dated(row: Mapping[str, object], what: str) -> ListingState:
    return ListingState.REMOVED if _field(row, "RemoveDate", what) else ListingState.ACTIVE


def abnormal_operations(text: str) -> tuple[Listing, ...]:
    """739: listed and (once RemoveDate is filled) removed entries; no ids, so a digest is the key."""
    listings = []
    for index, row in enumerate(rows(text, "exception")):
        what = f"exception[{index}]"
        added, reason, office = (
            _field(row, name, what) for name in ("AddDate", "AddReason", "DecisionOffice")
        )
        listings.append(
            Listing(
                key=_digest_key(added, reason, office),
                state=_removed_when_dated(row, what),
                reason=reason,
                authority=office,
                listed_on=cn_date(added, f"{what}.AddDate"),
                removed_on=cn_date(row.get("RemoveDate"), f"{what}.RemoveDate"),
                removal_reason=_first(row, ("RomoveReason", "RemoveReason"), what),
            )
        )
    return unique(listings)


def serious_violations(text: str) -> tuple[Listing, ...]:
    """748: the serious-violation list, keyed like 739 by a digest of its dated fields."""
    listings = []
    for index, row in enumerate(rows(text, "serious_illegal")):
        what = f"serious_illegal[{index}]"
        kind, added, reason, office = (
            _field(row, name, what) for name in ("Type", "AddDate", "AddReason", "AddOffice")
        )
        listings.append(
            Listing(
                key=_digest_key(kind, added, reason, office),
                state=_removed_when_dated(row, what),
                reason=reason,
                authority=office,
                listed_on=cn_date(added, f"{what}.AddDate"),
                removed_on=cn_date(row.get("RemoveDate"), f"{what}.RemoveDate"),
                removal_reason=_field(row, "RemoveReason", what),
            )
        )
    return unique(listings)


def equity_pledges(text: str) -> tuple[Listing, ...]:
    """751: pledges of the borrower's equity; Status 无效 means released."""
    listings = []
    for index, row in enumerate(rows(text, "equity_pledged")):
        what = f"equity_pledged[{index}]"
        listings.append(
            Listing(
                key=_key(row, what, "Id", "RegistNo"),
                state=listing_state(row.get("Status"), f"{what}.Status"),
                case_number=_field(row, "RegistNo", what),
                amount=cn_money(row.get("PledgedAmount"), f"{what}.PledgedAmount"),
                listed_on=cn_date(row.get("RegDate"), f"{what}.RegDate"),
                pledgor=_field(row, "PledgorName", what),
                pledgee=_field(row, "PledgeeName", what),
            )
        )
    return unique(listings)


def chattel_mortgages(text: str) -> tuple[Listing, ...]:
    """747: mortgages over the borrower's movable assets; a CancelDate means cancelled."""
    listings = []
    for index, row in enumerate(rows(text, "chattel_mortgage")):
        what = f"chattel_mortgage[{index}]"
        detail = as_object(row.get("Detail") or {}, f"{what}.Detail")
        cancel = as_object(detail.get("CancelInfo") or {}, f"{what}.Detail.CancelInfo")
        cancelled_on = cn_date(cancel.get("CancelDate"), f"{what}.CancelDate")
        pledgees = [
            _field(as_object(item, f"{what}.PledgeeList"), "Name", what)
            for item in as_list(detail.get("PledgeeList") or [], f"{what}.Detail.PledgeeList")
        ]
        debtor = as_object(row.get("DebtorInfo") or {}, f"{what}.DebtorInfo")
        state = listing_state(row.get("Status"), f"{what}.Status")
        listings.append(
            Listing(
                key=_key(row, what, "Id", "RegisterNo"),
                state=ListingState.REMOVED if cancelled_on else state,
                case_number=_field(row, "RegisterNo", what),
                authority=_field(row, "RegisterOffice", what),
                amount=cn_money(row.get("DebtSecuredAmount"), f"{what}.DebtSecuredAmount"),
                listed_on=cn_date(row.get("RegisterDate"), f"{what}.RegisterDate"),
                removed_on=cancelled_on,
                removal_reason=_field(cancel, "CancelReason", what),
                pledgor=_field(debtor, "Name", what),
                pledgee="、".join(sorted(name for name in pledgees if name)),
            )
        )
    return unique(listings)


@dataclass(frozen=True, slots=True)
class Parties:
    """Who the person-level answers are about: the legal representative and the actual controller."""

    legal_representative: str
    actual_controller: str

    def of(self, person_name: str) -> tuple[Party, str]:
        """A company-level row naming one of them (742's PersonName) is against that person."""
        if person_name and text_key(person_name) == text_key(self.legal_representative):
            return Party.LEGAL_REPRESENTATIVE, self.legal_representative
        if person_name and text_key(person_name) == text_key(self.actual_controller):
            return Party.ACTUAL_CONTROLLER, self.actual_controller
        # Anyone else (a former legal representative, a manager) stays named: the entry keeps its
        # identity when the people around the company change.
        return Party.COMPANY, person_name


def enforcements(text: str, what: str, party: Party = Party.COMPANY, party_name: str = "") -> list[Listing]:
    """741 / 765: cases of enforcement; in force while listed."""
    listings = []
    for index, row in enumerate(rows(text, what)):
        here = f"{what}[{index}]"
        listings.append(
            Listing(
                key=_key(row, here, "Id", "Anno", "CaseNo"),
                state=ListingState.ACTIVE,
                party=party,
                party_name=party_name,
                case_number=_first(row, ("Anno", "CaseNo"), here),
                reason=_field(row, "SuspectedApplicant", here),
                authority=_first(row, ("ExecuteGov", "Executegov"), here),
                amount=cn_money(_first(row, ("Biaodi", "BiaoDi"), here), f"{here}.Biaodi"),
                listed_on=cn_date(_first(row, ("Liandate", "LiAnDate"), here), f"{here}.Liandate"),
            )
        )
    return listings


def dishonest_debtors(
    text: str, what: str, party: Party = Party.COMPANY, party_name: str = "", *, lifted: bool = False
) -> list[Listing]:
    """740 / 764 (current) and 926 (lifted). Keyed by case number, which an entry keeps when it moves
    from 740 to 926, so a lifting is a change of state, not a removal and a new entry."""
    listings = []
    for index, row in enumerate(rows(text, what)):
        here = f"{what}[{index}]"
        status = _first(row, ("Executestatus", "ExecuteStatus"), here)
        listed = _first(row, ("Publicdate", "PublicDate"), here) or _first(
            row, ("Liandate", "LiAnDate"), here
        )
        listings.append(
            Listing(
                key=_key(row, here, "Anno", "CaseNo", "Id"),
                state=ListingState.LIFTED if lifted else listing_state(status, f"{here}.Executestatus"),
                party=party,
                party_name=party_name,
                case_number=_first(row, ("Anno", "CaseNo"), here),
                reason=_field(row, "ActionRemark", here),
                authority=_first(row, ("Executegov", "ExecuteGov"), here),
                amount=cn_money(_field(row, "Amount", here), f"{here}.Amount"),
                listed_on=cn_date(listed, f"{here}.Publicdate"),
            )
        )
    return listings


def consumption_restrictions(
    text: str, what: str, parties: Parties, party: Party | None = None, party_name: str = ""
) -> list[Listing]:
    """742 / 766: restrictions on high consumption. A company-level row whose PersonName is the legal
    representative or the controller is against that person (``party`` None: decide per row)."""
    listings = []
    for index, row in enumerate(rows(text, what)):
        here = f"{what}[{index}]"
        against, name = (
            (party, party_name) if party is not None else parties.of(_field(row, "PersonName", here))
        )
        listed = _field(row, "PublishDate", here) or _field(row, "JudgeDate", here)
        listings.append(
            Listing(
                key=_key(row, here, "Id", "CaseNo"),
                state=ListingState.ACTIVE,
                party=against,
                party_name=name,
                case_number=_field(row, "CaseNo", here),
                reason=_field(row, "Applicant", here),
                listed_on=cn_date(listed, f"{here}.PublishDate"),
            )
        )
    return listings


def bankruptcies(text: str) -> tuple[Listing, ...]:
    """761: bankruptcy and reorganisation cases against the borrower (no status: in force while listed)."""
    listings = []
    for index, row in enumerate(rows(text, "bankruptcy")):
        here = f"bankruptcy[{index}]"
        applicants = [
            _field(as_object(item, f"{here}.ApplicantList"), "Name", here)
            for item in as_list(row.get("ApplicantList") or [], f"{here}.ApplicantList")
        ]
        listings.append(
            Listing(
                key=_key(row, here, "Id", "CaseNo"),
                state=ListingState.ACTIVE,
                case_number=_field(row, "CaseNo", here),
                reason="、".join(sorted(name for name in applicants if name)),
                listed_on=cn_date(row.get("PublicDate"), f"{here}.PublicDate"),
            )
        )
    return unique(listings)


def unique(listings: Iterable[Listing]) -> tuple[Listing, ...]:
    """One listing per identity (person, key), the first seen winning: the company list and a
    person-level list, or 740 and 926 during the vendor's move, may both carry one entry."""
    seen: dict[tuple[str, str], Listing] = {}
    for listing in listings:
        seen.setdefault(listing_identity(listing), listing)
    return tuple(seen.values())


# -- change log ----------------------------------------------------------------------------------


def change_log(
    changes: str, history_oper: str | None, basic_details: str | None, legal_representative: str
) -> tuple[ChangeLogEntry, ...]:
    """734's rows, 922's former legal representatives (dated when they left; the successor is the one
    who came in that day, else the current ``legal_representative``), and 410's revocation or
    cancellation (dating the status change)."""
    entries: list[ChangeLogEntry] = []
    for index, row in enumerate(rows(changes, "change_log", bare=True)):
        what = f"change_log[{index}]"
        label = _field(row, "ProjectName", what)
        entries.append(
            ChangeLogEntry(
                categories=classify_change_item(label),
                item=label,
                before=_joined(row.get("BeforeList"), f"{what}.BeforeList"),
                after=_joined(row.get("AfterList"), f"{what}.AfterList"),
                date=cn_date(row.get("ChangeDate"), f"{what}.ChangeDate"),
            )
        )
    if history_oper is not None:
        dated = {entry.date for entry in entries if Category.LEGAL_REPRESENTATIVE in entry.categories}
        former = rows(history_oper, "history_oper")
        starts = {
            cn_date(row.get("InDate"), "history_oper.InDate"): _field(row, "OperName", "history_oper")
            for row in former
        }
        for index, row in enumerate(former):
            what = f"history_oper[{index}]"
            left = cn_date(row.get("ChangeDate"), f"{what}.ChangeDate")
            if left is not None and left in dated:
                continue  # 734 has this change already, with both names
            entries.append(
                ChangeLogEntry(
                    categories=frozenset({Category.LEGAL_REPRESENTATIVE}),
                    item="法定代表人变更",
                    before=_field(row, "OperName", what),
                    after=starts.get(left, legal_representative) if left is not None else "",
                    date=left,
                )
            )
    if basic_details is not None:
        entries.extend(_revocation(basic_details))
    return tuple(entries)


def _joined(value: object, what: str) -> str:
    if value is None:
        return ""
    return "；".join(clean_text(as_text(item, what)) for item in as_list(value, what))


def _revocation(text: str) -> list[ChangeLogEntry]:
    """410's ``RevokeInfo``: a revocation and a cancellation, each a dated status entry."""
    answer = read_envelope(text, "basic_details")
    if answer.result is None:
        return []
    result = as_object(answer.result, "basic_details.Result")
    info = result.get("RevokeInfo")
    if info is None:
        return []
    revoke = as_object(info, "RevokeInfo")
    return list(
        status_dates(revoke, ("RevokeDate", "RevokeReason"), ("CancelDate", "CancelReason"), "RevokeInfo")
    )
