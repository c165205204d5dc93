"""The sleep, clocks and chance of the HTTP policy, injected so tests pass fakes instead of patching."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Timing:
    """Where the policy's waits, clocks and chance come from: the real ones, unless a test passes fakes.

    ``clock`` (monotonic seconds) times the rate limit and the deadline; ``wall`` (Unix seconds) reads
    Retry-After dates and stamps signed requests; ``jitter(low, high)`` picks each backoff wait, which
    doubles from ``backoff_base`` per attempt up to ``backoff_cap`` seconds.
    """

    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    jitter: Callable[[float, float], float] = random.uniform
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many borrowers apart."""
        return self.jitter(0, min(self.backoff_cap, self.backoff_base * 2**attempt))
