"""Storage, SQLite backend: the connection (one per process, shared by threads), opening a writer or a
reader (including a read-only copy of an archive), and applying the migrations."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from watchdog.errors import StorageError
from watchdog.storage.chain import ts
from watchdog.storage.migrations import Migration, migrations
from watchdog.storage.sql import Dialect

log = logging.getLogger(__name__)

DB_NAME = "archive.sqlite3"
MIGRATIONS: tuple[Migration, ...] = migrations("sqlite")
# the shared statements (storage/sql.py) in SQLite: times as ISO-8601 text (chain.ts), JSON as text
DIALECT = Dialect(
    name="sqlite",
    param="?",
    in_values="IN (SELECT value FROM json_each(?))",
    json_each="json_each",
    values=lambda items: json.dumps(list(items)),
    time=ts,
    json=lambda value: json.dumps(value, ensure_ascii=False),
)

# --------------------------------------------------------------------------- the connection


class Database:
    """One SQLite connection; statements and transactions serialised by a re-entrant lock.

    `static`: a copy nobody writes to (a read-only archive opened immutable, from a private copy, or upgraded
    in memory): a consistent reader may share it. `cleanup`: run once the connection is closed."""

    def __init__(
        self,
        path: Path,
        connection: sqlite3.Connection,
        *,
        static: bool = False,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.connection = connection
        self.static = static
        self._cleanup = cleanup
        self._mutex = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Database]:
        """One atomic unit of work (write: BEGIN IMMEDIATE; else a consistent read), its statements on this
        database; nested uses join the outer transaction."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._roll_back()
                raise
            self._depth = 0
            self.execute("COMMIT")

    def consistent(self) -> AbstractContextManager[Database]:
        """Several reads that must agree: one read transaction (or the one already open)."""
        return self.transaction(write=False)

    def _roll_back(self) -> None:
        """Undo the open transaction. After some errors (a full database or disk, an I/O error) SQLite has
        undone it already, and a ROLLBACK then fails ("no transaction is active"); a ROLLBACK that fails on
        a failing disk must not hide the error that caused it either: the caller re-raises that one."""
        if self.connection.in_transaction:
            with contextlib.suppress(StorageError):
                self.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it touched."""
        with self._mutex:
            return self._cursor(sql, params).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many parameter rows."""
        if not rows:
            return
        try:
            with self._mutex:
                self.connection.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StorageError(f"archive database error ({self.path}): {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mutex:
            try:
                return self._cursor(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"archive database error ({self.path}): {exc}") from exc

    def _cursor(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self.connection.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"archive database error ({self.path}): {exc}") from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        self.connection.close()
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None


# --------------------------------------------------------------------------- opening


def open_writer(path: Path) -> Database:
    """The writer's connection: WAL, synchronous commits (a committed check survives a power cut)."""
    try:
        connection = _connection(_uri(path, ""))
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the archive {path}: {exc}") from exc
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        connection.close()
        raise StorageError(f"cannot open the archive {path}: {exc}") from exc
    return Database(path, connection)


def open_reader(path: Path) -> Database:
    """A reader's connection. A dir without an archive reads as an empty archive (in memory, nothing
    written); a read-only copy opens in place when SQLite can read it there, else immutable, else (an
    unmerged write-ahead log beside it) from a private copy."""
    if not path.exists():
        return _empty(path)
    try:
        return Database(path, _probed(_uri(path, "mode=ro")))
    except sqlite3.Error:
        pass  # typically "unable to open database file": no -shm beside it, and none can be made
    wal = path.with_name(path.name + "-wal")
    try:
        if wal.is_file() and wal.stat().st_size > 0:
            return _private_copy(path, wal)
        log.info("%s is on a read-only medium: reading it in immutable mode", path)
        return Database(path, _probed(_uri(path, "mode=ro&immutable=1")), static=True)
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot read the archive {path}: {_reason(exc)}") from exc


def upgraded_in_memory(db: Database) -> Database:
    """A copy of a read-only archive from an older release, upgraded in memory (the file is untouched)."""
    memory = _connection(":memory:")
    try:
        db.connection.backup(memory)
    except sqlite3.Error as exc:
        memory.close()
        raise StorageError(f"cannot read the archive {db.path}: {exc}") from exc
    finally:
        db.close()
    upgraded = Database(db.path, memory, static=True)
    log.info("%s is from an older release and cannot be written: upgraded in memory to read it", db.path)
    migrate(upgraded)
    return upgraded


def _uri(path: Path, options: str) -> str:
    return f"file:{quote(str(path))}" + (f"?{options}" if options else "")


def _connection(uri: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what we say it is
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def _probed(uri: str) -> sqlite3.Connection:
    """A reader's connection, known to read (SQLite opens lazily: the first read is where it fails)."""
    connection = _connection(uri)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def _empty(path: Path) -> Database:
    db = Database(path, _connection(":memory:"), static=True)
    migrate(db)
    return db


def _private_copy(path: Path, wal: Path) -> Database:
    """The archive and its write-ahead log copied where SQLite may merge them, read from there."""
    folder = tempfile.mkdtemp(prefix="policy-watchdog-readonly-")
    try:
        shutil.copyfile(path, os.path.join(folder, path.name))  # noqa: PTH118
        shutil.copyfile(wal, os.path.join(folder, wal.name))  # noqa: PTH118
        connection = _probed(_uri(Path(folder) / path.name, "mode=ro"))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    log.info("%s is read-only with an unmerged write-ahead log: reading a private copy", path)
    return Database(path, connection, static=True, cleanup=lambda: shutil.rmtree(folder, ignore_errors=True))


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


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
