"""The fast reader (watchdog.fastread, watchdog.cssxpath) against the parser of record (watchdog.extract).

Properties, on every corpus page (each corpus version rendered as a page with noise, and every raw page
snapshot with the bundled target that watches it) and on mutated variants of them:

1. the text (and the whole Extracted: matched, title, alternative) the fast reader renders is the parser
   of record's;
2. two captures with one fingerprint have one canonical text and one validation outcome (the pipeline
   takes a known fingerprint for "the current version's text");
3. page noise (attributes, scripts and styles, comments, hidden elements, images, tracking parameters,
   white-space variants) keeps the fingerprint: the fast path is taken, not merely allowed;
4. the XPath the selectors are translated to selects what soupsieve selects.

Mutations are seeded from the page's name (reproducible); random HTML fragments (hypothesis) cover what the
corpus does not: nesting, tables, <pre>, ruby annotations, line separators, invisible characters at line
starts, links that show an image's alt text.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import re
import string
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import watchdog.extract
import watchdog.fastread
import watchdog.validate
from support.corpus import render_page
from support.harness import Site, cycle, write_config
from support.pageserver import PageServer, Reply
from watchdog.config import bundled_config_dir, load_config
from watchdog.cssxpath import to_xpath
from watchdog.errors import ExtractError
from watchdog.extract import DROPPED_CHARS, SPACE_CHARS, extract
from watchdog.fastread import PageReading, read_page
from watchdog.models import Capture, Extracted, SelectorSet, Target
from watchdog.validate import validate

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUNDLED = load_config(bundled_config_dir() / "watchdog.toml", environ={"HOME": "/nonexistent"})
CONTENT_TYPE = "text/html; charset=utf-8"


# --------------------------------------------------------------------------- the pages


@dataclass(frozen=True)
class Page:
    name: str
    body: bytes
    target: Target

    def reading(self, body: bytes | None = None) -> PageReading:
        t = self.target
        return read_page(
            self.body if body is None else body, content_type=CONTENT_TYPE, url=t.url, select=t.select,
            remove=t.remove, keep_links=t.keep_links, alternatives=t.alternatives, watch_links=t.watch_links,
        )  # fmt: skip

    def full(self, body: bytes | None = None) -> Extracted:
        t = self.target
        return extract(
            self.body if body is None else body, content_type=CONTENT_TYPE, url=t.url, select=t.select,
            remove=t.remove, keep_links=t.keep_links, alternatives=t.alternatives, watch_links=t.watch_links,
        )  # fmt: skip


RAW = {
    "meta-privacy-policy": [
        "extract/facebook-privacy-policy-printable-html/2025-12-16T11-35-42Z.html.gz",
        "extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz",
        "extract/facebook-privacy-policy-printable-html/2025-12-17T11-35-35Z.html.gz",
        "pages/printable-2026-07-21T22-33-56Z.html.gz",
        "pages/printable-2026-07-23T22-34-38Z.html.gz",
    ],
    "meta-genai-privacy": ["pages/meta-genai-privacy.html.gz"],
    "meta-ai-terms": [
        "browser/meta-ai-terms-2026-05-13T10-32-30Z.html.gz",
        "extract/meta-ai-terms/2026-01-21T23-36-24Z.html.gz",
        "extract/meta-ai-terms/2026-01-22T23-36-44Z.html.gz",
        "extract/meta-ai-terms/2026-04-21T10-32-37Z.html.gz",
    ],
    "meta-ai-disclosures": ["pages/meta-ai-disclosures.excerpt.html"],
    "instagram-privacy-policy": ["pages/instagram-privacy-policy.excerpt.html"],
}


def raw_pages() -> Iterator[Page]:
    for target_id, files in RAW.items():
        target = BUNDLED.target(target_id)
        assert target is not None
        for name in files:
            data = (FIXTURES / name).read_bytes()
            yield Page(name, gzip.decompress(data) if name.endswith(".gz") else data, target)


def corpus_pages() -> Iterator[Page]:
    """Every corpus version (tests/fixtures: corpus, replay, texts) as a page with noise, read from #root:
    every other one keeping its links, every third one also through an alternative."""
    seen: set[bytes] = set()
    paths = sorted(
        p for folder in ("corpus", "replay", "texts") for p in (FIXTURES / folder).rglob("*.md.gz")
    )
    for index, path in enumerate(paths):
        markdown = gzip.decompress(path.read_bytes())
        if markdown in seen:
            continue
        seen.add(markdown)
        name = str(path.relative_to(FIXTURES))
        alternatives = (SelectorSet(("#root",), ("nav",)),) if index % 3 == 0 else ()
        target = Target(
            id="t", url="https://www.facebook.com/privacy/policy/", name="t",
            select=("#missing",) if alternatives else ("#root",), keep_links=index % 2 == 0,
            alternatives=alternatives,
        )  # fmt: skip
        yield Page(name, render_page(markdown.decode("utf-8"), seed=_seed(name)), target)


def _seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


PAGES = [*raw_pages(), *corpus_pages()]


# --------------------------------------------------------------------------- mutations

TOKEN = re.compile(r"(<[^>]*>)")
# elements whose text is no reader's (or is kept as it is: <pre>): not mutated as text
RAW_TEXT = re.compile(r"<(script|style|textarea|title|template|noscript|svg|pre)\b", re.IGNORECASE)
# a space between two visible characters (invisible ones, such as the zero-width spaces some policies hold
# at the start of list items, do not count: a reader sees the space as the start of the line)
_SEEN = rf"[^\s<>{re.escape(DROPPED_CHARS)}]"
WORD_GAP = re.compile(rf"(?<={_SEEN}) (?={_SEEN})")
SPACE_VARIANTS = ("  ", "\n", "\n    ", "\xa0", "\u202f", " \t", "\u2009", "\u200b ", " \u200b", "\xa0 ")


def _token(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=length))


class Tokens:
    """A page as tag and text tokens, with the text tokens a reader may see (not inside script and co.)."""

    def __init__(self, html: str) -> None:
        self.items = TOKEN.split(html)
        self.text: list[int] = []
        raw: str | None = None
        for index, item in enumerate(self.items):
            if item.startswith("<"):
                if raw is None and (found := RAW_TEXT.match(item)) and not item.endswith("/>"):
                    raw = found.group(1).lower()
                elif raw is not None and item.lower().startswith(f"</{raw}"):
                    raw = None
            elif raw is None and item.strip() and index > 0:
                self.text.append(index)

    def start_tags(self) -> list[int]:
        return [i for i, t in enumerate(self.items) if t.startswith("<") and t[1:2].isalpha()]

    def __str__(self) -> str:
        return "".join(self.items)


def insert_between_words(
    html: str, rng: random.Random, make: Callable[[random.Random], str], count: int
) -> str:
    tokens = Tokens(html)
    for index in rng.sample(tokens.text, k=min(count, len(tokens.text))):
        gaps = [m.start() for m in WORD_GAP.finditer(tokens.items[index])]
        if gaps:
            at = rng.choice(gaps)
            tokens.items[index] = tokens.items[index][:at] + make(rng) + tokens.items[index][at:]
    return str(tokens)


BLOCK_START = re.compile(r"<(?:p|h[1-6])[\s>]", re.IGNORECASE)


def insert_before_tags(
    html: str, rng: random.Random, make: Callable[[random.Random], str], count: int
) -> str:
    """`make`'s markup before paragraphs and headings: where a block may stand (elsewhere the parser could
    close the element around it and change the text)."""
    tokens = Tokens(html)
    starts = [i for i in tokens.start_tags() if BLOCK_START.match(tokens.items[i])]
    for index in rng.sample(starts, k=min(count, len(starts))):
        tokens.items[index] = make(rng) + tokens.items[index]
    return str(tokens)


def noise_attributes(html: str, rng: random.Random) -> str:
    tokens = Tokens(html)
    for index in rng.sample(tokens.start_tags(), k=min(60, len(tokens.start_tags()))):
        tag = tokens.items[index]
        extra = rng.choice(
            [f' class="x{_token(rng)}"', f' data-n="{_token(rng)}"', f' tabindex="-{rng.randint(1, 9)}"',
             f' aria-label="{_token(rng)}"', ' style="color: red"', f' data-ft=\'{{"tn":"{_token(rng)}"}}\'']
        )  # fmt: skip
        end = len(tag) - (2 if tag.endswith("/>") else 1)
        tokens.items[index] = tag[:end] + extra + tag[end:]
    return str(tokens)


def noise_scripts(html: str, rng: random.Random) -> str:
    def make(r: random.Random) -> str:
        return r.choice(
            [f"<script>window.x='{_token(r)} log in';</script>", f"<style>.{_token(r)}{{color:red}}</style>",
             f"<template><p>{_token(r)}</p></template>", f"<noscript><p>{_token(r)}</p></noscript>",
             f"<svg><text>{_token(r)}</text></svg>"]
        )  # fmt: skip

    return insert_before_tags(html, rng, make, 12)


def noise_comments(html: str, rng: random.Random) -> str:
    return insert_between_words(html, rng, lambda r: f"<!-- {_token(r)} -->", 15)


def noise_hidden(html: str, rng: random.Random) -> str:
    def make(r: random.Random) -> str:
        return r.choice(
            [f'<span style="display:none">{_token(r)}</span>', f"<span hidden>{_token(r)}</span>",
             f'<span aria-hidden="true">{_token(r)}</span>', f'<b style="visibility: hidden">{_token(r)}</b>']
        )  # fmt: skip

    html = insert_between_words(html, rng, make, 10)
    return insert_before_tags(
        html, rng, lambda r: f"<div hidden><p>{_token(r)}</p></div><dialog>x</dialog>", 5
    )


def noise_images(html: str, rng: random.Random) -> str:
    return insert_between_words(html, rng, lambda r: f'<img src="https://x.fbcdn.net/{_token(r)}.jpg">', 10)


HREF = re.compile(r'(<a\b[^>]*\bhref=")([^"]*)(")')


def noise_links(html: str, rng: random.Random) -> str:
    def track(match: re.Match[str]) -> str:
        href = match.group(2)
        if not href.startswith(("http", "/")) or "#" in href:
            return match.group()
        joiner = "&amp;" if "?" in href else "?"
        tracking = f"utm_source={_token(rng, 4)}&amp;fbclid=IwAR{_token(rng)}"
        return f"{match.group(1)}{href}{joiner}{tracking}{match.group(3)}"

    return HREF.sub(track, html)


def noise_whitespace(html: str, rng: random.Random) -> str:
    tokens = Tokens(html)
    for index in tokens.text:
        tokens.items[index] = WORD_GAP.sub(
            lambda m: rng.choice(SPACE_VARIANTS) if rng.random() < 0.3 else m.group(), tokens.items[index]
        )
    return str(tokens)


NOISE: dict[str, Callable[[str, random.Random], str]] = {
    "attributes": noise_attributes,
    "scripts": noise_scripts,
    "comments": noise_comments,
    "hidden": noise_hidden,
    "images": noise_images,
    "links": noise_links,
    "whitespace": noise_whitespace,
}


def edit_words(html: str, rng: random.Random) -> str:
    tokens = Tokens(html)
    index = rng.choice(tokens.text)
    tokens.items[index] = (
        tokens.items[index].replace(" ", " changed ", 1)
        if " " in tokens.items[index]
        else (tokens.items[index] + "x")
    )
    return str(tokens)


HIDING = re.compile(r' hidden(?:="[^"]*")?(?=[ />])|display: ?none|aria-hidden="true"')


def edit_visibility(html: str, rng: random.Random) -> str:
    """Show a hidden element, or hide the element before a text the reader sees."""
    hidden = list(HIDING.finditer(html))
    if hidden and rng.random() < 0.5:
        found = rng.choice(hidden)
        return html[: found.start()] + " data-shown" + html[found.end() :]
    tokens = Tokens(html)
    tag = tokens.items[rng.choice(tokens.text) - 1]
    index = tokens.items.index(tag)
    if tag[1:2].isalpha() and not tag.endswith("/>"):
        tokens.items[index] = tag[:-1] + " hidden>"
    return str(tokens)


def edit_link_targets(html: str, rng: random.Random) -> str:
    links = list(HREF.finditer(html))
    if not links:
        return html
    found = rng.choice(links)
    return (
        html[: found.start(2)]
        + "https://www.facebook.com/help/contact/712876720715583"
        + html[found.end(2) :]
    )


def edit_structure(html: str, rng: random.Random) -> str:
    def make(r: random.Random) -> str:
        return r.choice(
            ["<br>", "</p><p>", "<h3>heading</h3>", "<li>item</li>", "<td>cell</td>", "<pre> x\n y</pre>"]
        )

    return insert_between_words(html, rng, make, 2)


def edit_line_starts(html: str, rng: random.Random) -> str:
    """Invisible characters and spaces where a line starts (may or may not change the text)."""
    tokens = Tokens(html)
    for index in rng.sample(tokens.text, k=min(8, len(tokens.text))):
        run = rng.choice(["\u200b\xa0", "\xa0\u200b ", " \u200b\u2009", "\u2028 x", "\u00ad  "])
        tokens.items[index] = run + tokens.items[index]
    return str(tokens)


def edit_alt_links(html: str, rng: random.Random) -> str:
    return insert_before_tags(
        html, rng, lambda r: r.choice([f'<a href="/x{_token(r)}"><img src="i" alt=" {_token(r)} "></a>',
                                       '<a href="/y"><img src="i" alt=""><img alt="second"></a>'], ), 3,
    )  # fmt: skip


EDITS: dict[str, Callable[[str, random.Random], str]] = {
    "words": edit_words,
    "visibility": edit_visibility,
    "link-targets": edit_link_targets,
    "structure": edit_structure,
    "line-starts": edit_line_starts,
    "alt-links": edit_alt_links,
    **{f"noise-{name}": mutate for name, mutate in NOISE.items()},
}


def all_noise(html: str, rng: random.Random) -> str:
    for mutate in NOISE.values():
        html = mutate(html, rng)
    return html


# --------------------------------------------------------------------------- the properties


def validation(page: Page, extracted: Extracted, previous_length: int) -> object:
    capture = Capture("t", page.target.url, page.target.url, 200, (("content-type", CONTENT_TYPE),),
                      page.body, datetime(2026, 7, 24, tzinfo=UTC), "http")  # fmt: skip
    return validate(capture, extracted, target=page.target, previous_length=previous_length)


def check_variant(page: Page, body: bytes, original: Extracted, fingerprint: tuple[str, ...] | None) -> bool:
    """Properties 1 and 2 for one variant; whether its fingerprint is the original's."""
    reading = page.reading(body)
    full = page.full(body)
    assert reading.extracted() == full, "the fast reader's text differs from the parser of record's"
    count = len(fingerprint) if fingerprint else 1
    same = fingerprint is not None and reading.fingerprints(count) == fingerprint
    if same:
        assert full.text == original.text, "one fingerprint, two texts"
        previous = len(original.text)
        assert validation(page, full, previous) == validation(page, original, previous)
    return same


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_fast_reader_on_corpus_pages_and_their_variants(page: Page) -> None:
    rng = random.Random(_seed(page.name))
    original = page.full()
    reading = page.reading()
    assert not reading.slow, "every corpus page is read by the fast reader"
    assert reading.extracted() == original
    count = (original.alternative or 0) + 1
    fingerprint = reading.fingerprints(count)
    assert fingerprint is not None
    html = page.body.decode("utf-8")
    # property 3: all the kinds of page noise at once keep the fingerprint
    noisy = all_noise(html, rng).encode("utf-8")
    assert check_variant(page, noisy, original, fingerprint), "page noise changed the fingerprint"
    # properties 1 and 2 on single mutations, kinds taken in turn over the pages
    index = PAGES.index(page)
    names = sorted(EDITS)
    for name in (names[index % len(names)], names[(index * 7 + 3) % len(names)]):
        variant = EDITS[name](html, rng).encode("utf-8")
        check_variant(page, variant, original, fingerprint)


