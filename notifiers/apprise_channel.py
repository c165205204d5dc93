"""Every other channel through apprise: email (mailto/mailtos), Slack, Teams (workflows), Telegram…

A fresh Apprise object per send avoids apprise's per-instance throttle (a 5.5 s sleep between two
sends of one instance); ``async_notify`` keeps the event loop free. Email bodies are HTML.

Severity travels as apprise's notify type (json:// and form:// carry it as ``"type"``; other
services choose their colour or icon by it) and, for email, as importance headers: apprise's email
plugin writes its ``headers`` (the ``+Name=value`` URL options) into every message it builds.
"""

from __future__ import annotations

from notifiers.base import Sender, SendResult, masked, without_secrets
from watcher.redaction import redact
from watcher.render import BodyFormat, Limits
from watcher.vocabulary import Severity

EMAIL_SCHEMES = ("mailto", "mailtos")
SEND_TIMEOUT_SECONDS = 60.0
_PROBLEM_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
NOTIFY_TYPES = {
    Severity.INFO: "info",
    Severity.WARNING: "warning",
    Severity.HIGH: "failure",
    Severity.CRITICAL: "failure",
}
"""Our severity as apprise's ``NotifyType`` value: apprise has no level above "failure"."""
URGENT_EMAIL_HEADERS = {"Importance": "high", "X-Priority": "1"}
"""High and critical alerts: Outlook/Exchange read ``Importance`` (RFC 2156), most other clients
``X-Priority`` (1 is the highest)."""


class AppriseSender(Sender):
    def __init__(self, url: str) -> None:
        import apprise

        super().__init__(url)
        try:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=False)
        except Exception as error:  # apprise raises several types for a malformed URL
            reason = without_secrets(str(error), url)
            raise ValueError(
                f"{masked(url)}: {reason or 'not a URL any notification channel understands'}"
            ) from None
        if plugin is None:
            raise ValueError(f"{masked(url)}: not a URL any notification channel understands")
        self.scheme = url.split("://", 1)[0].lower()
        self.body_format = BodyFormat.HTML if self.scheme in EMAIL_SCHEMES else BodyFormat.MARKDOWN
        max_chars = getattr(plugin, "body_maxlen", 0) or None
        self.limits = Limits(max_chars=max_chars)
        self._safe = plugin.url(privacy=True)

    @property
    def safe_name(self) -> str:
        """apprise's own privacy view (passwords and tokens it knows of as ``****``), minus our secrets."""
        return redact(self._safe)

    async def send(self, title: str, body: str, severity: Severity = Severity.INFO) -> SendResult:
        import apprise

        notifier = apprise.Apprise()
        plugin = apprise.Apprise.instantiate(self.url)
        if plugin is None:  # accepted in __init__: only a changed apprise could refuse it now
            return SendResult(False, f"{self.safe_name}: not a URL any notification channel understands")
        headers = getattr(plugin, "headers", None)  # apprise's email plugin: extra message headers
        if self.scheme in EMAIL_SCHEMES and severity >= Severity.HIGH and isinstance(headers, dict):
            headers.update(URGENT_EMAIL_HEADERS)
        notifier.add(plugin)
        body_format = (
            apprise.NotifyFormat.HTML
            if self.body_format is BodyFormat.HTML
            else apprise.NotifyFormat.MARKDOWN
        )
        result = await notifier.async_notify(
            body=body,
            title=title,
            body_format=body_format,
            notify_type=apprise.NotifyType(NOTIFY_TYPES[severity]),
            timeout=SEND_TIMEOUT_SECONDS,
        )
        if bool(result):
            return SendResult(True, "sent")
        problems = [entry.message for entry in result.logs() if str(entry.level).upper() in _PROBLEM_LEVELS]
        detail = problems[-1] if problems else f"status {getattr(result.status, 'name', result.status)}"
        return SendResult(False, redact(detail)[:500])
