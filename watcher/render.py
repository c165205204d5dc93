"""Alert text in zh-CN and en, as plain text, markdown or HTML, fitted to a channel's length limit.

Pure: takes a view of the alert, returns title and body. Registry text is untrusted: it is escaped
for HTML email and neutralised for markdown IM, so a company name can never become a link, an
image, a heading or emphasis. A change is never cut in half: when an alert is too long for a
channel, whole changes are left out and the message says how many and where to find them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum

from watcher.change_line import ChangeLine
from watcher.connected import hide_other, read_link
from watcher.labels import (
    ACTION_LABEL,
    CATEGORY_LABEL,
    COMPANY_STATUS_LABEL,
    LISTING_ACTION_LABEL,
    PARTY_LABEL,
    ROLE_LABEL,
    signatory_text,
)
from watcher.presentation import change_text, display_lines
from watcher.record import Category
from watcher.risk_lines import CONNECTED
from watcher.units import format_moment
from watcher.vocabulary import AlertKind, Language, PartyRole, Severity

__all__ = [
    "ACTION_LABEL",
    "CATEGORY_LABEL",
    "COMPANY_STATUS_LABEL",
    "LANGUAGES",
    "LISTING_ACTION_LABEL",
    "PARTY_LABEL",
    "PARTY_ROLE_LABEL",
    "ROLE_LABEL",
    "SEVERITY_LABEL",
    "AlertView",
    "BodyFormat",
    "ChangeLine",
    "GapLine",
    "Limits",
    "RenderedAlert",
    "SecuredBorrower",
    "alert_lines",
    "change_line",
    "escape_markdown",
    "party_heading",
    "render_alert",
    "render_digest",
    "render_test_message",
]

LANGUAGES = tuple(Language)

SEVERITY_LABEL = {
    Language.ZH_CN: {
        Severity.INFO: "提示",
        Severity.WARNING: "警示",
        Severity.HIGH: "高风险",
        Severity.CRITICAL: "严重",
    },
    Language.EN: {
        Severity.INFO: "Info",
        Severity.WARNING: "Warning",
        Severity.HIGH: "High risk",
        Severity.CRITICAL: "Critical",
    },
}

_TEXT = {
    Language.ZH_CN: {
        "title": "【{severity}】{party}登记信息变更",
        "title_mismatch": "【{severity}】{party}预留签字人未更新",
        "title_connected_risk": "【{severity}】{party}：关联风险提示",
        "title_connected_party": "【{severity}】{party}：关联关系提示",
        "window": "近 {days} 天内关键人员变更 {count} 次",
        "title_onboarding": "【{severity}】{party}纳入监控时已存在风险信息",
        "action_high": "建议：立即发起风险预警，并考虑提前收回贷款、申请财产保全。",
        "mismatch": "{mismatch}：预留签字人未更新，请核实。",
        "footer": "来源：{source}　检测时间：{detected}　预警编号 {alert_id}",
        "more": "另有 {count} 项变更未列出，完整内容见变更历史（{command}）。",
        "digest_title": "【汇总】{day} 共 {count} 条提示/警示",
        "digest_line": "【{severity}】{party}：{count} 项变更（{categories}）",
        "digest_more": "另有 {count} 条未列出，见 watcher alerts。",
        "test_title": "【测试】Borrower Watcher 通知测试",
        "test_body": "这是一条测试消息：目标 {target} 可以收到 Borrower Watcher 的预警。",
        AlertKind.MONITORING_GAP: "监控中断",
        AlertKind.MONITORING_RESTORED: "监控恢复",
        "title_kind": "【{severity}】{party}{kind}",
        "title_kind_source": "【{severity}】来源 {source}：{count} 家借款人{kind}",
        "gap_line": "{name}（{borrower_id}）：自 {since} 起检查全部失败（最近错误：{error_kind}）",
        "restored_line": "{name}（{borrower_id}）：检查已恢复正常",
        "gap_note": "监控中断期间无法发现登记信息的变更：请人工核查，或联系运维处理数据源故障。",
        "gap_hidden": "另有 {count} 家借款人（其他客户经理负责）。",
        "title_feed": "【{severity}】来源 {source}：变更订阅 {feed}：{kind}",
        "feed_gap_line": "变更订阅 {feed} 自 {since} 起无法继续读取（{error}）。",
        "feed_gap_note": "该来源的全部借款人已改为按常规检查间隔全量轮询，直至订阅恢复；"
        "期间发现变更可能延迟。",
        "feed_restored_line": "变更订阅 {feed} 已恢复读取（中断自 {since} 起）；该来源恢复按订阅检查。",
        "borrower_party": "{name}（{borrower_id}）",
        "securing_party": "{role} {name}（{secured}）",
        "secured_named": "为借款人 {names} {verb}",
        "secured_named_plural": "为借款人 {names} {verb}",
        "secured_more": "为借款人 {names} 等 {count} 家{verb}",
        "secured_count": "为 {count} 家借款人{verb}",
        "name_separator": "、",
        "secured_note": "{role}编号 {party_id}；借款人：{borrowers}",
        "also_secures": "同时{secured}",
        "borrower_secured_note": "借款人编号 {party_id}；其担保的借款人：{borrowers}",
        "secured_item": "{name}（{borrower_id}）",
        "secured_others": "另有 {count} 家（其他客户经理负责）",
        "secured_others_only": "另有 {count} 家（其他客户经理负责）",
    },
    Language.EN: {
        "title": "[{severity}] {party}: registry record changed",
        "title_mismatch": "[{severity}] {party}: signatory on file not updated",
        "title_connected_risk": "[{severity}] {party}: connected risk",
        "title_connected_party": "[{severity}] {party}: connected party",
        "window": "{count} key-person change(s) in the last {days} days",
        "title_onboarding": "[{severity}] {party}: risk listings active at onboarding",
        "action_high": "Recommended action: raise a risk warning and consider calling the loan early "
        "and applying for asset preservation.",
        "mismatch": "{mismatch}: signatory on file not updated; please check.",
        "footer": "Source: {source} · detected {detected} · alert ID {alert_id}",
        "more": "{count} more change(s) not shown; see the change history ({command}).",
        "digest_title": "[Digest] {day}: {count} info/warning alert(s)",
        "digest_line": "[{severity}] {party}: {count} change(s) ({categories})",
        "digest_more": "{count} more not shown; see watcher alerts.",
        "test_title": "[Test] Borrower Watcher notification test",
        "test_body": "This is a test message: target {target} can receive Borrower Watcher alerts.",
        AlertKind.MONITORING_GAP: "monitoring gap",
        AlertKind.MONITORING_RESTORED: "monitoring restored",
        "title_kind": "[{severity}] {party}: {kind}",
        "title_kind_source": "[{severity}] source {source}: {kind} for {count} borrower(s)",
        "gap_line": "{name} ({borrower_id}): every check has failed since {since} (last error: {error_kind})",
        "restored_line": "{name} ({borrower_id}): checks succeed again",
        "gap_note": "Registry changes cannot be detected during a monitoring gap: check the borrower "
        "manually, or ask operations to repair the source.",
        "gap_hidden": "{count} more borrower(s) of other officers.",
        "title_feed": "[{severity}] source {source}: change feed {feed}: {kind}",
        "feed_gap_line": "The change feed {feed} cannot be read since {since} ({error}).",
        "feed_gap_note": "Every borrower of this source is polled in full at the normal interval until the "
        "feed is back; changes may be seen later meanwhile.",
        "feed_restored_line": "The change feed {feed} is read again (gap since {since}); the source follows "
        "it again.",
        "borrower_party": "{name} ({borrower_id})",
        "securing_party": "{role} {name} ({secured})",
        "secured_named": "{verb} borrower {names}",
        "secured_named_plural": "{verb} borrowers {names}",
        "secured_more": "{verb} borrowers {names} and {count} more",
        "secured_count": "{verb} {count} borrower(s)",
        "name_separator": ", ",
        "secured_note": "{role} ID {party_id}; borrower(s): {borrowers}",
        "also_secures": "also {secured}",
        "borrower_secured_note": "Borrower ID {party_id}; guarantees borrower(s): {borrowers}",
        "secured_item": "{name} ({borrower_id})",
        "secured_others": "and {count} more (other officers')",
        "secured_others_only": "{count} (other officers')",
    },
}


@dataclass(frozen=True, slots=True)
class GapLine:
    """One borrower of a monitoring-gap or recovery alert."""

    borrower_id: str
    name: str
    officer: str | None
    since: datetime | None
    error_kind: str | None
    readers: tuple[str, ...] = ()  # for a guarantor or pledgor: the officers of the borrowers it secures


PARTY_ROLE_LABEL = {
    Language.ZH_CN: {
        PartyRole.BORROWER: "借款人",
        PartyRole.GUARANTOR: "保证人",
        PartyRole.PLEDGOR: "出质人",
    },
    Language.EN: {
        PartyRole.BORROWER: "Borrower",
        PartyRole.GUARANTOR: "Guarantor",
        PartyRole.PLEDGOR: "Pledgor",
    },
}
_SECURES_VERB = {
    Language.ZH_CN: {
        PartyRole.GUARANTOR: "提供担保",
        PartyRole.PLEDGOR: "提供质押担保",
        PartyRole.BORROWER: "提供担保",  # a borrower guaranteeing other borrowers (互保)
    },
    Language.EN: {
        PartyRole.GUARANTOR: "guarantees",
        PartyRole.PLEDGOR: "secures",
        PartyRole.BORROWER: "guarantees",
    },
}
NAMED_SECURED_AT_MOST = 3
"""A title names this many secured borrowers at most, then says how many more."""


@dataclass(frozen=True, slots=True)
class SecuredBorrower:
    """A borrower whose loan the alert's guarantor or pledgor secures, as it was when the alert was raised."""

    borrower_id: str
    name: str
    officer: str | None


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
    kind: AlertKind = AlertKind.CHANGE  # a monitoring gap or its recovery: ``gap`` lists the borrowers
    gap: tuple[GapLine, ...] = ()
    gap_hidden: int = 0  # borrowers left out of ``gap`` for an officer who does not handle them
    source_names: tuple[tuple[Language, str], ...] = ()  # the source's display name per language
    # A source's change feed that fell back to polling (or follows again): its name, since, error.
    feed: str = ""
    feed_since: datetime | None = None
    feed_error: str = ""

    def source_name(self, language: Language) -> str:
        """The source as people read it (its display name), else its config key."""
        return dict(self.source_names).get(language, self.source)

    party_role: PartyRole = PartyRole.BORROWER  # a guarantor or pledgor names the borrowers it secures
    secures: tuple[SecuredBorrower, ...] = ()  # a borrower's too, when it guarantees other borrowers
    secures_hidden: int = 0  # secured borrowers of other officers, left out of ``secures``
    # The other parties its connected-party/-risk lines name, each with the officers who may see it
    # (its own, and those of the borrowers it secures): the console's scope.
    other_readers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def securing(self) -> bool:
        """The party is named with the borrowers it secures: a guarantor or pledgor always, a borrower
        when it guarantees other borrowers (互保)."""
        return self.party_role.secures or bool(self.secures) or self.secures_hidden > 0

    def for_officer(self, officer: str) -> AlertView:
        """What one officer may read: a gap alert about a whole source lists only their parties, a
        guarantor's alert names only their borrowers among those it secures, and a connected line
        names its other party only when the officer may see it (the person linking them stays)."""
        view = self._connected_for(officer)
        if self.secures:
            mine = tuple(secured for secured in self.secures if secured.officer == officer)
            view = replace(
                view, secures=mine, secures_hidden=self.secures_hidden + len(self.secures) - len(mine)
            )
        if not self.gap:
            return view
        own = tuple(line for line in self.gap if line.officer == officer or officer in line.readers)
        return replace(view, gap=own, gap_hidden=self.gap_hidden + len(self.gap) - len(own))

    def _connected_for(self, officer: str) -> AlertView:
        """The console's scope in a pushed message: another officer's party is not named to this one."""
        readers = dict(self.other_readers)
        changes = tuple(
            replace(change, after=hide_other(change.before, change.after))
            if change.category in CONNECTED and not _may_see(change, officer, readers)
            else change
            for change in self.changes
        )
        return self if changes == self.changes else replace(self, changes=changes)


