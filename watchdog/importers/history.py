"""Imports, the common part: a source's records (commits, captures) -> one ImportBatch for the archive.

Whatever the source, an import turns each of its records into a `Recording` (a text read and validated the
way a live capture is, or a rejection), in recording order, and `Planner` decides what each one adds:

- a text equal to the version before it adds nothing ("collapsed": that version's last_seen moves);
- a technical record (a re-extraction with new rules at the source) is a technical version: no change;
- any other text is a version, and the change from the version before it is diffed and classified like a
  live one (topics, sections, summary) and stored with kind `imported`: archived, published, never pushed;
- a rejected capture is kept as a rejected raw snapshot (when there is one), never a version.

Which records an import may still add (`Window`): those recorded after the target's imported history (the
last record any import took) and before its live watch began (its first live version). Earlier ones are
covered; later ones overlap our own captures, which are authoritative. So importing twice adds nothing, a
newer clone of the same source continues the history where the last import stopped, and the archive's
history is one stretch of imported records followed by live ones (storage/chain.py: how the hash chain
keeps that order when the live watch began before the import).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from watchdog.archived import ImportBatch, ImportedVersion, ImportLedgerEntry
from watchdog.models import ImportOutcome, Sequences, Target, Version, VersionSource
from watchdog.results import NewChange, NewSnapshot
from watchdog.storage.chain import sha256
from watchdog.storage.interfaces import ArchiveReader, Storage

Skip = Literal["covered", "after-live"]


@dataclass(frozen=True)
class Recording:
    """One record of a source: the text it gives (None: rejected, `rejection` says why), when the source
    recorded it, whether it is a technical re-extraction, its provenance and raw capture (if any)."""

    ref: str
    recorded_at: datetime
    provenance: Mapping[str, Any]
    text: str | None = None
    technical: bool = False
    snapshot: NewSnapshot | None = None
    rejection: str | None = None


@dataclass(frozen=True)
class ChangeIds:
    """The ids and date of a change an import is about to write (predicted: see ImportBatch)."""

    change_id: str
    from_id: str
    to_id: str
    at: datetime


# (text before, text after, ids) -> the change record, diffed and classified like a live one
Describe = Callable[[str, str, ChangeIds], NewChange]


@dataclass(frozen=True)
class Window:
    """Which records an import may still add to a target (see the module docstring)."""

    after: datetime | None  # the imported history ends with a record at this time
    before: datetime | None  # the live watch began with a version at this time
    known: frozenset[str] = frozenset()  # refs of this source already imported

    def skip(self, ref: str, at: datetime) -> Skip | None:
        if ref in self.known or (self.after is not None and at <= self.after):
            return "covered"
        if self.before is not None and at >= self.before:
            return "after-live"
        return None


def window(reader: ArchiveReader, target_id: str) -> Window:
    ledger = reader.import_ledger(target_id)
    live = [v.first_seen for v in reader.versions(target_id) if v.source == "live"]
    return Window(
        after=max((e.recorded_at for e in ledger), default=None),
        before=min(live, default=None),
        known=frozenset(e.ref for e in ledger),  # commit ids and capture ids never look alike
    )


_TALLIES = {
    "version": "versions",
    "technical": "technical",
    "collapsed": "collapsed",
    "rejected": "rejected",
    "covered": "covered",
    "after-live": "after_live",
}


@dataclass
class Tally:
    """What an import did with its source's records, for the progress lines and the final report."""

    versions: int = 0
    technical: int = 0
    collapsed: int = 0
    rejected: int = 0
    covered: int = 0
    after_live: int = 0
    changes: int = 0
    relinked: int = 0

    def count(self, outcome: ImportOutcome | Skip) -> None:
        name = _TALLIES[outcome]
        setattr(self, name, getattr(self, name) + 1)

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Planner:
    """Turns recordings, in recording order, into one ImportBatch (see the module docstring)."""

    target: Target
    source: VersionSource
    at: datetime
    reader: ArchiveReader
    describe: Describe
    sequences: Sequences  # the target's counters when the import read the archive: the batch's ids follow
    _versions: list[ImportedVersion] = field(default_factory=list)
    _changes: list[NewChange] = field(default_factory=list)
    _ledger: list[ImportLedgerEntry] = field(default_factory=list)
    _snapshots: list[NewSnapshot] = field(default_factory=list)  # raw captures that make no version
    _extended: dict[str, datetime] = field(default_factory=dict)
    _last: Version | None = None  # the last imported version already in the archive
    _last_text: str | None = None

    def __post_init__(self) -> None:
        imported = [v for v in self.reader.versions(self.target.id) if v.source != "live"]
        self._last = imported[0] if imported else None  # versions are newest first

    # ----------------------------------------------------------------- one record

    def add(self, recording: Recording) -> ImportOutcome:
        if recording.text is None:
            if recording.snapshot is not None:
                self._snapshots.append(recording.snapshot)
            return self._log(recording, "rejected", None, recording.rejection)
        digest = sha256(recording.text.encode("utf-8"))
        last_id, last_hash = self._last_identity()
        if last_id is not None and digest == last_hash:
            self._seen_again(last_id, recording.recorded_at)
            if recording.snapshot is not None:
                self._snapshots.append(recording.snapshot)
            return self._log(recording, "collapsed", last_id)
        return self._new_version(recording, recording.text, last_id)

    def _new_version(self, recording: Recording, text: str, last_id: str | None) -> ImportOutcome:
        version_id = f"{self.target.id}@v{self.sequences.version + len(self._versions) + 1}"
        if last_id is not None and not recording.technical:
            ids = ChangeIds(
                change_id=f"{self.target.id}@c{self.sequences.change + len(self._changes) + 1}",
                from_id=last_id,
                to_id=version_id,
                at=recording.recorded_at,
            )
            self._changes.append(self.describe(self._text_of_last(), text, ids))
        self._versions.append(
            ImportedVersion(
                text=text,
                recorded_at=recording.recorded_at,
                last_seen=recording.recorded_at,
                source=self.source,
                provenance=recording.provenance,
                technical=recording.technical,
                snapshot=recording.snapshot,
            )
        )
        outcome: ImportOutcome = "technical" if recording.technical else "version"
        return self._log(recording, outcome, version_id)

    def _last_identity(self) -> tuple[str | None, str | None]:
        if self._versions:
            seq = self.sequences.version + len(self._versions)
            return f"{self.target.id}@v{seq}", sha256(self._versions[-1].text.encode("utf-8"))
        if self._last is not None:
            return self._last.id, self._last.text_hash
        return None, None

    def _text_of_last(self) -> str:
        if self._versions:
            return self._versions[-1].text
        assert self._last is not None
        if self._last_text is None:
            self._last_text = self.reader.text(self._last.text_hash)
        return self._last_text

    def _seen_again(self, version_id: str, at: datetime) -> None:
        if self._versions:
            self._versions[-1] = replace(self._versions[-1], last_seen=at)
        else:
            self._extended[version_id] = at

    def _log(
        self, recording: Recording, outcome: ImportOutcome, version_id: str | None, reason: str | None = None
    ) -> ImportOutcome:
        self._ledger.append(
            ImportLedgerEntry(recording.ref, recording.recorded_at, outcome, version_id, reason)
        )
        return outcome

    # ----------------------------------------------------------------- the batch

    def batch(self, boundary: NewChange | None = None) -> ImportBatch | None:
        """Everything planned, for one write (None: nothing to write)."""
        if not (self._ledger or boundary):
            return None
        return ImportBatch(
            target_id=self.target.id,
            name=self.target.name,
            url=self.target.url,
            source=self.source,
            at=self.at,
            versions=tuple(self._versions),
            changes=tuple(self._changes),
            boundary=boundary,
            extended=tuple(self._extended.items()),
            ledger=tuple(self._ledger),
            snapshots=tuple(self._snapshots),
            expected=self.sequences,
        )

    def boundary(self) -> NewChange | None:
        """The change from the last imported version to the first live one, when the live watch began
        before this import, this import is the first to add versions before it, and the texts differ."""
        if not self._versions:
            return None
        live = [v for v in self.reader.versions(self.target.id) if v.source == "live"]
        if not live:
            return None
        first_live = live[-1]
        if any(c.to_version == first_live.id for c in self.reader.changes(target=self.target.id)):
            return None  # an earlier import (or the first live check) linked the two histories already
        last = self._versions[-1]
        if sha256(last.text.encode("utf-8")) == first_live.text_hash:
            return None
        seq = self.sequences.version + len(self._versions)
        ids = ChangeIds(
            change_id=f"{self.target.id}@c{self.sequences.change + len(self._changes) + 1}",
            from_id=f"{self.target.id}@v{seq}",
            to_id=first_live.id,
            at=first_live.first_seen,
        )
        return self.describe(last.text, self.reader.text(first_live.text_hash), ids)


