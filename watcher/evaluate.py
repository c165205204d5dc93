"""What one successful check means, decided without a database: the pure heart of the pipeline.

Given what is stored about a borrower (:class:`StoredState`) and the record just fetched, return an
:class:`Evaluation`: a baseline, nothing new, a mass disappearance still awaiting its confirming
fetch, or changes with their occasions and assessment. ``watcher.pipeline`` loads the state, calls
:func:`evaluate` and persists the result; every rule lives here, where property tests reach it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from watcher.diff import Change, diff, listing_changes
from watcher.normalize import content_hash, normalize_record
from watcher.record import KEY_PERSON_CATEGORIES, LISTING_SECTIONS, RegistryRecord
from watcher.rules import Assessment, RuleSettings, assess, vanished_sections
from watcher.vocabulary import AlertKind


class Outcome(StrEnum):
    BASELINE = "baseline"  # the first successful check: stored, silent but for the signatory
    UNCHANGED = "unchanged"  # same content; only the signatory check may have something to say
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # held until a second fetch agrees
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the database holds about a borrower that a check's meaning depends on.

    ``previous`` is the last stored record (None before the baseline); ``earlier_occasions`` the
    days of key-person change occasions already counted, within the review window.
    """

    baseline_at: datetime | None
    content_hash: str | None
    previous: RegistryRecord | None = None
    earlier_occasions: tuple[date, ...] = ()
    legal_rep_on_file: str | None = None
    signatory_mismatch: str | None = None
    pending_hash: str | None = None
    pending_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class HistoricalOccasion:
    """A key-person change the source dates before our baseline: counts, never alerts on its own."""

    day: date
    evidence: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision about one check; ``pipeline`` stores exactly this.

    ``changes`` are all change events to store, ``news`` those that belong to the alert (the rest is
    late history). ``hold`` starts (or keeps) the wait for a confirming fetch; ``confirmed`` says the
    snapshot ends such a wait and keeps the first fetch as evidence.
    """

    outcome: Outcome
    assessment: Assessment
    record: RegistryRecord
    digest: str
    changes: tuple[Change, ...] = ()
    news: tuple[Change, ...] = ()
    historical: tuple[HistoricalOccasion, ...] = ()
    hold: bool = False
    confirmed: bool = False

    @property
    def stores_snapshot(self) -> bool:
        return self.outcome in (Outcome.BASELINE, Outcome.CHANGED)

    @property
    def alerts(self) -> bool:
        return self.assessment.severity is not None

    @property
    def alert_kind(self) -> AlertKind:
        """A baseline alerts only about risk listings already in force: "active at onboarding"."""
        return AlertKind.ONBOARDING if self.outcome is Outcome.BASELINE and self.news else AlertKind.CHANGE


def evaluate(
    state: StoredState,
    record: RegistryRecord,
    digest: str,
    *,
    now: datetime,
    settings: RuleSettings,
    confirm_after: timedelta,
) -> Evaluation:
    """The meaning of a successful check that found ``record`` (normalised, content hash ``digest``).

    ``Evaluation.record`` is what to store: ``record`` with the sections it left unknown carried
    forward from the last stored record (a section a source could not provide this time is not
    forgotten, so a later change to it is still compared against what was last known).
    """
    if state.baseline_at is None:
        history = _change_log_history(record)
        onboarding = _active_at_onboarding(record)
        assessment = _assess(state, record, now, settings, news=onboarding)
        return Evaluation(
            Outcome.BASELINE,
            assessment,
            record,
            digest,
            changes=onboarding,
            news=onboarding,
            historical=history,
        )
    if state.previous is not None:
        known = carry_forward(state.previous, record)
        if known is not record:
            record, digest = known, content_hash(known)
    if state.content_hash == digest:
        return Evaluation(Outcome.UNCHANGED, _assess(state, record, now, settings), record, digest)
    previous = state.previous or record  # no stored record to compare with: nothing to report
    if vanished_sections(previous, record) and not _confirms(state, digest, now, confirm_after):
        return Evaluation(Outcome.AWAITING_CONFIRMATION, _silence(state), record, digest, hold=True)
    return _changed(state, previous, record, digest, now, settings)


def _changed(
    state: StoredState,
    previous: RegistryRecord,
    record: RegistryRecord,
    digest: str,
    now: datetime,
    settings: RuleSettings,
) -> Evaluation:
    """The changes since ``previous``: news to alert, late history to count, and their assessment."""
    assert state.baseline_at is not None
    changes = tuple(diff(previous, record))
    baseline_day = state.baseline_at.date()
    late = tuple(change for change in changes if _before(change, baseline_day))
    news = tuple(change for change in changes if change not in late)
    historical = tuple(
        HistoricalOccasion(change.effective_date, change.subject)
        for change in late
        if change.key_person and change.effective_date
    )
    # Earlier occasions matter only when something changed (the pipeline reads them only then).
    counted = (*state.earlier_occasions, *(occasion.day for occasion in historical)) if changes else ()
    return Evaluation(
        Outcome.CHANGED,
        _assess(state, record, now, settings, news=news, counted=counted),
        record,
        digest,
        changes=changes,
        news=news,
        historical=historical,
        confirmed=state.pending_hash == digest,
    )


_SECTIONS = tuple(f.name for f in fields(RegistryRecord) if f.name not in ("source", "registry_id"))


def carry_forward(previous: RegistryRecord, record: RegistryRecord) -> RegistryRecord:
    """``record`` with each section it left unknown (None) taken from ``previous``; ``record`` itself
    when it left none unknown that ``previous`` knew."""
    known = {
        name: getattr(previous, name)
        for name in _SECTIONS
        if getattr(record, name) is None and getattr(previous, name) is not None
    }
    return replace(record, **known) if known else record


def _before(change: Change, baseline_day: date) -> bool:
    """Seen only in the source's change log, dated before our baseline: history, not news."""
    day = change.effective_date
    return change.from_change_log and day is not None and day < baseline_day


