"""China: Tianyancha open API (天眼查开放平台), a licensed mirror of the national registry (gsxt).

The registry card is three calls, each billed by the vendor: base facts (``ic/baseinfo/normal``),
shareholders (``ic/holder/2.0``) and key staff (``ic/staff/2.0``). Each further signal has its own
calls (:data:`SIGNAL_ENDPOINTS`): the change log and former legal representatives, the actual
controller and beneficial owners, the market regulator's abnormal-operations, serious-violation,
equity-pledge and chattel-mortgage lists, and the courts' enforcement, dishonest-debtor,
consumption-restriction and bankruptcy lists. The vendor's bundles (``cb/ic/2.0``, ``cb/judicial/2.0``)
are not used: they carry no per-list total, so a capped list could not be told from a complete one,
and they lack the consumption-restriction, bankruptcy and control lists.
List endpoints are paged (20 rows a call); their pages are merged into one document so a replay maps
the same data. Errors come back as HTTP 200 with a non-zero ``error_code`` in the envelope.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, TypeVar

from pydantic import Field

from sources import register, tianyancha_risk
from sources.base import SourceOptions, as_list, as_object, as_text, load_json
from sources.cn_common import cn_date
from sources.http import HttpSource
from sources.http.options import VendorOptions
from sources.http.responses import raise_for_status
from sources.tianyancha_risk import KeyPeople
from watcher.errors import (
    AuthError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    SourceError,
    TransientError,
)
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
    Controller,
    HolderKind,
    Listing,
    Money,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Signal,
    Stake,
)
from watcher.vocabulary import Language

_BASEINFO_PATH = "/services/open/ic/baseinfo/normal"
_REGISTRY_LISTS: dict[str, str] = {
    "holder": "/services/open/ic/holder/2.0",
    "staff": "/services/open/ic/staff/2.0",
}


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """A signal's call: its path, and whether it is a paged ``{total, items}`` list."""

    path: str
    paged: bool = True


# The calls of each signal besides the registry card, by raw key (the names replay files carry).
SIGNAL_ENDPOINTS: dict[Signal, dict[str, _Endpoint]] = {
    Signal.CHANGE_LOG: {
        "changeinfo": _Endpoint("/services/open/ic/changeinfo/2.0"),
        "hi_ic": _Endpoint("/services/open/hi/ic/2.0", paged=False),
    },
    Signal.CONTROLLER: {
        "actual_control": _Endpoint("/services/open/ic/actualControl/3.0", paged=False),
        "humanholding": _Endpoint("/services/open/ic/humanholding/2.0"),
    },
    Signal.ABNORMAL: {"abnormal": _Endpoint("/services/open/mr/abnormal/2.0")},
    Signal.VIOLATIONS: {"illegal": _Endpoint("/services/open/mr/illegalinfo/2.0")},
    Signal.PLEDGES: {
        "equity": _Endpoint("/services/open/mr/equityInfo/2.0"),
        "mortgage": _Endpoint("/services/open/mr/mortgageInfo/2.0"),
    },
    Signal.JUDICIAL: {
        "zhixing": _Endpoint("/services/open/jr/zhixinginfo/2.0"),
        "dishonest": _Endpoint("/services/open/jr/dishonest/2.0"),
        "hi_dishonest": _Endpoint("/services/open/hi/dishonest/2.0"),
        "consumption_restriction": _Endpoint("/services/open/jr/consumptionRestriction/2.0"),
        "bankruptcy": _Endpoint("/services/open/jr/bankruptcy/2.0"),
    },
}
_PAGE_SIZE = 20
_Item = TypeVar("_Item", Listing, Controller)

