"""The heading structure of a canonical text: where a line sits ("What is our legal basis…? › Legitimate
interests"), and a stable anchor for each section, shared by diff (hunks name their section) and the
archive's version pages (each section gets that anchor), so a hunk in an alert links to its place.

    extract -> canonical text -> **sections** -> diff (Hunk.section) -> render / publish

What counts as structure in the canonical text (see extract.py):
- a heading line: `# ` to `###### ` (after a list marker or indentation, if any);
- a table header row: a heading line holding cell separators (`### Why | Legitimate interests relied on`):
  it names the columns of the table below it, it is no section of its own;
- a heading inside a table (a row-group heading like "For people over the age of majority"): a section
  only until the table ends (a blank line);
- a table row (`label | cell | cell`): its first cell is the row's label, and the column of the change
  names the cell, so a hunk inside a 5,000-character legal-basis row still says where it is.

Headings that name nothing (bare numbers, punctuation: accordion placeholders) are skipped.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from watchdog.patterns import lazy

SEPARATOR = " › "
LABEL_MAX = 90  # characters of a row label or heading shown in a path
_HEADING = lazy(r"^[ \t]*(?:[-*+•] )?(#{1,6})[ \t]+(.*?)[ \t]*$")
_CELL = lazy(r" \| ")
_NAMELESS = lazy(r"^[\W\d_]*$")
_SLUG_STRIP = lazy(r"[^a-z0-9]+")
_LABEL_END = lazy(r":(?:\s|$)|(?<=[.!?])\s")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a line of a canonical text sits: its heading path, and the anchor of its section."""

    path: tuple[str, ...]
    anchor: str  # "" before the first heading


@dataclass(frozen=True, slots=True)
class Heading:
    """A section start, for the version pages: the 0-based line, its level, its path and anchor."""

    line: int
    level: int
    text: str
    path: tuple[str, ...]
    anchor: str


