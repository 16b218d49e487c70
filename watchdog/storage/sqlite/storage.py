"""Storage, SQLite backend: SqliteStorage, the whole (its parts, its lifetime, schema upgrades on open)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.deferred import deferred
from watchdog.errors import LockedError, StorageError
from watchdog.storage.blobs import FOLDER as BLOB_FOLDER
from watchdog.storage.blobs import BlobStore
from watchdog.storage.files import CACHE_FOLDER, sweep_temporaries, write_atomically
from watchdog.storage.leases import SoloLeases
from watchdog.storage.lock import LOCK_NAME, WriterLock
from watchdog.storage.sqlite.checks import SqliteChecks
from watchdog.storage.sqlite.connection import (
    DB_NAME,
    Database,
    migrate,
    open_reader,
    open_writer,
    pending_migrations,
    upgraded_in_memory,
)
from watchdog.storage.sqlite.search import index_missing

# The parts a check does not use before its first request (reading the archive back, the outbox, imports,
# copy-archive) are made on first use, their modules loaded then (watchdog/deferred.py).
if TYPE_CHECKING:
    from watchdog.storage.sqlite import archive as sqlite_archive
    from watchdog.storage.sqlite import imports as sqlite_imports
    from watchdog.storage.sqlite import outbox as sqlite_outbox
    from watchdog.storage.sqlite import transfer as sqlite_transfer
    from watchdog.storage.sqlite.archive import SqliteArchive
    from watchdog.storage.sqlite.imports import SqliteImports
    from watchdog.storage.sqlite.outbox import SqliteOutbox
    from watchdog.storage.transfer import SqlRows, SqlSink
else:
    sqlite_archive = deferred("watchdog.storage.sqlite.archive")
    sqlite_imports = deferred("watchdog.storage.sqlite.imports")
    sqlite_outbox = deferred("watchdog.storage.sqlite.outbox")
    sqlite_transfer = deferred("watchdog.storage.sqlite.transfer")

log = logging.getLogger(__name__)

UPGRADE_WAIT = 10.0  # seconds a reader waits for another process to finish upgrading an archive
# a cache entry is written in milliseconds: a temporary file an hour old is a leftover, not a live write
CACHE_TEMPORARY_AGE = 3600.0
# What a writer leaves in the storage dir when it closes: the time (Unix seconds) leftovers were last swept.
# Walking every blob folder costs ~1 ms of CPU per 1,000 blobs, at every start of a `check`: a writer sweeps
# when the last one did not close (no such file: a kill -9, a power cut), else at most every SWEEP_EVERY
# seconds. Leftovers take room, not correctness, so the rare one a clean close does not vouch for (a
# delivery child killed mid-write while its parent closes cleanly) waits for that sweep.
CLOSED_NAME = "closed-cleanly"
SWEEP_EVERY = 86400.0

# --------------------------------------------------------------------------- the whole


class SqliteStorage:
    """Storage on a storage dir. Open with `SqliteStorage.open(dir)` (or watchdog.storage.open_store)."""

    def __init__(
        self, directory: Path, db: Database, lock: WriterLock | None, *, node: str | None = None
    ) -> None:
        self._directory = directory
        self._leases = SoloLeases(node)
        self.db = db
        self._blobs = BlobStore(directory / BLOB_FOLDER)
        self._lock = lock
        self._checks = SqliteChecks(db, self._blobs)
        self._swept_at: float | None = None  # a writer's last sweep, recorded when it closes

    @property
    def directory(self) -> Path:
        return self._directory

    # Made on first use (no state of their own: two threads racing here make equal parts, one is kept).
    @cached_property
    def archive(self) -> SqliteArchive:
        return sqlite_archive.SqliteArchive(self.db, self._blobs)

    @property
    def checks(self) -> SqliteChecks:
        return self._checks

    @cached_property
    def outbox(self) -> SqliteOutbox:
        return sqlite_outbox.SqliteOutbox(self.db, self._blobs)

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    @property
    def leases(self) -> SoloLeases:
        return self._leases

    @cached_property
    def imports(self) -> SqliteImports:
        return sqlite_imports.SqliteImports(self.db, self._blobs)

    @classmethod
    def open(
        cls, directory: Path, *, writer: bool = True, lock_held_by: int | None = None, node: str | None = None
    ) -> SqliteStorage:
        """Open (and create or migrate) the archive. A writer takes the dir's lock or raises LockedError,
        then removes what writers that died mid-write left behind.

        `lock_held_by`: a child of the lock holder (the daemon's delivery chore) writes under its parent's
        lock; it is checked to be held by that process, and no lock is taken.
        """
        if not writer:
            return cls._open_reader(directory)
        lock = _writer_lock(directory, lock_held_by)
        try:
            storage = cls(directory, open_writer(directory / DB_NAME), lock, node=node)
        except BaseException:
            if lock:
                lock.release()
            raise
        try:
            migrate(storage.db)
            index_missing(storage.db, storage.blobs)
            if lock is not None:
                storage._swept_at = _sweep_when_due(directory, time.time())
        except BaseException:
            storage.close()
            raise
        return storage

    @classmethod
    def _open_reader(cls, directory: Path) -> SqliteStorage:
        db = open_reader(directory / DB_NAME)
        try:
            pending = pending_migrations(db)
        except BaseException:
            db.close()
            raise
        if not pending:
            return cls(directory, db, None)
        if db.static:  # a read-only copy: it cannot be upgraded on disk
            return cls._in_memory(directory, db)
        db.close()
        return cls._open_upgraded(directory)

    @classmethod
    def _open_upgraded(cls, directory: Path) -> SqliteStorage:
        """A reader met an archive from an older release: migrate it now when no writer holds it; while one
        does (another reader upgrading it, a writer starting), wait a little for it to be done; when it
        cannot be written at all, read it upgraded in memory."""
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
            except StorageError:  # read-only (a file, a folder, a medium): read an upgraded copy instead
                return cls._in_memory(directory, open_reader(directory / DB_NAME))
        return cls.open(directory, writer=False)

    @classmethod
    def _in_memory(cls, directory: Path, db: Database) -> SqliteStorage:
        """An archive from an older release that cannot be written: upgraded (and indexed) in memory."""
        storage = cls(directory, upgraded_in_memory(db), None)
        try:
            index_missing(storage.db, storage.blobs)
        except BaseException:
            storage.close()
            raise
        return storage

    @contextmanager
    def reading(self) -> Iterator[SqliteArchive]:
        """A separate read-only connection inside one read transaction: committed data of one instant (a
        static copy, which nobody writes to, is read as it is)."""
        db = self.db if self.db.static else open_reader(self._directory / DB_NAME)
        try:
            with db.transaction(write=False):
                yield sqlite_archive.SqliteArchive(db, self._blobs)
        finally:
            if db is not self.db:
                db.close()

    @contextmanager
    def export(self) -> Iterator[SqlRows]:
        """copy-archive: the rows as stored, on a connection of its own inside one read transaction."""
        db = self.db if self.db.static else open_reader(self._directory / DB_NAME)
        try:
            with db.transaction(write=False):
                yield sqlite_transfer.rows_of(db)
        finally:
            if db is not self.db:
                db.close()

    def importer(self) -> SqlSink:
        """copy-archive into this storage dir: on the writer's connection (the dir's lock is ours)."""
        return sqlite_transfer.sink_of(self.db)

    def close(self) -> None:
        self.db.close()
        if self._lock:
            if self._swept_at is not None:
                _record_clean_close(self._directory, self._swept_at)
            self._lock.release()

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _writer_lock(directory: Path, lock_held_by: int | None) -> WriterLock | None:
    """The storage dir's writer lock, taken (None: a child writing under its parent's, checked)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if lock_held_by is not None:
            WriterLock(directory / LOCK_NAME).check_held_by(lock_held_by)
            return None
        lock = WriterLock(directory / LOCK_NAME)
        lock.acquire()
        return lock
    except OSError as exc:
        raise StorageError(f"cannot open the archive in {directory}: {exc.strerror or exc}") from exc


