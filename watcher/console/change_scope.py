"""What of a stored change a reader may see: a connected-party/-risk change names another party, and
an audit entry lists whom a guarantor secures; a party outside the reader's scope is shown without its
name and id (as in the alerts pushed to officers, ``render.AlertView.for_officer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any

from sqlmodel import col, select

from watcher.change_line import ChangeLine
from watcher.connected import hide_other, read_link
from watcher.console.queries import scoped, sees_all
from watcher.models import Borrower, User
from watcher.record import Category
from watcher.store import HistoryRow, Store

_CONNECTED = frozenset({Category.CONNECTED_PARTY.value, Category.CONNECTED_RISK.value})


class PartyScope:
    """The parties one reader may see, looked up once per party id (every one for a reviewer)."""

    def __init__(self, store: Store | None, user: User | None, hidden_label: str) -> None:
        self._store, self._user, self.hidden_label = store, user, hidden_label
        self._seen: dict[str, bool] = {}

    @property
    def sees_all(self) -> bool:
        return self._user is not None and sees_all(self._user)

    def visible(self, party_ids: Collection[str]) -> frozenset[str]:
        """Those of ``party_ids`` the reader may see."""
        if self.sees_all:
            return frozenset(party_ids)
        unknown = sorted(set(party_ids) - set(self._seen))
        if unknown:
            found: set[str] = set()
            if self._store is not None and self._user is not None and self._user.officer_id is not None:
                with self._store.session() as session:
                    query = scoped(select(Borrower.id), self._user).where(col(Borrower.id).in_(unknown))
                    found = set(session.exec(query))
            self._seen.update({party: party in found for party in unknown})
        return frozenset(party for party in party_ids if self._seen[party])

    def after(self, category: str, before: str | None, after: str | None) -> str | None:
        """A stored ``after`` with the other party's name and id replaced when the reader may not
        see it (still in the shape :func:`watcher.connected.read_link` reads)."""
        if self.sees_all or category not in _CONNECTED:
            return after
        link = read_link(before, after)
        if link is None or not link.other or link.other in self.visible([link.other]):
            return after
        return hide_other(before, after, self.hidden_label)

    def line(self, change: ChangeLine) -> ChangeLine:
        """A change line as the reader may see it."""
        after = self.after(change.category.value, change.before, change.after)
        return change if after == change.after else dataclasses.replace(change, after=after)

    def row(self, row: HistoryRow) -> HistoryRow:
        """A history row (for the exports) as the reader may see it: a hidden party reads as the label
        alone (the empty id brackets the console keeps for parsing say nothing in a spreadsheet)."""
        after = self.after(row.category, row.before, row.after)
        if after == row.after:
            return row
        if after is not None and after.startswith(f"{self.hidden_label} []"):
            after = self.hidden_label + after[len(self.hidden_label) + 3 :]
        return dataclasses.replace(row, after=after)

    def secured_ids(
        self, value: Any, join: Callable[[list[str]], str], others: Callable[[int, bool], str]
    ) -> str:
        """An audit entry's ``secures`` ids: the visible ones, the others only counted (``others`` is
        told whether any is named before them)."""
        ids = [str(item) for item in value] if isinstance(value, list) else [str(value)]
        shown = self.visible(ids)
        visible_ids = [party for party in ids if party in shown]
        hidden = len(ids) - len(visible_ids)
        return join(visible_ids + ([others(hidden, bool(visible_ids))] if hidden else []))
