"""Channel senders against real loopback servers: HTTP robots (DingTalk, WeCom, Feishu/Lark), apprise's
json:// and email through a real SMTP server.

The senders exist because vendors answer HTTP 200 when they reject a message; these tests make a real
server give each kind of answer and check what the sender concludes, and recompute the vendors'
signatures from what actually went over the wire.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

import notifiers.webhook
from notifiers import sender_for
from notifiers.apprise_channel import AppriseSender
from notifiers.base import masked
from notifiers.dingtalk import DingTalkSender
from notifiers.feishu import FeishuSender
from notifiers.wecom import WeComSender
from watcher.record import Action, Category
from watcher.render import AlertView, BodyFormat, ChangeLine, alert_lines, render_alert
from watcher.rules import Severity

DINGTALK_TOKEN = "4f1c0a9e2b7d4c6f8a0e1b3d5c7f9a2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"
DINGTALK_SECRET = "SEC7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
FEISHU_TOKEN = "0f6d6a1c-8b4e-4a2b-9c3d-7e5f1a2b3c4d"
FEISHU_SECRET = "qz8Xk2LmN4pR6tV8"


# -- a loopback HTTP server that records requests and answers as each test says -----------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"errcode": 0, "errmsg": "ok"}'
    content_type: str = "application/json"
    delay_seconds: float = 0.0


@dataclass
class Loopback:
    """A real HTTP server on 127.0.0.1: ``answer`` is what it says next, ``requests`` what it heard."""

    port: int
    answer: Answer = field(default_factory=Answer)
    requests: list[Recorded] = field(default_factory=list)

    def url(self, path: str = "/robot/send") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer_json(self, payload: object, status: int = 200) -> None:
        self.answer = Answer(status=status, body=json.dumps(payload).encode())


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    state = Loopback(port=0)

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            state.requests.append(
                Recorded(
                    "POST",
                    parts.path,
                    parse_qs(parts.query),
                    {key.lower(): value for key, value in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            answer = state.answer
            time.sleep(answer.delay_seconds)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:  # the client gave up waiting (the timeout test)
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- alerts to send ---------------------------------------------------------------------------------


def alert_view(borrower_name: str = "杭州澜潮智能装备有限公司", changes: int = 3) -> AlertView:
    lines = (
        ChangeLine(
            Category.LEGAL_REPRESENTATIVE,
            Action.CHANGED,
            "legal representative",
            "王建国",
            "李娜",
            date(2026, 3, 1),
        ),
        ChangeLine(Category.DIRECTOR, Action.ADDED, "李娜", None, "李娜", None),
        ChangeLine(Category.SHAREHOLDER, Action.REMOVED, "<b>x</b> 投资", "<b>x</b> 投资", None, None),
    )
    extra = tuple(
        ChangeLine(
            Category.SHAREHOLDER,
            Action.ADDED,
            f"股东{i}",
            None,
            f"深圳鼎盛第{i}投资合伙企业（有限合伙）{'澜' * 40}",
            None,
        )
        for i in range(max(0, changes - len(lines)))
    )
    return AlertView(
        alert_id=1,
        borrower_id="cn-lanchao",
        borrower_name=borrower_name,
        severity=Severity.HIGH,
        source="qcc",
        detected_at=datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
        changes=(lines + extra)[: max(changes, 1)],
        occasions_in_window=2,
        window_days=365,
        recommend_early_repayment=True,
    )


# -- DingTalk -------------------------------------------------------------------------------------


def dingtalk_url(loopback: Loopback, secret: str | None = DINGTALK_SECRET) -> str:
    credentials = f"{secret}@" if secret else ""
    return f"dingtalk://{credentials}{DINGTALK_TOKEN}/?api={loopback.url()}"


async def test_dingtalk_signs_every_request_and_sends_markdown(loopback: Loopback) -> None:
    sender = sender_for(dingtalk_url(loopback))
    assert isinstance(sender, DingTalkSender)
    rendered = render_alert(alert_view(), "zh-CN", sender.body_format, sender.limits)
    before_ms = time.time() * 1000

    result = await sender.send(rendered.title, rendered.body)

    assert result.ok, result.detail
    (request,) = loopback.requests
    assert request.path == "/robot/send"
    assert request.query["access_token"] == [DINGTALK_TOKEN]
    timestamp = request.query["timestamp"][0]
    assert before_ms - 5000 <= int(timestamp) <= time.time() * 1000 + 5000, "timestamp in milliseconds"
    expected = base64.b64encode(
        hmac.new(
            DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert request.query["sign"] == [expected]  # parse_qs has URL-decoded it
    payload = request.json()
    assert payload["msgtype"] == "markdown"
    assert payload["markdown"]["title"] == rendered.title
    assert rendered.body in payload["markdown"]["text"]
    assert rendered.title in payload["markdown"]["text"]


async def test_dingtalk_without_secret_sends_no_signature(loopback: Loopback) -> None:
    result = await sender_for(dingtalk_url(loopback, secret=None)).send("标题", "正文")
    assert result.ok
    assert "sign" not in loopback.requests[0].query and "timestamp" not in loopback.requests[0].query


async def test_dingtalk_title_in_the_markdown_text_is_escaped(loopback: Loopback) -> None:
    """The title carries the company name from the registry: in DingTalk's markdown it must stay text."""
    view = alert_view(borrower_name="澜潮 [click](http://evil.example) <b>x</b>")
    sender = sender_for(dingtalk_url(loopback))
    rendered = render_alert(view, "zh-CN", sender.body_format, sender.limits)
    assert (await sender.send(rendered.title, rendered.body)).ok
    text = loopback.requests[0].json()["markdown"]["text"]
    assert "](" not in text and "<" not in text
    assert "［click］(http://evil.example)" in text


