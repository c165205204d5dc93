"""Stakes and amounts as registries write them ("30%-40%", "1,000万元人民币", "NOK 30 000") parsed
into comparable numbers: the number half of :mod:`watcher.normalize`."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from watcher.record import Money, Stake
from watcher.text_clean import clean_text

_PERCENT_QUANTUM = Decimal("0.0001")
_RANGE = re.compile(r"^\s*([0-9.]+)\s*%?\s*(?:-|–|~|to)\s*([0-9.]+)\s*%?\s*$", re.IGNORECASE)


def _decimal(text: object) -> Decimal | None:
    try:
        value = Decimal(re.sub(r"[, '\u00a0\u202f]", "", str(text)).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _canonical_percent(value: Decimal) -> Decimal:
    return value.quantize(_PERCENT_QUANTUM).normalize()


def parse_stake(value: object) -> Stake | None:
    """``"51%"``, ``"51.00%"``, ``0.51`` and ``"25-50%"`` to a percent interval; None when unparseable.

    A bare number no greater than 1 is a fraction (0.51 → 51 %); anything else is already percent.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = _decimal(value)
        if number is None:
            return None
        percent = number * 100 if number <= 1 else number
        return stake_between(percent, percent)
    text = clean_text(value)
    if not text:
        return None
    band = _RANGE.match(text)
    if band:
        low, high = _decimal(band.group(1)), _decimal(band.group(2))
        return stake_between(low, high) if low is not None and high is not None else None
    if text.endswith("%"):
        number = _decimal(text[:-1])
        return stake_between(number, number) if number is not None else None
    return parse_stake(_decimal(text)) if _decimal(text) is not None else None


def stake_between(low: Decimal | None, high: Decimal | None) -> Stake | None:
    """A stake from its bounds in canonical percent; None when a bound is unknown or out of 0–100."""
    if low is None or high is None or low < 0 or high > 100 or low > high:
        return None
    return Stake(_canonical_percent(low), _canonical_percent(high))


# -- amounts ------------------------------------------------------------------------------------

_CURRENCIES = (
    ("人民币", "CNY"),
    ("美元", "USD"),
    ("港元", "HKD"),
    ("港币", "HKD"),
    ("欧元", "EUR"),
    ("日元", "JPY"),
    ("英镑", "GBP"),
    ("RMB", "CNY"),
    ("CNY", "CNY"),
    ("USD", "USD"),
    ("EUR", "EUR"),
    ("NOK", "NOK"),
    ("GBP", "GBP"),
)
_MULTIPLIERS = (("亿", Decimal(100_000_000)), ("万", Decimal(10_000)), ("千", Decimal(1_000)))
CENT = Decimal("0.01")
# Digits grouped by commas, spaces or apostrophes ("1 000 000 NOK", "1'000'000"): a separator only
# counts when three digits follow it, so "2024 5000万" is not read as one number.
_NUMBER = re.compile(r"[0-9](?:[0-9]|[, '\u00a0\u202f](?=[0-9]{3}(?![0-9])))*(?:\.[0-9]+)?")
# Scientific notation as some serialisers write amounts ("1.2568E6"): read whole, never as "1.2568".
_EXPONENT = re.compile(r"[eE]([+-]?)([0-9]+)")
# No real amount reaches 10^18 (a quintillion yuan): a bigger number is kept as text, never as a figure.
_MAX_AMOUNT_DIGITS = 18


def parse_amount(value: object, *, currency: str | None = None, unit: Decimal | int = 1) -> Money | None:
    """``"5000万元人民币"`` → 50,000,000 CNY. ``unit`` scales bare numbers (Qichacha's 万元 columns).

    Returns None for an empty value; a Money with ``amount=None`` when the text has no number.
    """
    if value is None or isinstance(value, bool):
        return None
    raw = clean_text(value)
    if not raw:
        return None
    found_currency = currency
    for word, code in _CURRENCIES:
        if word.casefold() in raw.casefold():
            found_currency = code
            break
    number_match = _NUMBER.search(raw)
    if number_match is None:
        return Money(None, found_currency, raw)
    amount = _decimal(number_match.group(0))
    if amount is None:
        return Money(None, found_currency, raw)
    amount, tail = _with_exponent(amount, raw[number_match.end() :])
    if amount is None:
        return Money(None, found_currency, raw)
    multiplier = next((factor for word, factor in _MULTIPLIERS if tail.lstrip().startswith(word)), None)
    amount *= multiplier if multiplier is not None else Decimal(unit)
    if found_currency is None and "元" in tail:
        found_currency = "CNY"
    if amount.adjusted() >= _MAX_AMOUNT_DIGITS:
        return Money(None, found_currency, raw)
    return Money(amount.quantize(CENT), found_currency, raw)


def _with_exponent(amount: Decimal, tail: str) -> tuple[Decimal | None, str]:
    """``amount`` scaled by a scientific-notation exponent that follows it ("1.2568E6"), and the
    text after it; None beyond 10^±999, where nothing is an amount (and Decimal would overflow)."""
    exponent = _EXPONENT.match(tail)
    if exponent is None:
        return amount, tail
    sign, digits = exponent.groups()
    if len(digits) > 3:
        return None, tail
    return amount.scaleb(int(sign + digits)), tail[exponent.end() :]
