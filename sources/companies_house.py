"""UK Companies House Public Data API (free, with a key sent as HTTP Basic username).

Three calls per company make the registry card: the profile, the officer list (current and resigned
officers, dated) and the persons with significant control (PSC). Both lists are paged; every page is
collected and merged into one JSON document so the stored raw payload replays to the same record.
The officer and PSC dates become the change log, which lets the pipeline date changes and count the
ones made before our baseline toward the review window. The profile's flags (overdue filings, a
registered office in dispute or undeliverable) are risk listings of the card.

Three further signals are separate requests, each chosen by ``[sources.NAME] signals`` and refreshed
on its own ``cadence``: ``charges`` (the register of charges), ``insolvency`` (insolvency cases) and
``psc_statements``; they are mapped in :mod:`sources.companies_house_risk`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sources import companies_house_people as people
from sources import companies_house_risk as risk
from sources import register
from sources.base import SourceOptions, as_date, as_object, as_text, load_json
from sources.change_feed import ChangeFeed, FeedOptions
from sources.companies_house_stream import DEFAULT_STREAMS, KNOWN_STREAMS, CompaniesHouseStream
from sources.http import HttpSource
from sources.http.options import VendorOptions
from sources.http.policy import basic_auth
from sources.http.responses import HttpResponse, raise_for_status, registry_answer
from watcher.errors import ParseError, TransientError
from watcher.normalize import clean_text
from watcher.record import (
    CompanyStatus,
    RegistryRecord,
    Signal,
    Status,
)
from watcher.units import Duration, RateSpec, parse_rate
from watcher.vocabulary import Language

# A company's officer history rarely passes a few hundred rows; more pages than this means the API
# is not advancing, and a partial list must never be mapped (missing officers would look resigned).
MAX_PAGES = 50
# The API's documented behaviour for a company without PSC data is a 404 on the list: no controllers.
NO_PSC_DOCUMENT = {"items": [], "total_results": 0}
_PSC_NOT_FOUND = "company-psc-not-found"
# A company without insolvency cases answers 404 with this error (a captured answer); one without
# charges or PSC statements answers 404 with Companies House's own "…-not-found" error (wording not
# verified, so any such code of its error envelope is accepted, see ``_none_answer``).
_INSOLVENCY_NOT_FOUND = "company-insolvencies-not-found"

_STATUS_CODES: dict[str, CompanyStatus] = {
    "active": CompanyStatus.ACTIVE,
    "dissolved": CompanyStatus.DEREGISTERED,
    "removed": CompanyStatus.DEREGISTERED,
    "closed": CompanyStatus.DEREGISTERED,
    "converted-closed": CompanyStatus.DEREGISTERED,
    "liquidation": CompanyStatus.LIQUIDATION,
    "receivership": CompanyStatus.LIQUIDATION,
    "administration": CompanyStatus.LIQUIDATION,
    "voluntary-arrangement": CompanyStatus.LIQUIDATION,
    # UK companies are wound up, not made bankrupt (bankruptcy is for individuals): insolvency
    # proceedings are liquidation-type proceedings, and both codes are critical anyway.
    "insolvency-proceedings": CompanyStatus.LIQUIDATION,
}
# An active company the registrar proposes to strike off (for failing to file, or on its own DS01
# application) is about to be dissolved: the UK counterpart of abnormal operation (经营异常).
_STRIKE_OFF_DETAIL = "active-proposal-to-strike-off"


class CompaniesHouseOptions(VendorOptions, FeedOptions):
    base_url: str = "https://api.company-information.service.gov.uk"
    api_key: str = Field(min_length=1, repr=False)
    # The Streaming API: its own key (another key type in the developer hub), its own host. Without a
    # key the streams are not followed (every company is polled at the normal interval).
    stream_key: str | None = Field(default=None, min_length=1, repr=False)
    stream_url: str = "https://stream.companieshouse.gov.uk"
    streams: tuple[str, ...] = DEFAULT_STREAMS
    # How long one read holds a stream open before its position is committed and the next stream read.
    stream_window: Duration = timedelta(seconds=20)

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(KNOWN_STREAMS))
        if unknown:
            raise ValueError(f"unknown stream(s) {', '.join(unknown)} (known: {', '.join(KNOWN_STREAMS)})")
        if not value:
            raise ValueError("name at least one stream, or set feed = false")
        return tuple(dict.fromkeys(value))

    @field_validator("stream_url")
    @classmethod
    def _http_stream_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise PydanticCustomError("change_feed", "stream_url must start with https:// (or http://)")
        return value.rstrip("/")

    @field_validator("stream_window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise PydanticCustomError("change_feed", "stream_window must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _stream_key_for_an_explicit_feed(self) -> CompaniesHouseOptions:
        if "feed" in self.model_fields_set and self.feed and not self.stream_key:
            raise PydanticCustomError(
                "change_feed", 'feed = true needs stream_key (the Streaming API key, e.g. "${CH_STREAM_KEY}")'
            )
        return self

    # The documented limit: 600 requests per rolling five minutes per key.
    rate: RateSpec = parse_rate("600/5m")
    # The API's default pages are small (35 officers, 25 PSCs); 100 is what clients use in practice.
    items_per_page: int = Field(default=100, ge=1, le=100)


@register("companies_house")
class CompaniesHouseSource(HttpSource):
    """Companies House: name, status, registered office, officers with dates, and PSCs; charges,
    insolvency cases and PSC statements as signals."""

    Options: ClassVar[type[SourceOptions]] = CompaniesHouseOptions
    display_names: ClassVar[Mapping[Language, str]] = {
        Language.EN: "Companies House",
        Language.ZH_CN: "英国 Companies House",
    }
    endpoints: ClassVar[tuple[str, ...]] = ("profile", "officers", "psc")
    optional_endpoints: ClassVar[tuple[str, ...]] = ("charges", "insolvency", "psc_statements")
    supported_signals: ClassVar[frozenset[Signal]] = frozenset(
        {Signal.REGISTRY, Signal.CHARGES, Signal.INSOLVENCY, Signal.PSC_STATEMENTS}
    )
    settings: CompaniesHouseOptions

    id_kind: ClassVar[str | None] = "uk_company_number"
    jurisdiction: ClassVar[str | None] = "gb"

    def headers(self) -> dict[str, str]:
        """The key is the Basic-auth username with an empty password, as Companies House documents."""
        return {"Accept": "application/json", "Authorization": basic_auth(self.settings.api_key, "")}

    def change_feeds(self) -> tuple[ChangeFeed, ...]:
        """The configured streams, when a stream key is set and ``feed`` is not turned off."""
        settings = self.settings
        if not settings.feed or not settings.stream_key:
            return ()
        return tuple(
            CompaniesHouseStream(
                stream,
                base_url=settings.stream_url,
                stream_key=settings.stream_key,
                normalise=self.normalise_id,
                window=settings.stream_window,
                verify=settings.ca_bundle or True,
                proxy=settings.proxy,
            )
            for stream in settings.streams
        )

    # -- fetching ---------------------------------------------------------------------------------

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        return await self.fetch_signals(registry_id, self.enabled_signals - set(self.unavailable_signals))

    async def fetch_signals(self, registry_id: str, signals: frozenset[Signal]) -> dict[str, str]:
        """The registry card (profile, officers, PSCs), then each wanted signal's request. Any failure
        fails the whole check: a signal is never half there, and never read as "none" from an error."""
        context = {"source": self.name, "registry_id": registry_id}
        profile = await self.http.get(f"/company/{registry_id}", registry_id=registry_id)
        raise_for_status(
            profile,
            what="company profile",
            context=context,
            not_found=f"Companies House has no company {registry_id}",
        )
        company = f"/company/{registry_id}"
        raw = {"profile": profile.text}
        raw["officers"] = await self._all_pages(f"{company}/officers", "officers", context)
        raw["psc"] = await self._all_pages(
            f"{company}/persons-with-significant-control",
            "psc",
            context,
            when_missing=lambda response: _none_answer(
                response, "psc", NO_PSC_DOCUMENT, context, {_PSC_NOT_FOUND}
            ),
        )
        if Signal.CHARGES in signals:
            raw["charges"] = await self._all_pages(
                f"{company}/charges",
                "charges",
                context,
                total_key="total_count",
                when_missing=lambda response: _no_charges(response, profile.text, context),
            )
        if Signal.INSOLVENCY in signals:
            raw["insolvency"] = await self._insolvency(f"{company}/insolvency", context)
        if Signal.PSC_STATEMENTS in signals:
            raw["psc_statements"] = await self._all_pages(
                f"{company}/persons-with-significant-control-statements",
                "psc_statements",
                context,
                when_missing=lambda response: _none_answer(
                    response, "psc_statements", risk.NO_STATEMENTS_DOCUMENT, context
                ),
            )
        return raw

    async def _insolvency(self, path: str, context: dict) -> str:
        """The insolvency cases (one document, not paged); Companies House's 404 with
        ``company-insolvencies-not-found`` is "no cases", any other failure fails the check."""
        response = await self.http.get(path, registry_id=context["registry_id"])
        if response.status == 404:
            return _none_answer(
                response, "insolvency", risk.NO_CASES_DOCUMENT, context, {_INSOLVENCY_NOT_FOUND}
            )
        raise_for_status(response, what="insolvency", context=context)
        return response.text

    async def _all_pages(
        self,
        path: str,
        what: str,
        context: dict,
        *,
        total_key: str = "total_results",
        when_missing: Callable[[HttpResponse], str] | None = None,
    ) -> str:
        """Every item of a paged list as one document; the first page's own text when it holds all.

        The next page starts after the items received so far, so a server that caps the page size
        below ``items_per_page`` is still read in full. A 404 on the first page is ``when_missing``'s
        to read (the registry's "none", or a failure); without it, a failure.
        """
        items: list[object] = []
        first_page: dict[str, object] = {}
        first_text = ""
        total = 0
        for page_number in range(MAX_PAGES):
            response = await self.http.get(
                path,
                params={"items_per_page": str(self.settings.items_per_page), "start_index": str(len(items))},
                registry_id=context["registry_id"],
            )
            what_page = f"{what} page {page_number + 1}"
            if response.status == 404 and page_number == 0 and when_missing is not None:
                return when_missing(response)
            if response.status == 404:
                # The profile was found a moment ago: a missing list (or page) is not "no such company".
                raise ParseError(f"{what_page}: HTTP 404 for a company that exists", **context)
            raise_for_status(response, what=what_page, context=context)
            page = _list_page(response.text, what_page, context)
            page_total, page_items = _page_total_and_items(page, what_page, context, total_key)
            if page_number == 0:
                first_page, first_text, total = page, response.text, page_total
            elif page_total != total:
                raise TransientError(
                    f"{what} changed while being read ({total} then {page_total} items); read it again",
                    **context,
                )
            items.extend(page_items)
            if len(items) >= total:
                if page_number == 0:
                    return first_text
                merged = {**first_page, "items": items, "start_index": 0, "items_per_page": len(items)}
                return json.dumps(merged, ensure_ascii=False)
            if not page_items:
                raise ParseError(f"{what_page} is empty after {len(items)} of {total} items", **context)
        raise ParseError(f"{what} has more than {MAX_PAGES} pages; refusing a partial list", **context)

    # -- mapping ----------------------------------------------------------------------------------

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        profile, number, name = _profile(raw, registry_id)
        created_on = as_date(profile.get("date_of_creation"), "date_of_creation")
        officers = None if raw.get("officers") is None else people.officers(raw["officers"])
        pscs = None if raw.get("psc") is None else people.pscs(raw["psc"])
        charges, cases, statements = raw.get("charges"), raw.get("insolvency"), raw.get("psc_statements")
        return RegistryRecord(
            source=source,
            registry_id=number,
            name=name,
            status=_status(profile),
            registered_capital=None,  # only in filed documents (SH01, CS01), not in the API's JSON
            address=_address(profile.get("registered_office_address")),
            legal_representative=None,  # no such role in UK company law
            people=None if officers is None else tuple(o.person for o in officers if o.current),
            shareholders=None,  # the API lists PSCs (25 % or more, or control), not the members
            controllers=None if pscs is None else tuple(p.controller for p in pscs if p.current),
            finance_head=None,  # not a registered role; ``occupation`` is free text
            change_log=people.change_log(officers, pscs, founded_on=created_on),
            bankruptcies=None if cases is None else risk.insolvency_cases(cases),
            charges=None if charges is None else risk.charges(charges),
            filings_overdue=risk.filings_overdue(profile),
            registered_office_issues=risk.registered_office_issues(profile),
            psc_statements=None if statements is None else risk.psc_statements(statements),
        )


def _none_answer(
    response: HttpResponse,
    what: str,
    none: Mapping[str, object],
    context: dict,
    codes: frozenset[str] | set[str] | None = None,
) -> str:
    """The document of "none" (``none``) for a 404 that is Companies House's own error answer: one
    of ``codes`` (any ``…-not-found`` but the profile's when None); anything else in its place is a
    failed fetch, never "none"."""
    document = registry_answer(response, what=what, context=context)
    errors = document.get("errors") if isinstance(document, dict) else None
    listed = errors if isinstance(errors, list) else []
    found = {error.get("error") for error in listed if isinstance(error, dict)}
    if codes is not None:
        said = bool(found & codes)
    else:
        said = any(
            isinstance(code, str) and code.endswith("-not-found") and code != people.PROFILE_NOT_FOUND
            for code in found
        )
    if not said:
        expected = ", ".join(sorted(codes)) if codes else "…-not-found"
        raise ParseError(f"{what}: HTTP 404 without Companies House's {expected} answer", **context)
    return json.dumps(none)


def _no_charges(response: HttpResponse, profile_text: str, context: dict) -> str:
    """A 404 on the charges is "no charges" only from Companies House's own error answer and for a
    company whose profile does not say ``has_charges``: the two answers must agree."""
    profile = load_json(profile_text, what="profile", **context)
    if isinstance(profile, dict) and profile.get("has_charges") is True:
        raise ParseError("charges: HTTP 404 for a company whose profile says has_charges", **context)
    return _none_answer(response, "charges", risk.NO_CHARGES_DOCUMENT, context)


# -- profile --------------------------------------------------------------------------------------


def _profile(raw: Mapping[str, str], registry_id: str) -> tuple[dict[str, object], str, str]:
    """The company profile with its number and name; refused unless it is this company's, named."""
    if "profile" not in raw:
        raise ParseError("no profile response")
    profile = as_object(load_json(raw["profile"], what="profile"), "profile")
    people.refuse_error_envelope(profile, "profile")
    number = clean_text(as_text(profile.get("company_number"), "company_number")).upper()
    if not number:
        raise ParseError("profile has no company_number")
    if number != clean_text(registry_id).upper():
        raise ParseError(f"profile is for {number}, not {registry_id}")
    name = clean_text(as_text(profile.get("company_name"), "company_name"))
    if not name:
        raise ParseError("profile has no company_name")
    return profile, number, name


def _status(profile: Mapping[str, object]) -> Status | None:
    status = clean_text(as_text(profile.get("company_status"), "company_status")).casefold()
    if not status:
        return None
    detail = clean_text(as_text(profile.get("company_status_detail"), "company_status_detail")).casefold()
    code = _STATUS_CODES.get(status, CompanyStatus.OTHER)
    if code is CompanyStatus.ACTIVE and detail == _STRIKE_OFF_DETAIL:
        code = CompanyStatus.ABNORMAL
    return Status(code, f"{status} ({detail})" if detail else status)


_ADDRESS_PARTS = (
    "premises",
    "address_line_1",
    "address_line_2",
    "po_box",
    "locality",
    "region",
    "postal_code",
    "country",
)


def _address(value: object) -> str | None:
    """One line, in postal order; ``care_of`` is a person, not part of the place."""
    if value is None:
        return None
    address = as_object(value, "registered_office_address")
    parts = (
        clean_text(as_text(address.get(part), f"registered_office_address.{part}")) for part in _ADDRESS_PARTS
    )
    return ", ".join(part for part in parts if part) or None


# -- officers and PSCs ----------------------------------------------------------------------------


def _list_page(text: str, what: str, context: dict) -> dict[str, object]:
    document = load_json(text, what=what, **context)
    if not isinstance(document, dict):
        raise ParseError(f"{what} is not an object", **context)
    people.refuse_error_envelope(document, what, **context)
    return document


def _page_total_and_items(
    page: Mapping[str, object], what: str, context: dict, total_key: str = "total_results"
) -> tuple[int, list[object]]:
    total = page.get(total_key)
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ParseError(f"{what} has no {total_key}", **context)
    items = page.get("items", [] if total == 0 else None)
    if not isinstance(items, list):
        raise ParseError(f"{what} has no items list", **context)
    return total, items