def test_noise_only_snapshots_share_a_fingerprint() -> None:
    """Real consecutive captures with the same text (OTA recorded markup-only changes between them)."""
    pairs = [
        ("extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz",
         "extract/facebook-privacy-policy-printable-html/2025-12-17T11-35-35Z.html.gz"),
        ("extract/meta-ai-terms/2026-01-21T23-36-24Z.html.gz",
         "extract/meta-ai-terms/2026-01-22T23-36-44Z.html.gz"),
    ]  # fmt: skip
    pages = {p.name: p for p in raw_pages()}
    for first, second in pairs:
        a, b = pages[first], pages[second]
        assert a.full().text == b.full().text
        assert a.reading().fingerprints(1) == b.reading().fingerprints(1) is not None


def test_real_wording_change_changes_the_fingerprint() -> None:
    pages = {p.name: p for p in raw_pages()}
    before = pages["extract/facebook-privacy-policy-printable-html/2025-12-16T11-35-42Z.html.gz"]
    after = pages["extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz"]
    assert before.full().text != after.full().text
    assert before.reading().fingerprints(1) != after.reading().fingerprints(1)


# --------------------------------------------------------------------------- random fragments

TAGS = ("p", "div", "span", "b", "a", "ul", "ol", "li", "table", "tr", "td", "th", "thead", "tbody", "h2",
        "h4", "pre", "section", "summary", "details", "dialog", "ruby", "rt", "code", "em", "sup",
        "blockquote", "dt", "dd", "main", "button", "script", "style", "template", "img", "br")  # fmt: skip
