"""Stage 2, extract: the fast reader. The same canonical text as watchdog.extract, without a Python tree of
the page, and a fingerprint that says "same text as last time" without rendering it.

fetch -> **extract** -> validate -> store -> diff -> classify -> notify/publish

beautifulsoup4 is the parser of record (watchdog.extract): it builds a Python object per element and string
of the page (~75 ms for a 370 KB policy), then one walk renders the selected subtrees. The fast reader
gets the same tree from the same parser, libxml2, through lxml (a few ms, in C), and:

1. applies `remove` and `select` with XPath (watchdog.cssxpath translates the selectors with soupsieve's
   semantics; a selector it does not translate sends the page to the parser of record);
2. decides in Python, for the few elements that need it, what the renderer would ask the tree: hidden
   (extract.is_hidden), layout tables, a link's image alt text and shown target, a heading's aria-level;
   and marks the answers on the elements, in a namespace of ours no HTML parser produces;
3. prunes each selected subtree in one XSLT pass (libxslt, in C) to exactly what rendering depends on:
   elements by name, the few attributes the renderer reads (role=heading, aria-level, the presence of
   aria-expanded / aria-controls / aria-haspopup) and our marks; no script/style/... (extract.DROP), no
   hidden elements, no comments, no ruby-annotation text; text with its runs of HTML white space as one
   space (the renderer does the same, so the text it renders is unchanged), except under <pre>;
4. **fingerprint**: SHA-256 of the pruned subtrees' serialisation, in which a run of spaces, no-break or
   other Unicode spaces and invisible characters that follows a visible character (directly, or through
   the tags of inline elements) is one space, or nothing when it has no space at all: the renderer's
   normalisation makes every such run one space or nothing, whatever the run (see _RUN_AFTER_VISIBLE).
   Two captures with one fingerprint have one canonical text; page noise (attributes, scripts, styles,
   comments, hidden elements, tracking parameters, signed media URLs, white-space variants) leaves it;
5. **render** (only when needed): extract.Renderer over the pruned tree: the canonical text.

tests/test_fastread.py proves on every corpus page and on mutated variants (attributes, hidden elements,
scripts, comments, link targets, white space) that the text rendered here is the parser of record's, and
that equal fingerprints mean equal text and equal validation. Selectors outside the translated grammar, a
parse lxml refuses, or a page where the parser of record would raise read through watchdog.extract: the
reading is then `slow` and has no fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from typing import Any, Final

from watchdog.cssxpath import UNICODE_ONLY_SPACES, to_xpath
from watchdog.extract import (
    DROP,
    DROPPED_CHARS,
    HTML_SPACE,
    SPACE_CHARS,
    UNREAD_TEXT_IN,
    LinkTargets,
    LinkWatch,
    Renderer,
    aria_heading_level,
    decode_page,
    extract,
    is_hidden,
    resolve_base,
    title_text,
)
from watchdog.models import SelectorSet
from watchdog.patterns import lazy
from watchdog.results import Extracted

__all__ = ["NS", "PageReading", "read_page"]

NS: Final = (
    "urn:policy-watchdog:reader"  # our marks on the tree: no HTML parser produces namespaced attributes
)
_HIDDEN, _LAYOUT, _ALT, _URL, _LEVEL = (
    f"{{{NS}}}{name}" for name in ("hidden", "layout", "alt", "url", "level")
)
_ALT_START: Final = "|"
_FORMAT: Final = b"fastread 2\0"  # bump when the serialisation fingerprinted below changes meaning


def read_page(
    body: bytes,
    *,
    content_type: str | None,
    url: str,
    select: Sequence[str] = (),
    remove: Sequence[str] = (),
    keep_links: bool = False,
    alternatives: Sequence[SelectorSet] = (),
    watch_links: Sequence[str] = (),
) -> PageReading:
    """A capture, read lazily: `fingerprints()` and `extracted()` do the work (see the module docstring).
    Raises ExtractError when the body is no readable page (as watchdog.extract.extract does)."""
    sets = (SelectorSet(tuple(select), tuple(remove)), *alternatives)
    text, is_markup = decode_page(body, content_type=content_type)
    options = _Options(url, keep_links, LinkWatch(watch_links))
    fast = is_markup and all(_translated(s.select) and _translated(s.remove) for s in sets)

    def full() -> Extracted:
        return extract(
            body, content_type=content_type, url=url, select=select, remove=remove,
            keep_links=keep_links, alternatives=alternatives, watch_links=watch_links,
        )  # fmt: skip

    return PageReading(text if fast else None, sets, options, full)


def _translated(selectors: tuple[str, ...]) -> bool:
    return not selectors or to_xpath(selectors) is not None


class _Options:
    __slots__ = ("keep_links", "url", "watch")

    def __init__(self, url: str, keep_links: bool, watch: LinkWatch) -> None:
        self.url, self.keep_links, self.watch = url, keep_links, watch


class PageReading:
    """One capture read with a target's selector sets (the plain `select`/`remove`, then `alternatives`)."""

    def __init__(self, markup: str | None, sets: Sequence[SelectorSet], options: _Options, full: Any) -> None:
        self._markup = markup
        self._sets = sets
        self._options = options
        self._full = full
        self._read: dict[int, _SetReading | None] = {}
        self.slow = markup is None  # read by the parser of record (no fingerprints)

    def fingerprints(self, count: int) -> tuple[str, ...] | None:
        """The fingerprints of the first `count` selector sets, or None when this reading has none."""
        found = []
        for index in range(min(count, len(self._sets))):
            reading = self._set(index)
            if reading is None or reading.fingerprint is None:
                return None
            found.append(reading.fingerprint)
        return tuple(found)

    def extracted(self) -> Extracted:
        """The canonical text, exactly as watchdog.extract.extract gives it (the first set with text wins)."""
        first = self._set(0)
        if first is None:
            return self._full()  # type: ignore[no-any-return]
        result = first.extracted
        if result.text or len(self._sets) == 1:
            return result
        for index in range(1, len(self._sets)):
            found = self._set(index)
            if found is None:
                return self._full()  # type: ignore[no-any-return]
            if found.extracted.text:
                return replace(found.extracted, alternative=index)
        return result

    def _set(self, index: int) -> _SetReading | None:
        if self._markup is None:
            return None
        if index not in self._read:
            self._read[index] = _SetReading.of(self._markup, self._sets[index], self._options)
            if self._read[index] is None:
                self.slow = True
        return self._read[index]


