"""Strict decoding of response bodies: a body is read in the charset it declares, or not at all.

Shared by the HTTP policy and the replay source, which decodes saved answers the same way.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-]+)""", re.IGNORECASE)
_DECLARED_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^;\"'\s]+)", re.IGNORECASE)
_JSON_MEDIA_TYPE = re.compile(r"(?:application|text)/(?:[\w.-]+\+)?json", re.IGNORECASE)
_JSON_START = re.compile(rb"[ \t\r\n]*[\[{]")
# Chinese pages declare gb2312 or gbk and use characters only GB18030 has; it is a superset of both,
# so reading them as GB18030 is reading them in the charset they declare, not guessing another one.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030"}
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True, slots=True)
class Charsets:
    """How one source's answers are decoded (see :func:`decode_body`).

    ``json``: the source answers JSON, so a body that starts like JSON is JSON whatever its
    Content-Type says. ``undeclared``: the charsets tried, strictly and in this order, for a body that
    declares none: UTF-8 only, except for sources whose registries are known to send GB18030.
    """

    json: bool = False
    undeclared: tuple[str, ...] = ("utf-8",)

    def __post_init__(self) -> None:
        if not self.undeclared:
            raise ValueError("at least one charset for bodies that declare none")


class UndecodableBody(ValueError):
    """A body that is not valid text in the charset it declares (or, declaring none, in any allowed one).

    ``preview`` is the body with the bad bytes replaced: for recognising challenge pages and quoting
    error messages, never for data.
    """

    def __init__(self, reason: str, preview: str) -> None:
        super().__init__(reason)
        self.preview = preview


def _codec(name: str) -> str | None:
    name = _CHARSET_ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _bad_byte(content: bytes, offset: int) -> str:
    return f"byte 0x{content[offset : offset + 1].hex()} at offset {offset}"


def _strict(content: bytes, encoding: str, why: str, *, skip: int = 0) -> str:
    """``content[skip:]`` decoded as ``encoding`` without any replacement, or UndecodableBody."""
    try:
        return content[skip:].decode(encoding)
    except UnicodeDecodeError as error:
        reason = f"body is not valid {encoding} ({why}): {_bad_byte(content, skip + error.start)}"
        raise UndecodableBody(reason, content[skip:].decode(encoding, errors="replace")) from None
    except LookupError:  # a codec that is no text encoding (base64, zlib…)
        raise UndecodableBody(
            f"body declares {encoding!r}, which is not a text charset ({why})",
            content.decode("utf-8", errors="replace"),
        ) from None


def decode_body(content: bytes, content_type: str | None, charsets: Charsets = Charsets()) -> str:
    """The text of a response body, decoded strictly; UndecodableBody when it is not valid text.

    Never guesses a charset other than the one a body declares: a wrong guess turns "Søren Ødegård"
    into "S鴕en脴deg氓rd", and every name looks changed.

    - JSON (a JSON Content-Type, or a JSON source's body starting with ``{`` or ``[``) is UTF-8 by
      RFC 8259, whatever it declares (every byte string is valid Latin-1, so a label proves nothing);
      a UTF-8 byte-order mark is allowed.
    - Otherwise a byte-order mark, else the Content-Type's charset, else an HTML ``<meta charset>``
      says which charset the body is in, and it must be valid in that one (gb2312 and gbk are read as
      their superset GB18030). An unknown charset is a failure too.
    - A body that declares nothing is tried in ``charsets.undeclared``, strictly, in order.
    """
    if _is_json(content, content_type, charsets):
        skip = len(codecs.BOM_UTF8) if content.startswith(codecs.BOM_UTF8) else 0
        return _strict(content, "utf-8", "JSON is always UTF-8", skip=skip)
    for bom, encoding in _BYTE_ORDER_MARKS:
        if content.startswith(bom):
            return _strict(content, encoding, "as its byte-order mark says", skip=len(bom))
    declared = _declared_charset(content, content_type)
    if declared is not None:
        return _in_declared_charset(content, *declared)
    return _in_undeclared_charsets(content, charsets.undeclared)


def _is_json(content: bytes, content_type: str | None, charsets: Charsets) -> bool:
    """A JSON Content-Type, or a JSON source's body that starts like JSON (after a UTF-8 BOM)."""
    media_type = (content_type or "").split(";", 1)[0].strip()
    if _JSON_MEDIA_TYPE.fullmatch(media_type):
        return True
    skip = len(codecs.BOM_UTF8) if content.startswith(codecs.BOM_UTF8) else 0
    return charsets.json and _JSON_START.match(content, skip) is not None


def _declared_charset(content: bytes, content_type: str | None) -> tuple[str, str] | None:
    """The charset label a body declares and where: its Content-Type, else an HTML ``<meta charset>``."""
    declared = _DECLARED_CHARSET.search(content_type or "")
    if declared:
        return declared.group(1), "its Content-Type"
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        return meta.group(1).decode("ascii"), "its <meta charset>"
    return None


def _in_declared_charset(content: bytes, label: str, where: str) -> str:
    """The body in the charset it declares (gb2312 and gbk read as GB18030); an unknown one fails."""
    encoding = _codec(label)
    if encoding is None:
        shown = label if len(label) <= 40 else label[:39] + "…"
        reason = f"body declares an unknown charset {shown!r} in {where}"
        raise UndecodableBody(reason, content.decode("utf-8", errors="replace"))
    return _strict(content, encoding, f"as {where} declares")


def _in_undeclared_charsets(content: bytes, undeclared: tuple[str, ...]) -> str:
    """A body that declares nothing, in the first of ``undeclared`` it is valid in."""
    failures = []
    for encoding in undeclared:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError as error:
            failures.append(f"{encoding}: {_bad_byte(content, error.start)}")
    tried = " nor ".join(undeclared)
    reason = f"body declares no charset and is not valid {tried} ({'; '.join(failures)})"
    raise UndecodableBody(reason, content.decode("utf-8", errors="replace"))
