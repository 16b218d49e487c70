"""The data passed between the pipeline stages.

fetch -> extract/normalise -> validate -> store -> diff -> classify -> notify/publish

Every type here is a frozen dataclass; every datetime is timezone-aware UTC. Stages talk to each other only
through these types, so each stage can be tested (and replaced) on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

FetcherKind = Literal["http", "browser", "auto"]
TargetKind = Literal["page", "feed"]
NotifyMode = Literal["topics", "all"]
Severity = Literal["high", "medium", "low"]
Status = Literal["new", "unchanged", "changed", "rejected", "error"]
Side = Literal["inserted", "deleted", "context"]

SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class Topic:
    """A subject whose wording we watch (opt-out, public data...), with case-insensitive regexes."""

    id: str
    title: str
    severity: Severity
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SelectorSet:
    """One way of reading a page: CSS selectors whose matches are the content, and selectors removed first."""

    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """One watched page (or feed) and how to read it."""

    id: str
    url: str
    name: str
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    interval: timedelta = timedelta(hours=6)
    topics: tuple[str, ...] | None = None  # None: every topic
    accept_language: str | None = None
    fetcher: FetcherKind = "http"
    ready: str | None = None
    confirm_delay: timedelta = timedelta(seconds=60)
    notify: NotifyMode = "topics"
    min_length: int = 200  # characters of text below which a capture is rejected
    max_shrink: float = 0.5  # reject when the text loses more than this fraction vs the last version
    keep_links: bool = False  # include canonical link targets in the compared text
    user_agent: str | None = None  # overrides [fetch].user_agent
    # Tried in order when `select`/`remove` yield no text; the first that does wins (see extract.py).
    alternatives: tuple[SelectorSet, ...] = ()
    # Links whose presence, absence or target is itself news (objection forms): canonical URLs or globs.
    watch_links: tuple[str, ...] = ()
    kind: TargetKind = "page"  # "feed": an RSS/Atom feed whose new items are the news (watchdog/newsfeed.py)
    follow: bool = False  # feeds: watch each new item that touches a topic as a target (watchdog/follow.py)

    @property
    def selector_sets(self) -> tuple[SelectorSet, ...]:
        """The plain `select`/`remove` first, then the alternatives, in the order they are tried."""
        return (SelectorSet(self.select, self.remove), *self.alternatives)


@dataclass(frozen=True, slots=True)
class Channel:
    """An apprise destination. `url` holds secrets after ${VAR} expansion: never log or store it."""

    key: str  # stable, secret-free identity (hash of the un-expanded URL template)
    url: str
    label: str  # redacted form for logs and `notify test`
    tags: tuple[str, ...] = ()
    notify: NotifyMode = "topics"


@dataclass(frozen=True, slots=True)
class FetchSettings:
    user_agent: str
    timeout: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 3  # attempts after the first, for transient failures only
    backoff: float = 2.0  # base seconds of the exponential backoff
    max_retry_after: float = 300.0  # cap on a server's Retry-After
    attempt_deadline: float = 60.0  # seconds one attempt may take in all: connect, headers and body
    deadline: float = 180.0  # seconds one fetch may take in all: every attempt and backoff included
    private_redirects: bool = False  # follow redirects from a public URL to private/loopback addresses


# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True, slots=True)
class Capture:
    """What a fetcher brought back: the raw page, kept as a snapshot whatever happens next."""

    target_id: str
    url: str
    final_url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fetched_at: datetime
    fetcher: str  # "http" or "browser": which fetcher produced it

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304 to our conditional GET: nothing to parse."""

    target_id: str
    url: str
    fetched_at: datetime
    fetcher: str = "http"


@dataclass(frozen=True, slots=True)
class Validators:
    """The server's own cache validators, replayed on the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


# --------------------------------------------------------------------------- extract / validate


@dataclass(frozen=True, slots=True)
class Extracted:
    """Canonical text of a page. `matched` is False when `select` was given and matched nothing."""

    text: str
    matched: bool
    title: str = ""
    alternative: int | None = None  # which of target.alternatives produced the text (1-based); None: `select`


@dataclass(frozen=True, slots=True)
class Document:
    target_id: str
    text: str
    text_hash: str
    capture_hash: str
    alternative: int | None = None  # which of target.alternatives read the text (None: the plain `select`)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a capture may not become a version. `code` is short and stable, `reason` is for people."""

    code: str
    reason: str


