"""The portfolio overview's weekly chart: a pure function from counts to SVG, and the weeks it counts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from watcher.console.chart import (
    WEEKS,
    ChartText,
    WeekCounts,
    axis_top,
    first_instant,
    week_starts,
    weekly_alerts_svg,
    weekly_counts,
)
from watcher.vocabulary import Severity

SVG = "{http://www.w3.org/2000/svg}"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # Thursday of ISO week 2026-W10
TEXT = ChartText(
    title="Alerts per week",
    description="New alerts per week",
    empty="No alerts in the last 12 weeks",
    severity={severity: severity.value.title() for severity in Severity},
)

counts_strategy = st.dictionaries(st.sampled_from(list(Severity)), st.integers(min_value=0, max_value=400))
weeks_strategy = st.lists(counts_strategy, min_size=WEEKS, max_size=WEEKS).map(
    lambda per_week: [
        WeekCounts(date(2026, 1, 5) + timedelta(weeks=index), counts) for index, counts in enumerate(per_week)
    ]
)


def parsed(svg: str) -> ET.Element:
    """The chart as XML: it must parse, so every text in it was escaped."""
    return ET.fromstring(svg)


def bars(root: ET.Element) -> list[ET.Element]:
    return root.findall(f".//{SVG}rect")


@given(weeks_strategy)
def test_bar_heights_are_proportional_to_the_counts(weeks):
    root = parsed(weekly_alerts_svg(weeks, TEXT))
    heights = [(int(rect.get("data-count")), float(rect.get("height"))) for rect in bars(root)]
    assert len(heights) == sum(1 for week in weeks for count in week.counts.values() if count)
    top, _step = axis_top(max(week.total for week in weeks))
    plot_height = 250 - 22 - 40
    for count, height in heights:
        assert abs(height - count / top * plot_height) < 0.01
    groups = root.findall(f"{SVG}g")
    assert [int(group.get("data-total")) for group in groups] == [week.total for week in weeks]
    for group, week in zip(groups, weeks, strict=True):
        stacked = sum(float(rect.get("height")) for rect in group.findall(f"{SVG}rect"))
        assert stacked <= plot_height + 0.05, "no bar leaves the plot"
        assert abs(stacked - week.total / top * plot_height) < 0.05


def test_the_most_severe_alerts_sit_at_the_bottom_of_a_bar():
    weeks = [WeekCounts(date(2026, 1, 5) + timedelta(weeks=i), {}) for i in range(WEEKS)]
    weeks[3] = WeekCounts(weeks[3].start, {Severity.INFO: 2, Severity.CRITICAL: 1, Severity.HIGH: 3})
    root = parsed(weekly_alerts_svg(weeks, TEXT))
    stack = [(rect.get("data-severity"), float(rect.get("y"))) for rect in bars(root)]
    assert [severity for severity, _y in stack] == ["critical", "high", "info"]
    assert stack[0][1] > stack[1][1] > stack[2][1], "each part above the one before"


def test_labels_and_texts_are_escaped():
    hostile = '<script>alert("x")</script> & <b'
    text = ChartText(
        title=hostile,
        description=hostile,
        empty=hostile,
        severity={severity: hostile for severity in Severity},
    )
    weeks = [WeekCounts(date(2026, 1, 5) + timedelta(weeks=i), {Severity.HIGH: i}) for i in range(WEEKS)]
    for chart in (
        weekly_alerts_svg(weeks, text),
        weekly_alerts_svg([WeekCounts(w.start) for w in weeks], text),
    ):
        assert "<script>" not in chart and "& <b" not in chart
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b" in chart
        root = parsed(chart)
        assert root.find(f"{SVG}title").text == hostile
        assert root.find(f"{SVG}desc").text == hostile


def test_no_alerts_is_an_empty_chart_that_says_so():
    starts = week_starts(NOW, SHANGHAI)
    root = parsed(weekly_alerts_svg(weekly_counts([], NOW, SHANGHAI), TEXT))
    assert bars(root) == []
    assert [group.get("data-week") for group in root.findall(f"{SVG}g")] == [
        f"{start.isocalendar()[0]}-W{start.isocalendar()[1]:02d}" for start in starts
    ]
    [empty] = [node for node in root.iter(f"{SVG}text") if node.get("class") == "empty-chart"]
    assert empty.text == TEXT.empty
    ticks = [node.text for node in root.iter(f"{SVG}text") if node.get("class") == "tick"]
    assert ticks == ["0", "1"]


def test_a_chart_with_alerts_has_labelled_axes_and_an_accessible_name():
    weeks = weekly_counts([(NOW, "high"), (NOW - timedelta(weeks=2), "info")], NOW, SHANGHAI)
    root = parsed(weekly_alerts_svg(weeks, TEXT))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "weekly-chart-title weekly-chart-desc"
    assert root.find(f"{SVG}title").get("id") == "weekly-chart-title"
    labels = [node.text for node in root.iter(f"{SVG}text") if node.get("class") == "week-label"]
    assert labels[-1] == "W10" and labels[0] == "W51" and len(labels) == WEEKS
    dates = [node.text for node in root.iter(f"{SVG}text") if node.get("class") == "week-date"]
    assert dates[-1] == "03-02"
    tooltips = [rect.find(f"{SVG}title").text for rect in bars(root)]
    assert tooltips == ["2026-W08 · Info: 1", "2026-W10 · High: 1"]
    assert not any(node.get("class") == "empty-chart" for node in root.iter(f"{SVG}text"))


@given(
    st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(2025, 6, 1), max_value=datetime(2026, 6, 1), timezones=st.just(UTC)
            ),
            st.sampled_from([*Severity, "unknown"]),
        ),
        max_size=60,
    ),
    st.datetimes(min_value=datetime(2025, 9, 1), max_value=datetime(2026, 5, 1), timezones=st.just(UTC)),
    st.sampled_from([UTC, SHANGHAI, ZoneInfo("America/New_York")]),
)
def test_twelve_weeks_always_and_each_alert_in_its_own_week(alerts, now, zone):
    weeks = weekly_counts(alerts, now, zone)
    assert len(weeks) == WEEKS
    assert all(week.start.weekday() == 0 for week in weeks)
    assert [b.start - a.start for a, b in zip(weeks, weeks[1:], strict=False)] == [timedelta(weeks=1)] * 11
    today = now.astimezone(zone).date()
    assert weeks[-1].start <= today < weeks[-1].start + timedelta(weeks=1)
    expected = [0] * WEEKS
    for created_at, severity in alerts:
        local = created_at.astimezone(zone).date()
        position = (local - weeks[0].start).days // 7
        if 0 <= position < WEEKS and severity in set(Severity):
            expected[position] += 1
    assert [week.total for week in weeks] == expected
    assert first_instant(now, zone).astimezone(zone).date() == weeks[0].start


def test_weeks_begin_on_monday_in_the_deployments_zone():
    """Sunday 16:30 UTC is Monday 00:30 in Shanghai: the new week there, the old one in UTC."""
    late_sunday = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    in_shanghai = weekly_counts([(late_sunday, "warning")], NOW, SHANGHAI)
    in_utc = weekly_counts([(late_sunday, "warning")], NOW, UTC)
    assert [week.total for week in in_shanghai][-2:] == [0, 1]
    assert [week.total for week in in_utc][-2:] == [1, 0]


@given(st.integers(min_value=0, max_value=10**7))
def test_the_axis_ends_on_a_round_number_above_the_largest_bar(largest):
    top, step = axis_top(largest)
    assert top >= max(largest, 1) and top % step == 0 and top // step <= 5
    assert top - step < max(largest, 1), "no empty step at the top"
    leading = int(str(step).rstrip("0") or "0")
    assert leading in (1, 2, 5) and set(str(step)[1:]) <= {"0"}
