"""One stored change as the lines read it (pure): kept apart so that presentation and risk_lines share it.

A change event or history row keeps its category, action and party as stored strings; a
:class:`ChangeLine` holds them as vocabulary, the one shape every line of :mod:`watcher.presentation`
and :mod:`watcher.risk_lines` is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from watcher.record import Action, Category, Party


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One stored change event as the presentation reads it (one atomic change)."""

    category: Category
    action: Action
    subject: str
    before: str | None
    after: str | None
    effective_date: date | None
    party: Party | None = None
    party_name: str = ""
    first_seen: bool = False

    @classmethod
    def of(cls, stored: StoredChange) -> ChangeLine:
        """A stored change (a change event, a history row) with its strings read as vocabulary."""
        return cls(
            Category(stored.category),
            Action(stored.action),
            stored.subject,
            stored.before,
            stored.after,
            stored.effective_date,
            party=Party(stored.party) if stored.party else None,
            party_name=stored.party_name or "",
            first_seen=stored.first_seen,
        )


class StoredChange(Protocol):
    """What a stored change row offers: the change event's columns (the history row has the same)."""

    @property
    def category(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str | None: ...
    @property
    def effective_date(self) -> date | None: ...
    @property
    def party(self) -> str | None: ...
    @property
    def party_name(self) -> str | None: ...
    @property
    def first_seen(self) -> bool: ...
