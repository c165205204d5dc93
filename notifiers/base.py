"""What every channel provides: its body format and limits, and an async ``send``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from watcher.render import NO_LIMIT, BodyFormat, Limits


@dataclass(frozen=True, slots=True)
class SendResult:
    """Outcome of one send. ``detail`` is safe to store and show: it never contains the URL's secrets."""

    ok: bool
    detail: str = ""


def masked(url: str) -> str:
    """The URL with credentials, path and query hidden: safe for logs and the status screen."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return (
        f"{parts.scheme}://…@{host}/…"
        if (parts.username or parts.path.strip("/"))
        else f"{parts.scheme}://{host}"
    )


class Sender(ABC):
    """One configured URL of one channel family."""

    schemes: ClassVar[tuple[str, ...]] = ()
    body_format: BodyFormat = BodyFormat.MARKDOWN
    limits: Limits = NO_LIMIT

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def safe_name(self) -> str:
        return masked(self.url)

    @abstractmethod
    async def send(self, title: str, body: str) -> SendResult:
        """Deliver one message; a rejection by the service is ``ok=False``, never an exception."""
