"""China: Qichacha open API (企查查开放平台), 企业工商详情 (ApiCode 735, ``/ECIInfoVerify/GetInfo``).

One call gives the base facts, shareholders (``Partners``), key staff (``Employees``) and the dated
change log (``ChangeRecords``). Errors come back as HTTP 200 with a ``Status`` code in the envelope.

Each further signal is a set of separately billed endpoints (control, the public risk lists, court
lists against the company and against its legal representative and actual controller, the paged
change log); their answers are mapped in :mod:`sources.qichacha_risk`. A paged list's pages are
merged into one saved document, so a replay maps the same data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import ClassVar, TypeVar

from pydantic import Field

from sources import qichacha_risk as risk
from sources import register
from sources.base import SourceOptions, as_date, as_list, as_object, as_text, load_json
from sources.http import HttpSource
from sources.http.options import VendorOptions
from sources.http.responses import raise_for_status
from watcher.errors import AuthError, NotFoundError, ParseError
from watcher.normalize import (
    classify_change_item,
    clean_text,
    looks_like_company,
    parse_amount,
    parse_stake,
    person_key,
    roles_from_title,
    status_from_text,
    text_key,
)
from watcher.record import (
    CN_SIGNALS,
    ChangeLogEntry,
    CompanyStatus,
    HolderKind,
    Party,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Signal,
    Status,
)
from watcher.vocabulary import Language

_INFO_PATH = "/ECIInfoVerify/GetInfo"
_PAGE_SIZE = 20

_ENTITY_STOCK_TYPES = ("企业", "公司", "合伙", "法人", "机构", "单位", "政府", "国资", "基金", "社会团体")
_SHOULD_CAPI_UNIT = 10_000  # ShouldCapi is in 万元


class QichachaOptions(VendorOptions):
    key: str = Field(min_length=1)
    secret: str = Field(min_length=1, repr=False)
    base_url: str = "https://api.qichacha.com"
    # Every page is a billed call; a list longer than this many pages fails the check (never partial).
    max_pages: int = Field(default=25, ge=1, le=100)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One risk endpoint: its raw key, ApiCode, path, the query parameter that names the company,
    whether it is paged, and whether it asks about a person (``personName``)."""

    name: str
    code: int
    path: str
    param: str = "searchKey"
    paged: bool = False
    person: bool = False


def _person_endpoints(role: str) -> tuple[Endpoint, ...]:
    return (
        Endpoint(f"person_shixin_{role}", 764, "/PersonSXCheck/GetList", paged=True, person=True),
        Endpoint(f"person_zhixing_{role}", 765, "/PersonZXCheck/GetList", paged=True, person=True),
        Endpoint(f"person_sumptuary_{role}", 766, "/PersonSumptuaryCheck/GetList", paged=True, person=True),
    )


ACTUAL_CONTROL = Endpoint("actual_control", 643, "/ActualControl/SuspectedActualControl", param="keyWord")
BENEFICIAL_OWNER = Endpoint("beneficial_owner", 1003, "/BeneficialOwner/GetInfo", param="companyName")
EXCEPTION = Endpoint("exception", 739, "/ExceptionCheck/GetList")
SERIOUS_ILLEGAL = Endpoint("serious_illegal", 748, "/SeriousIllegalCheck/GetList")
EQUITY_PLEDGED = Endpoint("equity_pledged", 751, "/EquityPledgedCheck/GetList", paged=True)
CHATTEL_MORTGAGE = Endpoint("chattel_mortgage", 747, "/ChattelMortgageCheck/GetList", paged=True)
ZHIXING = Endpoint("zhixing", 741, "/ZhixingCheck/GetList", paged=True)
SHIXIN = Endpoint("shixin", 740, "/ShixinCheck/GetList", paged=True)
HISTORY_SHIXIN = Endpoint("history_shixin", 926, "/HistoryShiXinCheck/GetList", paged=True)
SUMPTUARY = Endpoint("sumptuary", 742, "/SumptuaryCheck/GetList", paged=True)
BANKRUPTCY = Endpoint("bankruptcy", 761, "/BankruptcyCheck/GetList", paged=True)
LEGAL_REPRESENTATIVE_CHECKS = _person_endpoints("legal_representative")
ACTUAL_CONTROLLER_CHECKS = _person_endpoints("actual_controller")
CHANGE_LOG = Endpoint("change_log", 734, "/ECIChange/GetList", paged=True)
HISTORY_OPER = Endpoint("history_oper", 922, "/HistoryOperCheck/GetList")
BASIC_DETAILS = Endpoint("basic_details", 410, "/ECIV4/GetBasicDetailsByName", param="keyword")