def _may_see(change: ChangeLine, officer: str, readers: dict[str, tuple[str, ...]]) -> bool:
    link = read_link(change.before, change.after)
    return link is None or not link.other or officer in readers.get(link.other, ())


class BodyFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class Limits:
    """A channel's body limit; either may be None. WeCom counts bytes, most others characters."""

    max_chars: int | None = None
    max_bytes: int | None = None

    def fits(self, text: str) -> bool:
        if self.max_chars is not None and len(text) > self.max_chars:
            return False
        return self.max_bytes is None or len(text.encode("utf-8")) <= self.max_bytes


NO_LIMIT = Limits()


@dataclass(frozen=True, slots=True)
class RenderedAlert:
    title: str
    body: str


# Markdown syntax characters become their full-width forms: readable in Chinese and English text,
# and inert in every IM renderer, whether or not it honours backslash escapes.
_MARKDOWN_NEUTRAL = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "|": "｜",
        "~": "～",
        "!": "！",
        "\\": "＼",
    }
)


def escape_markdown(text: str) -> str:
    """Registry text must not turn into links, images, emphasis, headings or HTML in IM markdown."""
    return " ".join(text.split()).translate(_MARKDOWN_NEUTRAL)


def _escaper(fmt: BodyFormat):
    if fmt is BodyFormat.MARKDOWN:
        return escape_markdown
    if fmt is BodyFormat.HTML:
        return lambda text: html.escape(" ".join(text.split()), quote=True)
    return lambda text: " ".join(text.split())


