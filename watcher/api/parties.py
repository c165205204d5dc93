"""``/api/v1/parties``: the watch list (borrowers, guarantors, pledgors) for the loan system.

Reads are scoped like the console (:mod:`watcher.visibility`). Writes are the borrowers file's rows
given as JSON: checked by :mod:`watcher.importer`'s own row checks and written by its upsert, with the
same audit rows as ``watcher borrowers import`` (actor ``api:<token name>``); deactivating and
reactivating go through :mod:`watcher.lifecycle` as the CLI's commands do.

A token with an officer writes only that officer's parties: the body's ``officer`` must be its
officer, and an existing party must already be that officer's (deactivate/reactivate: 404 when the
token cannot see it, 403 when it can, e.g. a guarantor another officer keeps; PUT: 403 either way,
as the id is taken and a create cannot pretend otherwise).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, case, func, literal
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sources.base import Source
from watcher.api.common import (
    ERRORS,
    WRITE_ERRORS,
    Api,
    ApiModel,
    Deployment,
    ErrorBody,
    Page,
    PageQuery,
    Reader,
    Writer,
)
from watcher.api.officer_writes import hintable, keep_to_officer, not_yours
from watcher.api.tokens import Principal
from watcher.importer import (
    ParsedBorrowers,
    RowProblem,
    UpsertCounts,
    parse_records,
    registry_id_warnings,
    reject_bad_secures,
    upsert_borrowers,
)
from watcher.lifecycle import LifecycleChange, deactivate, follow_secured, inactive_among, reactivate
from watcher.models import Alert, Borrower, SecuresLink
from watcher.pipeline import build_sources
from watcher.units import format_duration
from watcher.visibility import can_see, scoped, sees_all
from watcher.vocabulary import AlertStatus, PartyRole, Severity

router = APIRouter(tags=["parties"])

MAX_BULK = 10_000
"""Items of one ``POST /parties:bulk``; more is 422."""
NO_NUL = r"^[^\x00]*$"
"""Text PostgreSQL can compare: a NUL in a parameter is an error there, not a miss."""
ID_PATH = Path(
    min_length=1,
    max_length=64,
    pattern=NO_NUL,
    description="The party's id, as in the borrowers file's id column",
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such party, or one this token may not see"}
}


class Health(StrEnum):
    """How a party's watch is going; each party has one, in this order of precedence."""

    INACTIVE = "inactive"
    """Deactivated: not checked (``watcher borrowers deactivate``)."""
    FAILING = "failing"
    """Its last check failed (``watcher status`` counts these as failing)."""
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    """A mass disappearance waits for a second fetch before it is stored."""
    UNCHECKED = "unchecked"
    """Not checked yet."""
    OK = "ok"


def _health_condition(health: Health) -> ColumnElement[bool]:
    """The SQL of :func:`health_of`: one condition per value, none overlapping."""
    active = col(Borrower.active).is_(True)
    failing = col(Borrower.consecutive_failures) > 0
    pending = col(Borrower.pending_since).is_not(None)
    checked = col(Borrower.last_checked_at).is_not(None)
    conditions = {
        Health.INACTIVE: col(Borrower.active).is_(False),
        Health.FAILING: and_(active, failing),
        Health.AWAITING_CONFIRMATION: and_(active, ~failing, pending),
        Health.UNCHECKED: and_(active, ~failing, ~pending, ~checked),
        Health.OK: and_(active, ~failing, ~pending, checked),
    }
    return conditions[health]


def health_of(borrower: Borrower) -> Health:
    if not borrower.active:
        return Health.INACTIVE
    if borrower.consecutive_failures > 0:
        return Health.FAILING
    if borrower.pending_since is not None:
        return Health.AWAITING_CONFIRMATION
    if borrower.last_checked_at is None:
        return Health.UNCHECKED
    return Health.OK


# -- what goes out ---------------------------------------------------------------------------------


