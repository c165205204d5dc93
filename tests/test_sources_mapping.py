"""Registry sources: mapping real response shapes to records, failure classes, HTTP, replay, demo data."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import watcher
from sources import source_class
from sources.base import Fetched, SamePayload, class_mapping, load_json, record_of
from sources.brreg import BrregOptions, BrregSource
from sources.http.policy import retry_after_seconds
from sources.http.timing import Timing
from sources.qichacha import QichachaOptions, QichachaSource, request_token
from sources.replay import ReplayOptions, ReplaySource
from tests.fuzzing import json_values, mutate, only_records_or_source_errors
from tests.loopback import QuietHandler, serve
from tests.mocking import TRANSPORT
from watcher.errors import (
    AuthError,
    BlockedError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    TransientError,
)
from watcher.normalize import content_hash
from watcher.record import Category, CompanyStatus, HolderKind, RegistryRecord, Role, Stake

FIXTURES = Path(__file__).parent / "fixtures" / "registries"
DEMO_DATA = Path(watcher.__file__).parent / "demo_data"
NO_ORGNR = "927140004"
CN_USCC = "91330106MA2KH7Q302"
BRREG_URL = "https://data.brreg.no/enhetsregisteret/api"
QCC_URL = "https://api.qichacha.com"


def fixture_text(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


def brreg_raw(roller: str | None = "roller_t0.json", enhet: str = "enhet.json") -> dict[str, str]:
    raw = {"enhet": fixture_text(f"no_brreg/{enhet}")}
    if roller is not None:
        raw["roller"] = fixture_text(f"no_brreg/{roller}")
    return raw


def parse_brreg(raw: dict[str, str], registry_id: str = NO_ORGNR) -> RegistryRecord:
    return record_of(BrregSource.map_raw, raw, source="no", registry_id=registry_id)


def qcc_raw(name: str = "eci_info_verify_getinfo_t0.json") -> dict[str, str]:
    return {"getinfo": fixture_text(f"cn_qichacha/{name}")}


def parse_qcc(raw: dict[str, str], registry_id: str = CN_USCC) -> RegistryRecord:
    return record_of(QichachaSource.map_raw, raw, source="cn", registry_id=registry_id)


def qcc_document(name: str = "eci_info_verify_getinfo_t0.json") -> dict:
    return json.loads(fixture_text(f"cn_qichacha/{name}"))


def people_by_name(record: RegistryRecord) -> dict[str, frozenset[Role]]:
    assert record.people is not None
    return {person.name: person.roles for person in record.people}


# -- Brønnøysund mapping --------------------------------------------------------------------------


def test_brreg_maps_unit_and_roles():
    record = parse_brreg(brreg_raw())

    assert record.source == "no"
    assert record.registry_id == NO_ORGNR
    assert record.name == "FJORDLYS SJØMAT AS"
    assert record.status is not None and record.status.code is CompanyStatus.ACTIVE
    assert record.registered_capital is not None
    assert record.registered_capital.amount == Decimal("3000000")
    assert record.registered_capital.currency == "NOK"
    assert record.address == "Bryggen 21, 5003 BERGEN, Norge"
    assert record.shareholders is None and record.controllers is None and record.finance_head is None

    assert record.legal_representative is not None
    assert record.legal_representative.name == "Magnus Solheim"
    assert record.legal_representative.key == "nb:magnus solheim|1979-04-17"
    assert record.legal_representative.roles == {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}
    assert people_by_name(record) == {
        "Magnus Solheim": {Role.LEGAL_REPRESENTATIVE, Role.MANAGER},
        "Ingrid Haugland": {Role.CHAIR, Role.DIRECTOR},
        "Lars Erik Nygaard": {Role.DIRECTOR},
        "Sofie Berg": {Role.DIRECTOR},
        "Ole Haugland": {Role.DIRECTOR},
        "VESTLAND REVISJON AS": {Role.AUDITOR},
        "KAIKANTEN REGNSKAP AS": {Role.ACCOUNTANT},
    }
    deputy = next(p for p in record.people if p.name == "Ole Haugland")
    assert deputy.role_text == "Varamedlem"
    auditor = next(p for p in record.people if p.name == "VESTLAND REVISJON AS")
    assert auditor.key == "id:987650001"


def test_brreg_change_log_has_one_dated_entry_per_role_group():
    record = parse_brreg(brreg_raw("roller_t1.json"))

    assert record.change_log is not None
    log = {entry.item: entry for entry in record.change_log}
    assert set(log) == {"DAGL sistEndret", "STYR sistEndret", "REVI sistEndret", "REGN sistEndret"}
    assert log["DAGL sistEndret"].categories == {Category.LEGAL_REPRESENTATIVE, Category.MANAGER}
    assert log["DAGL sistEndret"].date == date(2026, 3, 2)
    assert log["STYR sistEndret"].categories == {Category.DIRECTOR}
    assert log["STYR sistEndret"].date == date(2026, 3, 2)
    assert log["REVI sistEndret"].date == date(2019, 5, 2)
    assert record.legal_representative is not None and record.legal_representative.name == "Hanne Strand"
    assert "Thomas Vik" in people_by_name(record)
    assert "Lars Erik Nygaard" not in people_by_name(record)


def test_brreg_deleted_unit_is_deregistered_with_unknown_sections():
    record = parse_brreg(brreg_raw(roller=None, enhet="enhet_deleted.json"), registry_id="812000004")

    assert record.status is not None and record.status.code is CompanyStatus.DEREGISTERED
    assert record.name == "SLETTET HAVBRUK AS"
    assert record.address is None and record.registered_capital is None
    assert record.people is None and record.legal_representative is None and record.change_log is None


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"konkurs": True, "konkursdato": "2026-06-03"}, CompanyStatus.BANKRUPT),
        ({"underAvvikling": True}, CompanyStatus.LIQUIDATION),
        ({"underTvangsavviklingEllerTvangsopplosning": True}, CompanyStatus.LIQUIDATION),
        ({"slettedato": "2026-01-01", "konkurs": True}, CompanyStatus.DEREGISTERED),
        ({}, CompanyStatus.ACTIVE),
    ],
)
def test_brreg_status_flags(flags, expected):
    unit = json.loads(fixture_text("no_brreg/enhet.json")) | flags
    record = parse_brreg({"enhet": json.dumps(unit), "roller": fixture_text("no_brreg/roller_t0.json")})
    assert record.status is not None and record.status.code is expected
    assert record.status.raw


def _roles_document(*roles: tuple[str, dict], group: str = "STYR") -> str:
    return json.dumps(
        {
            "rollegrupper": [
                {
                    "type": {"kode": group, "beskrivelse": group},
                    "sistEndret": "2026-01-02",
                    "roller": [{"type": {"kode": code}, **fields} for code, fields in roles],
                }
            ]
        }
    )


_PERSON = {"person": {"fodselsdato": "1970-01-01", "navn": {"fornavn": "Per", "etternavn": "Holm"}}}


@pytest.mark.parametrize(
    ("code", "roles"),
    [
        ("DAGL", {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}),
        ("INNH", {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}),
        ("LEDE", {Role.CHAIR, Role.DIRECTOR}),
        ("NEST", {Role.DIRECTOR}),
        ("MEDL", {Role.DIRECTOR}),
        ("VARA", {Role.DIRECTOR}),
        ("OBS", {Role.OTHER}),
        ("REVI", {Role.AUDITOR}),
        ("REGN", {Role.ACCOUNTANT}),
        ("SIGN", {Role.OTHER}),
        ("PROK", {Role.OTHER}),
        ("DTPR", {Role.PARTNER}),
        ("KOMP", {Role.PARTNER}),
        ("BOBE", {Role.OTHER}),
    ],
)
def test_brreg_role_codes(code, roles):
    raw = {"enhet": fixture_text("no_brreg/enhet.json"), "roller": _roles_document((code, _PERSON))}
    record = parse_brreg(raw)
    assert people_by_name(record) == {"Per Holm": roles}
    expects_legal_rep = code in ("DAGL", "INNH")
    assert (record.legal_representative is not None) is expects_legal_rep


def test_brreg_skips_resigned_roles_and_contact_persons():
    roles = _roles_document(
        ("MEDL", {**_PERSON, "fratraadt": True}),
        ("KONT", {"person": {"navn": {"fornavn": "Kai", "etternavn": "Kontakt"}}}),
        ("MEDL", {"person": {"fodselsdato": "1980-02-02", "navn": {"fornavn": "Eva", "etternavn": "Li"}}}),
    )
    record = parse_brreg({"enhet": fixture_text("no_brreg/enhet.json"), "roller": roles})
    assert people_by_name(record) == {"Eva Li": {Role.DIRECTOR}}


def test_brreg_refuses_a_unit_of_another_company():
    with pytest.raises(ParseError, match="974760673"):
        parse_brreg(brreg_raw(), registry_id="974760673")


def test_brreg_roles_missing_means_unknown_people():
    record = parse_brreg(brreg_raw(roller=None))
    assert record.people is None and record.legal_representative is None and record.change_log is None
    assert record.name == "FJORDLYS SJØMAT AS"


# -- Qichacha mapping -----------------------------------------------------------------------------


def test_qichacha_maps_base_people_shareholders_and_log():
    record = parse_qcc(qcc_raw())

    assert record.name == "杭州澜潮智能装备有限公司"
    assert record.registry_id == CN_USCC
    assert record.status is not None and record.status.code is CompanyStatus.ACTIVE
    assert record.registered_capital is not None
    assert record.registered_capital.amount == Decimal("50000000")
    assert record.registered_capital.currency == "CNY"
    assert record.address == "浙江省杭州市西湖区西溪路525号"
    assert record.legal_representative is not None
    assert record.legal_representative.name == "王建国"
    assert record.legal_representative.key == "id:p5a8ef899114677ea39258ce1d927601"
    assert record.legal_representative.roles == {Role.LEGAL_REPRESENTATIVE}
    assert people_by_name(record) == {"王建国": {Role.DIRECTOR, Role.MANAGER}, "陈丽": {Role.SUPERVISOR}}
    assert record.finance_head is None and record.controllers is None

    assert record.shareholders is not None
    holders = {holder.name: holder for holder in record.shareholders}
    wang = holders["王建国"]
    assert wang.kind is HolderKind.PERSON
    assert wang.stake == Stake(Decimal(60), Decimal(60))
    assert wang.subscribed is not None and wang.subscribed.amount == Decimal("30000000")
    assert wang.subscribed.currency == "CNY"
    fund = holders["杭州澜川投资管理合伙企业(有限合伙)"]
    assert fund.kind is HolderKind.ENTITY
    assert fund.key == "id:7d3e1f2a4b5c6d7e8f9a0b1c2d3e4f50"
    assert fund.stake == Stake(Decimal(40), Decimal(40))

    assert record.change_log is not None
    (entry,) = record.change_log
    assert entry.categories == {Category.ADDRESS}
    assert entry.date == date(2025, 7, 3)


def test_qichacha_change_records_are_classified_and_dated():
    record = parse_qcc(qcc_raw("eci_info_verify_getinfo_t1.json"))

    assert record.legal_representative is not None and record.legal_representative.name == "李娜"
    assert record.change_log is not None
    by_category = {(frozenset(entry.categories), entry.date) for entry in record.change_log}
    assert by_category == {
        (frozenset({Category.LEGAL_REPRESENTATIVE}), date(2026, 2, 26)),
        (frozenset({Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER}), date(2026, 2, 26)),
        (frozenset({Category.FINANCE_HEAD}), date(2026, 2, 26)),
        (frozenset({Category.SHAREHOLDER}), date(2026, 1, 9)),
        (frozenset({Category.ADDRESS}), date(2025, 7, 3)),
    }
    finance = next(entry for entry in record.change_log if Category.FINANCE_HEAD in entry.categories)
    assert (finance.before, finance.after) == ("赵磊", "周明")
    assert record.finance_head is None
    assert record.shareholders is not None
    newcomer = next(h for h in record.shareholders if h.name == "上海临港澜启科技有限公司")
    assert newcomer.kind is HolderKind.ENTITY


def test_qichacha_finance_head_when_employees_list_one():
    document = qcc_document()
    document["Result"]["Employees"].append({"KeyNo": "pf1", "Name": "周明", "Job": "财务负责人"})
    record = parse_qcc({"getinfo": json.dumps(document, ensure_ascii=False)})
    assert record.finance_head is not None
    assert record.finance_head.name == "周明" and record.finance_head.key == "id:pf1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
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
def test_qichacha_status_words(text, expected):
    document = qcc_document()
    document["Result"]["Status"] = text
    record = parse_qcc({"getinfo": json.dumps(document, ensure_ascii=False)})
    assert record.status is not None and record.status.code is expected


@pytest.mark.parametrize(
    ("name", "stock_type", "kind"),
    [
        ("张三", "自然人股东", HolderKind.PERSON),
        ("张三", "", HolderKind.PERSON),
        ("某某科技有限公司", "", HolderKind.ENTITY),
        ("某某投资合伙企业（有限合伙）", "", HolderKind.ENTITY),
        ("某某县国有资产监督管理局", "机关法人", HolderKind.ENTITY),
        ("Acme Holdings Ltd", "外国(地区)企业", HolderKind.ENTITY),
    ],
)
def test_qichacha_holder_kind(name, stock_type, kind):
    document = qcc_document()
    document["Result"]["Partners"] = [{"KeyNo": "k1", "StockName": name, "StockType": stock_type}]
    record = parse_qcc({"getinfo": json.dumps(document, ensure_ascii=False)})
    assert record.shareholders is not None and record.shareholders[0].kind is kind


def test_qichacha_volatile_fields_do_not_change_the_content():
    document = qcc_document()
    before = parse_qcc({"getinfo": json.dumps(document, ensure_ascii=False)})
    document["OrderNumber"] = "ECIINFOVERIFY2099"
    result = document["Result"]
    result.update(UpdatedDate="2099-01-01 00:00:00", CheckDate="2099-01-01", ImageUrl="https://x/y.png")
    result["Partners"].reverse()
    result["Employees"].reverse()
    after = parse_qcc({"getinfo": json.dumps(document, ensure_ascii=False)})
    assert content_hash(before) == content_hash(after)


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        ("201", "【有效请求】查询无结果", NotFoundError),
        ("112", "【无效请求】您的账号剩余使用量已不足或已过期", AuthError),
        ("101", "KEY 无效", AuthError),
        ("122", "超过并发限制", RateLimitedError),
        ("120", "流量异常", TransientError),
        ("199", "未知错误", TransientError),
        ("205", "等待处理", TransientError),
        ("208", "不支持此公司类型", ParseError),
    ],
)
def test_qichacha_error_envelopes(status, message, error):
    envelope = json.dumps({"Status": status, "Message": message, "Result": None}, ensure_ascii=False)
    with pytest.raises(error) as raised:
        parse_qcc({"getinfo": envelope})
    assert status in str(raised.value)
    assert raised.value.source == "cn" and raised.value.registry_id == CN_USCC


def test_qichacha_error_fixtures():
    with pytest.raises(AuthError, match="112.*余额|112.*剩余使用量"):
        parse_qcc(qcc_raw("error_112_quota.json"))
    with pytest.raises(NotFoundError):
        parse_qcc(qcc_raw("error_201_no_result.json"))


def test_qichacha_ok_without_result_is_a_parse_error():
    with pytest.raises(ParseError, match="Result"):
        parse_qcc({"getinfo": json.dumps({"Status": "200", "Message": "ok", "Result": None})})


def test_qichacha_refuses_a_result_for_another_company():
    with pytest.raises(ParseError, match="91330106MA2KH7Q302"):
        parse_qcc(qcc_raw(), registry_id="91310115MA1K4QRT94")


# -- bad payloads, both parsers ---------------------------------------------------------------------

PARSERS: dict[str, Callable[[str], RegistryRecord]] = {
    "brreg": lambda text: parse_brreg({"enhet": text, "roller": text}),
    "qichacha": lambda text: parse_qcc({"getinfo": text}),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", ParseError),
        ("   \n", ParseError),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", ParseError),
        ('<html><body><div id="captcha">请完成安全验证</div></body></html>', BlockedError),
        ('{"Status": "200", "Res', ParseError),
        ('{"organisasjonsnummer": "927140004", "navn": "X"', ParseError),
        ("null", ParseError),
        ("[]", ParseError),
        ("42", ParseError),
        ('{"a": NaN}', ParseError),
        ("[" * 100_000, ParseError),
    ],
)
def test_bad_payloads_raise_parse_or_blocked_errors(parser, text, error):
    with pytest.raises(error):
        PARSERS[parser](text)


def test_truncated_json_is_reported_as_truncated():
    with pytest.raises(ParseError, match="truncated"):
        load_json('{"Status": "200", "Res', what="getinfo")


def test_missing_endpoint_payload_is_a_parse_error():
    with pytest.raises(ParseError, match="enhet"):
        record_of(BrregSource.map_raw, {}, source="no", registry_id=NO_ORGNR)
    with pytest.raises(ParseError, match="getinfo"):
        record_of(QichachaSource.map_raw, {}, source="cn", registry_id=CN_USCC)


# -- property tests: a parser returns a record or raises a SourceError, nothing else -------------


@given(enhet=json_values, roller=json_values)
def test_brreg_parse_arbitrary_json(enhet, roller):
    raw = {"enhet": json.dumps(enhet), "roller": json.dumps(roller)}
    only_records_or_source_errors(lambda: parse_brreg(raw))


@given(text=st.text())
def test_brreg_parse_arbitrary_text(text):
    only_records_or_source_errors(lambda: parse_brreg({"enhet": text, "roller": text}))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_brreg_parse_mutated_fixtures(data):
    enhet = mutate(json.loads(fixture_text("no_brreg/enhet.json")), data)
    roller = mutate(json.loads(fixture_text("no_brreg/roller_t1.json")), data)
    raw = {"enhet": json.dumps(enhet), "roller": json.dumps(roller)}
    only_records_or_source_errors(lambda: parse_brreg(raw))


@given(document=json_values)
def test_qichacha_parse_arbitrary_json(document):
    only_records_or_source_errors(lambda: parse_qcc({"getinfo": json.dumps(document)}))


@given(text=st.text())
def test_qichacha_parse_arbitrary_text(text):
    only_records_or_source_errors(lambda: parse_qcc({"getinfo": text}))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_qichacha_parse_mutated_fixtures(data):
    document = mutate(qcc_document("eci_info_verify_getinfo_t1.json"), data)
    only_records_or_source_errors(lambda: parse_qcc({"getinfo": json.dumps(document, ensure_ascii=False)}))


# -- identifiers ---------------------------------------------------------------------------------


def test_normalise_ids():
    brreg = BrregSource("no", BrregOptions(type="brreg"))
    assert brreg.normalise_id(" 927 140 004 ") == NO_ORGNR
    with pytest.raises(ValueError):
        brreg.normalise_id("123456789")
    qcc = QichachaSource("cn", QichachaOptions(type="qichacha", key="k", secret="s"))
    assert qcc.normalise_id("91330106ma2kh7q302") == CN_USCC
    with pytest.raises(ValueError):
        qcc.normalise_id("91110108551385082A")


def test_sources_are_registered_by_type_name():
    assert source_class("brreg") is BrregSource
    assert source_class("qichacha") is QichachaSource
    assert source_class("replay") is ReplaySource
    assert class_mapping(BrregSource) is not None and BrregSource.endpoints == ("enhet", "roller")
    assert QichachaSource.endpoints == ("getinfo",)


@pytest.mark.parametrize(
    ("header", "seconds"), [("7", 7.0), (None, None), ("soon", None), ("-3", 0.0), ("inf", None)]
)
def test_retry_after_seconds(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_http_date_in_the_past_is_zero():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# -- Brønnøysund over HTTP ------------------------------------------------------------------------

FAST = {"retries": 2, "timeout": "5s", "deadline": "30s", "rate": "100000/s"}


@pytest.fixture
def waits() -> list[float]:
    """The waits (backoff, Retry-After, rate limit) of a source made with the ``timing`` fixture."""
    return []


@pytest.fixture
def timing(waits: list[float]) -> Timing:
    """The policy's waits recorded in ``waits`` instead of slept; backoff from a millisecond."""

    now = [1_000.0]  # virtual time: it passes only when the policy waits, so waits are exact

    async def record(seconds: float) -> None:
        waits.append(seconds)
        now[0] += max(seconds, 0.0)
        await asyncio.sleep(0)

    return Timing(sleep=record, clock=lambda: now[0], backoff_base=0.001)


