"""Storage, one import's write, backend-neutral: what `Imports.record_import` does inside its transaction.

The twin of storage/write.py for history brought in from public archives (watchdog/importers). A backend
locks the target's row, reads it (`TargetRow`) and hands it, with the batch, to `write_import`, which decides
every row and every hash-chain link; the backend only runs the statements (`ImportWriter`). So both
backends give an import the same ids and hashes, and `copy-archive` and `verify` hold across them.

The imported block (versions, each followed by the changes into it) goes after the target's imported
history and before its first live version. Without live records that is the end of the chain: the block is
appended. With them, the block takes the first live version's position and every live record after it is
re-linked (new position, prev_hash, record_hash; contents, ids and texts unchanged), the `boundary` change
right after the first live version; the links they had are kept under one relink row (storage/chain.py says
why, publish/evidence.py checks them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from watchdog.archived import (
    ChainEntry,
    ImportBatch,
    ImportedVersion,
    ImportLedgerEntry,
    ImportResult,
    Relink,
)
from watchdog.errors import ConflictError, StorageError
from watchdog.models import Version
from watchdog.results import ChangeRecord, NewChange
from watchdog.storage.chain import change_payload, sha256, version_payload
from watchdog.storage.write import (
    RowWriter,
    TargetRow,
    change_row,
    insert_change,
    insert_version,
    raw_snapshot,
)


class ImportWriter(RowWriter, Protocol):
    """The statements of an import's write, run by a backend inside the import's transaction."""

    def live_tail(self, target_id: str) -> list[ChainEntry]:
        """The target's records from its first live version on, in chain order (empty: no live version)."""

    def relink(self, entry: ChainEntry, chain_seq: int, prev_hash: str, record_hash: str) -> None:
        """Move an existing record to a new chain position with new links (its contents unchanged)."""

    def log_relink(self, relink: Relink) -> None:
        """Keep a re-linking and the links it superseded (`relink.id` ignored: the backend assigns it)."""

    def insert_ledger(
        self, target_id: str, source: str, entries: Sequence[ImportLedgerEntry], at: datetime
    ) -> None: ...


def write_import(batch: ImportBatch, row: TargetRow, writer: ImportWriter) -> ImportResult:
    """Apply `batch` to the target whose locked row is `row`, through `writer`; what it created."""
    if batch.expected is not None and batch.expected != row.sequences:
        raise ConflictError(
            f"the archive changed under the import into {batch.target_id} (expected {batch.expected}, "
            f"found {row.sequences}): another writer? Nothing was written"
        )
    return _ImportWrite(batch, row, writer).apply()


def _payload(entry: ChainEntry) -> dict[str, Any]:
    if entry.problem is not None or (entry.version is None and entry.change is None):
        raise StorageError(f"{entry.id} cannot be re-linked: {entry.problem or 'unreadable'} (run verify)")
    if entry.version is not None:
        return version_payload(entry.version, entry.snapshot)
    assert entry.change is not None
    return change_payload(entry.change)


class _ImportWrite:
    def __init__(self, batch: ImportBatch, row: TargetRow, writer: ImportWriter) -> None:
        self.batch = batch
        self.target_id = batch.target_id
        self.target = row
        self.writer = writer
        self.old_head, self.old_count = row.chain_head, row.chain_seq

    def apply(self) -> ImportResult:
        batch, target = self.batch, self.target
        tail = self.writer.live_tail(self.target_id) if batch.versions or batch.boundary else []
        if batch.boundary is not None and not tail:
            raise StorageError(f"{self.target_id}: a boundary change needs a live version to point to")
        if tail:
            target.chain_seq, target.chain_head = tail[0].chain_seq - 1, tail[0].prev_hash
        for kept in batch.snapshots:
            self.writer.insert_snapshot(raw_snapshot(self.target_id, kept))
        versions, changes = self._block()
        if tail:
            changes += self._relink(tail, inserted=len(versions) + len(changes))
        elif versions:
            target.current_version = versions[-1].id
        self.writer.insert_ledger(self.target_id, batch.source, batch.ledger, batch.at)
        for version_id, at in batch.extended:
            self.writer.touch(version_id, at)
        self.writer.update_target(self.target_id, target)
        return ImportResult(tuple(versions), tuple(changes), len(tail))

    def _block(self) -> tuple[list[Version], list[ChangeRecord]]:
        into: dict[str, list[NewChange]] = {}
        for new in self.batch.changes:
            into.setdefault(new.to_version or "", []).append(new)
        versions: list[Version] = []
        changes: list[ChangeRecord] = []
        for item in self.batch.versions:
            versions.append(self._version(item))
            changes += [self._change(new, versions[-1].first_seen) for new in into.pop(versions[-1].id, [])]
        if into:
            raise StorageError(
                f"{self.target_id}: imported changes into versions not imported: {sorted(into)}"
            )
        return versions, changes

    def _version(self, item: ImportedVersion) -> Version:
        raw = None
        if item.snapshot is not None:
            raw = raw_snapshot(self.target_id, item.snapshot)
            raw = replace(raw, id=self.writer.insert_snapshot(raw))
        self.target.version_seq += 1
        row = Version(
            id=f"{self.target_id}@v{self.target.version_seq}",
            target_id=self.target_id,
            seq=self.target.version_seq,
            text_hash=sha256(item.text.encode("utf-8")),
            snapshot_id=raw.id if raw else None,
            first_seen=item.recorded_at,
            last_seen=max(item.last_seen, item.recorded_at),
            technical=item.technical,
            length=len(item.text),
            source=item.source,
            recorded_at=item.recorded_at,
            provenance=item.provenance,
        )
        return insert_version(self.writer, self.target, row, raw, item.text)

    def _change(self, new: NewChange, at: datetime) -> ChangeRecord:
        self.target.change_seq += 1
        row = change_row(self.target_id, self.target.change_seq, new, new.to_version or "", at)
        row = insert_change(self.writer, self.target, row, new)
        last = self.target.last_change_at
        self.target.last_change_at = at if last is None else max(last, at)
        return row

    def _relink(self, tail: list[ChainEntry], *, inserted: int) -> list[ChangeRecord]:
        """Re-link the live records after the imported block; the boundary change after the first one."""
        boundary = self.batch.boundary
        self.writer.log_relink(
            Relink(
                id=0,
                target_id=self.target_id,
                at=self.batch.at,
                position=tail[0].chain_seq,
                inserted=inserted + (boundary is not None),
                old_head=self.old_head,
                old_count=self.old_count,
                superseded=tuple((e.id, e.chain_seq, e.prev_hash, e.record_hash) for e in tail),
            )
        )
        added: list[ChangeRecord] = []
        for entry in tail:
            chain_seq, prev, record_hash = self.target.link(_payload(entry))
            self.writer.relink(entry, chain_seq, prev, record_hash)
            if entry is tail[0] and boundary is not None:
                assert entry.version is not None  # the first live version
                added.append(self._change(replace(boundary, to_version=entry.id), entry.version.first_seen))
        return added
