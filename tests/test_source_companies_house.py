"""UK Companies House source: mapping of real response shapes, paging, failure classes, a real server."""

from __future__ import annotations

import base64
import json
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
from pydantic import ValidationError

import sources.companies_house as companies_house
from sources import source_class
from sources.base import record_of
from sources.companies_house import NO_PSC_DOCUMENT, CompaniesHouseOptions, CompaniesHouseSource
from sources.http.timing import Timing
from tests.fuzzing import json_values, mutate, only_records_or_source_errors
from tests.loopback import QuietHandler, serve
from tests.mocking import TRANSPORT
from watcher.diff import Change, diff
from watcher.errors import (
    AuthError,
    BlockedError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    TransientError,
)
from watcher.record import (
    Action,
    Category,
    ChangeLogEntry,
    CompanyStatus,
    HolderKind,
    RegistryRecord,
    Role,
    Stake,
)

FIXTURES = Path(__file__).parent / "fixtures" / "registries" / "uk_companies_house"
NUMBER = "SC612345"
API_KEY = "test-key-3f9a"
CH_URL = "https://api.company-information.service.gov.uk"
PROFILE_PATH = f"/company/{NUMBER}"
OFFICERS_PATH = f"/company/{NUMBER}/officers"
PSC_PATH = f"/company/{NUMBER}/persons-with-significant-control"

MACLEOD = "id:ch-officer:pl9ok8ij7uh6yg5tf4rd3es2wa1"
OKAFOR = "id:ch-officer:ab1cd2ef3gh4ij5kl6mn7op8qr9"
GRANITE = "id:ch-officer:st1uv2wx3yz4ab5cd6ef7gh8ij9"
CHEN = "id:ch-officer:ww1xx2yy3zz4aa5bb6cc7dd8ee9"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_document(name: str) -> dict:
    return json.loads(fixture_text(name))


def ch_raw(officers_fixture: str = "officers_t0.json", **texts: str) -> dict[str, str]:
    """The fixture payloads, with any endpoint's text replaced by ``texts``."""
    raw = {
        "profile": fixture_text("company_profile.json"),
        "officers": fixture_text(officers_fixture),
        "psc": fixture_text("psc.json"),
    }
    raw.update(texts)
    return raw


def parse(raw: dict[str, str], registry_id: str = NUMBER) -> RegistryRecord:
    return record_of(CompaniesHouseSource.map_raw, raw, source="uk", registry_id=registry_id)


def with_items(name: str, items: list[dict]) -> str:
    """A fixture list document holding ``items`` instead of its own."""
    document = fixture_document(name)
    return json.dumps({**document, "items": items, "total_results": len(items)})


def officer(**fields: object) -> dict:
    base = {"name": "DOE, Jane", "officer_role": "director", "appointed_on": "2022-05-01"}
    return {**base, **fields}


def psc_item(**fields: object) -> dict:
    base = {
        "kind": "individual-person-with-significant-control",
        "name": "Ms Jane Doe",
        "natures_of_control": [],
        "notified_on": "2022-05-01",
        "links": {"self": f"/company/{NUMBER}/persons-with-significant-control/individual/Pq1"},
    }
    return {**base, **fields}


def profile_with(**fields: object) -> str:
    return json.dumps({**fixture_document("company_profile.json"), **fields})


# -- mapping: profile ------------------------------------------------------------------------------


def test_profile_maps_name_status_and_address_and_leaves_non_uk_sections_unknown():
    record = parse(ch_raw())

    assert record.source == "uk"
    assert record.registry_id == NUMBER
    assert record.name == "NORTHWIND HARBOUR LOGISTICS LIMITED"
    assert record.status is not None
    assert (record.status.code, record.status.raw) == (CompanyStatus.ACTIVE, "active")
    assert record.address == "12, Quayside Street, Edinburgh, EH6 6EX, Scotland"
    assert record.registered_capital is None
    assert record.legal_representative is None
    assert record.shareholders is None
    assert record.finance_head is None


@pytest.mark.parametrize(
    ("status", "detail", "code"),
    [
        ("active", None, CompanyStatus.ACTIVE),
        ("active", "active-proposal-to-strike-off", CompanyStatus.ABNORMAL),
        ("active", "converted-to-plc", CompanyStatus.ACTIVE),
        ("dissolved", None, CompanyStatus.DEREGISTERED),
        ("dissolved", "petition-to-restore-dissolved", CompanyStatus.DEREGISTERED),
        ("removed", None, CompanyStatus.DEREGISTERED),
        ("closed", None, CompanyStatus.DEREGISTERED),
        ("converted-closed", None, CompanyStatus.DEREGISTERED),
        ("liquidation", None, CompanyStatus.LIQUIDATION),
        ("receivership", None, CompanyStatus.LIQUIDATION),
        ("administration", None, CompanyStatus.LIQUIDATION),
        ("voluntary-arrangement", None, CompanyStatus.LIQUIDATION),
        ("insolvency-proceedings", None, CompanyStatus.LIQUIDATION),
        ("registered", None, CompanyStatus.OTHER),
        ("open", None, CompanyStatus.OTHER),
    ],
)
def test_company_status(status, detail, code):
    fields = {"company_status": status}
    if detail:
        fields["company_status_detail"] = detail
    record = parse(ch_raw(profile=profile_with(**fields)))

    assert record.status is not None
    assert record.status.code is code
    assert record.status.raw == (f"{status} ({detail})" if detail else status)