@pytest.fixture
async def brreg(timing):
    source = BrregSource("no", BrregOptions(type="brreg", **FAST), timing=timing)
    yield source
    await source.aclose()


@pytest.fixture
def brreg_api():
    with respx.mock(using=TRANSPORT, base_url=BRREG_URL, assert_all_called=False) as mock:
        yield mock


def _brreg_ok(brreg_api, roller: str = "roller_t0.json") -> respx.Route:
    brreg_api.get(f"/enheter/{NO_ORGNR}/roller").respond(200, text=fixture_text(f"no_brreg/{roller}"))
    return brreg_api.get(f"/enheter/{NO_ORGNR}")


async def test_brreg_fetch_success(brreg, brreg_api):
    unit = _brreg_ok(brreg_api).respond(200, text=fixture_text("no_brreg/enhet.json"))

    fetched = await brreg.fetch(NO_ORGNR)

    assert fetched.record.name == "FJORDLYS SJØMAT AS"
    assert fetched.record.source == "no"
    assert fetched.record.legal_representative is not None
    assert set(fetched.raw) == {"enhet", "roller"}
    assert unit.calls.last.request.headers["Accept"] == "application/json"

    await brreg.fetch(NO_ORGNR)
    assert unit.call_count == 2


def test_brreg_options_take_the_shared_http_options():
    options = BrregOptions(type="brreg", rate="10/s", timeout="7s", deadline="1m", retries=1)
    assert options.base_url == BRREG_URL
    assert str(options.rate) == "10/s" and options.timeout == timedelta(seconds=7)
    assert options.deadline == timedelta(minutes=1) and options.retries == 1
    assert BrregOptions(type="brreg").timeout == timedelta(seconds=20)
    with pytest.raises(ValueError, match="duration"):
        BrregOptions(type="brreg", timeout=20)