RISK_ENDPOINTS: tuple[Endpoint, ...] = (
    ACTUAL_CONTROL,
    BENEFICIAL_OWNER,
    EXCEPTION,
    SERIOUS_ILLEGAL,
    EQUITY_PLEDGED,
    CHATTEL_MORTGAGE,
    ZHIXING,
    SHIXIN,
    HISTORY_SHIXIN,
    SUMPTUARY,
    BANKRUPTCY,
    *LEGAL_REPRESENTATIVE_CHECKS,
    *ACTUAL_CONTROLLER_CHECKS,
    CHANGE_LOG,
    HISTORY_OPER,
    BASIC_DETAILS,
)
# The company-level endpoints of the signals fetched as a plain set (controller, judicial and the
# change log also depend on other answers, see ``QichachaSource.fetch_signals``).
_SIGNAL_ENDPOINTS: dict[Signal, tuple[Endpoint, ...]] = {
    Signal.CONTROLLER: (ACTUAL_CONTROL, BENEFICIAL_OWNER),
    Signal.ABNORMAL: (EXCEPTION,),
    Signal.VIOLATIONS: (SERIOUS_ILLEGAL,),
    Signal.PLEDGES: (EQUITY_PLEDGED, CHATTEL_MORTGAGE),
    Signal.JUDICIAL: (ZHIXING, SHIXIN, HISTORY_SHIXIN, SUMPTUARY, BANKRUPTCY),
    Signal.CHANGE_LOG: (CHANGE_LOG, HISTORY_OPER),
}


def request_token(key: str, timespan: str, secret: str) -> str:
    """Qichacha's signature header: upper-case MD5 of key + unix seconds + secret."""
    return hashlib.md5(f"{key}{timespan}{secret}".encode()).hexdigest().upper()


