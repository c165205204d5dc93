"""Shared mechanics of the chat-bot webhooks that answer HTTP 200 with an error code inside."""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from urllib.parse import parse_qs, urlsplit

import httpx

from notifiers.base import Sender, SendResult
from watcher.vocabulary import Severity

SEND_TIMEOUT_SECONDS = 15.0
ROBOT_HINT_MIN_TOKEN = 16
"""Tokens at least this long show their last four characters; real ones are 32 to 64."""


class WebhookSender(Sender):
    """POST a JSON payload and read the vendor's own success code, not just the HTTP status.

    ``?api=https://proxy.bank.example/robot/send`` replaces the vendor's endpoint, for banks that
    route outbound traffic through a relay (and for tests on 127.0.0.1).
    """

    default_api: str = ""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        scheme, _, rest = url.partition("://")
        rest, _, query = rest.partition("?")
        netloc = rest.partition("/")[0]
        secret, _, token = netloc.rpartition("@")
        if not token:
            raise ValueError(f"{scheme}:// URL has no token (expected {scheme}://[secret@]token/)")
        self.scheme = scheme.lower()
        self.token = token
        self.secret = secret or None
        options = parse_qs(query)
        self.options = {name: values[-1] for name, values in options.items()}
        api = options.get("api", [""])[0]
        if api and urlsplit(api).scheme not in ("http", "https"):
            raise ValueError(f"{scheme}:// api= must be an http(s) URL")
        self.api = api or self.default_api

    @classmethod
    def display(cls, url: str) -> str:
        """``dingtalk://…5e2f``: the last four characters of a long token tell robots apart.

        A short token (a test's) would show too much of itself: the start of the URL's SHA-256
        (``…#3f9a``, as the outbox's ``url_fingerprint`` begins) tells those apart instead.
        """
        scheme, _, rest = url.partition("://")
        token = rest.partition("?")[0].partition("/")[0].rpartition("@")[2]
        if len(token) >= ROBOT_HINT_MIN_TOKEN:
            return f"{scheme.lower()}://…{token[-4:]}"
        return f"{scheme.lower()}://…#{hashlib.sha256(url.encode('utf-8')).hexdigest()[:4]}"

    @abstractmethod
    def request(self, title: str, body: str, severity: Severity) -> tuple[str, dict[str, str], dict]:
        """Endpoint URL, query parameters and JSON payload for one message."""

    @abstractmethod
    def accepted(self, answer: dict) -> tuple[bool, str]:
        """Whether the vendor's JSON answer means the message was accepted, and its own words."""

    _client: httpx.AsyncClient | None = None

    async def send(self, title: str, body: str, severity: Severity = Severity.INFO) -> SendResult:
        endpoint, params, payload = self.request(title, body, severity)
        if self._client is None:
            # One client per configured URL: connections and TLS sessions are reused across messages.
            self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS, follow_redirects=False)
        try:
            response = await self._client.post(endpoint, params=params, json=payload)
        except httpx.TimeoutException:
            return SendResult(False, "timeout")
        except httpx.HTTPError as error:
            return SendResult(False, f"network error: {type(error).__name__}")
        except Exception as error:  # e.g. an invalid port in api=: a failed delivery, not a crash
            return SendResult(False, f"cannot send: {type(error).__name__}")
        if response.status_code != 200:
            return SendResult(False, f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return SendResult(False, "HTTP 200 without a JSON answer")
        if not isinstance(answer, dict):
            return SendResult(False, "HTTP 200 with an unexpected answer")
        ok, words = self.accepted(answer)
        return SendResult(ok, words)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