class Party(BaseModel):
    """A watched party: the borrowers file's columns, and how its watch and its alerts stand."""

    id: str
    name: str
    source: str
    registry_id: str
    officer: str | None
    tags: list[str]
    interval: str | None = Field(description="Its own check interval (e.g. 12h); null: the default")
    legal_rep_on_file: str | None
    role: PartyRole
    secures: list[str] = Field(description="The borrowers it secures that this token may see")
    secures_hidden: int = Field(description="How many other borrowers it secures (another officer's)")
    active: bool
    deactivated_at: datetime | None
    health: Health
    severity: Severity | None = Field(description="The highest severity among its open alerts")
    open_alerts: int
    consecutive_failures: int
    last_error_kind: str | None
    last_checked_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Follower(BaseModel):
    """A guarantor or pledgor deactivated or reactivated along with the borrowers it secures."""

    id: str
    role: PartyRole
    active: bool


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive times; every time stored is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _parties(session: Session, who: Principal, borrowers: Sequence[Borrower]) -> list[Party]:
    """The parties of ``borrowers`` (ones ``who`` may see) with their links and open alerts."""
    ids = [b.id for b in borrowers]
    severities = _open_severities(session, ids)
    links = _secured_by(session, ids)
    targets = sorted({target for secured in links.values() for target in secured})
    visible = set(targets)
    if targets and not sees_all(who):
        visible = set(session.exec(scoped(select(Borrower.id), who).where(col(Borrower.id).in_(targets))))
    return [_party(b, links.get(b.id, []), visible, severities.get(b.id, [])) for b in borrowers]


def _open_severities(session: Session, ids: Sequence[str]) -> dict[str, list[Severity]]:
    """The severities of each party's open alerts, read in one query for the whole page."""
    severities: dict[str, list[Severity]] = {}
    if not ids:
        return severities
    open_alerts = select(Alert.borrower_id, Alert.severity).where(
        Alert.status == AlertStatus.OPEN, col(Alert.borrower_id).in_(ids)
    )
    for borrower_id, severity in session.exec(open_alerts):
        if borrower_id is not None:
            severities.setdefault(borrower_id, []).append(Severity(severity))
    return severities


def _secured_by(session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
    """The borrowers each party secures, in id order, read in one query for the whole page."""
    links: dict[str, list[str]] = {}
    if not ids:
        return links
    link_rows = select(SecuresLink.party_id, SecuresLink.borrower_id).where(
        col(SecuresLink.party_id).in_(ids)
    )
    for party_id, borrower_id in session.exec(link_rows.order_by(col(SecuresLink.borrower_id))):
        links.setdefault(party_id, []).append(borrower_id)
    return links


def _party(b: Borrower, secured: list[str], visible: set[str], found: list[Severity]) -> Party:
    """One party as the API shows it: links the reader cannot see are counted, not named."""
    shown = [target for target in secured if target in visible]
    return Party(
        id=b.id,
        name=b.name,
        source=b.source,
        registry_id=b.registry_id,
        officer=b.officer,
        tags=b.tag_list,
        interval=format_duration(timedelta(seconds=b.interval_seconds)) if b.interval_seconds else None,
        legal_rep_on_file=b.legal_rep_on_file,
        role=PartyRole(b.role),
        secures=shown,
        secures_hidden=len(secured) - len(shown),
        active=b.active,
        deactivated_at=_utc(b.deactivated_at),
        health=health_of(b),
        severity=max(found, key=lambda s: s.rank) if found else None,
        open_alerts=len(found),
        consecutive_failures=b.consecutive_failures,
        last_error_kind=b.last_error_kind,
        last_checked_at=_utc(b.last_checked_at),
        last_success_at=_utc(b.last_success_at),
        created_at=_utc(b.created_at) or b.created_at,
        updated_at=_utc(b.updated_at) or b.updated_at,
    )


def _followers(session: Session, who: Principal, parties: Iterable[Borrower]) -> list[Follower]:
    return [
        Follower(id=p.id, role=PartyRole(p.role), active=p.active)
        for p in parties
        if can_see(session, who, p)
    ]


# -- reading ---------------------------------------------------------------------------------------


def _invalid(loc: Sequence[str | int], message: str) -> RequestValidationError:
    """A 422 like FastAPI's own: the field's path and the reason."""
    return RequestValidationError([{"loc": tuple(loc), "msg": message, "type": "value_error"}])


def _encode_cursor(party_id: str) -> str:
    return base64.urlsafe_b64encode(party_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        party_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        party_id = "\x00"
    if "\x00" in party_id:
        raise _invalid(("query", "cursor"), "not a cursor this listing gave")
    return party_id


def _highest_open_severity_is(severity: Severity) -> ColumnElement[bool]:
    rank = case({s.value: s.rank for s in Severity}, value=col(Alert.severity), else_=-1)
    highest = (
        select(Alert.borrower_id)
        .where(Alert.status == AlertStatus.OPEN, col(Alert.borrower_id).is_not(None))
        .group_by(col(Alert.borrower_id))
        .having(func.max(rank) == severity.rank)
    )
    return col(Borrower.id).in_(highest)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get(
    "/parties", response_model=Page[Party], responses=ERRORS, summary="List the parties this token sees"
)
def list_parties(
    api: Deployment,
    who: Reader,
    page: PageQuery,
    officer: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="Only this officer's parties")
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=1000, pattern=NO_NUL, description="Only parties with this tag")
    ] = None,
    role: Annotated[PartyRole | None, Query(description="Only parties of this role")] = None,
    health: Annotated[Health | None, Query(description="Only parties whose watch stands so")] = None,
    severity: Annotated[
        Severity | None, Query(description="Only parties whose highest open alert has this severity")
    ] = None,
) -> Page[Party]:
    """By id. An officer's token sees that officer's parties and those securing them."""
    query = scoped(select(Borrower), who)
    if officer is not None:
        query = query.where(col(Borrower.officer) == officer)
    if tag is not None:
        tags = literal(",") + col(Borrower.tags) + literal(",")
        query = query.where(tags.like(f"%,{_like_escape(tag.strip())},%", escape="\\"))
    if role is not None:
        query = query.where(col(Borrower.role) == role.value)
    if health is not None:
        query = query.where(_health_condition(health))
    if severity is not None:
        query = query.where(_highest_open_severity_is(severity))
    if page.cursor is not None:
        query = query.where(col(Borrower.id) > _decode_cursor(page.cursor))
    with api.store.session() as session:
        found = list(session.exec(query.order_by(col(Borrower.id)).limit(page.limit + 1)))
        shown = found[: page.limit]
        items = _parties(session, who, shown)
    more = len(found) > page.limit
    return Page.of(items, _encode_cursor(shown[-1].id) if more else None)


