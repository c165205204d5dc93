"""The change-feed contract: a registry's own list of what changed, read from a stored position.

Some registries publish what changed (Brønnøysund's update feeds, the Companies House streams). A
:class:`ChangeFeed` reads one of them from a position the database keeps and says which companies
each entry concerns; the daemon's follower (:mod:`watcher.feeds`) makes the watched ones due now, so
the normal pipeline checks them in full. A feed never decides a change itself: an entry only says
"look again", so every rule, record and alert stays the pipeline's.

Positions are opaque text to everyone but their feed. ``None`` means "never read": a feed then starts
from now, since what happened before is what the periodic full poll already covers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, field_validator

from watcher.errors import SourceError
from watcher.units import Duration
from watcher.vocabulary import ErrorKind


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry: the company it concerns (as the source's identifiers are written) and when the
    registry published it, when it says."""

    registry_id: str
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """What one read returned: its entries, the position to resume from after them (the one read from
    when nothing new came), whether the feed has nothing more for now, and when the last entry was
    published."""

    entries: tuple[FeedEntry, ...]
    position: str | None
    caught_up: bool
    published_at: datetime | None = None


class FeedGapError(SourceError):
    """The feed cannot continue from the stored position (too old, unknown): entries were lost to us,
    so the source falls back to polling until the feed is read again from now."""

    kind = ErrorKind.SOURCE_ERROR


class ChangeFeed(ABC):
    """One feed of one source (``name``: "enheter", "roller", "officers"…)."""

    name: str

    @abstractmethod
    async def read(self, position: str | None, *, now: datetime) -> FeedBatch:
        """The next entries after ``position`` (None: start at ``now``). Raises a ``SourceError``
        when the feed could not be read (nothing is skipped then: the position stays) and
        :class:`FeedGapError` when it cannot continue from ``position``."""

    async def aclose(self) -> None:
        """Release connections (a stream holds one)."""


class FeedOptions(BaseModel):
    """The options of a source that has a change feed (mixed into its ``Options``).

    ``feed``: follow it (default); ``feed_every``: how often a polled feed is read; ``full_interval``:
    while the feed is healthy, how often every watched company is still polled in full (the safety net).
    """

    feed: bool = True
    feed_every: Duration = timedelta(seconds=60)
    full_interval: Duration = timedelta(days=7)

    @field_validator("feed_every", "full_interval")
    @classmethod
    def _positive_period(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value
