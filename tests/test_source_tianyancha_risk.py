"""Tianyancha risk signals: mapping of every sample, one added item = one change, envelopes, a
not-purchased API, paging, order- and format-only changes, fuzzing."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.base import record_of
from sources.http.timing import Timing
from sources.tianyancha import SIGNAL_ENDPOINTS, TianyanchaOptions, TianyanchaSource
from tests.cn_samples import SAMPLE_USCC, TIANYANCHA_RISK, TIANYANCHA_SAMPLES
from tests.fuzzing import json_values, mutate, only_records_or_source_errors
from tests.mocking import TRANSPORT
from watcher.diff import diff
from watcher.errors import AuthError, ParseError, RateLimitedError, TransientError
from watcher.record import CN_SIGNALS, Action, Category, ListingState, Party, RegistryRecord, Signal
from watcher.rules import change_severity
from watcher.vocabulary import Severity

RISK = TIANYANCHA_RISK
USCC = SAMPLE_USCC
BASE_URL = "https://open.api.tianyancha.com"
SAMPLES = TIANYANCHA_SAMPLES
EMPTY_LIST = json.dumps({"result": {"total": 0, "items": []}, "reason": "ok", "error_code": 0})
PATHS = {"baseinfo": "/services/open/ic/baseinfo/normal"} | {
    "holder": "/services/open/ic/holder/2.0",
    "staff": "/services/open/ic/staff/2.0",
    **{key: call.path for calls in SIGNAL_ENDPOINTS.values() for key, call in calls.items()},
}


def text(stem: str) -> str:
    return (RISK / f"{stem}.json").read_text(encoding="utf-8")


def raw(**t1: bool | str) -> dict[str, str]:
    """Every sample's base file; ``key=True`` takes its _t1 file, ``key="..."`` that text."""
    answers = {"holder": EMPTY_LIST, "staff": EMPTY_LIST}
    for key, stem in SAMPLES.items():
        chosen = t1.get(key, False)
        answers[key] = chosen if isinstance(chosen, str) else text(f"{stem}_t1" if chosen else stem)
    return answers


def parse(answers: dict[str, str]) -> RegistryRecord:
    return record_of(TianyanchaSource.map_raw, answers, source="cn", registry_id=USCC)


# -- mapping ---------------------------------------------------------------------------------------


def test_maps_every_risk_sample():
    record = parse(raw())

    (controller,) = record.actual_controllers or ()
    assert (controller.name, controller.key, controller.stake and controller.stake.low) == (
        "周明远",
        "id:2301234567",
        62.25,
    )
    assert [owner.name for owner in record.beneficial_owners or ()] == ["周明远", "沈丽华"]
    abnormal = {item.listed_on: item for item in record.abnormal_operations or ()}
    assert abnormal[date(2025, 9, 18)].state is ListingState.ACTIVE
    assert abnormal[date(2022, 6, 30)].state is ListingState.REMOVED
    assert abnormal[date(2022, 6, 30)].removed_on == date(2022, 11, 10)
    violations = {item.listed_on: item for item in record.serious_violations or ()}
    assert violations[date(2021, 7, 12)].removed_on == date(2023, 3, 2)
    pledges = {item.key: item for item in record.equity_pledges or ()}
    assert pledges["id:9100002"].state is ListingState.ACTIVE
    assert pledges["id:9100001"].state is ListingState.REMOVED
    assert pledges["id:9100002"].amount is not None and pledges["id:9100002"].amount.amount == 30_000_000
    mortgages = {item.key: item for item in record.chattel_mortgages or ()}
    assert mortgages["id:8200001"].state is ListingState.REMOVED
    assert mortgages["id:8200001"].removed_on == date(2023, 4, 10)
    assert mortgages["id:8200002"].pledgee == "江苏长岳商业银行股份有限公司苏州分行"
    assert {item.key for item in record.enforcements or ()} == {"(2026)苏0506执412号", "(2025)苏0506执5821号"}
    states = {item.key: item.state for item in record.dishonest_debtors or ()}
    assert states["(2021)苏0506执2210号"] is ListingState.LIFTED
    assert sum(state is ListingState.ACTIVE for state in states.values()) == 2
    restrictions = record.consumption_restrictions or ()
    assert {(item.party, item.party_name) for item in restrictions} == {
        (Party.LEGAL_REPRESENTATIVE, "周明远")
    }
    bankruptcy = {item.case_number: item.state for item in record.bankruptcies or ()}
    assert bankruptcy["(2023)苏05破申31号"] is ListingState.REMOVED
    log = record.change_log or ()
    former = [entry for entry in log if entry.before in ("陆海川", "沈丽华")]
    assert {(entry.before, entry.date) for entry in former} == {
        ("陆海川", date(2018, 9, 3)),
        ("沈丽华", date(2021, 6, 28)),
    }
    assert all(entry.categories == {Category.LEGAL_REPRESENTATIVE} for entry in former)


