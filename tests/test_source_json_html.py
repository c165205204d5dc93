"""Configured feeds: ``type = "json"`` mapped by field paths, ``type = "html"`` mapped by CSS selectors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sources import available_types, source_class
from sources.base import class_mapping, record_of
from sources.feeds.assembly import feed_date, holder_kind
from sources.feeds.json_path import WILDCARD, PathMissing, format_path, parse_json_path, resolve_json_path
from sources.html_page import HtmlPageOptions, HtmlPageSource, split_selector
from sources.http.timing import Timing
from sources.json_feed import JsonFeedOptions, JsonFeedSource
from sources.replay import ReplayOptions, ReplaySource, mapped_source_types
from tests.loopback import QuietHandler, serve
from tests.mocking import TRANSPORT
from watcher.config import load_config
from watcher.diff import diff
from watcher.errors import (
    AuthError,
    BlockedError,
    ConfigError,
    NotFoundError,
    ParseError,
    SourceError,
    TransientError,
)
from watcher.record import Action, Category, CompanyStatus, HolderKind, RegistryRecord, Role, Stake

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
USCC = "91330106MA2KH7Q302"
BASE_URL = "https://core.bank.example/api"
SIXTY = (Decimal(60), Decimal(60))
FORTY = (Decimal(40), Decimal(40))


def fixture_text(name: str) -> str:
    return (FEEDS / name).read_text(encoding="utf-8")


# -- configurations ---------------------------------------------------------------------------------

JSON_TABLE: dict[str, Any] = {
    "type": "json",
    "base_url": BASE_URL,
    "url": "/companies/{id}",
    "id_kind": "cn_uscc",
    "headers": {"Authorization": "Bearer s3cret-token"},
    "required": ["name", "status"],
    "fields": {
        "name": "data.company.name",
        "status": "data.company.regStatus",
        "registered_capital": "data.company.regCapital",
        "address": "data.company.address.full",
        "legal_representative": "data.company.legalPerson.name",
    },
    "status_map": {"存续（在营、开业、在册）": "active", "吊销，未注销": "revoked"},
    "people": {"items": "data.staff", "name": "name", "role": "titles", "key": "id"},
    "shareholders": {
        "items": "data.partners",
        "name": "name",
        "kind": "type",
        "stake": "percent",
        "key": "id",
        "subscribed": "subscribed",
    },
    "change_log": {
        "items": "data.changes",
        "item": "item",
        "before": "before",
        "after": "after",
        "date": "date",
    },
}

HTML_TABLE: dict[str, Any] = {
    "type": "html",
    "base_url": BASE_URL,
    "url": "/customers/{id}/registry",
    "fields": {
        "name": "h1.company-name",
        "status": "span.status@data-raw",
        "registered_capital": "dt:-soup-contains('注册资本') + dd",
        "address": "dt:-soup-contains('住所') + dd",
        "legal_representative": "dt:-soup-contains('法定代表人') + dd",
        "finance_head": "dt:-soup-contains('财务负责人') + dd",
    },
    "status_map": {"存续（在营、开业、在册）": "active"},
    "people": {
        "container": "#officers tbody",
        "items": "tr",
        "name": "td:nth-of-type(1)",
        "role": "td:nth-of-type(2)",
        "key": "@data-person-id",
    },
    "shareholders": {
        "container": "#shareholders tbody",
        "items": "tr",
        "name": "td.holder",
        "key": "td.holder a@href",
        "kind": "td:nth-of-type(2)",
        "stake": "td:nth-of-type(3)",
        "subscribed": "td:nth-of-type(4)",
    },
    "change_log": {
        "container": "ul.change-log",
        "items": "li",
        "item": ".item",
        "before": ".before",
        "after": ".after",
        "date": "time@datetime",
    },
}


def with_changes(table: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``table`` with top-level keys replaced (None removes the key)."""
    copy = json.loads(json.dumps(table))
    for key, value in changes.items():
        if value is None:
            copy.pop(key, None)
        else:
            copy[key] = value
    return copy


# Retries back off for about a millisecond instead of half a second.
QUICK_RETRIES = Timing(backoff_base=0.001)


def json_source(**changes: Any) -> JsonFeedSource:
    options = JsonFeedOptions.model_validate(with_changes(JSON_TABLE, **changes))
    return JsonFeedSource("core", options, timing=QUICK_RETRIES)


def html_source(**changes: Any) -> HtmlPageSource:
    options = HtmlPageOptions.model_validate(with_changes(HTML_TABLE, **changes))
    return HtmlPageSource("portal", options, timing=QUICK_RETRIES)


def map_json(text: str, **changes: Any) -> RegistryRecord:
    source = json_source(**changes)
    return record_of(source.map_raw, {"feed": text}, source=source.name, registry_id=USCC)


def map_html(text: str, **changes: Any) -> RegistryRecord:
    source = html_source(**changes)
    return record_of(source.map_raw, {"page": text}, source=source.name, registry_id=USCC)


