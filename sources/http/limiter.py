"""The per-source rate limit: a sliding window that saturates but never exceeds the configured rate."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable

from sources.http.timing import Sleep
from watcher.units import Rate


class SlidingWindowLimiter:
    """At most ``count`` requests in any window of ``per``, evenly spaced: saturates, never exceeds.

    A token bucket lets a full bucket burst on top of the steady rate, which a registry counting
    requests per second answers with 429. Here the n-th request waits until the (n - count)-th is
    ``per`` old, so the limit is reached (saturated) and never exceeded; and requests are paced
    ``per / count`` apart, so a window fills one request at a time rather than in a burst (kinder to
    the server, and no queue at its door to delay the arrivals it counts). ``margin`` widens the
    window slightly to absorb network jitter between our clock and the server's.
    """

    def __init__(
        self,
        rate: Rate,
        *,
        margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.count = rate.count
        self.window = rate.per.total_seconds() * (1 + margin)
        self.spacing = self.window / self.count
        self._sent: list[float] = []  # ascending
        # Where the pace put the latest slot. Spacing counts from there rather than from when the
        # request went out (see ``confirm``) or when the sleep before it ended (a little late,
        # always), so neither the client's overhead nor timer lateness slows the pace down. The
        # count per window, which is what the server checks, is always kept on actual times.
        self._paced = float("-inf")
        self._lock = asyncio.Lock()
        self._clock = clock
        self._sleep = sleep
        # The end of the last completed wait. A sleep may return a hair before its target (the
        # event loop's clock resolution) or at once (a test's fake sleep); time never runs behind it.
        self._reached = float("-inf")
        self._pause = (float("-inf"), float("-inf"))  # (began, ends) of the latest pause

    def _now(self) -> float:
        return max(self._clock(), self._reached)

    def _expire(self, now: float) -> None:
        expired = 0
        while expired < len(self._sent) and self._sent[expired] + self.window <= now:
            expired += 1
        del self._sent[:expired]

    def delay(self) -> float:
        """Seconds until the next request may go (0 when it may go now)."""
        now = self._now()
        self._expire(now)
        wait = self._paced + self.spacing - now
        if len(self._sent) >= self.count:
            # Usually ``count`` slots are held at most; a request sent after its slot lapsed holds one more.
            wait = max(wait, self._sent[len(self._sent) - self.count] + self.window - now)
        return max(0.0, wait)

    async def acquire(self, before_wait: Callable[[float], None] | None = None) -> float:
        """Wait for a slot and take it; returns the slot's time, for :meth:`confirm`.

        Waiters are served one at a time, in arrival order. ``before_wait`` sees every wait before it
        starts and may raise to give up instead (a pause that began while this request queued).
        """
        async with self._lock:
            while True:
                wait = self.delay()
                if wait <= 0:
                    stamp = self._now()
                    bisect.insort(self._sent, stamp)
                    due = self._paced + self.spacing
                    self._paced = due if stamp - due < self.spacing else stamp
                    return stamp
                if before_wait is not None:
                    before_wait(wait)
                target = self._now() + wait
                await self._sleep(wait)
                self._reached = max(self._reached, target)

    async def confirm(self, slot: float, before_wait: Callable[[float], None] | None = None) -> float:
        """The request of ``slot`` is being sent only now: count it from now. Returns its slot.

        Opening a connection (TCP, TLS) or waiting for a free one delays a request past its slot's
        time; counted from the slot, the next window would open early and the server would see more
        than ``count`` requests in one of its windows. A slot still within its window moves to now
        (decisions taken meanwhile saw it as taken either way); a slot that lapsed while the request
        waited may already have let another request go, so the request takes a fresh one, as it does
        when a pause began after its slot. Slots only ever move later, so this never loosens the limit.
        ``before_wait`` is as for :meth:`acquire`.
        """
        now = self._now()
        if now <= slot:
            return slot
        began, ends = self._pause
        if slot + self.window <= now or slot <= began <= now < ends:
            return await self.acquire(before_wait)
        index = bisect.bisect_left(self._sent, slot)
        if index < len(self._sent) and self._sent[index] == slot:
            del self._sent[index]
        bisect.insort(self._sent, now)
        return now

    def paused_for(self) -> float:
        """Seconds left of the latest pause (0 when none is running)."""
        return max(0.0, self._pause[1] - self._now())

    def pause(self, seconds: float) -> None:
        """After a 429 or a Retry-After: no request for ``seconds``. Never loosens the window: a short
        pause after a burst still leaves the burst's slots taken."""
        now = self._now()
        self._expire(now)
        self._pause = (now, max(self._pause[1], now + seconds))
        until = now + seconds - self.window
        held = [*self._sent, *[until] * (self.count - len(self._sent))]
        self._sent = sorted(max(sent, until) for sent in held)
