"""What happened to a company's risk listings between two checks (cases, charges, dishonest-debtor
entries...), matched by identity and order-free: the listing half of :mod:`watcher.diff`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from watcher.change import Change, money_text
from watcher.normalize import listing_identity, text_key
from watcher.record import Action, Category, Listing, ListingState, Party, RegistryRecord


def listing_text(listing: Listing) -> str:
    """The facts of a listing in one line, in the registry's own words (shown before → after)."""
    span = ""
    if listing.listed_on or listing.removed_on:
        start = listing.listed_on.isoformat() if listing.listed_on else "?"
        span = f"{start} ~ {listing.removed_on.isoformat()}" if listing.removed_on else start
    parties = " → ".join(part for part in (listing.pledgor, listing.pledgee) if part)
    parts = (
        listing.case_number,
        listing.reason,
        parties,
        listing.authority,
        money_text(listing.amount) or "",
        span,
        listing.removal_reason,
    )
    return " · ".join(part for part in parts if part) or listing.key


def listing_subject(listing: Listing) -> str:
    """What a listing's change names as its subject: the case number, else the reason, else its key."""
    return listing.case_number or listing.reason or listing.key


def _listing_change(
    category: Category,
    action: Action,
    listing: Listing,
    before: Listing | None,
    *,
    raises: bool = False,
    first_seen: bool = False,
) -> Change:
    # A listing gone from the list has nothing after; one that left force shows how it ended.
    show_after = action is not Action.REMOVED or listing.state is not ListingState.ACTIVE
    return Change(
        category,
        action,
        listing_subject(listing),
        None if before is None else listing_text(before),
        listing_text(listing) if show_after else None,
        effective_date=(listing.removed_on if action is Action.REMOVED else listing.listed_on),
        party=listing.party,
        party_name=listing.party_name,
        raises_listing=raises,
        first_seen=first_seen,
    )


def watched_people(record: RegistryRecord) -> Callable[[Listing], bool]:
    """Whether a listing against a key person is still watched: its person still holds the role in
    ``record`` (or the role's section is unknown). The person-level lists follow the current legal
    representative and actual controller; a former one's entries leave them without being lifted."""
    rep = record.legal_representative
    representatives = None if rep is None else {text_key(rep.name)}
    controllers = (
        None if record.actual_controllers is None else {text_key(c.name) for c in record.actual_controllers}
    )

    def watched(listing: Listing) -> bool:
        holders = {Party.LEGAL_REPRESENTATIVE: representatives, Party.ACTUAL_CONTROLLER: controllers}
        names = holders.get(listing.party)
        return names is None or text_key(listing.party_name) in names

    return watched


def listing_changes(
    category: Category,
    old: tuple[Listing, ...] | None,
    new: tuple[Listing, ...] | None,
    *,
    watched: Callable[[Listing], bool] = lambda listing: True,
) -> Iterator[Change]:
    """What happened to the listings of one risk category, matched by identity (order-free).

    A list seen for the first time (``old`` unknown) reports only the listings in force, marked
    ``first_seen``: an officer must learn on day one that the borrower is already a dishonest
    debtor, but a lifted entry from years ago is no news. A listing that leaves the list, or leaves
    force, is a removal; one that comes into force (new, or listed again) raises the listing. An
    entry against a former key person that is simply no longer asked about (``watched`` says no) is
    no removal: it was not lifted.
    """
    if new is None:
        return
    if old is None:
        for listing in new:
            if listing.state is ListingState.ACTIVE:
                yield _listing_change(category, Action.ADDED, listing, None, raises=True, first_seen=True)
        return
    was = {listing_identity(item): item for item in old}
    now = {listing_identity(item): item for item in new}
    for identity in sorted(set(was) - set(now)):
        gone = was[identity]
        if gone.state is ListingState.ACTIVE and watched(gone):
            yield _listing_change(category, Action.REMOVED, gone, gone)
    for identity in sorted(set(now) - set(was)):
        listing = now[identity]
        active = listing.state is ListingState.ACTIVE
        yield _listing_change(category, Action.ADDED, listing, None, raises=active)
    for identity in sorted(set(was) & set(now)):
        change = _kept_listing_change(category, was[identity], now[identity])
        if change is not None:
            yield change


def _kept_listing_change(category: Category, before: Listing, after: Listing) -> Change | None:
    """A listing on both sides: unchanged (None), out of force (removal), back in force (raises
    it again), or changed in its facts."""
    if listing_text(before) == listing_text(after) and before.state is after.state:
        return None
    was_active, is_active = before.state is ListingState.ACTIVE, after.state is ListingState.ACTIVE
    if was_active and not is_active:
        return _listing_change(category, Action.REMOVED, after, before)
    return _listing_change(category, Action.CHANGED, after, before, raises=is_active and not was_active)