def error_locations(error: ValidationError) -> list[tuple[str | int, ...]]:
    return [tuple(detail["loc"]) for detail in error.errors()]


# -- registration and replay --------------------------------------------------------------------------


def test_type_names_map_to_modules_that_do_not_shadow_the_standard_library():
    assert source_class("json") is JsonFeedSource
    assert source_class("html") is HtmlPageSource
    assert {"json", "html"} <= set(available_types())
    assert not {"json_feed", "html_page"} & set(available_types())
    with pytest.raises(KeyError, match="unknown source type"):
        source_class("json_feed")


def test_configured_feeds_are_not_replay_formats():
    assert "json" not in mapped_source_types()
    assert "html" not in mapped_source_types()
    assert "qichacha" in mapped_source_types()
    with pytest.raises(ValueError, match="unknown replay format 'json'"):
        ReplaySource("saved", ReplayOptions(type="replay", folder="/tmp", format="json"))
    assert class_mapping(JsonFeedSource) is None and class_mapping(HtmlPageSource) is None


def test_secret_headers_stay_out_of_the_options_repr():
    options = JsonFeedOptions.model_validate(JSON_TABLE)
    assert "s3cret-token" not in repr(options)


def test_identifier_kind_checks_ids_and_absent_kind_accepts_any():
    assert json_source().normalise_id(" 91330106ma2kh7q302 ") == USCC
    with pytest.raises(ValueError):
        json_source().normalise_id("91330106MA2KH7Q303")
    assert json_source(id_kind=None).normalise_id(" CUST-0042 ") == "CUST-0042"


# -- configuration errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "path", "problem"),
    [
        ("fields", "name", "data..name", "empty key at character 6"),
        ("fields", "address", ".address", "empty key at character 1"),
        ("fields", "status", "data.status.", "empty key at character 13"),
        ("people", "items", "data.staff[x]", "needs [number] or [*] at character 11"),
        ("shareholders", "stake", "capital[0]percent", "unexpected 'p' at character 11"),
        ("change_log", "date", " date", "spaces at its start or end"),
        ("people", "name", "", "empty path"),
    ],
)
def test_invalid_json_path_is_rejected_naming_the_key(section, key, path, problem):
    table = json.loads(json.dumps(JSON_TABLE))
    table[section][key] = path
    with pytest.raises(ValidationError) as caught:
        JsonFeedOptions.model_validate(table)
    assert error_locations(caught.value) == [(section, key)]
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("section", "key", "selector", "problem"),
    [
        ("fields", "name", "h1..company-name", "invalid CSS selector"),
        ("fields", "status", "span.status[data-raw@data-raw", "invalid CSS selector"),
        ("fields", "address", "p::first-line", "Pseudo-element"),
        ("fields", "name", "@title", "no CSS selector before the @attribute"),
        ("people", "items", "tr@data-id", "selects elements; remove @data-id"),
        ("people", "container", "#officers >", "invalid CSS selector"),
        ("shareholders", "name", "td:nth-of-type(", "invalid CSS selector"),
        ("change_log", "item", "", "empty selector"),
    ],
)
def test_invalid_css_selector_is_rejected_naming_the_key(section, key, selector, problem):
    table = json.loads(json.dumps(HTML_TABLE))
    table[section][key] = selector
    with pytest.raises(ValidationError) as caught:
        HtmlPageOptions.model_validate(table)
    assert error_locations(caught.value) == [(section, key)]
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("options_class", "table", "section"),
    [(JsonFeedOptions, JSON_TABLE, "fields"), (HtmlPageOptions, HTML_TABLE, "people")],
)
def test_unknown_keys_are_rejected_at_every_level(options_class, table, section):
    misspelt = json.loads(json.dumps(table))
    misspelt[section]["nmae"] = "x"
    misspelt["field"] = {}
    with pytest.raises(ValidationError) as caught:
        options_class.model_validate(misspelt)
    assert sorted(error_locations(caught.value), key=str) == sorted([(section, "nmae"), ("field",)], key=str)


@pytest.mark.parametrize(
    ("changes", "location", "problem"),
    [
        ({"url": "/companies"}, ("url",), "must contain {id}"),
        ({"url": "https://elsewhere.example/{id}"}, ("url",), "relative to base_url"),
        ({"url": "//elsewhere.example/{id}"}, ("url",), "relative to base_url"),
        ({"url": "/companies/{id}/{page}"}, ("url",), "only {id} may stand in braces"),
        ({"url": "/companies/{id!r}"}, ("url",), "only {id} may stand in braces"),
        ({"url": "/companies/{id"}, ("url",), "invalid URL template"),
        ({"id_kind": "iban"}, ("id_kind",), "unknown identifier kind 'iban'"),
        ({"required": ["name", "finance_head"]}, ("required", 1), "finance_head is not mapped"),
        ({"required": ["founder"]}, ("required", 0), "'name'"),
        ({"status_map": {"存续": "alive"}}, ("status_map", "存续"), "'active'"),
        ({"status_map": {"存续": "active", " 存续 ": "revoked"}}, ("status_map",), "same once cleaned"),
        ({"headers": {"Bad Header": "x"}}, ("headers",), "not a valid HTTP header name"),
        ({"headers": {"X-Token": "a\r\nInjected: 1"}}, ("headers",), "contains a line break"),
    ],
)
def test_invalid_options_are_rejected_naming_the_key(changes, location, problem):
    with pytest.raises(ValidationError) as caught:
        JsonFeedOptions.model_validate(with_changes(JSON_TABLE, **changes))
    assert error_locations(caught.value) == [location]
    assert problem in str(caught.value)
    assert "Injected" not in str(caught.value)


