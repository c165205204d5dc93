"""Who hears about an alert: the borrower's officer, and every notifier whose filters it passes."""

from __future__ import annotations

from collections.abc import Iterable

from watcher.config import Config
from watcher.rules import Severity

OFFICER_PREFIX = "officer:"
NOTIFIER_PREFIX = "notifier:"


def delivery_targets(
    config: Config, *, officer: str | None, tags: Iterable[str], source: str, severity: Severity
) -> list[str]:
    """Target names for the outbox (``officer:<id>``, ``notifier:<name>``); never secrets or URLs."""
    targets: list[str] = []
    officer_config = config.officers.get(officer) if officer else None
    if officer_config is not None and officer_config.urls:
        targets.append(f"{OFFICER_PREFIX}{officer}")
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
