"""Alert rendering: what a loan officer reads, that registry text stays text, and channel length limits.

Registry text is untrusted (a company or person name can say anything), and IM channels cut or reject
long messages, so these tests check the contracts of ``watcher.render`` on real rendered output: HTML
is parsed with ``html.parser``; markdown is read line by line; limits are checked on the encoded body.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.record import Action, Category
from watcher.render import (
    AlertView,
    BodyFormat,
    ChangeLine,
    GapLine,
    Limits,
    alert_lines,
    render_alert,
    render_digest,
    render_test_message,
)
from watcher.rules import Severity
from watcher.vocabulary import AlertKind

DETECTED = datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
EVIL = "<script>alert(1)</script> [click](http://evil.example) ![img](x) **bold** # heading |table| `code`"
HTML_TEMPLATE_TAGS = {"ul", "li", "p", "strong", "small"}

SEVERITY_LABELS = {
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
# What each language must say, independent of the renderer's own tables.
EXPECTED = {
    "zh-CN": {
        "legal_rep": "法定代表人",
        "shareholder": "股东",
        "director": "董事",
        "status": "登记状态",
        "effective": "生效日期 2025-12-30",
        "window": "近 365 天内关键人员变更 3 次",
        "recommendation": "提前收回",
        "mismatch": "预留签字人未更新",
        "source": "来源：qcc",
        "alert": "预警编号 7",
        "detected": "检测时间：2026-03-09 14:30 +08:00",
    },
    "en": {
        "legal_rep": "Legal representative",
        "shareholder": "Shareholder",
        "director": "Director",
        "status": "Status",
        "effective": "effective 2025-12-30",
        "window": "3 key-person change(s) in the last 365 days",
        "recommendation": "calling the loan early",
        "mismatch": "signatory on file not updated",
        "source": "Source: qcc",
        "alert": "alert ID 7",
        "detected": "detected 2026-03-09 14:30 +08:00",
    },
}
MORE_COUNT = {
    "zh-CN": re.compile(r"另有 (\d+) 项变更未列出"),
    "en": re.compile(r"(\d+) more change\(s\) not shown"),
}


def several_changes() -> tuple[ChangeLine, ...]:
    return (
        ChangeLine(
            Category.LEGAL_REPRESENTATIVE,
            Action.CHANGED,
            "legal representative",
            "王建国",
            "李娜",
            date(2025, 12, 30),
        ),
        ChangeLine(
            Category.SHAREHOLDER, Action.ADDED, "深圳鼎盛投资有限公司", None, "深圳鼎盛投资有限公司 35%", None
        ),
        ChangeLine(Category.DIRECTOR, Action.REMOVED, "王建国", "王建国", None, None),
        ChangeLine(Category.STATUS, Action.CHANGED, "status", "存续", "吊销", None),
    )


def make_view(**overrides) -> AlertView:
    fields = {
        "alert_id": 7,
        "borrower_id": "cn-lanchao",
        "borrower_name": "杭州澜潮智能装备有限公司",
        "severity": Severity.HIGH,
        "source": "qcc",
        "detected_at": DETECTED,
        "changes": several_changes(),
        "occasions_in_window": 3,
        "window_days": 365,
        "recommend_early_repayment": True,
        "signatory_mismatch": None,
        "legal_rep_on_file": "王建国",
    }
    return AlertView(**(fields | overrides))


class _HtmlReader(HTMLParser):
    """Elements and text of an HTML body, the way a mail client's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.texts: list[str] = []
        self.items: list[str] = []
        self._in_item = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "li":
            self._in_item = True
            self.items.append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._in_item = False

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._in_item:
            self.items[-1] += data


def read_html(body: str) -> _HtmlReader:
    reader = _HtmlReader()
    reader.feed(body)
    reader.close()
    return reader


def collapsed(text: str) -> str:
    return " ".join(text.split())