class _Declined(Exception):
    """The fast reader cannot promise the parser of record's result for this page: read it there."""


class _SetReading:
    """The page pruned for one selector set (a fresh parse: `remove` changes the tree)."""

    def __init__(self, roots: list[Any], matched: bool, title: str, links: LinkTargets) -> None:
        self.roots = roots  # pruned subtrees (XSLT results), one per selected element that renders at all
        self.matched = matched
        self.title = title
        self.links = links
        self._fingerprint: str | bool | None = False
        self._extracted: Extracted | None = None

    @classmethod
    def of(cls, markup: str, chosen: SelectorSet, options: _Options) -> _SetReading | None:
        try:
            return cls._prune(markup, chosen, options)
        except _Declined:
            return None

    @classmethod
    def _prune(cls, markup: str, chosen: SelectorSet, options: _Options) -> _SetReading:
        root = _parse(markup)
        title = root.find(".//title")
        title = title_text(title.xpath("string()") if title is not None else None)
        if chosen.remove:
            for element in _outermost(_select(root, chosen.remove)):
                _detach(element)
        selected = _outermost(_select(root, chosen.select)) if chosen.select else None
        body = root.find(".//body")
        roots = selected if selected is not None else [body if body is not None else root]
        base = root.find(".//base[@href]")
        base_href = base.get("href") if base is not None else None
        links = LinkTargets.of(resolve_base(base_href, options.url), options.keep_links, options.watch)
        pruned = []
        for element in roots:
            _mark(element, links)
            try:
                result = _transform()(element)
            except ValueError as exc:  # an aria-level int() refuses ("²"): the parser of record raises too
                raise _Declined from exc
            if result.getroot() is not None:
                pruned.append(result.getroot())
        return cls(pruned, bool(roots), title, links)

    @property
    def fingerprint(self) -> str | None:
        if self._fingerprint is False:
            self._fingerprint = _fingerprint(self.roots, self.matched)
        return self._fingerprint  # type: ignore[return-value]

    @property
    def extracted(self) -> Extracted:
        if self._extracted is None:
            self._extracted = Extracted(_render(self.roots, self.links), self.matched, self.title)
        return self._extracted


# --------------------------------------------------------------------------- parse, select, mark


