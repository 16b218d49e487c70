"""Storage, SQLite backend: Imports, what one import adds to one target, in one transaction
(storage/import_write.py decides the rows, ids and hash-chain links; `ImportStatements` runs them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from watchdog.models import ChainEntry, ImportBatch, ImportLedgerEntry, ImportResult, Relink
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import ts
from watchdog.storage.import_write import write_import
from watchdog.storage.records import change_entry, target_row, version_entry
from watchdog.storage.sqlite.checks import Writer
from watchdog.storage.sqlite.connection import Database


class SqliteImports:
    """Imports: what one import adds to one target, in ONE transaction (storage/import_write.py)."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def record_import(self, batch: ImportBatch) -> ImportResult:
        for item in batch.versions:  # blobs first, as for a check: the transaction only refers to them
            self._blobs.put_text(item.text)
            if item.snapshot is not None:
                self._blobs.put(item.snapshot.capture.body)
        for kept in batch.snapshots:
            self._blobs.put(kept.capture.body)
        with self._db.transaction():
            row = self._db.one(
                "INSERT INTO targets (id, name, url) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url RETURNING *",
                (batch.target_id, batch.name, batch.url),
            )
            assert row is not None  # RETURNING always yields the row written
            return write_import(batch, target_row(row), ImportStatements(self._db))


class ImportStatements(Writer):
    """ImportWriter (storage/import_write.py): a check's statements, and those only an import runs."""

    def live_tail(self, target_id: str) -> list[ChainEntry]:
        first = self.db.one(
            "SELECT min(chain_seq) FROM versions WHERE target_id = ? AND source = 'live'", (target_id,)
        )
        if first is None or first[0] is None:
            return []
        position = int(first[0])
        versions = self.db.query(
            "SELECT * FROM versions WHERE target_id = ? AND chain_seq >= ?", (target_id, position)
        )
        ids = json.dumps([row["snapshot_id"] for row in versions if row["snapshot_id"] is not None])
        raws = {
            int(row["id"]): row
            for row in self.db.query(
                "SELECT * FROM snapshots WHERE id IN (SELECT value FROM json_each(?))", (ids,)
            )
        }
        changes = self.db.query(
            "SELECT * FROM changes WHERE target_id = ? AND chain_seq >= ?", (target_id, position)
        )
        entries = [version_entry(row, raws) for row in versions] + [change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: e.chain_seq)

    def relink(self, entry: ChainEntry, chain_seq: int, prev_hash: str, record_hash: str) -> None:
        self.db.execute(
            "UPDATE versions SET chain_seq = ?, prev_hash = ?, record_hash = ? WHERE id = ?"
            if entry.kind == "version"
            else "UPDATE changes SET chain_seq = ?, prev_hash = ?, record_hash = ? WHERE id = ?",
            (chain_seq, prev_hash, record_hash, entry.id),
        )

    def log_relink(self, relink: Relink) -> None:
        cursor = self.db.execute(
            "INSERT INTO chain_relinks (target_id, at, position, inserted, old_head, old_count) "
            "VALUES (?,?,?,?,?,?)",
            (
                relink.target_id,
                ts(relink.at),
                relink.position,
                relink.inserted,
                relink.old_head,
                relink.old_count,
            ),
        )
        self.db.executemany(
            "INSERT INTO chain_superseded (relink_id, record_id, chain_seq, prev_hash, record_hash) "
            "VALUES (?,?,?,?,?)",
            [(cursor.lastrowid, *link) for link in relink.superseded],
        )

    def insert_ledger(
        self, target_id: str, source: str, entries: Sequence[ImportLedgerEntry], at: datetime
    ) -> None:
        self.db.executemany(
            "INSERT INTO import_ledger (target_id, source, ref, recorded_at, outcome, version_id, reason, "
            "imported_at) VALUES (?,?,?,?,?,?,?,?)",
            [
                (target_id, source, e.ref, ts(e.recorded_at), e.outcome, e.version_id, e.reason, ts(at))
                for e in entries
            ],
        )
