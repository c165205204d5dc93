"""Companies House's officer and PSC lists mapped: current officers and persons with significant
control, and their appointment and notification dates as the change log. Also the error envelope any
of its documents may be, refused as data. Used by :mod:`sources.companies_house`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sources.base import as_date, as_list, as_object, as_text, load_json
from watcher.errors import NotFoundError, ParseError
from watcher.normalize import ROLE_CATEGORY, clean_text, parse_stake, person_key
from watcher.record import (
    Category,
    ChangeLogEntry,
    Controller,
    HolderKind,
    Person,
    Role,
    Stake,
)

PROFILE_NOT_FOUND = "company-profile-not-found"

_DIRECTOR = frozenset({Role.DIRECTOR})
_SECRETARY = frozenset({Role.SECRETARY})
_PARTNER = frozenset({Role.PARTNER})
_SUPERVISOR = frozenset({Role.SUPERVISOR})
_MANAGER = frozenset({Role.MANAGER})
_OTHER = frozenset({Role.OTHER})
# Every ``officer_role`` of the API's enumeration. Partners of LLPs and limited partnerships are the
# owners, hence ``partner`` (a shareholder change). Receivers, judicial factors and the people
# authorised to represent an overseas company are not the company's own officers: ``other``.
_OFFICER_ROLES: dict[str, frozenset[Role]] = {
    "director": _DIRECTOR,
    "corporate-director": _DIRECTOR,
    "nominee-director": _DIRECTOR,
    "corporate-nominee-director": _DIRECTOR,
    "member-of-an-administrative-organ": _DIRECTOR,
    "corporate-member-of-an-administrative-organ": _DIRECTOR,
    "secretary": _SECRETARY,
    "corporate-secretary": _SECRETARY,
    "nominee-secretary": _SECRETARY,
    "corporate-nominee-secretary": _SECRETARY,
    "llp-member": _PARTNER,
    "llp-designated-member": _PARTNER,
    "corporate-llp-member": _PARTNER,
    "corporate-llp-designated-member": _PARTNER,
    "general-partner-in-a-limited-partnership": _PARTNER,
    "limited-partner-in-a-limited-partnership": _PARTNER,
    "member-of-a-supervisory-organ": _SUPERVISOR,
    "corporate-member-of-a-supervisory-organ": _SUPERVISOR,
    "member-of-a-management-organ": _MANAGER,
    "corporate-member-of-a-management-organ": _MANAGER,
    "manager-of-an-eeig": _MANAGER,
    "corporate-manager-of-an-eeig": _MANAGER,
    "managing-officer": _MANAGER,
    "corporate-managing-officer": _MANAGER,
    "cic-manager": _MANAGER,
    "receiver-and-manager": _OTHER,
    "judicial-factor": _OTHER,
    "person-authorised-to-accept": _OTHER,
    "person-authorised-to-represent": _OTHER,
    "person-authorised-to-represent-and-accept": _OTHER,
}

_OFFICER_ID = re.compile(r"/officers/([^/?#]+)/appointments")
# natures_of_control bands: "ownership-of-shares-25-to-50-percent[-as-trust|-as-firm]", the LLP
# "right-to-share-surplus-assets-…-limited-liability-partnership" and the overseas-entity
# "…-more-than-25-percent-registered-overseas-entity" forms.
_BAND = re.compile(
    r"^(?P<what>ownership-of-shares|right-to-share-surplus-assets|voting-rights)-"
    r"(?:(?P<low>\d+)-to-(?P<high>\d+)|more-than-(?P<above>\d+))-percent"
)
_OWNERSHIP = frozenset({"ownership-of-shares", "right-to-share-surplus-assets"})


def refuse_error_envelope(document: Mapping[str, object], what: str, **context: str | None) -> None:
    """``{"errors": [{"error": "company-profile-not-found", …}]}`` is an answer, never data."""
    if "errors" not in document:
        return
    errors = document["errors"]
    codes = []
    for error in errors if isinstance(errors, list) else [errors]:
        code = error.get("error") if isinstance(error, dict) else error
        codes.append(clean_text(code) if isinstance(code, str) else "?")
    message = f"{what}: Companies House error {', '.join(codes) or '(no code)'}"
    if PROFILE_NOT_FOUND in codes:
        raise NotFoundError(message, **context)
    raise ParseError(message, **context)


def _list_items(text: str, what: str) -> list[object]:
    """The items of a (merged) list document, refusing one that holds fewer than it says it has."""
    document = as_object(load_json(text, what=what), what)
    refuse_error_envelope(document, what)
    total = document.get("total_results")
    items = as_list(document.get("items", [] if total == 0 else None), f"{what}.items")
    if isinstance(total, int) and not isinstance(total, bool) and len(items) < total:
        raise ParseError(f"{what} holds {len(items)} of its {total} items: a partial list")
    return items


def _birth_month(value: object, what: str) -> str:
    """``{"month": 4, "year": 1979}`` → ``1979-04`` (the API never gives the day)."""
    if value is None:
        return ""
    birth = as_object(value, what)
    year = as_text(birth.get("year"), f"{what}.year").strip()
    month = as_text(birth.get("month"), f"{what}.month").strip()
    if not year:
        return ""
    return f"{year}-{month.zfill(2)}" if month else year


def _is_founding(day: date, founded_on: date | None) -> bool:
    return founded_on is not None and day <= founded_on


@dataclass(frozen=True, slots=True)
class _Appointment:
    """One row of the officer list: the person it maps to and the dates of its history."""

    person: Person
    resigned_on: date | None

    @property
    def current(self) -> bool:
        return self.resigned_on is None

    def log_entries(self, *, founded_on: date | None) -> list[ChangeLogEntry]:
        """An appointment row and, once resigned, a resignation row.

        The founding officers' appointments (on the day of incorporation) are logged without a
        category: forming the company is not a change of its key people, and counting it would make
        a young borrower's first real change look like its second.
        """
        label = f"{self.person.name} ({self.person.role_text or 'officer'})"
        categories = frozenset(ROLE_CATEGORY[role] for role in self.person.roles)
        entries = []
        appointed_on = self.person.appointed_on
        if appointed_on is not None:
            founding = _is_founding(appointed_on, founded_on)
            entries.append(
                ChangeLogEntry(
                    categories=frozenset() if founding else categories,
                    item=f"appointed {label}",
                    after=self.person.name,
                    date=appointed_on,
                )
            )
        if self.resigned_on is not None:
            entries.append(
                ChangeLogEntry(
                    categories=categories,
                    item=f"resigned {label}",
                    before=self.person.name,
                    date=self.resigned_on,
                )
            )
        return entries


def change_log(
    officers: tuple[_Appointment, ...] | None,
    pscs: tuple[_SignificantControl, ...] | None,
    *,
    founded_on: date | None,
) -> tuple[ChangeLogEntry, ...] | None:
    """The officer and PSC histories as dated rows; unknown unless both lists are known, as a log
    missing one list would make that list's rows look new when they come back."""
    if officers is None or pscs is None:
        return None
    rows = [entry for officer in officers for entry in officer.log_entries(founded_on=founded_on)]
    rows += [entry for psc in pscs for entry in psc.log_entries(founded_on=founded_on)]
    return tuple(rows)


