"""What the two Chinese vendors' risk lists share: their dates, their status words, their amounts.

Qichacha and Tianyancha copy the same public lists (gsxt, the courts' enforcement and dishonest-debtor
registers); both adapters read those lists' conventions through these helpers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sources.base import as_text
from watcher.normalize import clean_text, parse_amount
from watcher.record import Category, ChangeLogEntry, ListingState, Money

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Epoch milliseconds of any date after 1973 have 12 or more digits; 8 digits are a date (20260226).
_EPOCH_MS = re.compile(r"-?[0-9]{11,15}")
_CN_DATE = re.compile(r"([0-9]{4})\s*年\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*日")


def cn_text(row: Mapping[str, object], field: str, what: str) -> str:
    """A text field of a vendor row, cleaned (absent or null is "")."""
    return clean_text(as_text(row.get(field), f"{what}.{field}"))


def status_dates(
    row: Mapping[str, object], revoked: tuple[str, str], cancelled: tuple[str, str], what: str
) -> tuple[ChangeLogEntry, ...]:
    """Revocation (吊销) and cancellation (注销) as dated status rows of the change log, from the
    (date field, reason field) pairs the vendor names them by: a status change is then dated by the
    registry, not by the day we noticed it."""
    entries = []
    for item, (date_field, reason_field) in (("吊销", revoked), ("注销", cancelled)):
        day = cn_date(row.get(date_field), f"{what}.{date_field}")
        if day is not None:
            reason = cn_text(row, reason_field, what)
            entries.append(ChangeLogEntry(frozenset({Category.STATUS}), item=item, after=reason, date=day))
    return tuple(entries)


def cn_date(value: object, what: str) -> date | None:
    """A vendor date: ``2026-02-26`` (a time part is ignored), ``2026年2月26日``, or epoch
    milliseconds (as the day in Asia/Shanghai). None when absent or unreadable: on a listing a date
    is shown and used for dating, never what decides whether something changed."""
    text = as_text(value, what).strip()
    if not text:
        return None
    if _EPOCH_MS.fullmatch(text):
        try:
            return datetime.fromtimestamp(int(text) / 1000, SHANGHAI).date()
        except (OverflowError, OSError, ValueError):
            return None
    match = _CN_DATE.search(text)
    try:
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


# First match wins: "部分未履行" is still in force although it contains "履行".
_STATE_WORDS: tuple[tuple[tuple[str, ...], ListingState], ...] = (
    (("未履行", "未结", "有效", "执行中", "在执行", "列入"), ListingState.ACTIVE),
    (("已履行", "履行完毕", "已结", "终结", "解除", "屏蔽", "历史"), ListingState.LIFTED),
    (("无效", "注销", "撤销", "移出", "失效", "已撤"), ListingState.REMOVED),
)


def listing_state(text: object, what: str) -> ListingState:
    """A listing's state from the vendor's status words (有效 / 无效 / 全部已履行…).

    Words it does not know keep the listing in force: the cautious reading, as a lifted entry
    wrongly shown in force costs a look, an entry in force wrongly shown lifted costs a warning.
    """
    words = clean_text(as_text(text, what))
    for keys, state in _STATE_WORDS:
        if any(key in words for key in keys):
            return state
    return ListingState.ACTIVE


def cn_money(value: object, what: str) -> Money | None:
    """An amount in yuan unless it says otherwise (``"1256800"``, ``"3000万元人民币"``)."""
    text = clean_text(as_text(value, what))
    if not text:
        return None
    return parse_amount(text, currency=None if any(c.isalpha() for c in text) else "CNY")