# -- content ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("fmt", list(BodyFormat))
def test_alert_says_who_what_when_and_what_to_do(language: str, fmt: BodyFormat) -> None:
    """An officer acts on the message alone: severity, borrower, each change, window, advice, source."""
    view = make_view(signatory_mismatch="李娜")
    rendered = render_alert(view, language, fmt, zone=SHANGHAI)
    words = EXPECTED[language]
    text = (
        collapsed(html.unescape(" ".join(read_html(rendered.body).texts)))
        if fmt is BodyFormat.HTML
        else rendered.body
    )

    assert SEVERITY_LABELS[language][Severity.HIGH] in rendered.title
    assert "杭州澜潮智能装备有限公司" in rendered.title
    assert "cn-lanchao" in rendered.title
    assert f"{words['legal_rep']} " in text and "王建国 → 李娜" in text and words["effective"] in text
    assert words["shareholder"] in text and "深圳鼎盛投资有限公司" in text and "35%" in text
    assert "深圳鼎盛投资有限公司 深圳鼎盛投资有限公司" not in text, "the subject is never repeated"
    assert words["director"].casefold() in text.casefold()
    assert words["status"] in text and "存续 → 吊销" in text
    assert words["window"] in text
    assert words["recommendation"] in text
    assert words["mismatch"] in text
    assert words["source"] in text and words["detected"] in text
    assert words["alert"] in text  # the id officers need for `watcher alerts ack`
    for line in alert_lines(view.changes, language, fmt):  # each line is one line (or list item)
        if fmt is BodyFormat.HTML:
            assert f"<li>{line}</li>" in rendered.body
        else:
            assert f"- {line}" in rendered.body.splitlines()


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("severity", list(Severity))
def test_title_names_the_severity(language: str, severity: Severity) -> None:
    view = make_view(severity=severity, recommend_early_repayment=severity is Severity.HIGH)
    assert SEVERITY_LABELS[language][severity] in render_alert(view, language).title


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_no_recommendation_and_no_window_line_unless_the_rules_said_so(language: str) -> None:
    view = make_view(severity=Severity.WARNING, recommend_early_repayment=False, occasions_in_window=0)
    body = render_alert(view, language, BodyFormat.MARKDOWN).body
    assert EXPECTED[language]["recommendation"] not in body
    assert ("关键人员变更" if language == "zh-CN" else "key-person change") not in body
    assert "**" not in body
    assert EXPECTED[language]["mismatch"] not in body


@pytest.mark.parametrize(
    ("language", "headline"), [("zh-CN", "预留签字人未更新"), ("en", "signatory on file not updated")]
)
def test_signatory_mismatch_alone_has_its_own_title(language: str, headline: str) -> None:
    view = make_view(
        severity=Severity.WARNING,
        changes=(),
        occasions_in_window=0,
        recommend_early_repayment=False,
        signatory_mismatch="李娜",
    )
    rendered = render_alert(view, language)
    assert headline in rendered.title
    assert "李娜" in rendered.body and "王建国" in rendered.body