ONE_ADDED = [
    ("abnormal", Category.ABNORMAL_OPERATION, Severity.CRITICAL),
    ("illegal", Category.SERIOUS_VIOLATION, Severity.CRITICAL),
    ("equity", Category.EQUITY_PLEDGE, Severity.HIGH),
    ("mortgage", Category.CHATTEL_MORTGAGE, Severity.WARNING),
    ("zhixing", Category.ENFORCEMENT, Severity.HIGH),
    ("dishonest", Category.DISHONEST_DEBTOR, Severity.CRITICAL),
    ("hi_dishonest", Category.DISHONEST_DEBTOR, Severity.INFO),
    ("consumption_restriction", Category.CONSUMPTION_RESTRICTION, Severity.HIGH),
    ("bankruptcy", Category.BANKRUPTCY, Severity.CRITICAL),
    ("humanholding", Category.BENEFICIAL_OWNER, Severity.WARNING),
]


@pytest.mark.parametrize(("endpoint", "category", "severity"), ONE_ADDED)
def test_one_added_item_is_exactly_one_change(endpoint, category, severity):
    changes = diff(parse(raw()), parse(raw(**{endpoint: True})))

    (change,) = changes
    assert (change.category, change.action) == (category, Action.ADDED)
    assert change_severity(change) is severity


def test_actual_controller_swap_is_an_actual_controller_change():
    changes = diff(parse(raw()), parse(raw(actual_control=True)))

    assert {change.category for change in changes} == {Category.ACTUAL_CONTROLLER}
    summary = {(change.action, change.before, change.after) for change in changes}
    assert any(action is Action.ADDED and "顾嘉禾" in (after or "") for action, _, after in summary)
    assert any(action is Action.REMOVED and "周明远" in (before or "") for action, before, _ in summary)
    assert all(change_severity(change) is Severity.WARNING for change in changes)
    assert all(change.key_person for change in changes)


def test_new_change_log_row_and_a_revocation_are_dated():
    old = parse(raw())
    new = parse(raw(changeinfo=True, hi_ic=True, baseinfo=True))

    changes = diff(old, new)
    status = [change for change in changes if change.category is Category.STATUS]
    assert [change.effective_date for change in status] == [date(2026, 5, 20)]


def test_dishonest_person_entry_is_against_the_legal_representative_or_controller():
    document = json.loads(text("jr_dishonest_2.0"))
    person = dict(document["result"]["items"][0], type="0", iname="周明远", casecode="(2026)苏0506执9号")
    other = dict(person, iname="顾嘉禾", casecode="(2026)苏0506执10号")
    document["result"]["items"] = [person, other]
    document["result"]["total"] = 2
    controller = json.loads(text("ic_actualControl_3.0_t1"))  # 顾嘉禾 controls

    record = parse(
        raw(dishonest=json.dumps(document, ensure_ascii=False), actual_control=json.dumps(controller))
    )

    parties = {item.party_name: item.party for item in record.dishonest_debtors or () if item.party_name}
    assert parties == {"周明远": Party.LEGAL_REPRESENTATIVE, "顾嘉禾": Party.ACTUAL_CONTROLLER}


def test_reordered_lists_and_other_date_formats_make_no_change():
    answers = raw()
    shuffled = {}
    for key in ("abnormal", "illegal", "equity", "mortgage", "zhixing", "dishonest", "bankruptcy"):
        document = json.loads(answers[key])
        document["result"]["items"].reverse()
        shuffled[key] = json.dumps(document, ensure_ascii=False)
    illegal = json.loads(shuffled["illegal"])
    for item in illegal["result"]["items"]:
        item["putDate"] = parse_day(item["putDate"])
    shuffled["illegal"] = json.dumps(illegal, ensure_ascii=False)

    assert diff(parse(answers), parse(raw(**shuffled))) == []


def parse_day(epoch_ms: int) -> str:
    from sources.cn_common import cn_date

    day = cn_date(epoch_ms, "test")
    assert day is not None
    return day.isoformat()