# ``error_code`` table as republished for Tianyancha's API on Huawei Cloud's marketplace
# (support.huaweicloud.com/tbis-dma/tbis_04.html, "错误代码说明"). UNVERIFIED against a vendor
# contract: confirm with the contract documents (research §10).
_OK = 0
_NO_DATA_CODE = 300000  # 无数据
_ERROR_CLASSES: dict[int, type[SourceError]] = {
    300001: TransientError,  # 请求失败
    300002: AuthError,  # 账号失效
    300003: AuthError,  # 账号过期
    300004: RateLimitedError,  # 访问频率过快
    300005: AuthError,  # 无权限访问此api (see _NOT_PURCHASED: on a signal's call, that signal is skipped)
    300006: AuthError,  # 余额不足
    300007: AuthError,  # 剩余次数不足
    300008: ParseError,  # 缺少必要参数: our request is wrong, retrying will not help
    300009: AuthError,  # 账号信息有误
    300010: ParseError,  # URL不存在: wrong base_url or path
    300011: AuthError,  # 此IP无权限访问此api (IP allow-list)
    300012: TransientError,  # 报告生成中: ask again later
}
# Codes outside the table are classified by the words of ``reason``.
_AUTH_WORDS = ("余额", "权限", "token", "key", "授权", "过期", "账号", "次数不足", "失效")
_RATE_WORDS = ("频率", "频繁", "qps", "并发")
# The account has not bought this API: on a signal's call the signal is skipped, not the check failed.
_NOT_PURCHASED_CODE = 300005
_NOT_PURCHASED_WORDS = ("未购买", "未开通", "没有购买", "not purchased")

# holder ``type``: 1 company, 2 person, 3 other (an organisation such as a government body or fund).
_HOLDER_KINDS = {1: HolderKind.ENTITY, 2: HolderKind.PERSON, 3: HolderKind.ENTITY}


class TianyanchaOptions(VendorOptions):
    base_url: str = "https://open.api.tianyancha.com"
    token: str = Field(min_length=1, repr=False)
    # Every page is a billed call. A registry list longer than this many pages is left unknown; a
    # risk list longer than that fails the check (a partial risk list would read as removals).
    max_pages: int = Field(default=10, ge=1, le=100)


class NotPurchasedError(AuthError):
    """The account may not call this API (error_code 300005, or "not purchased" in the reason)."""