def test_missing_status_is_unknown():
    profile = fixture_document("company_profile.json")
    del profile["company_status"]
    assert parse(ch_raw(profile=json.dumps(profile))).status is None


def test_address_joins_every_line_in_postal_order():
    address = {
        "care_of": "Someone Else",
        "premises": "Unit 4",
        "address_line_1": "Dock Road",
        "address_line_2": "Leith",
        "locality": "Edinburgh",
        "region": "Midlothian",
        "postal_code": "EH6 7AA",
        "country": "Scotland",
    }
    record = parse(ch_raw(profile=profile_with(registered_office_address=address)))
    assert record.address == "Unit 4, Dock Road, Leith, Edinburgh, Midlothian, EH6 7AA, Scotland"


def test_profile_without_an_address_leaves_the_address_unknown():
    profile = fixture_document("company_profile.json")
    del profile["registered_office_address"]
    assert parse(ch_raw(profile=json.dumps(profile))).address is None


def test_profile_of_another_company_is_refused():
    with pytest.raises(ParseError, match="SC612345.*SC000001"):
        parse(ch_raw(), registry_id="SC000001")


def test_profile_without_a_name_is_a_parse_error():
    with pytest.raises(ParseError, match="company_name"):
        parse(ch_raw(profile=profile_with(company_name="  ")))


def test_profile_not_found_envelope_is_not_found():
    with pytest.raises(NotFoundError, match="company-profile-not-found"):
        parse(ch_raw(profile=fixture_text("error_404_company_not_found.json")))


def test_other_error_envelopes_are_parse_errors():
    envelope = json.dumps({"errors": [{"error": "invalid-authorization-header", "type": "ch:service"}]})
    with pytest.raises(ParseError, match="invalid-authorization-header"):
        parse(ch_raw(profile=envelope))
    with pytest.raises(ParseError, match="officers.*invalid-authorization-header"):
        parse(ch_raw(officers=envelope))


# -- mapping: officers -----------------------------------------------------------------------------


def test_current_officers_keyed_by_officer_id():
    record = parse(ch_raw())

    assert record.people is not None
    people = {person.key: person for person in record.people}
    assert set(people) == {MACLEOD, OKAFOR, GRANITE}  # STEWART resigned in 2021
    assert people[MACLEOD].name == "MACLEOD, Fiona Jane"
    assert people[MACLEOD].roles == {Role.DIRECTOR}
    assert people[MACLEOD].role_text == "director"
    assert people[MACLEOD].appointed_on == date(2018, 11, 2)
    assert people[OKAFOR].appointed_on == date(2021, 3, 15)
    assert people[GRANITE].roles == {Role.SECRETARY}
    assert people[GRANITE].role_text == "corporate-secretary"
    assert all(person.resigned_on is None for person in record.people)


def test_officer_key_falls_back_to_name_and_birth_month():
    officers = [
        officer(name="OKAFOR, Daniel Chukwuemeka", date_of_birth={"month": 9, "year": 1984}),
        officer(name="GRANITE SECRETARIAL SERVICES LIMITED", officer_role="corporate-secretary"),
        officer(name="ROSS, Iain", links={"self": f"/company/{NUMBER}/appointments/X1"}),
    ]
    record = parse(ch_raw(officers=with_items("officers_t0.json", officers)))

    assert record.people is not None
    assert {person.key for person in record.people} == {
        "nb:okafor, daniel chukwuemeka|1984-09",
        "n:granite secretarial services limited",
        "n:ross, iain",
    }


def test_officer_names_are_kept_as_the_register_writes_them():
    officers = [officer(name="  MACLEOD,   Fiona\u00a0Jane ")]
    record = parse(ch_raw(officers=with_items("officers_t0.json", officers)))
    assert record.people is not None
    assert [person.name for person in record.people] == ["MACLEOD, Fiona Jane"]


