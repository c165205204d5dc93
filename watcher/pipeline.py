"""Check borrowers: fetch, classify, diff, assess, and store everything of one check in one transaction.

A fetch either yields a record or raises a ``SourceError``; a failure is recorded for the borrower
and the source's health and never reaches the diff. A change is stored together with its alert and
one outbox row per delivery target, so a crash can delay an alert but never lose it.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from sources import source_class
from sources.base import Fetched, SamePayload, Source
from watcher.config import Config
from watcher.diff import Change, diff
from watcher.errors import CheckStorageError, SourceError
from watcher.models import Alert, Borrower, ChangeEvent, KeyPersonOccasion, Snapshot, utcnow
from watcher.normalize import content_hash, normalize_record
from watcher.record import KEY_PERSON_CATEGORIES, RegistryRecord, record_as_dict, record_from_dict
from watcher.routing import plan_deliveries
from watcher.rules import Assessment, RuleSettings, assess, signatory_mismatch, vanished_sections
from watcher.schedule import next_check_at
from watcher.store import (
    Store,
    add_deliveries,
    audit,
    latest_hash,
    latest_snapshot,
    occasion_days_since,
    pack_raw,
    record_source_health,
)

SYSTEM_ACTOR = "watcher"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one borrower's check came to, for summaries and exit codes."""

    borrower_id: str
    ok: bool
    baseline: bool = False
    changes: int = 0
    alert_id: int | None = None
    severity: str | None = None
    error_kind: str | None = None
    error: str | None = None
    # A mass disappearance held until a second fetch confirms it: nothing stored, nothing alerted.
    awaiting_confirmation: bool = False


HEALTH_WRITE_EVERY = timedelta(minutes=1)
SETTLE_BATCH = 256  # unchanged checks written in one transaction
SETTLE_AGE = timedelta(seconds=2)  # ... or once the oldest of them has waited this long


@dataclass(frozen=True, slots=True)
class _Unchanged:
    """The bookkeeping of a check that found its borrower as stored, waiting to be written."""

    borrower_id: str
    source: str
    content_hash: str
    payload_digest: str | None
    checked_at: datetime
    next_check_at: datetime

def build_sources(config: Config) -> dict[str, Source]:
    return {name: source_class(options.type)(name, options) for name, options in config.sources.items()}


