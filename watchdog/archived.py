"""The archive's history beyond a check's own state: its hash chain read back (ChainEntry, ChainHead,
BlobReference: `verify`, `export`), what imports add (ImportedVersion, ImportBatch, ImportResult,
ImportLedgerEntry, Relink) and the sentence index (SentenceHit, VersionSentences, TraceEvent: `search`,
`trace`, the site).

Part of the data model (watchdog/models.py, which still exports every name here): kept apart because a
check needs none of it before its first request, and each frozen dataclass costs ~0.6 ms of CPU to define
(dataclasses generates and compiles its methods) at every start. Modules that run before the requests bind
this one with watchdog/deferred.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from watchdog.models import ImportOutcome, Sequences, Snapshot, Version, VersionSource, iso
from watchdog.results import ChangeRecord, NewChange, NewSnapshot

# --------------------------------------------------------------------------- the hash chain, read back


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One record of a target's hash chain as stored, read back for `verify` and `export`."""

    kind: str  # "version" | "change"
    id: str
    target_id: str
    chain_seq: int
    prev_hash: str
    record_hash: str
    version: Version | None = None
    change: ChangeRecord | None = None
    snapshot: Snapshot | None = None  # a version's raw snapshot (None: it has none, or it is gone)
    evidence: tuple[Any, ...] = ()  # a change's classifier evidence, as stored
    problem: str | None = None  # the row cannot be read back into a record: what is wrong with it


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a target's hash chain ends: what `export --chain-heads` publishes and `verify --against`
    compares."""

    target_id: str
    head: str  # the record hash of its last record ("" when it has none)
    count: int  # how many records its chain holds


@dataclass(frozen=True, slots=True)
class BlobReference:
    """A blob some row refers to, and which row (for `verify`'s messages)."""

    digest: str
    what: str  # e.g. "text of version meta@v2"
    version_id: str | None = None  # the version whose text it is


# --------------------------------------------------------------------------- imports (watchdog/importers)


@dataclass(frozen=True, slots=True)
class ImportedVersion:
    """A version brought in by an import: the text its source recorded, when, and from what. `first_seen` is
    the source's recording time (so every listing orders it where it belongs), `last_seen` the last time
    the source recorded that same text; `snapshot`: the raw capture it was read from (Wayback), if any."""

    text: str
    recorded_at: datetime
    last_seen: datetime
    source: VersionSource
    provenance: Mapping[str, Any]
    technical: bool = False
    snapshot: NewSnapshot | None = None


@dataclass(frozen=True, slots=True)
class ImportLedgerEntry:
    """One record of the source (a commit, a capture) and what the import made of it: a version, a
    technical version, nothing new (`collapsed`: its text is the version before it) or nothing at all
    (`rejected`: it failed validation). `version_id`: the version it made or collapsed into."""

    ref: str
    recorded_at: datetime
    outcome: ImportOutcome
    version_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Everything one import adds to one target, written in ONE transaction (Imports.record_import).

    `versions` come in recording order, all after the target's imported history and before its first live
    version; their ids are predicted from `expected` (`<target>@v<version + 1>`, ...), and `changes` (kind
    `imported`, between consecutive versions) name them. `boundary`: the change from the last imported
    version to the target's first live version, when the live watch began before this import. `extended`:
    existing imported versions whose text the source recorded again (their last_seen moves); `snapshots`:
    raw captures kept that made no new version (rejected, or the text of the version before them)."""

    target_id: str
    name: str
    url: str
    source: VersionSource
    at: datetime
    versions: tuple[ImportedVersion, ...] = ()
    changes: tuple[NewChange, ...] = ()
    boundary: NewChange | None = None
    extended: tuple[tuple[str, datetime], ...] = ()
    ledger: tuple[ImportLedgerEntry, ...] = ()
    snapshots: tuple[NewSnapshot, ...] = ()
    expected: Sequences | None = None


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import's write created, and how many existing records it re-linked in the hash chain."""

    versions: tuple[Version, ...] = ()
    changes: tuple[ChangeRecord, ...] = ()
    relinked: int = 0


@dataclass(frozen=True, slots=True)
class Relink:
    """A re-linking of a target's hash chain: an import placed `inserted` records at `position`, before
    records that already existed, whose links changed. The links they had before are kept (`superseded`:
    record id, chain position, prev_hash, record_hash), so the head published before (`old_head`, over
    `old_count` records) can still be recomputed from the records as they are now (`verify` does)."""

    id: int
    target_id: str
    at: datetime
    position: int
    inserted: int
    old_head: str
    old_count: int
    superseded: tuple[tuple[str, int, str, str], ...] = ()


# --------------------------------------------------------------------------- search (the sentence index)


@dataclass(frozen=True, slots=True)
class SentenceHit:
    """A sentence of a target's archive and when it was first and last seen (`last_seen` None: it is in the
    current version). Dates are the versions' own: a version's first_seen, and last_seen of the last
    version (in recording order) that held the sentence."""

    target_id: str
    sentence: str
    first_seen: datetime
    first_version: str
    last_seen: datetime | None
    last_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target_id,
            "sentence": self.sentence,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "first_version": self.first_version,
            "last_version": self.last_version,
        }


@dataclass(frozen=True, slots=True)
class VersionSentences:
    """A version and the ids of the sentences it holds (the sentence index), for `trace` and the site's
    "in the policy since"."""

    version: Version
    sentence_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One step in the life of a sentence (`trace`): it appeared, was edited (`text` is the new wording) or
    disappeared, in `version`, at that version's first_seen."""

    target_id: str
    version: str
    at: datetime
    event: Literal["appeared", "edited", "disappeared"]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target_id,
            "version": self.version,
            "at": iso(self.at),
            "event": self.event,
            "text": self.text,
        }
