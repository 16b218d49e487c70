"""Stage 7, publish: the static HTML archive, from Jinja2 templates (watchdog/render/templates/site/).

Layout (permalinks, stable across runs):
    index.html                        the latest changes, every watched page and its state
    targets/<target id>.html          the target's timeline: changes, versions, returns, failures
    changes/<change id>.html          one change, phone first: what changed (each passage under its
                                      section, linked to its place in the version), why it was flagged,
                                      then the facts, then the full diff inline and side by side
    versions/<version id>.html        one version: a ready-to-paste citation (effective date read from
                                      the text), downloads, the history of the text (returns after a
                                      revert included), compare links, the full text with an anchor per
                                      section
    compare/<version>--<version>.html each version against the previous one and the first one
    texts/<version id>.txt            the archived text, byte for byte (its SHA-256 is the text hash)
    raw/<sha-256>.gz                  a raw capture as fetched (gzip), for the versions' citations

No JavaScript. One inline stylesheet, allowed by its hash in a strict Content-Security-Policy; it reads
on a phone first and prints cleanly. Page text is escaped by autoescape and its invisible characters shown
(render.html.archive): page text is hostile.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TypeVar

from markupsafe import Markup

from watchdog.archived import SentenceHit
from watchdog.config import Config
from watchdog.errors import QueryError, StorageError
from watchdog.messages import TextDiff
from watchdog.models import SOURCE_NAMES, Snapshot, TargetState, Topic, Version
from watchdog.publish.archive import Archive, DiffCache, change_evidence, change_message, matches_of
from watchdog.publish.output import Page, page_key
from watchdog.render.cite import effective_date
from watchdog.render.clean import display_line, readable
from watchdog.render.compose import Links, Story, compose, page_path
from watchdog.render.html import archive, link_target, printed, visible, when_html
from watchdog.results import ChangeRecord, Event
from watchdog.sections import cells, headings
from watchdog.storage.files import write_atomically
from watchdog.storage.interfaces import ArchiveReader
from watchdog.storage.search import sentences_of
from watchdog.trace import since_when

log = logging.getLogger(__name__)

RECENT_ON_INDEX = 30
T = TypeVar("T")

CSS = (
    ":root{color-scheme:light dark;--del:#ffe0e0;--ins:#d6f5d6;--rule:#8884;--card:#f5f5f5;--flag:#b3261e}"
    "@media (prefers-color-scheme:dark){:root{--del:#5a2626;--ins:#234d23;--card:#202020;--flag:#f28b82}}"
    "*{box-sizing:border-box}"
    "body{font:1.0625rem/1.55 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:48rem;margin:0 auto;"
    "padding:.75rem 1rem 2rem;overflow-wrap:break-word}a,code{overflow-wrap:anywhere}"
    "header nav a{margin-right:1rem}"
    "h1{font-size:1.3rem;line-height:1.3;margin:.75rem 0 .5rem}"
    "h2{font-size:1.1rem;margin-top:2rem;padding-bottom:.2rem;border-bottom:1px solid var(--rule)}"
    ".meta,.where .tags,.folded,footer,.note{color:GrayText;font-size:.9rem}"
    ".passage{background:var(--card);border-left:4px solid GrayText;border-radius:4px;"
    "padding:.6rem .85rem;margin:1rem 0}"
    ".passage:has(.tags){border-left-color:var(--flag)}"
    ".where{margin:0 0 .4rem}.old,.new{margin:.4rem 0}.summary{font-style:italic}"
    "del{background:var(--del);text-decoration:line-through}"
    "ins{background:var(--ins);text-decoration:underline;text-underline-offset:.2em;font-weight:600}"
    ".new>ins:only-child,.old>del:only-child{font-weight:normal;text-decoration-color:#8888}"
    ".tags{display:inline-block;border:1px solid var(--rule);border-radius:3px;padding:0 .3rem}"
    "mark{background:#fff2a8;color:#000}"
    ".kind{font-size:.75rem;border:1px solid var(--rule);border-radius:3px;padding:0 .3rem;"
    "vertical-align:middle;font-weight:normal}"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0}"
    "th,td{border:1px solid var(--rule);padding:.3rem .45rem;vertical-align:top;text-align:left}"
    ".text{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".hunk{margin:1rem 0;padding-left:.6rem;border-left:3px solid var(--rule)}"
    ".side td{width:50%}.item{margin:.2rem 0 .2rem 1rem}.depth-2{margin-left:2rem}.depth-3{margin-left:3rem}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dd{margin:0}"
    "code{font-size:.85rem}pre.cite{white-space:pre-wrap;background:var(--card);padding:.75rem;"
    "border-radius:4px;font:inherit;font-size:.95rem;user-select:all}"
    ".failing,.problem{font-weight:bold}ol.timeline li,ol.changes li{margin-bottom:.6rem}"
    "form.compare{margin:1rem 0}form.compare label{margin-right:.5rem}select{max-width:100%}"
    "@media (max-width:40rem){body{padding:.5rem .75rem}h1{font-size:1.15rem}"
    ".side td,.side th,.pages td,.pages th{display:block;width:auto}.pages thead{display:none}"
    "dl{grid-template-columns:1fr}dt{font-weight:bold}}"
    "@media print{nav,.feeds,form{display:none}body{max-width:none;font-size:10pt}"
    "del,ins{background:none}a{color:inherit;text-decoration:none}.passage,.hunk,tr{break-inside:avoid}}"
)
CSS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
CSP = f"default-src 'none'; style-src '{CSS_HASH}'; img-src 'self'; base-uri 'none'; form-action 'self'"


# --------------------------------------------------------------------------- what the templates show


@dataclass(frozen=True, slots=True)
class Frame:
    """What every page's frame shows (site/base.html)."""

    title: str
    up: str  # "../" per folder level: links from this page to the site root
    feed_href: str = "feeds/all.atom"
    feed_title: str = "All changes"
    csp: str = CSP
    css: Markup = Markup(CSS)  # noqa: RUF009, S704 (our own constant stylesheet, never page text)


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a fact's value: text, a link, a hash in code, or a time."""

    text: str = ""
    href: str | None = None
    code: bool = False
    time: datetime | None = None
    external: bool = False


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """A dated line of a timeline or of a text's history."""

    at: datetime
    title: str
    href: str | None = None
    link: str | None = None  # the link's words, when the title is not the link
    kind: str | None = None
    detail: str | None = None
    css: str | None = None


def fact(label: str, *parts: Part | str) -> Fact:
    return Fact(label, tuple(Part(p) if isinstance(p, str) else p for p in parts))


