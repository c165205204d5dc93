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
    body: str


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def escape_markdown(text: str) -> str:
    """Registry text must not turn into links, emphasis or HTML in a channel that renders markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def _plain(text: str) -> str:
    return text.replace("\n", " ")


def _generic_subject(change: ChangeLine) -> bool:
    """Scalar fields carry their own name as subject; repeating it next to the label is noise."""
    return change.subject == change.category.value.replace("_", " ")


def change_line(change: ChangeLine, language: str, *, markdown: bool = True) -> str:
    """One change on one line, never split: category, action, who, old → new, effective date."""
    escape = escape_markdown if markdown else _plain
    none = _TEXT[language]["none"]
    label = f"{CATEGORY_LABEL[language][change.category]} {ACTION_LABEL[language][change.action]}"
    before = escape(change.before) if change.before else none
    after = escape(change.after) if change.after else none
    if change.action is Action.ADDED:
        detail = after
    elif change.action is Action.REMOVED:
        detail = before
    elif _generic_subject(change):
        detail = f"{before} → {after}"
    else:
        detail = f"{escape(change.subject)}: {before} → {after}"
    line = f"- {label}: {detail}"
    if change.effective_date:
        line += f" ({_TEXT[language]['effective']} {change.effective_date.isoformat()})"
    return line


def render_alert(view: AlertView, language: str, *, markdown: bool = True) -> RenderedAlert:
    """Title and body; ``markdown=False`` gives plain text for terminals and text-only channels."""
    escape = escape_markdown if markdown else _plain
    text = _TEXT[language]
    severity = SEVERITY_LABEL[language][view.severity]
    title_key = "title" if view.changes else "title_mismatch"
    title = text[title_key].format(severity=severity, name=view.borrower_name, borrower_id=view.borrower_id)
    lines = [change_line(change, language, markdown=markdown) for change in view.changes]
    if view.signatory_mismatch:
        lines.append(text["mismatch"].format(registry=escape(view.signatory_mismatch),
                                             on_file=escape(view.legal_rep_on_file or "")))
    if view.occasions_in_window:
        lines.append(text["window"].format(days=view.window_days, count=view.occasions_in_window))
    if view.recommend_early_repayment:
        lines.append(f"**{text['action_high']}**" if markdown else text["action_high"])
    detected = view.detected_at.strftime("%Y-%m-%d %H:%M UTC")
    lines.append(text["footer"].format(source=escape(view.source), detected=detected))
    return RenderedAlert(title=title, body="\n".join(lines))
