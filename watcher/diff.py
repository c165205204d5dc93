"""Compare two normalised records and name what changed.

Only sections present on both sides are compared: a section the source did not provide is unknown,
not empty. People are compared per change category by identity key (set differences), so a person
who keeps a seat but whose name is spelt differently is not a change, and list order never matters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace

from watcher.change import Change as Change
from watcher.change import money_text
from watcher.listing_diff import listing_changes as listing_changes
from watcher.listing_diff import listing_subject as listing_subject
from watcher.listing_diff import listing_text as listing_text
from watcher.listing_diff import watched_people
from watcher.normalize import ROLE_CATEGORY, log_entry_key, normalize_record, text_key
from watcher.record import (
    LISTING_SECTIONS,
    Action,
    Category,
    ChangeLogEntry,
    Controller,
    Money,
    Person,
    RegistryRecord,
    Role,
    Shareholder,
    Stake,
)


def diff(old: RegistryRecord, new: RegistryRecord) -> list[Change]:
    """Changes from ``old`` to ``new``, each dated by the new record's change log when it can be.

    Both records are normalised first, so callers may pass raw mapped records.
    """
    old, new = normalize_record(old), normalize_record(new)
    changes = [
        *_scalar_changes(old, new),
        *_people_changes(old, new),
        *_signing_changes(old.signing_authority, new.signing_authority),
        *_holder_changes(old, new),
        *_controller_changes(old, new),
        *_control_changes(Category.ACTUAL_CONTROLLER, old.actual_controllers, new.actual_controllers),
        *_control_changes(Category.BENEFICIAL_OWNER, old.beneficial_owners, new.beneficial_owners),
        *(
            change
            for category in LISTING_SECTIONS
            for change in listing_changes(
                category, old.listings(category), new.listings(category), watched=watched_people(new)
            )
        ),
    ]
    fresh_log = _fresh_log_entries(old, new)
    dated = [_dated(change, fresh_log) for change in changes]
    covered = {change.category for change in dated}
    dated.extend(_log_only_changes(old, new, fresh_log, covered))
    return sorted(dated, key=_change_order)


def _change_order(change: Change) -> tuple:
    return (
        list(Category).index(change.category),
        change.subject,
        change.action.value,
        change.before or "",
        change.after or "",
    )


# -- scalar sections ----------------------------------------------------------------------------


def _money_equal(a: Money, b: Money) -> bool:
    if a.amount is None or b.amount is None:
        return text_key(a.raw) == text_key(b.raw)
    return a.amount == b.amount and (a.currency == b.currency or None in (a.currency, b.currency))


def _scalar_changes(old: RegistryRecord, new: RegistryRecord) -> Iterator[Change]:
    if old.name is not None and new.name is not None and text_key(old.name) != text_key(new.name):
        yield Change(Category.NAME, Action.CHANGED, "name", old.name, new.name)
    if old.status is not None and new.status is not None:
        code_changed = old.status.code != new.status.code
        wording_changed = text_key(old.status.raw) != text_key(new.status.raw)
        if code_changed or (wording_changed and new.status.code.value == "other"):
            yield Change(
                Category.STATUS,
                Action.CHANGED,
                "status",
                _status_text(old),
                _status_text(new),
                effective_date=new.status.since,
            )
    if (
        old.registered_capital is not None
        and new.registered_capital is not None
        and not _money_equal(old.registered_capital, new.registered_capital)
    ):
        yield Change(
            Category.REGISTERED_CAPITAL,
            Action.CHANGED,
            "registered capital",
            money_text(old.registered_capital),
            money_text(new.registered_capital),
        )
    if old.address is not None and new.address is not None and text_key(old.address) != text_key(new.address):
        yield Change(Category.ADDRESS, Action.CHANGED, "address", old.address, new.address)
    yield from _single_person_change(
        Category.LEGAL_REPRESENTATIVE,
        old.legal_representative,
        new.legal_representative,
        both_known=_both(old, new, "legal_representative"),
    )
    yield from _single_person_change(
        Category.FINANCE_HEAD, old.finance_head, new.finance_head, both_known=_both(old, new, "finance_head")
    )


def _both(old: RegistryRecord, new: RegistryRecord, section: str) -> bool:
    return getattr(old, section) is not None and getattr(new, section) is not None


def _status_text(record: RegistryRecord) -> str:
    assert record.status is not None
    return (
        f"{record.status.raw} ({record.status.code.value})" if record.status.raw else record.status.code.value
    )


def _same_person(a: Person, b: Person) -> bool:
    """Same key, or (when the two fetches keyed the person differently) the same name."""
    if a.key == b.key:
        return True
    return a.key.split(":", 1)[0] != b.key.split(":", 1)[0] and text_key(a.name) == text_key(b.name)


def _single_person_change(
    category: Category, old: Person | None, new: Person | None, *, both_known: bool
) -> Iterator[Change]:
    if both_known and old is not None and new is not None and not _same_person(old, new):
        yield Change(category, Action.CHANGED, category.value.replace("_", " "), old.name, new.name)


# -- people -------------------------------------------------------------------------------------


def _by_category(people: Iterable[Person]) -> dict[Category, dict[str, tuple[Person, frozenset[Role]]]]:
    """People per change category, with the roles that put them there.

    The legal representative has a section of its own, so the role does not count twice here.
    """
    grouped: dict[Category, dict[str, tuple[Person, frozenset[Role]]]] = defaultdict(dict)
    for person in people:
        roles_by_category: dict[Category, set[Role]] = defaultdict(set)
        for role in person.roles:
            if role is Role.LEGAL_REPRESENTATIVE:
                continue
            roles_by_category[ROLE_CATEGORY[role]].add(role)
        for category, roles in roles_by_category.items():
            grouped[category][person.key] = (person, frozenset(roles))
    return grouped


def _roles_text(person: Person, roles: frozenset[Role]) -> str:
    return person.role_text or ", ".join(sorted(roles))


def _without_signing_seats(record: RegistryRecord) -> tuple[Person, ...]:
    """The officers with the ``other`` seat their signature or procuration gave them taken away:
    that seat is compared as signing authority, not a second time as a manager's."""
    assert record.people is not None
    signing = {person.key for person in record.signing_authority or ()}
    kept = []
    for person in record.people:
        if person.key in signing:
            roles = person.roles - {Role.OTHER}
            if not roles:
                continue
            person = replace(person, roles=roles)
        kept.append(person)
    return tuple(kept)


