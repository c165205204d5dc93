"""Deliver the outbox: claim due rows, render, send, record each target's result.

A row is claimed with a lease before it is sent and marked sent after; a crash between the send
and that commit leaves the lease to expire, and the row is sent again: at most one duplicate,
never a loss. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two instances never send
the same row. One failing channel never holds up another: every row is sent on its own.

A claimed batch can take longer to send than the lease lasts (a slow channel, many rows, few
workers). A send therefore starts only while enough of its lease is left to finish within it, and
is cut off at that budget; rows whose turn comes too late are handed back unsent and claimed
afresh, so no row is ever being sent by an instance after another one could have claimed it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from sqlmodel import Session, col, select, update

from notifiers.base import SendResult, masked, without_secrets
from notifiers.event_webhook import SignedEventSender
from watcher.alert_event import alert_event
from watcher.alerts import alert_view
from watcher.config import Config
from watcher.models import Delivery, utcnow
from watcher.redaction import redact
from watcher.render import AlertView, RenderedAlert, render_alert, render_digest
from watcher.routing import (
    OFFICER_PREFIX,
    target_language,
    target_max_attempts,
    target_signing_secret,
    target_urls,
    target_zone,
    url_fingerprint,
)
from watcher.store import SYSTEM_ACTOR, Store, audit, stored_id
from watcher.vocabulary import AuditAction, DeliveryStatus, Severity

if TYPE_CHECKING:
    from notifiers.base import Sender

log = logging.getLogger("watcher.dispatch")

DEFAULT_LEASE = timedelta(minutes=5)
# The longest one send may take (apprise's own call timeout is 60 s); never more than half the lease.
MAX_SEND_TIME = timedelta(seconds=90)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
_Args = TypeVarTuple("_Args")
_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(self.sent + other.sent, self.failed + other.failed, self.dead + other.dead)


@dataclass(frozen=True, slots=True)
class _Work:
    """Rows that go out as one message: one alert, or a digest of held alerts for one URL."""

    ids: tuple[int, ...]
    target: str
    url_fingerprint: str
    attempts: int
    views: tuple[AlertView, ...]
    digest: bool
    lease_until: datetime
    documents: tuple[dict, ...] = ()
    """For a ``format = "event"`` notifier: each alert's JSON document, built once per claim."""

    @property
    def severity(self) -> Severity:
        """The alert's severity; a digest's is its most severe alert's."""
        return max(view.severity for view in self.views)


