"""What a check makes after its requests: a fetch's answer (Capture, NotModified), a page read (Extracted,
Document, Rejection), the records of its one write (NewSnapshot, NewVersion, NewChange, NewEvent, OwedAlert
in a CheckRecord; Recorded, what the write created; ChangeRecord and Event, a stored change and notice, as
the write makes them and the archive reads them back) and its result (Outcome, as `check --json` prints it).

Part of the data model (watchdog/models.py, which still exports every name here): kept apart because
defining a frozen dataclass costs ~0.6 ms of CPU at every start (dataclasses generates and compiles its
methods) and none of these is needed before a check's first request, the start-up figure of issue 14.
Every check builds some of them once its pages answer: this moves that cost after the requests, it does
not remove it. Modules that run before the requests bind this one with watchdog/deferred.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchdog.models import (
    ChangeKind,
    Sequences,
    Snapshot,
    Status,
    Target,
    Validators,
    Version,
    VersionSource,
    iso,
)

# --------------------------------------------------------------------------- a fetch's answer


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

    @classmethod
    def of_snapshot(cls, snapshot: Snapshot, body: bytes) -> Capture:
        """The raw page as it was fetched, rebuilt from an archived snapshot and its body."""
        return cls(
            snapshot.target_id, snapshot.url, snapshot.final_url, snapshot.status, snapshot.headers, body,
            snapshot.fetched_at, snapshot.fetcher,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304 to our conditional GET: nothing to parse."""

    target_id: str
    url: str
    fetched_at: datetime
    fetcher: str = "http"


# --------------------------------------------------------------------------- a page read (extract / validate)


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


# --------------------------------------------------------------------------- one check's write


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A stored change. kind (CHANGE_KINDS): "change" (a confirmed new wording), "revert" (back to an earlier
    text), "editorial" (meaning-preserving edits only), "capture" (the capture changed shape, not the
    wording), "imported" (between two imported versions)."""

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
    sections: tuple[str, ...] = ()  # the heading path of each changed passage, in hunk order

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
                "sections": list(self.sections),
            },
            ensure_ascii=False,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """A failure or recovery notice of a target."""

    id: str  # "<target>@failing<n>" | "<target>@recovered<n>"
    target_id: str
    kind: str  # "failing" | "recovered"
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class NewSnapshot:
    """A raw capture to archive (its body becomes a blob), with how it was judged."""

    capture: Capture
    fingerprint: str  # config_fingerprint(target): the settings it was read with
    outcome: str  # "accepted" | "rejected"
    reason_code: str | None = None
    reason: str | None = None
    text_hash: str | None = None
    alternative: str | None = None


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A new text. It becomes the target's current version and joins its hash chain. Its raw snapshot is the
    record's new snapshot when there is one, else `snapshot_id` (an archived one: reextract) or none."""

    text: str
    seen_at: datetime
    technical: bool = False
    snapshot_id: int | None = None
    source: VersionSource = "live"
    recorded_at: datetime | None = None
    provenance: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NewChange:
    """A change record. `to_version` None: the record's new version."""

    from_version: str
    kind: ChangeKind
    topics: tuple[str, ...] = ()
    severity: str = "none"
    summary: str = ""
    to_version: str | None = None
    reverted_to: str | None = None
    evidence: tuple[Mapping[str, Any], ...] = ()
    sections: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A failure ("failing": the target is marked failing) or recovery ("recovered": no longer failing)."""

    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class OwedAlert:
    """An alert owed to channels, queued in the check's transaction (one outbox row per channel; a second
    queueing of the same event for a channel is ignored). `payload` is opaque to the storage.

    `once_per_text`: the text hash of a change alert. Each distinct text alerts at most once: when a change
    to that text was alerted before, nothing is queued. Queued, it marks the record's change alerted."""

    event_id: str
    payload: str
    channel_keys: tuple[str, ...]
    once_per_text: str | None = None


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """Everything one check learned, written in ONE transaction (CheckStore.record_check).

    `status` None: not a check (reextract, imports): the target's check status is left alone. `expected`:
    the counters the check's state was read with; the write refuses (StorageError) if they moved."""

    target_id: str
    name: str
    url: str
    at: datetime
    status: Status | None
    reason: str | None = None
    failed: bool = False  # counts toward consecutive failures (else the count restarts)
    validators: Validators | None = None  # the server's new ones (when a full response came)
    snapshot: NewSnapshot | None = None
    version: NewVersion | None = None
    seen: str | None = None  # an existing version seen again at `at` (its last_seen moves)
    current: str | None = None  # an existing version that becomes current again (a revert)
    change: NewChange | None = None
    event: NewEvent | None = None
    alerts: tuple[OwedAlert, ...] = ()
    expected: Sequences | None = None
    node: str | None = None

    @classmethod
    def technical_reading(
        cls, target: Target, snapshot: Snapshot, text: str, expected: Sequences | None
    ) -> CheckRecord:
        """`text`, what today's code and settings read from an archived raw page, as a technical version
        dated by that page's capture: no change, no alert, the check status left alone (`reextract`,
        and a check whose reading of the current page changed)."""
        version = NewVersion(text=text, seen_at=snapshot.fetched_at, technical=True, snapshot_id=snapshot.id)
        return cls(
            target.id, target.name, target.url, snapshot.fetched_at, None, version=version, expected=expected
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a CheckRecord's write created: the ids it assigned and the outbox rows queued per event."""

    snapshot_id: int | None = None
    version: Version | None = None
    change: ChangeRecord | None = None
    event: Event | None = None
    queued: Mapping[str, int] = field(default_factory=dict)  # event id -> outbox rows added

    def alerted(self, event_id: str | None) -> bool:
        return bool(event_id) and self.queued.get(event_id or "", 0) > 0


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