def _people_changes(old: RegistryRecord, new: RegistryRecord) -> Iterator[Change]:
    if old.people is None or new.people is None:
        return
    old_people, new_people = old.people, new.people
    if old.signing_authority is not None and new.signing_authority is not None:
        # Only when both sides know the section: a snapshot stored before it existed still lists
        # signatories among the officers, and they must not read as managers who left.
        old_people, new_people = _without_signing_seats(old), _without_signing_seats(new)
    before, after = _by_category(old_people), _by_category(new_people)
    for category in sorted(set(before) | set(after), key=list(Category).index):
        was, now = before.get(category, {}), after.get(category, {})
        for key in sorted(set(was) - set(now)):
            person, roles = was[key]
            if _renamed_match(person, now, set(now) - set(was)):
                continue
            yield Change(
                category, Action.REMOVED, person.name, f"{person.name} ({_roles_text(person, roles)})", None
            )
        for key in sorted(set(now) - set(was)):
            person, roles = now[key]
            if _renamed_match(person, was, set(was) - set(now)):
                continue
            yield Change(
                category, Action.ADDED, person.name, None, f"{person.name} ({_roles_text(person, roles)})"
            )
        for key in sorted(set(was) & set(now)):
            (old_person, old_roles), (new_person, new_roles) = was[key], now[key]
            if old_roles != new_roles:
                yield Change(
                    category,
                    Action.CHANGED,
                    new_person.name,
                    _roles_text(old_person, old_roles),
                    _roles_text(new_person, new_roles),
                )