ATTRIBUTES = ("", "", "", ' hidden', ' style="display:none"', ' style="color:red"', ' aria-hidden="true"',
              ' role="heading"', ' role="heading" aria-level="4"', ' role="heading" aria-level="x"',
              ' role="presentation"', ' aria-expanded="false" aria-controls="p1"', ' aria-haspopup="menu"',
              ' open', ' class="c"', ' href="/x?utm_source=a"', ' href="https://l.facebook.com/l.php?u=https%3A'
              '%2F%2Fwww.facebook.com%2Fhelp%2Fcontact%2F712876720715583"', ' alt="pic"', ' alt=""',
              ' role="main"')  # fmt: skip
TEXT = st.text(
    alphabet="ab« »\"'.-" + " \t\n\r" + "\xa0\u2009\u202f\u3000" + "\u200b\u00ad\u200e\x01" + "\u2028\x85"
    + "e\u0301",
    max_size=12,
)  # fmt: skip


@st.composite
def fragments(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4 if depth < 3 else 1))):
        if depth < 4 and draw(st.booleans()):
            tag, attrs = draw(st.sampled_from(TAGS)), draw(st.sampled_from(ATTRIBUTES))
            inner = "" if tag in ("img", "br") else draw(fragments(depth + 1))
            parts.append(f"<{tag}{attrs}>{inner}" + ("" if tag in ("img", "br") else f"</{tag}>"))
        elif draw(st.integers(0, 9)) == 0:
            parts.append(f"<!--{draw(TEXT)}-->")
        else:
            parts.append(draw(TEXT).replace("&", "&amp;").replace("<", "&lt;"))
    return "".join(parts)


