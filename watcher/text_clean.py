"""Text as registries write it made comparable: Unicode, markup, brackets and whitespace unified,
and the keys names and people are compared by. The lowest layer of :mod:`watcher.normalize`."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}()])\s+|\s+(?=[{_CJK}()])")
# Applied after NFKC, which has already made full-width ［］ half-width: map [] too, or they stay square.
_BRACKETS = str.maketrans(
    {
        "【": "(",
        "】": ")",
        "〔": "(",
        "〕": ")",
        "〖": "(",
        "〗": ")",
        "［": "(",
        "］": ")",
        "[": "(",
        "]": ")",
    }
)
_EMPTY_MARKERS = {"", "-", "--", "—", "无", "暂无", "null", "none", "n/a"}


# Zero-width characters and soft hyphens survive NFKC and would make equal names differ. Control
# characters (C0 but the whitespace ones, DEL, C1) are never data: a NUL in a vendor's company name
# made PostgreSQL refuse the whole check.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_CONTROLS = dict.fromkeys([*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0)])
_INVISIBLE.update(_CONTROLS)
# A lone surrogate (JSON allows "\ud800") is no character at all, and cannot even be encoded as UTF-8.
_INVISIBLE.update(dict.fromkeys(range(0xD800, 0xE000)))


def clean_text(value: object) -> str:
    """NFKC, strip markup, unify Chinese brackets, collapse whitespace, drop spaces inside CJK text."""
    if value is None:
        return ""
    return _clean(value if isinstance(value, str) else str(value))


@lru_cache(maxsize=16_384)
def _clean(value: str) -> str:
    """Cached: a record's names and addresses are cleaned several times over (mapping, normalising,
    keys, hashing), and the same ones again at every check."""
    text = unicodedata.normalize("NFKC", value).translate(_INVISIBLE)
    text = _TAG.sub("", text).translate(_BRACKETS)
    text = _SPACE.sub(" ", text).strip()
    text = _SPACE_NEAR_CJK.sub("", text)
    return "" if text.casefold() in _EMPTY_MARKERS else text


def text_key(value: object) -> str:
    """A comparison key for a name or address: cleaned and case-folded."""
    return clean_text(value).casefold()


def person_key(name: object, *, registry_id: object = None, birth: object = None) -> str:
    """Identity key, best first: the registry's own id, then name + birth date, then the bare name."""
    rid = clean_text(registry_id)
    if rid:
        return f"id:{rid.casefold()}"
    name_part = text_key(name)
    birth_part = clean_text(birth)
    return f"nb:{name_part}|{birth_part}" if birth_part else f"n:{name_part}"
