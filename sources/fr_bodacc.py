"""France: the BODACC's procédures collectives (insolvency judgements) mapped to bankruptcy listings.

Pure functions of the saved answer text, used by :class:`sources.fr_recherche.FrRechercheSource` for
its ``insolvency`` signal. The answer is the Opendatasoft Explore API v2.1 records document of the
dataset ``annonces-commerciales`` (``{"total_count": n, "results": [notice, ...]}``); each notice is
one judgement, its ``jugement`` field a JSON string (``nature``, ``date``, ``famille``…).

What identifies a proceeding: the BODACC's open data carries no court case number, and each notice
is one judgement. A company has one collective proceeding at a time (a conversion, a plan de
cession or a plan's failure happens inside the open one), so every judgement that brings a
proceeding (or a harsher stage of it) into force is one listing keyed by its tribunal, its date and
its procedure (``bodacc:<tribunal>|<date>|<procedure>``): a corrected notice (``rectificatif``) of
the same judgement has the same key, and the listing keeps its key when later notices arrive. A
closing judgement (clôture, fin de la procédure, exécution du plan) lifts every listing dated before
it; one of the same day is read first, so a new opening that day stays in force (a missed lifting is
the safer error). Other judgements (a plan de redressement adopted, claims lists, appeals) list nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from sources.base import as_list, as_object, as_text, load_json
from watcher.errors import ParseError, SourceError
from watcher.labels import INSOLVENCY_PROCEDURES
from watcher.normalize import clean_text, text_key
from watcher.record import Listing, ListingState

DATASET_PATH = "/api/explore/v2.1/catalog/datasets/annonces-commerciales/records"
PAGE_SIZE = 100  # the Explore API's ceiling for ``limit``
COLLECTIVE = "collective"  # familleavis of the procédures collectives
CANCELLED = "annulation"  # typeavis of a notice cancelling an earlier one

SAUVEGARDE, REDRESSEMENT, LIQUIDATION, CESSION, RESOLUTION, SORTIE_DE_CRISE, OTHER = INSOLVENCY_PROCEDURES

_MONTHS = {
    "janvier": 1,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "decembre": 12,
}
_FRENCH_DATE = re.compile(r"(\d{1,2})(?:er)?\s+([a-z]+)\s+(\d{4})")


@dataclass(frozen=True, slots=True)
class Page:
    """One records answer: its notices and the ``total_count`` it reported."""

    results: list[object]
    total: int


def read_page(text: str, what: str = "bodacc") -> Page:
    """The notices of one answer; an Opendatasoft error envelope or any other shape is a ParseError."""
    document = as_object(load_json(text, what=what), what)
    if "error_code" in document:
        message = clean_text(as_text(document.get("message"), f"{what}.message"))
        code = clean_text(as_text(document.get("error_code"), f"{what}.error_code"))
        raise ParseError(f"{what}: Opendatasoft error {code or '(no code)'}: {message or 'no message'}")
    total = document.get("total_count")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ParseError(f"{what}: total_count is not a count")
    return Page(as_list(document.get("results"), f"{what}.results"), total)


def complete_results(text: str) -> list[object]:
    """The notices of a saved answer, which must hold all ``total_count`` of them: a partial list
    would read as proceedings lifted."""
    page = read_page(text)
    if len(page.results) != page.total:
        raise ParseError(f"bodacc: {len(page.results)} notices where total_count says {page.total}")
    return page.results


@dataclass(frozen=True, slots=True)
class _Judgement:
    day: date
    tribunal: str
    nature: str
    procedure: str | None  # what it brings into force; None when it brings nothing
    closes: bool


def bankruptcies(text: str, siren: str) -> tuple[Listing, ...]:
    """The company's proceedings from a complete records answer: in force, or lifted by a closing
    judgement dated after them. Notices about other companies or families are ignored."""
    judgements = sorted(
        (
            judgement
            for index, item in enumerate(complete_results(text))
            if (judgement := _judgement(as_object(item, f"results[{index}]"), siren, index)) is not None
        ),
        key=lambda judgement: (judgement.day, not judgement.closes),
    )
    listings: dict[str, Listing] = {}
    for judgement in judgements:
        if judgement.closes:
            for key, listing in listings.items():
                if listing.state is ListingState.ACTIVE:
                    listings[key] = replace(
                        listing,
                        state=ListingState.LIFTED,
                        removed_on=judgement.day,
                        removal_reason=judgement.nature,
                    )
        elif judgement.procedure is not None:
            key = f"bodacc:{text_key(judgement.tribunal)}|{judgement.day.isoformat()}|{judgement.procedure}"
            listings.setdefault(
                key,
                Listing(
                    key=key,
                    state=ListingState.ACTIVE,
                    reason=judgement.procedure,
                    authority=judgement.tribunal,
                    listed_on=judgement.day,
                ),
            )
    return tuple(listings.values())


def _judgement(notice: Mapping[str, object], siren: str, index: int) -> _Judgement | None:
    """One notice as a judgement; None for another company's notice, another family or a cancellation."""
    what = f"results[{index}]"
    if clean_text(as_text(notice.get("familleavis"), f"{what}.familleavis")).casefold() != COLLECTIVE:
        return None
    if siren not in _sirens(notice.get("registre"), f"{what}.registre"):
        return None
    if clean_text(as_text(notice.get("typeavis"), f"{what}.typeavis")).casefold() == CANCELLED:
        return None  # which notice it cancels is not in a shape we know: left as it was (README)
    raw = notice.get("jugement")
    if raw is None:
        return None
    try:
        jugement = as_object(load_json(as_text(raw, f"{what}.jugement"), what=f"{what}.jugement"), what)
    except SourceError as error:
        raise ParseError(f"{what}.jugement: {error}") from None
    nature = clean_text(as_text(jugement.get("nature"), f"{what}.jugement.nature"))
    if not nature:
        raise ParseError(f"{what}.jugement has no nature")
    day = french_date(as_text(jugement.get("date"), f"{what}.jugement.date")) or french_date(
        as_text(notice.get("dateparution"), f"{what}.dateparution")
    )
    if day is None:
        raise ParseError(f"{what} has neither a judgement date nor a publication date")
    tribunal = clean_text(as_text(notice.get("tribunal"), f"{what}.tribunal"))
    closes, procedure = classify(nature)
    return _Judgement(day, tribunal, nature, procedure, closes)


