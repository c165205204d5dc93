"""Companies House risk signals: charges, insolvency cases, PSC statements (separate requests, chosen
by ``[sources.NAME] signals``) and the profile's flags, mapped from real-shaped answers; every failure
is a failed fetch, never "none"."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings

from sources.companies_house import CompaniesHouseOptions, CompaniesHouseSource
from sources.companies_house_risk import NO_CASES_DOCUMENT, NO_CHARGES_DOCUMENT, NO_STATEMENTS_DOCUMENT
from tests.fuzzing import json_values, only_records_or_source_errors
from tests.mocking import TRANSPORT
from tests.test_source_companies_house import (
    API_KEY,
    CH_URL,
    NUMBER,
    OFFICERS_PATH,
    PROFILE_PATH,
    PSC_PATH,
    QUICK_RETRIES,
    ch_raw,
    fixture_document,
    fixture_text,
    parse,
    profile_with,
)
from watcher.diff import diff
from watcher.errors import ParseError, TransientError
from watcher.record import Action, Category, ListingState, Signal
from watcher.rules import change_severity, vanished_sections
from watcher.vocabulary import Severity

CHARGES_PATH = f"/company/{NUMBER}/charges"
INSOLVENCY_PATH = f"/company/{NUMBER}/insolvency"
STATEMENTS_PATH = f"/company/{NUMBER}/persons-with-significant-control-statements"
SIGNALS = ["charges", "insolvency", "psc_statements"]


def risk_raw(**texts: str) -> dict[str, str]:
    """The registry card and every signal's answer, with any endpoint's text replaced by ``texts``."""
    raw = ch_raw(
        charges=fixture_text("charges.json"),
        insolvency=fixture_text("insolvency.json"),
        psc_statements=fixture_text("psc_statements.json"),
    )
    raw.update(texts)
    return raw


def charges_with(items: list[dict], **fields: object) -> str:
    return json.dumps(
        {**fixture_document("charges.json"), "items": items, "total_count": len(items), **fields}
    )


def charge_item(**fields: object) -> dict:
    return {**fixture_document("charges.json")["items"][0], **fields}


def by_key(listings) -> dict:
    return {listing.key: listing for listing in listings}


# -- mapping: charges -------------------------------------------------------------------------------


def test_charges_are_listings_keyed_by_charge_code_in_force_until_satisfied():
    record = parse(risk_raw())

    assert record.charges is not None
    charges = by_key(record.charges)
    assert set(charges) == {"SC6123450001", "SC6123450002"}
    bank = charges["SC6123450002"]
    assert bank.state is ListingState.ACTIVE
    assert (bank.case_number, bank.reason, bank.pledgee) == (
        "SC6123450002",
        "A registered charge",
        "HSBC UK Bank PLC",
    )
    assert bank.listed_on == date(2021, 6, 1) and bank.removed_on is None
    old = charges["SC6123450001"]
    assert old.state is ListingState.LIFTED
    assert (old.removed_on, old.removal_reason) == (date(2023, 8, 17), "fully-satisfied")


def test_a_part_satisfied_charge_still_secures_a_debt():
    record = parse(risk_raw(charges=charges_with([charge_item(status="part-satisfied")])))

    assert record.charges is not None
    [charge] = record.charges
    assert (charge.state, charge.removal_reason, charge.removed_on) == (
        ListingState.ACTIVE,
        "part-satisfied",
        None,
    )


def test_every_person_entitled_is_named():
    item = charge_item(
        persons_entitled=[{"name": "Forth Valley Trade Finance Limited"}, {"name": "Kelpie Bank"}]
    )
    [charge] = parse(risk_raw(charges=charges_with([item]))).charges or ()

    assert charge.pledgee == "Forth Valley Trade Finance Limited; Kelpie Bank"


def test_a_charge_without_a_code_is_keyed_by_its_id_then_its_number():
    no_code = charge_item(charge_code=None)
    bare = {key: value for key, value in no_code.items() if key != "links"}
    record = parse(risk_raw(charges=charges_with([no_code, {**bare, "charge_number": 7}])))

    assert set(by_key(record.charges or ())) == {"id:Tq6Wn2Ys8Pa4Kd1Lf9Gh3Jx5Mb7", "number:7"}


@pytest.mark.parametrize(
    "text",
    [
        charges_with([charge_item(status="released")]),  # not a charge status: never guessed
        charges_with([charge_item(charge_code=None, links=None, charge_number=None)]),  # no identity
        json.dumps({"items": [charge_item()]}),  # no total: a capped list would look complete
        charges_with([charge_item()], total_count=3),  # fewer items than it counts
        json.dumps({"errors": [{"error": "company-charges-not-found", "type": "ch:service"}]}),
        json.dumps({"total_count": 1}),
        "",
        '{"total_count": 2, "items": [',
    ],
)
def test_bad_charge_lists_are_parse_errors(text):
    with pytest.raises(ParseError):
        parse(risk_raw(charges=text))


# -- mapping: insolvency ----------------------------------------------------------------------------


def test_an_insolvency_case_is_a_bankruptcy_listing_in_force():
    record = parse(risk_raw())

    assert record.bankruptcies is not None
    [case] = record.bankruptcies
    assert (case.key, case.case_number, case.reason) == ("1", "1", "creditors-voluntary-liquidation")
    assert case.state is ListingState.ACTIVE
    assert case.listed_on == date(2026, 11, 24)
    assert case.authority == "Alasdair Fergus Munro"


def test_a_case_with_an_end_date_is_out_of_force_and_former_practitioners_are_not_named():
    document = fixture_document("insolvency.json")
    case = document["cases"][0]
    case["number"] = 2  # an integer in some clients' models
    case["dates"].append({"type": "concluded-winding-up-on", "date": "2027-05-02"})
    case["practitioners"].append({"name": "Morag Sinclair", "ceased_to_act_on": "2026-12-01"})
    [listing] = parse(risk_raw(insolvency=json.dumps(document))).bankruptcies or ()

    assert (listing.key, listing.state) == ("2", ListingState.REMOVED)
    assert (listing.removed_on, listing.removal_reason) == (date(2027, 5, 2), "concluded-winding-up-on")
    assert listing.authority == "Alasdair Fergus Munro"


def test_no_cases_document_is_an_empty_list():
    assert parse(risk_raw(insolvency=json.dumps(NO_CASES_DOCUMENT))).bankruptcies == ()


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"etag": "x"}),  # no cases at all: not "none"
        json.dumps({"cases": [{"number": "1"}]}),  # a case without a type
        json.dumps({"errors": [{"error": "company-insolvencies-not-found"}]}),
        "",
        "<html>Service unavailable</html>",
    ],
)
def test_bad_insolvency_answers_are_parse_errors(text):
    with pytest.raises(ParseError):
        parse(risk_raw(insolvency=text))


# -- mapping: PSC statements ------------------------------------------------------------------------


def test_psc_statements_are_listings_in_force_until_ceased():
    record = parse(risk_raw())

    assert record.psc_statements is not None
    statements = by_key(record.psc_statements)
    assert set(statements) == {"Vb7Nm3Qa9Zx1", "Rk2Lp8Wd4Ty6"}
    assert statements["Vb7Nm3Qa9Zx1"].state is ListingState.ACTIVE
    assert statements["Vb7Nm3Qa9Zx1"].reason == "psc-details-not-confirmed"
    ceased = statements["Rk2Lp8Wd4Ty6"]
    assert (ceased.state, ceased.removed_on) == (ListingState.LIFTED, date(2019, 1, 15))


def test_psc_statement_lists_are_complete_or_refused():
    document = fixture_document("psc_statements.json")
    with pytest.raises(ParseError):
        parse(risk_raw(psc_statements=json.dumps({**document, "total_results": 3})))
    with pytest.raises(ParseError):
        parse(risk_raw(psc_statements=json.dumps({**document, "items": [{"notified_on": "2026-01-01"}]})))
    assert parse(risk_raw(psc_statements=json.dumps(NO_STATEMENTS_DOCUMENT))).psc_statements == ()


# -- mapping: the profile's flags -------------------------------------------------------------------


def test_profile_flags_are_known_and_clear_on_a_company_in_good_standing():
    record = parse(ch_raw())

    assert record.filings_overdue == () and record.registered_office_issues == ()


def test_overdue_filings_and_office_issues_are_listings_in_force():
    profile = fixture_document("company_profile.json")
    profile["accounts"]["overdue"] = True
    profile["confirmation_statement"]["overdue"] = True
    profile["registered_office_is_in_dispute"] = True
    profile["undeliverable_registered_office_address"] = True
    record = parse(ch_raw(profile=json.dumps(profile)))

    overdue = by_key(record.filings_overdue or ())
    assert set(overdue) == {"accounts", "confirmation_statement"}
    assert overdue["accounts"].listed_on == date(2026, 9, 30)  # the due date missed
    assert overdue["confirmation_statement"].reason == "confirmation statement overdue"
    assert set(by_key(record.registered_office_issues or ())) == {
        "registered_office_is_in_dispute",
        "undeliverable_registered_office_address",
    }
    assert all(listing.state is ListingState.ACTIVE for listing in record.filings_overdue or ())


def test_a_profile_without_the_flags_leaves_them_unknown():
    profile = fixture_document("company_profile.json")
    for field in ("accounts", "confirmation_statement", "registered_office_is_in_dispute"):
        del profile[field]
    del profile["undeliverable_registered_office_address"]
    record = parse(ch_raw(profile=json.dumps(profile)))

    assert record.filings_overdue is None and record.registered_office_issues is None


@pytest.mark.parametrize(
    "fields",
    [{"registered_office_is_in_dispute": "yes"}, {"accounts": {"overdue": "true"}}, {"accounts": []}],
)
def test_flags_that_are_not_booleans_are_parse_errors(fields):
    with pytest.raises(ParseError):
        parse(ch_raw(profile=profile_with(**fields)))


def test_signals_not_fetched_leave_their_sections_unknown():
    record = parse(ch_raw())

    assert (record.charges, record.bankruptcies, record.psc_statements) == (None, None, None)


# -- what the changes mean --------------------------------------------------------------------------


def test_a_new_charge_is_high_and_a_satisfied_one_info():
    before = parse(risk_raw())
    after = parse(risk_raw(charges=fixture_text("charges_t1.json")))

    [new] = [change for change in diff(before, after) if change.category is Category.CHARGE]
    assert (new.action, new.subject, new.raises_listing) == (Action.ADDED, "SC6123450003", True)
    assert change_severity(new) is Severity.HIGH
    assert "Forth Valley Trade Finance Limited" in (new.after or "")

    satisfied = fixture_document("charges_t1.json")
    satisfied["items"][1].update(status="fully-satisfied", satisfied_on="2027-01-05")
    later = parse(risk_raw(charges=json.dumps(satisfied)))
    [lifted] = [change for change in diff(after, later) if change.category is Category.CHARGE]
    assert (lifted.action, lifted.subject, lifted.effective_date) == (
        Action.REMOVED,
        "SC6123450002",
        date(2027, 1, 5),
    )
    assert change_severity(lifted) is Severity.INFO


def test_an_insolvency_case_is_critical_and_a_new_psc_statement_a_warning():
    before = parse(
        risk_raw(insolvency=json.dumps(NO_CASES_DOCUMENT), psc_statements=json.dumps(NO_STATEMENTS_DOCUMENT))
    )
    after = parse(risk_raw())

    severities = {(c.category, c.action): change_severity(c) for c in diff(before, after)}
    assert severities == {
        (Category.BANKRUPTCY, Action.ADDED): Severity.CRITICAL,
        (Category.PSC_STATEMENT, Action.ADDED): Severity.WARNING,
    }


def test_flags_coming_into_force_warn_and_clearing_is_info_without_waiting_for_confirmation():
    clear = parse(ch_raw())
    profile = fixture_document("company_profile.json")
    profile["accounts"]["overdue"] = True
    profile["undeliverable_registered_office_address"] = True
    flagged = parse(ch_raw(profile=json.dumps(profile)))

    raised = diff(clear, flagged)
    assert {(c.category, c.action, change_severity(c)) for c in raised} == {
        (Category.FILING_OVERDUE, Action.ADDED, Severity.WARNING),
        (Category.REGISTERED_OFFICE_ISSUE, Action.ADDED, Severity.WARNING),
    }
    cleared = diff(flagged, clear)
    assert {(c.category, c.action, change_severity(c)) for c in cleared} == {
        (Category.FILING_OVERDUE, Action.REMOVED, Severity.INFO),
        (Category.REGISTERED_OFFICE_ISSUE, Action.REMOVED, Severity.INFO),
    }
    # A flag cleared is the registry's answer, not a list that came back empty.
    assert vanished_sections(flagged, clear) == ()


def test_every_charge_gone_at_once_waits_for_a_confirming_fetch():
    before = parse(risk_raw())
    after = parse(risk_raw(charges=json.dumps(NO_CHARGES_DOCUMENT)))

    assert "charges" in vanished_sections(before, after)


def test_a_signal_not_fetched_this_time_removes_nothing():
    before = parse(risk_raw())
    after = parse(ch_raw())

    assert [c for c in diff(before, after) if c.category in {Category.CHARGE, Category.BANKRUPTCY}] == []


# -- fuzzing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", SIGNALS)
@given(document=json_values)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_parse_arbitrary_json_per_signal(endpoint, document):
    only_records_or_source_errors(lambda: parse(risk_raw(**{endpoint: json.dumps(document)})))


# -- fetching (respx) -------------------------------------------------------------------------------


def make_source(**fields: object) -> CompaniesHouseSource:
    options = {"type": "companies_house", "api_key": API_KEY, "timeout": "2s", "retries": 1, **fields}
    return CompaniesHouseSource("uk", CompaniesHouseOptions(**options), timing=QUICK_RETRIES)


@pytest.fixture
async def source():
    made = make_source()
    yield made
    await made.aclose()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(using=TRANSPORT, base_url=CH_URL, assert_all_called=False) as mock:
        mock.get(PROFILE_PATH).respond(200, text=fixture_text("company_profile.json"))
        mock.get(OFFICERS_PATH).respond(200, text=fixture_text("officers_t1.json"))
        mock.get(PSC_PATH).respond(200, text=fixture_text("psc.json"))
        yield mock


def serve_signals(api: respx.MockRouter) -> dict[str, respx.Route]:
    return {
        "charges": api.get(CHARGES_PATH).respond(200, text=fixture_text("charges.json")),
        "insolvency": api.get(INSOLVENCY_PATH).respond(200, text=fixture_text("insolvency.json")),
        "psc_statements": api.get(STATEMENTS_PATH).respond(200, text=fixture_text("psc_statements.json")),
    }


def not_found(code: str) -> str:
    return json.dumps({"errors": [{"error": code, "type": "ch:service"}]})


async def test_every_signal_is_fetched_by_default_and_saved_verbatim(source, api):
    routes = serve_signals(api)

    fetched = await source.fetch(NUMBER)

    assert source.enabled_signals == {
        Signal.REGISTRY,
        Signal.CHARGES,
        Signal.INSOLVENCY,
        Signal.PSC_STATEMENTS,
    }
    assert fetched.signals == source.enabled_signals
    assert {key: fetched.raw[key] for key in SIGNALS} == {
        "charges": fixture_text("charges.json"),
        "insolvency": fixture_text("insolvency.json"),
        "psc_statements": fixture_text("psc_statements.json"),
    }
    assert fetched.record == parse(risk_raw(officers=fixture_text("officers_t1.json")))
    assert all(route.call_count == 1 for route in routes.values())
    assert routes["charges"].calls.last.request.url.params["items_per_page"] == "100"


async def test_the_configured_signals_choose_what_is_asked(api):
    routes = serve_signals(api)
    source = make_source(signals=["charges"])
    try:
        fetched = await source.fetch(NUMBER)
        due = await source.fetch(NUMBER, signals=frozenset({Signal.REGISTRY}))
    finally:
        await source.aclose()

    assert routes["charges"].call_count == 1  # the second fetch was of the card alone
    assert routes["insolvency"].call_count == routes["psc_statements"].call_count == 0
    assert fetched.record.charges is not None and fetched.record.bankruptcies is None
    assert fetched.record.psc_statements is None
    assert due.record.charges is None and due.signals == {Signal.REGISTRY}


def paged_charges(document: dict, page_size: int) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["start_index"])
        return httpx.Response(200, json={**document, "items": document["items"][start : start + page_size]})

    return respond


async def test_charges_are_paged_through_and_merged(api):
    serve_signals(api)
    document = fixture_document("charges_t1.json")
    route = api.get(CHARGES_PATH).mock(side_effect=paged_charges(document, 2))
    source = make_source(signals=["charges"], items_per_page=2)
    try:
        fetched = await source.fetch(NUMBER)
    finally:
        await source.aclose()

    assert [call.request.url.params["start_index"] for call in route.calls] == ["0", "2"]
    assert set(by_key(fetched.record.charges or ())) == {"SC6123450001", "SC6123450002", "SC6123450003"}
    assert parse(risk_raw(charges=fetched.raw["charges"])).charges == fetched.record.charges


async def test_a_charge_list_that_stops_short_of_its_total_fails_the_fetch(api):
    serve_signals(api)
    document = {**fixture_document("charges.json"), "total_count": 5}
    api.get(CHARGES_PATH).mock(side_effect=paged_charges(document, 100))
    source = make_source(signals=["charges"])
    try:
        with pytest.raises(ParseError):
            await source.fetch(NUMBER)
    finally:
        await source.aclose()


async def test_insolvency_404_from_companies_house_means_no_cases(source, api):
    serve_signals(api)
    api.get(INSOLVENCY_PATH).respond(404, text=fixture_text("error_404_insolvency_not_found.json"))

    fetched = await source.fetch(NUMBER)

    assert fetched.record.bankruptcies == ()
    assert json.loads(fetched.raw["insolvency"]) == NO_CASES_DOCUMENT


async def test_charges_and_statements_404_from_companies_house_mean_none(api):
    serve_signals(api)
    api.get(PROFILE_PATH).respond(200, text=profile_with(has_charges=False))
    api.get(CHARGES_PATH).respond(404, text=not_found("company-charges-not-found"))
    api.get(STATEMENTS_PATH).respond(404, text=not_found("psc-statements-not-found"))
    source = make_source()
    try:
        fetched = await source.fetch(NUMBER)
    finally:
        await source.aclose()

    assert fetched.record.charges == () and fetched.record.psc_statements == ()


async def test_charges_404_for_a_company_that_has_charges_fails_the_fetch(source, api):
    serve_signals(api)  # the profile says has_charges: true
    api.get(CHARGES_PATH).respond(404, text=not_found("company-charges-not-found"))

    with pytest.raises(ParseError, match="has_charges"):
        await source.fetch(NUMBER)


@pytest.mark.parametrize(
    "path, answer",
    [
        (INSOLVENCY_PATH, (404, "Not Found")),  # not Companies House's own answer
        (INSOLVENCY_PATH, (404, not_found("company-profile-not-found"))),
        (INSOLVENCY_PATH, (200, "")),
        (INSOLVENCY_PATH, (200, '{"cases": [{"type": "compulsory-liq')),
        (INSOLVENCY_PATH, (200, json.dumps({"etag": "x"}))),
        (CHARGES_PATH, (404, "<html>Not Found</html>")),
        (CHARGES_PATH, (200, json.dumps({"items": []}))),
        (STATEMENTS_PATH, (404, json.dumps({"message": "gone"}))),
        (STATEMENTS_PATH, (200, "<html>Service unavailable</html>")),
    ],
)
async def test_a_failed_or_garbled_answer_fails_the_fetch(source, api, path, answer):
    serve_signals(api)
    status, text = answer
    api.get(path).respond(status, text=text)

    with pytest.raises(ParseError):
        await source.fetch(NUMBER)


async def test_a_server_error_on_a_signal_is_transient(source, api):
    serve_signals(api)
    api.get(INSOLVENCY_PATH).respond(500, text="oops")

    with pytest.raises(TransientError):
        await source.fetch(NUMBER)


# -- the borrower page's risk block (watcher/console/risk.py, pure) ---------------------------------


def test_a_uk_borrowers_page_shows_companies_house_sections_not_the_chinese_vendors():
    from watcher.console.risk import risk_profile

    card_only = risk_profile(parse(ch_raw()))
    shown = {section.category: section.listings for section in card_only.listings}
    assert card_only.known and card_only.control == ()  # no actual-controller block for a UK company
    assert set(shown) == {
        Category.BANKRUPTCY,
        Category.CHARGE,
        Category.FILING_OVERDUE,
        Category.REGISTERED_OFFICE_ISSUE,
        Category.PSC_STATEMENT,
    }
    # The signals not fetched read "not fetched" (None), the flags "none" (an empty tuple).
    assert shown[Category.CHARGE] is None and shown[Category.FILING_OVERDUE] == ()

    fetched = risk_profile(parse(risk_raw()))
    first = fetched.listings[0]
    assert first.listings is not None and first.active >= 1  # sections with entries come first
    assert first.listings[0].state is ListingState.ACTIVE  # and in force first within them
