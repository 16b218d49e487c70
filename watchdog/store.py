"""Stage 4, store: SQLite (WAL) plus content-addressed, compressed blobs. The only module that writes state.

Layout of a storage dir:
    archive.sqlite3     targets' state, raw-snapshot metadata, versions, changes, events, the alert outbox
    blobs/ab/abcdef...  zlib-compressed bodies and texts, named by the SHA-256 of their uncompressed bytes
    .lock               held (flock) by the one process allowed to write

Raw snapshots (the page as fetched) are kept apart from versions (the normalised text), so extraction can be
re-run (`reextract`) without refetching. Every check is written in one transaction: a crash or `kill -9` at
any moment leaves the archive as it was before that check or after it, never in between. Blobs are written
(atomically, fsynced) *before* the transaction that references them, so a crash can at worst leave an
unreferenced blob, never a dangling reference.

Every version and change record carries `prev_hash`, the record hash of the previous record of its target,
so the archive is a hash chain per target (`verify` recomputes it). Storage errors are fatal: they are raised
as StorageError and never swallowed.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchdog.errors import LockedError, NotFoundError, StorageError
from watchdog.models import Alert, Capture, ChangeRecord, Delivery, Target, Version
from watchdog.storage.files import write_atomically

DB_NAME = "archive.sqlite3"

# Named migrations, applied in order, each once, each in its own transaction. Never edit a released one:
# add a new one.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE targets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            url TEXT NOT NULL,
            current_version TEXT,
            last_check_at TEXT,
            last_status TEXT,
            last_reason TEXT,
            last_change_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            failing INTEGER NOT NULL DEFAULT 0,
            next_due_at TEXT,
            etag TEXT,
            last_modified TEXT,
            chain_head TEXT NOT NULL DEFAULT '',
            chain_seq INTEGER NOT NULL DEFAULT 0,
            version_seq INTEGER NOT NULL DEFAULT 0,
            change_seq INTEGER NOT NULL DEFAULT 0,
            event_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            target_id TEXT NOT NULL REFERENCES targets(id),
            url TEXT NOT NULL,
            final_url TEXT NOT NULL,
            status INTEGER NOT NULL,
            headers TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            fetcher TEXT NOT NULL,
            config_fingerprint TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
            reason_code TEXT,
            reason TEXT
        );
        CREATE INDEX snapshots_target ON snapshots(target_id, id);
        CREATE TABLE versions (
            id TEXT PRIMARY KEY,
            target_id TEXT NOT NULL REFERENCES targets(id),
            seq INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            snapshot_id INTEGER REFERENCES snapshots(id),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            technical INTEGER NOT NULL,
            length INTEGER NOT NULL,
            chain_seq INTEGER NOT NULL,
            prev_hash TEXT NOT NULL,
            record_hash TEXT NOT NULL,
            UNIQUE (target_id, seq)
        );
        CREATE INDEX versions_text ON versions(target_id, text_hash);
        CREATE TABLE changes (
            id TEXT PRIMARY KEY,
            target_id TEXT NOT NULL REFERENCES targets(id),
            seq INTEGER NOT NULL,
            from_version TEXT NOT NULL REFERENCES versions(id),
            to_version TEXT NOT NULL REFERENCES versions(id),
            detected_at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('change', 'revert')),
            reverted_to TEXT,
            topics TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            evidence TEXT NOT NULL,
            alerted INTEGER NOT NULL DEFAULT 0,
            chain_seq INTEGER NOT NULL,
            prev_hash TEXT NOT NULL,
            record_hash TEXT NOT NULL,
            UNIQUE (target_id, seq)
        );
        CREATE INDEX changes_time ON changes(detected_at);
        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            target_id TEXT NOT NULL REFERENCES targets(id),
            kind TEXT NOT NULL CHECK (kind IN ('failing', 'recovered')),
            at TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            channel_key TEXT NOT NULL,
            alert_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            delivered_at TEXT,
            last_error TEXT,
            UNIQUE (event_id, channel_key)
        );
        CREATE INDEX outbox_pending ON outbox(delivered_at, next_attempt_at);
        """,
    ),
    (
        # the text a rejected capture would have given: lets a size rejection that keeps coming back with
        # the very same text be recognised as the page's new normal (see pipeline.PERSISTENT_REJECTIONS)
        "0002_snapshot_text_hash",
        "ALTER TABLE snapshots ADD COLUMN text_hash TEXT",
    ),
)