def _signing_changes(old: tuple[Person, ...] | None, new: tuple[Person, ...] | None) -> Iterator[Change]:
    """Who came to bind the company, who no longer does, and whose authority changed its terms
    ("Signatur" → "Signatur i fellesskap"). Compared only when both sides know the section: a
    snapshot stored before it was read (None) is no "everyone was added"."""
    if old is None or new is None:
        return
    category = Category.SIGNING_AUTHORITY
    was, now = {p.key: p for p in old}, {p.key: p for p in new}
    gone, came = set(was) - set(now), set(now) - set(was)
    for key in sorted(gone):
        person = was[key]
        if not any(_same_person(person, now[other]) for other in came):
            yield Change(category, Action.REMOVED, person.name, _signing_text(person), None)
    for key in sorted(came):
        person = now[key]
        if not any(_same_person(person, was[other]) for other in gone):
            yield Change(category, Action.ADDED, person.name, None, _signing_text(person))
    for key in sorted(set(was) & set(now)):
        if text_key(was[key].role_text) != text_key(now[key].role_text):
            yield Change(category, Action.CHANGED, now[key].name, was[key].role_text, now[key].role_text)


def _signing_text(person: Person) -> str:
    return f"{person.name} ({_roles_text(person, person.roles)})"


def _renamed_match(
    person: Person, other_side: dict[str, tuple[Person, frozenset[Role]]], candidates: set[str]
) -> bool:
    """A person keyed differently on the two sides (id on one, name on the other) is the same person."""
    return any(_same_person(person, other_side[key][0]) for key in candidates)


# -- shareholders and controllers ----------------------------------------------------------------


def _stake_text(stake: Stake | None) -> str:
    return str(stake) if stake is not None else "?"


def _holder_text(holder: Shareholder) -> str:
    parts = [holder.name, _stake_text(holder.stake)]
    if holder.subscribed is not None:
        parts.append(money_text(holder.subscribed) or "")
    return " ".join(part for part in parts if part)


def _holder_changes(old: RegistryRecord, new: RegistryRecord) -> Iterator[Change]:
    if old.shareholders is None or new.shareholders is None:
        return
    was = {h.key: h for h in old.shareholders}
    now = {h.key: h for h in new.shareholders}
    for key in sorted(set(was) - set(now)):
        yield Change(Category.SHAREHOLDER, Action.REMOVED, was[key].name, _holder_text(was[key]), None)
    for key in sorted(set(now) - set(was)):
        yield Change(Category.SHAREHOLDER, Action.ADDED, now[key].name, None, _holder_text(now[key]))
    for key in sorted(set(was) & set(now)):
        a, b = was[key], now[key]
        subscribed_changed = (
            a.subscribed is not None
            and b.subscribed is not None
            and not _money_equal(a.subscribed, b.subscribed)
        )
        if a.stake != b.stake or subscribed_changed:
            yield Change(Category.SHAREHOLDER, Action.CHANGED, b.name, _holder_text(a), _holder_text(b))


def _controller_text(controller: Controller) -> str:
    parts = [controller.name]
    if controller.stake is not None:
        parts.append(str(controller.stake))
    if controller.natures:
        parts.append("; ".join(sorted(controller.natures)))
    return " ".join(parts)


def _controller_changes(old: RegistryRecord, new: RegistryRecord) -> Iterator[Change]:
    return _control_changes(Category.CONTROLLER, old.controllers, new.controllers)


def _control_changes(
    category: Category, old: tuple[Controller, ...] | None, new: tuple[Controller, ...] | None
) -> Iterator[Change]:
    """Controllers (PSC, actual controllers, beneficial owners) who came, went or changed stake."""
    if old is None or new is None:
        return
    was = {c.key: c for c in old}
    now = {c.key: c for c in new}
    for key in sorted(set(was) - set(now)):
        if not _renamed_controller(was[key], now, set(now) - set(was)):
            yield Change(category, Action.REMOVED, was[key].name, _controller_text(was[key]), None)
    for key in sorted(set(now) - set(was)):
        if not _renamed_controller(now[key], was, set(was) - set(now)):
            yield Change(category, Action.ADDED, now[key].name, None, _controller_text(now[key]))
    for key in sorted(set(was) & set(now)):
        a, b = was[key], now[key]
        if a.stake != b.stake or a.natures != b.natures:
            yield Change(category, Action.CHANGED, b.name, _controller_text(a), _controller_text(b))