async def test_dingtalk_rejection_inside_http_200_is_a_failure(loopback: Loopback) -> None:
    loopback.answer_json({"errcode": 310000, "errmsg": "keywords not in content"})
    result = await sender_for(dingtalk_url(loopback)).send("标题", "正文")
    assert not result.ok
    assert "310000" in result.detail and "keywords not in content" in result.detail


async def test_dingtalk_http_500_is_a_failure(loopback: Loopback) -> None:
    loopback.answer = Answer(status=500, body=b"internal error", content_type="text/plain")
    result = await sender_for(dingtalk_url(loopback)).send("标题", "正文")
    assert not result.ok and "500" in result.detail


async def test_dingtalk_slow_server_is_a_timeout(loopback: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifiers.webhook, "SEND_TIMEOUT_SECONDS", 0.3)
    loopback.answer = Answer(delay_seconds=1.5)
    started = time.monotonic()
    result = await sender_for(dingtalk_url(loopback)).send("标题", "正文")
    assert not result.ok and result.detail == "timeout"
    assert time.monotonic() - started < 1.4, "the sender must not wait for the slow answer"


async def test_dingtalk_non_json_200_is_a_failure(loopback: Loopback) -> None:
    loopback.answer = Answer(body=b"<html>proxy login</html>", content_type="text/html")
    result = await sender_for(dingtalk_url(loopback)).send("标题", "正文")
    assert not result.ok and "JSON" in result.detail


async def test_dingtalk_json_that_is_not_an_object_is_a_failure(loopback: Loopback) -> None:
    loopback.answer = Answer(body=b'["ok"]')
    result = await sender_for(dingtalk_url(loopback)).send("标题", "正文")
    assert not result.ok and "unexpected" in result.detail


async def test_unreachable_robot_is_a_network_error_not_an_exception() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"dingtalk://{DINGTALK_TOKEN}/?api=http://127.0.0.1:{closed_port}/robot/send"
    result = await sender_for(url).send("标题", "正文")
    assert not result.ok and "network error" in result.detail


# -- WeCom ----------------------------------------------------------------------------------------