@register("tianyancha")
class TianyanchaSource(HttpSource):
    """Base facts, shareholders with stakes and key staff of a Chinese company, and the vendor's
    control and risk signals (change log, actual controller, risk listings)."""

    Options: ClassVar[type[SourceOptions]] = TianyanchaOptions
    display_names: ClassVar[Mapping[Language, str]] = {
        Language.EN: "Tianyancha 天眼查",
        Language.ZH_CN: "天眼查",
    }
    endpoints: ClassVar[tuple[str, ...]] = ("baseinfo", "holder", "staff")
    optional_endpoints: ClassVar[tuple[str, ...]] = tuple(
        key for calls in SIGNAL_ENDPOINTS.values() for key in calls
    )
    identifier_name: ClassVar[str] = "unified social credit code"
    supported_signals: ClassVar[frozenset[Signal]] = CN_SIGNALS
    billed: ClassVar[bool] = True
    settings: TianyanchaOptions

    id_kind: ClassVar[str | None] = "cn_uscc"
    jurisdiction: ClassVar[str | None] = "cn"
    # Its JSON is UTF-8 like any JSON; an undeclared error or challenge page may be GB18030.
    undeclared_charsets: ClassVar[tuple[str, ...]] = ("utf-8", "gb18030")

    def headers(self) -> dict[str, str]:
        """The vendor authenticates every call by the bare console token in ``Authorization``."""
        return {"Authorization": self.settings.token}

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        """Every enabled signal's answers."""
        return await self.fetch_signals(registry_id, self.enabled_signals)

    async def fetch_signals(self, registry_id: str, signals: frozenset[Signal]) -> dict[str, str]:
        """The registry card, then each asked signal's calls. A signal the account has not bought is
        marked unavailable and left out (its sections stay unknown); any other failure fails the check."""
        context = {"source": self.name, "registry_id": registry_id}
        response = await self.http.get(
            _BASEINFO_PATH, params={"keyword": registry_id}, registry_id=registry_id
        )
        raise_for_status(response, what="baseinfo", context=context)
        # Fail before paying for the list calls when the company or the account is the problem.
        if _envelope_result(response.text, "baseinfo") is _NO_DATA:
            raise NotFoundError("Tianyancha has no data for this company (error_code 300000)")
        raw = {"baseinfo": response.text}
        for endpoint, path in _REGISTRY_LISTS.items():
            raw[endpoint] = await self._fetch_pages(endpoint, path, registry_id, strict=False)
        for signal, calls in SIGNAL_ENDPOINTS.items():
            if signal not in signals or signal in self.unavailable_signals:
                continue
            try:
                answers = {
                    endpoint: await self._fetch_signal_call(endpoint, call, registry_id)
                    for endpoint, call in calls.items()
                }
            except NotPurchasedError as error:
                self.mark_unavailable(signal, str(error))
                continue
            raw.update(answers)
        return raw

    async def _fetch_signal_call(self, endpoint: str, call: _Endpoint, uscc: str) -> str:
        # The change log keeps the rows it has when cut short, like the registry lists' own rule.
        if call.paged:
            return await self._fetch_pages(endpoint, call.path, uscc, strict=endpoint != "changeinfo")
        context = {"source": self.name, "registry_id": uscc}
        response = await self.http.get(call.path, params={"keyword": uscc}, registry_id=uscc)
        raise_for_status(response, what=endpoint, context=context, status_says_missing=False)
        _envelope_result(response.text, endpoint)
        return response.text

    async def _fetch_pages(self, endpoint: str, path: str, uscc: str, *, strict: bool) -> str:
        """All pages of a list endpoint: the vendor's own text when one page holds everything, else the
        pages merged into one envelope of the same shape (``total`` kept as the vendor reported it).

        ``strict`` (the risk lists): a list longer than ``max_pages`` fails the check, as a partial
        risk list would read as removals. Otherwise the mapping leaves the list cut short unknown.
        """
        context = {"source": self.name, "registry_id": uscc}
        items: list[object] = []
        total = 0
        texts: list[str] = []
        for page in range(1, self.settings.max_pages + 1):
            params = {"keyword": uscc, "pageNum": str(page), "pageSize": str(_PAGE_SIZE)}
            response = await self.http.get(path, params=params, registry_id=uscc)
            what = f"{endpoint} page {page}"
            raise_for_status(response, what=what, context=context, status_says_missing=False)
            result = _envelope_result(response.text, what)
            if result is _NO_DATA:  # on page 1 the mapping decides what it means; later it ends the list
                if page == 1:
                    return response.text
                break
            texts.append(response.text)
            listing = _listing(result, what)
            items.extend(listing.items)
            total = listing.total
            if not listing.items or len(items) >= total:
                break
        if strict and len(items) < total:
            raise ParseError(
                f"{endpoint}: the vendor lists {total} entries, {len(items)} came in {len(texts)} pages"
                f" (max_pages {self.settings.max_pages}); a partial risk list is never mapped"
            )
        if len(texts) == 1:
            return texts[0]
        merged = {"result": {"total": total, "items": items}, "reason": "ok", "error_code": _OK}
        return json.dumps(merged, ensure_ascii=False)

    # -- mapping ----------------------------------------------------------------------------------

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        for endpoint in cls.endpoints:
            if endpoint not in raw:
                raise ParseError(f"no {endpoint} response")
        base = _envelope_result(raw["baseinfo"], "baseinfo")
        if base is _NO_DATA:
            raise NotFoundError("Tianyancha has no data for this company (error_code 300000)")
        company = as_object(base, "baseinfo result")
        wanted = clean_text(registry_id).upper()
        credit_code = clean_text(as_text(company.get("creditCode"), "creditCode")).upper()
        if credit_code != wanted:
            raise ParseError(f"baseinfo is for creditCode {credit_code or '(none)'}, not {wanted}")
        name = clean_text(as_text(company.get("name"), "name"))
        if not name:
            raise ParseError("baseinfo has no name")

        people = _staff(raw["staff"])
        legal_representative = _legal_representative(company, people)
        actual_controllers = _optional(raw, "actual_control", _actual_controllers)
        key_people = KeyPeople(
            legal_representative=legal_representative.name if legal_representative else "",
            actual_controllers=frozenset(
                text_key(controller.name)
                for controller in actual_controllers or ()
                if controller.kind is HolderKind.PERSON
            ),
        )
        return RegistryRecord(
            source=source,
            registry_id=wanted,
            name=name,
            status=status_from_text(as_text(company.get("regStatus"), "regStatus")),
            registered_capital=parse_amount(as_text(company.get("regCapital"), "regCapital")),
            address=clean_text(as_text(company.get("regLocation"), "regLocation")) or None,
            legal_representative=legal_representative,
            people=people,
            shareholders=_holders(raw["holder"]),
            controllers=None,
            finance_head=_finance_head(people),
            change_log=_change_log(raw, company),
            actual_controllers=actual_controllers,
            beneficial_owners=_risk_list(raw, "humanholding", tianyancha_risk.beneficial_owners),
            abnormal_operations=_risk_list(raw, "abnormal", tianyancha_risk.put_and_remove_listings),
            serious_violations=_risk_list(raw, "illegal", tianyancha_risk.put_and_remove_listings),
            equity_pledges=_risk_list(raw, "equity", tianyancha_risk.equity_pledges),
            chattel_mortgages=_risk_list(raw, "mortgage", tianyancha_risk.chattel_mortgages),
            enforcements=_risk_list(raw, "zhixing", tianyancha_risk.enforcements),
            dishonest_debtors=_dishonest_debtors(raw, key_people),
            consumption_restrictions=_risk_list(
                raw,
                "consumption_restriction",
                lambda items, what: tianyancha_risk.consumption_restrictions(items, what, name, key_people),
            ),
            bankruptcies=_risk_list(raw, "bankruptcy", tianyancha_risk.bankruptcies),
        )


