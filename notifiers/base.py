"""What every channel provides: its body format and limits, and an async ``send``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from watcher.redaction import redact
from watcher.render import NO_LIMIT, BodyFormat, Limits
from watcher.vocabulary import Severity


@dataclass(frozen=True, slots=True)
class SendResult:
    """Outcome of one send. ``detail`` is safe to store and show: it never contains the URL's secrets.

    ``permanent``: the receiver refused the message for good (an event webhook's 4xx); the outbox
    stops retrying it at once instead of after ``max_attempts``.
    """

    ok: bool
    detail: str = ""
    permanent: bool = False


def masked(url: str) -> str:
    """The URL with its secrets hidden, as its channel family shows it: safe for logs and the status screen.

    Chat robots show the end of their token (``dingtalk://…5e2f``), other URLs their server; any
    value the config took from the environment is ``****`` wherever it is left.
    """
    from notifiers import family_of

    family = family_of(url)
    return redact(family.display(url) if family is not None else server_only(url))


def server_only(url: str) -> str:
    """The URL with credentials, path and query hidden.

    The host is shown only when it looks like a server's name or address: many apprise schemes put
    a token where the host goes (``pbul://{token}``, ``pover://{user}@{token}``), and a URL that
    failed to parse cannot say which kind it is.
    """
    if "://" not in url:
        return "…"
    scheme = url.split("://", 1)[0]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        hidden = bool(parts.username or parts.password or parts.path.strip("/") or parts.query)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return f"{scheme}://…"
    if host and not _looks_like_server(host):
        return f"{scheme}://…"
    return f"{scheme}://…@{host}/…" if hidden else f"{scheme}://{host}"


def without_secrets(text: str, url: str) -> str:
    """Words about a URL (apprise's, a channel's reply), minus anything of the URL that may be a credential.

    Not only the password: apprise schemes carry tokens as the user, the host, path segments and
    query values (``pover://{user}@{token}``, ``tgram://{bot_token}/{chat_id}``); and not only this
    URL's: any value taken from the environment.
    """
    try:
        parts = urlsplit(url)
        pieces = [parts.password, parts.username, parts.hostname, *parts.path.split("/")]
        pieces += [value for _, _, value in (pair.partition("=") for pair in parts.query.split("&"))]
    except ValueError:
        pieces = [url.split("://", 1)[-1]]
    text = redact(text)
    for piece in sorted((p for p in pieces if p and len(p) >= 3), key=len, reverse=True):
        text = text.replace(piece, "…")
    return text.strip()[:200]


def _looks_like_server(host: str) -> bool:
    return host == "localhost" or "." in host or ":" in host  # a DNS name, an IPv4 or an IPv6 address


class Sender(ABC):
    """One configured URL of one channel family."""

    schemes: ClassVar[tuple[str, ...]] = ()
    body_format: BodyFormat = BodyFormat.MARKDOWN
    limits: Limits = NO_LIMIT

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def display(cls, url: str) -> str:
        """How a URL of this family is shown before :func:`redact`: without credentials or tokens."""
        return server_only(url)

    @property
    def safe_name(self) -> str:
        """The URL as logs, the outbox and ``watcher notify test`` show it."""
        return masked(self.url)

    @abstractmethod
    async def send(self, title: str, body: str, severity: Severity = Severity.INFO) -> SendResult:
        """Deliver one message; a rejection by the service is ``ok=False``, never an exception.

        ``severity`` is the alert's (a digest's highest): each channel shows it in its own terms
        (apprise's notify type, an email's importance, a card's colour).
        """

    async def aclose(self) -> None:
        """Release connections; senders without any keep the default."""
