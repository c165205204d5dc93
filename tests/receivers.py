"""Loopback receivers for notification tests: a chat-robot webhook and an SMTP server, both real.

``ChatReceiver`` is a stdlib HTTP server on 127.0.0.1 that answers like DingTalk (``/robot/send``),
WeCom (``/wecom``) and Feishu (``/feishu``) robots do: HTTP 200 with ``errcode``/``code`` 0 when it
accepts a message, HTTP 200 with a non-zero code when it rejects one (the case apprise mistakes for
success), or a plain HTTP error. It checks DingTalk's 加签 signature when given the secret. Senders
reach it through the URL option ``api=``.

``EventReceiver`` is a loan system's endpoint for signed JSON events: it checks each request's
HMAC signature and timestamp with its own copy of the secret, as the README tells receivers to.

``SmtpReceiver`` is an aiosmtpd server on 127.0.0.1 that can refuse mail (4xx) or be taken down
and brought back on the same port.

Both keep every message they *accepted*, with the text a person would read, so tests can count
how often each alert arrived at each target. Use them as fixtures through
``pytest_plugins = ["tests.receivers"]``: ``chat_receiver_factory`` and ``smtp_receiver_factory``.
"""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

DINGTALK_PATH = "/robot/send"
WECOM_PATH = "/wecom"
FEISHU_PATH = "/feishu"
SIGNATURE_MAX_SKEW_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One request as the robot saw it: which endpoint, its query (token, key, sign), the JSON, the text."""

    path: str
    query: dict[str, str]
    payload: dict
    text: str
    received_at: float

    @property
    def token(self) -> str:
        """The robot the message was addressed to: DingTalk's access_token or WeCom's key."""
        return self.query.get("access_token") or self.query.get("key") or ""


def message_text(payload: dict) -> str:
    """Title and body as the chat client shows them, for DingTalk, WeCom and Feishu payloads."""
    if "markdown" in payload:
        markdown = payload["markdown"]
        return "\n".join(
            str(markdown.get(key, "")) for key in ("title", "text", "content") if key in markdown
        )
    if "card" in payload:
        card = payload["card"]
        title = card.get("header", {}).get("title", {}).get("content", "")
        parts = [element.get("content", "") for element in card.get("elements", [])]
        return "\n".join([title, *parts])
    if "text" in payload:
        return str(payload["text"].get("content", ""))
    return json.dumps(payload, ensure_ascii=False)


def dingtalk_signature(secret: str, timestamp_ms: str) -> str:
    """DingTalk's 加签 as its documentation specifies, computed independently of notifiers/dingtalk.py."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()).decode()


class ChatReceiver:
    """A DingTalk/WeCom/Feishu-like robot on 127.0.0.1 whose answers a test can script.

    ``reject_with(code)`` answers HTTP 200 with that error code; ``fail_with_http(status)`` answers
    an HTTP error; ``accept()`` goes back to normal. ``kill_client_on_first_message()`` makes the
    first request end the sending process with SIGKILL after it was recorded and before it is
    answered: the crash between send and commit that the outbox must survive.
    """

    def __init__(self, *, dingtalk_secret: str | None = None, delay: float = 0.0) -> None:
        self.dingtalk_secret = dingtalk_secret
        self.delay = delay
        self.requests: list[ChatMessage] = []
        self.accepted: list[ChatMessage] = []
        self._lock = threading.Lock()
        self._error_code: tuple[int, str] | None = None
        self._http_status: int | None = None
        self._kill_armed = False
        self._kill_pid: int | None = None
        self._kill_pid_known = threading.Event()
        self.killed = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                receiver._handle(self)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chat-receiver",
            daemon=True,
        )

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> ChatReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- URLs senders use to reach it ------------------------------------------------------------------

    def dingtalk_url(self, token: str, secret: str | None = None) -> str:
        credentials = f"{secret}@" if secret else ""
        return f"dingtalk://{credentials}{token}/?api={quote(self.base + DINGTALK_PATH, safe=':/')}"

    def wecom_url(self, key: str) -> str:
        return f"wecombot://{key}?api={quote(self.base + WECOM_PATH, safe=':/')}"

    def feishu_url(self, token: str, secret: str | None = None) -> str:
        credentials = f"{secret}@" if secret else ""
        return f"feishu://{credentials}{token}/?api={quote(self.base + FEISHU_PATH, safe=':/')}"

    # -- scripting ----------------------------------------------------------------------------------

    def accept(self) -> None:
        with self._lock:
            self._error_code = None
            self._http_status = None

    def reject_with(self, code: int, message: str = "rejected") -> None:
        """Answer HTTP 200 with a vendor error code, as DingTalk/WeCom/Feishu do when they refuse."""
        with self._lock:
            self._error_code, self._http_status = (code, message), None

    def fail_with_http(self, status: int = 500) -> None:
        with self._lock:
            self._error_code, self._http_status = None, status

    def kill_client_on_first_message(self) -> None:
        with self._lock:
            self._kill_armed = True

    def set_client_pid(self, pid: int) -> None:
        self._kill_pid = pid
        self._kill_pid_known.set()

    # -- reading ------------------------------------------------------------------------------------

    def texts(self, token: str | None = None) -> list[str]:
        """Texts of accepted messages, optionally only those addressed to one robot token or key."""
        with self._lock:
            return [m.text for m in self.accepted if token is None or m.token == token]

    def count(self, fragment: str, token: str | None = None) -> int:
        """How many accepted messages (to ``token``, if given) contain ``fragment``."""
        return sum(fragment in text for text in self.texts(token))

    # -- the robot ----------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        parts = urlsplit(request.path)
        query = dict(parse_qsl(parts.query))
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._answer(request, 400, {"errcode": 40001, "errmsg": "invalid json"})
            return
        message = ChatMessage(parts.path, query, payload, message_text(payload), time.monotonic())
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.requests.append(message)
            kill = self._kill_armed
            self._kill_armed = False
            status, code = self._http_status, self._error_code
            if kill or (status is None and code is None and self._signature_ok(message)):
                self.accepted.append(message)
        if kill:
            self._kill_client()
            return  # no answer: the client died before it could learn the result
        if status is not None:
            self._answer(request, status, {"error": "internal"})
            return
        if code is None and not self._signature_ok(message):
            code = (310000, "sign not match")
        number, words = code or (0, "ok")
        if parts.path == FEISHU_PATH:
            self._answer(request, 200, {"code": number, "msg": words if number else "success"})
        else:
            self._answer(request, 200, {"errcode": number, "errmsg": words})

    def _signature_ok(self, message: ChatMessage) -> bool:
        if self.dingtalk_secret is None or message.path != DINGTALK_PATH:
            return True
        timestamp, sign = message.query.get("timestamp", ""), message.query.get("sign", "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > SIGNATURE_MAX_SKEW_MS:
            return False
        return hmac.compare_digest(sign, dingtalk_signature(self.dingtalk_secret, timestamp))

    def _kill_client(self) -> None:
        if not self._kill_pid_known.wait(timeout=30):
            raise RuntimeError("kill armed but the test never gave the client's pid")
        assert self._kill_pid is not None
        os.kill(self._kill_pid, signal.SIGKILL)
        self.killed.set()

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout): what it missed is the test's business


