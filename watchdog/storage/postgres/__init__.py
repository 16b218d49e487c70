"""Storage, PostgreSQL backend: the archive in one database that several daemons (nodes) share. Blobs (raw
captures, texts, alert payloads) live in the database too, so every node reads every version; the storage
dir keeps only this machine's published files and caches. Needs the `postgres` extra (psycopg 3 and
psycopg_pool).

    connection.py   the pool, transactions, sessions, errors -> StorageError, migrations/postgres/, and
                    DIALECT: how the shared statements of storage/sql.py are spelled here
    rows.py         its times in UTC (rows -> models: storage/records.py)
    archive.py      ArchiveReader (storage/reader.py, with full-text search)
    checks.py       CheckStore (one check: one transaction, row-locked; storage/statements.py)
    outbox.py       Outbox (storage/outbox.py; a channel's rows delivered by one node at a time: advisory
                    lock per channel; payloads from the `blobs` table in one query)
    blobs.py        Blobs (the `blobs` table)  cluster.py  Leases (due checks claimed with SKIP LOCKED,
                                                           one request per host across nodes)
    search.py       the sentence index in PostgreSQL's full-text search (tsvector, GIN)
    imports.py      Imports (one import: one transaction, row-locked; storage/import_write.py)
    storage.py      PostgresStorage: the parts, their lifetime
    transfer.py     rows in and out as they are stored (copy-archive)
"""

from watchdog.storage.postgres.connection import MIGRATIONS
from watchdog.storage.postgres.storage import PostgresStorage

__all__ = ["MIGRATIONS", "PostgresStorage"]