def test_detection_time_is_shown_in_the_readers_zone_with_its_offset() -> None:
    """Issue 14: "检测时间：2026-12-06 01:41 UTC" for a bank in Shanghai; times read in the reader's zone."""
    shanghai_fixed = timezone(timedelta(hours=8))
    view = make_view(detected_at=datetime(2026, 12, 6, 9, 41, tzinfo=shanghai_fixed))
    naive_utc = make_view(detected_at=datetime(2026, 12, 6, 1, 41))  # as SQLite gives it back
    for shown in (view, naive_utc):
        assert "检测时间：2026-12-06 09:41 +08:00" in render_alert(shown, "zh-CN", zone=SHANGHAI).body
        assert "detected 2026-12-06 09:41 +08:00" in render_alert(shown, "en", zone=SHANGHAI).body
        oslo = render_alert(shown, "en", BodyFormat.HTML, zone=ZoneInfo("Europe/Oslo")).body
        assert "detected 2026-12-06 02:41 +01:00" in oslo  # winter: CET
        assert "detected 2026-12-06 01:41 +00:00" in render_alert(shown, "en").body  # UTC by default
    summer = make_view(detected_at=datetime(2026, 7, 1, 1, 41, tzinfo=UTC))
    oslo_summer = render_alert(summer, "zh-CN", BodyFormat.MARKDOWN, zone=ZoneInfo("Europe/Oslo")).body
    assert "检测时间：2026-07-01 03:41 +02:00" in oslo_summer  # CEST


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_monitoring_gap_times_are_in_the_readers_zone(language: str) -> None:
    since = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
    gap = replace(
        make_view(changes=(), occasions_in_window=0, recommend_early_repayment=False),
        kind=AlertKind.MONITORING_GAP,
        gap=(GapLine("no1", "FJORDLYS SJØMAT AS", "kari", since, "transient"),),
    )
    body = render_alert(gap, language, zone=SHANGHAI).body
    assert "2026-12-06 02:00 +08:00" in body  # since when every check failed
    assert "2026-03-09 14:30 +08:00" in body  # detected
    assert "UTC" not in body


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(["Asia/Shanghai", "Europe/Oslo", "America/St_Johns", "Asia/Kathmandu", "UTC"]),
)
def test_a_shown_time_reads_back_as_the_same_instant(moment: datetime, zone_name: str) -> None:
    """What an alert says is the instant detected, to the minute, wherever the reader's zone is."""
    view = make_view(detected_at=moment)
    body = render_alert(view, "en", zone=ZoneInfo(zone_name)).body
    match = re.search(r"detected (\d{4}-\d\d-\d\d \d\d:\d\d) ([+-])(\d\d):(\d\d) ", body)
    assert match is not None, body
    local = datetime.strptime(match[1], "%Y-%m-%d %H:%M")
    offset = timedelta(hours=int(match[3]), minutes=int(match[4])) * (-1 if match[2] == "-" else 1)
    assert local.replace(tzinfo=timezone(offset)) == moment.replace(second=0, microsecond=0)


# -- untrusted registry text -------------------------------------------------------------------------


def evil_view() -> AlertView:
    return make_view(
        borrower_name=f"澜潮 {EVIL}",
        changes=(
            ChangeLine(
                Category.LEGAL_REPRESENTATIVE, Action.CHANGED, "legal representative", "王建国", EVIL, None
            ),
            ChangeLine(Category.SHAREHOLDER, Action.ADDED, EVIL, None, f"{EVIL} 35%", None),
            ChangeLine(Category.DIRECTOR, Action.CHANGED, EVIL, f"# {EVIL}", f"> {EVIL}", date(2026, 1, 5)),
        ),
        recommend_early_repayment=False,
        signatory_mismatch=EVIL,
    )


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_html_body_shows_registry_markup_as_text(language: str) -> None:
    body = render_alert(evil_view(), language, BodyFormat.HTML).body
    reader = read_html(body)
    assert set(reader.tags) <= HTML_TEMPLATE_TAGS, reader.tags
    assert not {"script", "a", "img"} & set(reader.tags)
    text = "".join(reader.texts)
    assert "<script>alert(1)</script>" in text
    assert "[click](http://evil.example)" in text and "![img](x)" in text
    assert "**bold**" in text and "|table|" in text and "`code`" in text


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_markdown_body_has_no_link_image_emphasis_heading_or_html(language: str) -> None:
    body = render_alert(evil_view(), language, BodyFormat.MARKDOWN).body
    for forbidden in ("[", "]", "](", "**", "<", ">", "`", "|", "![", "#"):
        assert forbidden not in body, forbidden
    for line in body.splitlines():
        assert not line.lstrip("- ").startswith(("#", ">"))
    # still readable: the same words, in full-width punctuation
    assert "＜script＞alert(1)＜/script＞" in body
    assert "［click］(http://evil.example)" in body
    assert "＊＊bold＊＊" in body and "＃ heading" in body


def test_plain_text_keeps_registry_text_verbatim() -> None:
    """Plain text has no markup to neutralise; officers must see exactly what the registry says."""
    assert EVIL in render_alert(evil_view(), "en", BodyFormat.TEXT).body


registry_text = st.text(min_size=0, max_size=80)


@st.composite
def untrusted_views(draw: st.DrawFn) -> AlertView:
    changes = tuple(
        ChangeLine(
            draw(st.sampled_from(list(Category))),
            draw(st.sampled_from(list(Action))),
            draw(registry_text),
            draw(st.one_of(st.none(), registry_text)),
            draw(st.one_of(st.none(), registry_text)),
            draw(st.one_of(st.none(), st.dates(date(1990, 1, 1), date(2030, 12, 31)))),
        )
        for _ in range(draw(st.integers(1, 5)))
    )
    return make_view(
        borrower_name=draw(registry_text),
        changes=changes,
        recommend_early_repayment=False,
        signatory_mismatch=draw(st.one_of(st.none(), registry_text.filter(str.strip))),
        legal_rep_on_file=draw(registry_text),
    )


