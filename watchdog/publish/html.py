"""Stage 7, publish: a tiny HTML builder on lxml elements, so page text can only ever be text.

Pages are built as element trees, never by pasting strings: lxml escapes every text node and attribute on
serialisation, and `printable` first turns control characters (invalid in XML, parse errors in HTML) into
visible symbols. Links are made only from our own ids (percent-encoded) or from http(s) URLs; any other
scheme (`javascript:`, `data:`...) is shown as text, never as an href.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Union
from urllib.parse import quote, urlsplit

from lxml import etree

from watchdog.models import Hunk, Segment, TextDiff
from watchdog.publish.archive import printable

Element = etree._Element
Child = Union[str, Element, None, Sequence["Child"]]  # noqa: UP007 (a recursive alias needs Union)


def el(tag: str, *children: Child, **attrs: str | None) -> Element:
    """`el("a", "text", href="x", class_="y")`: attributes with a value of None are left out."""
    node = etree.Element(tag, {_name(k): printable(v) for k, v in attrs.items() if v is not None})
    _append(node, children)
    return node


@cache
def _name(keyword: str) -> str:
    """class_ -> class, http_equiv -> http-equiv (Python keywords and dashes in attribute names)."""
    return keyword.rstrip("_").replace("_", "-")


def _append(node: Element, children: Sequence[Child]) -> None:
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            _append_text(node, printable(child))
        elif isinstance(child, list | tuple):  # not Sequence: an ABC check per child is slow
            _append(node, child)
        else:
            node.append(child)  # type: ignore[arg-type]


def _append_text(node: Element, text: str) -> None:
    if len(node):
        last = node[-1]
        last.tail = (last.tail or "") + text
    else:
        node.text = (node.text or "") + text


def to_html(root: Element) -> bytes:
    text: str = etree.tostring(root, method="html", encoding="unicode", doctype="<!DOCTYPE html>")
    return (text + "\n").encode("utf-8")


def fragment(node: Element) -> str:
    """An element as an HTML string (for Atom `type="html"` content, which lxml escapes once more)."""
    text: str = etree.tostring(node, method="html", encoding="unicode")
    return text


# --------------------------------------------------------------------------- links


def link_to(depth: int, folder: str, record_id: str) -> str:
    """Relative href of an archive page from a page `depth` folders deep; ids are percent-encoded."""
    return "../" * depth + f"{folder}/{quote(record_id, safe='@')}.html"


def external(url: str, label: str | None = None) -> Element:
    """A link out, only for http(s) URLs; anything else (javascript:, data:...) stays inert text."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return el("a", label or url, href=url.strip(), rel="nofollow noopener noreferrer")
    return el("span", label or url, class_="url")


# --------------------------------------------------------------------------- diffs


def _with_breaks(text: str) -> list[Child]:
    """Newlines as <br>: feed readers drop our CSS, so line structure must be markup, not whitespace."""
    pieces: list[Child] = []
    for index, line in enumerate(text.split("\n")):
        if index:
            pieces.append(el("br"))
        if line:
            pieces.append(line)
    return pieces


def _segments(hunk: Hunk) -> tuple[Segment, ...]:
    if hunk.segments:
        return hunk.segments
    # a block diffed line-wise only (over the size cap): the whole old block out, the whole new block in
    return tuple(s for s in (Segment(-1, hunk.before), Segment(1, hunk.after)) if s.text)


def _segment(segment: Segment) -> Child:
    if segment.op < 0:
        return el("del", _with_breaks(segment.text))
    if segment.op > 0:
        return el("ins", _with_breaks(segment.text))
    return _with_breaks(segment.text)


def _lines_label(hunk: Hunk) -> str:
    return f"line {hunk.line_before} → line {hunk.line_after}"


def inline_diff(diff: TextDiff) -> Element:
    """Each changed block with word highlights: <del> for removed words, <ins> for added ones."""
    blocks = [
        el(
            "div",
            el("p", _lines_label(h), class_="where"),
            el("p", [_segment(s) for s in _segments(h)], class_="text"),
            class_="hunk",
        )
        for h in diff.hunks
    ]
    return el("div", blocks or el("p", "No wording difference."), class_="diff")


def side_by_side(diff: TextDiff, *, before_label: str, after_label: str) -> Element:
    """The old block beside the new one; on a narrow screen the CSS stacks the two cells."""
    head = el("thead", el("tr", el("th", before_label, scope="col"), el("th", after_label, scope="col")))
    rows = [
        el(
            "tr",
            el("td", [_segment(s) for s in _segments(h) if s.op <= 0], class_="text"),
            el("td", [_segment(s) for s in _segments(h) if s.op >= 0], class_="text"),
        )
        for h in diff.hunks
    ]
    return el("table", head, el("tbody", rows), class_="side")


def quotes(diff: TextDiff, *, first: Sequence[int] = (), limit: int = 3, width: int = 400) -> list[str]:
    """The changed sentences, before → after, one line per changed block: the blocks listed in `first`
    (those a topic matched) lead, then the others in text order; at most `limit` blocks."""
    lines = [_quote(diff.hunks[i], width) for i in hunk_order(diff, first)[:limit]]
    if len(diff.hunks) > limit:
        lines.append(f"(and {len(diff.hunks) - limit} more changed passage(s))")
    return lines


def hunk_order(diff: TextDiff, first: Sequence[int]) -> list[int]:
    leading = list(dict.fromkeys(i for i in first if 0 <= i < len(diff.hunks)))
    return leading + [i for i in range(len(diff.hunks)) if i not in leading]


def _quote(hunk: Hunk, width: int) -> str:
    before = _clip(" ".join(hunk.sentences_before) or hunk.before, width)
    after = _clip(" ".join(hunk.sentences_after) or hunk.after, width)
    if before and after:
        return f"“{before}” → “{after}”"
    return f"added: “{after}”" if after else f"removed: “{before}”"


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"
