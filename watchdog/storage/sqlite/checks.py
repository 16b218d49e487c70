"""Storage, SQLite backend: CheckStore, a check's state read in one read transaction and its results written
in one transaction (storage/write.py decides the rows, ids and hash-chain links; `Writer` runs them)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watchdog.models import (
    ChangeRecord,
    CheckRecord,
    CheckState,
    Event,
    Recorded,
    Sequences,
    Snapshot,
    Target,
    Version,
)
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import ts
from watchdog.storage.records import sequences, snapshot, target_row, target_state, version
from watchdog.storage.sqlite.connection import Database
from watchdog.storage.sqlite.search import index_version
from watchdog.storage.write import TargetRow, write_check

# --------------------------------------------------------------------------- one check: read once, write once


class SqliteChecks:
    """CheckStore: a check's state read in one read transaction, its results written in one transaction."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def sync_targets(self, targets: Sequence[Target]) -> None:
        with self._db.transaction():
            for target in targets:
                self._upsert_target(target.id, target.name, target.url)

    def _upsert_target(self, target_id: str, name: str, url: str) -> sqlite3.Row:
        """Register the target (name and URL follow the config); its row, as it is now."""
        row = self._db.one(
            "INSERT INTO targets (id, name, url) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url RETURNING *",
            (target_id, name, url),
        )
        assert row is not None  # RETURNING always yields the row written
        return row

    def set_next_due(self, due: Mapping[str, datetime]) -> None:
        if not due:
            return
        with self._db.transaction():
            for target_id, at in due.items():
                self._db.execute("UPDATE targets SET next_due_at = ? WHERE id = ?", (ts(at), target_id))

    # ----------------------------------------------------------------- the read

    def read_check(self, target_id: str, *, recent_since: datetime, snapshots: int) -> CheckState:
        db = self._db
        with db.transaction(write=False):
            row = db.one("SELECT * FROM targets WHERE id = ?", (target_id,))
            current = current_snapshot = None
            if row is not None and row["current_version"] is not None:
                current_row = db.one("SELECT * FROM versions WHERE id = ?", (row["current_version"],))
                current = version(current_row) if current_row else None
            if current is not None and current.snapshot_id is not None:
                snap = db.one("SELECT * FROM snapshots WHERE id = ?", (current.snapshot_id,))
                current_snapshot = snapshot(snap) if snap else None
            recent = db.query(
                "SELECT * FROM versions WHERE target_id = ? AND last_seen >= ? ORDER BY seq DESC",
                (target_id, ts(recent_since)),
            )
            latest = db.query(
                "SELECT * FROM snapshots WHERE target_id = ? ORDER BY id DESC LIMIT ?", (target_id, snapshots)
            )  # the same as ArchiveReader.latest_snapshots, inside this read's transaction
        return CheckState(
            target_id=target_id,
            target=target_state(row) if row else None,
            current=current,
            current_snapshot=current_snapshot,
            recent=tuple(version(r) for r in recent),
            latest_snapshots=tuple(snapshot(r) for r in latest),
            sequences=sequences(row) if row else Sequences(),
        )

    # ----------------------------------------------------------------- the write

    def record_check(self, record: CheckRecord) -> Recorded:
        _put_blobs(self._blobs, record)  # first: content-addressed, fsynced; the transaction only refers
        with self._db.transaction():
            row = self._upsert_target(record.target_id, record.name, record.url)
            return write_check(record, target_row(row), Writer(self._db))


def _put_blobs(blobs: BlobStore, record: CheckRecord) -> None:
    if record.snapshot is not None:
        blobs.put(record.snapshot.capture.body)
    if record.version is not None:
        blobs.put_text(record.version.text)
    for alert in record.alerts:
        blobs.put_text(alert.payload)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else ts(moment)


