"""Stage 4, storage: the archive (targets' state, raw snapshots, versions, changes, events, the alert
outbox) behind narrow interfaces. SQL lives only in this package.

    interfaces.py   the protocols callers use: Storage, ArchiveReader, CheckStore, Outbox, Blobs (how to use
                    them: its docstring)
    sqlite/         the SQLite backend (archive.sqlite3 + blobs/ in the storage dir; the default)
    migrations/     named schema migrations, one SQL file per migration and backend
    chain.py        the hash-chain rule (what a record hashes), shared by the writer and `verify`
    blobs.py        content-addressed blob files; lock.py: one writer per storage dir; files.py: the one
                    atomic-write helper of the project

    with open_store(config) as storage:                      # a writer: takes the storage dir's lock
        state = storage.checks.read_check(...)
    with open_store(config, writer=False) as storage:        # a reader: runs beside the daemon
        storage.archive.versions("meta-privacy-policy")

    postgres/       the PostgreSQL backend (`[storage] url`): one database shared by several daemons
    leases.py       who checks what (SoloLeases: one writer holds everything)
    write.py        one check's write, computed once for every backend (ids, hash-chain links)
    sql.py          the SQL both backends share: each backend's Dialect, the Cursor they run it on
    statements.py   a check's read and write and an import's write, as shared statements
    reader.py       the ArchiveReader (SqlArchive); outbox.py: the Outbox (SqlOutbox), both shared
    records.py      stored rows as models, whichever backend read them

`open_store` picks the backend from the config: PostgreSQL when `[storage] url` is set, else SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.errors import StorageError
from watchdog.storage.leases import default_node
from watchdog.storage.sqlite import SqliteStorage

if TYPE_CHECKING:  # for the annotation only: config imports notify, which imports the Outbox from here
    from watchdog.config import Config
    from watchdog.storage.interfaces import Storage  # the protocols: annotations only (start-up time)


def open_store(config: Config, *, writer: bool = True, lock_held_by: int | None = None) -> Storage:
    """Open the archive of `config` (creating or upgrading it). SQLite: a writer takes the storage dir's
    lock, or raises LockedError; `lock_held_by`: write under the lock of that process (the daemon's delivery
    child). PostgreSQL: no lock (several nodes write at once). Raises StorageError, in one line naming the
    path or database and the problem, when it cannot be opened."""
    settings = config.storage
    node = settings.node or default_node()
    if settings.url is not None:
        return open_database(settings.url, config, node=node)
    return SqliteStorage.open(config.storage_dir, writer=writer, lock_held_by=lock_held_by, node=node)


def open_database(url: str, config: Config, *, node: str) -> Storage:
    """The PostgreSQL archive at `url`, with a pool sized for the daemon's workers (a check and a host turn
    each, the loop, delivery and publishing)."""
    try:  # imported here: psycopg is the optional `postgres` extra, and a second of start-up time
        from watchdog.storage.postgres import PostgresStorage
    except ImportError as exc:
        raise StorageError(
            f"[storage] url names a PostgreSQL archive, but psycopg is not installed ({exc}): "
            "pip install 'policy-watchdog[postgres]'"
        ) from exc
    connections = 2 * config.daemon.max_workers + 3
    return PostgresStorage.open(
        url,
        directory=config.storage_dir,
        node=node,
        lease=config.storage.lease,
        connections=connections,
    )
