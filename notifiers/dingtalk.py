"""DingTalk group robots (钉钉自定义机器人): ``dingtalk://[secret@]access_token/``.

DingTalk answers HTTP 200 with ``errcode`` ≠ 0 when it rejects a message (keyword missing, bad
signature, IP not allowed, too fast); apprise reports that as sent, so we send it ourselves.
With a secret (加签), every request carries ``timestamp`` (ms) and ``sign``.

DingTalk's markdown has no colour: the severity is the title's prefix (【严重】). ``?at_all=high``
(or another severity) mentions everyone in the group (``at.isAtAll``) for alerts at least that severe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from notifiers import register
from notifiers.webhook import WebhookSender
from watcher.render import BodyFormat, Limits, escape_markdown
from watcher.vocabulary import Severity


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")), as DingTalk's 加签 specifies."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@register("dingtalk")
class DingTalkSender(WebhookSender):
    default_api = "https://oapi.dingtalk.com/robot/send"
    body_format = BodyFormat.MARKDOWN
    limits = Limits(max_bytes=18_000)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        at_all = self.options.get("at_all")
        try:
            self.at_all_from = Severity(at_all) if at_all else None
        except ValueError:
            known = ", ".join(severity.value for severity in Severity)
            raise ValueError(f"dingtalk:// at_all= must be one of {known}, got {at_all!r}") from None

    def request(self, title: str, body: str, severity: Severity) -> tuple[str, dict[str, str], dict]:
        params = {"access_token": self.token}
        if self.secret:
            timestamp = int(time.time() * 1000)
            params |= {"timestamp": str(timestamp), "sign": dingtalk_sign(self.secret, timestamp)}
        # The title carries the registry's company name: in the markdown text it is escaped like the body;
        # ``markdown.title`` is the plain-text preview and stays as it is.
        text = f"#### {escape_markdown(title)}\n\n{body}"
        payload: dict = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        if self.at_all_from is not None and severity >= self.at_all_from:
            # The robot message's "at" object (open.dingtalk.com "自定义机器人发送群消息"): isAtAll.
            payload["at"] = {"isAtAll": True}
        return self.api, params, payload

    def accepted(self, answer: dict) -> tuple[bool, str]:
        code = answer.get("errcode")
        return code == 0, f"errcode {code}: {answer.get('errmsg', '')}".strip()