@pytest.mark.parametrize(
    ("officer_role", "roles"),
    [
        ("director", {Role.DIRECTOR}),
        ("corporate-director", {Role.DIRECTOR}),
        ("nominee-director", {Role.DIRECTOR}),
        ("corporate-nominee-director", {Role.DIRECTOR}),
        ("member-of-an-administrative-organ", {Role.DIRECTOR}),
        ("secretary", {Role.SECRETARY}),
        ("corporate-secretary", {Role.SECRETARY}),
        ("nominee-secretary", {Role.SECRETARY}),
        ("corporate-nominee-secretary", {Role.SECRETARY}),
        ("llp-member", {Role.PARTNER}),
        ("llp-designated-member", {Role.PARTNER}),
        ("corporate-llp-member", {Role.PARTNER}),
        ("corporate-llp-designated-member", {Role.PARTNER}),
        ("general-partner-in-a-limited-partnership", {Role.PARTNER}),
        ("member-of-a-supervisory-organ", {Role.SUPERVISOR}),
        ("corporate-member-of-a-supervisory-organ", {Role.SUPERVISOR}),
        ("member-of-a-management-organ", {Role.MANAGER}),
        ("manager-of-an-eeig", {Role.MANAGER}),
        ("managing-officer", {Role.MANAGER}),
        ("cic-manager", {Role.MANAGER}),
        ("receiver-and-manager", {Role.OTHER}),
        ("judicial-factor", {Role.OTHER}),
        ("person-authorised-to-represent", {Role.OTHER}),
        ("something-new", {Role.OTHER}),
        ("", {Role.OTHER}),
    ],
)
def test_officer_roles(officer_role, roles):
    record = parse(ch_raw(officers=with_items("officers_t0.json", [officer(officer_role=officer_role)])))
    assert record.people is not None
    assert [person.roles for person in record.people] == [roles]
    assert record.people[0].role_text == officer_role


def test_officer_without_a_name_is_a_parse_error():
    with pytest.raises(ParseError, match=r"officers\[0\] has no name"):
        parse(ch_raw(officers=with_items("officers_t0.json", [officer(name="")])))


def test_a_list_holding_fewer_items_than_it_counts_is_refused():
    document = fixture_document("officers_t0.json")
    document["items"] = document["items"][:2]
    with pytest.raises(ParseError, match="2 of its 4"):
        parse(ch_raw(officers=json.dumps(document)))


# -- mapping: PSCs ---------------------------------------------------------------------------------


def test_active_pscs_become_controllers():
    record = parse(ch_raw())

    assert record.controllers is not None
    controllers = {controller.key: controller for controller in record.controllers}
    assert set(controllers) == {"id:ab12cd34ef56gh78ij90kl12mn3", "id:zy98xw76vu54ts32rq10po98nm7"}
    macleod = controllers["id:ab12cd34ef56gh78ij90kl12mn3"]
    assert macleod.name == "Ms Fiona Jane Macleod"
    assert macleod.kind is HolderKind.PERSON
    assert macleod.stake == Stake(Decimal(50), Decimal(75))
    assert macleod.natures == {
        "ownership-of-shares-50-to-75-percent",
        "voting-rights-50-to-75-percent",
        "right-to-appoint-and-remove-directors",
    }
    clyde = controllers["id:zy98xw76vu54ts32rq10po98nm7"]
    assert (clyde.name, clyde.kind) == ("CLYDE CAPITAL PARTNERS LIMITED", HolderKind.ENTITY)
    assert clyde.stake == Stake(Decimal(25), Decimal(50))


def test_ceased_pscs_are_excluded_by_either_marker():
    items = [
        psc_item(name="Gone By Date", ceased_on="2024-01-01", links={"self": "/x/individual/A1"}),
        psc_item(name="Gone By Flag", ceased=True, links={"self": "/x/individual/A2"}),
        psc_item(name="Still Here", links={"self": "/x/individual/A3"}),
    ]
    record = parse(ch_raw(psc=with_items("psc.json", items)))
    assert record.controllers is not None
    assert [controller.name for controller in record.controllers] == ["Still Here"]


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("individual-person-with-significant-control", {}, HolderKind.PERSON),
        ("individual-beneficial-owner", {}, HolderKind.PERSON),
        ("super-secure-person-with-significant-control", {}, HolderKind.PERSON),
        ("corporate-entity-person-with-significant-control", {}, HolderKind.ENTITY),
        ("corporate-entity-beneficial-owner", {}, HolderKind.ENTITY),
        ("legal-person-person-with-significant-control", {}, HolderKind.ENTITY),
        ("something-new", {"identification": {"registration_number": "1"}}, HolderKind.ENTITY),
        ("something-new", {}, HolderKind.PERSON),
    ],
)
def test_psc_kinds(kind, extra, expected):
    record = parse(ch_raw(psc=with_items("psc.json", [psc_item(kind=kind, **extra)])))
    assert record.controllers is not None
    assert record.controllers[0].kind is expected


def test_super_secure_psc_without_a_name_uses_its_description():
    item = psc_item(kind="super-secure-person-with-significant-control", name=None)
    item["description"] = "super-secure-persons-with-significant-control"
    record = parse(ch_raw(psc=with_items("psc.json", [item])))
    assert record.controllers is not None
    assert record.controllers[0].name == "super-secure-persons-with-significant-control"