def wecom_url(loopback: Loopback) -> str:
    return f"wecombot://{WECOM_KEY}?api={loopback.url('/cgi-bin/webhook/send')}"


async def test_wecom_sends_markdown_content_and_reads_errcode(loopback: Loopback) -> None:
    sender = sender_for(wecom_url(loopback))
    assert isinstance(sender, WeComSender)
    rendered = render_alert(alert_view(), "zh-CN", sender.body_format, sender.limits)
    assert (await sender.send(rendered.title, rendered.body)).ok
    request = loopback.requests[0]
    assert request.query["key"] == [WECOM_KEY]
    payload = request.json()
    assert payload["msgtype"] == "markdown"
    content = payload["markdown"]["content"]
    assert rendered.body in content and "杭州澜潮智能装备有限公司" in content

    loopback.answer_json({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1672]"})
    result = await sender.send(rendered.title, rendered.body)
    assert not result.ok and "93000" in result.detail


async def test_wecom_long_alert_with_long_title_stays_within_4096_bytes(loopback: Loopback) -> None:
    """WeCom counts UTF-8 bytes; a CJK message over 4096 bytes is rejected as a whole."""
    long_name = "杭州澜潮智能装备" * 30 + "有限公司"  # 244 CJK characters: the title alone is > 700 bytes
    sender = sender_for(wecom_url(loopback))
    view = alert_view(borrower_name=long_name, changes=80)
    rendered = render_alert(view, "zh-CN", sender.body_format, sender.limits)
    assert len(rendered.title.encode()) > 700

    assert (await sender.send(rendered.title, rendered.body, view.severity)).ok

    content = loopback.requests[0].json()["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096
    assert content.startswith('<font color="warning">**【高风险】杭州澜潮智能装备')
    assert rendered.body in content, "the body was fitted by the renderer; only the title may be cut"
    assert "另有" in content and "watcher history --borrower cn-lanchao" in content


# -- Feishu and Lark --------------------------------------------------------------------------------


def feishu_expected_sign(timestamp: str, secret: str) -> str:
    return base64.b64encode(
        hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    ).decode()


@pytest.mark.parametrize("scheme", ["feishu", "lark"])
async def test_feishu_and_lark_sign_the_body(loopback: Loopback, scheme: str) -> None:
    loopback.answer_json(
        {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
    )
    sender = sender_for(f"{scheme}://{FEISHU_SECRET}@{FEISHU_TOKEN}/?api={loopback.url('/hook')}")
    assert isinstance(sender, FeishuSender)
    rendered = render_alert(alert_view(), "en", sender.body_format, sender.limits)
    before = time.time()

    result = await sender.send(rendered.title, rendered.body)

    assert result.ok, result.detail
    payload = loopback.requests[0].json()
    assert before - 5 <= int(payload["timestamp"]) <= time.time() + 5, "timestamp in seconds"
    assert payload["sign"] == feishu_expected_sign(payload["timestamp"], FEISHU_SECRET)
    assert rendered.title in json.dumps(payload, ensure_ascii=False)
    assert rendered.body in json.dumps(payload["card"], ensure_ascii=False).replace("\\n", "\n")


@pytest.mark.parametrize("scheme", ["feishu", "lark"])
async def test_feishu_rejection_is_a_failure(loopback: Loopback, scheme: str) -> None:
    loopback.answer_json({"code": 19021, "msg": "sign match fail", "data": {}})
    sender = sender_for(f"{scheme}://{FEISHU_SECRET}@{FEISHU_TOKEN}/?api={loopback.url('/hook')}")
    result = await sender.send("title", "body")
    assert not result.ok and "19021" in result.detail and "sign match fail" in result.detail


def test_lark_and_feishu_default_to_their_own_endpoints() -> None:
    feishu = sender_for(f"feishu://{FEISHU_TOKEN}/")
    lark = sender_for(f"lark://{FEISHU_TOKEN}/")
    feishu_host, lark_host = urlsplit(feishu.api).hostname, urlsplit(lark.api).hostname
    assert feishu_host == "open.feishu.cn" and lark_host == "open.larksuite.com"
    assert feishu.api.endswith(f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}")
    assert lark.api.endswith(f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}")


# -- sender_for ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (f"dingtalk://{DINGTALK_SECRET}@{DINGTALK_TOKEN}/", DingTalkSender),
        (f"wecombot://{WECOM_KEY}", WeComSender),
        (f"feishu://{FEISHU_SECRET}@{FEISHU_TOKEN}/", FeishuSender),
        (f"lark://{FEISHU_TOKEN}/", FeishuSender),
        ("mailto://127.0.0.1:2525?from=alerts@bank.example&to=officer@bank.example", AppriseSender),
        ("mailtos://alerts:Pa55word-x@smtp.bank.example?to=risk@bank.example", AppriseSender),
        ("json://127.0.0.1:8080/hook", AppriseSender),
    ],
)
def test_sender_for_picks_the_family_by_scheme(url: str, kind: type) -> None:
    assert type(sender_for(url)) is kind


def test_email_is_html_and_other_apprise_channels_markdown() -> None:
    assert (
        sender_for("mailto://127.0.0.1:2525?from=a@bank.example&to=b@bank.example").body_format
        is BodyFormat.HTML
    )
    assert sender_for("json://127.0.0.1:8080/hook").body_format is BodyFormat.MARKDOWN


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (f"dingtalk://{DINGTALK_SECRET}@/", [DINGTALK_SECRET]),
        (
            f"dingtalk://{DINGTALK_SECRET}@{DINGTALK_TOKEN}/?api=ftp://relay.bank.example/x",
            [DINGTALK_SECRET, DINGTALK_TOKEN],
        ),
        ("nonsense://admin:Hunter2-Secret@tokentokentoken42/path", ["Hunter2-Secret", "tokentokentoken42"]),
        ("mailto://officer:Hunter2-Secret@", ["Hunter2-Secret"]),
        ("slack://TEAM0123/BOT0123/bad!!webhook-token", ["bad!!webhook-token", "TEAM0123", "BOT0123"]),
        ("no scheme at all Hunter2-Secret", ["Hunter2-Secret"]),
        ("json://hookuser:Hunter2-Secret@[unbalanced/hook", ["Hunter2-Secret", "hookuser"]),
    ],
)
def test_unusable_url_error_does_not_repeat_its_secrets(url: str, secrets: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        sender_for(url)
    for secret in secrets:
        assert secret not in str(caught.value)
        assert secret.lower() not in str(caught.value).lower()


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (f"dingtalk://{DINGTALK_SECRET}@{DINGTALK_TOKEN}/", [DINGTALK_SECRET, DINGTALK_TOKEN]),
        ("dingtalk://SECabcdef012345@abc123/", ["SECabcdef012345", "abc123"]),
        (f"wecombot://{WECOM_KEY}", [WECOM_KEY]),
        ("wecombot://k3y9", ["k3y9"]),
        (f"lark://{FEISHU_SECRET}@{FEISHU_TOKEN}/", [FEISHU_SECRET, FEISHU_TOKEN]),
        ("mailtos://alerts:Pa55word-x@smtp.bank.example?to=risk@bank.example", ["Pa55word-x"]),
        ("json://hookuser:Pa55word-x@127.0.0.1:8080/hook", ["Pa55word-x"]),
        ("pover://Userkey0123456789@Apptoken0123456789", ["Userkey0123456789", "Apptoken0123456789"]),
    ],
)
def test_safe_name_shows_no_token_or_password(url: str, secrets: list[str]) -> None:
    name = sender_for(url).safe_name
    assert name
    for secret in secrets:
        assert secret not in name


