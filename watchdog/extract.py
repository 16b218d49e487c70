"""Stage 2, extract/normalise: a fetched body (bytes) -> the canonical text that is stored and diffed.

fetch -> **extract/normalise** -> validate -> store -> diff -> classify -> notify/publish

The canonical text is what people read in alerts and what every later stage compares, so it must
change when the wording changes and *only* then. Hence:

* decoding never trusts one source blindly: BOM, header, <meta>, UTF-8 validity, and for a mislabelled
  body UTF-8 runs with the stray bytes read as windows-1252 (it never raises on a wrong charset);
* `remove` selectors are cut out first, then the `select` matches (document order, nested ones folded
  into their ancestor) are read; without `select` the whole body is read;
* what a reader cannot see is skipped: script/style/svg/template..., comments, and hidden elements;
* the document's shape is kept as plain lines: `# heading`, `- list item` (two spaces per nesting
  level), `cell | cell` per table row, one blank line between blocks; inline elements flow;
* headings are what the page marks as headings: h1-h6, ARIA headings (`role=heading` + `aria-level`),
  accordion titles (`<summary>`, disclosure buttons with `aria-expanded` + `aria-controls`); a data table's
  header row is a heading line of its cells (`### Why | Legitimate interests relied on`: the columns), a
  row holding only a heading (a row group: "For people over the age of majority") is that heading, and
  list items inside a cell stay apart (`a: • x • y`): watchdog.sections reads these to say where a change is;
* links keep only their text; with `keep_links` the *canonical* URL follows in angle brackets, with
  redirect wrappers unwrapped and tracking / signed-URL parameters dropped, so that link churn
  (`?entry_point=...`, rotating `oh`/`oe`, `?locale2=...`) changes nothing;
* `normalise` then unifies look-alike characters (spaces, quotes, zero-width marks) and whitespace.

The page walk is a single iterative pass over the parsed tree (no per-element get_text), so a 400 KB
page is read in one go and a hostile, deeply nested page cannot exhaust the recursion limit.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from watchdog.errors import ExtractError
from watchdog.models import SelectorSet
from watchdog.patterns import lazy
from watchdog.results import Extracted

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

__all__ = [
    "CELLS",
    "CELL_ITEM",
    "DROP",
    "DROPPED_CHARS",
    "HTML_SPACE",
    "SPACE_CHARS",
    "UNREAD_TEXT_IN",
    "LinkTargets",
    "LinkWatch",
    "ParsedPage",
    "Renderer",
    "TreeFacts",
    "aria_heading_level",
    "canonical_url",
    "decode",
    "decode_page",
    "extract",
    "is_hidden",
    "link_key",
    "normalise",
    "resolve_base",
    "text_hash",
    "title_text",
]

_E = TypeVar("_E")

# --------------------------------------------------------------------------- normalisation

SPACE_CHARS: Final = (
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t"
)
INVISIBLE_CHARS: Final = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_SINGLE_QUOTES: Final = "\u2018\u2019\u201a\u201b\u02bc"
_DOUBLE_QUOTES: Final = "\u201c\u201d\u201e\u201f"
_NEWLINES: Final = "\u0085\u2028\u2029\u000b\u000c"
_CONTROLS: Final = "".join(
    chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t\r\x0b\x0c\x85"
)
# What normalise turns into one space (Unicode spaces, tabs) and what it drops (zero-width and bidi marks,
# soft hyphens, C0/C1 controls).
DROPPED_CHARS: Final = INVISIBLE_CHARS + _CONTROLS


def _replacements() -> MappingProxyType[str, str]:
    table: dict[str, str] = {}
    table.update(dict.fromkeys(SPACE_CHARS, " "))
    table.update(dict.fromkeys(DROPPED_CHARS, ""))
    table.update(dict.fromkeys(_SINGLE_QUOTES, "'"))
    table.update(dict.fromkeys(_DOUBLE_QUOTES, '"'))
    table.update(dict.fromkeys(_NEWLINES + "\r", "\n"))
    return MappingProxyType(table)


_REPLACEMENTS: Final = _replacements()
# One regex pass finds the few characters to replace: much faster than str.translate on long, mostly
# ASCII texts. A CR LF pair is one match: the class (which holds CR) then, after a CR, an LF. Written as
# `\r\n|[...]`, the pattern started with no character class the engine could skip to, and it was tried at
# every position of the text (3x slower).
_SPECIAL: Final = lazy("[" + re.escape("".join(_REPLACEMENTS)) + "](?:(?<=\r)\n)?")
# Each pattern starts with a literal, so that the regex engine jumps from one candidate to the next instead of
# trying every position of a 200,000-character policy: two or more spaces after a non-space, ...
_SPACE_RUN: Final = lazy(r"  (?<=\S  ) *")
_TRAILING: Final = lazy(r" +$", re.MULTILINE)
_GUILLEMET_OPEN: Final = lazy(r"« *")
_GUILLEMET_CLOSE: Final = lazy(r" *»")
_BLANK_RUN: Final = lazy(r"\n\n\n+")


def _replace(match: re.Match[str]) -> str:
    found = match.group()
    return "\n" if found == "\r\n" else _REPLACEMENTS[found]


def _replaced(text: str) -> str:
    """`_SPECIAL.sub(_replace, text)`, as one str.replace per distinct special character found: a page can
    hold tens of thousands of no-break spaces and zero-width marks, a Python call each through sub. The same
    text: no replacement is or makes a special character, and CR LF pairs are replaced first, so a CR is
    paired exactly as the regex pairs it (a pair a dropped mark brings together is none for either)."""
    found = set(_SPECIAL.findall(text))
    if "\r\n" in found:
        text = text.replace("\r\n", "\n")
        found.discard("\r\n")
    for char in found:
        text = text.replace(char, _REPLACEMENTS[char])
    return text


def normalise(text: str) -> str:
    """Canonical form of a text: equal for texts a reader cannot tell apart. Idempotent.

    Zs spaces and tabs become ' ', zero-width / bidi marks and soft hyphens vanish, curly quotes
    become straight ones, guillemets get exactly one space inside, C0/C1 controls go, runs of spaces
    collapse (leading indentation is kept: it encodes list nesting), line ends are stripped, blank-line
    runs shrink to one, and a non-empty result ends with exactly one newline.
    """
    text = _replaced(text)
    # NFC after the removals: dropping a zero-width mark can bring a base letter and its combining
    # accent together, and composing them last keeps normalise(normalise(x)) == normalise(x).
    text = unicodedata.normalize("NFC", text)
    # (a pattern that cannot match is not run: a quick substring test skips it)
    if "«" in text or "»" in text:
        text = _GUILLEMET_CLOSE.sub(" »", _GUILLEMET_OPEN.sub("« ", text))
    text = _SPACE_RUN.sub(" ", text)
    if " \n" in text or text.endswith(" "):
        text = _TRAILING.sub("", text)
    text = _BLANK_RUN.sub("\n\n", text).strip("\n")
    return text + "\n" if text else ""


def text_hash(text: str) -> str:
    """SHA-256 (hex) of the UTF-8 text: the identity of a version's wording."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- URLs