def party_heading(view: AlertView, language: Language, escape: Callable[[str], str] | None = None) -> str:
    """Who an alert is about, as its title names them: a borrower by name and id; a guarantor or
    pledgor by its role, name and the borrowers it secures ("保证人 X（为借款人 Y 提供担保）",
    "Guarantor X (guarantees borrower Y)"), a borrower guaranteeing others by both relations
    ("借款人 X（同时为借款人 Y 提供担保）"): for an officer, their own borrowers among them, or how
    many it secures when they handle none."""
    escape = escape or (lambda text: " ".join(text.split()))
    text = _TEXT[language]
    name = escape(view.borrower_name)
    if not view.securing:
        return text["borrower_party"].format(name=name, borrower_id=escape(view.borrower_id))
    verb = _SECURES_VERB[language][view.party_role]
    names = [escape(secured.name) for secured in view.secures]
    total = len(names) + view.secures_hidden
    separator = text["name_separator"]
    if not names:
        secured = text["secured_count"].format(verb=verb, count=total)
    elif len(names) > NAMED_SECURED_AT_MOST:
        shown = names[:NAMED_SECURED_AT_MOST]
        secured = text["secured_more"].format(
            verb=verb, names=separator.join(shown), count=len(names) - len(shown)
        )
    else:
        key = "secured_named" if len(names) == 1 else "secured_named_plural"
        secured = text[key].format(verb=verb, names=separator.join(names))
    if not view.party_role.secures:
        secured = text["also_secures"].format(secured=secured)
    role = PARTY_ROLE_LABEL[language][view.party_role]
    return text["securing_party"].format(role=role, name=name, secured=secured)