@register("qichacha")
class QichachaSource(HttpSource):
    """A licensed vendor mirror of the Chinese registry (gsxt), with shareholders and a change log, and
    the vendor's control and risk lists as separately billed signals."""

    Options: ClassVar[type[SourceOptions]] = QichachaOptions
    display_names: ClassVar[Mapping[Language, str]] = {
        Language.EN: "Qichacha 企查查",
        Language.ZH_CN: "企查查",
    }
    endpoints: ClassVar[tuple[str, ...]] = ("getinfo",)
    optional_endpoints: ClassVar[tuple[str, ...]] = tuple(endpoint.name for endpoint in RISK_ENDPOINTS)
    identifier_name: ClassVar[str] = "unified social credit code"
    supported_signals: ClassVar[frozenset[Signal]] = CN_SIGNALS
    billed: ClassVar[bool] = True
    settings: QichachaOptions

    id_kind: ClassVar[str | None] = "cn_uscc"
    jurisdiction: ClassVar[str | None] = "cn"
    # Its JSON is UTF-8 like any JSON; an undeclared error or challenge page may be GB18030.
    undeclared_charsets: ClassVar[tuple[str, ...]] = ("utf-8", "gb18030")

    # -- fetching ---------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def signed_headers(self) -> dict[str, str]:
        """Token and Timespan for one attempt: the signature covers the current second, so every
        retry signs afresh."""
        timespan = str(int(self.timing.wall()))
        return {
            "Timespan": timespan,
            "Token": request_token(self.settings.key, timespan, self.settings.secret),
        }

    @property
    def mapping_fingerprint(self) -> str:
        """Whether the change log comes from the change-log signal or from the card's change records."""
        return f"{super().mapping_fingerprint}\0{Signal.CHANGE_LOG in self.enabled_signals}"

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        return await self.fetch_signals(registry_id, self.enabled_signals - set(self.unavailable_signals))

    def configured_record(self, record: RegistryRecord, raw: Mapping[str, str]) -> RegistryRecord:
        """With the change-log signal enabled but not fetched this time, the change log is unknown,
        never the card's embedded one: the log never switches between two origins."""
        if Signal.CHANGE_LOG in self.enabled_signals and CHANGE_LOG.name not in raw:
            return replace(record, change_log=None)
        return record

    def signals_covered(self, wanted: frozenset[Signal], raw: Mapping[str, str]) -> frozenset[Signal]:
        """A judicial fetch that fetched the controller's answers covers the controller signal too."""
        covered = set(super().signals_covered(wanted, raw))
        if ACTUAL_CONTROL.name in raw and BENEFICIAL_OWNER.name in raw:
            covered.add(Signal.CONTROLLER)
        return frozenset(covered - set(self.unavailable_signals))

    async def fetch_signals(self, registry_id: str, signals: frozenset[Signal]) -> dict[str, str]:
        """The card, then each wanted signal's endpoints. An endpoint the account has not bought makes
        its signal unavailable and leaves that signal's answers out; any other failure fails the check."""
        info = await self._get(Endpoint("getinfo", 735, _INFO_PATH), registry_id)
        card = _card(info)
        raw = {"getinfo": info}
        wanted = set(signals)
        available = self.enabled_signals - set(self.unavailable_signals)
        if Signal.JUDICIAL in wanted and Signal.CONTROLLER in available:
            wanted.add(Signal.CONTROLLER)  # so that the judicial sections cover the actual controller
        for signal in (Signal.CONTROLLER, Signal.ABNORMAL, Signal.VIOLATIONS, Signal.PLEDGES):
            if signal in wanted:
                await self._fetch_signal(signal, _SIGNAL_ENDPOINTS[signal], registry_id, raw)
        if Signal.JUDICIAL in wanted:
            controller = risk.controlling_person(raw.get(ACTUAL_CONTROL.name))
            people = [(LEGAL_REPRESENTATIVE_CHECKS, card.legal_representative)]
            if controller and text_key(controller) != text_key(card.legal_representative):
                people.append((ACTUAL_CONTROLLER_CHECKS, controller))
            await self._fetch_signal(
                Signal.JUDICIAL, _SIGNAL_ENDPOINTS[Signal.JUDICIAL], registry_id, raw, people=people
            )
        if Signal.CHANGE_LOG in wanted:
            endpoints = _SIGNAL_ENDPOINTS[Signal.CHANGE_LOG]
            if card.status is not None and card.status.code in _ENDED:
                endpoints = (*endpoints, BASIC_DETAILS)
            await self._fetch_signal(Signal.CHANGE_LOG, endpoints, registry_id, raw)
        return raw

    async def _fetch_signal(
        self,
        signal: Signal,
        endpoints: tuple[Endpoint, ...],
        registry_id: str,
        raw: dict[str, str],
        *,
        people: list[tuple[tuple[Endpoint, ...], str]] | None = None,
    ) -> None:
        """All of one signal's answers into ``raw``, or none of them when the account lacks one."""
        answers: dict[str, str] = {}
        try:
            for endpoint in endpoints:
                answers[endpoint.name] = await self._get(endpoint, registry_id)
            for checks, name in people or ():
                if name:
                    for endpoint in checks:
                        answers[endpoint.name] = await self._get(endpoint, registry_id, person=name)
        except risk.NotPurchased as error:
            self.mark_unavailable(signal, str(error))
            return
        raw.update(answers)

    async def _get(self, endpoint: Endpoint, registry_id: str, *, person: str = "") -> str:
        """One endpoint's answer text, all its pages merged when it is paged. The envelope is checked
        here, so a failure costs no further calls and "not purchased" can skip the signal."""
        if endpoint.paged:
            return await self._pages(endpoint, registry_id, person)
        text = await self._request(endpoint, registry_id, person, page=None)
        if endpoint.code == 735:
            _check_envelope(as_object(load_json(text, what="getinfo"), "getinfo"))
        else:
            risk.read_envelope(text, endpoint.name)
        return text

    async def _pages(self, endpoint: Endpoint, registry_id: str, person: str) -> str:
        """Every page of a paged list, following ``Paging.TotalRecords``: the vendor's own text when one
        page holds everything, else one merged document of the same shape. More pages than
        ``max_pages``, a short or inconsistent page, or any failing page fails the whole check."""
        bare = endpoint is CHANGE_LOG
        items: list[object] = []
        first_text = ""
        total = 0
        page = 0
        while True:
            page += 1
            what = f"{endpoint.name} page {page}"
            text = await self._request(endpoint, registry_id, person, page=page)
            answer = risk.read_envelope(text, what)
            if answer.result is None and answer.total == 0:
                if page == 1:
                    return text  # "no result": an empty list
                raise ParseError(f"{what}: no result after {len(items)} of {total} rows")
            rows = risk.list_items(risk.Answer(answer.result, None), what, bare=bare)
            if page == 1:
                first_text = text
                total = len(rows) if answer.total is None else answer.total
                if total > self.settings.max_pages * _PAGE_SIZE:
                    raise ParseError(
                        f"{endpoint.name}: {total} rows need more than max_pages={self.settings.max_pages}"
                    )
            elif answer.total != total:
                raise ParseError(f"{what}: Paging.TotalRecords {answer.total} where page 1 said {total}")
            due = min(_PAGE_SIZE, total - len(items))
            if len(rows) != due and not (page == 1 and len(rows) == total):
                raise ParseError(f"{what}: {len(rows)} rows where {due} were due (of {total})")
            items.extend(rows)
            if len(items) >= total:
                break
        if page == 1:
            return first_text
        result: object = items if bare else {"VerifyResult": 1, "Data": items}
        merged = {
            "Status": risk.OK,
            "Message": "merged pages",
            "Paging": {"PageSize": _PAGE_SIZE, "PageIndex": 1, "TotalRecords": total},
            "Result": result,
        }
        return json.dumps(merged, ensure_ascii=False)

    async def _request(self, endpoint: Endpoint, registry_id: str, person: str, *, page: int | None) -> str:
        context = {"source": self.name, "registry_id": registry_id}
        params = {"key": self.settings.key, endpoint.param: registry_id}
        if person:
            params["personName"] = person
        if page is not None:
            params |= {"pageIndex": str(page), "pageSize": str(_PAGE_SIZE)}
        response = await self.http.get(
            endpoint.path, params=params, headers=self.signed_headers, registry_id=registry_id
        )
        # "No such company" comes back as Status 201 in an HTTP 200 envelope.
        raise_for_status(response, what=endpoint.name, context=context, status_says_missing=False)
        return response.text

    # -- mapping ----------------------------------------------------------------------------------

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        if "getinfo" not in raw:
            raise ParseError("no getinfo response")
        envelope = as_object(load_json(raw["getinfo"], what="getinfo"), "getinfo")
        _check_envelope(envelope)
        result = as_object(envelope.get("Result"), "Result")

        credit_code = clean_text(as_text(result.get("CreditCode"), "CreditCode")).upper()
        wanted = clean_text(registry_id).upper()
        if credit_code and len(wanted) == 18 and credit_code != wanted:
            raise ParseError(f"Result is for {credit_code}, not {registry_id}")
        name = clean_text(as_text(result.get("Name"), "Name"))
        if not name:
            raise ParseError("Result has no Name")

        people = _employees(result.get("Employees"))
        legal_representative = _legal_representative(result)
        record = RegistryRecord(
            source=source,
            registry_id=wanted,
            name=name,
            status=status_from_text(as_text(result.get("Status"), "Status")),
            registered_capital=parse_amount(as_text(result.get("RegistCapi"), "RegistCapi")),
            address=clean_text(as_text(result.get("Address"), "Address")) or None,
            legal_representative=legal_representative,
            people=people,
            shareholders=_partners(result.get("Partners")),
            controllers=None,
            finance_head=_finance_head(people),
            change_log=_change_records(result.get("ChangeRecords")),
        )
        return _with_risk(record, raw, legal_representative.name if legal_representative else "")