WS_CHOICES = ("", " ", "  ", "\n", "\xa0", "\u200b", " \u200b", "\u2009 ", "\t")


def respaced(html: str, rng: random.Random) -> str:
    """The same markup with other white space and invisible characters between visible ones."""
    tokens = Tokens(html)
    for index in tokens.text:
        tokens.items[index] = re.sub(
            "[ \t\n\xa0\u2009\u202f\u3000\u200b\u00ad\u200e]+",
            lambda m: rng.choice(WS_CHOICES) if rng.random() < 0.5 else m.group(),
            tokens.items[index],
        )
    return str(tokens)


def fragment_target(keep_links: bool, select: tuple[str, ...]) -> Target:
    watched = ("https://www.facebook.com/help/contact/*",)
    url = "https://www.facebook.com/privacy/"
    return Target(id="t", url=url, name="t", select=select, keep_links=keep_links, watch_links=watched)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fragments(),
    st.randoms(use_true_random=False),
    st.booleans(),
    st.sampled_from([("#root",), (), ("#root > *",), ("div, li",)]),
)
def test_fast_reader_on_random_fragments(
    fragment: str, rng: random.Random, keep_links: bool, select: tuple[str, ...]
) -> None:
    html = (
        f"<!DOCTYPE html><html><head><title>T</title></head><body><div id=root>{fragment}</div></body></html>"
    )
    page = Page("fragment", html.encode("utf-8"), fragment_target(keep_links, select))
    try:
        original = page.full()
    except ExtractError:  # no readable page (e.g. control characters): the fast reader refuses it too
        with pytest.raises(ExtractError):
            page.reading().extracted()
        return
    reading = page.reading()
    assert reading.extracted() == original
    fingerprint = reading.fingerprints(1)
    check_variant(page, respaced(html, rng).encode("utf-8"), original, fingerprint)
    check_variant(page, all_noise(html, rng).encode("utf-8"), original, fingerprint)


