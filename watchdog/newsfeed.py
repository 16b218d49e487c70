"""Stage 2 for `kind = "feed"` targets: an RSS/Atom feed -> canonical text, one block per item.

fetch -> **read the feed** -> validate -> store -> diff -> classify (new items only) -> notify/publish

A feed target watches for new *documents* rather than new wording: the Meta newsroom (about.fb.com/news/feed/)
announces the pause and the resumption of AI training in Europe in posts that did not exist the day before.
The feed is turned into canonical text, one block per item, in feed order:

    # <feed title>

    ## <item title>
    <https://about.fb.com/news/2025/04/...>
    <summary, as plain text>

so the rest of the pipeline works unchanged: a new item is an inserted block whose title and summary are
matched against the topics (the pipeline ignores deleted blocks of a feed: an old item falling off the end of
the feed's window is not news), and the alert quotes the block, item link included. Link targets are
canonicalised like page links (tracking parameters dropped), so a feed that re-tags its links changes nothing.

**Parsing hostile XML.** A feed is text from a server we do not control. XML has features that turn a small
document into a denial of service or a data leak: nested entity definitions ("billion laughs") expand a
kilobyte into gigabytes, and external entities (XXE) make the parser read local files or fetch URLs. The
feed is parsed with defusedxml, which refuses any entity declaration and any external reference outright
(the feed is then `unreadable`), never loads a DTD and never touches the network; the body is already
capped in size by the fetcher. RSS 2.0, RSS 1.0 (RDF) and Atom 1.0 are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from watchdog.errors import ExtractError
from watchdog.extract import canonical_url, extract, normalise
from watchdog.results import Extracted

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

ATOM: Final = "{http://www.w3.org/2005/Atom}"
RSS1: Final = "{http://purl.org/rss/1.0/}"
RDF: Final = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC: Final = "{http://purl.org/dc/elements/1.1/}"
FEED_TYPES: Final = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "text/xml",
                     "application/xml")  # fmt: skip


@dataclass(frozen=True, slots=True)
class FeedItem:
    title: str
    link: str
    summary: str


@dataclass(frozen=True, slots=True)
class Feed:
    title: str
    items: tuple[FeedItem, ...]


def read_feed(body: bytes, *, url: str) -> Feed:
    """Parse an RSS 2.0, RSS 1.0 or Atom 1.0 document. Raises ExtractError when it is none of them."""
    # lazy: only feed targets read XML (defusedxml and the XML parser cost ~10 ms of every start-up)
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ExtractError(f"the feed declares entities or a DTD, refused as unsafe: {exc}") from exc
    except ParseError as exc:
        raise ExtractError(f"the feed is not well-formed XML: {exc}") from exc
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise ExtractError("an RSS document without a <channel>")
        return Feed(_text(channel, "title"), tuple(_rss_items(channel.iter("item"), url, "")))
    if root.tag == f"{ATOM}feed":
        return Feed(_text(root, f"{ATOM}title"), tuple(_atom_items(root, url)))
    if root.tag == f"{RDF}RDF":
        channel = root.find(f"{RSS1}channel")
        title = _text(channel, f"{RSS1}title") if channel is not None else ""
        return Feed(title, tuple(_rss_items(root.iter(f"{RSS1}item"), url, RSS1)))
    raise ExtractError(f"not an RSS or Atom feed (root element <{root.tag}>)")


def feed_text(feed: Feed) -> str:
    """The canonical text of a feed (see the module docstring)."""
    blocks = [f"# {feed.title}"] if feed.title else []
    for item in feed.items:
        lines = [f"## {item.title or '(untitled)'}"]
        lines += [f"<{item.link}>"] if item.link else []
        lines += [item.summary] if item.summary else []
        blocks.append("\n".join(lines))
    return normalise("\n\n".join(blocks))


def extract_feed(body: bytes, *, url: str) -> Extracted:
    """The extractor's result for a feed target: its items as text, the feed title as the page title."""
    feed = read_feed(body, url=url)
    return Extracted(text=feed_text(feed), matched=True, title=feed.title)  # no item: too short


def looks_like_feed(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in FEED_TYPES


# --------------------------------------------------------------------------- items


def _rss_items(items: Iterable[Element], url: str, ns: str) -> Iterable[FeedItem]:
    for item in items:
        link = _text(item, f"{ns}link") or _permalink(item)
        summary = _text(item, f"{ns}description") or _text(item, f"{DC}description")
        yield _item(_text(item, f"{ns}title"), link, summary, url)


def _permalink(item: Element) -> str:
    guid = item.find("guid")
    if guid is not None and guid.get("isPermaLink", "true") != "false":
        return (guid.text or "").strip()
    return ""


def _atom_items(root: Element, url: str) -> Iterable[FeedItem]:
    for entry in root.iter(f"{ATOM}entry"):
        links = entry.findall(f"{ATOM}link")
        alternate = [link for link in links if link.get("rel", "alternate") == "alternate"]
        href = (alternate or links)[0].get("href", "") if alternate or links else ""
        summary = _text(entry, f"{ATOM}summary") or _text(entry, f"{ATOM}content")
        yield _item(_text(entry, f"{ATOM}title"), href, summary, url)


def _item(title: str, link: str, summary: str, base: str) -> FeedItem:
    return FeedItem(
        title=_plain(title, base),
        link=canonical_url(link, base=base) if link else "",
        summary=_plain(summary, base),
    )


def _text(parent: Element, tag: str) -> str:
    found = parent.find(tag)
    return "".join(found.itertext()).strip() if found is not None else ""


def _plain(fragment: str, base: str) -> str:
    """Titles and summaries often carry (escaped) HTML: read them as the extractor reads a page."""
    if not fragment:
        return ""
    if "<" not in fragment:
        return " ".join(normalise(fragment).split())
    html = f"<div>{fragment}</div>".encode()
    return " ".join(extract(html, content_type="text/html; charset=utf-8", url=base).text.split())
