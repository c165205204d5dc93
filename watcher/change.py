"""One change event before it is stored, and how an amount reads in its before and after: shared by
the record diff and the risk listings' diff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from watcher.record import KEY_PERSON_CATEGORIES, Action, Category, Money, Party


@dataclass(frozen=True, slots=True)
class Change:
    """One change event before it is stored: what, to whom, before → after, and when if known.

    ``from_change_log`` marks a change seen only in the source's own change log, not in the
    structured sections (such a change may be dated before our baseline: then it is history).
    """

    category: Category
    action: Action
    subject: str
    before: str | None
    after: str | None
    effective_date: date | None = None
    from_change_log: bool = False
    # Risk listings: against whom (the company, or a key person named by ``party_name``), whether
    # this change puts a listing in force (new, or listed again), and whether it was already in
    # force when the list was first checked (at onboarding, or when a signal was first fetched).
    party: Party | None = None
    party_name: str = ""
    raises_listing: bool = False
    first_seen: bool = False

    @property
    def key_person(self) -> bool:
        return self.category in KEY_PERSON_CATEGORIES


def money_text(money: Money | None) -> str | None:
    """An amount as a change shows it: normalised with its currency, else the registry's own words."""
    if money is None:
        return None
    if money.amount is None:
        return money.raw
    amount = f"{money.amount.normalize():,f}"
    return f"{amount} {money.currency}" if money.currency else amount
