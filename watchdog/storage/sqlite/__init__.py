"""Storage, SQLite backend: the archive as one SQLite file (WAL) plus blob files.

Layout of a storage dir:
    archive.sqlite3     targets' state, raw-snapshot metadata, versions, changes, events, the alert outbox
    blobs/ab/abcdef...  zlib-compressed bodies, texts and alert payloads (storage/blobs.py)
    .lock               held (flock) by the one process allowed to write (storage/lock.py)

Modules: connection (Database: one connection shared by the daemon's threads, statements and transactions
serialised by one lock; opening a writer, a reader, or a read-only copy of an archive; migrations; DIALECT,
how the shared statements of storage/sql.py are spelled here), archive (the ArchiveReader of
storage/reader.py, with FTS5 for search), checks (CheckStore: a check read in one read transaction and written
in one transaction, by storage/write.py and storage/statements.py), search (the sentence index: FTS5), imports
(Imports: an import in one transaction, storage/import_write.py), outbox (the Outbox of storage/outbox.py, its
payloads in blob files), transfer (copy-archive's rows), storage (SqliteStorage: the parts, their lifetime,
upgrades on open).

`SqliteStorage.open(dir)` opens (creates, migrates) it and hands out the parts of storage/interfaces.py, and
`reading()`, a reader on a connection of its own inside one read transaction. A check is written in one
transaction: a crash or `kill -9` at any moment leaves the archive as it was before that check or after it.
Every sqlite3 error becomes a StorageError naming the file and the problem.

A read-only copy of an archive (read-only media, a read-only bind mount) opens for reading as it is when
SQLite can read it in place; when it cannot (no write-ahead-log index beside it, and none can be made), it is
opened in immutable mode, or, when an unmerged write-ahead log holds committed records, from a private copy of
the database and its log (in the system's temporary folder, removed on close). An archive from an older
release on such a copy is upgraded in memory, never on disk.
"""

from watchdog.storage.sqlite.connection import DB_NAME, MIGRATIONS, Database
from watchdog.storage.sqlite.storage import SqliteStorage

__all__ = ["DB_NAME", "MIGRATIONS", "Database", "SqliteStorage"]
