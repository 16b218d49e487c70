"""Storage, SQLite backend: CheckStore, a check's state read in one read transaction and its results written
in one transaction (ids, hash-chain links, snapshot, version, change, event, validators, status, outbox
rows)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from watchdog.errors import NotFoundError, StorageError
from watchdog.models import (
    Capture,
    ChangeRecord,
    CheckRecord,
    CheckState,
    Event,
    NewChange,
    NewSnapshot,
    NewVersion,
    OwedAlert,
    Recorded,
    Sequences,
    Snapshot,
    Target,
    Version,
)
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import chain_hash, change_payload, sha256, ts, version_payload
from watchdog.storage.sqlite.connection import (
    Database,
)
from watchdog.storage.sqlite.rows import (
    sequences,
    snapshot,
    target_state,
    version,
)

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
            if record.expected is not None and record.expected != sequences(row):
                raise StorageError(
                    f"the archive changed under the check of {record.target_id} (expected "
                    f"{record.expected}, found {sequences(row)}): another writer? Nothing was written"
                )
            return _CheckWrite(self._db, record, row).apply()


def _put_blobs(blobs: BlobStore, record: CheckRecord) -> None:
    if record.snapshot is not None:
        blobs.put(record.snapshot.capture.body)
    if record.version is not None:
        blobs.put_text(record.version.text)
    for alert in record.alerts:
        blobs.put_text(alert.payload)


@dataclass
class _Target:
    """The target row's columns the write changes, updated in ONE statement at the end."""

    current_version: str | None
    last_change_at: str | None
    consecutive_failures: int
    failing: int
    chain_head: str
    chain_seq: int
    version_seq: int
    change_seq: int
    event_seq: int


