"""Alert text in zh-CN and en. Pure: takes a view of the alert, returns title and body.

Registry text is untrusted: it is escaped for the markdown the IM channels render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from watcher.record import Action, Category
from watcher.rules import Severity

LANGUAGES = ("zh-CN", "en")

SEVERITY_LABEL = {
    "zh-CN": {
        Severity.INFO: "提示",
        Severity.WARNING: "警示",
        Severity.HIGH: "高风险",
        Severity.CRITICAL: "严重",
    },
    "en": {
        Severity.INFO: "Info",
        Severity.WARNING: "Warning",
        Severity.HIGH: "High risk",
        Severity.CRITICAL: "Critical",
    },
}

CATEGORY_LABEL = {
    "zh-CN": {
        Category.LEGAL_REPRESENTATIVE: "法定代表人",
        Category.SHAREHOLDER: "股东",
        Category.DIRECTOR: "董事",
        Category.SUPERVISOR: "监事",
        Category.MANAGER: "高级管理人员",
        Category.FINANCE_HEAD: "财务负责人",
        Category.CONTROLLER: "实际控制人",
        Category.NAME: "企业名称",
        Category.STATUS: "登记状态",
        Category.REGISTERED_CAPITAL: "注册资本",
        Category.ADDRESS: "住所",
    },
    "en": {
        Category.LEGAL_REPRESENTATIVE: "Legal representative",
        Category.SHAREHOLDER: "Shareholder",
        Category.DIRECTOR: "Director",
        Category.SUPERVISOR: "Supervisor",
        Category.MANAGER: "Manager",
        Category.FINANCE_HEAD: "Finance head",
        Category.CONTROLLER: "Controller",
        Category.NAME: "Name",
        Category.STATUS: "Status",
        Category.REGISTERED_CAPITAL: "Registered capital",
        Category.ADDRESS: "Address",
    },
}

ACTION_LABEL = {
    "zh-CN": {Action.ADDED: "新增", Action.REMOVED: "退出", Action.CHANGED: "变更"},
    "en": {Action.ADDED: "added", Action.REMOVED: "removed", Action.CHANGED: "changed"},
}

_TEXT = {
    "zh-CN": {
        "title": "【{severity}】{name}（{borrower_id}）登记信息变更",
        "title_mismatch": "【{severity}】{name}（{borrower_id}）预留签字人未更新",
        "effective": "生效日期",
        "window": "近 {days} 天内关键人员变更 {count} 次",
        "action_high": "建议：立即发起风险预警，并考虑提前收回贷款（提前收回）。",
        "mismatch": "登记的法定代表人为 {registry}，与我行预留签字人 {on_file} 不一致：预留签字人未更新。",
        "footer": "来源：{source}　检测时间：{detected}",
        "none": "（无）",
    },
    "en": {
        "title": "[{severity}] {name} ({borrower_id}): registry record changed",
        "title_mismatch": "[{severity}] {name} ({borrower_id}): signatory on file not updated",
        "effective": "effective",
        "window": "{count} key-person change(s) in the last {days} days",
        "action_high": "Recommended action: raise a risk warning and consider calling the loan early.",
        "mismatch": "The registry's legal representative is {registry}, not the signatory on file "
        "({on_file}): signatory on file not updated.",
        "footer": "Source: {source} · detected {detected}",
        "none": "(none)",
    },
}


@dataclass(frozen=True, slots=True)
class ChangeLine:
    category: Category
    action: Action
    subject: str
    before: str | None
    after: str | None
    effective_date: date | None


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: int | None
    borrower_id: str
    borrower_name: str
    severity: Severity
    source: str
    detected_at: datetime
    changes: tuple[ChangeLine, ...]
    occasions_in_window: int
    window_days: int
    recommend_early_repayment: bool
    signatory_mismatch: str | None = None
    legal_rep_on_file: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedAlert:
    title: str
    body: str  # markdown, registry text escaped


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def escape_markdown(text: str) -> str:
    """Registry text must not turn into links, emphasis or HTML in a channel that renders markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def change_line(change: ChangeLine, language: str) -> str:
    """One change, never split: category, subject, old → new, effective date."""
    none = _TEXT[language]["none"]
    category = CATEGORY_LABEL[language][change.category]
    action = ACTION_LABEL[language][change.action]
    before = escape_markdown(change.before) if change.before else none
    after = escape_markdown(change.after) if change.after else none
    line = f"- {category} {action}: {escape_markdown(change.subject)}: {before} → {after}"
    if change.effective_date:
        line += f" ({_TEXT[language]['effective']} {change.effective_date.isoformat()})"
    return line


def render_alert(view: AlertView, language: str) -> RenderedAlert:
    text = _TEXT[language]
    severity = SEVERITY_LABEL[language][view.severity]
    title_key = "title" if view.changes else "title_mismatch"
    title = text[title_key].format(severity=severity, name=view.borrower_name, borrower_id=view.borrower_id)
    lines = [change_line(change, language) for change in view.changes]
    if view.signatory_mismatch:
        lines.append(
            text["mismatch"].format(
                registry=escape_markdown(view.signatory_mismatch),
                on_file=escape_markdown(view.legal_rep_on_file or ""),
            )
        )
    if view.occasions_in_window:
        lines.append(text["window"].format(days=view.window_days, count=view.occasions_in_window))
    if view.recommend_early_repayment:
        lines.append(f"**{text['action_high']}**")
    detected = view.detected_at.strftime("%Y-%m-%d %H:%M UTC")
    lines.append(text["footer"].format(source=escape_markdown(view.source), detected=detected))
    return RenderedAlert(title=title, body="\n".join(lines))