def test_masked_shows_a_server_name_but_never_a_token_in_the_host_position() -> None:
    """apprise puts tokens where the host goes in many schemes (``pbul://{token}``)."""
    assert masked("mailtos://alerts:Pa55word-x@smtp.bank.example/x") == "mailtos://…@smtp.bank.example/…"
    assert masked("json://127.0.0.1:8080") == "json://127.0.0.1"
    assert "accesstoken0123456789" not in masked("pbul://accesstoken0123456789")
    assert "accesstoken0123456789" not in masked("pbul://accesstoken0123456789/device")
    assert masked("json://[unbalanced/x") == "json://…"


@settings(max_examples=80, deadline=None)
@given(
    scheme=st.sampled_from(["dingtalk", "wecombot", "feishu", "lark"]),
    token=st.text("0123456789abcdef-", min_size=8, max_size=70),
    secret=st.one_of(st.none(), st.text("0123456789abcdefABCDEF", min_size=8, max_size=70)),
)
def test_safe_name_of_any_robot_url_hides_token_and_secret(
    scheme: str, token: str, secret: str | None
) -> None:
    url = f"{scheme}://{secret + '@' if secret else ''}{token}/"
    name = sender_for(url).safe_name
    assert token not in name
    assert secret is None or secret not in name


# -- apprise: json:// -------------------------------------------------------------------------------