@pytest.mark.parametrize(
    ("natures", "stake"),
    [
        (["ownership-of-shares-25-to-50-percent"], (25, 50)),
        (["voting-rights-75-to-100-percent", "ownership-of-shares-50-to-75-percent"], (50, 75)),
        (["voting-rights-50-to-75-percent", "right-to-appoint-and-remove-directors"], (50, 75)),
        (["ownership-of-shares-25-to-50-percent-as-trust"], (25, 50)),
        (["ownership-of-shares-25-to-50-percent", "ownership-of-shares-50-to-75-percent-as-firm"], (50, 75)),
        (["right-to-share-surplus-assets-75-to-100-percent-limited-liability-partnership"], (75, 100)),
        (["ownership-of-shares-more-than-25-percent-registered-overseas-entity"], (25, 100)),
        (["significant-influence-or-control"], None),
        ([], None),
    ],
)
def test_psc_stake_is_the_ownership_band(natures, stake):
    record = parse(ch_raw(psc=with_items("psc.json", [psc_item(natures_of_control=natures)])))
    assert record.controllers is not None
    expected = None if stake is None else Stake(Decimal(stake[0]), Decimal(stake[1]))
    assert record.controllers[0].stake == expected


def test_psc_key_falls_back_to_name_and_birth_month():
    item = psc_item(links=None, date_of_birth={"month": 1, "year": 1971})
    record = parse(ch_raw(psc=with_items("psc.json", [item])))
    assert record.controllers is not None
    assert record.controllers[0].key == "nb:ms jane doe|1971-01"


def test_no_psc_data_means_no_controllers():
    record = parse(ch_raw(psc=json.dumps(NO_PSC_DOCUMENT)))
    assert record.controllers == ()


def test_missing_lists_leave_their_sections_and_the_log_unknown():
    raw = ch_raw()
    del raw["officers"]
    record = parse(raw)
    assert record.people is None
    assert record.controllers is not None
    assert record.change_log is None

    raw = ch_raw()
    del raw["psc"]
    record = parse(raw)
    assert record.controllers is None
    assert record.people is not None
    assert record.change_log is None


def test_missing_profile_is_a_parse_error():
    with pytest.raises(ParseError, match="profile"):
        parse({"officers": fixture_text("officers_t0.json"), "psc": fixture_text("psc.json")})


# -- mapping: change log and diff ------------------------------------------------------------------


def log_rows(record: RegistryRecord) -> set[tuple[str, frozenset[Category], date | None]]:
    assert record.change_log is not None
    return {(entry.item, entry.categories, entry.date) for entry in record.change_log}


def test_change_log_dates_every_appointment_resignation_and_psc_change():
    director, manager, controller = (
        frozenset({Category.DIRECTOR}),
        frozenset({Category.MANAGER}),
        frozenset({Category.CONTROLLER}),
    )
    founding = frozenset()
    assert log_rows(parse(ch_raw())) == {
        ("appointed MACLEOD, Fiona Jane (director)", founding, date(2018, 11, 2)),
        ("appointed OKAFOR, Daniel Chukwuemeka (director)", director, date(2021, 3, 15)),
        ("appointed GRANITE SECRETARIAL SERVICES LIMITED (corporate-secretary)", manager, date(2019, 6, 1)),
        ("appointed STEWART, Ewan Robert (director)", founding, date(2018, 11, 2)),
        ("resigned STEWART, Ewan Robert (director)", director, date(2021, 3, 15)),
        ("notified Ms Fiona Jane Macleod (PSC)", founding, date(2018, 11, 2)),
        ("notified CLYDE CAPITAL PARTNERS LIMITED (PSC)", controller, date(2021, 3, 15)),
        ("notified Mr Ewan Robert Stewart (PSC)", founding, date(2018, 11, 2)),
        ("ceased Mr Ewan Robert Stewart (PSC)", controller, date(2021, 3, 15)),
    }


def test_change_log_rows_name_the_person_before_or_after():
    record = parse(ch_raw())
    assert record.change_log is not None
    rows = {entry.item: entry for entry in record.change_log}
    assert rows["resigned STEWART, Ewan Robert (director)"] == ChangeLogEntry(
        categories=frozenset({Category.DIRECTOR}),
        item="resigned STEWART, Ewan Robert (director)",
        before="STEWART, Ewan Robert",
        date=date(2021, 3, 15),
    )
    assert rows["appointed OKAFOR, Daniel Chukwuemeka (director)"].after == "OKAFOR, Daniel Chukwuemeka"


def test_without_an_incorporation_date_every_appointment_counts():
    profile = fixture_document("company_profile.json")
    del profile["date_of_creation"]
    rows = log_rows(parse(ch_raw(profile=json.dumps(profile))))
    assert (
        "appointed MACLEOD, Fiona Jane (director)",
        frozenset({Category.DIRECTOR}),
        date(2018, 11, 2),
    ) in rows


