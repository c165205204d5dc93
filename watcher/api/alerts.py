"""``/api/v1/alerts``: the findings, with their changes and evidence, and their lifecycle.

An alert reads as in the signed webhook's document (``watcher.alert_event``): the same fields, its
changes as history rows. A token with an officer sees the alerts the console shows that officer:
those of their parties, and a gap alert about a whole source that lists one of them, with only
their parties listed (``render.AlertView.for_officer``). Acknowledge and close go through
``watcher.alerts`` as the CLI and console do; the audit row names ``api:<token>`` and, in its
detail, the person the caller named as ``by``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from watcher import alerts as lifecycle
from watcher.alert_event import alert_fields, change_rows, gap_fields
from watcher.api.common import (
    ERRORS,
    MAX_ID,
    WRITE_ERRORS,
    ApiModel,
    Deployment,
    ErrorBody,
    Page,
    PageQuery,
    Reader,
    Writer,
)
from watcher.api.events import ChangeOut, decode_cursor, encode_cursor, scoped_changes, visible_parties
from watcher.api.tokens import Principal
from watcher.models import Alert, AlertBorrower, Borrower, ChangeEvent
from watcher.visibility import may_handle, officers_parties, sees_all, visible_alert, visible_alerts
from watcher.vocabulary import AlertKind, AlertStatus, Severity

router = APIRouter(tags=["alerts"])

CURSOR_PREFIX = "al1:"
NO_NUL = r"^[^\x00]*$"
"""Text PostgreSQL can store (no NUL character): anything else is a 422 here, not a 500 there."""
NAMED = r"^[^\x00]*[^\x00\s][^\x00]*$"
MAX_NOTE_CHARS = 4000
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such alert, or not one this token may see"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The step does not apply to the alert's status"}
}


class Step(Protocol):
    """:func:`watcher.alerts.acknowledge` or :func:`watcher.alerts.close`."""

    def __call__(
        self, session: Session, alert_id: int, *, by: str, note: str | None, at: datetime, actor: str | None
    ) -> Alert: ...


AlertId = Annotated[int, Path(ge=1, le=MAX_ID, description="The alert's id")]


class SecuredOut(BaseModel):
    borrower_id: str
    name: str
    officer: str | None


class AlertOut(BaseModel):
    """An alert as the signed webhook's ``alert`` reads, and how it has been handled. For a token with
    an officer, ``secures`` lists only that officer's borrowers (``secures_hidden`` counts the rest)."""

    id: int
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    created_at: datetime
    source: str
    borrower_id: str | None = Field(description="Null for a gap alert about a whole source")
    borrower_name: str | None
    party_role: str | None
    officer: str | None
    secures: list[SecuredOut]
    secures_hidden: int = 0
    occasions_in_window: int
    recommend_early_repayment: bool
    signatory_mismatch: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    note: str | None


class GapBorrowerOut(BaseModel):
    borrower_id: str | None
    borrower_name: str | None
    officer: str | None
    failing_since: str | None
    error_kind: str | None
    party_role: str
    secures: list[SecuredOut]


class GapOut(BaseModel):
    """A monitoring gap or its recovery (or a change feed's): for a token with an officer, only the
    parties that officer sees; ``borrowers_hidden`` counts the others."""

    source: str | None
    since: str | None
    error_kind: str | None
    feed: str | None
    feed_error: str | None
    borrowers: list[GapBorrowerOut]
    borrowers_hidden: int = 0


class EvidenceLink(BaseModel):
    """A console page or export that shows what the alert stands on (paths on the console's server;
    they need a console sign-in, not the API token)."""

    rel: str = Field(description="timeline, snapshot, raw_answers, history_csv, history_xlsx or status")
    href: str
    snapshot_id: int | None = None


class AlertDetail(AlertOut):
    """An alert with its changes (history rows, as the events feed), its gap and its evidence."""

    changes: list[ChangeOut]
    gap: GapOut | None
    evidence: list[EvidenceLink]


class LifecycleStep(ApiModel):
    """Who handles the alert (a person, recorded as ``acknowledged_by``/``closed_by``) and why."""

    by: str = Field(min_length=1, max_length=200, pattern=NAMED, description="Who handles it")
    note: str | None = Field(
        default=None, max_length=MAX_NOTE_CHARS, pattern=NO_NUL, description="What was done or decided"
    )