def backoff(attempts: int) -> timedelta:
    """Exponential with ±20 % jitter, so a recovering channel is not hit by every row at once."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        instance: str,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = DEFAULT_LEASE,
        batch: int = 200,
        concurrency: int = 8,
        senders: Callable[[str], Sender] | None = None,
    ) -> None:
        from notifiers import sender_for

        self.store = store
        self.config = config
        self.instance = instance
        self.clock = clock
        self.lease = lease
        self.batch = batch
        self.concurrency = concurrency
        self.sender_for = senders or sender_for
        self._senders: dict[tuple[str, str], Sender] = {}
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-dispatch-db")

    def close(self) -> None:
        self._db.shutdown(wait=True)

    async def _in_db(self, function: Callable[[*_Args], _Result], *args: *_Args) -> _Result:
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    async def dispatch_due(self) -> DispatchReport:
        """Send everything due now, batch after batch, until nothing due is left unclaimed."""
        report = DispatchReport()
        limit = asyncio.Semaphore(self.concurrency)

        async def deliver(item: _Work):
            async with limit:
                budget = self.send_budget
                if self.clock() + budget > item.lease_until:
                    return item, None  # too little lease left to send safely: hand the rows back
                try:
                    return item, await asyncio.wait_for(self._send(item), budget.total_seconds())
                except TimeoutError:
                    return item, (False, f"no answer within {budget.total_seconds():g} s", False)

        try:
            while True:
                work = await self._in_db(self._claim)
                if not work:
                    return report
                results = await asyncio.gather(*(deliver(item) for item in work))
                report += await self._in_db(self._record, results)
        finally:
            # Connections are reused within one run; a sender made for a URL since removed from the
            # config must not linger.
            senders, self._senders = list(self._senders.values()), {}
            for sender in senders:
                await sender.aclose()

    @property
    def send_budget(self) -> timedelta:
        """How long one send may take: it must end while the row's lease still holds."""
        return min(MAX_SEND_TIME, self.lease / 2)

    # -- claiming ------------------------------------------------------------------------------------

    def _claim(self) -> list[_Work]:
        now = self.clock()
        with self.store.transaction() as session:
            due = (
                select(col(Delivery.id))
                .where(
                    col(Delivery.status).in_((DeliveryStatus.PENDING, DeliveryStatus.HELD)),
                    col(Delivery.next_attempt_at) <= now,
                    (col(Delivery.lease_until).is_(None)) | (col(Delivery.lease_until) < now),
                )
                .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            claimed_ids = list(
                session.exec(
                    update(Delivery)
                    .where(col(Delivery.id).in_(due.scalar_subquery()))
                    .values(claimed_by=self.instance, lease_until=now + self.lease)
                    .returning(col(Delivery.id))
                ).scalars()
            )
            if not claimed_ids:
                return []
            rows = list(session.exec(select(Delivery).where(col(Delivery.id).in_(claimed_ids))))
            return self._group(session, rows, now + self.lease)

    def _group(self, session: Session, rows: Sequence[Delivery], lease_until: datetime) -> list[_Work]:
        window_days = self.config.rules.window.days
        views: dict[int, AlertView] = {}

        def view(alert_id: int, target: str) -> AlertView:
            if alert_id not in views:
                views[alert_id] = alert_view(
                    session, alert_id, window_days=window_days, source_name=self.config.source_display_name
                )
            if target.startswith(OFFICER_PREFIX):  # an officer reads only about their own borrowers
                return views[alert_id].for_officer(target.removeprefix(OFFICER_PREFIX))
            return views[alert_id]

        def documents(alert_ids: Sequence[int], target: str) -> tuple[dict, ...]:
            if target_signing_secret(self.config, target) is None:
                return ()
            return tuple(alert_event(session, alert_id, target) for alert_id in alert_ids)

        work = [
            _Work(
                (stored_id(row),),
                row.target,
                row.url_fingerprint,
                row.attempts,
                (view(row.alert_id, row.target),),
                False,
                lease_until,
                documents([row.alert_id], row.target),
            )
            for row in rows
            if row.status == DeliveryStatus.PENDING
        ]
        digests: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
        for row in rows:
            if row.status == DeliveryStatus.HELD:
                digests[(row.target, row.url_fingerprint)].append(row)
        for (target, fingerprint), held in sorted(digests.items()):
            held.sort(key=lambda row: row.alert_id)
            work.append(
                _Work(
                    tuple(stored_id(r) for r in held),
                    target,
                    fingerprint,
                    max(r.attempts for r in held),
                    tuple(view(r.alert_id, target) for r in held),
                    True,
                    lease_until,
                    documents([r.alert_id for r in held], target),
                )
            )
        return work

    # -- sending -------------------------------------------------------------------------------------

    def _urls(self, item: _Work) -> list[str]:
        urls = target_urls(self.config, item.target)
        if not item.url_fingerprint:  # rows written before outbox rows were per URL
            return urls
        return [url for url in urls if url_fingerprint(url) == item.url_fingerprint]

    def _sender(self, target: str, url: str) -> Sender:
        """The URL's sender; a ``format = "event"`` notifier's URL gets the signed-event sender."""
        if (target, url) not in self._senders:
            secret = target_signing_secret(self.config, target)
            if secret is None:
                self._senders[(target, url)] = self.sender_for(url)
            else:
                from notifiers import sender_for

                self._senders[(target, url)] = sender_for(url, signing_secret=secret)
        return self._senders[(target, url)]

    def _render(self, item: _Work, sender: Sender) -> RenderedAlert:
        language = target_language(self.config, item.target)
        if item.digest:
            day = self.clock().astimezone(self.config.watcher.zone).date()
            return render_digest(item.views, language, day, sender.body_format, sender.limits)
        zone = target_zone(self.config, item.target)
        return render_alert(item.views[0], language, sender.body_format, sender.limits, zone=zone)

    async def _send(self, item: _Work) -> tuple[bool, str, bool]:
        """(ok, detail, permanent): permanent failures go dead at once: the URL is gone from the
        config, or every failed send was refused for good (an event receiver's 4xx)."""
        urls = self._urls(item)
        if not urls:
            return False, f"no URL of {item.target} matches this delivery any more (config changed)", True
        problems = []
        permanent = True
        for url in urls:
            try:
                sender = self._sender(item.target, url)
            except ValueError as error:
                problems.append(str(error))
                permanent = False
                self._log_failure(item, masked(url), str(error), url)
                continue
            try:
                result = await self._deliver(item, sender)
            except Exception as error:  # a channel's bug must not stop the other rows
                problems.append(f"{sender.safe_name}: {type(error).__name__}")
                permanent = False
                self._log_failure(item, sender.safe_name, f"{type(error).__name__} while sending", url)
                continue
            if not result.ok:
                problems.append(f"{sender.safe_name}: {result.detail}")
                permanent = permanent and result.permanent
                self._log_failure(item, sender.safe_name, result.detail, url)
        return not problems, redact("; ".join(problems))[:2000], bool(problems) and permanent

    async def _deliver(self, item: _Work, sender: Sender) -> SendResult:
        """One message rendered for the channel; for an event receiver, each alert's document."""
        if not isinstance(sender, SignedEventSender):
            rendered = self._render(item, sender)
            return await sender.send(rendered.title, rendered.body, item.severity)
        if len(item.documents) != len(item.views):
            return SendResult(False, "no event document for this delivery (config changed while sending)")
        for document in item.documents:
            result = await sender.send_event(document)
            if not result.ok:
                return result
        return SendResult(True, "sent")

    def _log_failure(self, item: _Work, channel: str, reason: str, url: str) -> None:
        """One line per failed send: which alert(s), which target and channel (masked), which attempt, why."""
        alerts = ", ".join(f"#{view.alert_id}" for view in item.views)
        attempt = item.attempts + 1
        log.warning(
            "delivery of alert %s to %s via %s failed (attempt %d of %d): %s",
            alerts,
            item.target,
            redact(channel),
            attempt,
            target_max_attempts(self.config, item.target),
            without_secrets(reason, url) or "no reason given",
        )

    # -- recording -----------------------------------------------------------------------------------

    def _record(self, results: Sequence[tuple[_Work, tuple[bool, str, bool] | None]]) -> DispatchReport:
        """Write each result; counts are of rows this instance still held (a lost claim counts nothing)."""
        now = self.clock()
        sent = failed = dead = 0
        with self.store.transaction() as session:
            for item, result in results:
                mine = col(Delivery.id).in_(item.ids) & (col(Delivery.claimed_by) == self.instance)
                if result is None:  # not sent: release the claim, no attempt is counted
                    session.exec(update(Delivery).where(mine).values(claimed_by=None, lease_until=None))
                    continue
                ok, detail, permanent = result
                if ok:
                    updated = session.exec(
                        update(Delivery)
                        .where(mine)
                        .values(
                            status=DeliveryStatus.SENT,
                            sent_at=now,
                            attempts=Delivery.attempts + 1,
                            last_error=None,
                            claimed_by=None,
                            lease_until=None,
                        )
                    )
                    sent += updated.rowcount
                    continue
                attempts = item.attempts + 1
                gives_up = permanent or attempts >= target_max_attempts(self.config, item.target)
                values = {
                    "attempts": Delivery.attempts + 1,
                    "last_error": detail,
                    "claimed_by": None,
                    "lease_until": None,
                }
                if gives_up:
                    values["status"] = DeliveryStatus.DEAD
                    still_mine = session.exec(select(Delivery.id).where(mine)).all()
                    for delivery_id in still_mine:
                        audit(
                            session,
                            actor=SYSTEM_ACTOR,
                            action=AuditAction.DELIVERY_DEAD,
                            subject_type="delivery",
                            subject_id=delivery_id,
                            detail={"target": item.target, "attempts": attempts, "error": detail},
                            at=now,
                        )
                else:
                    values["next_attempt_at"] = now + backoff(attempts)
                updated = session.exec(update(Delivery).where(mine).values(**values))
                if gives_up:
                    dead += updated.rowcount
                else:
                    failed += updated.rowcount
        return DispatchReport(sent, failed, dead)