def _visible(session: Session, who: Principal, party_id: str) -> Borrower:
    """The party, or 404 when there is none or ``who`` may not see it: the same answer, so a token
    learns nothing of other officers' parties."""
    borrower = session.get(Borrower, party_id)
    if borrower is None or not can_see(session, who, borrower):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no party {party_id!r}")
    return borrower


@router.get(
    "/parties/{party_id}",
    response_model=Party,
    responses={**ERRORS, **NOT_FOUND},
    summary="One party",
)
def get_party(party_id: Annotated[str, ID_PATH], api: Deployment, who: Reader) -> Party:
    with api.store.session() as session:
        return _parties(session, who, [_visible(session, who, party_id)])[0]


# -- writing ---------------------------------------------------------------------------------------


class PartyIn(ApiModel):
    """A row of the borrowers file (``watcher borrowers import``), checked the same way. A field
    left out is empty, as an empty cell is; ``role`` left out keeps the stored role and links, as a
    file without the role column does."""

    name: str = Field(description="The company's name")
    source: str = Field(description="A source of [sources.NAME] in the configuration")
    registry_id: str = Field(description="The company's id at that source's registry")
    officer: str | None = Field(default=None, description="The loan officer's id ([officers.ID])")
    tags: list[str] = Field(default=[], description="Tags (none may contain , or ;)")
    interval: str | None = Field(default=None, description="Its own check interval (e.g. 12h, 1d)")
    legal_rep_on_file: str | None = Field(default=None, description="The legal representative on file")
    role: str | None = Field(
        default=None, description="borrower, guarantor or pledgor; left out: as stored (new: borrower)"
    )
    secures: list[str] | None = Field(
        default=None, description="With role: the ids of the borrowers it secures (all of them)"
    )

    def separator_problem(self) -> tuple[str, str] | None:
        """(field, reason) when a tag or a secured id holds a , or ; which a borrowers file would read
        as two values: refused like any bad cell (per item in a bulk request)."""
        for field, values, what in (("tags", self.tags, "tag"), ("secures", self.secures or [], "id")):
            for value in values:
                if "," in value or ";" in value:
                    return (
                        field,
                        f"{what} {value!r} may not contain , or ; (they separate {what}s in a file)",
                    )
        return None

    def record(self, party_id: str) -> dict[str, str]:
        """As the borrowers file's cells."""
        cells = {
            "id": party_id,
            "name": self.name,
            "source": self.source,
            "registry_id": self.registry_id,
            "officer": self.officer or "",
            "tags": ",".join(self.tags),
            "interval": self.interval or "",
            "legal_rep_on_file": self.legal_rep_on_file or "",
        }
        if self.role is not None:
            cells["role"] = self.role
        if self.secures is not None:
            cells["secures"] = ",".join(self.secures)
        return cells


class BulkParty(PartyIn):
    id: str = Field(description="The party's id, as in the borrowers file's id column")


class BulkIn(ApiModel):
    items: list[BulkParty] = Field(max_length=MAX_BULK, description=f"At most {MAX_BULK} parties")


Outcome = Literal["added", "updated", "unchanged"]