@settings(max_examples=150, deadline=None)
@given(view=untrusted_views(), language=st.sampled_from(["zh-CN", "en"]))
def test_markdown_never_carries_links_or_html_from_registry_text(view: AlertView, language: str) -> None:
    body = render_alert(view, language, BodyFormat.MARKDOWN).body
    assert "](" not in body and "<" not in body and "**" not in body
    lines = body.splitlines()
    # one line per shown line, the signatory note, the window and the footer
    expected_lines = len(alert_lines(view.changes, language)) + bool(view.signatory_mismatch) + 1 + 1
    assert len(lines) == expected_lines, "registry text must not add lines"
    assert all(not line.startswith(("#", ">", "|")) for line in lines)


@settings(max_examples=150, deadline=None)
@given(view=untrusted_views(), language=st.sampled_from(["zh-CN", "en"]))
def test_html_carries_registry_text_only_as_text(view: AlertView, language: str) -> None:
    body = render_alert(view, language, BodyFormat.HTML).body
    reader = read_html(body)
    assert set(reader.tags) <= HTML_TEMPLATE_TAGS
    lines = alert_lines(view.changes, language, BodyFormat.HTML)
    assert reader.tags.count("li") == len(lines)
    for line, item in zip(lines, reader.items, strict=True):
        assert item == html.unescape(line)


# -- length limits --------------------------------------------------------------------------------

CJK = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"


def shown_changes(body: str) -> list[str]:
    return [line[2:] for line in body.splitlines() if line.startswith("- ")]


def check_fitted(view: AlertView, language: str, fmt: BodyFormat, limits: Limits) -> None:
    """The contract of a fitted alert: fits, whole changes only, a prefix, an exact "more" count."""
    body = render_alert(view, language, fmt, limits).body
    assert limits.fits(body), (len(body), len(body.encode()))
    full = alert_lines(view.changes, language, fmt)
    shown = shown_changes(body)
    assert shown == full[: len(shown)], "shown changes must be whole and a prefix of the full list"
    left_out = len(full) - len(shown)
    counts = MORE_COUNT[language].findall(body)
    if left_out:
        assert counts == [str(left_out)]
        assert f"watcher history --borrower {view.borrower_id}" in body
        if left_out > 1:  # maximal: one more change would not have fitted ("more" only loses a digit at most)
            next_line = f"- {full[len(shown)]}\n"
            fewer_digits = len(str(left_out)) - len(str(left_out - 1))
            if limits.max_bytes is not None:
                assert len(body.encode()) + len(next_line.encode()) - fewer_digits > limits.max_bytes
            else:
                assert limits.max_chars is not None
                assert len(body) + len(next_line) - fewer_digits > limits.max_chars
    else:
        assert counts == []
    lines = body.splitlines()
    assert lines[-1].startswith("来源：" if language == "zh-CN" else "Source: ")
    assert re.search(r" \+00:00(\u3000预警编号| · alert ID) \S+$", lines[-1])
    if view.recommend_early_repayment:
        assert EXPECTED[language]["recommendation"] in body
    if view.signatory_mismatch:
        assert EXPECTED[language]["mismatch"] in body


def many_cjk_changes(count: int, text_length: int) -> tuple[ChangeLine, ...]:
    return tuple(
        ChangeLine(
            Category.SHAREHOLDER,
            Action.CHANGED,
            f"股东{index}" + CJK[index % len(CJK)] * text_length,
            f"{index}%",
            f"{index + 1}%",
            date(2026, 1, 1 + index % 28),
        )
        for index in range(count)
    )


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("limits", [Limits(max_bytes=3696), Limits(max_bytes=600), Limits(max_chars=1000)])
def test_long_alert_is_cut_between_changes(language: str, limits: Limits) -> None:
    view = make_view(changes=many_cjk_changes(60, 30), signatory_mismatch="李娜")
    check_fitted(view, language, BodyFormat.MARKDOWN, limits)
    body = render_alert(view, language, BodyFormat.MARKDOWN, limits).body
    assert MORE_COUNT[language].search(body), "60 long CJK changes cannot fit; the message must say so"


