"""WeCom group robots (企业微信群机器人): ``wecombot://key``.

WeCom answers HTTP 200 with ``errcode`` ≠ 0 on rejection, which apprise reports as sent. Its
markdown content is limited to 4096 bytes of UTF-8 (not characters), title included. The title's
colour follows the alert's severity.
"""

from __future__ import annotations

from notifiers import register
from notifiers.webhook import WebhookSender
from watcher.render import BodyFormat, Limits, escape_markdown
from watcher.vocabulary import Severity

MAX_CONTENT_BYTES = 4096
TITLE_RESERVE_BYTES = 400
# WeCom's markdown has three colours, <font color="info|comment|warning"> (green, grey, orange-red;
# developer.work.weixin.qq.com "群机器人配置说明", markdown类型): high and critical alerts in
# orange-red, info in grey, warnings as plain bold text.
TITLE_COLOURS = {Severity.INFO: "comment", Severity.HIGH: "warning", Severity.CRITICAL: "warning"}


@register("wecombot")
class WeComSender(WebhookSender):
    default_api = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    body_format = BodyFormat.MARKDOWN
    limits = Limits(max_bytes=MAX_CONTENT_BYTES - TITLE_RESERVE_BYTES)

    def request(self, title: str, body: str, severity: Severity) -> tuple[str, dict[str, str], dict]:
        content = markdown_content(title, body, TITLE_COLOURS.get(severity))
        return self.api, {"key": self.token}, {"msgtype": "markdown", "markdown": {"content": content}}

    def accepted(self, answer: dict) -> tuple[bool, str]:
        code = answer.get("errcode")
        return code == 0, f"errcode {code}: {answer.get('errmsg', '')}".strip()


def markdown_content(title: str, body: str, colour: str | None = None) -> str:
    """Bold title (in ``colour``, one of WeCom's three) over the body, within 4096 bytes.

    The title carries the registry's company name, so it is escaped like the body; a name too long
    for the title's reserve is cut (with "…") rather than have WeCom reject the whole message.
    """
    opening, closing = (f'<font color="{colour}">', "</font>") if colour else ("", "")
    title = escape_markdown(title)
    budget = MAX_CONTENT_BYTES - len(f"{opening}****{closing}\n{body}".encode())
    if len(title.encode()) > budget:
        while title and len(f"{title}…".encode()) > budget:
            title = title[:-1]
        title = f"{title}…" if title else ""
    return f"{opening}**{title}**{closing}\n{body}" if title else body