@pytest.mark.parametrize("select", [("#root",), ()])
def test_a_run_right_after_a_pre_element_is_read_as_after_a_tag(select: tuple[str, ...]) -> None:
    """Found by the property above: after an empty <pre>, an invisible character before a line break keeps
    the next line's leading space ("a\n\n a"), a bare line break does not ("a\n\na"); the fingerprint
    must tell them apart (the run after the <pre> element is one after a tag, not after text)."""
    readings = []
    for fragment in ("a <p><!----><pre></pre></p>\u200b\ra", "a <p><pre></pre></p>\ra"):
        html = f"<html><head><title>T</title></head><body><div id=root>{fragment}</div></body></html>"
        page = Page("fragment", html.encode("utf-8"), fragment_target(False, select))
        reading = page.reading()
        assert reading.extracted() == page.full()
        readings.append((page.full().text, reading.fingerprints(1)))
    (text_a, fingerprint_a), (text_b, fingerprint_b) = readings
    assert text_a != text_b and fingerprint_a != fingerprint_b


# --------------------------------------------------------------------------- selector translation

SELECTORS = [
    "#root", "main", "[role=main]", "[role=contentinfo]", "div:has(> [role=separator])", 'a[href="#"]',
    'a[href^="#"]', "hr + div", "[aria-controls]", "[aria-label=Search]", "body", "nav", "header, footer",
    "#AI_at_Meta", "#genai_body", 'img[alt=""]', "[role=navigation]", "div > p + ul ~ ol", ":not(div)",
    "li:is(.x, .y)", "span:where([dir])", "a[href$='.pdf']", "a[href*=help]", "[target=_BLANK]",
    "div:has(+ hr)", "div:has(~ footer)", "div:has(h2)", "p:not([class])", "#root ul li", "[data-x]",
    "ul > li:has(> a)", "table td", "[lang^=EN]",
]  # fmt: skip