# Remembered (pure): a page's headings are walked for its old and its new text, and again for its version
# page, and every heading's anchor slugs each part of its path (the parent headings, again and again).
@lru_cache(maxsize=8192)
def label(text: str) -> str:
    """A short name for a heading or a row's first cell: up to a colon or the first sentence end, else
    cut at a word boundary."""
    flat = " ".join(text.split())
    paren = flat.find(" (")
    if paren >= 12:  # "Information categories we use (see '…' for more detail)": the words before it
        flat = flat[:paren]
    end = _LABEL_END.search(flat)
    if end is not None and 0 < end.start() <= LABEL_MAX:
        flat = flat[: end.start() + (1 if flat[end.start()] in ".!?" else 0)].rstrip(":")
    if len(flat) <= LABEL_MAX:
        return flat
    cut = flat.rfind(" ", 0, LABEL_MAX)
    return flat[: cut if cut > LABEL_MAX // 2 else LABEL_MAX].rstrip(" ,;") + "…"


def cells(line: str) -> list[str]:
    """The cells of a table row line ("a | b | c"); a line without separators is one cell."""
    return [c.strip() for c in _CELL.split(line.strip().removeprefix("| ").removesuffix(" |"))]


def is_row(line: str) -> bool:
    return _CELL.search(line) is not None and not _HEADING.match(line)


def anchor_for(path: Sequence[str], occurrence: int = 1) -> str:
    """A stable HTML id for a section: the same path (and occurrence) gives the same id in every version."""
    if not path:
        return ""
    parts = [_slug(part) for part in path]
    slug = "--".join(parts)
    if len(slug) > 80:
        slug = slug[:60].rstrip("-") + "-" + hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"s-{slug}" + (f"-{occurrence}" if occurrence > 1 else "")


@lru_cache(maxsize=8192)  # pure; see label
def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = _SLUG_STRIP.sub("-", ascii_text).strip("-")[:40].strip("-")
    return slug or "h" + hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class _HeadingLine:
    """What a heading line says: a section (level, text, label; no label when it names nothing), or the
    columns of the table below it (a table header row)."""

    level: int
    text: str
    label: str | None
    columns: tuple[str, ...] | None


@lru_cache(maxsize=8192)  # pure; see label: the same heading lines are read for each text of a page
def _heading_line(line: str) -> _HeadingLine | None:
    heading = _HEADING.match(line)
    if heading is None:
        return None
    level, text = len(heading.group(1)), heading.group(2)
    if _CELL.search(text):
        return _HeadingLine(level, text, None, tuple(label(c) for c in cells(text)))
    return _HeadingLine(level, text, None if _NAMELESS.match(text) else label(text), None)


@lru_cache(maxsize=8192)  # pure; see label
def _anchor(path: tuple[str, ...], occurrence: int) -> str:
    return anchor_for(path, occurrence)


@dataclass
class _Walker:
    """Walks the lines once, keeping the heading stack, the table context and anchor occurrences."""

    stack: list[tuple[int, str, bool]]  # (level, label, inside a table)
    columns: tuple[str, ...] = ()
    in_table: bool = False
    seen: dict[tuple[str, ...], int] | None = None
    anchor: str = ""

    def step(self, line: str, number: int = -1) -> Heading | None:
        """Account for line `number`; a Heading when the line starts a section."""
        if not line.strip():
            if self.in_table:
                self.stack = [entry for entry in self.stack if not entry[2]]
                self.columns, self.in_table = (), False
            return None
        if "#" not in line:  # no heading (it needs one), so is_row(line) is the separator alone: most lines
            self.in_table = self.in_table or " | " in line
            return None
        heading = _heading_line(line)
        if heading is None:
            self.in_table = self.in_table or is_row(line)
            return None
        if heading.columns is not None:  # a table header row: the columns of the rows below
            self.columns, self.in_table = heading.columns, True
            return None
        if heading.label is None:
            return None
        # a heading inside a table (a row group) nests in the section holding the table, whatever its level
        level, in_table = heading.level, self.in_table
        self.stack = [e for e in self.stack if e[0] < level or (in_table and not e[2])]
        self.stack.append((level, heading.label, in_table))
        path = self.path
        seen = self.seen if self.seen is not None else {}
        seen[path] = seen.get(path, 0) + 1
        self.seen = seen
        self.anchor = _anchor(path, seen[path])
        return Heading(number, level, heading.text, path, self.anchor)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple([entry[1] for entry in self.stack])

    def place(self, line: str, column: int | None) -> Place:
        """The place of a (content) line just stepped over, with its row label and column if a row."""
        path = self.path
        if is_row(line):
            row = cells(line)
            extra = [label(row[0])] if row and row[0] and not _NAMELESS.match(row[0]) else []
            if column is not None and 0 < column < len(self.columns) and self.columns[column]:
                extra.append(self.columns[column])
            path = (*path, *extra)
        return Place(path, self.anchor)


def headings(text: str) -> list[Heading]:
    """Every section start of a canonical text, in order, with its line number."""
    walker = _Walker(stack=[])
    found = []
    lines = text.split("\n")
    for number in _stepped(lines):
        heading = walker.step(lines[number], number)
        if heading is not None:
            found.append(heading)
    return found


def places(text: str, wanted: Iterable[tuple[int, int | None]]) -> dict[int, Place]:
    """The place of each wanted (0-based line, column or None) of `text`, in one pass over its lines.

    A heading line is its own section's place (a hunk that edits or adds a heading is in that section)."""
    by_line: dict[int, int | None] = {}
    for line_number, column in wanted:
        by_line.setdefault(line_number, column)
    if not by_line:
        return {}
    lines = text.split("\n", max(by_line) + 1)[: max(by_line) + 1]  # lines 0..last, split in C
    walker = _Walker(stack=[])
    found: dict[int, Place] = {}
    # a wanted line that step would skip changes nothing either: stepping it too keeps one order
    for number in sorted({*_stepped(lines), *(n for n in by_line if n < len(lines))}):
        line = lines[number]
        walker.step(line)
        if number in by_line:
            found[number] = walker.place(line, by_line[number])
    return found


def _stepped(lines: Sequence[str]) -> list[int]:
    """The indexes of the lines that can change a walk: those holding "#" (a heading) or " | " (a cell),
    and the first blank line after a row (it ends the table). _Walker.step changes nothing on any other
    line (most lines), so a walk steps over these only, found by one comprehension instead of a call of
    step per line."""
    marked = [number for number, line in enumerate(lines) if "#" in line or " | " in line]
    ends: list[int] = []
    table_end = -1  # the first blank line after the last row looked at (len(lines): none)
    for number in marked:
        if number > table_end and " | " in lines[number]:
            table_end = number + 1
            while table_end < len(lines) and lines[table_end].strip():
                table_end += 1
            ends.append(table_end)
    return sorted({*marked, *(end for end in ends if end < len(lines))}) if ends else marked


def column_at(line: str, offset: int) -> int | None:
    """Which cell of a row line holds `offset` (None when the line is no row)."""
    if not is_row(line):
        return None
    return len(_CELL.findall(line[: max(0, offset)]))


def joined(path: Sequence[str]) -> str:
    return SEPARATOR.join(path)