# Query parameters that identify a click, a session or a signed media fetch, never the resource.
_TRACKING_PARAMS: Final = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "igsh", "mc_cid", "mc_eid", "__tn__", "entry_point", "locale2", "oh", "oe", "ccb", "efg",
        "refsrc", "_rdr", "ref", "hc_ref", "mibextid", "helpref", "_ga", "_gl", "_hsenc", "_hsmi",
        "rdid", "share_url", "sfnsn", "s", "si", "stp",
    }
)  # fmt: skip
_TRACKING_PREFIXES: Final = ("utm_", "_nc_", "__cft__", "__xts__", "__eep__", "mkt_", "pk_")
# Redirect wrappers ("link shims"): where the real target travels in a query parameter.
_REDIRECT_PATHS: Final = frozenset({"/l.php", "/l/", "/url", "/redirect", "/out", "/away"})
_REDIRECT_HOST_PREFIXES: Final = ("l.", "lm.")
_REDIRECT_KEYS: Final = ("u", "url", "q", "target")
_DEFAULT_PORTS: Final = MappingProxyType({"http": 80, "https": 443})
_MAX_UNWRAP: Final = 5


def canonical_url(href: str, *, base: str) -> str:
    """The stable identity of a link target.

    Resolves against `base`, unwraps redirect wrappers (`l.facebook.com/l.php?u=...`, `l.instagram.com/?u=`,
    any `/l.php?u=`), drops tracking and signed-URL parameters, sorts the rest, lowercases scheme and
    host, drops default ports, userinfo and the fragment. A parameter whose value is itself a URL
    (`?src=https://video...&oh=...`, `?redirect_uri=...`) is canonicalised the same way. Non-HTTP URLs
    (mailto:...) come back resolved but otherwise as they are.
    """
    return _canonical(urljoin(base, href.strip()), _MAX_UNWRAP)


def _canonical(url: str, budget: int) -> str:
    # `budget` bounds unwrapping and nesting: a hostile URL cannot make this loop or recurse deeply.
    while budget > 0 and (target := _redirect_target(url)) is not None:
        url, budget = target, budget - 1
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return url
    query = _query(parts.query, budget - 1)
    return urlunsplit((scheme, _netloc(scheme, url), _path(parts.path), query, ""))


def _redirect_target(url: str) -> str | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.path not in _REDIRECT_PATHS and not (
        host.startswith(_REDIRECT_HOST_PREFIXES) and parts.path in ("", "/")
    ):
        return None
    # The first URL-valued target parameter, whatever the order or repetition of the others.
    for key in _REDIRECT_KEYS:
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name == key and _is_http_url(value.strip()):
                return value.strip()
    return None


