"""Storage, SQLite backend: the archive as one SQLite file (WAL) plus blob files. The only module with SQL.

Layout of a storage dir:
    archive.sqlite3     targets' state, raw-snapshot metadata, versions, changes, events, the alert outbox
    blobs/ab/abcdef...  zlib-compressed bodies, texts and alert payloads (storage/blobs.py)
    .lock               held (flock) by the one process allowed to write (storage/lock.py)

`SqliteStorage.open(dir)` opens (creates, migrates) it and hands out the parts of storage/interfaces.py:
`archive` (SqliteArchive), `checks` (SqliteChecks), `outbox` (SqliteOutbox), `blobs` (BlobStore), all on
one connection shared by the daemon's threads (statements and transactions serialised by one lock, so a
thread's statement never lands inside another thread's transaction), and `reading()`, a reader on a
connection of its own inside one read transaction. Raw snapshots are kept apart from versions, so
extraction can be re-run (`reextract`) without refetching. A check is written in one transaction: a crash
or `kill -9` at any moment leaves the archive as it was before that check or after it, never in between.
Every sqlite3 error becomes a StorageError naming the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchdog.errors import LockedError, NotFoundError, StorageError
from watchdog.models import (
    Attempt,
    AttemptOutcome,
    BlobReference,
    Capture,
    ChainEntry,
    ChainHead,
    ChangeRecord,
    CheckRecord,
    CheckState,
    Delivery,
    Event,
    NewChange,
    NewSnapshot,
    NewVersion,
    OwedAlert,
    Recorded,
    Sequences,
    Snapshot,
    Target,
    TargetState,
    Version,
)
from watchdog.storage.blobs import FOLDER as BLOB_FOLDER
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import chain_hash, change_payload, sha256, ts, version_payload
from watchdog.storage.interfaces import DEFAULT_CHANGE_KINDS
from watchdog.storage.lock import LOCK_NAME, WriterLock
from watchdog.storage.migrations import Migration, migrations

DB_NAME = "archive.sqlite3"
MIGRATIONS: tuple[Migration, ...] = migrations("sqlite")
UPGRADE_WAIT = 10.0  # seconds a reader waits for another process to finish upgrading an archive


# --------------------------------------------------------------------------- the connection


class Database:
    """One SQLite connection; statements and transactions serialised by a re-entrant lock."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.connection = connection
        self._mutex = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        """One atomic unit of work (write: BEGIN IMMEDIATE; else a consistent read); nested uses join the
        outer transaction."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self.execute("ROLLBACK")
                raise
            self._depth = 0
            self.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            with self._mutex:
                return self.connection.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"archive database error ({self.path}): {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mutex:
            try:
                return self.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"archive database error ({self.path}): {exc}") from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        self.connection.close()


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection to the archive file; a reader of a dir without one gets an empty in-memory archive."""
    if read_only and not path.exists():
        connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        for migration in MIGRATIONS:
            for statement in migration.statements:
                connection.execute(statement)
        return connection
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what we say it is
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    if not read_only:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")  # an archive: a committed check survives power loss
    return connection