def test_wecom_like_limit_is_counted_in_bytes_not_characters() -> None:
    """1000 CJK characters are 3000 bytes: a character count would let WeCom's 2048-byte cut happen."""
    view = make_view(changes=many_cjk_changes(40, 20))
    body = render_alert(view, "zh-CN", BodyFormat.MARKDOWN, Limits(max_bytes=2048)).body
    assert len(body.encode()) <= 2048
    assert len(body) < 2048 / 2


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_html_limit_keeps_whole_list_items_and_valid_structure(language: str) -> None:
    view = make_view(changes=many_cjk_changes(50, 25))
    limits = Limits(max_bytes=2000)
    body = render_alert(view, language, BodyFormat.HTML, limits).body
    assert limits.fits(body)
    reader = read_html(body)
    full = [html.unescape(line) for line in alert_lines(view.changes, language, BodyFormat.HTML)]
    assert reader.items == full[: len(reader.items)]
    assert 0 < len(reader.items) < len(full)
    assert MORE_COUNT[language].findall("".join(reader.texts)) == [str(len(full) - len(reader.items))]
    assert body.count("<") == body.count(">"), "no tag was cut"


def test_borrower_id_in_the_more_line_is_copyable_and_may_hold_braces() -> None:
    """``cn_001`` must not turn into ``cn＿001`` (the command would find nothing); braces must not crash."""
    for borrower_id in ("cn_001", "cn{1}", "cn-{count}"):
        view = make_view(borrower_id=borrower_id, changes=many_cjk_changes(40, 20))
        body = render_alert(view, "en", BodyFormat.MARKDOWN, Limits(max_bytes=1200)).body
        assert f"`watcher history --borrower {borrower_id}`" in body
        check_fitted(view, "en", BodyFormat.MARKDOWN, Limits(max_bytes=1200))


@pytest.mark.parametrize("fmt", [BodyFormat.MARKDOWN, BodyFormat.HTML])
def test_absurdly_long_registry_name_in_signatory_note_does_not_push_out_the_footer(fmt: BodyFormat) -> None:
    view = make_view(changes=many_cjk_changes(5, 10), signatory_mismatch="<李>" * 2000)
    limits = Limits(max_bytes=800)
    body = render_alert(view, "zh-CN", fmt, limits).body
    assert limits.fits(body)
    assert "提前收回" in body and "来源：qcc" in body and "预留签字人未更新" in body
    if fmt is BodyFormat.HTML:
        reader = read_html(body)
        assert set(reader.tags) <= HTML_TEMPLATE_TAGS
        assert not re.search(r"&[a-z]*…", body), "an entity was cut in half"


