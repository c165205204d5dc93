"""Severity rules from bank post-loan practice.

A key-person change (legal representative, director, shareholder, finance head, controller, actual
controller, signing authority) is a warning; more than ``frequent_after`` key-person change *occasions* within
``window`` is high risk (raise a risk warning, consider calling the loan early); a status of
deregistered, revoked, bankrupt, liquidation or abnormal operation is critical. A risk listing
coming into force has its category's severity (:data:`LISTING_SEVERITY`: a dishonest-debtor listing
is critical, a new pledge high…), and a high or critical one recommends the same actions as frequent
key-person changes; its removal or lifting is info. Anything else is info.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from watcher.diff import Change
from watcher.normalize import listing_identity, text_key
from watcher.record import (
    CRITICAL_STATUSES,
    FLAG_CATEGORIES,
    LISTING_CATEGORIES,
    LISTING_SECTIONS,
    Action,
    Category,
    CompanyStatus,
    Listing,
    ListingState,
    Party,
    RegistryRecord,
)
from watcher.vocabulary import Severity  # defined with the other vocabularies; still importable from here

# Severity of a risk listing that comes into force (its removal or lifting is info).
LISTING_SEVERITY: dict[Category, Severity] = {
    Category.ABNORMAL_OPERATION: Severity.CRITICAL,
    Category.SERIOUS_VIOLATION: Severity.CRITICAL,
    Category.EQUITY_PLEDGE: Severity.HIGH,
    Category.CHATTEL_MORTGAGE: Severity.WARNING,
    Category.ENFORCEMENT: Severity.HIGH,
    Category.DISHONEST_DEBTOR: Severity.CRITICAL,
    Category.CONSUMPTION_RESTRICTION: Severity.HIGH,
    Category.BANKRUPTCY: Severity.CRITICAL,
    # Companies House: a new outstanding charge is a new secured creditor ranking ahead of or beside
    # the bank (as a new pledge); overdue filings, a disputed or undeliverable registered office and
    # a PSC statement (ownership unknown or unconfirmed) are warnings.
    Category.CHARGE: Severity.HIGH,
    Category.FILING_OVERDUE: Severity.WARNING,
    Category.REGISTERED_OFFICE_ISSUE: Severity.WARNING,
    Category.PSC_STATEMENT: Severity.WARNING,
}
assert set(LISTING_SEVERITY) == LISTING_CATEGORIES


def change_severity(change: Change) -> Severity:
    """The severity one change has on its own, before the key-person window is counted.

    Key-person changes are warnings (the window may raise them to high risk, see :func:`assess`).
    """
    if change.category in LISTING_SEVERITY:
        return LISTING_SEVERITY[change.category] if change.raises_listing else Severity.INFO
    if change.category is Category.BENEFICIAL_OWNER:
        return Severity.INFO if change.action is Action.REMOVED else Severity.WARNING
    if change.key_person:
        return Severity.WARNING
    return Severity.INFO


@dataclass(frozen=True, slots=True)
class RuleSettings:
    window: timedelta = timedelta(days=365)
    frequent_after: int = 1


@dataclass(frozen=True, slots=True)
class Assessment:
    """What one check means for the bank.

    ``severity`` is None when there is nothing to alert. ``occasions`` are this check's new
    key-person change occasions (to be remembered for later windows); ``occasions_in_window``
    counts them together with the earlier ones still inside the window.
    """

    severity: Severity | None
    occasions: tuple[date, ...]
    occasions_in_window: int
    recommend_early_repayment: bool
    signatory_mismatch: str | None
    signatory_warning: bool


def occasions_of(changes: Iterable[Change], detected_on: date) -> tuple[date, ...]:
    """Key-person change occasions of one check.

    The key-person changes of one check are one occasion, unless the source dates them on different
    days: then each distinct effective date is an occasion and undated changes join the latest one.
    With no dates at all, the occasion is the day of detection.
    """
    key_changes = [change for change in changes if change.key_person]
    if not key_changes:
        return ()
    dates = {change.effective_date for change in key_changes if change.effective_date is not None}
    if not dates:
        return (detected_on,)
    return tuple(sorted(dates))


def count_in_window(occasions: Iterable[date], detected_on: date, window: timedelta) -> int:
    """Distinct occasion days within ``window`` before (and including) the day of detection."""
    start = detected_on - window
    return len({day for day in occasions if start <= day <= detected_on})


def registry_signatories(record: RegistryRecord) -> tuple[str, ...]:
    """Who the registry says can sign for the company: its signing authority (signature and
    procuration holders) when it lists any, else the legal representative; names sorted."""
    if record.signing_authority:
        return tuple(sorted({person.name for person in record.signing_authority}, key=text_key))
    if record.legal_representative is not None:
        return (record.legal_representative.name,)
    return ()


def signatory_mismatch(record: RegistryRecord, legal_rep_on_file: str | None) -> str | None:
    """The registry's signatories when the bank's signatory on file is none of them, else None.

    With signing authority, the one on file matches when it is any holder: a joint signature
    ("i fellesskap") needs others too, but the bank's signatory is still one who may sign.
    """
    names = registry_signatories(record)
    if not legal_rep_on_file or not names:
        return None
    if any(text_key(name) == text_key(legal_rep_on_file) for name in names):
        return None
    return ", ".join(names)


def assess(
    changes: Sequence[Change],
    *,
    record: RegistryRecord,
    detected_on: date,
    earlier_occasions: Iterable[date],
    settings: RuleSettings,
    legal_rep_on_file: str | None = None,
    previous_mismatch: str | None = None,
) -> Assessment:
    """Severity of one check's changes, given the borrower's earlier key-person occasions."""
    occasions = occasions_of(changes, detected_on)
    in_window = count_in_window([*earlier_occasions, *occasions], detected_on, settings.window)
    mismatch = signatory_mismatch(record, legal_rep_on_file)
    mismatch_is_new = mismatch is not None and (
        previous_mismatch is None or text_key(previous_mismatch) != text_key(mismatch)
    )

    levels = [change_severity(change) for change in changes]
    frequent = bool(occasions) and in_window > settings.frequent_after
    if frequent:
        levels.append(Severity.HIGH)
    if mismatch_is_new:
        levels.append(Severity.WARNING)
    if any(_turned_critical(change, record) for change in changes):
        levels.append(Severity.CRITICAL)
    grave_listing = any(
        change.category in LISTING_SEVERITY and change_severity(change).rank >= Severity.HIGH.rank
        for change in changes
    )
    return Assessment(
        severity=max(levels, key=lambda level: level.rank) if levels else None,
        occasions=occasions,
        occasions_in_window=in_window,
        recommend_early_repayment=frequent or grave_listing,
        signatory_mismatch=mismatch,
        signatory_warning=mismatch_is_new,
    )


def _turned_critical(change: Change, record: RegistryRecord) -> bool:
    return (
        change.category is Category.STATUS
        and record.status is not None
        and record.status.code in CRITICAL_STATUSES
    )


# A company that is dissolved, bankrupt or being wound up may well have lost its people: that
# explains an empty section. Abnormal operation does not.
_EXPLAINS_DISAPPEARANCE = frozenset(
    {CompanyStatus.LIQUIDATION, CompanyStatus.BANKRUPT, CompanyStatus.REVOKED, CompanyStatus.DEREGISTERED}
)


def vanished_sections(old: RegistryRecord, new: RegistryRecord) -> tuple[str, ...]:
    """The sections of people (officers, shareholders, controllers, actual controllers, beneficial
    owners) that held someone before and are empty now, unless the new status explains it; and the
    risk lists whose every listing in force against the company is gone without a trace (not marked
    removed or lifted, simply absent).

    Registries answer with empty lists when something on their side breaks (Brønnøysund's
    ``{"rollegrupper": []}``, Qichacha's empty ``Employees`` and ``Partners``, a Qichacha Status 201
    or a Tianyancha 300000 "no result" on a court list): such a change is held until a second fetch
    confirms it, never alerted at once as "everyone left" or "every listing lifted" (and then, when
    the vendor recovers, as a critical listing all over again). Flags read from the registry card's
    own fields (:data:`FLAG_CATEGORIES`) are no list: a flag cleared is the registry's answer.
    """
    vanished = [
        section
        for category, section in LISTING_SECTIONS.items()
        if category not in FLAG_CATEGORIES
        and _listings_vanished(getattr(old, section), getattr(new, section))
    ]
    if new.status is not None and new.status.code in _EXPLAINS_DISAPPEARANCE:
        return tuple(vanished)
    for section in ("people", "shareholders", "controllers", "actual_controllers", "beneficial_owners"):
        before, after = getattr(old, section), getattr(new, section)
        if before and after is not None and not after:
            vanished.append(section)
    return tuple(vanished)


def _listings_vanished(before: tuple[Listing, ...] | None, after: tuple[Listing, ...] | None) -> bool:
    if not before or after is None:
        return False
    in_force = {
        listing_identity(listing)
        for listing in before
        if listing.state is ListingState.ACTIVE and listing.party is Party.COMPANY
    }
    return bool(in_force) and in_force.isdisjoint(listing_identity(listing) for listing in after)