@dataclass(frozen=True, slots=True)
class TargetState:
    """What the archive knows about a target between checks."""

    id: str
    name: str
    url: str
    current_version: str | None
    last_check_at: datetime | None
    last_status: str | None
    last_reason: str | None
    last_change_at: datetime | None
    consecutive_failures: int
    failing: bool
    next_due_at: datetime | None
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    target_id: str
    url: str
    final_url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body_hash: str
    fetched_at: datetime
    fetcher: str
    config_fingerprint: str
    outcome: str
    reason_code: str | None
    reason: str | None
    text_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    target_id: str
    kind: str
    at: datetime
    reason: str


def ts(moment: datetime) -> str:
    """Stored timestamp: ISO-8601 UTC with microseconds, so text order is time order."""
    if moment.tzinfo is None:
        raise StorageError("naive datetime given to the store (every time must be timezone-aware UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """The record hash: SHA-256 of the canonical JSON of the record's immutable fields and its predecessor."""
    canonical = json.dumps(
        {"prev": prev_hash, **payload}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return sha256(canonical.encode("utf-8"))


class BlobStore:
    """Content-addressed, zlib-compressed files; written atomically (storage.files: a temporary file of
    its own per writer, fsync, rename), so threads and processes may store the same blob at once.

    File names are built as plain strings, not pathlib paths: CPython 3.11's pathlib interns every path
    part, so a long-running daemon would keep every blob name it ever touched in memory for good.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)

    def path(self, digest: str) -> Path:
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        return os.path.join(self._root, digest[:2], digest)  # noqa: PTH118 (see the class docstring)

    def put(self, data: bytes) -> str:
        digest = sha256(data)
        target = self._file(digest)
        if os.path.exists(target):  # noqa: PTH110
            return digest
        try:
            # unique temporary name per writer; a writer of the same blob finishing first is no error
            write_atomically(target, zlib.compress(data, 6), durable=True)
        except OSError as exc:  # a full disk or a read-only dir: fatal, nothing referenced it yet
            raise StorageError(
                f"cannot write blob {digest[:12]} under {self.root}: {exc.strerror or exc}"
            ) from exc
        return digest

    def get(self, digest: str) -> bytes:
        try:
            with open(self._file(digest), "rb") as handle:  # noqa: PTH123
                return zlib.decompress(handle.read())
        except FileNotFoundError as exc:
            raise StorageError(f"blob {digest} is missing from {self.root}") from exc
        except (OSError, zlib.error) as exc:
            raise StorageError(f"blob {digest} is unreadable: {exc}") from exc


class WriterLock:
    """One writer per storage dir: an exclusive flock, released by the kernel even on kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"{self.path.parent} is in use by policy-watchdog ({holder}); "
                "only one process may write to a storage dir at a time (is the service running?)"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd

    def check_held_by(self, pid: int) -> None:
        """Raise StorageError unless the lock is held right now, by process `pid`."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if holder == f"pid {pid}":
                    return
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            raise StorageError(f"{self.path.parent} is not held by process {pid} ({holder or 'free'})")
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class Store:
    """The archive. Open with `Store.open(dir)`; use as a context manager."""

    def __init__(self, directory: Path, connection: sqlite3.Connection, lock: WriterLock | None) -> None:
        self.directory = directory
        self.db = connection
        self.blobs = BlobStore(directory / "blobs")
        self._lock = lock
        self._depth = 0
        # the daemon checks targets in threads: statements and transactions are serialised here, so one
        # thread's statement never lands inside another thread's transaction
        self._mutex = threading.RLock()

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, directory: Path, *, writer: bool = True, lock_held_by: int | None = None) -> Store:
        """Open (and create or migrate) the archive. A writer takes the dir's lock or raises LockedError.

        `lock_held_by`: a child of the lock holder (the daemon's delivery chore) writes under its parent's
        lock; it is checked to be held by that process, and no lock is taken.
        """
        lock = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if writer and lock_held_by is not None:
                WriterLock(directory / ".lock").check_held_by(lock_held_by)
            elif writer:
                lock = WriterLock(directory / ".lock")
                lock.acquire()
            connection = _connect(directory / DB_NAME, read_only=not writer)
        except OSError as exc:
            if lock:
                lock.release()
            raise StorageError(f"cannot open the archive in {directory}: {exc.strerror or exc}") from exc
        store = cls(directory, connection, lock)
        if writer:
            store.migrate()
        elif store.pending_migrations():
            store.close()
            cls._upgrade_for_reader(directory)
            return cls.open(directory, writer=False)
        return store

    def pending_migrations(self) -> list[str]:
        tables = {row[0] for row in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_migrations" not in tables:
            return [name for name, _ in MIGRATIONS]
        done = {row[0] for row in self._query("SELECT name FROM schema_migrations")}
        return [name for name, _ in MIGRATIONS if name not in done]

    @classmethod
    def _upgrade_for_reader(cls, directory: Path) -> None:
        """A reader met an archive from an older release: migrate it now if no writer holds it."""
        try:
            cls.open(directory, writer=True).close()
        except LockedError as exc:
            raise StorageError(
                f"the archive in {directory} is being upgraded by the process writing to it; try again"
            ) from exc

    def close(self) -> None:
        self.db.close()
        if self._lock:
            self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> list[str]:
        self._execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in self._query("SELECT name FROM schema_migrations")}
        applied = []
        for name, script in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                for statement in _statements(script):
                    self._execute(statement)
                self._execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, ts(datetime.now(UTC))))
            applied.append(name)
        return applied

    def migrations(self) -> list[str]:
        return [row[0] for row in self._query("SELECT name FROM schema_migrations ORDER BY name")]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work; nested uses join the outer transaction."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._execute("ROLLBACK")
                raise
            self._depth = 0
            self._execute("COMMIT")

    # ----------------------------------------------------------------- low level

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            with self._mutex:
                return self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"archive database error ({self.directory / DB_NAME}): {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mutex:
            return self._execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._mutex:
            row: sqlite3.Row | None = self._execute(sql, params).fetchone()
            return row

    def put_text(self, text: str) -> str:
        return self.blobs.put(text.encode("utf-8"))

    def get_text(self, digest: str) -> str:
        return self.blobs.get(digest).decode("utf-8")

    # ----------------------------------------------------------------- targets

    def sync_targets(self, targets: Sequence[Target]) -> None:
        """Register configured targets (name and URL follow the config); history of removed ones stays."""
        with self.transaction():
            for target in targets:
                self._execute(
                    "INSERT INTO targets (id, name, url) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url",
                    (target.id, target.name, target.url),
                )

    def target_state(self, target_id: str) -> TargetState | None:
        row = self._one("SELECT * FROM targets WHERE id = ?", (target_id,))
        return None if row is None else _target_state(row)

    def target_states(self) -> list[TargetState]:
        return [_target_state(row) for row in self._query("SELECT * FROM targets ORDER BY id")]

    def record_check(
        self, target_id: str, *, at: datetime, status: str, reason: str | None, failed: bool
    ) -> int:
        """Note a check's result; returns the number of consecutive failures after it."""
        failures = "consecutive_failures + 1" if failed else "0"
        self._execute(
            f"UPDATE targets SET last_check_at = ?, last_status = ?, last_reason = ?, "  # noqa: S608 (fixed text)
            f"consecutive_failures = {failures} WHERE id = ?",
            (ts(at), status, reason, target_id),
        )
        row = self._one("SELECT consecutive_failures FROM targets WHERE id = ?", (target_id,))
        return int(row[0]) if row else 0

    def set_validators(self, target_id: str, *, etag: str | None, last_modified: str | None) -> None:
        self._execute(
            "UPDATE targets SET etag = ?, last_modified = ? WHERE id = ?", (etag, last_modified, target_id)
        )

    def set_failing(self, target_id: str, failing: bool) -> None:
        self._execute("UPDATE targets SET failing = ? WHERE id = ?", (int(failing), target_id))

    def set_next_due(self, target_id: str, at: datetime) -> None:
        self._execute("UPDATE targets SET next_due_at = ? WHERE id = ?", (ts(at), target_id))

    def _next_seq(self, target_id: str, column: str) -> int:
        self._execute(f"UPDATE targets SET {column} = {column} + 1 WHERE id = ?", (target_id,))  # noqa: S608
        row = self._one(f"SELECT {column} FROM targets WHERE id = ?", (target_id,))  # noqa: S608
        if row is None:
            raise StorageError(f"unknown target {target_id!r} in the archive")
        return int(row[0])

    def _chain(self, target_id: str, payload: dict[str, Any]) -> tuple[int, str, str]:
        """Append a record to the target's hash chain: returns (chain_seq, prev_hash, record_hash)."""
        seq = self._next_seq(target_id, "chain_seq")
        row = self._one("SELECT chain_head FROM targets WHERE id = ?", (target_id,))
        prev = str(row[0]) if row else ""
        record = chain_hash(prev, payload)
        self._execute("UPDATE targets SET chain_head = ? WHERE id = ?", (record, target_id))
        return seq, prev, record

    # ----------------------------------------------------------------- snapshots

    def add_snapshot(
        self,
        capture: Capture,
        *,
        fingerprint: str,
        outcome: str,
        reason_code: str | None = None,
        reason: str | None = None,
        text_hash: str | None = None,
    ) -> int:
        body_hash = self.blobs.put(capture.body)
        cursor = self._execute(
            "INSERT INTO snapshots (target_id, url, final_url, status, headers, body_hash, fetched_at, "
            "fetcher, "
            "config_fingerprint, outcome, reason_code, reason, text_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                capture.target_id,
                capture.url,
                capture.final_url,
                capture.status,
                json.dumps(capture.headers),
                body_hash,
                ts(capture.fetched_at),
                capture.fetcher,
                fingerprint,
                outcome,
                reason_code,
                reason,
                text_hash,
            ),
        )
        return int(cursor.lastrowid or 0)

    def snapshot(self, snapshot_id: int) -> Snapshot:
        row = self._one("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,))
        if row is None:
            raise NotFoundError(f"no snapshot {snapshot_id}")
        return _snapshot(row)

    def snapshots(self, target_id: str, *, outcome: str | None = None) -> list[Snapshot]:
        rows = self._query(
            "SELECT * FROM snapshots WHERE target_id = ? AND (? IS NULL OR outcome = ?) ORDER BY id",
            (target_id, outcome, outcome),
        )
        return [_snapshot(row) for row in rows]

    def latest_snapshots(self, target_id: str, count: int) -> list[Snapshot]:
        """The target's last `count` snapshots, newest first."""
        sql = "SELECT * FROM snapshots WHERE target_id = ? ORDER BY id DESC LIMIT ?"
        rows = self._query(sql, (target_id, count))
        return [_snapshot(row) for row in rows]

    def snapshot_body(self, snapshot: Snapshot) -> bytes:
        return self.blobs.get(snapshot.body_hash)

    # ----------------------------------------------------------------- versions

    def add_version(
        self, target_id: str, *, text: str, snapshot_id: int | None, seen_at: datetime, technical: bool
    ) -> Version:
        text_hash = self.put_text(text)
        seq = self._next_seq(target_id, "version_seq")
        version_id = f"{target_id}@v{seq}"
        payload = self._version_payload(
            version_id, target_id, seq, text_hash, snapshot_id, ts(seen_at), technical
        )
        chain_seq, prev, record = self._chain(target_id, payload)
        self._execute(
            "INSERT INTO versions (id, target_id, seq, text_hash, snapshot_id, first_seen, last_seen, "
            "technical, "
            "length, chain_seq, prev_hash, record_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                version_id,
                target_id,
                seq,
                text_hash,
                snapshot_id,
                ts(seen_at),
                ts(seen_at),
                int(technical),
                len(text),
                chain_seq,
                prev,
                record,
            ),
        )
        self.set_current(target_id, version_id)
        return self.version(version_id)

    def _version_payload(
        self,
        version_id: str,
        target_id: str,
        seq: int,
        text_hash: str,
        snapshot_id: int | None,
        first_seen: str,
        technical: bool,
    ) -> dict[str, Any]:
        """The immutable fields of a version, with its snapshot's provenance, as hashed into the chain."""
        provenance = None
        if snapshot_id is not None:
            snap = self.snapshot(snapshot_id)
            provenance = {
                "body_hash": snap.body_hash,
                "url": snap.final_url,
                "status": snap.status,
                "fetched_at": ts(snap.fetched_at),
            }
        return {
            "type": "version",
            "id": version_id,
            "target": target_id,
            "seq": seq,
            "text_hash": text_hash,
            "first_seen": first_seen,
            "technical": technical,
            "snapshot": provenance,
        }

    def set_current(self, target_id: str, version_id: str) -> None:
        self._execute("UPDATE targets SET current_version = ? WHERE id = ?", (version_id, target_id))

    def touch_version(self, version_id: str, at: datetime) -> None:
        self._execute("UPDATE versions SET last_seen = max(last_seen, ?) WHERE id = ?", (ts(at), version_id))

    def current_version(self, target_id: str) -> Version | None:
        state = self.target_state(target_id)
        return None if state is None or state.current_version is None else self.version(state.current_version)

    def version(self, version_id: str) -> Version:
        row = self._one("SELECT * FROM versions WHERE id = ?", (version_id,))
        if row is None:
            raise NotFoundError(f"no version {version_id!r} in the archive (see `history TARGET_ID`)")
        return _version(row)

    def version_text(self, version_id: str) -> str:
        return self.get_text(self.version(version_id).text_hash)

    def versions(self, target_id: str) -> list[Version]:
        """The target's versions, newest first."""
        return [
            _version(r)
            for r in self._query("SELECT * FROM versions WHERE target_id = ? ORDER BY seq DESC", (target_id,))
        ]

    def versions_with_text(self, target_id: str, text_hash: str) -> list[Version]:
        sql = "SELECT * FROM versions WHERE target_id = ? AND text_hash = ? ORDER BY seq DESC"
        return [_version(r) for r in self._query(sql, (target_id, text_hash))]

    def text_was_alerted(self, target_id: str, text_hash: str) -> bool:
        """Has a change *to* this text ever been alerted? (Each distinct text alerts at most once.)"""
        row = self._one(
            "SELECT 1 FROM changes c JOIN versions v ON v.id = c.to_version "
            "WHERE c.target_id = ? AND v.text_hash = ? AND c.alerted = 1 LIMIT 1",
            (target_id, text_hash),
        )
        return row is not None

    # ----------------------------------------------------------------- changes

    def add_change(
        self,
        target_id: str,
        *,
        from_version: str,
        to_version: str,
        at: datetime,
        kind: str,
        topics: Sequence[str],
        severity: str,
        summary: str,
        evidence: Sequence[dict[str, Any]] = (),
        reverted_to: str | None = None,
    ) -> ChangeRecord:
        seq = self._next_seq(target_id, "change_seq")
        change_id = f"{target_id}@c{seq}"
        payload = {
            "type": "change",
            "id": change_id,
            "target": target_id,
            "seq": seq,
            "from": from_version,
            "to": to_version,
            "detected_at": ts(at),
            "kind": kind,
            "reverted_to": reverted_to,
            "topics": list(topics),
            "severity": severity,
            "summary": summary,
        }
        chain_seq, prev, record = self._chain(target_id, payload)
        self._execute(
            "INSERT INTO changes (id, target_id, seq, from_version, to_version, detected_at, kind, "
            "reverted_to, "
            "topics, severity, summary, evidence, chain_seq, prev_hash, record_hash) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                change_id,
                target_id,
                seq,
                from_version,
                to_version,
                ts(at),
                kind,
                reverted_to,
                json.dumps(list(topics)),
                severity,
                summary,
                json.dumps(list(evidence), ensure_ascii=False),
                chain_seq,
                prev,
                record,
            ),
        )
        self._execute("UPDATE targets SET last_change_at = ? WHERE id = ?", (ts(at), target_id))
        return self.change(change_id)

    def set_alerted(self, change_id: str) -> None:
        self._execute("UPDATE changes SET alerted = 1 WHERE id = ?", (change_id,))

    def change(self, change_id: str) -> ChangeRecord:
        row = self._one("SELECT * FROM changes WHERE id = ?", (change_id,))
        if row is None:
            raise NotFoundError(f"no change {change_id!r} in the archive (see `changes`)")
        return _change(row)

    def change_evidence(self, change_id: str) -> list[dict[str, Any]]:
        row = self._one("SELECT evidence FROM changes WHERE id = ?", (change_id,))
        return [] if row is None else list(json.loads(row[0]))

    def changes(
        self,
        *,
        target: str | None = None,
        topic: str | None = None,
        since: datetime | None = None,
        kinds: Sequence[str] = ("change", "revert"),
    ) -> list[ChangeRecord]:
        """Detected changes, newest first, filtered."""
        sql = "SELECT * FROM changes WHERE kind IN (%s)" % ",".join("?" * len(kinds))  # noqa: S608, UP031
        params: list[Any] = list(kinds)
        if target:
            sql, params = sql + " AND target_id = ?", [*params, target]
        if since:
            sql, params = sql + " AND detected_at >= ?", [*params, ts(since)]
        records = [_change(r) for r in self._query(sql + " ORDER BY detected_at DESC, id DESC", params)]
        return [c for c in records if topic is None or topic in c.topics]

    # ----------------------------------------------------------------- events (failure / recovery)

    def add_event(self, target_id: str, *, kind: str, at: datetime, reason: str) -> Event:
        seq = self._next_seq(target_id, "event_seq")
        event = Event(f"{target_id}@{kind}{seq}", target_id, kind, at, reason)
        self._execute("INSERT INTO events VALUES (?,?,?,?,?)", (event.id, target_id, kind, ts(at), reason))
        return event

    def events(self, *, target: str | None = None) -> list[Event]:
        rows = self._query(
            "SELECT * FROM events WHERE (? IS NULL OR target_id = ?) ORDER BY at DESC, id DESC",
            (target, target),
        )
        return [Event(r["id"], r["target_id"], r["kind"], _dt(r["at"]), r["reason"]) for r in rows]

    # ----------------------------------------------------------------- outbox

    def enqueue(self, alert: Alert, channel_keys: Sequence[str], *, now: datetime) -> int:
        """Owe `alert` to each channel, once: a second enqueue of the same event/channel is ignored."""
        alert_hash = self.blobs.put(_alert_json(alert).encode("utf-8"))
        added = 0
        for key in channel_keys:
            cursor = self._execute(
                "INSERT OR IGNORE INTO outbox "
                "(event_id, channel_key, alert_hash, created_at, next_attempt_at) VALUES (?,?,?,?,?)",
                (alert.event_id, key, alert_hash, ts(now), ts(now)),
            )
            added += cursor.rowcount
        return added

    def pending_deliveries(self, now: datetime) -> list[Delivery]:
        rows = self._query(
            "SELECT * FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id", (ts(now),)
        )
        return [self._delivery(row) for row in rows]

    def all_pending(self) -> list[Delivery]:
        rows = self._query("SELECT * FROM outbox WHERE delivered_at IS NULL ORDER BY id")
        return [self._delivery(row) for row in rows]

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        # its own short transaction: the window in which a crash can cause a duplicate is the time between
        # the channel accepting the message and this commit
        with self.transaction():
            self._execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE id = ? AND delivered_at IS NULL",
                (ts(at), delivery_id),
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: datetime) -> None:
        with self.transaction():
            self._execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (error[:2000], ts(retry_at), delivery_id),
            )

    def deliveries_for(self, event_id: str) -> list[tuple[str, datetime | None, int]]:
        """(channel key, delivered at, attempts) for each channel owed this event."""
        rows = self._query(
            "SELECT channel_key, delivered_at, attempts FROM outbox WHERE event_id = ?", (event_id,)
        )
        return [(r[0], parse_ts(r[1]), int(r[2])) for r in rows]

    def _delivery(self, row: sqlite3.Row) -> Delivery:
        alert = _alert_from_json(self.blobs.get(row["alert_hash"]).decode("utf-8"))
        return Delivery(
            int(row["id"]), row["channel_key"], alert, int(row["attempts"]), _dt(row["created_at"])
        )