@pytest.mark.parametrize(
    ("officer_role", "category"),
    [
        ("llp-member", Category.SHAREHOLDER),
        ("member-of-a-supervisory-organ", Category.SUPERVISOR),
        ("cic-manager", Category.MANAGER),
        ("judicial-factor", Category.MANAGER),
    ],
)
def test_change_log_categories_follow_the_role(officer_role, category):
    items = [officer(officer_role=officer_role, resigned_on="2024-02-01")]
    rows = log_rows(parse(ch_raw(officers=with_items("officers_t0.json", items))))
    assert (f"resigned DOE, Jane ({officer_role})", frozenset({category}), date(2024, 2, 1)) in rows


def test_undated_pre_1992_appointment_has_no_appointment_row():
    items = [officer(appointed_on=None, appointed_before="1991-12-31", is_pre_1992_appointment=True)]
    record = parse(ch_raw(officers=with_items("officers_t0.json", items)))
    assert record.change_log is not None
    assert not [entry for entry in record.change_log if entry.item.startswith("appointed DOE")]
    assert record.people is not None
    assert record.people[0].appointed_on is None


def test_diff_names_exactly_the_planted_officer_changes():
    before, after = parse(ch_raw("officers_t0.json")), parse(ch_raw("officers_t1.json"))

    changes = diff(before, after)

    # director resigned, new director appointed, secretary replaced (PROVENANCE.md)
    assert changes == [
        Change(
            Category.DIRECTOR,
            Action.ADDED,
            "CHEN, Li Wei",
            None,
            "CHEN, Li Wei (director)",
            date(2026, 2, 27),
        ),
        Change(
            Category.DIRECTOR,
            Action.REMOVED,
            "OKAFOR, Daniel Chukwuemeka",
            "OKAFOR, Daniel Chukwuemeka (director)",
            None,
            date(2026, 2, 27),
        ),
        Change(
            Category.MANAGER,
            Action.REMOVED,
            "GRANITE SECRETARIAL SERVICES LIMITED",
            "GRANITE SECRETARIAL SERVICES LIMITED (corporate-secretary)",
            None,
            date(2026, 3, 10),
        ),
        Change(
            Category.MANAGER,
            Action.ADDED,
            "MACLEOD, Fiona Jane",
            None,
            "MACLEOD, Fiona Jane (director / secretary)",
            date(2026, 3, 10),
        ),
    ]


def test_t1_keeps_the_director_who_also_became_secretary():
    record = parse(ch_raw("officers_t1.json"))
    assert record.people is not None
    macleod = [person for person in record.people if person.key == MACLEOD]
    assert {person.role_text for person in macleod} == {"director", "secretary"}
    assert {person.key for person in record.people} == {MACLEOD, CHEN}


def test_same_fetch_twice_has_no_changes():
    assert diff(parse(ch_raw("officers_t1.json")), parse(ch_raw("officers_t1.json"))) == []


# -- bad payloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", CompaniesHouseSource.endpoints)
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", ParseError),
        ("  \n", ParseError),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", ParseError),
        ('<html><body><div class="g-recaptcha">Are you a robot?</div></body></html>', BlockedError),
        ('{"company_name": "NORTHWIND", "items": [', ParseError),
        ("null", ParseError),
        ("[]", ParseError),
        ("42", ParseError),
        ('{"items": NaN}', ParseError),
        ("[" * 100_000, ParseError),
    ],
)
def test_bad_payloads_raise_parse_or_blocked_errors(endpoint, text, error):
    with pytest.raises(error):
        parse(ch_raw(**{endpoint: text}))


# -- property tests: parse returns a record or raises a SourceError, nothing else -------------------


@pytest.mark.parametrize("endpoint", CompaniesHouseSource.endpoints)
@given(document=json_values)
def test_parse_arbitrary_json_per_endpoint(endpoint, document):
    only_records_or_source_errors(lambda: parse(ch_raw(**{endpoint: json.dumps(document)})))


@pytest.mark.parametrize("endpoint", CompaniesHouseSource.endpoints)
@given(text=st.text())
def test_parse_arbitrary_text_per_endpoint(endpoint, text):
    only_records_or_source_errors(lambda: parse(ch_raw(**{endpoint: text})))


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [("profile", "company_profile.json"), ("officers", "officers_t1.json"), ("psc", "psc.json")],
)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_mutated_fixtures_per_endpoint(endpoint, name, data):
    text = json.dumps(mutate(fixture_document(name), data))
    only_records_or_source_errors(lambda: parse(ch_raw("officers_t1.json", **{endpoint: text})))


# -- options and registration ----------------------------------------------------------------------


def test_registered_under_its_type_name():
    assert source_class("companies_house") is CompaniesHouseSource


def test_options_defaults_and_key_secrecy():
    options = CompaniesHouseOptions(type="companies_house", api_key=API_KEY)
    assert options.base_url == CH_URL
    assert options.rate.count == 600
    assert options.rate.per.total_seconds() == 300
    assert options.items_per_page == 100
    assert API_KEY not in repr(options)


