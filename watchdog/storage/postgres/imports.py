"""Storage, PostgreSQL backend: Imports, what one import adds to one target, in one transaction that first
locks the target's row, as a check's does (storage/import_write.py decides the rows, ids and hash-chain
links; `ImportStatements` runs them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from watchdog.models import ChainEntry, ImportBatch, ImportLedgerEntry, ImportResult, Relink
from watchdog.storage.import_write import write_import
from watchdog.storage.postgres.blobs import insert_blob
from watchdog.storage.postgres.checks import Writer
from watchdog.storage.postgres.connection import Database
from watchdog.storage.records import change_entry, target_row, version_entry


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
            row = session.one(
                "INSERT INTO targets (id, name, url) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url RETURNING *",
                (batch.target_id, batch.name, batch.url),
            )
            assert row is not None  # RETURNING always yields the row written (and locks it)
            return write_import(batch, target_row(row), ImportStatements(session))


class ImportStatements(Writer):
    """ImportWriter (storage/import_write.py): a check's statements, and those only an import runs."""

    def live_tail(self, target_id: str) -> list[ChainEntry]:
        session = self._session
        first = session.one(
            "SELECT min(chain_seq) AS position FROM versions WHERE target_id = %s AND source = 'live'",
            (target_id,),
        )
        if first is None or first["position"] is None:
            return []
        position = int(first["position"])
        versions = session.query(
            "SELECT * FROM versions WHERE target_id = %s AND chain_seq >= %s", (target_id, position)
        )
        ids = [row["snapshot_id"] for row in versions if row["snapshot_id"] is not None]
        raws = {
            int(row["id"]): row for row in session.query("SELECT * FROM snapshots WHERE id = ANY(%s)", (ids,))
        }
        changes = session.query(
            "SELECT * FROM changes WHERE target_id = %s AND chain_seq >= %s", (target_id, position)
        )
        entries = [version_entry(row, raws) for row in versions] + [change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: e.chain_seq)

    def relink(self, entry: ChainEntry, chain_seq: int, prev_hash: str, record_hash: str) -> None:
        self._session.execute(
            "UPDATE versions SET chain_seq = %s, prev_hash = %s, record_hash = %s WHERE id = %s"
            if entry.kind == "version"
            else "UPDATE changes SET chain_seq = %s, prev_hash = %s, record_hash = %s WHERE id = %s",
            (chain_seq, prev_hash, record_hash, entry.id),
        )

    def log_relink(self, relink: Relink) -> None:
        found = self._session.one(
            "INSERT INTO chain_relinks (target_id, at, position, inserted, old_head, old_count) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (
                relink.target_id,
                relink.at,
                relink.position,
                relink.inserted,
                relink.old_head,
                relink.old_count,
            ),
        )
        assert found is not None
        self._session.many(
            "INSERT INTO chain_superseded (relink_id, record_id, chain_seq, prev_hash, record_hash) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(found["id"], *link) for link in relink.superseded],
        )

    def insert_ledger(
        self, target_id: str, source: str, entries: Sequence[ImportLedgerEntry], at: datetime
    ) -> None:
        self._session.many(
            "INSERT INTO import_ledger (target_id, source, ref, recorded_at, outcome, version_id, reason, "
            "imported_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (target_id, source, e.ref, e.recorded_at, e.outcome, e.version_id, e.reason, at)
                for e in entries
            ],
        )