def test_tiny_limits_still_fit() -> None:
    """Below any sensible channel limit the body is cut, but it still fits."""
    limits = Limits(max_bytes=60)
    assert limits.fits(render_alert(make_view(), "zh-CN", BodyFormat.MARKDOWN, limits).body)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(0, 80),
    text_length=st.integers(0, 120),
    cjk=st.booleans(),
    mismatch_length=st.one_of(st.none(), st.integers(1, 3000)),
    budget=st.integers(600, 6000),
    by_bytes=st.booleans(),
    recommend=st.booleans(),
    language=st.sampled_from(["zh-CN", "en"]),
    fmt=st.sampled_from([BodyFormat.MARKDOWN, BodyFormat.TEXT]),
)
def test_any_alert_fits_any_sensible_limit(
    count: int,
    text_length: int,
    cjk: bool,
    mismatch_length: int | None,
    budget: int,
    by_bytes: bool,
    recommend: bool,
    language: str,
    fmt: BodyFormat,
) -> None:
    filler = "澜" if cjk else "x"
    changes = tuple(
        ChangeLine(
            Category.DIRECTOR,
            Action.CHANGED,
            f"董事{index}{filler * text_length}",
            filler * (text_length // 2),
            f"{filler * (text_length // 3)}{index}",
            None if index % 3 else date(2026, 2, 1),
        )
        for index in range(count)
    )
    view = make_view(
        changes=changes,
        recommend_early_repayment=recommend,
        signatory_mismatch=None if mismatch_length is None else filler * mismatch_length,
    )
    limits = Limits(max_bytes=budget) if by_bytes else Limits(max_chars=budget)
    check_fitted(view, language, fmt, limits)


# -- digest ---------------------------------------------------------------------------------------


def digest_views(count: int) -> list[AlertView]:
    return [
        make_view(
            alert_id=index,
            borrower_id=f"cn-{index:03d}",
            borrower_name=f"星辰科技{index}有限公司",
            severity=Severity.INFO if index % 2 else Severity.WARNING,
            changes=several_changes()[: 1 + index % 4],
            recommend_early_repayment=False,
        )
        for index in range(count)
    ]


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_digest_has_one_line_per_alert_with_its_counts(language: str) -> None:
    views = digest_views(5)
    rendered = render_digest(views, language, date(2026, 3, 9), BodyFormat.MARKDOWN)
    assert "2026-03-09" in rendered.title
    assert ("共 5 条" if language == "zh-CN" else ": 5 info/warning") in rendered.title
    lines = rendered.body.splitlines()
    assert len(lines) == len(views)
    for view, line in zip(views, lines, strict=True):
        assert view.borrower_name in line and view.borrower_id in line
        assert SEVERITY_LABELS[language][view.severity] in line
        shown = len(alert_lines(view.changes, language))  # lines, as the alert itself shows them
        count_words = f"{shown} 项变更" if language == "zh-CN" else f"{shown} change(s)"
        assert count_words in line
        assert EXPECTED[language]["legal_rep"] in line  # every view here starts with the legal rep change


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("limits", [Limits(max_bytes=700), Limits(max_chars=400)])
def test_long_digest_fits_and_says_how_many_alerts_are_left_out(language: str, limits: Limits) -> None:
    views = digest_views(40)
    body = render_digest(views, language, date(2026, 3, 9), BodyFormat.MARKDOWN, limits).body
    assert limits.fits(body)
    alert_lines = [line for line in body.splitlines() if line.startswith("- ")]
    assert 0 < len(alert_lines) < len(views)
    for view, line in zip(views, alert_lines, strict=False):
        assert f"({view.borrower_id})" in line or f"（{view.borrower_id}）" in line
    more = re.search(r"另有 (\d+) 条未列出" if language == "zh-CN" else r"(\d+) more not shown", body)
    assert more and int(more.group(1)) == len(views) - len(alert_lines)


def test_digest_escapes_registry_names() -> None:
    views = [replace(digest_views(1)[0], borrower_name=EVIL)]
    markdown = render_digest(views, "en", date(2026, 3, 9), BodyFormat.MARKDOWN).body
    assert "](" not in markdown and "<" not in markdown
    reader = read_html(render_digest(views, "en", date(2026, 3, 9), BodyFormat.HTML).body)
    assert set(reader.tags) <= HTML_TEMPLATE_TAGS and "<script>" in "".join(reader.texts)


@pytest.mark.parametrize(("language", "marker"), [("zh-CN", "测试"), ("en", "Test")])
def test_notify_test_message_names_its_target(language: str, marker: str) -> None:
    rendered = render_test_message("risk_desk", language)
    assert marker in rendered.title and "risk_desk" in rendered.body


@pytest.mark.parametrize(("language", "footer"), [("zh-CN", "来源：企查查"), ("en", "Source: Qichacha")])
def test_alerts_name_the_source_by_its_display_name(language: str, footer: str) -> None:
    """Not "来源：qcc" (the config key): the name `Config.source_display_name` gives (point 11)."""
    from watcher.vocabulary import Language

    names = ((Language.ZH_CN, "企查查"), (Language.EN, "Qichacha"))
    assert footer in render_alert(make_view(source_names=names), language).body
    assert "qcc" in render_alert(make_view(), language).body  # no name given: the key, as before
    gap = make_view(borrower_id="", kind=AlertKind.MONITORING_GAP, changes=(), source_names=names)
    assert footer.split("：")[-1].split(": ")[-1] in render_alert(gap, language).title