# -- envelope ---------------------------------------------------------------------------------------


class _NoData:
    """The vendor's "no data" answer (error_code 300000); what it means depends on the endpoint."""


_NO_DATA = _NoData()


def _envelope_result(text: str, what: str) -> object:
    """The envelope's ``result``; _NO_DATA for 300000; the mapped error class for other codes."""
    envelope = as_object(load_json(text, what=what), what)
    code = _error_code(envelope.get("error_code"), what)
    if code == _OK:
        return envelope.get("result")
    reason = clean_text(as_text(envelope.get("reason"), f"{what}.reason"))
    if code == _NO_DATA_CODE:
        return _NO_DATA
    detail = f"{what}: Tianyancha error_code {code}: {reason or 'no reason given'}"
    folded = reason.casefold()
    if code == _NOT_PURCHASED_CODE or (
        code not in _ERROR_CLASSES and any(word in folded for word in _NOT_PURCHASED_WORDS)
    ):
        raise NotPurchasedError(detail)
    raise _error_class(code, reason)(detail)


def _error_code(value: object, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ParseError(f"{what} has no error_code")
    text = as_text(value, f"{what}.error_code").strip()
    try:
        return int(text)
    except ValueError:
        raise ParseError(f"{what}.error_code {text!r} is not a number") from None


def _error_class(code: int, reason: str) -> type[SourceError]:
    known = _ERROR_CLASSES.get(code)
    if known is not None:
        return known
    folded = reason.casefold()
    if any(word in folded for word in _RATE_WORDS):
        return RateLimitedError
    if any(word in folded for word in _AUTH_WORDS):
        return AuthError
    return ParseError


@dataclass(frozen=True, slots=True)
class _Listing:
    """One list result: the rows at hand and how many the vendor says there are."""

    total: int
    items: list[object]

    @property
    def complete(self) -> bool:
        return len(self.items) >= self.total


def _listing(result: object, what: str) -> _Listing:
    """A ``{"total": n, "items": [...]}`` result. A missing total means the items are all there is."""
    body = as_object(result, f"{what} result")
    listed = body.get("items")
    items = [] if listed is None else as_list(listed, f"{what}.items")
    total_text = as_text(body.get("total"), f"{what}.total").strip()
    if not total_text:
        return _Listing(len(items), items)
    try:
        total = int(Decimal(total_text))
    except (ArithmeticError, ValueError):
        raise ParseError(f"{what}.total {total_text!r} is not a number") from None
    return _Listing(total, items)


def _list_payload(text: str, what: str) -> _Listing | None:
    """The listing of a list endpoint's payload; None when the vendor answered "no data"."""
    result = _envelope_result(text, what)
    return None if result is _NO_DATA else _listing(result, what)


# -- base facts -------------------------------------------------------------------------------------


def _legal_representative(company: Mapping[str, object], people: tuple[Person, ...] | None) -> Person | None:
    """``legalPersonName`` carries no id: borrow the staff entry's key when the same name is listed."""
    name = clean_text(as_text(company.get("legalPersonName"), "legalPersonName"))
    if not name:
        return None
    same_name = sorted(
        person.key for person in people or () if person.name == name and person.key.startswith("id:")
    )
    key = same_name[0] if same_name else person_key(name)
    return Person(name=name, key=key, roles=frozenset({Role.LEGAL_REPRESENTATIVE}), role_text="法定代表人")


# -- staff ------------------------------------------------------------------------------------------


def _staff(text: str) -> tuple[Person, ...] | None:
    """Key staff. No data, or a list cut short by the page limit, is unknown, never "nobody"."""
    listing = _list_payload(text, "staff")
    if listing is None or not listing.complete:
        return None
    return tuple(_staff_member(item, f"staff.items[{index}]") for index, item in enumerate(listing.items))


def _staff_member(item: object, what: str) -> Person:
    member = as_object(item, what)
    name = clean_text(as_text(member.get("name"), f"{what}.name"))
    if not name:
        raise ParseError(f"{what} has no name")
    titles = member.get("typeJoin")
    if titles is None:
        title = clean_text(as_text(member.get("staffTypeName"), f"{what}.staffTypeName"))
    else:
        parts = (
            clean_text(as_text(part, f"{what}.typeJoin")) for part in as_list(titles, f"{what}.typeJoin")
        )
        title = "兼".join(part for part in parts if part)
    key = person_key(name, registry_id=as_text(member.get("id"), f"{what}.id"))
    return Person(name=name, key=key, roles=roles_from_title(title), role_text=title)


def _finance_head(people: tuple[Person, ...] | None) -> Person | None:
    """Only when staff lists one: Tianyancha rarely does, and None keeps the finance head unknown."""
    heads = [person for person in people or () if Role.FINANCE_HEAD in person.roles]
    return min(heads, key=lambda person: person.key, default=None)


# -- shareholders -----------------------------------------------------------------------------------


def _holders(text: str) -> tuple[Shareholder, ...] | None:
    """Shareholders. No data, or a list cut short by the page limit, is unknown, never "nobody"."""
    listing = _list_payload(text, "holder")
    if listing is None or not listing.complete:
        return None
    return tuple(_holder(item, f"holder.items[{index}]") for index, item in enumerate(listing.items))


def _holder(item: object, what: str) -> Shareholder:
    holder = as_object(item, what)
    name = clean_text(as_text(holder.get("name"), f"{what}.name"))
    if not name:
        raise ParseError(f"{what} has no name")
    stake, subscribed = _subscription(holder.get("capital"), f"{what}.capital")
    return Shareholder(
        name=name,
        # ``hcgid`` is the holder's own Tianyancha id; ``id`` only numbers the holder row.
        key=person_key(name, registry_id=as_text(holder.get("hcgid"), f"{what}.hcgid")),
        kind=_holder_kind(holder.get("type"), name, f"{what}.type"),
        stake=stake,
        subscribed=subscribed,
    )


def _holder_kind(value: object, name: str, what: str) -> HolderKind:
    text = as_text(value, what).strip()
    if text.isdigit() and int(text) in _HOLDER_KINDS:
        return _HOLDER_KINDS[int(text)]
    return HolderKind.ENTITY if looks_like_company(name) else HolderKind.PERSON


def _subscription(value: object, what: str) -> tuple[Stake | None, Money | None]:
    """Stake and subscribed amount from the subscription rows (``capital[]``, keys misspelt by the vendor).

    A holder can have several rows (tranches with their own date and payment method). Identical rows
    count once. Amounts add up. Percentages: when every row carries the same one it is the holder's
    total repeated, otherwise the rows are per-tranche shares and add up. The vendor does not say
    which it does (unverified), but either way the result does not depend on the rows' order.
    """
    if value is None:
        return None, None
    rows: dict[tuple[str, str, str, str], None] = {}
    for index, item in enumerate(as_list(value, what)):
        row = as_object(item, f"{what}[{index}]")
        amount = clean_text(as_text(row.get("amomon"), f"{what}[{index}].amomon"))
        percent = clean_text(as_text(row.get("percent"), f"{what}[{index}].percent"))
        due = clean_text(as_text(row.get("time"), f"{what}[{index}].time"))
        method = clean_text(as_text(row.get("paymet"), f"{what}[{index}].paymet"))
        rows[(amount, percent, due, method)] = None
    unique = list(rows)
    return _total_stake([row[1] for row in unique]), _total_amount([row[0] for row in unique])


def _total_stake(percents: list[str]) -> Stake | None:
    stakes = [parse_stake(text) for text in percents if text]
    if not stakes or any(stake is None or not stake.exact for stake in stakes):
        return None
    distinct = {stake for stake in stakes if stake is not None}
    if len(distinct) == 1:
        return distinct.pop()
    total = sum((stake.low for stake in stakes if stake is not None), Decimal(0))
    return parse_stake(f"{format(total, 'f')}%")


def _total_amount(amounts: list[str]) -> Money | None:
    parsed = [parse_amount(text) for text in amounts if text]
    if not parsed:
        return None
    if len(parsed) == 1:
        return parsed[0]
    numbers = [money.amount for money in parsed if money is not None and money.amount is not None]
    currencies = {money.currency for money in parsed if money is not None}
    if len(numbers) != len(parsed) or len(currencies) != 1:
        return None
    return Money(sum(numbers, Decimal(0)), currencies.pop(), " + ".join(sorted(amounts)))


# -- change log -------------------------------------------------------------------------------------


def _change_log(raw: Mapping[str, str], company: Mapping[str, object]) -> tuple[ChangeLogEntry, ...] | None:
    """Dated change rows, former legal representatives (hi/ic) and the revocation or deregistration
    date; unknown when the change log was not fetched. No data means no rows: a log can only add
    events, so empty is safe here, and a log cut short by the page limit keeps the rows it has."""
    if "changeinfo" not in raw:
        return None
    listing = _list_payload(raw["changeinfo"], "changeinfo")
    rows = tuple(
        _change_entry(item, f"changeinfo.items[{index}]")
        for index, item in enumerate(listing.items if listing else ())
    )
    former: tuple[ChangeLogEntry, ...] = ()
    if "hi_ic" in raw:
        result = _envelope_result(raw["hi_ic"], "hi_ic")
        if result is not _NO_DATA:
            former = tianyancha_risk.former_legal_representatives(result, "hi_ic")
    return rows + former + tianyancha_risk.base_status_dates(dict(company))


def _change_entry(item: object, what: str) -> ChangeLogEntry:
    row = as_object(item, what)
    label = clean_text(as_text(row.get("changeItem"), f"{what}.changeItem"))
    return ChangeLogEntry(
        categories=classify_change_item(label),
        item=label,
        before=clean_text(as_text(row.get("contentBefore"), f"{what}.contentBefore")),
        after=clean_text(as_text(row.get("contentAfter"), f"{what}.contentAfter")),
        date=cn_date(row.get("changeTime"), f"{what}.changeTime"),
    )


# -- control and risk lists -------------------------------------------------------------------------


def _optional(
    raw: Mapping[str, str], endpoint: str, mapping: Callable[[object], tuple[Controller, ...]]
) -> tuple[Controller, ...] | None:
    """An object answer's mapping; None when not fetched, empty when the vendor has no data."""
    if endpoint not in raw:
        return None
    result = _envelope_result(raw[endpoint], endpoint)
    return () if result is _NO_DATA else mapping(result)


def _actual_controllers(result: object) -> tuple[Controller, ...]:
    return tianyancha_risk.actual_controllers(result, "actual_control")


def _risk_list(
    raw: Mapping[str, str], endpoint: str, mapping: Callable[[list[object], str], tuple[_Item, ...]]
) -> tuple[_Item, ...] | None:
    """A risk list's entries: None when not fetched, empty when the vendor has no data (300000,
    documented as "经查无结果"), and a ParseError when fewer entries came than the vendor counts."""
    if endpoint not in raw:
        return None
    listing = _list_payload(raw[endpoint], endpoint)
    if listing is None:
        return ()
    if not listing.complete:
        raise ParseError(f"{endpoint}: {len(listing.items)} of {listing.total} entries; a partial list")
    return mapping(listing.items, f"{endpoint}.items")


def _dishonest_debtors(raw: Mapping[str, str], people: KeyPeople) -> tuple[Listing, ...] | None:
    """The current dishonest-debtor list with the lifted (historic) one; unknown without the current."""
    current = _risk_list(
        raw,
        "dishonest",
        lambda items, what: tianyancha_risk.dishonest_debtors(items, what, people, lifted=False),
    )
    lifted = _risk_list(
        raw,
        "hi_dishonest",
        lambda items, what: tianyancha_risk.dishonest_debtors(items, what, people, lifted=True),
    )
    if current is None:
        return None
    return current + (lifted or ())