def _as_utc(value: datetime, field: str) -> datetime:
    """A time as UTC (a time without an offset is read as UTC); one that falls outside the years
    a datetime holds once moved to UTC is a 422, not a 500."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise RequestValidationError(
            [{"loc": ("query", field), "msg": "out of range once in UTC", "type": "value_error"}]
        ) from None


def _alert_out(alert: Alert, borrower: Borrower | None, who: Principal) -> AlertOut:
    fields = alert_fields(alert, borrower, json.loads(alert.detail or "{}"))
    secures = fields["secures"]
    if not sees_all(who):
        mine = [secured for secured in secures if secured["officer"] == who.officer_id]
        fields = {**fields, "secures": mine, "secures_hidden": len(secures) - len(mine)}
    return AlertOut.model_validate(
        {
            **fields,
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": alert.acknowledged_at,
            "closed_by": alert.closed_by,
            "closed_at": alert.closed_at,
            "note": alert.note,
        }
    )


def _gap_out(session: Session, alert: Alert, who: Principal) -> GapOut | None:
    if AlertKind(alert.kind).about_changes:
        return None
    gap = gap_fields(json.loads(alert.detail or "{}"))
    listed = gap["borrowers"]
    if not sees_all(who):
        seen = visible_parties(
            session, who, [entry["borrower_id"] for entry in listed if entry["borrower_id"]]
        )
        own = [
            {**entry, "secures": [s for s in entry["secures"] if s["officer"] == who.officer_id]}
            for entry in listed
            if entry["borrower_id"] in seen
        ]
        gap = {**gap, "borrowers": own, "borrowers_hidden": len(listed) - len(own)}
    return GapOut.model_validate(gap)


def _evidence(session: Session, alert: Alert) -> list[EvidenceLink]:
    """The console's pages for the alert's party and the snapshots its changes were found in."""
    if alert.borrower_id is None:
        return [EvidenceLink(rel="status", href="/status")]
    party = urlencode({"id": alert.borrower_id})
    history = urlencode({"borrower": alert.borrower_id})
    links = [EvidenceLink(rel="timeline", href=f"/borrower?{party}")]
    snapshots = session.exec(
        select(ChangeEvent.snapshot_id)
        .where(ChangeEvent.alert_id == alert.id, col(ChangeEvent.snapshot_id).is_not(None))
        .distinct()
        .order_by(col(ChangeEvent.snapshot_id))
    )
    for snapshot_id in snapshots:
        assert snapshot_id is not None
        links.append(EvidenceLink(rel="snapshot", href=f"/snapshots/{snapshot_id}", snapshot_id=snapshot_id))
        links.append(
            EvidenceLink(
                rel="raw_answers", href=f"/snapshots/{snapshot_id}/raw.json", snapshot_id=snapshot_id
            )
        )
    links.append(EvidenceLink(rel="history_csv", href=f"/export/history.csv?{history}"))
    links.append(EvidenceLink(rel="history_xlsx", href=f"/export/history.xlsx?{history}"))
    return links


def _detail(session: Session, alert: Alert, who: Principal) -> AlertDetail:
    borrower = session.get(Borrower, alert.borrower_id) if alert.borrower_id else None
    out = _alert_out(alert, borrower, who)
    changes = scoped_changes(session, who, change_rows(session, alert))
    return AlertDetail(
        **out.model_dump(),
        changes=changes,
        gap=_gap_out(session, alert, who),
        evidence=_evidence(session, alert),
    )


def _listing_party(party: str) -> Any:
    """An alert about ``party``: its own, or a gap alert about a whole source that lists it."""
    listing = select(AlertBorrower.alert_id).where(AlertBorrower.borrower_id == party)
    return or_(
        col(Alert.borrower_id) == party, and_(col(Alert.borrower_id).is_(None), col(Alert.id).in_(listing))
    )


def _listing_officers(officer: str) -> Any:
    """An alert of ``officer``'s borrower, or a gap alert about a whole source that lists their party."""
    listing = (
        select(AlertBorrower.alert_id)
        .join(Borrower, col(Borrower.id) == col(AlertBorrower.borrower_id))
        .where(officers_parties(officer))
    )
    return or_(
        col(Borrower.officer) == officer, and_(col(Alert.borrower_id).is_(None), col(Alert.id).in_(listing))
    )


