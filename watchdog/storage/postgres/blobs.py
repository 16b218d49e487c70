"""Storage, PostgreSQL backend: content-addressed blobs in the `blobs` table, so every node reads every raw
capture, text and alert payload. A blob is stored zlib-compressed, named by the SHA-256 of its content (as in
the SQLite backend's files), written once (ON CONFLICT DO NOTHING: writers of the same blob never clash),
and written in the same transaction as the rows that refer to it when a check records it."""

from __future__ import annotations

import zlib

from watchdog.errors import StorageError
from watchdog.storage.blobs import stored_problem
from watchdog.storage.chain import sha256
from watchdog.storage.postgres.connection import Database, Session
from watchdog.storage.sql import Cursor

LEVEL = 6  # the blob files' zlib level: the same bytes in both backends


def insert_blob(session: Cursor, data: bytes) -> str:
    """Store `data` in the session's transaction (idempotent); its digest."""
    digest = sha256(data)
    session.execute(
        "INSERT INTO blobs (digest, size, data) VALUES (%s, %s, %s) ON CONFLICT (digest) DO NOTHING",
        (digest, len(data), zlib.compress(data, LEVEL)),
    )
    return digest


def insert_compressed(session: Session, digest: str, size: int, compressed: bytes) -> None:
    """Store a blob as its compressed bytes (copy-archive: the bytes are checked by `verify`, not here)."""
    session.execute(
        "INSERT INTO blobs (digest, size, data) VALUES (%s, %s, %s) ON CONFLICT (digest) DO NOTHING",
        (digest, size, compressed),
    )


class PostgresBlobs:
    """The `Blobs` of a PostgreSQL archive."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, data: bytes) -> str:
        with self._db.transaction() as session:
            return insert_blob(session, data)

    def get(self, digest: str) -> bytes:
        data = self._compressed(digest)
        if data is None:
            raise StorageError(f"blob {digest} is missing from the archive database {self._db.address}")
        try:
            return zlib.decompress(data)
        except zlib.error as exc:
            raise StorageError(f"blob {digest} is unreadable: {exc}") from exc

    def put_text(self, text: str) -> str:
        return self.put(text.encode("utf-8"))

    def get_text(self, digest: str) -> str:
        return self.get(digest).decode("utf-8")

    def problem(self, digest: str) -> str | None:
        """None when the blob is present, readable and its content hashes to its name; else what is wrong."""
        data = self._compressed(digest)
        return "is missing" if data is None else stored_problem(digest, data)

    def _compressed(self, digest: str) -> bytes | None:
        row = self._db.one("SELECT data FROM blobs WHERE digest = %s", (digest,))
        return None if row is None else bytes(row["data"])
