"""Who hears about an alert: the borrower's officer, and every notifier whose filters it passes.

A guarantor's or pledgor's alert (or a borrower's that guarantees other borrowers) also reaches the
officers of the borrowers it secures (each once), besides its own officer if it has one; notifiers
filter on the party's own tags and source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from watcher.config import Config
from watcher.vocabulary import Language, Severity

OFFICER_PREFIX = "officer:"
NOTIFIER_PREFIX = "notifier:"
# Alerts below this severity wait for a notifier's daily digest; high and critical never wait.
DIGEST_BELOW = Severity.HIGH


def url_fingerprint(url: str) -> str:
    """Identifies a configured URL in the outbox without storing the URL, which holds tokens."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def channel_of(url: str) -> str:
    return url.split("://", 1)[0].lower()[:32] if "://" in url else ""


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    target: str
    url_fingerprint: str
    channel: str
    held_until: datetime | None = None


def delivery_targets(
    config: Config,
    *,
    officer: str | None,
    tags: Iterable[str],
    source: str,
    severity: Severity,
    secured_officers: Iterable[str] = (),
) -> list[str]:
    """Target names for the outbox (``officer:<id>``, ``notifier:<name>``); never secrets or URLs.

    ``secured_officers``: for a guarantor or pledgor, the officers of the borrowers it secures.
    """
    targets: list[str] = []
    for name in dict.fromkeys([*secured_officers, *([officer] if officer else [])]):
        officer_config = config.officers.get(name)
        if officer_config is not None and officer_config.urls:
            targets.append(f"{OFFICER_PREFIX}{name}")
    borrower_tags = set(tags)
    for name, notifier in sorted(config.notifiers.items()):
        if severity < Severity(notifier.min_severity):
            continue
        if notifier.tags and not borrower_tags.intersection(notifier.tags):
            continue
        if notifier.sources and source not in notifier.sources:
            continue
        targets.append(f"{NOTIFIER_PREFIX}{name}")
    return targets


def target_urls(config: Config, target: str) -> list[str]:
    """The URLs configured for a target now (empty when the target is gone from the config).

    A URL listed twice is one destination: it gets one outbox row and one message, not two.
    """
    if target.startswith(OFFICER_PREFIX):
        officer = config.officers.get(target.removeprefix(OFFICER_PREFIX))
        urls = officer.urls if officer else []
    else:
        notifier = config.notifiers.get(target.removeprefix(NOTIFIER_PREFIX))
        urls = notifier.urls if notifier else []
    return list(dict.fromkeys(urls))


def target_language(config: Config, target: str) -> Language:
    if target.startswith(OFFICER_PREFIX):
        officer = config.officers.get(target.removeprefix(OFFICER_PREFIX))
        language = officer.language if officer else None
    else:
        notifier = config.notifiers.get(target.removeprefix(NOTIFIER_PREFIX))
        language = notifier.language if notifier else None
    return Language(language or config.watcher.language)


def target_zone(config: Config, target: str) -> tzinfo:
    """The zone of the times in a target's messages: an officer's own if set, else ``[watcher] timezone``."""
    if target.startswith(OFFICER_PREFIX):
        return config.zone_for(target.removeprefix(OFFICER_PREFIX))
    return config.watcher.zone


def target_signing_secret(config: Config, target: str) -> str | None:
    """The signing secret when ``target`` is a ``format = "event"`` notifier (its URLs get signed
    JSON documents); None for every target that gets messages."""
    if not target.startswith(NOTIFIER_PREFIX):
        return None
    notifier = config.notifiers.get(target.removeprefix(NOTIFIER_PREFIX))
    return notifier.event_secret if notifier is not None else None


def target_max_attempts(config: Config, target: str) -> int:
    notifier = config.notifiers.get(target.removeprefix(NOTIFIER_PREFIX))
    if target.startswith(NOTIFIER_PREFIX) and notifier is not None:
        return notifier.max_attempts
    return DEFAULT_MAX_ATTEMPTS


DEFAULT_MAX_ATTEMPTS = 8


def next_digest_at(config: Config, digest: time, now: datetime) -> datetime:
    """The next time of day ``digest`` in the configured time zone, as UTC."""
    local_now = now.astimezone(config.watcher.zone)
    candidate = local_now.replace(hour=digest.hour, minute=digest.minute, second=0, microsecond=0)
    if candidate <= local_now:
        candidate = (candidate + timedelta(days=1)).replace(hour=digest.hour, minute=digest.minute)
    return candidate.astimezone(now.tzinfo)


def plan_deliveries(
    config: Config,
    *,
    officer: str | None,
    tags: Iterable[str],
    source: str,
    severity: Severity,
    now: datetime,
    secured_officers: Iterable[str] = (),
) -> list[PlannedDelivery]:
    """One outbox row per target URL; lower-severity alerts for digest notifiers wait for the digest."""
    planned = []
    targets = delivery_targets(
        config,
        officer=officer,
        tags=tags,
        source=source,
        severity=severity,
        secured_officers=secured_officers,
    )
    for target in targets:
        held_until = None
        notifier = config.notifiers.get(target.removeprefix(NOTIFIER_PREFIX))
        if (
            target.startswith(NOTIFIER_PREFIX)
            and notifier
            and notifier.digest_time
            and severity < DIGEST_BELOW
        ):
            held_until = next_digest_at(config, notifier.digest_time, now)
        for url in target_urls(config, target):
            planned.append(PlannedDelivery(target, url_fingerprint(url), channel_of(url), held_until))
    return planned