@pytest.mark.parametrize(
    "fields",
    [{}, {"api_key": ""}, {"api_key": "k", "items_per_page": 0}, {"api_key": "k", "items_per_page": 101}],
)
def test_invalid_options_are_refused(fields):
    with pytest.raises(ValidationError):
        CompaniesHouseOptions(type="companies_house", **fields)


def test_company_numbers_are_normalised():
    source = CompaniesHouseSource("uk", CompaniesHouseOptions(type="companies_house", api_key=API_KEY))
    assert source.normalise_id(" sc612345 ") == NUMBER
    assert source.normalise_id("445790") == "00445790"
    with pytest.raises(ValueError):
        source.normalise_id("XX123456")


# -- fetching (respx) ------------------------------------------------------------------------------


def make_source(**fields: object) -> CompaniesHouseSource:
    """The registry card alone unless ``signals`` says otherwise (the signals have their own tests)."""
    options = {
        "type": "companies_house",
        "api_key": API_KEY,
        "timeout": "2s",
        "retries": 2,
        "signals": [],
        **fields,
    }
    return CompaniesHouseSource("uk", CompaniesHouseOptions(**options), timing=QUICK_RETRIES)


# Retries back off for about a millisecond instead of half a second.
QUICK_RETRIES = Timing(backoff_base=0.001)


@pytest.fixture
async def source():
    source = make_source()
    yield source
    await source.aclose()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(using=TRANSPORT, base_url=CH_URL, assert_all_called=False) as mock:
        yield mock


def serve_fixtures(api: respx.MockRouter, officers: str = "officers_t1.json") -> dict[str, respx.Route]:
    return {
        "profile": api.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json")),
        "officers": api.get(OFFICERS_PATH).respond(200, text=fixture_text(officers)),
        "psc": api.get(PSC_PATH).respond(200, text=fixture_text("psc.json")),
    }


def start_indexes(route: respx.Route) -> list[str]:
    return [call.request.url.params["start_index"] for call in route.calls]


