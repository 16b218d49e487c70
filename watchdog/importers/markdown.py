"""Imports, Markdown: an Open Terms Archive version (Markdown) -> the HTML page it was read from.

Open Terms Archive stores each version as Markdown converted from the page's selected content. To compare
cleanly with our own captures, an imported version is NOT parsed as Markdown into text by rules of its own:
it is rendered back to HTML (markdown-it-py, CommonMark with GFM tables, raw HTML kept) and then read by the
very extractor a live page goes through (watchdog.extract), so headings, lists, table rows, link labels and
every normalisation come out exactly as they do for a live capture. Where OTA's selection of the page is
the target's own, the imported text IS the live text, byte for byte (tests/test_import_ota.py shows it on
the Meta AI terms, from the raw snapshot OTA read and the Markdown it wrote).

Three repairs, where OTA's converter (turndown) wrote block markup that Markdown cannot hold, so that the
text reads as the page did rather than as Markdown syntax:
- a link wrapping blocks (a "link card": title, then source; a "Learn more" button) was written with
  blank lines inside its brackets, which no Markdown reader takes for a link (the text would show
  "](https://l.php?...)" with a rotating signed URL, a fake change at every version): its text is joined
  into one line;
- link cards in a row were written as links with nothing between them, which would glue their titles into
  one word: a line made only of links becomes one paragraph per link, as the cards were blocks;
- table cells cannot hold blocks, so cell headings came out as a literal "### " and the lists in cells as
  "<br>* item" lines: the cells are rebuilt as the page has them (<h3>, <ul><li>), as extract expects.
"""

from __future__ import annotations

import re
from functools import cache
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# a link: [text](url), the text with escapes but no bare brackets, the URL without spaces (one level of
# parentheses allowed inside it)
_TEXT = r"(?:\\.|[^\[\]\\])*?"
_URL = r"[^()\s]*(?:\([^()\s]*\)[^()\s]*)*"
BLOCK_LINK = re.compile(r"\[(" + _TEXT + r"\n" + _TEXT + r")\]\((" + _URL + r")\)")
LINK = r"!?\[" + _TEXT + r"\]\(" + _URL + r"\)"
LINK_RUN = re.compile(r"^([ \t]*)((?:" + LINK + r"){2,})[ \t]*$", re.MULTILINE)
ONE_LINK = re.compile(LINK)
CELL = re.compile(r"<(td|th)>(.*?)</\1>", re.DOTALL)
CELL_HEADING = re.compile(r"^(#{1,6}) +(.*)$", re.DOTALL)


@cache
def _markdown() -> MarkdownIt:
    # imported here, not at module top: only `import ota` (and the tests) render Markdown, and every other
    # command would pay for loading the parser
    from markdown_it import MarkdownIt

    # commonmark keeps raw HTML (OTA's Markdown uses <br> inside table cells); GFM tables on top
    return MarkdownIt("commonmark").enable("table")


def markdown_to_html(markdown_text: str) -> str:
    """The HTML of a Markdown version, with link cards and table cells rebuilt as the page has them."""
    html: str = _markdown().render(_link_cards(markdown_text))
    return CELL.sub(_real_cell, html)


def _link_cards(markdown_text: str) -> str:
    joined = BLOCK_LINK.sub(lambda m: f"[{' '.join(m.group(1).split())}]({m.group(2)})", markdown_text)
    return LINK_RUN.sub(_one_paragraph_each, joined)


def _one_paragraph_each(match: re.Match[str]) -> str:
    indent = match.group(1)
    return "\n\n".join(indent + link.group() for link in ONE_LINK.finditer(match.group(2)))


def markdown_page(markdown_text: str, *, title: str = "") -> bytes:
    """A whole UTF-8 HTML page holding the rendered version (what extract reads)."""
    head = f'<head><meta charset="utf-8"><title>{escape(title)}</title></head>'
    return f"<!DOCTYPE html><html>{head}<body>{markdown_to_html(markdown_text)}</body></html>".encode()


def _real_cell(match: re.Match[str]) -> str:
    tag, content = match.group(1), match.group(2)
    heading = CELL_HEADING.match(content)
    if heading:
        level = len(heading.group(1))
        return f"<{tag}><h{level}>{heading.group(2)}</h{level}></{tag}>"
    if "<br>" not in content and not content.startswith(("* ", "- ")):
        return match.group(0)
    blocks: list[str] = []
    items: list[str] = []
    for piece in content.split("<br>"):
        if piece.startswith(("* ", "- ")):
            items.append(f"<li>{piece[2:]}</li>")
            continue
        if items:
            blocks.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if piece.strip():
            blocks.append(f"<p>{piece}</p>")
    if items:
        blocks.append("<ul>" + "".join(items) + "</ul>")
    return f"<{tag}>{''.join(blocks)}</{tag}>"