def element_path(
    element: Any, parent: Callable[[Any], Any], children: Callable[[Any], list[Any]]
) -> tuple[int, ...]:
    path = []
    while (up := parent(element)) is not None:
        path.append(next(i for i, c in enumerate(children(up)) if c is element))
        element = up
    return tuple(reversed(path))


def soupsieve_paths(html: str, selector: str) -> list[tuple[int, ...]]:
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(html, "lxml")
    return [
        element_path(tag, lambda t: t.parent if t.parent is not soup else None,
                     lambda t: [c for c in t.children if isinstance(c, Tag)])
        for tag in soup.select(selector)
    ]  # fmt: skip


def xpath_paths(html: str, selector: str) -> list[tuple[int, ...]]:
    from lxml import etree

    translation = to_xpath((selector,))
    assert translation is not None, f"{selector} is not translated"
    parser = etree.HTMLParser(recover=True)
    parser.feed(html)
    root = parser.close()
    return [
        element_path(e, lambda x: x.getparent(), lambda x: [c for c in x if isinstance(c.tag, str)])
        for e in root.xpath(translation.xpath)
    ]  # fmt: skip


SELECTOR_PAGES = [p for p in raw_pages()][::3]
SYNTHETIC = (
    '<html lang="en-GB"><body><main><div id="root" class="x y"><h2>T</h2><hr><div><p class="x">a</p><ul>'
    '<li class="y"><a href="/help/x.pdf" target="_blank" dir="ltr">l</a></li></ul><ol><li>o</li></ol></div>'
    '<div role="separator"></div><footer role="contentinfo"><a href="#">top</a><img alt=""></footer>'
    '<span dir="rtl" data-x="1">s</span><table><tr><td>c</td></tr></table></div></main><nav '
    'aria-label="Search" aria-controls="m">n</nav></body></html>'
)


@pytest.mark.parametrize("selector", SELECTORS)
def test_selector_translation_selects_what_soupsieve_selects(selector: str) -> None:
    documents = [SYNTHETIC, *(p.body.decode("utf-8") for p in SELECTOR_PAGES)]
    for html in documents:
        assert xpath_paths(html, selector) == soupsieve_paths(html, selector), selector


@pytest.mark.parametrize(
    "selector",
    ["a:nth-child(2)", "p:contains(x)", "[class=x]", "[rel=nofollow]", "a::before", "#root >", "*", "div *"],
)
def test_selectors_outside_the_grammar_are_read_by_the_parser_of_record(selector: str) -> None:
    assert to_xpath((selector,)) is None