class _CheckWrite:
    """The body of record_check's transaction: rows in order, chain links, then the target row."""

    def __init__(self, db: Database, record: CheckRecord, row: sqlite3.Row) -> None:
        self.db = db
        self.record = record
        self.row = row
        self.target = _Target(
            current_version=row["current_version"],
            last_change_at=row["last_change_at"],
            consecutive_failures=int(row["consecutive_failures"]),
            failing=int(row["failing"]),
            chain_head=row["chain_head"],
            chain_seq=int(row["chain_seq"]),
            version_seq=int(row["version_seq"]),
            change_seq=int(row["change_seq"]),
            event_seq=int(row["event_seq"]),
        )

    def apply(self) -> Recorded:
        record = self.record
        snapshot_row = self._snapshot(record.snapshot) if record.snapshot else None
        new_version = self._version(record.version, snapshot_row) if record.version else None
        if record.seen is not None:
            self.db.execute(
                "UPDATE versions SET last_seen = max(last_seen, ?) WHERE id = ?", (ts(record.at), record.seen)
            )
        if record.current is not None:
            self.target.current_version = record.current
        new_change = self._change(record.change, new_version) if record.change else None
        new_event = self._event() if record.event else None
        queued = {alert.event_id: self._enqueue(alert) for alert in record.alerts}
        if new_change is not None and queued.get(new_change.id):
            self.db.execute("UPDATE changes SET alerted = 1 WHERE id = ?", (new_change.id,))
            new_change = replace(new_change, alerted=True)
        self._update_target()
        return Recorded(
            snapshot_id=snapshot_row.id if snapshot_row else None,
            version=new_version,
            change=new_change,
            event=new_event,
            queued=queued,
        )

    def _snapshot(self, new: NewSnapshot) -> Snapshot:
        capture: Capture = new.capture
        row = Snapshot(
            id=0,
            target_id=self.record.target_id,
            url=capture.url,
            final_url=capture.final_url,
            status=capture.status,
            headers=capture.headers,
            body_hash=sha256(capture.body),
            fetched_at=capture.fetched_at,
            fetcher=capture.fetcher,
            config_fingerprint=new.fingerprint,
            outcome=new.outcome,
            reason_code=new.reason_code,
            reason=new.reason,
            text_hash=new.text_hash,
            alternative=new.alternative,
        )
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
        return replace(row, id=int(cursor.lastrowid or 0))

    def _link(self, payload: dict[str, Any]) -> tuple[int, str, str]:
        """Append to the target's hash chain: (chain_seq, prev_hash, record_hash)."""
        self.target.chain_seq += 1
        prev = self.target.chain_head
        self.target.chain_head = chain_hash(prev, payload)
        return self.target.chain_seq, prev, self.target.chain_head

    def _version(self, new: NewVersion, new_snapshot: Snapshot | None) -> Version:
        target_id = self.record.target_id
        self.target.version_seq += 1
        seq = self.target.version_seq
        source_snapshot = new_snapshot
        if source_snapshot is None and new.snapshot_id is not None:
            found = self.db.one("SELECT * FROM snapshots WHERE id = ?", (new.snapshot_id,))
            if found is None:
                raise NotFoundError(f"no snapshot {new.snapshot_id}")
            source_snapshot = snapshot(found)
        text = new.text
        row = Version(
            id=f"{target_id}@v{seq}",
            target_id=target_id,
            seq=seq,
            text_hash=sha256(text.encode("utf-8")),
            snapshot_id=source_snapshot.id if source_snapshot else None,
            first_seen=new.seen_at,
            last_seen=new.seen_at,
            technical=new.technical,
            length=len(text),
            source=new.source,
            recorded_at=new.recorded_at,
            provenance=new.provenance,
        )
        chain_seq, prev, record_hash = self._link(version_payload(row, source_snapshot))
        row = replace(row, prev_hash=prev, record_hash=record_hash)
        self.db.execute(
            "INSERT INTO versions (id, target_id, seq, text_hash, snapshot_id, first_seen, last_seen, "
            "technical, length, chain_seq, prev_hash, record_hash, source, recorded_at, provenance) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                target_id,
                seq,
                row.text_hash,
                row.snapshot_id,
                ts(row.first_seen),
                ts(row.last_seen),
                int(row.technical),
                row.length,
                chain_seq,
                prev,
                record_hash,
                row.source,
                ts(row.recorded_at) if row.recorded_at else None,
                json.dumps(dict(row.provenance), ensure_ascii=False) if row.provenance is not None else None,
            ),
        )
        self.target.current_version = row.id
        return row

    def _change(self, new: NewChange, new_version: Version | None) -> ChangeRecord:
        target_id = self.record.target_id
        to_version = new.to_version or (new_version.id if new_version else None)
        if to_version is None:
            raise StorageError(f"a change of {target_id} needs a version to point to")
        self.target.change_seq += 1
        seq = self.target.change_seq
        row = ChangeRecord(
            id=f"{target_id}@c{seq}",
            target_id=target_id,
            seq=seq,
            from_version=new.from_version,
            to_version=to_version,
            detected_at=self.record.at,
            kind=new.kind,
            topics=tuple(new.topics),
            severity=new.severity,
            summary=new.summary,
            alerted=False,
            reverted_to=new.reverted_to,
            sections=tuple(new.sections),
        )
        chain_seq, prev, record_hash = self._link(change_payload(row))
        row = replace(row, prev_hash=prev, record_hash=record_hash)
        self.db.execute(
            "INSERT INTO changes (id, target_id, seq, from_version, to_version, detected_at, kind, "
            "reverted_to, topics, severity, summary, evidence, chain_seq, prev_hash, record_hash, sections) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                target_id,
                seq,
                row.from_version,
                row.to_version,
                ts(row.detected_at),
                row.kind,
                row.reverted_to,
                json.dumps(list(row.topics)),
                row.severity,
                row.summary,
                json.dumps([dict(item) for item in new.evidence], ensure_ascii=False),
                chain_seq,
                prev,
                record_hash,
                json.dumps(list(row.sections), ensure_ascii=False),
            ),
        )
        self.target.last_change_at = ts(row.detected_at)
        return row

    def _event(self) -> Event:
        new = self.record.event
        assert new is not None
        self.target.event_seq += 1
        target_id = self.record.target_id
        row = Event(
            f"{target_id}@{new.kind}{self.target.event_seq}", target_id, new.kind, self.record.at, new.reason
        )
        self.db.execute(
            "INSERT INTO events (id, target_id, kind, at, reason) VALUES (?,?,?,?,?)",
            (row.id, target_id, row.kind, ts(row.at), row.reason),
        )
        self.target.failing = int(new.kind == "failing")
        return row

    def _enqueue(self, alert: OwedAlert) -> int:
        """Owe the alert to each channel, once: a second queueing of the same event/channel is ignored."""
        if alert.once_per_text is not None and self._text_was_alerted(alert.once_per_text):
            return 0
        digest = sha256(alert.payload.encode("utf-8"))
        now = ts(self.record.at)
        added = 0
        for key in alert.channel_keys:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO outbox "
                "(event_id, channel_key, alert_hash, created_at, next_attempt_at) VALUES (?,?,?,?,?)",
                (alert.event_id, key, digest, now, now),
            )
            added += cursor.rowcount
        return added

    def _text_was_alerted(self, text_hash: str) -> bool:
        """Has a change *to* this text ever been alerted? (Each distinct text alerts at most once.)"""
        row = self.db.one(
            "SELECT 1 FROM changes c JOIN versions v ON v.id = c.to_version "
            "WHERE c.target_id = ? AND v.text_hash = ? AND c.alerted = 1 LIMIT 1",
            (self.record.target_id, text_hash),
        )
        return row is not None

    def _update_target(self) -> None:
        record, target, row = self.record, self.target, self.row
        checked = record.status is not None
        failures = (target.consecutive_failures + 1 if record.failed else 0) if checked else None
        validators = record.validators
        self.db.execute(
            "UPDATE targets SET current_version = ?, last_change_at = ?, failing = ?, chain_head = ?, "
            "chain_seq = ?, version_seq = ?, change_seq = ?, event_seq = ?, "
            "last_check_at = ?, last_status = ?, last_reason = ?, consecutive_failures = ?, "
            "etag = ?, last_modified = ?, last_node = ? WHERE id = ?",
            (
                target.current_version,
                target.last_change_at,
                target.failing,
                target.chain_head,
                target.chain_seq,
                target.version_seq,
                target.change_seq,
                target.event_seq,
                ts(record.at) if checked else row["last_check_at"],
                record.status if checked else row["last_status"],
                record.reason if checked else row["last_reason"],
                failures if failures is not None else row["consecutive_failures"],
                validators.etag if validators else row["etag"],
                validators.last_modified if validators else row["last_modified"],
                record.node if record.node is not None else row["last_node"],
                record.target_id,
            ),
        )