def applied_migrations(db: Database) -> list[str]:
    tables = {row[0] for row in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_migrations" not in tables:
        return []
    return [row[0] for row in db.query("SELECT name FROM schema_migrations ORDER BY name")]


def pending_migrations(db: Database) -> list[str]:
    done = set(applied_migrations(db))
    return [m.name for m in MIGRATIONS if m.name not in done]


def migrate(db: Database) -> list[str]:
    """Apply the pending migrations, each in its own transaction; their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = set(applied_migrations(db))
    applied = []
    for migration in MIGRATIONS:
        if migration.name in done:
            continue
        with db.transaction():
            for statement in migration.statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (migration.name, ts(datetime.now(UTC))))
        applied.append(migration.name)
    return applied


# --------------------------------------------------------------------------- rows -> models


def parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def target_state(row: sqlite3.Row) -> TargetState:
    return TargetState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        current_version=row["current_version"],
        last_check_at=parse_ts(row["last_check_at"]),
        last_status=row["last_status"],
        last_reason=row["last_reason"],
        last_change_at=parse_ts(row["last_change_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        failing=bool(row["failing"]),
        next_due_at=parse_ts(row["next_due_at"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_node=row["last_node"],
    )


def sequences(row: sqlite3.Row) -> Sequences:
    return Sequences(
        version=int(row["version_seq"]),
        change=int(row["change_seq"]),
        event=int(row["event_seq"]),
        chain=int(row["chain_seq"]),
    )


def snapshot(row: sqlite3.Row) -> Snapshot:
    headers = tuple((str(k), str(v)) for k, v in json.loads(row["headers"]))
    return Snapshot(
        id=int(row["id"]),
        target_id=row["target_id"],
        url=row["url"],
        final_url=row["final_url"],
        status=int(row["status"]),
        headers=headers,
        body_hash=row["body_hash"],
        fetched_at=_dt(row["fetched_at"]),
        fetcher=row["fetcher"],
        config_fingerprint=row["config_fingerprint"],
        outcome=row["outcome"],
        reason_code=row["reason_code"],
        reason=row["reason"],
        text_hash=row["text_hash"],
        alternative=row["alternative"],
    )


def version(row: sqlite3.Row) -> Version:
    return Version(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        text_hash=row["text_hash"],
        snapshot_id=row["snapshot_id"],
        first_seen=_dt(row["first_seen"]),
        last_seen=_dt(row["last_seen"]),
        technical=bool(row["technical"]),
        length=int(row["length"]),
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        source=row["source"],
        recorded_at=parse_ts(row["recorded_at"]),
        provenance=_json_or_none(row["provenance"]),
    )


def change(row: sqlite3.Row) -> ChangeRecord:
    return ChangeRecord(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        from_version=row["from_version"],
        to_version=row["to_version"],
        detected_at=_dt(row["detected_at"]),
        kind=row["kind"],
        topics=tuple(json.loads(row["topics"])),
        severity=row["severity"],
        summary=row["summary"],
        alerted=bool(row["alerted"]),
        reverted_to=row["reverted_to"],
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        sections=tuple(json.loads(row["sections"])),
    )


def event(row: sqlite3.Row) -> Event:
    return Event(row["id"], row["target_id"], row["kind"], _dt(row["at"]), row["reason"])


# A tampered row may no longer read back (a date that is no date, JSON that is not JSON): `verify` must
# name it, never crash on it.
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, OverflowError)


def _int_or(value: object, default: int) -> int:
    try:
        return int(str(value))
    except _UNREADABLE:
        return default


def _entry(kind: str, row: sqlite3.Row, **fields: Any) -> ChainEntry:
    return ChainEntry(
        kind=kind,
        id=str(row["id"]),
        target_id=str(row["target_id"]),
        chain_seq=_int_or(row["chain_seq"], -1),
        prev_hash=str(row["prev_hash"]),
        record_hash=str(row["record_hash"]),
        **fields,
    )


def _version_entry(row: sqlite3.Row, snapshots: Mapping[int, sqlite3.Row]) -> ChainEntry:
    try:
        read = version(row)
    except _UNREADABLE as exc:
        return _entry("version", row, problem=f"its row cannot be read ({exc}): altered")
    raw = snapshots.get(read.snapshot_id) if read.snapshot_id is not None else None
    try:
        return _entry("version", row, version=read, snapshot=snapshot(raw) if raw is not None else None)
    except _UNREADABLE as exc:
        problem = f"its raw snapshot {read.snapshot_id} cannot be read ({exc}): altered"
        return _entry("version", row, version=read, problem=problem)


def _change_entry(row: sqlite3.Row) -> ChainEntry:
    try:
        evidence = json.loads(row["evidence"])
        return _entry("change", row, change=change(row), evidence=tuple(evidence))
    except _UNREADABLE as exc:
        return _entry("change", row, problem=f"its row cannot be read ({exc}): altered")


# --------------------------------------------------------------------------- the archive, read-only


class SqliteArchive:
    """ArchiveReader on a Database (the writer's connection, or a reader's own)."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def target_states(self) -> list[TargetState]:
        return [target_state(row) for row in self._db.query("SELECT * FROM targets ORDER BY id")]

    def target_state(self, target_id: str) -> TargetState | None:
        row = self._db.one("SELECT * FROM targets WHERE id = ?", (target_id,))
        return None if row is None else target_state(row)

    def versions(self, target_id: str) -> list[Version]:
        sql = "SELECT * FROM versions WHERE target_id = ? ORDER BY seq DESC"
        return [version(r) for r in self._db.query(sql, (target_id,))]

    def current_version(self, target_id: str) -> Version | None:
        row = self._db.one(
            "SELECT v.* FROM versions v JOIN targets t ON v.id = t.current_version WHERE t.id = ?",
            (target_id,),
        )
        return None if row is None else version(row)

    def version(self, version_id: str) -> Version:
        row = self._db.one("SELECT * FROM versions WHERE id = ?", (version_id,))
        if row is None:
            raise NotFoundError(f"no version {version_id!r} in the archive (see `history TARGET_ID`)")
        return version(row)

    def versions_with_text(self, target_id: str, text_hash: str) -> list[Version]:
        sql = "SELECT * FROM versions WHERE target_id = ? AND text_hash = ? ORDER BY seq DESC"
        return [version(r) for r in self._db.query(sql, (target_id, text_hash))]

    def version_text(self, version_id: str) -> str:
        return self.text(self.version(version_id).text_hash)

    def text(self, digest: str) -> str:
        return self._blobs.get_text(digest)

    def changes(
        self,
        *,
        target: str | None = None,
        topic: str | None = None,
        since: datetime | None = None,
        kinds: Sequence[str] = DEFAULT_CHANGE_KINDS,
    ) -> list[ChangeRecord]:
        sql = "SELECT * FROM changes WHERE kind IN (%s)" % ",".join("?" * len(kinds))  # noqa: S608, UP031
        params: list[Any] = list(kinds)
        if target:
            sql, params = sql + " AND target_id = ?", [*params, target]
        if since:
            sql, params = sql + " AND detected_at >= ?", [*params, ts(since)]
        records = [change(r) for r in self._db.query(sql + " ORDER BY detected_at DESC, id DESC", params)]
        return [c for c in records if topic is None or topic in c.topics]

    def change(self, change_id: str) -> ChangeRecord:
        row = self._db.one("SELECT * FROM changes WHERE id = ?", (change_id,))
        if row is None:
            raise NotFoundError(f"no change {change_id!r} in the archive (see `changes`)")
        return change(row)

    def change_evidence(self, change_id: str) -> list[dict[str, Any]]:
        row = self._db.one("SELECT evidence FROM changes WHERE id = ?", (change_id,))
        return [] if row is None else list(json.loads(row[0]))

    def events(self, *, target: str | None = None) -> list[Event]:
        rows = self._db.query(
            "SELECT * FROM events WHERE (? IS NULL OR target_id = ?) ORDER BY at DESC, id DESC",
            (target, target),
        )
        return [event(r) for r in rows]

    def snapshot(self, snapshot_id: int) -> Snapshot:
        row = self._db.one("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,))
        if row is None:
            raise NotFoundError(f"no snapshot {snapshot_id}")
        return snapshot(row)

    def snapshots(self, target_id: str, *, outcome: str | None = None) -> list[Snapshot]:
        rows = self._db.query(
            "SELECT * FROM snapshots WHERE target_id = ? AND (? IS NULL OR outcome = ?) ORDER BY id",
            (target_id, outcome, outcome),
        )
        return [snapshot(row) for row in rows]

    def latest_snapshots(self, target_id: str, count: int) -> list[Snapshot]:
        sql = "SELECT * FROM snapshots WHERE target_id = ? ORDER BY id DESC LIMIT ?"
        return [snapshot(row) for row in self._db.query(sql, (target_id, count))]

    def snapshot_body(self, snapshot: Snapshot) -> bytes:
        return self._blobs.get(snapshot.body_hash)

    def migrations(self) -> list[str]:
        return applied_migrations(self._db)

    def chain_positions(self) -> dict[str, int]:
        rows = self._db.query(
            "SELECT id, chain_seq FROM versions UNION ALL SELECT id, chain_seq FROM changes"
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def chain(self) -> list[ChainEntry]:
        with self._db.transaction(write=False):
            snapshots = {row["id"]: row for row in self._db.query("SELECT * FROM snapshots")}
            versions = self._db.query("SELECT * FROM versions ORDER BY target_id, chain_seq, id")
            changes = self._db.query("SELECT * FROM changes ORDER BY target_id, chain_seq, id")
        entries = [_version_entry(row, snapshots) for row in versions]
        entries += [_change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: (e.target_id, e.chain_seq, e.id))

    def chain_heads(self) -> list[ChainHead]:
        rows = self._db.query("SELECT id, chain_head, chain_seq FROM targets ORDER BY id")
        return [ChainHead(row[0], str(row[1]), _int_or(row[2], -1)) for row in rows]

    def blob_references(self) -> list[BlobReference]:
        with self._db.transaction(write=False):
            texts = self._db.query("SELECT id, text_hash FROM versions ORDER BY target_id, chain_seq")
            bodies = self._db.query("SELECT id, target_id, body_hash FROM snapshots ORDER BY id")
            alerts = self._db.query("SELECT event_id, channel_key, alert_hash FROM outbox ORDER BY id")
        return [
            *(BlobReference(str(r[1]), f"text of version {r[0]}", str(r[0])) for r in texts),
            *(BlobReference(str(r[2]), f"raw body of snapshot {r[0]} of {r[1]}") for r in bodies),
            *(BlobReference(str(r[2]), f"alert {r[0]} owed to channel {str(r[1])[:12]}") for r in alerts),
        ]


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


# --------------------------------------------------------------------------- the outbox


class SqliteOutbox:
    """Outbox: rows owed to channels (queued by record_check), their delivery and attempt log."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def pending_deliveries(self, now: datetime) -> list[Delivery]:
        rows = self._db.query(
            "SELECT * FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id", (ts(now),)
        )
        return [self._delivery(row) for row in rows]

    def all_pending(self) -> list[Delivery]:
        rows = self._db.query("SELECT * FROM outbox WHERE delivered_at IS NULL ORDER BY id")
        return [self._delivery(row) for row in rows]

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        # its own short transaction: the window in which a crash can cause a duplicate is the time between
        # the channel accepting the message and this commit
        with self._db.transaction():
            cursor = self._db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE id = ? AND delivered_at IS NULL",
                (ts(at), delivery_id),
            )
            if cursor.rowcount:
                self._log(delivery_id, at, "delivered", None)

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime,
        *,
        at: datetime,
        outcome: AttemptOutcome = "failed",
    ) -> None:
        with self._db.transaction():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (error[:2000], ts(retry_at), delivery_id),
            )
            self._log(delivery_id, at, outcome, error[:2000])

    def _log(self, delivery_id: int, at: datetime, outcome: AttemptOutcome, error: str | None) -> None:
        self._db.execute(
            "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES (?,?,?,?)",
            (delivery_id, ts(at), outcome, error),
        )

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._db.query("SELECT * FROM outbox_attempts WHERE outbox_id = ? ORDER BY id", (delivery_id,))
        return [Attempt(int(r["outbox_id"]), _dt(r["at"]), r["outcome"], r["error"]) for r in rows]

    def deliveries_for(self, event_id: str) -> list[tuple[str, datetime | None, int]]:
        rows = self._db.query(
            "SELECT channel_key, delivered_at, attempts FROM outbox WHERE event_id = ?", (event_id,)
        )
        return [(r[0], parse_ts(r[1]), int(r[2])) for r in rows]

    def _delivery(self, row: sqlite3.Row) -> Delivery:
        payload = self._blobs.get_text(row["alert_hash"])
        return Delivery(
            int(row["id"]), row["channel_key"], payload, int(row["attempts"]), _dt(row["created_at"])
        )


# --------------------------------------------------------------------------- the whole


class SqliteStorage:
    """Storage on a storage dir. Open with `SqliteStorage.open(dir)` (or watchdog.storage.open_store)."""

    def __init__(self, directory: Path, db: Database, lock: WriterLock | None) -> None:
        self._directory = directory
        self.db = db
        self._blobs = BlobStore(directory / BLOB_FOLDER)
        self._lock = lock
        self._archive = SqliteArchive(db, self._blobs)
        self._checks = SqliteChecks(db, self._blobs)
        self._outbox = SqliteOutbox(db, self._blobs)

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def archive(self) -> SqliteArchive:
        return self._archive

    @property
    def checks(self) -> SqliteChecks:
        return self._checks

    @property
    def outbox(self) -> SqliteOutbox:
        return self._outbox

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    @classmethod
    def open(cls, directory: Path, *, writer: bool = True, lock_held_by: int | None = None) -> SqliteStorage:
        """Open (and create or migrate) the archive. A writer takes the dir's lock or raises LockedError.

        `lock_held_by`: a child of the lock holder (the daemon's delivery chore) writes under its parent's
        lock; it is checked to be held by that process, and no lock is taken.
        """
        lock = None
        try:
            if writer:
                directory.mkdir(parents=True, exist_ok=True)
            if writer and lock_held_by is not None:
                WriterLock(directory / LOCK_NAME).check_held_by(lock_held_by)
            elif writer:
                lock = WriterLock(directory / LOCK_NAME)
                lock.acquire()
            path = directory / DB_NAME
            db = Database(path, _connect(path, read_only=not writer))
        except OSError as exc:
            if lock:
                lock.release()
            raise StorageError(f"cannot open the archive in {directory}: {exc.strerror or exc}") from exc
        storage = cls(directory, db, lock)
        try:
            if writer:
                migrate(db)
            elif pending_migrations(db):
                storage.close()
                return cls._open_upgraded(directory)
        except BaseException:
            storage.close()
            raise
        return storage

    @classmethod
    def _open_upgraded(cls, directory: Path) -> SqliteStorage:
        """A reader met an archive from an older release: migrate it now when no writer holds it; while one
        does (another reader upgrading it, a writer starting), wait a little for it to be done."""
        deadline = time.monotonic() + UPGRADE_WAIT
        while True:
            try:
                cls.open(directory, writer=True).close()
                break
            except LockedError as exc:
                if not _still_pending(directory):
                    break
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"the archive in {directory} needs a schema upgrade that the process writing to it "
                        "has not made (an older release still running?); stop it, or try again"
                    ) from exc
                time.sleep(0.1)
        return cls.open(directory, writer=False)

    @contextmanager
    def reading(self) -> Iterator[SqliteArchive]:
        """A separate read-only connection inside one read transaction: committed data of one instant."""
        path = self._directory / DB_NAME
        try:
            db = Database(path, _connect(path, read_only=True))
        except OSError as exc:
            raise StorageError(
                f"cannot open the archive in {self._directory}: {exc.strerror or exc}"
            ) from exc
        try:
            with db.transaction(write=False):
                yield SqliteArchive(db, self._blobs)
        finally:
            db.close()

    def close(self) -> None:
        self.db.close()
        if self._lock:
            self._lock.release()

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    try:
        return connect(path, read_only=read_only)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the archive {path}: {exc}") from exc


def _still_pending(directory: Path) -> bool:
    probe = Database(directory / DB_NAME, _connect(directory / DB_NAME, read_only=True))
    try:
        return bool(pending_migrations(probe))
    finally:
        probe.close()
