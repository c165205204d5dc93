"""The pure evaluation of a check, without a database: property tests of ``watcher.evaluate``."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import strategies as S
from watcher.diff import diff
from watcher.evaluate import Outcome, StoredState, evaluate
from watcher.normalize import content_hash, normalize_record
from watcher.record import KEY_PERSON_CATEGORIES, CompanyStatus, Status
from watcher.rules import RuleSettings, Severity

BASELINE_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CONFIRM_AFTER = timedelta(minutes=10)
RULES = RuleSettings()
SLOW = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _run(state: StoredState, record, now=NOW):
    record = normalize_record(record)
    return evaluate(state, record, content_hash(record), now=now, settings=RULES, confirm_after=CONFIRM_AFTER)


def _stored(previous, **fields) -> StoredState:
    previous = normalize_record(previous)
    return StoredState(
        baseline_at=BASELINE_AT, content_hash=content_hash(previous), previous=previous, **fields
    )


@given(S.registry_records(), st.one_of(st.none(), st.text(min_size=1, max_size=8)))
@SLOW
def test_a_baseline_stores_no_change_and_remembers_dated_key_person_history(record, on_file):
    evaluation = _run(StoredState(baseline_at=None, content_hash=None, legal_rep_on_file=on_file), record)
    assert evaluation.outcome is Outcome.BASELINE and evaluation.stores_snapshot
    assert evaluation.changes == () and evaluation.news == () and evaluation.assessment.occasions == ()
    expected = [
        (entry.date, entry.item)
        for entry in normalize_record(record).change_log or ()
        if entry.date is not None and entry.categories & KEY_PERSON_CATEGORIES
    ]
    assert [(o.day, o.evidence) for o in evaluation.historical] == expected
    # Silent, but for the signatory on file, which the officer must hear of on day one.
    assert evaluation.assessment.severity in (None, Severity.WARNING)
    assert (evaluation.assessment.severity is None) == (not evaluation.assessment.signatory_warning)


@given(S.registry_records(), st.randoms(use_true_random=False))
@SLOW
def test_the_same_facts_reformatted_are_unchanged(record, rnd):
    reformatted = S.apply_noise(record, random.Random(rnd.random()))
    evaluation = _run(_stored(record), reformatted)
    assert evaluation.outcome is Outcome.UNCHANGED and not evaluation.stores_snapshot
    assert evaluation.changes == () and not evaluation.alerts


@given(S.registry_records(all_present=True), S.registry_records(all_present=True))
@SLOW
def test_changes_are_the_diff_and_only_news_alerts(old, new):
    old = replace(old, status=Status(CompanyStatus.ACTIVE, "active"))
    evaluation = _run(_stored(old), new)
    if evaluation.outcome is Outcome.AWAITING_CONFIRMATION:
        assert evaluation.changes == () and not evaluation.alerts and evaluation.hold
        return
    assert evaluation.outcome in (Outcome.CHANGED, Outcome.UNCHANGED)
    if evaluation.outcome is Outcome.UNCHANGED:
        return
    assert list(evaluation.changes) == diff(normalize_record(old), normalize_record(new))
    late = [c for c in evaluation.changes if c not in evaluation.news]
    assert all(c.from_change_log and c.effective_date < BASELINE_AT.date() for c in late)
    assert evaluation.alerts == bool(evaluation.news or evaluation.assessment.signatory_warning)


@given(S.registry_records(all_present=True).filter(lambda r: bool(r.people)))
@SLOW
def test_everyone_gone_waits_for_a_second_fetch_at_least_confirm_after_later(record):
    record = replace(record, status=Status(CompanyStatus.ACTIVE, "active"))
    emptied = replace(record, people=(), shareholders=(), controllers=())
    first = _run(_stored(record), emptied)
    assert first.outcome is Outcome.AWAITING_CONFIRMATION and first.hold and not first.alerts
    digest = content_hash(normalize_record(emptied))
    waiting = _stored(record, pending_hash=digest, pending_since=NOW)
    assert _run(waiting, emptied, now=NOW + CONFIRM_AFTER / 2).outcome is Outcome.AWAITING_CONFIRMATION
    confirmed = _run(waiting, emptied, now=NOW + CONFIRM_AFTER)
    assert confirmed.outcome is Outcome.CHANGED and confirmed.confirmed and confirmed.changes
    # A different answer after the wait does not confirm the first one.
    other = replace(emptied, name=(record.name or "") + " X")
    assert _run(waiting, other, now=NOW + CONFIRM_AFTER).outcome is Outcome.AWAITING_CONFIRMATION


@given(S.registry_records(all_present=True))
@SLOW
def test_a_status_that_explains_the_disappearance_is_stored_at_once(record):
    record = replace(record, status=Status(CompanyStatus.ACTIVE, "active"))
    bankrupt = replace(
        record, people=(), shareholders=(), controllers=(), status=Status(CompanyStatus.BANKRUPT, "x")
    )
    evaluation = _run(_stored(record), bankrupt)
    assert evaluation.outcome is Outcome.CHANGED and evaluation.assessment.severity is Severity.CRITICAL


@given(S.registry_records(all_present=True), S.registry_records())
@SLOW
def test_sections_a_source_left_unknown_keep_their_last_known_value(previous, record):
    evaluation = _run(_stored(previous), record)
    for name in (
        "name",
        "status",
        "address",
        "legal_representative",
        "people",
        "shareholders",
        "controllers",
    ):
        if getattr(record, name) is None:
            assert getattr(evaluation.record, name) == getattr(normalize_record(previous), name)
    # Nothing that was known is reported as changed because it is unknown now.
    assert all(
        getattr(record, change.category.value, "known") is not None
        for change in evaluation.changes
        if change.category.value in ("name", "address")
    )
