"""France, the BODACC's procédures collectives (the ``insolvency`` signal of ``fr_recherche``): mapping,
rules and lines, and every failure class over HTTP (respx)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.base import record_of
from sources.fr_bodacc import DATASET_PATH, classify, french_date
from sources.fr_recherche import FrRechercheOptions, FrRechercheSource
from sources.http.timing import Timing
from tests.fuzzing import json_values, mutate, only_records_or_handled_errors
from tests.mocking import TRANSPORT
from watcher.change_line import ChangeLine
from watcher.diff import diff
from watcher.errors import ParseError, RateLimitedError, TransientError
from watcher.presentation import change_text
from watcher.record import Action, Category, ListingState, RegistryRecord, Signal
from watcher.rules import change_severity
from watcher.vocabulary import Language, Severity

ROOT = Path(__file__).parent / "fixtures" / "registries"
SIREN = "834217655"
SEARCH = (ROOT / "fr_recherche_entreprises" / "search_by_siren.json").read_text("utf-8")
SAMPLE = (ROOT / "fr_bodacc" / "records_by_siren.json").read_text("utf-8")
BASE_URL = "https://recherche-entreprises.api.gouv.fr"
BODACC_URL = "https://bodacc-datadila.opendatasoft.com"
JSON = {"Content-Type": "application/json; charset=utf-8"}


def sample() -> dict:
    return json.loads(SAMPLE)


def notice(
    nature: str, day: str, *, tribunal: str = "TRIBUNAL DE COMMERCE DE LYON", **fields: object
) -> dict:
    item = copy.deepcopy(sample()["results"][0])
    item["jugement"] = json.dumps({"type": "initial", "famille": "x", "nature": nature, "date": day})
    item.update(tribunal=tribunal, **fields)
    return item


def answer(*notices: dict) -> str:
    return json.dumps({"total_count": len(notices), "results": list(notices)}, ensure_ascii=False)


def with_sample(*more: dict) -> str:
    return answer(*sample()["results"], *more)


def record(bodacc: str | None) -> RegistryRecord:
    raw = {"search": SEARCH} | ({} if bodacc is None else {"bodacc": bodacc})
    return record_of(FrRechercheSource.map_raw, raw, source="fr", registry_id=SIREN)


# -- mapping ----------------------------------------------------------------------------------------


def test_the_sample_is_one_redressement_judiciaire_in_force():
    listings = record(SAMPLE).bankruptcies

    assert listings is not None and len(listings) == 1
    (listing,) = listings
    assert listing.state is ListingState.ACTIVE
    assert listing.reason == "Redressement judiciaire"
    assert listing.authority == "TRIBUNAL DE COMMERCE DE LYON"
    assert listing.listed_on is not None and listing.listed_on.isoformat() == "2026-03-01"
    assert listing.key == "bodacc:tribunal de commerce de lyon|2026-03-01|Redressement judiciaire"
    # The plan adopted on 15 septembre 2026 (a French-text date) neither lists nor lifts.


def test_without_the_signal_the_proceedings_are_unknown_not_none():
    assert record(None).bankruptcies is None
    assert record(answer()).bankruptcies == ()


def test_a_closing_judgement_lifts_the_proceeding_and_keeps_its_identity():
    opened = record(SAMPLE).bankruptcies
    closed = record(with_sample(notice("Jugement de clôture pour insuffisance d'actif", "2027-01-10")))
    assert opened is not None and closed.bankruptcies is not None

    (listing,) = closed.bankruptcies
    assert listing.key == opened[0].key
    assert listing.state is ListingState.LIFTED
    assert listing.removed_on is not None and listing.removed_on.isoformat() == "2027-01-10"
    assert listing.removal_reason == "Jugement de clôture pour insuffisance d'actif"


def test_a_conversion_is_a_new_listing_and_an_older_closing_lifts_nothing_later():
    text = with_sample(
        notice("Jugement de clôture pour extinction du passif", "2019-05-02"),
        notice("Jugement de conversion en liquidation judiciaire", "2026-11-03"),
    )
    listings = record(text).bankruptcies
    assert listings is not None
    assert {(item.reason, item.state) for item in listings} == {
        ("Redressement judiciaire", ListingState.ACTIVE),
        ("Liquidation judiciaire", ListingState.ACTIVE),
    }


def test_order_and_a_corrected_notice_do_not_change_the_listings():
    document = sample()
    corrected = copy.deepcopy(document["results"][0])
    corrected.update(id="A202600500001", typeavis="rectificatif", typeavis_lib="Avis rectificatif")
    reordered = answer(document["results"][1], corrected, document["results"][0])

    assert record(reordered).bankruptcies == record(SAMPLE).bankruptcies


def test_other_companies_families_and_cancellations_are_ignored():
    other = notice("Jugement d'ouverture de liquidation judiciaire", "2026-04-01", registre=["552 120 222"])
    family = notice(
        "Jugement d'ouverture de liquidation judiciaire", "2026-04-02", familleavis="modification"
    )
    cancelled = notice("Jugement d'ouverture de liquidation judiciaire", "2026-04-03", typeavis="annulation")
    listings = record(with_sample(other, family, cancelled)).bankruptcies

    assert listings is not None and [item.reason for item in listings] == ["Redressement judiciaire"]


def test_registre_as_comma_separated_text_is_read_too():
    item = notice(
        "Jugement d'ouverture d'une procédure de sauvegarde", "2026-02-02", registre="834 217 655,834217655"
    )
    listings = record(answer(item)).bankruptcies
    assert listings is not None and [item.reason for item in listings] == ["Sauvegarde"]


@pytest.mark.parametrize(
    ("nature", "expected"),
    [
        (
            "Jugement d'ouverture d'une procédure de redressement judiciaire",
            (False, "Redressement judiciaire"),
        ),
        ("Jugement d'ouverture de liquidation judiciaire", (False, "Liquidation judiciaire")),
        ("Jugement d'ouverture d'une procédure de sauvegarde", (False, "Sauvegarde")),
        ("Jugement d'ouverture d'une procédure de sauvegarde financière accélérée", (False, "Sauvegarde")),
        ("Autre jugement d'ouverture", (False, "Procédure collective")),
        (
            "Jugement de conversion en liquidation judiciaire de la procédure de sauvegarde",
            (False, "Liquidation judiciaire"),
        ),
        (
            "Jugement de conversion en redressement judiciaire de la procédure de sauvegarde",
            (False, "Redressement judiciaire"),
        ),
        ("Jugement d'extension de liquidation judiciaire", (False, "Liquidation judiciaire")),
        ("Jugement de reprise de la procédure de liquidation judiciaire", (False, "Liquidation judiciaire")),
        ("Jugement arrêtant un plan de cession", (False, "Plan de cession")),
        (
            "Jugement prononçant la résolution du plan de redressement et la liquidation judiciaire",
            (False, "Liquidation judiciaire"),
        ),
        (
            "Jugement prononçant la résolution du plan de sauvegarde et le redressement judiciaire",
            (False, "Redressement judiciaire"),
        ),
        ("Jugement prononçant la résolution du plan de redressement", (False, "Résolution du plan")),
        ("Jugement prononçant la liquidation judiciaire", (False, "Liquidation judiciaire")),
        ("Jugement de clôture pour insuffisance d'actif", (True, None)),
        ("Jugement de clôture de la procédure de sauvegarde", (True, None)),
        ("Autre jugement de clôture", (True, None)),
        ("Jugement mettant fin à la procédure de redressement judiciaire", (True, None)),
        ("Jugement arrêtant le plan de redressement", (False, None)),
        ("Jugement modifiant le plan de sauvegarde", (False, None)),
        ("Dépôt de l'état des créances", (False, None)),
        (
            "Liste des créances nées après le jugement d'ouverture d'une procédure de liquidation judiciaire",
            (False, None),
        ),
        ("Arrêt de la cour d'appel infirmant une décision soumise à publicité", (False, None)),
        ("Jugement d'interdiction de gérer", (False, None)),
        ("Autre jugement et ordonnance", (False, None)),
    ],
)
def test_classify(nature, expected):
    assert classify(nature) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", "2026-03-01"),
        ("1er mars 2026", "2026-03-01"),
        ("10 décembre 2009", "2009-12-10"),
        ("", None),
        ("31 février 2026", None),
        ("soon", None),
    ],
)
def test_french_date(text, expected):
    day = french_date(text)
    assert (day.isoformat() if day else None) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"error_code": "ODSQLError", "message": "Unknown field: registres"}', "ODSQLError: Unknown field"),
        ('{"total_count": 3, "results": []}', "0 notices where total_count says 3"),
        ('{"results": []}', "total_count is not a count"),
        ('{"total_count": 1}', "results is not a list"),
        ('{"total_count": 1, "resu', "truncated JSON"),
        ("", "empty response"),
    ],
)
def test_answers_that_are_not_a_complete_list_are_parse_errors(text, message):
    with pytest.raises(ParseError, match=message):
        record(text)


def test_a_garbled_judgement_or_one_without_a_nature_is_a_parse_error():
    garbled = notice("x", "2026-01-01")
    garbled["jugement"] = '{"nature": "Jugement d\'ouv'
    with pytest.raises(ParseError, match="jugement"):
        record(answer(garbled))
    with pytest.raises(ParseError, match="no nature"):
        record(answer(notice("", "2026-01-01")))


@given(document=json_values)
def test_parse_arbitrary_json(document):
    only_records_or_handled_errors(lambda: record(json.dumps(document)))


@given(text=st.text())
def test_parse_arbitrary_text(text):
    only_records_or_handled_errors(lambda: record(text))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_mutated_sample(data):
    document = sample()
    for item in document["results"]:
        item["jugement"] = json.loads(item["jugement"])
    mutated = mutate(document, data)
    for item in (
        mutated.get("results", [])
        if isinstance(mutated, dict) and isinstance(mutated.get("results"), list)
        else []
    ):
        if isinstance(item, dict) and not isinstance(item.get("jugement"), str | None):
            item["jugement"] = json.dumps(item["jugement"])
    only_records_or_handled_errors(lambda: record(json.dumps(mutated)))


# -- rules and lines --------------------------------------------------------------------------------


def lines(before: RegistryRecord, after: RegistryRecord, language: Language) -> list[tuple[str, Severity]]:
    found = []
    for change in diff(before, after):
        line = ChangeLine(
            change.category,
            change.action,
            change.subject,
            change.before,
            change.after,
            change.effective_date,
            party=change.party,
            party_name=change.party_name,
        )
        found.append((change_text(line, language, dated=False), change_severity(change)))
    return found


def test_an_opening_is_critical_and_reads_in_both_languages():
    before, after = record(answer()), record(SAMPLE)

    assert lines(before, after, Language.ZH_CN) == [
        (
            "破产程序（Redressement judiciaire）立案: TRIBUNAL DE COMMERCE DE LYON · 2026-03-01",
            Severity.CRITICAL,
        )
    ]
    assert lines(before, after, Language.EN) == [
        (
            "Insolvency proceedings (Redressement judiciaire) opened: "
            "TRIBUNAL DE COMMERCE DE LYON · 2026-03-01",
            Severity.CRITICAL,
        )
    ]
    (change,) = diff(before, after)
    assert change.category is Category.BANKRUPTCY and change.action is Action.ADDED and change.raises_listing


def test_a_closing_is_info_and_says_how_it_ended():
    closed = record(with_sample(notice("Jugement de clôture pour insuffisance d'actif", "2027-01-10")))

    assert lines(record(SAMPLE), closed, Language.ZH_CN) == [
        (
            "破产程序（Redressement judiciaire）终结: TRIBUNAL DE COMMERCE DE LYON · 2026-03-01 ~ 2027-01-10"
            " · Jugement de clôture pour insuffisance d'actif",
            Severity.INFO,
        )
    ]


def test_not_fetching_the_signal_lifts_nothing():
    assert diff(record(SAMPLE), record(None)) == []


def test_a_chinese_bankruptcy_line_is_unchanged():
    line = ChangeLine(
        Category.BANKRUPTCY, Action.ADDED, "(2026)沪03破12号", None, "(2026)沪03破12号 · 2026-02-01", None
    )
    assert change_text(line, Language.ZH_CN).startswith("破产重整 列入")


# -- the signal and fetching (respx) ----------------------------------------------------------------


QUICK_RETRIES = Timing(backoff_base=0.001)


def make_source(**options: object) -> FrRechercheSource:
    settings = FrRechercheOptions.model_validate(
        {
            "type": "fr_recherche",
            "timeout": "2s",
            "deadline": "10s",
            "retries": 1,
            "rate": "1000/s",
            "signals": ["registry", "insolvency"],
            **options,
        }
    )
    return FrRechercheSource("fr", settings, timing=QUICK_RETRIES)


def test_the_signal_is_opt_in_and_cadenced_like_the_vendors():
    default = FrRechercheSource("fr", FrRechercheOptions(type="fr_recherche"))
    assert default.enabled_signals == {Signal.REGISTRY}
    assert default.settings.bodacc_base_url == BODACC_URL
    chosen = make_source(cadence={"insolvency": "12h"})
    assert chosen.enabled_signals == {Signal.REGISTRY, Signal.INSOLVENCY}
    assert chosen.settings.cadence[Signal.INSOLVENCY].total_seconds() == 12 * 3600
    assert FrRechercheSource.billed is False


@pytest.fixture
async def source():
    fr = make_source()
    yield fr
    await fr.aclose()


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, assert_all_called=False) as mock:
        mock.get(f"{BASE_URL}/search").respond(200, text=SEARCH, headers=JSON)
        yield mock


async def test_fetch_asks_the_bodacc_for_the_sirens_collective_notices(source, api):
    route = api.get(f"{BODACC_URL}{DATASET_PATH}").respond(200, text=SAMPLE, headers=JSON)

    fetched = await source.fetch(SIREN)

    assert fetched.raw == {"search": SEARCH, "bodacc": SAMPLE}
    assert fetched.signals == {Signal.REGISTRY, Signal.INSOLVENCY}
    assert fetched.record.bankruptcies == record(SAMPLE).bankruptcies
    params = dict(route.calls.last.request.url.params)
    assert params == {
        "where": f'registre like "{SIREN}" and familleavis = "collective"',
        "order_by": "dateparution",
        "limit": "100",
        "offset": "0",
    }


async def test_a_check_without_the_signal_due_does_not_ask_the_bodacc(source, api):
    route = api.get(f"{BODACC_URL}{DATASET_PATH}").respond(200, text=SAMPLE, headers=JSON)

    fetched = await source.fetch(SIREN, signals=frozenset({Signal.REGISTRY}))

    assert not route.called
    assert fetched.record.bankruptcies is None
    assert fetched.signals == {Signal.REGISTRY}


async def test_the_bodacc_host_is_configurable(api):
    fr = make_source(bodacc_base_url="https://relay.bank.example/bodacc")
    route = api.get(f"https://relay.bank.example/bodacc{DATASET_PATH}").respond(
        200, text=SAMPLE, headers=JSON
    )
    try:
        await fr.fetch(SIREN)
    finally:
        await fr.aclose()
    assert route.called


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (500, "oops", TransientError, "HTTP 500"),
        (200, "", ParseError, "empty body"),
        (200, '{"total_count": 2, "resu', ParseError, "truncated JSON"),
        (
            400,
            '{"error_code": "InvalidRESTParameterError", "message": "limit <= 100"}',
            ParseError,
            "limit <= 100",
        ),
        (200, '{"error_code": "ODSQLError", "message": "bad where"}', ParseError, "bad where"),
        (200, '{"total_count": 2, "results": []}', ParseError, "0 notices where 2 were due"),
        (404, '{"error_code": "DatasetNotFound", "message": "Unknown dataset"}', ParseError, "not there"),
        (429, "slow down", RateLimitedError, "429"),
    ],
)
async def test_fetch_failures_are_failed_checks_never_data(source, api, status, body, error, message):
    api.get(f"{BODACC_URL}{DATASET_PATH}").respond(status, text=body, headers=JSON)

    with pytest.raises(error, match=message):
        await source.fetch(SIREN)


def page_of(total: int, start: int, count: int) -> str:
    items = []
    for index in range(start, start + count):
        item = notice("Jugement modifiant le plan de redressement", "2026-05-01")
        item["id"] = f"A{index:012d}"
        items.append(item)
    return json.dumps({"total_count": total, "results": items})


async def test_pages_are_followed_to_the_total_and_merged(source, api):
    pages = {"0": page_of(150, 0, 100), "100": page_of(150, 100, 50)}

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=pages[request.url.params["offset"]], headers=JSON)

    route = api.get(f"{BODACC_URL}{DATASET_PATH}").mock(side_effect=respond)
    fetched = await source.fetch(SIREN)

    assert route.call_count == 2
    merged = json.loads(fetched.raw["bodacc"])
    assert merged["total_count"] == 150 and len(merged["results"]) == 150
    assert fetched.record.bankruptcies == ()


@pytest.mark.parametrize(
    ("second", "message"),
    [(page_of(151, 100, 50), "total_count 151 where page 1 said 150"), (page_of(150, 100, 49), "49 notices")],
)
async def test_a_page_that_disagrees_fails_the_check(source, api, second, message):
    pages = {"0": page_of(150, 0, 100), "100": second}
    api.get(f"{BODACC_URL}{DATASET_PATH}").mock(
        side_effect=lambda request: httpx.Response(
            200, text=pages[request.url.params["offset"]], headers=JSON
        )
    )
    with pytest.raises(ParseError, match=message):
        await source.fetch(SIREN)


async def test_more_notices_than_max_pages_fail_the_check(api):
    fr = make_source(bodacc_max_pages=1)
    api.get(f"{BODACC_URL}{DATASET_PATH}").respond(200, text=page_of(101, 0, 100), headers=JSON)
    try:
        with pytest.raises(ParseError, match="bodacc_max_pages=1"):
            await fr.fetch(SIREN)
    finally:
        await fr.aclose()


def test_a_closing_the_same_day_as_a_new_opening_leaves_the_opening_in_force():
    text = answer(
        notice("Jugement d'ouverture de liquidation judiciaire", "2026-06-01"),
        notice("Jugement de clôture de la procédure de sauvegarde", "2026-06-01"),
        notice("Jugement d'ouverture d'une procédure de sauvegarde", "2025-01-01"),
    )
    listings = record(text).bankruptcies
    assert listings is not None
    assert {(item.reason, item.state) for item in listings} == {
        ("Sauvegarde", ListingState.LIFTED),
        ("Liquidation judiciaire", ListingState.ACTIVE),
    }
