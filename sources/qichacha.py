"""China: Qichacha open API (企查查开放平台), 企业工商详情 (ApiCode 735, ``/ECIInfoVerify/GetInfo``).

One call gives the base facts, shareholders (``Partners``), key staff (``Employees``) and the dated
change log (``ChangeRecords``). Errors come back as HTTP 200 with a ``Status`` code in the envelope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from sources import register
from sources.base import SourceOptions, as_date, as_list, as_object, as_text, load_json
from sources.http import HttpSource
from sources.http.options import HttpSourceOptions
from sources.http.responses import raise_for_status
from watcher.errors import AuthError, NotFoundError, ParseError, RateLimitedError, TransientError
from watcher.normalize import (
    classify_change_item,
    clean_text,
    looks_like_company,
    parse_amount,
    parse_stake,
    person_key,
    roles_from_title,
    status_from_text,
)
from watcher.record import (
    ChangeLogEntry,
    HolderKind,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
)

_INFO_PATH = "/ECIInfoVerify/GetInfo"
_OK = "200"
_NO_RESULT = "201"
_CONCURRENCY_LIMIT = "122"
_RETRY_LATER = frozenset({"120", "199", "205"})
# 101-116: key, balance, IP/signature, daily quota; 121: data may not leave China (host onshore).
_OPERATOR_MUST_ACT = frozenset({str(code) for code in range(101, 117)} | {"121"})

_ENTITY_STOCK_TYPES = ("企业", "公司", "合伙", "法人", "机构", "单位", "政府", "国资", "基金", "社会团体")
_SHOULD_CAPI_UNIT = 10_000  # ShouldCapi is in 万元


class QichachaOptions(HttpSourceOptions):
    key: str = Field(min_length=1)
    secret: str = Field(min_length=1, repr=False)
    base_url: str = "https://api.qichacha.com"


def request_token(key: str, timespan: str, secret: str) -> str:
    """Qichacha's signature header: upper-case MD5 of key + unix seconds + secret."""
    return hashlib.md5(f"{key}{timespan}{secret}".encode()).hexdigest().upper()


@register("qichacha")
class QichachaSource(HttpSource):
    """A licensed vendor mirror of the Chinese registry (gsxt), with shareholders and a change log."""

    Options: ClassVar[type[SourceOptions]] = QichachaOptions
    endpoints: ClassVar[tuple[str, ...]] = ("getinfo",)
    identifier_name: ClassVar[str] = "unified social credit code"
    settings: QichachaOptions

    id_kind: ClassVar[str | None] = "cn_uscc"
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

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        context = {"source": self.name, "registry_id": registry_id}
        response = await self.http.get(
            _INFO_PATH,
            params={"key": self.settings.key, "searchKey": registry_id},
            headers=self.signed_headers,
            registry_id=registry_id,
        )
        if response.status == 404:
            # "No such company" comes back as Status 201 in an HTTP 200 envelope; an HTTP 404 means
            # the endpoint moved, which must not mark the borrower as not found.
            raise ParseError(f"HTTP 404 on {_INFO_PATH}: the endpoint is not there", **context)
        raise_for_status(response, what="getinfo", context=context)
        return {"getinfo": response.text}

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
        return RegistryRecord(
            source=source,
            registry_id=wanted,
            name=name,
            status=status_from_text(as_text(result.get("Status"), "Status")),
            registered_capital=parse_amount(as_text(result.get("RegistCapi"), "RegistCapi")),
            address=clean_text(as_text(result.get("Address"), "Address")) or None,
            legal_representative=_legal_representative(result),
            people=people,
            shareholders=_partners(result.get("Partners")),
            controllers=None,
            finance_head=_finance_head(people),
            change_log=_change_records(result.get("ChangeRecords")),
        )


def _check_envelope(envelope: Mapping[str, object]) -> None:
    """Turn the envelope's ``Status`` into the error class the pipeline acts on."""
    status = clean_text(as_text(envelope.get("Status"), "Status"))
    if status == _OK:
        return
    message = as_text(envelope.get("Message"), "Message").strip()
    detail = f"Qichacha Status {status or '(none)'}: {message or 'no message'}"
    if status == _NO_RESULT:
        raise NotFoundError(detail)
    if status == _CONCURRENCY_LIMIT:
        raise RateLimitedError(detail)
    if status in _RETRY_LATER:
        raise TransientError(detail)
    if status in _OPERATOR_MUST_ACT:
        raise AuthError(detail)
    raise ParseError(detail)


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