class PartyWritten(BaseModel):
    """What a create or update came to; ``unchanged`` wrote nothing (no audit row either)."""

    outcome: Outcome
    warnings: list[str]
    party: Party
    followers: list[Follower]


class ItemResult(BaseModel):
    """One item of a bulk upsert: accepted (and what became of it) or rejected (and why)."""

    index: int
    id: str
    accepted: bool
    outcome: Outcome | None = Field(description="added, updated or unchanged; null when rejected")
    field: str | None = Field(description="When rejected for one field: which")
    reason: str | None = Field(description="Why it was rejected, as `watcher borrowers import` says")
    warnings: list[str]


class BulkResult(BaseModel):
    added: int
    updated: int
    unchanged: int
    rejected: int
    items: list[ItemResult]
    followers: list[Follower]


def _deployment_sources(api: Api) -> tuple[Mapping[str, Source], list[str]]:
    """The configured sources (each checks its registry ids) and officers, as the import uses them."""
    return build_sources(api.config), list(api.config.officers)


def _warnings(session: Session, parsed: ParsedBorrowers) -> list[RowProblem]:
    """What ``watcher borrowers import`` warns about: an officer not configured, a registry entity
    another party has, an inactive party updated but not watched."""
    inactive = [
        RowProblem(
            parsed.lines[b.id],
            f"party {b.id!r} is inactive; updated but not watched: POST /parties/{b.id}/reactivate "
            "watches it again",
        )
        for b in inactive_among(session, [row.id for row in parsed.rows])
    ]
    return [*parsed.warnings, *registry_id_warnings(session, parsed), *inactive]


@router.put(
    "/parties/{party_id}",
    response_model=PartyWritten,
    responses={**WRITE_ERRORS, **NOT_FOUND},
    summary="Create or update a party",
)
def put_party(party_id: Annotated[str, ID_PATH], body: PartyIn, api: Deployment, who: Writer) -> PartyWritten:
    """Idempotent by id: the same body again is ``unchanged`` and writes nothing. A bad field is 422
    with its path and the reason `watcher borrowers import` gives for it."""
    return _retried(lambda: _put(party_id, body, api, who))


def _put(party_id: str, body: PartyIn, api: Api, who: Principal) -> PartyWritten:
    sources, officers = _deployment_sources(api)
    parsed = parse_records([body.record(party_id)], sources=sources, officers=officers)
    _reject_separators(parsed, [body])
    _refuse_rejected(parsed)
    if who.officer_id is not None and parsed.rows[0].officer != who.officer_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"token {who.name} writes only the parties of officer {who.officer_id!r}: set officer to it",
        )
    with api.store.transaction() as session:
        existing = session.get(Borrower, party_id)
        if existing is not None and who.officer_id is not None and existing.officer != who.officer_id:
            # Not 404: the id is taken, and a create cannot pretend otherwise. Nothing else is told.
            raise HTTPException(status.HTTP_403_FORBIDDEN, not_yours(who, party_id))
        keep_to_officer(session, who, parsed)
        reject_bad_secures(session, parsed, hint_from=hintable(session, who))
        _refuse_rejected(parsed)
        warnings = _warnings(session, parsed)
        counts = upsert_borrowers(session, parsed.rows, actor=who.actor)
        now = api.clock()
        followers = follow_secured(session, [party_id], actor=who.actor, now=now)
        session.flush()
        borrower = session.get(Borrower, party_id)
        assert borrower is not None
        return PartyWritten(
            outcome=counts.outcomes[party_id],
            warnings=[w.message for w in warnings],
            party=_parties(session, who, [borrower])[0],
            followers=_followers(session, who, followers),
        )


def _bulk(
    body: BulkIn, api: Api, who: Principal
) -> tuple[ParsedBorrowers, list[RowProblem], UpsertCounts, list[Follower]]:
    sources, officers = _deployment_sources(api)
    parsed = parse_records([item.record(item.id) for item in body.items], sources=sources, officers=officers)
    _reject_separators(parsed, body.items)
    with api.store.transaction() as session:
        keep_to_officer(session, who, parsed)
        reject_bad_secures(session, parsed, hint_from=hintable(session, who))
        warnings = _warnings(session, parsed)
        counts = upsert_borrowers(session, parsed.rows, actor=who.actor)
        followers = follow_secured(session, [row.id for row in parsed.rows], actor=who.actor, now=api.clock())
        return parsed, warnings, counts, _followers(session, who, followers)


CONFLICT_ATTEMPTS = 3
Result = TypeVar("Result")