# --------------------------------------------------------------------------- the pipeline's fast path

APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"


def policy(relative: str, seed: int) -> bytes:
    from support.replay import corpus_text

    return render_page(corpus_text(relative), seed=seed)


def test_new_noise_on_the_current_text_is_unchanged_without_rendering_or_validating(
    page_server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", policy(APRIL, seed=1), etag=False)
    assert cycle(config)[0].status == "new"

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the text of a known fingerprint was read again")

    monkeypatch.setattr(watchdog.fastread, "_render", must_not_run)
    monkeypatch.setattr(watchdog.extract, "_parse", must_not_run)  # the parser of record's tree
    monkeypatch.setattr(watchdog.validate, "validate", must_not_run)
    for seed in (2, 3):  # other class names, nonces, tracking parameters, hidden elements, white space
        page_server.set("/policy", policy(APRIL, seed=seed), etag=False)
        assert (cycle(config)[0].status, len(page_server.requests_to("/policy"))) == ("unchanged", seed)


def test_a_check_loads_no_python_tree_builder(page_server: PageServer, tmp_path: Path) -> None:
    """beautifulsoup4 (and soupsieve) are not even imported: a baseline, new noise and a real change are all
    read by the fast reader."""
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    script = (
        "import sys\nfrom support.harness import cycle\n"
        f"print([o.status for o in cycle({str(config)!r})], 'bs4' in sys.modules, 'soupsieve' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    for body, status in (
        (policy(APRIL, 1), "new"),
        (policy(APRIL, 2), "unchanged"),
        (policy(MAY, 3), "changed"),
    ):
        page_server.set("/policy", body, etag=False)
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        assert run.stdout.split() == [f"['{status}']", "False", "False"], run.stderr


def test_a_known_fingerprint_with_an_error_status_is_no_shortcut(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", policy(APRIL, seed=1), etag=False)
    assert cycle(config)[0].status == "new"
    page_server.set("/policy", Reply(status=404, body=policy(APRIL, seed=2)), etag=False)
    (outcome,) = cycle(config)
    assert (outcome.status, outcome.extra.get("code")) == ("rejected", "http-status")


def test_the_reading_cache_holds_only_what_the_settings_and_code_made(
    page_server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    page_server.set("/policy", policy(APRIL, seed=1), etag=False)
    assert cycle(config)[0].status == "new"
    rendered: list[int] = []
    render = watchdog.fastread._render

    def counted(*args: Any) -> str:
        rendered.append(1)
        return render(*args)

    monkeypatch.setattr(watchdog.fastread, "_render", counted)
    (cache_file,) = (tmp_path / "archive" / "cache" / "readings").iterdir()
    cache_file.write_text("{not json", encoding="utf-8")  # damaged: ignored, read in full, written again
    page_server.set("/policy", policy(APRIL, seed=2), etag=False)
    assert (cycle(config)[0].status, len(rendered)) == ("unchanged", 1)
    assert cycle(config)[0].status == "unchanged" and len(rendered) == 1, "the rewritten entry is used"
    # other extraction settings (here a `remove` that removes nothing): the old entries are not trusted
    config.write_text(
        config.read_text().replace('select = ["#root"]', 'select = ["#root"]\nremove = ["nav"]')
    )
    assert (cycle(config)[0].status, len(rendered)) == ("unchanged", 2)
    assert (cycle(config)[0].status, len(rendered)) == ("unchanged", 2)


def _runs_read_by_definition(serialised: str) -> str:
    """The fast reader's white-space rules one by one, as first written (three whole-text passes where
    fastread now makes one): the reference its faster form must equal."""
    serialised = serialised.replace("&#13;", " ").replace("\n", " ").replace("\t", " ")
    if re.search(f"[{re.escape(SPACE_CHARS + DROPPED_CHARS)}]", serialised):
        serialised = watchdog.fastread._RUN_AFTER_TAG.sub(watchdog.fastread._run_after_tag, serialised)
        serialised = re.sub(
            f"[\x85\u2028\u2029]([ {re.escape(SPACE_CHARS + DROPPED_CHARS)}]*"
            f"[{re.escape(SPACE_CHARS + DROPPED_CHARS)}][ {re.escape(SPACE_CHARS + DROPPED_CHARS)}]*)",
            lambda m: m.group()[0] + watchdog.fastread._kept(m.group(1)),
            serialised,
        )
        serialised = re.sub(f"[{re.escape(SPACE_CHARS)}]", " ", serialised)
        serialised = re.sub(f"[{re.escape(DROPPED_CHARS)}]+", "", serialised)
    return re.sub("  +", " ", serialised)


RUN_ALPHABET = " \t\n\x85\u2028\u2029<>/ab" + SPACE_CHARS[:6] + DROPPED_CHARS[:6]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*RUN_ALPHABET, "<b>", "</b>", "<p>", "</a>", "&#13;"]), max_size=40))
def test_white_space_runs_read_in_fewer_passes_read_as_by_definition(tokens: list[str]) -> None:
    serialised = "".join(tokens)
    assert watchdog.fastread._read_runs(serialised) == _runs_read_by_definition(serialised)


