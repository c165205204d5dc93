"""Property tests of the pure core's trust rules: control characters never survive normalisation, and
only a real mass disappearance is held for confirmation."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import registry_records, statuses
from watcher.normalize import clean_text, normalize_record
from watcher.record import LISTING_SECTIONS as LISTING_SECTION_OF
from watcher.record import CompanyStatus, Listing, ListingState, Party, record_as_dict
from watcher.rules import vanished_sections

LISTING_SECTIONS = tuple(LISTING_SECTION_OF.values())

CONTROLS = [chr(code) for code in (*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0))]
hostile_text = st.text(alphabet=st.sampled_from([*CONTROLS, "a", "王", " ", "\n", "\t", "\r"]), max_size=30)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@given(hostile_text)
def test_no_control_character_survives_cleaning(text):
    assert not set(clean_text(text)) & set(CONTROLS)


@given(registry_records(all_present=True), hostile_text)
def test_no_control_character_survives_in_any_normalised_field(record, noise):
    assert record.name is not None and record.legal_representative is not None
    dirty = replace(
        record,
        name=noise + record.name + noise,
        address=(record.address or "") + noise,
        legal_representative=replace(
            record.legal_representative, name=noise + record.legal_representative.name
        ),
    )
    for text in _strings(record_as_dict(normalize_record(dirty))):
        assert not set(text) & set(CONTROLS), repr(text)


@settings(suppress_health_check=[HealthCheck.too_slow])  # two full records a draw: slow on a busy machine
@given(registry_records(all_present=True), registry_records(all_present=True))
def test_only_sections_that_held_someone_and_are_empty_now_are_held(old, new):
    vanished = vanished_sections(old, new)
    for section in vanished:
        if section in LISTING_SECTIONS:
            assert getattr(old, section) and getattr(new, section) is not None
        else:
            assert getattr(old, section) and getattr(new, section) == ()
    people_stay = all(getattr(new, section) for section in ("people", "shareholders", "controllers"))
    if people_stay and all(getattr(new, s) == getattr(old, s) for s in LISTING_SECTIONS):
        assert vanished == ()


@given(registry_records(all_present=True), statuses())
def test_everyone_gone_is_held_unless_the_status_explains_it(old, status):
    new = replace(old, people=(), shareholders=(), controllers=(), status=status)
    explained = status.code in {
        CompanyStatus.LIQUIDATION,
        CompanyStatus.BANKRUPT,
        CompanyStatus.REVOKED,
        CompanyStatus.DEREGISTERED,
    }
    held = bool(old.people or old.shareholders or old.controllers) and not explained
    assert bool(vanished_sections(old, new)) == held


@given(registry_records(all_present=True), statuses())
def test_every_listing_in_force_gone_without_a_trace_is_held(old, status):
    """A vendor's "no result" (Qichacha 201, Tianyancha 300000) on a court list that held a
    dishonest-debtor listing is held for a confirming fetch, whatever the status: never at once an
    info "lifted" and, when the vendor recovers, a critical "listed" all over again. A listing marked
    lifted, or one gone while another in force stays, is news at once."""
    listed = Listing(
        key="(2025)苏0506执5821号", state=ListingState.ACTIVE, case_number="(2025)苏0506执5821号"
    )
    lifted = Listing(key="(2019)苏0506执3302号", state=ListingState.LIFTED)
    before = replace(old, dishonest_debtors=(listed, lifted))
    assert "dishonest_debtors" in vanished_sections(
        before, replace(before, dishonest_debtors=(), status=status)
    )
    assert "dishonest_debtors" in vanished_sections(
        before, replace(before, dishonest_debtors=(lifted,), status=status)
    )
    now_lifted = replace(listed, state=ListingState.LIFTED)
    for after in ((now_lifted, lifted), None, (listed,)):
        assert "dishonest_debtors" not in vanished_sections(before, replace(before, dishonest_debtors=after))
    person = replace(listed, party=Party.LEGAL_REPRESENTATIVE, party_name="周明远")
    with_person = replace(old, consumption_restrictions=(person,))
    assert "consumption_restrictions" not in vanished_sections(
        with_person, replace(with_person, consumption_restrictions=())
    )
