"""Properties of the pure core: normalisation, diff and the severity rules.

The record strategies and the formatting noise live in ``tests/strategies.py``.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import strategies as S
from watcher.diff import Change, diff
from watcher.normalize import (
    ROLE_CATEGORY,
    clean_text,
    comparable_content,
    content_hash,
    normalize_record,
    parse_amount,
    parse_stake,
    person_key,
    roles_from_title,
    text_key,
)
from watcher.record import (
    CRITICAL_STATUSES,
    KEY_PERSON_CATEGORIES,
    Action,
    Category,
    ChangeLogEntry,
    CompanyStatus,
    Person,
    RegistryRecord,
    Role,
    Stake,
    Status,
    record_as_dict,
    record_from_dict,
)
from watcher.rules import RuleSettings, Severity, assess, count_in_window, occasions_of

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Planted-change records are big and drawn with "fresh name" filters: generation-efficiency checks only.
PLANTED = settings(
    FAST,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
QUICK = settings(max_examples=150, deadline=None)

records = S.registry_records()
SECTIONS = (
    "name",
    "status",
    "registered_capital",
    "address",
    "legal_representative",
    "people",
    "shareholders",
    "controllers",
    "finance_head",
)


def view(changes: list[Change]) -> list[tuple]:
    """A diff as what it says, ignoring display formatting (case, width, spacing) of its texts."""
    return sorted(
        (
            c.category.value,
            c.action.value,
            text_key(c.subject),
            text_key(c.before),
            text_key(c.after),
            c.effective_date.isoformat() if c.effective_date else "",
            c.from_change_log,
        )
        for c in changes
    )


def named(changes: list[Change]) -> Counter:
    return Counter((c.category, c.action, text_key(c.subject)) for c in changes)


# -- normalisation and diff over arbitrary records -------------------------------------------------


@FAST
@given(records)
def test_a_record_does_not_differ_from_itself(a):
    assert diff(a, a) == []


@FAST
@given(records)
def test_normalize_record_is_idempotent(a):
    once = normalize_record(a)
    assert normalize_record(once) == once


@FAST
@given(records, records)
def test_diff_is_unaffected_by_prior_normalisation(a, b):
    expected = diff(a, b)
    assert diff(normalize_record(a), b) == expected
    assert diff(a, normalize_record(b)) == expected
    assert diff(normalize_record(a), normalize_record(b)) == expected


@FAST
@given(st.data(), records)
def test_formatting_noise_changes_neither_hash_nor_diff(data, a):
    noisy = data.draw(S.formatting_noise(a))
    assert content_hash(noisy) == content_hash(a)
    assert comparable_content(noisy) == comparable_content(a)
    assert diff(a, noisy) == []
    assert diff(noisy, a) == []


@settings(FAST, max_examples=40)
@given(st.data(), records, records)
def test_diff_of_noisy_records_says_the_same_as_diff_of_clean_ones(data, a, b):
    noisy_a = data.draw(S.formatting_noise(a), label="noise(a)")
    noisy_b = data.draw(S.formatting_noise(b), label="noise'(b)")
    assert view(diff(noisy_a, noisy_b)) == view(diff(a, b))


@FAST
@given(records, records)
def test_equal_hashes_mean_no_changes(a, b):
    """The pipeline stores a snapshot only when the hash changed: a change must always change it."""
    if diff(a, b):
        assert content_hash(a) != content_hash(b)
    if content_hash(a) == content_hash(b):
        assert diff(a, b) == []


@FAST
@given(st.data(), records)
def test_noise_duplicating_entries_is_merged_away(data, a):
    """Sources list one officer once per position; merging must be order-free and idempotent."""
    copy = data.draw(S.formatting_noise(a), label="copy")
    doubled = replace(
        a,
        people=None if a.people is None else a.people + copy.people,
        shareholders=None if a.shareholders is None else copy.shareholders + a.shareholders,
        controllers=None if a.controllers is None else a.controllers + copy.controllers,
        change_log=None if a.change_log is None else copy.change_log + a.change_log,
    )
    assert content_hash(doubled) == content_hash(a)
    assert diff(a, doubled) == [] and diff(doubled, a) == []
    once = normalize_record(doubled)
    assert normalize_record(once) == once


def test_a_person_listed_once_per_position_is_merged_order_free_and_idempotently():
    def listing(title: str, appointed: date | None = None) -> Person:
        key = person_key("王建国", registry_id="p1")
        return Person("王建国", key, roles_from_title(title), title, appointed)

    rows = [
        listing("董事", date(2020, 1, 1)),
        listing("总经理"),
        listing("Secretary", date(2019, 5, 1)),
        listing("董事"),
    ]
    empty = RegistryRecord("qichacha", "x", people=())
    results = set()
    for order in itertools.permutations(rows):
        record = RegistryRecord("qichacha", "x", people=order)
        once = normalize_record(record)
        assert normalize_record(once) == once
        assert diff(empty, once) == diff(empty, record)
        results.add(once)
    [merged] = results
    [person] = merged.people
    assert person.roles == {Role.DIRECTOR, Role.MANAGER, Role.SECRETARY}
    assert person.appointed_on == date(2019, 5, 1)


@FAST
@given(st.data(), records)
def test_list_order_never_matters(data, a):
    rnd = data.draw(st.randoms(use_true_random=False))
    shuffled = replace(
        a,
        **{
            section: S.shuffled(getattr(a, section), rnd)
            for section in ("people", "shareholders", "controllers", "change_log")
        },
    )
    assert normalize_record(shuffled) == normalize_record(a)


@FAST
@given(records)
def test_snapshot_json_round_trip(a):
    data = json.loads(json.dumps(record_as_dict(a), ensure_ascii=False))
    back = record_from_dict(data)
    assert back == a
    assert normalize_record(back) == normalize_record(a)
    assert content_hash(back) == content_hash(a)
    normalised = normalize_record(a)
    assert record_from_dict(json.loads(json.dumps(record_as_dict(normalised)))) == normalised


# -- planted changes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    section: str
    category: Category
    action: Action
    subject: str


def _categories(roles: frozenset[Role]) -> dict[Category, frozenset[Role]]:
    grouped: dict[Category, set[Role]] = {}
    for role in roles:
        if role is not Role.LEGAL_REPRESENTATIVE:
            grouped.setdefault(ROLE_CATEGORY[role], set()).add(role)
    return {category: frozenset(found) for category, found in grouped.items()}


def _role_change(name: str, before: frozenset[Role], after: frozenset[Role]) -> list[Expect]:
    was, now = _categories(before), _categories(after)
    out = [Expect("people", c, Action.REMOVED, name) for c in set(was) - set(now)]
    out += [Expect("people", c, Action.ADDED, name) for c in set(now) - set(was)]
    out += [Expect("people", c, Action.CHANGED, name) for c in set(was) & set(now) if was[c] != now[c]]
    return out


MODIFICATIONS = (
    "replace_legal_rep",
    "replace_finance_head",
    "add_director",
    "remove_person",
    "change_roles",
    "respell_officer",
    "add_holder",
    "remove_holder",
    "change_stake",
    "change_status",
    "change_capital",
    "change_address",
    "change_name",
    "add_controller",
    "remove_controller",
)
DIRECTOR_ROLES = st.one_of(
    st.sampled_from(("董事", "执行董事兼总经理", "董事长", "Director", "Chairman")).map(
        lambda title: (roles_from_title(title), title)
    ),
    st.frozensets(st.sampled_from(list(Role)), max_size=2).map(
        lambda extra: (frozenset({Role.DIRECTOR}) | extra, "")
    ),
)


def _names_of(record: RegistryRecord) -> set[str]:
    people = [record.legal_representative, record.finance_head, *(record.people or ())]
    names = {text_key(p.name) for p in people if p is not None}
    names |= {text_key(h.name) for h in (*(record.shareholders or ()), *(record.controllers or ()))}
    return names


def _keys_of(record: RegistryRecord) -> set[str]:
    people = [record.legal_representative, record.finance_head, *(record.people or ())]
    keys = {text_key(p.key) for p in people if p is not None}
    return keys | {text_key(h.key) for h in (*(record.shareholders or ()), *(record.controllers or ()))}


@st.composite
def planted_changes(draw):
    """(base, changed, expectations): ``changed`` is ``base`` with a random set of known changes."""
    base = draw(S.registry_records(all_present=True, max_items=4))
    used = _names_of(base)
    used_keys = _keys_of(base)

    def fresh(strategy):
        """A person / holder new to the company: neither name nor key seen before."""
        value = draw(
            strategy.filter(
                lambda item: text_key(item.name) not in used and text_key(item.key) not in used_keys
            )
        )
        used.add(text_key(value.name))
        used_keys.add(text_key(value.key))
        return value

    new = base
    expected: list[Expect] = []
    touched: set[str] = set()
    for modification in draw(st.lists(st.sampled_from(MODIFICATIONS), unique=True, max_size=6)):
        people = list(new.people)
        holders = list(new.shareholders)
        ctrls = list(new.controllers)
        untouched_people = [p for p in people if p.key not in touched]
        if modification == "replace_legal_rep":
            person = fresh(S.legal_representatives())
            new = replace(new, legal_representative=person)
            expected.append(
                Expect(
                    "legal_representative",
                    Category.LEGAL_REPRESENTATIVE,
                    Action.CHANGED,
                    "legal representative",
                )
            )
        elif modification == "replace_finance_head":
            new = replace(new, finance_head=fresh(S.finance_heads()))
            expected.append(Expect("finance_head", Category.FINANCE_HEAD, Action.CHANGED, "finance head"))
        elif modification == "add_director":
            roles, title = draw(DIRECTOR_ROLES)
            person = fresh(S.persons(roles=roles))
            person = replace(person, role_text=title)
            touched.add(person.key)
            new = replace(new, people=(*people, person))
            expected += [Expect("people", c, Action.ADDED, person.name) for c in _categories(roles)]
        elif modification == "remove_person" and untouched_people:
            person = draw(st.sampled_from(untouched_people))
            touched.add(person.key)
            new = replace(new, people=tuple(p for p in people if p.key != person.key))
            expected += [Expect("people", c, Action.REMOVED, person.name) for c in _categories(person.roles)]
        elif modification == "change_roles" and untouched_people:
            person = draw(st.sampled_from(untouched_people))
            roles, title = draw(
                S.role_choices().filter(
                    lambda choice, old=person.roles: _categories(choice[0]) != _categories(old)
                )
            )
            touched.add(person.key)
            changed = replace(person, roles=roles, role_text=title)
            new = replace(new, people=tuple(changed if p.key == person.key else p for p in people))
            expected += _role_change(person.name, person.roles, roles)
        elif modification == "respell_officer":
            # Same registry id, name spelt differently (pinyin / traditional / typo fixed): no change.
            candidates = [p for p in untouched_people if p.key.startswith("id:")]
            if candidates:
                person = draw(st.sampled_from(candidates))
                touched.add(person.key)
                respelt = replace(person, name=fresh(S.persons()).name)
                new = replace(new, people=tuple(respelt if p.key == person.key else p for p in people))
        elif modification == "add_holder":
            holder = fresh(S.shareholders())
            touched.add(holder.key)
            new = replace(new, shareholders=(*holders, holder))
            expected.append(Expect("shareholders", Category.SHAREHOLDER, Action.ADDED, holder.name))
        elif modification in ("remove_holder", "change_stake"):
            candidates = [h for h in holders if h.key not in touched]
            if not candidates:
                continue
            holder = draw(st.sampled_from(candidates))
            touched.add(holder.key)
            if modification == "remove_holder":
                new = replace(new, shareholders=tuple(h for h in holders if h.key != holder.key))
                expected.append(Expect("shareholders", Category.SHAREHOLDER, Action.REMOVED, holder.name))
            else:
                stake = draw(S.stakes().filter(lambda s, old=holder.stake: s is not None and s != old))
                moved = replace(holder, stake=stake)
                new = replace(new, shareholders=tuple(moved if h.key == holder.key else h for h in holders))
                expected.append(Expect("shareholders", Category.SHAREHOLDER, Action.CHANGED, holder.name))
        elif modification == "change_status":
            status = draw(
                S.statuses(st.sampled_from([code for code in CompanyStatus if code is not base.status.code]))
            )
            new = replace(new, status=status)
            expected.append(Expect("status", Category.STATUS, Action.CHANGED, "status"))
        elif modification == "change_capital":
            money = draw(
                S.moneys().filter(
                    lambda m, old=base.registered_capital: (
                        text_key(m.raw) != text_key(old.raw)
                        if m.amount is None or old.amount is None
                        else m.amount != old.amount
                    )
                )
            )
            new = replace(new, registered_capital=money)
            expected.append(
                Expect(
                    "registered_capital", Category.REGISTERED_CAPITAL, Action.CHANGED, "registered capital"
                )
            )
        elif modification == "change_address":
            address = draw(S.addresses.filter(lambda a: text_key(a) != text_key(base.address)))
            new = replace(new, address=address)
            expected.append(Expect("address", Category.ADDRESS, Action.CHANGED, "address"))
        elif modification == "change_name":
            name = draw(S.company_names.filter(lambda n: text_key(n) != text_key(base.name)))
            new = replace(new, name=name)
            expected.append(Expect("name", Category.NAME, Action.CHANGED, "name"))
        elif modification == "add_controller":
            controller = fresh(S.controllers())
            touched.add(controller.key)
            new = replace(new, controllers=(*ctrls, controller))
            expected.append(Expect("controllers", Category.CONTROLLER, Action.ADDED, controller.name))
        elif modification == "remove_controller":
            candidates = [c for c in ctrls if c.key not in touched]
            if candidates:
                controller = draw(st.sampled_from(candidates))
                touched.add(controller.key)
                new = replace(new, controllers=tuple(c for c in ctrls if c.key != controller.key))
                expected.append(Expect("controllers", Category.CONTROLLER, Action.REMOVED, controller.name))
    return base, new, expected


def _expected_counter(expected: list[Expect], unknown: set[str] = frozenset()) -> Counter:
    return Counter((e.category, e.action, text_key(e.subject)) for e in expected if e.section not in unknown)


@PLANTED
@given(planted_changes())
def test_diff_names_exactly_the_planted_changes(planted):
    base, new, expected = planted
    changes = diff(base, new)
    assert named(changes) == _expected_counter(expected)
    if changes:
        assert content_hash(base) != content_hash(new)
    assert not any(c.from_change_log for c in changes)
    # Undated but for a status change, which takes the day the new status took effect, if known.
    assert all(c.effective_date is None for c in changes if c.category is not Category.STATUS)
    assert all(c.effective_date == new.status.since for c in changes if c.category is Category.STATUS)
    # and the reverse direction names the same subjects, added <-> removed
    flip = {Action.ADDED: Action.REMOVED, Action.REMOVED: Action.ADDED, Action.CHANGED: Action.CHANGED}
    forward = _expected_counter(expected)
    reverse = {(cat, flip[action], subject): n for (cat, action, subject), n in forward.items()}
    assert named(diff(new, base)) == Counter(reverse)


@PLANTED
@given(planted_changes(), st.data())
def test_an_unknown_section_on_either_side_never_changes(planted, data):
    base, new, expected = planted
    unknown_old = data.draw(st.sets(st.sampled_from(SECTIONS)), label="unknown on old side")
    unknown_new = data.draw(st.sets(st.sampled_from(SECTIONS)), label="unknown on new side")
    old_side = replace(base, **{section: None for section in unknown_old})
    new_side = replace(new, **{section: None for section in unknown_new})
    assert named(diff(old_side, new_side)) == _expected_counter(expected, unknown_old | unknown_new)


@settings(PLANTED, max_examples=40)
@given(planted_changes(), st.data())
def test_planted_changes_survive_formatting_noise(planted, data):
    base, new, _ = planted
    noisy_base = data.draw(S.formatting_noise(base), label="noise(base)")
    noisy_new = data.draw(S.formatting_noise(new), label="noise'(new)")
    assert view(diff(noisy_base, noisy_new)) == view(diff(base, new))


def test_unknown_is_not_empty():
    person = Person("王建国", person_key("王建国"), frozenset({Role.DIRECTOR}))
    base = RegistryRecord("qichacha", "91110000MA01", people=None)
    known = replace(base, people=(person,))
    empty = replace(base, people=())
    assert diff(base, known) == []
    assert diff(known, base) == []
    assert [(c.category, c.action, c.subject) for c in diff(empty, known)] == [
        (Category.DIRECTOR, Action.ADDED, "王建国")
    ]
    assert [(c.category, c.action, c.subject) for c in diff(known, empty)] == [
        (Category.DIRECTOR, Action.REMOVED, "王建国")
    ]


def test_fresh_dated_log_entry_dates_the_structural_change():
    old = RegistryRecord(
        "qichacha", "x", legal_representative=Person("王建国", "n:王建国", frozenset()), change_log=()
    )
    entry = ChangeLogEntry(
        frozenset({Category.LEGAL_REPRESENTATIVE}), "法定代表人变更", "王建国", "李明", date(2025, 3, 1)
    )
    new = replace(old, legal_representative=Person("李明", "n:李明", frozenset()), change_log=(entry,))
    [change] = diff(old, new)
    assert (change.category, change.effective_date, change.from_change_log) == (
        Category.LEGAL_REPRESENTATIVE,
        date(2025, 3, 1),
        False,
    )


# -- occasions and the window -------------------------------------------------------------------------

DAY0 = date(2025, 6, 30)
days = st.dates(date(2023, 1, 1), date(2025, 12, 31))
changes_strategy = st.builds(
    Change,
    category=st.sampled_from(list(Category)),
    action=st.sampled_from(list(Action)),
    subject=st.sampled_from(("王建国", "name", "status", "John Smith")),
    before=st.none(),
    after=st.none(),
    effective_date=st.one_of(st.none(), days),
    raises_listing=st.booleans(),
)


@QUICK
@given(st.lists(changes_strategy, max_size=8), days)
def test_occasions_of(changes, detected_on):
    key = [c for c in changes if c.category in KEY_PERSON_CATEGORIES]
    occasions = occasions_of(changes, detected_on)
    if not key:
        assert occasions == ()
    elif all(c.effective_date is None for c in key):
        assert occasions == (detected_on,)
    else:
        # each distinct date is one occasion; undated key-person changes join, adding none
        assert occasions == tuple(sorted({c.effective_date for c in key if c.effective_date}))
    assert list(occasions) == sorted(set(occasions))


@QUICK
@given(st.lists(days, max_size=10), days, st.integers(0, 800))
def test_count_in_window_counts_distinct_days_in_closed_window(occasions, detected_on, window_days):
    window = timedelta(days=window_days)
    expected = 0
    day = detected_on - window
    while day <= detected_on:
        expected += day in occasions
        day += timedelta(days=1)
    assert count_in_window(occasions, detected_on, window) == expected


# -- severity ---------------------------------------------------------------------------------------

SEVERITY_ORDER = [None, Severity.INFO, Severity.WARNING, Severity.HIGH, Severity.CRITICAL]

# The issue's table, written out independently of watcher.rules: severity of a listing coming into
# force (its removal or lifting is info).
EXPECTED_LISTING_SEVERITY = {
    Category.ABNORMAL_OPERATION: Severity.CRITICAL,
    Category.SERIOUS_VIOLATION: Severity.CRITICAL,
    Category.EQUITY_PLEDGE: Severity.HIGH,
    Category.CHATTEL_MORTGAGE: Severity.WARNING,
    Category.ENFORCEMENT: Severity.HIGH,
    Category.DISHONEST_DEBTOR: Severity.CRITICAL,
    Category.CONSUMPTION_RESTRICTION: Severity.HIGH,
    Category.BANKRUPTCY: Severity.CRITICAL,
    # Issue 16 (Companies House): a new outstanding charge is high; overdue filings, a registered
    # office in dispute or undeliverable and a PSC statement are warnings.
    Category.CHARGE: Severity.HIGH,
    Category.FILING_OVERDUE: Severity.WARNING,
    Category.REGISTERED_OFFICE_ISSUE: Severity.WARNING,
    Category.PSC_STATEMENT: Severity.WARNING,
}


def _expected_change_severity(change: Change) -> Severity:
    if change.category in EXPECTED_LISTING_SEVERITY:
        return EXPECTED_LISTING_SEVERITY[change.category] if change.raises_listing else Severity.INFO
    if change.category is Category.BENEFICIAL_OWNER:
        return Severity.INFO if change.action is Action.REMOVED else Severity.WARNING
    if change.category in (
        Category.LEGAL_REPRESENTATIVE,
        Category.DIRECTOR,
        Category.SHAREHOLDER,
        Category.FINANCE_HEAD,
        Category.CONTROLLER,
        Category.ACTUAL_CONTROLLER,
        Category.SIGNING_AUTHORITY,
    ):
        return Severity.WARNING
    return Severity.INFO


@QUICK
@given(
    st.lists(changes_strategy, max_size=6),
    S.statuses(),
    st.lists(days, max_size=6),
    st.integers(0, 4),
    st.integers(1, 800),
    st.one_of(st.none(), st.sampled_from(("王建国", "王 建国", "李明", "JOHN SMITH", "John  Smith"))),
    st.one_of(st.none(), st.sampled_from(("王建国", "李明", "john smith", "张伟"))),
    st.one_of(st.none(), st.sampled_from(("王建国", "李明", "John Smith"))),
)
def test_assess_severity(
    changes, status, earlier, frequent_after, window_days, on_file, previous, registry_rep
):
    detected_on = DAY0
    record = RegistryRecord(
        "qichacha",
        "x",
        status=status,
        legal_representative=None
        if registry_rep is None
        else Person(registry_rep, person_key(registry_rep), frozenset({Role.LEGAL_REPRESENTATIVE})),
    )
    rule = RuleSettings(window=timedelta(days=window_days), frequent_after=frequent_after)
    result = assess(
        changes,
        record=record,
        detected_on=detected_on,
        earlier_occasions=earlier,
        settings=rule,
        legal_rep_on_file=on_file,
        previous_mismatch=previous,
    )

    # independent expectation
    key = [c for c in changes if c.category in KEY_PERSON_CATEGORIES]
    dated = {c.effective_date for c in key if c.effective_date}
    occasions = set() if not key else (dated or {detected_on})
    start = detected_on - rule.window
    in_window = len({d for d in [*earlier, *occasions] if start <= d <= detected_on})
    frequent = bool(occasions) and in_window > frequent_after
    mismatch = (
        registry_rep if on_file and registry_rep and text_key(registry_rep) != text_key(on_file) else None
    )
    mismatch_new = mismatch is not None and (previous is None or text_key(previous) != text_key(mismatch))
    critical = any(c.category is Category.STATUS for c in changes) and status.code in CRITICAL_STATUSES
    levels = [_expected_change_severity(c) for c in changes]
    levels += [Severity.CRITICAL] if critical else []
    levels += [Severity.HIGH] if frequent else []
    levels += [Severity.WARNING] if mismatch_new else []
    expected = max(levels, key=SEVERITY_ORDER.index) if levels else None
    grave_listing = any(
        c.raises_listing and EXPECTED_LISTING_SEVERITY.get(c.category) in (Severity.HIGH, Severity.CRITICAL)
        for c in changes
    )

    assert result.severity == expected
    assert set(result.occasions) == occasions
    assert result.occasions_in_window == in_window
    assert result.recommend_early_repayment == (frequent or grave_listing)
    assert result.signatory_mismatch == mismatch
    assert result.signatory_warning == mismatch_new


def _check(changes, *, earlier=(), status=CompanyStatus.ACTIVE, on=DAY0, frequent_after=1, **kw):
    record = RegistryRecord("qichacha", "x", status=Status(status, ""), **kw.pop("record", {}))
    return assess(
        changes,
        record=record,
        detected_on=on,
        earlier_occasions=list(earlier),
        settings=RuleSettings(frequent_after=frequent_after),
        **kw,
    )


def test_no_changes_no_alert():
    result = _check([])
    assert (result.severity, result.occasions, result.occasions_in_window) == (None, (), 0)


def test_only_non_key_changes_are_info():
    changes = [
        Change(Category.ADDRESS, Action.CHANGED, "address", "a", "b"),
        Change(Category.SUPERVISOR, Action.ADDED, "王建国", None, "王建国 (监事)"),
        Change(Category.MANAGER, Action.REMOVED, "李明", "李明 (经理)", None),
    ]
    result = _check(changes)
    assert result.severity is Severity.INFO and result.occasions == ()


@pytest.mark.parametrize("code", sorted(CRITICAL_STATUSES))
def test_status_to_a_critical_code_is_critical_whatever_else_changed(code):
    status_change = Change(Category.STATUS, Action.CHANGED, "status", "存续 (active)", f"x ({code})")
    key_change = Change(Category.DIRECTOR, Action.ADDED, "王建国", None, "王建国")
    for changes in ([status_change], [status_change, key_change]):
        assert _check(changes, status=code, earlier=[DAY0 - timedelta(days=3)]).severity is Severity.CRITICAL
    assert _check([status_change], status=CompanyStatus.ACTIVE).severity is Severity.INFO


def _director_company(lr: Person, *others: Person) -> RegistryRecord:
    return RegistryRecord("qichacha", "91110000MA01", legal_representative=lr, people=(lr, *others))


def test_new_legal_rep_who_is_also_director_and_manager_is_one_occasion():
    title = "执行董事兼总经理"
    roles = roles_from_title(title) | {Role.LEGAL_REPRESENTATIVE}
    old_lr = Person("王建国", person_key("王建国"), roles, title)
    new_lr = Person("李明", person_key("李明"), roles, title)
    supervisor = Person("张伟", person_key("张伟"), roles_from_title("监事"), "监事")
    changes = diff(_director_company(old_lr, supervisor), _director_company(new_lr, supervisor))
    assert {(c.category, c.action) for c in changes} == {
        (Category.LEGAL_REPRESENTATIVE, Action.CHANGED),
        (Category.DIRECTOR, Action.REMOVED),
        (Category.DIRECTOR, Action.ADDED),
        (Category.MANAGER, Action.REMOVED),
        (Category.MANAGER, Action.ADDED),
    }
    result = _check(changes)
    assert result.occasions == (DAY0,)
    assert result.occasions_in_window == 1
    assert result.severity is Severity.WARNING
    assert not result.recommend_early_repayment


KEY_CHANGE = [Change(Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "legal representative", "王建国", "李明")]


def test_second_key_person_occasion_in_the_window_is_high():
    first = _check(KEY_CHANGE, on=DAY0)
    assert first.severity is Severity.WARNING
    second = _check(KEY_CHANGE, on=DAY0 + timedelta(days=40), earlier=first.occasions)
    assert second.occasions_in_window == 2
    assert second.severity is Severity.HIGH and second.recommend_early_repayment


def test_frequent_after_two_makes_the_third_occasion_high():
    first = _check(KEY_CHANGE, on=DAY0, frequent_after=2)
    second = _check(KEY_CHANGE, on=DAY0 + timedelta(days=10), earlier=first.occasions, frequent_after=2)
    third = _check(
        KEY_CHANGE, on=DAY0 + timedelta(days=20), earlier=first.occasions + second.occasions, frequent_after=2
    )
    assert [r.severity for r in (first, second, third)] == [Severity.WARNING, Severity.WARNING, Severity.HIGH]
    assert third.recommend_early_repayment and not second.recommend_early_repayment


def test_an_occasion_older_than_the_window_does_not_count():
    old = _check(KEY_CHANGE, earlier=[DAY0 - timedelta(days=366)])
    assert (old.occasions_in_window, old.severity) == (1, Severity.WARNING)
    edge = _check(KEY_CHANGE, earlier=[DAY0 - timedelta(days=365)])  # the window is closed at its start
    assert (edge.occasions_in_window, edge.severity) == (2, Severity.HIGH)


def test_same_day_occasions_are_one():
    result = _check(KEY_CHANGE, earlier=[DAY0])
    assert (result.occasions_in_window, result.severity) == (1, Severity.WARNING)


def test_signatory_on_file_mismatch_warns_once():
    rep = {"legal_representative": Person("李明", "n:李明", frozenset({Role.LEGAL_REPRESENTATIVE}))}
    first = _check([], record=rep, legal_rep_on_file="王建国")
    assert (first.severity, first.signatory_mismatch, first.signatory_warning) == (
        Severity.WARNING,
        "李明",
        True,
    )
    again = _check([], record=rep, legal_rep_on_file="王建国", previous_mismatch=" 李 明 ")
    assert (again.severity, again.signatory_warning) == (None, False)
    moved = _check([], record=rep, legal_rep_on_file="王建国", previous_mismatch="张伟")
    assert (moved.severity, moved.signatory_warning) == (Severity.WARNING, True)
    same = _check([], record=rep, legal_rep_on_file="李 明")
    assert (same.severity, same.signatory_mismatch) == (None, None)
    latin = {"legal_representative": Person("John Smith", "n:john smith", frozenset())}
    assert _check([], record=latin, legal_rep_on_file="JOHN  SMITH").signatory_mismatch is None


# -- normalisation examples ---------------------------------------------------------------------------


def test_stake_spellings():
    assert (
        parse_stake("51%")
        == parse_stake("51.00%")
        == parse_stake(0.51)
        == parse_stake("0.51")
        == Stake(Decimal(51), Decimal(51))
    )
    assert parse_stake("５１％") == parse_stake(Decimal("0.51")) == parse_stake("51")
    band = parse_stake("25-50%")
    assert band == Stake(Decimal(25), Decimal(50)) and not band.exact
    assert parse_stake("25%-50%") == parse_stake("25 ~ 50 %") == parse_stake("25 to 50%") == band
    assert parse_stake("abc") is None and parse_stake(None) is None and parse_stake("120%") is None


@QUICK
@given(S.stakes())
def test_every_stake_spelling_reads_the_same(stake):
    for spelling in S.stake_spellings(stake):
        assert parse_stake(spelling) == stake, spelling


def test_amount_spellings():
    money = parse_amount("5000万元人民币")
    assert money.amount == 50_000_000 and money.currency == "CNY"
    assert parse_amount("1.2亿元").amount == 120_000_000
    assert parse_amount("1.2亿元").currency == "CNY"
    same = (
        "50000000元人民币",
        "人民币5000万元",
        "5,000万元",
        "RMB 50,000,000",
        "0.5亿元人民币",
        "５０００万元",
        "50,000,000.00元",
    )
    for spelling in same:
        parsed = parse_amount(spelling)
        assert (parsed.amount, parsed.currency) == (money.amount, "CNY"), spelling
    usd = parse_amount("500万美元")
    assert (usd.amount, usd.currency) == (5_000_000, "USD")
    assert parse_amount("未公示").amount is None and parse_amount("") is None


def test_amounts_in_scientific_notation_or_beyond_any_real_figure():
    """A vendor's "1.2568E6" is 1,256,800 yuan, not 1.26; a number no loan could carry (a corrupt
    field, 40 digits of 万元) stays text, shown as the vendor wrote it, and never fails the check."""
    assert parse_amount("1.2568E6").amount == 1_256_800
    assert parse_amount("3.5e4万元").amount == 350_000_000
    for absurd in ("1e400", "1e+300", 1e300, 10**40, "9" * 40 + "万元", "12e3456789"):
        money = parse_amount(absurd, currency="CNY")
        assert money is not None and money.amount is None and money.raw, absurd


def test_role_titles():
    assert roles_from_title("执行董事兼总经理") == {Role.DIRECTOR, Role.MANAGER}
    assert {Role.CHAIR, Role.DIRECTOR} <= roles_from_title("董事长")
    assert roles_from_title("财务负责人") == {Role.FINANCE_HEAD}
    assert roles_from_title("监事") == {Role.SUPERVISOR}
    assert roles_from_title("Director") == {Role.DIRECTOR}
    assert roles_from_title("Secretary") == {Role.SECRETARY}
    assert roles_from_title("奇怪的头衔") == {Role.OTHER}


@QUICK
@given(st.sampled_from(S.TITLES), st.randoms(use_true_random=False))
def test_role_titles_ignore_formatting(title, rnd):
    assert roles_from_title(S.noisy_text(title, rnd)) == roles_from_title(title)


def test_clean_text_and_text_key_examples():
    assert clean_text("王 建国") == "王建国"
    assert clean_text("  王\u3000建  国 ") == "王建国"
    assert text_key("ＡＢＣ　公司（北京）") == text_key("ABC公司(北京)") == "abc公司(北京)"
    # a space between a Latin word and a CJK character is formatting, not content
    assert clean_text("ABC 公司") == clean_text("ABC公司") == "ABC公司"
    assert text_key("Acme  Holdings  (Beijing) LTD") == text_key("ACME Holdings(Beijing)Ltd")
    assert text_key("【北京】星辰") == text_key("(北京)星辰") == text_key("〔北京〕星辰")
    assert text_key("（北京）星辰") == text_key("(北京)星辰")
    assert text_key("［北京］星辰") == text_key("[北京]星辰") == "(北京)星辰"  # NFKC runs first: ［ -> [ -> (
    # spaces between Latin words are content
    assert text_key("AB C") != text_key("ABC")


@QUICK
@given(st.one_of(S.person_names, S.company_names, S.addresses), st.randoms(use_true_random=False))
def test_formatting_noise_never_changes_keys(text, rnd):
    noisy = S.noisy_text(text, rnd)
    assert text_key(noisy) == text_key(text)
    assert person_key(noisy) == person_key(text)
    assert clean_text(clean_text(noisy)) == clean_text(noisy)