async def test_brreg_fetch_not_found(brreg, brreg_api):
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(404, json={"status": 404})
    with pytest.raises(NotFoundError, match="no unit 927140004"):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_invalid_orgnr_answer(brreg, brreg_api):
    body = fixture_text("no_brreg/error_400_invalid_orgnr.json")
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(400, text=body)
    with pytest.raises(NotFoundError, match="invalid orgnr.*Ugyldig organisasjonsnummer"):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_rejects_a_bad_orgnr_without_asking(brreg, brreg_api):
    with pytest.raises(NotFoundError, match="invalid orgnr"):
        await brreg.fetch("123456789")
    assert not brreg_api.calls


def removed_unit_body(orgnr: str = NO_ORGNR) -> str:
    """Brønnøysund's 410 answer for a unit removed for legal reasons: its orgnr and slettedato only."""
    deleted = json.loads(fixture_text("no_brreg/enhet_deleted.json"))
    return json.dumps({"organisasjonsnummer": orgnr, "slettedato": deleted["slettedato"]})


async def test_brreg_fetch_gone_with_the_removed_unit_is_deregistered(brreg, brreg_api):
    unit = brreg_api.get(f"/enheter/{NO_ORGNR}").respond(410, text=removed_unit_body())
    fetched = await brreg.fetch(NO_ORGNR)
    assert fetched.record.status is not None
    assert fetched.record.status.code is CompanyStatus.DEREGISTERED
    assert fetched.record.name is None and fetched.record.people is None
    assert fetched.raw == {"enhet": removed_unit_body()}
    # The stored raw answer maps to the same record (replay, audit).
    assert parse_brreg(fetched.raw) == fetched.record
    assert unit.call_count == 1 and not any("roller" in str(call.request.url) for call in brreg_api.calls)


