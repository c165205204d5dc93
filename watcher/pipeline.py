"""Check borrowers: fetch, classify, diff, assess, and store everything of one check in one transaction.

A fetch either yields a record or raises a ``SourceError``; a failure is recorded for the borrower
and the source's health and never reaches the diff. A change is stored together with its alert and
one outbox row per delivery target, so a crash can delay an alert but never lose it. A stored
snapshot also replaces the party's ties in the portfolio index (``watcher.party_ties``), from the
record as stored. The rows a check's news leaves (its alert with its outbox rows, change events,
key-person occasions, and the alerts of connected parties) are written by :mod:`watcher.check_alerts`.

Vendor signals: a scheduled check asks only for the signals due (:func:`~watcher.schedule.due_signals`),
``watcher check`` for all; each success stamps the signals it fetched in ``Borrower.signals_checked``.
A signal a source's account cannot fetch is recorded in ``source_signal`` and skipped by every
instance for ``RETRY_UNAVAILABLE_AFTER``; billed calls are added to ``source_usage`` per hour.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar, TypeVarTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from sources import source_class
from sources.base import Fetched, SamePayload, Source
from sources.change_feed import FeedOptions
from watcher.check_alerts import alert_connected_parties, change_event, key_person_occasions, open_alert
from watcher.config import Config
from watcher.connected import (
    Finding,
    connected_findings,
    finding_change,
    may_join_by_control,
    with_groups,
    with_own_findings,
)
from watcher.connections import party_ties
from watcher.errors import CheckStorageError, ParseError, SourceError
from watcher.evaluate import Evaluation, Outcome, StoredState, evaluate
from watcher.models import Borrower, Snapshot, SourceSignal, utcnow
from watcher.normalize import content_hash, normalize_record
from watcher.party_ties import load_group, load_neighbourhood, load_parties, replace_party_ties
from watcher.record import RegistryRecord, Signal, record_as_dict, record_from_dict
from watcher.redaction import redact
from watcher.rules import RuleSettings, signatory_mismatch
from watcher.schedule import due_signals, next_check_at, read_signals_checked, signals_checked_after
from watcher.store import (
    Store,
    add_billed_calls,
    forget_unavailable_signal,
    latest_hash,
    latest_snapshot,
    mark_signal_unavailable,
    occasion_days_since,
    pack_raw,
    record_source_health,
    unavailable_signals,
    usage_hour,
)
from watcher.vocabulary import ErrorKind, Severity

_Args = TypeVarTuple("_Args")
_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one borrower's check came to, for summaries and exit codes."""

    borrower_id: str
    ok: bool
    baseline: bool = False
    changes: int = 0
    alert_id: int | None = None
    severity: Severity | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    # A mass disappearance held until a second fetch confirms it: nothing stored, nothing alerted.
    awaiting_confirmation: bool = False
    # Deactivated while its check was in flight: the result is dropped, nothing stored or alerted.
    inactive: bool = False