def test_no_result_is_an_empty_list_and_an_absent_answer_is_unknown():
    no_result = text("_error_300000_no_result")
    answers = raw(abnormal=no_result, actual_control=no_result)
    del answers["equity"]
    record = parse(answers)

    assert record.abnormal_operations == ()
    assert record.actual_controllers == ()
    assert record.equity_pledges is None


def test_a_partial_risk_list_is_a_parse_error():
    document = json.loads(text("mr_abnormal_2.0"))
    document["result"]["total"] = 30

    with pytest.raises(ParseError, match="partial"):
        parse(raw(abnormal=json.dumps(document, ensure_ascii=False)))


@pytest.mark.parametrize(
    "change",
    [{"chainList": None}, {"type": "company"}, {"percent": "很多"}, {"name": ""}],
    ids=["no-chain", "unknown-type", "bad-percent", "no-name"],
)
def test_an_unknown_beneficial_owner_shape_is_a_parse_error(change):
    document = json.loads(text("ic_humanholding_2.0"))
    document["result"]["items"][0].update(change)

    with pytest.raises(ParseError):
        parse(raw(humanholding=json.dumps(document, ensure_ascii=False)))


def test_a_missing_beneficial_owner_key_is_a_parse_error():
    document = json.loads(text("ic_humanholding_2.0"))
    del document["result"]["items"][0]["chainList"]

    with pytest.raises(ParseError, match="unknown beneficial-owner shape"):
        parse(raw(humanholding=json.dumps(document, ensure_ascii=False)))


@pytest.mark.parametrize(
    ("ratio", "percent"), [(0.6225, 62.25), (62.25, 62.25), ("62.25%", 62.25), (1, 100), (250, None)]
)
def test_controller_ratio_as_fraction_or_percent(ratio, percent):
    document = json.loads(text("ic_actualControl_3.0"))
    document["result"]["actualControllerList"][0]["ratio"] = ratio

    (controller,) = parse(raw(actual_control=json.dumps(document))).actual_controllers or ()

    assert (controller.stake.low if controller.stake else None) == percent


# -- fetching --------------------------------------------------------------------------------------


def make_source(**options: object) -> TianyanchaSource:
    settings = TianyanchaOptions(
        type="tianyancha", token="t", base_url=BASE_URL, retries=0, rate="1000/s", **options
    )
    return TianyanchaSource("cn", settings, timing=Timing(backoff_base=0.001))


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=BASE_URL, assert_all_called=False) as mock:
        for key, path in PATHS.items():
            mock.get(path).respond(200, text=raw().get(key, EMPTY_LIST))
        yield mock


async def test_fetch_all_signals_maps_like_the_samples(api):
    cn = make_source()
    try:
        fetched = await cn.fetch(USCC)
    finally:
        await cn.aclose()

    assert fetched.record == parse(raw())
    assert fetched.signals == CN_SIGNALS
    assert set(fetched.raw) == set(PATHS)


async def test_fetch_only_the_signals_asked(api):
    cn = make_source()
    try:
        fetched = await cn.fetch(USCC, signals=frozenset({Signal.PLEDGES}))
    finally:
        await cn.aclose()

    assert set(fetched.raw) == {"baseinfo", "holder", "staff", "equity", "mortgage"}
    assert fetched.record.change_log is None
    assert fetched.record.enforcements is None
    assert fetched.record.equity_pledges is not None


async def test_not_purchased_marks_the_signal_unavailable_and_the_rest_is_mapped(api):
    refused = {"result": None, "reason": "无权限访问此api", "error_code": 300005}
    api.get(PATHS["hi_dishonest"]).respond(200, json=refused)
    cn = make_source()
    try:
        fetched = await cn.fetch(USCC)
        again = await cn.fetch(USCC)
    finally:
        await cn.aclose()

    assert Signal.JUDICIAL in cn.unavailable_signals
    assert Signal.JUDICIAL not in fetched.signals
    assert not {"zhixing", "dishonest", "hi_dishonest"} & set(fetched.raw)
    assert fetched.record.dishonest_debtors is None
    assert fetched.record.equity_pledges == parse(raw()).equity_pledges
    assert "hi_dishonest" not in again.raw


async def test_not_purchased_wording_on_an_unknown_code_skips_the_signal(api):
    api.get(PATHS["abnormal"]).respond(
        200, json={"result": None, "reason": "接口未购买", "error_code": 300099}
    )
    cn = make_source()
    try:
        fetched = await cn.fetch(USCC)
    finally:
        await cn.aclose()
    assert Signal.ABNORMAL in cn.unavailable_signals
    assert fetched.record.abnormal_operations is None


