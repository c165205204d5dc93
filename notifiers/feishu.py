"""Feishu (飞书) and Lark custom bots: ``feishu://[secret@]token/``, ``lark://[secret@]token/``.

Our own sender because apprise cannot sign (签名校验): with a secret, the body carries the
timestamp (seconds) and ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg="")).
The card's header colour (``header.template``) follows the alert's severity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from notifiers import register
from notifiers.webhook import WebhookSender
from watcher.render import BodyFormat, Limits
from watcher.vocabulary import Severity

# The message card's header colour (``header.template``: blue, wathet, turquoise, green, yellow,
# orange, red, carmine, violet, purple, indigo, grey; open.larksuite.com "message-card / card-header").
HEADER_TEMPLATES = {
    Severity.INFO: "blue",
    Severity.WARNING: "yellow",
    Severity.HIGH: "orange",
    Severity.CRITICAL: "red",
}


def feishu_sign(secret: str, timestamp: int) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@register("feishu", "lark")
class FeishuSender(WebhookSender):
    body_format = BodyFormat.MARKDOWN
    limits = Limits(max_bytes=18_000)

    @property
    def default_api(self) -> str:  # type: ignore[override]
        host = "open.larksuite.com" if self.scheme == "lark" else "open.feishu.cn"
        return f"https://{host}/open-apis/bot/v2/hook/{self.token}"

    def request(self, title: str, body: str, severity: Severity) -> tuple[str, dict[str, str], dict]:
        payload: dict = {
            "msg_type": "interactive",
            "card": {
                "header": {
                    "title": {"tag": "plain_text", "content": title},
                    "template": HEADER_TEMPLATES[severity],
                },
                "elements": [{"tag": "markdown", "content": body}],
            },
        }
        if self.secret:
            timestamp = int(time.time())
            payload = {"timestamp": str(timestamp), "sign": feishu_sign(self.secret, timestamp), **payload}
        return self.api, {}, payload

    def accepted(self, answer: dict) -> tuple[bool, str]:
        code = answer.get("code", answer.get("StatusCode"))
        return code == 0, f"code {code}: {answer.get('msg', answer.get('StatusMessage', ''))}".strip()