def _secured_note(view: AlertView, language: Language, escape: Callable[[str], str]) -> list[str]:
    """The ids behind a securing party's title: its own, and each secured borrower's it names."""
    if not view.securing:
        return []
    text = _TEXT[language]
    items = [
        text["secured_item"].format(name=escape(secured.name), borrower_id=escape(secured.borrower_id))
        for secured in view.secures
    ]
    if view.secures_hidden:  # the guarantor's own officer may hold none of the borrowers it secures
        others = "secured_others" if items else "secured_others_only"
        items.append(text[others].format(count=view.secures_hidden))
    key = "secured_note" if view.party_role.secures else "borrower_secured_note"
    return [
        text[key].format(
            role=PARTY_ROLE_LABEL[language][view.party_role],
            party_id=escape(view.borrower_id),
            borrowers=text["name_separator"].join(items) or "–",
        )
    ]


def change_line(change: ChangeLine, language: Language, fmt: BodyFormat = BodyFormat.TEXT) -> str:
    """One atomic change as one unit, never split (see :mod:`watcher.presentation`)."""
    return change_text(change, language, _escaper(fmt))


def alert_lines(
    changes: Sequence[ChangeLine], language: Language, fmt: BodyFormat = BodyFormat.TEXT
) -> list[str]:
    """The lines an alert shows for its changes: one person's changes at one occasion are one line."""
    return [line.text for line in display_lines(changes, language, _escaper(fmt))]


