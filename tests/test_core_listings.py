"""Properties of the pure core for the Chinese vendors' sections: risk listings, actual controllers
and beneficial owners (record round trip, normalisation, diff, severity, onboarding).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import strategies as S
from tests.test_core_properties import EXPECTED_LISTING_SEVERITY
from watcher.diff import diff, listing_changes
from watcher.evaluate import Outcome, StoredState, evaluate
from watcher.normalize import comparable_content, content_hash, listing_identity, normalize_record, text_key
from watcher.record import (
    FLAG_CATEGORIES,
    LISTING_SECTIONS,
    Action,
    Category,
    Controller,
    HolderKind,
    Listing,
    ListingState,
    Money,
    Party,
    Person,
    RegistryRecord,
    Role,
    record_as_dict,
    record_from_dict,
)
from watcher.rules import RuleSettings, change_severity, vanished_sections
from watcher.vocabulary import AlertKind, Severity

FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
CENT = Decimal("0.01")

CASE_NUMBERS = ("(2026)苏0506执412号", "(2025)苏05执恢18号", "(2026)沪0115破申3号", "GQ2026-0012", "")
REASONS = ("通过登记的住所或者经营场所无法联系的", "未依照规定报送年度报告", "有履行能力而拒不履行", "")
AUTHORITIES = ("苏州市吴中区市场监督管理局", "苏州市吴中区人民法院", "上海市浦东新区人民法院", "")
PEOPLE = ("周明远", "沈丽华", "顾嘉禾", "陆海川")
COMPANIES = ("苏州恒岳控股集团有限公司", "江苏长岳商业银行股份有限公司苏州分行", "无锡锦程供应链管理有限公司")


@st.composite
def listings(draw) -> Listing:
    party = draw(st.sampled_from(list(Party)))
    removed_on = draw(st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2026, 5, 1))))
    state = draw(st.sampled_from(list(ListingState)))
    amount = draw(st.one_of(st.none(), st.integers(1, 10**9)))
    return Listing(
        key=draw(st.from_regex(r"[0-9a-f]{8,32}", fullmatch=True)),
        state=state,
        party=party,
        party_name="" if party is Party.COMPANY else draw(st.sampled_from(PEOPLE)),
        case_number=draw(st.sampled_from(CASE_NUMBERS)),
        reason=draw(st.sampled_from(REASONS)),
        authority=draw(st.sampled_from(AUTHORITIES)),
        amount=None if amount is None else Money(Decimal(amount).quantize(CENT), "CNY", str(amount)),
        listed_on=draw(st.one_of(st.none(), st.dates(date(2018, 1, 1), date(2026, 5, 1)))),
        removed_on=removed_on if state is not ListingState.ACTIVE else None,
        removal_reason="" if state is ListingState.ACTIVE else draw(st.sampled_from(REASONS)),
        pledgor=draw(st.sampled_from(("", *PEOPLE))),
        pledgee=draw(st.sampled_from(("", *COMPANIES))),
    )


def unique_listings(max_size: int = 5) -> st.SearchStrategy[tuple[Listing, ...]]:
    return st.lists(
        listings(), max_size=max_size, unique_by=lambda item: (item.party, item.party_name, item.key)
    ).map(tuple)


@st.composite
def risk_records(draw, all_present: bool = False) -> RegistryRecord:
    """A record of a Chinese vendor with control and listing sections, each possibly unknown."""
    base = draw(S.registry_records(max_items=2))
    maybe = (lambda strategy: strategy) if all_present else (lambda strategy: st.one_of(st.none(), strategy))
    sections = {section: draw(maybe(unique_listings())) for section in LISTING_SECTIONS.values()}
    return replace(
        base,
        actual_controllers=draw(maybe(S.unique_list(S.controllers(), 2))),
        beneficial_owners=draw(maybe(S.unique_list(S.controllers(), 3))),
        **sections,
    )


def noisy_listing(listing: Listing, rnd: random.Random) -> Listing:
    def noisy(text: str) -> str:
        return S.noisy_text(text, rnd, case=False) if text else text

    return replace(
        listing,
        key=noisy(listing.key),
        party_name=noisy(listing.party_name),
        case_number=noisy(listing.case_number),
        reason=noisy(listing.reason),
        authority=noisy(listing.authority),
        removal_reason=noisy(listing.removal_reason),
        pledgor=noisy(listing.pledgor),
        pledgee=noisy(listing.pledgee),
    )


def reformatted(record: RegistryRecord, rnd: random.Random) -> RegistryRecord:
    """The same facts in another order and formatting, as a vendor may send them another day."""
    noisy = S.apply_noise(record, rnd)
    sections = {
        section: S.shuffled(
            None
            if getattr(record, section) is None
            else tuple(noisy_listing(item, rnd) for item in getattr(record, section)),
            rnd,
        )
        for section in LISTING_SECTIONS.values()
    }
    return replace(
        noisy,
        actual_controllers=S.shuffled(record.actual_controllers, rnd),
        beneficial_owners=S.shuffled(record.beneficial_owners, rnd),
        **sections,
    )


@FAST
@given(risk_records())
def test_round_trip_through_json(record):
    assert record_from_dict(record_as_dict(record)) == record


@FAST
@given(risk_records(), st.randoms(use_true_random=False))
def test_order_and_formatting_of_lists_are_no_change(record, rnd):
    other = reformatted(record, rnd)
    assert content_hash(other) == content_hash(record)
    assert diff(record, other) == []


@FAST
@given(risk_records())
def test_normalisation_is_idempotent(record):
    once = normalize_record(record)
    assert normalize_record(once) == once


@FAST
@given(S.registry_records())
def test_records_without_the_new_sections_hash_as_before(record):
    """Upgrading must not make every stored snapshot look changed: no new keys when unknown."""
    content = comparable_content(record)
    assert not set(content) & {"actual_controllers", "beneficial_owners", *LISTING_SECTIONS.values()}
    assert "actual_controllers" not in record_as_dict(record)


@FAST
@given(risk_records(all_present=True), st.sampled_from(sorted(LISTING_SECTIONS)), listings())
def test_one_new_active_listing_is_exactly_one_raising_change(record, category, listing):
    section = LISTING_SECTIONS[category]
    existing = getattr(record, section)
    fresh = replace(listing, key="new" + listing.key, state=ListingState.ACTIVE, removed_on=None)
    changes = diff(record, replace(record, **{section: (*existing, fresh)}))
    assert len(changes) == 1
    change = changes[0]
    assert (change.category, change.action, change.raises_listing) == (category, Action.ADDED, True)
    assert change_severity(change) is EXPECTED_LISTING_SEVERITY[category]
    assert (change.party, text_key(change.party_name)) == (fresh.party, text_key(fresh.party_name))


@FAST
@given(risk_records(all_present=True), st.sampled_from(sorted(LISTING_SECTIONS)), st.data())
def test_leaving_force_is_a_removal_of_info_severity(record, category, data):
    section = LISTING_SECTIONS[category]
    active = [item for item in getattr(record, section) if item.state is ListingState.ACTIVE]
    if not active:
        return
    target = data.draw(st.sampled_from(active))
    lifted = replace(
        target,
        state=data.draw(st.sampled_from([ListingState.REMOVED, ListingState.LIFTED])),
        removed_on=date(2026, 5, 20),
    )
    # Gone from the list entirely (only for company entries: one against a key person who no longer
    # holds the role just stops being asked about, see the example tests below).
    gone = target.party is Party.COMPANY and data.draw(st.booleans())
    others = tuple(item for item in getattr(record, section) if item is not target)
    new = replace(record, **{section: others if gone else (*others, lifted)})
    changes = diff(record, new)
    assert [(c.category, c.action) for c in changes] == [(category, Action.REMOVED)]
    assert change_severity(changes[0]) is Severity.INFO
    assert not changes[0].raises_listing


@FAST
@given(risk_records(all_present=True), st.sampled_from(sorted(LISTING_SECTIONS)), st.data())
def test_listed_again_raises_the_listing(record, category, data):
    section = LISTING_SECTIONS[category]
    ended = [item for item in getattr(record, section) if item.state is not ListingState.ACTIVE]
    if not ended:
        return
    target = data.draw(st.sampled_from(ended))
    again = replace(target, state=ListingState.ACTIVE, removed_on=None, removal_reason="")
    others = tuple(item for item in getattr(record, section) if item is not target)
    changes = diff(record, replace(record, **{section: (*others, again)}))
    assert len(changes) == 1 and changes[0].raises_listing
    assert change_severity(changes[0]) is EXPECTED_LISTING_SEVERITY[category]


@FAST
@given(risk_records(), risk_records())
def test_an_unknown_section_is_never_compared(old, new):
    """Sections the new fetch left unknown produce no change, whatever the old record held."""
    blank = {section: None for section in LISTING_SECTIONS.values()}
    new = replace(new, actual_controllers=None, beneficial_owners=None, **blank)
    categories = {change.category for change in diff(old, new)}
    assert not categories & {*LISTING_SECTIONS, Category.ACTUAL_CONTROLLER, Category.BENEFICIAL_OWNER}


@FAST
@given(st.sampled_from(sorted(LISTING_SECTIONS)), unique_listings())
def test_a_list_read_for_the_first_time_reports_only_what_is_in_force(category, items):
    changes = list(listing_changes(category, None, items))
    active = [item for item in items if item.state is ListingState.ACTIVE]
    assert len(changes) == len(active)
    assert all(c.first_seen and c.raises_listing and c.action is Action.ADDED for c in changes)


def _baseline(record: RegistryRecord):
    normalised = normalize_record(record)
    return evaluate(
        StoredState(baseline_at=None, content_hash=None),
        normalised,
        content_hash(normalised),
        now=NOW,
        settings=RuleSettings(),
        confirm_after=timedelta(minutes=10),
    )


@FAST
@given(risk_records())
def test_onboarding_alerts_exactly_the_listings_in_force(record):
    evaluation = _baseline(record)
    expected = [
        EXPECTED_LISTING_SEVERITY[category]
        for category, section in LISTING_SECTIONS.items()
        for item in normalize_record(record).listings(category) or ()
        if item.state is ListingState.ACTIVE
    ]
    assert evaluation.outcome is Outcome.BASELINE
    assert len(evaluation.news) == len(expected)
    assert all(change.first_seen for change in evaluation.news)
    if expected:
        assert evaluation.alert_kind is AlertKind.ONBOARDING
        assert evaluation.assessment.severity is max(expected, key=lambda level: level.rank)
        assert evaluation.assessment.recommend_early_repayment == any(
            level.rank >= Severity.HIGH.rank for level in expected
        )
    else:
        assert evaluation.alert_kind is AlertKind.CHANGE
        assert evaluation.assessment.severity in (None, Severity.WARNING)  # only a signatory note


def test_a_controller_change_then_a_legal_representative_change_is_high_risk():
    """The actual controller is a key person: with the legal representative it makes two occasions."""
    controller = Controller("周明远", "id:p1", HolderKind.PERSON)
    record = RegistryRecord("qichacha", "91320506MA1WQ3K565", actual_controllers=(controller,))
    state = StoredState(baseline_at=NOW - timedelta(days=200), content_hash="x", previous=record)
    swapped = replace(record, actual_controllers=(replace(controller, name="顾嘉禾", key="id:p2"),))
    first = evaluate(
        state,
        swapped,
        content_hash(swapped),
        now=NOW - timedelta(days=30),
        settings=RuleSettings(),
        confirm_after=timedelta(minutes=10),
    )
    assert first.assessment.severity is Severity.WARNING
    assert [c.category for c in first.news] == [Category.ACTUAL_CONTROLLER, Category.ACTUAL_CONTROLLER]
    rep = Person("沈丽华", "id:p3", frozenset({Role.LEGAL_REPRESENTATIVE}))
    before = replace(swapped, legal_representative=rep)
    after = replace(before, legal_representative=replace(rep, name="陆海川", key="id:p4"))
    second = evaluate(
        replace(state, previous=before, earlier_occasions=first.assessment.occasions),
        after,
        content_hash(after),
        now=NOW,
        settings=RuleSettings(),
        confirm_after=timedelta(minutes=10),
    )
    assert second.assessment.severity is Severity.HIGH
    assert second.assessment.recommend_early_repayment


def _restriction(party: Party, person: str, key: str = "(2026)苏0506执412号") -> Listing:
    return Listing(key=key, state=ListingState.ACTIVE, party=party, party_name=person, case_number=key)


def _rep(name: str) -> Person:
    return Person(name, f"id:{name}", frozenset({Role.LEGAL_REPRESENTATIVE}))


def test_a_listing_keeps_its_identity_when_its_person_changes_role():
    """A restriction naming 周明远 is the same entry after he stops being the legal representative:
    no "lifted" and "listed again" for an entry that did not move."""
    before = RegistryRecord(
        "qichacha",
        "x",
        legal_representative=_rep("周明远"),
        consumption_restrictions=(_restriction(Party.LEGAL_REPRESENTATIVE, "周明远"),),
    )
    after = replace(
        before,
        legal_representative=_rep("顾嘉禾"),
        consumption_restrictions=(_restriction(Party.COMPANY, "周明远"),),
    )
    assert [c.category for c in diff(before, after)] == [Category.LEGAL_REPRESENTATIVE]


def test_a_former_legal_representatives_person_level_entries_leave_silently():
    """The person-level lists follow the current legal representative: the former one's entries are
    no longer asked about, which is not a lifting. The new one's entries are news."""
    before = RegistryRecord(
        "qichacha",
        "x",
        legal_representative=_rep("周明远"),
        enforcements=(_restriction(Party.LEGAL_REPRESENTATIVE, "周明远", "(2026)苏0506执1937号"),),
    )
    after = replace(
        before,
        legal_representative=_rep("顾嘉禾"),
        enforcements=(_restriction(Party.LEGAL_REPRESENTATIVE, "顾嘉禾", "(2026)苏0506执2001号"),),
    )
    changes = diff(before, after)
    listed = [c for c in changes if c.category is Category.ENFORCEMENT]
    assert [(c.action, c.party_name, c.raises_listing) for c in listed] == [(Action.ADDED, "顾嘉禾", True)]
    # While 周明远 is still the legal representative, his entry leaving the list is a removal.
    still = replace(before, enforcements=())
    assert [(c.category, c.action) for c in diff(before, still)] == [(Category.ENFORCEMENT, Action.REMOVED)]


@FAST
@given(risk_records(all_present=True), risk_records(all_present=True))
def test_a_flag_of_the_registry_card_never_waits_for_confirmation(old, new):
    """Flags (overdue filings, a registered office issue) are the registry's own answer when they
    clear; every other list emptied of what was in force against the company is held."""
    held = set(vanished_sections(old, new))
    for category, section in LISTING_SECTIONS.items():
        was = {
            listing_identity(item)
            for item in getattr(old, section) or ()
            if item.state is ListingState.ACTIVE and item.party is Party.COMPANY
        }
        now = {listing_identity(item) for item in getattr(new, section) or ()}
        if category in FLAG_CATEGORIES:
            assert section not in held
        elif was and was.isdisjoint(now):
            assert section in held
