"""Storage, PostgreSQL backend: Imports, what one import adds to one target, in one transaction that first
locks the target's row, as a check's does (storage/import_write.py decides the rows, ids and hash-chain
links; storage/statements.py runs them)."""

from __future__ import annotations

from watchdog.archived import ImportBatch, ImportResult
from watchdog.storage.import_write import write_import
from watchdog.storage.postgres.blobs import insert_blob
from watchdog.storage.postgres.connection import DIALECT, Database
from watchdog.storage.postgres.search import statements
from watchdog.storage.records import target_row
from watchdog.storage.statements import UPSERT_TARGET


class PostgresImports:
    """Imports into a PostgreSQL archive: ONE transaction per import (storage/import_write.py)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_import(self, batch: ImportBatch) -> ImportResult:
        with self._db.transaction() as session:
            for item in batch.versions:
                insert_blob(session, item.text.encode("utf-8"))
                if item.snapshot is not None:
                    insert_blob(session, item.snapshot.capture.body)
            for kept in batch.snapshots:
                insert_blob(session, kept.capture.body)
            row = session.one(DIALECT.sql(UPSERT_TARGET), (batch.target_id, batch.name, batch.url))
            assert row is not None  # RETURNING always yields the row written (and locks it)
            return write_import(batch, target_row(row), statements(session))