CAPTCHA_PAGE = "<html><body><h1>Access denied</h1><p>Please solve the captcha to continue.</p></body></html>"


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (CAPTCHA_PAGE, "text/html", BlockedError, "captcha"),
        ("", "text/html", TransientError, "empty body"),
        ("   \n", "application/json", TransientError, "empty body"),
        ("<html><body>Gone</body></html>", "text/html", ParseError, "HTML where JSON"),
        (
            '{"status": 410, "error": "Gone"}',
            "application/json",
            ParseError,
            "organisasjonsnummer and slettedato",
        ),
        (json.dumps({"organisasjonsnummer": NO_ORGNR}), "application/json", ParseError, "slettedato"),
        (removed_unit_body("974760673"), "application/json", ParseError, "organisasjonsnummer"),
        (
            json.dumps({"organisasjonsnummer": NO_ORGNR, "slettedato": "soon"}),
            "application/json",
            ParseError,
            "slettedato",
        ),
        ("[]", "application/json", ParseError, "organisasjonsnummer and slettedato"),
    ],
    ids=[
        "captcha",
        "empty",
        "blank",
        "html",
        "other-json",
        "no-slettedato",
        "other-orgnr",
        "bad-date",
        "array",
    ],
)
async def test_brreg_fetch_gone_without_the_removed_unit_is_a_typed_failure(
    brreg, brreg_api, body, content_type, error, message
):
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(410, text=body, headers={"Content-Type": content_type})
    with pytest.raises(error, match=message) as raised:
        await brreg.fetch(NO_ORGNR)
    assert type(raised.value) is error
    assert raised.value.source == "no" and raised.value.registry_id == NO_ORGNR