def paged(
    name: str, page_size: int, *, total: int | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A side effect serving a fixture list in pages, honouring ``start_index`` and ``items_per_page``."""
    document = fixture_document(name)

    def respond(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["start_index"])
        size = min(page_size, int(request.url.params["items_per_page"]))
        page = {
            **document,
            "items": document["items"][start : start + size],
            "start_index": start,
            "items_per_page": size,
            "total_results": total if total is not None else len(document["items"]),
        }
        return httpx.Response(200, json=page)

    return respond


async def test_fetch_success_sends_basic_auth_and_keeps_single_pages_verbatim(source, api):
    routes = serve_fixtures(api)

    fetched = await source.fetch("sc 612345")

    assert fetched.record.name == "NORTHWIND HARBOUR LOGISTICS LIMITED"
    assert fetched.record.registry_id == NUMBER
    assert fetched.record.people is not None
    assert {person.key for person in fetched.record.people} == {MACLEOD, CHEN}
    assert fetched.raw == {
        "profile": fixture_text("company_profile.json"),
        "officers": fixture_text("officers_t1.json"),
        "psc": fixture_text("psc.json"),
    }
    expected_auth = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
    for route in routes.values():
        request = route.calls.last.request
        assert request.headers["Authorization"] == expected_auth
        assert request.headers["Accept"] == "application/json"
    for name in ("officers", "psc"):
        params = routes[name].calls.last.request.url.params
        assert (params["items_per_page"], params["start_index"]) == ("100", "0")


async def test_fetch_pages_through_officers_and_merges_them_into_one_replayable_document(api):
    source = make_source(items_per_page=2)
    api.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json"))
    officers = api.get(OFFICERS_PATH).mock(side_effect=paged("officers_t1.json", 2))
    psc = api.get(PSC_PATH).mock(side_effect=paged("psc.json", 2))
    try:
        fetched = await source.fetch(NUMBER)
    finally:
        await source.aclose()

    assert start_indexes(officers) == ["0", "2", "4"]
    assert {call.request.url.params["items_per_page"] for call in officers.calls} == {"2"}
    assert start_indexes(psc) == ["0", "2"]
    merged = json.loads(fetched.raw["officers"])
    assert [item["name"] for item in merged["items"]] == [
        item["name"] for item in fixture_document("officers_t1.json")["items"]
    ]
    assert merged["total_results"] == 6
    assert len(json.loads(fetched.raw["psc"])["items"]) == 3
    assert parse(fetched.raw) == fetched.record
    assert fetched.record == parse(ch_raw("officers_t1.json"))


async def test_fetch_follows_a_server_that_caps_the_page_size(source, api):
    api.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json"))
    officers = api.get(OFFICERS_PATH).mock(side_effect=paged("officers_t1.json", 4))
    api.get(PSC_PATH).respond(200, text=fixture_text("psc.json"))

    fetched = await source.fetch(NUMBER)

    assert start_indexes(officers) == ["0", "4"]
    assert len(json.loads(fetched.raw["officers"])["items"]) == 6


async def test_fetch_refuses_an_empty_page_before_the_total(source, api):
    api.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json"))
    api.get(OFFICERS_PATH).mock(side_effect=paged("officers_t1.json", 4, total=9))
    api.get(PSC_PATH).respond(200, text=fixture_text("psc.json"))

    with pytest.raises(ParseError, match="officers page 3 is empty after 6 of 9") as raised:
        await source.fetch(NUMBER)
    assert (raised.value.source, raised.value.registry_id) == ("uk", NUMBER)


async def test_fetch_retries_later_when_the_list_changes_while_paging(api):
    source = make_source(items_per_page=2)
    document = fixture_document("officers_t1.json")
    pages = iter([{**document, "items": document["items"][:2]}, {**document, "total_results": 7}])
    api.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json"))
    api.get(OFFICERS_PATH).mock(side_effect=lambda request: httpx.Response(200, json=next(pages)))
    try:
        with pytest.raises(TransientError, match="changed while being read"):
            await source.fetch(NUMBER)
    finally:
        await source.aclose()


async def test_fetch_caps_the_number_of_pages(monkeypatch, api):
    monkeypatch.setattr(companies_house, "MAX_PAGES", 2)
    source = make_source(items_per_page=2)
    api.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json"))
    officers = api.get(OFFICERS_PATH).mock(side_effect=paged("officers_t1.json", 2))
    try:
        with pytest.raises(ParseError, match="more than 2 pages"):
            await source.fetch(NUMBER)
    finally:
        await source.aclose()
    assert officers.call_count == 2


async def test_fetch_psc_404_means_no_controllers(source, api):
    serve_fixtures(api)
    api.get(PSC_PATH).respond(
        404, json={"errors": [{"error": "company-psc-not-found", "type": "ch:service"}]}
    )

    fetched = await source.fetch(NUMBER)

    assert fetched.record.controllers == ()
    assert json.loads(fetched.raw["psc"]) == NO_PSC_DOCUMENT
    assert parse(fetched.raw) == fetched.record


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (
            "<html><title>Access denied</title>Complete the captcha</html>",
            "text/html",
            BlockedError,
            "captcha",
        ),
        ("", "text/html", TransientError, "empty body"),
        ("<html><body>Not Found</body></html>", "text/html", ParseError, "HTML where JSON"),
        ("{}", "application/json", ParseError, "company-psc-not-found"),
        ('{"errors": [{"error": "company-profile-not-found"}]}', "application/json", ParseError, "psc"),
        ('{"errors": "company-psc-not-found"}', "application/json", ParseError, "company-psc-not-found"),
    ],
    ids=["captcha", "empty", "html", "empty-object", "other-error", "malformed-errors"],
)
async def test_fetch_psc_404_without_the_registry_answer_is_a_typed_failure(
    source, api, body, content_type, error, message
):
    """Only Companies House's own "company-psc-not-found" means no controllers; a bare 404 is no fact."""
    serve_fixtures(api)
    api.get(PSC_PATH).respond(404, text=body, headers={"Content-Type": content_type})
    with pytest.raises(error, match=message) as raised:
        await source.fetch(NUMBER)
    assert type(raised.value) is error
    assert (raised.value.source, raised.value.registry_id) == ("uk", NUMBER)


async def test_fetch_psc_404_on_a_later_page_is_a_parse_error(api):
    source = make_source(items_per_page=2)
    first = {**fixture_document("psc.json"), "items": fixture_document("psc.json")["items"][:2]}
    serve_fixtures(api)
    api.get(PSC_PATH).mock(side_effect=[httpx.Response(200, json=first), httpx.Response(404, json={})])
    try:
        with pytest.raises(ParseError, match="psc page 2: HTTP 404"):
            await source.fetch(NUMBER)
    finally:
        await source.aclose()


async def test_fetch_unknown_company_is_not_found(source, api):
    routes = serve_fixtures(api)
    routes["profile"].respond(404, text=fixture_text("error_404_company_not_found.json"))

    with pytest.raises(NotFoundError, match=NUMBER) as raised:
        await source.fetch(NUMBER)

    assert raised.value.registry_id == NUMBER
    assert not routes["officers"].called


async def test_fetch_officers_404_for_a_known_company_is_a_parse_error(source, api):
    routes = serve_fixtures(api)
    routes["officers"].respond(404, json={})
    with pytest.raises(ParseError, match="officers page 1: HTTP 404"):
        await source.fetch(NUMBER)


async def test_fetch_invalid_company_number_asks_nothing(source, api):
    routes = serve_fixtures(api)
    with pytest.raises(NotFoundError, match="invalid identifier"):
        await source.fetch("XX12")
    assert not routes["profile"].called


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("endpoint", ["profile", "officers", "psc"])
async def test_fetch_refused_key_is_an_auth_error(source, api, endpoint, status):
    routes = serve_fixtures(api)
    routes[endpoint].respond(status, json={"error": "Invalid Authorization", "type": "ch:service"})
    with pytest.raises(AuthError):
        await source.fetch(NUMBER)


async def test_fetch_429_with_retry_after_is_retried(source, api):
    routes = serve_fixtures(api)
    routes["officers"].mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.01"}),
            httpx.Response(200, text=fixture_text("officers_t1.json")),
        ]
    )

    fetched = await source.fetch(NUMBER)

    assert routes["officers"].call_count == 2
    assert fetched.record.people is not None


