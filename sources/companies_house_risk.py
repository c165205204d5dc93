"""Companies House's risk signals as risk listings (pure): the register of charges, insolvency cases,
PSC statements, and the company profile's flags (overdue filings, a registered office in dispute or
undeliverable).

Field names are the API's (see ``tests/fixtures/registries/uk_companies_house/PROVENANCE.md``).
A list is complete or refused: a document holding fewer items than its total is a parse error,
never a partial list (missing charges would read as satisfied).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sources.base import as_date, as_list, as_object, as_text, load_json
from watcher.errors import ParseError
from watcher.normalize import clean_text
from watcher.record import Listing, ListingState

# What the fetch saves in place of a 404 that is the registry's way of saying "none".
NO_CHARGES_DOCUMENT: dict[str, object] = {"items": [], "total_count": 0}
NO_CASES_DOCUMENT: dict[str, object] = {"cases": []}
NO_STATEMENTS_DOCUMENT: dict[str, object] = {"items": [], "total_results": 0}

# ``status`` of a charge (api-enumerations ``mortgage_descriptions.yml``): outstanding and
# part-satisfied charges still secure a debt; satisfied ones are lifted.
_CHARGE_STATES: dict[str, ListingState] = {
    "outstanding": ListingState.ACTIVE,
    "part-satisfied": ListingState.ACTIVE,
    "fully-satisfied": ListingState.LIFTED,
    "satisfied": ListingState.LIFTED,
}

# ``dates[].type`` of an insolvency case that ends it (api-enumerations ``insolvency_case_date_type``).
_CASE_ENDS = frozenset(
    {
        "administration-discharged-on",
        "administration-ended-on",
        "concluded-winding-up-on",
        "case-end-on",
        "voluntary-arrangement-ended-on",
        "moratorium-ended-on",
    }
)

# The profile's flags: (listing key, block or field, what the listing says).
_FILING_FLAGS = (
    ("accounts", "accounts", "accounts overdue"),
    ("confirmation_statement", "confirmation_statement", "confirmation statement overdue"),
)
_OFFICE_FLAGS = (
    ("registered_office_is_in_dispute", "registered office in dispute"),
    ("undeliverable_registered_office_address", "undeliverable registered office address"),
)


def _document(text: str, what: str) -> dict[str, object]:
    document = as_object(load_json(text, what=what), what)
    if "errors" in document:
        raise ParseError(f"{what}: an error answer where a list was expected")
    return document


def complete_items(document: Mapping[str, object], what: str, total_key: str) -> list[object]:
    """The items of a list document that holds all it counts; ParseError for a partial list or one
    without a total (a capped list could not be told from a complete one)."""
    total = document.get(total_key)
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ParseError(f"{what} has no {total_key}")
    items = as_list(document.get("items", [] if total == 0 else None), f"{what}.items")
    if len(items) < total:
        raise ParseError(f"{what} holds {len(items)} of its {total} items: a partial list")
    return items


def _link_id(value: object, what: str) -> str:
    """The last segment of ``links.self``; "" when absent."""
    if value is None:
        return ""
    path = as_text(as_object(value, f"{what}.links").get("self"), f"{what}.links.self").strip().rstrip("/")
    return path.rsplit("/", 1)[-1] if "/" in path else ""


# -- charges ------------------------------------------------------------------------------------


def charges(text: str) -> tuple[Listing, ...]:
    """The register of charges: one listing per charge, keyed by its charge code (else its id, else
    its number), in force while outstanding or part-satisfied, lifted once satisfied."""
    document = _document(text, "charges")
    listings = []
    for index, item in enumerate(complete_items(document, "charges", "total_count")):
        listings.append(_charge(as_object(item, f"charges[{index}]"), f"charges[{index}]"))
    return tuple(listings)


def _charge(charge: Mapping[str, object], what: str) -> Listing:
    status = clean_text(as_text(charge.get("status"), f"{what}.status")).casefold()
    state = _CHARGE_STATES.get(status)
    if state is None:
        raise ParseError(f"{what}.status {status!r} is not a charge status")
    key, code, number = _charge_key(charge, what)
    return Listing(
        key=key,
        state=state,
        case_number=code or (f"No. {number}" if number else ""),
        reason=_charge_reason(charge, what),
        pledgee="; ".join(name for name in _persons_entitled(charge, what) if name),
        listed_on=as_date(charge.get("created_on"), f"{what}.created_on")
        or as_date(charge.get("delivered_on"), f"{what}.delivered_on"),
        removed_on=as_date(charge.get("satisfied_on"), f"{what}.satisfied_on")
        if state is ListingState.LIFTED
        else None,
        removal_reason="" if status == "outstanding" else status,
    )


def _charge_key(charge: Mapping[str, object], what: str) -> tuple[str, str, str]:
    """The charge's key (its code, else its id, else its number) with the code and number it came from,
    so a charge filed before charge codes existed still keeps one identity."""
    code = clean_text(as_text(charge.get("charge_code"), f"{what}.charge_code"))
    charge_id = clean_text(as_text(charge.get("id"), f"{what}.id")) or _link_id(charge.get("links"), what)
    number = clean_text(as_text(charge.get("charge_number"), f"{what}.charge_number"))
    key = code or (f"id:{charge_id}" if charge_id else "") or (f"number:{number}" if number else "")
    if not key:
        raise ParseError(f"{what} has no charge_code, id or charge_number")
    return key, code, number


def _charge_reason(charge: Mapping[str, object], what: str) -> str:
    """The classification's description (what the charge is over); empty when the register gives none."""
    classification = charge.get("classification")
    if classification is None:
        return ""
    return clean_text(as_text(as_object(classification, f"{what}.classification").get("description"), what))