_T = TypeVar("_T")
_ENDED = (CompanyStatus.REVOKED, CompanyStatus.DEREGISTERED)


@dataclass(frozen=True, slots=True)
class _Card:
    """What the risk fetches need from the card: whom to ask about, and whether to date a revocation."""

    legal_representative: str
    status: Status | None


def _card(text: str) -> _Card:
    envelope = as_object(load_json(text, what="getinfo"), "getinfo")
    result = as_object(envelope.get("Result"), "Result")
    return _Card(
        legal_representative=clean_text(as_text(result.get("OperName"), "OperName")),
        status=status_from_text(as_text(result.get("Status"), "Status")),
    )


def _with_risk(record: RegistryRecord, raw: Mapping[str, str], legal_representative: str) -> RegistryRecord:
    """``record`` with the sections of every risk answer present in ``raw``; absent ones stay unknown."""
    record = replace(
        record,
        actual_controllers=_mapped(raw, ACTUAL_CONTROL, risk.actual_controllers, record.actual_controllers),
        beneficial_owners=_mapped(raw, BENEFICIAL_OWNER, risk.beneficial_owners, record.beneficial_owners),
        abnormal_operations=_mapped(raw, EXCEPTION, risk.abnormal_operations, None),
        serious_violations=_mapped(raw, SERIOUS_ILLEGAL, risk.serious_violations, None),
        equity_pledges=_mapped(raw, EQUITY_PLEDGED, risk.equity_pledges, None),
        chattel_mortgages=_mapped(raw, CHATTEL_MORTGAGE, risk.chattel_mortgages, None),
        bankruptcies=_mapped(raw, BANKRUPTCY, risk.bankruptcies, None),
    )
    record = _judicial(record, raw, legal_representative)
    if CHANGE_LOG.name in raw:
        log = risk.change_log(
            raw[CHANGE_LOG.name],
            raw.get(HISTORY_OPER.name),
            raw.get(BASIC_DETAILS.name),
            legal_representative,
        )
        record = replace(record, change_log=log)
    return record


