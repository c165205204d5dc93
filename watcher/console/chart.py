"""The portfolio overview's chart of alerts per ISO week, drawn as inline SVG on the server.

Pure: no I/O, no database, no template engine. The page needs no script (the console's CSP allows
none) and no inline style either: every colour comes from a class in the shipped stylesheet. Text
in the SVG is escaped here, since the template inserts the SVG as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from html import escape

from watcher.vocabulary import Severity

WEEKS = 12
"""Weeks the chart shows: the current ISO week and the eleven before it."""
STACK_ORDER = tuple(Severity.most_severe_first())
"""Bottom of a bar first: the most severe alerts sit on the axis, where the eye starts."""

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 22, 40
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BAR_SHARE = 0.62
"""The part of a week's slot its bar fills; the rest is the gap between bars."""


@dataclass(frozen=True, slots=True)
class WeekCounts:
    """Alerts created in one ISO week (Monday ``start``, in the deployment's zone), per severity."""

    start: date
    counts: Mapping[Severity, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def iso_label(self) -> str:
        year, week, _day = self.start.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class ChartText:
    """The words of the chart in the reader's language."""

    title: str
    description: str
    empty: str
    severity: Mapping[Severity, str]


def week_starts(now: datetime, zone: tzinfo, weeks: int = WEEKS) -> list[date]:
    """The Mondays of the last ``weeks`` ISO weeks in ``zone``, oldest first, ending with ``now``'s."""
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())
    return [this_monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def first_instant(now: datetime, zone: tzinfo, weeks: int = WEEKS) -> datetime:
    """When the oldest week of the chart began (midnight of its Monday in ``zone``): the query's bound."""
    return datetime.combine(week_starts(now, zone, weeks)[0], time(), tzinfo=zone)


def weekly_counts(
    alerts: Iterable[tuple[datetime, str]], now: datetime, zone: tzinfo, weeks: int = WEEKS
) -> list[WeekCounts]:
    """``alerts`` (creation time, severity) counted per ISO week in ``zone``: always ``weeks`` buckets,
    oldest first; alerts before the first week or after ``now``'s week, or of an unknown severity,
    are left out."""
    starts = week_starts(now, zone, weeks)
    index = {start: position for position, start in enumerate(starts)}
    counts: list[dict[Severity, int]] = [{} for _ in starts]
    known = set(Severity)
    for created_at, severity in alerts:
        day = created_at.astimezone(zone).date()
        position = index.get(day - timedelta(days=day.weekday()))
        if position is None or severity not in known:
            continue
        bucket = counts[position]
        bucket[Severity(severity)] = bucket.get(Severity(severity), 0) + 1
    return [WeekCounts(start, bucket) for start, bucket in zip(starts, counts, strict=True)]


def axis_top(largest: int) -> tuple[int, int]:
    """The value at the top of the axis and the step between its ticks (1, 2 or 5 times a power of
    ten, at most five steps): round numbers a reader can take in at a glance."""
    if largest <= 0:
        return 1, 1
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if largest <= step * 5:
                return -(-largest // step) * step, step
        magnitude *= 10


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(css_class: str, x: float, y: float, content: str, anchor: str = "middle") -> str:
    """A ``<text>`` element; ``content`` is escaped."""
    return (
        f'<text class="{css_class}" x="{_number(x)}" y="{_number(y)}" text-anchor="{anchor}">'
        f"{escape(content)}</text>"
    )


def _line(css_class: str, x1: float, x2: float, y: float) -> str:
    """A horizontal ``<line>`` at ``y``."""
    ends = f'x1="{_number(x1)}" x2="{_number(x2)}"'
    return f'<line class="{css_class}" {ends} y1="{_number(y)}" y2="{_number(y)}"/>'


def _axis(top: int, step: int) -> list[str]:
    parts = []
    for value in range(0, top + 1, step):
        y = TOP + PLOT_HEIGHT - value / top * PLOT_HEIGHT
        parts.append(_line("grid", LEFT, WIDTH - RIGHT, y))
        parts.append(_text("tick", LEFT - 6, y + 4, str(value), anchor="end"))
    return parts


def _bar(week: WeekCounts, position: int, slots: int, top: int, text: ChartText) -> list[str]:
    slot = PLOT_WIDTH / slots
    width = slot * BAR_SHARE
    x = LEFT + position * slot + (slot - width) / 2
    label = escape(week.iso_label)
    parts = [f'<g class="week" data-week="{label}" data-total="{week.total}">']
    base: float = TOP + PLOT_HEIGHT
    for severity in STACK_ORDER:
        count = week.counts.get(severity, 0)
        if not count:
            continue
        height = count / top * PLOT_HEIGHT
        base -= height
        parts.append(
            f'<rect class="bar bar-{severity.value}" data-severity="{severity.value}" data-count="{count}" '
            f'x="{_number(x)}" y="{_number(base)}" width="{_number(width)}" height="{_number(height)}">'
            f"<title>{label} · {escape(text.severity[severity])}: {count}</title></rect>"
        )
    if week.total:
        parts.append(_text("total", x + width / 2, base - 4, str(week.total)))
    _iso_year, iso_week, _day = week.start.isocalendar()
    parts.append(_text("week-label", x + width / 2, HEIGHT - BOTTOM + 15, f"W{iso_week:02d}"))
    parts.append(_text("week-date", x + width / 2, HEIGHT - BOTTOM + 29, f"{week.start:%m-%d}"))
    parts.append("</g>")
    return parts


def weekly_alerts_svg(weeks: Sequence[WeekCounts], text: ChartText, *, chart_id: str = "weekly-chart") -> str:
    """A stacked bar per week, one colour per severity, with a y axis of round numbers, week labels
    (ISO week and its Monday), a title and description for screen readers, and a tooltip per part.
    Without any alert it is an empty chart that says so."""
    top, step = axis_top(max((week.total for week in weeks), default=0))
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{escape(title_id)} {escape(desc_id)}">',
        f'<title id="{escape(title_id)}">{escape(text.title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(text.description)}</desc>',
        *_axis(top, step),
        _line("axis", LEFT, WIDTH - RIGHT, TOP + PLOT_HEIGHT),
    ]
    for position, week in enumerate(weeks):
        parts.extend(_bar(week, position, len(weeks), top, text))
    if not any(week.total for week in weeks):
        parts.append(_text("empty-chart", LEFT + PLOT_WIDTH / 2, TOP + PLOT_HEIGHT / 2, text.empty))
    parts.append("</svg>")
    return "".join(parts)