def _sweep_when_due(directory: Path, now: float) -> float:
    """Sweep unless the last writer closed cleanly and swept within SWEEP_EVERY (a clock set back since:
    sweep). Returns when leftovers were last swept; until this writer closes, no clean close is on record."""
    marker = directory / CLOSED_NAME
    try:
        last: float | None = float(marker.read_text(encoding="ascii"))
    except (OSError, ValueError):  # none (the last writer died), or unreadable: sweep
        last = None
    try:
        marker.unlink(missing_ok=True)
    except OSError as exc:  # then a kill -9 of this writer waits for the next due sweep
        log.warning("could not remove %s: %s", marker, exc)
    if last is not None and now - SWEEP_EVERY <= last <= now:
        return last
    _sweep(directory)
    return now


def _record_clean_close(directory: Path, swept_at: float) -> None:
    try:
        write_atomically(directory / CLOSED_NAME, repr(swept_at).encode("ascii"))
    except OSError as exc:  # best effort: the next writer sweeps
        log.warning("could not record a clean close in %s: %s", directory, exc)


def _sweep(directory: Path) -> None:
    """Temporary files left by writers that died mid-write (a kill -9, a full disk): the blobs' under the
    lock we hold (no other writer can be mid-write), the caches' once old enough not to be anyone's."""
    try:
        removed = sweep_temporaries(directory / BLOB_FOLDER)
        removed += sweep_temporaries(directory / CACHE_FOLDER, older_than=CACHE_TEMPORARY_AGE)
    except OSError as exc:  # best effort: they take room, not correctness
        log.warning("could not remove leftover temporary files under %s: %s", directory, exc)
        return
    if removed:
        log.info("removed %d leftover temporary file(s) under %s", removed, directory)


def _still_pending(directory: Path) -> bool:
    probe = open_reader(directory / DB_NAME)
    try:
        return bool(pending_migrations(probe))
    finally:
        probe.close()
