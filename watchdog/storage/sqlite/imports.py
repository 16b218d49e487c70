"""Storage, SQLite backend: Imports, what one import adds to one target, in one transaction
(storage/import_write.py decides the rows, ids and hash-chain links; storage/statements.py runs them)."""

from __future__ import annotations

from watchdog.archived import ImportBatch, ImportResult
from watchdog.storage.blobs import BlobStore
from watchdog.storage.import_write import write_import
from watchdog.storage.records import target_row
from watchdog.storage.sqlite.connection import DIALECT, Database
from watchdog.storage.sqlite.search import statements
from watchdog.storage.statements import UPSERT_TARGET


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
        with self._db.transaction() as db:
            row = db.one(DIALECT.sql(UPSERT_TARGET), (batch.target_id, batch.name, batch.url))
            assert row is not None  # RETURNING always yields the row written
            return write_import(batch, target_row(row), statements(db))