def _confirms(state: StoredState, digest: str, now: datetime, confirm_after: timedelta) -> bool:
    """A second fetch, at least ``confirm_after`` after the first, showing the same content."""
    return (
        state.pending_hash == digest
        and state.pending_since is not None
        and now - state.pending_since >= confirm_after
    )


def _assess(
    state: StoredState,
    record: RegistryRecord,
    now: datetime,
    settings: RuleSettings,
    *,
    news: tuple[Change, ...] = (),
    counted: tuple[date, ...] = (),
) -> Assessment:
    return assess(
        news,
        record=record,
        detected_on=now.date(),
        earlier_occasions=counted,
        settings=settings,
        legal_rep_on_file=state.legal_rep_on_file,
        previous_mismatch=state.signatory_mismatch,
    )


def _silence(state: StoredState) -> Assessment:
    """Nothing to say and nothing to remember: the signatory on file stays as judged before."""
    return Assessment(
        severity=None,
        occasions=(),
        occasions_in_window=0,
        recommend_early_repayment=False,
        signatory_mismatch=state.signatory_mismatch,
        signatory_warning=False,
    )


def _active_at_onboarding(record: RegistryRecord) -> tuple[Change, ...]:
    """The risk listings in force at the first check: registry-card facts are silent at a baseline,
    but an officer must learn on day one that a new borrower is, say, already a dishonest debtor."""
    record = normalize_record(record)
    return tuple(
        change
        for category in LISTING_SECTIONS
        for change in listing_changes(category, None, record.listings(category))
    )


def _change_log_history(record: RegistryRecord) -> tuple[HistoricalOccasion, ...]:
    """Key-person changes the source dates before our baseline still count toward the window."""
    return tuple(
        HistoricalOccasion(entry.date, entry.item)
        for entry in record.change_log or ()
        if entry.date is not None and entry.categories & KEY_PERSON_CATEGORIES
    )
