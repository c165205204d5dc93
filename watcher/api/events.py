"""``GET /api/v1/events``: the change history as a feed a data mart follows with a cursor.

Each event is a ``watcher history --format jsonl`` row (plus ``key_person``), the same fields as an
alert's ``changes`` here and in the signed webhook. Events come in change-event id order; the cursor
is the last id handed out, opaque to the caller. A follower stores ``next`` only after it has stored
the page's events (at-least-once: a crash between the two replays that page).

Ids are taken from a sequence when a change is inserted, but transactions commit in their own
order: on PostgreSQL an event with a lower id can become visible after one with a higher id. So the
feed only hands out ids up to a *settled horizon*: the highest id at a moment when no other
transaction held a write lock on ``change_event`` (``pg_locks``), i.e. every id at or below it was
committed or rolled back. While writers are in flight the last horizon proved settled (per process
and database) is used, so a follower may wait a little but never skips an event. SQLite serialises
writers (``BEGIN IMMEDIATE``), so ids become visible in order and its horizon is simply the highest id.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from watcher.api.common import DEFAULT_LIMIT, ERRORS, MAX_ID, MAX_LIMIT, Deployment, Reader
from watcher.api.tokens import Principal
from watcher.connected import hide_other, read_link
from watcher.models import Alert, Borrower, ChangeEvent
from watcher.risk_lines import CONNECTED
from watcher.store import HistoryRow, Store
from watcher.visibility import scoped, sees_all

router = APIRouter(tags=["events"])

CURSOR_PREFIX = "ev1:"
SETTLE_ATTEMPTS = 5
SETTLE_PAUSE_SECONDS = 0.02
"""While other transactions write change events, the horizon is re-checked this often before the
last settled one is used instead."""

_IN_FLIGHT_WRITERS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
    " AND relation = to_regclass('change_event') AND mode = 'RowExclusiveLock' AND granted"
    " AND pid IS DISTINCT FROM pg_backend_pid()"
)
_settled: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
"""The last horizon proved settled, per database engine (so per process)."""


class ChangeOut(BaseModel):
    """A change: a ``watcher history --format jsonl`` row, plus ``key_person``. On a connected-party
    line the other party's name and id are blanked for a token whose officer may not see it."""

    id: int
    detected_at: datetime
    borrower_id: str
    borrower_name: str
    source: str
    category: str
    action: str
    subject: str
    before: str | None
    after: str | None
    effective_date: date | None
    severity: str | None = Field(description="The severity of the alert it raised, if any")
    alert_id: int | None
    party: str | None
    party_name: str | None
    first_seen: bool
    key_person: bool


class EventPage(BaseModel):
    """A page of the feed: store the events, then read on from ``next``."""

    items: list[ChangeOut]
    next: str = Field(description="The cursor to read on from (pass it as ?after=); there even when empty")
    more: bool = Field(description="True when the page was full: read on at once rather than wait")


def encode_cursor(prefix: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{prefix}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(prefix: str, cursor: str | None, field: str) -> int | None:
    """The id a cursor carries; a cursor not made here is 422 with its field path."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = re.fullmatch(re.escape(prefix) + r"(0|[1-9][0-9]{0,17})", raw)
    if match is None or int(match[1]) > MAX_ID:
        raise RequestValidationError(
            [{"loc": ("query", field), "msg": "not a cursor this API handed out", "type": "value_error"}]
        )
    return int(match[1])


def visible_parties(session: Session, who: Principal, party_ids: Iterable[str]) -> frozenset[str]:
    """Those of ``party_ids`` the token may see (all for a token without an officer)."""
    wanted = sorted(set(party_ids))
    if sees_all(who) or not wanted:
        return frozenset(wanted)
    return frozenset(session.exec(scoped(select(Borrower.id), who).where(col(Borrower.id).in_(wanted))))


def scoped_changes(session: Session, who: Principal, rows: Sequence[dict]) -> list[ChangeOut]:
    """History rows as ``who`` may read them: a connected line names its other party only when the
    token may see that party (as the console and the messages pushed to officers do)."""
    others = {
        link.other
        for row in rows
        if row["category"] in CONNECTED and (link := read_link(row["before"], row["after"])) and link.other
    }
    seen = visible_parties(session, who, others)
    changes = []
    for row in rows:
        link = read_link(row["before"], row["after"]) if row["category"] in CONNECTED else None
        if link is not None and link.other and link.other not in seen:
            row = {**row, "after": hide_other(row["before"], row["after"])}
        changes.append(ChangeOut.model_validate(row))
    return changes


def settled_horizon(store: Store) -> int:
    """The highest change-event id at or below which every id is committed or rolled back."""
    engine = store.engine
    for attempt in range(SETTLE_ATTEMPTS):
        with store.session() as session:
            top = session.exec(select(func.max(ChangeEvent.id))).one() or 0
            if engine.dialect.name != "postgresql":
                return top
            session.commit()  # a fresh snapshot, after the highest id was read
            busy = session.execute(_IN_FLIGHT_WRITERS).scalar_one()
        if not busy:
            _settled[engine] = max(top, _settled.get(engine, 0))
            return top
        if attempt + 1 < SETTLE_ATTEMPTS:
            time.sleep(SETTLE_PAUSE_SECONDS)
    return _settled.get(engine, 0)


def read_events(session: Session, who: Principal, *, after: int, upto: int, limit: int) -> list[ChangeOut]:
    """Up to ``limit`` events the token may see, with ids in (``after``, ``upto``], in id order."""
    query = (
        select(ChangeEvent, Borrower.name, Alert.severity)
        .join(Borrower, col(Borrower.id) == col(ChangeEvent.borrower_id))
        .join(Alert, col(Alert.id) == col(ChangeEvent.alert_id), isouter=True)
        .where(col(ChangeEvent.id) > after, col(ChangeEvent.id) <= upto)
        .order_by(col(ChangeEvent.id))
        .limit(limit)
    )
    rows = [
        {**HistoryRow.of(event, name, severity).as_json(), "key_person": event.key_person}
        for event, name, severity in session.exec(scoped(query, who))
    ]
    return scoped_changes(session, who, rows)


@router.get("/events", response_model=EventPage, responses=ERRORS, summary="Follow the change history")
def follow_events(
    who: Reader,
    api: Deployment,
    after: Annotated[
        str | None,
        Query(max_length=200, description="The previous page's next; omit to start from the first event"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Events per page (at most 1000)")
    ] = DEFAULT_LIMIT,
) -> EventPage:
    """Changes after the cursor, oldest first, for the parties the token sees. Poll with ``next``;
    an empty page still carries it. Events are handed out only once every lower id is committed."""
    start = decode_cursor(CURSOR_PREFIX, after, "after") or 0
    with api.store.session() as session:
        top = session.exec(select(func.max(ChangeEvent.id))).one() or 0
    if start > top:  # another deployment's cursor, or one from before a restore: it would skip events
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "after"),
                    "msg": "a cursor beyond this feed's last event",
                    "type": "value_error",
                }
            ]
        )
    horizon = settled_horizon(api.store)
    with api.store.session() as session:
        items = read_events(session, who, after=start, upto=horizon, limit=limit)
    full = len(items) == limit
    # A short page read everything visible up to the horizon: the next read starts there.
    last = items[-1].id if full else max(start, horizon)
    return EventPage(items=items, next=encode_cursor(CURSOR_PREFIX, last), more=full)