def test_status_map_needs_a_status_field_and_a_mapping_must_map_something():
    fields = {"name": "data.company.name"}
    with pytest.raises(ValidationError) as caught:
        JsonFeedOptions.model_validate(with_changes(JSON_TABLE, fields=fields, required=["name"]))
    assert error_locations(caught.value) == [("status_map",)]

    bare = {"type": "json", "base_url": BASE_URL, "url": "/c/{id}", "required": []}
    with pytest.raises(ValidationError) as caught:
        JsonFeedOptions.model_validate(bare)
    assert error_locations(caught.value) == [("fields",)]
    assert "maps nothing" in str(caught.value)


def test_config_file_errors_name_the_dotted_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CORE_TOKEN", "tok-very-secret")
    path = tmp_path / "watcher.toml"
    path.write_text(
        """
[sources.core]
type = "json"
base_url = "https://core.bank.example/api"
url = "/companies/{id}"
headers = { Authorization = "Bearer ${CORE_TOKEN}" }

[sources.core.fields]
name = "data.company..name"

[sources.portal]
type = "html"
base_url = "https://portal.bank.example"
url = "/customers/{id}"

[sources.portal.fields]
name = "h1.company-name"

[sources.portal.people]
items = "table#officers tr"
name = "td:nth-of-type("
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert error.key == "sources.core.fields.name"
    assert "empty key at character 14" in error.reason
    assert "sources.portal.people.name: invalid CSS selector" in error.reason
    assert "tok-very-secret" not in str(error)


def test_a_valid_config_file_loads_both_feed_types(tmp_path, monkeypatch):
    monkeypatch.setenv("CORE_TOKEN", "tok-very-secret")
    path = tmp_path / "watcher.toml"
    path.write_text(
        """
[sources.core]
type = "json"
base_url = "https://core.bank.example/api"
url = "/companies/{id}"
id_kind = "cn_uscc"
headers = { Authorization = "Bearer ${CORE_TOKEN}" }

[sources.core.fields]
name = "data.company.name"
status = "data.company.regStatus"

[sources.core.status_map]
"存续" = "active"

[sources.core.shareholders]
items = "data.partners"
name = "name"
stake = "percent"

[sources.portal]
type = "html"
base_url = "https://portal.bank.example"
url = "/customers/{id}"

[sources.portal.fields]
name = "h1.company-name"
""",
        encoding="utf-8",
    )
    config = load_config(path)
    core, portal = config.sources["core"], config.sources["portal"]
    assert isinstance(core, JsonFeedOptions) and isinstance(portal, HtmlPageOptions)
    assert core.headers == {"Authorization": "Bearer tok-very-secret"}
    assert core.status_map == {"存续": CompanyStatus.ACTIVE}
    assert core.shareholders is not None and core.shareholders.stake == "percent"
    assert core.people is None


# -- the path evaluator -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("name", ("name",)),
        ("data.company.name", ("data", "company", "name")),
        ("capital[0].percent", ("capital", 0, "percent")),
        ("[0].name", (0, "name")),
        ("rows[-1]", ("rows", -1)),
        ("data.groups[*].members", ("data", "groups", WILDCARD, "members")),
        ("matrix[1][2]", ("matrix", 1, 2)),
        ("企业信息.法定代表人", ("企业信息", "法定代表人")),
        ("company name", ("company name",)),
    ],
)
def test_json_paths_parse(text, steps):
    assert parse_json_path(text) == steps
    assert format_path(steps) == text


DOCUMENT = {
    "data": {
        "name": "Acme AS",
        "capital": [{"percent": 51}, {"percent": "49%"}],
        "groups": [{"members": ["a", "b"]}, {"members": ["c"]}],
        "nothing": None,
        "text": "plain",
    }
}


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("data.name", ["Acme AS"]),
        ("data.capital[0].percent", [51]),
        ("data.capital[-1].percent", ["49%"]),
        ("data.capital[*].percent", [51, "49%"]),
        ("data.groups[*].members[*]", ["a", "b", "c"]),
        ("data.nothing", [None]),
    ],
)
def test_json_paths_resolve(path, matches):
    assert resolve_json_path(parse_json_path(path), DOCUMENT, path) == matches


@pytest.mark.parametrize(
    "path", ["data.missing", "data.capital[2].percent", "data.nothing.name", "data.capital[*].x"]
)
def test_absent_json_paths_are_missing_not_empty(path):
    with pytest.raises(PathMissing):
        resolve_json_path(parse_json_path(path), DOCUMENT, path)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("data.text.name", "data.text is text, not an object"),
        ("data.name[0]", "data.name is text, not a list"),
        ("data.capital.percent", "data.capital is a list, not an object"),
    ],
)
def test_json_paths_that_meet_another_shape_are_parse_errors(path, problem):
    with pytest.raises(ParseError, match=problem):
        resolve_json_path(parse_json_path(path), DOCUMENT, path)


path_keys = st.text(
    st.characters(blacklist_characters=".[]", blacklist_categories=("Cs",)), min_size=1
).filter(lambda key: key == key.strip())
path_steps = st.lists(st.one_of(path_keys, st.integers(-5, 50), st.just(WILDCARD)), min_size=1, max_size=6)


@given(path_steps)
def test_formatted_paths_parse_back_to_their_steps(steps):
    assert parse_json_path(format_path(tuple(steps))) == tuple(steps)


# -- JSON mapping -------------------------------------------------------------------------------------


def test_json_feed_maps_every_configured_field_and_section():
    record = map_json(fixture_text("core_company_t0.json"))

    assert record.source == "core" and record.registry_id == USCC
    assert record.name == "杭州澜潮智能装备有限公司"
    assert record.status is not None and record.status.code is CompanyStatus.ACTIVE
    assert record.status.raw == "存续(在营、开业、在册)"
    capital = record.registered_capital
    assert capital is not None and (capital.amount, capital.currency) == (Decimal("50000000.00"), "CNY")
    assert record.address == "浙江省杭州市西湖区西溪路525号"
    assert record.legal_representative is not None and record.legal_representative.name == "王建国"
    assert record.legal_representative.roles == {Role.LEGAL_REPRESENTATIVE}

    assert record.people is not None
    people = {person.name: person for person in record.people}
    assert people["王建国"].roles == {Role.DIRECTOR, Role.MANAGER}
    assert people["王建国"].key == "id:p-1001"
    assert people["李敏"].roles == {Role.SUPERVISOR}
    assert record.finance_head is not None and record.finance_head.name == "赵丽"

    assert record.shareholders is not None
    holders = {holder.name: holder for holder in record.shareholders}
    assert holders["王建国"].kind is HolderKind.PERSON
    assert holders["王建国"].stake == Stake(Decimal(60), Decimal(60))
    subscribed = holders["王建国"].subscribed
    assert subscribed is not None and subscribed.amount == Decimal("30000000.00")
    partnership = holders["杭州澜潮投资管理合伙企业(有限合伙)"]
    assert partnership.kind is HolderKind.ENTITY
    assert partnership.stake == Stake(Decimal(40), Decimal(40))  # the feed's 0.4 is a fraction
    assert partnership.key == "id:e-2001"

    assert record.change_log is not None
    log = {entry.item: entry for entry in record.change_log}
    assert log["注册资本变更"].categories == {Category.REGISTERED_CAPITAL}
    assert log["注册资本变更"].date == date(2023, 11, 20)
    assert log["住所变更"].categories == {Category.ADDRESS}
    assert log["住所变更"].date == date(2022, 6, 8)
    assert record.controllers is None


def test_json_feed_diff_names_exactly_the_planted_changes():
    before = map_json(fixture_text("core_company_t0.json"))
    after = map_json(fixture_text("core_company_t1.json"))

    changes = {(change.category, change.action, change.subject) for change in diff(before, after)}

    assert changes == {
        (Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "legal representative"),
        (Category.SHAREHOLDER, Action.REMOVED, "杭州澜潮投资管理合伙企业(有限合伙)"),
        (Category.SHAREHOLDER, Action.ADDED, "宁波恒达实业有限公司"),
        (Category.DIRECTOR, Action.REMOVED, "王建国"),
        (Category.DIRECTOR, Action.ADDED, "陈晓峰"),
        (Category.MANAGER, Action.REMOVED, "王建国"),
        (Category.MANAGER, Action.ADDED, "陈晓峰"),
    }
    dated = {change.category: change.effective_date for change in diff(before, after)}
    assert dated[Category.LEGAL_REPRESENTATIVE] == date(2025, 7, 3)
    assert dated[Category.SHAREHOLDER] == date(2025, 7, 3)


def test_empty_lists_are_empty_sections_and_unconfigured_sections_stay_unknown():
    record = map_json(fixture_text("core_company_empty_lists.json"), required=["name"])
    assert (record.people, record.shareholders, record.change_log) == ((), (), ())
    assert record.status is not None and record.status.code is CompanyStatus.REVOKED
    assert record.finance_head is None and record.legal_representative is None

    bare = map_json(fixture_text("core_company_t0.json"), people=None, shareholders=None, change_log=None)
    assert (bare.people, bare.shareholders, bare.change_log, bare.controllers) == (None, None, None, None)
    assert bare.finance_head is None


def test_a_configured_section_missing_from_the_response_is_a_parse_error():
    missing = r"response missing a required section: shareholders \(items = data.partners\)"
    with pytest.raises(ParseError, match=missing):
        map_json(fixture_text("core_company_no_partners.json"))


@pytest.mark.parametrize(
    ("partners", "problem"),
    [
        (None, "missing a required section: shareholders"),
        ({"name": "x"}, "shareholders.items .* is not a list"),
        ("none", "shareholders.items .* is not a list"),
    ],
)
def test_a_null_or_odd_section_is_a_parse_error(partners, problem):
    document = json.loads(fixture_text("core_company_t0.json"))
    document["data"]["partners"] = partners
    with pytest.raises(ParseError, match=problem):
        map_json(json.dumps(document))


def test_a_missing_required_field_is_a_parse_error_naming_it():
    with pytest.raises(ParseError, match=r"required field missing from the response: name \(data.company"):
        map_json(fixture_text("core_company_error.json"))
    document = json.loads(fixture_text("core_company_t0.json"))
    document["data"]["company"]["regStatus"] = "  "
    with pytest.raises(ParseError, match=r"status \(data.company.regStatus\)"):
        map_json(json.dumps(document))


def test_unmapped_status_text_is_other_with_the_raw_wording():
    document = json.loads(fixture_text("core_company_t0.json"))
    document["data"]["company"]["regStatus"] = "迁出"
    record = map_json(json.dumps(document))
    assert record.status is not None
    assert (record.status.code, record.status.raw) == (CompanyStatus.OTHER, "迁出")


def test_people_roles_decide_the_legal_representative_and_finance_head_when_unmapped():
    fields = {"name": "data.company.name"}
    document = json.loads(fixture_text("core_company_t0.json"))
    document["data"]["staff"][0]["titles"] = ["法定代表人", "执行董事"]
    record = map_json(json.dumps(document), fields=fields, required=["name"], status_map={})
    assert record.legal_representative is not None and record.legal_representative.key == "id:p-1001"
    assert record.finance_head is not None and record.finance_head.name == "赵丽"


def test_items_ending_in_a_wildcard_collect_rows_from_nested_lists():
    document = {
        "name": "Acme AS",
        "groups": [
            {"code": "STYR", "members": [{"who": "Kari Nordmann", "as": "Styreleder"}]},
            {"code": "DAGL", "members": [{"who": "Ola Nordmann", "as": "Daglig leder / CEO"}]},
        ],
    }
    people = {"items": "groups[*].members[*]", "name": "who", "role": "as"}
    record = map_json(
        json.dumps(document),
        fields={"name": "name"},
        required=["name"],
        status_map={},
        people=people,
        shareholders=None,
        change_log=None,
    )
    assert record.people is not None
    assert [person.name for person in record.people] == ["Kari Nordmann", "Ola Nordmann"]
    assert Role.MANAGER in record.people[1].roles


def test_a_row_without_a_name_is_a_parse_error_naming_the_row():
    document = json.loads(fixture_text("core_company_t0.json"))
    document["data"]["staff"][1]["name"] = ""
    with pytest.raises(ParseError, match=r"people\[1\] has no name \(name\)"):
        map_json(json.dumps(document))


def test_an_object_where_text_was_expected_is_a_parse_error():
    with pytest.raises(ParseError, match=r"fields.address \(data.company.address\) is an object"):
        map_json(
            fixture_text("core_company_t0.json"),
            fields={**JSON_TABLE["fields"], "address": "data.company.address"},
        )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", ParseError),
        ('{"data": {"company": {"name": "杭州', ParseError),
        ("<html><body>Bad gateway</body></html>", ParseError),
        ("<html><title>安全验证</title><body>请输入验证码</body></html>", BlockedError),
        ("[1, 2, 3]", ParseError),
    ],
)
def test_json_bodies_that_are_not_the_feed_are_errors(body, error):
    with pytest.raises(error):
        map_json(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def json_feed_documents() -> st.SearchStrategy[object]:
    """Arbitrary JSON, and arbitrary JSON grafted onto the fixture at the mapped paths."""
    fixture = json.loads(fixture_text("core_company_t0.json"))

    def graft(where: str, value: object) -> object:
        document = json.loads(json.dumps(fixture))
        section, _, key = where.partition(".")
        document["data"][section] = value if not key else {**document["data"][section], key: value}
        return document

    places = st.sampled_from(["company", "staff", "partners", "changes", "company.name", "company.regStatus"])
    return json_values | st.builds(graft, places, json_values)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_feed_documents())
def test_json_mapper_returns_a_record_or_a_source_error(document):
    source = json_source()
    try:
        raw = {"feed": json.dumps(document)}
        record = record_of(source.map_raw, raw, source=source.name, registry_id=USCC)
    except SourceError:
        return
    assert isinstance(record, RegistryRecord)
    assert record.name


# -- HTML mapping -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("h1.company-name", ("h1.company-name", None)),
        ("span.status@data-raw", ("span.status", "data-raw")),
        ("@data-person-id", ("", "data-person-id")),
        ("a[href*='@example']", ("a[href*='@example']", None)),
        ("a[href*='@example']@href", ("a[href*='@example']", "href")),
        ("svg@xlink:href", ("svg", "xlink:href")),
    ],
)
def test_selectors_split_into_css_and_attribute(text, parts):
    assert split_selector(text) == parts


def test_html_page_maps_every_configured_field_and_section():
    record = map_html(fixture_text("credit_portal_company.html"))

    assert record.name == "杭州澜潮智能装备有限公司"
    assert record.status is not None
    assert (record.status.code, record.status.raw) == (CompanyStatus.ACTIVE, "存续(在营、开业、在册)")
    capital = record.registered_capital
    assert capital is not None and (capital.amount, capital.currency) == (Decimal("50000000.00"), "CNY")
    assert record.address == "浙江省杭州市西湖区西溪路525号"
    assert record.legal_representative is not None and record.legal_representative.name == "王建国"
    assert record.finance_head is not None and record.finance_head.name == "赵丽"
    assert record.finance_head.roles == {Role.FINANCE_HEAD}

    assert record.people is not None
    assert [(person.name, person.key, person.roles) for person in record.people] == [
        ("王建国", "id:p-1001", {Role.DIRECTOR, Role.MANAGER}),
        ("李敏", "id:p-1002", {Role.SUPERVISOR}),
        ("赵丽", "id:p-1003", {Role.FINANCE_HEAD}),
    ]
    assert record.shareholders is not None
    assert [(h.name, h.key, h.kind, h.stake) for h in record.shareholders] == [
        ("王建国", "id:/holders/p-1001", HolderKind.PERSON, Stake(*SIXTY)),
        ("杭州澜潮投资管理合伙企业(有限合伙)", "id:/holders/e-2001", HolderKind.ENTITY, Stake(*FORTY)),
    ]
    assert record.change_log is not None
    assert [(entry.item, entry.date, entry.categories) for entry in record.change_log] == [
        ("注册资本变更", date(2023, 11, 20), {Category.REGISTERED_CAPITAL}),
        ("住所变更", date(2022, 6, 8), {Category.ADDRESS}),
    ]
    assert record.change_log[1].after == "浙江省杭州市西湖区西溪路525号"


def test_html_and_json_of_the_same_company_compare_equal():
    from_json = map_json(fixture_text("core_company_t0.json"))
    from_html = map_html(fixture_text("credit_portal_company.html"))
    changes = diff(from_json, from_html)
    # Only the keys differ (ids vs link targets), and shareholders are keyed by them.
    assert {change.category for change in changes} <= {Category.SHAREHOLDER}


def test_html_empty_tables_are_empty_sections_and_unmapped_status_is_other():
    record = map_html(fixture_text("credit_portal_empty_sections.html"))
    assert (record.people, record.shareholders, record.change_log) == ((), (), ())
    assert record.status is not None
    assert (record.status.code, record.status.raw) == (CompanyStatus.OTHER, "吊销,未注销")
    assert record.finance_head is None  # the page has no 财务负责人 entry: unknown


def test_html_sections_without_rows_or_container_are_parse_errors():
    people_without_container = {k: v for k, v in HTML_TABLE["people"].items() if k != "container"}
    people_without_container["items"] = "#officers tbody tr"
    with pytest.raises(ParseError, match="set people.container to tell an empty list from a missing one"):
        map_html(fixture_text("credit_portal_empty_sections.html"), people=people_without_container)
    # the same configuration reads the rows when there are some
    assert map_html(fixture_text("credit_portal_company.html"), people=people_without_container).people

    missing_container = {**HTML_TABLE["shareholders"], "container": "#holders tbody"}
    with pytest.raises(ParseError, match=r"response missing a required section: shareholders \(items = tr\)"):
        map_html(fixture_text("credit_portal_company.html"), shareholders=missing_container)


def test_html_page_without_the_required_fields_is_a_parse_error_never_an_empty_record():
    page = "<html><head><title>客户管理</title></head><body><p>系统维护中，请稍后再试</p></body></html>"
    with pytest.raises(ParseError, match=r"required field missing from the response: name \(h1.company"):
        map_html(page)
    only_fields = {"required": [], "people": None, "shareholders": None, "change_log": None, "status_map": {}}
    with pytest.raises(ParseError, match="none of the configured fields is in the response"):
        map_html(page, **only_fields)


def test_html_captcha_page_is_blocked():
    with pytest.raises(BlockedError, match="captcha or challenge"):
        map_html(fixture_text("captcha_page.html"))
    with pytest.raises(BlockedError):
        map_json(fixture_text("captcha_page.html"))


def test_html_page_that_maps_is_data_even_if_it_mentions_a_challenge_word():
    page = fixture_text("credit_portal_company.html").replace(
        "</nav>", '<a href="/training">2025 Risk Challenge</a></nav>'
    )
    assert map_html(page).name == "杭州澜潮智能装备有限公司"


html_fragments = st.lists(
    st.sampled_from(
        [
            "<h1 class='company-name'>",
            "</h1>",
            "<dl>",
            "<dt>法定代表人</dt>",
            "<dd>",
            "</dd>",
            "<table>",
            "<tbody>",
            "<tr data-person-id='1'>",
            "<td>",
            "</td>",
            "</tr>",
            "<span class='status' data-raw='存续'>",
            "<ul class='change-log'>",
            "<li>",
            "<time datetime='2024-01-02'>",
            "<!--",
            "-->",
            "<![CDATA[",
            "&amp;",
            "<script>",
            "</script>",
            "<",
            ">",
            "验证码",
            "王建国",
            "60%",
            "\x00",
            "\ud7ff",
        ]
    )
    | st.text(max_size=20),
    max_size=40,
).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), html_fragments))
def test_html_mapper_returns_a_record_or_a_source_error(text):
    source = html_source()
    try:
        record = record_of(source.map_raw, {"page": text}, source=source.name, registry_id=USCC)
    except SourceError:
        return
    assert isinstance(record, RegistryRecord)
    assert record.name


# -- small parsers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind_text", "kind"),
    [
        ("王建国", "自然人股东", HolderKind.PERSON),
        ("某某", "非自然人股东", HolderKind.ENTITY),
        ("Acme Holdings Ltd", "corporate-entity-person-with-significant-control", HolderKind.ENTITY),
        ("Jane Doe", "individual-person-with-significant-control", HolderKind.PERSON),
        ("宁波恒达实业有限公司", "企业法人", HolderKind.ENTITY),
        ("宁波恒达实业有限公司", "", HolderKind.ENTITY),
        ("Nordic Fjord AS", "", HolderKind.ENTITY),
        ("张伟", "", HolderKind.PERSON),
        ("Kari Nordmann", "", HolderKind.PERSON),
        ("杭州某某", "外商投资企业", HolderKind.ENTITY),
    ],
)
def test_holder_kind(name, kind_text, kind):
    assert holder_kind(name, kind_text) is kind


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05", date(2024, 3, 5)),
        ("2024-03-05T10:00:00+08:00", date(2024, 3, 5)),
        ("2024/3/5", date(2024, 3, 5)),
        ("2024年03月05日", date(2024, 3, 5)),
        ("２０２４年３月５日", date(2024, 3, 5)),
        ("2024-02-30", None),
        ("长期", None),
        (1709596800000, None),
        (None, None),
    ],
)
def test_feed_dates(value, expected):
    assert feed_date(value, "date") == expected


# -- fetching over HTTP (respx) -------------------------------------------------------------------------


FAST = {"timeout": "2s", "deadline": "10s", "retries": 2, "rate": "1000/s"}


@pytest.fixture
async def core():
    source = json_source(**FAST)
    yield source
    await source.aclose()


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


async def test_fetch_sends_the_configured_headers_and_maps_the_feed(core, api):
    body = fixture_text("core_company_t0.json")
    route = api.get(f"/companies/{USCC}").respond(
        200, text=body, headers={"Content-Type": "application/json"}
    )

    fetched = await core.fetch(" 91330106ma2kh7q302 ")

    assert fetched.record == map_json(body)
    assert fetched.raw == {"feed": body}
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer s3cret-token"
    assert request.headers["Accept"] == "application/json"


async def test_fetch_quotes_the_identifier_into_the_url(api):
    source = json_source(id_kind=None, url="/customers?key={id}&view=registry", **FAST)
    route = api.get("/customers").respond(200, text=fixture_text("core_company_t0.json"))
    try:
        await source.fetch("A/B 7&x")
    finally:
        await source.aclose()
    assert route.calls.last.request.url.params["key"] == "A/B 7&x"
    assert route.calls.last.request.url.params["view"] == "registry"


async def test_fetch_rejects_an_invalid_identifier_without_asking(core, api):
    route = api.get(url__regex=r".*").respond(200, text="{}")
    with pytest.raises(NotFoundError, match="invalid identifier"):
        await core.fetch("91330106MA2KH7Q303")
    assert not route.called


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, '{"message": "no such customer"}', NotFoundError),
        (401, '{"message": "token expired"}', AuthError),
        (403, "<html>Forbidden</html>", AuthError),
        (200, "", ParseError),
        (200, "   ", ParseError),
        (200, '{"data": {"company": {"name": "杭州', ParseError),
        (200, "<html><body>请输入验证码</body></html>", BlockedError),
        (200, fixture_text("core_company_error.json"), ParseError),
    ],
)
async def test_fetch_failures_are_source_errors(core, api, status, body, error):
    api.get(f"/companies/{USCC}").respond(status, text=body)
    with pytest.raises(error) as caught:
        await core.fetch(USCC)
    assert caught.value.source == "core"
    assert caught.value.registry_id == USCC


async def test_fetch_retries_server_errors_and_rate_limits(core, api):
    api.get(f"/companies/{USCC}").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, text=fixture_text("core_company_t0.json")),
        ]
    )
    fetched = await core.fetch(USCC)
    assert fetched.record.name == "杭州澜潮智能装备有限公司"


async def test_fetch_server_error_that_persists_is_transient(core, api):
    api.get(f"/companies/{USCC}").respond(503)
    with pytest.raises(TransientError):
        await core.fetch(USCC)


async def test_html_fetch_sends_an_html_accept_header(api):
    source = html_source(**FAST)
    route = api.get(f"/customers/{USCC}/registry").respond(
        200, text=fixture_text("credit_portal_company.html")
    )
    try:
        fetched = await source.fetch(USCC)
    finally:
        await source.aclose()
    assert fetched.record.name == "杭州澜潮智能装备有限公司"
    assert fetched.raw.keys() == {"page"}
    assert route.calls.last.request.headers["Accept"].startswith("text/html")


def undeclared_gb18030_page() -> bytes:
    """The GB18030 portal page with its <meta charset="gbk"> taken out: it declares no charset at all."""
    page = (FEEDS / "credit_portal_company_gb18030.html").read_bytes()
    assert b'<meta charset="gbk">' in page
    return page.replace(b'<meta charset="gbk">', b"")


async def test_undeclared_gb18030_page_fails_unless_the_source_allows_it(api):
    api.get(f"/customers/{USCC}/registry").respond(
        200, content=undeclared_gb18030_page(), headers={"Content-Type": "text/html"}
    )
    strict, allowing = html_source(**FAST), html_source(**FAST, undeclared_charset="gb18030")
    try:
        with pytest.raises(ParseError, match="declares no charset and is not valid utf-8"):
            await strict.fetch(USCC)
        fetched = await allowing.fetch(USCC)
    finally:
        await strict.aclose()
        await allowing.aclose()
    assert fetched.record.name == "杭州澜潮智能装备有限公司"
    assert fetched.record.finance_head is not None and fetched.record.finance_head.name == "刘䶮"


async def test_page_declared_utf8_but_not_utf8_fails_even_where_gb18030_is_allowed(api):
    api.get(f"/customers/{USCC}/registry").respond(
        200, content=undeclared_gb18030_page(), headers={"Content-Type": "text/html; charset=utf-8"}
    )
    source = html_source(**FAST, undeclared_charset="gb18030")
    try:
        with pytest.raises(ParseError, match="not valid utf-8 \\(as its Content-Type declares\\)"):
            await source.fetch(USCC)
    finally:
        await source.aclose()


def test_undeclared_charset_accepts_only_utf8_or_gb18030():
    assert html_source().settings.undeclared_charset == "utf-8"
    with pytest.raises(ValidationError, match="undeclared_charset"):
        html_source(undeclared_charset="latin-1")


# -- a real HTTP server on 127.0.0.1 ------------------------------------------------------------------


class FeedHandler(QuietHandler):
    """Serves the fixtures by path: the JSON feed, the GB18030 portal page, and a captcha."""

    routes: dict[str, tuple[str, bytes]] = {
        f"/api/companies/{USCC}": ("application/json", (FEEDS / "core_company_t0.json").read_bytes()),
        f"/portal/customers/{USCC}/registry": (
            "text/html",  # no charset: the page's <meta charset="gbk"> must decide
            (FEEDS / "credit_portal_company_gb18030.html").read_bytes(),
        ),
        "/portal/customers/91310115MA1K4QRT94/registry": (
            "text/html; charset=utf-8",
            (FEEDS / "captcha_page.html").read_bytes(),
        ),
    }

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        content_type, body = self.routes.get(self.path, ("application/json", b'{"message": "not found"}'))
        self.send_body(200 if self.path in self.routes else 404, body, content_type)


@pytest.fixture
def local_server() -> Iterator[str]:
    with serve(FeedHandler) as url:
        yield url


async def test_json_feed_from_a_real_local_server(local_server):
    source = json_source(base_url=f"{local_server}/api", **FAST)
    try:
        fetched = await source.fetch(USCC)
        with pytest.raises(NotFoundError):
            await source.fetch("91310115MA1K4QRT94")
    finally:
        await source.aclose()
    assert fetched.record == map_json(fixture_text("core_company_t0.json"))


async def test_gb18030_html_page_from_a_real_local_server(local_server):
    source = html_source(base_url=f"{local_server}/portal", **FAST)
    try:
        fetched = await source.fetch(USCC)
        with pytest.raises(BlockedError):
            await source.fetch("91310115MA1K4QRT94")
    finally:
        await source.aclose()
    record = fetched.record
    assert record.name == "杭州澜潮智能装备有限公司"
    assert record.finance_head is not None and record.finance_head.name == "刘䶮"  # 䶮 exists in GB18030 only
    assert record.people is not None
    assert [person.name for person in record.people] == ["王建国", "李敏", "刘䶮"]
    assert record.registered_capital is not None
    assert record.registered_capital.amount == Decimal("50000000.00")
