"""Stage 4, storage: the archive (targets' state, raw snapshots, versions, changes, events, the alert
outbox) behind narrow interfaces. SQL lives only in this package.

    interfaces.py   the protocols callers use: Storage, ArchiveReader, CheckStore, Outbox, Blobs (how to use
                    them: its docstring)
    sqlite.py       the SQLite backend (archive.sqlite3 + blobs/ in the storage dir; the default)
    migrations/     named schema migrations, one SQL file per migration and backend
    chain.py        the hash-chain rule (what a record hashes), shared by the writer and `verify`
    blobs.py        content-addressed blob files; lock.py: one writer per storage dir; files.py: the one
                    atomic-write helper of the project

    with open_store(config) as storage:                      # a writer: takes the storage dir's lock
        state = storage.checks.read_check(...)
    with open_store(config, writer=False) as storage:        # a reader: runs beside the daemon
        storage.archive.versions("meta-privacy-policy")

A backend for PostgreSQL implements the same protocols (a `postgres.py` beside sqlite.py, its migrations
under migrations/postgres/ with the same names) and `open_store` picks it from the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.storage.interfaces import Storage
from watchdog.storage.sqlite import SqliteStorage

if TYPE_CHECKING:  # for the annotation only: config imports notify, which imports the Outbox from here
    from watchdog.config import Config


def open_store(config: Config, *, writer: bool = True, lock_held_by: int | None = None) -> Storage:
    """Open the archive of `config` (creating or upgrading it). A writer takes the storage dir's lock, or
    raises LockedError; `lock_held_by`: write under the lock of that process (the daemon's delivery child).
    Raises StorageError, in one line naming the path and the problem, when it cannot be opened."""
    return SqliteStorage.open(config.storage_dir, writer=writer, lock_held_by=lock_held_by)