class Checker:
    """Runs checks with bounded concurrency; database work goes through one thread, one writer."""

    def __init__(
        self,
        store: Store,
        config: Config,
        sources: dict[str, Source] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.sources = sources if sources is not None else build_sources(config)
        self.rules = RuleSettings(window=config.rules.window, frequent_after=config.rules.frequent_after)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-db")
        self._success_written_at: dict[str, datetime] = {}
        self._unsettled: list[_Unchanged] = []

    async def aclose(self) -> None:
        try:
            await self.flush()
        finally:
            for source in self.sources.values():
                await source.aclose()
            self._db.shutdown(wait=True)

    async def _in_db(self, function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    async def check(
        self, borrowers: Sequence[Borrower], on_outcome: Callable[[CheckOutcome], None] | None = None
    ) -> list[CheckOutcome]:
        """Check ``borrowers`` with ``concurrency`` workers; outcomes come back in input order.

        A fixed pool of workers takes borrowers one by one, rather than one coroutine per borrower,
        so memory and scheduling cost do not grow with the portfolio.
        """
        outcomes: list[CheckOutcome | None] = [None] * len(borrowers)
        queue = iter(enumerate(borrowers))  # shared: each borrower is taken by exactly one worker

        async def worker() -> None:
            for index, borrower in queue:
                outcome = await self.check_one(borrower)
                outcomes[index] = outcome
                if on_outcome is not None:
                    on_outcome(outcome)

        workers = min(self.config.schedule.concurrency, len(borrowers))
        results = await asyncio.gather(*(worker() for _ in range(workers)), return_exceptions=True)
        await self.flush()
        # Every worker runs to its end before an unexpected error (e.g. the database) is re-raised,
        # so no half-finished check is left behind.
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [outcome for outcome in outcomes if outcome is not None]

    async def check_one(self, borrower: Borrower) -> CheckOutcome:
        """Check one borrower. An unchanged result may be written later, with others: see :meth:`flush`."""
        source = self.sources.get(borrower.source)
        if source is None:
            error = SourceError(
                f"source {borrower.source!r} is not configured",
                source=borrower.source,
                registry_id=borrower.registry_id,
            )
            return await self._in_db(self._record_failure, borrower.id, error)
        has_baseline = borrower.baseline_at is not None and borrower.last_content_hash is not None
        try:
            fetched = await source.fetch(
                borrower.registry_id, borrower.last_payload_digest if has_baseline else None
            )
        except SourceError as error:
            return await self._in_db(self._record_failure, borrower.id, error)
        if isinstance(fetched, SamePayload):
            return await self._settle(borrower, fetched.payload_digest)
        record = normalize_record(fetched.record)
        digest = content_hash(record)
        if (
            has_baseline
            and digest == borrower.last_content_hash
            and signatory_mismatch(record, borrower.legal_rep_on_file) == borrower.signatory_mismatch
        ):
            return await self._settle(borrower, fetched.payload_digest)
        try:
            return await self._in_db(self._record_success, borrower.id, fetched, record, digest)
        except (SQLAlchemyError, ValueError) as error:
            # The database refused this check's data: a failed check of this borrower, retried and
            # shown in status, while the sweep goes on. If even that cannot be written, the
            # database itself is the problem and the original error goes up.
            reason = getattr(error, "orig", None) or error
            message = " ".join(str(reason).split())[:300]
            failure = CheckStorageError(f"storing the check failed: {type(reason).__name__}: {message}")
            return await self._in_db(self._record_failure, borrower.id, failure)

    # -- unchanged checks, written in batches ------------------------------------------------------

    async def _settle(self, borrower: Borrower, payload: str | None) -> CheckOutcome:
        """Queue an unchanged check's bookkeeping; write the queue once it is big or old enough.

        Nothing of an unchanged check needs to be stored at once: until its batch is written the
        borrower stays claimed (or due) and is simply checked again, so a crash loses no alert, and
        a cycle spends one transaction per ``SETTLE_BATCH`` borrowers instead of one each.
        """
        now = self.clock()
        self._unsettled.append(
            _Unchanged(
                borrower_id=borrower.id,
                source=borrower.source,
                content_hash=borrower.last_content_hash or "",
                payload_digest=payload,
                checked_at=now,
                next_check_at=self._next_check(borrower, now, settle=borrower.consecutive_failures > 0),
            )
        )
        oldest = self._unsettled[0].checked_at
        if len(self._unsettled) >= SETTLE_BATCH or not (timedelta(0) <= now - oldest < SETTLE_AGE):
            await self.flush()
        return CheckOutcome(borrower.id, ok=True)

    async def flush(self) -> None:
        """Write every queued unchanged check (``check`` does at its end; callers of ``check_one`` must)."""
        batch, self._unsettled = self._unsettled, []
        if batch:
            await self._in_db(self._write_unchanged, batch)

    def _write_unchanged(self, batch: Sequence[_Unchanged]) -> None:
        table = Borrower.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.last_content_hash == bindparam("b_hash"))
            .values(
                last_checked_at=bindparam("b_at"),
                last_success_at=bindparam("b_at"),
                next_check_at=bindparam("b_next"),
                last_payload_digest=bindparam("b_payload"),
                claimed_by=None,
                lease_until=None,
                consecutive_failures=0,
                last_error=None,
                last_error_kind=None,
                failing_since=None,
                pending_since=None,
                pending_hash=None,
                pending_raw_gz=None,
            )
        )
        rows = [
            {
                "b_id": item.borrower_id,
                "b_hash": item.content_hash,
                "b_at": item.checked_at,
                "b_next": item.next_check_at,
                "b_payload": item.payload_digest,
            }
            for item in batch
        ]
        expected = {item.borrower_id: item.content_hash for item in batch}
        now = self.clock()
        with self.store.transaction() as session:
            connection = session.connection()
            connection.execute(statement, rows)
            stored = connection.execute(
                select(table.c.id, table.c.last_content_hash).where(table.c.id.in_(list(expected)))
            )
            # Another check of the same borrower (a lease that lapsed) stored a change meanwhile: this
            # result compared against an outdated record, so check it again, in full, right away.
            moved = [borrower_id for borrower_id, digest in stored if expected[borrower_id] != digest]
            if moved:
                connection.execute(
                    update(table)
                    .where(table.c.id.in_(moved))
                    .values(claimed_by=None, lease_until=None, next_check_at=now, last_payload_digest=None)
                )
            sources = sorted({item.source for item in batch})
            written = [source for source in sources if self._health_due(source, now)]
            for source in written:
                record_source_health(session, source, ok=True, at=now)
        for source in written:
            self._success_written_at[source] = now

    # -- database side (runs on the single DB thread) ----------------------------------------------

    def _next_check(self, borrower: Borrower, now: datetime, *, settle: bool) -> datetime:
        interval = (
            timedelta(seconds=borrower.interval_seconds)
            if borrower.interval_seconds
            else self.config.schedule.interval
        )
        return next_check_at(
            borrower.id,
            now,
            interval,
            scheduled=borrower.next_check_at,
            jitter=self.config.schedule.jitter,
            draw=random.random(),
            settle=settle,
        )

    def _record_failure(self, borrower_id: str, error: SourceError | CheckStorageError) -> CheckOutcome:
        now = self.clock()
        message = str(error).replace("\x00", "")  # the one character a database refuses in text
        with self.store.transaction() as session:
            # Locked: a second, overlapping check of the same borrower (a lease that lapsed) waits and
            # then sees this one's snapshot, instead of storing the same change twice.
            borrower = session.get(Borrower, borrower_id, with_for_update=True)
            assert borrower is not None
            borrower.last_checked_at = now
            borrower.claimed_by = None
            borrower.lease_until = None
            borrower.consecutive_failures += 1
            borrower.last_error = message
            borrower.last_error_kind = error.kind
            if borrower.failing_since is None:
                borrower.failing_since = now
            backoff = self.config.schedule.retry_after_failure * min(
                2 ** (borrower.consecutive_failures - 1), 16
            )
            borrower.next_check_at = now + min(backoff, self.config.schedule.interval)
            session.add(borrower)
            if isinstance(error, SourceError):  # a storage failure says nothing about the registry
                record_source_health(
                    session, borrower.source, ok=False, error=message, kind=error.kind, at=now
                )
        if isinstance(error, SourceError):
            self._success_written_at.pop(borrower.source, None)  # the next success resets the count
        return CheckOutcome(borrower_id, ok=False, error_kind=error.kind, error=message)

    def _record_success(
        self, borrower_id: str, fetched: Fetched, record: RegistryRecord, digest: str
    ) -> CheckOutcome:
        now = self.clock()
        with self.store.transaction() as session:
            # Locked: a second, overlapping check of the same borrower (a lease that lapsed) waits and
            # then sees this one's snapshot, instead of storing the same change twice.
            borrower = session.get(Borrower, borrower_id, with_for_update=True)
            assert borrower is not None
            # A first check, or a first success after failures, has no slot worth keeping.
            settle = borrower.baseline_at is None or borrower.consecutive_failures > 0
            outcome = self._apply(session, borrower, record, digest, fetched, now)
            borrower.last_checked_at = now
            borrower.claimed_by = None
            borrower.lease_until = None
            borrower.last_success_at = now
            borrower.consecutive_failures = 0
            borrower.last_error = None
            borrower.last_error_kind = None
            borrower.failing_since = None
            borrower.next_check_at = self._next_check(borrower, now, settle=settle)
            if outcome.awaiting_confirmation:
                # Checked again once the confirmation is due, and the same answer must be mapped
                # again then (not skipped as "same as last time").
                assert borrower.pending_since is not None
                confirm_at = borrower.pending_since + self.config.rules.confirm_after
                borrower.next_check_at = max(now, min(borrower.next_check_at, confirm_at))
            else:
                borrower.last_payload_digest = fetched.payload_digest
            session.add(borrower)
            write_health = self._health_due(borrower.source, now)
            if write_health:
                record_source_health(session, borrower.source, ok=True, at=now)
        if write_health:
            self._success_written_at[borrower.source] = now
        return outcome

    def _health_due(self, source: str, now: datetime) -> bool:
        """A source's success is written at most once a minute while it stays healthy: one less write
        per check, and `watcher status` is still right to the minute. Failures are always written."""
        written = self._success_written_at.get(source)
        return written is None or not (timedelta(0) <= now - written < HEALTH_WRITE_EVERY)

    def _apply(
        self,
        session: Session,
        borrower: Borrower,
        record: RegistryRecord,
        digest: str,
        fetched: Fetched,
        now: datetime,
    ) -> CheckOutcome:
        baseline = borrower.baseline_at is None
        changes: list[Change] = []
        snapshot: Snapshot | None = None
        if baseline:
            snapshot = self._snapshot(session, borrower, record, digest, fetched, now)
            borrower.baseline_at = now
            self._remember_history(session, borrower, record, now)
        elif (borrower.last_content_hash or latest_hash(session, borrower.id)) != digest:
            previous = latest_snapshot(session, borrower.id)
            old = record_from_dict(json.loads(previous.record_json)) if previous else record
            if not self._confirmed(borrower, old, record, digest, fetched, now):
                return CheckOutcome(borrower.id, ok=True, awaiting_confirmation=True)
            changes = diff(old, record)
            snapshot = self._snapshot(session, borrower, record, digest, fetched, now)

        baseline_day = (borrower.baseline_at or now).date()
        late_history = [
            c
            for c in changes
            if c.from_change_log and c.effective_date is not None and c.effective_date < baseline_day
        ]
        news = [c for c in changes if c not in late_history]
        today = now.date()
        # Earlier occasions matter only to a check that found something: unchanged checks (nearly
        # all of them) skip the query.
        earlier = occasion_days_since(session, borrower.id, today - self.rules.window) if changes else []
        earlier += [c.effective_date for c in late_history if c.key_person and c.effective_date]
        assessment = assess(
            news,
            record=record,
            detected_on=today,
            earlier_occasions=earlier,
            settings=self.rules,
            legal_rep_on_file=borrower.legal_rep_on_file,
            previous_mismatch=borrower.signatory_mismatch,
        )
        borrower.signatory_mismatch = assessment.signatory_mismatch
        alert = self._alert(session, borrower, assessment, now) if assessment.severity else None
        for change in changes:
            session.add(
                ChangeEvent(
                    borrower_id=borrower.id,
                    snapshot_id=snapshot.id if snapshot else None,
                    alert_id=alert.id if alert and change in news else None,
                    source=borrower.source,
                    category=change.category.value,
                    action=change.action.value,
                    subject=change.subject,
                    before=change.before,
                    after=change.after,
                    effective_date=change.effective_date,
                    detected_at=now,
                    key_person=change.key_person,
                )
            )
        for day in assessment.occasions:
            session.add(
                KeyPersonOccasion(
                    borrower_id=borrower.id,
                    occasion_date=day,
                    detected_at=now,
                    alert_id=alert.id if alert else None,
                )
            )
        for change in late_history:
            if change.key_person and change.effective_date:
                session.add(
                    KeyPersonOccasion(
                        borrower_id=borrower.id,
                        occasion_date=change.effective_date,
                        detected_at=now,
                        historical=True,
                        evidence=change.subject,
                    )
                )
        return CheckOutcome(
            borrower.id,
            ok=True,
            baseline=baseline,
            changes=len(changes),
            alert_id=alert.id if alert else None,
            severity=assessment.severity.value if assessment.severity else None,
        )

    def _confirmed(
        self,
        borrower: Borrower,
        old: RegistryRecord,
        record: RegistryRecord,
        digest: str,
        fetched: Fetched,
        now: datetime,
    ) -> bool:
        """Whether a change may be stored now: yes, unless people or shareholders vanished en masse
        and no second fetch at least ``confirm_after`` after the first has shown the same yet.

        The first fetch of such a change is kept on the borrower; when the confirming fetch comes,
        both go into the snapshot as evidence.
        """
        if not vanished_sections(old, record):
            self._forget_pending(borrower)
            return True
        if borrower.pending_hash == digest and borrower.pending_since is not None:
            return now - borrower.pending_since >= self.config.rules.confirm_after
        borrower.pending_since = now
        borrower.pending_hash = digest
        borrower.pending_raw_gz = pack_raw(fetched.raw)
        return False

    @staticmethod
    def _forget_pending(borrower: Borrower) -> None:
        borrower.pending_since = borrower.pending_hash = borrower.pending_raw_gz = None

    def _snapshot(
        self,
        session: Session,
        borrower: Borrower,
        record: RegistryRecord,
        digest: str,
        fetched: Fetched,
        now: datetime,
    ) -> Snapshot:
        borrower.last_content_hash = digest
        confirmed = borrower.pending_hash == digest and borrower.pending_raw_gz is not None
        snapshot = Snapshot(
            borrower_id=borrower.id,
            source=borrower.source,
            fetched_at=now,
            content_hash=digest,
            record_json=json.dumps(record_as_dict(record), ensure_ascii=False, sort_keys=True),
            raw_gz=pack_raw(fetched.raw),
            first_seen_at=borrower.pending_since if confirmed else None,
            first_raw_gz=borrower.pending_raw_gz if confirmed else None,
        )
        self._forget_pending(borrower)
        session.add(snapshot)
        session.flush()
        return snapshot

    def _remember_history(
        self, session: Session, borrower: Borrower, record: RegistryRecord, now: datetime
    ) -> None:
        """Key-person changes the source dates before our baseline still count toward the window."""
        for entry in record.change_log or ():
            if entry.date is not None and entry.categories & KEY_PERSON_CATEGORIES:
                session.add(
                    KeyPersonOccasion(
                        borrower_id=borrower.id,
                        occasion_date=entry.date,
                        detected_at=now,
                        historical=True,
                        evidence=entry.item,
                    )
                )

    def _alert(self, session: Session, borrower: Borrower, assessment: Assessment, now: datetime) -> Alert:
        assert assessment.severity is not None
        alert = Alert(
            borrower_id=borrower.id,
            source=borrower.source,
            severity=assessment.severity.value,
            created_at=now,
            occasions_in_window=assessment.occasions_in_window,
            recommend_early_repayment=assessment.recommend_early_repayment,
            signatory_mismatch=assessment.signatory_mismatch if assessment.signatory_warning else None,
        )
        session.add(alert)
        session.flush()
        planned = plan_deliveries(
            self.config,
            officer=borrower.officer,
            tags=borrower.tag_list,
            source=borrower.source,
            severity=assessment.severity,
            now=now,
        )
        add_deliveries(session, alert.id, planned, now)
        targets = sorted({delivery.target for delivery in planned})
        audit(
            session,
            actor=SYSTEM_ACTOR,
            action="alert.opened",
            subject_type="alert",
            subject_id=alert.id,
            detail={"borrower_id": borrower.id, "severity": alert.severity, "targets": targets},
            at=now,
        )
        return alert