async def test_json_through_apprise_reports_server_errors(loopback: Loopback) -> None:
    sender = sender_for(f"json://127.0.0.1:{loopback.port}/hook")
    assert isinstance(sender, AppriseSender)
    rendered = render_alert(alert_view(), "zh-CN", sender.body_format, sender.limits)

    loopback.answer = Answer(status=500, body=b"boom", content_type="text/plain")
    failed = await sender.send(rendered.title, rendered.body)
    assert not failed.ok and failed.detail

    loopback.answer = Answer(status=200, body=b"{}")
    sent = await sender.send(rendered.title, rendered.body)
    assert sent.ok, sent.detail
    payload = loopback.requests[-1].json()
    assert payload["title"] == rendered.title and payload["message"] == rendered.body
    assert len(loopback.requests) == 2


# -- apprise: email to a real SMTP server ----------------------------------------------------------


class _Mailbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: object, session: object, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope.original_content or envelope.content)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Mailbox, int]]:
    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


async def test_email_carries_a_chinese_alert_with_registry_markup_escaped(
    smtp_server: tuple[_Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    sender = sender_for(f"mailto://127.0.0.1:{port}?from=alerts@bank.example&to=officer@bank.example")
    assert isinstance(sender, AppriseSender) and sender.body_format is BodyFormat.HTML
    view = alert_view()
    rendered = render_alert(view, "zh-CN", sender.body_format, sender.limits)

    result = await sender.send(rendered.title, rendered.body)

    assert result.ok, result.detail
    (raw,) = mailbox.messages
    assert mailbox.recipients == [["officer@bank.example"]]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == rendered.title
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html_body = html_part.get_content()
    for line in alert_lines(view.changes, "zh-CN", BodyFormat.HTML):
        assert f"<li>{line}</li>" in html_body
    assert "提前收回" in html_body
    elements = _Elements()
    elements.feed(html_body)
    assert "b" not in elements.tags, "registry text <b>x</b> must arrive as text, not as an element"
    assert "<b>x</b> 投资" in elements.text
    text_part = message.get_body(preferencelist=("plain",))  # apprise adds a plain-text alternative
    assert text_part is not None
    plain = text_part.get_content()
    assert "法定代表人 王建国 → 李娜" in plain and "提前收回" in plain


async def test_email_to_a_closed_smtp_port_is_a_failure_with_a_reason() -> None:
    sender = sender_for(f"mailto://127.0.0.1:{free_port()}?from=alerts@bank.example&to=officer@bank.example")
    result = await sender.send("【警示】测试", "<p>正文</p>")
    assert not result.ok
    assert "connection" in result.detail.lower() and "127.0.0.1" in result.detail


# -- severity in each channel's own terms --------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "notify_type"),
    [
        (Severity.INFO, "info"),
        (Severity.WARNING, "warning"),
        (Severity.HIGH, "failure"),
        (Severity.CRITICAL, "failure"),
    ],
)
async def test_json_payload_type_follows_the_severity(
    loopback: Loopback, severity: Severity, notify_type: str
) -> None:
    loopback.answer = Answer(status=200, body=b"{}")
    sender = sender_for(f"json://127.0.0.1:{loopback.port}/hook")
    assert (await sender.send("【严重】测试", "正文", severity)).ok
    assert loopback.requests[-1].json()["type"] == notify_type


@pytest.mark.parametrize(
    ("severity", "template"),
    [
        (Severity.INFO, "blue"),
        (Severity.WARNING, "yellow"),
        (Severity.HIGH, "orange"),
        (Severity.CRITICAL, "red"),
    ],
)
async def test_feishu_card_header_colour_follows_the_severity(
    loopback: Loopback, severity: Severity, template: str
) -> None:
    loopback.answer_json({"code": 0, "msg": "success"})
    sender = sender_for(f"feishu://{FEISHU_TOKEN}/?api={loopback.url('/hook')}")
    assert (await sender.send("title", "body", severity)).ok
    assert loopback.requests[-1].json()["card"]["header"]["template"] == template


@pytest.mark.parametrize(
    ("severity", "opening"),
    [
        (Severity.INFO, '<font color="comment">**'),
        (Severity.WARNING, "**"),
        (Severity.HIGH, '<font color="warning">**'),
        (Severity.CRITICAL, '<font color="warning">**'),
    ],
)
async def test_wecom_title_colour_follows_the_severity(
    loopback: Loopback, severity: Severity, opening: str
) -> None:
    sender = sender_for(wecom_url(loopback))
    assert (await sender.send("【严重】标题", "正文", severity)).ok
    content = loopback.requests[-1].json()["markdown"]["content"]
    assert content.startswith(f"{opening}【严重】标题**")
    assert content.endswith("\n正文")
    assert ("</font>" in content) is (severity is not Severity.WARNING)


@pytest.mark.parametrize(
    ("severity", "mentions_everyone"),
    [(Severity.WARNING, False), (Severity.HIGH, True), (Severity.CRITICAL, True)],
)
async def test_dingtalk_at_all_from_the_configured_severity(
    loopback: Loopback, severity: Severity, mentions_everyone: bool
) -> None:
    sender = sender_for(dingtalk_url(loopback, secret=None) + "&at_all=high")
    assert (await sender.send("【严重】标题", "正文", severity)).ok
    payload = loopback.requests[-1].json()
    assert payload.get("at", {}).get("isAtAll", False) is mentions_everyone


async def test_dingtalk_without_at_all_never_mentions_everyone(loopback: Loopback) -> None:
    assert (await sender_for(dingtalk_url(loopback)).send("【严重】标题", "正文", Severity.CRITICAL)).ok
    assert "at" not in loopback.requests[-1].json()


def test_dingtalk_at_all_must_name_a_severity() -> None:
    with pytest.raises(ValueError, match="at_all= must be one of info, warning, high, critical"):
        sender_for(f"dingtalk://{DINGTALK_TOKEN}/?at_all=everyone")


@pytest.mark.parametrize(
    ("severity", "urgent"),
    [(Severity.INFO, False), (Severity.WARNING, False), (Severity.HIGH, True), (Severity.CRITICAL, True)],
)
async def test_email_importance_follows_the_severity(
    smtp_server: tuple[_Mailbox, int], severity: Severity, urgent: bool
) -> None:
    mailbox, port = smtp_server
    sender = sender_for(f"mailto://127.0.0.1:{port}?from=alerts@bank.example&to=officer@bank.example")
    assert (await sender.send("【严重】测试", "<p>正文</p>", severity)).ok
    (raw,) = mailbox.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert (message["Importance"], message["X-Priority"]) == (("high", "1") if urgent else (None, None))