async def test_no_permission_on_the_registry_card_stays_an_auth_error(api):
    api.get(PATHS["baseinfo"]).respond(200, json={"result": None, "reason": "无权限", "error_code": 300005})
    cn = make_source()
    try:
        with pytest.raises(AuthError):
            await cn.fetch(USCC)
    finally:
        await cn.aclose()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (300006, AuthError),
        (300007, AuthError),
        (300004, RateLimitedError),
        (300001, TransientError),
        (300012, TransientError),
    ],
)
@pytest.mark.parametrize("endpoint", ["actual_control", "equity", "bankruptcy", "changeinfo"])
async def test_error_envelopes_on_a_signal_fail_the_check(api, endpoint, code, error):
    api.get(PATHS[endpoint]).respond(200, json={"result": None, "reason": "x", "error_code": code})
    cn = make_source()
    try:
        with pytest.raises(error, match=str(code)):
            await cn.fetch(USCC)
    finally:
        await cn.aclose()
    assert not cn.unavailable_signals


@pytest.mark.parametrize("status", [404, 410])
@pytest.mark.parametrize("endpoint", ["abnormal", "zhixing", "hi_ic"])
async def test_a_missing_path_on_a_list_is_a_parse_error_not_a_missing_company(api, endpoint, status):
    """ "No such company" is the vendor's envelope on the base facts; a 404 on a list call means the
    path moved (or base_url is wrong), never that the borrower is gone."""
    api.get(PATHS[endpoint]).respond(status, text="Not Found")
    cn = make_source()
    try:
        with pytest.raises(ParseError, match="endpoint is not there"):
            await cn.fetch(USCC)
    finally:
        await cn.aclose()


def paged(items: list[dict], fail_on: int | None = None):
    def respond(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["pageNum"])
        if number == fail_on:
            return httpx.Response(500)
        page = items[(number - 1) * 20 : number * 20]
        return httpx.Response(200, json={"result": {"total": len(items), "items": page}, "error_code": 0})

    return respond


def zhixing_items(count: int) -> list[dict]:
    return [
        {
            "caseCode": f"(2026)苏0506执{n}号",
            "execCourtName": "苏州市吴中区人民法院",
            "caseCreateTime": 1769011200000,
        }
        for n in range(count)
    ]


async def test_paging_merges_a_long_risk_list(api):
    route = api.get(PATHS["zhixing"]).mock(side_effect=paged(zhixing_items(45)))
    cn = make_source()
    try:
        fetched = await cn.fetch(USCC)
    finally:
        await cn.aclose()
    assert route.call_count == 3
    assert len(fetched.record.enforcements or ()) == 45


async def test_a_risk_list_longer_than_max_pages_fails_the_check(api):
    api.get(PATHS["zhixing"]).mock(side_effect=paged(zhixing_items(45)))
    cn = make_source(max_pages=2)
    try:
        with pytest.raises(ParseError, match="max_pages"):
            await cn.fetch(USCC)
    finally:
        await cn.aclose()


async def test_a_failing_page_fails_the_check(api):
    api.get(PATHS["zhixing"]).mock(side_effect=paged(zhixing_items(45), fail_on=2))
    cn = make_source()
    try:
        with pytest.raises(TransientError):
            await cn.fetch(USCC)
    finally:
        await cn.aclose()


# -- fuzzing ---------------------------------------------------------------------------------------

risk_endpoints = st.sampled_from(sorted(set(SAMPLES) - {"baseinfo"}))


@given(endpoint=risk_endpoints, document=json_values)
def test_parse_arbitrary_json(endpoint, document):
    only_records_or_source_errors(lambda: parse(raw(**{endpoint: json.dumps(document)})))


@given(endpoint=risk_endpoints, result=json_values)
def test_parse_arbitrary_result(endpoint, result):
    document = {"result": result, "reason": "ok", "error_code": 0}
    only_records_or_source_errors(lambda: parse(raw(**{endpoint: json.dumps(document)})))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=risk_endpoints, data=st.data())
def test_parse_mutated_samples(endpoint, data):
    document = mutate(json.loads(text(SAMPLES[endpoint])), data)
    only_records_or_source_errors(lambda: parse(raw(**{endpoint: json.dumps(document, ensure_ascii=False)})))
