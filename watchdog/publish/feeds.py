"""Stage 7, publish: Atom feeds (RFC 4287) of the confirmed changes.

    feeds/all.atom               every change and revert, plus failure / recovery notices of any target
    feeds/target/<id>.atom       one target's changes and reverts
    feeds/topic/<id>.atom        changes touching one topic (and the reverts that withdraw them)
    feeds/archive.atom           imported history (`import ota`, `import wayback`), at its original dates

Imported changes are history, not news: they are in no feed but the archive feed, so a reader of the other
feeds never gets years of old changes at once when an import runs.

Each feed holds its newest `[alerts] feed_entries` entries (default FEED_LIMIT; the static site keeps the
whole history). An entry is a stored change record, so a technical re-extraction (a version without a
change) or a rejected capture never appears. A revert (the text went back to an earlier version: an A->B->A
flip) is its own, clearly titled entry: "X reverted to v2 (withdraws c3: topics)", published in every feed
the withdrawn change appeared in, so a reader who saw the change also sees it undone. Nothing in a feed
comes from the clock: `updated` and `published` are the detection times, the feed's `updated` is its newest
entry's (or the epoch when empty), so an unchanged archive gives byte-identical files. Entry ids are `tag:`
URIs made of the change id and the start of its record hash (both immutable), so they never change and never
collide across installations. XML is built with lxml (text is escaped by the serialiser, never concatenated).

An entry is what an alert says (watchdog.render): the headline as its title, the passages under their
sections as text (summary, at most SUMMARY_MAX characters) and as HTML (content, at most CONTENT_MAX bytes
once escaped), each cut at whole passages with a link to the change page for the rest; so an entry stays
near 20 KB, and a feed of FEED_LIMIT entries under FEED_MAX_BYTES (1 MB) whatever the changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import quote

from watchdog import __version__
from watchdog.config import AlertSettings, Config
from watchdog.errors import StorageError
from watchdog.models import TargetState, Topic, iso
from watchdog.publish.archive import Archive, DiffCache
from watchdog.publish.output import Page, page_key
from watchdog.publish.site import StoryKey, change_story, listing_title
from watchdog.render.compose import Links, Story, fit, page_path
from watchdog.render.html import fragments, printed, visible
from watchdog.render.text import texts
from watchdog.results import ChangeRecord, Event
from watchdog.storage.interfaces import ArchiveReader

if TYPE_CHECKING:
    from lxml.etree import _Element as Element

ATOM = "http://www.w3.org/2005/Atom"
TAG = "tag:policy-watchdog,2024:"
FEED_LIMIT = AlertSettings().feed_entries  # entries per feed by default: the newest; older ones stay archived
SUMMARY_MAX = 3_000  # bytes of an entry's text summary once escaped in the XML
CONTENT_MAX = 14_000  # bytes of an entry's HTML content once escaped in the XML: an entry stays under 20 KB
FEED_MAX_BYTES = 1_000_000  # no feed file is larger: the oldest entries go first
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # `updated` of a feed with no entry yet: fixed, not "now"
GENERATOR_URI = "https://pypi.org/project/policy-watchdog/"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    path: str  # under feeds/: "all.atom", "target/<id>.atom", "topic/<id>.atom"
    id: str
    title: str
    alternate: str  # the matching site page, relative to the site root


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    change: ChangeRecord
    target_name: str
    target_url: str
    topics: tuple[tuple[str, str], ...]  # (id, title); for a revert, the withdrawn change's topics
    withdraws: str | None  # for a revert: the change id whose text was withdrawn
    before_hash: str | None
    after_hash: str | None

    @property
    def at(self) -> datetime:
        return self.change.detected_at

    @property
    def sort_id(self) -> str:
        return self.change.id


@dataclass(frozen=True, slots=True)
class EventEntry:
    event: Event
    target_name: str

    @property
    def at(self) -> datetime:
        return self.event.at

    @property
    def sort_id(self) -> str:
        return self.event.id


Entry = ChangeEntry | EventEntry


@dataclass(frozen=True, slots=True)
class FeedInputs:
    spec: FeedSpec
    entries: tuple[Entry, ...]  # newest first
    base_url: str | None  # alerts.archive_url: absolute links when set, relative ones otherwise
    topics: tuple[Topic, ...]  # titles and severities, as the HTML diff shows them


# --------------------------------------------------------------------------- choosing the entries


@dataclass(frozen=True)
class FeedBuilder:
    config: Config
    archive: Archive
    store: ArchiveReader  # the reader the archive was loaded from: evidence comes from it
    diffs: DiffCache
    generator: str
    # an entry's title, summary and content, rendered once per run for each place its links are relative
    # to: every feed with archive_url, else all.atom and the deeper target/ and topic/ feeds apart
    bodies: dict[tuple[str, Links], tuple[str, str, str]] = field(default_factory=dict, compare=False)
    stories: dict[StoryKey, Story] = field(default_factory=dict, compare=False)  # shared with the site

    @cached_property
    def entries(self) -> tuple[ChangeEntry, ...]:
        """One entry per change record, newest first."""
        targets = {t.id: t for t in self.archive.targets}
        titles = {t.id: t.title for t in self.config.topics}
        introduced = self.archive.introduced_by()
        return tuple(self._entry(c, targets, titles, introduced) for c in self.archive.changes)

    def _entry(
        self,
        change: ChangeRecord,
        targets: dict[str, TargetState],
        titles: dict[str, str],
        introduced: dict[str, ChangeRecord],
    ) -> ChangeEntry:
        withdrawn = introduced.get(change.from_version) if change.kind == "revert" else None
        topic_ids = withdrawn.topics if withdrawn is not None else change.topics
        before, after = (self.archive.versions.get(v) for v in (change.from_version, change.to_version))
        target = targets.get(change.target_id)
        return ChangeEntry(
            change=change,
            target_name=target.name if target else change.target_id,
            target_url=target.url if target else "",
            topics=tuple((t, titles.get(t, t)) for t in topic_ids),
            withdraws=withdrawn.id if withdrawn is not None else None,
            before_hash=before.text_hash if before else None,
            after_hash=after.text_hash if after else None,
        )

    def pages(self) -> list[Page]:
        return [self._page(spec, entries) for spec, entries in self._feeds()]

    def _page(self, spec: FeedSpec, entries: Sequence[Entry]) -> Page:
        ordered = sorted(entries, key=lambda e: (e.at, e.sort_id), reverse=True)
        ordered = ordered[: self.config.alerts.feed_entries]
        inputs = FeedInputs(spec, tuple(ordered), self.config.alerts.archive_url, self.config.topics)
        return Page(spec.path, page_key(self.generator, inputs), lambda: render_feed(self, inputs))

    @cached_property
    def news(self) -> tuple[ChangeEntry, ...]:
        """The entries the news feeds carry: every change but imported history."""
        return tuple(e for e in self.entries if e.change.kind != "imported")

    def _feeds(self) -> list[tuple[FeedSpec, list[Entry]]]:
        return [self._global_feed(), *self._target_feeds(), *self._topic_feeds(), self._archive_feed()]

    def _global_feed(self) -> tuple[FeedSpec, list[Entry]]:
        names = {t.id: t.name for t in self.archive.targets}
        events = [EventEntry(e, names.get(e.target_id, e.target_id)) for e in self.archive.events]
        spec = FeedSpec("all.atom", f"{TAG}feed/all", "policy-watchdog: all changes", "index.html")
        return spec, [*self.news, *events]

    def _archive_feed(self) -> tuple[FeedSpec, list[Entry]]:
        spec = FeedSpec(
            "archive.atom", f"{TAG}feed/archive", "policy-watchdog: imported history", "index.html"
        )
        return spec, [e for e in self.entries if e.change.kind == "imported"]

    def _target_feeds(self) -> list[tuple[FeedSpec, list[Entry]]]:
        by_target: dict[str, list[Entry]] = {t.id: [] for t in self.archive.targets}
        for entry in self.news:
            by_target.setdefault(entry.change.target_id, []).append(entry)
        names = {t.id: t.name for t in self.archive.targets}
        return [
            (
                FeedSpec(
                    f"target/{tid}.atom",
                    f"{TAG}feed/target/{tid}",
                    f"{names.get(tid, tid)}: changes",
                    f"targets/{tid}.html",
                ),
                entries,
            )
            for tid, entries in by_target.items()
        ]

    def _topic_feeds(self) -> list[tuple[FeedSpec, list[Entry]]]:
        return [
            (
                FeedSpec(f"topic/{tid}.atom", f"{TAG}feed/topic/{tid}", f"{title}: changes", "index.html"),
                [e for e in self.news if tid in dict(e.topics)],
            )
            for tid, title in self._topic_ids()
        ]

    def _topic_ids(self) -> list[tuple[str, str]]:
        """Configured topics (a feed exists before its first change) and any topic of an older change."""
        known = {t.id: t.title for t in self.config.topics}
        for entry in self.news:
            for topic_id, title in entry.topics:
                known.setdefault(topic_id, title)
        return sorted(known.items())


# --------------------------------------------------------------------------- XML


def _sub(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    from lxml import etree

    node = etree.SubElement(parent, f"{{{ATOM}}}{tag}")
    for name, value in attrs.items():
        node.set(name, visible(value))
    if text is not None:
        node.text = visible(text)
    return node


def _href(inputs: FeedInputs, site_path: str) -> str:
    """Link to a site page: absolute under archive_url, else relative to this feed file (feeds/...)."""
    if inputs.base_url:
        return f"{inputs.base_url.rstrip('/')}/{site_path}"
    return "../" * (inputs.spec.path.count("/") + 1) + site_path


def _change_path(change_id: str) -> str:
    return page_path("changes", change_id)


def _self_href(inputs: FeedInputs) -> str:
    if inputs.base_url:
        return f"{inputs.base_url.rstrip('/')}/feeds/{inputs.spec.path}"
    return inputs.spec.path.rsplit("/", 1)[-1]


def render_feed(builder: FeedBuilder, inputs: FeedInputs) -> bytes:
    # lazy: lxml (~25 ms to import) only when a feed is written; a cycle that changed nothing writes none
    from lxml import etree

    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})  # type: ignore[dict-item]
    _sub(feed, "id", inputs.spec.id)
    _sub(feed, "title", inputs.spec.title, type="text")
    _sub(feed, "subtitle", "Wording changes of watched privacy and AI pages", type="text")
    newest = inputs.entries[0].at if inputs.entries else EPOCH
    _sub(feed, "updated", iso(newest))
    _sub(_sub(feed, "author"), "name", "policy-watchdog")
    _sub(feed, "generator", "policy-watchdog", uri=GENERATOR_URI, version=__version__)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=_self_href(inputs))
    _sub(feed, "link", rel="alternate", type="text/html", href=_href(inputs, inputs.spec.alternate))
    for entry in inputs.entries:
        if isinstance(entry, ChangeEntry):
            _change_entry(feed, builder, inputs, entry)
        else:
            _event_entry(feed, inputs, entry)
    xml: bytes = etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)
    while len(xml) > FEED_MAX_BYTES and len(feed.findall(f"{{{ATOM}}}entry")) > 1:
        feed.remove(feed.findall(f"{{{ATOM}}}entry")[-1])  # the oldest: it stays in the archive
        xml = etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return xml


def _change_entry(feed: Element, builder: FeedBuilder, inputs: FeedInputs, entry: ChangeEntry) -> None:
    change = entry.change
    links = _links(inputs, change)
    if (change.id, links) not in builder.bodies:
        builder.bodies[change.id, links] = _entry_body(builder, inputs, entry, links)
    title, summary, html = builder.bodies[change.id, links]
    node = _sub(feed, "entry")
    suffix = f"/{change.record_hash[:16]}" if change.record_hash else ""
    _sub(node, "id", f"{TAG}change/{quote(change.id, safe='@')}{suffix}")
    _sub(node, "title", title, type="text")
    _sub(node, "published", iso(change.detected_at))
    _sub(node, "updated", iso(change.detected_at))
    _sub(node, "link", rel="alternate", type="text/html", href=_href(inputs, _change_path(change.id)))
    for topic_id, topic_title in entry.topics:
        _sub(node, "category", term=topic_id, label=topic_title, scheme=f"{TAG}topics")
    _sub(
        node,
        "category",
        term=change.kind,
        label=KIND_LABELS.get(change.kind, change.kind),
        scheme=f"{TAG}kinds",
    )
    _sub(node, "summary", summary, type="text")
    _sub(node, "content", html, type="html")


KIND_LABELS = {
    "change": "wording changed",
    "revert": "back to an earlier text",
    "editorial": "meaning-preserving edits only",
    "capture": "a capture problem, not a wording change",
    "imported": "imported history",
}


def _entry_title(entry: ChangeEntry, story: Story | None) -> str:
    change = entry.change
    if change.kind == "revert":
        reverted = (change.reverted_to or change.to_version).rsplit("@", 1)[-1]
        topics = ", ".join(t for _i, t in entry.topics) or "no topic"
        withdraws = f" (withdraws {entry.withdraws}: {topics})" if entry.withdraws else ""
        return f"[{entry.target_name}] reverted to {reverted}{withdraws}"
    return story.headline if story is not None else listing_title(entry.target_name, change)


def _entry_body(
    builder: FeedBuilder, inputs: FeedInputs, entry: ChangeEntry, links: Links
) -> tuple[str, str, str]:
    """(title, summary, content) of an entry: the headline; the passages as text; the passages as HTML,
    each bounded (SUMMARY_MAX, CONTENT_MAX) with a link to the change page for the rest. The content is
    rendered as the alerts render it. Evidence is immutable, like the change that names it."""
    change = entry.change
    if entry.before_hash is None or entry.after_hash is None:
        note = f"{change.summary} (a version of this change is missing)"
        return _entry_title(entry, None), note, _paragraph(note)
    try:
        diff = builder.diffs.diff(entry.before_hash, entry.after_hash)
    except StorageError as exc:
        note = f"{change.summary} (the texts cannot be read: {exc})"
        return _entry_title(entry, None), note, _paragraph(note)
    story = change_story(
        builder.stories,
        builder.store,
        change,
        target_name=entry.target_name,
        url=entry.target_url,
        diff=diff,
        topics=inputs.topics,
    )
    summary = fit(
        story,
        texts(story, links, head=False, meta=False, clean=_shown_line),
        lambda body: escaped_size(body) <= SUMMARY_MAX,
        last_resort=[visible(story.headline)],
    )
    content = fit(
        story,
        fragments(story, links, page_text=visible),
        lambda body: escaped_size(body) <= CONTENT_MAX,
        last_resort=_paragraph(story.headline),
    )
    return _entry_title(entry, story), summary, content


def escaped_size(body: str) -> int:
    """Bytes of `body` once escaped for the XML: len(xml.sax.saxutils.escape(body).encode("utf-8")), the
    size an entry is held to ("&" "<" ">" as entities), counted without building the escaped copy (fitting
    an entry probes several bodies; tests/test_publish_reuse.py holds it to that definition)."""
    return len(body.encode("utf-8")) + 4 * body.count("&") + 3 * (body.count("<") + body.count(">"))


def _links(inputs: FeedInputs, change: ChangeRecord) -> Links:
    """Links from a feed entry: absolute under archive_url, else relative to the feed file."""
    return Links(
        change=_href(inputs, _change_path(change.id)),
        after=_href(inputs, page_path("versions", change.to_version)),
        before=_href(inputs, page_path("versions", change.from_version)),
    )


def _shown_line(text: str) -> str:
    """Page text on one line, its invisible characters shown (the feeds publish the archive's text)."""
    return " ".join(visible(text).split())


def _paragraph(text: str) -> str:
    """`<p>{{ text }}</p>` in the archive environment (printed: what `{{ text }}` prints there), without
    compiling a template in every process: each entry has one as its last resort."""
    return f"<p>{printed(text, visible)}</p>"


def _event_entry(feed: Element, inputs: FeedInputs, entry: EventEntry) -> None:
    event = entry.event
    node = _sub(feed, "entry")
    _sub(node, "id", f"{TAG}event/{quote(event.id, safe='@')}/{event.at.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    word = "can no longer be read" if event.kind == "failing" else "is readable again"
    _sub(node, "title", f"{entry.target_name} {word}", type="text")
    _sub(node, "published", iso(event.at))
    _sub(node, "updated", iso(event.at))
    target_page = f"targets/{quote(event.target_id, safe='')}.html"
    _sub(node, "link", rel="alternate", type="text/html", href=_href(inputs, target_page))
    _sub(node, "category", term=event.kind, label=word, scheme=f"{TAG}events")
    _sub(node, "content", event.reason, type="text")
