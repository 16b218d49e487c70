"""Storage, PostgreSQL backend: PostgresStorage, the parts of storage/interfaces.py on one connection pool.

Opening migrates the database (under an advisory lock: nodes starting together wait for the first one) and
refuses a database migrated by a newer release. There is no writer lock: several nodes write at once, kept
apart by row locks (a check's write), leases (who checks what) and advisory locks (hosts, channels).
`directory` is this machine's storage dir: published feeds and site, caches; never the archive itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from watchdog.storage.postgres.archive import PostgresArchive
from watchdog.storage.postgres.blobs import PostgresBlobs
from watchdog.storage.postgres.checks import PostgresChecks
from watchdog.storage.postgres.cluster import PostgresLeases
from watchdog.storage.postgres.connection import Database, migrate
from watchdog.storage.postgres.imports import PostgresImports
from watchdog.storage.postgres.outbox import PostgresOutbox
from watchdog.storage.postgres.search import index_missing
from watchdog.storage.postgres.transfer import PostgresSink, rows_of
from watchdog.storage.transfer import SqlRows


class PostgresStorage:
    """Storage in a PostgreSQL database. Open with `PostgresStorage.open(url, ...)` (or open_store)."""

    def __init__(self, directory: Path, db: Database, node: str, lease: timedelta) -> None:
        self._directory = directory
        self.db = db
        self._blobs = PostgresBlobs(db)
        self._archive = PostgresArchive(db, self._blobs)
        self._checks = PostgresChecks(db, node)
        self._outbox = PostgresOutbox(db, self._blobs)
        self._leases = PostgresLeases(db, node, lease)
        self._imports = PostgresImports(db)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        directory: Path,
        node: str,
        lease: timedelta = timedelta(seconds=60),
        connections: int = 4,
    ) -> PostgresStorage:
        """Connect (a pool of at most `connections`), create or upgrade the schema. StorageError, in one
        line naming the database (without its password), when it cannot."""
        # the connections carry the node's name: other nodes see it alive (cluster.HOLDER_ALIVE)
        db = Database.connect(url, max_size=connections, name=f"policy-watchdog {node}")
        try:
            migrate(db)
            index_missing(db, PostgresBlobs(db))
        except BaseException:
            db.close()
            raise
        return cls(directory, db, node, lease)

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def address(self) -> str:
        """The database's URL without its password."""
        return self.db.address

    @property
    def archive(self) -> PostgresArchive:
        return self._archive

    @property
    def checks(self) -> PostgresChecks:
        return self._checks

    @property
    def outbox(self) -> PostgresOutbox:
        return self._outbox

    @property
    def blobs(self) -> PostgresBlobs:
        return self._blobs

    @property
    def leases(self) -> PostgresLeases:
        return self._leases

    @property
    def imports(self) -> PostgresImports:
        return self._imports

    @contextmanager
    def reading(self) -> Iterator[PostgresArchive]:
        """A reader inside one REPEATABLE READ, READ ONLY transaction: the archive at one instant."""
        with self.db.transaction(read_only=True) as session:
            yield PostgresArchive(session, self._blobs)

    @contextmanager
    def export(self) -> Iterator[SqlRows]:
        """copy-archive: the rows as stored, inside one REPEATABLE READ, READ ONLY transaction."""
        with self.db.transaction(read_only=True) as session:
            yield rows_of(session)

    def importer(self) -> PostgresSink:
        return PostgresSink(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PostgresStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
