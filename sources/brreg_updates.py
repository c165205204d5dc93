"""Brønnøysund's update feeds: which units (``/oppdateringer/enheter``) and whose roles
(``/oppdateringer/roller``) changed, read from a stored position.

Units: HAL pages of ``_embedded.oppdaterteEnheter[]`` ``{oppdateringsid, dato, organisasjonsnummer,
endringstype, endringer?}``, continued with ``oppdateringsid = last + 1`` (the first read starts at
``dato``). ``endringer`` (JSON-Patch, new values only) comes in two documented forms, a list of
``{op, path, value}`` objects or one flat ``[op, path, value, …]`` list; both are read, for the log.
Roles: a JSON array of CloudEvents ``{id, time, data: {organisasjonsnummer}}``, continued with
``afterId`` (the first read starts at ``afterTime``); they say whose roles changed, not how.

Positions: ``id:<n>`` after an entry, ``dato:<ISO time>`` before the first one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sources.base import as_list, as_object, load_json
from sources.change_feed import ChangeFeed, FeedBatch, FeedEntry, FeedGapError
from sources.http.policy import HttpPolicy
from sources.http.responses import HttpResponse, error_message
from watcher.errors import AuthError, ParseError, RateLimitedError, TransientError

log = logging.getLogger("watcher.sources.brreg")

PAGE_SIZE = 1000  # entries per request: a day of Norway's updates in a few requests


def parse_position(position: str | None, now: datetime) -> tuple[int | None, datetime]:
    """(the last id read, or None) and the time to start from before any id is known."""
    if position is None:
        return None, now
    scheme, _, value = position.partition(":")
    try:
        if scheme == "id":
            return int(value), now
        if scheme == "dato":
            return None, _parse_time(value)
    except ValueError:
        pass
    raise FeedGapError(f"unreadable feed position {position!r}")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def changed_paths(endringer: object) -> tuple[str, ...]:
    """The JSON-Patch paths an entry's ``endringer`` touches, from either documented form."""
    if not isinstance(endringer, list):
        return ()
    if all(isinstance(item, dict) for item in endringer):
        return tuple(str(item["path"]) for item in endringer if isinstance(item.get("path"), str))
    # The flat form: op, path, value, op, path, value… ("remove" has no value in JSON-Patch, but the
    # flat form keeps three slots per operation).
    return tuple(
        str(endringer[index + 1])
        for index in range(0, len(endringer) - 1, 3)
        if isinstance(endringer[index + 1], str) and str(endringer[index + 1]).startswith("/")
    )


def _raise_for_feed_status(response: HttpResponse, feed: str) -> None:
    if response.status == 200:
        return
    reason = f"{feed}: HTTP {response.status}: {error_message(response)}"
    if response.status in (401, 403):
        raise AuthError(reason)
    if response.status == 429:
        raise RateLimitedError(reason)
    if response.status in (400, 404, 410, 416):
        # The register refuses the position (too old, beyond its paging cap): entries may be lost.
        raise FeedGapError(reason)
    raise TransientError(reason)


class _BrregFeed(ChangeFeed):
    def __init__(self, http: HttpPolicy, normalise: Callable[[str], str]) -> None:
        self.http = http
        self.normalise = normalise

    def _entry(self, orgnr: object, published: datetime | None, where: str) -> FeedEntry | None:
        """The entry of a unit the feed names, or None (one warning) when its orgnr is unusable: the
        full poll still covers that unit, and one bad entry must not stop the feed."""
        try:
            return FeedEntry(self.normalise(str(orgnr or "")), published)
        except ValueError as error:
            log.warning(
                "brreg %s feed: %s has no usable organisasjonsnummer (%s); skipped", self.name, where, error
            )
            return None

    async def _get(self, path: str, params: Mapping[str, str]) -> Any:
        async with self.http.deadline():
            response = await self.http.get(path, params=params)
        _raise_for_feed_status(response, self.name)
        return load_json(response.text, what=f"oppdateringer/{self.name}")


class UnitUpdates(_BrregFeed):
    """``/oppdateringer/enheter``: units registered, changed, deleted or removed."""

    name = "enheter"

    async def read(self, position: str | None, *, now: datetime) -> FeedBatch:
        last, start = parse_position(position, now)
        params = {"size": str(PAGE_SIZE), "page": "0", "includeChanges": "true"}
        if last is None:
            params["dato"] = _iso(start)
        else:
            params["oppdateringsid"] = str(last + 1)
        answer = as_object(await self._get("/oppdateringer/enheter", params), "oppdateringer/enheter")
        if "_embedded" not in answer and "page" not in answer:
            # An empty page still says so (``page``); other JSON (a proxy's, an error) is no page at all.
            raise ParseError("oppdateringer/enheter: neither entries (_embedded) nor a page")
        embedded = answer.get("_embedded")
        rows = (
            as_list(as_object(embedded, "_embedded").get("oppdaterteEnheter"), "oppdaterteEnheter")
            if embedded
            else []
        )
        entries: list[FeedEntry] = []
        newest, published = last, None
        for row in rows:
            item = as_object(row, "oppdaterteEnheter[]")
            update_id = item.get("oppdateringsid")
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                raise ParseError(
                    f"oppdateringer/enheter: an entry without a numeric oppdateringsid: {update_id!r}"
                )
            published = _parse_time(str(item["dato"])) if isinstance(item.get("dato"), str) else published
            entry = self._entry(item.get("organisasjonsnummer"), published, f"oppdateringsid {update_id}")
            if entry is not None:
                entries.append(entry)
                log.debug(
                    "brreg enheter %s: %s %s %s",
                    update_id,
                    entry.registry_id,
                    item.get("endringstype"),
                    ",".join(changed_paths(item.get("endringer"))),
                )
            newest = update_id if newest is None else max(newest, update_id)
        next_position = f"id:{newest}" if newest is not None else f"dato:{_iso(start)}"
        return FeedBatch(tuple(entries), next_position, len(rows) < PAGE_SIZE, published)


class RoleUpdates(_BrregFeed):
    """``/oppdateringer/roller``: units whose roles changed (CloudEvents; the roles are re-read)."""

    name = "roller"

    async def read(self, position: str | None, *, now: datetime) -> FeedBatch:
        last, start = parse_position(position, now)
        params = {"size": str(PAGE_SIZE)}
        if last is None:
            params["afterTime"] = _iso(start)
        else:
            params["afterId"] = str(last)
        events = as_list(await self._get("/oppdateringer/roller", params), "oppdateringer/roller")
        entries: list[FeedEntry] = []
        newest, published = last, None
        for raw in events:
            event = as_object(raw, "oppdateringer/roller[]")
            try:
                event_id = int(str(event.get("id")))
            except ValueError:
                raise ParseError(
                    f"oppdateringer/roller: an event without a numeric id: {event.get('id')!r}"
                ) from None
            published = _parse_time(str(event["time"])) if isinstance(event.get("time"), str) else published
            data = event.get("data")
            orgnr = data.get("organisasjonsnummer") if isinstance(data, dict) else None
            entry = self._entry(orgnr, published, f"event {event_id}")
            if entry is not None:
                entries.append(entry)
            newest = event_id if newest is None else max(newest, event_id)
        next_position = f"id:{newest}" if newest is not None else f"dato:{_iso(start)}"
        return FeedBatch(tuple(entries), next_position, len(events) < PAGE_SIZE, published)
