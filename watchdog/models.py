"""The data passed between the pipeline stages.

fetch -> extract/normalise -> validate -> store -> diff -> classify -> notify/publish

Every type here is a frozen dataclass; every datetime is timezone-aware UTC. Stages talk to each other only
through these types, so each stage can be tested (and replaced) on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

FetcherKind = Literal["http", "browser", "auto"]
TargetKind = Literal["page", "feed"]
NotifyMode = Literal["topics", "all"]
DigestPeriod = Literal["daily", "weekly"]
Severity = Literal["high", "medium", "low"]
Status = Literal["new", "unchanged", "changed", "rejected", "error"]
Side = Literal["inserted", "deleted", "context"]
ChangeKind = Literal["change", "revert", "editorial", "capture", "imported"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("change", "revert", "editorial", "capture", "imported")
VersionSource = Literal["live", "ota", "wayback"]
ImportOutcome = Literal["version", "technical", "collapsed", "rejected"]  # what an import made of a record
# how listings name a version's source (history, the site)
SOURCE_NAMES: dict[str, str] = {"live": "live", "ota": "Open Terms Archive", "wayback": "Wayback Machine"}
AttemptOutcome = Literal["delivered", "failed", "unknown"]

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
    digest: DigestPeriod | None = None  # one brief per period instead of one message per change


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
class Validators:
    """The server's own cache validators, replayed on the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


# --------------------------------------------------------------------------- store (what the archive holds)


@dataclass(frozen=True, slots=True)
class TargetState:
    """What the archive knows about a target between checks."""

    id: str
    name: str
    url: str
    current_version: str | None
    last_check_at: datetime | None
    last_status: str | None
    last_reason: str | None
    last_change_at: datetime | None
    consecutive_failures: int
    failing: bool
    next_due_at: datetime | None
    etag: str | None
    last_modified: str | None
    last_node: str | None = None  # which node checked it last (several daemons on one database)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A raw capture as archived (its body is a blob), accepted or rejected."""

    id: int
    target_id: str
    url: str
    final_url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body_hash: str
    fetched_at: datetime
    fetcher: str
    config_fingerprint: str
    outcome: str  # "accepted" | "rejected"
    reason_code: str | None
    reason: str | None
    text_hash: str | None = None  # the text it gave (a rejected capture's too, when it had one)
    alternative: str | None = None  # the selector alternative that matched (None: the plain `select`)


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
    source: VersionSource = "live"  # where the text came from: our own check, or an import
    recorded_at: datetime | None = None  # an import: when the source recorded it (None: first_seen)
    provenance: Mapping[str, Any] | None = None  # an import: its commit / capture id, as JSON


# --------------------------------------------------------------------------- one check: read once, write once


@dataclass(frozen=True, slots=True)
class Sequences:
    """A target's counters in the archive: the last version, change and event numbers and chain position.
    A check predicts the ids it will create from them; the write checks they did not move meanwhile."""

    version: int = 0
    change: int = 0
    event: int = 0
    chain: int = 0

    def next_version_id(self, target_id: str) -> str:
        return f"{target_id}@v{self.version + 1}"

    def next_change_id(self, target_id: str) -> str:
        return f"{target_id}@c{self.change + 1}"

    def next_event_id(self, target_id: str, kind: str) -> str:
        return f"{target_id}@{kind}{self.event + 1}"


@dataclass(frozen=True, slots=True)
class CheckState:
    """Everything one check needs from the archive, read in one go (CheckStore.read_check)."""

    target_id: str
    target: TargetState | None  # None: never checked
    current: Version | None
    current_snapshot: Snapshot | None  # the raw capture the current version was made from
    recent: tuple[Version, ...]  # versions last seen since the read's `recent_since`, newest first
    latest_snapshots: tuple[Snapshot, ...]  # the target's last snapshots, newest first
    sequences: Sequences = Sequences()

    @property
    def validators(self) -> Validators | None:
        """The server's validators to replay, when there is a current version to fall back on."""
        if self.target is None or self.current is None:
            return None
        return Validators(self.target.etag, self.target.last_modified)

    @property
    def failures(self) -> int:
        return self.target.consecutive_failures if self.target else 0

    @property
    def failing(self) -> bool:
        return bool(self.target and self.target.failing)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z, seconds precision: the one timestamp format of the project."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- defined elsewhere
# Four parts of the model live in modules of their own, because a check needs none of their classes before
# its first request and defining a frozen dataclass costs CPU at every start (their docstrings say more):
# watchdog/results.py (a fetch's answer, a page read, one check's write, its outcome), watchdog/messages.py
# (a change's diff and classification, the messages, the outbox's alerts), watchdog/archived.py (the hash
# chain read back, imports, the sentence index) and watchdog/claims.py (what leasing targets answers).
# Their names stay importable from here, loaded on first use, for the tests that import them with the rest
# of the model; the package's own modules import them from where they are defined (mypy sees no
# __getattr__ here: it holds them to that).

_DEFINED_IN: dict[str, str] = {
    "Capture": "watchdog.results",
    "Claim": "watchdog.claims",
    "DueClaim": "watchdog.claims",
    "ChangeRecord": "watchdog.results",
    "Event": "watchdog.results",
    "NotModified": "watchdog.results",
    "Segment": "watchdog.messages",
    "Hunk": "watchdog.messages",
    "TextDiff": "watchdog.messages",
    "TopicMatch": "watchdog.messages",
    "Classification": "watchdog.messages",
    "diff_to_json": "watchdog.messages",
    "diff_from_json": "watchdog.messages",
    "Alert": "watchdog.messages",
    "Delivery": "watchdog.messages",
    "Attempt": "watchdog.messages",
    "ChangeMessage": "watchdog.messages",
    "StatusMessage": "watchdog.messages",
    "DigestItem": "watchdog.messages",
    "DigestMessage": "watchdog.messages",
    "Message": "watchdog.messages",
    "message_to_json": "watchdog.messages",
    "message_from_json": "watchdog.messages",
    "parse_iso": "watchdog.messages",
    "ChainEntry": "watchdog.archived",
    "ChainHead": "watchdog.archived",
    "BlobReference": "watchdog.archived",
    "ImportedVersion": "watchdog.archived",
    "ImportLedgerEntry": "watchdog.archived",
    "ImportBatch": "watchdog.archived",
    "ImportResult": "watchdog.archived",
    "Relink": "watchdog.archived",
    "SentenceHit": "watchdog.archived",
    "VersionSentences": "watchdog.archived",
    "TraceEvent": "watchdog.archived",
    "Extracted": "watchdog.results",
    "Document": "watchdog.results",
    "Rejection": "watchdog.results",
    "NewSnapshot": "watchdog.results",
    "NewVersion": "watchdog.results",
    "NewChange": "watchdog.results",
    "NewEvent": "watchdog.results",
    "OwedAlert": "watchdog.results",
    "CheckRecord": "watchdog.results",
    "Recorded": "watchdog.results",
    "Outcome": "watchdog.results",
}


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """PEP 562: a name of the model defined in another module, imported (with it) when first asked for."""
        if name in _DEFINED_IN:
            return getattr(import_module(_DEFINED_IN[name]), name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