# -- signed event webhooks --------------------------------------------------------------------------

EVENT_REPLAY_WINDOW_SECONDS = 300


def event_signature_ok(secret: str, timestamp: str, signature: str, body: bytes, now: float) -> bool:
    """What a receiver checks (the README's snippet), written apart from notifiers/event_webhook.py:
    HMAC-SHA256 of "<timestamp>.<body>", and a timestamp within the replay window."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > EVENT_REPLAY_WINDOW_SECONDS:
        return False
    expected = (
        "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(expected, signature)


@dataclass(frozen=True, slots=True)
class EventRequest:
    """One POST as the receiver saw it: headers, the exact body bytes, and whether it verified."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def document(self) -> dict:
        return json.loads(self.body.decode("utf-8"))


class EventReceiver:
    """A loan system's webhook endpoint on 127.0.0.1: verifies each request's signature and timestamp
    with its own copy of the secret (401 when they fail) and answers 204; ``answer_with(status)``
    scripts a failure, ``delay`` answers late (the sender's timeout)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.requests: list[EventRequest] = []
        self._lock = threading.Lock()
        self._statuses: list[int] = []
        self.reason: str | None = None
        self.delay = 0.0
        """Seconds to wait before answering: longer than the sender waits is a timeout."""
        """The reason phrase of every answer, when set (a receiver that echoes too much in it)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                receiver._handle(self)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="event-receiver",
            daemon=True,
        )

    def start(self) -> EventReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/watcher?tenant=risk"

    def answer_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then 204 again), whatever their signature."""
        with self._lock:
            self._statuses = list(statuses)

    @property
    def accepted(self) -> list[EventRequest]:
        with self._lock:
            return [r for r in self.requests if r.verified and r.status < 300]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in request.headers.items()}
        verified = event_signature_ok(
            self.secret,
            headers.get("x-watcher-timestamp", ""),
            headers.get("x-watcher-signature", ""),
            body,
            time.time(),
        )
        with self._lock:
            scripted = self._statuses.pop(0) if self._statuses else None
            status = scripted or (204 if verified else 401)
            self.requests.append(EventRequest(headers, body, verified, status))
        if self.delay:
            time.sleep(self.delay)  # recorded as it arrived; the answer comes late
        try:
            request.send_response(status, self.reason)
            request.send_header("Content-Length", "0")
            request.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass


# -- SMTP -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    recipients: tuple[str, ...]
    subject: str
    text: str
    message: EmailMessage = field(repr=False)


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd's Controller cannot bind port 0 itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps the mail it accepted.

    ``refuse_with("451 …")`` answers DATA with that reply; ``down()`` stops listening (connections
    are refused) and ``up()`` listens again on the same port, as a mail relay that restarts.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self.refusal: str | None = None
        self._lock = threading.Lock()
        self._controller = None

    def up(self) -> SmtpReceiver:
        from aiosmtpd.controller import Controller

        if self._controller is None:
            self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse_with(self, reply: str | None) -> None:
        self.refusal = reply

    def url(self, to: str = "risk@bank.example") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=alerts@bank.example&to={to}"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.refusal:
            return self.refusal
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        with self._lock:
            self.mails.append(Mail(tuple(envelope.rcpt_tos), str(message["Subject"] or ""), text, message))
        return "250 Message accepted for delivery"

    def texts(self, to: str | None = None) -> list[str]:
        """Subject and text of every accepted mail (to one recipient, if given)."""
        with self._lock:
            return [f"{m.subject}\n{m.text}" for m in self.mails if to is None or to in m.recipients]

    def count(self, fragment: str, to: str | None = None) -> int:
        return sum(fragment in text for text in self.texts(to))


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def chat_receiver_factory() -> Iterator[Callable[..., ChatReceiver]]:
    """Start as many robots as a test needs (one per channel, so each can fail on its own)."""
    started: list[ChatReceiver] = []

    def make(**options) -> ChatReceiver:
        receiver = ChatReceiver(**options).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def smtp_receiver_factory() -> Iterator[Callable[[], SmtpReceiver]]:
    started: list[SmtpReceiver] = []

    def make() -> SmtpReceiver:
        receiver = SmtpReceiver().up()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.down()