# --------------------------------------------------------------------------- one import, end to end


class Source(Protocol):
    """A source of records: what it holds, and the recordings of the records it is asked for."""

    name: VersionSource

    def records(self) -> Sequence[tuple[str, datetime]]:
        """(ref, recording time) of every record, in recording order."""

    def read(self, refs: Sequence[str]) -> Iterator[Recording]:
        """The recordings of these records (a subsequence of `records`), in that order."""


class Progress(Protocol):
    def step(self, done: int, total: int, ref: str, outcome: str) -> None: ...


def run_import(
    source: Source,
    target: Target,
    store: Storage,
    *,
    describe: Describe,
    progress: Progress,
    at: datetime,
) -> Tally:
    """Import what `source` holds into `target`'s history: only the records in the target's window are
    read (a Wayback capture outside it is never fetched), all of them written in one transaction."""
    tally = Tally()
    reader = store.archive
    allowed = window(reader, target.id)
    wanted = []
    for ref, recorded_at in source.records():
        skip = allowed.skip(ref, recorded_at)
        if skip is None:
            wanted.append(ref)
        else:
            tally.count(skip)
    state = store.checks.read_check(target.id, recent_since=at, snapshots=0)
    planner = Planner(target, source.name, at, reader, describe, state.sequences)
    for done, recording in enumerate(source.read(wanted), 1):
        outcome = planner.add(recording)
        tally.count(outcome)
        progress.step(done, len(wanted), recording.ref, outcome)
    batch = planner.batch(planner.boundary())
    if batch is not None:
        result = store.imports.record_import(batch)
        tally.changes, tally.relinked = len(result.changes), result.relinked
    return tally
