"""How change lines read: the grouping of atomic changes into lines, in the words of :mod:`watcher.labels`.

Pure. The history keeps one stored event per atomic change (the contract's columns, unchanged);
this module only decides how they read. The changes of one person at one occasion become one line
("法定代表人 黄艳 → 赵敏（兼执行董事、总经理）"), a line never repeats its subject inside its value,
stakes read "40% → 55%", statuses and role titles read in the reader's language with the registry's
own term in brackets where it adds something. Stored values are parsed in the shapes
:mod:`watcher.diff` writes them; a value of another shape (older data, a change-log row) is shown
as it is, never dropped. Risk listings and connected-party/-risk changes read in
:mod:`watcher.risk_lines`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from watcher.change_line import ChangeLine
from watcher.connected import one_step_lower, read_link
from watcher.labels import (
    ACTION_LABEL,
    CATEGORY_LABEL,
    WORDS,
    Escape,
    bracket,
    known_titles,
    plain,
    shown_value,
    status_code,
    status_label,
    titles_label,
)
from watcher.normalize import text_key
from watcher.record import CRITICAL_STATUSES, KEY_PERSON_CATEGORIES, LISTING_CATEGORIES, Action, Category
from watcher.risk_lines import CONNECTED, connected_text, connected_value, listing_text
from watcher.rules import LISTING_SEVERITY
from watcher.vocabulary import Language, Severity


@dataclass(frozen=True, slots=True)
class DisplayLine:
    """One line people read, and which atomic changes (indices into the input) it stands for."""

    text: str
    parts: tuple[int, ...]
    severity: Severity
    effective_date: date | None


# -- the values diff writes ------------------------------------------------------------------------


def _person_value(value: str, name: str) -> str | None:
    """The role text of a stored person value "name (role text)", or None if it is not one."""
    head = f"{name} ("
    if value.startswith(head) and value.endswith(")"):
        return value[len(head) : -1]
    return None


@dataclass(frozen=True, slots=True)
class _Holding:
    stake: str
    rest: str


def _holding_value(value: str | None, name: str) -> _Holding | None:
    """A stored holder or controller value "name 40% 20,000,000 CNY" without its name."""
    if value is None or not value.startswith(name):
        return None
    remainder = value[len(name) :].strip()
    if remainder.startswith("("):
        return None
    stake, _, rest = remainder.partition(" ")
    if stake.endswith("%") or stake == "?":
        return _Holding(stake, rest.strip())
    return _Holding("", remainder)


# -- severity ---------------------------------------------------------------------------------------


def change_severity(change: ChangeLine) -> Severity:
    """The severity one stored change shows on its own (the alert's may be higher: the window)."""
    if change.category in LISTING_CATEGORIES:
        return LISTING_SEVERITY[change.category] if change.action is Action.ADDED else Severity.INFO
    if change.category is Category.BENEFICIAL_OWNER:
        return Severity.INFO if change.action is Action.REMOVED else Severity.WARNING
    if change.category is Category.CONNECTED_RISK:
        link = read_link(change.before, change.after)
        listed = link.listing_category if link is not None else None
        return one_step_lower(LISTING_SEVERITY[listed]) if listed is not None else Severity.WARNING
    if change.category is Category.CONNECTED_PARTY:
        return Severity.WARNING
    if change.category is Category.STATUS:
        return Severity.CRITICAL if status_code(change.after) in CRITICAL_STATUSES else Severity.INFO
    return Severity.WARNING if change.category in KEY_PERSON_CATEGORIES else Severity.INFO


def _max_severity(levels: Sequence[Severity]) -> Severity:
    return max(levels, key=lambda level: level.rank)


# -- one change, one line ---------------------------------------------------------------------------

# Seats a legal representative's change line takes along; signing authority is not one of them:
# it keeps a line under its own label, so an officer always reads 有权签字人.
_SEATS = frozenset({Category.DIRECTOR, Category.SUPERVISOR, Category.MANAGER})
# Seats people take and leave; signing authority reads like one ("有权签字人 新增 X（经理权人〔Prokura〕）").
_PEOPLE = _SEATS | {Category.SIGNING_AUTHORITY}
_SCALARS = frozenset(
    {
        Category.NAME,
        Category.STATUS,
        Category.REGISTERED_CAPITAL,
        Category.ADDRESS,
        Category.LEGAL_REPRESENTATIVE,
        Category.FINANCE_HEAD,
    }
)
_HOLDINGS = frozenset(
    {Category.SHAREHOLDER, Category.CONTROLLER, Category.ACTUAL_CONTROLLER, Category.BENEFICIAL_OWNER}
)


def _entry(label: str, action: Action, detail: str, language: Language) -> str:
    """ "董事 新增 李娜" / "Director added: Li Na"."""
    verb = ACTION_LABEL[language][action]
    return f"{label} {verb} {detail}" if language == Language.ZH_CN else f"{label} {verb}: {detail}"


def _suffix(effective_date: date | None, first_seen: bool, language: Language) -> str:
    words = WORDS[language]
    text = bracket(language, f"{words['effective']} {effective_date.isoformat()}") if effective_date else ""
    return text + (words["first_seen"] if first_seen else "")


def _scalar_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    """Name, status, capital, address, legal representative, finance head: "label old → new"; the
    subject ("status", or a change-log item such as 财务负责人备案) only repeats the label."""
    label = CATEGORY_LABEL[language][change.category]
    if change.category is Category.STATUS:
        before = status_label(change.before, language, escape) if change.before else WORDS[language]["none"]
        after = status_label(change.after, language, escape) if change.after else WORDS[language]["none"]
    else:
        before, after = (
            shown_value(change.before, language, escape),
            shown_value(change.after, language, escape),
        )
    return f"{label} {before} → {after}"


def _holding_details(holding: _Holding, category: Category, language: Language, escape: Escape) -> list[str]:
    words = WORDS[language]
    rest_word = words["subscribed"] if category is Category.SHAREHOLDER else words["natures"]
    details = [f"{words['stake']} {holding.stake}"] if holding.stake and holding.stake != "?" else []
    if holding.rest:
        details.append(f"{rest_word} {escape(holding.rest)}")
    return details


def _holding_text(change: ChangeLine, language: Language, escape: Escape) -> str | None:
    """A shareholder or controller: "股东 X 持股 40% → 55%", the name said once; None when the
    stored values are not in the shape diff writes."""
    words = WORDS[language]
    label = CATEGORY_LABEL[language][change.category]
    who = escape(change.subject)
    before, after = (
        _holding_value(change.before, change.subject),
        _holding_value(change.after, change.subject),
    )
    if change.action is Action.CHANGED:
        if before is None or after is None:
            return None
        rest_word = words["subscribed"] if change.category is Category.SHAREHOLDER else words["natures"]
        parts = []
        if before.stake != after.stake or before.rest == after.rest:
            parts.append(f"{words['stake']} {before.stake or '?'} → {after.stake or '?'}")
        if before.rest != after.rest:
            was, now = shown_value(before.rest, language, escape), shown_value(after.rest, language, escape)
            parts.append(f"{rest_word} {was} → {now}")
        return f"{label} {who} {words['detail_sep'].join(parts)}"
    holding = after if change.action is Action.ADDED else before
    if holding is None:
        return None
    details = _holding_details(holding, change.category, language, escape)
    shown = who + (bracket(language, words["detail_sep"].join(details)) if details else "")
    return _entry(label, change.action, shown, language)


def _people_text(members: Sequence[ChangeLine], language: Language, escape: Escape) -> str:
    """One person's changes of one kind, in one or several categories: "董事、高级管理人员 新增
    李娜（执行董事、总经理）"; the person is named once, their titles in the reader's words."""
    first = members[0]
    categories = sorted({member.category for member in members}, key=list(Category).index)
    label = WORDS[language]["list"].join(CATEGORY_LABEL[language][category] for category in categories)
    if first.action is Action.CHANGED:
        return f"{label} {escape(first.subject)} {_retitled(first, language, escape)}"
    role_texts = [_person_value(_side(member) or "", member.subject) for member in members]
    if any(text is None for text in role_texts):
        values = dict.fromkeys(shown_value(_side(member), language, escape) for member in members)
        return _entry(label, first.action, WORDS[language]["list"].join(values), language)
    said = frozenset(CATEGORY_LABEL[language][category].casefold() for category in categories)
    role_text = " / ".join(dict.fromkeys(text for text in role_texts if text))
    titles = titles_label(role_text, language, escape, named=said)
    who = escape(first.subject) + (bracket(language, titles) if titles else "")
    return _entry(label, first.action, who, language)


def _retitled(change: ChangeLine, language: Language, escape: Escape) -> str:
    """A person's titles before → after, in the reader's words when they read as titles."""
    before, after = change.before or "", change.after or ""
    if known_titles(before) and known_titles(after):
        return f"{titles_label(before, language, escape)} → {titles_label(after, language, escape)}"
    return f"{shown_value(before, language, escape)} → {shown_value(after, language, escape)}"


def _side(change: ChangeLine) -> str | None:
    """The value that shows who: after for an addition, before for a removal."""
    return change.after if change.action is Action.ADDED else change.before


def change_text(change: ChangeLine, language: Language, escape: Escape = plain, *, dated: bool = True) -> str:
    """One atomic change as one line (no grouping), with its effective date unless a column shows it."""
    if change.category in CONNECTED and (connected := connected_text(change, language, escape)) is not None:
        text = connected
    elif change.category in LISTING_CATEGORIES:
        text = listing_text(change, language, escape)
    elif change.category in _SCALARS and change.action is Action.CHANGED:
        text = _scalar_text(change, language, escape)
    elif change.category in _HOLDINGS and (holding := _holding_text(change, language, escape)) is not None:
        text = holding
    elif change.category in _PEOPLE or change.category in _HOLDINGS:
        text = _people_text([change], language, escape)
    else:
        text = _generic_text(change, language, escape)
    return text + _suffix(change.effective_date if dated else None, change.first_seen, language)


def _generic_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    label = CATEGORY_LABEL[language][change.category]
    if change.action is Action.CHANGED:
        before, after = (
            shown_value(change.before, language, escape),
            shown_value(change.after, language, escape),
        )
        return f"{label} {escape(change.subject)} {before} → {after}"
    return _entry(
        label, change.action, shown_value(_side(change) or change.subject, language, escape), language
    )


# -- grouping ---------------------------------------------------------------------------------------


def _same_occasion(a: date | None, b: date | None) -> bool:
    return a is None or b is None or a == b


def group_changes(changes: Sequence[ChangeLine]) -> tuple[tuple[int, ...], ...]:
    """Which atomic changes (by index) read as one line, in the order of their first change.

    A legal-representative change A → B takes A's and B's added and removed seats among directors,
    supervisors and managers of the same occasion; the remaining seats of one person gained (or
    lost, or retitled) at one occasion are one line; everything else is a line of its own.
    """
    used: set[int] = set()
    groups: list[tuple[int, ...]] = []
    for index, change in enumerate(changes):
        if change.category is Category.LEGAL_REPRESENTATIVE and change.action is Action.CHANGED:
            followers = _seats_following(changes, change, used)
            used.update([index, *followers])
            groups.append((index, *followers))
    by_person: dict[tuple[str, Action, date | None], list[int]] = {}
    for index, change in enumerate(changes):
        if index in used:
            continue
        if change.category in _PEOPLE:
            key = (text_key(change.subject) or change.subject, change.action, change.effective_date)
            by_person.setdefault(key, []).append(index)
        else:
            groups.append((index,))
    groups.extend(tuple(indices) for indices in by_person.values())
    return tuple(sorted((tuple(sorted(group)) for group in groups), key=lambda group: group[0]))


def _seats_following(changes: Sequence[ChangeLine], anchor: ChangeLine, used: set[int]) -> list[int]:
    """The seats either representative (the new one or the former) took or left at the same
    occasion: one person's changes at one occasion are one line."""
    names = {text_key(anchor.before), text_key(anchor.after)} - {None, ""}
    return [
        index
        for index, seat in enumerate(changes)
        if index not in used
        and seat.category in _SEATS
        and seat.action in (Action.ADDED, Action.REMOVED)
        and text_key(seat.subject) in names
        and _same_occasion(anchor.effective_date, seat.effective_date)
    ]


def _seat_titles(seats: Sequence[ChangeLine], language: Language, escape: Escape) -> str:
    """The seats' titles in the reader's words, once each; a seat stored without its title by its
    category."""
    shown: list[str] = []
    for seat in seats:
        role_text = _person_value(_side(seat) or "", seat.subject)
        label = (
            titles_label(role_text, language, escape) if role_text else _seat_label(seat.category, language)
        )
        if label and label not in shown:
            shown.append(label)
    return WORDS[language]["list"].join(shown)


def _legal_rep_text(
    anchor: ChangeLine, followers: Sequence[ChangeLine], language: Language, escape: Escape
) -> str:
    """ "法定代表人 黄艳 → 赵敏（兼执行董事、总经理；原任监事）": the seats the new representative took
    and left, and those of the former one (left, when not the same titles; taken)."""
    words = WORDS[language]
    new_key = text_key(anchor.after)

    def titles(action: Action, *, new: bool) -> str:
        seats = [
            seat for seat in followers if seat.action is action and (text_key(seat.subject) == new_key) is new
        ]
        return _seat_titles(seats, language, escape)

    gained, left = titles(Action.ADDED, new=True), titles(Action.REMOVED, new=True)
    former_lost, former_took = titles(Action.REMOVED, new=False), titles(Action.ADDED, new=False)
    former = shown_value(anchor.before, language, escape)
    clauses = [
        words["also"] + gained if gained else "",
        words["formerly"] + left if left else "",
        words["former_also"].format(name=former) + former_lost
        if former_lost and former_lost != gained
        else "",
        words["former_now"].format(name=former) + former_took if former_took else "",
    ]
    notes = words["clause_sep"].join(clause for clause in clauses if clause)
    text = _scalar_text(anchor, language, escape)
    return text + (bracket(language, notes) if notes else "")


def _seat_label(category: Category, language: Language) -> str:
    label = CATEGORY_LABEL[language][category]
    return label if language == Language.ZH_CN else label.lower()


def display_lines(
    changes: Sequence[ChangeLine], language: Language, escape: Escape = plain, *, dated: bool = True
) -> tuple[DisplayLine, ...]:
    """The lines people read for a sequence of atomic changes (one alert's, one check's); ``dated``
    False leaves the effective date to a column of its own."""
    lines = []
    for group in group_changes(changes):
        members = [changes[index] for index in group]
        dates = [member.effective_date for member in members if member.effective_date is not None]
        effective = max(dates) if dates else None
        anchor = next((m for m in members if m.category is Category.LEGAL_REPRESENTATIVE), None)
        if len(members) == 1:
            text = change_text(members[0], language, escape, dated=dated)
        else:
            if anchor is not None:
                followers = [member for member in members if member is not anchor]
                text = _legal_rep_text(anchor, followers, language, escape)
            else:
                text = _people_text(members, language, escape)
            text += _suffix(effective if dated else None, any(m.first_seen for m in members), language)
        severity = _max_severity([change_severity(member) for member in members])
        lines.append(DisplayLine(text=text, parts=group, severity=severity, effective_date=effective))
    return tuple(lines)


# -- the history table ------------------------------------------------------------------------------


def subject_label(change: ChangeLine, language: Language) -> str:
    """The subject column: a person's or holder's name as it is; a field's own name in the reader's
    words ("status" → 登记状态), also when a change-log row named it in the registry's words
    (财务负责人备案 is the finance head, whatever the reader's language)."""
    field_name = change.subject == change.category.value.replace("_", " ")
    if field_name or (change.category in _SCALARS and change.action is Action.CHANGED):
        return CATEGORY_LABEL[language][change.category]
    return change.subject


def value_label(change: ChangeLine, value: str | None, language: Language, escape: Escape = plain) -> str:
    """One side of an atomic change without its subject: a status, a person's titles, a stake."""
    if not value:
        return "–"
    if change.category is Category.STATUS:
        return status_label(value, language, escape)
    connected = connected_value(change, value, language, escape)
    if connected is not None:
        return connected
    if change.category in _PEOPLE and change.action is Action.CHANGED and known_titles(value):
        return titles_label(value, language, escape) or "–"  # retitled: "Styrets leder" → 董事长（…）
    role_text = _person_value(value, change.subject)
    if role_text is not None and change.category not in LISTING_CATEGORIES:
        return titles_label(role_text, language, escape) or "–"
    holding = _holding_value(value, change.subject) if change.category in _HOLDINGS else None
    if holding is not None:
        details = _holding_details(holding, change.category, language, escape)
        return WORDS[language]["detail_sep"].join(details) or escape(value)
    return escape(value)
