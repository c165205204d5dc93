"""Norway: Brønnøysundregistrene's Enhetsregisteret open data API (free, no key).

Two calls per company: the unit (``/enheter/{orgnr}``) and its roles (``/enheter/{orgnr}/roller``).
The register keeps no history and no shareholders; the only change stamp is each role group's
``sistEndret``, which becomes the change log so the pipeline can date role changes. The signature
and procuration groups (SIGN, PROK) name who can bind the company: the record's signing authority.
A status takes its effective day from the unit's own dates (konkursdato, underAvviklingDato, the
tvangsoppløsning dates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from sources import register
from sources.base import (
    SourceOptions,
    as_date,
    as_list,
    as_object,
    as_text,
    load_json,
    looks_like_challenge,
)
from sources.brreg_updates import RoleUpdates, UnitUpdates
from sources.change_feed import ChangeFeed, FeedOptions
from sources.http import HttpSource
from sources.http.options import HttpSourceOptions
from sources.http.responses import HttpResponse, error_message, raise_for_status, registry_answer
from watcher.errors import BlockedError, NotFoundError, ParseError
from watcher.normalize import ROLE_CATEGORY, clean_text, person_key
from watcher.record import (
    Category,
    ChangeLogEntry,
    CompanyStatus,
    Money,
    Person,
    RegistryRecord,
    Role,
    Status,
)
from watcher.vocabulary import Language

_GONE = 410


class BrregOptions(HttpSourceOptions, FeedOptions):
    base_url: str = "https://data.brreg.no/enhetsregisteret/api"


_DAILY_MANAGER = frozenset({Role.LEGAL_REPRESENTATIVE, Role.MANAGER})
# Signatur (alone, i fellesskap = jointly, hver for seg = each alone) and prokura (the same three).
_SIGNATURE_OR_PROCURATION = frozenset({"SIGN", "SIFE", "SIHV", "PROK", "POFE", "POHV"})
_FALLBACK_SIGNING_TEXT = {
    "SIGN": "Signatur",
    "SIFE": "Signatur i fellesskap",
    "SIHV": "Signatur hver for seg",
    "PROK": "Prokura",
    "POFE": "Prokura i fellesskap",
    "POHV": "Prokura hver for seg",
}

# Role type code → canonical roles. Daglig leder (and an enkeltpersonforetak's owner) stands in for
# the legal representative. Deputy board members count as directors: they sit when a member cannot.
_ROLE_TYPES: dict[str, frozenset[Role]] = {
    "DAGL": _DAILY_MANAGER,
    "INNH": _DAILY_MANAGER,
    "LEDE": frozenset({Role.CHAIR, Role.DIRECTOR}),
    "NEST": frozenset({Role.DIRECTOR}),
    "MEDL": frozenset({Role.DIRECTOR}),
    "VARA": frozenset({Role.DIRECTOR}),
    "OBS": frozenset({Role.OTHER}),
    "REVI": frozenset({Role.AUDITOR}),
    "REGN": frozenset({Role.ACCOUNTANT}),
    "DTPR": frozenset({Role.PARTNER}),
    "DTSO": frozenset({Role.PARTNER}),
    "KOMP": frozenset({Role.PARTNER}),
    **{code: frozenset({Role.OTHER}) for code in _SIGNATURE_OR_PROCURATION},
}
_FALLBACK_ROLE_TEXT = {"VARA": "Varamedlem", **_FALLBACK_SIGNING_TEXT}
# Contact persons are an administrative detail, not officers.
_IGNORED_ROLE_TYPES = frozenset({"KONT"})
# Whose person becomes ``legal_representative``, best first.
_LEGAL_REPRESENTATIVE_TYPES = ("DAGL", "INNH")


@dataclass(frozen=True, slots=True)
class _RoleHolder:
    """One current holder of one role type (a person may hold several)."""

    type_code: str
    person: Person


@dataclass(frozen=True, slots=True)
class _RoleGroup:
    """A ``rollegruppe``: its holders and what its ``sistEndret`` stamp can date."""

    code: str
    description: str
    changed_on: date | None
    holders: tuple[_RoleHolder, ...]
    categories: frozenset[Category]


@register("brreg")
class BrregSource(HttpSource):
    """Enhetsregisteret: unit, status flags, capital, address and role holders of a Norwegian company."""

    Options: ClassVar[type[SourceOptions]] = BrregOptions
    display_names: ClassVar[Mapping[Language, str]] = {
        Language.EN: "Brønnøysundregistrene",
        Language.ZH_CN: "挪威 Brønnøysundregistrene",
    }
    endpoints: ClassVar[tuple[str, ...]] = ("enhet", "roller")
    identifier_name: ClassVar[str] = "orgnr"

    id_kind: ClassVar[str | None] = "no_orgnr"
    jurisdiction: ClassVar[str | None] = "no"
    settings: BrregOptions

    @property
    def mapping_fingerprint(self) -> str:
        """Marks the mapping that reads signing authority and status dates: an answer stored by an
        earlier mapping is mapped again once, so every borrower gets its signing-authority baseline
        before the next real change (which would otherwise be taken as that baseline, unalerted)."""
        return f"{super().mapping_fingerprint}\0signing-authority"

    # -- fetching ---------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def change_feeds(self) -> tuple[ChangeFeed, ...]:
        """The unit and role update feeds (``feed = false`` turns them off)."""
        if not self.settings.feed:
            return ()
        return (UnitUpdates(self.http, self.normalise_id), RoleUpdates(self.http, self.normalise_id))

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        context = {"source": self.name, "registry_id": registry_id}
        unit = await self.http.get(f"/enheter/{registry_id}", registry_id=registry_id)
        if unit.status == _GONE:
            # Removed for legal reasons: the register answers 410 with the unit's orgnr and slettedato,
            # which the mapping reads as deregistered. Only that answer: a 410 alone is no fact.
            _check_removed_unit(unit, registry_id, context)
            return {"enhet": unit.text}
        _raise_for_status(unit, "enhet", context, not_found=f"no unit {registry_id} in Enhetsregisteret")
        raw = {"enhet": unit.text}
        roles = await self.http.get(f"/enheter/{registry_id}/roller", registry_id=registry_id)
        if roles.status in (404, _GONE):
            # The register's own JSON answer leaves the role sections unknown rather than empty; a
            # challenge page in its place is a block, and any other page is no answer at all.
            if looks_like_challenge(roles.preview):
                raise BlockedError(f"roller: HTTP {roles.status} with a captcha or challenge page", **context)
            registry_answer(roles, what="roller", context=context)
        else:
            _raise_for_status(roles, "roller", context)
            raw["roller"] = roles.text
        return raw

    # -- mapping ----------------------------------------------------------------------------------

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        unit, orgnr = _unit_for(raw, registry_id)
        status = _status(unit)
        name = clean_text(as_text(unit.get("navn"), "navn")) or None
        if name is None and status.code is not CompanyStatus.DEREGISTERED:
            raise ParseError("enhet has no navn")

        groups = None if raw.get("roller") is None else _role_groups(raw["roller"])
        return RegistryRecord(
            source=source,
            registry_id=orgnr,
            name=name,
            status=status,
            registered_capital=_capital(unit.get("kapital")),
            address=_address(unit.get("forretningsadresse")),
            legal_representative=None if groups is None else _legal_representative(groups),
            people=None if groups is None else tuple(h.person for g in groups for h in g.holders),
            shareholders=None,
            controllers=None,
            finance_head=None,
            change_log=None if groups is None else tuple(_log_entry(g) for g in groups if g.categories),
            signing_authority=None if groups is None else _signing_authority(groups),
        )


# -- unit -----------------------------------------------------------------------------------------


def _unit_for(raw: Mapping[str, str], registry_id: str) -> tuple[Mapping[str, object], str]:
    """The enhet answer and its organisation number, refused unless it is the unit asked for: a
    register answering for another company must never be read as this one."""
    if "enhet" not in raw:
        raise ParseError("no enhet response")
    unit = as_object(load_json(raw["enhet"], what="enhet"), "enhet")
    orgnr = as_text(unit.get("organisasjonsnummer"), "organisasjonsnummer").strip()
    if not orgnr:
        raise ParseError("enhet has no organisasjonsnummer")
    if orgnr != "".join(registry_id.split()):
        raise ParseError(f"enhet is for {orgnr}, not {registry_id}")
    return unit, orgnr


def _flag(unit: Mapping[str, object], key: str) -> bool:
    value = unit.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ParseError(f"{key} is not true/false")


# The decisions that put a unit under compulsory winding-up or dissolution, each with its own date
# (Enhetsregisteret v2 field names, as the register's changelog and independent clients spell them).
_COMPULSORY_DATES = (
    "tvangsavvikletPgaManglendeSlettingDato",
    "tvangsopplostPgaManglendeDagligLederDato",
    "tvangsopplostPgaManglendeRevisorDato",
    "tvangsopplostPgaManglendeRegnskapDato",
    "tvangsopplostPgaMangelfulltStyreDato",
)


def _status(unit: Mapping[str, object]) -> Status:
    """The most severe flag wins: deleted, then bankrupt, then compulsory or voluntary winding-up,
    dated by the register's own date for it when it gives one.

    The raw wording is the register's own term; alerts put it beside the status in the reader's
    language ("破产（Konkurs）")."""
    if as_text(unit.get("slettedato"), "slettedato").strip():
        return Status(CompanyStatus.DEREGISTERED, "Slettet", _day(unit, "slettedato"))
    if _flag(unit, "konkurs"):
        return Status(CompanyStatus.BANKRUPT, "Konkurs", _day(unit, "konkursdato"))
    compulsory = [day for key in _COMPULSORY_DATES if (day := _day(unit, key)) is not None]
    if _flag(unit, "underTvangsavviklingEllerTvangsopplosning"):
        # Several decisions may stand (no auditor, then no accounts): the first one began it.
        return Status(
            CompanyStatus.LIQUIDATION,
            "Under tvangsavvikling eller tvangsoppløsning",
            min(compulsory, default=None),
        )
    if _flag(unit, "underAvvikling"):
        return Status(CompanyStatus.LIQUIDATION, "Under avvikling", _day(unit, "underAvviklingDato"))
    return Status(CompanyStatus.ACTIVE, "Aktiv")


def _day(unit: Mapping[str, object], key: str) -> date | None:
    return as_date(unit.get(key), key)


def _capital(value: object) -> Money | None:
    if value is None:
        return None
    capital = as_object(value, "kapital")
    amount_text = as_text(capital.get("belop"), "kapital.belop").strip()
    currency = as_text(capital.get("valuta"), "kapital.valuta").strip().upper() or None
    raw = " ".join(part for part in (amount_text, currency) if part)
    if not raw:
        return None
    return Money(_decimal_amount(amount_text), currency, raw)


def _decimal_amount(text: str) -> Decimal | None:
    try:
        amount = Decimal(text).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _address(value: object) -> str | None:
    """One line: street lines, postcode and town, country. None when the unit has no business address."""
    if value is None:
        return None
    address = as_object(value, "forretningsadresse")
    street = as_list(address.get("adresse") or [], "forretningsadresse.adresse")
    lines = [as_text(line, "forretningsadresse.adresse") for line in street]
    postcode = as_text(address.get("postnummer"), "forretningsadresse.postnummer")
    town = as_text(address.get("poststed"), "forretningsadresse.poststed")
    country = as_text(address.get("land"), "forretningsadresse.land")
    parts = [clean_text(part) for part in (*lines, f"{postcode} {town}", country)]
    return ", ".join(part for part in parts if part) or None


# -- roles ----------------------------------------------------------------------------------------


def _role_groups(text: str) -> tuple[_RoleGroup, ...]:
    document = as_object(load_json(text, what="roller"), "roller")
    if "rollegrupper" not in document:
        # A roles answer without its one section is broken, not "no roles": every officer would
        # otherwise look removed.
        raise ParseError("roller has no rollegrupper")
    groups = as_list(document["rollegrupper"], "rollegrupper")
    return tuple(_role_group(as_object(group, "rollegruppe"), index) for index, group in enumerate(groups))


def _role_group(group: Mapping[str, object], index: int) -> _RoleGroup:
    group_type = as_object(group.get("type"), f"rollegrupper[{index}].type")
    code = as_text(group_type.get("kode"), "rollegruppe kode").strip().upper()
    if not code:
        raise ParseError(f"rollegrupper[{index}] has no type code")
    holders: list[_RoleHolder] = []
    categories: set[Category] = {Category.LEGAL_REPRESENTATIVE} if code == "DAGL" else set()
    for position, item in enumerate(as_list(group.get("roller", []), f"{code}.roller")):
        role = as_object(item, f"{code}.roller[{position}]")
        role_type = as_object(role.get("type"), f"{code}.roller[{position}].type")
        type_code = as_text(role_type.get("kode"), "rolle kode").strip().upper()
        if not type_code:
            raise ParseError(f"{code}.roller[{position}] has no type code")
        if type_code in _IGNORED_ROLE_TYPES:
            continue
        roles = _ROLE_TYPES.get(type_code, frozenset({Role.OTHER}))
        categories.update(ROLE_CATEGORY[r] for r in roles)
        if type_code in _SIGNATURE_OR_PROCURATION:
            categories.add(Category.SIGNING_AUTHORITY)
        if _flag(role, "fratraadt") or _flag(role, "avregistrert"):
            continue
        description = clean_text(as_text(role_type.get("beskrivelse"), "rolle beskrivelse"))
        role_text = description or _FALLBACK_ROLE_TEXT.get(type_code, type_code)
        holder = _holder(role, roles, role_text, f"{code}.roller[{position}]")
        holders.append(_RoleHolder(type_code, holder))
    return _RoleGroup(
        code=code,
        description=clean_text(as_text(group_type.get("beskrivelse"), "rollegruppe beskrivelse")),
        changed_on=as_date(group.get("sistEndret"), f"{code}.sistEndret"),
        holders=tuple(holders),
        categories=frozenset(categories),
    )


def _holder(role: Mapping[str, object], roles: frozenset[Role], role_text: str, what: str) -> Person:
    """A person keyed by name + birth date, or a company keyed by its orgnr."""
    if role.get("person") is not None:
        person = as_object(role["person"], f"{what}.person")
        name = _person_name(person.get("navn"), f"{what}.person.navn")
        key = person_key(name, birth=as_text(person.get("fodselsdato"), f"{what}.person.fodselsdato"))
    elif role.get("enhet") is not None:
        unit = as_object(role["enhet"], f"{what}.enhet")
        names = unit.get("navn")
        parts = as_list(names, f"{what}.enhet.navn") if isinstance(names, list) else [names]
        name = clean_text(" ".join(as_text(part, f"{what}.enhet.navn") for part in parts))
        orgnr = as_text(unit.get("organisasjonsnummer"), f"{what}.enhet.organisasjonsnummer")
        key = person_key(name, registry_id=orgnr)
    else:
        raise ParseError(f"{what} has neither person nor enhet")
    if not name:
        raise ParseError(f"{what} has no name")
    return Person(name=name, key=key, roles=roles, role_text=role_text)


def _person_name(value: object, what: str) -> str:
    if not isinstance(value, dict):
        return clean_text(as_text(value, what))
    parts = (as_text(value.get(part), f"{what}.{part}") for part in ("fornavn", "mellomnavn", "etternavn"))
    return clean_text(" ".join(parts))


def _legal_representative(groups: tuple[_RoleGroup, ...]) -> Person | None:
    holders = [holder for group in groups for holder in group.holders]
    for type_code in _LEGAL_REPRESENTATIVE_TYPES:
        for holder in holders:
            if holder.type_code == type_code:
                return holder.person
    return None


def _signing_authority(groups: tuple[_RoleGroup, ...]) -> tuple[Person, ...]:
    """The current signature and procuration holders (persons or entities), each with the terms of
    their authority as the register words them ("Prokura i fellesskap"). Empty when the company
    registers none: then its board and daglig leder act by law, and no one is named here."""
    return tuple(
        holder.person
        for group in groups
        for holder in group.holders
        if holder.type_code in _SIGNATURE_OR_PROCURATION
    )


def _log_entry(group: _RoleGroup) -> ChangeLogEntry:
    return ChangeLogEntry(
        categories=group.categories,
        item=f"{group.code} sistEndret",
        after=group.description,
        date=group.changed_on,
    )


def _check_removed_unit(response: HttpResponse, orgnr: str, context: dict) -> None:
    """A 410 is a removed unit only with the register's own body: this orgnr and a slettedato.

    Anything else in its place (a proxy's or firewall's page, an empty body, other JSON) is a failed
    fetch of the kind it shows, never "deregistered".
    """
    unit = registry_answer(response, what="enhet", context=context)
    number = unit.get("organisasjonsnummer") if isinstance(unit, dict) else None
    deleted_on = unit.get("slettedato") if isinstance(unit, dict) else None
    if not (
        isinstance(number, str)
        and "".join(number.split()) == orgnr
        and isinstance(deleted_on, str)
        and as_date(deleted_on, "slettedato") is not None
    ):
        raise ParseError(
            "enhet: HTTP 410 without the removed unit's organisasjonsnummer and slettedato", **context
        )


def _raise_for_status(response: HttpResponse, what: str, context: dict, not_found: str | None = None) -> None:
    """400 is Brreg's answer to an orgnr it considers invalid; the rest has the common meaning."""
    if response.status == 400:
        raise NotFoundError(f"invalid orgnr (HTTP 400: {error_message(response)})", **context)
    raise_for_status(response, what=what, context=context, not_found=not_found)