def _parse(markup: str) -> Any:
    from lxml import etree  # lazy: only reading a page needs lxml

    # beautifulsoup4's lxml builder: the same libxml2 HTML parser, fed the whole markup at once (the push
    # parser: the pull parser behind etree.HTML() differs on malformed markup), recovering from errors
    parser = etree.HTMLParser(recover=True, huge_tree=False)
    try:
        parser.feed(markup[1:] if markup.startswith("\ufeff") else markup)
        root = parser.close()
    except (etree.LxmlError, ValueError, UnicodeError) as exc:
        raise _Declined from exc
    if root is None:
        raise _Declined
    return root


def _select(root: Any, selectors: Sequence[str]) -> list[Any]:
    translation = to_xpath(tuple(selectors))
    assert translation is not None  # read_page checked
    if translation.selects_classes and _odd_class_spaces(root):
        raise _Declined
    found: list[Any] = _xpath(translation.xpath)(root)
    return found


def _outermost(elements: list[Any]) -> list[Any]:
    """Matches in document order, without those inside another match."""
    chosen = set(elements)
    return [e for e in elements if not any(a in chosen for a in e.iterancestors())]


def _detach(element: Any) -> None:
    """Remove an element and its subtree, keeping the text that follows it (lxml stores it on the element)."""
    parent = element.getparent()
    if parent is None:
        raise _Declined  # the document element itself
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _mark(root: Any, links: LinkTargets) -> None:
    """Answer on the elements what the renderer asks of tables and links (TreeFacts); the transform copies
    the answers. (Hidden elements and headings' levels are decided during the transform.)"""
    if root.xpath("boolean(ancestor::rt | ancestor::rp)"):
        raise _Declined  # the transform sees the subtree only: it would read ruby-annotation text
    for table in root.iter("table"):
        table.set(_LAYOUT, "1" if _is_layout_table(table) else "0")
    for image in root.iter("img"):  # a link's alt text: its first image that has an alt attribute
        alt = image.get("alt")
        if alt is None:
            continue
        for link in image.iterancestors("a"):
            if link.get(_ALT) is None:
                # stripped, and with runs of HTML white space as one space (rendering does the same)
                link.set(_ALT, _ALT_START + HTML_SPACE.sub(" ", alt.strip()))
    if links.wanted:
        for link in root.iter("a"):
            target = links.url(link.get("href"))
            if target is not None:
                link.set(_URL, target)


def _is_layout_table(table: Any) -> bool:
    """As the parser of record: role=presentation/none, or no row of two or more cells of its own."""
    if table.get("role") in ("presentation", "none"):
        return True
    own_wide_row = _xpath("boolean(.//tr[count(td | th) > 1][count(ancestor::table[1] | $table) = 1])")
    return not own_wide_row(table, table=table)


def _odd_class_spaces(root: Any) -> bool:
    """A class attribute with white space beautifulsoup4 splits at and XPath does not (cssxpath)."""
    odd = _xpath("boolean(//@class[translate(., $spaces, '') != .])")
    return bool(odd(root, spaces=UNICODE_ONLY_SPACES))


@cache
def _xpath(expression: str) -> Any:
    from lxml import etree

    return etree.XPath(expression)


# --------------------------------------------------------------------------- prune (XSLT)

# Element by element: the selected element itself (read even when hidden), an element extract.DROP names
# (gone with its subtree), a possibly hidden one (kept unless extract.is_hidden says so), ruby annotations
# (their text is not read: mode "unread"); each kept element keeps what the renderer reads: role=heading,
# its aria-level as a number, the presence of aria-expanded / aria-controls / aria-haspopup, and our marks.
# Text is copied as it is. (A per-text-node test, an ancestor:: look-up or a translate() here costs more
# than the regular expressions of _runs_read on the whole serialisation.)
_TEMPLATE: Final = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:w="{ns}">
  <xsl:output method="xml" omit-xml-declaration="yes"/>
  <xsl:template match="/*" priority="3"><xsl:call-template name="copy"/></xsl:template>
  <xsl:template match="{dropped}" priority="4"/>
  <xsl:template match="{dropped}" mode="unread"/>
  <xsl:template match="*">
    <xsl:if test="not(({suspect}) and w:hidden(.))"><xsl:call-template name="copy"/></xsl:if>
  </xsl:template>
  <xsl:template match="{unread}" priority="2">
    <xsl:if test="not(({suspect}) and w:hidden(.))"><xsl:call-template name="copy-unread"/></xsl:if>
  </xsl:template>
  <xsl:template match="*" mode="unread">
    <xsl:if test="not(({suspect}) and w:hidden(.))"><xsl:call-template name="copy-unread"/></xsl:if>
  </xsl:template>
  <xsl:template match="text()" mode="unread"/>
  <xsl:template name="copy">
    <xsl:copy><xsl:call-template name="attributes"/><xsl:apply-templates/></xsl:copy>
  </xsl:template>
  <xsl:template name="copy-unread">
    <xsl:copy><xsl:call-template name="attributes"/><xsl:apply-templates mode="unread"/></xsl:copy>
  </xsl:template>
  <xsl:template name="attributes">
    <xsl:if test="@role = 'heading'">
      <xsl:attribute name="role">heading</xsl:attribute>
      <xsl:if test="@aria-level">
        <xsl:attribute name="aria-level"><xsl:value-of select="w:level(@aria-level)"/></xsl:attribute>
      </xsl:if>
    </xsl:if>
    <xsl:for-each select="@aria-expanded | @aria-controls | @aria-haspopup">
      <xsl:attribute name="{{name()}}"/>
    </xsl:for-each>
    <xsl:copy-of select="@w:*"/>
  </xsl:template>