def _netloc(scheme: str, url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the host alone
        port = None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"


def _path(path: str) -> str:
    # One spelling per path: decode what needs no encoding, encode what must be.
    return quote(unquote(path), safe="/:@!$&'()*+,;=-._~") or "/"


def _query(query: str, budget: int) -> str:
    kept = [
        (key, _canonical(value, budget) if budget > 0 and _is_http_url(value) else value)
        for key, value in parse_qsl(query, keep_blank_values=True)
        if key.lower() not in _TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlencode(sorted(kept), quote_via=quote)


def _is_http_url(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://"))


# --------------------------------------------------------------------------- decoding

_CHARSET_PARAM: Final = lazy(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
# WHATWG: browsers read these labels as windows-1252, a superset.
_LEGACY_ALIASES: Final = MappingProxyType({"latin_1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252"})
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MULTIBYTE: Final = ("utf", "gb", "big5", "shift", "euc", "iso2022", "cp9", "hz", "johab")


def _codec(label: str | None) -> str | None:
    """Python's name for a charset label, or None when Python has no such codec."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return _LEGACY_ALIASES.get(name, name)


# The charset a document declares itself: an XML declaration in its first 1,024 bytes, else a <meta> with a
# charset (http-equiv content or charset attribute) in its first 2,048 bytes. These are the rules
# beautifulsoup4's EncodingDetector.find_declared_encoding applies to a page's head, written here so that
# decoding (which every reader needs) does not load beautifulsoup4.
_XML_DECLARED: Final = lazy(rb"""^\s*<\?.*encoding=['"](.*?)['"].*\?>""", re.IGNORECASE)
_META_DECLARED: Final = lazy(rb"""<\s*meta[^>]+charset\s*=\s*["']?([^>]*?)[ /;'">]""", re.IGNORECASE)


def _declared_charset(head: bytes) -> str | None:
    found = _XML_DECLARED.search(head, 0, 1024) or _META_DECLARED.search(head, 0, 2048)
    label = found.group(1).decode("ascii", "replace") if found else ""
    return label.lower() or None


def _candidates(body: bytes, content_type: str | None) -> Iterator[str]:
    """Encodings to try, most authoritative first (BOM, header, <meta>), then UTF-8."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            yield name
    match = _CHARSET_PARAM.search(content_type or "")
    declared = [_codec(match.group(1) if match else None), _codec(_declared_charset(body[:4096]))]
    for label in declared:
        if label is not None:
            # A declared single-byte charset on a body that is valid, non-ASCII UTF-8 is a mislabel:
            # text in such a charset almost never forms valid UTF-8 sequences by chance.
            if not label.startswith(_MULTIBYTE) and not body.isascii():
                yield "utf-8"
            yield label
    yield "utf-8"


def decode(body: bytes, *, content_type: str | None) -> str:
    """Bytes -> text; never raises on a wrong or missing charset.

    The first of BOM / header / <meta> / UTF-8 that decodes the whole body wins. When none does, the
    body is a mislabelled mix, typically UTF-8 with stray windows-1252 bytes: valid UTF-8 runs are kept
    and the bytes between them are read as windows-1252, the browsers' legacy default (a statistical
    guess, tried first, misread short French text as Baltic; the domain's legacy charset is 1252).
    """
    for name in _candidates(body, content_type):
        try:
            return body.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return _decode_mixed(body)


# Maximal runs of well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
_UTF8_RUN: Final = lazy(
    rb"(?:[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2})+"
)


def _decode_mixed(body: bytes) -> str:
    pieces: list[str] = []
    position = 0
    for run in _UTF8_RUN.finditer(body):
        pieces.append(body[position : run.start()].decode("cp1252", errors="replace"))
        pieces.append(run.group().decode("utf-8"))
        position = run.end()
    pieces.append(body[position:].decode("cp1252", errors="replace"))
    return "".join(pieces)


# --------------------------------------------------------------------------- parsing

_HTML_TYPES: Final = ("text/html", "application/xhtml+xml", "text/xml", "application/xml")
_BINARY_TYPES: Final = ("image/", "audio/", "video/", "font/", "application/pdf", "application/zip",
                        "application/octet-stream", "application/gzip")  # fmt: skip
# Text has next to no C0 controls; images, PDFs and archives are full of them.
_MAX_CONTROL_SHARE: Final = 0.02
_MIN_CONTROLS: Final = 8
_C0: Final = lazy(r"[\x00-\x08\x0e-\x1f]")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _looks_like_markup(text: str) -> bool:
    return text[:2048].lstrip().startswith("<")


def _check_text(text: str, media_type: str) -> None:
    if media_type.startswith(_BINARY_TYPES) and not _looks_like_markup(text):
        raise ExtractError(f"the body is {media_type}, not an HTML or text page")
    sample = text[:65536]
    if len(_C0.findall(sample)) > max(_MIN_CONTROLS, _MAX_CONTROL_SHARE * len(sample)):
        raise ExtractError("the body looks binary (control characters), not an HTML or text page")


def _parse(markup: str) -> BeautifulSoup:
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, ParserRejectedMarkup, XMLParsedAsHTMLWarning

    # bs4 warns when a short body looks like a URL or file name, or when XML is read as HTML; both
    # are legitimate for a fetched page, and a warning must not turn into an error under pytest.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        try:
            return BeautifulSoup(markup, "lxml")
        except (ParserRejectedMarkup, ValueError) as exc:
            raise ExtractError(f"the page could not be parsed as HTML: {exc}") from exc


# --------------------------------------------------------------------------- selectors


def _select(soup: BeautifulSoup, selectors: Sequence[str]) -> list[Tag]:
    """Matches of any selector in document order, without those inside another match."""
    import soupsieve

    try:
        # One selector list: soupsieve returns its matches once each and in document order.
        matches = soup.select(", ".join(selectors))
    except soupsieve.SelectorSyntaxError as exc:
        raise ExtractError(f"invalid CSS selector in {list(selectors)}: {exc}") from exc
    chosen = {id(tag) for tag in matches}
    return [tag for tag in matches if not any(id(p) in chosen for p in tag.parents)]


# --------------------------------------------------------------------------- rendering
#
# One renderer turns a tree of elements into the canonical lines, whichever parser built the tree: it is
# fed events (an element starts, text, the element ends) by a walk over beautifulsoup4's tree (below,
# the parser of record) or over the pruned lxml tree of watchdog.fastread, and asks the tree three
# questions it cannot answer from an element's name and attributes alone (TreeFacts). Per element it
# does a few dictionary look-ups and, for the elements that need one, pushes a tuple to be handed back
# when the element ends: a 400 KB policy of ~4,000 elements is rendered in a few milliseconds.

DROP: Final = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "canvas", "head", "meta",
     "link", "title", "object", "embed", "audio", "video", "picture", "source", "track", "map",
     "input", "select", "textarea", "datalist", "img", "area"}
)  # fmt: skip
# beautifulsoup4 files the text of ruby annotations (<rt>, <rp>) apart (RubyTextString...), so the walk
# below never reads it; the fast reader drops it the same way.
UNREAD_TEXT_IN: Final = frozenset({"rt", "rp"})
_BLOCK: Final = frozenset(
    {"address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
     "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
     "header", "hgroup", "hr", "html", "legend", "main", "menu", "nav", "p", "pre", "search",
     "section", "summary", "tbody", "thead", "tfoot", "table", "tr", "td", "th"}
)  # fmt: skip
_LISTS: Final = frozenset({"ul", "ol", "menu", "dir"})
_HEADINGS: Final = MappingProxyType({f"h{n}": n for n in range(1, 7)})
CELL_ITEM: Final = " • "  # list items inside a table cell: the row stays one line, its items stay apart
CELLS: Final = frozenset({"td", "th"})
_ROW_GROUPS: Final = frozenset({"thead", "tbody", "tfoot"})
_TABLE_PARTS: Final = frozenset({"tr", "td", "th"})
_HIDDEN_STYLE: Final = lazy(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))\s*(?:!important\s*)?(?:;|$)",
    re.IGNORECASE,
)
HTML_SPACE: Final = lazy(r"[ \t\n\r\f]+")


def _collapsed(text: str) -> str:
    """`HTML_SPACE.sub(" ", text)`: HTML white space runs as one space.

    Without the regex's Python call per run (a page's line wrapped in its source holds dozens): the other
    HTML spaces become spaces (str.replace), and runs of spaces one space (str.split on " ", the empty
    pieces dropped), the edges kept as one space each. Most lines hold none: a few substring tests."""
    for space in "\n\t\r\f":
        if space in text:
            text = text.replace(space, " ")
    if "  " not in text:
        return text
    core = " ".join([piece for piece in text.split(" ") if piece])
    return (" " if text[0] == " " else "") + core + (" " if core and text[-1] == " " else "")


_NON_HTTP_LINK: Final = ("javascript:", "data:", "blob:", "about:")

# What an element is to the renderer (the `kind` of its end tuple).
_LINK, _ROW, _CELL, _HEADER_CELL, _HEAD = "link", "row", "cell", "header cell", "head"
_ITEM, _LIST, _BLOCK_KIND = "item", "list", "block"
_LINES_ENDING: Final = frozenset({_ITEM, _LIST, _BLOCK_KIND})


def is_hidden(
    name: str, attrs: Mapping[str, object], element: _E, holds_landmark: Callable[[_E], bool]
) -> bool:
    """Hidden from a reader: `hidden`, inline display:none / visibility:hidden, aria-hidden, closed <dialog>.

    aria-hidden="true" is honoured except on an element holding the main landmark (`holds_landmark`: a
    descendant of `element` is <main> or role=main): modal dialogs (the cookie prompt) set it on the whole
    page behind them, which stays visible; elsewhere it marks decorative duplicates (icon glyphs, separators).
    """
    if not attrs:
        return name == "dialog"
    hidden = attrs.get("hidden")
    if hidden is not None and str(hidden).lower() != "until-found":
        return True
    style = attrs.get("style")
    if isinstance(style, str) and _HIDDEN_STYLE.search(style):
        return True
    if name == "dialog" and "open" not in attrs:
        return True
    aria = attrs.get("aria-hidden")
    return isinstance(aria, str) and aria.strip().lower() == "true" and not holds_landmark(element)


def aria_heading_level(value: object) -> int:
    """The level of a role=heading element from its aria-level (2 when absent or not a number)."""
    aria = str(value).strip()
    return min(max(int(aria), 1), 6) if aria.isdigit() else 2


class TreeFacts(Protocol):
    """What the renderer asks a tree beyond an element's name and attributes."""

    def layout_table(self, table: Any) -> bool:
        """A <table> used for page layout (read as nested blocks), not a data table."""

    def link_alt(self, link: Any) -> str:
        """The stripped alt text of the link's first image that has an alt attribute ("" if none)."""

    def link_url(self, link: Any) -> str | None:
        """The link target to show after the link's text, or None (see LinkTargets)."""


@dataclass(frozen=True, slots=True)
class LinkTargets:
    """Which link targets the text keeps: the canonical URL of every link (`keep_links`), or of the links
    `watch` matches; never in-page anchors, javascript:/data: links or empty hrefs."""

    base: str
    keep_links: bool
    watch: LinkWatch | None
    self_url: str

    @classmethod
    def of(cls, base: str, keep_links: bool, watch: LinkWatch | None) -> LinkTargets:
        return cls(base, keep_links, watch, canonical_url(base, base=base))

    @property
    def wanted(self) -> bool:
        return self.keep_links or bool(self.watch)

    def url(self, href: object) -> str | None:
        if not isinstance(href, str) or not href.strip():
            return None
        if href.strip().lower().startswith(_NON_HTTP_LINK):
            return None
        if not self.keep_links and (self.watch is None or not self.watch.might_match(href, self.base)):
            return None
        url = canonical_url(href, base=self.base)
        if url == self.self_url:  # an in-page anchor (#section): not a link target worth comparing
            return None
        if not self.keep_links and not (self.watch and self.watch.matches(url)):
            return None
        return url


class _State:
    """What the position in the tree implies for the text below it (never changed in place: an element's
    end restores the state its start saw)."""

    __slots__ = ("data_table", "in_cell", "in_head", "in_pre", "indent", "list_depth")

    def __init__(
        self,
        indent: str = "",  # continuation indent inside list items
        list_depth: int = 0,
        data_table: bool = False,  # rows/cells below belong to a data table (not a layout one)
        in_cell: bool = False,  # inside a data-table cell: everything flows into the row's line
        in_pre: bool = False,
        in_head: bool = False,  # inside a data table's <thead>
    ) -> None:
        self.indent, self.list_depth, self.data_table = indent, list_depth, data_table
        self.in_cell, self.in_pre, self.in_head = in_cell, in_pre, in_head

    def but(self, **changes: Any) -> _State:
        fields = {name: getattr(self, name) for name in _State.__slots__}
        fields.update(changes)
        return _State(**fields)


# Pushed at an element's start, handed back at its end: (kind, element, state to restore, parts and lines
# written before it, the line prefix before it).
Close = tuple[str, Any, _State, int, int, "str | None"]


class Renderer:
    """Builds the canonical lines of the selected subtrees from one walk's events (one instance per page).

    Per root: `start` / `text` / `end` events in document order (`end` only for what `start` returned),
    then `end_root`; `finish` returns the normalised text."""

    __slots__ = (
        "blank_pending", "cell_heading", "cell_start", "cells", "facts", "header_cells", "level", "lines",
        "links", "marker", "parts", "state",
    )  # fmt: skip

    def __init__(self, facts: TreeFacts, links: LinkTargets) -> None:
        self.facts = facts
        self.links = links
        self.lines: list[str] = []
        self.parts: list[str] = []
        self.marker: str | None = None  # prefix of the next line ("- ", "## "), else the indent
        self.blank_pending = False
        self.state = _State()
        self.cells: list[str] = []
        self.cell_start = 0
        self.level = 0  # level of the last heading written: accordion titles and table headers nest below it
        self.header_cells = 0  # <th> cells of the current row
        self.cell_heading = 0  # level of a heading met inside the current row (0: none)

    def end_root(self) -> None:
        self._flush(blank=True)

    def finish(self) -> str:
        return normalise("\n".join(self.lines))

    # ----------------------------------------------------------------- lines

    def _flush(self, *, blank: bool) -> None:
        """End the current line (if it has text); `blank` asks for a blank line before the next one."""
        parts = self.parts
        if parts:
            joined = "".join(parts)
            parts.clear()
            line = joined.rstrip() if self.state.in_pre else _collapsed(joined).strip()
            if line:
                if self.blank_pending and self.lines:
                    self.lines.append("")
                prefix = self.marker if self.marker is not None else self.state.indent
                self.lines.append(prefix + line)
                self.marker = None
                self.blank_pending = False
        if blank:
            self.blank_pending = True

    def _boundary(self) -> None:
        """A block starts or ends: a new line (a space inside a table cell)."""
        if self.state.in_cell:
            self.parts.append(" ")
        else:
            self._flush(blank=self.state.list_depth == 0)

    def text(self, text: str) -> None:
        state = self.state
        if not state.in_pre or state.in_cell:
            self.parts.append(text)
            return
        first, *rest = text.split("\n")
        self.parts.append(first)
        for line in rest:
            self._flush(blank=False)
            self.parts.append(line)

    # ----------------------------------------------------------------- elements

    def start(self, name: str, attrs: Mapping[str, Any], element: Any) -> Close | None:
        """An element starts; what to hand back to `end` when it ends (None: nothing to do there)."""
        state = self.state
        if name == "a":
            return (_LINK, element, state, len(self.parts), len(self.lines), None)
        if state.data_table and not state.in_cell:
            if name in _ROW_GROUPS:  # rows follow each other without blank lines; thead's rows are headers
                if name != "thead":
                    return None
                self.state = state.but(in_head=True)
                return (_HEAD, element, state, 0, 0, None)
            if name == "tr":
                self._flush(blank=False)
                self.cells, self.header_cells, self.cell_heading = [], 0, 0
                return (_ROW, element, state, 0, 0, None)
            if name in CELLS:
                self.cell_start = len(self.parts)
                self.state = state.but(in_cell=True)
                return (_HEADER_CELL if name == "th" else _CELL, element, state, 0, 0, None)
        if name == "li":
            self._open_item()
            return (_ITEM, element, state, 0, 0, None)
        if name in _LISTS:
            self._boundary()
            close = (_LIST, element, state, 0, 0, self.marker)
            self.state = self.state.but(list_depth=self.state.list_depth + 1)
            return close
        level = self._heading_level(name, attrs)
        if name == "br":
            self.parts.append(" ") if state.in_cell else self._flush(blank=False)
            # a <br> the page marks as a heading still ends as a block (it wrote no line of its own)
            return (_BLOCK_KIND, element, state, 0, 0, None) if level else None
        if level or name in _BLOCK:
            self._boundary()
            close = (_BLOCK_KIND, element, state, 0, 0, self.marker)
            self._enter_block(name, attrs, element, level)
            return close
        return None

    def _heading_level(self, name: str, attrs: Mapping[str, Any]) -> int:
        """The heading level of an element the page marks as a heading, else 0."""
        level = _HEADINGS.get(name)
        if level is not None:
            return level
        if not attrs and name != "summary":
            return 0
        if attrs.get("role") == "heading":
            return aria_heading_level(attrs.get("aria-level", "2"))
        disclosure = "aria-expanded" in attrs and "aria-controls" in attrs and "aria-haspopup" not in attrs
        if name == "summary" or disclosure:  # an accordion's title: a heading below the last one
            return min(max(self.level, 1) + 1, 6)
        return 0

    def _enter_block(self, name: str, attrs: Mapping[str, Any], element: Any, level: int) -> None:
        state = self.state
        if level and state.in_cell:
            self.cell_heading = self.cell_heading or level
        elif level:
            lead = self.marker if self.marker is not None else state.indent
            if not lead.endswith("# "):  # a heading inside a heading stays one heading
                self.marker = lead + "#" * level + " "
                # accordion titles nest below the page's own headings, never below each other
                if name in _HEADINGS or attrs.get("role") == "heading":
                    self.level = level
        elif name == "table" and not state.in_cell:
            self.state = state.but(data_table=not self.facts.layout_table(element))
        elif name == "pre":
            self.state = state.but(in_pre=True)

    def _open_item(self) -> None:
        if self.state.in_cell:
            self.parts.append(CELL_ITEM)
            return
        self._flush(blank=False)
        depth = max(self.state.list_depth, 1)
        self.marker = "  " * (depth - 1) + "- "
        self.state = self.state.but(indent="  " * depth)

    def end(self, close: Close) -> None:
        """An element whose `start` returned `close` ends."""
        kind, element, saved, parts_mark, lines_mark, marker_before = close
        if kind == _LINK:
            self._close_link(element, parts_mark, lines_mark)
        elif kind in (_CELL, _HEADER_CELL):
            cell = _collapsed("".join(self.parts[self.cell_start :])).strip()
            cell = cell.removeprefix(CELL_ITEM.strip()).lstrip()  # a cell that is a list starts with it
            del self.parts[self.cell_start :]
            self.cells.append(cell)
            self.header_cells += bool(cell) and kind == _HEADER_CELL
        elif kind == _ROW:
            self.parts.append(self._row_line())
            self._flush(blank=False)
        elif not self.state.in_cell and kind in _LINES_ENDING:
            self._flush(blank=False)  # the last line still belongs to this element (indent, <pre>)
            # a heading that produced no line (its content removed or hidden) must not lend its `## ` to
            # the next block: the line prefix goes back to what it was before the heading opened
            if kind == _BLOCK_KIND and self.marker is not None and self.marker != marker_before:
                self.marker = marker_before
        self.state = saved
        if kind in _LINES_ENDING:
            # With the outer state: a top-level block ends with a blank line, one in a list does not.
            self._boundary()

    def _row_line(self) -> str:
        """A data-table row: "a | b | c"; a header row as a heading line of its cells (the columns); a row
        holding only a heading (a row group's title) as that heading."""
        cells = self.cells
        while cells and not cells[-1]:
            cells.pop()
        filled = sum(1 for cell in cells if cell)
        below = "#" * min(max(self.level, 1) + 1, 6) + " "
        if filled >= 2 and (self.state.in_head or self.header_cells == filled):
            return below + " | ".join(cells)
        if filled == 1 and cells[0] and (self.cell_heading or self.header_cells == 1):
            return ("#" * self.cell_heading + " " if self.cell_heading else below) + cells[0]
        return " | ".join(cells)

    def _close_link(self, link: Any, parts_mark: int, lines_mark: int) -> None:
        emitted = "".join(self.parts[parts_mark:]).strip() or len(self.lines) > lines_mark
        if not emitted:
            alt = self.facts.link_alt(link)
            if not alt:
                return
            self.parts.append(alt)
        if not self.links.wanted:
            return
        url = self.facts.link_url(link)
        if url is None:
            return
        if "".join(self.parts).strip():
            self.parts.append(f" <{url}>")
        elif self.lines:  # the link held a block (a heading): its line is already written
            self.lines[-1] += f" <{url}>"


# --------------------------------------------------------------------------- beautifulsoup4's tree


@dataclass(frozen=True, slots=True)
class _SoupFacts:
    """TreeFacts of a beautifulsoup4 tree, read from the tree itself."""

    links: LinkTargets

    def layout_table(self, table: Tag) -> bool:
        """role=presentation/none, or no row of two or more cells of its own: one column."""
        if table.get("role") in ("presentation", "none"):
            return True
        for row in table.find_all("tr"):
            if len(row.find_all(CELLS, recursive=False)) > 1 and row.find_parent("table") is table:
                return False
        return True

    def link_alt(self, link: Tag) -> str:
        image = link.find("img", alt=True)
        return str(image.get("alt", "")).strip() if image is not None else ""

    def link_url(self, link: Tag) -> str | None:
        return self.links.url(link.get("href"))


def _is_landmark(tag: Tag) -> bool:
    return tag.name == "main" or tag.get("role") == "main"


def _render_soup(roots: Sequence[Tag], links: LinkTargets) -> str:
    """The canonical text of `roots` (beautifulsoup4 Tags): one iterative walk per root (a hostile, deeply
    nested page cannot exhaust the recursion limit)."""
    from bs4.element import CData, NavigableString, Tag  # the parser of record: loaded when it reads

    renderer = Renderer(_SoupFacts(links), links)
    for root in roots:
        stack: list[object] = [root]
        while stack:
            node = stack.pop()
            if type(node) is tuple:
                renderer.end(node)
            elif isinstance(node, Tag):
                name, attrs = node.name, node.attrs
                # A selected root is read even when hidden: the configuration asked for it.
                if name in DROP or (node is not root and is_hidden(name, attrs, node, _holds_landmark)):
                    continue
                close = renderer.start(name, attrs, node)
                if close is not None:
                    stack.append(close)
                stack.extend(reversed(node.contents))
            elif type(node) in (NavigableString, CData):  # not comments, doctypes, PIs, ruby annotations
                renderer.text(str(node))
        renderer.end_root()
    return renderer.finish()


def _holds_landmark(tag: Tag) -> bool:
    return tag.find(_is_landmark) is not None


# --------------------------------------------------------------------------- watched links


class LinkWatch:
    """Which link targets are watched (`watch_links`): canonical URLs, or glob patterns with `*`.

    A link and an entry are compared without scheme, without a leading `www.`/`m.`/`mbasic.`/`web.` on the
    host and without a trailing `/`, so `https://facebook.com/help/contact/1` watches the
    `https://www.facebook.com/help/contact/1/?entry_point=...` a page links to (tracking parameters are
    already dropped by canonical_url).
    """

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        self._keys = tuple(link_key(p) for p in patterns)
        needles = [_needle(key) for key in self._keys]
        self._needles = None if None in needles else tuple(n for n in needles if n is not None)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def matches(self, canonical: str) -> bool:
        key = link_key(canonical)
        return any(fnmatchcase(key, pattern) for pattern in self._keys)

    def might_match(self, href: str, base: str) -> bool:
        """False only when no link `href` on a page at `base` can be watched: a test much cheaper than
        canonical_url (a policy has hundreds of links, and only a few are watched).

        Each entry has a literal path segment (the longest, of unreserved characters) that a watched
        link's path must hold. Resolving a link, unwrapping redirects (query values are decoded once per
        level) and canonicalising never create the characters of one segment, so the segment is in the href
        or the base, percent-decoded at most as many times as there are levels.
        """
        if self._needles is None:
            return True
        found = _decoded(href) + "\0" + _decoded(base)
        return any(needle in found for needle in self._needles)


_UNRESERVED: Final = lazy(r"[A-Za-z0-9._~-]+\Z")
_GLOB_OR_SLASH: Final = lazy(r"[/*?\[\]]")


def _needle(key: str) -> str | None:
    """The longest literal path segment of a watched key (None: it has none, so no link can be ruled out)."""
    slash = key.find("/")
    if slash < 0:
        return None
    pieces = [unquote(piece) for piece in _GLOB_OR_SLASH.split(key[slash:].split("?", 1)[0])]
    literal = [piece for piece in pieces if _UNRESERVED.match(piece)]
    return max(literal, key=len) if literal else None


def _decoded(text: str) -> str:
    """`text` percent-decoded until nothing changes (at most as many times as redirects are unwrapped)."""
    for _ in range(_MAX_UNWRAP + 2):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


_MOBILE_HOSTS: Final = lazy(r"^(?:www|m|mbasic|web)\.")


def link_key(url: str) -> str:
    """A link target without scheme, mobile host prefix and trailing slash: two links with the same key
    point to the same place (see LinkWatch)."""
    if "*" not in url:
        url = canonical_url(url, base=url)
    parts = urlsplit(url)
    host = _MOBILE_HOSTS.sub("", parts.netloc.lower())
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{parts.path.rstrip('/')}{query}"


# --------------------------------------------------------------------------- entry point


def extract(
    body: bytes,
    *,
    content_type: str | None,
    url: str,
    select: Sequence[str] = (),
    remove: Sequence[str] = (),
    keep_links: bool = False,
    alternatives: Sequence[SelectorSet] = (),
    watch_links: Sequence[str] = (),
) -> Extracted:
    """Turn a fetched body into canonical text. Raises ExtractError when it is not a readable page.

    `select`/`remove` are tried first, then each of `alternatives` in turn: the first that yields text
    wins, and `Extracted.alternative` says which (1-based; None for the plain `select`). When none does,
    the plain result is returned (validation then names the plain selectors). Links matching
    `watch_links` keep their canonical target in the text even without `keep_links`.
    """
    text, markup = decode_page(body, content_type=content_type)
    if not markup:
        return Extracted(text=normalise(text), matched=not select)
    watch = LinkWatch(watch_links)
    first = _read(text, url, SelectorSet(tuple(select), tuple(remove)), keep_links, watch)
    if first.text or not alternatives:
        return first
    for index, chosen in enumerate(alternatives, start=1):
        found = _read(text, url, chosen, keep_links, watch)
        if found.text:
            return replace(found, alternative=index)
    return first


def decode_page(body: bytes, *, content_type: str | None) -> tuple[str, bool]:
    """The decoded body, and whether it is markup to parse (else plain text, read as it is). Raises
    ExtractError when the body is no page at all (an image, a PDF, binary data)."""
    media_type = _media_type(content_type)
    text = decode(body, content_type=content_type)
    _check_text(text, media_type)
    plain = media_type == "text/plain" or (
        bool(media_type) and not media_type.startswith(_HTML_TYPES) and not _looks_like_markup(text)
    )
    return text, not plain


def _read(markup: str, url: str, chosen: SelectorSet, keep_links: bool, watch: LinkWatch) -> Extracted:
    """One selector set applied to a fresh parse (`remove` changes the tree)."""
    soup = _parse(markup)
    found = soup.find("title")
    title = title_text(found.get_text() if found is not None else None)
    if chosen.remove:
        for tag in _select(soup, chosen.remove):
            tag.decompose()
    roots = _select(soup, chosen.select) if chosen.select else [soup.body or soup]
    base = soup.find("base", href=True)
    rendered = _render_soup(
        roots, LinkTargets.of(resolve_base(base and base.get("href"), url), keep_links, watch)
    )
    return Extracted(text=rendered, matched=bool(roots), title=title)


class ParsedPage:
    """A page parsed once (after `remove`), read with one selector list after another: `doctor` tries
    hundreds of candidate selectors on one capture, and parsing a 400 KB page is the expensive part."""

    def __init__(
        self, body: bytes, *, content_type: str | None, url: str, remove: Sequence[str] = ()
    ) -> None:
        text = decode(body, content_type=content_type)
        _check_text(text, _media_type(content_type))
        self.soup = _parse(text)
        for tag in _select(self.soup, remove) if remove else []:
            tag.decompose()
        base = self.soup.find("base", href=True)
        self._base = resolve_base(base and base.get("href"), url)

    def text(self, select: Sequence[str]) -> str:
        """The canonical text of `select`'s matches ("" when nothing matches)."""
        roots = _select(self.soup, select)
        return _render_soup(roots, LinkTargets.of(self._base, False, None)) if roots else ""


def title_text(title: str | None) -> str:
    """The page's <title> (the text of the first one, None when there is none) on one line."""
    return " ".join(normalise(title).split()) if title is not None else ""


def resolve_base(href: object, url: str) -> str:
    """The URL links resolve against: the page's own <base href> (the first base with an href) when it has
    one, else the page's URL."""
    return urljoin(url, href) if isinstance(href, str) and href.strip() else url