def _sirens(value: object, what: str) -> set[str]:
    """The SIRENs a notice is about: ``registre`` is a list (``["834 217 655", "834217655"]``) in
    v2.1, a comma-separated text in older answers."""
    items = as_list(value, what) if isinstance(value, list) else as_text(value, what).split(",")
    return {"".join(as_text(item, what).split()) for item in items}


def _plain(text: str) -> str:
    """Lower case without accents or typographic apostrophes, for matching the BODACC's wording."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'").casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def classify(nature: str) -> tuple[bool, str | None]:
    """(closes, procedure brought into force) for a judgement's ``nature``.

    Opening, conversion, extension and reopening judgements bring their procedure into force, as do
    a plan de cession and a plan's failure; clôture, the end of a procedure and a plan carried out
    close it. Anything else (plans adopted or modified, claims lists, appeals, sanctions) neither.
    """
    words = _plain(nature)
    if words.startswith(("liste des creances", "depot")) or "cour d'appel" in words:
        return False, None
    if "cloture" in words or "mettant fin" in words or "execution du plan" in words:
        return True, None
    if "resolution du plan" in words:
        return False, _procedure(words.partition("resolution du plan")[2].partition(" et ")[2]) or RESOLUTION
    if "plan de cession" in words:
        return False, CESSION if "arretant" in words else None
    if any(marker in words for marker in ("ouverture", "conversion", "extension", "reprise de la procedure")):
        return False, _procedure(words) or OTHER
    if words.startswith("jugement prononcant") and "liquidation judiciaire" in words:
        return False, LIQUIDATION
    return False, None


def _procedure(words: str) -> str | None:
    """The procedure named by a judgement's (plain) wording; the harshest when a conversion names two."""
    if "liquidation judiciaire" in words:
        return LIQUIDATION
    if "conversion en redressement" in words or "redressement judiciaire" in words:
        return REDRESSEMENT
    if "sortie de crise" in words:
        return SORTIE_DE_CRISE
    if "sauvegarde" in words:
        return SAUVEGARDE
    return None


def french_date(text: str) -> date | None:
    """``2026-03-01`` or the French text ``1er mars 2026``; None when neither."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    match = _FRENCH_DATE.search(_plain(text))
    if match is None or match[2] not in _MONTHS:
        return None
    try:
        return date(int(match[3]), _MONTHS[match[2]], int(match[1]))
    except ValueError:
        return None