def _mapped(raw: Mapping[str, str], endpoint: Endpoint, mapping: Callable[[str], _T], absent: _T) -> _T:
    """``endpoint``'s section mapped from its answer, or ``absent`` when the answer was not fetched."""
    return mapping(raw[endpoint.name]) if endpoint.name in raw else absent


def _judicial(record: RegistryRecord, raw: Mapping[str, str], legal_representative: str) -> RegistryRecord:
    """The court sections, each only when every answer it is made of is present: the company's list
    and the person-level lists of the legal representative (and of the actual controller when the
    controller's answer names a distinct person). Never a section missing one of its parts."""
    controller = risk.controlling_person(raw.get(ACTUAL_CONTROL.name))
    if text_key(controller) == text_key(legal_representative):
        controller = ""
    parties = risk.Parties(legal_representative, controller)
    people = [
        (role, name, {endpoint.code: endpoint.name for endpoint in checks})
        for role, name, checks in (
            (Party.LEGAL_REPRESENTATIVE, legal_representative, LEGAL_REPRESENTATIVE_CHECKS),
            (Party.ACTUAL_CONTROLLER, controller, ACTUAL_CONTROLLER_CHECKS),
        )
        if name
    ]

    def complete(company: tuple[Endpoint, ...], code: int) -> bool:
        return all(endpoint.name in raw for endpoint in company) and all(
            names[code] in raw for _, _, names in people
        )

    if complete((ZHIXING,), 765):
        listings = risk.enforcements(raw[ZHIXING.name], ZHIXING.name)
        for role, name, names in people:
            listings += risk.enforcements(raw[names[765]], names[765], role, name)
        record = replace(record, enforcements=risk.unique(listings))
    if complete((SHIXIN, HISTORY_SHIXIN), 764):
        listings = risk.dishonest_debtors(raw[SHIXIN.name], SHIXIN.name)
        for role, name, names in people:
            listings += risk.dishonest_debtors(raw[names[764]], names[764], role, name)
        listings += risk.dishonest_debtors(raw[HISTORY_SHIXIN.name], HISTORY_SHIXIN.name, lifted=True)
        record = replace(record, dishonest_debtors=risk.unique(listings))
    if complete((SUMPTUARY,), 766):
        listings = risk.consumption_restrictions(raw[SUMPTUARY.name], SUMPTUARY.name, parties)
        for role, name, names in people:
            listings += risk.consumption_restrictions(raw[names[766]], names[766], parties, role, name)
        record = replace(record, consumption_restrictions=risk.unique(listings))
    return record


def _check_envelope(envelope: Mapping[str, object]) -> None:
    """Turn the card's ``Status`` into the error class the pipeline acts on (201: no such company)."""
    status = clean_text(as_text(envelope.get("Status"), "Status"))
    if status == risk.OK:
        return
    message = as_text(envelope.get("Message"), "Message").strip()
    detail = f"Qichacha Status {status or '(none)'}: {message or 'no message'}"
    if status == risk.NO_RESULT:
        raise NotFoundError(detail)
    error = risk.error_class(status)
    # An interface not bought is a signal's problem on a risk endpoint; on the card, the account's.
    raise (AuthError if error is risk.NotPurchased else error)(detail)