def _retried(write: Callable[[], Result]) -> Result:
    """``write`` again when a concurrent request added one of its ids first (on PostgreSQL our
    insert then fails on the primary key): the next attempt finds the party and updates it, as a
    create-or-update promises. Each attempt parses and checks afresh in its own transaction."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return write()
        except IntegrityError:
            if attempt == CONFLICT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _reject_separators(parsed: ParsedBorrowers, items: Sequence[PartyIn]) -> None:
    """Reject the rows whose item held a , or ; in a tag or secured id (the cells split it)."""
    accepted = {parsed.lines[row.id]: row for row in parsed.rows}
    for index, item in enumerate(items):
        problem = item.separator_problem()
        row = accepted.get(index)
        if problem is not None and row is not None:
            parsed.reject(row, problem[1], problem[0])


def _refuse_rejected(parsed: ParsedBorrowers) -> None:
    """422 for the one row's problem, at its field's path (the id's is the URL's)."""
    if not parsed.rejected:
        return
    problem = parsed.rejected[0]
    if problem.field == "id":
        loc: tuple[str, ...] = ("path", "party_id")
    else:
        loc = ("body", problem.field) if problem.field else ("body",)
    raise _invalid(loc, problem.message)


@router.post(
    "/parties:bulk",
    response_model=BulkResult,
    responses=WRITE_ERRORS,
    summary=f"Create or update up to {MAX_BULK} parties",
)
def bulk_parties(body: BulkIn, api: Deployment, who: Writer) -> BulkResult:
    """Each item is accepted or rejected on its own, as the rows of `watcher borrowers import` are;
    the accepted ones are written in one transaction. More than 10,000 items is 422."""
    parsed, warnings, counts, followed = _retried(lambda: _bulk(body, api, who))
    rejected = {problem.line: problem for problem in parsed.rejected}
    warned: dict[int, list[str]] = {}
    for warning in warnings:
        warned.setdefault(warning.line, []).append(warning.message)
    items = []
    for index, item in enumerate(body.items):
        problem = rejected.get(index)
        items.append(
            ItemResult(
                index=index,
                id=item.id,
                accepted=problem is None,
                outcome=counts.outcomes.get(item.id) if problem is None else None,
                field=problem.field if problem else None,
                reason=problem.message if problem else None,
                warnings=warned.get(index, []),
            )
        )
    return BulkResult(
        added=counts.added,
        updated=counts.updated,
        unchanged=counts.unchanged,
        rejected=len(rejected),
        items=items,
        followers=followed,
    )


class LifecycleIn(ApiModel):
    reason: str | None = Field(
        default=None, max_length=1000, description="Why (kept in the audit trail, as --reason)"
    )


class LifecycleResult(BaseModel):
    """``changed`` is false when the party already was in that state (nothing written)."""

    changed: bool
    party: Party
    followers: list[Follower]


def _lifecycle(
    api: Api, who: Principal, party_id: str, change: Callable[..., LifecycleChange], reason: str | None
) -> LifecycleResult:
    """Deactivate or reactivate one party the token may change, as the CLI does."""
    with api.store.transaction() as session:
        borrower = _visible(session, who, party_id)
        if who.officer_id is not None and borrower.officer != who.officer_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, not_yours(who, party_id))
        result = change(session, [party_id], actor=who.actor, now=api.clock(), reason=reason)
        session.flush()
        return LifecycleResult(
            changed=bool(result.changed),
            party=_parties(session, who, [borrower])[0],
            followers=_followers(session, who, result.followers),
        )


@router.post(
    "/parties/{party_id}/deactivate",
    response_model=LifecycleResult,
    responses={**WRITE_ERRORS, **NOT_FOUND},
    summary="Stop watching a party",
)
def deactivate_party(
    party_id: Annotated[str, ID_PATH], api: Deployment, who: Writer, body: LifecycleIn | None = None
) -> LifecycleResult:
    """As `watcher borrowers deactivate`: no checks, no alerts, its data kept for [watcher] retention;
    guarantors and pledgors whose borrowers are all inactive stop with it."""
    return _lifecycle(api, who, party_id, deactivate, body.reason if body else None)


@router.post(
    "/parties/{party_id}/reactivate",
    response_model=LifecycleResult,
    responses={**WRITE_ERRORS, **NOT_FOUND},
    summary="Watch a party again",
)
def reactivate_party(
    party_id: Annotated[str, ID_PATH], api: Deployment, who: Writer, body: LifecycleIn | None = None
) -> LifecycleResult:
    """As `watcher borrowers reactivate`: checked at once, against its last snapshot."""
    return _lifecycle(api, who, party_id, reactivate, body.reason if body else None)