# --------------------------------------------------------------------------- helpers


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only and not path.exists():
        # a reader on a fresh dir: an empty in-memory archive with the schema, nothing written to disk
        connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        for _name, script in MIGRATIONS:
            for statement in _statements(script):
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


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _target_state(row: sqlite3.Row) -> TargetState:
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
    )


def _snapshot(row: sqlite3.Row) -> Snapshot:
    headers = tuple((str(k), str(v)) for k, v in json.loads(row["headers"]))
    return Snapshot(
        int(row["id"]),
        row["target_id"],
        row["url"],
        row["final_url"],
        int(row["status"]),
        headers,
        row["body_hash"],
        _dt(row["fetched_at"]),
        row["fetcher"],
        row["config_fingerprint"],
        row["outcome"],
        row["reason_code"],
        row["reason"],
        row["text_hash"],
    )


def _version(row: sqlite3.Row) -> Version:
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
    )


def _change(row: sqlite3.Row) -> ChangeRecord:
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
    )


def _alert_json(alert: Alert) -> str:
    fields = {f.name: getattr(alert, f.name) for f in dataclasses.fields(Alert)}
    fields["tags"] = list(alert.tags)
    fields["attachment"] = (
        base64.b64encode(alert.attachment).decode() if alert.attachment is not None else None
    )
    return json.dumps(fields, sort_keys=True, ensure_ascii=False)


def _alert_from_json(text: str) -> Alert:
    fields = json.loads(text)
    fields["tags"] = tuple(fields["tags"])
    if fields["attachment"] is not None:
        fields["attachment"] = base64.b64decode(fields["attachment"])
    return Alert(**fields)