def _legal_representative(result: Mapping[str, object]) -> Person | None:
    name = clean_text(as_text(result.get("OperName"), "OperName"))
    if not name:
        return None
    key = person_key(name, registry_id=as_text(result.get("OperId"), "OperId"))
    return Person(name=name, key=key, roles=frozenset({Role.LEGAL_REPRESENTATIVE}), role_text="法定代表人")


def _employees(value: object) -> tuple[Person, ...] | None:
    if value is None:
        return None
    people = []
    for index, item in enumerate(as_list(value, "Employees")):
        employee = as_object(item, f"Employees[{index}]")
        name = clean_text(as_text(employee.get("Name"), f"Employees[{index}].Name"))
        if not name:
            raise ParseError(f"Employees[{index}] has no Name")
        job = clean_text(as_text(employee.get("Job"), f"Employees[{index}].Job"))
        key = person_key(name, registry_id=as_text(employee.get("KeyNo"), f"Employees[{index}].KeyNo"))
        people.append(Person(name=name, key=key, roles=roles_from_title(job), role_text=job))
    return tuple(people)


def _finance_head(people: tuple[Person, ...] | None) -> Person | None:
    """Only when Employees lists one: Qichacha rarely does, and None keeps the finance head unknown."""
    for person in people or ():
        if Role.FINANCE_HEAD in person.roles:
            return person
    return None


def _partners(value: object) -> tuple[Shareholder, ...] | None:
    if value is None:
        return None
    holders = []
    for index, item in enumerate(as_list(value, "Partners")):
        partner = as_object(item, f"Partners[{index}]")
        name = clean_text(as_text(partner.get("StockName"), f"Partners[{index}].StockName"))
        if not name:
            raise ParseError(f"Partners[{index}] has no StockName")
        stock_type = clean_text(as_text(partner.get("StockType"), f"Partners[{index}].StockType"))
        holders.append(
            Shareholder(
                name=name,
                key=person_key(name, registry_id=as_text(partner.get("KeyNo"), f"Partners[{index}].KeyNo")),
                kind=_holder_kind(name, stock_type),
                stake=parse_stake(as_text(partner.get("StockPercent"), f"Partners[{index}].StockPercent")),
                subscribed=parse_amount(
                    as_text(partner.get("ShouldCapi"), f"Partners[{index}].ShouldCapi"),
                    currency="CNY",
                    unit=_SHOULD_CAPI_UNIT,
                ),
            )
        )
    return tuple(holders)


def _holder_kind(name: str, stock_type: str) -> HolderKind:
    """自然人股东 is a person; a company-like type or name (…有限公司, …合伙企业(有限合伙)) is an entity."""
    if "自然人" in stock_type:
        return HolderKind.PERSON
    if any(word in stock_type for word in _ENTITY_STOCK_TYPES) or looks_like_company(name):
        return HolderKind.ENTITY
    return HolderKind.PERSON


def _change_records(value: object) -> tuple[ChangeLogEntry, ...] | None:
    if value is None:
        return None
    entries = []
    for index, item in enumerate(as_list(value, "ChangeRecords")):
        record = as_object(item, f"ChangeRecords[{index}]")
        label = as_text(record.get("ProjectName"), f"ChangeRecords[{index}].ProjectName")
        entries.append(
            ChangeLogEntry(
                categories=classify_change_item(label),
                item=label,
                before=as_text(record.get("BeforeContent"), f"ChangeRecords[{index}].BeforeContent"),
                after=as_text(record.get("AfterContent"), f"ChangeRecords[{index}].AfterContent"),
                date=as_date(record.get("ChangeDate"), f"ChangeRecords[{index}].ChangeDate"),
            )
        )
    return tuple(entries)


# The raw key of each path (the card's too), as a stand-in answering by path needs.
PATHS_BY_NAME: dict[str, str] = {
    _INFO_PATH: "getinfo",
    **{
        endpoint.path: endpoint.name
        for endpoint in RISK_ENDPOINTS
        if not endpoint.name.endswith("_actual_controller")
    },
}
