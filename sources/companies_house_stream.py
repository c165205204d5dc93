"""The Companies House Streaming API: long-lived HTTP responses of one JSON event per line, blank
lines as heartbeats, resumed by ``timepoint``.

Each event names its company only in ``resource_uri`` (``/company/{number}/…``). A read holds the
stream open for a window (or until enough events came), then closes it, so the follower can commit
what it read; the next read resumes at the last timepoint plus one. ``416`` says the timepoint is too
old (or unknown): a gap. At most two connections per account are allowed, so streams are read one at a
time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from sources.change_feed import ChangeFeed, FeedBatch, FeedEntry, FeedGapError
from sources.http.policy import basic_auth
from watcher.errors import AuthError, ParseError, RateLimitedError, TransientError

log = logging.getLogger("watcher.sources.companies_house")

# The streams that concern a watched company's record; "filings" and the rest would only cost reads.
DEFAULT_STREAMS = ("companies", "officers", "persons-with-significant-control", "charges", "insolvency-cases")
KNOWN_STREAMS = (*DEFAULT_STREAMS, "filings", "disqualified-officers", "company-exemptions")
MAX_EVENTS = 5000  # events per read: the position is committed at least this often
_COMPANY = re.compile(r"^/company/([A-Za-z0-9]+)(?:/|$)")
_RATE_LIMIT_PAUSE = 60.0  # seconds: Companies House asks for at least a minute after a 429


def company_number(resource_uri: object) -> str | None:
    """The company number in an event's ``resource_uri``, or None."""
    match = _COMPANY.match(resource_uri) if isinstance(resource_uri, str) else None
    return match[1] if match else None


def parse_event(line: str) -> tuple[int, str | None, datetime | None]:
    """(timepoint, company number, published) of one stream line; ParseError when it is no event."""
    try:
        event = json.loads(line)
    except ValueError:
        raise ParseError(f"stream line is not JSON: {line[:80]!r}") from None
    meta = event.get("event") if isinstance(event, dict) else None
    timepoint = meta.get("timepoint") if isinstance(meta, dict) else None
    if not isinstance(timepoint, int) or isinstance(timepoint, bool):
        raise ParseError(f"stream event without a numeric timepoint: {line[:80]!r}")
    published = None
    if isinstance(meta, dict) and isinstance(meta.get("published_at"), str):
        try:
            published = datetime.fromisoformat(meta["published_at"]).replace(tzinfo=UTC)
        except ValueError:
            published = None
    return timepoint, company_number(event.get("resource_uri")), published


def _ended_early(stream: str, heard: bool) -> None:
    """A stream that closes at once without a line (not even a heartbeat) is no stream (a proxy's empty
    answer): a failed read, never a healthy feed with nothing to say."""
    if not heard:
        raise TransientError(f"{stream} stream: closed at once without a line (no events, no heartbeats)")


class CompaniesHouseStream(ChangeFeed):
    """One stream (``name``: "officers", "charges"…) read for at most ``window`` per read."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        stream_key: str,
        normalise: Callable[[str], str],
        window: timedelta,
        verify: str | bool = True,
        proxy: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.window = window.total_seconds()
        self.normalise = normalise
        self._headers = {"Authorization": basic_auth(stream_key, ""), "Accept": "application/json"}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, read=max(self.window, 30.0) + 30.0), verify=verify, proxy=proxy
        )

    async def read(self, position: str | None, *, now: datetime) -> FeedBatch:
        params = {} if position is None else {"timepoint": position}
        entries: list[FeedEntry] = []
        newest: int | None = None
        published: datetime | None = None
        ended_by_time = True
        heard = False  # any line at all, heartbeats included
        try:
            async with self._client.stream(
                "GET", f"{self.base_url}/{self.name}", params=params, headers=self._headers
            ) as response:
                await self._raise_for_status(response)
                try:
                    async with asyncio.timeout(self.window):
                        async for line in response.aiter_lines():
                            heard = True
                            if not line.strip():
                                continue  # a heartbeat
                            try:
                                timepoint, number, published_at = parse_event(line)
                            except ParseError:
                                if newest is None:
                                    raise
                                ended_by_time = False  # a torn line: resume after the last whole event
                                break
                            newest, published = timepoint, published_at or published
                            entry = self._entry(number, published_at, timepoint)
                            if entry is not None:
                                entries.append(entry)
                            if len(entries) >= MAX_EVENTS:
                                ended_by_time = False
                                break
                        else:  # the server closed the stream before the window was over
                            _ended_early(self.name, heard)
                            ended_by_time = False
                except TimeoutError:
                    pass  # the window is over: what was read is committed, the rest comes next time
        except httpx.HTTPError as error:
            if newest is None:
                raise TransientError(f"{self.name} stream: {type(error).__name__}: {error}") from None
            ended_by_time = False  # the stream broke after some events: keep them
        next_position = position if newest is None else str(newest + 1)
        return FeedBatch(tuple(entries), next_position, ended_by_time, published)

    def _entry(self, number: str | None, published: datetime | None, timepoint: int) -> FeedEntry | None:
        if number is None:
            log.warning("companies house %s stream: event %d names no company; skipped", self.name, timepoint)
            return None
        try:
            return FeedEntry(self.normalise(number), published)
        except ValueError as error:
            log.warning("companies house %s stream: event %d: %s; skipped", self.name, timepoint, error)
            return None

    async def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            return
        await response.aread()
        reason = f"{self.name} stream: HTTP {response.status_code}"
        if response.status_code == 416:
            raise FeedGapError(f"{reason}: the timepoint is too old or unknown")
        if response.status_code == 401:
            raise AuthError(f"{reason}: the stream key was refused")
        if response.status_code == 429:
            raise RateLimitedError(f"{reason}: rate limited", retry_after=_RATE_LIMIT_PAUSE)
        raise TransientError(reason)

    async def aclose(self) -> None:
        await self._client.aclose()