def _assemble(
    fmt: BodyFormat,
    items: Sequence[str],
    notes: Sequence[str],
    emphasis: Sequence[str],
    footer: Sequence[str],
) -> str:
    """List items, notes, emphasised notes (bold where the format has bold), then the footer."""
    if fmt is BodyFormat.HTML:
        parts = ["<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"] if items else []
        parts += [f"<p>{note}</p>" for note in notes]
        parts += [f"<p><strong>{note}</strong></p>" for note in emphasis]
        parts += [f"<p><small>{note}</small></p>" for note in footer]
        return "\n".join(parts)
    lines = [f"- {item}" for item in items]
    lines += list(notes)
    lines += [f"**{note}**" if fmt is BodyFormat.MARKDOWN else note for note in emphasis]
    lines += list(footer)
    return "\n".join(lines)


def _fit(
    fmt: BodyFormat,
    limits: Limits,
    items: Sequence[str],
    notes: Sequence[str],
    emphasis: Sequence[str],
    footer: Sequence[str],
    more: Callable[[int], str],
) -> str:
    """All items if they fit; else as many whole items as fit, and a line saying how many are left out."""

    def build(shown: int) -> str:
        extra = [more(len(items) - shown)] if shown < len(items) else []
        return _assemble(fmt, items[:shown], [*extra, *notes], emphasis, footer)

    body = build(len(items))
    if limits.fits(body):
        return body
    low, high = 0, len(items)
    while low < high:  # the largest number of whole items that fits
        middle = (low + high + 1) // 2
        if limits.fits(build(middle)):
            low = middle
        else:
            high = middle - 1
    body = build(low)
    return body if limits.fits(body) else _truncate(body, limits)


def _shorten_to_fit(text: str, fits: Callable[[str], bool]) -> str:
    """The longest prefix of ``text`` plus "…" that ``fits`` accepts ("…" alone if none does).

    Never cuts inside an HTML character reference, so an escaped ``&lt;`` cannot become ``&l``.
    """
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(_cut(text, middle)):
            low = middle
        else:
            high = middle - 1
    return _cut(text, low)


def _cut(text: str, length: int) -> str:
    if length >= len(text):
        return text
    head = text[:length]
    ampersand = head.rfind("&")
    if ampersand != -1 and ";" not in head[ampersand:]:
        head = head[:ampersand]
    return head + "…"