HEALTH_WRITE_EVERY = timedelta(minutes=1)
SETTLE_BATCH = 256  # unchanged checks written in one transaction
SETTLE_AGE = timedelta(seconds=2)  # ... or once the oldest of them has waited this long
# A signal the account could not fetch is tried again after this long (the bank may buy it meanwhile).
RETRY_UNAVAILABLE_AFTER = timedelta(hours=24)
# How often a running checker re-reads the unavailable signals, so that an operator's
# `watcher signals retry` (or another instance's mark) reaches a daemon that is already running.
RELOAD_UNAVAILABLE_EVERY = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class _Unchanged:
    """The bookkeeping of a check that found its borrower as stored, waiting to be written."""

    borrower_id: str
    source: str
    content_hash: str
    payload_digest: str | None
    checked_at: datetime
    next_check_at: datetime
    signals_checked: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed check leaves on its borrower."""

    kind: ErrorKind
    message: str
    consecutive: int
    since: datetime


def settled(
    *,
    now: datetime,
    next_check_at: datetime,
    payload: str | None = None,
    signals_checked: str | None = None,
    failure: Failure | None = None,
) -> dict[str, object]:
    """The borrower's bookkeeping after a check, as column values: the one place that says what a
    success or a failure leaves behind (the claim released, the error kept or cleared, the next due
    time, after a success no wait for confirmation and when each signal was fetched), for the ORM
    and the batched writes alike."""
    values: dict[str, object] = {
        "last_checked_at": now,
        "next_check_at": next_check_at,
        "claimed_by": None,
        "lease_until": None,
    }
    if failure is not None:
        return values | {
            "consecutive_failures": failure.consecutive,
            "last_error": failure.message,
            "last_error_kind": failure.kind,
            "failing_since": failure.since,
        }
    return values | {
        "last_success_at": now,
        "last_payload_digest": payload,
        "consecutive_failures": 0,
        "last_error": None,
        "last_error_kind": None,
        "failing_since": None,
        "pending_since": None,
        "pending_hash": None,
        "pending_raw_gz": None,
        "signals_checked": signals_checked,
    }


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
        # Signals each source cannot fetch, as stored in ``source_signal``, with their retry time:
        # loaded before the first check, so a restart (or another instance) skips them too.
        self._retry_unavailable: dict[str, dict[Signal, datetime]] = {}
        self._unavailable_loaded_at: datetime | None = None
        self._loading = asyncio.Lock()
        # Sources whose change feeds are healthy (``watcher.feeds``): polled in full only every
        # ``full_interval``. Set by the daemon before each batch; empty (the normal interval) otherwise.
        self.feed_mode: frozenset[str] = frozenset()

    async def aclose(self) -> None:
        try:
            await self.flush()
        finally:
            for source in self.sources.values():
                await source.aclose()
            self._db.shutdown(wait=True)

    async def _in_db(self, function: Callable[[*_Args], _Result], *args: *_Args) -> _Result:
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    async def check(
        self,
        borrowers: Sequence[Borrower],
        on_outcome: Callable[[CheckOutcome], None] | None = None,
        *,
        every_signal: bool = True,
    ) -> list[CheckOutcome]:
        """Check ``borrowers`` with ``concurrency`` workers; outcomes come back in input order.

        A fixed pool of workers takes borrowers one by one, rather than one coroutine per borrower,
        so memory and scheduling cost do not grow with the portfolio. ``every_signal``: an explicit
        ``watcher check`` fetches every enabled signal; False keeps each signal's cadence.
        """
        outcomes: list[CheckOutcome | None] = [None] * len(borrowers)
        queue = iter(enumerate(borrowers))  # shared: each borrower is taken by exactly one worker

        async def worker() -> None:
            for index, borrower in queue:
                outcome = await self.check_one(borrower, every_signal=every_signal)
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

    async def check_one(self, borrower: Borrower, *, every_signal: bool = False) -> CheckOutcome:
        """Check one borrower. An unchanged result may be written later, with others: see :meth:`flush`.

        The daemon's scheduled checks fetch only the signals due by their cadence; ``every_signal``
        (``watcher check``) fetches every enabled one.
        """
        source = self.sources.get(borrower.source)
        if source is None:
            error = SourceError(
                f"source {borrower.source!r} is not configured",
                source=borrower.source,
                registry_id=borrower.registry_id,
            )
            return await self._in_db(self._record_failure, borrower.id, error)
        has_baseline = borrower.baseline_at is not None and borrower.last_content_hash is not None
        await self._refresh_unavailable(source)
        signals = None if every_signal else self._due_signals(source, borrower)
        try:
            fetched = await source.fetch(
                borrower.registry_id, borrower.last_payload_digest if has_baseline else None, signals=signals
            )
        except SourceError as error:
            await self._store_unavailable(source)
            return await self._in_db(self._record_failure, borrower.id, error)
        await self._store_unavailable(source)
        if isinstance(fetched, SamePayload):
            return await self._settle(borrower, fetched.payload_digest, fetched.signals)
        try:
            record = normalize_record(fetched.record)
            digest = content_hash(record)
        except (ValueError, TypeError) as error:  # e.g. text no encoding can hold: the answer is bad
            failure = ParseError(
                f"the registry's answer could not be normalised: {type(error).__name__}: {error}",
                source=borrower.source,
                registry_id=borrower.registry_id,
            )
            return await self._in_db(self._record_failure, borrower.id, failure)
        if (
            has_baseline
            and digest == borrower.last_content_hash
            and signatory_mismatch(record, borrower.legal_rep_on_file) == borrower.signatory_mismatch
        ):
            return await self._settle(borrower, fetched.payload_digest, fetched.signals)
        try:
            return await self._in_db(self._record_success, borrower.id, fetched, record, digest)
        except (SQLAlchemyError, ValueError) as error:
            # The database refused this check's data: a failed check of this borrower, retried and
            # shown in status, while the sweep goes on. If even that cannot be written, the
            # database itself is the problem and the original error goes up.
            reason = getattr(error, "orig", None) or error
            message = " ".join(str(reason).split())[:300]
            refused = CheckStorageError(f"storing the check failed: {type(reason).__name__}: {message}")
            return await self._in_db(self._record_failure, borrower.id, refused)

    # -- vendor signals: cadence and unavailability ------------------------------------------------

    def _due_signals(self, source: Source, borrower: Borrower) -> frozenset[Signal]:
        """The signals a scheduled check of ``borrower`` fetches now (its source's cadence)."""
        cadence: dict[Signal, timedelta] = getattr(source.options, "cadence", None) or {}
        checked = read_signals_checked(borrower.signals_checked)
        return due_signals(source.enabled_signals, cadence, checked, self.clock())

    async def _refresh_unavailable(self, source: Source) -> None:
        """Take up the signals stored as unavailable before the first check and again every
        ``RELOAD_UNAVAILABLE_EVERY``; between reloads, forget those whose retry time has come, so
        they are tried again."""
        if not self._unavailable_fresh():
            async with self._loading:
                if not self._unavailable_fresh():
                    await self._in_db(self._load_unavailable)
                    self._unavailable_loaded_at = self.clock()
        now = self.clock()
        stored = self._retry_unavailable.get(source.name, {})
        expired = [signal for signal, retry_at in stored.items() if retry_at <= now]
        for signal in expired:
            del stored[signal]
            source.unavailable_signals.pop(signal, None)
        if expired:
            await self._in_db(self._forget_unavailable, source.name, expired, now)

    def _unavailable_fresh(self) -> bool:
        loaded = self._unavailable_loaded_at
        return loaded is not None and timedelta(0) <= self.clock() - loaded < RELOAD_UNAVAILABLE_EVERY

    def _load_unavailable(self) -> None:
        """Make each source's unavailable signals what the database holds: marks forgotten there
        (their retry time came, or an operator asked) are dropped, marks made there are taken up."""
        known = {signal.value: signal for signal in Signal}
        with self.store.transaction() as session:
            rows = unavailable_signals(session, self.clock(), forget_expired=True)
        held: dict[str, dict[Signal, SourceSignal]] = {}
        for row in rows:
            signal = known.get(row.signal)
            if row.source in self.sources and signal is not None:
                held.setdefault(row.source, {})[signal] = row
        for name, source in self.sources.items():
            stored = self._retry_unavailable.setdefault(name, {})
            marks = held.get(name, {})
            for signal in [signal for signal in stored if signal not in marks]:
                del stored[signal]
                source.unavailable_signals.pop(signal, None)
            for signal, row in marks.items():
                source.unavailable_signals.setdefault(signal, row.reason)
                stored[signal] = row.retry_at

    def _forget_unavailable(self, source: str, signals: Sequence[Signal], now: datetime) -> None:
        with self.store.transaction() as session:
            for signal in signals:
                forget_unavailable_signal(session, source, signal.value, now=now)

    async def _store_unavailable(self, source: Source) -> None:
        """Record, once, each signal the last fetch found the account cannot fetch."""
        stored = self._retry_unavailable.setdefault(source.name, {})
        new = {
            signal: reason for signal, reason in source.unavailable_signals.items() if signal not in stored
        }
        if not new:
            return
        now = self.clock()
        for signal in new:
            stored[signal] = now + RETRY_UNAVAILABLE_AFTER
        await self._in_db(self._write_unavailable, source.name, new, now)

    def _write_unavailable(self, source: str, signals: dict[Signal, str], now: datetime) -> None:
        with self.store.transaction() as session:
            for signal, reason in signals.items():
                mark_signal_unavailable(
                    session,
                    source,
                    signal.value,
                    redact(reason),
                    now=now,
                    retry_at=now + RETRY_UNAVAILABLE_AFTER,
                )

    # -- unchanged checks, written in batches ------------------------------------------------------

    async def _settle(
        self, borrower: Borrower, payload: str | None, signals: frozenset[Signal]
    ) -> CheckOutcome:
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
                signals_checked=signals_checked_after(borrower.signals_checked, signals, now),
            )
        )
        oldest = self._unsettled[0].checked_at
        if len(self._unsettled) >= SETTLE_BATCH or not (timedelta(0) <= now - oldest < SETTLE_AGE):
            await self.flush()
        return CheckOutcome(borrower.id, ok=True)

    async def flush(self) -> None:
        """Write every queued unchanged check and the billed calls counted so far, in one transaction
        (``check`` does at its end, the daemon after each batch; callers of ``check_one`` must)."""
        batch, self._unsettled = self._unsettled, []
        billed = self._take_billed_calls()
        if batch or billed:
            await self._in_db(self._write_unchanged, batch, billed)

    def _take_billed_calls(self) -> dict[str, int]:
        """The calls each billed source counted since the last take.

        Counts live in memory until the next flush: a crash loses at most those few, which only
        ``watcher status``'s usage figure reads, rather than paying a write for every call.
        """
        taken = {name: source.take_billed_calls() for name, source in self.sources.items() if source.billed}
        return {name: calls for name, calls in taken.items() if calls}

    def _write_unchanged(self, batch: Sequence[_Unchanged], billed: dict[str, int]) -> None:
        if not batch:
            with self.store.transaction() as session:
                add_billed_calls(session, billed, usage_hour(self.clock()))
            return
        table = Borrower.metadata.tables[Borrower.__tablename__]
        settlements = [
            settled(
                now=item.checked_at,
                next_check_at=item.next_check_at,
                payload=item.payload_digest,
                signals_checked=item.signals_checked,
            )
            for item in batch
        ]
        rows = [
            {"b_id": item.borrower_id, "b_hash": item.content_hash}
            | {f"v_{column}": value for column, value in values.items()}
            for item, values in zip(batch, settlements, strict=True)
        ]
        statement = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.last_content_hash == bindparam("b_hash"),
                table.c.active.is_(True),  # deactivated meanwhile: its schedule is left alone
            )
            .values({column: bindparam(f"v_{column}") for column in settlements[0]})
        )
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
            add_billed_calls(session, billed, usage_hour(now))
        for source in written:
            self._success_written_at[source] = now

    # -- database side (runs on the single DB thread) ----------------------------------------------

    def polling_interval(self, source: str) -> timedelta:
        """How often a company of ``source`` is polled in full when it has no interval of its own: the
        schedule's interval, or while the source's change feeds are healthy their ``full_interval``."""
        options = self.config.sources.get(source)
        if source in self.feed_mode and isinstance(options, FeedOptions):
            return options.full_interval
        return self.config.schedule.interval

    def _next_check(self, borrower: Borrower, now: datetime, *, settle: bool) -> datetime:
        interval = (
            timedelta(seconds=borrower.interval_seconds)
            if borrower.interval_seconds
            else self.polling_interval(borrower.source)
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
        # A registry's error page may echo the API key: what is stored and shown is redacted.
        message = redact(str(error).replace("\x00", ""))  # NUL: the one character a database refuses
        with self.store.transaction() as session:
            # Locked: a second, overlapping check of the same borrower (a lease that lapsed) waits and
            # then sees this one's snapshot, instead of storing the same change twice.
            borrower = session.get(Borrower, borrower_id, with_for_update=True)
            assert borrower is not None
            if not borrower.active:
                return self._drop_inactive(session, borrower)
            failures = borrower.consecutive_failures + 1
            backoff = self.config.schedule.retry_after_failure * min(2 ** (failures - 1), 16)
            values = settled(
                now=now,
                next_check_at=now + min(backoff, self.config.schedule.interval),
                failure=Failure(error.kind, message, failures, borrower.failing_since or now),
            )
            for column, value in values.items():
                setattr(borrower, column, value)
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
        """Load what the check's meaning depends on, :func:`evaluate` it, store the result."""
        now = self.clock()
        with self.store.transaction() as session:
            # Locked: a second, overlapping check of the same borrower (a lease that lapsed) waits and
            # then sees this one's snapshot, instead of storing the same change twice.
            borrower = session.get(Borrower, borrower_id, with_for_update=True)
            assert borrower is not None
            if not borrower.active:
                return self._drop_inactive(session, borrower)
            # A first check, or a first success after failures, has no slot worth keeping.
            spread = borrower.baseline_at is None or borrower.consecutive_failures > 0
            evaluation = evaluate(
                self._stored_state(session, borrower, digest, now),
                record,
                digest,
                now=now,
                settings=self.rules,
                confirm_after=self.config.rules.confirm_after,
            )
            outcome = self._store(session, borrower, evaluation, fetched, now)
            next_check = self._next_check(borrower, now, settle=spread)
            if evaluation.hold:
                # Checked again once the confirmation is due, and the same answer must be mapped
                # again then (not skipped as "same as last time").
                assert borrower.pending_since is not None
                confirm_at = borrower.pending_since + self.config.rules.confirm_after
                next_check = max(now, min(next_check, confirm_at))
            # A held answer is fetched again, whole, to confirm it: its signals are not stamped.
            values = settled(
                now=now,
                next_check_at=next_check,
                payload=None if evaluation.hold else fetched.payload_digest,
                signals_checked=borrower.signals_checked
                if evaluation.hold
                else signals_checked_after(borrower.signals_checked, fetched.signals, now),
            )
            for column, value in values.items():
                if not (evaluation.hold and column.startswith("pending_")):
                    setattr(borrower, column, value)
            session.add(borrower)
            write_health = self._health_due(borrower.source, now)
            if write_health:
                record_source_health(session, borrower.source, ok=True, at=now)
        if write_health:
            self._success_written_at[borrower.source] = now
        return outcome

    @staticmethod
    def _drop_inactive(session: Session, borrower: Borrower) -> CheckOutcome:
        """A borrower deactivated while its check ran: release any claim, store nothing, alert nothing."""
        borrower.claimed_by = borrower.lease_until = None
        session.add(borrower)
        return CheckOutcome(borrower.id, ok=True, inactive=True)

    def _stored_state(self, session: Session, borrower: Borrower, digest: str, now: datetime) -> StoredState:
        """The borrower's stored facts; the last record and earlier occasions only when the content
        moved (unchanged checks, nearly all of them, read neither)."""
        stored_hash = borrower.last_content_hash or latest_hash(session, borrower.id)
        previous: RegistryRecord | None = None
        earlier: tuple[date, ...] = ()
        if borrower.baseline_at is not None and stored_hash != digest:
            snapshot = latest_snapshot(session, borrower.id)
            previous = record_from_dict(json.loads(snapshot.record_json)) if snapshot else None
            earlier = tuple(occasion_days_since(session, borrower.id, now.date() - self.rules.window))
        return StoredState(
            baseline_at=borrower.baseline_at,
            content_hash=stored_hash,
            previous=previous,
            earlier_occasions=earlier,
            legal_rep_on_file=borrower.legal_rep_on_file,
            signatory_mismatch=borrower.signatory_mismatch,
            pending_hash=borrower.pending_hash,
            pending_since=borrower.pending_since,
        )

    def _health_due(self, source: str, now: datetime) -> bool:
        """A source's success is written at most once a minute while it stays healthy: one less write
        per check, and `watcher status` is still right to the minute. Failures are always written."""
        written = self._success_written_at.get(source)
        return written is None or not (timedelta(0) <= now - written < HEALTH_WRITE_EVERY)

    def _store(
        self, session: Session, borrower: Borrower, evaluation: Evaluation, fetched: Fetched, now: datetime
    ) -> CheckOutcome:
        """Write what ``evaluation`` decided, in the caller's transaction."""
        if evaluation.hold:
            if borrower.pending_hash != evaluation.digest:  # a new wait; the same answer keeps the old one
                borrower.pending_since, borrower.pending_hash = now, evaluation.digest
                borrower.pending_raw_gz = pack_raw(fetched.raw)
            return CheckOutcome(borrower.id, ok=True, awaiting_confirmation=True)
        snapshot = self._snapshot(session, borrower, evaluation, fetched, now)
        findings = self._index(session, borrower, evaluation, now) if snapshot is not None else ()
        own = [finding for finding in findings if finding.party == borrower.id]
        borrower.baseline_at = now if evaluation.outcome is Outcome.BASELINE else borrower.baseline_at
        assessment = with_own_findings(evaluation.assessment, own)
        borrower.signatory_mismatch = assessment.signatory_mismatch
        alert = (
            open_alert(session, self.config, borrower, assessment, now, evaluation.alert_kind)
            if assessment.severity is not None
            else None
        )
        alert_id = alert.id if alert else None
        events = [(change, change in evaluation.news) for change in evaluation.changes]
        events += [(finding_change(finding), True) for finding in own]
        for change, alerted in events:
            alerted_id = alert_id if alerted else None
            session.add(change_event(borrower.id, borrower.source, change, snapshot, alerted_id, now))
        others = [finding for finding in findings if finding.party != borrower.id]
        alert_connected_parties(session, self.config, borrower, others, now)
        session.add_all(key_person_occasions(borrower.id, assessment, evaluation, alert_id, now))
        return CheckOutcome(
            borrower.id,
            ok=True,
            baseline=evaluation.outcome is Outcome.BASELINE,
            changes=len(evaluation.changes),
            alert_id=alert_id,
            severity=assessment.severity,
        )

    def _index(
        self, session: Session, borrower: Borrower, evaluation: Evaluation, now: datetime
    ) -> tuple[Finding, ...]:
        """The party's ties in the portfolio index, from the record as stored (sections the source
        left unknown this time carried forward), in the snapshot's transaction; and what its new ties
        and raised listings mean for the other active parties sharing a person or company with it."""
        source = self.sources[borrower.source]
        scope = source.tie_scope(source.name, source.options)
        checked = party_ties(borrower.id, borrower.name, evaluation.record, scope)
        stored = load_parties(session, [borrower.id], active_only=False)
        # Never indexed (a baseline, or a database older than the index): no tie is known to be new.
        old_ties = stored[0].ties if stored and evaluation.outcome is not Outcome.BASELINE else None
        group_before = frozenset[str]()
        if old_ties is not None and may_join_by_control(checked, old_ties):
            group_before = load_group(session, borrower.id, names=False).group_of(borrower.id)
        replace_party_ties(session, checked, now=now)
        session.flush()
        raised = [change for change in evaluation.news if change.raises_listing]
        if old_ties is None and not raised:
            return ()
        # Alerts follow strong links only: equal names alone (possibly thousands of parties) are not read.
        findings = connected_findings(
            checked, old_ties, load_neighbourhood(session, borrower.id, names=False), raised
        )
        if old_ties is not None and any(f.joins_by_control for f in findings if f.party == borrower.id):
            findings = with_groups(
                findings, load_group(session, borrower.id, names=False), checked, old_ties, group_before
            )
        return findings

    def _snapshot(
        self, session: Session, borrower: Borrower, evaluation: Evaluation, fetched: Fetched, now: datetime
    ) -> Snapshot | None:
        """The new record with its raw answer (and, ending a wait for confirmation, the first fetch)."""
        if not evaluation.stores_snapshot:
            return None
        record, digest = evaluation.record, evaluation.digest
        borrower.last_content_hash = digest
        confirmed = evaluation.confirmed and borrower.pending_raw_gz is not None
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
        session.add(snapshot)
        session.flush()
        return snapshot
