"""One enum per vocabulary (watcher/vocabulary.py): its values are the strings already stored, and no
production module spells a value as a bare string literal instead of naming the member."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes
from sqlalchemy import insert, text

from watcher import errors
from watcher.alerts import acknowledge, alert_view, close, list_alerts
from watcher.models import Alert, Borrower, Delivery
from watcher.record import Category, Signal
from watcher.routing import PlannedDelivery
from watcher.store import open_alert_deliveries, open_store, status_summary
from watcher.vocabulary import (
    AlertKind,
    AlertStatus,
    AlertStatusFilter,
    AuditAction,
    DeliveryStatus,
    ErrorKind,
    Language,
    OutboxState,
    PartyRole,
    Severity,
    TokenScope,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# What databases, jsonl/csv/json outputs and config files already hold: never to change.
STORED = {
    Severity: ["info", "warning", "high", "critical"],
    Language: ["zh-CN", "en"],
    AlertKind: ["change", "onboarding", "monitoring_gap", "monitoring_restored"],
    AlertStatus: ["open", "acknowledged", "closed"],
    AlertStatusFilter: ["open", "acknowledged", "closed", "all"],
    DeliveryStatus: ["pending", "held", "sent", "dead"],
    OutboxState: ["pending", "retrying", "held", "dead"],
    AuditAction: [
        "alert.opened",
        "alert.acknowledged",
        "alert.closed",
        "borrower.added",
        "borrower.updated",
        "borrower.deactivated",
        "borrower.reactivated",
        "borrower.pruned",
        "delivery.dead",
        "source.signals_retried",
        "console.user_added",
        "console.user_enabled",
        "console.user_disabled",
        "console.password_changed",
        "console.signed_in",
        "console.locked_out",
        "api.token_added",
        "api.token_revoked",
    ],
    PartyRole: ["borrower", "guarantor", "pledgor"],
    TokenScope: ["read", "write"],
    ErrorKind: [
        "source_error",
        "transient",
        "rate_limited",
        "not_found",
        "blocked",
        "parse_error",
        "auth",
        "storage",
        "unknown",
    ],
}
VOCABULARIES: tuple[type[StrEnum], ...] = tuple(STORED)


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda enum: enum.__name__)
def test_values_are_exactly_the_stored_strings(vocabulary):
    assert [member.value for member in vocabulary] == STORED[vocabulary]
    for member in vocabulary:
        assert member == member.value and hash(member) == hash(member.value)
        assert f"{member}" == str(member) == member.value


# Change-event categories (record.Category) are stored strings too; kept out of STORED because words
# such as "name" and "status" are also ordinary field names the literal scan below must not flag.
STORED_CATEGORIES = [
    "legal_representative",
    "shareholder",
    "director",
    "supervisor",
    "manager",
    "finance_head",
    "controller",
    "name",
    "status",
    "registered_capital",
    "address",
    "actual_controller",
    "beneficial_owner",
    "abnormal_operation",
    "serious_violation",
    "equity_pledge",
    "chattel_mortgage",
    "enforcement",
    "dishonest_debtor",
    "consumption_restriction",
    "bankruptcy",
    "connected_party",
    "connected_risk",
    "signing_authority",
    "charge",
    "filing_overdue",
    "registered_office_issue",
    "psc_statement",
]


def test_change_categories_are_exactly_the_stored_strings():
    assert [member.value for member in Category] == STORED_CATEGORIES


# Signals are stored too (``borrower.signals_checked``, ``source_signal``) and written in config files
# (``[sources.NAME] signals`` and ``cadence``); kept out of STORED for the same reason as categories.
STORED_SIGNALS = [
    "registry",
    "controller",
    "abnormal",
    "violations",
    "pledges",
    "judicial",
    "change_log",
    "charges",
    "insolvency",
    "psc_statements",
]


def test_signals_are_exactly_the_stored_strings():

    assert [member.value for member in Signal] == STORED_SIGNALS


@pytest.mark.parametrize("language", list(Language))
def test_every_category_and_signal_has_its_own_words_in_each_language(language):
    """An officer tells a charge from a chattel mortgage, and a signal from another, by its label."""
    from watcher.console.i18n import SECTION_LABEL
    from watcher.labels import CATEGORY_LABEL, SIGNAL_LABEL
    from watcher.record import LISTING_CATEGORIES

    for labels, members in ((CATEGORY_LABEL, set(Category)), (SIGNAL_LABEL, set(Signal))):
        assert set(labels[language]) == members
        shown = list(labels[language].values())
        assert all(shown) and len(set(shown)) == len(shown), "two members must not read the same"
    sections = SECTION_LABEL[language]
    assert set(sections) >= LISTING_CATEGORIES
    assert len(set(sections.values())) == len(sections)


def test_error_classes_carry_their_stored_kind():
    kinds = {
        errors.SourceError: "source_error",
        errors.TransientError: "transient",
        errors.RateLimitedError: "rate_limited",
        errors.NotFoundError: "not_found",
        errors.BlockedError: "blocked",
        errors.ParseError: "parse_error",
        errors.AuthError: "auth",
        errors.CheckStorageError: "storage",
    }
    for error, kind in kinds.items():
        assert isinstance(error.kind, ErrorKind) and error.kind == kind


def test_severity_is_ordered_and_still_importable_from_the_rules():
    from watcher.rules import Severity as FromRules

    assert FromRules is Severity
    assert Severity.INFO < Severity.WARNING < Severity.HIGH < Severity.CRITICAL
    assert max([Severity.WARNING, Severity.CRITICAL, Severity.INFO]) is Severity.CRITICAL
    assert Severity.most_severe_first() == (Severity.CRITICAL, Severity.HIGH, Severity.WARNING, Severity.INFO)


def test_a_status_filter_names_its_status_or_all():
    assert [choice.status for choice in AlertStatusFilter] == [*AlertStatus, None]


def test_the_vocabulary_module_is_pure():
    tree = ast.parse((ROOT / "watcher" / "vocabulary.py").read_text(encoding="utf-8"))
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "enum"}


# -- an old database reads the same ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, sqlite_url):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = open_store(url)
    yield made
    made.dispose()


def _old_rows(store) -> dict[str, int]:
    """Alerts and deliveries written as plain strings, as every database before the enums holds them."""
    with store.transaction() as session:
        session.add(Borrower(id="b1", name="Acme", source="brreg", registry_id="923609016"))
        session.flush()
        ids = {}
        for name, kind, status, severity in (
            ("open", "change", "open", "warning"),
            ("acknowledged", "change", "acknowledged", "high"),
            ("closed", "change", "closed", "info"),
            ("gap", "monitoring_gap", "open", "high"),
        ):
            ids[name] = session.exec(
                insert(Alert)
                .values(borrower_id="b1", kind=kind, status=status, severity=severity, source="brreg")
                .returning(Alert.id)
            ).scalar_one()
        for status, attempts in (("pending", 0), ("pending", 2), ("held", 0), ("dead", 5), ("sent", 1)):
            session.exec(
                insert(Delivery).values(
                    alert_id=ids["open"], target="notifier:ops", status=status, attempts=attempts
                )
            )
    return ids


def test_an_old_database_reads_the_same(store):
    ids = _old_rows(store)
    with store.session() as session:
        assert [alert.id for alert, _ in list_alerts(session)] == [ids["gap"], ids["open"]]
        assert [alert.id for alert, _ in list_alerts(session, status=AlertStatus.CLOSED)] == [ids["closed"]]
        assert len(list_alerts(session, status=None)) == 4
        assert alert_view(session, ids["gap"], window_days=365).kind is AlertKind.MONITORING_GAP
        summary = status_summary(session, NOW)
    counts = (summary.deliveries_pending, summary.deliveries_retrying, summary.deliveries_held)
    assert counts + (summary.deliveries_dead,) == (1, 1, 1, 1)


def test_what_the_code_writes_is_the_stored_string(store):
    ids = _old_rows(store)
    with store.transaction() as session:
        acknowledge(session, ids["open"], by="Li Na", note=None, at=NOW)
        close(session, ids["acknowledged"], by="Li Na", note="repaid", at=NOW)
        planned = [
            PlannedDelivery("officer:li", "f1", "mailto"),
            PlannedDelivery("notifier:ops", "f2", "json", held_until=NOW + timedelta(hours=8)),
        ]
        open_alert_deliveries(session, ids["gap"], planned, NOW, {"kind": AlertKind.MONITORING_GAP})
        session.add(Alert(borrower_id="b1", source="brreg", severity=Severity.CRITICAL))
    with store.engine.connect() as connection:
        alerts = connection.execute(text("SELECT kind, status, severity FROM alert ORDER BY id")).all()
        actions = connection.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
        deliveries = connection.execute(
            text("SELECT status FROM delivery WHERE alert_id = :id ORDER BY id"), {"id": ids["gap"]}
        ).scalars()
        assert [tuple(row) for row in alerts] == [
            ("change", "acknowledged", "warning"),
            ("change", "closed", "high"),
            ("change", "closed", "info"),
            ("monitoring_gap", "open", "high"),
            ("change", "open", "critical"),
        ]
        assert actions == ["alert.acknowledged", "alert.closed", "alert.opened"]
        assert list(deliveries) == ["pending", "held"]


# -- no bare vocabulary literals in production code --------------------------------------------------

PRODUCTION = ("watcher", "sources", "notifiers")
EXEMPT = (
    "watcher/vocabulary.py",  # where the values are defined
    "watcher/migrations/",  # history: a migration must not change with the code of today
)
# Being restructured by another change while this one landed; the replacements each still needs are
# listed in its merge note. Remove an entry once its file names the members (the test below says when).

# "borrower" is also a table's and an audit subject's name: a party role is looked for only where a
# role is named (``role=``, ``party_role =``), never as any bare string.
NAMED_ONLY = (PartyRole,)
ALL_VALUES = frozenset(
    member.value for vocabulary in VOCABULARIES if vocabulary not in NAMED_ONLY for member in vocabulary
)
VALUES_BY_NAME: dict[str, frozenset[str]] = {}
for _names, _vocabularies in (
    (("status",), (AlertStatus, AlertStatusFilter, DeliveryStatus, OutboxState)),
    (("action",), (AuditAction,)),
    (("severity", "min_severity", "top_severity"), (Severity,)),
    (("kind",), (AlertKind, ErrorKind)),
    (("error_kind", "last_error_kind"), (ErrorKind,)),
    (("language", "lang"), (Language,)),
    (("role", "party_role"), (PartyRole,)),
):
    for _name in _names:
        VALUES_BY_NAME[_name] = frozenset(
            member.value for vocabulary in _vocabularies for member in vocabulary
        )


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child


def _all_vocabulary(elements: list[ast.expr | None]) -> list[ast.Constant]:
    """The string elements of a collection literal when each of them is a vocabulary value."""
    strings = [e for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return strings if strings and all(s.value in ALL_VALUES for s in strings) else []


def _name_of(target: ast.AST) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return target.slice.value if isinstance(target.slice.value, str) else None
    return None


def _named(name: str | None, value: ast.AST | None) -> list[ast.Constant]:
    """String literals of the vocabulary that ``name`` (status, action, severity, ...) holds."""
    if name not in VALUES_BY_NAME or value is None:
        return []
    return [s for s in _strings(value) if s.value in VALUES_BY_NAME[name]]


def _bare_literals(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    for node in ast.walk(tree):
        found: list[ast.Constant] = []
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                if isinstance(operand, ast.Constant) and operand.value in ALL_VALUES:
                    found.append(operand)
                elif isinstance(operand, ast.Tuple | ast.List | ast.Set):
                    found += [s for s in _strings(operand) if s.value in ALL_VALUES]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            found = _all_vocabulary(list(node.elts))
        elif isinstance(node, ast.Dict):
            found = _all_vocabulary(list(node.keys))
        elif isinstance(node, ast.keyword):
            found = _named(node.arg, node.value)
        elif isinstance(node, ast.Assign):
            found = [s for target in node.targets for s in _named(_name_of(target), node.value)]
        elif isinstance(node, ast.AnnAssign):
            found = _named(_name_of(node.target), node.value)
        elif isinstance(node, ast.ClassDef):
            found = _all_vocabulary([s.value for s in node.body if isinstance(s, ast.Assign)])
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            pairs = [*zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True)]
            pairs += [(arg, default) for arg, default in zip(node.kwonlyargs, node.kw_defaults, strict=True)]
            found = [s for arg, default in pairs for s in _named(arg.arg, default)]
        kind = type(node).__name__
        for literal in found:
            yield literal.lineno, literal.value, kind


def _python_files() -> Iterator[tuple[str, Path]]:
    for top in PRODUCTION:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def _template_literals(path: Path) -> Iterator[tuple[int, str, str]]:
    """Comparisons and keyword arguments of a console template that spell a vocabulary value."""
    tree = jinja2.Environment().parse(path.read_text(encoding="utf-8"))
    for compare in tree.find_all(nodes.Compare):
        for operand in (compare.expr, *(op.expr for op in compare.ops)):
            if isinstance(operand, nodes.Const) and operand.value in ALL_VALUES:
                yield operand.lineno, operand.value, "Compare"
    for keyword in tree.find_all(nodes.Keyword):
        if isinstance(keyword.value, nodes.Const) and keyword.value.value in VALUES_BY_NAME.get(
            keyword.key, ()
        ):
            yield keyword.lineno, keyword.value.value, "keyword"


def _findings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, path in _python_files():
        if name.startswith(EXEMPT):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=name)
        hits = sorted(set(_bare_literals(tree)))
        if hits:
            found[name] = [f"{name}:{line}: {value!r} in a {kind}" for line, value, kind in hits]
    for path in sorted((ROOT / "watcher" / "console" / "templates").glob("*.html")):
        name = path.relative_to(ROOT).as_posix()
        hits = sorted(set(_template_literals(path)))
        if hits:
            found[name] = [f"{name}:{line}: {value!r} in a {kind}" for line, value, kind in hits]
    return found


def test_production_code_names_vocabulary_members_instead_of_spelling_their_values():
    offending = [line for lines in _findings().values() for line in lines]
    assert not offending, "use the member of watcher/vocabulary.py:\n" + "\n".join(offending)


def test_the_scan_sees_each_kind_of_bare_literal():
    source = (
        'if alert.status == "open": pass\n'
        'ready = col(Delivery.status).in_(("pending", "held"))\n'
        'audit(session, action="alert.closed")\n'
        'LANGUAGES = ("zh-CN", "en")\n'
        'LABEL = {"zh-CN": 1, "en": 2}\n'
        'kind = "transient"\n'
        'values["status"] = "dead"\n'
        'def render(view, language: str = "en"): pass\n'
        'LEVELS = ("debug", "info", "warning", "error")\n'  # another vocabulary: log levels
        'ctx.t("pending")\n'  # an i18n key, not a value
        "class Choice(StrEnum):\n    open = 'open'\n    all = 'all'\n"  # a second definition
        "class State(StrEnum):\n    alive = 'alive'\n    dead = 'dead'\n"  # another vocabulary
    )
    hits = {(line, value) for line, value, _ in _bare_literals(ast.parse(source))}
    assert hits == {
        (1, "open"),
        (2, "pending"),
        (2, "held"),
        (3, "alert.closed"),
        (4, "zh-CN"),
        (4, "en"),
        (5, "zh-CN"),
        (5, "en"),
        (6, "transient"),
        (7, "dead"),
        (8, "en"),
        (12, "open"),
        (13, "all"),
    }


@pytest.mark.parametrize("language", list(Language))
def test_every_audit_action_and_status_and_role_has_words_in_both_languages(language):
    """The console's audit trail shows words, not codes; alerts label every status and role."""
    from watcher.console.i18n import AUDIT_ACTION_LABEL
    from watcher.labels import COMPANY_STATUS_LABEL, ROLE_LABEL
    from watcher.record import CompanyStatus, Role

    for labels, members in (
        (AUDIT_ACTION_LABEL, AuditAction),
        (COMPANY_STATUS_LABEL, CompanyStatus),
        (ROLE_LABEL, Role),
    ):
        assert set(labels[language]) == set(members)
        shown = [labels[language][member] for member in members]
        assert all(shown) and len(set(shown)) == len(shown), "two members must not read the same"
    assert not any("." in label or "_" in label for label in AUDIT_ACTION_LABEL[language].values())


# -- the portfolio index's words (watcher/connections.py), stored in party_tie --------------------


def _index_vocabularies() -> dict[type[StrEnum], list[str]]:
    from watcher.connections import LinkBasis, NodeKind, TieRole

    return {
        NodeKind: ["person", "company"],
        LinkBasis: ["registry_id", "vendor_key", "birth_date", "name_only", "loan_record"],
        TieRole: [
            "legal_representative",
            "director",
            "supervisor",
            "manager",
            "finance_head",
            "shareholder",
            "controller",
            "actual_controller",
            "beneficial_owner",
            "pledgee",
            "guarantor",
            "pledgor",
        ],
    }


def test_the_index_stores_exactly_these_words():
    for vocabulary, values in _index_vocabularies().items():
        assert [member.value for member in vocabulary] == values, vocabulary.__name__