# --------------------------------------------------------------------------- watched links, ruled out cheaply

HOSTS = (
    "https://www.facebook.com",
    "https://m.facebook.com",
    "http://FACEBOOK.com:443",
    "https://example.org",
    "",
)
SEGMENTS = ("help", "contact", "712876720715583", "policy", "..", ".", "a b", "%7e", "x%2Fy", "")
WATCHED = ("https://www.facebook.com/help/contact/712876720715583", "https://facebook.com/help/contact/*",
           "https://www.instagram.com/accounts/privacy_and_security/")  # fmt: skip


def _encode_some(text: str, rng: random.Random) -> str:
    """Percent-encode some characters (unreserved ones too: allowed, and undone by canonical_url)."""
    return "".join(f"%{ord(c):02X}" if c.isascii() and rng.random() < 0.2 else c for c in text)


@st.composite
def hrefs(draw: st.DrawFn) -> str:
    rng = draw(st.randoms(use_true_random=False))
    path = "/".join(draw(st.lists(st.sampled_from(SEGMENTS), max_size=5)))
    path = _encode_some(path, rng) if draw(st.booleans()) else path
    query = draw(st.sampled_from(("", "?a=1", "?entry_point=x&utm_source=y", "?id=712876720715583")))
    href = draw(st.sampled_from(HOSTS)) + ("/" if draw(st.booleans()) else "") + path + query
    for _ in range(draw(st.integers(0, 2))):  # inside redirect wrappers, encoded once more each time
        from urllib.parse import quote

        shim = draw(st.sampled_from(("https://l.facebook.com/l.php?u=", "https://lm.facebook.com/l.php?h=x&u=",
                                     "/l.php?u=", "https://l.instagram.com/?u=", "/url?q=")))  # fmt: skip
        href = shim + quote(href, safe="") + draw(st.sampled_from(("", "&h=AT1", "&e=z")))
    return href


@settings(max_examples=400, deadline=None)
@given(
    hrefs(),
    st.sampled_from(("https://www.facebook.com/help/contact/", "https://mbasic.facebook.com/privacy/")),
    st.lists(st.sampled_from(WATCHED), min_size=1, max_size=3),
)
def test_links_ruled_out_cheaply_are_never_watched_ones(href: str, base: str, watched: list[str]) -> None:
    from watchdog.extract import LinkWatch, canonical_url

    watch = LinkWatch(watched)
    if watch.matches(canonical_url(href, base=base)):
        assert watch.might_match(href, base)


@pytest.mark.parametrize(
    "href",
    [
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.facebook.com%2Fhelp%2Fcontact%2F712876720715583&h=AT",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Flm.facebook.com%2Fl.php%3Fu%3Dhttps%253A%252F%252Fm.facebo"
        "ok.com%252Fhelp%252Fcontact%252F712876720715583%252F%253Fentry_point%253Dx&h=AT",  # wrapped twice
        "/help/contact/%37%31%32876720715583?utm_source=x",
        "712876720715583",  # relative to the base
        "?entry_point=x",  # the base itself
    ],
)
def test_watched_links_pass_the_cheap_test(href: str) -> None:
    from watchdog.extract import LinkWatch, canonical_url

    watch = LinkWatch(["https://www.facebook.com/help/contact/712876720715583"])
    base = "https://www.facebook.com/help/contact/"
    assert watch.matches(canonical_url(href, base=base if href[0] != "?" else base + "712876720715583"))
    assert watch.might_match(href, base if href[0] != "?" else base + "712876720715583")