def _persons_entitled(charge: Mapping[str, object], what: str) -> list[str]:
    """The chargees' names, in the register's order: who holds the security."""
    return [
        clean_text(
            as_text(as_object(person, f"{what}.persons_entitled").get("name"), f"{what}.persons_entitled")
        )
        for person in as_list(charge.get("persons_entitled") or [], f"{what}.persons_entitled")
    ]


# -- insolvency ---------------------------------------------------------------------------------


def insolvency_cases(text: str) -> tuple[Listing, ...]:
    """Insolvency cases as bankruptcy listings (a UK company is wound up, administered or in a
    voluntary arrangement, never made bankrupt): in force until a date that ends the case."""
    document = _document(text, "insolvency")
    listings = []
    for index, item in enumerate(as_list(document.get("cases"), "insolvency.cases")):
        listings.append(_case(as_object(item, f"insolvency.cases[{index}]"), f"insolvency.cases[{index}]"))
    return tuple(listings)


def _case(case: Mapping[str, object], what: str) -> Listing:
    kind = clean_text(as_text(case.get("type"), f"{what}.type")).casefold()
    if not kind:
        raise ParseError(f"{what} has no type")
    number = clean_text(as_text(case.get("number"), f"{what}.number"))
    starts, ends = _case_dates(case, what)
    practitioners = _acting_practitioners(case, what)
    started = min(starts) if starts else None
    ended = max(ends) if ends else None
    return Listing(
        key=number or f"{kind}:{started.isoformat() if started else ''}",
        state=ListingState.ACTIVE if ended is None else ListingState.REMOVED,
        case_number=number,
        reason=kind,
        authority="; ".join(name for name in practitioners if name),
        listed_on=started,
        removed_on=None if ended is None else ended[0],
        removal_reason="" if ended is None else ended[1],
    )


def _case_dates(case: Mapping[str, object], what: str) -> tuple[list[date], list[tuple[date, str]]]:
    """The case's dates split into those that start it and those (with their type) that end it."""
    starts: list[date] = []
    ends: list[tuple[date, str]] = []
    for position, entry in enumerate(as_list(case.get("dates") or [], f"{what}.dates")):
        dated = as_object(entry, f"{what}.dates[{position}]")
        day = as_date(dated.get("date"), f"{what}.dates[{position}].date")
        date_type = clean_text(as_text(dated.get("type"), f"{what}.dates[{position}].type")).casefold()
        if day is not None and date_type in _CASE_ENDS:
            ends.append((day, date_type))
        elif day is not None:
            starts.append(day)
    return starts, ends


def _acting_practitioners(case: Mapping[str, object], what: str) -> list[str]:
    """The practitioners still acting: one who ceased to act no longer speaks for the case."""
    practitioners = []
    for position, entry in enumerate(as_list(case.get("practitioners") or [], f"{what}.practitioners")):
        practitioner = as_object(entry, f"{what}.practitioners[{position}]")
        if practitioner.get("ceased_to_act_on") is None:
            practitioners.append(clean_text(as_text(practitioner.get("name"), f"{what}.practitioners.name")))
    return practitioners


# -- PSC statements -----------------------------------------------------------------------------


def psc_statements(text: str) -> tuple[Listing, ...]:
    """PSC statements (no registrable person, one not identified or not confirmed…): in force until
    ceased. Keyed by the statement's id, else its wording and notification date."""
    document = _document(text, "psc_statements")
    listings = []
    for index, item in enumerate(complete_items(document, "psc_statements", "total_results")):
        what = f"psc_statements[{index}]"
        entry = as_object(item, what)
        statement = clean_text(as_text(entry.get("statement"), f"{what}.statement")).casefold()
        if not statement:
            raise ParseError(f"{what} has no statement")
        notified_on = as_date(entry.get("notified_on"), f"{what}.notified_on")
        ceased_on = as_date(entry.get("ceased_on"), f"{what}.ceased_on")
        statement_id = _link_id(entry.get("links"), what)
        listings.append(
            Listing(
                key=statement_id or f"{statement}:{notified_on.isoformat() if notified_on else ''}",
                state=ListingState.ACTIVE if ceased_on is None else ListingState.LIFTED,
                reason=statement,
                listed_on=notified_on,
                removed_on=ceased_on,
            )
        )
    return tuple(listings)


# -- the profile's flags ------------------------------------------------------------------------


def _flag(value: object, what: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ParseError(f"{what} is not true/false")
    return value


def filings_overdue(profile: Mapping[str, object]) -> tuple[Listing, ...] | None:
    """``accounts.overdue`` and ``confirmation_statement.overdue`` as listings in force while true,
    dated by the missed ``next_due``; unknown (None) when the profile carries neither flag."""
    known = False
    listings = []
    for key, block_name, reason in _FILING_FLAGS:
        block = profile.get(block_name)
        if block is None:
            continue
        fields = as_object(block, block_name)
        overdue = _flag(fields.get("overdue"), f"{block_name}.overdue")
        if overdue is None:
            continue
        known = True
        if overdue:
            due = as_date(fields.get("next_due"), f"{block_name}.next_due")
            listings.append(Listing(key=key, state=ListingState.ACTIVE, reason=reason, listed_on=due))
    return tuple(listings) if known else None


def registered_office_issues(profile: Mapping[str, object]) -> tuple[Listing, ...] | None:
    """``registered_office_is_in_dispute`` and ``undeliverable_registered_office_address`` as
    listings in force while true; unknown (None) when the profile carries neither flag."""
    flags = {field: _flag(profile.get(field), field) for field, _ in _OFFICE_FLAGS}
    if all(value is None for value in flags.values()):
        return None
    return tuple(
        Listing(key=field, state=ListingState.ACTIVE, reason=reason)
        for field, reason in _OFFICE_FLAGS
        if flags[field]
    )
