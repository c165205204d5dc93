"""Signed JSON events for systems that want pushes (a loan system, a risk data mart).

Chosen by ``format = "event"`` on a ``[notifiers.NAME]`` whose URLs are the receiver's own http(s)
endpoints, not by a URL scheme: the secret is a key of its own (``signing_secret``, from the
environment), never part of a URL that is fingerprinted, masked and shown. Each alert is one JSON
document (``watcher.alert_event``), posted with ``X-Watcher-Timestamp`` and ``X-Watcher-Signature:
sha256=<HMAC-SHA256 of "<timestamp>.<body>">``; the body is the same on every attempt, the
timestamp and signature are fresh. A 4xx other than 408 and 429 is permanent: retrying the same
document cannot change the receiver's mind.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from notifiers.base import Sender, SendResult, server_only
from watcher.redaction import redact, remember_secrets
from watcher.render import BodyFormat
from watcher.vocabulary import Severity

SEND_TIMEOUT_SECONDS = 15.0
EVENT_SCHEMA_VERSION = 1
TIMESTAMP_HEADER = "X-Watcher-Timestamp"
SIGNATURE_HEADER = "X-Watcher-Signature"
EVENT_ID_HEADER = "X-Watcher-Event-Id"
SIGNATURE_PREFIX = "sha256="
RETRYABLE_4XX = frozenset({408, 429})
"""Request Timeout and Too Many Requests: the receiver asks to try again later."""


def event_url_problem(url: str, *, scheme_only: bool = False) -> str | None:
    """Why ``url`` cannot receive signed events, or None: an http(s) URL with a host."""
    scheme = url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        return 'format = "event" posts to the receiver\'s own endpoint; expected an https://… URL'
    if scheme_only or "${" in url:
        return None
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises ValueError for a port that is not a number
    except ValueError:
        return "not a valid http(s) URL (host or port)"
    return None if host else "the URL has no host"


def body_bytes(document: Mapping[str, Any]) -> bytes:
    """The document as sent: compact UTF-8 JSON, registry text as it is (not \\u-escaped)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``"<timestamp>.<body>"``: the timestamp is signed, so it cannot be replaced."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


class SignedEventSender(Sender):
    """One receiver URL of a ``format = "event"`` notifier, with the notifier's signing secret."""

    body_format = BodyFormat.TEXT  # only the test message is text; alerts go as documents

    def __init__(self, url: str, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url)
        problem = event_url_problem(url)
        if problem is not None:
            raise ValueError(f"{server_only(url)}: {problem}")
        if not secret:
            raise ValueError(f"{server_only(url)}: no signing_secret")
        remember_secrets([secret])  # masked even when written into the file instead of ${ENV}
        self._secret = secret
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"SignedEventSender({self.safe_name})"

    async def send_event(self, document: Mapping[str, Any]) -> SendResult:
        """Post one alert's document, signed now."""
        return await self._post(str(document["event_id"]), body_bytes(document))

    async def send(self, title: str, body: str, severity: Severity = Severity.INFO) -> SendResult:
        """``watcher notify test``: a signed document of type ``test``, so a receiver can try its checks."""
        document = {
            "schema_version": EVENT_SCHEMA_VERSION,
            "type": "test",
            "event_id": f"test-{uuid.uuid4()}",
            "sent_at": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
            "title": title,
            "text": body,
            "severity": severity.value,
        }
        return await self.send_event(document)

    async def _post(self, event_id: str, body: bytes) -> SendResult:
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
            EVENT_ID_HEADER: event_id,
        }
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS, follow_redirects=False)
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return SendResult(False, "timeout")
        except httpx.HTTPError as error:
            return SendResult(False, f"network error: {type(error).__name__}")
        except Exception as error:  # a failed delivery, not a crash
            return SendResult(False, f"cannot send: {type(error).__name__}")
        return _result(response)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _result(response: httpx.Response) -> SendResult:
    """2xx is delivered; 408, 429 and 5xx are tried again; any other status is permanent."""
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(True, f"HTTP {status}")
    permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
    words = redact(response.reason_phrase or "")[:80]
    return SendResult(False, f"HTTP {status}{f' {words}' if words else ''}", permanent=permanent)
