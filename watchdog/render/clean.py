"""Render, step 1: page text made inert and readable, whatever the output format.

Page text is hostile input. Before any format escapes it, every page- or server-derived string loses:
- C0/C1 control characters (terminal escapes, NUL), tabs become spaces, CR/LF and U+2028/9 become LF;
- bidirectional overrides, embeddings, isolates and marks (U+202A-E, U+2066-9, U+200E/F, U+061C): they
  can make "exe.txt" read "txt.exe" or hide a link target;
- zero-width characters (U+200B-D, U+2060, U+FEFF, U+180E): they can split "@everyone" so a filter
  misses it, then vanish when the text is shown.

A canonical text line also carries structure markers (`## ` headings, `- ` list items, ` | ` cells,
` • ` items inside a cell, see extract.py); `display_line` turns a line into what a reader sees: the
heading's words, a bullet, the cells, with no Markdown left in any format.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from watchdog.patterns import lazy

_INVISIBLE = lazy("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_NEWLINES = lazy("\r\n|[\r\u2028\u2029\x85]")
_MARKER = lazy(r"^(?P<indent>[ \t]*)(?:(?P<heading>#{1,6})|(?P<item>[-*+•]|\d{1,3}[.)]))[ \t]+")

LineKind = Literal["heading", "item", "row", "text"]


def inert(text: str) -> str:
    """Page text without control, bidi or zero-width characters; tabs are spaces, line breaks LF."""
    return _INVISIBLE.sub("", _NEWLINES.sub("\n", text).replace("\t", " "))


def one_line(text: str) -> str:
    """inert(), on one line, spaces collapsed."""
    return " ".join(inert(text).split())


_SPACES = lazy(r"\s+")


def flat(text: str) -> str:
    """inert(), on one line, each run of spaces one space: a piece glued to its neighbours keeps the
    space at its edges."""
    return _SPACES.sub(" ", inert(text))


def clip(text: str, width: int) -> str:
    """`text` (one line) shortened at a word boundary to at most `width` characters, with an ellipsis."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    return text[: cut if cut > width // 2 else width - 1].rstrip(" ,;:") + "…"


class DisplayLine(NamedTuple):
    """A canonical line as a reader sees it. (A named tuple, not a frozen dataclass: a version page makes
    one per line of its text, and a tuple is built in half the time.)"""

    kind: LineKind
    text: str  # without its marker
    depth: int = 0  # list nesting (0 outside lists), heading level for headings
    marker_length: int = 0  # characters of the canonical line before `text`


# what a marker (_MARKER) starts with, after the indentation; a decimal digit (\d) too
_MARKER_STARTS = frozenset("#-*+•")


def _marker(line: str) -> re.Match[str] | None:
    """_MARKER.match(line), tried only when the line's first character after its indentation can start a
    marker (most lines start with a word)."""
    start = line.lstrip(" \t")[:1]
    return _MARKER.match(line) if start in _MARKER_STARTS or start.isdecimal() else None


def display_line(line: str) -> DisplayLine:
    marker = _marker(line)
    if marker is None:
        kind: LineKind = "row" if " | " in line else "text"
        return DisplayLine(kind, line.strip(), 0, len(line) - len(line.lstrip()))
    if marker.group("heading"):
        return DisplayLine("heading", line[marker.end() :], len(marker.group("heading")), marker.end())
    depth = len(marker.group("indent").expandtabs(2)) // 2 + 1
    return DisplayLine("item", line[marker.end() :], depth, marker.end())


def readable(pieces: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A diff's (op, text) pieces with the line markers of the canonical text made readable: a heading
    loses its hashes, a list item's "- " becomes "• " (its indentation kept). A marker that a change cuts
    in two is left as it is (the change is in the marker itself). The old side (equal and deleted pieces)
    and the new side (equal and inserted pieces) each keep their own idea of where a line starts."""
    out: list[tuple[int, str]] = []
    at_start = {-1: True, 1: True}  # old side, new side
    for op, text in pieces:
        if not text:
            continue
        starting = at_start[-1] and at_start[1] if op == 0 else at_start[op]
        lines = text.split("\n")
        cleaned = [
            _readable_start(line) if (n > 0 or starting) and line else line for n, line in enumerate(lines)
        ]
        out.append((op, "\n".join(cleaned)))
        for side in (-1, 1) if op == 0 else (op,):
            at_start[side] = text.endswith("\n")
    return out


def _readable_start(line: str) -> str:
    marker = _marker(line)
    if marker is None:
        return line
    if marker.group("heading"):
        return line[marker.end() :]
    if marker.group("item") in ("-", "*", "+"):
        return marker.group("indent") + "• " + line[marker.end() :]
    return line
