"""Stage 7, publish: the static HTML archive (index, a timeline per target, a page per change and version).

Layout (permalinks, stable across runs):
    index.html                        every target, its state and last change; the latest changes
    targets/<target id>.html          the target's timeline: changes, versions, failures, newest first
    changes/<change id>.html          one change: inline diff (<del>/<ins>) and side by side, evidence, hashes
    versions/<version id>.html        one version: full text, fetch time, URL, HTTP status, every hash

No JavaScript. One small inline stylesheet, allowed by its hash in a strict Content-Security-Policy; it
reflows on a phone and prints cleanly. Every page-derived string goes through the element builder of
`watchdog.publish.html`, which escapes it: page text is hostile.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from watchdog.config import Config
from watchdog.errors import StorageError
from watchdog.models import ChangeRecord, Event, Snapshot, TargetState, Version, iso
from watchdog.publish.archive import Archive, DiffCache, change_evidence, matches_of
from watchdog.publish.html import (
    Child,
    Element,
    el,
    external,
    inline_diff,
    link_to,
    quotes,
    side_by_side,
    to_html,
)
from watchdog.publish.output import Page, page_key
from watchdog.storage.interfaces import ArchiveReader, Storage

RECENT_ON_INDEX = 30
T = TypeVar("T")

CSS = (
    ":root{color-scheme:light dark;--del:#ffe0e0;--ins:#dcf5dc;--rule:#8884}"
    "@media (prefers-color-scheme:dark){:root{--del:#5a2626;--ins:#234d23}}"
    "body{font:1rem/1.5 system-ui,sans-serif;max-width:64rem;margin:0 auto;padding:.75rem;"
    "overflow-wrap:break-word}a,code{overflow-wrap:anywhere}"
    "h1{font-size:1.4rem;line-height:1.25}h2{font-size:1.15rem;margin-top:1.5rem}"
    "nav a{margin-right:1rem}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid var(--rule);padding:.3rem .45rem;vertical-align:top;text-align:left}"
    ".text{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-serif,Georgia,serif}"
    "del{background:var(--del);text-decoration:line-through}"
    "ins{background:var(--ins);text-decoration:underline;text-underline-offset:.25em}"
    ".side td{width:50%}.where,.meta,footer{color:GrayText;font-size:.9rem}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dd{margin:0}"
    "code{font-size:.85rem}"
    ".failing{font-weight:bold}ol.timeline li{margin-bottom:.5rem}"
    "@media (max-width:40rem){.side td,.side th{display:block;width:auto}"
    "dl{grid-template-columns:1fr}dt{font-weight:bold}}"
    "@media print{nav,.feeds{display:none}body{max-width:none;font-size:10pt}"
    "del,ins{background:none}a{color:inherit;text-decoration:none}"
    ".hunk,tr{break-inside:avoid}}"
)
CSS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
CSP = f"default-src 'none'; style-src '{CSS_HASH}'; img-src 'self'; base-uri 'none'; form-action 'none'"


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
    topics: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ChangeInputs:
    head: TargetRef
    change: ChangeRecord
    before: VersionRef | None
    after: VersionRef | None
    undone: ChangeRecord | None  # for a revert: the change whose text was withdrawn
    older: str | None
    newer: str | None
    topics: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class VersionInputs:
    head: TargetRef
    version: Version
    snapshot: Snapshot | None
    older: str | None
    newer: str | None
    introduced_by: str | None


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
        version.id, version.seq, version.first_seen, version.technical, version.length, version.text_hash
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

    @cached_property
    def introduced(self) -> dict[str, ChangeRecord]:
        return self.archive.introduced_by()

    def pages(self) -> list[Page]:
        heads = self._heads()
        pages = [self._index_page(heads)]
        for head in heads.values():
            pages.append(self._target_page(head))
            pages.extend(self._change_pages(TargetRef(head.id, head.name, head.url)))
            pages.extend(self._version_pages(TargetRef(head.id, head.name, head.url)))
        return pages

    def _heads(self) -> dict[str, TargetHead]:
        threshold = self.config.alerts.failure_threshold
        return {t.id: head_of(t, failure_threshold=threshold) for t in self.archive.targets}

    def _topics(self, ids: Sequence[str] | None = None) -> tuple[tuple[str, str], ...]:
        titles = {t.id: t.title for t in self.config.topics}
        wanted = list(titles) if ids is None else list(ids)
        return tuple((i, titles.get(i, i)) for i in wanted)

    def _page(self, path: str, inputs: T, render: Callable[[SiteBuilder, T], Element]) -> Page:
        return Page(path, page_key(self.generator, path, inputs), lambda: to_html(render(self, inputs)))

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
            versions=tuple(r for v in self.archive.versions_of.get(head.id, ()) if (r := ref(v))),
            changes=self.archive.changes_of.get(head.id, ()),
            events=tuple(e for e in self.archive.events if e.target_id == head.id),
            topics=self._topics(),
        )
        return self._page(f"targets/{head.id}.html", inputs, render_target)

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
            topics=self._topics(change.topics or (undone.topics if undone else ())),
        )
        return self._page(f"changes/{change.id}.html", inputs, render_change)

    def _version_pages(self, head: TargetRef) -> list[Page]:
        versions = self.archive.versions_of.get(head.id, ())  # newest first
        return [self._version_page(head, v, *neighbours(versions, i)) for i, v in enumerate(versions)]

    def _version_page(self, head: TargetRef, version: Version, newer: str | None, older: str | None) -> Page:
        introduced = self.introduced.get(version.id)
        snapshot_id = version.snapshot_id
        inputs = VersionInputs(
            head=head,
            version=version,
            snapshot=self.archive.snapshots.get(snapshot_id) if snapshot_id is not None else None,
            newer=newer,
            older=older,
            introduced_by=introduced.id if introduced else None,
        )
        return self._page(f"versions/{version.id}.html", inputs, render_version)


def neighbours(
    records: Sequence[ChangeRecord] | Sequence[Version], index: int
) -> tuple[str | None, str | None]:
    """(newer id, older id) of records[index] in a newest-first sequence."""
    newer = records[index - 1].id if index else None
    older = records[index + 1].id if index + 1 < len(records) else None
    return newer, older


# --------------------------------------------------------------------------- the page frame


def frame(title: str, body: Sequence[Child], *, depth: int, feed: tuple[str, str] | None = None) -> Element:
    """The common page: strict CSP first, viewport, the inline stylesheet, navigation, a footer."""
    up = "../" * depth
    feed_href, feed_title = feed or ("feeds/all.atom", "All changes")
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", http_equiv="Content-Security-Policy", content=CSP),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", name="referrer", content="no-referrer"),
        el("title", title),
        el("style", CSS),
        el("link", rel="alternate", type="application/atom+xml", title=feed_title, href=up + feed_href),
    )
    nav = el("nav", el("a", "Archive index", href=f"{up}index.html"), el("a", "Feed", href=up + feed_href))
    footer = el("footer", "policy-watchdog archive · times are UTC · hashes are SHA-256")
    return el("html", head, el("body", el("header", nav), el("main", *body), footer), lang="en")


def when(moment: datetime | None) -> Child:
    if moment is None:
        return "—"
    return el("time", moment.strftime("%Y-%m-%d %H:%M UTC"), datetime=iso(moment))


def topic_words(topics: Sequence[tuple[str, str]]) -> str:
    return ", ".join(title for _id, title in topics) or "no watched topic"


def change_title(name: str, change: ChangeRecord, topics: Sequence[tuple[str, str]]) -> str:
    if change.kind == "revert":
        reverted = (change.reverted_to or change.to_version).rsplit("@", 1)[-1]
        return f"{name} reverted to {reverted}"
    return f"{name} changed: {topic_words(topics)}"


def definitions(pairs: Sequence[tuple[str, Child]]) -> Element:
    return el("dl", [[el("dt", label), el("dd", value)] for label, value in pairs])


def digest(value: str | None) -> Child:
    return el("code", value) if value else "—"


# --------------------------------------------------------------------------- index


def render_index(builder: SiteBuilder, inputs: IndexInputs) -> Element:
    del builder
    names = dict(inputs.names)
    topics = dict(inputs.topics)
    feeds = el(
        "p",
        "Subscribe: ",
        el("a", "all changes", href="feeds/all.atom"),
        [[" · ", el("a", title, href=f"feeds/topic/{tid}.atom")] for tid, title in inputs.topics],
        class_="feeds",
    )
    table = el(
        "table",
        el(
            "thead",
            el("tr", [el("th", h, scope="col") for h in ("Page", "State", "Last check", "Last change")]),
        ),
        el("tbody", [_index_row(head, last, topics) for head, last in inputs.rows]),
    )
    recent = [_change_item(c, names.get(c.target_id, c.target_id), topics, depth=0) for c in inputs.recent]
    body: list[Child] = [el("h1", "Policy archive"), feeds, el("h2", "Watched pages"), table]
    body += [el("h2", "Latest changes"), el("ol", recent) if recent else el("p", "No change recorded yet.")]
    return frame("Policy archive", body, depth=0)


def _index_row(head: TargetHead, last: ChangeRecord | None, topics: Mapping[str, str]) -> Element:
    last_cell: Child = "none yet"
    if last is not None:
        label = change_title(head.name, last, [(t, topics.get(t, t)) for t in last.topics])
        last_cell = [el("a", label, href=link_to(0, "changes", last.id)), " ", when(last.detected_at)]
    return el(
        "tr",
        el("td", el("a", head.name, href=link_to(0, "targets", head.id)), el("br"), external(head.url)),
        el("td", _state(head)),
        el("td", when(head.last_check_at)),
        el("td", last_cell),
    )


def _state(head: TargetHead) -> Child:
    if head.state in ("failing", "last check failed"):
        return el("span", f"{head.state}: {head.reason or 'unknown reason'}", class_="failing")
    return head.state


def _change_item(change: ChangeRecord, name: str, topics: Mapping[str, str], *, depth: int) -> Element:
    title = change_title(name, change, [(t, topics.get(t, t)) for t in change.topics])
    return el(
        "li",
        when(change.detected_at),
        " ",
        el("a", title, href=link_to(depth, "changes", change.id)),
        el("br"),
        el("span", change.summary, class_="meta"),
    )


# --------------------------------------------------------------------------- target timeline


def render_target(builder: SiteBuilder, inputs: TargetInputs) -> Element:
    del builder
    head = inputs.head
    feed = (f"feeds/target/{head.id}.atom", f"Changes of {head.name}")
    facts = definitions(
        [
            ("Watched URL", external(head.url)),
            ("State", _state(head)),
            ("Last check", when(head.last_check_at)),
            ("Current version", _version_link(head.current_version, depth=1)),
            ("Feed", el("a", f"{head.id}.atom", href=f"../{feed[0]}")),
        ]
    )
    items = _timeline(inputs)
    body = [el("h1", head.name), facts, el("h2", "Timeline (newest first)")]
    body.append(el("ol", items, class_="timeline", reversed="reversed") if items else el("p", "Nothing yet."))
    return frame(head.name, body, depth=1, feed=feed)


def _version_link(version_id: str | None, *, depth: int) -> Child:
    if not version_id:
        return "—"
    return el("a", version_id, href=link_to(depth, "versions", version_id))


def _timeline(inputs: TargetInputs) -> list[Element]:
    """Changes, versions not brought by a change (baseline, technical), failures; newest first."""
    topics = dict(inputs.topics)
    shown = {c.to_version for c in inputs.changes if c.kind == "change"}
    dated: list[tuple[datetime, int, Element]] = []
    for change in inputs.changes:
        item = _change_item(change, inputs.head.name, topics, depth=1)
        item.append(el("span", [" (", *_pair(change), ")"], class_="meta"))
        dated.append((change.detected_at, 2, item))
    for version in inputs.versions:
        if version.id not in shown:
            dated.append((version.first_seen, 1, _version_item(version)))
    dated += [(e.at, 0, _event_item(e)) for e in inputs.events]
    dated.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [item for _at, _rank, item in dated]


def _pair(change: ChangeRecord) -> list[Child]:
    """from → to, each a link to its version page."""
    return [_version_link(change.from_version, depth=1), " → ", _version_link(change.to_version, depth=1)]


def _version_item(version: VersionRef) -> Element:
    kind = "technical re-extraction (not a change at the source)" if version.technical else "first version"
    if not version.technical and version.seq > 1:
        kind = "version"
    return el("li", when(version.first_seen), " ", _version_link(version.id, depth=1), f": {kind}")


def _event_item(event: Event) -> Element:
    word = "could no longer be read" if event.kind == "failing" else "readable again"
    return el("li", when(event.at), " ", el("span", f"{word}: {event.reason}", class_=event.kind))


# --------------------------------------------------------------------------- change page


def render_change(builder: SiteBuilder, inputs: ChangeInputs) -> Element:
    change = inputs.change
    title = change_title(inputs.head.name, change, inputs.topics)
    # evidence is written with the change, in its transaction, and never updated: the change (and so its
    # record hash) in the page key covers it, and it is read only when the page is rendered
    evidence = change_evidence(builder.store, change.id)
    body: list[Child] = [el("h1", title), _change_facts(inputs), _change_nav(inputs)]
    body += _diff_sections(builder, inputs, [m.hunk_index for m in matches_of(evidence)])
    body += _evidence_section(inputs, evidence)
    return frame(title, body, depth=1, feed=(f"feeds/target/{inputs.head.id}.atom", inputs.head.name))


def _change_facts(inputs: ChangeInputs) -> Element:
    change = inputs.change
    pairs: list[tuple[str, Child]] = [
        ("Page", el("a", inputs.head.name, href=link_to(1, "targets", inputs.head.id))),
        ("Watched URL", external(inputs.head.url)),
        ("Detected", when(change.detected_at)),
        ("Versions", _pair(change)),
        ("Topics", f"{topic_words(inputs.topics)} (severity: {change.severity})"),
        ("Summary", change.summary),
        ("Alert sent", "yes" if change.alerted else "no"),
    ]
    if inputs.undone is not None:
        undone = inputs.undone
        pairs.insert(4, ("Withdraws", el("a", undone.id, href=link_to(1, "changes", undone.id))))
    pairs += [("Change id", el("code", change.id)), ("Record hash", digest(change.record_hash))]
    pairs.append(("Previous record hash", digest(change.prev_hash)))
    return definitions(pairs)


def _change_nav(inputs: ChangeInputs) -> Element:
    older = el("a", "← older change", href=link_to(1, "changes", inputs.older)) if inputs.older else None
    newer = el("a", "newer change →", href=link_to(1, "changes", inputs.newer)) if inputs.newer else None
    return el("nav", older, newer)


def _diff_sections(builder: SiteBuilder, inputs: ChangeInputs, first: Sequence[int]) -> list[Child]:
    before, after = inputs.before, inputs.after
    if before is None or after is None:
        return [
            el("p", "A version of this change is missing from the archive: run `policy-watchdog verify`.")
        ]
    try:
        diff = builder.diffs.diff(before.text_hash, after.text_hash)
    except StorageError as exc:  # a missing or damaged blob: say so on the page, keep publishing the rest
        return [el("p", f"The texts of this change cannot be read ({exc}): run `policy-watchdog verify`.")]
    said = quotes(diff, first=first, limit=10)
    return [
        el("h2", "What changed"),
        el("ul", [el("li", line) for line in said]) if said else el("p", "No wording difference."),
        el("h2", "Inline"),
        inline_diff(diff),
        el("h2", "Side by side"),
        side_by_side(diff, before_label=f"Before ({before.id})", after_label=f"After ({after.id})"),
    ]


def _evidence_section(inputs: ChangeInputs, evidence: Sequence[Mapping[str, Any]]) -> list[Child]:
    if not evidence:
        return []
    titles = dict(inputs.topics)
    items = []
    for item in evidence:
        topic = str(item.get("topic", ""))
        side = {"inserted": "an added", "deleted": "a removed"}.get(str(item.get("side")), "a")
        items.append(
            el(
                "li",
                el("strong", titles.get(topic, topic)),
                f" — pattern {item.get('pattern', '')!s} matched {side} sentence: ",
                el("q", str(item.get("sentence", ""))),
            )
        )
    return [el("h2", "Why it was flagged"), el("ul", items)]


# --------------------------------------------------------------------------- version page


def render_version(builder: SiteBuilder, inputs: VersionInputs) -> Element:
    version = inputs.version
    title = f"{inputs.head.name}, version {version.seq}"
    nav = el(
        "nav",
        el("a", "← older version", href=link_to(1, "versions", inputs.older)) if inputs.older else None,
        el("a", "newer version →", href=link_to(1, "versions", inputs.newer)) if inputs.newer else None,
    )
    body: list[Child] = [el("h1", title), _version_facts(inputs), nav, el("h2", "Full text")]
    try:
        body.append(el("div", builder.store.text(version.text_hash), class_="text"))
    except StorageError as exc:
        body.append(el("p", f"The text cannot be read ({exc}): run `policy-watchdog verify`."))
    return frame(title, body, depth=1, feed=(f"feeds/target/{inputs.head.id}.atom", inputs.head.name))


def _version_facts(inputs: VersionInputs) -> Element:
    version, snap = inputs.version, inputs.snapshot
    pairs: list[tuple[str, Child]] = [
        ("Page", el("a", inputs.head.name, href=link_to(1, "targets", inputs.head.id))),
        ("Version id", el("code", version.id)),
        ("First seen", when(version.first_seen)),
        ("Last seen", when(version.last_seen)),
        ("Characters", str(version.length)),
    ]
    if version.technical:
        pairs.append(("Kind", "technical re-extraction: same page, read with new settings; not a change"))
    if inputs.introduced_by:
        pairs.append(
            ("Brought by", el("a", inputs.introduced_by, href=link_to(1, "changes", inputs.introduced_by)))
        )
    pairs += _snapshot_facts(snap)
    pairs += [
        ("Text SHA-256", digest(version.text_hash)),
        ("Record hash", digest(version.record_hash)),
        ("Previous record hash", digest(version.prev_hash)),
    ]
    return definitions(pairs)


def _snapshot_facts(snap: Snapshot | None) -> list[tuple[str, Child]]:
    if snap is None:
        return [("Fetched", "no raw capture recorded for this version")]
    pairs: list[tuple[str, Child]] = [
        ("Fetched at", when(snap.fetched_at)),
        ("URL", external(snap.final_url)),
        ("HTTP status", str(snap.status)),
        ("Fetcher", snap.fetcher),
        ("Snapshot body SHA-256", digest(snap.body_hash)),
    ]
    if snap.url != snap.final_url:
        pairs.insert(2, ("Requested URL", external(snap.url)))
    return pairs


# --------------------------------------------------------------------------- export-site


def export_site(config: Config, store: Storage, directory: Path) -> str:
    """`export-site DIR`: the whole archive (pages and feeds/) under DIR; returns a one-line report."""
    from watchdog.publish import publish

    report = publish(config, store, site_dir=directory, feeds_dir=directory / "feeds", cache_dir=None)
    return str(report)
