"""``GET /api/v1/status``: what ``watcher status --format json`` says, for a token without an officer.

The report is deployment-wide (instances, sources, feeds, the outbox, and failing borrowers by id),
so an officer's token is refused (403) rather than shown other officers' parties or a partial truth.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from watcher.api.common import ERRORS, Deployment, DeploymentReader
from watcher.health import ProblemKind, read_health

router = APIRouter(tags=["status"])


class InstanceOut(BaseModel):
    name: str
    host: str
    pid: int
    version: str
    state: str = Field(description="alive, stopped or dead")
    started_at: datetime
    heartbeat_at: datetime
    last_sweep_at: datetime | None
    stopped_at: datetime | None


class BorrowerCounts(BaseModel):
    total: int
    due: int
    overdue: int
    overdue_beyond_failing_after: int
    failing: int
    awaiting_confirmation: int
    inactive: int


class AwaitingOut(BaseModel):
    id: str
    source: str
    since: datetime | None


class DeliveryCounts(BaseModel):
    pending: int
    retrying: int
    dead: int
    held: int


class UnavailableSignalOut(BaseModel):
    signal: str
    since: datetime | None
    retry_at: datetime | None
    reason: str


class SourceOut(BaseModel):
    source: str
    state: str = Field(description="ok or failing")
    consecutive_failures: int
    last_error_kind: str | None
    last_error: str | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    billed_calls_24h: int | None
    unavailable_signals: list[UnavailableSignalOut]


class FailingBorrowerOut(BaseModel):
    id: str
    source: str
    consecutive_failures: int
    last_error_kind: str | None
    last_error: str | None
    last_success_at: datetime | None


class ProblemOut(BaseModel):
    kind: ProblemKind
    subject: str | None
    message: str


class FeedOut(BaseModel):
    source: str
    feed: str
    state: str = Field(description="following, failing, gap, waiting or unfollowed")
    position: str | None
    lag_seconds: float | None
    read_at: datetime | None
    follower: str | None
    entries: int
    marked: int
    last_error: str | None
    failing_since: datetime | None
    gap_since: datetime | None


class StatusReport(BaseModel):
    """The ``watcher status --format json`` object (README, Operations); ``ok`` is false when
    ``watcher status`` would exit 1, and ``problems`` says why."""

    version: int
    ok: bool
    checked_at: datetime
    instances: list[InstanceOut]
    borrowers: BorrowerCounts
    awaiting_confirmation: list[AwaitingOut]
    failing_after: str
    last_check_at: datetime | None
    deliveries: DeliveryCounts
    sources: list[SourceOut]
    failing_borrowers: list[FailingBorrowerOut]
    problems: list[ProblemOut]
    feeds: list[FeedOut]


@router.get("/status", response_model=StatusReport, responses=ERRORS, summary="The deployment's health")
def get_status(api: Deployment, who: DeploymentReader) -> StatusReport:
    """What ``watcher status --format json`` prints. Needs a token without an officer (403 else)."""
    with api.store.session() as session:
        report = read_health(session, api.config, api.clock())
    return StatusReport.model_validate(report.as_json())