# --------------------------------------------------------------------------- store


@dataclass(frozen=True, slots=True)
class Version:
    id: str  # "<target>@v<seq>"
    target_id: str
    seq: int
    text_hash: str
    snapshot_id: int | None
    first_seen: datetime
    last_seen: datetime
    technical: bool
    length: int
    record_hash: str = ""
    prev_hash: str = ""


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A stored change. kind: "change" (a confirmed new text) or "revert" (back to an earlier text)."""

    id: str  # "<target>@c<seq>"
    target_id: str
    seq: int
    from_version: str
    to_version: str
    detected_at: datetime
    kind: str
    topics: tuple[str, ...]
    severity: str
    summary: str
    alerted: bool
    reverted_to: str | None = None
    record_hash: str = ""
    prev_hash: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "target": self.target_id,
                "detected_at": iso(self.detected_at),
                "from_version": self.from_version,
                "to_version": self.to_version,
                "topics": list(self.topics),
                "severity": self.severity,
                "summary": self.summary,
                "alerted": self.alerted,
                "kind": self.kind,
                "reverted_to": self.reverted_to,
            },
            ensure_ascii=False,
        )


# --------------------------------------------------------------------------- diff / classify


@dataclass(frozen=True, slots=True)
class Segment:
    """One word-level piece of a hunk: op -1 deleted, 0 equal, +1 inserted."""

    op: int
    text: str


@dataclass(frozen=True, slots=True)
class Hunk:
    """One changed block: the old and new lines, word-level segments, the whole sentences around them, and
    where it sits: its heading path (e.g. ("What is our legal basis…?", "Legitimate interests")) and the
    anchor of that section on the version page."""

    before: str
    after: str
    segments: tuple[Segment, ...]
    sentences_before: tuple[str, ...]
    sentences_after: tuple[str, ...]
    line_before: int  # 1-based first line of the block in the old text (internal: never shown to people)
    line_after: int
    section: tuple[str, ...] = ()
    anchor: str = ""  # the section's id on the version page ("" before the first heading)


@dataclass(frozen=True, slots=True)
class TextDiff:
    hunks: tuple[Hunk, ...]
    inserted_chars: int
    deleted_chars: int
    truncated: bool = False  # a block over the size cap was diffed line-wise only


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """Evidence that a change touches a topic: which pattern matched what, on which side."""

    topic_id: str
    pattern: str
    side: Side
    sentence: str
    hunk_index: int


@dataclass(frozen=True, slots=True)
class Classification:
    topics: tuple[str, ...]  # sorted by severity (high first), then id
    matches: tuple[TopicMatch, ...]
    severity: str  # highest severity among topics, "none" when no topic matched


# --------------------------------------------------------------------------- outcome


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one check of one target, as printed by `check --json`."""

    target_id: str
    status: Status
    version: str | None = None
    change: str | None = None
    topics: tuple[str, ...] = ()
    alerted: bool = False
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target_id,
            "status": self.status,
            "version": self.version,
            "change": self.change,
            "topics": list(self.topics),
            "alerted": self.alerted,
            "reason": self.reason,
            **self.extra,
        }


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z, seconds precision: the one timestamp format of the project."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- notify (outbox)


@dataclass(frozen=True, slots=True)
class Alert:
    """A rendered alert, before routing: one per change (or failure / recovery / test event)."""

    event_id: str  # the change id, or "<target>@failing<n>" / "<target>@recovered<n>" / "test@<time>"
    kind: str  # "change" | "failing" | "recovered" | "test"
    target_id: str
    title: str
    text: str
    markdown: str
    html: str
    tags: tuple[str, ...]  # routing: topic ids, severities, target id, "failing"
    topic_change: bool = True  # False for a change that touches no topic (sent only to notify="all")
    attachment_name: str | None = None
    attachment: bytes | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: an alert owed to one channel. Delivered at most once, in order per channel."""

    id: int
    channel_key: str
    alert: Alert
    attempts: int
    created_at: datetime