@pytest.mark.parametrize("status", [404, 410])
async def test_brreg_fetch_roles_missing_leaves_people_unknown(brreg, brreg_api, status):
    """The register's own JSON answer for missing roles: the role sections are unknown, not empty."""
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(200, text=fixture_text("no_brreg/enhet.json"))
    brreg_api.get(f"/enheter/{NO_ORGNR}/roller").respond(
        status, json={"status": status, "error": "Not Found", "path": f"/enheter/{NO_ORGNR}/roller"}
    )
    fetched = await brreg.fetch(NO_ORGNR)
    assert fetched.record.people is None and fetched.record.name == "FJORDLYS SJØMAT AS"
    assert set(fetched.raw) == {"enhet"}


@pytest.mark.parametrize("status", [404, 410])
async def test_brreg_fetch_roles_captcha_is_blocked_not_unknown(brreg, brreg_api, status):
    """A challenge page or no body at all in place of the roles is a failure, never unknown roles."""
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(200, text=fixture_text("no_brreg/enhet.json"))
    brreg_api.get(f"/enheter/{NO_ORGNR}/roller").respond(status, text=CAPTCHA_PAGE)
    with pytest.raises(BlockedError, match="roller"):
        await brreg.fetch(NO_ORGNR)
    brreg_api.get(f"/enheter/{NO_ORGNR}/roller").respond(status)
    with pytest.raises(TransientError, match="roller"):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_rate_limited(brreg, brreg_api, waits):
    route = brreg_api.get(f"/enheter/{NO_ORGNR}").respond(429, headers={"Retry-After": "12"})
    with pytest.raises(RateLimitedError) as raised:
        await brreg.fetch(NO_ORGNR)
    assert raised.value.retry_after == 12.0
    assert raised.value.retryable
    assert route.call_count == 3
    assert [round(wait) for wait in waits] == [12, 12]


async def test_brreg_fetch_429_with_retry_after_then_success(brreg, brreg_api, waits):
    _brreg_ok(brreg_api).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, text=fixture_text("no_brreg/enhet.json")),
        ]
    )
    fetched = await brreg.fetch(NO_ORGNR)
    assert fetched.record.name == "FJORDLYS SJØMAT AS"
    # The Retry-After wait; the rest are the limiter's microsecond gaps between requests.
    assert [wait for wait in waits if wait > 0.001] == [pytest.approx(1.0, abs=0.05)]


async def test_brreg_fetch_server_error_then_success(brreg, brreg_api):
    unit = _brreg_ok(brreg_api).mock(
        side_effect=[httpx.Response(500), httpx.Response(200, text=fixture_text("no_brreg/enhet.json"))]
    )
    fetched = await brreg.fetch(NO_ORGNR)
    assert fetched.record.legal_representative is not None and unit.call_count == 2


