"""The borrower page's control and risk sections, read from the latest stored record.

A section the source did not fetch is ``None`` in the record and shows as "not fetched", never as
"none": an officer must not read a missing list as a clean one. Listings in force come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from watcher.record import (
    LISTING_SECTIONS,
    Category,
    Controller,
    Listing,
    ListingState,
    Money,
    RegistryRecord,
)

CONTROL_SECTIONS: dict[Category, str] = {
    Category.ACTUAL_CONTROLLER: "actual_controllers",
    Category.BENEFICIAL_OWNER: "beneficial_owners",
}

# The sections each family of registries fills: the Chinese vendors' and Companies House's (both
# fill bankruptcies). An unknown section reads "not fetched" only in a family the record shows it
# belongs to (one of its sections is known); another family's lists are simply not offered.
_FAMILIES: tuple[frozenset[Category], ...] = (
    frozenset(
        {
            *CONTROL_SECTIONS,
            Category.ABNORMAL_OPERATION,
            Category.SERIOUS_VIOLATION,
            Category.EQUITY_PLEDGE,
            Category.CHATTEL_MORTGAGE,
            Category.ENFORCEMENT,
            Category.DISHONEST_DEBTOR,
            Category.CONSUMPTION_RESTRICTION,
            Category.BANKRUPTCY,
        }
    ),
    frozenset(
        {
            Category.BANKRUPTCY,
            Category.CHARGE,
            Category.FILING_OVERDUE,
            Category.REGISTERED_OFFICE_ISSUE,
            Category.PSC_STATEMENT,
        }
    ),
)
_SHARED = frozenset.intersection(*_FAMILIES)
assert frozenset.union(*_FAMILIES) == frozenset(LISTING_SECTIONS) | frozenset(CONTROL_SECTIONS)


@dataclass(frozen=True, slots=True)
class ControlSection:
    category: Category
    controllers: tuple[Controller, ...] | None  # None: not fetched


@dataclass(frozen=True, slots=True)
class ListingSection:
    category: Category
    listings: tuple[Listing, ...] | None  # None: not fetched; in force first, then newest first

    @property
    def active(self) -> int:
        return sum(1 for listing in self.listings or () if listing.state is ListingState.ACTIVE)

    @property
    def pledges(self) -> bool:
        """Pledges and mortgages name a pledgor and a pledgee (mortgagor and mortgagee)."""
        return any(listing.pledgor or listing.pledgee for listing in self.listings or ())


@dataclass(frozen=True, slots=True)
class RiskProfile:
    control: tuple[ControlSection, ...]
    listings: tuple[ListingSection, ...]

    @property
    def known(self) -> bool:
        """Whether the source fetched any of these sections (registries without them show none)."""
        return any(section.controllers is not None for section in self.control) or any(
            section.listings is not None for section in self.listings
        )


def _in_force_first(listing: Listing) -> tuple[bool, int]:
    listed = listing.listed_on or date.min
    return listing.state is not ListingState.ACTIVE, -listed.toordinal()


def _shown(record: RegistryRecord) -> frozenset[Category]:
    """The categories of the families ``record`` belongs to (by a known section no other family
    fills), and every known one."""
    known = {category for category in LISTING_SECTIONS if record.listings(category) is not None}
    known |= {
        category for category, section in CONTROL_SECTIONS.items() if getattr(record, section) is not None
    }
    shown = set(known)
    for family in _FAMILIES:
        if known & (family - _SHARED):
            shown |= family
    return frozenset(shown)


def risk_profile(record: RegistryRecord) -> RiskProfile:
    """The sections of ``record``'s registry; categories with entries first (in the fixed order),
    then the empty and the unknown ones, which take a line each."""
    shown = _shown(record)
    sections = [
        ListingSection(
            category,
            None
            if record.listings(category) is None
            else tuple(sorted(record.listings(category) or (), key=_in_force_first)),
        )
        for category in LISTING_SECTIONS
        if category in shown
    ]
    return RiskProfile(
        control=tuple(
            ControlSection(category, getattr(record, section))
            for category, section in CONTROL_SECTIONS.items()
            if category in shown
        ),
        listings=tuple(sorted(sections, key=lambda section: not section.listings)),
    )


def money_text(money: Money | None) -> str:
    """An amount as the registry wrote it when it has text, else the parsed value."""
    if money is None:
        return ""
    if money.raw:
        return money.raw
    if money.amount is None:
        return ""
    return f"{money.amount:,f} {money.currency or ''}".strip()
