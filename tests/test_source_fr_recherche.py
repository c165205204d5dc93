"""France recherche-entreprises: mapping, diffs, failure classes over HTTP, fuzzing, a real local server."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources import source_class
from sources.base import record_of
from sources.fr_recherche import FrRechercheOptions, FrRechercheSource
from sources.http.timing import Timing
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
from watcher.record import Action, Category, CompanyStatus, RegistryRecord, Role

FIXTURES = Path(__file__).parent / "fixtures" / "registries" / "fr_recherche_entreprises"
SIREN = "834217655"
BASE_URL = "https://recherche-entreprises.api.gouv.fr"


def fixture_text(name: str = "search_by_siren.json") -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_document(name: str = "search_by_siren.json") -> dict:
    return json.loads(fixture_text(name))


def company(document: dict) -> dict:
    return document["results"][0]


def parse(text: str, registry_id: str = SIREN) -> RegistryRecord:
    return record_of(FrRechercheSource.map_raw, {"search": text}, source="fr", registry_id=registry_id)


def parse_document(document: object) -> RegistryRecord:
    return parse(json.dumps(document, ensure_ascii=False))


def with_company(**changes: object) -> dict:
    document = fixture_document()
    company(document).update(changes)
    return document


# -- mapping ----------------------------------------------------------------------------------------


def test_maps_the_search_result():
    record = parse(fixture_text())

    assert record.source == "fr"
    assert record.registry_id == SIREN
    assert record.name == "ATELIERS LUMIERE DU RHONE"
    assert record.status is not None
    assert record.status.code is CompanyStatus.ACTIVE
    assert record.status.raw == "A (active)"
    assert record.address == "14 RUE DES TANNEURS 69002 LYON"
    assert record.people is not None
    people = {person.name: person for person in record.people}
    assert set(people) == {"Claire Marie FAURE", "Karim BENALI", "AUDIT ET CONSEIL RHONE-ALPES"}
    assert people["Claire Marie FAURE"].key == "nb:claire marie faure|1981-05"
    assert people["Claire Marie FAURE"].roles == {Role.LEGAL_REPRESENTATIVE, Role.MANAGER}
    assert people["Claire Marie FAURE"].role_text == "Président de SAS"
    assert people["Karim BENALI"].key == "nb:karim benali|1977-11"
    assert people["Karim BENALI"].roles == {Role.MANAGER}
    assert people["AUDIT ET CONSEIL RHONE-ALPES"].key == "id:siren:552120222"
    assert people["AUDIT ET CONSEIL RHONE-ALPES"].roles == {Role.AUDITOR}
    assert record.legal_representative == people["Claire Marie FAURE"]


def test_sections_the_api_does_not_publish_stay_unknown():
    record = parse(fixture_text())

    assert record.registered_capital is None
    assert record.shareholders is None
    assert record.controllers is None
    assert record.finance_head is None
    assert record.change_log is None


@pytest.mark.parametrize(
    ("state", "closed_on", "code", "raw"),
    [
        ("A", None, CompanyStatus.ACTIVE, "A (active)"),
        ("C", "2024-03-31", CompanyStatus.DEREGISTERED, "C (cessée le 2024-03-31)"),
        ("C", None, CompanyStatus.DEREGISTERED, "C (cessée)"),
        ("c", "", CompanyStatus.DEREGISTERED, "C (cessée)"),
        ("X", None, CompanyStatus.OTHER, "X"),
    ],
)
def test_status(state, closed_on, code, raw):
    record = parse_document(with_company(etat_administratif=state, date_fermeture=closed_on))

    assert record.status is not None
    assert (record.status.code, record.status.raw) == (code, raw)


def test_missing_state_is_unknown_status():
    document = fixture_document()
    del company(document)["etat_administratif"]

    assert parse_document(document).status is None


def test_name_falls_back_to_nom_complet():
    record = parse_document(with_company(nom_raison_sociale=None, nom_complet="Jean  DUPONT "))

    assert record.name == "Jean DUPONT"


def test_a_result_without_any_name_is_a_parse_error():
    with pytest.raises(ParseError, match="nom_complet"):
        parse_document(with_company(nom_raison_sociale="", nom_complet=None))


def test_address_is_rebuilt_from_its_parts_when_the_line_is_missing():
    document = fixture_document()
    company(document)["siege"]["adresse"] = None

    assert parse_document(document).address == "14 RUE DES TANNEURS 69002 LYON 2EME"


def test_missing_head_office_is_unknown_address():
    document = fixture_document()
    del company(document)["siege"]

    assert parse_document(document).address is None


def test_missing_directors_are_unknown_and_an_empty_list_is_empty():
    document = fixture_document()
    del company(document)["dirigeants"]
    unknown = parse_document(document)
    empty = parse_document(with_company(dirigeants=[]))

    assert unknown.people is None
    assert unknown.legal_representative is None
    assert empty.people == ()
    assert empty.legal_representative is None


def test_no_president_or_gerant_leaves_the_legal_representative_unknown():
    document = fixture_document()
    company(document)["dirigeants"] = company(document)["dirigeants"][1:]

    record = parse_document(document)

    assert record.people is not None
    assert len(record.people) == 2
    assert record.legal_representative is None


def test_co_gerants_pick_the_same_legal_representative_in_any_order():
    gerants = [
        {"nom": "ZOLA", "prenoms": "Émile", "date_de_naissance": "1970-01", "qualite": "Gérant"},
        {"nom": "ARNAUD", "prenoms": "Anne", "date_de_naissance": "1980-06", "qualite": "Co-gérant"},
    ]
    forward = parse_document(with_company(dirigeants=gerants))
    backward = parse_document(with_company(dirigeants=list(reversed(gerants))))

    assert forward.legal_representative is not None
    assert forward.legal_representative.name == "Anne ARNAUD"
    assert backward.legal_representative == forward.legal_representative


def test_birth_year_keys_a_person_when_the_month_is_missing():
    director = {"nom": "Martin", "prenoms": "Paul", "annee_de_naissance": "1960", "qualite": "Administrateur"}
    record = parse_document(with_company(dirigeants=[director]))

    assert record.people is not None
    (person,) = record.people
    assert person.key == "nb:paul martin|1960"
    assert person.roles == {Role.DIRECTOR}


def test_corporate_director_without_type_is_recognised_by_its_denomination():
    director = {"siren": "552 120 222", "denomination": "HOLDING RHONE", "qualite": "Président de SAS"}
    record = parse_document(with_company(dirigeants=[director]))

    assert record.legal_representative is not None
    assert record.legal_representative.key == "id:siren:552120222"


def test_a_director_without_a_name_is_a_parse_error():
    with pytest.raises(ParseError, match=r"dirigeants\[0\] has no name"):
        parse_document(
            with_company(dirigeants=[{"qualite": "Gérant", "type_dirigeant": "personne physique"}])
        )


def test_only_the_requested_siren_is_mapped():
    document = fixture_document()
    other = copy.deepcopy(company(document))
    other.update(siren="552120222", nom_raison_sociale="AUTRE SOCIETE")
    document["results"] = [other, company(document)]

    assert parse_document(document).name == "ATELIERS LUMIERE DU RHONE"
    with pytest.raises(NotFoundError, match="other result"):
        parse_document({**document, "results": [other]})


def test_empty_results_are_not_found_and_a_missing_list_is_a_parse_error():
    with pytest.raises(NotFoundError, match=SIREN):
        parse_document({"results": [], "total_results": 0, "page": 1, "per_page": 1, "total_pages": 0})
    with pytest.raises(ParseError, match="results"):
        parse_document({"total_results": 0})
    with pytest.raises(ParseError, match="results"):
        parse_document({"results": {"siren": SIREN}})


def test_missing_payload_is_a_parse_error():
    with pytest.raises(ParseError, match="search"):
        record_of(FrRechercheSource.map_raw, {}, source="fr", registry_id=SIREN)


def test_volatile_fields_and_order_do_not_change_the_content():
    document = fixture_document()
    company(document)["date_mise_a_jour"] = "2027-01-01T00:00:00"
    company(document)["date_mise_a_jour_rne"] = "2027-01-01T00:00:00"
    company(document)["siege"]["date_mise_a_jour"] = "2027-01-01T00:00:00"
    company(document)["finances"] = {"2025": {"ca": 1, "resultat_net": 2}}
    company(document)["dirigeants"].reverse()

    assert content_hash(parse_document(document)) == content_hash(parse(fixture_text()))


def test_diff_names_exactly_the_planted_changes():
    before = parse(fixture_text())
    after = parse(fixture_text("search_by_siren_t1.json"))

    changes = [(c.category, c.action, c.subject, c.before, c.after) for c in diff(before, after)]

    assert changes == [
        (
            Category.LEGAL_REPRESENTATIVE,
            Action.CHANGED,
            "legal representative",
            "Claire Marie FAURE",
            "Julien MOREAU",
        ),
        (
            Category.MANAGER,
            Action.REMOVED,
            "Claire Marie FAURE",
            "Claire Marie FAURE (Président de SAS)",
            None,
        ),
        (Category.MANAGER, Action.ADDED, "Julien MOREAU", None, "Julien MOREAU (Président de SAS)"),
        (
            Category.ADDRESS,
            Action.CHANGED,
            "address",
            "14 RUE DES TANNEURS 69002 LYON",
            "22 QUAI SAINT-ANTOINE 69002 LYON",
        ),
    ]
    assert all(change.effective_date is None for change in diff(before, after))


def test_source_is_registered_and_checks_sirens():
    assert source_class("fr_recherche") is FrRechercheSource
    source = FrRechercheSource("fr", FrRechercheOptions(type="fr_recherche"))
    assert source.normalise_id(" 834 217 655 ") == SIREN
    with pytest.raises(ValueError):
        source.normalise_id("834217656")
    assert source.settings.base_url == BASE_URL
    assert str(source.settings.rate) == "7/s"


# -- fetching over HTTP (respx) -------------------------------------------------------------------


# Retries back off for about a millisecond instead of half a second.
QUICK_RETRIES = Timing(backoff_base=0.001)


def make_source(base_url: str = BASE_URL) -> FrRechercheSource:
    options = FrRechercheOptions(
        type="fr_recherche", base_url=base_url, timeout="2s", deadline="10s", retries=2, rate="1000/s"
    )
    return FrRechercheSource("fr", options, timing=QUICK_RETRIES)


@pytest.fixture
async def source():
    fr = make_source()
    yield fr
    await fr.aclose()


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


async def test_fetch_success_asks_for_the_siren_with_a_minimal_answer(source, api):
    route = api.get("/search").respond(200, text=fixture_text(), headers={"Content-Type": "application/json"})

    fetched = await source.fetch("834 217 655")

    assert fetched.record.name == "ATELIERS LUMIERE DU RHONE"
    assert fetched.record.registry_id == SIREN
    assert fetched.raw == {"search": fixture_text()}
    request = route.calls.last.request
    assert dict(request.url.params) == {
        "q": SIREN,
        "page": "1",
        "per_page": "1",
        "minimal": "true",
        "include": "dirigeants,siege",
    }
    assert request.headers["User-Agent"].startswith("borrower-watcher/")
    assert request.headers["Accept"] == "application/json"


async def test_fetch_rejects_an_invalid_siren_without_asking(source, api):
    route = api.get("/search")

    with pytest.raises(NotFoundError, match="invalid SIREN"):
        await source.fetch("834217656")
    assert route.call_count == 0


async def test_fetch_empty_results_is_not_found(source, api):
    api.get("/search").respond(200, json={"results": [], "total_results": 0, "page": 1, "per_page": 1})

    with pytest.raises(NotFoundError) as raised:
        await source.fetch(SIREN)
    assert raised.value.source == "fr"
    assert raised.value.registry_id == SIREN


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, "not found", NotFoundError),
        (401, "{}", AuthError),
        (403, "{}", AuthError),
        (403, "<html><title>Attention Required! | Cloudflare</title>captcha</html>", BlockedError),
        (418, "teapot", ParseError),
    ],
)
async def test_fetch_failure_statuses(source, api, status, body, error):
    api.get("/search").respond(status, text=body)

    with pytest.raises(error):
        await source.fetch(SIREN)


async def test_fetch_bad_request_reports_the_api_message(source, api):
    api.get("/search").respond(400, json={"erreur": "Veuillez indiquer au moins un paramètre de recherche."})

    with pytest.raises(ParseError, match="Veuillez indiquer"):
        await source.fetch(SIREN)


async def test_fetch_retries_after_429_honouring_retry_after(source, api):
    route = api.get("/search")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "1"}, text="Too Many Requests"),
        httpx.Response(200, text=fixture_text()),
    ]

    started = time.monotonic()
    fetched = await source.fetch(SIREN)

    assert time.monotonic() - started >= 0.9
    assert fetched.record.name == "ATELIERS LUMIERE DU RHONE"
    assert route.call_count == 2


async def test_fetch_rate_limit_that_persists_is_rate_limited(source, api):
    route = api.get("/search").respond(429, headers={"Retry-After": "0"})

    with pytest.raises(RateLimitedError) as raised:
        await source.fetch(SIREN)
    assert route.call_count == 3
    assert raised.value.retry_after == 0


async def test_fetch_retries_a_server_error(source, api):
    route = api.get("/search")
    route.side_effect = [httpx.Response(500), httpx.Response(502), httpx.Response(200, text=fixture_text())]

    fetched = await source.fetch(SIREN)

    assert fetched.record.name == "ATELIERS LUMIERE DU RHONE"
    assert route.call_count == 3


async def test_fetch_server_error_that_persists_is_transient(source, api):
    route = api.get("/search").respond(503)

    with pytest.raises(TransientError):
        await source.fetch(SIREN)
    assert route.call_count == 3


async def test_fetch_network_error_that_persists_is_transient(source, api):
    api.get("/search").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(TransientError):
        await source.fetch(SIREN)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ("", ParseError, "empty"),
        ("   \n", ParseError, "empty"),
        ("<html><body>Vérification : êtes-vous un robot ? captcha</body></html>", BlockedError, "captcha"),
        ("<html><body>Maintenance</body></html>", ParseError, "HTML"),
        (fixture_text()[:700], ParseError, "truncated"),
        ('{"erreur": "quota"}', ParseError, "results"),
    ],
)
async def test_fetch_bad_200_bodies(source, api, body, error, message):
    api.get("/search").respond(200, text=body)

    with pytest.raises(error, match=message):
        await source.fetch(SIREN)


# -- property tests: a parser returns a record or raises a SourceError, nothing else -----------------


@given(document=json_values)
def test_parse_arbitrary_json(document):
    only_records_or_handled_errors(lambda: parse(json.dumps(document)))


@given(result=json_values)
def test_parse_arbitrary_json_as_a_result(result):
    only_records_or_handled_errors(lambda: parse_document({"results": [result]}))


@given(text=st.text())
def test_parse_arbitrary_text(text):
    only_records_or_handled_errors(lambda: parse(text))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_mutated_fixture(data):
    document = mutate(fixture_document(), data)
    only_records_or_handled_errors(lambda: parse_document(document))


# -- a real HTTP server on 127.0.0.1 ----------------------------------------------------------------


NO_RESULTS = b'{"results": [], "total_results": 0, "page": 1, "per_page": 1, "total_pages": 0}'


class FixtureHandler(QuietHandler):
    """Serves the saved search response for the fixture's SIREN, an empty result list otherwise."""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path != "/search":
            self.send_body(404, b'{"erreur": "not found"}')
        elif query.get("q") == [SIREN]:
            self.send_body(200, fixture_text().encode("utf-8"))
        else:
            self.send_body(200, NO_RESULTS)


@pytest.fixture
def local_server() -> Iterator[str]:
    with serve(FixtureHandler) as url:
        yield url


async def test_fetch_from_a_real_local_server(local_server):
    fr = make_source(local_server)
    try:
        fetched = await fr.fetch(SIREN)
        with pytest.raises(NotFoundError):
            await fr.fetch("552120222")
    finally:
        await fr.aclose()

    assert fetched.record == parse(fixture_text())
    assert fetched.record.legal_representative is not None
    assert fetched.record.legal_representative.name == "Claire Marie FAURE"