async def test_brreg_fetch_server_error(brreg, brreg_api):
    route = brreg_api.get(f"/enheter/{NO_ORGNR}").respond(500, text="Internal Server Error")
    with pytest.raises(TransientError):
        await brreg.fetch(NO_ORGNR)
    assert route.call_count == 3


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_brreg_fetch_network_failures_are_transient(brreg, brreg_api, failure):
    brreg_api.get(f"/enheter/{NO_ORGNR}").mock(side_effect=failure)
    with pytest.raises(TransientError):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_empty_body(brreg, brreg_api):
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(200, text="")
    with pytest.raises(ParseError, match="empty"):
        await brreg.fetch(NO_ORGNR)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("<html><body>captcha</body></html>", BlockedError),
        ('{"organisasjonsnummer": "927140004", "navn": ', ParseError),
        ("<html><body>Service</body></html>", ParseError),
    ],
)
async def test_brreg_fetch_bad_200_bodies(brreg, brreg_api, body, error):
    _brreg_ok(brreg_api).respond(200, text=body)
    with pytest.raises(error):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_forbidden_is_an_auth_error(brreg, brreg_api):
    # The shared policy: a 401/403 means the operator must act (Brreg has no key, so: our IP or agent).
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(403, text="<html>Forbidden</html>")
    with pytest.raises(AuthError):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_other_client_errors(brreg, brreg_api):
    brreg_api.get(f"/enheter/{NO_ORGNR}").respond(418, text="<html>teapot</html>")
    with pytest.raises(ParseError):
        await brreg.fetch(NO_ORGNR)


async def test_brreg_fetch_past_its_deadline_is_transient_and_names_the_company(brreg_api):
    source = BrregSource("no", BrregOptions(type="brreg", deadline="1s"))

    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # a registry that never answers
        return httpx.Response(200, text=fixture_text("no_brreg/enhet.json"))

    brreg_api.get(f"/enheter/{NO_ORGNR}").mock(side_effect=stall)
    with pytest.raises(TransientError, match="1s deadline") as raised:
        await asyncio.wait_for(source.fetch(NO_ORGNR), timeout=5)  # a deadline not kept fails, not hangs
    await source.aclose()
    assert raised.value.source == "no" and raised.value.registry_id == NO_ORGNR


async def test_brreg_fetch_honours_base_url():
    source = BrregSource("no", BrregOptions(type="brreg", base_url="https://mirror.bank.example/brreg"))
    with respx.mock(using=TRANSPORT, base_url="https://mirror.bank.example/brreg") as mock:
        mock.get(f"/enheter/{NO_ORGNR}").respond(200, text=fixture_text("no_brreg/enhet.json"))
        mock.get(f"/enheter/{NO_ORGNR}/roller").respond(200, text=fixture_text("no_brreg/roller_t1.json"))
        fetched = await source.fetch(NO_ORGNR)
    await source.aclose()
    assert fetched.record.legal_representative is not None
    assert fetched.record.legal_representative.name == "Hanne Strand"


# -- a real server on 127.0.0.1 -------------------------------------------------------------------


class _FixtureHandler(QuietHandler):
    """Serves ``routes[path]`` (a fixture file name) as JSON; anything else is 404."""

    protocol_version = "HTTP/1.1"
    routes: dict[str, str] = {}

    def do_GET(self) -> None:
        fixture = self.routes.get(urlsplit(self.path).path)
        body = (FIXTURES / fixture).read_bytes() if fixture else b'{"status": 404}'
        self.send_body(200 if fixture else 404, body)


@contextmanager
def fixture_server(routes: dict[str, str]) -> Iterator[str]:
    handler = type("Handler", (_FixtureHandler,), {"routes": routes})
    with serve(handler) as url:
        yield url


async def test_brreg_fetch_from_a_real_server():
    routes = {
        f"/api/enheter/{NO_ORGNR}": "no_brreg/enhet.json",
        f"/api/enheter/{NO_ORGNR}/roller": "no_brreg/roller_t1.json",
    }
    with fixture_server(routes) as url:
        source = BrregSource("no", BrregOptions(type="brreg", base_url=f"{url}/api"))
        fetched = await source.fetch(NO_ORGNR)
        with pytest.raises(NotFoundError):
            await source.fetch("974760673")
        await source.aclose()
    assert fetched.record.name == "FJORDLYS SJØMAT AS"
    assert fetched.record.legal_representative is not None
    assert fetched.record.legal_representative.name == "Hanne Strand"


async def test_qichacha_fetch_from_a_real_server():
    routes = {"/ECIInfoVerify/GetInfo": "cn_qichacha/eci_info_verify_getinfo_t0.json"}
    with fixture_server(routes) as url:
        options = QichachaOptions(type="qichacha", key="k", secret="s", base_url=url, signals=["registry"])
        source = QichachaSource("cn", options)
        fetched = await source.fetch(CN_USCC)
        await source.aclose()
    assert fetched.record.name == "杭州澜潮智能装备有限公司"
    assert fetched.record.shareholders is not None and len(fetched.record.shareholders) == 2


# -- Qichacha over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def qichacha(timing):
    """The registry card alone: these tests are about fetching and signing one endpoint."""
    options = QichachaOptions(type="qichacha", key="APPKEY123", secret="S3CRET", signals=["registry"], **FAST)
    source = QichachaSource("cn", options, timing=timing)
    yield source
    await source.aclose()


@pytest.fixture
def qcc_api():
    with respx.mock(using=TRANSPORT, base_url=QCC_URL, assert_all_called=False) as mock:
        yield mock