class Writer:
    """RowWriter (storage/write.py): the statements of one check's write, inside its transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_snapshot(self, row: Snapshot) -> int:
        cursor = self.db.execute(
            "INSERT INTO snapshots (target_id, url, final_url, status, headers, body_hash, fetched_at, "
            "fetcher, config_fingerprint, outcome, reason_code, reason, text_hash, alternative) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.target_id,
                row.url,
                row.final_url,
                row.status,
                json.dumps(row.headers),
                row.body_hash,
                ts(row.fetched_at),
                row.fetcher,
                row.config_fingerprint,
                row.outcome,
                row.reason_code,
                row.reason,
                row.text_hash,
                row.alternative,
            ),
        )
        return int(cursor.lastrowid or 0)

    def snapshot(self, snapshot_id: int) -> Snapshot | None:
        found = self.db.one("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,))
        return None if found is None else snapshot(found)

    def insert_version(self, row: Version, chain_seq: int) -> None:
        self.db.execute(
            "INSERT INTO versions (id, target_id, seq, text_hash, snapshot_id, first_seen, last_seen, "
            "technical, length, chain_seq, prev_hash, record_hash, source, recorded_at, provenance) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.target_id,
                row.seq,
                row.text_hash,
                row.snapshot_id,
                ts(row.first_seen),
                ts(row.last_seen),
                int(row.technical),
                row.length,
                chain_seq,
                row.prev_hash,
                row.record_hash,
                row.source,
                _time(row.recorded_at),
                json.dumps(dict(row.provenance), ensure_ascii=False) if row.provenance is not None else None,
            ),
        )

    def index_version(self, row: Version, text: str) -> None:
        index_version(self.db, row, text)

    def insert_change(self, row: ChangeRecord, evidence: Sequence[Mapping[str, Any]], chain_seq: int) -> None:
        self.db.execute(
            "INSERT INTO changes (id, target_id, seq, from_version, to_version, detected_at, kind, "
            "reverted_to, topics, severity, summary, evidence, chain_seq, prev_hash, record_hash, sections) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.target_id,
                row.seq,
                row.from_version,
                row.to_version,
                ts(row.detected_at),
                row.kind,
                row.reverted_to,
                json.dumps(list(row.topics)),
                row.severity,
                row.summary,
                json.dumps([dict(item) for item in evidence], ensure_ascii=False),
                chain_seq,
                row.prev_hash,
                row.record_hash,
                json.dumps(list(row.sections), ensure_ascii=False),
            ),
        )

    def insert_event(self, row: Event) -> None:
        self.db.execute(
            "INSERT INTO events (id, target_id, kind, at, reason) VALUES (?,?,?,?,?)",
            (row.id, row.target_id, row.kind, ts(row.at), row.reason),
        )

    def touch(self, version_id: str, at: datetime) -> None:
        self.db.execute(
            "UPDATE versions SET last_seen = max(last_seen, ?) WHERE id = ?", (ts(at), version_id)
        )

    def enqueue(self, event_id: str, channel_key: str, alert_hash: str, at: datetime) -> bool:
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox "
            "(event_id, channel_key, alert_hash, created_at, next_attempt_at) VALUES (?,?,?,?,?)",
            (event_id, channel_key, alert_hash, ts(at), ts(at)),
        )
        return cursor.rowcount > 0

    def alerted_text(self, target_id: str, text_hash: str) -> bool:
        row = self.db.one(
            "SELECT 1 FROM changes c JOIN versions v ON v.id = c.to_version "
            "WHERE c.target_id = ? AND v.text_hash = ? AND c.alerted = 1 LIMIT 1",
            (target_id, text_hash),
        )
        return row is not None

    def mark_alerted(self, change_id: str) -> None:
        self.db.execute("UPDATE changes SET alerted = 1 WHERE id = ?", (change_id,))

    def update_target(self, target_id: str, row: TargetRow) -> None:
        self.db.execute(
            "UPDATE targets SET current_version = ?, last_change_at = ?, failing = ?, chain_head = ?, "
            "chain_seq = ?, version_seq = ?, change_seq = ?, event_seq = ?, "
            "last_check_at = ?, last_status = ?, last_reason = ?, consecutive_failures = ?, "
            "etag = ?, last_modified = ?, last_node = ? WHERE id = ?",
            (
                row.current_version,
                _time(row.last_change_at),
                int(row.failing),
                row.chain_head,
                row.chain_seq,
                row.version_seq,
                row.change_seq,
                row.event_seq,
                _time(row.last_check_at),
                row.last_status,
                row.last_reason,
                row.consecutive_failures,
                row.etag,
                row.last_modified,
                row.last_node,
                target_id,
            ),
        )