def _truncate(text: str, limits: Limits) -> str:
    """Last resort for absurdly small limits: cut at a character boundary, never inside a UTF-8 sequence."""
    while text and not limits.fits(text + "…"):
        text = text[: max(0, len(text) - max(1, len(text) // 20))]
    return text + "…"


def _mismatch_note(
    view: AlertView, language: Language, fmt: BodyFormat, fits: Callable[[str], bool]
) -> list[str]:
    """The "signatory on file not updated" note, if any, its registry name shortened when needed.

    The note cannot be left out like a change, so a registry name so long that the note would push
    the recommendation and the footer past the channel's limit is cut (with "…") until ``fits``,
    which judges the body with this note and no change at all, accepts it.
    """
    if not view.signatory_mismatch:
        return []
    escape = _escaper(fmt)
    on_file = escape(view.legal_rep_on_file or "")

    def note(registry: str) -> str:
        return _TEXT[language]["mismatch"].format(
            mismatch=signatory_text(on_file, registry, language, escape=lambda text: text)
        )

    registry = escape(view.signatory_mismatch)
    if not fits(note(registry)):
        registry = _shorten_to_fit(registry, lambda shorter: fits(note(shorter)))
    return [note(registry)]


def _history_command(borrower_id: str, fmt: BodyFormat) -> str:
    """The command that shows the left-out changes, copyable as typed.

    In markdown it is a code span, where nothing is interpreted, rather than full-width escaped:
    ``cn_001`` must stay ``cn_001``, not become ``cn＿001``, or the command finds no borrower.
    """
    command = f"watcher history --borrower {' '.join(borrower_id.split())}"
    if fmt is BodyFormat.MARKDOWN:
        return f"`{command}`" if "`" not in command else escape_markdown(command)
    return _escaper(fmt)(command)


def _render_monitoring(
    view: AlertView, language: Language, fmt: BodyFormat, limits: Limits, zone: tzinfo
) -> RenderedAlert:
    """A monitoring gap or its recovery: which borrowers, since when, what failed; no change lines."""
    escape = _escaper(fmt)
    text = _TEXT[language]
    severity = SEVERITY_LABEL[language][view.severity]
    kind = text[view.kind]
    if view.feed:
        return _render_feed(view, language, fmt, limits, zone)
    if view.borrower_id:
        title = text["title_kind"].format(severity=severity, party=party_heading(view, language), kind=kind)
    else:
        count = len(view.gap) + view.gap_hidden
        title = text["title_kind_source"].format(
            severity=severity, source=view.source_name(language), count=count, kind=kind
        )
    line_key = "gap_line" if view.kind == AlertKind.MONITORING_GAP else "restored_line"
    items = [
        text[line_key].format(
            name=escape(line.name),
            borrower_id=escape(line.borrower_id),
            since=format_moment(line.since, zone) if line.since else "–",
            error_kind=line.error_kind or "–",  # our own vocabulary, not registry text
        )
        for line in view.gap
    ]
    notes = [text["gap_hidden"].format(count=view.gap_hidden)] if view.gap_hidden else []
    notes += _secured_note(view, language, escape) if view.borrower_id else []
    emphasis = [text["gap_note"]] if view.kind == AlertKind.MONITORING_GAP else []
    footer = [
        text["footer"].format(
            alert_id=view.alert_id or "–",
            source=escape(view.source_name(language)),
            detected=format_moment(view.detected_at, zone),
        )
    ]
    body = _fit(
        fmt, limits, items, notes, emphasis, footer, lambda count: text["digest_more"].format(count=count)
    )
    return RenderedAlert(title=title, body=body)


def _render_feed(
    view: AlertView, language: Language, fmt: BodyFormat, limits: Limits, zone: tzinfo
) -> RenderedAlert:
    """A source's change feed fell back to polling, or follows again: no borrower lines."""
    escape = _escaper(fmt)
    text = _TEXT[language]
    title = text["title_feed"].format(
        severity=SEVERITY_LABEL[language][view.severity],
        source=view.source_name(language),
        feed=view.feed,
        kind=text[view.kind],
    )
    since = format_moment(view.feed_since, zone) if view.feed_since else "–"
    gap = view.kind == AlertKind.MONITORING_GAP
    line = (text["feed_gap_line"] if gap else text["feed_restored_line"]).format(
        feed=escape(view.feed), since=since, error=escape(view.feed_error or "–")
    )
    emphasis = [text["feed_gap_note"]] if gap else []
    footer = [
        text["footer"].format(
            alert_id=view.alert_id or "–",
            source=escape(view.source_name(language)),
            detected=format_moment(view.detected_at, zone),
        )
    ]
    body = _fit(
        fmt, limits, [line], [], emphasis, footer, lambda count: text["digest_more"].format(count=count)
    )
    return RenderedAlert(title=title, body=body)


def render_alert(
    view: AlertView,
    language: Language,
    fmt: BodyFormat = BodyFormat.TEXT,
    limits: Limits = NO_LIMIT,
    *,
    zone: tzinfo = UTC,
) -> RenderedAlert:
    """Title and body of one alert in ``language`` and ``fmt``, within ``limits``; times in ``zone``
    (the reader's: an officer's own, else ``[watcher] timezone``), with their UTC offset."""
    if not view.kind.about_changes:
        return _render_monitoring(view, language, fmt, limits, zone)
    escape = _escaper(fmt)
    text = _TEXT[language]
    severity = SEVERITY_LABEL[language][view.severity]
    title_key = "title" if view.changes else "title_mismatch"
    if view.changes and all(change.category in CONNECTED for change in view.changes):
        # Nothing in the party's own record changed: the news is another party's.
        risk = any(change.category is Category.CONNECTED_RISK for change in view.changes)
        title_key = "title_connected_risk" if risk else "title_connected_party"
    if view.kind is AlertKind.ONBOARDING:
        title_key = "title_onboarding"
    title = text[title_key].format(severity=severity, party=party_heading(view, language))
    items = alert_lines(view.changes, language, fmt)
    window = (
        [text["window"].format(days=view.window_days, count=view.occasions_in_window)]
        if view.occasions_in_window
        else []
    )
    footer = [
        text["footer"].format(
            alert_id=view.alert_id or "–",
            source=escape(view.source_name(language)),
            detected=format_moment(view.detected_at, zone),
        )
    ]
    emphasis = [text["action_high"]] if view.recommend_early_repayment else []
    command = _history_command(view.borrower_id, fmt)

    def more(count: int) -> str:
        return text["more"].format(count=count, command=command)

    def fits_without_changes(note: str) -> bool:
        extra = [more(len(items))] if items else []
        secured = _secured_note(view, language, escape)
        return limits.fits(_assemble(fmt, [], [*extra, *secured, note, *window], emphasis, footer))

    notes = [
        *_secured_note(view, language, escape),
        *_mismatch_note(view, language, fmt, fits_without_changes),
        *window,
    ]
    body = _fit(fmt, limits, items, notes, emphasis, footer, more)
    return RenderedAlert(title=title, body=body)


def render_digest(
    views: Sequence[AlertView],
    language: Language,
    day: date,
    fmt: BodyFormat = BodyFormat.TEXT,
    limits: Limits = NO_LIMIT,
) -> RenderedAlert:
    """One message gathering lower-severity alerts of a day, one line per alert."""
    escape = _escaper(fmt)
    text = _TEXT[language]
    items = []
    for view in views:
        categories = sorted({CATEGORY_LABEL[language][change.category] for change in view.changes})
        if not view.kind.about_changes:
            categories = [text[view.kind]]
        items.append(
            text["digest_line"].format(
                severity=SEVERITY_LABEL[language][view.severity],
                party=party_heading(view, language, escape),
                count=len(display_lines(view.changes, language)),
                categories=", ".join(categories),
            )
        )
    title = text["digest_title"].format(day=day.isoformat(), count=len(views))
    body = _fit(fmt, limits, items, [], [], [], lambda count: text["digest_more"].format(count=count))
    return RenderedAlert(title=title, body=body)


def render_test_message(target: str, language: Language) -> RenderedAlert:
    text = _TEXT[language]
    return RenderedAlert(title=text["test_title"], body=text["test_body"].format(target=target))