async def test_qichacha_fetch_success_and_signature(qichacha, qcc_api):
    route = qcc_api.get("/ECIInfoVerify/GetInfo").respond(
        200, text=fixture_text("cn_qichacha/eci_info_verify_getinfo_t1.json")
    )

    fetched = await qichacha.fetch(CN_USCC.lower())

    assert fetched.record.legal_representative is not None
    assert fetched.record.legal_representative.name == "李娜"
    assert set(fetched.raw) == {"getinfo"}
    request = route.calls.last.request
    assert request.url.params["key"] == "APPKEY123"
    assert request.url.params["searchKey"] == CN_USCC
    assert request.headers["Accept"] == "application/json"
    timespan = request.headers["Timespan"]
    assert timespan.isdigit()
    expected = hashlib.md5(f"APPKEY123{timespan}S3CRET".encode()).hexdigest().upper()
    assert request.headers["Token"] == expected == request_token("APPKEY123", timespan, "S3CRET")
    assert "S3CRET" not in str(request.url)


async def test_qichacha_signs_every_attempt_afresh(qcc_api, timing):
    clock = iter([1_700_000_000.4, 1_700_000_007.9, 1_700_000_015.0])
    options = QichachaOptions(type="qichacha", key="APPKEY123", secret="S3CRET", signals=["registry"], **FAST)
    qichacha = QichachaSource("cn", options, timing=replace(timing, wall=lambda: next(clock)))
    route = qcc_api.get("/ECIInfoVerify/GetInfo").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(429),
            httpx.Response(200, text=fixture_text("cn_qichacha/eci_info_verify_getinfo_t0.json")),
        ]
    )

    await qichacha.fetch(CN_USCC)
    await qichacha.aclose()

    signed = [(call.request.headers["Timespan"], call.request.headers["Token"]) for call in route.calls]
    assert [timespan for timespan, _ in signed] == ["1700000000", "1700000007", "1700000015"]
    assert all(token == request_token("APPKEY123", timespan, "S3CRET") for timespan, token in signed)


async def test_qichacha_fetch_no_result_envelope(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(
        200, text=fixture_text("cn_qichacha/error_201_no_result.json")
    )
    with pytest.raises(NotFoundError):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_quota_envelope(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(200, text=fixture_text("cn_qichacha/error_112_quota.json"))
    with pytest.raises(AuthError, match="112"):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_http_404(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(404, text="Not Found")
    with pytest.raises(ParseError):
        await qichacha.fetch(CN_USCC)


@pytest.mark.parametrize("status", [401, 403])
async def test_qichacha_fetch_refused_credentials(qichacha, qcc_api, status):
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(status, text="denied")
    with pytest.raises(AuthError):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_rate_limited(qichacha, qcc_api, waits):
    route = qcc_api.get("/ECIInfoVerify/GetInfo").respond(429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimitedError, match="30s deadline") as raised:
        await qichacha.fetch(CN_USCC)
    # Waiting 30 s would pass the 30 s check deadline, so the check gives up at once.
    assert raised.value.retry_after == 30.0
    assert route.call_count == 1 and waits == []


async def test_qichacha_fetch_429_then_success(qichacha, qcc_api, waits):
    qcc_api.get("/ECIInfoVerify/GetInfo").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, text=fixture_text("cn_qichacha/eci_info_verify_getinfo_t0.json")),
        ]
    )
    fetched = await qichacha.fetch(CN_USCC)
    assert fetched.record.name == "杭州澜潮智能装备有限公司"
    assert waits == [pytest.approx(2.0, abs=0.05)]


async def test_qichacha_fetch_server_error(qichacha, qcc_api):
    route = qcc_api.get("/ECIInfoVerify/GetInfo").respond(503)
    with pytest.raises(TransientError):
        await qichacha.fetch(CN_USCC)
    assert route.call_count == 3


async def test_qichacha_fetch_server_error_then_success(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(200, text=fixture_text("cn_qichacha/eci_info_verify_getinfo_t1.json")),
        ]
    )
    fetched = await qichacha.fetch(CN_USCC)
    assert fetched.record.legal_representative is not None