@router.get("/alerts", response_model=Page[AlertOut], responses=ERRORS, summary="List alerts")
def list_alerts(
    who: Reader,
    api: Deployment,
    page: PageQuery,
    status_: Annotated[
        AlertStatus | None, Query(alias="status", description="Only alerts in this status")
    ] = None,
    severity: Annotated[Severity | None, Query(description="Only alerts at least this severe")] = None,
    officer: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="Only this officer's alerts")
    ] = None,
    since: Annotated[datetime | None, Query(description="Only alerts raised at or after this time")] = None,
    party: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="Only alerts about this party")
    ] = None,
) -> Page[AlertOut]:
    """Alerts the token may see, newest first (by id), in pages of ``limit``: follow ``next_cursor``."""
    before = decode_cursor(CURSOR_PREFIX, page.cursor, "cursor")
    query = visible_alerts(
        select(Alert, Borrower).join(Borrower, col(Borrower.id) == col(Alert.borrower_id), isouter=True), who
    )
    if before is not None:
        query = query.where(col(Alert.id) < before)
    if status_ is not None:
        query = query.where(Alert.status == status_)
    if severity is not None:
        query = query.where(col(Alert.severity).in_([s.value for s in Severity if s >= severity]))
    if officer is not None:
        query = query.where(_listing_officers(officer))
    if since is not None:
        query = query.where(col(Alert.created_at) >= _as_utc(since, "since"))
    with api.store.session() as session:
        if party is not None:
            if party not in visible_parties(session, who, [party]):
                return Page.of([], None)  # another officer's party: no alert of theirs is named here
            query = query.where(_listing_party(party))
        rows = list(session.exec(query.order_by(col(Alert.id).desc()).limit(page.limit + 1)))
        items = [_alert_out(alert, borrower, who) for alert, borrower in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page.of(items, encode_cursor(CURSOR_PREFIX, items[-1].id) if more else None)


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    responses={**ERRORS, **NOT_FOUND},
    summary="An alert with its changes and evidence",
)
def get_alert(alert_id: AlertId, who: Reader, api: Deployment) -> AlertDetail:
    """The alert, its changes as history rows, its gap, and links to the console's evidence."""
    with api.store.session() as session:
        alert = visible_alert(session, who, alert_id)
        if alert is None:
            raise _not_found(alert_id)
        return _detail(session, alert, who)


def _not_found(alert_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no alert #{alert_id} this token may see")


def _step(step: Step, alert_id: int, body: LifecycleStep, who: Principal, api: Deployment) -> AlertDetail:
    """One step through ``watcher.alerts``, in one transaction with its visibility check."""
    try:
        with api.store.transaction() as session:
            alert = visible_alert(session, who, alert_id)
            if alert is None:
                raise _not_found(alert_id)
            if not may_handle(who, alert):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"alert #{alert_id} lists other officers' parties: a token without --officer handles it",
                )
            step(
                session, alert_id, by=body.by.strip(), note=body.note or None, at=api.clock(), actor=who.actor
            )
    except lifecycle.AlertStateError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    with api.store.session() as session:
        handled = session.get(Alert, alert_id)
        assert handled is not None
        return _detail(session, handled, who)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertDetail,
    responses={**WRITE_ERRORS, **NOT_FOUND, **CONFLICT},
    summary="Acknowledge an open alert",
)
def acknowledge_alert(alert_id: AlertId, body: LifecycleStep, who: Writer, api: Deployment) -> AlertDetail:
    """open → acknowledged, as ``watcher alerts ack --by … --note …`` (409 from any other status)."""
    return _step(lifecycle.acknowledge, alert_id, body, who, api)


@router.post(
    "/alerts/{alert_id}/close",
    response_model=AlertDetail,
    responses={**WRITE_ERRORS, **NOT_FOUND, **CONFLICT},
    summary="Close an alert",
)
def close_alert(alert_id: AlertId, body: LifecycleStep, who: Writer, api: Deployment) -> AlertDetail:
    """open or acknowledged → closed, as ``watcher alerts close --by … --note …`` (409 when closed)."""
    return _step(lifecycle.close, alert_id, body, who, api)