def facts_html(items: Sequence[Fact]) -> Markup:
    """A page's facts as a <dl>: each label with its parts (text, link, hash in code, time). In Python
    rather than template macros, like the full text (tests/test_render_units.py: the same bytes)."""
    rows = "".join(
        f"<dt>{_out(item.label)}</dt><dd>{''.join(_fact_part(part) for part in item.parts)}</dd>\n"
        for item in items
    )
    return Markup(f"<dl>\n{rows}</dl>")  # noqa: S704 (page text escaped by _out)


def _fact_part(part: Part) -> str:
    if part.time:
        return when_html(part.time)
    if part.href:
        text = f"<code>{_out(part.text)}</code>" if part.code else _out(part.text)
        rel = ' rel="nofollow noopener noreferrer"' if part.external else ""
        return f'<a href="{_out(link_target(part.href))}"{rel}>{text}</a>'
    if part.code:
        return f"<code>{_out(part.text)}</code>" if part.text else "—"
    return _out(part.text)


def render_page(template: str, frame: Frame, **values: Any) -> bytes:
    html = archive().get_template(f"site/{template}").render(page=frame, **values)
    return html.encode("utf-8")


# --------------------------------------------------------------------------- page inputs
# Each page renders from one frozen value (plus content-addressed texts); its key hashes that value, so a
# page is re-rendered exactly when something it shows has changed.


@dataclass(frozen=True, slots=True)
class TargetHead:
    id: str
    name: str
    url: str
    state: str  # "ok" | "failing" | "last check failed" | "never checked"
    reason: str | None
    last_check_at: datetime | None
    current_version: str | None


@dataclass(frozen=True, slots=True)
class TargetRef:
    """What a change or version page shows of its target (not its state: that changes every check)."""

    id: str
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class VersionRef:
    id: str
    seq: int
    first_seen: datetime
    technical: bool
    length: int
    text_hash: str
    source: str = "live"  # VersionSource: imported versions say where they came from


@dataclass(frozen=True, slots=True)
class IndexInputs:
    rows: tuple[tuple[TargetHead, ChangeRecord | None], ...]
    recent: tuple[ChangeRecord, ...]
    names: tuple[tuple[str, str], ...]  # target id -> name
    topics: tuple[tuple[str, str], ...]  # topic id -> title