async def test_qichacha_fetch_empty_body(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(200, text="")
    with pytest.raises(ParseError):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_truncated_json(qichacha, qcc_api):
    body = fixture_text("cn_qichacha/eci_info_verify_getinfo_t0.json")
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(200, text=body[: len(body) // 2])
    with pytest.raises(ParseError, match="truncated"):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_challenge_page(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").respond(200, html="<html><title>滑动验证</title></html>")
    with pytest.raises(BlockedError):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_timeout(qichacha, qcc_api):
    qcc_api.get("/ECIInfoVerify/GetInfo").mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(TransientError):
        await qichacha.fetch(CN_USCC)


async def test_qichacha_fetch_rejects_a_bad_code_without_asking(qichacha, qcc_api):
    with pytest.raises(NotFoundError, match="invalid unified social credit code"):
        await qichacha.fetch("91110108551385082A")
    assert not qcc_api.calls


def test_qichacha_options_need_key_and_secret():
    with pytest.raises(ValueError):
        QichachaOptions(type="qichacha", key="k")


def test_qichacha_options_take_the_shared_http_options():
    options = QichachaOptions(type="qichacha", key="k", secret="s", rate="2/s", timeout="30s")
    assert options.base_url == QCC_URL and str(options.rate) == "2/s"
    assert options.timeout == timedelta(seconds=30)
    assert "secret='s'" not in repr(options)


# -- replay ---------------------------------------------------------------------------------------


def _replay(folder: Path, format_name: str) -> ReplaySource:
    return ReplaySource("saved", ReplayOptions(type="replay", folder=str(folder), format=format_name))


async def test_replay_maps_saved_responses(tmp_path):
    company = tmp_path / NO_ORGNR
    company.mkdir()
    (company / "enhet.json").write_text(fixture_text("no_brreg/enhet.json"), encoding="utf-8")
    (company / "roller.json").write_text(fixture_text("no_brreg/roller_t1.json"), encoding="utf-8")

    fetched = await _replay(tmp_path, "brreg").fetch(NO_ORGNR)

    assert fetched.record.source == "saved"
    assert fetched.record.legal_representative is not None
    assert fetched.record.legal_representative.name == "Hanne Strand"
    assert set(fetched.raw) == {"enhet", "roller"}


async def test_an_answer_identical_to_the_last_one_is_not_mapped_again(tmp_path):
    company = tmp_path / NO_ORGNR
    company.mkdir()
    (company / "enhet.json").write_text(fixture_text("no_brreg/enhet.json"), encoding="utf-8")
    (company / "roller.json").write_text(fixture_text("no_brreg/roller_t1.json"), encoding="utf-8")
    source = _replay(tmp_path, "brreg")

    first = await source.fetch(NO_ORGNR)
    assert await source.fetch(NO_ORGNR, first.payload_digest) == SamePayload(first.payload_digest)
    (company / "roller.json").write_text(fixture_text("no_brreg/roller_t0.json"), encoding="utf-8")
    changed = await source.fetch(NO_ORGNR, first.payload_digest)
    assert isinstance(changed, Fetched) and changed.payload_digest != first.payload_digest


async def test_replay_reads_html_extension_and_gb18030(tmp_path):
    company = tmp_path / CN_USCC
    company.mkdir()
    (company / "getinfo.html").write_bytes(
        fixture_text("cn_qichacha/eci_info_verify_getinfo_t0.json").encode("gb18030")
    )
    fetched = await _replay(tmp_path, "qichacha").fetch(CN_USCC)
    assert fetched.record.name == "杭州澜潮智能装备有限公司"


async def test_replay_never_garbles_a_file_that_is_not_utf8(tmp_path):
    """A saved Brønnøysund answer with one Latin-1 byte is refused, naming the file; never read as GB18030."""
    company = tmp_path / NO_ORGNR
    company.mkdir()
    (company / "enhet.json").write_text(fixture_text("no_brreg/enhet.json"), encoding="utf-8")
    roles = fixture_text("no_brreg/roller_t0.json").replace("Magnus", "Søren")
    (company / "roller.json").write_bytes(roles.encode().replace("ø".encode(), b"\xf8"))

    with pytest.raises(ParseError, match=r"roller\.json: body declares no charset and is not valid utf-8"):
        await _replay(tmp_path, "brreg").fetch(NO_ORGNR)


async def test_replay_missing_company_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        await _replay(tmp_path, "brreg").fetch(NO_ORGNR)


async def test_replay_missing_endpoint_file_names_it(tmp_path):
    company = tmp_path / NO_ORGNR
    company.mkdir()
    (company / "enhet.json").write_text(fixture_text("no_brreg/enhet.json"), encoding="utf-8")
    with pytest.raises(ParseError, match="roller.json"):
        await _replay(tmp_path, "brreg").fetch(NO_ORGNR)


async def test_replay_refuses_ids_that_leave_the_folder(tmp_path):
    with pytest.raises(NotFoundError):
        await _replay(tmp_path / "inner", "brreg").fetch("../inner")


def test_replay_unknown_format_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="brreg.*qichacha"):
        _replay(tmp_path, "gsxt_scraper")
    with pytest.raises(ValueError, match="known formats"):
        _replay(tmp_path, "replay")


# -- demo data ------------------------------------------------------------------------------------

DEMO_FORMATS = {
    "91330106MA2KH7Q302": "qichacha",
    "91310115MA1K4QRT94": "qichacha",
    "927140004": "brreg",
    "974760673": "brreg",
}


async def _demo_records(registry_id: str) -> list[RegistryRecord]:
    records = []
    for round_number in (1, 2, 3):
        source = _replay(DEMO_DATA / f"round{round_number}", DEMO_FORMATS[registry_id])
        records.append((await source.fetch(registry_id)).record)
    return records


def test_demo_borrowers_csv_matches_the_saved_companies():
    lines = (DEMO_DATA / "borrowers.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,name,source,registry_id,officer,tags,interval,legal_rep_on_file"
    registry_ids = {line.split(",")[3] for line in lines[1:]}
    assert registry_ids == set(DEMO_FORMATS)


@pytest.mark.parametrize("registry_id", DEMO_FORMATS)
async def test_demo_rounds_load_and_carry_the_planted_changes(registry_id):
    first, second, third = await _demo_records(registry_id)
    hashes = [content_hash(record) for record in (first, second, third)]
    if registry_id == "91310115MA1K4QRT94":
        assert hashes[0] == hashes[1], "round 2 only changes volatile fields and formatting"
    else:
        assert hashes[0] != hashes[1]
    assert hashes[1] != hashes[2]


async def test_demo_planted_changes():
    cn1 = await _demo_records("91330106MA2KH7Q302")
    assert [r.legal_representative.name for r in cn1] == ["王建国", "李娜", "李娜"]
    assert cn1[2].registered_capital is not None and cn1[2].registered_capital.amount == Decimal("80000000")
    assert {h.name: str(h.stake) for h in cn1[2].shareholders or ()} == {
        "王建国": "45%",
        "上海临港澜启科技有限公司": "40%",
        "李娜": "15%",
    }
    cn2 = await _demo_records("91310115MA1K4QRT94")
    assert [r.status.code for r in cn2] == [CompanyStatus.ACTIVE, CompanyStatus.ACTIVE, CompanyStatus.REVOKED]
    no1 = await _demo_records("927140004")
    assert [r.legal_representative.name for r in no1] == ["Magnus Solheim", "Hanne Strand", "Hanne Strand"]
    chairs = [next(p.name for p in r.people or () if Role.CHAIR in p.roles) for r in no1]
    assert chairs == ["Ingrid Haugland", "Ingrid Haugland", "Kristin Aas"]
    no2 = await _demo_records("974760673")
    assert no2[0].address != no2[1].address
    assert [r.status.code for r in no2] == [
        CompanyStatus.ACTIVE,
        CompanyStatus.ACTIVE,
        CompanyStatus.BANKRUPT,
    ]
