"""France: API Recherche d'entreprises (annuaire-entreprises, free, no key), and the BODACC.

One call per company: ``GET /search?q=<siren>``. A 9-digit ``q`` is a direct SIREN lookup, but the
answer is still a search result list, so the mapping picks the result whose ``siren`` is ours. The
API gives name, status, head-office address and the current directors (from INPI's RNE). It has no
shareholders, no capital and no history: those sections stay unknown.

The ``insolvency`` signal (opt-in: ``signals = ["registry", "insolvency"]``) also asks the BODACC's
open data (DILA on Opendatasoft, another host: ``bodacc_base_url``) for the company's procédures
collectives, mapped to bankruptcy listings by :mod:`sources.fr_bodacc`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from pydantic import Field

from sources import fr_bodacc, register
from sources.base import SourceOptions, as_list, as_object, as_text, load_json
from sources.http import HttpSource
from sources.http.options import VendorOptions
from sources.http.policy import HttpPolicy
from sources.http.responses import raise_for_status
from sources.http.timing import Timing
from watcher.errors import NotFoundError, ParseError, SourceError
from watcher.normalize import clean_text, person_key, roles_from_title
from watcher.record import CompanyStatus, Person, RegistryRecord, Role, Signal, Status
from watcher.units import RateSpec, parse_rate
from watcher.vocabulary import Language

_SEARCH_PATH = "/search"
# ``include`` only works together with ``minimal=true`` (OpenAPI, search-api ``app/doc/open-api.yml``);
# it trims the secondary blocks (finances, complements, tva…) the watcher never reads.
_SEARCH_EXTRAS = {"minimal": "true", "include": "dirigeants,siege"}
_NATURAL_PERSON = "personne physique"
_LEGAL_PERSON = "personne morale"
# The parts SIRENE builds ``adresse`` from, in its order; used when ``adresse`` itself is missing.
_ADDRESS_PARTS = (
    "complement_adresse",
    "numero_voie",
    "indice_repetition",
    "type_voie",
    "libelle_voie",
    "distribution_speciale",
    "code_postal",
    "libelle_commune",
    "cedex",
    "libelle_cedex",
    "libelle_commune_etranger",
    "libelle_pays_etranger",
)


class FrRechercheOptions(VendorOptions):
    """The directory's options, the BODACC's host, and the signals (``cadence`` as the vendors')."""

    base_url: str = "https://recherche-entreprises.api.gouv.fr"
    # Documented ceiling: 7 requests per second per IP (and 30 per ASN), answered with 429 + Retry-After.
    rate: RateSpec = parse_rate("7/s")
    # The BODACC is opt-in: a deployment whose firewall allows only the directory keeps working.
    signals: tuple[Signal, ...] | None = (Signal.REGISTRY,)
    bodacc_base_url: str = "https://bodacc-datadila.opendatasoft.com"
    # 100 notices a page; more pages than this fails the check (never a partial list).
    bodacc_max_pages: int = Field(default=10, ge=1, le=100)


@register("fr_recherche")
class FrRechercheSource(HttpSource):
    """The French company directory: current directors and status, no shareholders or history."""

    Options: ClassVar[type[SourceOptions]] = FrRechercheOptions
    display_names: ClassVar[Mapping[Language, str]] = {
        Language.EN: "Recherche d'entreprises",
        Language.ZH_CN: "法国 Recherche d'entreprises",
    }
    endpoints: ClassVar[tuple[str, ...]] = ("search",)
    optional_endpoints: ClassVar[tuple[str, ...]] = ("bodacc",)
    supported_signals: ClassVar[frozenset[Signal]] = frozenset({Signal.REGISTRY, Signal.INSOLVENCY})
    identifier_name: ClassVar[str] = "SIREN"
    settings: FrRechercheOptions

    id_kind: ClassVar[str | None] = "fr_siren"
    jurisdiction: ClassVar[str | None] = "fr"

    def __init__(self, name: str, options: SourceOptions, *, timing: Timing = Timing()) -> None:
        super().__init__(name, options, timing=timing)
        self._bodacc_http: HttpPolicy | None = None

    def headers(self) -> dict[str, str]:
        """JSON only; the shared policy already sends the descriptive User-Agent the API asks for."""
        return {"Accept": "application/json"}

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        context = {"source": self.name, "registry_id": registry_id}
        params = {"q": registry_id, "page": "1", "per_page": "1", **_SEARCH_EXTRAS}
        response = await self.http.get(_SEARCH_PATH, params=params, registry_id=registry_id)
        if response.status == 400:
            raise ParseError(f"search: HTTP 400 ({_error_message(response.preview)})", **context)
        raise_for_status(response, what="search", context=context)
        return {"search": response.text}

    async def fetch_signals(self, registry_id: str, signals: frozenset[Signal]) -> dict[str, str]:
        """The directory's answer, and the BODACC's when the insolvency signal is asked for."""
        raw = await self.fetch_raw(registry_id)
        if Signal.INSOLVENCY in signals:
            raw["bodacc"] = await self._bodacc(registry_id)
        return raw

    @property
    def bodacc_http(self) -> HttpPolicy:
        """The BODACC's client: the source's policy (rate, retries, deadline) on the BODACC's host."""
        if self._bodacc_http is None:
            options = self.settings.model_copy(update={"base_url": self.settings.bodacc_base_url})
            self._bodacc_http = HttpPolicy(
                self.name, options, headers=self.headers(), charsets=self.charsets(), timing=self.timing
            )
        return self._bodacc_http

    async def _bodacc(self, siren: str) -> str:
        """Every procédure collective notice naming ``siren``, all pages in one saved document. An
        error envelope, a page short of what ``total_count`` promises, a total that moves between
        pages or more than ``bodacc_max_pages`` pages fails the check: a partial list reads as lifted."""
        context = {"source": self.name, "registry_id": siren}
        where = f'registre like "{siren}" and familleavis = "{fr_bodacc.COLLECTIVE}"'
        results: list[object] = []
        total = 0
        page = 0
        while page == 0 or len(results) < total:
            what = f"bodacc page {page + 1}"
            params = {
                "where": where,
                "order_by": "dateparution",
                "limit": str(fr_bodacc.PAGE_SIZE),
                "offset": str(page * fr_bodacc.PAGE_SIZE),
            }
            response = await self.bodacc_http.get(fr_bodacc.DATASET_PATH, params=params, registry_id=siren)
            if response.status == 400:  # Opendatasoft's error envelope: our query is wrong, never data
                fr_bodacc.read_page(response.preview, what)
            raise_for_status(response, what=what, context=context, status_says_missing=False)
            answer = fr_bodacc.read_page(response.text, what)
            if page == 0:
                total = answer.total
                if total > self.settings.bodacc_max_pages * fr_bodacc.PAGE_SIZE:
                    raise ParseError(
                        f"bodacc: {total} notices need more than bodacc_max_pages="
                        f"{self.settings.bodacc_max_pages}",
                        **context,
                    )
            elif answer.total != total:
                raise ParseError(f"{what}: total_count {answer.total} where page 1 said {total}", **context)
            due = min(fr_bodacc.PAGE_SIZE, total - len(results))
            if len(answer.results) != due:
                raise ParseError(
                    f"{what}: {len(answer.results)} notices where {due} were due (of {total})", **context
                )
            results.extend(answer.results)
            page += 1
        if page == 1:
            return response.text
        return json.dumps({"total_count": total, "results": results}, ensure_ascii=False)

    async def aclose(self) -> None:
        await super().aclose()
        if self._bodacc_http is not None:
            await self._bodacc_http.aclose()
            self._bodacc_http = None

    # -- mapping ----------------------------------------------------------------------------------

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        if "search" not in raw:
            raise ParseError("no search response")
        document = as_object(load_json(raw["search"], what="search"), "search")
        if "results" not in document:
            raise ParseError("search response has no results list")
        wanted = "".join(registry_id.split())
        company = _matching_result(as_list(document["results"], "results"), wanted)

        name = clean_text(as_text(company.get("nom_raison_sociale"), "nom_raison_sociale")) or clean_text(
            as_text(company.get("nom_complet"), "nom_complet")
        )
        if not name:
            raise ParseError(f"result for {wanted} has neither nom_raison_sociale nor nom_complet")
        people = _directors(company.get("dirigeants"))
        record = RegistryRecord(
            source=source,
            registry_id=wanted,
            name=name,
            status=_status(company),
            registered_capital=None,
            address=_address(company.get("siege")),
            legal_representative=_legal_representative(people),
            people=people,
            shareholders=None,
            controllers=None,
            finance_head=None,
            change_log=None,
        )
        if "bodacc" in raw:  # else unknown: nothing is lifted by not asking
            record = replace(record, bankruptcies=fr_bodacc.bankruptcies(raw["bodacc"], wanted))
        return record


def _error_message(text: str) -> str:
    """The ``erreur`` text of a 400 answer, or a short note when the body is something else."""
    try:
        body = load_json(text, what="error body")
    except SourceError:
        return "no readable error message"
    message = body.get("erreur") if isinstance(body, dict) else None
    return clean_text(message) if isinstance(message, str) and message.strip() else "no error message"


def _matching_result(results: list[object], siren: str) -> Mapping[str, object]:
    """The result for ``siren``. A search can answer with other companies; never map one of those."""
    for index, item in enumerate(results):
        result = as_object(item, f"results[{index}]")
        if "".join(as_text(result.get("siren"), f"results[{index}].siren").split()) == siren:
            return result
    if results:
        raise NotFoundError(f"the search returned {len(results)} other result(s) but not SIREN {siren}")
    raise NotFoundError(f"no company with SIREN {siren} (non-diffusible companies are not published)")


def _status(company: Mapping[str, object]) -> Status | None:
    """``A`` is active, ``C`` (cessée) is closed; the closing date goes into the raw wording."""
    state = clean_text(as_text(company.get("etat_administratif"), "etat_administratif")).upper()
    if not state:
        return None
    if state == "A":
        return Status(CompanyStatus.ACTIVE, "A (active)")
    if state == "C":
        closed_on = clean_text(as_text(company.get("date_fermeture"), "date_fermeture"))
        raw = f"C (cessée le {closed_on})" if closed_on else "C (cessée)"
        return Status(CompanyStatus.DEREGISTERED, raw)
    return Status(CompanyStatus.OTHER, state)


def _address(value: object) -> str | None:
    """The head office's one-line ``adresse``, or the same line rebuilt from its parts."""
    if value is None:
        return None
    head_office = as_object(value, "siege")
    line = clean_text(as_text(head_office.get("adresse"), "siege.adresse"))
    if line:
        return line
    parts = (clean_text(as_text(head_office.get(part), f"siege.{part}")) for part in _ADDRESS_PARTS)
    return " ".join(part for part in parts if part) or None


def _directors(value: object) -> tuple[Person, ...] | None:
    """Current directors; a missing list is unknown, an empty list is a company without any on file."""
    if value is None:
        return None
    return tuple(
        _director(as_object(item, f"dirigeants[{index}]"), f"dirigeants[{index}]")
        for index, item in enumerate(as_list(value, "dirigeants"))
    )


def _director(item: Mapping[str, object], what: str) -> Person:
    """A natural person keyed by name + birth month, or a company keyed by its SIREN."""
    kind = clean_text(as_text(item.get("type_dirigeant"), f"{what}.type_dirigeant")).casefold()
    title = clean_text(as_text(item.get("qualite"), f"{what}.qualite"))
    is_company = kind == _LEGAL_PERSON or (
        kind != _NATURAL_PERSON and (item.get("denomination") is not None or item.get("siren") is not None)
    )
    if is_company:
        name = clean_text(as_text(item.get("denomination"), f"{what}.denomination"))
        siren = "".join(as_text(item.get("siren"), f"{what}.siren").split())
        key = person_key(name, registry_id=f"siren:{siren}" if siren else None)
    else:
        first_names = as_text(item.get("prenoms"), f"{what}.prenoms")
        name = clean_text(f"{first_names} {as_text(item.get('nom'), f'{what}.nom')}")
        birth = clean_text(as_text(item.get("date_de_naissance"), f"{what}.date_de_naissance"))
        if not birth:
            birth = clean_text(as_text(item.get("annee_de_naissance"), f"{what}.annee_de_naissance"))
        key = person_key(name, birth=birth)
    if not name:
        raise ParseError(f"{what} has no name")
    return Person(name=name, key=key, roles=roles_from_title(title), role_text=title)


def _legal_representative(people: tuple[Person, ...] | None) -> Person | None:
    """The Président / Gérant. Co-gérants: the first by identity key, so list order never matters."""
    representatives = [person for person in people or () if Role.LEGAL_REPRESENTATIVE in person.roles]
    return min(representatives, key=lambda person: person.key, default=None)