async def test_fetch_429_forever_is_rate_limited(source, api):
    routes = serve_fixtures(api)
    routes["profile"].respond(429, headers={"Retry-After": "0"})
    with pytest.raises(RateLimitedError):
        await source.fetch(NUMBER)
    assert routes["profile"].call_count == 3


async def test_fetch_500_then_success_is_retried(source, api):
    routes = serve_fixtures(api)
    routes["profile"].mock(
        side_effect=[httpx.Response(500), httpx.Response(200, text=fixture_text("company_profile.json"))]
    )
    fetched = await source.fetch(NUMBER)
    assert routes["profile"].call_count == 2
    assert fetched.record.name == "NORTHWIND HARBOUR LOGISTICS LIMITED"


async def test_fetch_500_forever_is_transient(source, api):
    routes = serve_fixtures(api)
    routes["psc"].respond(503)
    with pytest.raises(TransientError):
        await source.fetch(NUMBER)
    assert routes["psc"].call_count == 3


async def test_fetch_network_failure_is_transient(source, api):
    routes = serve_fixtures(api)
    routes["officers"].mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(TransientError):
        await source.fetch(NUMBER)


@pytest.mark.parametrize("endpoint", ["profile", "officers", "psc"])
@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", ParseError),
        ("<html><body>Service temporarily unavailable</body></html>", ParseError),
        ('<html><body><div class="cf-chl-widget">Checking you are human</div></body></html>', BlockedError),
        ('{"total_results": 4, "items": [{"name": "MACLEOD', ParseError),
        ('{"errors": [{"error": "service-unavailable", "type": "ch:service"}]}', ParseError),
    ],
)
async def test_fetch_bad_200_bodies_are_never_records(source, api, endpoint, body, error):
    routes = serve_fixtures(api)
    routes[endpoint].respond(200, text=body)
    with pytest.raises(error):
        await source.fetch(NUMBER)


async def test_fetch_list_without_a_total_is_a_parse_error(source, api):
    routes = serve_fixtures(api)
    routes["officers"].respond(200, json={"items": []})
    with pytest.raises(ParseError, match="total_results"):
        await source.fetch(NUMBER)


# -- integration: a real HTTP server on 127.0.0.1 ---------------------------------------------------


class CompaniesHouseStub(QuietHandler):
    """Serves the fixtures by path, paging lists by ``start_index`` and ``items_per_page`` as the API does."""

    routes = {
        PROFILE_PATH: "company_profile.json",
        OFFICERS_PATH: "officers_t1.json",
        PSC_PATH: "psc.json",
    }
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.seen.append((url.path, self.headers.get("Authorization", "")))
        name = self.routes.get(url.path)
        if name is None:
            self._send(404, fixture_text("error_404_company_not_found.json"))
            return
        document = fixture_document(name)
        if "items" in document:
            query = parse_qs(url.query)
            start = int(query.get("start_index", ["0"])[0])
            size = int(query.get("items_per_page", ["35"])[0])
            document = {
                **document,
                "items": document["items"][start : start + size],
                "start_index": start,
                "items_per_page": size,
            }
        self._send(200, json.dumps(document))

    def _send(self, status: int, body: str) -> None:
        self.send_body(status, body.encode("utf-8"), "application/json")


@pytest.fixture
def stub_server() -> Iterator[str]:
    CompaniesHouseStub.seen = []
    with serve(CompaniesHouseStub) as url:
        yield url


async def test_fetch_against_a_real_server(stub_server):
    source = make_source(base_url=stub_server, items_per_page=4)
    try:
        fetched = await source.fetch(NUMBER)
        with pytest.raises(NotFoundError):
            await source.fetch("SC000001")
    finally:
        await source.aclose()

    record = fetched.record
    assert record == parse(ch_raw("officers_t1.json"))
    assert record.name == "NORTHWIND HARBOUR LOGISTICS LIMITED"
    assert record.people is not None
    assert {(person.key, person.role_text) for person in record.people} == {
        (MACLEOD, "director"),
        (MACLEOD, "secretary"),
        (CHEN, "director"),
    }
    assert record.controllers is not None and len(record.controllers) == 2
    assert [path for path, _ in CompaniesHouseStub.seen] == [
        PROFILE_PATH,
        OFFICERS_PATH,
        OFFICERS_PATH,
        PSC_PATH,
        "/company/SC000001",
    ]
    expected_auth = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert {auth for _, auth in CompaniesHouseStub.seen} == {expected_auth}