def officers(text: str) -> tuple[_Appointment, ...]:
    appointments = []
    for index, item in enumerate(_list_items(text, "officers")):
        what = f"officers[{index}]"
        officer = as_object(item, what)
        name = clean_text(as_text(officer.get("name"), f"{what}.name"))
        if not name:
            raise ParseError(f"{what} has no name")
        role_text = clean_text(as_text(officer.get("officer_role"), f"{what}.officer_role")).casefold()
        officer_id = _officer_id(officer.get("links"), what)
        key = (
            person_key(name, registry_id=f"ch-officer:{officer_id}")
            if officer_id
            else person_key(name, birth=_birth_month(officer.get("date_of_birth"), f"{what}.date_of_birth"))
        )
        person = Person(
            name=name,
            key=key,
            roles=_OFFICER_ROLES.get(role_text, _OTHER),
            role_text=role_text,
            appointed_on=as_date(officer.get("appointed_on"), f"{what}.appointed_on"),
        )
        resigned_on = as_date(officer.get("resigned_on"), f"{what}.resigned_on")
        appointments.append(_Appointment(person=person, resigned_on=resigned_on))
    return tuple(appointments)


def _officer_id(links: object, what: str) -> str:
    """The person's id across companies, from ``links.officer.appointments``; "" when absent."""
    if links is None:
        return ""
    officer_links = as_object(links, f"{what}.links").get("officer")
    if officer_links is None:
        return ""
    path = as_text(as_object(officer_links, f"{what}.links.officer").get("appointments"), what)
    match = _OFFICER_ID.search(path)
    return match.group(1) if match else ""


