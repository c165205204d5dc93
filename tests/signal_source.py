"""A real, registered vendor-like source for the signal tests: canned answers per signal, no network.

``type = "signal_stub"`` offers the Chinese vendors' signals (:class:`~watcher.record.Signal`), bills one call
per endpoint answered, and takes its answers from :data:`ANSWERS` (per registry id: the card's name and, per
signal, the listing keys in force). A signal in :data:`NOT_BOUGHT` is refused the way a vendor
refuses an account that has not bought it: :meth:`Source.mark_unavailable`, the rest goes on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sources import register
from sources.base import Source, load_json
from sources.http.options import VendorOptions
from watcher.errors import NotFoundError
from watcher.record import CN_SIGNALS, Listing, ListingState, RegistryRecord, Signal


@dataclass
class Company:
    """What the stub registry knows of one company: its name and the abnormal-operations listings."""

    name: str
    abnormal: list[str] = field(default_factory=list)


ANSWERS: dict[str, Company] = {}
NOT_BOUGHT: dict[Signal, str] = {}
ASKED: list[frozenset[Signal]] = []  # the signals each fetch was asked for, in order


def reset() -> None:
    ANSWERS.clear()
    NOT_BOUGHT.clear()
    ASKED.clear()


@register("signal_stub")
class SignalStubSource(Source):
    Options = VendorOptions
    endpoints = ("card",)
    optional_endpoints = tuple(signal.value for signal in CN_SIGNALS if signal is not Signal.REGISTRY)
    supported_signals = CN_SIGNALS
    billed = True

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        return await self.fetch_signals(registry_id, self.enabled_signals)

    async def fetch_signals(self, registry_id: str, signals: frozenset[Signal]) -> dict[str, str]:
        ASKED.append(signals)
        company = ANSWERS.get(registry_id)
        if company is None:
            raise NotFoundError("no such company")
        raw = {"card": json.dumps({"name": company.name})}
        self.billed_calls += 1
        for signal in sorted(signals - {Signal.REGISTRY}):
            if signal in NOT_BOUGHT:
                self.mark_unavailable(signal, NOT_BOUGHT[signal])
                continue
            self.billed_calls += 1
            listed = company.abnormal if signal is Signal.ABNORMAL else []
            raw[signal.value] = json.dumps(listed)
        return raw

    @classmethod
    def map_raw(cls, raw: Mapping[str, str], *, source: str, registry_id: str) -> RegistryRecord:
        card = load_json(raw["card"], what="card")
        assert isinstance(card, dict)
        abnormal = None
        if Signal.ABNORMAL.value in raw:
            keys = load_json(raw[Signal.ABNORMAL.value], what="abnormal")
            assert isinstance(keys, list)
            abnormal = tuple(
                Listing(key=key, state=ListingState.ACTIVE, reason=f"listed {key}") for key in keys
            )
        return RegistryRecord(
            source=source, registry_id=registry_id, name=card["name"], abnormal_operations=abnormal
        )
