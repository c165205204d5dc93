"""Qichacha's risk signals: real-shaped answers of every risk endpoint mapped to record sections, the
diff a one-item change makes, envelopes, paging, person-level checks, and fuzzed parsers.

HTTP goes through respx at the policy's transport (tests/mocking.py); the source is the real one.
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.base import record_of
from sources.http.timing import Timing
from sources.qichacha import RISK_ENDPOINTS, QichachaOptions, QichachaSource
from tests.cn_samples import QICHACHA_CARD, QICHACHA_RISK, QICHACHA_SAMPLES, SAMPLE_USCC
from tests.fuzzing import json_values, mutate, only_records_or_source_errors
from tests.mocking import TRANSPORT
from watcher.diff import diff
from watcher.errors import AuthError, BlockedError, ParseError, RateLimitedError, TransientError
from watcher.normalize import content_hash
from watcher.record import (
    CN_SIGNALS,
    Action,
    Category,
    HolderKind,
    ListingState,
    Party,
    RegistryRecord,
    Signal,
)
from watcher.rules import change_severity
from watcher.vocabulary import Severity

RISK = QICHACHA_RISK
USCC = SAMPLE_USCC
URL = "https://api.qichacha.com"
FAST = {"retries": 0, "timeout": "5s", "deadline": "30s", "rate": "100000/s"}
ALL = tuple(Signal)

SAMPLES = QICHACHA_SAMPLES
PATHS = {endpoint.name: endpoint.path for endpoint in RISK_ENDPOINTS}
EMPTY_LIST = json.dumps({"Status": "200", "Message": "ok", "Result": {"VerifyResult": 0, "Data": []}})
NO_RESULT = (RISK / "_status_201_no_result.json").read_text("utf-8")


def sample(key: str, t1: bool = False) -> str:
    return (RISK / f"{SAMPLES[key]}{'_t1' if t1 else ''}.json").read_text("utf-8")


def card(t1: bool = False) -> str:
    return (RISK / f"{QICHACHA_CARD}{'_t1' if t1 else ''}.json").read_text("utf-8")


def person_list(key: str, t1: bool = False) -> str:
    """A person-level answer (764/765/766): the same row shape as 740/741/742."""
    return sample({"shixin": "shixin", "zhixing": "zhixing", "sumptuary": "sumptuary"}[key], t1)


def full_raw(**override: str) -> dict[str, str]:
    """Every answer of a check with all signals, base samples, the legal representative 周明远
    (also the actual controller, so no controller-level person answers)."""
    raw = {"getinfo": card(), **{key: sample(key) for key in SAMPLES if key != "basic_details"}}
    for kind in ("shixin", "zhixing", "sumptuary"):
        raw[f"person_{kind}_legal_representative"] = EMPTY_LIST
    raw.update(override)
    return raw


def mapped(raw: dict[str, str]) -> RegistryRecord:
    return record_of(QichachaSource.map_raw, raw, source="cn", registry_id=USCC)


# -- mapping of every sample ------------------------------------------------------------------------


def test_every_sample_maps_to_its_section():
    record = mapped(full_raw())

    assert record.actual_controllers is not None
    (controller,) = record.actual_controllers
    assert (controller.name, controller.kind, str(controller.stake)) == (
        "周明远",
        HolderKind.PERSON,
        "62.25%",
    )
    assert controller.key == "id:pc8b0ac35d597a11ef9a13a6beaa249e"
    assert {(o.name, str(o.stake)) for o in record.beneficial_owners or ()} == {
        ("周明远", "62.25%"),
        ("沈丽华", "25.5%"),
    }

    abnormal = sorted(record.abnormal_operations or (), key=lambda item: str(item.listed_on))
    assert [(str(item.listed_on), item.state) for item in abnormal] == [
        ("2022-06-30", ListingState.REMOVED),
        ("2025-09-18", ListingState.ACTIVE),
    ]
    assert abnormal[0].removal_reason == "补报未报年份的年度报告并公示"
    assert abnormal[0].key.startswith("h:") and abnormal[0].key != abnormal[1].key
    assert {item.state for item in record.serious_violations or ()} == {
        ListingState.ACTIVE,
        ListingState.REMOVED,
    }

    pledges = {item.key: item for item in record.equity_pledges or ()}
    assert pledges["d9bca06a35a8cad0cb73f0fd7674c7e4"].state is ListingState.REMOVED  # 无效
    active = pledges["c491deeed0269db3c4a4340003e22faf"]
    assert active.state is ListingState.ACTIVE and active.pledgor == "苏州恒岳控股集团有限公司"
    assert active.amount is not None and active.amount.amount == 30_000_000

    mortgages = {str(item.listed_on): item for item in record.chattel_mortgages or ()}
    cancelled = mortgages["2020-04-09"]
    assert cancelled.state is ListingState.REMOVED and str(cancelled.removed_on) == "2023-04-10"
    assert "0031" in cancelled.key and cancelled.pledgor == "苏州恒岳精密机械有限公司"
    assert mortgages["2024-09-02"].state is ListingState.ACTIVE

    assert {(item.case_number, item.party) for item in record.enforcements or ()} == {
        ("(2025)苏0506执5821号", Party.COMPANY),
        ("(2026)苏0506执412号", Party.COMPANY),
    }
    debtors = {item.case_number: item.state for item in record.dishonest_debtors or ()}
    assert debtors == {
        "(2025)苏0506执5821号": ListingState.ACTIVE,
        "(2026)苏0506执412号": ListingState.ACTIVE,
        "(2019)苏0506执3302号": ListingState.LIFTED,
        "(2021)苏0506执2210号": ListingState.LIFTED,
    }
    # 742 names the legal representative 周明远: the restriction is against him, as a person.
    assert {(item.party, item.party_name) for item in record.consumption_restrictions or ()} == {
        (Party.LEGAL_REPRESENTATIVE, "周明远")
    }
    assert {item.case_number for item in record.bankruptcies or ()} == {
        "(2023)苏05破申31号",
        "(2026)苏05破申12号",
    }

    log = record.change_log or ()
    assert {(entry.item, str(entry.date)) for entry in log} >= {
        ("投资人(股权)变更", "2025-12-11"),
        ("法定代表人变更", "2018-09-03"),
        ("法定代表人变更", "2021-06-28"),
    }
    former = [entry for entry in log if Category.LEGAL_REPRESENTATIVE in entry.categories]
    assert [(e.before, e.after) for e in sorted(former, key=lambda e: str(e.date))] == [
        ("陆海川", "沈丽华"),
        ("沈丽华", "周明远"),
    ]


# One item more in each _t1 sample: the change it makes, with its category and severity.
ONE_ITEM_MORE = [
    ("actual_control", Category.ACTUAL_CONTROLLER, None, Severity.WARNING),
    ("beneficial_owner", Category.BENEFICIAL_OWNER, Action.ADDED, Severity.WARNING),
    ("exception", Category.ABNORMAL_OPERATION, Action.ADDED, Severity.CRITICAL),
    ("serious_illegal", Category.SERIOUS_VIOLATION, Action.ADDED, Severity.CRITICAL),
    ("equity_pledged", Category.EQUITY_PLEDGE, Action.ADDED, Severity.HIGH),
    ("chattel_mortgage", Category.CHATTEL_MORTGAGE, Action.ADDED, Severity.WARNING),
    ("zhixing", Category.ENFORCEMENT, Action.ADDED, Severity.HIGH),
    ("shixin", Category.DISHONEST_DEBTOR, Action.ADDED, Severity.CRITICAL),
    ("history_shixin", Category.DISHONEST_DEBTOR, Action.ADDED, Severity.INFO),
    ("sumptuary", Category.CONSUMPTION_RESTRICTION, Action.ADDED, Severity.HIGH),
    ("bankruptcy", Category.BANKRUPTCY, Action.ADDED, Severity.CRITICAL),
]


@pytest.mark.parametrize(("key", "category", "action", "severity"), ONE_ITEM_MORE, ids=lambda v: str(v))
def test_the_t1_sample_is_exactly_one_change(key, category, action, severity):
    changes = diff(mapped(full_raw()), mapped(full_raw(**{key: sample(key, t1=True)})))
    if key == "actual_control":  # 周明远 → 顾嘉禾: one leaves, one comes, both key persons
        assert {(c.category, c.action, c.subject) for c in changes} == {
            (Category.ACTUAL_CONTROLLER, Action.REMOVED, "周明远"),
            (Category.ACTUAL_CONTROLLER, Action.ADDED, "顾嘉禾"),
        }
        assert {change_severity(c) for c in changes} == {severity}
        return
    (change,) = changes
    assert (change.category, change.action, change_severity(change)) == (category, action, severity)
    assert not change.first_seen


def test_t1_change_log_adds_the_legal_representative_change():
    before = mapped(full_raw())
    after = mapped(full_raw(change_log=sample("change_log", True), history_oper=sample("history_oper", True)))
    fresh = set(after.change_log or ()) - set(before.change_log or ())
    assert {(e.item, str(e.date), e.before, e.after) for e in fresh} == {
        ("法定代表人变更", "2026-05-20", "周明远", "顾嘉禾")
    }


def test_basic_details_date_a_revocation():
    record = mapped(full_raw(basic_details=sample("basic_details", True)))
    (revoked,) = [entry for entry in record.change_log or () if Category.STATUS in entry.categories]
    assert str(revoked.date) == "2026-05-20" and revoked.item == "吊销"
    assert not [
        e
        for e in mapped(full_raw(basic_details=sample("basic_details"))).change_log or ()
        if Category.STATUS in e.categories
    ]


def test_change_log_without_the_signal_comes_from_the_card():
    record = mapped({"getinfo": card()})
    assert [entry.item for entry in record.change_log or ()] == ["注册资本(金)变更"]
    assert (
        record.enforcements is None
        and record.actual_controllers is None
        and record.abnormal_operations is None
    )


def test_a_judicial_section_missing_a_part_stays_unknown():
    raw = full_raw()
    del raw["person_zhixing_legal_representative"]
    del raw["history_shixin"]
    record = mapped(raw)
    assert record.enforcements is None and record.dishonest_debtors is None
    assert record.consumption_restrictions is not None and record.bankruptcies is not None


def test_no_result_and_verify_result_zero_are_empty_lists():
    record = mapped(full_raw(exception=NO_RESULT, equity_pledged=EMPTY_LIST, zhixing=NO_RESULT))
    assert record.abnormal_operations == () and record.equity_pledges == () and record.enforcements == ()


def test_a_partial_list_is_a_parse_error():
    document = json.loads(sample("zhixing"))
    document["Paging"]["TotalRecords"] = 3
    with pytest.raises(ParseError, match="TotalRecords"):
        mapped(full_raw(zhixing=json.dumps(document, ensure_ascii=False)))


@pytest.mark.parametrize("key", ["exception", "equity_pledged", "change_log", "actual_control"])
def test_an_unknown_shape_is_a_parse_error_never_empty(key):
    envelope = json.dumps({"Status": "200", "Message": "ok", "Result": {"Rows": []}})
    with pytest.raises(ParseError):
        mapped(full_raw(**{key: envelope if key != "change_log" else EMPTY_LIST}))


def test_order_and_formatting_only_changes_change_nothing():
    raw = full_raw()
    shuffled = {}
    for key, text in raw.items():
        document = json.loads(text)
        result = document.get("Result")
        if isinstance(result, dict) and isinstance(result.get("Data"), list):
            result["Data"].reverse()
            for row in result["Data"]:
                for field, value in row.items():
                    if isinstance(value, str) and value:
                        row[field] = f" {value}\u3000"
        elif isinstance(result, list):
            result.reverse()
        document["OrderNumber"] = "X2099"
        shuffled[key] = json.dumps(document, ensure_ascii=False, indent=4)
    before, after = mapped(raw), mapped(shuffled)
    assert diff(before, after) == []
    assert content_hash(before) == content_hash(after)


# -- over HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=URL, assert_all_called=False) as mock:
        yield mock


async def _no_sleep(seconds: float) -> None:
    return None


def source(**options) -> QichachaSource:
    settings_ = QichachaOptions(type="qichacha", key="K", secret="S", **{"signals": ALL, **FAST, **options})
    return QichachaSource("cn", settings_, timing=Timing(sleep=_no_sleep))


def serve_all(api, **override: str | httpx.Response) -> dict[str, respx.Route]:
    """Every endpoint answering its base sample (person-level: empty), with ``override`` by raw key."""
    answers: dict[str, str | httpx.Response] = {
        "getinfo": card(),
        **{key: sample(key) for key in SAMPLES},
        **{name: EMPTY_LIST for name in PATHS if name.startswith("person_")},
    }
    answers.update(override)
    routes = {"getinfo": api.get("/ECIInfoVerify/GetInfo")}
    routes["getinfo"].mock(return_value=_response(answers["getinfo"]))
    for name, path in PATHS.items():
        if name.endswith("_actual_controller"):
            continue  # same paths as the legal representative's; told apart by personName below
        routes[name] = api.get(path)
        routes[name].mock(side_effect=_by_person(answers, name))
    return routes


def _response(answer: str | httpx.Response) -> httpx.Response:
    return answer if isinstance(answer, httpx.Response) else httpx.Response(200, text=answer)


def _by_person(answers, name):
    def respond(request: httpx.Request) -> httpx.Response:
        person = request.url.params.get("personName")
        if person and person != "周明远" and name.endswith("_legal_representative"):
            return _response(answers[name.replace("_legal_representative", "_actual_controller")])
        return _response(answers[name])

    return respond


async def test_fetch_with_all_signals_maps_every_section(api):
    routes = serve_all(api)
    qcc = source()
    fetched = await qcc.fetch(USCC)
    billed = qcc.take_billed_calls()
    await qcc.aclose()
    # 周明远 is legal representative and actual controller: asked about once.
    assert set(fetched.raw) == {
        "getinfo",
        *SAMPLES,
        *(f"person_{k}_legal_representative" for k in ("shixin", "zhixing", "sumptuary")),
    } - {"basic_details"}
    assert fetched.signals == CN_SIGNALS
    assert fetched.record.enforcements is not None and fetched.record.actual_controllers is not None
    person = routes["person_zhixing_legal_representative"].calls.last.request
    assert person.url.params["personName"] == "周明远" and person.url.params["searchKey"] == USCC
    assert routes["zhixing"].calls.last.request.url.params["pageSize"] == "20"
    assert routes["actual_control"].calls.last.request.url.params["keyWord"] == USCC
    assert billed == sum(len(route.calls) for route in routes.values())


async def test_a_distinct_actual_controller_is_checked_as_a_person(api):
    zhixing = json.loads(sample("zhixing", True))
    zhixing["Paging"]["TotalRecords"] = 1
    zhixing["Result"]["Data"] = zhixing["Result"]["Data"][2:]
    serve_all(
        api,
        actual_control=sample("actual_control", True),  # 顾嘉禾 controls, 周明远 represents
        person_zhixing_actual_controller=json.dumps(zhixing, ensure_ascii=False),
    )
    qcc = source()
    fetched = await qcc.fetch(USCC)
    await qcc.aclose()
    against = {(item.party, item.party_name) for item in fetched.record.enforcements or ()}
    assert (Party.ACTUAL_CONTROLLER, "顾嘉禾") in against
    assert "person_zhixing_actual_controller" in fetched.raw


async def test_judicial_alone_fetches_the_controller_and_covers_it(api):
    routes = serve_all(api)
    qcc = source()
    fetched = await qcc.fetch(USCC, None, signals=frozenset({Signal.JUDICIAL}))
    await qcc.aclose()
    assert Signal.CONTROLLER in fetched.signals and Signal.JUDICIAL in fetched.signals
    assert not routes["exception"].called and routes["actual_control"].called
    assert fetched.record.abnormal_operations is None and fetched.record.change_log is None


async def test_every_signal_by_default(api):
    routes = serve_all(api)
    qcc = QichachaSource("cn", QichachaOptions(type="qichacha", key="K", secret="S", **FAST))
    fetched = await qcc.fetch(USCC)
    await qcc.aclose()
    assert fetched.signals == CN_SIGNALS
    assert routes["exception"].called and routes["change_log"].called
    assert fetched.record.abnormal_operations is not None and fetched.record.dishonest_debtors is not None


async def test_the_card_alone_when_only_the_registry_is_chosen(api):
    routes = serve_all(api)
    options = QichachaOptions(type="qichacha", key="K", secret="S", signals=["registry"], **FAST)
    qcc = QichachaSource("cn", options)
    fetched = await qcc.fetch(USCC)
    await qcc.aclose()
    assert set(fetched.raw) == {"getinfo"} and not routes["exception"].called
    assert fetched.record.change_log is not None  # the card's own change records


@pytest.mark.parametrize("status", ["111", "214"])
async def test_not_purchased_makes_the_signal_unavailable_and_the_rest_works(api, status):
    refused = json.dumps(
        {"Status": status, "Message": "您还未购买过该接口", "Result": None}, ensure_ascii=False
    )
    serve_all(api, chattel_mortgage=refused)
    qcc = source()
    fetched = await qcc.fetch(USCC)
    assert Signal.PLEDGES in qcc.unavailable_signals and Signal.PLEDGES not in fetched.signals
    assert "equity_pledged" not in fetched.raw and "chattel_mortgage" not in fetched.raw
    assert fetched.record.equity_pledges is None and fetched.record.chattel_mortgages is None
    assert fetched.record.abnormal_operations is not None and fetched.record.enforcements is not None
    again = await qcc.fetch(USCC)  # skipped from now on
    assert "equity_pledged" not in again.raw
    await qcc.aclose()


async def test_not_purchased_on_the_card_is_an_auth_error(api):
    serve_all(
        api, getinfo=json.dumps({"Status": "214", "Message": "未购买", "Result": None}, ensure_ascii=False)
    )
    qcc = source()
    with pytest.raises(AuthError):
        await qcc.fetch(USCC)
    await qcc.aclose()


ERRORS = [
    (
        json.dumps({"Status": "112", "Message": "剩余使用量已不足", "Result": None}, ensure_ascii=False),
        AuthError,
    ),
    (json.dumps({"Status": "102", "Message": "欠费", "Result": None}, ensure_ascii=False), AuthError),
    (json.dumps({"Status": "107", "Message": "IP", "Result": None}, ensure_ascii=False), AuthError),
    (json.dumps({"Status": "122", "Message": "并发", "Result": None}, ensure_ascii=False), RateLimitedError),
    (
        json.dumps({"Status": "110", "Message": "2小时后重试", "Result": None}, ensure_ascii=False),
        TransientError,
    ),
    (json.dumps({"Status": "205", "Message": "处理中", "Result": None}, ensure_ascii=False), TransientError),
    (json.dumps({"Status": "202", "Message": "参数错误", "Result": None}, ensure_ascii=False), ParseError),
    (httpx.Response(404, text="Not Found"), ParseError),
    (httpx.Response(500, text="oops"), TransientError),
    (httpx.Response(200, text='<html><div id="captcha">请完成安全验证</div></html>'), BlockedError),
    (httpx.Response(200, text='{"Status": "200", "Result": {"VerifyResult": 1, "Da'), ParseError),
]


@pytest.mark.parametrize(
    "endpoint", ["exception", "zhixing", "person_shixin_legal_representative", "change_log", "actual_control"]
)
@pytest.mark.parametrize(("answer", "error"), ERRORS, ids=[str(i) for i in range(len(ERRORS))])
async def test_error_answers_on_a_risk_endpoint_fail_the_check(api, endpoint, answer, error):
    serve_all(api, **{endpoint: answer})
    qcc = source()
    with pytest.raises(error):
        await qcc.fetch(USCC)
    assert not qcc.unavailable_signals
    await qcc.aclose()


def _page(rows: list, total: int, index: int) -> str:
    return json.dumps(
        {
            "Status": "200",
            "Message": "ok",
            "Paging": {"PageSize": 20, "PageIndex": index, "TotalRecords": total},
            "Result": {"VerifyResult": 1, "Data": rows},
        },
        ensure_ascii=False,
    )


def _rows(count: int) -> list[dict]:
    template = json.loads(sample("zhixing"))["Result"]["Data"][0]
    return [{**template, "Id": f"id{n:03d}", "Anno": f"(2026)苏0506执{n}号"} for n in range(count)]


async def test_pages_are_followed_and_merged_into_one_document(api):
    rows = _rows(45)
    pages = {1: _page(rows[:20], 45, 1), 2: _page(rows[20:40], 45, 2), 3: _page(rows[40:], 45, 3)}
    serve_all(api)
    route = api.get(PATHS["zhixing"]).mock(
        side_effect=lambda request: httpx.Response(200, text=pages[int(request.url.params["pageIndex"])])
    )
    qcc = source()
    fetched = await qcc.fetch(USCC)
    await qcc.aclose()
    assert [call.request.url.params["pageIndex"] for call in route.calls] == ["1", "2", "3"]
    assert len(fetched.record.enforcements or ()) == 45
    merged = json.loads(fetched.raw["zhixing"])
    assert merged["Paging"]["TotalRecords"] == 45 and len(merged["Result"]["Data"]) == 45
    assert mapped(dict(fetched.raw)) == fetched.record  # replay maps the same data


@pytest.mark.parametrize(
    "second",
    [
        httpx.Response(500),
        httpx.Response(200, text=_page(_rows(45)[20:30], 45, 2)),  # short
        httpx.Response(200, text=_page(_rows(45)[20:40], 50, 2)),  # inconsistent total
        httpx.Response(200, text=NO_RESULT),
        httpx.Response(200, text=json.dumps({"Status": "112", "Message": "额度", "Result": None})),
    ],
    ids=["500", "short", "inconsistent", "no-result", "quota"],
)
async def test_a_failing_page_fails_the_check(api, second):
    rows = _rows(45)
    serve_all(api)
    api.get(PATHS["zhixing"]).mock(
        side_effect=lambda request: (
            httpx.Response(200, text=_page(rows[:20], 45, 1))
            if request.url.params["pageIndex"] == "1"
            else second
        )
    )
    qcc = source()
    with pytest.raises((ParseError, AuthError, TransientError)):
        await qcc.fetch(USCC)
    await qcc.aclose()


async def test_more_pages_than_max_pages_fails(api):
    serve_all(api, zhixing=_page(_rows(20), 61, 1))
    qcc = source(max_pages=3)
    with pytest.raises(ParseError, match="max_pages"):
        await qcc.fetch(USCC)
    await qcc.aclose()


# -- fuzzed parsers -----------------------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=40)
@given(key=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_mutated_risk_answers_raise_only_source_errors(key, data):
    document = mutate(json.loads(sample(key, t1=data.draw(st.booleans()))), data)
    raw = full_raw(**{key: json.dumps(document, ensure_ascii=False)})
    only_records_or_source_errors(lambda: mapped(raw))


@settings(max_examples=40)
@given(key=st.sampled_from([*SAMPLES, "person_zhixing_legal_representative"]), document=json_values)
def test_arbitrary_json_on_a_risk_endpoint_raises_only_source_errors(key, document):
    only_records_or_source_errors(lambda: mapped(full_raw(**{key: json.dumps(document)})))