@dataclass(frozen=True, slots=True)
class _SignificantControl:
    """One row of the PSC list: the controller and the dates it was notified and ceased."""

    controller: Controller
    notified_on: date | None
    ceased_on: date | None
    ceased: bool

    @property
    def current(self) -> bool:
        return not self.ceased and self.ceased_on is None

    def log_entries(self, *, founded_on: date | None) -> list[ChangeLogEntry]:
        """Notified and ceased rows; a PSC notified on the day of incorporation is the founding owner."""
        controller = {Category.CONTROLLER}
        label = f"{self.controller.name} (PSC)"
        entries = []
        if self.notified_on is not None:
            founding = _is_founding(self.notified_on, founded_on)
            entries.append(
                ChangeLogEntry(
                    categories=frozenset() if founding else frozenset(controller),
                    item=f"notified {label}",
                    after=self.controller.name,
                    date=self.notified_on,
                )
            )
        if self.ceased_on is not None:
            entries.append(
                ChangeLogEntry(
                    categories=frozenset(controller),
                    item=f"ceased {label}",
                    before=self.controller.name,
                    date=self.ceased_on,
                )
            )
        return entries


def pscs(text: str) -> tuple[_SignificantControl, ...]:
    rows = []
    for index, item in enumerate(_list_items(text, "psc")):
        what = f"psc[{index}]"
        psc = as_object(item, what)
        kind = clean_text(as_text(psc.get("kind"), f"{what}.kind")).casefold()
        name = clean_text(as_text(psc.get("name"), f"{what}.name")) or clean_text(
            as_text(psc.get("description"), f"{what}.description")
        )
        if not name:
            raise ParseError(f"{what} has no name")
        natures = tuple(
            clean_text(as_text(nature, f"{what}.natures_of_control"))
            for nature in as_list(psc.get("natures_of_control") or [], f"{what}.natures_of_control")
        )
        psc_id = _psc_id(psc.get("links"), what)
        key = (
            person_key(name, registry_id=psc_id)
            if psc_id
            else person_key(name, birth=_birth_month(psc.get("date_of_birth"), f"{what}.date_of_birth"))
        )
        ceased = psc.get("ceased")
        if ceased is not None and not isinstance(ceased, bool):
            raise ParseError(f"{what}.ceased is not true/false")
        controller = Controller(
            name=name,
            key=key,
            kind=_psc_kind(kind, psc),
            stake=_stake(natures),
            natures=frozenset(nature for nature in natures if nature),
        )
        rows.append(
            _SignificantControl(
                controller=controller,
                notified_on=as_date(psc.get("notified_on"), f"{what}.notified_on"),
                ceased_on=as_date(psc.get("ceased_on"), f"{what}.ceased_on"),
                ceased=bool(ceased),
            )
        )
    return tuple(rows)


def _psc_id(links: object, what: str) -> str:
    """The last segment of ``links.self`` (``…/individual/{id}``); "" when absent."""
    if links is None:
        return ""
    path = as_text(as_object(links, f"{what}.links").get("self"), f"{what}.links.self").strip().rstrip("/")
    return path.rsplit("/", 1)[-1] if "/" in path else ""


def _psc_kind(kind: str, psc: Mapping[str, object]) -> HolderKind:
    """Individuals (and super-secure PSCs, who are individuals) are people; companies and other
    legal persons are entities. An unknown kind is an entity when it carries an identification."""
    if kind.startswith(("individual", "super-secure")):
        return HolderKind.PERSON
    if kind.startswith(("corporate-entity", "legal-person")):
        return HolderKind.ENTITY
    return HolderKind.ENTITY if psc.get("identification") is not None else HolderKind.PERSON


def _stake(natures: tuple[str, ...]) -> Stake | None:
    """The ownership band (shares, or an LLP's surplus assets), else the voting band; the highest
    band when several apply (held directly and as trustee, say); None when control is not a band."""
    ownership: list[Stake] = []
    voting: list[Stake] = []
    for nature in natures:
        match = _BAND.match(nature)
        if match is None:
            continue
        if match["above"] is not None:
            stake = parse_stake(f"{match['above']}-100%")
        else:
            stake = parse_stake(f"{match['low']}-{match['high']}%")
        if stake is not None:
            (ownership if match["what"] in _OWNERSHIP else voting).append(stake)
    bands = ownership or voting
    return max(bands, key=lambda band: (band.high, band.low)) if bands else None
