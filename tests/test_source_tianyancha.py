"""Tianyancha open API: mapping, diffs, vendor error codes, paging, failures, fuzzing, a local server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources import source_class
from sources.base import record_of
from sources.http.timing import Timing
from sources.tianyancha import TianyanchaOptions, TianyanchaSource
from tests.fuzzing import json_values, mutate, only_records_or_handled_errors
from tests.loopback import QuietHandler, serve
from tests.mocking import TRANSPORT
from watcher.diff import diff
from watcher.errors import (
    AuthError,
    BlockedError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    TransientError,
)
from watcher.normalize import content_hash
from watcher.record import Action, Category, CompanyStatus, HolderKind, RegistryRecord, Role, Stake

FIXTURES = Path(__file__).parent / "fixtures" / "registries" / "cn_tianyancha"
USCC = "91330106MA2KH7Q302"
BASE_URL = "https://open.api.tianyancha.com"
TOKEN = "test-token-0000"
PATHS = {
    "baseinfo": "/services/open/ic/baseinfo/normal",
    "holder": "/services/open/ic/holder/2.0",
    "staff": "/services/open/ic/staff/2.0",
    "changeinfo": "/services/open/ic/changeinfo/2.0",
    "hi_ic": "/services/open/hi/ic/2.0",
}
# The registry card and the change_log signal (changeinfo, and hi/ic for former legal
# representatives, which these companies have none of); the risk signals are tested in
# test_source_tianyancha_risk.py.
T1_FILES = {
    "baseinfo": "ic_baseinfo_normal.json",
    "holder": "ic_holder.json",
    "staff": "ic_staff.json",
    "changeinfo": "ic_changeinfo.json",
    "hi_ic": "error_no_data.json",
}
# The state before the changes the t1 change log records (synthetic, same shapes).
T0_FILES = {
    "baseinfo": "ic_baseinfo_normal_t0.json",
    "holder": "ic_holder_t0.json",
    "staff": "ic_staff_t0.json",
    "changeinfo": "error_no_data.json",
    "hi_ic": "error_no_data.json",
}
NO_DATA = {"result": None, "reason": "无数据", "error_code": 300000}


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_document(name: str) -> dict:
    return json.loads(fixture_text(name))


def raw_texts(files: dict[str, str] = T1_FILES, **documents: object) -> dict[str, str]:
    """Fixture texts per endpoint, with some endpoints replaced by the given JSON documents."""
    raw = {endpoint: fixture_text(name) for endpoint, name in files.items()}
    raw.update(
        {endpoint: json.dumps(document, ensure_ascii=False) for endpoint, document in documents.items()}
    )
    return raw


def parse(raw: dict[str, str], registry_id: str = USCC) -> RegistryRecord:
    return record_of(TianyanchaSource.map_raw, raw, source="cn", registry_id=registry_id)


def ok(result: object) -> dict:
    return {"result": result, "reason": "ok", "error_code": 0}


def listing(items: list[dict], total: int | None = None) -> dict:
    return ok({"total": len(items) if total is None else total, "items": items})


def base_with(**changes: object) -> dict:
    document = fixture_document("ic_baseinfo_normal.json")
    document["result"].update(changes)
    return document


def holder(name: str, capital: list[dict], **fields: object) -> dict:
    return {"name": name, "type": 2, "capital": capital, **fields}


# -- mapping ----------------------------------------------------------------------------------------


def test_maps_base_facts():
    record = parse(raw_texts())

    assert record.source == "cn"
    assert record.registry_id == USCC
    assert record.name == "杭州澜潮智能装备有限公司"
    assert record.status is not None
    assert (record.status.code, record.status.raw) == (CompanyStatus.ACTIVE, "存续")
    assert record.registered_capital is not None
    assert record.registered_capital.amount == Decimal("50000000.00")
    assert record.registered_capital.currency == "CNY"
    assert record.registered_capital.raw == "5000万人民币"
    assert record.address == "浙江省杭州市西湖区西溪路525号"
    assert record.controllers is None


def test_maps_staff_and_borrows_the_staff_id_for_the_legal_representative():
    record = parse(raw_texts())

    assert record.people is not None
    people = {person.name: person for person in record.people}
    assert people["李娜"].key == "id:2419907651"
    assert people["李娜"].roles == {Role.DIRECTOR, Role.MANAGER}
    assert people["李娜"].role_text == "执行董事兼总经理"
    assert people["陈丽"].key == "id:2306548772"
    assert people["陈丽"].roles == {Role.SUPERVISOR}
    assert record.legal_representative is not None
    assert record.legal_representative.name == "李娜"
    assert record.legal_representative.key == "id:2419907651"
    assert record.legal_representative.roles == {Role.LEGAL_REPRESENTATIVE}
    assert record.finance_head is None


def test_legal_representative_not_among_staff_is_keyed_by_name():
    record = parse(raw_texts(baseinfo=base_with(legalPersonName="赵磊")))

    assert record.legal_representative is not None
    assert record.legal_representative.key == "n:赵磊"


def test_legal_representative_is_kept_when_staff_is_unknown():
    record = parse(raw_texts(staff=NO_DATA))

    assert record.people is None
    assert record.finance_head is None
    assert record.legal_representative is not None
    assert record.legal_representative.key == "n:李娜"


def test_staff_title_falls_back_to_staff_type_name_and_keys_by_name_without_id():
    staff = listing([{"name": "周明", "staffTypeName": "财务负责人"}])

    record = parse(raw_texts(staff=staff))

    assert record.people is not None
    (person,) = record.people
    assert person.key == "n:周明"
    assert person.roles == {Role.FINANCE_HEAD}
    assert record.finance_head == person


def test_finance_head_when_staff_lists_one():
    staff = fixture_document("ic_staff.json")
    staff["result"]["items"].append({"name": "周明", "id": 2501, "typeJoin": ["财务负责人"]})
    staff["result"]["total"] = 3

    record = parse(raw_texts(staff=staff))

    assert record.finance_head is not None
    assert (record.finance_head.name, record.finance_head.key) == ("周明", "id:2501")


def test_maps_shareholders():
    record = parse(raw_texts())

    assert record.shareholders is not None
    holders = {h.name: h for h in record.shareholders}
    person, company = holders["王建国"], holders["上海临港澜启科技有限公司"]
    assert person.key == "id:2306548771"
    assert person.kind is HolderKind.PERSON
    assert person.stake == Stake(Decimal(60), Decimal(60))
    assert person.subscribed is not None
    assert (person.subscribed.amount, person.subscribed.currency) == (Decimal("30000000.00"), "CNY")
    assert company.key == "id:3519907734"
    assert company.kind is HolderKind.ENTITY
    assert company.stake == Stake(Decimal(40), Decimal(40))


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (1, "王建国", HolderKind.ENTITY),
        (2, "某某有限公司", HolderKind.PERSON),
        (3, "杭州市西湖区财政局", HolderKind.ENTITY),
        ("2", "王建国", HolderKind.PERSON),
        (None, "杭州澜川投资管理合伙企业（有限合伙）", HolderKind.ENTITY),
        (None, "王建国", HolderKind.PERSON),
        (9, "上海临港澜启科技有限公司", HolderKind.ENTITY),
    ],
)
def test_holder_kind(kind, name, expected):
    record = parse(raw_texts(holder=listing([{"name": name, "type": kind, "capital": []}])))

    assert record.shareholders is not None
    assert record.shareholders[0].kind is expected


@pytest.mark.parametrize(
    ("capital", "stake", "amount"),
    [
        ([], None, None),
        ([{"amomon": "", "percent": ""}], None, None),
        ([{"amomon": "100万人民币", "percent": "10.00%"}], Decimal(10), Decimal("1000000.00")),
        # the holder's total repeated on each tranche row
        (
            [
                {"amomon": "60万人民币", "percent": "10%", "time": "2020-01-01"},
                {"amomon": "40万人民币", "percent": "10%", "time": "2021-01-01"},
            ],
            Decimal(10),
            Decimal("1000000.00"),
        ),
        # per-tranche shares
        (
            [
                {"amomon": "60万人民币", "percent": "6%", "time": "2020-01-01"},
                {"amomon": "40万人民币", "percent": "4%", "time": "2021-01-01"},
            ],
            Decimal(10),
            Decimal("1000000.00"),
        ),
        # an identical row repeated counts once
        (
            [{"amomon": "100万人民币", "percent": "10%"}, {"amomon": "100万人民币", "percent": "10%"}],
            Decimal(10),
            Decimal("1000000.00"),
        ),
        # mixed currencies cannot be added up: the amount is unknown, not wrong
        (
            [{"amomon": "100万人民币", "percent": "6%"}, {"amomon": "10万美元", "percent": "4%"}],
            Decimal(10),
            None,
        ),
    ],
)
def test_subscription_rows(capital, stake, amount):
    forward = parse(raw_texts(holder=listing([holder("王建国", capital)])))
    backward = parse(raw_texts(holder=listing([holder("王建国", list(reversed(capital)))])))

    assert forward.shareholders is not None
    (shareholder,) = forward.shareholders
    assert shareholder.stake == (None if stake is None else Stake(stake, stake))
    assert (None if shareholder.subscribed is None else shareholder.subscribed.amount) == amount
    assert backward.shareholders == forward.shareholders


def test_change_log_is_classified_cleaned_and_dated():
    record = parse(raw_texts())

    assert record.change_log is not None
    by_item = {entry.item: entry for entry in record.change_log}
    legal = by_item["负责人变更(法定代表人、负责人、首席代表、合伙事务执行人等变更)"]
    assert legal.categories == {Category.LEGAL_REPRESENTATIVE}
    assert (legal.before, legal.after, legal.date) == ("王建国", "李娜", date(2026, 2, 26))
    staff = by_item["高级管理人员备案(董事、监事、经理等)"]
    assert staff.categories == {Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER}
    assert staff.before == "王建国(执行董事兼总经理);陈丽(监事)"
    assert "<em>" not in staff.after
    assert by_item["财务负责人备案"].categories == {Category.FINANCE_HEAD}
    shares = by_item["投资人(股权)变更"]
    assert shares.categories == {Category.SHAREHOLDER}
    assert shares.date == date(2026, 1, 9)
    assert "杭州澜川投资管理合伙企业(有限合伙)" in shares.before


@pytest.mark.parametrize(
    ("change_time", "expected"),
    [
        ("2026-02-26", date(2026, 2, 26)),
        ("2026-02-26 15:04:05", date(2026, 2, 26)),
        # 2026-02-25T16:30Z is already 2026-02-26 in Shanghai
        (1772037000000, date(2026, 2, 26)),
        ("1772037000000", date(2026, 2, 26)),
        ("20260226", date(2026, 2, 26)),
        # epoch seconds are not what the vendor sends; a ten-digit number is not guessed at
        (1772037000, None),
        ("", None),
        (None, None),
        ("not a date", None),
        ("999999999999999", None),
        ("99999999999999999", None),
    ],
)
def test_change_dates(change_time, expected):
    row = {"changeItem": "住所变更", "contentBefore": "A", "contentAfter": "B", "changeTime": change_time}

    record = parse(raw_texts(changeinfo=listing([row])))

    assert record.change_log is not None
    (entry,) = record.change_log
    assert entry.categories == {Category.ADDRESS}
    assert entry.date == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("存续", CompanyStatus.ACTIVE),
        ("存续（在营、开业、在册）", CompanyStatus.ACTIVE),
        ("在业", CompanyStatus.ACTIVE),
        ("迁出", CompanyStatus.OTHER),
        ("吊销，未注销", CompanyStatus.REVOKED),
        ("注销", CompanyStatus.DEREGISTERED),
        ("破产", CompanyStatus.BANKRUPT),
        ("清算", CompanyStatus.LIQUIDATION),
        ("迁出", CompanyStatus.OTHER),
    ],
)
def test_status_words(text, code):
    record = parse(raw_texts(baseinfo=base_with(regStatus=text)))

    assert record.status is not None
    assert record.status.code is code


def test_empty_status_and_capital_are_unknown():
    record = parse(raw_texts(baseinfo=base_with(regStatus="", regCapital=None, regLocation="-")))

    assert record.status is None
    assert record.registered_capital is None
    assert record.address is None


def test_volatile_fields_do_not_change_the_content():
    changed = base_with(updateTimes=1800000000000, approvedTime=1800000000000, percentileScore=1)
    staff = fixture_document("ic_staff.json")
    staff["result"]["items"].reverse()

    assert content_hash(parse(raw_texts(baseinfo=changed, staff=staff))) == content_hash(parse(raw_texts()))


def test_diff_names_exactly_the_planted_changes():
    before = parse(raw_texts(T0_FILES))
    after = parse(raw_texts(T1_FILES))

    changes = [
        (c.category, c.action, c.subject, c.before, c.after, c.effective_date, c.from_change_log)
        for c in diff(before, after)
    ]

    on_26_feb, on_9_jan = date(2026, 2, 26), date(2026, 1, 9)
    old_partner = "杭州澜川投资管理合伙企业(有限合伙)"
    new_partner = "上海临港澜启科技有限公司"
    assert changes == [
        (
            Category.LEGAL_REPRESENTATIVE,
            Action.CHANGED,
            "legal representative",
            "王建国",
            "李娜",
            on_26_feb,
            False,
        ),
        (
            Category.SHAREHOLDER,
            Action.ADDED,
            new_partner,
            None,
            f"{new_partner} 40% 20,000,000 CNY",
            on_9_jan,
            False,
        ),
        (
            Category.SHAREHOLDER,
            Action.REMOVED,
            old_partner,
            f"{old_partner} 40% 20,000,000 CNY",
            None,
            on_9_jan,
            False,
        ),
        (Category.DIRECTOR, Action.ADDED, "李娜", None, "李娜 (执行董事兼总经理)", on_26_feb, False),
        (Category.DIRECTOR, Action.REMOVED, "王建国", "王建国 (执行董事兼总经理)", None, on_26_feb, False),
        (Category.MANAGER, Action.ADDED, "李娜", None, "李娜 (执行董事兼总经理)", on_26_feb, False),
        (Category.MANAGER, Action.REMOVED, "王建国", "王建国 (执行董事兼总经理)", None, on_26_feb, False),
        (Category.FINANCE_HEAD, Action.CHANGED, "财务负责人备案", "赵磊", "周明", on_26_feb, True),
    ]


# -- envelopes and shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (300001, "请求失败", TransientError),
        (300002, "账号失效", AuthError),
        (300003, "账号过期", AuthError),
        (300004, "访问频率过快", RateLimitedError),
        (300005, "无权限访问此api", AuthError),
        (300006, "余额不足", AuthError),
        (300007, "剩余次数不足", AuthError),
        (300008, "缺少必要参数", ParseError),
        (300009, "账号信息有误", AuthError),
        (300010, "URL不存在", ParseError),
        (300011, "此IP无权限访问此api", AuthError),
        (300012, "报告生成中", TransientError),
        ("300006", "余额不足", AuthError),
        # codes outside the table: classified by the reason's words
        (399001, "token无效", AuthError),
        (399002, "授权已过期", AuthError),
        (399003, "请求过于频繁", RateLimitedError),
        (399004, "QPS超限", RateLimitedError),
        (399005, "系统异常", ParseError),
        (-1, "", ParseError),
    ],
)
@pytest.mark.parametrize("endpoint", ["baseinfo", "holder", "staff", "changeinfo"])
def test_error_envelopes(endpoint, code, reason, error):
    raw = raw_texts(**{endpoint: {"result": None, "reason": reason, "error_code": code}})

    with pytest.raises(error) as raised:
        parse(raw)
    assert str(code) in str(raised.value)
    assert raised.value.source == "cn"


def test_no_data_means_not_found_for_the_company_unknown_for_lists_and_no_rows_for_the_log():
    with pytest.raises(NotFoundError):
        parse(raw_texts(baseinfo=NO_DATA))

    record = parse(raw_texts(holder=NO_DATA, staff=NO_DATA, changeinfo=NO_DATA))

    assert record.shareholders is None
    assert record.people is None
    assert record.change_log == ()


def test_lists_cut_short_are_unknown_but_the_log_keeps_its_rows():
    holders = fixture_document("ic_holder.json")
    holders["result"]["total"] = 30
    staff = fixture_document("ic_staff.json")
    staff["result"]["total"] = "25"
    log = fixture_document("ic_changeinfo.json")
    log["result"]["total"] = 120

    record = parse(raw_texts(holder=holders, staff=staff, changeinfo=log))

    assert record.shareholders is None
    assert record.people is None
    assert record.change_log is not None
    assert len(record.change_log) == 4


def test_empty_lists_are_empty_sections():
    record = parse(raw_texts(holder=listing([]), staff=ok({"total": 0, "items": None})))

    assert record.shareholders == ()
    assert record.people == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"creditCode": "91110108551385082Q"}, "91110108551385082Q"),
        ({"creditCode": None}, "creditCode"),
        ({"name": "  "}, "name"),
    ],
)
def test_base_facts_must_be_this_company(changes, message):
    with pytest.raises(ParseError, match=message):
        parse(raw_texts(baseinfo=base_with(**changes)))


@pytest.mark.parametrize(
    ("endpoint", "document", "message"),
    [
        ("baseinfo", {"result": {}, "reason": "ok"}, "error_code"),
        ("baseinfo", {"result": None, "reason": "ok", "error_code": 0}, "baseinfo result"),
        ("baseinfo", {"result": [], "reason": "ok", "error_code": "zero"}, "not a number"),
        ("holder", ok({"total": "many", "items": []}), "total"),
        ("holder", ok({"total": 1, "items": {"name": "x"}}), "items"),
        ("staff", listing([{"name": "李娜", "typeJoin": "执行董事"}]), "typeJoin"),
        ("staff", listing([{"typeJoin": ["监事"]}]), "no name"),
        ("holder", listing([{"name": "王建国", "capital": {"percent": "60%"}}]), "capital"),
        ("changeinfo", listing(["row"]), "changeinfo"),
    ],
)
def test_malformed_payloads_are_parse_errors(endpoint, document, message):
    with pytest.raises(ParseError, match=message):
        parse(raw_texts(**{endpoint: document}))


def test_missing_payloads_are_parse_errors():
    for endpoint in TianyanchaSource.endpoints:
        raw = raw_texts()
        del raw[endpoint]
        with pytest.raises(ParseError, match=endpoint):
            parse(raw)


def test_source_is_registered_and_checks_credit_codes():
    assert source_class("tianyancha") is TianyanchaSource
    source = TianyanchaSource("cn", TianyanchaOptions(type="tianyancha", token=TOKEN))
    assert source.normalise_id("９１３３０１０６ma2kh7q302") == USCC
    with pytest.raises(ValueError):
        source.normalise_id("91330106MA2KH7Q303")
    assert source.settings.base_url == BASE_URL
    assert TOKEN not in repr(source.settings)


# -- fetching over HTTP (respx) -------------------------------------------------------------------


# Retries back off for about a millisecond instead of half a second.
QUICK_RETRIES = Timing(backoff_base=0.001)


def make_source(base_url: str = BASE_URL, **options: object) -> TianyanchaSource:
    settings = TianyanchaOptions(
        type="tianyancha",
        token=TOKEN,
        base_url=base_url,
        timeout="2s",
        deadline="10s",
        retries=2,
        rate="1000/s",
        **{"signals": ["change_log"], **options},
    )
    return TianyanchaSource("cn", settings, timing=QUICK_RETRIES)


@pytest.fixture
async def source():
    cn = make_source()
    yield cn
    await cn.aclose()


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


def serve_fixtures(api: respx.MockRouter, files: dict[str, str] = T1_FILES) -> dict[str, respx.Route]:
    return {
        endpoint: api.get(PATHS[endpoint]).respond(200, text=fixture_text(name))
        for endpoint, name in files.items()
    }


def paged(items: list[dict]) -> Callable[[httpx.Request], httpx.Response]:
    """A list endpoint that pages ``items`` by ``pageNum`` / ``pageSize`` as the vendor does."""

    def respond(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["pageNum"])
        size = int(request.url.params["pageSize"])
        page = items[(number - 1) * size : number * size]
        return httpx.Response(
            200, json={"result": {"total": len(items), "items": page}, "reason": "ok", "error_code": 0}
        )

    return respond


async def test_fetch_success_sends_the_token_and_the_credit_code(source, api):
    routes = serve_fixtures(api)

    fetched = await source.fetch(USCC.lower())

    assert fetched.record == parse(raw_texts())
    assert fetched.raw == raw_texts()
    for endpoint, route in routes.items():
        request = route.calls.last.request
        assert request.headers["Authorization"] == TOKEN
        assert request.url.params["keyword"] == USCC
        if endpoint not in ("baseinfo", "hi_ic"):
            assert (request.url.params["pageNum"], request.url.params["pageSize"]) == ("1", "20")


async def test_fetch_pages_through_a_long_list_and_merges_the_pages(source, api):
    serve_fixtures(api)
    shareholders = [holder(f"股东{n:02d}", [{"amomon": "1万人民币", "percent": "4%"}]) for n in range(25)]
    route = api.get(PATHS["holder"]).mock(side_effect=paged(shareholders))

    fetched = await source.fetch(USCC)

    assert route.call_count == 2
    merged = json.loads(fetched.raw["holder"])
    assert merged["error_code"] == 0
    assert merged["result"]["total"] == 25
    assert [item["name"] for item in merged["result"]["items"]] == [h["name"] for h in shareholders]
    assert fetched.record.shareholders is not None
    assert len(fetched.record.shareholders) == 25
    assert parse(fetched.raw) == fetched.record


async def test_fetch_stops_at_the_page_limit_and_the_list_is_unknown(api):
    serve_fixtures(api)
    shareholders = [holder(f"股东{n:02d}", []) for n in range(45)]
    route = api.get(PATHS["holder"]).mock(side_effect=paged(shareholders))
    cn = make_source(max_pages=2)
    try:
        fetched = await cn.fetch(USCC)
    finally:
        await cn.aclose()

    assert route.call_count == 2
    assert fetched.record.shareholders is None
    assert fetched.record.people is not None


async def test_fetch_keeps_the_vendor_text_of_a_no_data_list(source, api):
    serve_fixtures(api)
    api.get(PATHS["changeinfo"]).respond(200, text=fixture_text("error_no_data.json"))

    fetched = await source.fetch(USCC)

    assert fetched.raw["changeinfo"] == fixture_text("error_no_data.json")
    assert fetched.record.change_log == ()


async def test_fetch_no_data_for_the_company_is_not_found_without_paying_for_lists(source, api):
    routes = serve_fixtures(api)
    api.get(PATHS["baseinfo"]).respond(200, text=fixture_text("error_no_data.json"))

    with pytest.raises(NotFoundError) as raised:
        await source.fetch(USCC)
    assert (raised.value.source, raised.value.registry_id) == ("cn", USCC)
    assert all(routes[endpoint].call_count == 0 for endpoint in ("holder", "staff", "changeinfo"))


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (300006, "余额不足", AuthError),
        (300004, "访问频率过快", RateLimitedError),
        (300012, "报告生成中", TransientError),
    ],
)
async def test_fetch_vendor_errors_on_the_first_call_stop_the_check(source, api, code, reason, error):
    routes = serve_fixtures(api)
    api.get(PATHS["baseinfo"]).respond(200, json={"result": None, "reason": reason, "error_code": code})

    with pytest.raises(error, match=str(code)) as raised:
        await source.fetch(USCC)
    assert raised.value.registry_id == USCC
    assert routes["holder"].call_count == 0


async def test_fetch_vendor_error_on_a_later_page_fails_the_check(source, api):
    serve_fixtures(api)
    first_page = listing([holder(f"股东{n:02d}", []) for n in range(20)], total=30)
    api.get(PATHS["holder"]).mock(
        side_effect=[
            httpx.Response(200, json=first_page),
            httpx.Response(200, json={"result": None, "reason": "余额不足", "error_code": 300006}),
        ]
    )

    with pytest.raises(AuthError, match="holder page 2"):
        await source.fetch(USCC)


async def test_fetch_rejects_an_invalid_credit_code_without_asking(source, api):
    routes = serve_fixtures(api)

    with pytest.raises(NotFoundError, match="invalid unified social credit code"):
        await source.fetch("91330106MA2KH7Q303")
    assert routes["baseinfo"].call_count == 0


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, "not found", NotFoundError),
        (401, "{}", AuthError),
        (403, "{}", AuthError),
        (403, "<html>访问过于频繁，请输入验证码</html>", BlockedError),
        (400, "bad request", ParseError),
    ],
)
@pytest.mark.parametrize("endpoint", ["baseinfo", "staff"])
async def test_fetch_failure_statuses(source, api, endpoint, status, body, error):
    """On a list call (staff) a 404 is the path missing, a parse error: only the base facts' own
    answer can say the company is not there."""
    serve_fixtures(api)
    api.get(PATHS[endpoint]).respond(status, text=body)
    if endpoint != "baseinfo" and status == 404:
        error = ParseError

    with pytest.raises(error):
        await source.fetch(USCC)


async def test_fetch_retries_after_429_honouring_retry_after(source, api):
    serve_fixtures(api)
    route = api.get(PATHS["baseinfo"])
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(200, text=fixture_text("ic_baseinfo_normal.json")),
    ]

    started = time.monotonic()
    fetched = await source.fetch(USCC)

    assert time.monotonic() - started >= 0.9
    assert route.call_count == 2
    assert fetched.record.name == "杭州澜潮智能装备有限公司"


async def test_fetch_rate_limit_that_persists_is_rate_limited(source, api):
    serve_fixtures(api)
    route = api.get(PATHS["staff"]).respond(429, headers={"Retry-After": "0"})

    with pytest.raises(RateLimitedError):
        await source.fetch(USCC)
    assert route.call_count == 3


async def test_fetch_retries_a_server_error(source, api):
    serve_fixtures(api)
    route = api.get(PATHS["holder"])
    route.side_effect = [httpx.Response(500), httpx.Response(200, text=fixture_text("ic_holder.json"))]

    fetched = await source.fetch(USCC)

    assert route.call_count == 2
    assert fetched.record.shareholders is not None


async def test_fetch_server_error_that_persists_is_transient(source, api):
    serve_fixtures(api)
    route = api.get(PATHS["changeinfo"]).respond(502)

    with pytest.raises(TransientError) as raised:
        await source.fetch(USCC)
    assert route.call_count == 3
    assert raised.value.registry_id == USCC


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ("", ParseError, "empty"),
        ("<html><body>请完成滑动验证 captcha</body></html>", BlockedError, "captcha"),
        ("<html><body>502 Bad Gateway</body></html>", ParseError, "HTML"),
        ('{"result": {"name": "杭州澜潮', ParseError, "truncated"),
    ],
)
@pytest.mark.parametrize("endpoint", ["baseinfo", "holder"])
async def test_fetch_bad_200_bodies(source, api, endpoint, body, error, message):
    serve_fixtures(api)
    api.get(PATHS[endpoint]).respond(200, text=body)

    with pytest.raises(error, match=message):
        await source.fetch(USCC)


# -- property tests: a parser returns a record or raises a SourceError, nothing else -----------------

endpoints = st.sampled_from(TianyanchaSource.endpoints)


@given(endpoint=endpoints, document=json_values)
def test_parse_arbitrary_json(endpoint, document):
    only_records_or_handled_errors(lambda: parse(raw_texts(**{endpoint: document})))


@given(endpoint=endpoints, result=json_values)
def test_parse_arbitrary_json_in_an_ok_envelope(endpoint, result):
    only_records_or_handled_errors(lambda: parse(raw_texts(**{endpoint: ok(result)})))


@given(endpoint=endpoints, text=st.text())
def test_parse_arbitrary_text(endpoint, text):
    raw = raw_texts()
    raw[endpoint] = text
    only_records_or_handled_errors(lambda: parse(raw))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=endpoints, data=st.data())
def test_parse_mutated_fixtures(endpoint, data):
    document = mutate(fixture_document(T1_FILES[endpoint]), data)
    only_records_or_handled_errors(lambda: parse(raw_texts(**{endpoint: document})))


# -- a real HTTP server on 127.0.0.1 ----------------------------------------------------------------

FILES_BY_PATH = {PATHS[endpoint]: name for endpoint, name in T1_FILES.items()}


class FixtureHandler(QuietHandler):
    """Serves the fixture of each endpoint path; refuses requests without the token as the vendor does."""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if self.headers.get("Authorization") != TOKEN:
            self._send(200, json.dumps({"result": None, "reason": "token无效", "error_code": 300009}))
        elif url.path not in FILES_BY_PATH:
            self._send(404, "{}")
        elif query.get("keyword") != [USCC]:
            self._send(200, fixture_text("error_no_data.json"))
        else:
            self._send(200, fixture_text(FILES_BY_PATH[url.path]))

    def _send(self, status: int, text: str) -> None:
        self.send_body(status, text.encode("utf-8"), "application/json;charset=UTF-8")


@pytest.fixture
def local_server() -> Iterator[str]:
    with serve(FixtureHandler) as url:
        yield url


async def test_fetch_from_a_real_local_server(local_server):
    cn = make_source(local_server)
    try:
        fetched = await cn.fetch(USCC)
        with pytest.raises(NotFoundError):
            await cn.fetch("91110108551385082Q")
    finally:
        await cn.aclose()
    wrong_token = TianyanchaSource(
        "cn", TianyanchaOptions(type="tianyancha", token="wrong", base_url=local_server, retries=0)
    )
    try:
        with pytest.raises(AuthError, match="300009"):
            await wrong_token.fetch(USCC)
    finally:
        await wrong_token.aclose()

    assert fetched.record == parse(raw_texts())
    assert fetched.record.legal_representative is not None
    assert fetched.record.legal_representative.key == "id:2419907651"