</xsl:stylesheet>
"""


@cache
def _transform() -> Any:
    from lxml import etree

    stylesheet = _TEMPLATE.format(
        ns=NS,
        dropped=" | ".join(sorted(DROP)),
        unread=" | ".join(sorted(UNREAD_TEXT_IN)),
        suspect="@hidden or @style or @aria-hidden or self::dialog",
    )
    extensions = {(NS, "hidden"): _hidden, (NS, "level"): _level}
    return etree.XSLT(etree.XML(stylesheet), extensions=extensions)


def _hidden(_context: object, elements: list[Any]) -> bool:
    element = elements[0]
    return is_hidden(element.tag, element.attrib, element, _holds_landmark)


def _holds_landmark(element: Any) -> bool:
    return bool(_xpath("boolean(.//main | .//*[@role='main'])")(element))


def _level(_context: object, values: list[str]) -> str:
    return str(aria_heading_level(values[0]))


# --------------------------------------------------------------------------- fingerprint

# How the renderer reads a run of spaces, Unicode spaces (extract.normalise makes them spaces) and invisible
# characters (normalise drops them) that follows a visible character on a line: as one space when the run
# holds a space or a Unicode space, as nothing otherwise (runs of spaces after a non-space collapse, and
# invisible characters vanish). In the serialisation, a run follows either text (a visible character: all
# white space is in the run or is a line break) or a tag's ">" (the run may start a line, or a link's text),
# or a line separator (U+0085, U+2028, U+2029: normalise makes them line breaks). Runs of the first kind are
# rewritten by one str.translate; the others are kept exactly (written as character references, which the
# serialisation cannot otherwise hold), except a run after the tags of inline elements that follow a
# visible character ("word</b>\u00a0next" reads as "word next"; not after a link's start: a link's own text
# decides whether it shows its image's alt text).
_RUN_CHARS: Final = re.escape(SPACE_CHARS + DROPPED_CHARS)
_NEEDS_RUNS: Final = lazy(f"[{_RUN_CHARS}]")
_RUN_AFTER_TAG: Final = lazy(f">([ {_RUN_CHARS}]*[{_RUN_CHARS}][ {_RUN_CHARS}]*)")
_RUN_AFTER_SEPARATOR: Final = lazy(f"[\x85\u2028\u2029]([ {_RUN_CHARS}]*[{_RUN_CHARS}][ {_RUN_CHARS}]*)")
_SEPARATORS: Final = ("\x85", "\u2028", "\u2029")
_INLINE_TAG: Final = lazy(
    "</?(?:b|strong|i|em|u|s|span|sup|sub|small|big|code|kbd|samp|var|abbr|cite|dfn|mark|q|time|font|bdi"
    "|bdo|del|ins|label|tt|nobr|strike|data|acronym)/?>|</a>"
)
_INVISIBLE_OR_SPACE: Final = frozenset(DROPPED_CHARS + SPACE_CHARS) | set(" \n<>\x85\u2028\u2029")
_SPACE_PAIR: Final = lazy("  +")
# Every "<" of the serialisation starts a tag (text has &lt;): one whose name is not plain letters and digits
# could hold a run the rules above would read as text.
_ODD_TAG: Final = lazy(r"<(?!/?[a-z][a-z0-9]*[ />])")


def _fingerprint(roots: Sequence[Any], matched: bool) -> str | None:
    from lxml import etree

    digest = hashlib.sha256(_FORMAT + (b"matched\0" if matched else b"none\0"))
    for root in roots:
        serialised = _runs_read(etree.tostring(root, encoding="unicode"))
        if serialised is None:
            return None
        digest.update(serialised.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _runs_read(serialised: str) -> str | None:
    """The serialisation with white space read as the renderer reads it (see above); None when no such
    promise can be made (a character XML cannot hold is written as U+FFFD, whatever it was). Preformatted
    text (<pre> elements) keeps its white space as it is."""
    if "&#" in serialised.replace("&#13;", "") or _ODD_TAG.search(serialised):
        return None
    if "<pre" not in serialised:
        return _read_runs(serialised)
    pieces = _PRE.split(serialised)  # outside, <pre>, outside, <pre>, ..., outside
    outside, inside = pieces[::2], pieces[1::2]
    if any("<pre" in piece for piece in outside) or any(piece.count("<pre") > 1 for piece in inside):
        return None  # unclosed or nested <pre>: no promise
    # a piece after a <pre> element starts right after that element's tag: its first run is a run after a tag
    pieces[::2] = [_read_runs(outside[0])] + [_after_pre(piece) for piece in outside[1:]]
    return "".join(pieces)


def _after_pre(piece: str) -> str:
    return _read_runs(_PRE_END + piece)[len(_PRE_END) :]


_PRE_END: Final = "</pre>"


_PRE: Final = lazy(r"(<pre(?:\s[^>]*)?/>|<pre[\s>].*?</pre>)", re.DOTALL)


def _read_runs(serialised: str) -> str:
    # runs of HTML white space are one space wherever they are (outside <pre>): CR is written &#13;
    serialised = serialised.replace("&#13;", " ").replace("\n", " ").replace("\t", " ")
    if not _NEEDS_RUNS.search(serialised):
        return _SPACE_PAIR.sub(" ", serialised)
    serialised = _RUN_AFTER_TAG.sub(_run_after_tag, serialised)
    if any(separator in serialised for separator in _SEPARATORS):  # rare: a substring test skips the pass
        serialised = _RUN_AFTER_SEPARATOR.sub(lambda m: m.group()[0] + _kept(m.group(1)), serialised)
    # Invisible characters dropped and Unicode spaces read as spaces, one character at a time: a page holds
    # few of the ~90 kinds, and a substring test of each is cheaper than one regular-expression pass over
    # the page (a third of the cost, measured on real policies). Kept runs are character references by now.
    for char in DROPPED_CHARS:
        if char in serialised:
            serialised = serialised.replace(char, "")
    for char in SPACE_CHARS:
        if char in serialised:
            serialised = serialised.replace(char, " ")
    return _SPACE_PAIR.sub(" ", serialised)


def _run_after_tag(match: re.Match[str]) -> str:
    """A run after a tag: read as after text when the tags before it are inline ones that follow a visible
    character, else kept exactly."""
    text, at = match.string, match.start() + 1
    while at > 0 and text[at - 1] == ">":
        start = text.rfind("<", 0, at)
        if _INLINE_TAG.fullmatch(text, start, at) is None:
            return ">" + _kept(match.group(1))
        at = start
    if at == 0 or text[at - 1] in _INVISIBLE_OR_SPACE:
        return ">" + _kept(match.group(1))
    return match.group()  # read by the translation, as after text


def _kept(run: str) -> str:
    return "".join(f"&#x{ord(char):X};" if char != " " else " " for char in run)


# --------------------------------------------------------------------------- render


class _PrunedFacts:
    """TreeFacts of a pruned tree: the answers were marked on the elements before the transform."""

    def layout_table(self, table: Any) -> bool:
        return bool(table.get(_LAYOUT) == "1")

    def link_alt(self, link: Any) -> str:
        return str(link.get(_ALT, "")).removeprefix(_ALT_START)

    def link_url(self, link: Any) -> str | None:
        url = link.get(_URL)
        return None if url is None else str(url)


_FACTS: Final = _PrunedFacts()


def _render(roots: Sequence[Any], links: LinkTargets) -> str:
    from lxml import etree

    renderer = Renderer(_FACTS, links)
    start, text, end = renderer.start, renderer.text, renderer.end
    for root in roots:
        closes: list[Any] = []
        for event, element in etree.iterwalk(root, events=("start", "end")):
            if event == "start":
                closes.append(start(element.tag, element.attrib, element))
                if element.text:
                    text(element.text)
            else:
                close = closes.pop()
                if close is not None:
                    end(close)
                if element.tail:
                    text(element.tail)
        renderer.end_root()
    return renderer.finish()
