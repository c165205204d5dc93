"""Drawing a DOT graph as inline SVG with Graphviz (``dot -K<layout> -Tsvg``), on the server.

The program runs with a timeout and bounded input and output. Its SVG is not trusted as it comes:
it is parsed and written again keeping only the elements and attributes a drawing needs (shapes,
text, groups, links to the console's own party pages), so no script, style, event handler, foreign
object or outside reference can reach a page, whatever the labels held. The console's CSP allows
no inline style; Graphviz's presentation attributes (fill, stroke…) are not styles and stay.
"""

from __future__ import annotations

import logging
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from enum import StrEnum
from html import escape

log = logging.getLogger("watcher.console")

TIMEOUT_SECONDS = 15.0
MAX_DOT_BYTES = 2_000_000
MAX_SVG_BYTES = 8_000_000

_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
_ELEMENTS = frozenset({"svg", "g", "polygon", "polyline", "ellipse", "path", "text", "a"})
_ATTRIBUTES = frozenset(
    {
        "width", "height", "viewBox", "transform", "class", "fill", "stroke", "stroke-width",
        "stroke-dasharray", "points", "d", "cx", "cy", "rx", "ry", "x", "y", "text-anchor",
        "font-family", "font-size", "font-weight", "font-style",
    }
)  # fmt: skip
_LOCAL_LINK = re.compile(r"/borrower\?id=[A-Za-z0-9%._~-]+")
_NUMBERS = re.compile(r"[0-9eE.,+\- ]*")


class DrawingProblem(StrEnum):
    MISSING = "missing"  # the program is not installed (or not where the config says)
    FAILED = "failed"  # it ran and failed, took too long, or wrote something that is no drawing


@dataclass(frozen=True, slots=True)
class Drawing:
    """An SVG to embed, or why there is none."""

    svg: str = ""
    problem: DrawingProblem | None = None


def draw(dot_source: str, *, program: str, layout: str, description: str) -> Drawing:
    """``dot_source`` drawn by ``program`` (Graphviz's ``dot``) with ``layout``, as sanitized SVG
    markup titled ``description``."""
    data = dot_source.encode("utf-8")
    if len(data) > MAX_DOT_BYTES:
        return Drawing(problem=DrawingProblem.FAILED)
    try:
        done = subprocess.run(
            [program, f"-K{layout}", "-Tsvg"],
            input=data,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        log.warning(
            "console: the graph program %r is not installed; connections are shown without a drawing", program
        )
        return Drawing(problem=DrawingProblem.MISSING)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("console: drawing a neighbourhood failed: %s", type(error).__name__)
        return Drawing(problem=DrawingProblem.FAILED)
    if done.returncode != 0 or len(done.stdout) > MAX_SVG_BYTES:
        log.warning("console: %s exited with %s drawing a neighbourhood", program, done.returncode)
        return Drawing(problem=DrawingProblem.FAILED)
    try:
        return Drawing(svg=sanitized_svg(done.stdout.decode("utf-8"), description))
    except (ValueError, ElementTree.ParseError):
        log.warning("console: %s wrote an SVG the console does not accept", program)
        return Drawing(problem=DrawingProblem.FAILED)


def sanitized_svg(text: str, description: str) -> str:
    """Graphviz's SVG written again with only what a drawing needs; raises ValueError on anything
    that is not one plain SVG document."""
    start = text.find("<svg")
    if start < 0 or "<!ENTITY" in text:
        raise ValueError("not an SVG document")
    root = ElementTree.fromstring(text[start:])
    if root.tag != f"{_SVG_NS}svg":
        raise ValueError("not an SVG document")
    parts: list[str] = []
    _write(root, parts, description)
    return "".join(parts)


def _write(element: ElementTree.Element, parts: list[str], description: str | None = None) -> None:
    name = element.tag.removeprefix(_SVG_NS)
    if name not in _ELEMENTS:
        return  # <title> (Graphviz's node ids), comments, anything else: dropped with what they hold
    attributes = _attributes(element, name)
    if name == "a" and "href" not in attributes:
        name = "g"  # a link we do not keep still groups its shapes
    if name == "svg":
        attributes["role"] = "img"
        attributes["xmlns"] = "http://www.w3.org/2000/svg"
    parts.append(f"<{name}" + "".join(f' {key}="{escape(value)}"' for key, value in attributes.items()) + ">")
    if description is not None:
        parts.append(f"<title>{escape(description)}</title>")
    if name == "text" and element.text:
        parts.append(escape(element.text))
    for child in element:
        _write(child, parts)
    parts.append(f"</{name}>")


def _attributes(element: ElementTree.Element, name: str) -> dict[str, str]:
    kept = {key: value for key, value in element.attrib.items() if key in _ATTRIBUTES and _safe(key, value)}
    if name == "a":
        href = element.attrib.get(_XLINK_HREF) or element.attrib.get("href") or ""
        if _LOCAL_LINK.fullmatch(href):
            kept["href"] = href
    return kept


def _safe(key: str, value: str) -> bool:
    """Attribute values that cannot reach anything outside: no url(…), no script, no markup."""
    if key in ("points", "d", "transform", "viewBox"):
        return re.fullmatch(r"[0-9A-Za-z.,+\-() ]*", value) is not None and "url" not in value.lower()
    if key in ("cx", "cy", "rx", "ry", "x", "y", "stroke-width", "stroke-dasharray", "font-size"):
        return _NUMBERS.fullmatch(value) is not None
    return re.fullmatch(r"[#0-9A-Za-z.,_\- ]*", value) is not None
