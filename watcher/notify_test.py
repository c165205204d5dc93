"""``watcher notify test``: one test message to every URL of the chosen targets, each result reported."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from watcher.config import Config
from watcher.redaction import redact
from watcher.render import render_test_message
from watcher.routing import target_language, target_signing_secret, target_urls


@dataclass(frozen=True, slots=True)
class ProbeResult:
    target: str
    channel: str
    ok: bool
    detail: str


def probe_targets(config: Config) -> list[str]:
    """Every target a test message can go to: each notifier, and each officer with urls of their own."""
    notifiers = [f"notifier:{name}" for name in sorted(config.notifiers)]
    return notifiers + [f"officer:{name}" for name in sorted(config.officers) if config.officers[name].urls]


async def run_notify_test(config: Config, targets: list[str]) -> list[ProbeResult]:
    from notifiers import sender_for
    from notifiers.base import masked

    async def one(target: str, url: str) -> ProbeResult:
        try:
            sender = sender_for(url, signing_secret=target_signing_secret(config, target))
        except ValueError as error:
            return ProbeResult(target, masked(url), False, str(error))
        message = render_test_message(target, target_language(config, target))
        try:
            result = await sender.send(message.title, message.body)
        except Exception as error:  # one channel's bug is that channel's FAILED line, not a crash
            return ProbeResult(target, sender.safe_name, False, f"{type(error).__name__} while sending")
        return ProbeResult(target, sender.safe_name, result.ok, "" if result.ok else result.detail)

    def shown(result: ProbeResult) -> ProbeResult:
        """What is printed passes through the redactor, whatever the channel put in it."""
        return ProbeResult(result.target, redact(result.channel), result.ok, redact(result.detail))

    jobs = [one(target, url) for target in targets for url in target_urls(config, target)]
    return [shown(result) for result in await asyncio.gather(*jobs)]
