"""WeCom group robots (企业微信群机器人): ``wecombot://key``.

WeCom answers HTTP 200 with ``errcode`` ≠ 0 on rejection, which apprise reports as sent. Its
markdown content is limited to 4096 bytes of UTF-8 (not characters), title included.
"""

from __future__ import annotations

from notifiers import register
from notifiers.webhook import WebhookSender
from watcher.render import BodyFormat, Limits

TITLE_RESERVE_BYTES = 400


@register("wecombot")
class WeComSender(WebhookSender):
    default_api = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    body_format = BodyFormat.MARKDOWN
    limits = Limits(max_bytes=4096 - TITLE_RESERVE_BYTES)

    def request(self, title: str, body: str) -> tuple[str, dict[str, str], dict]:
        content = f"**{title}**\n{body}"
        return self.api, {"key": self.token}, {"msgtype": "markdown", "markdown": {"content": content}}

    def accepted(self, answer: dict) -> tuple[bool, str]:
        code = answer.get("errcode")
        return code == 0, f"errcode {code}: {answer.get('errmsg', '')}".strip()