@dataclass(frozen=True, slots=True)
class TargetInputs:
    head: TargetHead
    versions: tuple[VersionRef, ...]
    changes: tuple[ChangeRecord, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class ChangeInputs:
    head: TargetRef
    change: ChangeRecord
    before: VersionRef | None
    after: VersionRef | None
    undone: ChangeRecord | None  # for a revert: the change whose text was withdrawn
    older: str | None
    newer: str | None


@dataclass(frozen=True, slots=True)
class VersionInputs:
    head: TargetRef
    version: Version
    snapshot: Snapshot | None
    older: str | None
    newer: str | None
    introduced_by: str | None
    returns: tuple[ChangeRecord, ...]  # reverts that brought this text back
    replaced: tuple[ChangeRecord, ...]  # changes (and reverts) away from it
    compare: tuple[tuple[str, str], ...]  # (href, label) of its static compare pages
    base_url: str | None  # [alerts] archive_url: the citation's permalink
    # its sentence ids, each in the policy since (trace.py). Out of the repr, so out of the page key: a
    # policy has ~1,500 of them, and printing each datetime cost ~1 ms a page; `since_key` stands for them
    # there (_since_key: equal exactly when the dates print the same, all that the page shows of them).
    since: tuple[tuple[int, datetime], ...] = field(default=(), repr=False, compare=False)
    since_key: str = ""


@dataclass(frozen=True, slots=True)
class CompareInputs:
    head: TargetRef
    before: VersionRef
    after: VersionRef


def head_of(state: TargetState, *, failure_threshold: int) -> TargetHead:
    return TargetHead(
        id=state.id,
        name=state.name,
        url=state.url,
        state=_state_word(state, failure_threshold),
        reason=state.last_reason,
        last_check_at=state.last_check_at,
        current_version=state.current_version,
    )


def _state_word(state: TargetState, failure_threshold: int) -> str:
    if state.failing or state.consecutive_failures >= failure_threshold:
        return "failing"
    if state.consecutive_failures:
        return "last check failed"
    return "ok" if state.last_check_at else "never checked"


def ref(version: Version | None) -> VersionRef | None:
    if version is None:
        return None
    return VersionRef(
        version.id,
        version.seq,
        version.first_seen,
        version.technical,
        version.length,
        version.text_hash,
        version.source,
    )


# --------------------------------------------------------------------------- the pages


@dataclass(frozen=True)
class SiteBuilder:
    """Turns an archive snapshot into the site's pages (lazily rendered)."""

    config: Config
    archive: Archive
    store: ArchiveReader  # the reader the archive was loaded from: texts and evidence come from it
    diffs: DiffCache
    generator: str
    stories: dict[StoryKey, Story] = field(default_factory=dict, compare=False)  # shared with the feeds
    sentences_since: dict[str, dict[str, tuple[tuple[int, datetime], ...]]] = field(
        default_factory=dict, compare=False
    )
    full_texts_dir: Path | None = None  # where the rendered full texts are kept (None: in memory only)
    # a diff's "Full diff" and side-by-side rows: the change page and the compare page of the same two
    # versions show the same ones (keyed by the two text hashes)
    diff_parts: dict[tuple[str, str], tuple[Markup, Markup]] = field(default_factory=dict, compare=False)
    # the text read last: a version page is followed by its text file (texts/<id>.txt), which prints the
    # same text (one blob read and decompressed, not two); one only, as an export reads thousands
    last_text: dict[str, str] = field(default_factory=dict, compare=False)

    def text(self, digest: str) -> str:
        """The archived text of that hash (StorageError when its blob is missing or damaged)."""
        if digest not in self.last_text:
            text = self.store.text(digest)
            self.last_text.clear()
            self.last_text[digest] = text
        return self.last_text[digest]

    @cached_property
    def full_texts(self) -> FullTexts:
        return FullTexts(self.full_texts_dir, self.generator)

    @cached_property
    def introduced(self) -> dict[str, ChangeRecord]:
        return self.archive.introduced_by()

    def pages(self) -> list[Page]:
        heads = self._heads()
        pages = [self._index_page(heads)]
        for head in heads.values():
            ref_ = TargetRef(head.id, head.name, head.url)
            pages.append(self._target_page(head))
            pages.extend(self._change_pages(ref_))
            pages.extend(self._version_pages(ref_))
            pages.extend(self._compare_pages(ref_))
        return pages

    def _heads(self) -> dict[str, TargetHead]:
        threshold = self.config.alerts.failure_threshold
        return {t.id: head_of(t, failure_threshold=threshold) for t in self.archive.targets}

    def _topics(self) -> tuple[tuple[str, str], ...]:
        return tuple((t.id, t.title) for t in self.config.topics)

    def _page(self, path: str, inputs: T, render: Callable[[SiteBuilder, T], bytes]) -> Page:
        return Page(path, page_key(self.generator, path, inputs), lambda: render(self, inputs))

    def _index_page(self, heads: Mapping[str, TargetHead]) -> Page:
        changes_of = self.archive.changes_of
        rows = tuple((h, next(iter(changes_of.get(h.id, ())), None)) for h in heads.values())
        inputs = IndexInputs(
            rows=rows,
            recent=self.archive.changes[:RECENT_ON_INDEX],
            names=tuple((h.id, h.name) for h in heads.values()),
            topics=self._topics(),
        )
        return self._page("index.html", inputs, render_index)

    def _target_page(self, head: TargetHead) -> Page:
        inputs = TargetInputs(
            head=head,
            versions=self._refs(head.id),
            changes=self.archive.changes_of.get(head.id, ()),
            events=tuple(e for e in self.archive.events if e.target_id == head.id),
        )
        return self._page(f"targets/{head.id}.html", inputs, render_target)

    def _refs(self, target_id: str) -> tuple[VersionRef, ...]:
        return tuple(r for v in self.archive.versions_of.get(target_id, ()) if (r := ref(v)))

    def _change_pages(self, head: TargetRef) -> list[Page]:
        changes = self.archive.changes_of.get(head.id, ())  # newest first
        return [self._change_page(head, change, *neighbours(changes, i)) for i, change in enumerate(changes)]

    def _change_page(
        self, head: TargetRef, change: ChangeRecord, newer: str | None, older: str | None
    ) -> Page:
        undone = self.introduced.get(change.from_version) if change.kind == "revert" else None
        inputs = ChangeInputs(
            head=head,
            change=change,
            before=ref(self.archive.versions.get(change.from_version)),
            after=ref(self.archive.versions.get(change.to_version)),
            undone=undone,
            older=older,
            newer=newer,
        )
        return self._page(page_path("changes", change.id), inputs, render_change)

    def _version_pages(self, head: TargetRef) -> list[Page]:
        versions = self.archive.versions_of.get(head.id, ())  # newest first
        pages = []
        for i, version in enumerate(versions):
            pages.append(self._version_page(head, version, *neighbours(versions, i)))
            pages.append(self._text_file(version))
        pages.extend(self._raw_files(head.id))
        return pages

    def _version_page(self, head: TargetRef, version: Version, newer: str | None, older: str | None) -> Page:
        introduced = self.introduced.get(version.id)
        snapshot_id = version.snapshot_id
        changes = self.archive.changes_of.get(head.id, ())
        since = self._since(head.id).get(version.id, ())
        inputs = VersionInputs(
            head=head,
            version=version,
            snapshot=self.archive.snapshots.get(snapshot_id) if snapshot_id is not None else None,
            newer=newer,
            older=older,
            introduced_by=introduced.id if introduced else None,
            # reverts that brought its text, or its meaning (a variant back, rewritten), back
            returns=tuple(
                c for c in changes if c.kind == "revert" and (c.reverted_to or c.to_version) == version.id
            ),
            replaced=tuple(c for c in changes if c.from_version == version.id),
            compare=compare_links(version, self._refs(head.id)),
            base_url=self.config.alerts.archive_url,
            since=since,
            since_key=_since_key(since) if since else "",
        )
        return self._page(page_path("versions", version.id), inputs, render_version)

    def _since(self, target_id: str) -> dict[str, tuple[tuple[int, datetime], ...]]:
        """Per version of the target: since when each of its sentences has been in the policy without a
        break (one read of the sentence index per target and publish)."""
        if target_id not in self.sentences_since:
            self.sentences_since[target_id] = {
                version.id: tuple(sorted(since.items()))
                for version, since in since_when(self.store.sentence_presence(target_id))
            }
        return self.sentences_since[target_id]

    def _text_file(self, version: Version) -> Page:
        path = f"texts/{version.id}.txt"
        return Page(path, page_key(path, version.text_hash), partial(self._text, version.text_hash))

    def _text(self, digest: str) -> bytes | None:
        try:
            return self.text(digest).encode("utf-8")
        except StorageError:  # a missing or damaged blob: the version page says so; no file
            return None

    def _raw_files(self, target_id: str) -> list[Page]:
        snapshots = {
            snap.body_hash: snap
            for v in self.archive.versions_of.get(target_id, ())
            if v.snapshot_id is not None and (snap := self.archive.snapshots.get(v.snapshot_id))
        }
        return [
            Page(f"raw/{digest}.gz", page_key("raw", digest), partial(self._raw, snapshots[digest]))
            for digest in sorted(snapshots)
        ]

    def _raw(self, snapshot: Snapshot) -> bytes | None:
        try:
            return self.store.snapshot_gzip(snapshot)
        except StorageError:
            return None

    def _compare_pages(self, head: TargetRef) -> list[Page]:
        versions = self._refs(head.id)
        pages = []
        for before, after in compare_pairs(versions):
            inputs = CompareInputs(head, before, after)
            pages.append(self._page(compare_path(before.id, after.id), inputs, render_compare))
        return pages

    def diff_html(self, before: VersionRef, after: VersionRef, diff: TextDiff) -> tuple[Markup, Markup]:
        """(the whole diff inline, the rows of its side-by-side table) of two versions, rendered once."""
        key = (before.text_hash, after.text_hash)
        if key not in self.diff_parts:
            views = hunk_views(diff)
            self.diff_parts[key] = (inline_diff(views), side_by_side_rows(views))
        return self.diff_parts[key]


def neighbours(
    records: Sequence[ChangeRecord] | Sequence[Version], index: int
) -> tuple[str | None, str | None]:
    """(newer id, older id) of records[index] in a newest-first sequence."""
    newer = records[index - 1].id if index else None
    older = records[index + 1].id if index + 1 < len(records) else None
    return newer, older


def compare_path(before: str, after: str) -> str:
    return page_path("compare", f"{before}--{after}")


def compare_pairs(versions: Sequence[VersionRef]) -> list[tuple[VersionRef, VersionRef]]:
    """The static compare pages of a target: each version against the one before it and the first one."""
    ordered = sorted(versions, key=lambda v: v.seq)
    pairs: dict[tuple[str, str], tuple[VersionRef, VersionRef]] = {}
    for index, version in enumerate(ordered[1:], start=1):
        for before in (ordered[index - 1], ordered[0]):
            pairs.setdefault((before.id, version.id), (before, version))
    return list(pairs.values())


# --------------------------------------------------------------------------- shared pieces


def _href(depth: int, folder: str, record_id: str) -> str:
    return "../" * depth + page_path(folder, record_id)


def listing_title(name: str, change: ChangeRecord) -> str:
    """A change in a list (index, timeline): its headline as recorded (`summary`), or the revert."""
    if change.kind == "revert":
        return f"[{name}] reverted to {_seq(change.reverted_to or change.to_version)}"
    return f"[{name}] {change.summary}"


def _seq(version_id: str) -> str:
    return version_id.rsplit("@", 1)[-1]


def hunk_views(diff: TextDiff) -> list[dict[str, Any]]:
    """Every hunk for the full diff (inline and side by side): its section, its (tag, text) pieces and
    their HTML (`shown`: (tag, html) pieces, each printed once for the inline diff and both sides)."""
    tags = {0: "", -1: "del", 1: "ins"}
    views = []
    for index, hunk in enumerate(diff.hunks):
        pieces = [(tags[op], text) for op, text in readable([(s.op, s.text) for s in hunk.segments])]
        views.append(
            {
                "index": index,
                "where": " › ".join(hunk.section) or "top of the page",
                "pieces": pieces,
                "shown": [
                    (tag, f"<{tag}>{_out(text)}</{tag}>" if tag else _out(text)) for tag, text in pieces
                ],
            }
        )
    return views


# The full diff of the change and compare pages, in Python rather than template macros (a diff has
# thousands of pieces; tests/test_render_units.py: the same bytes as the macros they replaced).


NO_DIFFERENCE = "<p>No wording difference.</p>\n"


def inline_diff(views: Sequence[Mapping[str, Any]]) -> Markup:
    """Every hunk under its section, <del>/<ins> inline; each with the id the passages link to."""
    hunks = "".join(
        f'<div class="hunk" id="full-{_out(view["index"])}"><p class="where">{_out(view["where"])}</p>\n'
        f'<p class="text">{_pieces(view["shown"], None)}</p></div>\n'
        for view in views
    )
    hunks = hunks or NO_DIFFERENCE
    return Markup(f'<div class="diff">\n{hunks}</div>')  # noqa: S704 (page text escaped by _out)


def side_by_side_rows(views: Sequence[Mapping[str, Any]]) -> Markup:
    """The rows of the side-by-side table: each hunk's old text (deletions marked), its new text."""
    return Markup(  # noqa: S704 (page text escaped by _out)
        "".join(
            f'<tr><td class="text">{_pieces(view["shown"], "ins")}</td>'
            f'<td class="text">{_pieces(view["shown"], "del")}</td></tr>\n'
            for view in views
        )
    )


def side_by_side(rows: Markup, before_label: str, after_label: str) -> Markup:
    return Markup(  # noqa: S704 (page text escaped by _out)
        f'<table class="side">\n<thead><tr><th scope="col">{_out(before_label)}</th>'
        f'<th scope="col">{_out(after_label)}</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>'
    )


def _pieces(shown: Sequence[tuple[str, str]], left_out: str | None) -> str:
    """(tag, html) pieces joined, without those tagged `left_out` ("ins": the old side, "del": the new
    side; None: both, inline)."""
    return "".join(html for tag, html in shown if tag != left_out)


def story_of(builder: SiteBuilder, head: TargetRef, change: ChangeRecord, diff: TextDiff) -> Story:
    """The change's story, as its alerts and feed entries tell it."""
    return change_story(
        builder.stories,
        builder.store,
        change,
        target_name=head.name,
        url=head.url,
        diff=diff,
        topics=builder.config.topics,
    )


StoryKey = tuple[str, str, str]  # (change id, page name, page URL)


def change_story(
    stories: dict[StoryKey, Story],
    store: ArchiveReader,
    change: ChangeRecord,
    *,
    target_name: str,
    url: str,
    diff: TextDiff,
    topics: Sequence[Topic],
) -> Story:
    """A change's story (render.compose), composed once per publish and kept in `stories`: the change
    page and the feed entries tell the same story (the same change, page, diff, evidence and topics)."""
    key = (change.id, target_name, url)
    if key not in stories:
        evidence = change_evidence(store, change.id)
        message = change_message(
            change, target_name=target_name, url=url, diff=diff, evidence=evidence, topics=topics
        )
        stories[key] = compose(message)
    return stories[key]


# --------------------------------------------------------------------------- index


def render_index(builder: SiteBuilder, inputs: IndexInputs) -> bytes:
    del builder
    names = dict(inputs.names)
    recent = [
        {
            "href": _href(0, "changes", c.id),
            "title": listing_title(names.get(c.target_id, c.target_id), c),
            "kind": c.kind,
            "at": c.detected_at,
        }
        for c in inputs.recent
    ]
    rows = []
    for head, last in inputs.rows:
        rows.append(
            {
                "href": _href(0, "targets", head.id),
                "name": head.name,
                "url": head.url,
                "state": _state_text(head),
                "failing": head.state in ("failing", "last check failed"),
                "checked": head.last_check_at,
                "last": None
                if last is None
                else {
                    "href": _href(0, "changes", last.id),
                    "title": listing_title(head.name, last),
                    "at": last.detected_at,
                },
            }
        )
    i = {"recent": recent, "rows": rows, "topics": inputs.topics}
    return render_page("index.html", Frame("Policy archive", up=""), i=i)


def _state_text(head: TargetHead) -> str:
    if head.state in ("failing", "last check failed"):
        return f"{head.state}: {head.reason or 'unknown reason'}"
    return head.state


# --------------------------------------------------------------------------- target timeline


def render_target(builder: SiteBuilder, inputs: TargetInputs) -> bytes:
    del builder
    head = inputs.head
    feed = f"feeds/target/{head.id}.atom"
    facts = [
        fact("Watched URL", Part(head.url, href=head.url, external=True)),
        fact("State", _state_text(head)),
        fact("Last check", Part(time=head.last_check_at) if head.last_check_at else "—"),
        fact("Current version", _version_part(head.current_version, depth=1)),
        fact("Feed", Part(f"{head.id}.atom", href=f"../{feed}")),
    ]
    t = {
        "name": head.name,
        "facts": facts_html(facts),
        "timeline": _timeline(inputs),
        "versions": inputs.versions,
    }
    return render_page(
        "target.html", Frame(head.name, up="../", feed_href=feed, feed_title=f"Changes of {head.name}"), t=t
    )


def _version_part(version_id: str | None, *, depth: int) -> Part | str:
    return Part(version_id, href=_href(depth, "versions", version_id)) if version_id else "—"


def _timeline(inputs: TargetInputs) -> list[Item]:
    """Changes, returns after a revert, versions not brought by a change (baseline, technical), failures;
    newest first."""
    name = inputs.head.name
    shown = {c.to_version for c in inputs.changes if c.kind != "revert"}
    dated: list[tuple[datetime, int, Item]] = []
    for change in inputs.changes:
        detail = f"{change.from_version} → {change.to_version}"
        if change.kind == "revert":
            detail += f": the text of {change.to_version} came back"
        href = _href(1, "changes", change.id)
        item = Item(change.detected_at, listing_title(name, change), href, kind=change.kind, detail=detail)
        dated.append((change.detected_at, 2, item))
    for version in inputs.versions:
        if version.id not in shown:
            dated.append((version.first_seen, 1, _version_item(version)))
    for event in inputs.events:
        word = "could no longer be read" if event.kind == "failing" else "readable again"
        dated.append((event.at, 0, Item(event.at, f"{word}: {event.reason}", css=event.kind)))
    dated.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [item for _at, _rank, item in dated]


def _version_item(version: VersionRef) -> Item:
    kind = "technical re-extraction (not a change at the source)" if version.technical else "first version"
    if not version.technical and version.seq > 1:
        kind = "version"
    if version.source != "live":
        kind += f", imported from {SOURCE_NAMES.get(version.source, version.source)}"
    return Item(version.first_seen, f"{version.id}: {kind}", _href(1, "versions", version.id))


# --------------------------------------------------------------------------- change page


def render_change(builder: SiteBuilder, inputs: ChangeInputs) -> bytes:
    change, head = inputs.change, inputs.head
    diff, problem = _diff_of(builder, inputs.before, inputs.after)
    story = story_of(builder, head, change, diff) if diff is not None else None
    if change.kind == "revert":
        title = f"[{head.name}] reverted to {_seq(change.reverted_to or change.to_version)}"
    else:
        title = story.headline if story else listing_title(head.name, change)
    evidence = change_evidence(builder.store, change.id)
    c = {
        "title": title,
        "kind": change.kind,
        "target_name": head.name,
        "detected_at": change.detected_at,
        "story": story,
        "problem": problem,
        "note": _revert_note(inputs),
        "links": Links(
            after=_href(1, "versions", change.to_version), before=_href(1, "versions", change.from_version)
        ),
        "flagged": _flagged(builder, evidence, story),
        "facts": facts_html(_change_facts(builder, inputs)),
        "older": _href(1, "changes", inputs.older) if inputs.older else None,
        "newer": _href(1, "changes", inputs.newer) if inputs.newer else None,
        "full_diff": None,
    }
    if diff is not None and inputs.before is not None and inputs.after is not None:
        inline, rows = builder.diff_html(inputs.before, inputs.after, diff)
        labels = (f"Before ({change.from_version})", f"After ({change.to_version})")
        c.update(full_diff=inline, side_by_side=side_by_side(rows, *labels))
    frame = Frame(title, up="../", feed_href=f"feeds/target/{head.id}.atom", feed_title=head.name)
    return render_page("change.html", frame, c=c)


def _diff_of(
    builder: SiteBuilder, before: VersionRef | None, after: VersionRef | None
) -> tuple[TextDiff | None, str | None]:
    if before is None or after is None:
        return None, "A version of this change is missing from the archive: run `policy-watchdog verify`."
    try:
        return builder.diffs.diff(before.text_hash, after.text_hash), None
    except StorageError as exc:  # a missing or damaged blob: say so on the page, keep publishing the rest
        return None, f"The texts of this change cannot be read ({exc}): run `policy-watchdog verify`."


def _revert_note(inputs: ChangeInputs) -> str | None:
    change = inputs.change
    if change.kind != "revert":
        return None
    withdrawn = f" It withdraws {inputs.undone.id}." if inputs.undone else ""
    earlier = change.reverted_to or change.to_version
    if earlier != change.to_version:  # a recently seen variant back, written differently (kinds.py)
        return (
            f"The page went back to the wording of {earlier}, seen before, with only edits that keep its "
            f"meaning ({change.to_version} keeps the exact text): a revert, not a new wording.{withdrawn}"
        )
    return (
        f"The page went back to the text of {earlier}, seen before: a revert, not a new wording.{withdrawn}"
    )


def _flagged(
    builder: SiteBuilder, evidence: Sequence[Mapping[str, Any]], story: Story | None
) -> list[dict[str, str]]:
    """Why a change was flagged: each topic with the sentence that matched, the matching words marked (the
    topic's pattern is applied again; a reader sees words, not regular expressions)."""
    titles = {t.id: t.title for t in builder.config.topics}
    found = []
    for match in matches_of(evidence):
        side = {"inserted": "an added sentence", "deleted": "a removed sentence"}.get(
            match.side, "a sentence"
        )
        before, marked, after = _mark(match.pattern, match.sentence)
        found.append(
            {
                "topic": titles.get(match.topic_id, match.topic_id),
                "side": side,
                "before": before,
                "match": marked,
                "after": after,
            }
        )
    del story
    return found


def _mark(pattern: str, sentence: str) -> tuple[str, str, str]:
    try:
        found = re.search(pattern, sentence, re.IGNORECASE)
    except re.error:
        found = None
    if found is None or not found.group():
        return sentence, "", ""
    return sentence[: found.start()], found.group(), sentence[found.end() :]


def _change_facts(builder: SiteBuilder, inputs: ChangeInputs) -> list[Fact]:
    change, head = inputs.change, inputs.head
    titles = {t.id: t.title for t in builder.config.topics}
    topic_words = ", ".join(titles.get(t, t) for t in change.topics) or "no watched topic"
    facts = [
        fact("Page", Part(head.name, href=_href(1, "targets", head.id))),
        fact("Watched URL", Part(head.url, href=head.url, external=True)),
        fact("Detected", Part(time=change.detected_at)),
        fact(
            "Versions",
            Part(change.from_version, href=_href(1, "versions", change.from_version)),
            " → ",
            Part(change.to_version, href=_href(1, "versions", change.to_version)),
        ),
        fact("Kind", change.kind),
        fact("Topics", f"{topic_words} (severity: {change.severity})"),
        fact("Alert sent", "yes" if change.alerted else "no"),
    ]
    if inputs.undone is not None:
        facts.insert(5, fact("Withdraws", Part(inputs.undone.id, href=_href(1, "changes", inputs.undone.id))))
    facts += [
        fact("Change id", Part(change.id, code=True)),
        fact("Record hash", Part(change.record_hash, code=True)),
        fact("Previous record hash", Part(change.prev_hash, code=True)),
    ]
    return facts


# --------------------------------------------------------------------------- version page


def render_version(builder: SiteBuilder, inputs: VersionInputs) -> bytes:
    version, head = inputs.version, inputs.head
    title = f"{head.name}, version {version.seq}"
    try:
        text, problem = builder.text(version.text_hash), None
    except StorageError as exc:
        text, problem = "", f"The text cannot be read ({exc}): run `policy-watchdog verify`."
    effective = effective_date(text) if text else None
    snap = inputs.snapshot
    v = {
        "id": version.id,
        "title": title,
        "citation": citation(inputs, effective),
        "raw_href": f"../raw/{snap.body_hash}.gz" if snap else None,
        "raw_hash": snap.body_hash if snap else None,
        "text_href": f"../texts/{version.id}.txt",
        "history": _history(inputs),
        "facts": facts_html(_version_facts(inputs, effective)),
        "older": _href(1, "versions", inputs.older) if inputs.older else None,
        "newer": _href(1, "versions", inputs.newer) if inputs.newer else None,
        "compare": inputs.compare,
        "target_href": _href(1, "targets", head.id),
        "problem": problem,
        "full_text": _full_text(builder, inputs, text) if problem is None else "",
    }
    frame = Frame(title, up="../", feed_href=f"feeds/target/{head.id}.atom", feed_title=head.name)
    return render_page("version.html", frame, v=v)


def _full_text(builder: SiteBuilder, inputs: VersionInputs, text: str) -> Markup:
    """The full text, each paragraph with since when it is in the policy; kept per text and since-dates."""
    version = inputs.version
    return builder.full_texts.html(
        version.text_hash,
        text,
        variant=inputs.since_key,
        blocks=lambda: _with_since(builder, inputs, text_blocks(text)),
    )


def _since_key(since: tuple[tuple[int, datetime], ...]) -> str:
    """What the since-dates of a text's sentences are, as a cache key: the sentence ids grouped by date.
    (A policy has thousands of sentences and a few dates: the repr of every pair cost ~2 ms a page.)"""
    # grouped by datetime object first: since_when gives each sentence the first_seen of a version, so the
    # dates of a text are a few objects (no tuple, offset or hash per sentence); objects of equal dates are
    # grouped by value, as below, each group's ids in their order
    by_object: dict[int, tuple[datetime, list[int]]] = {}
    for sentence, moment in since:
        found = by_object.get(id(moment))
        if found is None:
            found = by_object[id(moment)] = (moment, [])
        found[1].append(sentence)
    by_date = {(moment, moment.utcoffset()): ids for moment, ids in by_object.values()}
    if len(by_date) < len(by_object):
        by_date = {}
        for sentence, moment in since:  # the same instant with another offset prints otherwise: kept apart
            by_date.setdefault((moment, moment.utcoffset()), []).append(sentence)
    groups = sorted((moment.isoformat(), ids) for (moment, _), ids in by_date.items())
    return hashlib.sha256(repr(groups).encode()).hexdigest()[:32]


def _with_since(
    builder: SiteBuilder, inputs: VersionInputs, blocks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each block with `since`: the date its wording has been in the policy since, without a break (the
    latest of its sentences' dates); None for a block without a sentence, or an archive without the index."""
    since = dict(inputs.since)
    if not since:
        return blocks
    found = [sentences_of(block["source"]) for block in blocks]
    ids = builder.store.sentence_ids(inputs.version.target_id, {h for f in found for h, _ in f})
    dated = {digest: since[number] for digest, number in ids.items() if number in since}  # one look-up
    for block, sentences in zip(blocks, found, strict=True):
        if len(sentences) == 1:  # most paragraphs: the date of their one sentence, if any
            block["since"] = dated.get(sentences[0][0])
            continue
        dates = [dated[h] for h, _ in sentences if h in dated]
        block["since"] = max(dates) if dates else None
    return blocks


def citation(inputs: VersionInputs, effective: Any) -> str:
    """One line to paste into an article or a filing."""
    version, head, snap = inputs.version, inputs.head, inputs.snapshot
    stated = f"effective {effective.text}" if effective else "no effective date stated in the text"
    url = snap.final_url if snap else head.url
    permalink = (
        f"{inputs.base_url.rstrip('/')}/{page_path('versions', version.id)}"
        if inputs.base_url
        else f"{page_path('versions', version.id)} in this archive"
    )
    seen = version.first_seen.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{head.name} ({stated}), version {version.seq} as first seen {seen} at {url}. "
        f"Text SHA-256 {version.text_hash}. Archived by policy-watchdog: {permalink}"
    )


def _history(inputs: VersionInputs) -> list[Item]:
    version = inputs.version
    first = "first seen" + (" (a technical re-extraction)" if version.technical else "")
    if inputs.introduced_by:
        brought = _href(1, "changes", inputs.introduced_by)
        items = [Item(version.first_seen, "first seen, brought by", brought, inputs.introduced_by)]
    else:
        items = [Item(version.first_seen, first)]
    events = [(c.detected_at, "came back after a revert:", c) for c in inputs.returns]
    events += [(c.detected_at, f"replaced by {c.to_version}:", c) for c in inputs.replaced]
    for at, text, change in sorted(events, key=lambda item: item[0]):
        items.append(Item(at, text, _href(1, "changes", change.id), change.id))
    items.append(Item(version.last_seen, "last seen"))
    return items


def _version_facts(inputs: VersionInputs, effective: Any) -> list[Fact]:
    version, snap = inputs.version, inputs.snapshot
    stated = (
        f"{effective.text}" + (f" ({effective.iso})" if effective and effective.iso else "")
        if effective
        else "not stated in the text"
    )
    facts = [
        fact("Page", Part(inputs.head.name, href=_href(1, "targets", inputs.head.id))),
        fact("Version id", Part(version.id, code=True)),
        fact("Effective (as the text states)", stated),
        fact("First seen", Part(time=version.first_seen)),
        fact("Last seen", Part(time=version.last_seen)),
        fact("Characters", str(version.length)),
        *_source_facts(version),
    ]
    if version.technical:
        facts.append(fact("Kind", "technical re-extraction: same page, read with new settings; not a change"))
    if inputs.introduced_by:
        facts.append(
            fact("Brought by", Part(inputs.introduced_by, href=_href(1, "changes", inputs.introduced_by)))
        )
    facts += _snapshot_facts(snap)
    facts += [
        fact("Text SHA-256", Part(version.text_hash, code=True)),
        fact("Record hash", Part(version.record_hash, code=True)),
        fact("Previous record hash", Part(version.prev_hash, code=True)),
    ]
    return facts


def _source_facts(version: Version) -> list[Fact]:
    """Where an imported version comes from: its source, its commit or capture, its recording time."""
    if version.source == "live":
        return []
    where = version.provenance or {}
    name = SOURCE_NAMES.get(version.source, version.source)
    facts = [fact("Source", f"imported from {name} (recorded there, not fetched by this watchdog)")]
    if version.recorded_at is not None:
        facts.append(fact("Recorded by the source", Part(time=version.recorded_at)))
    if version.source == "ota":
        facts.append(
            fact("Repository", str(where.get("repository", "")), " ", Part(str(where.get("path", ""))))
        )
        facts.append(
            fact("Commit", Part(str(where.get("commit", "")), code=True), f" {where.get('title', '')}")
        )
        facts += [fact("Snapshot", Part(url, href=url, external=True)) for url in where.get("snapshots", ())]
    elif version.source == "wayback":
        url = str(where.get("capture_url", ""))
        facts.append(fact("Capture", Part(url, href=url, external=True) if url else "—"))
    return facts


def _snapshot_facts(snap: Snapshot | None) -> list[Fact]:
    if snap is None:
        return [fact("Fetched", "no raw capture recorded for this version")]
    facts = [
        fact("Fetched at", Part(time=snap.fetched_at)),
        fact("URL", Part(snap.final_url, href=snap.final_url, external=True)),
        fact("HTTP status", str(snap.status)),
        fact("Fetcher", snap.fetcher),
        fact("Snapshot body SHA-256", Part(snap.body_hash, code=True)),
    ]
    if snap.url != snap.final_url:
        facts.insert(2, fact("Requested URL", Part(snap.url, href=snap.url, external=True)))
    return facts


def compare_links(version: Version, versions: Sequence[VersionRef]) -> tuple[tuple[str, str], ...]:
    """(href, label) of the static compare pages of a version: the first, the previous, the next."""
    ordered = sorted(versions, key=lambda v: v.seq)
    pairs = {(b.id, a.id) for b, a in compare_pairs(versions)}
    links = []
    for other in ordered:
        if other.id == version.id:
            continue
        pair = (other.id, version.id) if other.seq < version.seq else (version.id, other.id)
        if pair in pairs:
            first = other.seq == ordered[0].seq
            word = "first version" if first else "previous" if other.seq < version.seq else "next"
            links.append(("../" + compare_path(*pair), f"{other.id} ({word})"))
    return tuple(links)


class FullTexts:
    """The "Full text" part of version pages, rendered once per text and kept on disk, keyed by the text's
    hash and the generator (the code and templates that render it).

    A version page also shows facts that move (its "last seen" time, the links to the next version), so the
    current version of every target is rendered again after every cycle; its text, the bulk of the page
    (a 400 KB policy: ~25 ms of CPU), has not changed. Like the diff cache, a cache on this machine: a
    missing or unreadable entry is rendered again, a full disk only costs time."""

    def __init__(self, directory: Path | None, generator: str) -> None:
        self._directory = directory
        self._generator = generator

    def html(
        self,
        text_hash: str,
        text: str,
        *,
        variant: str = "",
        blocks: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> Markup:
        """`variant`: what else the rendering depends on (the since-dates of its paragraphs), part of the key;
        `blocks`: the text's blocks as shown (default: text_blocks), computed only when not kept."""
        path = self._path(text_hash + variant)
        if path is not None:
            try:
                return Markup(path.read_text("utf-8"))  # noqa: S704 (rendered by full_text_html, escaped)
            except (OSError, UnicodeError):
                pass  # missing or unreadable: rendered again
        html = full_text_html(blocks() if blocks is not None else text_blocks(text))
        if path is not None:
            try:
                write_atomically(path, html.encode("utf-8"))
            except OSError as exc:
                log.debug("cannot keep a rendered text under %s: %s", self._directory, exc)
        return Markup(html)  # noqa: S704 (every page-derived value escaped by full_text_html)

    def _path(self, text_hash: str) -> Path | None:
        if self._directory is None or not self._generator:
            return None
        name = hashlib.sha256(f"{self._generator}\0{text_hash}".encode()).hexdigest()
        return self._directory / name[:2] / f"{name}.html"


def full_text_html(blocks: list[dict[str, Any]]) -> str:
    """The "Full text" of a version page, as the archive environment prints page text (visible, escaped).
    Written in Python, not as a template: a policy has thousands of blocks, and a template spent ~10 µs
    of Jinja2 bookkeeping on each (tests/test_render_units.py: the same bytes as the template it replaced)."""
    marks: dict[datetime | None, str] = {}  # one "in the policy since" note per date: a policy has a few
    parts = ['<div class="text">\n']
    for block in blocks:
        moment = block.get("since")
        if moment not in marks:
            marks[moment] = (
                f' <span class="meta since">in the policy since {when_html(moment)}</span>' if moment else ""
            )
        parts.append(_block_html(block, marks[moment]))
    parts.append("</div>\n")
    return "".join(parts)


def _block_html(block: Mapping[str, Any], since: str) -> str:
    kind = block["kind"]
    if kind == "text":  # most blocks
        return f"<p>{_out(block['text'])}{since}</p>\n"
    if kind == "heading":
        level = _out(block["level"])
        return f'<h{level} id="{_out(block["anchor"])}">{_out(block["text"])}</h{level}>\n'
    if kind == "item":
        return f'<p class="item depth-{_out(block["level"])}">• {_out(block["text"])}{since}</p>\n'
    if kind == "table":
        moment = block.get("since")
        caption = (
            f'<caption class="meta since">in the policy since {when_html(moment)}</caption>' if moment else ""
        )
        rows = "".join(_row_html(row, _out(block["width"])) for row in block["rows"])
        return f'<table class="rows">{caption}{rows}</table>\n'
    return f"<p>{_out(block['text'])}{since}</p>\n"


def _row_html(row: Mapping[str, Any], width: str) -> str:
    anchor = f' id="{_out(row["anchor"])}"' if row["anchor"] else ""
    if row["head"]:
        cells = "".join(f'<th scope="col">{_out(cell)}</th>' for cell in row["cells"])
    elif row["group"]:
        cells = "".join(f'<th scope="rowgroup" colspan="{width}">{_out(cell)}</th>' for cell in row["cells"])
    else:
        cells = "".join(f"<td>{_out(cell)}</td>" for cell in row["cells"])
    return f"<tr{anchor}>{cells}</tr>\n"


def _out(value: object) -> str:
    return printed(value, visible)


def text_blocks(text: str) -> list[dict[str, Any]]:
    """The canonical text as the version page shows it: headings (with their section anchors), list
    items, tables (header row, row-group titles, rows) and paragraphs."""
    anchors = {h.line: h.anchor for h in headings(text)}
    blocks: list[dict[str, Any]] = []
    table: dict[str, Any] | None = None
    for number, line in enumerate(text.split("\n")):
        if not line.strip():
            table = None
            continue
        shown = display_line(line)
        row = shown.kind == "row" or (shown.kind == "heading" and " | " in shown.text)
        if table is not None and (row or shown.kind == "heading"):
            table["source"] += "\n" + line
            _add_row(
                table,
                shown.text,
                head=shown.kind == "heading" and row,
                group=shown.kind == "heading" and not row,
                anchor=anchors.get(number, ""),
            )
            continue
        if row:
            table = {"kind": "table", "rows": [], "width": 1, "source": line}
            blocks.append(table)
            _add_row(table, shown.text, head=shown.kind == "heading", group=False, anchor="")
            continue
        table = None
        if shown.kind == "heading":
            blocks.append(
                {
                    "kind": "heading",
                    "level": min(shown.depth + 1, 6),
                    "text": shown.text,
                    "anchor": anchors.get(number, ""),
                    "source": line,
                }
            )
        else:
            blocks.append(
                {
                    "kind": shown.kind if shown.kind == "item" else "text",
                    "level": shown.depth,
                    "text": shown.text,
                    "source": line,
                }
            )
    return blocks


def _add_row(table: dict[str, Any], line: str, *, head: bool, group: bool, anchor: str) -> None:
    row_cells = [line] if group else cells(line)
    table["width"] = max(table["width"], len(row_cells))
    table["rows"].append({"cells": row_cells, "head": head, "group": group, "anchor": anchor})


# --------------------------------------------------------------------------- compare page


def render_compare(builder: SiteBuilder, inputs: CompareInputs) -> bytes:
    head, before, after = inputs.head, inputs.before, inputs.after
    title = f"{head.name}: {before.id} → {after.id}"
    try:
        diff: TextDiff | None = builder.diffs.diff(before.text_hash, after.text_hash)
        problem = None
    except StorageError as exc:
        diff, problem = None, f"The texts cannot be read ({exc}): run `policy-watchdog verify`."
    story = None
    if diff is not None:
        pseudo = ChangeRecord(
            id=f"{before.id}--{after.id}",
            target_id=head.id,
            seq=0,
            from_version=before.id,
            to_version=after.id,
            detected_at=after.first_seen,
            kind="compare",
            topics=(),
            severity="none",
            summary="",
            alerted=False,
        )
        message = change_message(
            pseudo, target_name=head.name, url=head.url, diff=diff, evidence=(), topics=()
        )
        story = compose(message)
    cmp = {
        "title": title,
        "before_id": before.id,
        "after_id": after.id,
        "before_seen": before.first_seen,
        "after_seen": after.first_seen,
        "before_href": _href(1, "versions", before.id),
        "after_href": _href(1, "versions", after.id),
        "story": story,
        "problem": problem,
        "links": Links(after=_href(1, "versions", after.id), before=_href(1, "versions", before.id)),
        "target_href": _href(1, "targets", head.id),
    }
    if diff is not None:
        inline, rows = builder.diff_html(before, after, diff)
        labels = (f"Before ({before.id})", f"After ({after.id})")
        cmp.update(full_diff=inline, side_by_side=side_by_side(rows, *labels))
    frame = Frame(title, up="../", feed_href=f"feeds/target/{head.id}.atom", feed_title=head.name)
    return render_page("compare.html", frame, cmp=cmp)


def compare_page(
    config: Config, store: ArchiveReader, before_id: str, after_id: str, *, cache_dir: Path | None
) -> bytes:
    """The compare page of any two versions of one target (`serve`'s /compare); raises NotFoundError for
    an unknown version, ValueError for versions of two targets."""
    before, after = store.version(before_id), store.version(after_id)
    if before.target_id != after.target_id:
        raise ValueError(f"{before_id} and {after_id} are versions of two different targets")
    state = next((t for t in store.target_states() if t.id == before.target_id), None)
    name, url = (state.name, state.url) if state else (before.target_id, "")
    diffs = DiffCache(texts=store.text, directory=cache_dir)
    builder = SiteBuilder(
        config,
        Archive.build(targets=(), versions=(), snapshots={}, changes=(), events=(), chain_seq={}),
        store,
        diffs,
        "",
    )
    refs = (ref(before), ref(after))
    assert refs[0] is not None and refs[1] is not None
    return render_compare(builder, CompareInputs(TargetRef(before.target_id, name, url), refs[0], refs[1]))


# --------------------------------------------------------------------------- search page (`serve`)

SEARCH_PAGE_LIMIT = 100  # sentences one search page shows, at most
QUERY_MAX = 300  # characters of a query the page takes


def search_page(store: ArchiveReader, query: str, target: str | None) -> bytes:
    """`serve`'s /search: the sentences of every version holding the query's words (storage/search.py),
    each with when it was first and last seen, at most SEARCH_PAGE_LIMIT; read-only. ValueError for a
    query longer than QUERY_MAX or an unknown target."""
    if len(query) > QUERY_MAX:
        raise ValueError(f"a query is at most {QUERY_MAX} characters")
    names = {t.id: t.name for t in store.target_states()}
    if target and target not in names:
        raise ValueError(f"unknown target {target!r}")
    hits: list[SentenceHit] = []
    problem = None
    if query.strip():
        try:
            hits = store.search(query, target=target or None, limit=SEARCH_PAGE_LIMIT)
        except QueryError as exc:
            problem = str(exc)
    shown = len(hits)
    count = f"{shown} sentence{'s' if shown != 1 else ''}" + (
        f" (the first {SEARCH_PAGE_LIMIT}: narrow the query)" if shown >= SEARCH_PAGE_LIMIT else ""
    )
    title = f"Search: {query}" if query.strip() else "Search the archive"
    s = {
        "title": title,
        "query": query,
        "target": target or "",
        "targets": sorted(names.items()),
        "problem": problem,
        "count": count,
        "hits": [
            {
                "sentence": h.sentence,
                "name": names.get(h.target_id, h.target_id),
                "first_seen": h.first_seen,
                "first_version": h.first_version,
                "first_href": _href(0, "versions", h.first_version),
                "last_seen": h.last_seen,
                "last_version": h.last_version,
                "last_href": _href(0, "versions", h.last_version) if h.last_version else None,
            }
            for h in hits
        ],
    }
    return render_page("search.html", Frame(title, up=""), s=s)