def _renamed_controller(
    controller: Controller, other_side: dict[str, Controller], candidates: set[str]
) -> bool:
    """Keyed by vendor id on one side and by name on the other: the same controller."""
    return any(
        controller.key.split(":", 1)[0] != other_side[key].key.split(":", 1)[0]
        and text_key(controller.name) == text_key(other_side[key].name)
        for key in candidates
    )


# -- the source's own change log ------------------------------------------------------------------


def _fresh_log_entries(old: RegistryRecord, new: RegistryRecord) -> tuple[ChangeLogEntry, ...]:
    """Log rows in ``new`` that ``old`` did not have (all of them when ``old`` had no log section)."""
    if new.change_log is None:
        return ()
    seen = {log_entry_key(entry) for entry in old.change_log or ()}
    return tuple(entry for entry in new.change_log if log_entry_key(entry) not in seen)


def _dated(change: Change, fresh_log: Iterable[ChangeLogEntry]) -> Change:
    """Date a structural change by the newest fresh log row of its category, when there is one; rows
    naming what the change reads (Brønnøysund's "Prokura" group for a "Prokura hver for seg" holder,
    a vendor row naming the new person) first, so two groups changed at once keep their own dates."""
    if change.effective_date is not None:
        return change
    rows = [entry for entry in fresh_log if entry.date and change.category in entry.categories]
    text = f"{change.before or ''} {change.after or ''} {change.subject}"
    naming = [entry for entry in rows if len(entry.after) >= 2 and entry.after in text]
    dates = [entry.date for entry in naming or rows if entry.date is not None]
    if not dates:
        return change
    return replace(change, effective_date=max(dates))


_SECTION_OF_CATEGORY: dict[Category, tuple[str, ...]] = {
    Category.LEGAL_REPRESENTATIVE: ("legal_representative",),
    Category.SHAREHOLDER: ("shareholders",),
    Category.DIRECTOR: ("people",),
    Category.SUPERVISOR: ("people",),
    Category.MANAGER: ("people",),
    Category.FINANCE_HEAD: ("finance_head",),
    Category.CONTROLLER: ("controllers",),
    Category.ACTUAL_CONTROLLER: ("actual_controllers",),
    Category.BENEFICIAL_OWNER: ("beneficial_owners",),
    Category.NAME: ("name",),
    Category.STATUS: ("status",),
    Category.REGISTERED_CAPITAL: ("registered_capital",),
    Category.ADDRESS: ("address",),
    **{category: (section,) for category, section in LISTING_SECTIONS.items()},
    Category.SIGNING_AUTHORITY: ("signing_authority",),
}

# Categories whose section comes from the same answer as their log rows, so the structure sees every
# change the log could: a fresh row of theirs only dates a change, never stands alone (a snapshot
# stored before the section existed would otherwise turn its first log row into news).
_STRUCTURE_ONLY = frozenset({Category.SIGNING_AUTHORITY})


def _log_only_changes(
    old: RegistryRecord, new: RegistryRecord, fresh_log: Iterable[ChangeLogEntry], covered: set[Category]
) -> Iterator[Change]:
    """Fresh log rows about facts the structured sections cannot show (e.g. 财务负责人备案).

    A row whose category is compared structurally (section known on both sides) only dates that
    comparison; it becomes an event of its own only when the structure could not see the change.
    Needs a log on the old side too: a first log is history, not news.
    """
    if old.change_log is None:
        return
    for entry in fresh_log:
        for category in sorted(entry.categories, key=list(Category).index):
            if category in covered or category in _STRUCTURE_ONLY:
                continue
            if all(_both(old, new, section) for section in _SECTION_OF_CATEGORY[category]):
                continue
            yield Change(
                category,
                Action.CHANGED,
                entry.item,
                entry.before or None,
                entry.after or None,
                entry.date,
                from_change_log=True,
            )
            break
